package engine

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/shoaldb/shoal/internal/keys"
)

// BenchmarkGetAmidRaftLog measures a point read of user data in a database
// shaped like a busy node's: 10 000 keys overwritten again and again among
// raft log entries of 16 shards that are appended and truncated.
func BenchmarkGetAmidRaftLog(b *testing.B) {
	for _, mem := range []int64{4 << 20, 8 << 20, 32 << 20} {
		b.Run(fmt.Sprintf("memtable=%dMiB", mem>>20), func(b *testing.B) {
			e, err := Open("db", Options{FS: vfs.NewMem(), MemTableSize: mem})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			const nkeys = 10000
			entry := make([]byte, 150)
			value := make([]byte, 80)
			var index [16]uint64
			for i := range 400_000 {
				w := e.NewWriteBatch()
				shard := uint64(i % 16)
				index[shard]++
				w.Set(keys.LogEntry(shard, index[shard]), entry)
				w.Set(keys.Data([]byte(fmt.Sprint("key:", i%nkeys))), value)
				if index[shard]%4096 == 0 {
					w.DeleteRange(keys.LogEntry(shard, 0), keys.LogEntry(shard, index[shard]-2048))
				}
				if err := w.Commit(false); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := range b.N {
				if _, ok, err := e.Get(keys.Data([]byte(fmt.Sprint("key:", (i*7919)%nkeys)))); !ok || err != nil {
					b.Fatalf("get: %v %v", ok, err)
				}
			}
		})
	}
}
