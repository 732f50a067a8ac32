package store

import (
	"context"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/shoaldb/shoal/internal/keys"
	"github.com/shoaldb/shoal/internal/shoalpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// netFilter holds back MsgTimeoutNow messages and cuts a node off.
type netFilter struct {
	mu       sync.Mutex
	held     []*shoalpb.RaftEnvelope
	isolated uint64
}

type filterTransport struct {
	localEndpoint
	f *netFilter
}

func (t filterTransport) Send(envs []*shoalpb.RaftEnvelope) {
	t.f.mu.Lock()
	var out []*shoalpb.RaftEnvelope
	for _, env := range envs {
		m := env.GetMessage()
		switch {
		case m.GetType() == raftpb.MessageType_MsgTimeoutNow:
			t.f.held = append(t.f.held, env)
		case t.f.isolated != 0 && (m.GetTo() == t.f.isolated || t.from == t.f.isolated):
		default:
			out = append(out, env)
		}
	}
	t.f.mu.Unlock()
	t.localEndpoint.Send(out)
}

// raft gives a leadership transfer up after an election timeout while its
// MsgTimeoutNow may still be on its way; when it arrives, its target
// campaigns at once, and voters ignore the lease for such an election. A
// leader that asked for a transfer must therefore take no lease for the
// rest of that term, or it would serve, and answer followers' read
// indexes with, a state older than the new leader's acknowledged writes.
func TestNoLeaseAfterATransferInTheSameTerm(t *testing.T) {
	f := &netFilter{}
	n := &localNet{stores: map[uint64]*Store{}, down: map[uint64]bool{}}
	c := &steppedCluster{beats: map[uint64]int{}}
	var engs = map[uint64]*testNode{}
	for id := uint64(1); id <= 3; id++ {
		tn := startNode(t, n, id, vfs.NewMem(), 1024)
		tn.st.cfg.Transport = filterTransport{localEndpoint{n, id}, f}
		if err := tn.st.Bootstrap([]*shoalpb.ShardDescriptor{metaDesc}, []uint64{1, 2, 3}, nil); err != nil {
			t.Fatal(err)
		}
		c.stores = append(c.stores, tn.st)
		engs[id] = tn
		t.Cleanup(func() { tn.st.Stop(); tn.eng.Close() })
	}
	leader := c.leader(t)
	var g *Store
	for _, s := range c.stores {
		if s != leader {
			g = s
			break
		}
	}
	// Ask for a transfer to g; its MsgTimeoutNow is held back.
	done := make(chan error, 1)
	go func() { done <- leader.TransferLeader(context.Background(), 1, g.NodeID()) }()
	for len(done) == 0 {
		leader.Step(false)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for range 5 {
		c.step(false)
	}
	f.mu.Lock()
	held := len(f.held)
	f.mu.Unlock()
	if held == 0 {
		t.Fatal("no MsgTimeoutNow sent")
	}
	// raft gives the transfer up after an election timeout of ticks.
	for range leader.cfg.ElectionTicks + 2 {
		c.step(true)
	}
	if lt := leader.replicas[1].rn.BasicStatus().LeadTransferee; lt != 0 {
		t.Fatalf("transfer to %d still under way", lt)
	}
	// A read index gives the leader a new lease.
	p := leader.StartReadIndex(1)
	for range 10 {
		c.step(false)
	}
	if _, err, ok := p.Poll(); !ok || err != nil {
		t.Fatalf("read index: %v %v", ok, err)
	}
	if holdsLease(leader) {
		t.Fatal("the leader took a lease in the term it asked for a transfer in")
	}
	// The leader is cut off; the old MsgTimeoutNow reaches g.
	f.mu.Lock()
	f.isolated = leader.NodeID()
	msgs := f.held
	f.held = nil
	f.mu.Unlock()
	for _, env := range msgs {
		g.HandleRaft(leader.NodeID(), []*shoalpb.RaftEnvelope{env})
	}
	for range 10 {
		c.step(false) // no ticks: no election timer runs out
	}
	if ri, _ := g.Replica(1); !ri.IsLeader {
		t.Fatalf("g did not become leader (state %v): the test no longer builds its case", g.replicas[1].rn.BasicStatus().RaftState)
	}
	pp := g.StartPropose(1, [][]byte{[]byte("set"), []byte("w"), []byte("new")})
	for range 10 {
		c.step(false)
	}
	if _, err, ok := pp.Poll(); !ok || err != nil {
		t.Fatalf("write at the new leader: %v %v", ok, err)
	}
	v, _, _ := engs[leader.NodeID()].eng.Get(keys.Meta("w"))
	if holdsLease(leader) && leader.replicas[1].rn.BasicStatus().RaftState == raft.StateLeader {
		t.Errorf("node %d (old leader) holds a valid lease and would serve w=%q, after node %d, elected by the delayed MsgTimeoutNow, acknowledged w=new",
			leader.NodeID(), v, g.NodeID())
	}
}
