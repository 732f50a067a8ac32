package chaos

import (
	"context"
	"errors"
	"fmt"
	"github.com/shoaldb/shoal/internal/kvmodel"
	"math/rand/v2"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/redis/go-redis/v9"

	"github.com/shoaldb/shoal/internal/keys"
)

// WorkloadConfig shapes the client load.
type WorkloadConfig struct {
	Clients int // concurrent clients; every third is cluster-aware (default 6)
	Keys    int // keys k0..k<n-1> shared by all clients (default 16)
	Seed    uint64
	// OpTimeout bounds one operation (default 5s).
	OpTimeout time.Duration
	// FollowerReads makes plain clients send READONLY, so their reads may
	// be served by a stale replica: a self-test that the checker catches
	// stale reads in a real cluster's history.
	FollowerReads bool
}

func (c *WorkloadConfig) ensureDefaults() {
	if c.Clients <= 0 {
		c.Clients = 6
	}
	if c.Keys <= 0 {
		c.Keys = 16
	}
	if c.OpTimeout <= 0 {
		c.OpTimeout = 5 * time.Second
	}
}

// maxOpsPerClient keeps the values a client writes unique (see newValue).
const maxOpsPerClient = 1<<20 - 1

// Workload runs clients against a cluster and records their history.
type Workload struct {
	cfg     WorkloadConfig
	cluster *Cluster
	start   time.Time
	keys    []string
	ids     atomic.Int64 // porcupine client ids
	slotOps [keys.SlotCount]atomic.Int64

	mu struct {
		sync.Mutex
		ops  []porcupine.Operation
		errs map[string]int // error texts, addresses blanked
	}
}

// NewWorkload prepares a workload; times in its history are nanoseconds
// since start.
func NewWorkload(c *Cluster, cfg WorkloadConfig, start time.Time) *Workload {
	cfg.ensureDefaults()
	w := &Workload{cfg: cfg, cluster: c, start: start}
	for i := range cfg.Keys {
		w.keys = append(w.keys, fmt.Sprintf("k%d", i))
	}
	w.mu.errs = map[string]int{}
	return w
}

func (w *Workload) now() int64 { return int64(time.Since(w.start)) }

// Run runs the clients until stop is closed, then waits for their
// operations in flight to finish.
func (w *Workload) Run(stop <-chan struct{}) {
	var wg sync.WaitGroup
	for i := range w.cfg.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.client(stop, i, rand.New(rand.NewPCG(w.cfg.Seed, uint64(i))), i%3 == 2)
		}()
	}
	wg.Wait()
}

// History returns a copy of the operations recorded so far.
func (w *Workload) History() []porcupine.Operation {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]porcupine.Operation(nil), w.mu.ops...)
}

// Errors returns how often each error text was seen.
func (w *Workload) Errors() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := make(map[string]int, len(w.mu.errs))
	for k, v := range w.mu.errs {
		m[k] = v
	}
	return m
}

// SlotOps returns how many operations the clients sent to slot.
func (w *Workload) SlotOps(slot int) int64 { return w.slotOps[slot].Load() }

func (w *Workload) record(op porcupine.Operation) {
	w.mu.Lock()
	w.mu.ops = append(w.mu.ops, op)
	w.mu.Unlock()
}

var addrRE = regexp.MustCompile(`\d+\.\d+\.\d+\.\d+:\d+`)

// noteDropped counts the error of an operation left out of the history
// (a read, or a write proven never executed), under its own heading so
// that a wrong "never executed" verdict can be traced.
func (w *Workload) noteDropped(in kvmodel.Input, err error) {
	if in.Kind.IsWrite() {
		err = fmt.Errorf("write left out as never executed: %w", err)
	}
	w.noteErr(err)
}

func (w *Workload) noteErr(err error) {
	s := addrRE.ReplaceAllString(err.Error(), "ADDR")
	if len(s) > 120 {
		s = s[:120]
	}
	w.mu.Lock()
	w.mu.errs[s]++
	w.mu.Unlock()
}

// conn is one client's way to the cluster.
type conn interface {
	redis.Cmdable
	Do(ctx context.Context, args ...any) *redis.Cmd
	Close() error
}

