package transport_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoaldb/shoal/internal/shoalpb"
	"github.com/shoaldb/shoal/internal/transport"
)

// Many callers at once share the peer's Calls stream; each gets the reply
// to its own call.
func TestConcurrentCallsGetTheirOwnReplies(t *testing.T) {
	var served atomic.Int64
	hb := newRecorder()
	hb.call = func(_ context.Context, from uint64, method string, body []byte) ([]byte, error) {
		served.Add(1)
		if method == "fail" {
			return nil, &transport.CallError{Code: "E", Msg: string(body)}
		}
		return fmt.Appendf(nil, "%d/%s/%s", from, method, body), nil
	}
	a, b := start(t, 1, newRecorder()), start(t, 2, hb)
	a.SetPeer(2, b.Addr())
	const callers, calls = 64, 100
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for c := range callers {
		wg.Go(func() {
			for i := range calls {
				body := fmt.Sprintf("c%d-i%d", c, i)
				if i%10 == 9 {
					_, err := a.Call(context.Background(), 2, "fail", []byte(body))
					if ce, ok := errors.AsType[*transport.CallError](err); !ok || ce.Msg != body {
						errs <- fmt.Errorf("Call(fail, %s) = %v, want CallError %q", body, err, body)
						return
					}
					continue
				}
				got, err := a.Call(context.Background(), 2, "echo", []byte(body))
				if want := "1/echo/" + body; err != nil || string(got) != want {
					errs <- fmt.Errorf("Call(echo, %s) = %q, %v; want %q", body, got, err, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := served.Load(); n != callers*calls {
		t.Errorf("the peer served %d calls, want %d", n, callers*calls)
	}
}

// The peer runs a call under the caller's deadline, and a caller that
// stops waiting cancels the call on the peer.
func TestCallContextReachesPeer(t *testing.T) {
	started := make(chan struct{}, 1)
	ended := make(chan error, 1)
	hb := newRecorder()
	hb.call = func(ctx context.Context, _ uint64, method string, _ []byte) ([]byte, error) {
		switch method {
		case "deadline":
			dl, ok := ctx.Deadline()
			if !ok {
				return []byte("none"), nil
			}
			return []byte(time.Until(dl).Round(time.Second).String()), nil
		case "block":
			started <- struct{}{}
			<-ctx.Done()
			ended <- ctx.Err()
			return nil, ctx.Err()
		}
		return nil, nil
	}
	a, b := start(t, 1, newRecorder()), start(t, 2, hb)
	a.SetPeer(2, b.Addr())

	got, err := a.Call(context.Background(), 2, "deadline", nil)
	if err != nil || string(got) != "none" {
		t.Errorf("Call without a deadline: the peer saw deadline %q, %v; want none", got, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	got, err = a.Call(ctx, 2, "deadline", nil)
	cancel()
	if err != nil || string(got) != "1m0s" {
		t.Errorf("Call with a minute's deadline: the peer saw %q, %v; want 1m0s", got, err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() {
		_, err := a.Call(ctx, 2, "block", nil)
		res <- err
	}()
	<-started
	cancel()
	if err := <-res; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Call = %v, want context.Canceled", err)
	}
	if err := within(t, ended); !errors.Is(err, context.Canceled) {
		t.Errorf("the peer's call ended with %v, want context.Canceled", err)
	}

	// When the deadline passes, the call ends on the peer too: by the
	// peer's own timer or by the caller's cancellation, whichever fires
	// first.
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	go func() {
		_, err := a.Call(ctx, 2, "block", nil)
		res <- err
	}()
	<-started
	if err := <-res; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Call past its deadline = %v, want DeadlineExceeded", err)
	}
	if err := within(t, ended); !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		t.Errorf("the peer's call ended with %v, want DeadlineExceeded or Canceled", err)
	}
}

// scripted serves Calls streams with replies chosen by each request's
// method, so a caller's reading of every kind of reply can be checked.
type scripted struct {
	shoalpb.UnimplementedNodeServer
}

func (scripted) Calls(s shoalpb.Node_CallsServer) error {
	for {
		b, err := s.Recv()
		if err != nil {
			return err
		}
		for _, req := range b.GetRequests() {
			r := &shoalpb.CallReply{Id: req.GetId()}
			switch req.GetMethod() {
			case "deadline":
				r.Ended = shoalpb.CallEnded_CALL_ENDED_DEADLINE
			case "canceled":
				r.Ended = shoalpb.CallEnded_CALL_ENDED_CANCELED
			case "break":
				return status.Error(codes.Internal, "broken on purpose")
			case "stranger":
				r.Id = req.GetId() + 1000 // answers no call: ignored
				if err := s.Send(&shoalpb.CallBatch{Replies: []*shoalpb.CallReply{r}}); err != nil {
					return err
				}
				r = &shoalpb.CallReply{Id: req.GetId(), Body: []byte("mine")}
			default:
				r.Body = req.GetBody()
			}
			if err := s.Send(&shoalpb.CallBatch{Replies: []*shoalpb.CallReply{r}}); err != nil {
				return err
			}
		}
	}
}

// serveFake serves srv on a loopback port and returns its address.
func serveFake(t *testing.T, srv shoalpb.NodeServer) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	shoalpb.RegisterNodeServer(g, srv)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	return lis.Addr().String()
}

// How a caller reads the peer's verdicts: a deadline the peer enforced is
// the caller's deadline, a call the peer cancelled by itself is
// unreachable, a stream that breaks under a call leaves its outcome
// unknown, and a reply to no pending call is ignored.
func TestCallReplies(t *testing.T) {
	a := start(t, 1, newRecorder())
	a.SetPeer(2, serveFake(t, scripted{}))
	ctx := context.Background()
	if _, err := a.Call(ctx, 2, "deadline", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Call ended by the peer's deadline = %v, want DeadlineExceeded", err)
	}
	if _, err := a.Call(ctx, 2, "canceled", nil); !errors.Is(err, transport.ErrUnreachable) || errors.Is(err, transport.ErrNotSent) {
		t.Errorf("Call cancelled by the peer = %v, want ErrUnreachable without ErrNotSent", err)
	}
	if got, err := a.Call(ctx, 2, "stranger", nil); err != nil || string(got) != "mine" {
		t.Errorf("Call after a reply to no call = %q, %v; want \"mine\"", got, err)
	}
	if _, err := a.Call(ctx, 2, "break", nil); !errors.Is(err, transport.ErrUnreachable) || errors.Is(err, transport.ErrNotSent) {
		t.Errorf("Call on a stream that broke = %v, want ErrUnreachable without ErrNotSent", err)
	}
	if got, err := a.Call(ctx, 2, "echo", []byte("again")); err != nil || string(got) != "again" {
		t.Errorf("Call on a new stream after a break = %q, %v; want \"again\"", got, err)
	}
}

// Concurrent calls to a peer that serves only the Calls stream (no unary
// Call) all get their own replies.
func TestCallsShareTheStream(t *testing.T) {
	a := start(t, 1, newRecorder())
	a.SetPeer(2, serveFake(t, scripted{}))
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for c := range 16 {
		wg.Go(func() {
			for i := range 50 {
				body := fmt.Sprintf("c%d-i%d", c, i)
				if got, err := a.Call(context.Background(), 2, "echo", []byte(body)); err != nil || string(got) != body {
					errs <- fmt.Errorf("Call(echo, %s) = %q, %v", body, got, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// holdHandler serves "hold" (waits for release, or the call's end) and
// "block" (waits for the call's end, reported on ended); each signals
// started first. Everything else is echoed.
type holdHandler struct {
	started chan string
	release chan struct{}
	ended   chan error
}

func newHoldHandler() *holdHandler {
	return &holdHandler{started: make(chan string, 4), release: make(chan struct{}), ended: make(chan error, 4)}
}

func (h *holdHandler) serve(ctx context.Context, _ uint64, method string, body []byte) ([]byte, error) {
	switch method {
	case "hold":
		h.started <- method
		select {
		case <-h.release:
			return body, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	case "block":
		h.started <- method
		<-ctx.Done()
		h.ended <- ctx.Err()
		return nil, ctx.Err()
	case "big":
		return make([]byte, 129<<20), nil
	}
	return body, nil
}

// startHeld returns a transport whose peer 2 serves calls with a
// holdHandler.
func startHeld(t *testing.T) (*transport.Transport, *holdHandler) {
	h := newHoldHandler()
	hb := newRecorder()
	hb.call = h.serve
	a, b := start(t, 1, newRecorder()), start(t, 2, hb)
	a.SetPeer(2, b.Addr())
	return a, h
}

// callAsync calls method on node 2 in a goroutine; the channel gets the
// error, or one about a wrong reply when want is not nil.
func callAsync(ctx context.Context, a *transport.Transport, method string, want []byte) <-chan error {
	res := make(chan error, 1)
	go func() {
		got, err := a.Call(ctx, 2, method, want)
		if err == nil && want != nil && !bytes.Equal(got, want) {
			err = fmt.Errorf("reply %q, want %q", got, want)
		}
		res <- err
	}()
	return res
}

// Cancelling one call on the shared stream leaves the others running.
func TestCancelLeavesOtherCallsAlone(t *testing.T) {
	a, h := startHeld(t)
	held := callAsync(context.Background(), a, "hold", []byte("kept"))
	within(t, h.started)
	ctx, cancel := context.WithCancel(context.Background())
	blocked := callAsync(ctx, a, "block", nil)
	within(t, h.started)
	cancel()
	if err := within(t, blocked); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Call = %v, want context.Canceled", err)
	}
	if err := within(t, h.ended); !errors.Is(err, context.Canceled) {
		t.Errorf("the cancelled call ended on the peer with %v, want context.Canceled", err)
	}
	close(h.release)
	if err := within(t, held); err != nil {
		t.Errorf("the other call: %v", err)
	}
}

// Removing a peer fails its calls in flight as unreachable, outcome
// unknown.
func TestRemovePeerFailsCallsInFlight(t *testing.T) {
	a, h := startHeld(t)
	res := callAsync(context.Background(), a, "block", nil)
	within(t, h.started)
	a.RemovePeer(2)
	if err := within(t, res); !errors.Is(err, transport.ErrUnreachable) || errors.Is(err, transport.ErrNotSent) {
		t.Errorf("Call in flight to a removed peer = %v, want ErrUnreachable without ErrNotSent", err)
	}
	if err := within(t, h.ended); !errors.Is(err, context.Canceled) {
		t.Errorf("the call ended on the peer with %v, want context.Canceled", err)
	}
}

// A request or a reply too large for a call fails that call alone; the
// calls sharing its stream go on.
func TestOversizedCalls(t *testing.T) {
	a, h := startHeld(t)
	held := callAsync(context.Background(), a, "hold", nil)
	within(t, h.started)

	if _, err := a.Call(context.Background(), 2, "echo", make([]byte, 128<<20)); !errors.Is(err, transport.ErrTooLarge) {
		t.Errorf("Call with a 128 MiB request = %v, want ErrTooLarge", err)
	}
	_, err := a.Call(context.Background(), 2, "big", nil)
	if ce, ok := errors.AsType[*transport.CallError](err); !ok || !strings.Contains(ce.Msg, "larger than") {
		t.Errorf("Call with a 129 MiB reply = %v, want a CallError saying it is too large", err)
	}
	close(h.release)
	if err := within(t, held); err != nil {
		t.Errorf("the call in flight meanwhile: %v", err)
	}
	if got, err := a.Call(context.Background(), 2, "echo", []byte("after")); err != nil || string(got) != "after" {
		t.Errorf("Call after the oversized ones = %q, %v", got, err)
	}
}

// within receives from ch, failing the test if nothing comes for long.
func within[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(20 * time.Second):
		t.Fatal("timed out")
		panic("unreachable")
	}
}

// A call in flight when its peer goes away fails as unreachable with an
// unknown outcome (not ErrNotSent: it reached the peer); once the peer is
// back at its address, calls reach it again.
func TestCallsAcrossPeerRestart(t *testing.T) {
	started := make(chan struct{}, 1)
	hb := newRecorder()
	hb.call = func(ctx context.Context, _ uint64, method string, body []byte) ([]byte, error) {
		if method == "block" {
			started <- struct{}{}
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return body, nil
	}
	a, b := start(t, 1, newRecorder()), start(t, 2, hb)
	addr := b.Addr()
	a.SetPeer(2, addr)
	if _, err := a.Call(context.Background(), 2, "echo", nil); err != nil {
		t.Fatal(err)
	}
	res := make(chan error, 1)
	go func() {
		_, err := a.Call(context.Background(), 2, "block", nil)
		res <- err
	}()
	<-started
	b.Close()
	err := <-res
	if !errors.Is(err, transport.ErrUnreachable) || errors.Is(err, transport.ErrNotSent) {
		t.Fatalf("Call in flight when the peer closed = %v, want ErrUnreachable without ErrNotSent", err)
	}

	startCfg(t, transport.Config{Addr: addr, NodeID: 2, Handler: newRecorder()})
	waitFor(t, "a call to the restarted peer", func() bool {
		got, err := a.Call(context.Background(), 2, "echo", []byte("back"))
		return err == nil && string(got) == "back"
	})
}

// unaryOnly serves only the unary Call, as binaries before the Calls
// stream did.
type unaryOnly struct {
	shoalpb.UnimplementedNodeServer
	calls atomic.Int64
}

func (u *unaryOnly) Call(_ context.Context, req *shoalpb.CallRequest) (*shoalpb.CallReply, error) {
	u.calls.Add(1)
	return &shoalpb.CallReply{Body: append([]byte("unary:"), req.GetBody()...)}, nil
}

// Calls to a peer that does not serve the Calls stream go as unary calls.
func TestCallsToAnOlderPeer(t *testing.T) {
	old := &unaryOnly{}
	a := start(t, 1, newRecorder())
	a.SetPeer(2, serveFake(t, old))
	// Several calls at once meet the refusal; then one at a time.
	const concurrent = 8
	var wg sync.WaitGroup
	errs := make(chan error, concurrent+3)
	call := func(body string) {
		got, err := a.Call(context.Background(), 2, "echo", []byte(body))
		if err != nil || string(got) != "unary:"+body {
			errs <- fmt.Errorf("Call(%s) to an older peer = %q, %v; want %q", body, got, err, "unary:"+body)
		}
	}
	for i := range concurrent {
		wg.Go(func() { call(fmt.Sprint("c", i)) })
	}
	wg.Wait()
	for i := range 3 {
		call(fmt.Sprint(i))
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := old.calls.Load(); n != concurrent+3 {
		t.Fatalf("the older peer served %d calls, want %d (each exactly once)", n, concurrent+3)
	}
}
