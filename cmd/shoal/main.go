// Command shoal runs a shoal node or a local demo cluster.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"github.com/shoaldb/shoal/internal/engine"
	"github.com/shoaldb/shoal/internal/gcfloor"
	"github.com/shoaldb/shoal/internal/node"
	"github.com/shoaldb/shoal/internal/server"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func main() {
	root := &cobra.Command{
		Use:           "shoal",
		Short:         "shoal: a distributed, strongly consistent key-value database that speaks Redis",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(startCmd(), demoCmd(), certCmd(), nodeCmd())
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "shoal:", err)
		os.Exit(1)
	}
}

// defaultGCFloor: with a live heap of 10-20 MiB under load, GOGC=100
// collects several times a second; 64 MiB cut that threefold (benchmarks:
// 146-157 against 46-52 collections in 15 s of SETs) for about 35 MiB
// more RSS per node, and changes nothing once the live heap passes 32 MiB.
const defaultGCFloor = 64 << 20

type nodeFlags struct {
	dataDir            string
	addr               string
	busAddr            string
	httpAddr           string
	join               []string
	shards             int
	rf                 int
	deadAfter          time.Duration
	snapshotRate       string
	logLevel           string
	pprof              string
	readLeases         bool
	clusterClientsOnly bool
	rowCache           int64
	gcFloor            int64
	limits             limitFlags
	security           securityFlags
}

// limitFlags are the limits on what clients may make a node spend, named
// after Redis's configuration parameters.
type limitFlags struct {
	maxBulkLen   string
	queryBuf     string
	outputBuf    string
	maxMemory    string
	clientMem    string
	diskReserve  string
	maxClients   int
	timeout      int
	writeTimeout time.Duration
}

func (l *limitFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&l.maxBulkLen, "proto-max-bulk-len", "8mb", "longest string a client may send or a write may build (at most 32mb)")
	fs.StringVar(&l.queryBuf, "client-query-buffer-limit", "64mb", "longest command a client may send; a longer one closes its connection")
	fs.StringVar(&l.outputBuf, "client-output-buffer-limit", "64mb 16mb 60", `"hard soft seconds" for clients: a reply past hard is refused with an error; a client leaving more than soft unread for seconds is closed; 0 disables each`)
	fs.StringVar(&l.maxMemory, "maxmemory", "", "above this resident memory, writes that may grow memory answer -OOM (default: 3/4 of the machine's or cgroup's memory; 0: no limit)")
	fs.StringVar(&l.clientMem, "maxmemory-clients", "20%", "memory all clients' buffers may hold, as bytes or a percentage of maxmemory; a client that would pass it is closed; 0: no limit")
	fs.StringVar(&l.diskReserve, "disk-reserve", "", "below this much free disk space, refuse writes that add data, and keep a ballast file of this size in the data dir (default: 1% of the filesystem, 64mb to 1gb; 0: off)")
	fs.IntVar(&l.maxClients, "maxclients", server.DefaultMaxClients, "most client connections at once")
	fs.IntVar(&l.timeout, "timeout", 0, "close a client idle for this many seconds (0: never)")
	fs.DurationVar(&l.writeTimeout, "client-write-timeout", server.DefaultWriteTimeout, "close a client that reads none of its replies for this long (0: never)")
}

