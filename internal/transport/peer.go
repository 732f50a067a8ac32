package transport

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/shoaldb/shoal/internal/shoalpb"
)

// peer is the sending side of the transport for one remote node: its
// connection, its raft message queue and the goroutine that drains it.
type peer struct {
	t      *Transport
	id     uint64
	addr   string
	log    *slog.Logger
	conn   *grpc.ClientConn // shared by the Raft stream, snapshots and Calls
	client shoalpb.NodeClient
	queue  chan *shoalpb.RaftEnvelope
	// snaps is a semaphore bounding concurrent snapshot sends.
	snaps chan struct{}
	// calls carries Calls to the peer.
	calls *callStream
	// ctx is cancelled by stop; it is the parent of the peer's streams.
	ctx    context.Context
	cancel context.CancelFunc

	// upSince is when the current stream opened, zero while there is
	// none; only the sender goroutine uses it.
	upSince time.Time
	// connLog, lostLog and fullLog rate-limit logs about failed
	// connections, broken streams and drops on a full queue.
	connLog, lostLog, fullLog limiter
}

func newPeer(t *Transport, id uint64, addr string) (*peer, error) {
	conn, err := grpc.NewClient(target(addr), t.dialOpts...)
	if err != nil {
		return nil, err
	}
	p := &peer{
		t:      t,
		id:     id,
		addr:   addr,
		log:    t.cfg.Logger.With("peer", id, "addr", addr),
		conn:   conn,
		client: shoalpb.NewNodeClient(conn),
		queue:  make(chan *shoalpb.RaftEnvelope, t.cfg.QueueLen),
		snaps:  make(chan struct{}, maxSnapshotsPerPeer),
	}
	p.ctx, p.cancel = context.WithCancel(t.ctx)
	p.calls = newCallStream(p)
	return p, nil
}

// stop ends the peer's goroutines and closes its connection. Queued
// messages are dropped without reports: the peer is gone or has moved.
func (p *peer) stop() {
	p.cancel()
	p.conn.Close()
}

// enqueue queues env for the sender goroutine, or drops and reports it if
// the queue is full.
func (p *peer) enqueue(env *shoalpb.RaftEnvelope) {
	if p.ctx.Err() != nil { // removed or moved since Send looked it up
		p.t.reportDropped(env)
		return
	}
	select {
	case p.queue <- env:
	default:
		p.t.reportDropped(env)
		if n, ok := p.fullLog.allow(); ok {
			p.log.Warn("transport: peer queue full, dropping raft messages", "dropped", n)
		}
	}
}

// run is the sender goroutine: it keeps a Raft stream open and writes
// batches of queued messages on it, reconnecting with backoff.
func (p *peer) run() {
	var bo backoff
	for p.ctx.Err() == nil {
		err := p.stream()
		if p.ctx.Err() != nil {
			return
		}
		if !p.upSince.IsZero() {
			// A stream that lived a while proves the peer healthy; one
			// that broke at once (the peer rejecting it) keeps backing off.
			if time.Since(p.upSince) > maxBackoff {
				bo.reset()
			}
			p.upSince = time.Time{}
			if n, ok := p.lostLog.allow(); ok {
				p.log.Warn("transport: lost raft stream to peer", "times", n, "err", err)
			}
		} else if n, ok := p.connLog.allow(); ok {
			p.log.Debug("transport: cannot reach peer, will retry", "attempts", n, "err", err)
		}
		if !p.dropFor(bo.next()) {
			return
		}
	}
}

// stream opens a Raft stream and writes batches until it breaks or the
// peer stops.
func (p *peer) stream() error {
	ctx, cancel := context.WithCancel(p.ctx)
	defer cancel()
	s, err := p.client.Raft(ctx)
	if err != nil {
		return err
	}
	p.upSince = time.Now()
	p.log.Debug("transport: raft stream to peer connected")
	var batch []*shoalpb.RaftEnvelope
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case env := <-p.queue:
			batch = p.fill(append(batch[:0], env))
		}
		err := s.Send(&shoalpb.RaftBatch{FromNode: p.t.nodeID.Load(), Envelopes: batch})
		if err != nil {
			for _, env := range batch {
				p.t.reportDropped(env)
			}
			_, err = s.CloseAndRecv() // the stream's real error
			return err
		}
		clear(batch) // let the sent messages be collected
	}
}

