package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/shoaldb/shoal/internal/engine"
	"github.com/shoaldb/shoal/internal/shoalpb"
)

// TestLoopFinishesWorkWithoutTicks runs a started store whose tick is an
// hour away, so no tick marks its replica active: every proposal must be
// carried through append, sync (completed by the syncer in a later cycle),
// commit and apply by the touches of the calls themselves. A missed touch
// stalls a proposal until its deadline, or trips CheckActive.
func TestLoopFinishesWorkWithoutTicks(t *testing.T) {
	eng, err := engine.Open("db", engine.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	n := &localNet{stores: map[uint64]*Store{}, down: map[uint64]bool{}}
	st, err := New(Config{NodeID: 1, Engine: eng, Transport: localEndpoint{n, 1}, StateMachine: setMachine{},
		TickInterval: time.Hour, Testing: TestingKnobs{CheckActive: true}})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Bootstrap([]*shoalpb.ShardDescriptor{metaDesc}, []uint64{1}, nil); err != nil {
		t.Fatal(err)
	}
	st.Start()
	defer st.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := st.Campaign(ctx, 1); err != nil {
		t.Fatal(err)
	}
	// The election completes without ticks too.
	for !st.replicaIsLeader(1) {
		if ctx.Err() != nil {
			t.Fatal("no leader after the campaign")
		}
		time.Sleep(time.Millisecond)
	}
	for i := range 200 {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := st.Propose(pctx, 1, [][]byte{[]byte("set"), []byte(fmt.Sprint("k", i)), []byte("v")})
		pcancel()
		if err != nil {
			t.Fatalf("proposal %d: %v", i, err)
		}
	}
}

// replicaIsLeader reports whether the published info shows this node
// leading shard.
func (s *Store) replicaIsLeader(shard uint64) bool {
	ri, ok := s.Replica(shard)
	return ok && ri.IsLeader
}

// A follower's read judges expiry by its leader's clock: ReadIndex at a
// follower answered under the leader's lease returns the leader's clock
// reading, however far the follower's own clock is from it.
func TestFollowerReadCarriesTheLeadersTime(t *testing.T) {
	n := &localNet{stores: map[uint64]*Store{}, down: map[uint64]bool{}}
	skew := map[uint64]time.Duration{1: 0, 2: -time.Hour, 3: time.Hour}
	var stores []*Store
	for id := uint64(1); id <= 3; id++ {
		eng, err := engine.Open("db", engine.Options{FS: vfs.NewMem()})
		if err != nil {
			t.Fatal(err)
		}
		defer eng.Close()
		st, err := New(Config{NodeID: id, Engine: eng, Transport: localEndpoint{n, id}, StateMachine: setMachine{},
			TickInterval: 100 * time.Millisecond, Now: func() time.Time { return time.Now().Add(skew[id]) },
			Testing: TestingKnobs{CheckActive: true}})
		if err != nil {
			t.Fatal(err)
		}
		n.mu.Lock()
		n.stores[id] = st
		n.mu.Unlock()
		if err := st.Bootstrap([]*shoalpb.ShardDescriptor{metaDesc}, []uint64{1, 2, 3}, nil); err != nil {
			t.Fatal(err)
		}
		st.Start()
		defer st.Stop()
		stores = append(stores, st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := stores[0].Campaign(ctx, 1); err != nil {
		t.Fatal(err)
	}
	var leader *Store
	for leader == nil {
		for _, st := range stores {
			if st.replicaIsLeader(1) {
				leader = st
			}
		}
		if ctx.Err() != nil {
			t.Fatal("no leader")
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := leader.Propose(ctx, 1, [][]byte{[]byte("set"), []byte("k"), []byte("v")}); err != nil {
		t.Fatal(err)
	}
	// The leader's own read index starts its lease.
	if ms, err := leader.ReadIndex(ctx, 1); err != nil || ms != 0 {
		t.Fatalf("leader's ReadIndex = %d, %v; want 0 (its own clock), nil", ms, err)
	}
	off := skew[leader.NodeID()].Milliseconds()
	for _, f := range stores {
		if f == leader {
			continue
		}
		before := time.Now().UnixMilli() + off
		ms, err := f.ReadIndex(ctx, 1)
		if err != nil {
			t.Fatalf("node %d: follower ReadIndex: %v", f.NodeID(), err)
		}
		if after := time.Now().UnixMilli() + off; ms < before || ms > after {
			t.Errorf("node %d (clock %v off): follower read judged at %d, want the leader's clock, within [%d, %d]", f.NodeID(), skew[f.NodeID()], ms, before, after)
		}
	}
	var answers uint64
	for _, st := range stores {
		answers += st.Stats().LeaseAnswers
	}
	if answers != 2 {
		t.Errorf("%d lease answers, want 2", answers)
	}
}
