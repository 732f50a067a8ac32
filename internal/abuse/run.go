// Package abuse replays hostile and careless client loads against a real
// shoal cluster and reports what each did to the nodes: whether any died,
// their peak resident memory, what the hostile clients were answered, and
// how a well-behaved client's latency and errors changed meanwhile. It
// ends by reading back every write the well-behaved client had
// acknowledged. cmd/shoal-abuse runs it; its test runs a short form.
package abuse

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shoaldb/shoal/internal/chaos"
	"github.com/shoaldb/shoal/internal/memlimit"
)

// Config describes a run.
type Config struct {
	Bin      string        // shoal binary; "" builds ./cmd/shoal of this module
	Dir      string        // data and logs; "" makes a temporary directory
	Nodes    int           // default 3
	Shards   int           // default 16
	Loads    []string      // names from Loads(); empty means all
	Baseline time.Duration // probe alone before each load; default 5s
	Duration time.Duration // each load; default 15s
	Args     []string      // more flags for every node
	Logf     func(string, ...any)
}

// Result is what one load did.
type Result struct {
	Load     Load
	Outcome  string
	Duration time.Duration // how long the load ran
	Baseline window        // the probe before the load
	During   window        // the probe while the load ran
	// RSS is each node's resident memory before the load and its peak
	// during it, in bytes.
	RSSBefore, RSSPeak []int64
	// CPU is the CPU time the nodes used during the load, summed.
	CPU time.Duration
	// Counters are the changes of the nodes' INFO stats counters of
	// refused clients, summed over nodes.
	Counters map[string]int64
}

// Report is a whole run.
type Report struct {
	Results []Result
	Crashes []string // node exits nobody asked for
	Checked int      // acknowledged writes read back
	Lost    []string // acknowledged writes missing or wrong
}

// Failed reports whether a node died or an acknowledged write was lost.
func (r *Report) Failed() bool { return len(r.Crashes) > 0 || len(r.Lost) > 0 }

// Run starts a cluster, runs each load in turn and checks the probe's
// writes at the end.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Nodes == 0 {
		cfg.Nodes = 3
	}
	if cfg.Shards == 0 {
		cfg.Shards = 16
	}
	if cfg.Baseline == 0 {
		cfg.Baseline = 5 * time.Second
	}
	if cfg.Duration == 0 {
		cfg.Duration = 15 * time.Second
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	loads, err := pick(cfg.Loads)
	if err != nil {
		return nil, err
	}
	if cfg.Dir == "" {
		if cfg.Dir, err = os.MkdirTemp("", "shoal-abuse-"); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	if cfg.Bin == "" {
		if cfg.Bin, err = chaos.Build(ctx, cfg.Dir); err != nil {
			return nil, err
		}
	}
	cl, err := chaos.StartCluster(ctx, chaos.ClusterConfig{Bin: cfg.Bin, Dir: cfg.Dir, Nodes: cfg.Nodes,
		Shards: cfg.Shards, Logf: cfg.Logf, Args: cfg.Args})
	defer func() {
		if cl != nil {
			cl.Stop()
		}
	}()
	if err != nil {
		return nil, err
	}
	if err := cl.WaitReady(ctx, time.Minute); err != nil {
		return nil, err
	}
	var addrs []string
	for _, n := range cl.Nodes {
		addrs = append(addrs, n.Addr)
	}
	cfg.Logf("cluster ready: %v (logs in %s)", addrs, cfg.Dir)

	var p probe
	pctx, stopProbe := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { p.run(pctx, addrs) })
	rep := &Report{}
	for _, l := range loads {
		res, err := runLoad(ctx, cfg, cl, addrs, &p, l)
		if err != nil {
			stopProbe()
			wg.Wait()
			return rep, err
		}
		rep.Results = append(rep.Results, res)
		cfg.Logf("%s: %s", l.Name, res.Outcome)
		if len(cl.Crashes()) > 0 {
			break
		}
	}
	stopProbe()
	wg.Wait()
	rep.Crashes = cl.Crashes()
	if len(rep.Crashes) == 0 {
		n, lost, err := p.check(ctx, addrs[0])
		rep.Checked, rep.Lost = n, lost
		if err != nil {
			return rep, err
		}
	}
	return rep, nil
}

