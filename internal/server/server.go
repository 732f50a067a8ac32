package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoaldb/shoal/internal/acl"
	"github.com/shoaldb/shoal/internal/memlimit"
	"github.com/shoaldb/shoal/internal/resp"
)

// Defaults for zero Config fields.
const (
	DefaultAddr       = ":6379"
	DefaultVersion    = "7.2.4"
	DefaultMaxClients = 10000
	DefaultMaxFanout  = 16
)

// ErrClosed is returned by Serve and ListenAndServe after Close.
var ErrClosed = errors.New("server: closed")

// Config configures a Server. Every zero field means the default named in its
// comment, so Config{} is a valid configuration.
type Config struct {
	// Addr is the TCP address ListenAndServe listens on. Default ":6379".
	Addr string
	// Limits bound what one client command may hold. Zero fields take
	// the defaults: DefaultMaxBulkLen (proto-max-bulk-len, at most
	// MaxMaxBulkLen) per bulk string, Redis's 1Mi arguments per command
	// and 64 KiB per inline command.
	Limits resp.Limits
	// QueryBufLimit is client-query-buffer-limit: the longest command a
	// client may send, in bytes; a longer one closes the connection.
	// Default DefaultQueryBufLimit.
	QueryBufLimit int64
	// OutputHardLimit, OutputSoftLimit and OutputSoftSeconds are
	// client-output-buffer-limit's normal class: a reply that would pass
	// the hard limit is refused before it is built, and a client that
	// leaves more than the soft limit unread for the soft seconds is
	// disconnected. Zero means the default (DefaultOutputHardLimit...),
	// negative no limit.
	OutputHardLimit, OutputSoftLimit int64
	OutputSoftSeconds                int64
	// WriteTimeout closes a client that reads none of its pending replies
	// for this long. Default DefaultWriteTimeout; negative means never.
	WriteTimeout time.Duration
	// Memory, if set, holds maxmemory and the node's memory use: commands
	// that may grow memory (DenyOOM) are refused with -OOM while the node
	// uses more, and CONFIG SET maxmemory changes it.
	Memory *memlimit.Monitor
	// DiskFull, if set, reports that the node's disk is nearly full:
	// commands that may add data (DenyOOM) are then refused with
	// -MISCONF.
	DiskFull func() bool
	// MaxMemoryClients is maxmemory-clients: how much the buffers of all
	// clients may hold together, beyond a small read buffer each, as a
	// memory value ("512mb") or a percentage of maxmemory ("20%"); "0"
	// means no limit. A client whose buffers would pass it is
	// disconnected. Default DefaultClientMemPercent%.
	MaxMemoryClients string
	// Logger receives connection-level events. Default slog.Default().
	Logger *slog.Logger
	// Version is the Redis version reported by HELLO and INFO
	// (redis_version). Clients use it to pick features. Default "7.2.4".
	Version string
	// MaxClients is the most client connections served at once; a client
	// beyond it gets "-ERR max number of clients reached" and is closed.
	// Default 10000. CONFIG SET maxclients changes it at run time.
	MaxClients int
	// IdleTimeout closes a client connection that sends nothing for this
	// long. Zero means never (Redis's "timeout 0"). CONFIG SET timeout
	// changes it at run time.
	IdleTimeout time.Duration
	// RunID identifies this server process in INFO (run_id): 40 hex
	// characters. Default: random.
	RunID string
	// MaxFanout is how many shards a cluster-wide command (KEYS, DBSIZE,
	// FLUSHALL...) queries at once. Default 16.
	MaxFanout int
	// ClusterClientsOnly redirects every client, as Redis Cluster does: a
	// keyed command that reaches a node not leading its shard gets MOVED
	// whether or not its connection asked for the slot map. By default
	// only such connections are redirected and the others forwarded, so
	// that plain clients work against any node. But a cluster client
	// asks for the map on one of its pooled connections: after a leader
	// moves, its other connections would be forwarded, one hop more per
	// command, until it reloads the map of its own accord.
	ClusterClientsOnly bool
	// NoProtectedMode turns protected mode off. In protected mode (Redis's
	// protected-mode yes, the default), while the default user has no
	// password, only clients on the loopback interface or with a client
	// certificate naming a user may connect. CONFIG SET protected-mode
	// changes it at run time.
	NoProtectedMode bool
}

