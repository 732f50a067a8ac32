// Package store runs all of a node's shard replicas. Each replica is one
// etcd raft RawNode with AsyncStorageWrites; a single loop goroutine drives
// all of them and never waits for the disk:
//
//  1. take queued inputs (raft messages, proposals, read and admin requests,
//     completed syncs) and ticks, and step them into the replicas; the
//     proposals of one cycle reach each shard's raft as one message, so a
//     follower gets them in one append;
//  2. collect the Ready of every replica that has one and send at once the
//     messages raft allows (a leader's appends and heartbeats), except
//     appends that carry nothing but a new commit index: those wait for a
//     later append or the next tick (replica.holdCommit);
//  3. stage every replica's log entries, hard state and snapshot into ONE
//     pending Pebble batch, handed to the syncer goroutine whenever it is
//     idle (group commit: one fsync per batch); a hard state is written
//     only when its term or vote changed (the commit index is recovered
//     from the applied one);
//  4. apply all committed entries of all replicas in one more batch, then
//     wake the waiting proposers and linearizable readers;
//  5. when a sync completes, tell raft's storage and deliver the responses
//     that waited for durability (acknowledgements, votes).
//
// Writes staged while a batch is syncing join the next batch, so the number
// of fsyncs is bounded by the disk, not by the request rate. ready.go walks
// through the pipeline, lease.go explains leader leases.
//
// Everything a RawNode touches is owned by the loop goroutine; other
// goroutines talk to it only through the inbox (Store.mu) and the waiter
// registry. The syncer only commits batches handed to it.
package store
