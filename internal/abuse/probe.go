package abuse

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// probe is a well-behaved client: one goroutine per node, each writing a
// new key and reading an earlier one every interval, recording latencies,
// errors and every acknowledged write.
type probe struct {
	mu    sync.Mutex
	lat   []time.Duration // since the last take
	errs  map[string]int  // since the last take
	acked map[string]string
}

const probeInterval = 10 * time.Millisecond

// run probes addrs until ctx ends.
func (p *probe) run(ctx context.Context, addrs []string) {
	p.mu.Lock()
	p.errs, p.acked = map[string]int{}, map[string]string{}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for g, addr := range addrs {
		wg.Go(func() {
			c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, PoolSize: 2,
				DialTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second})
			defer c.Close()
			t := time.NewTicker(probeInterval)
			defer t.Stop()
			for seq := 0; ; seq++ {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				key, val := fmt.Sprintf("probe:%d:%d", g, seq), strconv.Itoa(seq)
				start := time.Now()
				err := c.Set(ctx, key, val, 0).Err()
				p.record(ctx, start, err, key, val)
				if seq > 0 {
					start = time.Now()
					err = c.Get(ctx, fmt.Sprintf("probe:%d:%d", g, seq/2)).Err()
					p.record(ctx, start, err, "", "")
				}
			}
		})
	}
	wg.Wait()
}

func (p *probe) record(ctx context.Context, start time.Time, err error, key, val string) {
	d := time.Since(start)
	if ctx.Err() != nil {
		return // cut short by the end of the run
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil && err != redis.Nil {
		p.errs[summarize("-"+err.Error())]++
		return
	}
	p.lat = append(p.lat, d)
	if key != "" {
		p.acked[key] = val
	}
}

// window is the probe's figures over a stretch of time.
type window struct {
	Ops      int
	P50, P99 time.Duration
	Max      time.Duration
	Errors   map[string]int
}

// take returns the figures since the last take and starts a new window.
func (p *probe) take() window {
	p.mu.Lock()
	lat, errs := p.lat, p.errs
	p.lat, p.errs = nil, map[string]int{}
	p.mu.Unlock()
	w := window{Ops: len(lat), Errors: errs}
	if len(lat) > 0 {
		slices.Sort(lat)
		w.P50, w.P99, w.Max = lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
	}
	return w
}

// check reads back every acknowledged write through addr and returns the
// number checked and the keys that are missing or wrong.
func (p *probe) check(ctx context.Context, addr string) (int, []string, error) {
	p.mu.Lock()
	acked := make(map[string]string, len(p.acked))
	for k, v := range p.acked {
		acked[k] = v
	}
	p.mu.Unlock()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: 5, ReadTimeout: 10 * time.Second})
	defer c.Close()
	var bad []string
	for k, want := range acked {
		got, err := c.Get(ctx, k).Result()
		if err != nil && err != redis.Nil {
			return len(acked), bad, fmt.Errorf("abuse: reading back %s: %w", k, err)
		}
		if got != want {
			bad = append(bad, fmt.Sprintf("%s = %q, acknowledged %q", k, got, want))
		}
	}
	return len(acked), bad, nil
}