// Validate reports whether c is usable. Zero fields are valid: they take
// their defaults.
func (c Config) Validate() error {
	switch {
	case c.MaxClients < 0:
		return fmt.Errorf("server: MaxClients %d is negative", c.MaxClients)
	case c.IdleTimeout < 0:
		return fmt.Errorf("server: IdleTimeout %v is negative", c.IdleTimeout)
	case c.MaxFanout < 0:
		return fmt.Errorf("server: MaxFanout %d is negative", c.MaxFanout)
	case c.Limits.MaxBulkLen < 0 || c.Limits.MaxMultibulkLen < 0 || c.Limits.MaxInlineLen < 0:
		return fmt.Errorf("server: negative limit in %+v", c.Limits)
	case c.Limits.MaxBulkLen > MaxMaxBulkLen:
		return fmt.Errorf("server: proto-max-bulk-len %d is above the most shoal allows, %d", c.Limits.MaxBulkLen, MaxMaxBulkLen)
	case c.QueryBufLimit < 0:
		return fmt.Errorf("server: QueryBufLimit %d is negative", c.QueryBufLimit)
	}
	if c.MaxMemoryClients != "" {
		if _, err := parseClientMem(c.MaxMemoryClients); err != nil {
			return fmt.Errorf("server: maxmemory-clients %q: %v", c.MaxMemoryClients, err)
		}
	}
	if c.RunID != "" {
		if _, err := hex.DecodeString(c.RunID); err != nil || len(c.RunID) != 40 {
			return fmt.Errorf("server: RunID %q is not 40 hex characters", c.RunID)
		}
	}
	return nil
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.Limits.MaxBulkLen == 0 {
		c.Limits.MaxBulkLen = DefaultMaxBulkLen
	}
	if c.QueryBufLimit == 0 {
		c.QueryBufLimit = DefaultQueryBufLimit
	}
	if c.OutputHardLimit == 0 {
		c.OutputHardLimit = DefaultOutputHardLimit
	}
	if c.OutputSoftLimit == 0 {
		c.OutputSoftLimit = DefaultOutputSoftLimit
	}
	if c.OutputSoftSeconds == 0 {
		c.OutputSoftSeconds = DefaultOutputSoftSeconds
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.MaxMemoryClients == "" {
		c.MaxMemoryClients = strconv.Itoa(DefaultClientMemPercent) + "%"
	}
	if c.Limits.MaxMultibulkLen == 0 {
		c.Limits.MaxMultibulkLen = resp.DefaultMaxMultibulkLen
	}
	if c.Limits.MaxInlineLen == 0 {
		c.Limits.MaxInlineLen = resp.DefaultMaxInlineLen
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Version == "" {
		c.Version = DefaultVersion
	}
	if c.MaxClients == 0 {
		c.MaxClients = DefaultMaxClients
	}
	if c.RunID == "" {
		var b [20]byte
		rand.Read(b[:])
		c.RunID = hex.EncodeToString(b[:])
	}
	if c.MaxFanout == 0 {
		c.MaxFanout = DefaultMaxFanout
	}
	return c
}

// Server serves Redis clients on one or more listeners and runs their
// commands through a Cluster.
type Server struct {
	cfg     Config
	cfgErr  error // from Config.Validate; returned by Serve
	cluster Cluster
	log     *slog.Logger
	cmds    map[string]*command // by lower-case name; read-only after New
	started time.Time

	// ctx is the parent of every connection's context; Close cancels it so
	// that commands waiting in the Cluster give up.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // one per connection goroutine

	maxClients  atomic.Int64
	idleTimeout atomic.Int64 // nanoseconds
	lim         limits
	nextID      atomic.Uint64
	stats       stats

	mu struct {
		sync.Mutex
		closed    bool
		listeners map[net.Listener]struct{}
		addr      net.Addr // of the most recent listener
		conns     map[*conn]struct{}
		params    map[string]string // CONFIG SET values of stored-only parameters
	}

	aclTable  *acl.Table // the command table as the ACL sees it
	userCache atomic.Pointer[userCache]
	aclLog    *acl.Log
	acls      aclStats
	protected atomic.Bool // protected-mode
	refresh   struct {
		sync.Mutex
		began time.Time // the last read of the users after a failed check
		ok    bool      // whether it succeeded
	}
}

// New returns a Server for cfg that runs commands through c. It starts
// nothing: call Serve or ListenAndServe. An invalid cfg is reported by Serve.
func New(cfg Config, c Cluster) *Server {
	err := cfg.Validate()
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:     cfg,
		cfgErr:  err,
		cluster: c,
		log:     cfg.Logger,
		cmds:    newCommandTable(),
		started: time.Now(),
	}
	s.aclTable = newACLTable(s.cmds)
	s.aclLog = acl.NewLog(acl.DefaultLogLen)
	s.protected.Store(!cfg.NoProtectedMode)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.maxClients.Store(int64(cfg.MaxClients))
	s.idleTimeout.Store(int64(cfg.IdleTimeout))
	s.lim.maxBulkLen.Store(int64(cfg.Limits.MaxBulkLen))
	s.lim.queryBuf.Store(cfg.QueryBufLimit)
	s.lim.outHard.Store(max(cfg.OutputHardLimit, 0))
	s.lim.outSoft.Store(max(cfg.OutputSoftLimit, 0))
	s.lim.outSoftSecs.Store(max(cfg.OutputSoftSeconds, 0))
	if mc, err := parseClientMem(cfg.MaxMemoryClients); err == nil {
		s.lim.clientMem.Store(clientMemValue(mc))
	}
	s.mu.listeners = make(map[net.Listener]struct{})
	s.mu.conns = make(map[*conn]struct{})
	s.mu.params = make(map[string]string)
	return s
}

// ListenAndServe listens on Config.Addr and serves until Close.
func (s *Server) ListenAndServe() error {
	if s.cfgErr != nil {
		return s.cfgErr
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return err
	}
	return s.Serve(ln)
}

// Serve accepts connections on ln and serves each in its own goroutine until
// Close, then returns ErrClosed. It closes ln when it returns.
func (s *Server) Serve(ln net.Listener) error {
	if s.cfgErr != nil {
		ln.Close()
		return s.cfgErr
	}
	if !s.trackListener(ln) {
		ln.Close()
		return ErrClosed
	}
	defer s.untrackListener(ln)
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Anything else (EMFILE, ECONNABORTED...) is transient: back
			// off and retry, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("server: accept", "err", err, "retry", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		s.accept(nc)
	}
}

