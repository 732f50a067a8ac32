// Package server serves Redis clients: the connection read loop with
// pipelining, RESP2/RESP3, the command table, connection and server commands,
// slot-to-shard routing with CROSSSLOT and MOVED, and cluster-wide fan-out of
// KEYS, SCAN, DBSIZE, RANDOMKEY and FLUSHALL. Data commands run through a
// Cluster, which the node implements.
package server
