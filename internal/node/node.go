// Package node assembles one shoal node: the engine, the store of shard
// replicas, the transport to other nodes, the cached meta view, the
// placement controller and the RESP server. It implements server.Cluster:
// a command for any shard runs here if this node leads the shard, and is
// forwarded to the leader otherwise.
package node

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/shoaldb/shoal/internal/acl"
	"github.com/shoaldb/shoal/internal/admin"
	"github.com/shoaldb/shoal/internal/certs"
	"github.com/shoaldb/shoal/internal/diskspace"
	"github.com/shoaldb/shoal/internal/engine"
	"github.com/shoaldb/shoal/internal/keys"
	"github.com/shoaldb/shoal/internal/kv"
	"github.com/shoaldb/shoal/internal/memlimit"
	"github.com/shoaldb/shoal/internal/meta"
	"github.com/shoaldb/shoal/internal/placement"
	"github.com/shoaldb/shoal/internal/server"
	"github.com/shoaldb/shoal/internal/shoalpb"
	"github.com/shoaldb/shoal/internal/store"
	"github.com/shoaldb/shoal/internal/transport"
	"google.golang.org/protobuf/proto"
)

// Net is how a node talks to other nodes; *transport.Transport and
// *simnet.Endpoint implement it.
type Net interface {
	Send(envs []*shoalpb.RaftEnvelope)
	SetNodeID(id uint64)
	SetPeer(id uint64, addr string)
	Call(ctx context.Context, to uint64, method string, body []byte) ([]byte, error)
	CallAddr(ctx context.Context, addr, method string, body []byte) ([]byte, error)
	Close() error
}

// Config configures a node. Zero values mean defaults.
type Config struct {
	// DataDir holds the node's database; required.
	DataDir string
	// Addr is the client (RESP) listen address; default 127.0.0.1:6379.
	Addr string
	// BusAddr is the node-to-node listen address; default: the client
	// port + 10000 on the same host, as Redis Cluster's bus.
	BusAddr string
	// HTTPAddr serves /healthz, /readyz and /metrics; default: the client
	// port + 20000 on the same host (6379 -> 26379); "off" disables it.
	HTTPAddr string
	// MetricsAuth makes /metrics ask for a user who may run INFO: HTTP
	// basic authentication, or an HTTPS client certificate naming the user.
	MetricsAuth bool
	// Join lists client addresses of existing members. Empty on the first
	// node of a new cluster; ignored when the data dir already has an
	// identity.
	Join []string
	// Shards is the number of data shards created with a new cluster;
	// default 16.
	Shards int
	// SnapshotRate bounds the bytes per second of the snapshots this node
	// sends (moving and repairing replicas); 0: no limit.
	SnapshotRate int64
	// DeadAfter is how long a node may miss heartbeats before the
	// replicas it holds are replaced on other nodes; default 5 minutes.
	DeadAfter time.Duration
	// ReplicationFactor is the number of replicas of each data shard;
	// default 3.
	ReplicationFactor int
	// Logger; default slog.Default().
	Logger *slog.Logger
	// FS is the filesystem for the database; nil means the disk.
	FS vfs.FS
	// NewNet creates the node-to-node network; default a gRPC transport
	// listening on BusAddr.
	NewNet func(busAddr string, h transport.Handler) (Net, error)
	// Listener, if set, is used for clients instead of listening on Addr.
	Listener net.Listener
	// BusAddrOf maps a member's client address (from Join) to its
	// node-to-node address; default BusAddr.
	BusAddrOf func(clientAddr string) (string, error)
	// TickInterval is the raft tick; default 100ms (elections after ~1 s).
	TickInterval time.Duration
	// HeartbeatInterval is the liveness heartbeat and placement period;
	// default 1s.
	HeartbeatInterval time.Duration
	// NoReadLeases makes every linearizable read take a raft read index
	// (a heartbeat round to a quorum) instead of being served under the
	// shard leader's lease.
	NoReadLeases bool
	// ClusterClientsOnly answers MOVED to every client on a route this
	// node does not lead, not only to those that asked for the slot map
	// (server.Config.ClusterClientsOnly).
	ClusterClientsOnly bool
	// StoreKnobs are the store's testing knobs; only tests set them.
	StoreKnobs store.TestingKnobs
	// RowCacheSize bounds the cache of recently read and written user keys
	// in bytes; default engine.DefaultRowCacheSize, negative turns it off.
	RowCacheSize int64
	// Certs, if set, turns on TLS: on the client port (a client may
	// present a certificate of the cluster's CA), on the HTTP port, and
	// mutual TLS on the bus, where a peer must hold a node certificate of
	// the cluster's CA. Nil: plain TCP everywhere.
	Certs *certs.Loader
	// Clients holds the limits of client connections (proto-max-bulk-len,
	// client-query-buffer-limit, client-output-buffer-limit, timeout,
	// maxclients, maxmemory-clients...), as server.Config documents them.
	// Its Addr, Logger, ClusterClientsOnly and Memory are set by the node.
	Clients server.Config
	// DiskReserve is the free space, in bytes, below which the node
	// refuses writes that add data and keeps a ballast file of that size
	// (package diskspace). Default 1% of the filesystem, between 64 MiB
	// and 1 GiB; negative turns the guard off.
	DiskReserve int64
	// RequirePass is the default user's password in a cluster this node
	// creates (Redis's requirepass); empty leaves the default user
	// without one. Ignored when the node joins or restarts: users are
	// cluster data.
	RequirePass string
	// MaxMemory is maxmemory in bytes: while the node's resident memory is
	// above it, writes that may grow memory answer -OOM. Default
	// memlimit.DefaultLimit() (three quarters of the machine's or the
	// cgroup's memory); negative means no limit.
	MaxMemory int64
}