// apply sets the limits in cfg.
func (l *limitFlags) apply(cfg *node.Config) error {
	bulk, err := server.ParseMemory(l.maxBulkLen)
	if err != nil {
		return fmt.Errorf("--proto-max-bulk-len %w", err)
	}
	query, err := server.ParseMemory(l.queryBuf)
	if err != nil {
		return fmt.Errorf("--client-query-buffer-limit %w", err)
	}
	hard, soft, secs, err := server.ParseOutputLimit(l.outputBuf)
	if err != nil {
		return fmt.Errorf("--client-output-buffer-limit %w", err)
	}
	if l.maxMemory != "" {
		if cfg.MaxMemory, err = server.ParseMemory(l.maxMemory); err != nil {
			return fmt.Errorf("--maxmemory %w", err)
		}
		if cfg.MaxMemory == 0 {
			cfg.MaxMemory = -1 // node.Config's "no limit"; its 0 is the default
		}
	}
	if l.diskReserve != "" {
		if cfg.DiskReserve, err = server.ParseMemory(l.diskReserve); err != nil {
			return fmt.Errorf("--disk-reserve %w", err)
		}
		if cfg.DiskReserve == 0 {
			cfg.DiskReserve = -1 // node.Config's "off"; its 0 is the default
		}
	}
	c := &cfg.Clients
	c.Limits.MaxBulkLen, c.QueryBufLimit = int(bulk), query
	c.OutputHardLimit, c.OutputSoftLimit, c.OutputSoftSeconds = orNone(hard), orNone(soft), orNone(secs)
	c.MaxMemoryClients, c.MaxClients = l.clientMem, l.maxClients
	c.IdleTimeout = time.Duration(l.timeout) * time.Second
	c.WriteTimeout = l.writeTimeout
	if c.WriteTimeout == 0 {
		c.WriteTimeout = -1 // never
	}
	return nil // node.Start validates the whole configuration
}

// orNone maps the command line's 0 ("no limit") to server.Config's -1.
func orNone(n int64) int64 {
	if n == 0 {
		return -1
	}
	return n
}

func startCmd() *cobra.Command {
	var f nodeFlags
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Start a node: the first one creates a cluster, later ones --join it",
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger := newLogger(f.logLevel)
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if f.pprof != "" && !loopback(f.pprof) {
				return fmt.Errorf("--pprof-addr %s: profiles are served on loopback addresses only", f.pprof)
			}
			if f.pprof != "" {
				go func() {
					// net/http/pprof registers on the default mux.
					logger.Info("pprof", "err", http.ListenAndServe(f.pprof, nil))
				}()
			}
			if f.rowCache <= 0 {
				f.rowCache = -1 // node.Config's "off"; its 0 means the default
			}
			// GOGC as the environment set it (100 if unset; negative: off),
			// read by setting it back.
			base := debug.SetGCPercent(100)
			debug.SetGCPercent(base)
			if base > 0 && f.gcFloor > 0 {
				go gcfloor.Run(ctx, uint64(f.gcFloor), base, 250*time.Millisecond)
			}
			cfg := node.Config{
				DataDir: f.dataDir, Addr: f.addr, BusAddr: f.busAddr, HTTPAddr: f.httpAddr, Join: f.join,
				Shards: f.shards, ReplicationFactor: f.rf, Logger: logger, NoReadLeases: !f.readLeases,
				RowCacheSize: f.rowCache, ClusterClientsOnly: f.clusterClientsOnly, DeadAfter: f.deadAfter,
			}
			if err := f.limits.apply(&cfg); err != nil {
				return err
			}
			rate, rerr := server.ParseMemory(f.snapshotRate)
			if rerr != nil {
				return fmt.Errorf("--snapshot-rate %w", rerr)
			}
			cfg.SnapshotRate = rate
			bus, httpAddr := f.busAddr, f.httpAddr
			if bus == "" {
				bus = derivedAddr(f.addr, 10000)
			}
			if httpAddr == "" {
				httpAddr = derivedAddr(f.addr, 20000)
			}
			var err error
			if cfg.Certs, err = f.security.load(logger, map[string]string{"addr": f.addr, "bus-addr": bus, "http-addr": httpAddr}); err != nil {
				return err
			}
			if err := f.security.apply(&cfg); err != nil {
				return err
			}
			n, err := node.Start(ctx, cfg)
			if err != nil {
				return err
			}
			<-ctx.Done()
			logger.Info("shutting down")
			return n.Close()
		},
	}
	cmd.Flags().StringVar(&f.dataDir, "data-dir", "shoal-data", "directory holding this node's data")
	cmd.Flags().StringVar(&f.addr, "addr", "127.0.0.1:6379", "client (Redis protocol) listen address")
	cmd.Flags().StringVar(&f.busAddr, "bus-addr", "", "node-to-node listen address (default: client port + 10000)")
	cmd.Flags().StringVar(&f.httpAddr, "http-addr", "", `HTTP address for /healthz, /readyz, /metrics (default: client port + 20000; "off" disables)`)
	cmd.Flags().StringSliceVar(&f.join, "join", nil, "client address of an existing member to join (repeatable)")
	cmd.Flags().IntVar(&f.shards, "shards", 16, "data shards created with a new cluster")
	cmd.Flags().IntVar(&f.rf, "replication-factor", 3, "replicas per data shard")
	cmd.Flags().StringVar(&f.snapshotRate, "snapshot-rate", "32mb", "bytes per second of the snapshots this node sends when replicas move or are rebuilt (0: no limit)")
	cmd.Flags().DurationVar(&f.deadAfter, "dead-after", 5*time.Minute, "a node silent this long is dead: the replicas it held are rebuilt on other nodes (read by the node leading the meta shard)")
	cmd.Flags().StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	cmd.Flags().StringVar(&f.pprof, "pprof-addr", "", "serve Go's pprof profiles on this loopback HTTP address (off by default)")
	cmd.Flags().BoolVar(&f.clusterClientsOnly, "cluster-clients-only", false, "answer -MOVED to every client on a route this node does not lead, as Redis Cluster does; by default only clients that asked for the slot map get it, the others are forwarded")
	cmd.Flags().BoolVar(&f.readLeases, "read-leases", true, "serve linearizable reads under the shard leader's lease; false: a quorum round per read")
	cmd.Flags().Int64Var(&f.rowCache, "row-cache-size", engine.DefaultRowCacheSize, "bytes of recently read and written keys kept in memory for point reads; 0 or less turns it off")
	cmd.Flags().Int64Var(&f.gcFloor, "gc-heap-floor", defaultGCFloor, "bytes the Go heap may grow to before a garbage collection, however small the live heap (GOGC still applies above it); 0 turns it off")
	f.limits.register(cmd.Flags())
	f.security.register(cmd)
	return cmd
}

