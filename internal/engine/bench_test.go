package engine

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/shoaldb/shoal/internal/keys"
)

// openBench opens an engine with o on the memory filesystem, closed when
// b ends.
func openBench(b *testing.B, o Options) *Engine {
	o.FS = vfs.NewMem()
	e, err := Open("db", o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close() })
	return e
}

// appendLog stages into w the i-th raft log entry of a node with 16 shards
// taking turns, truncating a shard's log by 2048 entries every 4096, and
// returns the shard.
func appendLog(w *Batch, index *[16]uint64, i int, entry []byte) uint64 {
	shard := uint64(i % 16)
	index[shard]++
	w.Set(keys.LogEntry(shard, index[shard]), entry)
	if index[shard]%4096 == 0 {
		w.DeleteRange(keys.LogEntry(shard, 0), keys.LogEntry(shard, index[shard]-2048))
	}
	return shard
}

// fillAmidRaftLog writes 400 000 raft log entries of 16 shards, each with
// a write of one of nkeys user keys ("key:<i>").
func fillAmidRaftLog(b *testing.B, e *Engine, nkeys int) {
	entry, value := make([]byte, 150), make([]byte, 80)
	var index [16]uint64
	for i := range 400_000 {
		w := e.NewWriteBatch()
		appendLog(w, &index, i, entry)
		w.Set(keys.Data([]byte(fmt.Sprint("key:", i%nkeys))), value)
		if err := w.Commit(false); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetAmidRaftLog measures a point read of user data in a database
// shaped like a busy node's: 10 000 keys overwritten again and again among
// raft log entries of 16 shards that are appended and truncated.
func BenchmarkGetAmidRaftLog(b *testing.B) {
	for _, mem := range []int64{4 << 20, 8 << 20, 32 << 20} {
		b.Run(fmt.Sprintf("memtable=%dMiB", mem>>20), func(b *testing.B) {
			e := openBench(b, Options{MemTableSize: mem})
			const nkeys = 10000
			fillAmidRaftLog(b, e, nkeys)
			b.ResetTimer()
			for i := range b.N {
				if _, ok, err := e.Get(keys.Data([]byte(fmt.Sprint("key:", (i*7919)%nkeys)))); !ok || err != nil {
					b.Fatalf("get: %v %v", ok, err)
				}
			}
		})
	}
}

// BenchmarkGetMissAmidRaftLog is BenchmarkGetAmidRaftLog for keys that
// were never written (a GET that misses, SETNX or INCR of a new key): a
// search of every memtable and every level that holds sstables.
func BenchmarkGetMissAmidRaftLog(b *testing.B) {
	e := openBench(b, Options{MemTableSize: 8 << 20})
	fillAmidRaftLog(b, e, 100000)
	b.ResetTimer()
	for i := range b.N {
		if _, ok, err := e.Get(keys.Data([]byte(fmt.Sprint("absent:", i)))); ok || err != nil {
			b.Fatalf("get: %v %v", ok, err)
		}
	}
}

// BenchmarkApplySetAmidRaftLog models what one replica does to apply a SET
// in a busy node: append the raft log entry, then in an indexed batch read
// the key's old record, write the new one and the applied index, and
// commit without sync. With the row cache the read of the old record is a
// map lookup.
func BenchmarkApplySetAmidRaftLog(b *testing.B) {
	for _, mem := range []int64{8 << 20, 32 << 20} {
		for _, cache := range []bool{false, true} {
			b.Run(fmt.Sprintf("memtable=%dMiB/rowcache=%v", mem>>20, cache), func(b *testing.B) {
				o := Options{MemTableSize: mem}
				if cache {
					lo, hi := keys.UserSpan()
					o.RowCacheSpan = [2][]byte{lo, hi}
				}
				e := openBench(b, o)
				const nkeys = 10000
				entry, value := make([]byte, 150), make([]byte, 80)
				var index [16]uint64
				apply := func(i int) {
					w := e.NewWriteBatch()
					shard := appendLog(w, &index, i, entry)
					w.Set(keys.HardState(shard), value[:20])
					if err := w.Commit(false); err != nil {
						b.Fatal(err)
					}
					a := e.NewBatch()
					k := keys.Data(fmt.Appendf(nil, "key:%d", (i*7919)%nkeys))
					if _, _, err := a.Get(k); err != nil {
						b.Fatal(err)
					}
					a.Set(k, value)
					a.Set(keys.AppliedState(shard), value[:16])
					if err := a.Commit(false); err != nil {
						b.Fatal(err)
					}
				}
				for i := range 200_000 {
					apply(i)
				}
				b.ResetTimer()
				for i := range b.N {
					apply(i)
				}
			})
		}
	}
}