func (c *Config) validate() error {
	if c.DataDir == "" {
		return errors.New("node: DataDir is required")
	}
	if c.Addr == "" {
		c.Addr = "127.0.0.1:6379"
	}
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return fmt.Errorf("node: bad address %q: %w", c.Addr, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	c.Addr = net.JoinHostPort(host, port)
	if c.BusAddrOf == nil {
		c.BusAddrOf = BusAddr
	}
	if c.BusAddr == "" {
		c.BusAddr, err = c.BusAddrOf(c.Addr)
		if err != nil {
			return err
		}
	}
	if c.HTTPAddr == "" {
		if p, err := strconv.Atoi(port); err == nil && p+20000 <= 65535 {
			c.HTTPAddr = net.JoinHostPort(host, strconv.Itoa(p+20000))
		} else {
			c.HTTPAddr = "off"
		}
	}
	if c.Shards == 0 {
		c.Shards = 16
	}
	if c.Shards < 1 || c.Shards > keys.SlotCount {
		return fmt.Errorf("node: shards must be in [1, %d]", keys.SlotCount)
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = 3
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.NewNet == nil {
		c.NewNet = func(addr string, h transport.Handler) (Net, error) {
			tc := transport.Config{Addr: addr, Handler: h, Logger: c.Logger, SnapshotRate: c.SnapshotRate}
			if c.Certs != nil {
				tc.ServerTLS, tc.ClientTLS = c.Certs.BusServer(), c.Certs.BusClient()
			}
			t, err := transport.New(tc)
			if err != nil {
				return nil, err
			}
			return t, nil
		}
	}
	if c.TickInterval == 0 {
		c.TickInterval = 100 * time.Millisecond
	}
	if c.DeadAfter == 0 {
		c.DeadAfter = time.Duration(placement.DefaultDeadAfterMs) * time.Millisecond
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = time.Second
	}
	return nil
}

// BusAddr derives the node-to-node address from a client address: the
// same host, port + 10000.
func BusAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("node: bad address %q: %w", addr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p+10000 > 65535 {
		return "", fmt.Errorf("node: cannot derive bus port from %q (port + 10000 must be < 65536)", addr)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, strconv.Itoa(p+10000)), nil
}

// Node is one running shoal node.
type Node struct {
	cfg  Config
	log  *slog.Logger
	eng  *engine.Engine
	net  Net
	st   atomic.Pointer[store.Store]
	srv  *server.Server
	mem  *memlimit.Monitor // maxmemory and the node's memory use
	disk *diskspace.Guard  // nil when Config.DiskReserve is negative
	// srvRef is srv for the store's goroutines, which start before it.
	srvRef atomic.Pointer[server.Server]
	http   *admin.Server
	ident  *shoalpb.NodeIdent

	view atomic.Pointer[meta.State] // latest known meta state
	// users are the newest users known: from the view, or read from the
	// meta leader (RefreshUsers). Nil until the node has read them from
	// the meta leader once. usersMu serializes offerUsers, which alone
	// writes users, usersVersion (the newest version offered) and
	// usersLoaded (the users were read from the meta leader).
	users        atomic.Pointer[meta.Users]
	usersMu      sync.Mutex
	usersVersion uint64
	usersLoaded  bool
	// reported holds, per shard, the last leader report of this node that
	// the meta shard applied. Only the heartbeat goroutine uses it.
	reported map[uint64]meta.LeaderReport
	leaders  leaderWatch
	// placing is the meta leadership the placement loop plans under: its
	// term (only that loop uses it) and when this node saw it begin.
	placing struct {
		term    uint64
		sinceMs atomic.Int64
	}
	// forgotten: the meta shard no longer knows this node (its heartbeat
	// said so once). Only the heartbeat goroutine uses it.
	forgotten bool
	// placeOps counts the placement operations carried out, by kind.
	placeOps [placement.Forget + 1]atomic.Int64
	topo     atomic.Pointer[topoCache]
	metaDirt chan struct{}

	started      time.Time
	bootstrapped bool // this run created the cluster
	syncSeconds  prometheus.Histogram
	// writeSeconds times each write this node proposed as its shard's
	// leader, from the proposal to the answer (executeLocal); a pipelined
	// run of writes to one shard is one proposal.
	writeSeconds prometheus.Histogram
	// forwarded counts commands sent on to another node's leader.
	forwarded atomic.Uint64
	sweeps    sweepState
	// expiryScans counts scans of led shards' expiry indexes.
	expiryScans atomic.Uint64
	ctx         context.Context
	cancel      context.CancelFunc
	wg          sync.WaitGroup
}

// diskCheckInterval is how often the node measures its free disk space.
// At a few hundred MB/s of writes, a quarter second is a small share of
// the reserve.
const diskCheckInterval = 250 * time.Millisecond

// memorySampleInterval is how often the node measures its memory use
// against maxmemory: a write that arrives within one interval of the node
// passing it may still be accepted.
const memorySampleInterval = 100 * time.Millisecond

// spreadMemTableSize returns a memtable size above three quarters of
// base and at most base, in steps of 64 KiB, drawn with draw (math/rand's
// Int64N). Every replica of a shard writes the same bytes, so with equal
// memtables the nodes that hold the same shards flush at the same moment,
// and a write's quorum waits on flushing nodes: the slowest SETs gathered
// around flushes. Sizes drawn per process drift the flushes apart. They
// stay at or below base because a node holds up to three memtables
// (filling, flushing, and one kept for reuse), so each MiB more costs up
// to three in RSS. base is a multiple of 256 KiB.
func spreadMemTableSize(base int64, draw func(n int64) int64) int64 {
	const step = 64 << 10
	return base - draw(base/4/step)*step
}

// Start opens the data dir, creates or joins a cluster (or rejoins with the
// persisted identity) and serves clients.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Logger, metaDirt: make(chan struct{}, 1), started: time.Now()}
	n.sweeps.applying, n.sweeps.written, n.sweeps.next = map[uint64]bool{}, map[uint64]bool{}, map[uint64]int64{}
	n.syncSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "shoal_store_sync_duration_seconds",
		Help:    "Time to commit and fsync one batch of raft writes.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16), // 100 µs to 3.3 s
	})
	n.writeSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "shoal_store_write_duration_seconds",
		Help:    "Time from proposing a write (or a pipelined run of writes to one shard) on its shard's leader to its answer: queueing, replication, apply.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
	})
	n.leaders.leaders, n.leaders.ctxs = map[uint64]uint64{}, map[uint64]watchCtx{}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	maxMemory := cfg.MaxMemory
	if maxMemory == 0 {
		maxMemory = memlimit.DefaultLimit()
	}
	n.mem = memlimit.New(max(maxMemory, 0))
	n.mem.SetGoLimit()
	n.goFunc(func() { n.every(memorySampleInterval, n.mem.Sample) })
	ok := false
	defer func() {
		if !ok {
			n.Close()
		}
	}()
	if cfg.DiskReserve >= 0 && cfg.FS == nil {
		// Before the database opens: on a nearly full disk the guard
		// deletes its ballast, so that Pebble has room to start.
		var err error
		if n.disk, err = diskspace.Open(cfg.DataDir, cfg.DiskReserve, n.log); err != nil {
			return nil, err
		}
		n.goFunc(func() { n.every(diskCheckInterval, n.disk.Check) })
	}
	eo := engine.Options{FS: cfg.FS, Logger: cfg.Logger,
		MemTableSize: spreadMemTableSize(engine.DefaultMemTableSize, mrand.Int64N)}
	if cfg.RowCacheSize >= 0 {
		lo, hi := keys.UserSpan()
		eo.RowCacheSpan, eo.RowCacheSize = [2][]byte{lo, hi}, cfg.RowCacheSize
		// A SET reads its slot's expiry count (package kv): 16 384 rows
		// of about 100 bytes, all kept.
		eo.RowCachePin = keys.IsExpiryCount
	}
	eng, err := engine.Open(filepath.Join(cfg.DataDir, "db"), eo)
	if err != nil {
		return nil, err
	}
	n.eng = eng
	nt, err := cfg.NewNet(cfg.BusAddr, n)
	if err != nil {
		return nil, err // nt may be a nil pointer in a non-nil Net: never keep it
	}
	n.net = nt
	if err := n.loadOrCreateIdentity(ctx); err != nil {
		return nil, err
	}
	n.log = n.log.With("node", n.ident.GetNodeId())
	n.net.SetNodeID(n.ident.GetNodeId())
	sc := cfg.Clients
	sc.Addr, sc.Logger, sc.ClusterClientsOnly, sc.Memory = cfg.Addr, n.log, cfg.ClusterClientsOnly, n.mem
	sc.DiskFull = n.disk.Full
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	n.srv = server.New(sc, n)
	n.srvRef.Store(n.srv)
	if err := n.startStore(); err != nil {
		return nil, err
	}
	n.reloadView()
	ln := cfg.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Addr); err != nil {
			return nil, fmt.Errorf("node: listen: %w", err)
		}
		if cfg.Certs != nil {
			ln = tls.NewListener(ln, cfg.Certs.ClientServer())
		}
	}
	n.goFunc(func() { n.srv.Serve(ln) })
	n.startHTTP()
	n.goFunc(n.metaWatcher)
	n.goFunc(n.loadUsers)
	n.goFunc(n.watchLeaders)
	n.goFunc(func() { n.every(cfg.HeartbeatInterval, n.heartbeat) })
	n.goFunc(func() { n.every(cfg.HeartbeatInterval/2, n.place) })
	n.goFunc(func() { n.every(10*cfg.HeartbeatInterval, n.collectReplicas) })
	n.goFunc(func() { n.every(cfg.HeartbeatInterval, n.sweepLeading) })
	ok = true
	n.log.Info("node started", "addr", cfg.Addr, "bus", cfg.BusAddr, "cluster", n.ident.GetClusterId())
	return n, nil
}

