package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/shoaldb/shoal/internal/shoalpb"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// countingTransport counts, per sender, the heartbeats that carry a
// read-index context before handing messages to the local network.
type countingTransport struct {
	localEndpoint
	mu        *sync.Mutex
	readBeats map[uint64]int
}

func (c countingTransport) Send(envs []*shoalpb.RaftEnvelope) {
	c.mu.Lock()
	for _, env := range envs {
		m := env.GetMessage()
		if m.GetType() == raftpb.MessageType_MsgHeartbeat && len(m.GetContext()) > 0 {
			c.readBeats[c.from]++
		}
	}
	c.mu.Unlock()
	c.localEndpoint.Send(envs)
}

// holdsLease reports whether s holds a read lease on shard 1.
func holdsLease(s *Store) bool {
	ri, _ := s.Replica(1)
	return s.LeaseRead(ri)
}

// steppedCluster is three stores replicating shard 1, driven by hand.
type steppedCluster struct {
	stores []*Store
	mu     sync.Mutex
	beats  map[uint64]int // read-index heartbeats sent, by sender
}

func newSteppedCluster(t *testing.T) *steppedCluster {
	t.Helper()
	c := &steppedCluster{beats: map[uint64]int{}}
	n := &localNet{stores: map[uint64]*Store{}, down: map[uint64]bool{}}
	for id := uint64(1); id <= 3; id++ {
		tn := startNode(t, n, id, vfs.NewMem(), 16) // not started: stepped by hand
		tn.st.cfg.Transport = countingTransport{localEndpoint{n, id}, &c.mu, c.beats}
		if err := tn.st.Bootstrap([]*shoalpb.ShardDescriptor{metaDesc}, []uint64{1, 2, 3}, nil); err != nil {
			t.Fatal(err)
		}
		c.stores = append(c.stores, tn.st)
		t.Cleanup(func() { tn.st.Stop(); tn.eng.Close() })
	}
	return c
}

func (c *steppedCluster) step(tick bool) {
	for _, s := range c.stores {
		s.Step(tick)
	}
}

// leader ticks until one store leads shard 1 and has committed an entry
// of its term (raft serves read indexes only then).
func (c *steppedCluster) leader(t *testing.T) *Store {
	t.Helper()
	for range 500 {
		c.step(true)
		for _, s := range c.stores {
			if ri, _ := s.Replica(1); ri.IsLeader {
				for range 20 {
					c.step(false)
				}
				return s
			}
		}
	}
	t.Fatal("no leader after 500 ticks")
	return nil
}

func (c *steppedCluster) readBeats(s *Store) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.beats[s.NodeID()]
}

// Reads queued on a leader within one cycle share one read index: one
// heartbeat round, not one per read.
func TestReadIndexBatchesReadsOfOneCycle(t *testing.T) {
	c := newSteppedCluster(t)
	leader := c.leader(t)
	before := c.readBeats(leader)
	const reads = 50
	var pending []*Pending
	for range reads {
		pending = append(pending, leader.StartReadIndex(1))
	}
	for range 20 {
		c.step(false)
	}
	for i, p := range pending {
		_, err, done := p.Poll()
		if !done || err != nil {
			t.Fatalf("read %d: done=%v err=%v", i, done, err)
		}
	}
	if got := c.readBeats(leader) - before; got != 2 {
		t.Fatalf("%d reads in one cycle sent %d read-index heartbeats, want 2 (one round to 2 followers)", reads, got)
	}
}

