// Package load is shoal's load generator: a fixed number of clients, each
// with its own connection, issue SET and GET (or etcd Put and Get) against
// one target for a bounded time and report throughput and latency
// percentiles. cmd/loadgen is its command line; cmd/benchrun drives it.
package load

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Config describes one run. Zero values mean the defaults noted.
type Config struct {
	Target    string        // shoal, redis, rediscluster or etcd
	Addrs     []string      // host:port of every node (client ports)
	Cluster   bool          // use go-redis's ClusterClient (implied by rediscluster)
	Clients   int           // concurrent clients, each with its own connection; default 50
	Pipeline  int           // commands per round trip; default 1
	ValueSize int           // bytes per value; default 64
	Keys      uint64        // key space; default 100000
	Dist      string        // uniform (default) or zipfian
	ReadRatio float64       // fraction of GETs, 0..1
	Duration  time.Duration // measured time; default 10s
	Requests  int64         // if > 0, stop after this many commands instead of Duration
	Warmup    time.Duration // unmeasured time before Duration starts
	// Fill writes every key in [0, Keys) once, in order, and stops (or at
	// the end of Duration, whichever comes first).
	Fill bool
	// FillBatch, if > 1, makes Fill write FillBatch keys per MSET. The
	// keys of one MSET share a {hash tag} so they live in one slot, and
	// are then named "key:{TTTTTTTT}NNNNNNNNNNNN" instead of the usual
	// "key:NNNNNNNNNNNN". Redis targets only.
	FillBatch int
	// Timeout bounds a single round trip; default 5s.
	Timeout time.Duration
	Seed    uint64
	// Timeline, if > 0, counts the measured commands in buckets of this
	// width by completion time (Result.Timeline), with those slower than
	// SlowAbove (default 10ms) apart.
	Timeline  time.Duration
	SlowAbove time.Duration
	// Window, if set, is called with true when the measured window opens
	// and with false when it closes (not in Fill or Requests mode, whose
	// window has no fixed end), e.g. to sample the CPU time a target uses.
	// Run returns only after a call in progress has returned.
	Window func(open bool)
}

func (c *Config) setDefaults() error {
	if len(c.Addrs) == 0 {
		return errors.New("load: no addresses")
	}
	switch c.Target {
	case "shoal", "redis":
	case "rediscluster":
		c.Cluster = true
	case "etcd":
		if c.Cluster {
			return errors.New("load: -cluster does not apply to etcd")
		}
		if c.FillBatch > 1 {
			return errors.New("load: -fill-batch needs a Redis target")
		}
	default:
		return fmt.Errorf("load: unknown target %q", c.Target)
	}
	if c.Clients <= 0 {
		c.Clients = 50
	}
	if c.Pipeline <= 0 {
		c.Pipeline = 1
	}
	if c.ValueSize <= 0 {
		c.ValueSize = 64
	}
	if c.Keys == 0 {
		c.Keys = 100000
	}
	if c.Dist == "" {
		c.Dist = "uniform"
	}
	if c.ReadRatio < 0 || c.ReadRatio > 1 {
		return fmt.Errorf("load: read ratio %v outside [0, 1]", c.ReadRatio)
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.Seed == 0 {
		c.Seed = rand.Uint64()
	}
	if c.SlowAbove <= 0 {
		c.SlowAbove = 10 * time.Millisecond
	}
	if c.Timeline > 0 && c.Timeline < time.Millisecond {
		// Each client keeps a bucket per width of the run.
		return fmt.Errorf("load: timeline buckets of %v: at least 1ms", c.Timeline)
	}
	return nil
}

// window makes cfg.Window's calls at from and until. The returned function
// stops it: a call that is due is still made (on a busy machine a timer
// past due may not have fired yet), one not yet due is not; it returns
// once no call is in progress.
func (c *Config) window(from, until time.Time) (stop func()) {
	if c.Window == nil || c.Requests > 0 || c.Fill {
		return func() {}
	}
	cancel, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for _, x := range []struct {
			at   time.Time
			open bool
		}{{from, true}, {until, false}} {
			t := time.NewTimer(time.Until(x.at))
			select {
			case <-t.C:
			case <-cancel:
				t.Stop()
				if time.Now().Before(x.at) {
					return
				}
			}
			c.Window(x.open)
		}
	}()
	return func() {
		close(cancel)
		<-done
	}
}