// startHTTP serves the admin endpoints. A node without them still serves
// clients, so failing to listen is logged, not fatal.
func (n *Node) startHTTP() {
	if n.cfg.HTTPAddr == "off" {
		return
	}
	ln, err := net.Listen("tcp", n.cfg.HTTPAddr)
	if err != nil {
		n.log.Warn("admin HTTP endpoint not served", "addr", n.cfg.HTTPAddr, "err", err)
		return
	}
	if n.cfg.Certs != nil {
		ln = tls.NewListener(ln, n.cfg.Certs.ClientServer())
	}
	var opts admin.Options
	if n.cfg.MetricsAuth {
		opts.AuthorizeMetrics = n.authorizeScrape
	}
	n.http = admin.New(n.Status, n.log, opts, n.Metrics()...)
	n.goFunc(func() { n.http.Serve(ln) })
}

// Status summarizes the node for /readyz and /metrics.
func (n *Node) Status() admin.Status {
	t := n.Topology()
	st := admin.Status{NodeID: n.ID(), ClusterID: t.ClusterID, Shards: len(t.Shards)}
	for _, sh := range t.Shards {
		if sh.Leader != 0 {
			st.ShardsLed++
		}
	}
	for _, ri := range n.st.Load().Replicas() {
		st.LocalReplicas++
		if ri.IsLeader {
			st.LocalLeaders++
		}
	}
	return st
}