// A confirmed read index gives the leader a lease, and only the leader;
// handing leadership over ends it before any vote can be cast.
func TestLeaseFromReadIndexEndsOnTransfer(t *testing.T) {
	c := newSteppedCluster(t)
	leader := c.leader(t)
	if holdsLease(leader) {
		t.Fatal("lease held before any read index was confirmed")
	}
	p := leader.StartReadIndex(1)
	for range 20 {
		c.step(false)
	}
	if _, err, done := p.Poll(); !done || err != nil {
		t.Fatalf("read index: done=%v err=%v", done, err)
	}
	if !holdsLease(leader) {
		t.Fatal("no lease after a confirmed read index")
	}
	var to uint64
	for _, s := range c.stores {
		if s != leader && holdsLease(s) {
			t.Fatalf("follower %d holds a lease", s.NodeID())
		}
		if s != leader {
			to = s.NodeID()
		}
	}
	done := make(chan error, 1)
	go func() { done <- leader.TransferLeader(context.Background(), 1, to) }()
	for len(done) == 0 {
		leader.Step(false) // runs the transfer request queued by the goroutine
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if holdsLease(leader) {
		t.Fatal("lease still held after asking for a leadership transfer")
	}
}

// A replica that has just started ignores vote requests for an election
// timeout: it cannot know whether a leader holds a lease its vote would
// break.
func TestRestartedReplicaIgnoresVotesForAnElectionTimeout(t *testing.T) {
	n := &localNet{stores: map[uint64]*Store{}, down: map[uint64]bool{}}
	tn := startNode(t, n, 1, vfs.NewMem(), 16)
	defer func() { tn.st.Stop(); tn.eng.Close() }()
	if err := tn.st.Bootstrap([]*shoalpb.ShardDescriptor{metaDesc}, []uint64{1, 2, 3}, nil); err != nil {
		t.Fatal(err)
	}
	r := tn.st.replicas[1]
	vote := func() *shoalpb.RaftEnvelope {
		return &shoalpb.RaftEnvelope{ShardId: 1, Message: &raftpb.Message{
			Type: raftpb.MessageType_MsgVote.Enum(), From: proto.Uint64(2), To: proto.Uint64(1),
			Term: proto.Uint64(initialTerm + 1), LogTerm: proto.Uint64(initialTerm), Index: proto.Uint64(initialIndex),
		}}
	}
	for tick := 0; tick < tn.st.cfg.ElectionTicks-1; tick++ {
		tn.st.HandleRaft(2, []*shoalpb.RaftEnvelope{vote()})
		tn.st.Step(true)
		if got := r.rn.BasicStatus().GetTerm(); got != initialTerm {
			t.Fatalf("after %d ticks a vote request moved the replica to term %d", tick+1, got)
		}
	}
	tn.st.Step(true) // the ElectionTicks-th tick
	tn.st.HandleRaft(2, []*shoalpb.RaftEnvelope{vote()})
	tn.st.Step(false)
	if got := r.rn.BasicStatus().GetTerm(); got != initialTerm+1 {
		t.Fatalf("after an election timeout the replica ignored a vote request (term %d, want %d)", got, initialTerm+1)
	}
}

// An empty replica (one created for a shard this node was added to, before
// a snapshot gives it a descriptor) is not loaded when its node restarts:
// the vote it made durable must still bind the replica created for the
// shard's next message, or it could vote twice in one term.
func TestEmptyReplicaRemembersItsVoteAcrossRestarts(t *testing.T) {
	const shard = 7
	n := &localNet{stores: map[uint64]*Store{}, down: map[uint64]bool{}}
	fs := vfs.NewMem()
	tn := startNode(t, n, 1, fs, 16)
	msg := func(typ raftpb.MessageType, from, term uint64) []*shoalpb.RaftEnvelope {
		return []*shoalpb.RaftEnvelope{{ShardId: shard, Message: &raftpb.Message{
			Type: typ.Enum(), From: proto.Uint64(from), To: proto.Uint64(1), Term: proto.Uint64(term),
			LogTerm: proto.Uint64(0), Index: proto.Uint64(0), Commit: proto.Uint64(0),
		}}}
	}
	// voteAfterTimeout creates the empty replica with a heartbeat at term
	// 5 from node 2, lets an election timeout pass (a fresh replica
	// ignores vote requests until then, and so does a follower that heard
	// from its leader lately), then asks for from's vote at term 6.
	voteAfterTimeout := func(tn *testNode, from uint64) *replica {
		tn.st.HandleRaft(2, msg(raftpb.MessageType_MsgHeartbeat, 2, 5))
		tn.st.Step(false)
		for range tn.st.cfg.ElectionTicks {
			tn.st.Step(true)
		}
		tn.st.HandleRaft(from, msg(raftpb.MessageType_MsgVote, from, 6))
		tn.st.Step(false)
		tn.st.Step(false) // the vote's sync completes; the answer leaves
		return tn.st.replicas[shard]
	}
	r := voteAfterTimeout(tn, 2)
	if st := r.rn.BasicStatus(); st.GetTerm() != 6 || st.GetVote() != 2 {
		t.Fatalf("before the restart: term %d vote %d, want term 6 vote 2", st.GetTerm(), st.GetVote())
	}
	tn.stop(n, 1)

	tn = startNode(t, n, 1, fs, 16)
	defer tn.stop(n, 1)
	if tn.st.replicas[shard] != nil {
		t.Fatal("the empty replica was loaded at start; this test means to create it anew")
	}
	r = voteAfterTimeout(tn, 3)
	if st := r.rn.BasicStatus(); st.GetTerm() != 6 || st.GetVote() != 2 {
		t.Fatalf("after the restart: term %d vote %d, want term 6 and the vote for 2 kept", st.GetTerm(), st.GetVote())
	}
}

// A proposal that a new leader's append replaces in the same cycle, before
// any Ready carried it to the disk or the followers, fails at once as
// dropped (its client may retry) instead of waiting until its deadline.
func TestProposalReplacedBeforeItsReadyIsDropped(t *testing.T) {
	n := &localNet{stores: map[uint64]*Store{}, down: map[uint64]bool{}}
	tn := startNode(t, n, 1, vfs.NewMem(), 16)
	defer tn.stop(n, 1)
	if err := tn.st.Bootstrap([]*shoalpb.ShardDescriptor{metaDesc}, []uint64{1, 2, 3}, nil); err != nil {
		t.Fatal(err)
	}
	st, r := tn.st, tn.st.replicas[1]
	from2 := func(typ raftpb.MessageType, term uint64) *raftpb.Message {
		return &raftpb.Message{Type: typ.Enum(), From: proto.Uint64(2), To: proto.Uint64(1), Term: proto.Uint64(term)}
	}
	// Node 1 wins term initialTerm+1 with node 2's (pre-)vote.
	r.touch().Campaign()
	st.Step(false)
	st.HandleRaft(2, []*shoalpb.RaftEnvelope{{ShardId: 1, Message: from2(raftpb.MessageType_MsgPreVoteResp, initialTerm+1)}})
	st.Step(false)
	st.HandleRaft(2, []*shoalpb.RaftEnvelope{{ShardId: 1, Message: from2(raftpb.MessageType_MsgVoteResp, initialTerm+1)}})
	st.Step(false)
	st.Step(false)
	if !r.isLeader() {
		t.Fatalf("node 1 did not become leader: %+v", r.rn.BasicStatus())
	}
	// In one cycle: a SET is proposed at index initialIndex+2, then node 2,
	// leader of a newer term, appends an entry at initialIndex+1 that
	// conflicts with node 1's own empty entry there, which truncates the
	// proposal before any Ready has carried it.
	p := st.StartPropose(1, [][]byte{[]byte("set"), []byte("k"), []byte("v")})
	app := from2(raftpb.MessageType_MsgApp, initialTerm+2)
	app.Index, app.LogTerm, app.Commit = proto.Uint64(initialIndex), proto.Uint64(initialTerm), proto.Uint64(initialIndex)
	app.Entries = []*raftpb.Entry{{Index: proto.Uint64(initialIndex + 1), Term: proto.Uint64(initialTerm + 2)}}
	st.HandleRaft(2, []*shoalpb.RaftEnvelope{{ShardId: 1, Message: app}})
	st.Step(false)
	st.Step(false)
	if last, _ := r.storage.LastIndex(); last != initialIndex+1 {
		t.Fatalf("node 1's log ends at %d, want %d: the test did not replace the proposal", last, initialIndex+1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := p.Wait(ctx); !errors.Is(err, ErrDropped) {
		t.Fatalf("replaced proposal: %v, want ErrDropped", err)
	}
}