// Result is what a run measured. Latencies are per command; a pipelined
// command's latency is its whole batch's round trip.
type Result struct {
	Label     string  `json:"label,omitempty"`
	Target    string  `json:"target"`
	Cluster   bool    `json:"cluster"`
	Clients   int     `json:"clients"`
	Pipeline  int     `json:"pipeline"`
	ValueSize int     `json:"value_size"`
	Keys      uint64  `json:"keys"`
	Dist      string  `json:"dist"`
	ReadRatio float64 `json:"read_ratio"`
	Fill      bool    `json:"fill,omitempty"`
	Seconds   float64 `json:"seconds"`
	Ops       uint64  `json:"ops"`
	OpsPerSec float64 `json:"ops_per_sec"`
	Errors    uint64  `json:"errors"`
	Misses    uint64  `json:"misses"` // GETs of absent keys (not errors)
	MeanMs    float64 `json:"mean_ms"`
	P50Ms     float64 `json:"p50_ms"`
	P99Ms     float64 `json:"p99_ms"`
	P999Ms    float64 `json:"p999_ms"`
	MaxMs     float64 `json:"max_ms"`
	FirstErr  string  `json:"first_error,omitempty"`
	// Timeline is set when Config.Timeline is.
	Timeline    []Bucket `json:"timeline,omitempty"`
	SlowAboveMs float64  `json:"slow_above_ms,omitempty"`
}

func (r *Result) String() string {
	s := fmt.Sprintf("%-12s clients=%-3d P=%-2d read=%.2f  %10.0f ops/s  p50 %7.3f ms  p99 %7.3f ms  p99.9 %7.3f ms  max %7.3f ms  errors %d",
		r.Target+map[bool]string{true: "/c"}[r.Cluster], r.Clients, r.Pipeline, r.ReadRatio,
		r.OpsPerSec, r.P50Ms, r.P99Ms, r.P999Ms, r.MaxMs, r.Errors)
	if r.FirstErr != "" {
		s += " (first: " + r.FirstErr + ")"
	}
	return s
}

// op is one command of a batch: a GET, a SET, or (if more is set) an
// MSET of key and more, all to the same value.
type op struct {
	read bool
	key  string
	more []string
}

// conn is one client's connection to the target.
type conn interface {
	// do runs ops as one round trip (pipelined when len(ops) > 1) and
	// returns how many failed and how many reads found no key.
	do(ctx context.Context, ops []op, value []byte) (errs, misses int, first error)
	close()
}

// worker is one client's counters; only its goroutine touches them
// until the run ends.
type worker struct {
	hist           Histogram
	tl             timeline
	ops, errs, mis uint64
	first          error
}

