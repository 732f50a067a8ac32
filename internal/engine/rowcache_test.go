package engine

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// openCached opens an engine on the memory filesystem whose row cache of
// size bytes covers every key below 0xff.
func openCached(t testing.TB, size int64) *Engine {
	t.Helper()
	e, err := Open("db", Options{FS: vfs.NewMem(), RowCacheSpan: [2][]byte{{}, {0xff}}, RowCacheSize: size})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func set(t testing.TB, e *Engine, kv ...string) {
	t.Helper()
	b := e.NewWriteBatch()
	for i := 0; i < len(kv); i += 2 {
		b.Set([]byte(kv[i]), []byte(kv[i+1]))
	}
	if err := b.Commit(false); err != nil {
		t.Fatal(err)
	}
}

// cached returns key's row in the cache, if any.
func cached(e *Engine, key string) (row, bool) {
	sh := e.cache.shard([]byte(key))
	sh.mu.Lock()
	defer sh.mu.Unlock()
	r, ok := sh.rows[key]
	return r, ok
}

func wantGet(t *testing.T, e *Engine, key, want string, wantFound bool) {
	t.Helper()
	v, ok, err := e.Get([]byte(key))
	if err != nil || ok != wantFound || string(v) != want {
		t.Fatalf("Get(%s) = %q, %v, %v; want %q, %v", key, v, ok, err, want, wantFound)
	}
}

func TestRowCacheFollowsWrites(t *testing.T) {
	e := openCached(t, 1<<20)
	wantGet(t, e, "a", "", false) // caches that a is absent
	if r, ok := cached(e, "a"); !ok || r.found {
		t.Fatalf("a miss is not cached as absent: %+v, %v", r, ok)
	}
	set(t, e, "a", "1")
	if r, ok := cached(e, "a"); !ok || string(r.value) != "1" {
		t.Fatalf("a committed write is not installed: %+v, %v", r, ok)
	}
	wantGet(t, e, "a", "1", true)

	b := e.NewWriteBatch()
	b.Delete([]byte("a"))
	b.Commit(false)
	wantGet(t, e, "a", "", false)

	set(t, e, "a", "2", "b", "3", "c", "4")
	b = e.NewWriteBatch()
	b.DeleteRange([]byte("a"), []byte("c"))
	b.Commit(false)
	wantGet(t, e, "a", "", false)
	wantGet(t, e, "b", "", false)
	wantGet(t, e, "c", "4", true)

	// A write before a range deletion in the same batch is deleted too.
	b = e.NewWriteBatch()
	b.Set([]byte("d"), []byte("5"))
	b.DeleteRange([]byte("d"), []byte("e"))
	b.Set([]byte("f"), []byte("6"))
	b.Commit(false)
	wantGet(t, e, "d", "", false)
	wantGet(t, e, "f", "6", true)

	// A discarded batch changes nothing.
	b = e.NewWriteBatch()
	b.Set([]byte("c"), []byte("lost"))
	b.Close()
	wantGet(t, e, "c", "4", true)

	// The returned value is a copy.
	v, _, _ := e.Get([]byte("c"))
	v[0] = 'x'
	wantGet(t, e, "c", "4", true)
}

func TestRowCacheLeavesOtherKeysToPebble(t *testing.T) {
	e, err := Open("db", Options{FS: vfs.NewMem(), RowCacheSpan: [2][]byte{[]byte("m"), []byte("n")}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	set(t, e, "a", "1", "m1", "2", "z", "3")
	wantGet(t, e, "a", "1", true)
	wantGet(t, e, "m1", "2", true)
	wantGet(t, e, "z", "3", true)
	for _, k := range []string{"a", "z"} {
		if _, ok := cached(e, k); ok {
			t.Fatalf("%s is outside the cached span but was cached", k)
		}
	}
	if _, ok := cached(e, "m1"); !ok {
		t.Fatal("m1 is inside the cached span but was not cached")
	}
}

func TestIndexedBatchReadsThroughRowCache(t *testing.T) {
	e := openCached(t, 1<<20)
	set(t, e, "a", "1", "b", "2")
	b := e.NewBatch()
	defer b.Close()
	b.Set([]byte("a"), []byte("new"))
	b.DeleteRange([]byte("c"), []byte("e"))
	check := func(key, want string, wantFound bool) {
		t.Helper()
		v, ok, err := b.Get([]byte(key))
		if err != nil || ok != wantFound || string(v) != want {
			t.Fatalf("batch Get(%s) = %q, %v, %v; want %q, %v", key, v, ok, err, want, wantFound)
		}
	}
	check("a", "new", true) // its own write
	check("b", "2", true)   // the database's
	set(t, e, "b", "3", "d", "4")
	check("b", "3", true) // the database as it is now, like Pebble's indexed batch
	check("d", "", false) // deleted by the batch's range
	wantGet(t, e, "a", "1", true)
}

func TestRowCacheStaysWithinItsSize(t *testing.T) {
	const size = 64 << 10
	e := openCached(t, size)
	value := bytes.Repeat([]byte("v"), 100)
	for i := range 5000 {
		b := e.NewWriteBatch()
		b.Set(fmt.Appendf(nil, "key:%d", i), value)
		b.Commit(false)
	}
	for i := range 5000 {
		k := fmt.Sprintf("key:%d", i)
		wantGet(t, e, k, string(value), true)
		if _, ok := cached(e, k); !ok {
			t.Fatalf("%s is not cached right after it was read", k)
		}
	}
	checkRowCache(t, e.cache)
	// A row bigger than a quarter of its shard is not kept.
	big := bytes.Repeat([]byte("b"), e.cache.limit)
	set(t, e, "big", string(big))
	wantGet(t, e, "big", string(big), true)
	if _, ok := cached(e, "big"); ok {
		t.Fatal("a row bigger than its shard's limit was cached")
	}
	total, rows := 0, 0
	for i := range e.cache.shards {
		sh := &e.cache.shards[i]
		total += sh.bytes
		rows += len(sh.rows)
		if sh.bytes > e.cache.limit {
			t.Fatalf("shard %d holds %d bytes, over its limit of %d", i, sh.bytes, e.cache.limit)
		}
	}
	if total > size || rows == 0 {
		t.Fatalf("the cache holds %d rows in %d bytes; want some, within %d", rows, total, size)
	}
}

// Pinned rows, whether cached by a write or by a read, stay however many
// other rows come after them.
func TestRowCacheKeepsPinnedRows(t *testing.T) {
	e, err := Open("db", Options{FS: vfs.NewMem(), RowCacheSpan: [2][]byte{{}, {0xff}}, RowCacheSize: 256 << 10,
		RowCachePin: func(k []byte) bool { return bytes.HasPrefix(k, []byte("pin:")) }})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for i := range 100 {
		set(t, e, fmt.Sprintf("pin:w%d", i), "w")
	}
	for i := range 100 {
		b := e.NewWriteBatch()
		b.Set(fmt.Appendf(nil, "pin:r%d", i), []byte("r"))
		b.Commit(false)
		sh := e.cache.shard(fmt.Appendf(nil, "pin:r%d", i))
		sh.mu.Lock()
		sh.remove(fmt.Sprintf("pin:r%d", i)) // so that a read brings it back
		sh.mu.Unlock()
		wantGet(t, e, fmt.Sprintf("pin:r%d", i), "r", true)
	}
	value := bytes.Repeat([]byte("v"), 100)
	for i := range 5000 {
		set(t, e, fmt.Sprintf("key:%d", i), string(value))
	}
	for i := range 100 {
		for _, k := range []string{fmt.Sprintf("pin:w%d", i), fmt.Sprintf("pin:r%d", i)} {
			if _, ok := cached(e, k); !ok {
				t.Fatalf("pinned row %s was evicted", k)
			}
		}
	}
	if _, ok := cached(e, "key:0"); ok {
		t.Fatal("the oldest unpinned row is still cached after 5000 more: nothing was evicted")
	}
	checkRowCache(t, e.cache)

	// More pins than half the cache: the cache keeps within its size and
	// pins no more than half of it.
	for i := range 5000 {
		set(t, e, fmt.Sprintf("pin:many%d", i), "p")
	}
	checkRowCache(t, e.cache)
}

// TestRowCacheNeverGoesBack races writers and readers on a few keys. Each
// writer commits increasing values to a key it alone writes, so a read
// that starts after a commit, or after another read returned a value, must
// see at least that value. Two more writers race on shared keys; once all
// stop, the cache must agree with Pebble on every key.
func TestRowCacheNeverGoesBack(t *testing.T) {
	e := openCached(t, 1<<20)
	const (
		keys    = 4
		writes  = 3000
		readers = 4
	)
	var committed, seen [keys]atomic.Uint64
	var stop atomic.Bool
	var wg sync.WaitGroup
	value := func(n uint64) []byte { return fmt.Appendf(nil, "%020d", n) }
	for k := range keys {
		wg.Go(func() {
			key := fmt.Appendf(nil, "own:%d", k)
			for n := uint64(1); n <= writes; n++ {
				b := e.NewWriteBatch()
				b.Set(key, value(n))
				if n%7 == 0 {
					b.Set(fmt.Appendf(nil, "own:%d:side", k), value(n)) // a second key, maybe another shard
				}
				if err := b.Commit(false); err != nil {
					t.Error(err)
					return
				}
				committed[k].Store(n)
			}
		})
	}
	for w := range 2 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for n := range writes {
				b := e.NewBatch()
				key := fmt.Appendf(nil, "shared:%d", r.IntN(3))
				switch r.IntN(10) {
				case 0:
					b.Delete(key)
				case 1:
					b.DeleteRange([]byte("shared:1"), []byte("shared:2"))
				default:
					b.Get(key) // read through the cache, as the apply loop does
					b.Set(key, fmt.Appendf(nil, "w%d-%d", w, n))
				}
				if err := b.Commit(false); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	var readersWG sync.WaitGroup
	for i := range readers {
		readersWG.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), 2))
			for !stop.Load() {
				k := r.IntN(keys)
				floor := max(committed[k].Load(), seen[k].Load())
				v, ok, err := e.Get(fmt.Appendf(nil, "own:%d", k))
				if err != nil {
					t.Error(err)
					return
				}
				var got uint64
				if ok {
					if got, err = strconv.ParseUint(string(v), 10, 64); err != nil {
						t.Error(err)
						return
					}
				}
				if got < floor {
					t.Errorf("own:%d read %d after %d was committed or seen", k, got, floor)
					return
				}
				for {
					s := seen[k].Load()
					if got <= s || seen[k].CompareAndSwap(s, got) {
						break
					}
				}
				e.Get(fmt.Appendf(nil, "shared:%d", r.IntN(3)))
			}
		})
	}
	wg.Wait()
	stop.Store(true)
	readersWG.Wait()
	checkRowCache(t, e.cache)
	for _, k := range []string{"own:0", "own:1", "own:2", "own:3", "own:0:side", "shared:0", "shared:1", "shared:2"} {
		want, wantOK, _ := get(e.db, []byte(k))
		if r, ok := cached(e, k); ok && (r.found != wantOK || !bytes.Equal(r.value, want)) {
			t.Errorf("cache holds %s = %q (found %v), Pebble %q (found %v)", k, r.value, r.found, want, wantOK)
		}
		wantGet(t, e, k, string(want), wantOK)
	}
}

