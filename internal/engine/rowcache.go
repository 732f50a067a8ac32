package engine

import (
	"bytes"
	"hash/maphash"
	"sync"
)

// rowCache keeps recent point reads and writes of keys in one span, so a
// read of a hot key costs a map lookup instead of a search of every
// memtable and level. It is write-through: a batch that writes cached
// keys updates the cache when it commits.
//
// The cache never returns a value older than the database's. Three rules
// give that, per cache shard:
//
//   - A write invalidates its keys and bumps the shard's generation before
//     its batch commits, and counts itself in progress until after.
//   - A reader that missed may insert what it read from the database only
//     if no write was in progress when it looked and the generation has
//     not moved since: no write overlapped its read, so what it read is
//     still current.
//   - A write that found no other in progress and saw the generation stay
//     put until it ended had the shard to itself: it installs its values
//     when it ends. Otherwise its keys stay out until a reader brings them
//     back, since the order in which overlapping writes committed is not
//     known.
type rowCache struct {
	lo, hi []byte // the span of cached keys, [lo, hi)
	pin    func(key []byte) bool
	seed   maphash.Seed
	limit  int // bytes per shard
	shards [rowCacheShards]rowCacheShard
}

const (
	rowCacheShards = 64
	// rowOverhead approximates the memory of one entry besides its key and
	// value: the map slot, the string and slice headers, the allocator's
	// rounding. Measured: 200 000 rows of 14-byte keys and 71-byte values
	// take 169 bytes each on the heap.
	rowOverhead = 84
)

type rowCacheShard struct {
	mu      sync.Mutex
	rows    map[string]row
	bytes   int
	pinned  int    // bytes of pinned rows, at most half of the limit
	gen     uint64 // bumped when a write begins
	writers int    // writes in progress
	hits    uint64
	misses  uint64
}

// row is a cached key: its value, or that it is absent. A pinned row is
// never evicted to make room, as long as pinned rows take at most half of
// their shard's limit; beyond that, rows asked to be pinned are not.
type row struct {
	value  []byte
	found  bool
	pinned bool
}

func newRowCache(size int64, lo, hi []byte, pin func(key []byte) bool) *rowCache {
	if pin == nil {
		pin = func([]byte) bool { return false }
	}
	c := &rowCache{lo: lo, hi: hi, pin: pin, seed: maphash.MakeSeed(), limit: int(size / rowCacheShards)}
	for i := range c.shards {
		c.shards[i].rows = make(map[string]row)
	}
	return c
}

// covers reports whether key is in the cached span.
func (c *rowCache) covers(key []byte) bool {
	return bytes.Compare(key, c.lo) >= 0 && bytes.Compare(key, c.hi) < 0
}

// overlaps reports whether [lo, hi) and the cached span intersect.
func (c *rowCache) overlaps(lo, hi []byte) bool {
	return bytes.Compare(lo, c.hi) < 0 && bytes.Compare(hi, c.lo) > 0
}

func (c *rowCache) shard(key []byte) *rowCacheShard {
	return &c.shards[c.shardIndex(key)]
}

func (c *rowCache) shardIndex(key []byte) int {
	return int(maphash.Bytes(c.seed, key) % rowCacheShards)
}

// get returns a copy of key's value, from the cache or else from read,
// which reads the database.
func (c *rowCache) get(key []byte, read func() ([]byte, bool, error)) ([]byte, bool, error) {
	sh := c.shard(key)
	sh.mu.Lock()
	r, hit := sh.rows[string(key)]
	gen, quiet := sh.gen, sh.writers == 0
	if hit {
		sh.hits++
	} else {
		sh.misses++
	}
	sh.mu.Unlock()
	if hit {
		return bytes.Clone(r.value), r.found, nil
	}
	v, found, err := read()
	if err != nil || !quiet {
		return v, found, err
	}
	sh.mu.Lock()
	if sh.gen == gen {
		sh.put(string(key), row{value: bytes.Clone(v), found: found, pinned: c.pin(key)}, c.limit)
	}
	sh.mu.Unlock()
	return v, found, nil
}

// RowCacheStats is what the row cache has served and holds.
type RowCacheStats struct {
	Hits, Misses uint64 // point reads of cached keys answered from the cache, or not
	Bytes        int64  // approximate size of the cached rows
}

func (c *rowCache) stats() RowCacheStats {
	var st RowCacheStats
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		st.Hits += sh.hits
		st.Misses += sh.misses
		st.Bytes += int64(sh.bytes)
		sh.mu.Unlock()
	}
	return st
}