// Metrics exports the store loop's Stats as Prometheus counters, the time
// its fsynced batches take (whose count is the number of syncs) and the
// time its leaders take to answer writes, how many commands this node
// forwarded, the row cache's counters and the
// storage engine's (engineCollector).
func (n *Node) Metrics() []prometheus.Collector {
	eng := n.eng // Close clears n.eng; the cache's counters outlive it
	rowCache := func() engine.RowCacheStats {
		if eng == nil {
			return engine.RowCacheStats{}
		}
		return eng.RowCacheStats()
	}
	counter := func(name, help string, get func(store.Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "shoal_store_" + name, Help: help},
			func() float64 {
				if st := n.st.Load(); st != nil {
					return float64(get(st.Stats()))
				}
				return 0
			})
	}
	return []prometheus.Collector{
		counter("cycles_total", "Cycles of the store loop.", func(s store.Stats) uint64 { return s.Cycles }),
		counter("proposals_total", "Commands proposed to raft by this node.", func(s store.Stats) uint64 { return s.Proposals }),
		counter("synced_entries_total", "Raft log entries made durable.", func(s store.Stats) uint64 { return s.SyncedEntries }),
		counter("applied_entries_total", "Committed raft entries applied, all replicas.", func(s store.Stats) uint64 { return s.AppliedEntries }),
		counter("raft_messages_sent_total", "Raft messages handed to the transport.", func(s store.Stats) uint64 { return s.MessagesSent }),
		counter("raft_sends_total", "Hand-offs of raft messages to the transport.", func(s store.Stats) uint64 { return s.Sends }),
		counter("follower_read_indexes_total", "Read index requests sent by this node's follower replicas to their leaders, for linearizable reads served here.",
			func(s store.Stats) uint64 { return s.FollowerReadIndexes }),
		counter("lease_answers_total", "Followers' read index requests this node's leaders answered under their read lease.",
			func(s store.Stats) uint64 { return s.LeaseAnswers }),
		n.syncSeconds,
		n.writeSeconds,
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "shoal_forwarded_commands_total",
			Help: "Calls forwarding a command to its shard's leader on another node, retries included (clients that route by a stale or no slot map).",
		}, func() float64 { return float64(n.forwarded.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "shoal_expiry_scans_total",
			Help: "Scans of a led shard's expiry index by the active-expiry sweep (one seek per slot each).",
		}, func() float64 { return float64(n.expiryScans.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "shoal_row_cache_hits_total",
			Help: "Point reads of user keys answered from the row cache.",
		}, func() float64 { return float64(rowCache().Hits) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "shoal_row_cache_misses_total",
			Help: "Point reads of user keys the row cache did not hold, answered by Pebble.",
		}, func() float64 { return float64(rowCache().Misses) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "shoal_row_cache_bytes",
			Help: "Approximate memory held by the row cache.",
		}, func() float64 { return float64(rowCache().Bytes) }),
		counter("replicas_removed_total", "Replicas deleted from this node because they left their shard.",
			func(s store.Stats) uint64 { return s.ReplicasRemoved }),
		counter("bad_snapshots_total", "Snapshots dropped on arrival: their data would not decode or would write outside their shard.",
			func(s store.Stats) uint64 { return s.BadSnapshots }),
		engineCollector{eng},
		securityCollector{n},
		placementCollector{n},
	}
}

