// Package sim runs whole shoal stores in one goroutine from a seed, as
// FoundationDB's simulation does: Pebble on crash-simulating memory
// filesystems (a crash loses what was not synced), a simulated network
// that delays, drops, duplicates, reorders and partitions messages, a
// virtual clock, and seeded randomness everywhere. Raft's own election
// jitter comes from crypto/rand, which the test makes deterministic with
// testing/cryptotest. The same seed gives the same run, step for step.
//
// Clients drive a workload of reads, writes, increments and
// compare-and-set commands (real Redis commands through kv) while a
// seeded nemesis crashes and restarts nodes, partitions the network and
// changes the shard's membership. Every operation's invocation and
// completion is recorded; operations whose outcome cannot be known are
// recorded as indeterminate, and the history is checked for
// linearizability with porcupine. Final reads after healing make the same
// check cover durability: an acknowledged write that was lost makes the
// history non-linearizable. Half the SETs carry a TTL far beyond the run,
// so the replicas keep expiry index entries and their per-slot counts
// through the faults; at the end kv.CheckIndex checks them on every node.
package sim
