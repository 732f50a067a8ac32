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
	const writes = 10
	before, pending := c.startWrites(leader, writes)
	// The tick sends the followers the commit index the leader held back
	// (replica.holdCommit), so they apply too.
	for i := range 30 {
		c.step(i == 15)
	}
	mustBeDone(t, pending)
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
		case d.Cycles != 30:
			t.Errorf("node %d: %d cycles counted in 30 steps", s.NodeID(), d.Cycles)
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

// The writes proposed in one cycle cost one append to each follower and
// one answer from each: raft gets them in one proposal (proposeQueued),
// and the leader holds back the append that would only carry the new
// commit index until the next tick, when the followers learn it and apply.
func TestWritesOfACycleCostOneAppendPerFollower(t *testing.T) {
	c := newSteppedCluster(t)
	leader := c.leader(t)
	const writes = 10
	before, pending := c.startWrites(leader, writes)
	for range 20 {
		c.step(false)
	}
	mustBeDone(t, pending)
	for _, s := range c.stores {
		d := s.Stats()
		sent, applied := d.MessagesSent-before[s].MessagesSent, d.AppliedEntries-before[s].AppliedEntries
		wantSent, wantApplied := uint64(1), uint64(0)
		if s == leader {
			wantSent, wantApplied = 2, writes
		}
		if sent != wantSent || applied != wantApplied {
			t.Errorf("node %d before the tick: sent %d messages and applied %d entries, want %d and %d", s.NodeID(), sent, applied, wantSent, wantApplied)
		}
	}
	c.settle()
	for _, s := range c.stores {
		if applied := s.Stats().AppliedEntries - before[s].AppliedEntries; applied != writes {
			t.Errorf("node %d after the tick: applied %d entries, want %d", s.NodeID(), applied, writes)
		}
	}
}

// settle steps the cluster through one tick and what follows it, so that
// followers learn the commit index their leader held back.
func (c *steppedCluster) settle() {
	c.step(true)
	for range 20 {
		c.step(false)
	}
}

// startWrites settles the cluster, notes every store's counters, and has
// leader propose n writes in one cycle.
func (c *steppedCluster) startWrites(leader *Store, n int) (map[*Store]Stats, []*Pending) {
	c.settle()
	before := map[*Store]Stats{}
	for _, s := range c.stores {
		before[s] = s.Stats()
	}
	var pending []*Pending
	for i := range n {
		pending = append(pending, leader.StartPropose(1, [][]byte{[]byte("set"), []byte(fmt.Sprint("k", i)), []byte("v")}))
	}
	return before, pending
}

// mustBeDone fails t unless every request has succeeded.
func mustBeDone(t *testing.T, pending []*Pending) {
	t.Helper()
	for i, p := range pending {
		if _, err, done := p.Poll(); !done || err != nil {
			t.Fatalf("request %d: done=%v err=%v", i, done, err)
		}
	}
}