func pick(names []string) ([]Load, error) {
	all := Loads()
	if len(names) == 0 {
		return all, nil
	}
	var out []Load
	for _, name := range names {
		found := false
		for _, l := range all {
			if l.Name == name {
				out, found = append(out, l), true
			}
		}
		if !found {
			return nil, fmt.Errorf("abuse: no load %q", name)
		}
	}
	return out, nil
}

func runLoad(ctx context.Context, cfg Config, cl *chaos.Cluster, addrs []string, p *probe, l Load) (Result, error) {
	res := Result{Load: l, Duration: cfg.Duration}
	if err := sleep(ctx, cfg.Baseline); err != nil {
		return res, err
	}
	res.Baseline = p.take()
	before, err := counters(ctx, addrs)
	if err != nil {
		return res, err
	}
	var cpuBefore time.Duration
	for _, n := range cl.Nodes {
		res.RSSBefore = append(res.RSSBefore, nodeRSS(n))
		cpuBefore += cpuTime(n.PID())
	}
	res.RSSPeak = slices0(len(cl.Nodes))
	lctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			for i, n := range cl.Nodes {
				res.RSSPeak[i] = max(res.RSSPeak[i], nodeRSS(n))
			}
			select {
			case <-lctx.Done():
				return
			case <-t.C:
			}
		}
	})
	out, err := l.Run(lctx, addrs)
	<-lctx.Done()
	wg.Wait()
	for _, n := range cl.Nodes {
		res.CPU += cpuTime(n.PID())
	}
	res.CPU -= cpuBefore
	res.During = p.take()
	res.Outcome = out.String()
	if err != nil {
		return res, fmt.Errorf("abuse: load %s: %w", l.Name, err)
	}
	after, err := counters(ctx, addrs)
	if err != nil {
		return res, err
	}
	res.Counters = map[string]int64{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			res.Counters[k] = d
		}
	}
	return res, nil
}

func slices0(n int) []int64 { return make([]int64, n) }

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// cpuTime is the user and system CPU time process pid has used.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses: utime and
	// stime are the 12th and 13th of them, in clock ticks (100 a second).
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond
}

// counterNames are the INFO stats fields of refused clients and commands.
var counterNames = []string{
	"rejected_connections", "evicted_clients", "client_query_buffer_limit_disconnections",
	"client_output_buffer_limit_disconnections", "oom_refusals",
}

// counters sums counterNames over the nodes' INFO stats.
func counters(ctx context.Context, addrs []string) (map[string]int64, error) {
	sum := map[string]int64{}
	for _, addr := range addrs {
		c, err := dial(ctx, addr)
		if err != nil {
			return nil, err
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		if _, err := c.Write([]byte(command("INFO", "stats"))); err != nil {
			c.Close()
			return nil, err
		}
		line, err := r.ReadString('\n')
		if err != nil || len(line) < 2 || line[0] != '$' {
			c.Close()
			return nil, fmt.Errorf("abuse: INFO stats from %s: %q %v", addr, line, err)
		}
		n, _ := strconv.Atoi(strings.TrimSpace(line[1:]))
		body := make([]byte, n+2)
		if _, err := io.ReadFull(r, body); err != nil {
			c.Close()
			return nil, err
		}
		c.Close()
		for _, l := range strings.Split(string(body), "\r\n") {
			k, v, ok := strings.Cut(l, ":")
			if !ok {
				continue
			}
			for _, name := range counterNames {
				if k == name {
					x, _ := strconv.ParseInt(v, 10, 64)
					sum[k] += x
				}
			}
		}
	}
	return sum, nil
}

// nodeRSS is n's resident memory in bytes, 0 while it is not running.
func nodeRSS(n *chaos.Node) int64 {
	if pid := n.PID(); pid != 0 {
		return memlimit.ResidentBytes(pid)
	}
	return 0
}