// Run connects Clients clients to the target and runs the workload.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	choose, err := newChooser(cfg.Dist, cfg.Keys)
	if err != nil {
		return nil, err
	}
	value := make([]byte, cfg.ValueSize)
	vr := rand.New(rand.NewPCG(cfg.Seed, 0))
	for i := range value {
		value[i] = 'a' + byte(vr.IntN(26))
	}

	conns := make([]conn, cfg.Clients)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.close()
			}
		}
	}()
	for i := range conns {
		if conns[i], err = dial(ctx, &cfg, i); err != nil {
			return nil, fmt.Errorf("load: client %d: %w", i, err)
		}
	}

	start := time.Now()
	from, until := start.Add(cfg.Warmup), start.Add(cfg.Warmup+cfg.Duration)
	if cfg.Requests > 0 || cfg.Fill {
		from = start
	}
	defer cfg.window(from, until)()
	// A hard stop a little after the window: a round trip in flight at
	// the end is bounded by Timeout.
	ctx, cancel := context.WithDeadline(ctx, until.Add(cfg.Timeout))
	defer cancel()

	var budget atomic.Int64 // remaining commands in -n mode
	budget.Store(cfg.Requests)
	var nextFill atomic.Uint64 // next key to write in fill mode
	workers := make([]worker, cfg.Clients)
	for i := range workers {
		workers[i].tl = timeline{width: cfg.Timeline, slowAbove: cfg.SlowAbove}
	}
	var wg sync.WaitGroup
	var finished atomic.Int64 // UnixNano of the last measured completion
	for i := range workers {
		wg.Go(func() {
			w := &workers[i]
			r := rand.New(rand.NewPCG(cfg.Seed, uint64(i)+1))
			ops := make([]op, cfg.Pipeline)
			var kb []byte
			for ctx.Err() == nil {
				n := cfg.Pipeline
				switch {
				case cfg.Fill && cfg.FillBatch > 1:
					per := uint64(cfg.FillBatch)
					k := nextFill.Add(uint64(n)*per) - uint64(n)*per
					if k >= cfg.Keys {
						return
					}
					n = int(min(uint64(n), (cfg.Keys-k+per-1)/per))
					for j := range n {
						var ks []string
						for i := k + uint64(j)*per; i < min(k+uint64(j+1)*per, cfg.Keys); i++ {
							kb = appendTaggedKey(kb[:0], i/per, i)
							ks = append(ks, string(kb))
						}
						ops[j] = op{key: ks[0], more: ks[1:]}
					}
				case cfg.Fill:
					k := nextFill.Add(uint64(n)) - uint64(n)
					if k >= cfg.Keys {
						return
					}
					n = int(min(uint64(n), cfg.Keys-k))
					for j := range n {
						kb = appendKey(kb[:0], k+uint64(j))
						ops[j] = op{key: string(kb)}
					}
				default:
					if cfg.Requests > 0 {
						left := budget.Add(-int64(n)) + int64(n)
						if left <= 0 {
							return
						}
						n = int(min(int64(n), left))
					}
					for j := range n {
						kb = appendKey(kb[:0], choose.next(r))
						ops[j] = op{read: r.Float64() < cfg.ReadRatio, key: string(kb)}
					}
				}
				t0 := time.Now()
				if cfg.Requests == 0 && t0.After(until) {
					return
				}
				rctx, rcancel := context.WithTimeout(ctx, cfg.Timeout)
				errs, misses, first := conns[i].do(rctx, ops[:n], value)
				rcancel()
				t1 := time.Now()
				if t1.Before(from) || (cfg.Requests == 0 && !cfg.Fill && t1.After(until)) {
					continue
				}
				keys := uint64(n)
				if cfg.FillBatch > 1 && cfg.Fill {
					keys = 0
					for _, o := range ops[:n] {
						keys += 1 + uint64(len(o.more))
					}
				}
				w.hist.RecordN(t1.Sub(t0), uint64(n))
				w.tl.record(t1.Sub(from), t1.Sub(t0), uint64(n))
				w.ops += keys
				w.errs += uint64(errs) * keys / uint64(n)
				w.mis += uint64(misses)
				if first != nil && w.first == nil {
					w.first = first
				}
				for {
					last := finished.Load()
					if t1.UnixNano() <= last || finished.CompareAndSwap(last, t1.UnixNano()) {
						break
					}
				}
				if errs > 0 {
					// Do not spin on a dead target.
					time.Sleep(10 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()

	var h Histogram
	tl := timeline{width: cfg.Timeline}
	res := &Result{
		Target: cfg.Target, Cluster: cfg.Cluster, Clients: cfg.Clients, Pipeline: cfg.Pipeline,
		ValueSize: cfg.ValueSize, Keys: cfg.Keys, Dist: cfg.Dist, ReadRatio: cfg.ReadRatio, Fill: cfg.Fill,
	}
	for i := range workers {
		w := &workers[i]
		h.Merge(&w.hist)
		tl.merge(&w.tl)
		res.Ops += w.ops
		res.Errors += w.errs
		res.Misses += w.mis
		if w.first != nil && res.FirstErr == "" {
			res.FirstErr = w.first.Error()
		}
	}
	elapsed := cfg.Duration
	if cfg.Requests > 0 || cfg.Fill || ctx.Err() != nil {
		if f := finished.Load(); f != 0 {
			elapsed = time.Unix(0, f).Sub(from)
		}
	}
	res.Seconds = elapsed.Seconds()
	if res.Seconds > 0 {
		res.OpsPerSec = float64(res.Ops-res.Errors) / res.Seconds
	}
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	res.MeanMs, res.MaxMs = ms(h.Mean()), ms(h.Max())
	res.P50Ms, res.P99Ms, res.P999Ms = ms(h.Quantile(0.5)), ms(h.Quantile(0.99)), ms(h.Quantile(0.999))
	if cfg.Timeline > 0 {
		res.Timeline, res.SlowAboveMs = tl.buckets, ms(cfg.SlowAbove)
	}
	return res, nil
}