// goFunc runs fn in a goroutine that Close waits for.
func (n *Node) goFunc(fn func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		fn()
	}()
}

// Close stops the node. It is safe to call more than once.
func (n *Node) Close() error {
	n.cancel()
	if n.srv != nil {
		n.srv.Close()
	}
	if n.http != nil {
		n.http.Close()
	}
	n.wg.Wait()
	if st := n.st.Load(); st != nil {
		st.Stop()
	}
	if n.net != nil {
		n.net.Close()
	}
	if n.eng != nil {
		n.eng.Close()
		n.eng = nil
	}
	return nil
}

// ID is this node's id.
func (n *Node) ID() uint64 { return n.ident.GetNodeId() }

// Addr is this node's client address.
func (n *Node) Addr() string { return n.cfg.Addr }

// Store is the node's store (for tests and status).
func (n *Node) Store() *store.Store { return n.st.Load() }

func (n *Node) loadOrCreateIdentity(ctx context.Context) error {
	var ident shoalpb.NodeIdent
	b, ok, err := n.eng.Get(keys.Ident())
	if err != nil {
		return err
	}
	if ok {
		if err := proto.Unmarshal(b, &ident); err != nil {
			return fmt.Errorf("node: bad identity: %w", err)
		}
		n.ident = &ident
		return nil
	}
	if len(n.cfg.Join) == 0 {
		return n.bootstrap()
	}
	return n.join(ctx)
}

