package simnet

import (
	"bytes"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/shoaldb/shoal/internal/replicaid"
	"github.com/shoaldb/shoal/internal/shoalpb"
	"github.com/shoaldb/shoal/internal/transport"
)

// Endpoint is one node's attachment to a Network. Its methods mirror
// *transport.Transport's and are safe for concurrent use.
type Endpoint struct {
	n    *Network
	addr string
	h    transport.Handler
	id   atomic.Uint64

	inbox inbox
	// ctx is cancelled by Close: it stops the delivery goroutine and is
	// the parent of the contexts of Calls served.
	ctx    context.Context
	cancel context.CancelFunc
	// wg counts the delivery goroutine, running HandleCalls and handler
	// calls made on the endpoint's behalf by other endpoints' goroutines.
	wg sync.WaitGroup

	mu struct {
		sync.Mutex
		closed bool
		peers  map[uint64]string
	}
}

func newEndpoint(n *Network, addr string, h transport.Handler) *Endpoint {
	e := &Endpoint{n: n, addr: addr, h: h}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.inbox.wake = make(chan struct{}, 1)
	e.mu.peers = make(map[uint64]string)
	return e
}

// Addr returns the endpoint's address.
func (e *Endpoint) Addr() string { return e.addr }

// SetNodeID sets the node id the endpoint sends as and is known by in
// partitions.
func (e *Endpoint) SetNodeID(id uint64) { e.id.Store(id) }

// SetPeer says node id is at addr.
func (e *Endpoint) SetPeer(id uint64, addr string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.mu.peers[id] = addr
}

// RemovePeer forgets node id.
func (e *Endpoint) RemovePeer(id uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.mu.peers, id)
}

func (e *Endpoint) peer(id uint64) (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	addr, ok := e.mu.peers[id]
	return addr, ok
}

// Send sends raft messages, each to node env.Message.To. It never blocks;
// a message the network drops at once is reported to the Handler before
// Send returns, like the real transport. The envelopes are copied.
func (e *Endpoint) Send(envs []*shoalpb.RaftEnvelope) {
	if e.ctx.Err() != nil {
		return
	}
	now := time.Now()
	from := e.id.Load()
	for _, env := range envs {
		addr, ok := e.peer(replicaid.Node(env.GetMessage().GetTo()))
		p := &packet{from: e, fromID: from, env: proto.CloneOf(env)}
		if !ok || !e.n.schedule(e, addr, p, now) {
			reportDropped(e.h, env)
		}
	}
}

// Call runs method on node to, through the network's faults.
func (e *Endpoint) Call(ctx context.Context, to uint64, method string, body []byte) ([]byte, error) {
	if e.ctx.Err() != nil {
		return nil, transport.ErrClosed
	}
	addr, ok := e.peer(to)
	if !ok {
		return nil, fmt.Errorf("node %d: %w", to, transport.ErrUnknownPeer)
	}
	return e.call(ctx, addr, method, body)
}

// CallAddr runs method on whatever node is at addr.
func (e *Endpoint) CallAddr(ctx context.Context, addr, method string, body []byte) ([]byte, error) {
	if e.ctx.Err() != nil {
		return nil, transport.ErrClosed
	}
	return e.call(ctx, addr, method, body)
}

func (e *Endpoint) call(ctx context.Context, addr, method string, body []byte) ([]byte, error) {
	from := e.id.Load()
	dst, delay, ok := e.n.route(from, addr)
	if !ok {
		return nil, fmt.Errorf("simnet: call %s to %s: no route: %w: %w", method, addr, transport.ErrUnreachable, transport.ErrNotSent)
	}
	if err := sleep(ctx, delay); err != nil {
		return nil, fmt.Errorf("simnet: call %s: %w", method, err)
	}
	out, err := dst.serve(ctx, from, method, bytes.Clone(body))
	if err == errStopped {
		return nil, fmt.Errorf("simnet: call %s to %s: node stopped: %w: %w", method, addr, transport.ErrUnreachable, transport.ErrNotSent)
	}
	delay, ok = e.n.reply(dst, from)
	if !ok {
		return nil, fmt.Errorf("simnet: call %s to %s: reply lost: %w", method, addr, transport.ErrUnreachable)
	}
	if err := sleep(ctx, delay); err != nil {
		return nil, fmt.Errorf("simnet: call %s: %w", method, err)
	}
	if err != nil {
		return nil, callError(err)
	}
	return bytes.Clone(out), nil
}

// errStopped is returned by serve when the endpoint is closed.
var errStopped = errors.New("simnet: endpoint closed")

// serve runs a Call on e's handler with a context that Close cancels.
func (e *Endpoint) serve(ctx context.Context, from uint64, method string, body []byte) ([]byte, error) {
	if !e.enter() {
		return nil, errStopped
	}
	defer e.wg.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(e.ctx, cancel)
	defer stop()
	return e.h.HandleCall(ctx, from, method, body)
}

