// Package store runs all of a node's shard replicas. Each replica is one
// etcd raft RawNode with AsyncStorageWrites; a single loop goroutine drives
// all of them and never waits for the disk:
//
//  1. take queued inputs (raft messages, proposals, read and admin requests,
//     completed syncs) and ticks, and step them into the replicas;
//  2. collect the Ready of every replica that has one and send at once the
//     messages raft allows (a leader's appends and heartbeats);
//  3. stage every replica's log entries, hard state and snapshot into ONE
//     pending Pebble batch, handed to the syncer goroutine whenever it is
//     idle (group commit: one fsync per batch);
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
