package simnet_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/shoaldb/shoal/internal/shoalpb"
	"github.com/shoaldb/shoal/internal/simnet"
	"github.com/shoaldb/shoal/internal/transport"
)

// Net is the node-facing surface both implementations share.
type Net interface {
	Addr() string
	SetNodeID(id uint64)
	SetPeer(id uint64, addr string)
	RemovePeer(id uint64)
	Send(envs []*shoalpb.RaftEnvelope)
	Call(ctx context.Context, to uint64, method string, body []byte) ([]byte, error)
	CallAddr(ctx context.Context, addr, method string, body []byte) ([]byte, error)
	Close() error
}

var (
	_ Net = (*transport.Transport)(nil)
	_ Net = (*simnet.Endpoint)(nil)
)

// recorder is a transport.Handler that records what it is given.
type recorder struct {
	mu          sync.Mutex
	raft        []received
	unreachable map[uint64]int // to -> count
	snaps       []snapReport
	calls       int
	call        func(ctx context.Context, from uint64, method string, body []byte) ([]byte, error)
}

type received struct {
	from uint64
	env  *shoalpb.RaftEnvelope
}

type snapReport struct {
	shard, to uint64
	failed    bool
}

func newRecorder() *recorder { return &recorder{unreachable: make(map[uint64]int)} }

func (r *recorder) HandleRaft(from uint64, envs []*shoalpb.RaftEnvelope) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, env := range envs {
		r.raft = append(r.raft, received{from, env})
	}
}

func (r *recorder) HandleCall(ctx context.Context, from uint64, method string, body []byte) ([]byte, error) {
	r.mu.Lock()
	r.calls++
	f := r.call
	r.mu.Unlock()
	if f != nil {
		return f(ctx, from, method, body)
	}
	return fmt.Appendf(nil, "%d:%s", from, body), nil
}

func (r *recorder) ReportUnreachable(shard, to uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unreachable[to]++
}

func (r *recorder) ReportSnapshot(shard, to uint64, failed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.snaps = append(r.snaps, snapReport{shard, to, failed})
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.raft)
}

func (r *recorder) received() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.raft)
}

func (r *recorder) unreachableTo(to uint64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.unreachable[to]
}

func (r *recorder) snapReports() []snapReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.snaps)
}

func (r *recorder) callCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

// cluster registers nodes 1..n, each knowing all the others, closed when
// the test ends.
func cluster(t *testing.T, net *simnet.Network, n int) ([]*simnet.Endpoint, []*recorder) {
	es, hs := newCluster(net, n)
	t.Cleanup(func() {
		for _, e := range es[1:] {
			e.Close()
		}
	})
	return es, hs
}

func newCluster(net *simnet.Network, n int) ([]*simnet.Endpoint, []*recorder) {
	es := make([]*simnet.Endpoint, n+1)
	hs := make([]*recorder, n+1)
	for id := 1; id <= n; id++ {
		hs[id] = newRecorder()
		es[id] = net.Endpoint(uint64(id), fmt.Sprintf("node%d:7000", id), hs[id])
	}
	for id := 1; id <= n; id++ {
		for peer := 1; peer <= n; peer++ {
			es[id].SetPeer(uint64(peer), es[peer].Addr())
		}
	}
	return es, hs
}

func msg(shard, to, index uint64) *shoalpb.RaftEnvelope {
	return &shoalpb.RaftEnvelope{ShardId: shard, Message: &raftpb.Message{
		Type:  raftpb.MessageType_MsgApp.Enum(),
		To:    proto.Uint64(to),
		Index: proto.Uint64(index),
	}}
}

func msgs(to uint64, first, n int) []*shoalpb.RaftEnvelope {
	var envs []*shoalpb.RaftEnvelope
	for i := first; i < first+n; i++ {
		envs = append(envs, msg(uint64(i%5), to, uint64(i)))
	}
	return envs
}

