package server

import (
	"context"
	"errors"

	"github.com/shoaldb/shoal/internal/resp"
)

// Cluster is what the server needs from the node: the routing view and a
// way to run a command on a shard wherever its leader is.
type Cluster interface {
	// Topology returns the node's current view of the cluster.
	Topology() Topology
	// Execute runs a kv command on one shard and returns its reply. It
	// proposes writes through raft and serves reads linearizably (or from
	// the local replica when FollowerRead is set and one exists); it
	// forwards to the shard's leader when this node is not the leader.
	Execute(ctx context.Context, req Request) (resp.Value, error)
	// Users returns the cluster's users as this node knows them, nil
	// before the node knows its cluster.
	Users() Users
	// RefreshUsers makes Users include every change to the users
	// acknowledged before it was called.
	RefreshUsers(ctx context.Context) error
	// SetUser applies ACL SETUSER's modifiers, as acl.Prepare returns
	// them, to the user named name, creating it if needed, and returns
	// once Users includes the change: OK or the error reply.
	SetUser(ctx context.Context, name string, ops []string) (resp.Value, error)
	// DelUsers deletes the users named, as ACL DELUSER: the count deleted
	// or the error reply, once Users includes the change.
	DelUsers(ctx context.Context, names []string) (resp.Value, error)
	// NodeStatus returns every node's state and share of the replicas.
	NodeStatus() []NodeStatus
	// Decommission starts draining the node named by its id or address:
	// OK, or the error reply that says why not (the shards that would be
	// left short).
	Decommission(ctx context.Context, node string) (resp.Value, error)
}

// NodeStatus is one node as SHOAL.NODE STATUS reports it.
type NodeStatus struct {
	ID    uint64
	Addr  string
	State string // live, suspect, dead, decommissioning, decommissioned
	// Replicas, Leaders and Learners count the node's replicas (voters
	// and learners) of every shard, the shards it leads, and its replicas
	// still being added (learners).
	Replicas, Leaders, Learners int
	// Bytes sums the sizes of the shards it holds a replica of, as their
	// leaders last reported them.
	Bytes uint64
}

// Request is one command for one shard.
type Request struct {
	Shard uint64
	// Args are the command, its name first as the client sent it. They
	// alias the client's read buffer: Execute must not modify them, nor
	// keep them after it returns.
	Args         [][]byte
	Write        bool
	FollowerRead bool
	// MaxReplyLen bounds the reply of a read (kv.Env.MaxReplyLen); 0
	// means no bound.
	MaxReplyLen int64
}

// Topology is a snapshot of the cluster as this node knows it.
type Topology struct {
	Self      uint64 // this node's id
	ClusterID string
	Nodes     []Node
	Shards    []Shard // data shards, ordered by FirstSlot, covering all slots
}

// Node is one member of the cluster.
type Node struct {
	ID    uint64
	Addr  string // client (RESP) address, host:port
	Alive bool
}

// Shard is one data shard: a slot range and its replicas.
type Shard struct {
	ID        uint64
	FirstSlot int
	LastSlot  int
	Replicas  []uint64 // voter node ids
	Leader    uint64   // 0 if unknown
}

// Errors Execute returns; the server maps them to Redis replies.
var (
	// ErrNoLeader: the shard has no known leader right now (-TRYAGAIN).
	ErrNoLeader = errors.New("server: shard has no leader")
	// ErrUnavailable: the shard cannot be reached (-CLUSTERDOWN).
	ErrUnavailable = errors.New("server: shard unavailable")
	// ErrTimeout: the outcome of the command is unknown (-TRYAGAIN).
	ErrTimeout = errors.New("server: command timed out, outcome unknown")
	// ErrTooLarge: the command is too large to replicate; it was not
	// applied.
	ErrTooLarge = errors.New("server: command too large")
	// ErrOOM: the node that would run the write uses more than its
	// maxmemory; it was not applied (-OOM).
	ErrOOM = errors.New("server: over maxmemory")
	// ErrDiskFull: the node that would run the write has a nearly full
	// disk; it was not applied (-MISCONF).
	ErrDiskFull = errors.New("server: disk full")
)
