package store

import (
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/shoaldb/shoal/internal/shoalpb"
	"go.etcd.io/raft/v3/raftpb"
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

// Reads queued on a leader within one cycle share one read index: one
// heartbeat round, not one per read.
func TestReadIndexBatchesReadsOfOneCycle(t *testing.T) {
	n := &localNet{stores: map[uint64]*Store{}, down: map[uint64]bool{}}
	var mu sync.Mutex
	beats := map[uint64]int{}
	var stores []*Store
	for id := uint64(1); id <= 3; id++ {
		tn := startNode(t, n, id, vfs.NewMem(), 16) // not started: stepped by hand
		tn.st.cfg.Transport = countingTransport{localEndpoint{n, id}, &mu, beats}
		if err := tn.st.Bootstrap([]*shoalpb.ShardDescriptor{metaDesc}, []uint64{1, 2, 3}, nil); err != nil {
			t.Fatal(err)
		}
		stores = append(stores, tn.st)
		defer tn.eng.Close()
	}
	stepAll := func(tick bool) {
		for _, s := range stores {
			s.Step(tick)
		}
	}
	var leader *Store
	for i := 0; i < 500 && leader == nil; i++ {
		stepAll(true)
		for _, s := range stores {
			if ri, _ := s.Replica(1); ri.IsLeader {
				leader = s
			}
		}
	}
	if leader == nil {
		t.Fatal("no leader after 500 ticks")
	}
	// Let the leader commit its first entry, which raft requires before
	// it serves read indexes.
	for range 20 {
		stepAll(false)
	}
	mu.Lock()
	before := beats[leader.NodeID()]
	mu.Unlock()

	const reads = 50
	var pending []*Pending
	for range reads {
		pending = append(pending, leader.StartReadIndex(1))
	}
	for range 20 {
		stepAll(false)
	}
	for i, p := range pending {
		_, err, done := p.Poll()
		if !done || err != nil {
			t.Fatalf("read %d: done=%v err=%v", i, done, err)
		}
	}
	mu.Lock()
	got := beats[leader.NodeID()] - before
	mu.Unlock()
	if got != 2 {
		t.Fatalf("%d reads in one cycle sent %d read-index heartbeats, want 2 (one round to 2 followers)", reads, got)
	}
}
