package store

import (
	"context"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/shoaldb/shoal/internal/shoalpb"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// A replica that applied its own removal refuses to vote. etcd raft lets
// any node vote, and a candidate counts votes by the configuration it has
// applied: one that restarted with its last conf changes in its log but
// not applied (the commit index is not kept across restarts) still counts
// the removed node, and the two of them could elect a leader that lacks
// what the newer configuration's quorum committed (the simulation found
// such a run: acknowledged writes were lost).
func TestRemovedReplicaDoesNotVote(t *testing.T) {
	n := &localNet{stores: map[uint64]*Store{}, down: map[uint64]bool{}}
	nodes := startCluster(t, n, func(uint64) vfs.FS { return vfs.NewMem() }, 1000, nil)
	propose(t, nodes, "k", "v")
	leader := leaderOf(t, nodes)
	removed := leader%3 + 1
	waitCond(t, "node removed", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return nodes[leaderOf(t, nodes)].st.ChangeReplicas(ctx, 1, []*raftpb.ConfChangeSingle{{
			Type: raftpb.ConfChangeType_ConfChangeRemoveNode.Enum(), NodeId: proto.Uint64(removed)}})
	})
	waitRemoved(t, nodes[removed], removed)
	x := nodes[removed].st
	before, _ := x.Replica(1)
	// Its leader no longer talks to it, so after an election timeout raft
	// would grant a vote for a later term with a log at least as long.
	// Ask for one for many election timeouts.
	timeout := time.Duration(x.cfg.ElectionTicks) * x.cfg.TickInterval
	for end := time.Now().Add(10 * timeout); time.Now().Before(end); time.Sleep(x.cfg.TickInterval) {
		for _, typ := range []raftpb.MessageType{raftpb.MessageType_MsgPreVote, raftpb.MessageType_MsgVote} {
			x.HandleRaft(leader, []*shoalpb.RaftEnvelope{{ShardId: 1, Message: &raftpb.Message{
				Type: typ.Enum(), From: proto.Uint64(leader), To: proto.Uint64(removed),
				Term: proto.Uint64(before.Term + 10), LogTerm: proto.Uint64(before.Term + 5), Index: proto.Uint64(1 << 20),
			}}})
		}
		if ri, _ := x.Replica(1); ri.Term != before.Term {
			t.Fatalf("the removed replica took part in an election: term %d -> %d", before.Term, ri.Term)
		}
	}
}
