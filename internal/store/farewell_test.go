package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// changeReplica makes one membership change of shard 1 through st, its
// leader.
func changeReplica(t *testing.T, st *Store, typ raftpb.ConfChangeType, id uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := st.ChangeReplicas(ctx, 1, []*raftpb.ConfChangeSingle{{Type: typ.Enum(), NodeId: proto.Uint64(id)}}); err != nil {
		t.Fatalf("%v %d: %v", typ, id, err)
	}
}

// waitRemoved waits until node id's replica of shard 1 has applied its
// own removal.
func waitRemoved(t *testing.T, tn *testNode, id uint64) {
	t.Helper()
	waitCond(t, "the removed node applies its removal and deletes its replica", func() error {
		if ri, ok := tn.st.Replica(1); ok {
			return fmt.Errorf("node %d still has its replica: voters %v, learners %v", id, ri.Voters, ri.Learners)
		}
		return nil
	})
}

// A leader whose own fsyncs are slow sees the conf change removing a
// follower committed by its followers' acknowledgements before it can
// apply it, so the appends that carried the commit were capped below it
// (capCommit); once applied, the leader no longer talks to the removed
// node. The removed node must still learn that its removal committed.
func TestRemovedReplicaLearnsOfItsRemoval(t *testing.T) {
	n := &localNet{stores: map[uint64]*Store{}, down: map[uint64]bool{}}
	nodes, slow := startSlowableCluster(t, n)
	propose(t, nodes, "k", "v")
	leader := leaderOf(t, nodes)
	removed := leader%3 + 1
	slow[leader].Store(true)
	changeReplica(t, nodes[leader].st, raftpb.ConfChangeType_ConfChangeRemoveNode, removed)
	waitRemoved(t, nodes[removed], removed)
}

// A removed learner whose acknowledgement of its removal reaches the
// leader only after the leader has applied the removal, and forgotten the
// learner, must still learn that its removal committed: the voters
// committed it without the learner, and told it (capped, the leader's
// fsyncs being slow) only of a commit below the removal.
func TestRemovedReplicaLearnsOfItsRemovalFromALateAck(t *testing.T) {
	n := &localNet{stores: map[uint64]*Store{}, down: map[uint64]bool{}}
	nodes, slow := startSlowableCluster(t, n)
	propose(t, nodes, "k", "v")
	leader := leaderOf(t, nodes)
	learner := addLearner(t, n, nodes, nodes[leader].st, 4)

	slow[leader].Store(true)
	n.hold(4)
	changeReplica(t, nodes[leader].st, raftpb.ConfChangeType_ConfChangeRemoveNode, 4)
	// The leader has applied the removal: the learner's acknowledgement
	// of it, held back until now, arrives too late to be counted.
	n.release(4)
	waitRemoved(t, learner, 4)
}

// A node cut off while its removal committed never received the change.
// Back on the network, it hears nothing from its leader and campaigns: the
// leader answers with the committed entries it lacks.
func TestRemovedReplicaCutOffLearnsOfItsRemoval(t *testing.T) {
	n := &localNet{stores: map[uint64]*Store{}, down: map[uint64]bool{}}
	nodes := startCluster(t, n, func(uint64) vfs.FS { return vfs.NewMem() }, 1000, nil)
	propose(t, nodes, "k", "v")
	leader := leaderOf(t, nodes)
	removed := leader%3 + 1
	n.setDown(removed, true)
	changeReplica(t, nodes[leader].st, raftpb.ConfChangeType_ConfChangeRemoveNode, removed)
	propose(t, nodes, "after", "removal")
	n.setDown(removed, false)
	waitRemoved(t, nodes[removed], removed)
}

// addLearner starts node id and makes it a learner of shard 1 through
// the leader's store st, and waits until it holds "k" (written before).
func addLearner(t *testing.T, n *localNet, nodes map[uint64]*testNode, st *Store, id uint64) *testNode {
	t.Helper()
	tn := startNode(t, n, id, vfs.NewMem(), 1000)
	tn.st.Start()
	nodes[id] = tn
	changeReplica(t, st, raftpb.ConfChangeType_ConfChangeAddLearnerNode, id)
	waitValue(t, tn, "k", "v")
	return tn
}

// addVoter makes node id a learner of shard 1 (addLearner), then a voter.
func addVoter(t *testing.T, n *localNet, nodes map[uint64]*testNode, st *Store, id uint64) {
	t.Helper()
	addLearner(t, n, nodes, st, id)
	changeReplica(t, st, raftpb.ConfChangeType_ConfChangeAddNode, id)
}

// A voter whose acknowledgements are all lost from its removal on, and
// that was told of no commit covering the change, learns when it
// campaigns, holding the change already: a heartbeat tells it. Five
// voters, so that three followers commit the removal without it before
// the leader, whose fsyncs are slow, can apply it: the commit they
// announce is capped below the change.
func TestRemovedReplicaWithLostAcksLearnsOfItsRemoval(t *testing.T) {
	n := &localNet{stores: map[uint64]*Store{}, down: map[uint64]bool{}}
	nodes, slow := startSlowableCluster(t, n)
	propose(t, nodes, "k", "v")
	leader := leaderOf(t, nodes)
	addVoter(t, n, nodes, nodes[leader].st, 4)
	addVoter(t, n, nodes, nodes[leader].st, 5)

	removed := leader%3 + 1
	slow[leader].Store(true)
	n.setLose(func(from uint64, m *raftpb.Message) bool {
		return from == removed && m.GetType() == raftpb.MessageType_MsgAppResp
	})
	changeReplica(t, nodes[leader].st, raftpb.ConfChangeType_ConfChangeRemoveNode, removed)
	waitRemoved(t, nodes[removed], removed)
}