// fakeDB stands in for Pebble in the interleaving tests below: the tests
// decide when a write "commits" by changing it.
type fakeDB map[string]string

func (db fakeDB) read(key string) func() ([]byte, bool, error) {
	return func() ([]byte, bool, error) {
		v, ok := db[key]
		return []byte(v), ok, nil
	}
}

func writesOf(kv ...string) *rowWrites {
	w := &rowWrites{}
	for i := 0; i < len(kv); i += 2 {
		w.set([]byte(kv[i]), []byte(kv[i+1]), true, false)
	}
	return w
}

func wantCached(t *testing.T, c *rowCache, db fakeDB, key, want string) {
	t.Helper()
	v, _, _ := c.get([]byte(key), db.read(key))
	if string(v) != want {
		t.Fatalf("get(%s) = %q, want %q", key, v, want)
	}
}

// A reader that misses while a write is in progress may read the old
// value, but must not cache it: once the write commits, readers see it.
func TestRowCacheReaderDuringWrite(t *testing.T) {
	c := newRowCache(1<<20, []byte{}, []byte{0xff}, nil)
	db := fakeDB{"k": "old"}
	w := writesOf("k", "new")
	tok := c.begin(w)
	wantCached(t, c, db, "k", "old") // not yet committed
	db["k"] = "new"
	wantCached(t, c, db, "k", "new")
	c.end(w, tok, true)
	wantCached(t, c, db, "k", "new")
}