// client is one client's loop: a plain client pointed at a random node
// (moving to another after an error), or a cluster-aware one.
func (w *Workload) client(stop <-chan struct{}, idx int, rng *rand.Rand, aware bool) {
	var cl conn
	pick := func() {
		if cl != nil {
			cl.Close()
		}
		if aware {
			cc := redis.NewClusterClient(&redis.ClusterOptions{
				Addrs: w.addrs(), MaxRedirects: 8, MaxRetries: -1, DisableRoutingPolicies: true,
				DialTimeout: 500 * time.Millisecond, ReadTimeout: w.cfg.OpTimeout, WriteTimeout: w.cfg.OpTimeout,
				ContextTimeoutEnabled: true, PoolSize: 2, TLSConfig: w.cluster.TLS(), Password: w.cluster.Password(),
				NewClient: func(o *redis.Options) *redis.Client {
					c := redis.NewClient(o)
					c.AddHook(guard{})
					return c
				},
			})
			cl = cc
			return
		}
		addrs := w.addrs()
		opts := &redis.Options{
			Addr: addrs[rng.IntN(len(addrs))], MaxRetries: -1,
			DialTimeout: 500 * time.Millisecond, ReadTimeout: w.cfg.OpTimeout, WriteTimeout: w.cfg.OpTimeout,
			ContextTimeoutEnabled: true, PoolSize: 2, TLSConfig: w.cluster.TLS(), Password: w.cluster.Password(),
		}
		if w.cfg.FollowerReads {
			opts.OnConnect = func(ctx context.Context, cn *redis.Conn) error { return cn.ReadOnly(ctx).Err() }
		}
		c := redis.NewClient(opts)
		c.AddHook(guard{})
		cl = c
	}
	pick()
	defer func() { cl.Close() }()
	id := int(w.ids.Add(1) - 1)
	last := map[string]int64{} // the last value this client saw per key
	for seq := 1; seq <= maxOpsPerClient; seq++ {
		select {
		case <-stop:
			return
		default:
		}
		if rng.IntN(4) == 0 {
			// A pipeline: shoal sends its writes to a shard as one
			// SHOAL.BATCH raft entry.
			if !w.pipeline(cl, rng, idx, &seq, &id, last) && !aware {
				pick()
			}
			continue
		}
		in := w.nextInput(rng, idx, seq, last)
		w.slotOps[keys.Slot([]byte(in.Key))].Add(1)
		att := &attempts{}
		ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), attemptsKey{}, att), w.cfg.OpTimeout)
		call := w.now()
		out, err := do(ctx, cl, in)
		ret := w.now()
		cancel()
		switch {
		case err == nil:
			w.record(porcupine.Operation{ClientId: id, Input: in, Call: call, Output: out, Return: ret})
			switch {
			case in.Kind == kvmodel.OpGet && out.Found, in.Kind == kvmodel.OpIncr:
				last[in.Key] = out.Value
			case in.Kind == kvmodel.OpSet, in.Kind == kvmodel.OpCAS && out.Found:
				last[in.Key] = in.Value
			}
			continue
		case !att.maybeExecuted || !in.Kind.IsWrite():
			// kvmodel.Never executed, or a read: no effect to account for.
			w.noteDropped(in, err)
		default:
			w.noteErr(err)
			w.record(porcupine.Operation{ClientId: id, Input: in, Call: call,
				Output: kvmodel.Output{Unknown: true}, Return: kvmodel.Never, Metadata: err.Error()})
			id = int(w.ids.Add(1) - 1) // this client's next op overlaps the unknown one
		}
		if !aware {
			pick()
		}
	}
}

