package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/shoaldb/shoal/internal/replicaid"
	"github.com/shoaldb/shoal/internal/shoalpb"
)

var (
	// ErrUnknownPeer is returned by Call for a node that SetPeer never named.
	ErrUnknownPeer = errors.New("transport: unknown peer")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("transport: closed")
	// ErrUnreachable is wrapped by errors of Calls that could not reach the
	// peer (connection refused or lost, peer removed). Such a call may or
	// may not have run on the peer, unless the error also wraps ErrNotSent.
	ErrUnreachable = errors.New("transport: peer unreachable")
	// ErrNotSent is wrapped, with ErrUnreachable, by errors of Calls that
	// certainly never reached the peer (no connection could be made), so
	// they are safe to retry elsewhere.
	ErrNotSent = errors.New("transport: call not sent")
	// ErrTooLarge is wrapped by errors of Calls whose request is larger
	// than a call may carry; they were not sent.
	ErrTooLarge = errors.New("transport: call too large")
)

// Handler is implemented by the node. See the package documentation for
// which goroutines call it.
type Handler interface {
	// HandleRaft delivers raft messages received from node from. Must not
	// block for long. The envelopes belong to the callee.
	HandleRaft(from uint64, envs []*shoalpb.RaftEnvelope)
	// HandleCall serves a Call. An error is returned to the caller as a
	// *CallError whose Msg is err.Error() and whose Code is that of the
	// *CallError err is or wraps, else "". ctx ends with the caller's
	// deadline or cancellation; an error that is ctx's own error after
	// ctx ended reaches the caller as context.DeadlineExceeded or
	// context.Canceled instead.
	HandleCall(ctx context.Context, from uint64, method string, body []byte) ([]byte, error)
	// ReportUnreachable tells raft that a message of shard to node to was
	// dropped.
	ReportUnreachable(shard, to uint64)
	// ReportSnapshot tells raft whether a snapshot of shard sent to node to
	// was delivered.
	ReportSnapshot(shard, to uint64, failed bool)
}

// CallError is the error a peer's Handler.HandleCall returned.
type CallError struct {
	// Code classifies the error for the caller; "" if the handler gave none.
	Code string
	// Msg is the handler's error message.
	Msg string
}

func (e *CallError) Error() string { return e.Msg }

// Transport sends raft messages, snapshots and calls to peers and serves
// theirs. All methods are safe for concurrent use.
type Transport struct {
	cfg      Config
	lis      net.Listener
	srv      *grpc.Server
	dialOpts []grpc.DialOption
	nodeID   atomic.Uint64
	// snapPacer spaces the snapshots' bytes to Config.SnapshotRate.
	snapPacer pacer

	// peers is read without a lock by Send and Call; writers replace the
	// whole map while holding mu.
	peers atomic.Pointer[map[uint64]*peer]

	// ctx is cancelled by Close; it is the parent of every stream.
	ctx    context.Context
	cancel context.CancelFunc
	// wg counts the transport's goroutines and the running server handlers.
	wg sync.WaitGroup

	mu struct {
		sync.Mutex
		closed bool
		// dials are the connections of CallAddr calls in flight.
		dials map[*grpc.ClientConn]struct{}
	}
}

// New listens on cfg.Addr and starts serving peers.
func New(cfg Config) (*Transport, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	t := &Transport{cfg: cfg, lis: lis, snapPacer: pacer{rate: float64(cfg.SnapshotRate)}}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.nodeID.Store(cfg.NodeID)
	t.peers.Store(&map[uint64]*peer{})
	t.mu.dials = make(map[*grpc.ClientConn]struct{})
	t.dialOpts = dialOptions(&cfg)
	t.srv = grpc.NewServer(serverOptions(&cfg)...)
	shoalpb.RegisterNodeServer(t.srv, &server{t: t})
	t.goFunc(func() {
		if err := t.srv.Serve(lis); err != nil && t.ctx.Err() == nil {
			t.cfg.Logger.Error("transport: serve", "addr", t.Addr(), "err", err)
		}
	})
	return t, nil
}

// HTTP/2 flow-control windows of the node-to-node connections. Fixed
// windows this large are never the limit on a raft stream, and they turn
// off gRPC's bandwidth-delay estimation, whose pings and window updates
// otherwise cost extra frames and syscalls on every burst of small raft
// messages. They are limits, not buffers: memory is used only for data
// in flight.
const (
	streamWindow = 8 << 20
	connWindow   = 32 << 20
)

func serverOptions(cfg *Config) []grpc.ServerOption {
	var opts []grpc.ServerOption
	if cfg.ServerTLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg.ServerTLS)))
	}
	return append(opts,
		grpc.MaxRecvMsgSize(maxMessageSize),
		grpc.MaxSendMsgSize(maxMessageSize),
		grpc.InitialWindowSize(streamWindow),
		grpc.InitialConnWindowSize(connWindow),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:    cfg.Keepalive,
			Timeout: cfg.KeepaliveTimeout,
		}),
		// Clients ping at most every minClientPing; allow that.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             minClientPing / 2,
			PermitWithoutStream: true,
		}),
	)
}

