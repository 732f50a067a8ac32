// Package kv implements Redis command semantics (strings, keys, TTL) on one
// shard's data. It is deterministic: time and random choices arrive in Env,
// fixed by the proposer of a write, so every replica applying the same
// command to the same state produces the same state and reply. It imports
// no network, clock or goroutines.
//
// The server finds a command's Spec with Lookup (flags, arity, key
// positions), routes it, and runs it on the shard: Write commands with
// Apply on the batch of a raft entry, ReadOnly ones with Read on a
// consistent view. Both answer every command error (arity, syntax,
// WRONGTYPE, unknown command...) with an error reply, as Redis 7 words it;
// their error result is only for failures of the storage underneath.
//
// Each key is one record at keys.Data(key) plus, if it has a TTL, one entry
// at keys.Expiry(key, expireAt); record.go documents the format. A key whose
// expiry time is at or before Env.NowMs is absent to every command. Writes
// that meet such a key delete it; SHOAL.SWEEP deletes the rest through the
// expiry index.
package kv

// Reader is a consistent view of one shard's data in the Pebble key layout of
// package keys.
type Reader interface {
	// Get returns a copy of the value of key, or ok=false if absent.
	Get(key []byte) (value []byte, ok bool, err error)
	// Iterate calls fn for every key in [lo, hi) in ascending order until fn
	// returns false. k and v are valid only during the call.
	Iterate(lo, hi []byte, fn func(k, v []byte) bool) error
}

// spanIterator is implemented by readers that visit many disjoint spans
// with one iterator (the engine's); see iterateSpans.
type spanIterator interface {
	IterateSpans(n int, span func(i int) (lo, hi []byte), fn func(k, v []byte) bool) error
}

// iterateSpans calls fn for each key of n disjoint ascending spans until fn
// returns false, with one iterator when r can.
func iterateSpans(r Reader, n int, span func(i int) (lo, hi []byte), fn func(k, v []byte) bool) error {
	if si, ok := r.(spanIterator); ok {
		return si.IterateSpans(n, span, fn)
	}
	stop := false
	for i := 0; i < n && !stop; i++ {
		lo, hi := span(i)
		err := r.Iterate(lo, hi, func(k, v []byte) bool {
			stop = !fn(k, v)
			return !stop
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// firstInSpanner is implemented by readers that find the first key of
// many disjoint spans with one iterator (the engine).
type firstInSpanner interface {
	FirstInSpans(n int, span func(i int) (lo, hi []byte), fn func(k []byte) bool) error
}

// firstInSpans calls fn with the first key of each of n disjoint ascending
// spans that has one, until fn returns false.
func firstInSpans(r Reader, n int, span func(i int) (lo, hi []byte), fn func(k []byte) bool) error {
	if f, ok := r.(firstInSpanner); ok {
		return f.FirstInSpans(n, span, fn)
	}
	for i := range n {
		lo, hi := span(i)
		more := true
		err := r.Iterate(lo, hi, func(k, _ []byte) bool {
			more = fn(k)
			return false
		})
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// Writer is a batch of writes to one shard. Reads through a Writer observe
// the batch's own earlier writes.
type Writer interface {
	Reader
	Set(key, value []byte) error
	Delete(key []byte) error
	DeleteRange(lo, hi []byte) error
}

// Env is everything a command may depend on besides the shard's data.
type Env struct {
	// NowMs is the time in Unix milliseconds. For writes it is chosen by the
	// proposer and carried in the log entry; for reads it is the serving
	// node's clock.
	NowMs int64
	// Rand seeds any random choice the command makes.
	Rand uint64
	// FirstSlot and LastSlot bound the slots of the shard the command runs
	// on. Per-shard commands (KEYS, DBSIZE, FLUSHALL, SCAN...) touch only
	// these slots.
	FirstSlot, LastSlot int
	// OwnSlots refuses a command with a key outside [FirstSlot, LastSlot]
	// (ErrNotOwned's reply): a command routed to the wrong shard, by a
	// stale slot map or a bug, must not write into another shard's span,
	// which on a node holding both would change that shard's data behind
	// its log.
	OwnSlots bool
	// MaxValueLen is the longest string a write may build (APPEND,
	// SETRANGE), proto-max-bulk-len; 0 means Redis's default, 512 MiB.
	// For writes the proposer fixes it in the log entry.
	MaxValueLen int64
	// MaxReplyLen bounds the reply a read may build, in bytes of its
	// values and keys: a longer one is refused with ErrReplyTooLarge's
	// error reply instead of being built. 0 means no bound.
	MaxReplyLen int64
	// Effects, if not nil, is told what a write did, for the caller's
	// bookkeeping. It never changes what a command does.
	Effects *Effects
}

// Effects is what a write command did, beyond its reply.
type Effects struct {
	// ExpiryAdded is set when the command added an entry to the expiry
	// index: a key now expires, or expires at a new time.
	ExpiryAdded bool
}