// pipeline sends 2-6 operations in one pipeline and records each: they
// share the pipeline's call and return times, so the checker treats them as
// concurrent. It reports whether every operation succeeded.
func (w *Workload) pipeline(cl conn, rng *rand.Rand, idx int, seq, id *int, last map[string]int64) bool {
	ins := make([]kvmodel.Input, 2+rng.IntN(5))
	for i := range ins {
		*seq++
		ins[i] = w.nextInput(rng, idx, *seq, last)
		w.slotOps[keys.Slot([]byte(ins[i].Key))].Add(1)
	}
	att := &attempts{}
	ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), attemptsKey{}, att), w.cfg.OpTimeout)
	defer cancel()
	call := w.now()
	p := cl.Pipeline()
	cmds := make([]*redis.Cmd, len(ins))
	for i, in := range ins {
		switch in.Kind {
		case kvmodel.OpGet:
			cmds[i] = p.Do(ctx, "GET", in.Key)
		case kvmodel.OpSet:
			cmds[i] = p.Do(ctx, "SET", in.Key, in.Value)
		case kvmodel.OpIncr:
			cmds[i] = p.Do(ctx, "INCR", in.Key)
		case kvmodel.OpCAS:
			cmds[i] = p.Do(ctx, "SET", in.Key, in.Value, "IFEQ", in.Old)
		}
	}
	p.Exec(ctx) // per-command errors are read below
	ret := w.now()
	ok := true
	for i, in := range ins {
		out, err := pipelineOutput(in, cmds[i])
		switch {
		case err == nil:
			w.record(porcupine.Operation{ClientId: *id, Input: in, Call: call, Output: out, Return: ret})
		case !in.Kind.IsWrite():
			w.noteDropped(in, err)
			ok = false
		default:
			// A failed write of a pipeline is indeterminate even when no
			// attempt failed after reaching a server: when go-redis's
			// cluster pipeline gives up (its context ending between
			// retries of other commands), it overwrites the results of
			// commands that had succeeded with the context's error.
			w.noteErr(err)
			ok = false
			w.record(porcupine.Operation{ClientId: *id, Input: in, Call: call,
				Output: kvmodel.Output{Unknown: true}, Return: kvmodel.Never, Metadata: err.Error()})
			*id = int(w.ids.Add(1) - 1)
		}
	}
	return ok
}

// pipelineOutput reads one pipelined command's result as do does.
func pipelineOutput(in kvmodel.Input, cmd *redis.Cmd) (kvmodel.Output, error) {
	v, err := cmd.Result()
	switch in.Kind {
	case kvmodel.OpGet:
		if errors.Is(err, redis.Nil) {
			return kvmodel.Output{}, nil
		}
		if err != nil {
			return kvmodel.Output{}, err
		}
		s, _ := v.(string)
		n, perr := strconv.ParseInt(s, 10, 64)
		if perr != nil {
			return kvmodel.Output{}, fmt.Errorf("chaos: GET %s = %v: not a value this workload writes", in.Key, v)
		}
		return kvmodel.Output{Found: true, Value: n}, nil
	case kvmodel.OpSet:
		return kvmodel.Output{}, err
	case kvmodel.OpIncr:
		n, _ := v.(int64)
		return kvmodel.Output{Value: n}, err
	case kvmodel.OpCAS:
		if errors.Is(err, redis.Nil) {
			return kvmodel.Output{Found: false}, nil
		}
		return kvmodel.Output{Found: err == nil}, err
	}
	panic("chaos: unknown op")
}

// addrs returns the client addresses of every node.
func (w *Workload) addrs() []string {
	var a []string
	for _, n := range w.cluster.Nodes {
		a = append(a, n.Addr)
	}
	return a
}

// nextInput picks an operation: 35% GET, 30% SET, 15% INCR, 20% CAS.
func (w *Workload) nextInput(rng *rand.Rand, client, seq int, last map[string]int64) kvmodel.Input {
	in := kvmodel.Input{Key: w.keys[rng.IntN(len(w.keys))]}
	switch p := rng.IntN(100); {
	case p < 35:
		in.Kind = kvmodel.OpGet
	case p < 65:
		in.Kind, in.Value = kvmodel.OpSet, newValue(client, seq)
	case p < 80:
		in.Kind = kvmodel.OpIncr
	default:
		in.Kind, in.Value, in.Old = kvmodel.OpCAS, newValue(client, seq), last[in.Key]
	}
	return in
}

// newValue is a value no other write uses: the client and sequence number
// above valueBits low bits that INCR may change.
func newValue(client, seq int) int64 {
	return int64(client+1)<<40 | int64(seq)<<valueBits
}