func dialOptions(cfg *Config) []grpc.DialOption {
	creds := insecure.NewCredentials()
	if cfg.ClientTLS != nil {
		creds = credentials.NewTLS(cfg.ClientTLS)
	}
	return []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(maxMessageSize),
			grpc.MaxCallSendMsgSize(maxMessageSize),
		),
		grpc.WithInitialWindowSize(streamWindow),
		grpc.WithInitialConnWindowSize(connWindow),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:                max(cfg.Keepalive, minClientPing),
			Timeout:             cfg.KeepaliveTimeout,
			PermitWithoutStream: true,
		}),
		// gRPC's own reconnect backoff (default up to 2 minutes) must not
		// outlast ours, or a restarted peer stays unreachable for long.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: grpcbackoff.Config{
				BaseDelay:  minBackoff,
				Multiplier: 2,
				Jitter:     0.2,
				MaxDelay:   maxBackoff,
			},
			MinConnectTimeout: cfg.DialTimeout,
		}),
		// Peers stay connected; raft traffic resumes at any moment.
		grpc.WithIdleTimeout(0),
	}
}

// Addr returns the address the transport listens on.
func (t *Transport) Addr() string { return t.lis.Addr().String() }

// SetNodeID sets the id sent with every message from now on.
func (t *Transport) SetNodeID(id uint64) { t.nodeID.Store(id) }

// SetPeer adds node id at addr, or moves it to addr. Moving a peer drops
// what was queued for it and reconnects.
func (t *Transport) SetPeer(id uint64, addr string) {
	t.mu.Lock()
	if t.mu.closed {
		t.mu.Unlock()
		return
	}
	old := (*t.peers.Load())[id]
	if old != nil && old.addr == addr {
		t.mu.Unlock()
		return
	}
	p, err := newPeer(t, id, addr)
	if err != nil {
		t.mu.Unlock()
		t.cfg.Logger.Error("transport: bad peer address", "peer", id, "addr", addr, "err", err)
		return
	}
	t.setPeersLocked(id, p)
	t.goFuncLocked(p.run)
	t.mu.Unlock()
	if old != nil {
		old.stop()
	}
}

// RemovePeer forgets node id, drops what is queued for it and closes its
// connection; its Calls in flight fail.
func (t *Transport) RemovePeer(id uint64) {
	t.mu.Lock()
	p := (*t.peers.Load())[id]
	if p != nil {
		t.setPeersLocked(id, nil)
	}
	t.mu.Unlock()
	if p != nil {
		p.stop()
	}
}

// setPeersLocked replaces the peer map with a copy where id maps to p, or
// is absent if p is nil.
func (t *Transport) setPeersLocked(id uint64, p *peer) {
	old := *t.peers.Load()
	peers := make(map[uint64]*peer, len(old)+1)
	for k, v := range old {
		peers[k] = v
	}
	if p == nil {
		delete(peers, id)
	} else {
		peers[id] = p
	}
	t.peers.Store(&peers)
}

// Send sends raft messages, each to the node of replica env.Message.To
// (internal/replicaid). It never blocks: a message that cannot be queued
// is dropped and reported to the Handler (ReportUnreachable, or
// ReportSnapshot(failed) for MsgSnap) before Send returns. After Close it
// does nothing.
func (t *Transport) Send(envs []*shoalpb.RaftEnvelope) {
	peers := *t.peers.Load()
	for _, env := range envs {
		m := env.GetMessage()
		p := peers[replicaid.Node(m.GetTo())]
		switch {
		case p == nil:
			if t.ctx.Err() != nil {
				return
			}
			t.reportDropped(env)
		case m.GetType() == raftpb.MessageType_MsgSnap:
			p.sendSnapshot(env)
		default:
			p.enqueue(env)
		}
	}
}

// Call runs method on node to and returns its reply. An error returned by
// the peer's handler is a *CallError; an unreachable peer gives an error
// wrapping ErrUnreachable. The transport may read body until Call returns,
// and after, if ctx ended first: the caller must not modify it.
func (t *Transport) Call(ctx context.Context, to uint64, method string, body []byte) ([]byte, error) {
	p := (*t.peers.Load())[to]
	if p == nil {
		if t.ctx.Err() != nil {
			return nil, ErrClosed
		}
		return nil, fmt.Errorf("node %d: %w", to, ErrUnknownPeer)
	}
	if !p.calls.legacy() {
		out, err := p.calls.call(ctx, method, body)
		if !errors.Is(err, errLegacy) {
			return out, err
		}
	}
	return t.call(ctx, p.client, method, body)
}

