package store

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/shoaldb/shoal/internal/keys"
	"github.com/shoaldb/shoal/internal/shoalpb"
)

// A single-voter shard (every shard of a one-node cluster, and of a new
// cluster before up-replication) restarts after a crash that lost its
// last apply batch (applies are not synced): its commit index is then
// the applied index on disk, below the last acknowledged write, whose
// entry is durable. raft answers a single voter's read index at once with
// that commit index, so reads must wait until the leader has applied an
// entry of its own term (requestReadIndexes), or one would miss the write.
func TestSingleVoterReadAfterCrashSeesAcknowledgedWrite(t *testing.T) {
	n := &localNet{stores: map[uint64]*Store{}, down: map[uint64]bool{}}
	mem := vfs.NewCrashableMem()
	tn := startNode(t, n, 1, mem, 1024)
	if err := tn.st.Bootstrap([]*shoalpb.ShardDescriptor{metaDesc}, []uint64{1}, nil); err != nil {
		t.Fatal(err)
	}
	tn.st.Start()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tn.st.Campaign(ctx, 1); err != nil {
		t.Fatal(err)
	}
	propose(t, map[uint64]*testNode{1: tn}, "w", "1")
	if _, err := tn.st.Propose(ctx, 1, [][]byte{[]byte("set"), []byte("w"), []byte("2")}); err != nil {
		t.Fatal(err)
	}
	// w=2 is acknowledged. Crash now: what was not synced is lost.
	crashed := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	tn.stop(n, 1)

	slow := new(atomic.Bool)
	slow.Store(true)
	tn2 := startNode(t, n, 1, syncHookFS{crashed, slowSyncs(slow)}, 1024)
	defer tn2.stop(n, 1)
	if v, _, _ := tn2.eng.Get(keys.Meta("w")); string(v) != "1" {
		t.Fatalf("w=%q on disk after the crash: the apply batch survived, so the test no longer builds its case", v)
	}
	tn2.st.Start()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if ri, _ := tn2.st.Replica(1); ri.IsLeader {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no leader after restart")
		}
		time.Sleep(100 * time.Microsecond)
	}
	if _, err := tn2.st.ReadIndex(ctx, 1); err != nil {
		t.Fatal(err)
	}
	v, _, _ := tn2.eng.Get(keys.Meta("w"))
	ri, _ := tn2.st.Replica(1)
	lease := tn2.st.LeaseRead(ri)
	if string(v) != "2" {
		t.Errorf("linearizable read after restart saw w=%q, but w=2 was acknowledged before the crash (lease valid now: %v)", v, lease)
	}
}
