package store

import "sync/atomic"

// Stats counts the work of a store's loop since it opened. The ratios
// between them say how well work is batched: proposals or entries per
// sync, messages per send.
type Stats struct {
	Cycles         uint64 // loop cycles: one per wake-up or tick
	Proposals      uint64 // commands proposed to raft by this store
	Syncs          uint64 // raft-write batches made durable with an fsync
	SyncedEntries  uint64 // log entries in those batches
	AppliedEntries uint64 // committed entries applied, every replica
	MessagesSent   uint64 // raft messages handed to the transport
	Sends          uint64 // hand-offs to the transport
	// FollowerReadIndexes counts read index requests this node's
	// followers sent their leaders (each covers the linearizable reads
	// of a shard queued in one cycle); LeaseAnswers those this node's
	// leaders answered under their lease, without a heartbeat round.
	FollowerReadIndexes uint64
	LeaseAnswers        uint64
	// RefusedAppends counts appends and snapshots of data shards dropped
	// because the disk was nearly full (Config.DiskFull).
	RefusedAppends uint64
	// BadSnapshots counts snapshots dropped on arrival because their data
	// would not decode or would write outside their shard.
	BadSnapshots uint64
	// ReplicasRemoved counts replicas deleted from this node because they
	// left their shard.
	ReplicasRemoved uint64
}

// stats is Stats kept with atomics: the loop and the syncer write, any
// goroutine reads.
type stats struct {
	cycles, proposals, syncs, syncedEntries, appliedEntries, messagesSent, sends atomic.Uint64
	followerReadIndexes, leaseAnswers, refusedAppends, badSnapshots              atomic.Uint64
	replicasRemoved                                                              atomic.Uint64
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	c := &s.stats
	return Stats{
		Cycles:         c.cycles.Load(),
		Proposals:      c.proposals.Load(),
		Syncs:          c.syncs.Load(),
		SyncedEntries:  c.syncedEntries.Load(),
		AppliedEntries: c.appliedEntries.Load(),
		MessagesSent:   c.messagesSent.Load(),
		Sends:          c.sends.Load(),

		FollowerReadIndexes: c.followerReadIndexes.Load(),
		LeaseAnswers:        c.leaseAnswers.Load(),
		RefusedAppends:      c.refusedAppends.Load(),
		BadSnapshots:        c.badSnapshots.Load(),
		ReplicasRemoved:     c.replicasRemoved.Load(),
	}
}