// callError is what a caller sees of a handler's error, as the real
// transport delivers it.
func callError(err error) error {
	ce := &transport.CallError{Msg: err.Error()}
	if c, ok := errors.AsType[*transport.CallError](err); ok {
		ce.Code = c.Code
	}
	if ce.Msg == "" && ce.Code == "" {
		ce.Msg = "transport: handler failed"
	}
	return ce
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Close detaches the endpoint, as a crash would: messages in flight to it
// are lost and Calls it is serving see their context cancelled. It waits
// for the endpoint's goroutines and handler calls to end. A new Endpoint
// may then be registered at the same address. Close is idempotent.
func (e *Endpoint) Close() error {
	e.mu.Lock()
	if e.mu.closed {
		e.mu.Unlock()
		e.wg.Wait()
		return nil
	}
	e.mu.closed = true
	e.mu.Unlock()
	e.n.unregister(e)
	e.cancel()
	e.wg.Wait()
	e.inbox.clear()
	return nil
}

// enter counts a handler call in wg unless e is closed; a successful enter
// is paired with e.wg.Done.
func (e *Endpoint) enter() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.mu.closed {
		return false
	}
	e.wg.Add(1)
	return true
}

// report calls f with e's handler unless e is closed; it is how other
// endpoints' goroutines report to e.
func (e *Endpoint) report(f func(h transport.Handler)) {
	if !e.enter() {
		return
	}
	defer e.wg.Done()
	f(e.h)
}

func reportDropped(h transport.Handler, env *shoalpb.RaftEnvelope) {
	m := env.GetMessage()
	if m.GetType() == raftpb.MessageType_MsgSnap {
		h.ReportSnapshot(env.GetShardId(), m.GetTo(), true)
		return
	}
	h.ReportUnreachable(env.GetShardId(), m.GetTo())
}

// deliver is the endpoint's delivery goroutine: it hands each packet to the
// handler when its time comes.
func (e *Endpoint) deliver() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		due, next := e.inbox.popDue(time.Now())
		e.handle(due)
		var wait <-chan time.Time
		if !next.IsZero() {
			timer.Reset(time.Until(next))
			wait = timer.C
		}
		select {
		case <-e.ctx.Done():
			return
		case <-e.inbox.wake:
		case <-wait:
		}
	}
}

// handle delivers due packets in order, passing runs of raft messages from
// one sender to HandleRaft together.
func (e *Endpoint) handle(due []*packet) {
	to := e.id.Load()
	var batch []*shoalpb.RaftEnvelope
	var from *packet
	flush := func() {
		if len(batch) > 0 {
			e.h.HandleRaft(from.fromID, batch)
			batch = nil
		}
	}
	for _, p := range due {
		if e.ctx.Err() != nil {
			return
		}
		if e.n.blocked(p.fromID, to) { // partitioned while in flight
			p.from.report(func(h transport.Handler) { reportDropped(h, p.env) })
			continue
		}
		if from == nil || p.from != from.from || p.fromID != from.fromID {
			flush()
			from = p
		}
		if p.env.GetMessage().GetType() != raftpb.MessageType_MsgSnap {
			batch = append(batch, p.env)
			continue
		}
		flush()
		e.h.HandleRaft(p.fromID, []*shoalpb.RaftEnvelope{p.env})
		p.from.report(func(h transport.Handler) {
			h.ReportSnapshot(p.env.GetShardId(), p.env.GetMessage().GetTo(), false)
		})
	}
	flush()
}

// packet is a raft message in flight.
type packet struct {
	at     time.Time // when to deliver
	seq    uint64    // tie-breaker: order of scheduling
	from   *Endpoint
	fromID uint64
	env    *shoalpb.RaftEnvelope
}

// inbox holds an endpoint's packets in flight, earliest first.
type inbox struct {
	mu   sync.Mutex
	q    packetHeap
	wake chan struct{} // signalled when a packet is pushed
}

func (b *inbox) push(p *packet) {
	b.mu.Lock()
	heap.Push(&b.q, p)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// popDue removes and returns the packets due at now, and the time the next
// one is due (zero if none).
func (b *inbox) popDue(now time.Time) ([]*packet, time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var due []*packet
	for len(b.q) > 0 && !b.q[0].at.After(now) {
		due = append(due, heap.Pop(&b.q).(*packet))
	}
	if len(b.q) > 0 {
		return due, b.q[0].at
	}
	return due, time.Time{}
}

func (b *inbox) clear() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.q = nil
}

type packetHeap []*packet

func (h packetHeap) Len() int { return len(h) }
func (h packetHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h packetHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *packetHeap) Push(x any)   { *h = append(*h, x.(*packet)) }
func (h *packetHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return p
}
