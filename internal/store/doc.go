// Package store runs all of a node's shard replicas. Each replica is one
// etcd raft RawNode; a single loop goroutine drives all of them:
//
//  1. take queued inputs (raft messages, proposals, read and admin requests)
//     and ticks, and step them into the replicas;
//  2. collect the Ready of every replica that has one, write all their log
//     entries, hard states and snapshots into ONE Pebble batch and sync it
//     once (group commit);
//  3. send all outgoing messages through the Transport;
//  4. apply all committed entries of all replicas in one more batch, then
//     wake the waiting proposers and linearizable readers;
//  5. Advance every replica, truncate long logs, and repeat.
//
// Proposals that arrive while a cycle is syncing join the next cycle, so
// the number of fsyncs is bounded by the loop, not by the request rate.
//
// Everything a RawNode touches is owned by the loop goroutine; other
// goroutines talk to it only through the inbox (Store.mu) and the waiter
// registry.
package store