func indexes(rs []received) []uint64 {
	var out []uint64
	for _, r := range rs {
		out = append(out, r.env.GetMessage().GetIndex())
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestDeliveryInOrderWithDelay(t *testing.T) {
	net := simnet.New(1)
	net.SetDelay(0, 3*time.Millisecond)
	es, hs := cluster(t, net, 2)
	const n = 500
	for i := 0; i < n; i += 10 {
		es[1].Send(msgs(2, i, 10))
	}
	waitFor(t, "delivery", func() bool { return hs[2].count() == n })
	got := indexes(hs[2].received())
	for i, idx := range got {
		if idx != uint64(i) {
			t.Fatalf("message %d has index %d: link out of order", i, idx)
		}
	}
	if r := hs[2].received()[0]; r.from != 1 {
		t.Fatalf("from = %d, want 1", r.from)
	}
}

func TestReorder(t *testing.T) {
	net := simnet.New(2)
	net.SetDelay(0, 5*time.Millisecond)
	net.SetReorder(true)
	es, hs := cluster(t, net, 2)
	const n = 200
	es[1].Send(msgs(2, 0, n))
	waitFor(t, "delivery", func() bool { return hs[2].count() == n })
	got := indexes(hs[2].received())
	if slices.IsSorted(got) {
		t.Fatal("no message was reordered")
	}
	slices.Sort(got)
	for i, idx := range got {
		if idx != uint64(i) {
			t.Fatalf("lost or duplicated message %d", i)
		}
	}
}

func TestSendIsolatesCallerCopy(t *testing.T) {
	net := simnet.New(1)
	es, hs := cluster(t, net, 2)
	env := msg(1, 2, 1)
	es[1].Send([]*shoalpb.RaftEnvelope{env})
	env.Message.Index = proto.Uint64(99) // a sender reusing its message
	waitFor(t, "delivery", func() bool { return hs[2].count() == 1 })
	if got := hs[2].received()[0].env.GetMessage().GetIndex(); got != 1 {
		t.Fatalf("delivered index %d, want 1", got)
	}
}

func TestPartitionAndHeal(t *testing.T) {
	net := simnet.New(1)
	es, hs := cluster(t, net, 3)
	ctx := context.Background()
	net.Partition([]uint64{1}, []uint64{2, 3})

	es[1].Send(msgs(2, 0, 3))
	if u := hs[1].unreachableTo(2); u != 3 {
		t.Fatalf("%d messages across the partition reported unreachable, want 3", u)
	}
	es[2].Send(msgs(3, 0, 1))
	es[3].Send(msgs(1, 0, 1))
	waitFor(t, "delivery within the group", func() bool { return hs[3].count() == 1 })
	if hs[3].unreachableTo(1) != 1 {
		t.Fatal("message 3->1 across the partition was not reported")
	}
	_, err := es[1].Call(ctx, 2, "x", nil)
	if !errors.Is(err, transport.ErrUnreachable) || !errors.Is(err, transport.ErrNotSent) {
		t.Fatalf("Call across the partition = %v, want ErrUnreachable and ErrNotSent", err)
	}
	if _, err := es[2].Call(ctx, 3, "x", nil); err != nil {
		t.Fatalf("Call within a group: %v", err)
	}
	// Nodes named in no group form a group of their own.
	net.Partition([]uint64{1})
	if _, err := es[2].Call(ctx, 3, "x", nil); err != nil {
		t.Fatalf("Call between unnamed nodes: %v", err)
	}
	if _, err := es[2].Call(ctx, 1, "x", nil); err == nil {
		t.Fatal("Call from an unnamed node into a group succeeded")
	}

	net.Heal()
	es[1].Send(msgs(2, 10, 1))
	waitFor(t, "delivery after heal", func() bool { return hs[2].count() == 1 })
	if hs[2].received()[0].env.GetMessage().GetIndex() != 10 {
		t.Fatal("a message sent during the partition was delivered")
	}
	if got, err := es[1].Call(ctx, 2, "x", []byte("hi")); err != nil || string(got) != "1:hi" {
		t.Fatalf(`Call after heal = %q, %v; want "1:hi"`, got, err)
	}
}

func TestPartitionWhileInFlight(t *testing.T) {
	net := simnet.New(1)
	net.SetDelay(100*time.Millisecond, 100*time.Millisecond)
	es, hs := cluster(t, net, 2)
	es[1].Send(msgs(2, 0, 4))
	net.Isolate(2)
	waitFor(t, "in-flight messages reported", func() bool { return hs[1].unreachableTo(2) == 4 })
	if hs[2].count() != 0 {
		t.Fatal("a message reached an isolated node")
	}
}

func TestIsolate(t *testing.T) {
	net := simnet.New(1)
	es, hs := cluster(t, net, 3)
	net.Isolate(3)
	es[1].Send([]*shoalpb.RaftEnvelope{msg(1, 2, 1), msg(1, 3, 1)})
	es[3].Send([]*shoalpb.RaftEnvelope{msg(1, 1, 1), msg(1, 3, 7)}) // a node still reaches itself
	waitFor(t, "delivery", func() bool { return hs[2].count() == 1 && hs[3].count() == 1 })
	if hs[1].unreachableTo(3) != 1 || hs[3].unreachableTo(1) != 1 {
		t.Fatal("messages to and from the isolated node were not reported")
	}
}

func TestCutIsOneWay(t *testing.T) {
	net := simnet.New(1)
	es, hs := cluster(t, net, 2)
	ctx := context.Background()
	net.Cut(1, 2)

	es[1].Send(msgs(2, 0, 1))
	es[2].Send(msgs(1, 0, 1))
	waitFor(t, "delivery 2->1", func() bool { return hs[1].count() == 1 })
	if hs[2].count() != 0 || hs[1].unreachableTo(2) != 1 {
		t.Fatal("message 1->2 crossed the cut")
	}

	if _, err := es[1].Call(ctx, 2, "x", nil); !errors.Is(err, transport.ErrNotSent) {
		t.Fatalf("Call 1->2 = %v, want ErrNotSent", err)
	}
	if hs[2].callCount() != 0 {
		t.Fatal("Call 1->2 ran")
	}
	// 2->1 reaches node 1, but the reply cannot come back.
	_, err := es[2].Call(ctx, 1, "x", nil)
	if !errors.Is(err, transport.ErrUnreachable) || errors.Is(err, transport.ErrNotSent) {
		t.Fatalf("Call 2->1 = %v, want ErrUnreachable without ErrNotSent", err)
	}
	if hs[1].callCount() != 1 {
		t.Fatal("Call 2->1 did not run on node 1")
	}
}

func TestDropRate(t *testing.T) {
	run := func(seed int64) []uint64 {
		net := simnet.New(seed)
		net.SetDropRate(0.3)
		es, hs := cluster(t, net, 2)
		const n = 1000
		es[1].Send(msgs(2, 0, n))
		dropped := hs[1].unreachableTo(2)
		waitFor(t, "delivery", func() bool { return hs[2].count()+dropped == n })
		if dropped < n/5 || dropped > n*2/5 {
			t.Fatalf("dropped %d of %d at rate 0.3", dropped, n)
		}
		if _, err := es[1].Call(context.Background(), 2, "x", nil); err != nil {
			t.Fatalf("Call under drop rate: %v", err)
		}
		return indexes(hs[2].received())
	}
	a, b, c := run(7), run(7), run(8)
	if !slices.Equal(a, b) {
		t.Fatal("the same seed dropped different messages")
	}
	if slices.Equal(a, c) {
		t.Fatal("different seeds dropped the same messages")
	}
}

func snap(shard, to uint64) *shoalpb.RaftEnvelope {
	return &shoalpb.RaftEnvelope{ShardId: shard, Message: &raftpb.Message{
		Type: raftpb.MessageType_MsgSnap.Enum(),
		To:   proto.Uint64(to),
		Snapshot: &raftpb.Snapshot{
			Data:     []byte("the whole shard"),
			Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(5)},
		},
	}}
}

func TestSnapshot(t *testing.T) {
	net := simnet.New(1)
	es, hs := cluster(t, net, 2)
	env := snap(3, 2)
	es[1].Send([]*shoalpb.RaftEnvelope{msg(3, 2, 1), env, msg(3, 2, 2)})
	waitFor(t, "delivery", func() bool { return hs[2].count() == 3 })
	if got := hs[2].received()[1].env; !proto.Equal(got, env) {
		t.Fatalf("delivered %v, want %v", got, env)
	}
	waitFor(t, "report", func() bool { return len(hs[1].snapReports()) == 1 })
	if r := hs[1].snapReports()[0]; r != (snapReport{3, 2, false}) {
		t.Fatalf("ReportSnapshot = %+v, want shard 3 to 2 delivered", r)
	}

	net.Partition([]uint64{1}, []uint64{2})
	es[1].Send([]*shoalpb.RaftEnvelope{snap(4, 2)})
	if r := hs[1].snapReports(); len(r) != 2 || r[1] != (snapReport{4, 2, true}) {
		t.Fatalf("ReportSnapshot reports = %+v, want shard 4 to 2 failed", r)
	}
	if hs[1].unreachableTo(2) != 0 {
		t.Fatal("a failed snapshot was also reported unreachable")
	}
}

func TestCallErrors(t *testing.T) {
	net := simnet.New(1)
	es, hs := cluster(t, net, 2)
	ctx := context.Background()
	hs[2].call = func(ctx context.Context, from uint64, method string, body []byte) ([]byte, error) {
		switch method {
		case "moved":
			return nil, fmt.Errorf("shard 2: %w", &transport.CallError{Code: "MOVED", Msg: "moved"})
		case "plain":
			return nil, errors.New("boom")
		}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	_, err := es[1].Call(ctx, 2, "moved", nil)
	if ce, ok := errors.AsType[*transport.CallError](err); !ok || ce.Code != "MOVED" || ce.Msg != "shard 2: moved" {
		t.Fatalf("Call(moved) = %#v, want CallError MOVED", err)
	}
	_, err = es[1].Call(ctx, 2, "plain", nil)
	if ce, ok := errors.AsType[*transport.CallError](err); !ok || ce.Code != "" || ce.Msg != "boom" {
		t.Fatalf("Call(plain) = %#v, want CallError boom", err)
	}
	tctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := es[1].Call(tctx, 2, "block", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Call with deadline = %v, want DeadlineExceeded", err)
	}
	if _, err := es[1].Call(ctx, 9, "x", nil); !errors.Is(err, transport.ErrUnknownPeer) {
		t.Fatalf("Call to unknown node = %v, want ErrUnknownPeer", err)
	}
	es[1].Send(msgs(9, 0, 1))
	if hs[1].unreachableTo(9) != 1 {
		t.Fatal("message to unknown node not reported")
	}
}

func TestCallAddrBeforeIDs(t *testing.T) {
	net := simnet.New(1)
	seed := net.Endpoint(1, "seed:1", newRecorder())
	defer seed.Close()
	joiner := net.Endpoint(0, "", newRecorder())
	defer joiner.Close()
	got, err := joiner.CallAddr(context.Background(), "seed:1", "join", []byte("me"))
	if err != nil || string(got) != "0:me" {
		t.Fatalf(`CallAddr = %q, %v; want "0:me"`, got, err)
	}
	joiner.SetNodeID(4)
	joiner.SetPeer(1, "seed:1")
	if got, err := joiner.Call(context.Background(), 1, "x", []byte("y")); err != nil || string(got) != "4:y" {
		t.Fatalf(`Call = %q, %v; want "4:y"`, got, err)
	}
}

// A node crashes (Close) while serving a Call and holding messages in
// flight, then restarts at the same id and address.
func TestCrashAndRestart(t *testing.T) {
	net := simnet.New(1)
	net.SetDelay(50*time.Millisecond, 50*time.Millisecond)
	es, hs := cluster(t, net, 2)
	ctx := context.Background()
	hs[2].call = func(ctx context.Context, from uint64, method string, body []byte) ([]byte, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	callErr := make(chan error)
	go func() {
		_, err := es[1].Call(ctx, 2, "block", nil)
		callErr <- err
	}()
	waitFor(t, "the call to start", func() bool { return hs[2].callCount() == 1 })
	es[1].Send(msgs(2, 0, 3)) // in flight for 50ms

	if err := es[2].Close(); err != nil {
		t.Fatal(err)
	}
	es[2].Close() // idempotent
	if err := <-callErr; !errors.Is(err, transport.ErrUnreachable) {
		t.Fatalf("Call to a crashed node = %v, want ErrUnreachable", err)
	}
	es[1].Send(msgs(2, 3, 1))
	if hs[1].unreachableTo(2) != 1 {
		t.Fatal("message to a crashed node not reported")
	}

	h2 := newRecorder()
	e2 := net.Endpoint(2, es[2].Addr(), h2)
	defer e2.Close()
	e2.SetPeer(1, es[1].Addr())
	net.SetDelay(0, 0)
	es[1].Send(msgs(2, 10, 1))
	e2.Send(msgs(1, 0, 1))
	waitFor(t, "delivery after restart", func() bool { return h2.count() == 1 && hs[1].count() == 1 })
	// Wait past the time the crashed node's messages were due: they must
	// not reach its successor.
	time.Sleep(100 * time.Millisecond)
	if got := indexes(h2.received()); !slices.Equal(got, []uint64{10}) || hs[2].count() != 0 {
		t.Fatalf("restarted node got %v, crashed node got %d messages; want [10] and 0", got, hs[2].count())
	}
	if _, err := es[2].Call(ctx, 1, "x", nil); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Call on a closed endpoint = %v, want ErrClosed", err)
	}
}

func TestAddressInUsePanics(t *testing.T) {
	net := simnet.New(1)
	e := net.Endpoint(1, "a:1", newRecorder())
	defer e.Close()
	defer func() {
		if recover() == nil {
			t.Fatal("registering a live address twice did not panic")
		}
	}()
	net.Endpoint(2, "a:1", newRecorder())
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	base := runtime.NumGoroutine()
	net := simnet.New(1)
	net.SetDelay(time.Millisecond, 20*time.Millisecond)
	es, hs := newCluster(net, 3)
	for id := 1; id <= 3; id++ {
		for to := 1; to <= 3; to++ {
			es[id].Send(msgs(uint64(to), 0, 50))
		}
	}
	waitFor(t, "some delivery", func() bool { return hs[1].count() > 0 })
	for _, e := range es[1:] {
		e.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after Close, %d before", runtime.NumGoroutine(), base)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