// accept admits nc as a client or refuses it when the server is full or
// closed.
func (s *Server) accept(nc net.Conn) {
	s.stats.connections.Add(1)
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetKeepAlivePeriod(300 * time.Second) // Redis tcp-keepalive default
		tc.SetNoDelay(true)
	}
	c := newConn(s, nc)
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		nc.Close()
		return
	}
	if int64(len(s.mu.conns)) >= s.maxClients.Load() {
		s.mu.Unlock()
		s.stats.rejected.Add(1)
		nc.Write(resp.AppendError(nil, "ERR max number of clients reached"))
		nc.Close()
		return
	}
	s.mu.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer s.untrackConn(c)
		c.serve(s.ctx)
	}()
}

// Close stops every listener, closes every client connection, and waits for
// their goroutines to end. It is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	s.mu.closed = true
	for ln := range s.mu.listeners {
		ln.Close()
	}
	for c := range s.mu.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// Addr returns the address of the listener most recently passed to Serve,
// or nil if there is none yet.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.addr
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.closed
}

func (s *Server) trackListener(ln net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return false
	}
	s.mu.listeners[ln] = struct{}{}
	s.mu.addr = ln.Addr()
	return true
}

func (s *Server) untrackListener(ln net.Listener) {
	s.mu.Lock()
	delete(s.mu.listeners, ln)
	s.mu.Unlock()
	ln.Close()
}

func (s *Server) untrackConn(c *conn) {
	s.mu.Lock()
	delete(s.mu.conns, c)
	s.mu.Unlock()
}

// clients returns the connections being served, in no order.
func (s *Server) clients() []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := make([]*conn, 0, len(s.mu.conns))
	for c := range s.mu.conns {
		cs = append(cs, c)
	}
	return cs
}

// stats are the server-wide counters reported by INFO and reset by CONFIG
// RESETSTAT.
type stats struct {
	connections atomic.Int64 // connections accepted
	rejected    atomic.Int64 // refused because of maxclients
	evicted     atomic.Int64 // closed because of maxmemory-clients
	queryLimit  atomic.Int64 // closed because of client-query-buffer-limit
	outputLimit atomic.Int64 // closed because of the write timeout or client-output-buffer-limit
	oom         atomic.Int64 // commands refused with -OOM
	commands    atomic.Int64 // commands processed
	netIn       atomic.Int64 // bytes read from clients
	netOut      atomic.Int64 // bytes written to clients

	// Commands per second: the count of the current and the previous
	// wall-clock second, updated once per read batch.
	mu        sync.Mutex
	sec       int64
	secCount  int64
	prevSec   int64
	prevCount int64
}

// record counts n commands processed at now.
func (st *stats) record(now time.Time, n int) {
	st.commands.Add(int64(n))
	sec := now.Unix()
	st.mu.Lock()
	if sec != st.sec {
		st.prevSec, st.prevCount = st.sec, st.secCount
		st.sec, st.secCount = sec, 0
	}
	st.secCount += int64(n)
	st.mu.Unlock()
}

// opsPerSec returns the number of commands processed in the last complete
// second before now.
func (st *stats) opsPerSec(now time.Time) int64 {
	sec := now.Unix()
	st.mu.Lock()
	defer st.mu.Unlock()
	switch {
	case st.sec == sec-1:
		return st.secCount
	case st.sec == sec && st.prevSec == sec-1:
		return st.prevCount
	}
	return 0
}

func (st *stats) reset() {
	st.connections.Store(0)
	st.rejected.Store(0)
	st.evicted.Store(0)
	st.queryLimit.Store(0)
	st.outputLimit.Store(0)
	st.oom.Store(0)
	st.commands.Store(0)
	st.netIn.Store(0)
	st.netOut.Store(0)
	st.mu.Lock()
	st.sec, st.secCount, st.prevSec, st.prevCount = 0, 0, 0, 0
	st.mu.Unlock()
}
