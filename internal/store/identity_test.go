package store

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/shoaldb/shoal/internal/keys"
	"github.com/shoaldb/shoal/internal/replicaid"
	"github.com/shoaldb/shoal/internal/shoalpb"
)

// changeAt proposes a membership change naming node at the leader until
// one applies it.
func changeAt(t *testing.T, nodes map[uint64]*testNode, typ raftpb.ConfChangeType, node uint64) {
	t.Helper()
	waitCond(t, fmt.Sprintf("%v of node %d", typ, node), func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return nodes[leaderOf(t, nodes)].st.ChangeReplicas(ctx, 1, []*raftpb.ConfChangeSingle{{
			Type: typ.Enum(), NodeId: proto.Uint64(node)}})
	})
}

// raftKeys counts the raft keys of shard 1 on tn, apart from its
// tombstone, and its data keys.
func raftKeys(t *testing.T, tn *testNode) (raftState, data int) {
	lo, hi := keys.ReplicaSpan(1)
	tomb := keys.Tombstone(1)
	if err := tn.eng.Iterate(lo, hi, func(k, _ []byte) bool {
		if string(k) != string(tomb) {
			raftState++
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	lo, hi = keys.MetaSpan()
	if err := tn.eng.Iterate(lo, hi, func(_, _ []byte) bool { data++; return true }); err != nil {
		t.Fatal(err)
	}
	return raftState, data
}

// threeAndASpare starts three stores replicating shard 1, holding k=v1,
// and a fourth store outside the shard; the test stops them all.
func threeAndASpare(t *testing.T) (map[uint64]*testNode, *testNode) {
	n := &localNet{stores: map[uint64]*Store{}, down: map[uint64]bool{}}
	nodes := startCluster(t, n, func(uint64) vfs.FS { return vfs.NewMem() }, 1000, nil)
	propose(t, nodes, "k", "v1")
	four := startNode(t, n, 4, vfs.NewMem(), 1000)
	four.st.Start()
	t.Cleanup(func() { four.stop(n, 4) })
	return nodes, four
}

// A node added to a shard gets a replica with a new id; removed, its
// replica and data are deleted and a tombstone refuses messages for it;
// added again, it gets a newer id and the data back by snapshot.
func TestReplicaIdentityRemovalAndReadd(t *testing.T) {
	nodes, four := threeAndASpare(t)

	all := map[uint64]*testNode{1: nodes[1], 2: nodes[2], 3: nodes[3], 4: four}
	changeAt(t, nodes, raftpb.ConfChangeType_ConfChangeAddLearnerNode, 4)
	waitValue(t, four, "k", "v1")
	first, _ := four.st.Replica(1)
	if replicaid.Node(first.ID) != 4 || replicaid.Incarnation(first.ID) == 0 {
		t.Fatalf("the added replica's id %#x: want node 4, a new incarnation", first.ID)
	}
	changeAt(t, nodes, raftpb.ConfChangeType_ConfChangeAddNode, 4)
	propose(t, nodes, "k", "v2")
	waitValue(t, four, "k", "v2")

	changeAt(t, all, raftpb.ConfChangeType_ConfChangeRemoveNode, 4)
	waitRemoved(t, four, 4)
	waitCond(t, "node 4's replica deleted", func() error {
		if rs, data := raftKeys(t, four); rs != 0 || data != 0 {
			return fmt.Errorf("%d raft keys and %d data keys left", rs, data)
		}
		return nil
	})
	if got := four.st.Stats().ReplicasRemoved; got != 1 {
		t.Errorf("ReplicasRemoved = %d, want 1", got)
	}
	// A heartbeat for the removed replica, as a leader that missed the
	// removal would send, brings nothing back.
	leader := leaderOf(t, nodes)
	ri, _ := nodes[leader].st.Replica(1)
	four.st.HandleRaft(leader, []*shoalpb.RaftEnvelope{{ShardId: 1, Message: &raftpb.Message{
		Type: raftpb.MessageType_MsgHeartbeat.Enum(), From: proto.Uint64(ri.ID), To: proto.Uint64(first.ID),
		Term: proto.Uint64(ri.Term + 1), Commit: proto.Uint64(0),
	}}})
	// Two round trips through the loop: the first cycle runs the call
	// before it steps the message, the second comes after.
	for range 2 {
		four.st.Progress(context.Background(), 1)
	}
	if _, ok := four.st.Replica(1); ok {
		t.Fatal("a message for the removed replica created it again")
	}

	// The shard's leader tells a node that asks whether its replica left.
	waitCond(t, "the leader says which replicas left", func() error {
		l := nodes[leaderOf(t, nodes)].st
		self, _ := l.Replica(1)
		for _, c := range []struct {
			id   uint64
			want bool
		}{{first.ID, true}, {self.ID, false}, {replicaid.Make(4, 99), false}} {
			got, err := l.IsRemoved(context.Background(), 1, c.id)
			if err != nil || got != c.want {
				return fmt.Errorf("IsRemoved(%#x) = %v, %v; want %v", c.id, got, err, c.want)
			}
		}
		return nil
	})

	propose(t, nodes, "k", "v3")
	changeAt(t, nodes, raftpb.ConfChangeType_ConfChangeAddLearnerNode, 4)
	waitValue(t, four, "k", "v3")
	second, _ := four.st.Replica(1)
	if replicaid.Node(second.ID) != 4 || second.ID <= first.ID {
		t.Errorf("re-added replica id %#x: want node 4 and larger than %#x", second.ID, first.ID)
	}
	// The shard's descriptor counts the ids it gave.
	if d := second.Desc; d.GetNextReplicaInc() <= replicaid.Incarnation(second.ID) {
		t.Errorf("descriptor's next incarnation %d, replica %#x", d.GetNextReplicaInc(), second.ID)
	}
}

// A learner replaces a voter in one change, through a joint configuration:
// the shard goes from voters {1,2,3} to {1,2,4} and never has four.
func TestSwapReplicaInOneChange(t *testing.T) {
	nodes, four := threeAndASpare(t)
	changeAt(t, nodes, raftpb.ConfChangeType_ConfChangeAddLearnerNode, 4)
	waitValue(t, four, "k", "v1")

	leader := leaderOf(t, nodes)
	out := leader%3 + 1
	waitCond(t, "swap", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return nodes[leaderOf(t, nodes)].st.ChangeReplicas(ctx, 1, []*raftpb.ConfChangeSingle{
			{Type: raftpb.ConfChangeType_ConfChangeAddNode.Enum(), NodeId: proto.Uint64(4)},
			{Type: raftpb.ConfChangeType_ConfChangeRemoveNode.Enum(), NodeId: proto.Uint64(out)},
		})
	})
	waitRemoved(t, nodes[out], out)
	all := map[uint64]*testNode{4: four}
	for id, tn := range nodes {
		if id != out {
			all[id] = tn
		}
	}
	waitCond(t, "joint configuration left", func() error {
		for id, tn := range all {
			ri, _ := tn.st.Replica(1)
			if len(ri.Voters) == 3 && len(ri.Learners) == 0 && !slices.Contains(ri.Voters, out) && slices.Contains(ri.Voters, 4) {
				continue
			}
			return fmt.Errorf("node %d: voters %v learners %v", id, ri.Voters, ri.Learners)
		}
		return nil
	})
	propose(t, all, "k", "v2")
	waitValue(t, four, "k", "v2")
}
