// Package server serves Redis clients: the connection read loop with
// pipelining, RESP2/RESP3, the command table, connection and server commands,
// slot-to-shard routing with CROSSSLOT and MOVED, and cluster-wide fan-out of
// KEYS, SCAN, DBSIZE, RANDOMKEY and FLUSHALL. Data commands run through a
// Cluster, which the node implements.
//
// # Connections
//
// Each client connection has one goroutine, started by Serve and owned by
// the Server (Close closes every connection and waits for them). It reads
// into a buffer that grows to hold the largest command, parses every
// complete command in it (resp.Parser), runs them in order, appends the
// replies to one output buffer and writes it once per read. A protocol
// error is answered with Redis's text and the connection is closed; any
// other bad input gets an error reply and the connection carries on.
//
// # Routing
//
// A command kv implements is routed by its keys (kv.Spec.Keys): the slot of
// each key (keys.Slot) picks the shard owning it in Topology().Shards. All
// keys must be on one shard, else CROSSSLOT. (Redis Cluster wants them in
// one slot; shoal only needs one shard.) Then:
//
//   - a cluster-aware client (one that sent CLUSTER SLOTS, SHARDS or NODES,
//     READONLY or READWRITE; every client under Config.ClusterClientsOnly)
//     gets "MOVED <slot of first key> <leader>" when
//     the shard's leader is known and is another node, except for a read on
//     a READONLY connection when this node holds a replica of the shard;
//   - otherwise the command goes to Cluster.Execute, which forwards it to the
//     leader if needed, so a plain client can use any node for everything.
//
// Errors of the Cluster become replies in one place, errorReply: TRYAGAIN
// for no leader, a timeout or a cancellation, CLUSTERDOWN for an
// unavailable shard, ERR for anything else.
//
// # Fan-out
//
// Per-shard commands (kv.AllShards) are sent to every shard of the topology,
// a few at a time, from whichever node the client is on: KEYS concatenates,
// DBSIZE sums, FLUSHALL and FLUSHDB flush every shard, RANDOMKEY tries
// shards in random order. SCAN's cursor is a slot: the shard owning it scans
// whole slots from there and answers the next slot, so every key present for
// the whole iteration is returned exactly once; the cursor past the last
// slot is 0. COMMAND advertises no request policies, so cluster clients do
// not fan out a second time.
//
// # Cluster view
//
// To Redis Cluster clients every node is a master serving the slots of the
// shards it leads (a shard without a known leader is shown under its first
// replica), and a shard's other replicas are that master's replicas. Node
// ids are 40 hex digits of the numeric id; the bus port is the client port
// plus 10000.
//
// # Locks
//
// Server.mu guards the listener and connection sets and the stored CONFIG
// values. conn.mu guards the state CLIENT LIST reads (conn.st); only the
// connection's goroutine writes it. Neither lock is held while another is
// taken, except that CLIENT LIST takes conn.mu of each connection after
// releasing Server.mu.
package server
