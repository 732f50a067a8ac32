package store

import (
	"errors"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/shoaldb/shoal/internal/keys"
	"github.com/shoaldb/shoal/internal/shoalpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// queueNet holds every message sent until the test delivers or drops it.
type queueNet struct {
	mu sync.Mutex
	q  []queued
}

type queued struct {
	from uint64
	env  *shoalpb.RaftEnvelope
}

type queueEndpoint struct {
	n    *queueNet
	from uint64
}

func (e queueEndpoint) Send(envs []*shoalpb.RaftEnvelope) {
	e.n.mu.Lock()
	defer e.n.mu.Unlock()
	for _, env := range envs {
		e.n.q = append(e.n.q, queued{e.from, proto.Clone(env).(*shoalpb.RaftEnvelope)})
	}
}

// A leader's proposal replaced in its log in the same cycle by a newer
// leader's append may still have left in the append raft made when it was
// proposed. In a group of five, a node that got that append can win a
// later term without the newer leader's entries and commit it. The
// proposal must then not be answered "dropped" (not applied, safe to
// retry): a retry would apply the write twice.
func TestProposalThatLeftInAnAppendIsNotReportedDropped(t *testing.T) {
	net := &queueNet{}
	stores := map[uint64]*Store{}
	ln := &localNet{stores: map[uint64]*Store{}, down: map[uint64]bool{}}
	for id := uint64(1); id <= 5; id++ {
		tn := startNode(t, ln, id, vfs.NewMem(), 1000)
		tn.st.cfg.Transport = queueEndpoint{net, id}
		if err := tn.st.Bootstrap([]*shoalpb.ShardDescriptor{metaDesc}, []uint64{1, 2, 3, 4, 5}, nil); err != nil {
			t.Fatal(err)
		}
		tn.st.replicas[1].ticks = tn.st.cfg.ElectionTicks
		stores[id] = tn.st
		t.Cleanup(func() { tn.st.Stop(); tn.eng.Close() })
	}
	// deliver hands each queued message to its destination if ok says so
	// and drops the others; it returns them all.
	deliver := func(ok func(from, to uint64, m *raftpb.Message) bool) []queued {
		net.mu.Lock()
		q := net.q
		net.q = nil
		net.mu.Unlock()
		for _, x := range q {
			if to := x.env.GetMessage().GetTo(); ok(x.from, to, x.env.GetMessage()) {
				stores[to].HandleRaft(x.from, []*shoalpb.RaftEnvelope{x.env})
			}
		}
		return q
	}
	all := func(uint64, uint64, *raftpb.Message) bool { return true }
	among := func(ids ...uint64) func(from, to uint64, m *raftpb.Message) bool {
		in := map[uint64]bool{}
		for _, id := range ids {
			in[id] = true
		}
		return func(from, to uint64, _ *raftpb.Message) bool { return in[from] && in[to] }
	}
	step := func(ids ...uint64) {
		for _, id := range ids {
			stores[id].Step(false)
		}
	}

	// Node 1 leads, and a few writes put every follower in replication.
	r1 := stores[1].replicas[1]
	r1.touch().Campaign()
	for range 30 {
		step(1, 2, 3, 4, 5)
		deliver(all)
	}
	if !r1.isLeader() {
		t.Fatalf("node 1 did not become leader: %+v", r1.rn.BasicStatus())
	}
	term := r1.rn.BasicStatus().GetTerm()
	for i := range 3 {
		stores[1].StartPropose(1, [][]byte{[]byte("set"), {byte('a' + i)}, []byte("v")})
		for range 10 {
			step(1, 2, 3, 4, 5)
			deliver(all)
		}
	}

	// Node 2 takes over (as after a transfer) with the votes of 4 and 5;
	// its appends reach only node 1, and that only later.
	stores[2].HandleRaft(1, []*shoalpb.RaftEnvelope{{ShardId: 1, Message: &raftpb.Message{
		Type: raftpb.MessageType_MsgTimeoutNow.Enum(), From: proto.Uint64(1), To: proto.Uint64(2), Term: proto.Uint64(term),
	}}})
	votesOnly := func(from, to uint64, m *raftpb.Message) bool {
		switch m.GetType() {
		case raftpb.MessageType_MsgVote, raftpb.MessageType_MsgVoteResp, raftpb.MessageType_MsgPreVote, raftpb.MessageType_MsgPreVoteResp:
			return among(2, 4, 5)(from, to, m)
		}
		return false
	}
	var toNode1 []*shoalpb.RaftEnvelope
	for range 6 {
		step(2, 4, 5)
		for _, x := range deliver(votesOnly) {
			if m := x.env.GetMessage(); m.GetTo() == 1 && m.GetType() == raftpb.MessageType_MsgApp {
				toNode1 = append(toNode1, x.env)
			}
		}
		if len(toNode1) > 0 {
			break
		}
	}
	if st := stores[2].replicas[1].rn.BasicStatus(); st.RaftState != raft.StateLeader || len(toNode1) == 0 {
		t.Fatalf("node 2 did not lead and append to node 1: %+v, %d appends", st, len(toNode1))
	}

	// One cycle at node 1: a proposal, then node 2's conflicting append.
	p := stores[1].StartPropose(1, [][]byte{[]byte("set"), []byte("dup"), []byte("applied")})
	stores[1].HandleRaft(2, toNode1)
	stores[1].Step(false)
	// Node 1's append of the old term, carrying the proposal, reaches
	// node 3 only.
	carried := false
	for _, x := range deliver(func(_, to uint64, _ *raftpb.Message) bool { return to == 3 }) {
		if m := x.env.GetMessage(); x.from == 1 && m.GetType() == raftpb.MessageType_MsgApp {
			for _, e := range m.GetEntries() {
				carried = carried || len(e.GetData()) > 8
			}
		}
	}
	if !carried {
		t.Fatal("the proposal did not leave node 1 in an append: the test no longer builds its case")
	}
	step(3)
	step(3)
	deliver(func(uint64, uint64, *raftpb.Message) bool { return false }) // node 3's answer is lost
	// Node 3 wins the next term with 4 and 5 (its first pre-vote only
	// learns node 2's term) and commits what it has.
	for range 2 {
		stores[3].replicas[1].touch().Campaign()
		for range 6 {
			step(3, 4, 5)
			deliver(among(3, 4, 5))
		}
	}
	for range 20 {
		step(3, 4, 5)
		deliver(among(3, 4, 5))
	}
	if v, ok, _ := stores[3].eng.Get(keys.Meta("dup")); !ok || string(v) != "applied" {
		t.Fatalf("node 3 did not apply the proposal (dup=%q): the test no longer builds its case", v)
	}
	if _, err, done := p.Poll(); done && errors.Is(err, ErrDropped) {
		t.Fatal("the proposal was answered ErrDropped (not applied, safe to retry), but node 3 applied it")
	}
}
