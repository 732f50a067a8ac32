package transport_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/shoaldb/shoal/internal/transport"
)

func TestCall(t *testing.T) {
	ha, hb := newRecorder(), newRecorder()
	hb.call = func(ctx context.Context, from uint64, method string, body []byte) ([]byte, error) {
		switch method {
		case "echo":
			return append([]byte(fmt.Sprintf("%d:", from)), body...), nil
		case "moved":
			return nil, &transport.CallError{Code: "MOVED", Msg: "MOVED 3 10.0.0.1:6379"}
		case "wrapped":
			return nil, fmt.Errorf("shard 7: %w", &transport.CallError{Code: "TRYAGAIN", Msg: "busy"})
		case "plain":
			return nil, errors.New("disk on fire")
		case "slow":
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("unknown method %q", method)
	}
	a, b := start(t, 1, ha), start(t, 2, hb)
	a.SetPeer(2, b.Addr())
	ctx := context.Background()

	got, err := a.Call(ctx, 2, "echo", []byte("hi"))
	if err != nil || string(got) != "1:hi" {
		t.Fatalf(`Call(echo) = %q, %v; want "1:hi", nil`, got, err)
	}

	big := bytes.Repeat([]byte("x"), 10<<20)
	got, err = a.Call(ctx, 2, "echo", big)
	if err != nil || len(got) != len(big)+2 {
		t.Fatalf("Call(echo, 10 MiB) = %d bytes, %v; want %d bytes", len(got), err, len(big)+2)
	}

	for _, tc := range []struct {
		method, code, msg string
	}{
		{"moved", "MOVED", "MOVED 3 10.0.0.1:6379"},
		{"wrapped", "TRYAGAIN", "shard 7: busy"},
		{"plain", "", "disk on fire"},
	} {
		_, err := a.Call(ctx, 2, tc.method, nil)
		ce, ok := errors.AsType[*transport.CallError](err)
		if !ok || ce.Code != tc.code || ce.Msg != tc.msg || err.Error() != tc.msg {
			t.Errorf("Call(%s) error = %#v, want CallError{Code: %q, Msg: %q}", tc.method, err, tc.code, tc.msg)
		}
	}

	tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := a.Call(tctx, 2, "slow", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Call(slow) with a deadline = %v, want DeadlineExceeded", err)
	}

	if _, err := a.Call(ctx, 9, "echo", nil); !errors.Is(err, transport.ErrUnknownPeer) {
		t.Errorf("Call to unknown node = %v, want ErrUnknownPeer", err)
	}

	a.SetPeer(3, closedAddr(t))
	if _, err := a.Call(ctx, 3, "echo", nil); !errors.Is(err, transport.ErrUnreachable) || !errors.Is(err, transport.ErrNotSent) {
		t.Errorf("Call to a dead node = %v, want ErrUnreachable and ErrNotSent", err)
	}
}

func TestCallAddr(t *testing.T) {
	hb := newRecorder()
	hb.call = func(ctx context.Context, from uint64, method string, body []byte) ([]byte, error) {
		return fmt.Appendf(nil, "%d %s %s", from, method, body), nil
	}
	// A joining node has no id and no peers yet.
	a, b := start(t, 0, newRecorder()), start(t, 2, hb)
	got, err := a.CallAddr(context.Background(), b.Addr(), "join", []byte("me"))
	if err != nil || string(got) != "0 join me" {
		t.Fatalf(`CallAddr = %q, %v; want "0 join me"`, got, err)
	}
	a.SetNodeID(5)
	a.SetPeer(2, b.Addr()) // now CallAddr reuses the peer's connection
	got, err = a.CallAddr(context.Background(), b.Addr(), "hello", nil)
	if err != nil || string(got) != "5 hello " {
		t.Fatalf(`CallAddr = %q, %v; want "5 hello "`, got, err)
	}
	if _, err := a.CallAddr(context.Background(), closedAddr(t), "join", nil); !errors.Is(err, transport.ErrUnreachable) {
		t.Fatalf("CallAddr to a dead address = %v, want ErrUnreachable", err)
	}
}
