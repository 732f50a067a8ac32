package store

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/shoaldb/shoal/internal/keys"
	"github.com/shoaldb/shoal/internal/shoalpb"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// snapRecorder counts the snapshots a store sends.
type snapRecorder struct {
	Transport
	mu    sync.Mutex
	snaps int
}

func (s *snapRecorder) Send(envs []*shoalpb.RaftEnvelope) {
	s.mu.Lock()
	for _, e := range envs {
		if e.GetMessage().GetType() == raftpb.MessageType_MsgSnap {
			s.snaps++
		}
	}
	s.mu.Unlock()
	s.Transport.Send(envs)
}

// transferSync moves shard 1's leadership from from to node to, stepping
// only from until the request returns.
func transferSync(t *testing.T, from *Store, to uint64) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- from.TransferLeader(context.Background(), 1, to) }()
	for len(done) == 0 {
		from.Step(false)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A commit append held in one term must not leave in a later one. Here
// the leader holds one, hands leadership away and wins it back before its
// next tick. Sent then, the followers' answers (rejections at index 0, as
// they are in a newer term) would look to the new term's probes like
// matches at index 0, and the leader would send up-to-date followers
// snapshots.
func TestHeldCommitAppendsDoNotOutliveTheirTerm(t *testing.T) {
	c := newSteppedCluster(t)
	a := c.leader(t)
	c.settle()
	var others []*Store
	for _, s := range c.stores {
		if s != a {
			others = append(others, s)
		}
	}
	b, f := others[0], others[1]
	rec := &snapRecorder{Transport: a.cfg.Transport}
	a.cfg.Transport = rec

	_, pending := c.startWrites(a, 1)
	for range 20 {
		c.step(false)
	}
	mustBeDone(t, pending)
	if len(a.replicas[1].heldCommits) == 0 {
		t.Fatal("the leader holds no commit append")
	}
	transferSync(t, a, b.NodeID())
	for range 20 {
		c.step(false)
	}
	if ri, _ := b.Replica(1); !ri.IsLeader {
		t.Fatal("leadership did not move")
	}
	transferSync(t, b, a.NodeID())
	// a campaigns; the others vote once their votes are durable.
	a.Step(false)
	b.Step(false)
	f.Step(false)
	b.Step(false)
	f.Step(false)
	a.Step(true) // a wins, and its tick sends what it still holds
	if ri, _ := a.Replica(1); !ri.IsLeader {
		t.Fatalf("leadership did not come back: %+v", ri)
	}
	for range 10 {
		c.step(false)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.snaps > 0 {
		t.Errorf("the leader sent %d snapshots to followers that were up to date", rec.snaps)
	}
}

// No replica writes its hard state unless the term or vote changed, not
// even with the entries it appends, so what it has on disk can be behind
// what it applied. Reloaded, the replica takes the applied index as
// committed and goes on.
func TestHardStatesAreWrittenOnlyWhenTermOrVoteChange(t *testing.T) {
	c := newSteppedCluster(t)
	leader := c.leader(t)
	onDisk := func() []*raftpb.HardState {
		var out []*raftpb.HardState
		for _, s := range c.stores {
			hs := &raftpb.HardState{}
			if err := getProto(s.eng, keys.HardState(1), hs); err != nil {
				t.Fatal(err)
			}
			out = append(out, hs)
		}
		return out
	}
	c.settle()
	before := onDisk()
	// Waves of writes one cycle apart: each wave's entries reach the
	// replicas together with the commit of the wave before.
	var pending []*Pending
	for w := range 5 {
		for i := range 3 {
			pending = append(pending, leader.StartPropose(1, [][]byte{[]byte("set"), []byte(fmt.Sprint("k", w, i)), []byte("v")}))
		}
		c.step(false)
	}
	for range 20 {
		c.step(false)
	}
	mustBeDone(t, pending)
	applied := leader.replicas[1].applied
	for i, hs := range onDisk() {
		// Neither the appends of the writes nor their commits changed
		// term or vote: no replica wrote its hard state again.
		if !proto.Equal(hs, before[i]) {
			t.Errorf("store %d rewrote its hard state without a term or vote change: %v, then %v", i+1, before[i], hs)
		}
	}
	leader.Stop()
	st, err := New(Config{NodeID: leader.NodeID(), Engine: leader.eng, Transport: leader.cfg.Transport, StateMachine: setMachine{}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Stop()
	if got := st.replicas[1].rn.BasicStatus().GetCommit(); got != applied {
		t.Fatalf("reloaded replica has commit %d, want the applied %d", got, applied)
	}
}

// A replica writes its hard state when its commit index first covers a
// conf change, so that after a restart raft still knows the change is
// committed and does not campaign with the configuration before it (raft
// refuses to campaign only while it knows of committed, unapplied conf
// changes).
func TestCommitOfAConfChangeIsDurable(t *testing.T) {
	c := newSteppedCluster(t)
	leader := c.leader(t)
	c.settle()
	p := leader.StartChangeReplicas(1, []*raftpb.ConfChangeSingle{{
		Type: raftpb.ConfChangeType_ConfChangeAddLearnerNode.Enum(), NodeId: proto.Uint64(4)}})
	for range 20 {
		c.step(false)
	}
	mustBeDone(t, []*Pending{p})
	c.settle() // followers learn the commit with the next tick's append
	for _, s := range c.stores {
		var conf uint64
		lo, hi := keys.LogSpan(1)
		err := s.eng.Iterate(lo, hi, func(_, v []byte) bool {
			e := &raftpb.Entry{}
			if err := proto.Unmarshal(v, e); err != nil {
				t.Fatal(err)
			}
			if e.GetType() == raftpb.EntryType_EntryConfChangeV2 || e.GetType() == raftpb.EntryType_EntryConfChange {
				conf = e.GetIndex()
			}
			return true
		})
		if err != nil || conf == 0 {
			t.Fatalf("store %d: no conf change in the log (%v)", s.NodeID(), err)
		}
		hs := &raftpb.HardState{}
		if err := getProto(s.eng, keys.HardState(1), hs); err != nil {
			t.Fatal(err)
		}
		if hs.GetCommit() < conf {
			t.Errorf("store %d: commit on disk %d, below the committed conf change at %d", s.NodeID(), hs.GetCommit(), conf)
		}
		if len(s.replicas[1].confIndexes) != 0 {
			t.Errorf("store %d: still waiting to write the commit of conf changes at %v", s.NodeID(), s.replicas[1].confIndexes)
		}
	}
}