// put installs r as key's row, evicting others while the shard is over
// limit. Go's map iteration starts at a random place, which makes the
// eviction random. A row bigger than a quarter of the shard is not kept:
// it would push out everything else.
func (sh *rowCacheShard) put(key string, r row, limit int) {
	sh.remove(key)
	cost := len(key) + len(r.value) + rowOverhead
	if cost > limit/4 {
		return
	}
	if r.pinned && sh.pinned+cost > limit/2 {
		r.pinned = false // a cache too small for all the pins: evict as usual
	}
	sh.rows[key] = r
	sh.bytes += cost
	if r.pinned {
		sh.pinned += cost
	}
	for k, old := range sh.rows {
		if sh.bytes <= limit {
			break
		}
		if k != key && !old.pinned {
			delete(sh.rows, k)
			sh.bytes -= len(k) + len(old.value) + rowOverhead
		}
	}
}

func (sh *rowCacheShard) remove(key string) {
	if old, ok := sh.rows[key]; ok {
		delete(sh.rows, key)
		cost := len(key) + len(old.value) + rowOverhead
		sh.bytes -= cost
		if old.pinned {
			sh.pinned -= cost
		}
	}
}

// rowWrites records what one batch writes to cached keys. A batch that
// deletes a range (a snapshot replacing a shard's data, a replica being
// removed) installs nothing when it ends: it records only which keys it
// wrote, not their values, and leaves them to readers.
type rowWrites struct {
	rows   map[string]row // the last write of each key
	ranges [][2][]byte    // deleted spans that overlap the cached span
}

func (w *rowWrites) deleteRange(lo, hi []byte) {
	w.ranges = append(w.ranges, [2][]byte{bytes.Clone(lo), bytes.Clone(hi)})
}

func (w *rowWrites) empty() bool { return len(w.rows) == 0 && len(w.ranges) == 0 }

// written reports whether the batch wrote key, by itself or in a deleted
// range.
func (w *rowWrites) written(key []byte) bool {
	if _, ok := w.rows[string(key)]; ok {
		return true
	}
	for _, r := range w.ranges {
		if bytes.Compare(key, r[0]) >= 0 && bytes.Compare(key, r[1]) < 0 {
			return true
		}
	}
	return false
}

func (w *rowWrites) set(key, value []byte, found, pinned bool) {
	if w.rows == nil {
		w.rows = make(map[string]row)
	}
	if len(w.ranges) > 0 {
		w.rows[string(key)] = row{} // never installed: do not copy a snapshot's values
		return
	}
	w.rows[string(key)] = row{value: bytes.Clone(value), found: found, pinned: pinned}
}

// writeToken is what begin hands to end: a touch for each shard the
// write touches.
type writeToken []touch

type touch struct {
	sh    *rowCacheShard
	gen   uint64   // the shard's generation after begin bumped it
	alone bool     // no other write was in progress then
	keys  []string // the keys of w in the shard
}

// begin invalidates what w writes and marks the write in progress. Call it
// before the batch commits, and end after, whatever the outcome.
func (c *rowCache) begin(w *rowWrites) writeToken {
	n := min(len(w.rows), rowCacheShards)
	if len(w.ranges) > 0 {
		n = rowCacheShards
	}
	tok := make(writeToken, 0, n)
	var at [rowCacheShards]int // 1 + the index in tok of each shard's touch
	enter := func(i int) *touch {
		if at[i] == 0 {
			sh := &c.shards[i]
			sh.mu.Lock()
			sh.gen++
			tok = append(tok, touch{sh: sh, gen: sh.gen, alone: sh.writers == 0})
			sh.writers++
			sh.mu.Unlock()
			at[i] = len(tok)
		}
		return &tok[at[i]-1] // valid until the next enter
	}
	if len(w.ranges) > 0 {
		for i := range c.shards {
			enter(i)
			sh := &c.shards[i]
			sh.mu.Lock()
			for k := range sh.rows {
				for _, r := range w.ranges {
					if k >= string(r[0]) && k < string(r[1]) {
						sh.remove(k)
						break
					}
				}
			}
			sh.mu.Unlock()
		}
	}
	for k := range w.rows {
		i := c.shardIndex([]byte(k))
		t := enter(i)
		t.keys = append(t.keys, k)
		sh := &c.shards[i]
		sh.mu.Lock()
		sh.remove(k)
		sh.mu.Unlock()
	}
	return tok
}

// end ends the write begun with tok. If the batch committed, the rows of
// each shard no other write touched while this one was in progress take
// the batch's values.
func (c *rowCache) end(w *rowWrites, tok writeToken, committed bool) {
	install := committed && len(w.ranges) == 0
	for i := range tok {
		t := &tok[i]
		sh := t.sh
		sh.mu.Lock()
		if install && t.alone && sh.gen == t.gen {
			for _, k := range t.keys {
				sh.put(k, w.rows[k], c.limit)
			}
		}
		sh.writers--
		sh.mu.Unlock()
	}
}
