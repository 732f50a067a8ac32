package transport_test

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/shoaldb/shoal/internal/shoalpb"
	"github.com/shoaldb/shoal/internal/transport"
)

// A peer that restarts at the same address receives messages again once
// the sender has reconnected.
func TestPeerRestart(t *testing.T) {
	ha, hb := newRecorder(), newRecorder()
	a, b := start(t, 1, ha), start(t, 2, hb)
	addr := b.Addr()
	a.SetPeer(2, addr)
	a.Send([]*shoalpb.RaftEnvelope{msg(1, 2, 1)})
	waitFor(t, "the first message", func() bool { return hb.count() == 1 })

	b.Close()
	hb2 := newRecorder()
	startCfg(t, transport.Config{Addr: addr, NodeID: 2, Handler: hb2})
	for i := uint64(2); hb2.count() == 0; i++ {
		if i > 20_000 {
			t.Fatal("no message reached the restarted peer")
		}
		a.Send([]*shoalpb.RaftEnvelope{msg(1, 2, i)})
		time.Sleep(time.Millisecond)
	}
	if ha.unreachableTo(2) == 0 {
		t.Error("no message was reported unreachable while the peer was down")
	}
}

// Moving a peer to another address sends its messages there.
func TestSetPeerMoves(t *testing.T) {
	hb, hc := newRecorder(), newRecorder()
	a, b, c := start(t, 1, newRecorder()), start(t, 2, hb), start(t, 2, hc)
	a.SetPeer(2, b.Addr())
	a.Send([]*shoalpb.RaftEnvelope{msg(1, 2, 1)})
	waitFor(t, "delivery to the first address", func() bool { return hb.count() == 1 })
	a.SetPeer(2, c.Addr())
	a.Send([]*shoalpb.RaftEnvelope{msg(1, 2, 2)})
	waitFor(t, "delivery to the new address", func() bool { return hc.count() == 1 })

	a.RemovePeer(2)
	if _, err := a.Call(context.Background(), 2, "x", nil); !errors.Is(err, transport.ErrUnknownPeer) {
		t.Fatalf("Call after RemovePeer = %v, want ErrUnknownPeer", err)
	}
}

// Close ends every goroutine, including handlers blocked in a Call, and is
// idempotent; afterwards the transport refuses work.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	run := func() {
		var ts []*transport.Transport
		var hs []*recorder
		for id := uint64(1); id <= 3; id++ {
			h := newRecorder()
			h.call = func(ctx context.Context, from uint64, method string, body []byte) ([]byte, error) {
				if method == "block" {
					<-ctx.Done()
				}
				return body, nil
			}
			tr, err := transport.New(transport.Config{Addr: "127.0.0.1:0", NodeID: id, Handler: h, Logger: quiet()})
			if err != nil {
				t.Fatal(err)
			}
			ts, hs = append(ts, tr), append(hs, h)
		}
		for i, tr := range ts {
			for j, peer := range ts {
				if i != j {
					tr.SetPeer(uint64(j+1), peer.Addr())
				}
			}
			tr.SetPeer(9, closedAddr(t))
		}
		ts[0].Send([]*shoalpb.RaftEnvelope{msg(1, 2, 1), msg(1, 3, 1), msg(1, 9, 1), snapMsg(2, 2, 3<<20)})
		waitFor(t, "delivery", func() bool { return hs[1].count() == 2 && hs[2].count() == 1 })
		if _, err := ts[1].Call(context.Background(), 1, "echo", nil); err != nil {
			t.Fatal(err)
		}
		blocked := make(chan error)
		go func() {
			_, err := ts[1].Call(context.Background(), 3, "block", nil)
			blocked <- err
		}()
		for _, tr := range ts {
			if err := tr.Close(); err != nil {
				t.Fatal(err)
			}
			if err := tr.Close(); err != nil {
				t.Fatal(err)
			}
		}
		if err := <-blocked; err == nil {
			t.Fatal("Call blocked in the handler returned no error after Close")
		}
		tr := ts[0]
		if _, err := tr.Call(context.Background(), 2, "echo", nil); !errors.Is(err, transport.ErrClosed) {
			t.Fatalf("Call after Close = %v, want ErrClosed", err)
		}
		if _, err := tr.CallAddr(context.Background(), ts[1].Addr(), "echo", nil); !errors.Is(err, transport.ErrClosed) {
			t.Fatalf("CallAddr after Close = %v, want ErrClosed", err)
		}
		before := hs[0].unreachableTo(2)
		tr.Send([]*shoalpb.RaftEnvelope{msg(1, 2, 2)})
		if hs[0].unreachableTo(2) != before {
			t.Fatal("Send after Close reported to the handler")
		}
	}
	run() // warm up whatever gRPC starts once per process
	base := runtime.NumGoroutine()
	run()
	deadline := time.Now().Add(20 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
