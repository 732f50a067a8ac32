// Package transport carries traffic between shoal nodes over gRPC.
//
// Each node runs one Transport. It serves the shoalpb.Node service on its
// listen address and keeps one gRPC connection to every peer it is told
// about with SetPeer. Three kinds of traffic share that connection:
//
//   - Raft messages. Send puts each envelope on the queue of its destination
//     peer (env.Message.To) and returns at once. One sender goroutine per
//     peer drains everything queued into a single RaftBatch and writes it on
//     one long-lived Raft stream, so the messages of all shards to a peer
//     travel together, in the order they were sent.
//   - Snapshots. A MsgSnap is not queued: it is streamed in 1 MiB chunks on
//     its own Snapshot stream, at most two at a time per peer, and the result
//     is reported with Handler.ReportSnapshot.
//   - Calls: generic request/reply RPCs (forwarded commands, joins, placement
//     operations) named by a method string. Calls to a peer share one
//     long-lived Calls stream: concurrent calls are written together in one
//     batch, and replies come back batched. CallAddr, and calls to peers
//     whose binary predates the stream, use one unary gRPC call each.
//
// # Delivery contract
//
// Delivery of raft messages is best effort, as raft expects: a message that
// cannot be sent is dropped and reported with Handler.ReportUnreachable so
// raft can probe the follower again. A message is dropped when its peer is
// unknown, when the peer's queue is full (a slow or dead peer never blocks
// Send or traffic to other peers), and when the stream to the peer is broken
// (messages queued while reconnecting are dropped too; raft retransmits).
// Messages that were written to a stream that then broke may be lost without
// a report, as with any network.
//
// The sender goroutine reconnects with exponential backoff (50 ms doubling to
// 2 s, with jitter). gRPC keepalives and TCP_USER_TIMEOUT detect a dead peer
// within a few seconds while traffic flows to it.
//
// # Handler calls
//
// HandleRaft is called from gRPC server goroutines, one stream at a time per
// sending peer, so it sees each peer's messages in order. Send calls
// ReportUnreachable and ReportSnapshot synchronously, on the caller's
// goroutine, for messages it drops at once (unknown peer, full queue, too
// many snapshots in flight); the callers of Send must therefore not hold
// locks those methods take. The transport's own goroutines call them too.
// Every Handler method must return quickly. No Handler method is called after
// Close returns, except from Send calls that race with Close.
//
// Send takes ownership of the envelopes: the caller must not modify them
// afterwards. Snapshot data is only read, never modified.
package transport
