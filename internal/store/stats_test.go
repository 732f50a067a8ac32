package store

import (
	"fmt"
	"testing"
)

// The loop's counters follow its work: proposals made here, entries made
// durable and applied on every replica, and writes proposed in one cycle
// synced together.
func TestStatsCountTheLoopsWork(t *testing.T) {
	c := newSteppedCluster(t)
	leader := c.leader(t)
	before := map[*Store]Stats{}
	for _, s := range c.stores {
		before[s] = s.Stats()
	}
	const writes = 10
	var pending []*Pending
	for i := range writes {
		pending = append(pending, leader.StartPropose(1, [][]byte{[]byte("set"), []byte(fmt.Sprint("k", i)), []byte("v")}))
	}
	for range 20 {
		c.step(false)
	}
	for i, p := range pending {
		if _, err, done := p.Poll(); !done || err != nil {
			t.Fatalf("write %d: done=%v err=%v", i, done, err)
		}
	}
	for _, s := range c.stores {
		b, a := before[s], s.Stats()
		d := Stats{
			Cycles: a.Cycles - b.Cycles, Proposals: a.Proposals - b.Proposals, Syncs: a.Syncs - b.Syncs,
			SyncedEntries: a.SyncedEntries - b.SyncedEntries, AppliedEntries: a.AppliedEntries - b.AppliedEntries,
			MessagesSent: a.MessagesSent - b.MessagesSent, Sends: a.Sends - b.Sends,
		}
		wantProposals := uint64(0)
		if s == leader {
			wantProposals = writes
		}
		switch {
		case d.Cycles != 20:
			t.Errorf("node %d: %d cycles counted in 20 steps", s.NodeID(), d.Cycles)
		case d.Proposals != wantProposals:
			t.Errorf("node %d: %d proposals, want %d", s.NodeID(), d.Proposals, wantProposals)
		case d.SyncedEntries != writes || d.AppliedEntries != writes:
			t.Errorf("node %d: %d entries synced and %d applied, want %d each", s.NodeID(), d.SyncedEntries, d.AppliedEntries, writes)
		case d.Syncs != 1:
			t.Errorf("node %d: %d syncs for writes proposed in one cycle, want 1", s.NodeID(), d.Syncs)
		case d.Sends == 0 || d.MessagesSent < d.Sends:
			t.Errorf("node %d: %d messages in %d sends", s.NodeID(), d.MessagesSent, d.Sends)
		}
	}
}
