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