// A reader whose read of the database overlaps the start of a write must
// not cache what it read.
func TestRowCacheWriteBeginsDuringRead(t *testing.T) {
	c := newRowCache(1<<20, []byte{}, []byte{0xff}, nil)
	db := fakeDB{"k": "old"}
	w := writesOf("k", "new")
	var tok writeToken
	v, _, _ := c.get([]byte("k"), func() ([]byte, bool, error) {
		tok = c.begin(w)
		return []byte(db["k"]), true, nil
	})
	if string(v) != "old" {
		t.Fatalf("read %q", v)
	}
	db["k"] = "new"
	wantCached(t, c, db, "k", "new")
	c.end(w, tok, true)
	wantCached(t, c, db, "k", "new")
}

// Two writes in progress at once on one shard: neither knows which
// committed last, so neither installs its value, whatever the order of
// their commits and ends.
func TestRowCacheOverlappingWrites(t *testing.T) {
	for _, tc := range []struct{ commits, ends string }{
		{"xw", "xw"}, {"xw", "wx"}, {"wx", "xw"}, {"wx", "wx"},
	} {
		t.Run("commits "+tc.commits+" ends "+tc.ends, func(t *testing.T) {
			c := newRowCache(1<<20, []byte{}, []byte{0xff}, nil)
			db := fakeDB{"k": "old"}
			writes := map[byte]*rowWrites{'x': writesOf("k", "x"), 'w': writesOf("k", "w")}
			toks := map[byte]writeToken{}
			toks['x'] = c.begin(writes['x'])
			toks['w'] = c.begin(writes['w'])
			for i := range tc.commits {
				db["k"] = string(tc.commits[i])
			}
			for i := range tc.ends {
				c.end(writes[tc.ends[i]], toks[tc.ends[i]], true)
			}
			wantCached(t, c, db, "k", db["k"])
		})
	}
}

