package transport

import (
	"context"
	"sync"
	"time"
)

// pacer spaces out the bytes of the snapshots a transport sends to rate
// bytes per second in all, so that moving replicas leaves the disks, the
// network and the CPUs to clients. A send that has waited its turn goes
// at once; the next waits for the time the previous one's bytes take.
type pacer struct {
	rate float64 // bytes per second; 0: no limit
	mu   sync.Mutex
	next time.Time
}

// wait blocks until n more bytes may be sent, or ctx ends.
func (p *pacer) wait(ctx context.Context, n int) error {
	if p.rate <= 0 {
		return nil
	}
	p.mu.Lock()
	now := time.Now()
	if p.next.Before(now) {
		p.next = now
	}
	at := p.next
	p.next = p.next.Add(time.Duration(float64(n) / p.rate * float64(time.Second)))
	p.mu.Unlock()
	d := time.Until(at)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