// demoDiskReserve is each demo node's disk reserve (and ballast file): a
// demo holds little data, and three default reserves would take 192 MiB.
const demoDiskReserve = 16 << 20

func demoCmd() *cobra.Command {
	var (
		dir      string
		port     int
		nodes    int
		logLevel string
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a local cluster of several nodes in one process",
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger := newLogger(logLevel)
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if dir == "" {
				var err error
				if dir, err = os.MkdirTemp("", "shoal-demo-"); err != nil {
					return err
				}
			}
			var running []*node.Node
			defer func() {
				for _, n := range running {
					n.Close()
				}
			}()
			first := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
			for i := range nodes {
				addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port+i))
				cfg := node.Config{DataDir: filepath.Join(dir, fmt.Sprintf("node%d", i+1)), Addr: addr, Logger: logger,
					DiskReserve: demoDiskReserve}
				if i > 0 {
					cfg.Join = []string{first}
				}
				jctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				n, err := node.Start(jctx, cfg)
				cancel()
				if err != nil {
					return err
				}
				running = append(running, n)
			}
			fmt.Printf("shoal demo: %d nodes on 127.0.0.1:%d-%d, data in %s\n", nodes, port, port+nodes-1, dir)
			fmt.Printf("  connect:          redis-cli -p %d\n", port)
			fmt.Printf("  cluster-aware:    redis-cli -c -p %d\n", port)
			fmt.Printf("  benchmark:        redis-benchmark -p %d -t set,get\n", port)
			fmt.Println("Ctrl-C stops the cluster.")
			<-ctx.Done()
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "data-dir", "", "base directory for the nodes' data (default: a new temporary directory)")
	cmd.Flags().IntVar(&port, "port", 6379, "client port of the first node; the others use the next ports")
	cmd.Flags().IntVar(&nodes, "nodes", 3, "number of nodes")
	cmd.Flags().StringVar(&logLevel, "log-level", "warn", "debug, info, warn or error")
	return cmd
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}
