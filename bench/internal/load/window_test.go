package load

import (
	"sync"
	"testing"
	"time"
)

func TestWindowOpensAndClosesOnce(t *testing.T) {
	var mu sync.Mutex
	var calls []bool
	c := Config{Window: func(open bool) { mu.Lock(); calls = append(calls, open); mu.Unlock() }}
	now := time.Now()
	stop := c.window(now, now.Add(20*time.Millisecond))
	for done := false; !done; {
		mu.Lock()
		done = len(calls) == 2
		mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	stop()
	if len(calls) != 2 || !calls[0] || calls[1] {
		t.Fatalf("calls = %v, want [true false]", calls)
	}
}

func TestWindowStoppedEarlyNeverCloses(t *testing.T) {
	var calls []bool
	c := Config{Window: func(open bool) { calls = append(calls, open) }}
	now := time.Now()
	c.window(now.Add(time.Hour), now.Add(2*time.Hour))() // stop at once
	if len(calls) != 0 {
		t.Fatalf("calls = %v after stopping before the window, want none", calls)
	}
	c.Fill = true
	c.window(now, now)()
	if len(calls) != 0 {
		t.Fatalf("a Fill run has no window, got calls %v", calls)
	}
}

// Stopping after the window's end makes the closing call even if its
// timer has not fired: stopped at once, a window that already ended both
// opens and closes.
func TestWindowStoppedAfterItsEndCloses(t *testing.T) {
	var calls []bool
	c := Config{Window: func(open bool) { calls = append(calls, open) }}
	now := time.Now()
	c.window(now.Add(-2*time.Second), now.Add(-time.Second))()
	if len(calls) != 2 || !calls[0] || calls[1] {
		t.Fatalf("calls = %v, want [true false]", calls)
	}
}
