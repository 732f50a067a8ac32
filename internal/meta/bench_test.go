package meta

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/shoaldb/shoal/internal/kv/kvtest"
)

// BenchmarkHeartbeat applies one node's heartbeat, with nothing in its
// reports changed, to the meta state of a cluster of 10 nodes and a
// growing number of shards; then loads the state, as every node with a
// meta replica does after each apply (Reload, given the state it loaded
// before).
func BenchmarkHeartbeat(b *testing.B) {
	for _, shards := range []int{16, 256, 4096} {
		b.Run(fmt.Sprint("shards=", shards), func(b *testing.B) {
			w := kvtest.NewMem()
			Save(w, New("c", "a1", "b1", shards, 0))
			for i := 2; i <= 10; i++ {
				Apply(w, cmd(0, CmdAddNode, fmt.Sprint("a", i), fmt.Sprint("b", i)))
			}
			// Node 1 leads a tenth of the shards with voters 1, 2, 3.
			hb := Heartbeat{Node: 1}
			for id := uint64(2); id < uint64(2+shards); id += 10 {
				hb.Reports = append(hb.Reports, LeaderReport{Shard: id, Term: 5, Voters: []uint64{1, 2, 3}})
			}
			arg, _ := json.Marshal(hb)
			Apply(w, cmd(1, CmdHeartbeat, string(arg)))
			prev, err := Load(w)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := range b.N {
				if v, err := Apply(w, cmd(int64(2+i), CmdHeartbeat, string(arg))); err != nil || v.IsError() {
					b.Fatalf("heartbeat = %v, %v", v, err)
				}
				if prev, err = Reload(w, prev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
