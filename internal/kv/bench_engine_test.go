package kv

import (
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/shoaldb/shoal/internal/engine"
	"github.com/shoaldb/shoal/internal/keys"
)

// BenchmarkApplySetOnEngine applies one SET per batch, committed without
// sync, to the real engine with its row cache, the way a replica applies a
// raft entry: over 1 024 keys without TTLs (set), and with every key
// given a TTL again by each write (setex), where the old record must be
// read to move its index entry.
func BenchmarkApplySetOnEngine(b *testing.B) {
	for _, tc := range []struct {
		name string
		opts []string
	}{{"set", nil}, {"setex", []string{"EX", "1000"}}} {
		b.Run(tc.name, func(b *testing.B) {
			lo, hi := keys.UserSpan()
			e, err := engine.Open("db", engine.Options{FS: vfs.NewMem(), RowCacheSpan: [2][]byte{lo, hi}})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			env := Env{NowMs: t0, LastSlot: keys.SlotCount - 1}
			all := benchArgs("SET", true)
			for i := range all {
				for _, o := range tc.opts {
					all[i] = append(all[i], []byte(o))
				}
			}
			apply := func(args [][]byte) {
				w := e.NewBatch()
				if _, err := Apply(w, env, args); err != nil {
					b.Fatal(err)
				}
				if err := w.Commit(false); err != nil {
					b.Fatal(err)
				}
			}
			for _, args := range all {
				apply(args)
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				apply(all[i%benchKeys])
			}
		})
	}
}
