package store

import (
	"cmp"
	"context"
	"encoding/binary"
	"slices"

	"github.com/shoaldb/shoal/internal/keys"
	"github.com/shoaldb/shoal/internal/replicaid"
)

// A replica that leaves its shard is removed from this node: its raft
// state, its log and its data are deleted, and a tombstone keeps its raft
// id, so that no message for it (or an earlier replica of the shard on
// this node) can bring it back to vote or to serve stale data. A later
// replica of the shard on this node has a larger id (internal/replicaid)
// and starts empty.
//
// A replica is removed when it applies the conf change that removes it,
// when a message for a newer replica of its shard on this node arrives,
// and, at start, if the configuration it applied before a crash no longer
// lists it.

// removeReplica removes r from the store. Its deletion is staged into the
// pending batch of raft writes: any writes staged for r before commit
// before it, in this batch or in the one being synced, so none of them
// outlives it.
func (s *Store) removeReplica(r *replica, why string) {
	if s.replicas[r.shard] != r {
		return
	}
	r.gone.Store(true)
	delete(s.replicas, r.shard)
	if i, ok := slices.BinarySearchFunc(s.order, r.shard, func(x *replica, id uint64) int {
		return cmp.Compare(x.shard, id)
	}); ok {
		s.order = slices.Delete(s.order, i, i+1)
	}
	s.dirty = true
	r.dropLease()

	// Proposals made here: one that left this node may still be applied
	// by the shard; one that did not never will.
	for id, idx := range r.inflight {
		if idx == 0 {
			s.waiters.deliver(id, result{err: ErrDropped})
		} else {
			s.waiters.deliver(id, result{err: ErrOutcomeUnknown})
		}
	}
	r.inflight, r.byIndex, r.unlocated = nil, nil, nil
	notLeader := s.notLeader(r)
	for _, pr := range r.reads {
		s.waiters.deliver(pr.id, notLeader)
	}
	for _, b := range r.readIndexes {
		for _, id := range b.ids {
			s.waiters.deliver(id, notLeader)
		}
	}
	r.reads, r.readIndexes = nil, nil
	s.failReadQueue(r)

	b := s.pendingBatch()
	lo, hi := keys.ReplicaSpan(r.shard)
	b.DeleteRange(lo, hi)
	if r.desc != nil {
		lo, hi := descSpan(r.desc)
		b.DeleteRange(lo, hi)
	}
	b.Set(keys.Tombstone(r.shard), binary.BigEndian.AppendUint64(nil, r.id))
	if s.tombstones == nil {
		s.tombstones = make(map[uint64]uint64)
	}
	s.tombstones[r.shard] = r.id // until the batch commits, and after
	s.pendingStaged = append(s.pendingStaged, staged{r: r})
	s.pendingSync = true
	s.stats.replicasRemoved.Add(1)
	s.log.Info("removed replica", "shard", r.shard, "replica", r.id, "why", why)
}

// IsRemoved reports whether replica id of shard, which this node must
// lead, has left the shard: the leader has applied everything committed
// (its commit index in its own term, so it knows all that was), its
// configuration does not list id, and the shard gave id out before
// (replica ids are never given twice, so id cannot be added later). A
// node holding a replica its leaders no longer talk to asks this before
// deleting it (RemoveStale).
func (s *Store) IsRemoved(ctx context.Context, shard, id uint64) (bool, error) {
	var removed bool
	err := s.call(ctx, func() error {
		r, err := s.leaderReplica(shard)
		if err != nil {
			return err
		}
		st := r.rn.BasicStatus()
		if term, err := r.storage.Term(st.GetCommit()); err != nil || term != st.GetTerm() || r.applied < st.GetCommit() {
			return ErrBusy // a new leader, not caught up: ask again later
		}
		cs := r.storage.conf
		members := slices.Concat(cs.GetVoters(), cs.GetLearners(), cs.GetVotersOutgoing(), cs.GetLearnersNext())
		removed = !slices.Contains(members, id) && replicaid.Incarnation(id) < max(1, r.desc.GetNextReplicaInc())
		return nil
	})
	return removed, err
}

// RemoveStale removes this node's replica of shard if its id is id, which
// the shard's leader said has left the shard (IsRemoved).
func (s *Store) RemoveStale(ctx context.Context, shard, id uint64) error {
	return s.call(ctx, func() error {
		if r := s.replicas[shard]; r != nil && r.id == id {
			s.removeReplica(r, "its shard's leader no longer lists it")
		}
		return nil
	})
}
