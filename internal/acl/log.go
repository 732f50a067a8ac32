package acl

import "sync"

// DefaultLogLen is acllog-max-len's default: the entries ACL LOG keeps.
const DefaultLogLen = 128

// groupWithinMs: a denial like one logged less than this long before
// counts in that entry instead of adding one, as in Redis.
const groupWithinMs = 60_000

// LogEntry is one ACL LOG entry: a refused command, key, channel or AUTH.
type LogEntry struct {
	ID         int64 // in the order entries were created
	Count      int64
	Reason     Denial
	Context    string // "toplevel", "multi", "lua"
	Object     string // the command, key or channel refused; "AUTH" for auth
	Username   string
	CreatedMs  int64 // when first logged
	UpdatedMs  int64 // when last counted
	ClientInfo string
}

// Log is the ACL LOG of one node: the most recent denials, newest first.
// It is safe for concurrent use.
type Log struct {
	mu      sync.Mutex
	entries []*LogEntry
	max     int
	next    int64 // the next entry's ID
}

// NewLog returns a log that keeps max entries (DefaultLogLen if max <= 0).
func NewLog(max int) *Log {
	if max <= 0 {
		max = DefaultLogLen
	}
	return &Log{max: max}
}

// Add records e at nowMs: as a new entry, or by counting it in a recent
// one with the same reason, context, object and user (of the ten newest).
func (l *Log) Add(e LogEntry, nowMs int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, old := range l.entries[:min(10, len(l.entries))] {
		if old.Reason == e.Reason && old.Context == e.Context && old.Object == e.Object &&
			old.Username == e.Username && abs(nowMs-old.UpdatedMs) <= groupWithinMs {
			old.Count++
			old.UpdatedMs = nowMs
			old.ClientInfo = e.ClientInfo
			copy(l.entries[1:i+1], l.entries[:i])
			l.entries[0] = old
			return
		}
	}
	e.ID, e.Count, e.CreatedMs, e.UpdatedMs = l.next, 1, nowMs, nowMs
	l.next++
	l.entries = append([]*LogEntry{&e}, l.entries...)
	if len(l.entries) > l.max {
		l.entries = l.entries[:l.max]
	}
}

// Entries returns copies of the newest n entries.
func (l *Log) Entries(n int) []LogEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	n = max(0, min(n, len(l.entries)))
	out := make([]LogEntry, n)
	for i := range out {
		out[i] = *l.entries[i]
	}
	return out
}

// Reset empties the log.
func (l *Log) Reset() {
	l.mu.Lock()
	l.entries = nil
	l.mu.Unlock()
}

// Max returns how many entries the log keeps.
func (l *Log) Max() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.max
}

// SetMax changes how many entries the log keeps.
func (l *Log) SetMax(max int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.max = max
	if len(l.entries) > max {
		l.entries = l.entries[:max]
	}
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}
