// Package shoaltest runs whole shoal clusters inside one test process:
// every node's Pebble on its own crash-simulating in-memory filesystem, the
// nodes talking over simnet (which can partition, drop and delay), and real
// loopback listeners for Redis clients.
package shoaltest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/redis/go-redis/v9"
	"github.com/shoaldb/shoal/internal/node"
	"github.com/shoaldb/shoal/internal/server"
	"github.com/shoaldb/shoal/internal/simnet"
	"github.com/shoaldb/shoal/internal/store"
	"github.com/shoaldb/shoal/internal/transport"
)

// Options configure a Cluster. Zero values mean defaults.
type Options struct {
	Seed   int64 // seeds the network; default 1
	Shards int   // data shards; default 4
	// NoReadLeases runs the nodes with read leases off (--read-leases=false).
	NoReadLeases bool
	// ClusterClientsOnly redirects every client (--cluster-clients-only).
	ClusterClientsOnly bool
	// Verbose logs node output to stderr (also enabled by SHOAL_TEST_LOG=1).
	Verbose bool
	// DeadAfter is the nodes' --dead-after; default 5 minutes.
	DeadAfter time.Duration
}

// Cluster is a set of in-process nodes. Node i has id i+1.
type Cluster struct {
	t       testing.TB
	opts    Options
	Net     *simnet.Network
	members []*member
	logger  *slog.Logger
}

type member struct {
	id   uint64
	addr string
	fs   *vfs.MemFS
	n    *node.Node
	ep   *simnet.Endpoint
}

// Start starts a cluster of size nodes: node 1 creates it, the others join
// one by one. Stopped at the end of the test.
func Start(t testing.TB, size int, opts Options) *Cluster {
	t.Helper()
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	if opts.Shards == 0 {
		opts.Shards = 4
	}
	c := &Cluster{t: t, opts: opts, Net: simnet.New(opts.Seed)}
	level := slog.LevelError
	if opts.Verbose || os.Getenv("SHOAL_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	var w io.Writer = os.Stderr
	c.logger = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
	t.Cleanup(c.Close)
	for range size {
		c.Add()
	}
	return c
}

// Add starts a new node that joins the cluster (or creates it, if first).
func (c *Cluster) Add() *node.Node {
	c.t.Helper()
	m := &member{id: uint64(len(c.members) + 1), fs: vfs.NewCrashableMem()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.t.Fatal(err)
	}
	m.addr = ln.Addr().String()
	c.members = append(c.members, m)
	c.start(m, ln)
	return m.n
}

func busOf(addr string) (string, error) { return "sim-" + addr, nil }

func (c *Cluster) start(m *member, ln net.Listener) {
	c.t.Helper()
	cfg := node.Config{
		DataDir:            "/data",
		Addr:               m.addr,
		Listener:           ln,
		BusAddrOf:          busOf,
		HTTPAddr:           "off",
		Shards:             c.opts.Shards,
		FS:                 m.fs,
		Logger:             c.logger.With("n", m.id),
		TickInterval:       20 * time.Millisecond,
		HeartbeatInterval:  200 * time.Millisecond,
		NoReadLeases:       c.opts.NoReadLeases,
		ClusterClientsOnly: c.opts.ClusterClientsOnly,
		DeadAfter:          c.opts.DeadAfter,
		// Checks that the store's loop is told of every replica with
		// work (replica.touch).
		StoreKnobs: store.TestingKnobs{CheckActive: true},
		NewNet: func(addr string, h transport.Handler) (node.Net, error) {
			m.ep = c.Net.Endpoint(m.id, addr, h)
			return m.ep, nil
		},
	}
	if m.id > 1 {
		cfg.Join = []string{c.members[0].addr}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n, err := node.Start(ctx, cfg)
	if err != nil {
		c.t.Fatalf("start node %d: %v", m.id, err)
	}
	if n.ID() != m.id {
		c.t.Fatalf("node got id %d, want %d", n.ID(), m.id)
	}
	m.n = n
}

// Node returns node id (1-based).
func (c *Cluster) Node(id uint64) *node.Node { return c.members[id-1].n }

// Size is the number of nodes ever added.
func (c *Cluster) Size() int { return len(c.members) }

// Client returns a Redis client connected to node id.
func (c *Cluster) Client(id uint64) *redis.Client {
	cl := redis.NewClient(&redis.Options{
		Addr: c.members[id-1].addr, MaxRetries: -1, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
	})
	c.t.Cleanup(func() { cl.Close() })
	return cl
}

// Crash stops node id as a power loss would: whatever it had not synced to
// its filesystem is lost. The node is cut from the network first, so no
// message leaves it after the instant its disk is captured.
func (c *Cluster) Crash(id uint64) {
	m := c.members[id-1]
	m.ep.Close()
	synced := m.fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	m.n.Close()
	m.n = nil
	m.fs = synced
}

// Restart starts a crashed node again on its own data.
func (c *Cluster) Restart(id uint64) {
	c.t.Helper()
	m := c.members[id-1]
	var ln net.Listener
	var err error
	deadline := time.Now().Add(5 * time.Second)
	for {
		if ln, err = net.Listen("tcp", m.addr); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		c.t.Fatalf("restart node %d: %v", id, err)
	}
	c.start(m, ln)
}

// Close stops every node.
func (c *Cluster) Close() {
	for _, m := range c.members {
		if m.n != nil {
			m.n.Close()
			m.n = nil
		}
	}
}

// WaitFor polls cond until it returns nil or timeout passes.
func (c *Cluster) WaitFor(timeout time.Duration, what string, cond func() error) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("%s: not true after %v: %v", what, timeout, err)
}

// FullyReplicated returns nil once every shard (meta included) has want
// voters and no learners on every running node's view of its replicas, and
// every data shard has a leader.
func (c *Cluster) FullyReplicated(want int) func() error {
	return func() error {
		for _, m := range c.members {
			if m.n == nil {
				continue
			}
			for _, ri := range m.n.Store().Replicas() {
				if !ri.Initialized {
					return fmt.Errorf("node %d: shard %d uninitialized", m.id, ri.Shard)
				}
				// Every replica, not only the leader, has applied the
				// configuration: a replica that has not applied its own
				// promotion refuses to campaign (a leadership transfer to
				// it would come to nothing).
				if !ri.Desc.GetMeta() && (len(ri.Voters) != want || len(ri.Learners) != 0) {
					return fmt.Errorf("node %d: shard %d: voters %v learners %v", m.id, ri.Shard, ri.Voters, ri.Learners)
				}
			}
			if got := len(m.n.Store().Replicas()); got != c.opts.Shards+1 {
				return fmt.Errorf("node %d has %d replicas, want %d", m.id, got, c.opts.Shards+1)
			}
		}
		return c.AllShardsLed()
	}
}

// AllShardsLed returns nil when node 1's (or the first running node's)
// topology names a leader for every data shard.
func (c *Cluster) AllShardsLed() error {
	for _, m := range c.members {
		if m.n == nil {
			continue
		}
		return allLed(m.n.Topology())
	}
	return fmt.Errorf("no running node")
}

func allLed(t server.Topology) error {
	for _, sh := range t.Shards {
		if sh.Leader == 0 {
			return fmt.Errorf("shard %d has no leader", sh.ID)
		}
	}
	return nil
}