// fill appends to batch whatever else is queued, up to about
// maxBatchBytes.
func (p *peer) fill(batch []*shoalpb.RaftEnvelope) []*shoalpb.RaftEnvelope {
	size := 0
	for _, env := range batch {
		size += approxSize(env)
	}
	for size < maxBatchBytes {
		select {
		case env := <-p.queue:
			batch = append(batch, env)
			size += approxSize(env)
		default:
			return batch
		}
	}
	return batch
}

// approxSize estimates the encoded size of env cheaply: the payloads plus
// a fixed allowance for the other fields.
func approxSize(env *shoalpb.RaftEnvelope) int {
	m := env.GetMessage()
	n := 64 + len(m.GetContext()) + len(m.GetSnapshot().GetData())
	for _, e := range m.GetEntries() {
		n += 32 + len(e.GetData())
	}
	return n
}

// dropFor waits for d while dropping and reporting whatever gets queued.
// It returns false if the peer stopped meanwhile.
func (p *peer) dropFor(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return false
		case env := <-p.queue:
			p.t.reportDropped(env)
		case <-timer.C:
			return true
		}
	}
}

// sendSnapshot streams a MsgSnap in its own goroutine and reports the
// outcome, or reports a failure at once if too many are in flight.
func (p *peer) sendSnapshot(env *shoalpb.RaftEnvelope) {
	select {
	case p.snaps <- struct{}{}:
	default:
		p.t.reportDropped(env)
		return
	}
	started := p.t.goFunc(func() {
		defer func() { <-p.snaps }()
		err := p.streamSnapshot(env)
		if err != nil && p.ctx.Err() == nil {
			p.log.Warn("transport: sending snapshot failed", "shard", env.GetShardId(), "err", err)
		}
		if err != nil {
			p.t.reportDropped(env)
			return
		}
		p.t.cfg.Handler.ReportSnapshot(env.GetShardId(), p.id, false)
	})
	if !started {
		<-p.snaps
	}
}

// streamSnapshot sends env on a Snapshot stream: the first chunk carries
// the envelope without the data, every chunk the next piece of the data.
func (p *peer) streamSnapshot(env *shoalpb.RaftEnvelope) error {
	ctx, cancel := context.WithCancel(p.ctx)
	defer cancel()
	s, err := p.client.Snapshot(ctx)
	if err != nil {
		return err
	}
	data := env.GetMessage().GetSnapshot().GetData()
	chunk := &shoalpb.SnapshotChunk{Envelope: snapshotHeader(env), FromNode: p.t.nodeID.Load(), Size: uint64(len(data))}
	for {
		n := min(len(data), snapshotChunkSize)
		chunk.Data, data = data[:n], data[n:]
		if err := p.t.snapPacer.wait(ctx, n); err != nil {
			return err
		}
		if err := s.Send(chunk); err != nil {
			_, err = s.CloseAndRecv() // the stream's real error
			return err
		}
		if len(data) == 0 {
			break
		}
		chunk = &shoalpb.SnapshotChunk{}
	}
	_, err = s.CloseAndRecv()
	return err
}

// snapshotHeader returns a copy of env whose snapshot has no data, without
// copying the data.
func snapshotHeader(env *shoalpb.RaftEnvelope) *shoalpb.RaftEnvelope {
	m := env.GetMessage()
	c := new(raftpb.Message)
	dst := c.ProtoReflect()
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Name() != "snapshot" {
			dst.Set(fd, v)
		}
		return true
	})
	c = proto.CloneOf(c) // Set may alias m's lists and messages
	if s := m.GetSnapshot(); s != nil {
		c.Snapshot = &raftpb.Snapshot{}
		if md := s.GetMetadata(); md != nil {
			c.Snapshot.Metadata = proto.CloneOf(md)
		}
	}
	return &shoalpb.RaftEnvelope{ShardId: env.GetShardId(), Message: c}
}

// backoff is an exponential backoff with jitter between reconnects.
type backoff struct{ cur time.Duration }

// next returns the delay before the next attempt: minBackoff doubling up
// to maxBackoff, each randomly shortened by up to a half.
func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = minBackoff
	} else {
		b.cur = min(2*b.cur, maxBackoff)
	}
	return b.cur/2 + rand.N(b.cur/2+1)
}

func (b *backoff) reset() { b.cur = 0 }

// limiter lets an event be logged at most once per logEvery.
type limiter struct {
	mu   sync.Mutex
	last time.Time
	n    int // events since the last allowed one, inclusive
}

// allow counts an event and reports whether to log it, with the number of
// events it stands for.
func (l *limiter) allow() (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	now := time.Now()
	if !l.last.IsZero() && now.Sub(l.last) < logEvery {
		return 0, false
	}
	n := l.n
	l.last, l.n = now, 0
	return n, true
}
