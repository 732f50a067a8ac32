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

// callStream is the calling side of the Calls stream to one peer. A caller
// that finds the stream open and nobody writing writes everything queued
// (its own call and whatever others queued) as one batch; whatever is
// queued while a batch is being written is written by a flusher goroutine,
// which also opens the stream and writes cancellations. So concurrent calls
// share stream messages and system calls instead of paying a gRPC stream
// each, and no caller writes more than one batch. One goroutine per stream
// reads the batched replies and hands each to its waiting caller by id.
//
// Outcomes follow unary gRPC calls: a call that was never written fails
// with ErrNotSent, one written to a stream that then broke fails with
// ErrUnreachable alone (it may have run), a caller that stops waiting
// cancels the call on the peer, and the peer runs each call under the
// caller's deadline.
type callStream struct {
	p *peer
	// born is when the callStream was made; legacyUntil is the time since
	// born until which calls go as unary calls, because the peer refused
	// the stream; 0 if it never did.
	born        time.Time
	legacyUntil atomic.Int64

	mu struct {
		sync.Mutex
		// Invariant: if queue or cancels is not empty, writing is set,
		// and whoever set it writes them or hands them to a flusher.
		nextID  uint64
		pending map[uint64]*pendingCall // calls awaiting an outcome, by id
		queue   []*pendingCall          // calls not yet written, in order
		cancels []uint64                // written calls the caller gave up
		writing bool
		// s is the open stream, nil if none; gen numbers the streams
		// opened, so a call knows which stream it was written on.
		s      shoalpb.Node_CallsClient
		gen    uint64
		cancel context.CancelFunc // ends s
		// ended is closed once stream gen has ended and its calls have
		// failed with the stream's own error.
		ended chan struct{}
		// replied is set once stream gen has delivered a reply.
		replied bool
	}
}

// pendingCall is one call from queueing to its outcome, which is set, and
// done closed, under callStream.mu.
type pendingCall struct {
	req      *shoalpb.CallRequest
	deadline time.Time // the caller's; zero if none
	// gen is the stream the call was written on, 0 until written.
	gen       uint64
	abandoned bool // the caller stopped waiting before it was written
	done      chan struct{}
	reply     *shoalpb.CallReply
	err       error
}

func newCallStream(p *peer) *callStream {
	c := &callStream{p: p, born: time.Now()}
	c.mu.pending = make(map[uint64]*pendingCall)
	return c
}

// legacy reports whether calls to the peer should go as unary Calls.
func (c *callStream) legacy() bool {
	u := c.legacyUntil.Load()
	return u != 0 && time.Since(c.born) < time.Duration(u)
}

// call runs method on the peer over the Calls stream. It fails with
// errLegacy if the peer does not serve the stream.
func (c *callStream) call(ctx context.Context, method string, body []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("transport: call %s: %w", method, err)
	}
	if n := callSize(method, body); n > maxCallBytes {
		return nil, fmt.Errorf("transport: call %s: request of %d bytes: %w", method, n, ErrTooLarge)
	}
	req := &shoalpb.CallRequest{Method: method, Body: body, FromNode: c.p.t.nodeID.Load()}
	pc := &pendingCall{req: req, done: make(chan struct{})}
	pc.deadline, _ = ctx.Deadline()
	c.mu.Lock()
	c.mu.nextID++
	req.Id = c.mu.nextID
	c.mu.pending[req.Id] = pc
	c.mu.queue = append(c.mu.queue, pc)
	c.writeLocked(true)

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

// callSize is about what a call adds to a stream message.
func callSize(method string, body []byte) int { return 64 + len(method) + len(body) }

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
	switch {
	case pc.gen == 0:
		pc.abandoned = true
	case pc.gen == c.mu.gen && c.mu.s != nil:
		c.mu.cancels = append(c.mu.cancels, id)
		c.writeLocked(false)
		return true
	}
	c.mu.Unlock()
	return true
}

