package transport

import (
	"context"
	"testing"
	"time"
)

// The pacer lets the first send go at once and holds each next one for the
// time the bytes before it take at its rate; without a rate it never waits.
func TestPacerSpacesSends(t *testing.T) {
	p := &pacer{rate: 1 << 10} // 1 KiB/s
	ctx := context.Background()
	if err := p.wait(ctx, 1<<20); err != nil { // a MiB: goes at once
		t.Fatal(err)
	}
	// The next send is due 1024 s after the first: a context that ends
	// sooner is reported, without waiting for the turn.
	short, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	if err := p.wait(short, 1); err == nil {
		t.Error("a send 1024 s early did not wait")
	}
	free := &pacer{}
	for range 1000 {
		if err := free.wait(short, 1<<30); err != nil {
			t.Fatalf("no rate, yet a send waited: %v", err)
		}
	}
}
