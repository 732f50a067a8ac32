package transport_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/shoaldb/shoal/internal/shoalpb"
	"github.com/shoaldb/shoal/internal/transport"
)

// recorder is a transport.Handler that records everything it is given.
type recorder struct {
	mu          sync.Mutex
	raft        []received
	unreachable map[[2]uint64]int // {shard, to} -> count
	snaps       []snapReport
	// call serves HandleCall; nil echoes the body.
	call func(ctx context.Context, from uint64, method string, body []byte) ([]byte, error)
}

type received struct {
	from uint64
	env  *shoalpb.RaftEnvelope
}

type snapReport struct {
	shard, to uint64
	failed    bool
}

func newRecorder() *recorder {
	return &recorder{unreachable: make(map[[2]uint64]int)}
}

func (r *recorder) HandleRaft(from uint64, envs []*shoalpb.RaftEnvelope) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, env := range envs {
		r.raft = append(r.raft, received{from, env})
	}
}

func (r *recorder) HandleCall(ctx context.Context, from uint64, method string, body []byte) ([]byte, error) {
	if r.call != nil {
		return r.call(ctx, from, method, body)
	}
	return body, nil
}

func (r *recorder) ReportUnreachable(shard, to uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unreachable[[2]uint64{shard, to}]++
}

func (r *recorder) ReportSnapshot(shard, to uint64, failed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.snaps = append(r.snaps, snapReport{shard, to, failed})
}

func (r *recorder) received() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.raft...)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.raft)
}

// unreachableTo counts reports of messages to node to.
func (r *recorder) unreachableTo(to uint64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for k, v := range r.unreachable {
		if k[1] == to {
			n += v
		}
	}
	return n
}

func (r *recorder) unreachableFor(shard, to uint64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.unreachable[[2]uint64{shard, to}]
}

func (r *recorder) snapReports() []snapReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]snapReport(nil), r.snaps...)
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// start returns a transport for node id on a free loopback port, closed
// when the test ends.
func start(t testing.TB, id uint64, h transport.Handler) *transport.Transport {
	t.Helper()
	return startCfg(t, transport.Config{Addr: "127.0.0.1:0", NodeID: id, Handler: h})
}

// transportConfig is the config of node id with a short queue and a long
// dial timeout, so that a hung peer keeps its queue full.
func transportConfig(id uint64, h transport.Handler, queueLen int) transport.Config {
	return transport.Config{
		Addr:        "127.0.0.1:0",
		NodeID:      id,
		Handler:     h,
		QueueLen:    queueLen,
		DialTimeout: 30 * time.Second,
	}
}

func startCfg(t testing.TB, cfg transport.Config) *transport.Transport {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet()
	}
	tr, err := transport.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// msg is a MsgApp of shard to node to; index identifies it in tests.
func msg(shard, to, index uint64) *shoalpb.RaftEnvelope {
	return &shoalpb.RaftEnvelope{
		ShardId: shard,
		Message: &raftpb.Message{
			Type:    raftpb.MessageType_MsgApp.Enum(),
			To:      proto.Uint64(to),
			Index:   proto.Uint64(index),
			Entries: []*raftpb.Entry{{Index: proto.Uint64(index), Data: []byte(fmt.Sprint(index))}},
		},
	}
}

// waitFor polls cond until it holds, failing the test after a generous
// deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
