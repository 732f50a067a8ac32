package server

import (
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/shoaldb/shoal/internal/kv"
	"github.com/shoaldb/shoal/internal/resp"
)

// Defaults of the limits that keep a node up whatever its clients send.
// Each is a CONFIG parameter with Redis's name (Config documents them).
const (
	// DefaultMaxBulkLen is proto-max-bulk-len, the longest string a client
	// may send and a write may build. Redis allows 512 MiB; every shoal
	// write is a raft entry that each replica writes to its log and
	// memtable, and that travels between nodes in one message, so shoal
	// allows less: 8 MiB, as TiKV's raft-entry-max-size (docs/robustness.md
	// has what larger values cost), and MaxMaxBulkLen at most.
	DefaultMaxBulkLen = 8 << 20
	// MaxMaxBulkLen is the most proto-max-bulk-len may be set to: a value
	// and its key must fit in one raft entry (store.DefaultMaxEntryBytes).
	MaxMaxBulkLen = 32 << 20
	// DefaultQueryBufLimit is client-query-buffer-limit: a client whose
	// one command is longer is disconnected. Redis: 1 GiB.
	DefaultQueryBufLimit = 64 << 20
	// DefaultOutputHardLimit, DefaultOutputSoftLimit and
	// DefaultOutputSoftSeconds are client-output-buffer-limit's normal
	// class (Redis: no limit). A command whose reply would pass the hard
	// limit is refused with an error before its reply is built; a client
	// that leaves more than the soft limit unread for the soft seconds is
	// disconnected.
	DefaultOutputHardLimit   = 64 << 20
	DefaultOutputSoftLimit   = 16 << 20
	DefaultOutputSoftSeconds = 60
	// maxReplyLen bounds the reply of one command even with no hard limit:
	// a reply may travel between nodes in one message of the transport
	// (128 MiB at most).
	maxReplyLen = 96 << 20
	// DefaultWriteTimeout closes a client that reads none of its replies
	// for this long.
	DefaultWriteTimeout = 60 * time.Second
	// DefaultClientMemPercent is maxmemory-clients: the buffers of all
	// clients together, beyond a small read buffer each, may take this
	// percentage of maxmemory; a client whose buffers would pass it is
	// disconnected.
	DefaultClientMemPercent = 20
)

// limits are the run-time values of the limit parameters, changed by
// CONFIG SET.
type limits struct {
	maxBulkLen  atomic.Int64
	queryBuf    atomic.Int64
	outHard     atomic.Int64
	outSoft     atomic.Int64
	outSoftSecs atomic.Int64
	// clientMem is maxmemory-clients: bytes if positive, a percentage of
	// maxmemory if negative, no limit if 0.
	clientMem atomic.Int64
	// clientMemUsed is the bytes of client buffers counted against
	// clientMem: each connection's read buffer beyond minReadBuf and its
	// pending output.
	clientMemUsed atomic.Int64
}

// maxReply is the largest reply a command may build.
func (s *Server) maxReply() int64 {
	h := s.lim.outHard.Load()
	if h <= 0 || h > maxReplyLen {
		return maxReplyLen
	}
	return h
}

// MaxValueLen returns proto-max-bulk-len: the longest string a client may
// send and a write may build.
func (s *Server) MaxValueLen() int64 { return s.lim.maxBulkLen.Load() }

// maxMemory returns maxmemory in bytes, 0 for none.
func (s *Server) maxMemory() int64 {
	if s.cfg.Memory == nil {
		return 0
	}
	return s.cfg.Memory.Limit()
}

// clientMemLimit returns the bytes all clients' buffers may take, 0 for no
// limit.
func (s *Server) clientMemLimit() int64 {
	v := s.lim.clientMem.Load()
	if v >= 0 {
		return v
	}
	if s.cfg.Memory == nil {
		return 0
	}
	return s.cfg.Memory.Limit() * -v / 100
}

