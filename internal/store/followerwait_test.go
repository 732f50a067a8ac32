package store

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/shoaldb/shoal/internal/shoalpb"
	"go.etcd.io/raft/v3/raftpb"
)

// starveTransport drops the appends, heartbeats and snapshots sent to
// node *victim (0: none), so that it never learns of new commits; every
// other message (read index requests and answers) goes through.
type starveTransport struct {
	localEndpoint
	victim *atomic.Uint64
}

func (s starveTransport) Send(envs []*shoalpb.RaftEnvelope) {
	var out []*shoalpb.RaftEnvelope
	for _, env := range envs {
		m := env.GetMessage()
		switch m.GetType() {
		case raftpb.MessageType_MsgApp, raftpb.MessageType_MsgHeartbeat, raftpb.MessageType_MsgSnap:
			if m.GetTo() == s.victim.Load() {
				continue
			}
		}
		out = append(out, env)
	}
	s.localEndpoint.Send(out)
}

// A follower read whose read index was answered, but which the follower
// cannot apply (it gets no appends), fails within an election timeout
// (expireFollowerReads), so that the node retries it at the leader
// instead of running into the client's deadline.
func TestAnsweredFollowerReadThatCannotCompleteFails(t *testing.T) {
	n := &localNet{stores: map[uint64]*Store{}, down: map[uint64]bool{}}
	victim := new(atomic.Uint64)
	nodes := startCluster(t, n, func(uint64) vfs.FS { return vfs.NewMem() }, 1024, func(tn *testNode) {
		tn.st.cfg.Transport = starveTransport{localEndpoint{n, tn.st.NodeID()}, victim}
	})
	propose(t, nodes, "w", "0")
	var leader, follower uint64
	for id, tn := range nodes {
		if ri, _ := tn.st.Replica(1); ri.IsLeader {
			leader = id
		} else if follower == 0 {
			follower = id
		}
	}
	victim.Store(follower)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := nodes[leader].st.Propose(ctx, 1, [][]byte{[]byte("set"), []byte("w"), []byte("1")}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rctx, rcancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer rcancel()
	_, err := nodes[follower].st.ReadIndex(rctx, 1)
	var nl *NotLeaderError
	if !errors.As(err, &nl) {
		t.Errorf("a follower read that cannot complete ended after %v with %v, want a NotLeaderError within an election timeout (100 ms here)", time.Since(start).Round(time.Millisecond), err)
	}
}
