package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoaldb/shoal/internal/shoalpb"
)

// server serves the shoalpb.Node service by handing everything to the
// Handler. Each method is counted in the transport's WaitGroup so Close
// waits for it.
type server struct {
	shoalpb.UnimplementedNodeServer
	t *Transport
}

var errClosing = status.Error(codes.Unavailable, "transport: closing")

// Raft delivers each batch received on a peer's stream.
func (s *server) Raft(stream shoalpb.Node_RaftServer) error {
	if !s.t.enter() {
		return errClosing
	}
	defer s.t.wg.Done()
	for {
		b, err := stream.Recv()
		if err == io.EOF {
			return stream.SendAndClose(&shoalpb.Empty{})
		}
		if err != nil {
			return err
		}
		if len(b.GetEnvelopes()) > 0 {
			s.t.cfg.Handler.HandleRaft(b.GetFromNode(), b.GetEnvelopes())
		}
	}
}

// Snapshot reassembles a snapshot from its chunks and delivers the whole
// message.
func (s *server) Snapshot(stream shoalpb.Node_SnapshotServer) error {
	if !s.t.enter() {
		return errClosing
	}
	defer s.t.wg.Done()
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	env := first.GetEnvelope()
	if env.GetMessage().GetType() != raftpb.MessageType_MsgSnap {
		return status.Error(codes.InvalidArgument, "transport: first snapshot chunk carries no MsgSnap")
	}
	var data []byte
	if size := first.GetSize(); size > 0 && int64(size) <= s.t.cfg.MaxSnapshotSize {
		data = make([]byte, 0, size) // one allocation, however many chunks
	}
	for c := first; ; {
		if int64(len(data))+int64(len(c.GetData())) > s.t.cfg.MaxSnapshotSize {
			return status.Errorf(codes.ResourceExhausted, "transport: snapshot larger than %d bytes", s.t.cfg.MaxSnapshotSize)
		}
		if data == nil {
			data = c.GetData() // a sender that gives no size: small snapshots are one chunk
		} else {
			data = append(data, c.GetData()...)
		}
		c, err = stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	m := env.GetMessage()
	if m.Snapshot == nil {
		m.Snapshot = &raftpb.Snapshot{}
	}
	m.Snapshot.Data = data
	s.t.cfg.Handler.HandleRaft(first.GetFromNode(), []*shoalpb.RaftEnvelope{env})
	return stream.SendAndClose(&shoalpb.Empty{})
}

// Call serves one unary Call; a handler error goes back in the reply, not
// as a gRPC error, so the caller can tell it from a transport failure.
func (s *server) Call(ctx context.Context, req *shoalpb.CallRequest) (*shoalpb.CallReply, error) {
	if !s.t.enter() {
		return nil, errClosing
	}
	defer s.t.wg.Done()
	r := s.t.serveCall(ctx, req)
	if r.GetEnded() != shoalpb.CallEnded_CALL_ENDED_NO {
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	return r, nil
}

// serveCall runs req's handler under ctx and returns its reply.
func (t *Transport) serveCall(ctx context.Context, req *shoalpb.CallRequest) *shoalpb.CallReply {
	body, err := t.cfg.Handler.HandleCall(ctx, req.GetFromNode(), req.GetMethod(), req.GetBody())
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		// The handler gave up because the caller's deadline passed or
		// the caller went away: the caller sees its context's error.
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return &shoalpb.CallReply{Ended: shoalpb.CallEnded_CALL_ENDED_DEADLINE}
		}
		return &shoalpb.CallReply{Ended: shoalpb.CallEnded_CALL_ENDED_CANCELED}
	}
	if err == nil && len(body) > maxCallBytes {
		err = fmt.Errorf("transport: call %s: reply of %d bytes is larger than a call carries (%d)", req.GetMethod(), len(body), maxCallBytes)
	}
	if err != nil {
		// Protobuf strings must be UTF-8, or the reply cannot be sent.
		r := &shoalpb.CallReply{Error: strings.ToValidUTF8(err.Error(), "\uFFFD")}
		if ce, ok := errors.AsType[*CallError](err); ok {
			r.Code = strings.ToValidUTF8(ce.Code, "\uFFFD")
		}
		if r.Error == "" && r.Code == "" {
			r.Error = "transport: handler failed"
		}
		return r
	}
	return &shoalpb.CallReply{Body: body}
}