// reserve accounts a change of delta bytes in a client's buffers. Growth
// that would pass maxmemory-clients is refused (and not accounted).
func (s *Server) reserve(delta int64) bool {
	used := s.lim.clientMemUsed.Add(delta)
	if delta <= 0 {
		return true
	}
	if limit := s.clientMemLimit(); limit > 0 && used > limit {
		s.lim.clientMemUsed.Add(-delta)
		return false
	}
	return true
}

// errClientMem ends a client whose buffers would pass maxmemory-clients.
var errClientMem = errors.New("server: client buffers would pass maxmemory-clients")

// errOOM answers a write that could grow memory while the node uses more
// than maxmemory, worded as Redis words it.
var errOOM = resp.Err("OOM command not allowed when used memory > 'maxmemory'.")

// errDiskFull answers a write that could add data while the node's disk
// is nearly full.
var errDiskFull = resp.Err("MISCONF Disk full: this node refuses writes that add data until space is freed; reads and deletes still work")

// diskFull reports whether spec may not run now because the node's disk
// is nearly full.
func (s *Server) diskFull(spec *kv.Spec) bool {
	return spec != nil && spec.Flags&kv.DenyOOM != 0 && s.cfg.DiskFull != nil && s.cfg.DiskFull()
}

// overMemory reports whether spec may not run now because the node is
// over maxmemory.
func (s *Server) overMemory(spec *kv.Spec) bool {
	return spec != nil && spec.Flags&kv.DenyOOM != 0 && s.cfg.Memory != nil && s.cfg.Memory.Over()
}

// parseClientMem parses maxmemory-clients: a memory value or a
// percentage of maxmemory ("20%"), normalized.
func parseClientMem(v string) (string, error) {
	if p, ok := strings.CutSuffix(v, "%"); ok {
		n, err := strconv.ParseInt(p, 10, 64)
		if err != nil || n < 1 || n > 100 {
			return "", errors.New("argument must be a memory or percent value")
		}
		return itoa(n) + "%", nil
	}
	return parseMemory(v)
}

// clientMemValue encodes maxmemory-clients as limits.clientMem holds it.
func clientMemValue(v string) int64 {
	if p, ok := strings.CutSuffix(v, "%"); ok {
		n, _ := strconv.ParseInt(p, 10, 64)
		return -n
	}
	n, _ := strconv.ParseInt(v, 10, 64)
	return n
}

func clientMemString(n int64) string {
	if n < 0 {
		return itoa(-n) + "%"
	}
	return itoa(n)
}

// parseOutputLimit parses client-output-buffer-limit: groups of "class
// hard soft seconds". Only the normal class is enforced; the replica and
// pubsub classes are accepted for Redis tools' sake. It returns the
// normal class's values, or ok=false if the value has none.
func parseOutputLimit(v string) (hard, soft, secs int64, ok bool, err error) {
	f := strings.Fields(v)
	if len(f)%4 != 0 {
		return 0, 0, 0, false, errors.New("Wrong number of arguments in buffer limit configuration.")
	}
	for i := 0; i < len(f); i += 4 {
		class := strings.ToLower(f[i])
		switch class {
		case "normal", "replica", "slave", "pubsub":
		default:
			return 0, 0, 0, false, errors.New("Invalid client class specified in buffer limit configuration.")
		}
		h, herr := ParseMemory(f[i+1])
		s, serr := ParseMemory(f[i+2])
		sec, secErr := strconv.ParseInt(f[i+3], 10, 64)
		if herr != nil || serr != nil || secErr != nil || sec < 0 {
			return 0, 0, 0, false, errors.New("Error in hard, soft or soft_seconds setting in buffer limit configuration.")
		}
		if class == "normal" {
			hard, soft, secs, ok = h, s, sec, true
		}
	}
	return hard, soft, secs, ok, nil
}

// outputLimitValue formats client-output-buffer-limit as CONFIG GET
// reports it.
func (s *Server) outputLimitValue() string {
	return "normal " + itoa(s.lim.outHard.Load()) + " " + itoa(s.lim.outSoft.Load()) + " " +
		itoa(s.lim.outSoftSecs.Load()) + " replica 268435456 67108864 60 pubsub 33554432 8388608 60"
}