// A write that began alone but saw another begin before it ended does not
// install either: the other may have committed after it.
func TestRowCacheWriteOverlappedLater(t *testing.T) {
	c := newRowCache(1<<20, []byte{}, []byte{0xff}, nil)
	db := fakeDB{"k": "old"}
	x, w := writesOf("k", "x"), writesOf("k", "w")
	tokX := c.begin(x) // alone
	tokW := c.begin(w)
	db["k"] = "x"
	db["k"] = "w"
	c.end(x, tokX, true) // must not install x
	wantCached(t, c, db, "k", "w")
	c.end(w, tokW, true)
	wantCached(t, c, db, "k", "w")
	checkRowCache(t, c)
}

// checkRowCache checks a cache at rest: no write in progress, and each
// shard's byte count is what its rows cost.
func checkRowCache(t *testing.T, c *rowCache) {
	t.Helper()
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		sum, pinned := 0, 0
		for k, r := range sh.rows {
			sum += len(k) + len(r.value) + rowOverhead
			if r.pinned {
				pinned += len(k) + len(r.value) + rowOverhead
			}
		}
		bytes, pinnedBytes, writers := sh.bytes, sh.pinned, sh.writers
		sh.mu.Unlock()
		if bytes != sum || pinnedBytes != pinned || writers != 0 {
			t.Fatalf("shard %d at rest: %d bytes (%d pinned) counted, rows cost %d (%d pinned); %d writers",
				i, bytes, pinnedBytes, sum, pinned, writers)
		}
		if bytes > c.limit || pinned > c.limit/2 {
			t.Fatalf("shard %d holds %d bytes, %d pinned; its limit is %d", i, bytes, pinned, c.limit)
		}
	}
}

// One batch's writes to keys in different cache shards, and a key written
// twice.
func TestRowCacheBatchEdges(t *testing.T) {
	c := newRowCache(1<<20, []byte{}, []byte{0xff}, nil)
	db := fakeDB{}
	w := &rowWrites{}
	for i := range 20 {
		w.set(fmt.Appendf(nil, "k%d", i), []byte("1"), true, false)
	}
	w.set([]byte("k0"), []byte("2"), true, false)
	tok := c.begin(w)
	if len(tok) < 2 {
		t.Fatalf("20 keys touched %d cache shards; the test needs several", len(tok))
	}
	for i := range 20 {
		db[fmt.Sprint("k", i)] = "1"
	}
	db["k0"] = "2"
	c.end(w, tok, true)
	wantCached(t, c, db, "k0", "2") // the batch's last write of k0
	wantCached(t, c, db, "k19", "1")
	checkRowCache(t, c)
}

// A write that had its shard to itself installs its values; one that did
// not commit installs nothing.
func TestRowCacheInstallsOnlyCommittedLoneWrites(t *testing.T) {
	c := newRowCache(1<<20, []byte{}, []byte{0xff}, nil)
	db := fakeDB{"k": "old"}
	w := writesOf("k", "new")
	tok := c.begin(w)
	db["k"] = "new"
	c.end(w, tok, true)
	if r, ok := c.shard([]byte("k")).rows["k"]; !ok || string(r.value) != "new" {
		t.Fatalf("a lone committed write left %+v, %v", r, ok)
	}
	w = writesOf("k", "failed")
	tok = c.begin(w)
	c.end(w, tok, false)
	if _, ok := c.shard([]byte("k")).rows["k"]; ok {
		t.Fatal("a failed write left a row")
	}
	wantCached(t, c, db, "k", "new")
	checkRowCache(t, c)
}