// bootstrap creates a new cluster whose only node is this one: the meta
// shard and the data shards, all with this node as the single voter.
func (n *Node) bootstrap() error {
	id := make([]byte, 16)
	rand.Read(id)
	n.ident = &shoalpb.NodeIdent{NodeId: 1, ClusterId: hex.EncodeToString(id)}
	st := meta.New(n.ident.GetClusterId(), n.cfg.Addr, n.cfg.BusAddr, n.cfg.Shards, time.Now().UnixMilli())
	if n.cfg.RequirePass != "" {
		u := acl.DefaultUser()
		u.NoPass, u.Passwords = false, []string{acl.HashPassword(n.cfg.RequirePass, rand.Reader)}
		st.Users = map[string]*acl.User{u.Name: u}
	}
	s, err := n.newStore()
	if err != nil {
		return err
	}
	var descs []*shoalpb.ShardDescriptor
	for _, sh := range st.Shards {
		descs = append(descs, sh.Descriptor())
	}
	err = s.Bootstrap(descs, []uint64{1}, func(b *engine.Batch) {
		if err := meta.Save(b, st); err != nil {
			panic(fmt.Sprintf("node: write the new cluster's meta state: %v", err))
		}
		identBytes, _ := proto.Marshal(n.ident)
		b.Set(keys.Ident(), identBytes)
		for _, d := range descs {
			if !d.GetMeta() {
				if err := kv.WriteEmptySlots(b, int(d.GetFirstSlot()), int(d.GetLastSlot())); err != nil {
					panic(fmt.Sprintf("node: write the new shards' slots: %v", err))
				}
			}
		}
	})
	if err != nil {
		return err
	}
	n.st.Store(s)
	n.bootstrapped = true
	n.log.Info("bootstrapped new cluster", "cluster", n.ident.GetClusterId(), "shards", n.cfg.Shards)
	return nil
}