// do runs in on cl.
func do(ctx context.Context, cl conn, in kvmodel.Input) (kvmodel.Output, error) {
	switch in.Kind {
	case kvmodel.OpGet:
		s, err := cl.Get(ctx, in.Key).Result()
		if errors.Is(err, redis.Nil) {
			return kvmodel.Output{}, nil
		}
		if err != nil {
			return kvmodel.Output{}, err
		}
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return kvmodel.Output{}, fmt.Errorf("chaos: GET %s = %q: not a value this workload writes", in.Key, s)
		}
		return kvmodel.Output{Found: true, Value: v}, nil
	case kvmodel.OpSet:
		return kvmodel.Output{}, cl.Set(ctx, in.Key, in.Value, 0).Err()
	case kvmodel.OpIncr:
		v, err := cl.Incr(ctx, in.Key).Result()
		return kvmodel.Output{Value: v}, err
	case kvmodel.OpCAS:
		err := cl.Do(ctx, "SET", in.Key, in.Value, "IFEQ", in.Old).Err()
		if errors.Is(err, redis.Nil) {
			return kvmodel.Output{Found: false}, nil
		}
		return kvmodel.Output{Found: err == nil}, err
	}
	panic("chaos: unknown op")
}

// attempts tracks, for one operation, whether any attempt to send it may
// have executed it. go-redis's cluster client retries some errors on its
// own (EOF, TRYAGAIN); guard lets it retry only attempts that provably did
// nothing, so an operation executes at most once.
type attempts struct{ maybeExecuted bool }

type attemptsKey struct{}

var errRetryRefused = errors.New("chaos: not retrying an operation that may have executed")

type guard struct{}

func (guard) DialHook(next redis.DialHook) redis.DialHook { return next }
func (guard) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		att, _ := ctx.Value(attemptsKey{}).(*attempts)
		if att == nil {
			return next(ctx, cmds)
		}
		if att.maybeExecuted {
			return errRetryRefused
		}
		err := next(ctx, cmds)
		// Conservative: any command of the pipeline that failed other than
		// provably unsent makes every failed write of it indeterminate.
		for _, c := range cmds {
			if e := c.Err(); e != nil && !errors.Is(e, redis.Nil) && !neverExecuted(e) {
				att.maybeExecuted = true
			}
		}
		if err != nil && !errors.Is(err, redis.Nil) && !neverExecuted(err) {
			att.maybeExecuted = true
		}
		return err
	}
}

func (guard) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		att, _ := ctx.Value(attemptsKey{}).(*attempts)
		switch cmd.Name() {
		case "get", "set", "incr":
		default:
			att = nil // e.g. the cluster client loading CLUSTER SLOTS
		}
		if att == nil {
			return next(ctx, cmd)
		}
		if att.maybeExecuted {
			return errRetryRefused
		}
		err := next(ctx, cmd)
		if err != nil && !errors.Is(err, redis.Nil) && !neverExecuted(err) {
			att.maybeExecuted = true
		}
		return err
	}
}

// neverExecuted reports whether err proves the command never ran: the
// connection could not be made, or a MOVED/ASK redirect.
func neverExecuted(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	s := err.Error()
	return strings.HasPrefix(s, "MOVED ") || strings.HasPrefix(s, "ASK ") ||
		strings.Contains(s, "connection pool timeout") || strings.Contains(s, "redis: client is closed")
}

// FinalReads reads every key once the cluster is healed, retrying each
// until it succeeds or d passes, and adds the reads to the history.
func (w *Workload) FinalReads(ctx context.Context, d time.Duration) (map[string]kvmodel.Output, error) {
	finals := map[string]kvmodel.Output{}
	addrs := w.addrs()
	sort.Strings(addrs)
	id := int(w.ids.Add(1) - 1)
	for i, k := range w.keys {
		err := poll(ctx, d, "final GET "+k, func(ctx context.Context) error {
			cl := redis.NewClient(&redis.Options{Addr: addrs[i%len(addrs)], MaxRetries: -1,
				DialTimeout: time.Second, ReadTimeout: 3 * time.Second, WriteTimeout: 3 * time.Second,
				TLSConfig: w.cluster.TLS(), Password: w.cluster.Password()})
			defer cl.Close()
			in := kvmodel.Input{Kind: kvmodel.OpGet, Key: k}
			call := w.now()
			out, err := do(ctx, cl, in)
			if err != nil {
				i++
				return err
			}
			w.record(porcupine.Operation{ClientId: id, Input: in, Call: call, Output: out, Return: w.now(), Metadata: "final read"})
			finals[k] = out
			return nil
		})
		if err != nil {
			return finals, err
		}
	}
	return finals, nil
}

// QuietRedisLogger silences go-redis's own logging, which reports every
// refused connection while nodes are down. It changes go-redis's global
// logger, so only commands and tests call it.
func QuietRedisLogger() { redis.SetLogger(quietLogger{}) }

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}
