package kv

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/shoaldb/shoal/internal/engine"
	"github.com/shoaldb/shoal/internal/keys"
	"github.com/shoaldb/shoal/internal/kv/kvtest"
)

// Random commands applied several to a batch, as the store applies a
// cycle's entries, on the engine with a small pinning row cache, must give
// the replies and the bytes of the same commands applied one by one to a
// Mem, and keep the index and counts exact.
func TestEngineBatchesMatchMem(t *testing.T) {
	for seed := range uint64(8) {
		lo, hi := keys.UserSpan()
		e, err := engine.Open("db", engine.Options{FS: vfs.NewMem(), RowCacheSpan: [2][]byte{lo, hi},
			RowCacheSize: 32 << 10, RowCachePin: keys.IsExpiryCount})
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(seed, 99))
		mem := kvtest.NewMem()
		env := Env{NowMs: t0, LastSlot: genLastSlot}
		g := &cmdGen{next: rng.IntN, now: func() int64 { return env.NowMs }}
		for step := 0; step < 1500; {
			b := e.NewBatch()
			for n := 1 + rng.IntN(8); n > 0; n-- {
				step++
				env.NowMs += int64(rng.IntN(300))
				env.Rand = rng.Uint64()
				args := g.command()
				if rng.IntN(15) == 0 {
					args = [][]byte{[]byte("SHOAL.SWEEP"), []byte(strconv.Itoa(rng.IntN(4)))}
				}
				va, erra := Apply(b, env, args)
				vm, errm := Apply(mem, env, args)
				if erra != nil || errm != nil {
					t.Fatalf("seed %d step %d %s: %v %v", seed, step, fmtArgs(args), erra, errm)
				}
				if format(va) != format(vm) {
					t.Fatalf("seed %d step %d %s: engine %s, mem %s", seed, step, fmtArgs(args), format(va), format(vm))
				}
			}
			if err := b.Commit(false); err != nil {
				t.Fatal(err)
			}
			if de, dm := dump(t, e), dump(t, mem); !bytes.Equal(de, dm) {
				t.Fatalf("seed %d step %d: engine and mem differ:\n%s\n---\n%s", seed, step, de, dm)
			}
			checkIndex(t, e)
			if t.Failed() {
				t.Fatalf("seed %d step %d", seed, step)
			}
		}
		if d := dump(t, e); !bytes.Contains(d, []byte(`c"=`)) {
			t.Fatalf("seed %d: no count records at the end:\n%s", seed, d)
		}
		e.Close()
	}
}
