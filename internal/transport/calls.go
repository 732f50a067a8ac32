package transport

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoaldb/shoal/internal/shoalpb"
)

// legacyRetry is how long calls to a peer that does not serve the Calls
// stream (an older binary) go as unary Calls before the stream is tried
// again.
const legacyRetry = 30 * time.Second

// errLegacy fails the calls of a Calls stream the peer refused as
// unimplemented: none of them ran, and Call repeats them as unary Calls.
var errLegacy = errors.New("transport: peer does not serve Calls streams")

// callStream is the calling side of the Calls stream to one peer. A call is
// queued, and whichever caller finds nobody writing writes everything
// queued as one batch, again until the queue is empty; so concurrent calls
// share stream messages and system calls instead of paying a gRPC stream
// each. One goroutine per stream reads the batched replies and hands each
// to its waiting caller by id.
//
// Outcomes follow unary gRPC calls: a call that was never written fails
// with ErrNotSent, one written to a stream that then broke fails with
// ErrUnreachable alone (it may have run), a caller that stops waiting
// cancels the call on the peer, and the peer runs each call under the
// caller's deadline.
type callStream struct {
	p *peer
	// legacyUntil, in Unix nanoseconds, is when to try the stream again
	// after the peer refused it; 0 if it never did.
	legacyUntil atomic.Int64

	mu struct {
		sync.Mutex
		// Invariant: if queue or cancels is not empty, writing is set
		// and its writer will write them.
		nextID  uint64
		pending map[uint64]*pendingCall // calls awaiting a reply, by id
		queue   []*pendingCall          // calls not yet written, in order
		cancels []uint64                // written calls the caller gave up
		writing bool
		// s is the open stream, nil if none; gen numbers the streams
		// opened, so a call knows which stream it was written on.
		s      shoalpb.Node_CallsClient
		gen    uint64
		cancel context.CancelFunc // ends s
	}
}

// pendingCall is one call from queueing to its outcome, which is set, and
// done closed, under callStream.mu.
type pendingCall struct {
	req *shoalpb.CallRequest
	// gen is the stream the call was written on, 0 until written.
	gen       uint64
	abandoned bool // the caller stopped waiting before it was written
	done      chan struct{}
	reply     *shoalpb.CallReply
	err       error
}

func newCallStream(p *peer) *callStream {
	c := &callStream{p: p}
	c.mu.pending = make(map[uint64]*pendingCall)
	return c
}

// legacy reports whether calls to the peer should go as unary Calls.
func (c *callStream) legacy() bool {
	u := c.legacyUntil.Load()
	return u != 0 && time.Now().UnixNano() < u
}

// call runs method on the peer over the Calls stream. It fails with
// errLegacy if the peer does not serve the stream.
func (c *callStream) call(ctx context.Context, method string, body []byte) ([]byte, error) {
	req := &shoalpb.CallRequest{Method: method, Body: body, FromNode: c.p.t.nodeID.Load()}
	if dl, ok := ctx.Deadline(); ok {
		d := time.Until(dl)
		if d <= 0 || ctx.Err() != nil {
			return nil, fmt.Errorf("transport: call %s: %w", method, context.DeadlineExceeded)
		}
		req.TimeoutUs = max(d.Microseconds(), 1)
	}
	pc := &pendingCall{req: req, done: make(chan struct{})}
	c.mu.Lock()
	c.mu.nextID++
	req.Id = c.mu.nextID
	c.mu.pending[req.Id] = pc
	c.mu.queue = append(c.mu.queue, pc)
	c.writeLocked()

	select {
	case <-pc.done:
	case <-ctx.Done():
		if c.abandon(pc) {
			return nil, fmt.Errorf("transport: call %s: %w", method, ctx.Err())
		}
	}
	if pc.err != nil {
		return nil, pc.err
	}
	r := pc.reply
	switch r.GetEnded() {
	case shoalpb.CallEnded_CALL_ENDED_DEADLINE:
		// The peer enforces the caller's deadline too, and its verdict
		// can arrive before ctx's own timer fires.
		return nil, fmt.Errorf("transport: call %s: %w", method, context.DeadlineExceeded)
	case shoalpb.CallEnded_CALL_ENDED_CANCELED:
		// Not by this caller, who is still waiting: the peer is closing.
		return nil, fmt.Errorf("transport: call %s: canceled by the peer: %w", method, ErrUnreachable)
	}
	if r.GetError() != "" || r.GetCode() != "" {
		return nil, &CallError{Code: r.GetCode(), Msg: r.GetError()}
	}
	return r.GetBody(), nil
}

// abandon withdraws pc, whose caller stopped waiting: a queued call is not
// written, a written one is cancelled on the peer. It reports false if pc
// already had its outcome, which the caller then takes.
func (c *callStream) abandon(pc *pendingCall) bool {
	c.mu.Lock()
	id := pc.req.GetId()
	if c.mu.pending[id] != pc {
		c.mu.Unlock()
		return false
	}
	delete(c.mu.pending, id)
	if pc.gen == 0 {
		pc.abandoned = true
		c.mu.Unlock()
		return true
	}
	if pc.gen == c.mu.gen && c.mu.s != nil {
		c.mu.cancels = append(c.mu.cancels, id)
		c.writeLocked()
		return true
	}
	c.mu.Unlock()
	return true
}