type joinRequest struct {
	Addr    string `json:"addr"`
	BusAddr string `json:"bus_addr"`
}

type joinReply struct {
	NodeID    uint64 `json:"node_id"`
	ClusterID string `json:"cluster_id"`
}

// join asks a member to register this node, retrying over the join list
// until one accepts or ctx ends.
func (n *Node) join(ctx context.Context) error {
	body, _ := json.Marshal(joinRequest{Addr: n.cfg.Addr, BusAddr: n.cfg.BusAddr})
	var lastErr error
	for attempt := 0; ; attempt++ {
		for _, addr := range n.cfg.Join {
			bus, err := n.cfg.BusAddrOf(addr)
			if err != nil {
				return err
			}
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			out, err := n.net.CallAddr(cctx, bus, methodJoin, body)
			cancel()
			if err != nil {
				lastErr = err
				continue
			}
			var rep joinReply
			if err := json.Unmarshal(out, &rep); err != nil {
				return fmt.Errorf("node: bad join reply: %w", err)
			}
			n.ident = &shoalpb.NodeIdent{NodeId: rep.NodeID, ClusterId: rep.ClusterID}
			b, _ := proto.Marshal(n.ident)
			wb := n.eng.NewWriteBatch()
			wb.Set(keys.Ident(), b)
			if err := wb.Commit(true); err != nil {
				return err
			}
			n.log.Info("joined cluster", "node", rep.NodeID, "cluster", rep.ClusterID, "via", addr)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node: join %v: %w (last error: %v)", n.cfg.Join, ctx.Err(), lastErr)
		case <-time.After(min(time.Duration(attempt+1)*200*time.Millisecond, 2*time.Second)):
		}
	}
}

// maxValueLen is proto-max-bulk-len as the client server has it now, for
// the store to fix in each proposal. Before the server exists only meta
// commands are proposed, which build no strings.
func (n *Node) maxValueLen() int64 {
	if s := n.srvRef.Load(); s != nil {
		return s.MaxValueLen()
	}
	return 0
}

func (n *Node) newStore() (*store.Store, error) {
	return store.New(store.Config{
		NodeID:        n.ident.GetNodeId(),
		Engine:        n.eng,
		Transport:     n.net,
		StateMachine:  stateMachine{sweeps: &n.sweeps},
		Logger:        n.log,
		TickInterval:  n.cfg.TickInterval,
		OnApplied:     n.onApplied,
		DisableLeases: n.cfg.NoReadLeases,
		Testing:       n.cfg.StoreKnobs,
		ObserveSync:   func(d time.Duration) { n.syncSeconds.Observe(d.Seconds()) },
		MaxValueLen:   n.maxValueLen,
		DiskFull:      n.disk.Full,
	})
}

func (n *Node) startStore() error {
	s := n.st.Load()
	if s == nil {
		var err error
		if s, err = n.newStore(); err != nil {
			return err
		}
		n.st.Store(s)
	}
	s.Start()
	if n.bootstrapped {
		// The only voter of every new shard need not wait an election
		// timeout to lead it.
		for id := range s.Replicas() {
			if err := s.Campaign(n.ctx, id); err != nil {
				return err
			}
		}
	}
	return nil
}

// onApplied runs on the store loop: it must not block.
func (n *Node) onApplied(shards []uint64) {
	n.sweeps.noteApplied()
	for _, id := range shards {
		if id == meta.ShardID {
			select {
			case n.metaDirt <- struct{}{}:
			default:
			}
			return
		}
	}
}

// Engine is the node's database (for tests and status).
func (n *Node) Engine() *engine.Engine { return n.eng }