// writeLocked sees that what is queued gets written; it is called with
// c.mu held and returns with it released. A caller (byCaller) writes one
// batch itself if the stream is open and nobody is writing; everything
// else is left to the writer at work or to a new flusher goroutine.
func (c *callStream) writeLocked(byCaller bool) {
	if c.mu.writing {
		c.mu.Unlock()
		return
	}
	c.mu.writing = true
	if byCaller && c.mu.s != nil {
		c.writeBatchLocked()
		if len(c.mu.queue) == 0 && len(c.mu.cancels) == 0 {
			c.mu.writing = false
			c.mu.Unlock()
			return
		}
	}
	c.mu.Unlock()
	if !c.p.t.goFunc(c.flush) {
		c.mu.Lock()
		c.failQueuedLocked(func(*pendingCall) error { return ErrClosed })
		c.mu.cancels = nil
		c.mu.writing = false
		c.mu.Unlock()
	}
}

// flush is the flusher goroutine: it writes until nothing is queued,
// opening a stream when there is none.
func (c *callStream) flush() {
	c.mu.Lock()
	for len(c.mu.queue) > 0 || len(c.mu.cancels) > 0 {
		if c.mu.s == nil {
			c.mu.cancels = nil // their stream is gone, and their calls with it
			if c.liveQueuedLocked() {
				c.openLocked()
			} else {
				c.failQueuedLocked(nil) // all abandoned: nobody to tell
			}
			continue
		}
		c.writeBatchLocked()
	}
	c.mu.writing = false
	c.mu.Unlock()
}

// liveQueuedLocked reports whether a queued call still has a caller.
func (c *callStream) liveQueuedLocked() bool {
	for _, pc := range c.mu.queue {
		if !pc.abandoned {
			return true
		}
	}
	return false
}

// writeBatchLocked writes the next batch on the open stream, releasing
// c.mu meanwhile. If the write fails it waits until the receiver has
// ended the stream with the stream's own error: gRPC reports only that
// the stream ended to the writer, the cause to the reader.
func (c *callStream) writeBatchLocked() {
	b := c.takeLocked()
	if len(b.GetRequests()) == 0 && len(b.GetCancels()) == 0 {
		return
	}
	s, ended := c.mu.s, c.mu.ended
	c.mu.Unlock()
	if err := s.Send(b); err != nil {
		<-ended
	}
	c.mu.Lock()
}

// takeLocked removes from the queue the next batch to write, about
// maxBatchBytes at most (a single larger call goes alone), and the
// cancellations, and marks the calls as written on the current stream.
// Calls whose deadline has passed fail unwritten.
func (c *callStream) takeLocked() *shoalpb.CallBatch {
	b := &shoalpb.CallBatch{Cancels: c.mu.cancels}
	c.mu.cancels = nil
	now := time.Now()
	n, size := 0, 0
	for _, pc := range c.mu.queue {
		if pc.abandoned {
			n++
			continue
		}
		add := callSize(pc.req.GetMethod(), pc.req.GetBody())
		if size > 0 && size+add > maxBatchBytes {
			break
		}
		n++
		if !pc.deadline.IsZero() {
			left := pc.deadline.Sub(now)
			if left <= 0 {
				c.finishLocked(pc, nil, fmt.Errorf("transport: call %s: %w", pc.req.GetMethod(), context.DeadlineExceeded))
				continue
			}
			pc.req.TimeoutUs = max(left.Microseconds(), 1)
		}
		pc.gen = c.mu.gen
		b.Requests = append(b.Requests, pc.req)
		size += add
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
	c.mu.s, c.mu.cancel, c.mu.ended, c.mu.replied = s, cancel, make(chan struct{}), false
	gen := c.mu.gen
	if !c.p.t.goFunc(func() { c.receive(s, gen) }) {
		c.brokenLocked(gen, ErrClosed)
		c.failQueuedLocked(func(*pendingCall) error { return ErrClosed })
	}
}

// failQueuedLocked fails every queued call with the error errOf gives it
// and empties the queue.
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
		if c.mu.gen == gen {
			c.mu.replied = true
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
// unimplemented before answering anything on it ran none of them; they
// fail with errLegacy.
func (c *callStream) brokenLocked(gen uint64, err error) {
	if c.mu.s == nil || c.mu.gen != gen {
		return // already closed
	}
	c.mu.cancel()
	close(c.mu.ended)
	c.mu.s, c.mu.cancel = nil, nil
	legacy := status.Code(err) == codes.Unimplemented && !c.mu.replied
	if legacy {
		c.legacyUntil.Store(int64(time.Since(c.born) + legacyRetry))
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