// writeLocked writes what is queued unless another caller is doing so; it
// is called with c.mu held and returns with it released.
func (c *callStream) writeLocked() {
	if c.mu.writing {
		c.mu.Unlock()
		return
	}
	c.mu.writing = true
	for len(c.mu.queue) > 0 || len(c.mu.cancels) > 0 {
		if c.mu.s == nil {
			c.mu.cancels = nil // their stream is gone, and their calls with it
			if len(c.mu.queue) > 0 {
				c.openLocked()
			}
			continue
		}
		b := c.takeLocked()
		s, gen := c.mu.s, c.mu.gen
		c.mu.Unlock()
		err := s.Send(b)
		c.mu.Lock()
		if err != nil {
			c.brokenLocked(gen, err)
		}
	}
	c.mu.writing = false
	c.mu.Unlock()
}

// takeLocked removes from the queue the next batch to write, about
// maxBatchBytes at most, and the cancellations, and marks the calls as
// written on the current stream.
func (c *callStream) takeLocked() *shoalpb.CallBatch {
	b := &shoalpb.CallBatch{Cancels: c.mu.cancels}
	c.mu.cancels = nil
	n, size := 0, 0
	for _, pc := range c.mu.queue {
		if size >= maxBatchBytes {
			break
		}
		n++
		if pc.abandoned {
			continue
		}
		pc.gen = c.mu.gen
		b.Requests = append(b.Requests, pc.req)
		size += 64 + len(pc.req.GetMethod()) + len(pc.req.GetBody())
	}
	rest := copy(c.mu.queue, c.mu.queue[n:])
	clear(c.mu.queue[rest:])
	c.mu.queue = c.mu.queue[:rest]
	return b
}

// openLocked opens a stream, releasing c.mu while it waits for gRPC; if
// that fails, every queued call fails as never sent.
func (c *callStream) openLocked() {
	if c.legacy() {
		c.failQueuedLocked(func(*pendingCall) error { return errLegacy })
		return
	}
	c.mu.Unlock()
	ctx, cancel := context.WithCancel(c.p.ctx)
	s, err := c.p.client.Calls(ctx)
	c.mu.Lock()
	if err != nil {
		cancel()
		c.failQueuedLocked(func(pc *pendingCall) error {
			if c.p.t.ctx.Err() != nil {
				return ErrClosed
			}
			return fmt.Errorf("transport: call %s: %s: %w: %w", pc.req.GetMethod(), status.Convert(err).Message(), ErrUnreachable, ErrNotSent)
		})
		return
	}
	c.mu.gen++
	c.mu.s, c.mu.cancel = s, cancel
	gen := c.mu.gen
	if !c.p.t.goFunc(func() { c.receive(s, gen) }) {
		c.brokenLocked(gen, ErrClosed)
	}
}

// failQueuedLocked fails every queued call with the error errOf gives it.
func (c *callStream) failQueuedLocked(errOf func(*pendingCall) error) {
	for _, pc := range c.mu.queue {
		if !pc.abandoned {
			c.finishLocked(pc, nil, errOf(pc))
		}
	}
	clear(c.mu.queue)
	c.mu.queue = c.mu.queue[:0]
}

// receive reads the replies of stream gen until it breaks.
func (c *callStream) receive(s shoalpb.Node_CallsClient, gen uint64) {
	for {
		b, err := s.Recv()
		c.mu.Lock()
		if err != nil {
			c.brokenLocked(gen, err)
			c.mu.Unlock()
			return
		}
		for _, r := range b.GetReplies() {
			if pc := c.mu.pending[r.GetId()]; pc != nil && pc.gen == gen {
				c.finishLocked(pc, r, nil)
			}
		}
		c.mu.Unlock()
	}
}

// brokenLocked closes stream gen after err and fails the calls written on
// it: they may or may not have run. A peer that refused the stream as
// unimplemented ran none of them; they fail with errLegacy.
func (c *callStream) brokenLocked(gen uint64, err error) {
	if c.mu.s == nil || c.mu.gen != gen {
		return // already closed
	}
	c.mu.cancel()
	c.mu.s, c.mu.cancel = nil, nil
	legacy := status.Code(err) == codes.Unimplemented
	if legacy {
		c.legacyUntil.Store(time.Now().Add(legacyRetry).UnixNano())
	}
	for _, pc := range c.mu.pending {
		if pc.gen != gen {
			continue
		}
		switch {
		case legacy:
			c.finishLocked(pc, nil, errLegacy)
		case c.p.t.ctx.Err() != nil:
			c.finishLocked(pc, nil, ErrClosed)
		default:
			c.finishLocked(pc, nil, fmt.Errorf("transport: call %s: %s: %w", pc.req.GetMethod(), status.Convert(err).Message(), ErrUnreachable))
		}
	}
}

// finishLocked gives pc its outcome and wakes its caller.
func (c *callStream) finishLocked(pc *pendingCall, r *shoalpb.CallReply, err error) {
	delete(c.mu.pending, pc.req.GetId())
	pc.reply, pc.err = r, err
	close(pc.done)
}