// CallAddr is Call to whatever node listens on addr, for use before node
// ids are known (joining). It reuses a peer's connection if one has addr,
// else it dials a connection just for this call.
func (t *Transport) CallAddr(ctx context.Context, addr, method string, body []byte) ([]byte, error) {
	for _, p := range *t.peers.Load() {
		if p.addr == addr {
			return t.call(ctx, p.client, method, body)
		}
	}
	conn, err := grpc.NewClient(target(addr), t.dialOpts...)
	if err != nil {
		return nil, fmt.Errorf("transport: dial %s: %w", addr, err)
	}
	defer conn.Close()
	t.mu.Lock()
	if t.mu.closed {
		t.mu.Unlock()
		return nil, ErrClosed
	}
	t.mu.dials[conn] = struct{}{}
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		delete(t.mu.dials, conn)
		t.mu.Unlock()
	}()
	return t.call(ctx, shoalpb.NewNodeClient(conn), method, body)
}

func (t *Transport) call(ctx context.Context, c shoalpb.NodeClient, method string, body []byte) ([]byte, error) {
	if n := callSize(method, body); n > maxCallBytes {
		return nil, fmt.Errorf("transport: call %s: request of %d bytes: %w", method, n, ErrTooLarge)
	}
	req := &shoalpb.CallRequest{Method: method, Body: body, FromNode: t.nodeID.Load()}
	r, err := c.Call(ctx, req)
	if err != nil {
		return nil, t.callError(ctx, method, err)
	}
	if r.GetError() != "" || r.GetCode() != "" {
		return nil, &CallError{Code: r.GetCode(), Msg: r.GetError()}
	}
	return r.GetBody(), nil
}

// neverSent reports whether a gRPC Unavailable message says the call
// failed for want of a connection: the dial failed, or the connection died
// before the HTTP/2 handshake finished, so no request was written to it.
// ("transport is closing" is not among them: streams already written can
// fail with it.)
func neverSent(msg string) bool {
	return strings.Contains(msg, "while dialing") || strings.Contains(msg, "error reading server preface")
}

// callError translates a gRPC error of a Call.
func (t *Transport) callError(ctx context.Context, method string, err error) error {
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("transport: call %s: %w", method, ctx.Err())
	case t.ctx.Err() != nil:
		return ErrClosed
	}
	switch st := status.Convert(err); st.Code() {
	case codes.Unavailable:
		if neverSent(st.Message()) {
			// gRPC failed the call because it had no connection to
			// send it on.
			return fmt.Errorf("transport: call %s: %s: %w: %w", method, st.Message(), ErrUnreachable, ErrNotSent)
		}
		return fmt.Errorf("transport: call %s: %s: %w", method, st.Message(), ErrUnreachable)
	case codes.DeadlineExceeded:
		// The peer enforces the caller's deadline too, and its verdict
		// can arrive before ctx's own timer fires.
		return fmt.Errorf("transport: call %s: %w", method, context.DeadlineExceeded)
	case codes.Canceled:
		// Canceled without a cancelled ctx: the connection was closed
		// because the peer was removed or moved.
		return fmt.Errorf("transport: call %s: %s: %w", method, st.Message(), ErrUnreachable)
	default:
		return fmt.Errorf("transport: call %s: %w", method, err)
	}
}

// Close stops serving, closes every connection and waits for all the
// transport's goroutines and running handlers to return. Messages still
// queued are dropped without reports. Close is idempotent.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.mu.closed {
		t.mu.Unlock()
		t.wg.Wait()
		return nil
	}
	t.mu.closed = true
	peers := *t.peers.Load()
	t.peers.Store(&map[uint64]*peer{})
	dials := t.mu.dials
	t.mu.dials = nil
	t.mu.Unlock()

	t.cancel()
	for _, p := range peers {
		p.stop()
	}
	for conn := range dials {
		conn.Close()
	}
	// Stop closes the listener and all connections and cancels the
	// contexts of running handlers; wg waits for those to return.
	t.srv.Stop()
	t.wg.Wait()
	return nil
}

// goFunc runs f in a goroutine counted by wg, unless the transport is
// closed; it reports whether f was started.
func (t *Transport) goFunc(f func()) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.goFuncLocked(f)
}

func (t *Transport) goFuncLocked(f func()) bool {
	if t.mu.closed {
		return false
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		f()
	}()
	return true
}

// enter counts a server handler in wg; it fails once the transport is
// closed. A successful enter must be paired with t.wg.Done.
func (t *Transport) enter() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.closed {
		return false
	}
	t.wg.Add(1)
	return true
}

// reportDropped tells the Handler that env was not delivered, unless the
// transport is closing.
func (t *Transport) reportDropped(env *shoalpb.RaftEnvelope) {
	if t.ctx.Err() != nil {
		return
	}
	m := env.GetMessage()
	if m.GetType() == raftpb.MessageType_MsgSnap {
		t.cfg.Handler.ReportSnapshot(env.GetShardId(), m.GetTo(), true)
		return
	}
	t.cfg.Handler.ReportUnreachable(env.GetShardId(), m.GetTo())
}

// target is the gRPC target for a host:port. The passthrough resolver
// hands the address to the dialer, which resolves names on every
// reconnect.
func target(addr string) string { return "passthrough:///" + addr }
