package transport

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"time"
)

const (
	// maxMessageSize bounds one gRPC message in either direction: a raft
	// batch, a snapshot chunk or a Call's request and reply. A forwarded
	// read's reply may be as large as the server's reply bound (96 MiB at
	// most), and a raft entry as large as store.DefaultMaxEntryBytes.
	maxMessageSize = 128 << 20
	// maxCallBytes bounds a Call's request and its reply, leaving room
	// in a message for the other fields.
	maxCallBytes = maxMessageSize - 64<<10
	// maxBatchBytes is roughly how much the sender goroutine puts in one
	// RaftBatch; it stops draining the queue once a batch is this big.
	maxBatchBytes = 4 << 20
	// snapshotChunkSize is the size of the data in one SnapshotChunk.
	snapshotChunkSize = 1 << 20
	// maxSnapshotsPerPeer bounds concurrent snapshot sends to one peer.
	maxSnapshotsPerPeer = 2
	// minClientPing is gRPC's floor for a client's keepalive interval;
	// smaller values are raised by gRPC with a warning.
	minClientPing = 10 * time.Second
	// minBackoff and maxBackoff bound the delay between reconnects.
	minBackoff = 50 * time.Millisecond
	maxBackoff = 2 * time.Second
	// logEvery rate-limits repeated log lines about one peer.
	logEvery = 30 * time.Second
)

// Config configures a Transport. The zero value of every optional field
// means the documented default.
type Config struct {
	// Addr is the host:port to listen on; required. Port 0 picks a free port
	// (see Transport.Addr).
	Addr string
	// NodeID is this node's id, sent with every message. It may be 0 before
	// the cluster has assigned one; see Transport.SetNodeID.
	NodeID uint64
	// Handler receives messages and calls from peers; required.
	Handler Handler
	// Logger receives the transport's logs; default slog.Default().
	Logger *slog.Logger
	// QueueLen is how many raft messages may wait for one peer before new
	// ones are dropped; default 4096.
	QueueLen int
	// DialTimeout is the time a connection attempt is given to complete;
	// default 2s.
	DialTimeout time.Duration
	// Keepalive is how long a connection may be idle before it is pinged;
	// default 2s. gRPC clients never ping more often than every 10s, so on
	// the client side smaller values mean 10s.
	Keepalive time.Duration
	// KeepaliveTimeout is how long to wait for a ping's answer, and for
	// written data to be acknowledged (TCP_USER_TIMEOUT), before the
	// connection is considered dead; default 2s.
	KeepaliveTimeout time.Duration
	// MaxSnapshotSize bounds the data of one received snapshot; default 1 GiB.
	MaxSnapshotSize int64
	// SnapshotRate bounds the bytes per second of the snapshots this node
	// sends, all peers together; 0: no limit.
	SnapshotRate int64
	// ServerTLS and ClientTLS, if set, secure the connections between
	// nodes: ServerTLS the ones peers make to this node, ClientTLS the
	// ones it makes to them (package certs: mutual TLS with the cluster's
	// CA). Both or neither; neither means plain TCP.
	ServerTLS, ClientTLS *tls.Config
}

// validate checks c and fills in defaults.
func (c *Config) validate() error {
	if c.Addr == "" {
		return errors.New("transport: Config.Addr is required")
	}
	if c.Handler == nil {
		return errors.New("transport: Config.Handler is required")
	}
	if (c.ServerTLS == nil) != (c.ClientTLS == nil) {
		return errors.New("transport: ServerTLS and ClientTLS go together")
	}
	if c.QueueLen < 0 || c.DialTimeout < 0 || c.Keepalive < 0 || c.KeepaliveTimeout < 0 || c.MaxSnapshotSize < 0 || c.SnapshotRate < 0 {
		return errors.New("transport: negative Config value")
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.QueueLen == 0 {
		c.QueueLen = 4096
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 2 * time.Second
	}
	if c.Keepalive == 0 {
		c.Keepalive = 2 * time.Second
	}
	if c.KeepaliveTimeout == 0 {
		c.KeepaliveTimeout = 2 * time.Second
	}
	if c.MaxSnapshotSize == 0 {
		c.MaxSnapshotSize = 1 << 30
	}
	return nil
}
