// Package memlimit watches a node's memory use against its limit
// (Redis's maxmemory), so that the node can refuse writes that would grow
// it instead of being killed by the kernel.
//
// Use is the process's resident set size, sampled by Sample (which the
// node calls periodically): everything the
// node holds (the Go heap, Pebble's caches and memtables, goroutine stacks)
// counts, as it does for the kernel's out-of-memory killer. With
// SetGoLimit, the limit also becomes Go's soft memory limit (unless
// GOMEMLIMIT is set), so the garbage collector works harder before the
// node reaches it.
package memlimit

import (
	"bufio"
	"bytes"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"sync/atomic"
)

// DefaultFraction of the machine's (or the cgroup's) memory is the
// default limit: the rest is left to the kernel's page cache, which
// Pebble reads through, and to other processes.
const DefaultFraction = 0.75

// Monitor holds the limit and the latest sample of use. Its methods are
// safe for concurrent use.
type Monitor struct {
	limit atomic.Int64 // bytes; 0 means no limit
	used  atomic.Int64 // bytes, at the last Sample
	// goLimit says whether the limit is passed on to Go's runtime.
	goLimit atomic.Bool
}

// New returns a Monitor with limit bytes (0: none), holding a first
// sample.
func New(limit int64) *Monitor {
	m := &Monitor{}
	m.SetLimit(limit)
	m.Sample()
	return m
}

// SetGoLimit makes the limit, now and when it changes, Go's soft memory
// limit (debug.SetMemoryLimit) too, unless GOMEMLIMIT is set. The Go limit
// is the process's: only the owner of the process (a node's main) sets
// it.
func (m *Monitor) SetGoLimit() {
	if os.Getenv("GOMEMLIMIT") == "" {
		m.goLimit.Store(true)
		m.SetLimit(m.Limit())
	}
}

// Limit returns the limit in bytes, 0 if none.
func (m *Monitor) Limit() int64 { return m.limit.Load() }

// SetLimit changes the limit; 0 removes it.
func (m *Monitor) SetLimit(n int64) {
	m.limit.Store(max(n, 0))
	if m.goLimit.Load() {
		if n <= 0 {
			n = math.MaxInt64
		}
		debug.SetMemoryLimit(n)
	}
}

// Used returns the memory in use at the last sample, in bytes.
func (m *Monitor) Used() int64 { return m.used.Load() }

// Over reports whether the last sample passed the limit.
func (m *Monitor) Over() bool {
	l := m.limit.Load()
	return l > 0 && m.used.Load() > l
}

// Sample measures the memory in use now.
func (m *Monitor) Sample() { m.used.Store(used()) }

// ResidentBytes returns the resident set size of process pid (0: this
// one) in bytes, 0 where it cannot be read.
func ResidentBytes(pid int) int64 {
	path := "/proc/self/statm"
	if pid != 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/statm"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}

// used is the resident set size, or where /proc is missing the memory
// the Go runtime holds from the system.
func used() int64 {
	if n := ResidentBytes(0); n > 0 {
		return n
	}
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64() - s[1].Value.Uint64())
}

// DefaultLimit is DefaultFraction of the memory available to this
// process: the machine's, or its cgroup's limit if lower. It is 0 (no
// limit) where neither can be read.
func DefaultLimit() int64 {
	total := Available()
	if total <= 0 {
		return 0
	}
	return int64(float64(total) * DefaultFraction)
}

// Available returns the memory available to this process in bytes: the
// lower of the machine's total and the cgroup's limit; 0 if unknown.
func Available() int64 {
	total := meminfoTotal()
	if cg := cgroupLimit(); cg > 0 && (total == 0 || cg < total) {
		total = cg
	}
	return total
}

// meminfoTotal reads MemTotal from /proc/meminfo.
func meminfoTotal() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	return parseMeminfo(b)
}

// parseMeminfo returns MemTotal in bytes from /proc/meminfo's text.
func parseMeminfo(b []byte) int64 {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if kb, ok := bytes.CutPrefix(sc.Bytes(), []byte("MemTotal:")); ok {
			kb = bytes.TrimSuffix(bytes.TrimSpace(kb), []byte(" kB"))
			n, err := strconv.ParseInt(string(bytes.TrimSpace(kb)), 10, 64)
			if err == nil {
				return n << 10
			}
		}
	}
	return 0
}

// cgroupLimit reads the memory limit of this process's cgroup (v2, then
// v1); 0 if there is none.
func cgroupLimit() int64 {
	for _, p := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		if b, err := os.ReadFile(p); err == nil {
			return parseCgroupLimit(b)
		}
	}
	return 0
}

// parseCgroupLimit parses memory.max (v2) or memory.limit_in_bytes (v1);
// 0 for no limit.
func parseCgroupLimit(b []byte) int64 {
	n, err := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64)
	if err != nil || n <= 0 || n >= 1<<60 { // "max", or v1's "unlimited"
		return 0
	}
	return n
}