// Calls serves a peer's Calls stream: each request runs in its own
// goroutine under the caller's deadline, until it returns, the caller
// cancels it or the stream ends, and the replies go back batched. The
// stream is served until the peer closes it, and returns only once every
// call it started has returned.
func (s *server) Calls(stream shoalpb.Node_CallsServer) error {
	if !s.t.enter() {
		return errClosing
	}
	defer s.t.wg.Done()
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	r := &replier{stream: stream}
	r.mu.running = make(map[uint64]context.CancelFunc)
	for {
		b, err := stream.Recv()
		if err == io.EOF {
			// The caller is done sending: answer what runs.
			r.wg.Wait()
			return nil
		}
		if err != nil {
			cancel()
			r.wg.Wait()
			return err
		}
		r.mu.Lock()
		for _, id := range b.GetCancels() {
			if stop := r.mu.running[id]; stop != nil {
				stop()
			}
		}
		r.mu.Unlock()
		for _, req := range b.GetRequests() {
			r.start(ctx, s.t, req)
		}
	}
}

// replier is the serving side of one Calls stream.
type replier struct {
	stream shoalpb.Node_CallsServer
	wg     sync.WaitGroup // the calls running
	mu     struct {
		sync.Mutex
		// running cancels the calls running, by id.
		running map[uint64]context.CancelFunc
		// Invariant: if queue is not empty, writing is set and its
		// writer will write it (unless the stream broke).
		queue   []*shoalpb.CallReply
		writing bool
		broken  bool
	}
}

// start runs req in a goroutine and sends its reply.
func (r *replier) start(ctx context.Context, t *Transport, req *shoalpb.CallRequest) {
	var cancel context.CancelFunc
	if us := req.GetTimeoutUs(); us > 0 {
		ctx, cancel = context.WithTimeout(ctx, time.Duration(us)*time.Microsecond)
	} else {
		ctx, cancel = context.WithCancel(ctx)
	}
	id := req.GetId()
	r.mu.Lock()
	r.mu.running[id] = cancel
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		reply := t.serveCall(ctx, req)
		reply.Id = id
		r.mu.Lock()
		delete(r.mu.running, id)
		cancel()
		r.mu.queue = append(r.mu.queue, reply)
		r.writeLocked()
	}()
}

// writeLocked writes the queued replies unless another goroutine is doing
// so; it is called with r.mu held and returns with it released.
func (r *replier) writeLocked() {
	if r.mu.broken {
		clear(r.mu.queue)
		r.mu.queue = r.mu.queue[:0]
	}
	if r.mu.writing || r.mu.broken {
		r.mu.Unlock()
		return
	}
	r.mu.writing = true
	for len(r.mu.queue) > 0 {
		b := &shoalpb.CallBatch{}
		n, size := 0, 0
		for _, reply := range r.mu.queue {
			add := 64 + len(reply.GetBody()) + len(reply.GetError())
			if size > 0 && size+add > maxBatchBytes {
				break
			}
			n++
			b.Replies = append(b.Replies, reply)
			size += add
		}
		rest := copy(r.mu.queue, r.mu.queue[n:])
		clear(r.mu.queue[rest:])
		r.mu.queue = r.mu.queue[:rest]
		r.mu.Unlock()
		err := r.stream.Send(b)
		r.mu.Lock()
		if err != nil {
			// The stream is gone, and with it the callers' wait.
			r.mu.broken = true
			clear(r.mu.queue)
			r.mu.queue = r.mu.queue[:0]
		}
	}
	r.mu.writing = false
	r.mu.Unlock()
}
