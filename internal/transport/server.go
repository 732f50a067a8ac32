package transport

import (
	"context"
	"errors"
	"io"

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
	for c := first; ; {
		if int64(len(data))+int64(len(c.GetData())) > s.t.cfg.MaxSnapshotSize {
			return status.Errorf(codes.ResourceExhausted, "transport: snapshot larger than %d bytes", s.t.cfg.MaxSnapshotSize)
		}
		if data == nil {
			data = c.GetData() // usually the only allocation for small snapshots
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

// Call serves one Call; a handler error goes back in the reply, not as a
// gRPC error, so the caller can tell it from a transport failure.
func (s *server) Call(ctx context.Context, req *shoalpb.CallRequest) (*shoalpb.CallReply, error) {
	if !s.t.enter() {
		return nil, errClosing
	}
	defer s.t.wg.Done()
	body, err := s.t.cfg.Handler.HandleCall(ctx, req.GetFromNode(), req.GetMethod(), req.GetBody())
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		// The handler gave up because the caller's deadline passed or
		// the caller went away: the caller sees its context's error.
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	if err != nil {
		r := &shoalpb.CallReply{Error: err.Error()}
		if ce, ok := errors.AsType[*CallError](err); ok {
			r.Code = ce.Code
		}
		if r.Error == "" && r.Code == "" {
			r.Error = "transport: handler failed"
		}
		return r, nil
	}
	return &shoalpb.CallReply{Body: body}, nil
}
