// Command benchrun runs shoal's benchmark suite on one machine: it starts
// a 3-node shoal cluster, Redis (single node, AOF fsync always and
// everysec), a 3-master Redis Cluster and a 3-member etcd cluster on
// loopback, one after another, runs the same workloads against each with
// the load package, runs redis-benchmark against shoal, measures memory
// per node after loading keys, and prints a table of absolute figures and
// ratios. bench/run.sh installs what it needs and calls it.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/shoaldb/shoal/bench/internal/load"
)

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// cell is one measured workload on one system.
type cell struct {
	System   string       `json:"system"`
	Workload string       `json:"workload"`
	Result   *load.Result `json:"result,omitempty"`
	Err      string       `json:"error,omitempty"`
	// Rounds lists the ops/s of every round when a cell was run several
	// times (-rounds); Result is then the round with the median ops/s.
	Rounds []float64 `json:"rounds_ops_per_sec,omitempty"`
	// CPU is the CPU time per operation in Result's window.
	CPU *cpuUse `json:"cpu,omitempty"`
}

// memory is the RSS of a system's nodes after loading keys.
type memory struct {
	System     string  `json:"system"`
	Keys       uint64  `json:"keys"`
	FillSec    float64 `json:"fill_seconds"`
	BeforeMiB  []int64 `json:"rss_before_mib"`
	AfterMiB   []int64 `json:"rss_after_mib"`
	MaxNodeMiB int64   `json:"max_node_rss_mib"`
	Err        string  `json:"error,omitempty"`
}

type report struct {
	Started time.Time          `json:"started"`
	Cells   []cell             `json:"cells"`
	Memory  []memory           `json:"memory"`
	RB      []rbRow            `json:"redis_benchmark"`
	Failed  map[string]string  `json:"failed_systems,omitempty"`
	FsyncUs map[string]float64 `json:"fsync_us,omitempty"`
	// CPUProbeMs and LoopbackUs are cpuProbe's and loopbackProbe's
	// figures before and after the suite.
	CPUProbeMs map[string]float64 `json:"cpu_probe_ms,omitempty"`
	LoopbackUs map[string]float64 `json:"loopback_rtt_us,omitempty"`
	// PauseMsPerSec and PauseMaxMs are pauseProbe's figures, taken once
	// before the suite.
	PauseMsPerSec *float64          `json:"pause_ms_per_s,omitempty"`
	PauseMaxMs    float64           `json:"pause_max_ms,omitempty"`
	Durations     map[string]string `json:"durations"`
}

type options struct {
	shoalBin      string
	out           string
	imgDir        string
	dur, sweepDur time.Duration
	keys, memKeys uint64
	fillLimit     time.Duration
	only          map[string]bool
	keep          bool
	valueSize     int
	sweep         []int
	rbRequests    int
	rounds        int
	skipMemAndRB  bool
	resultsJSONL  *os.File
	tmp           string
}

var start = time.Now()

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
}

func main() {
	if len(os.Args) == 2 && os.Args[1] == "-loopback-echo" {
		loopbackEcho()
		return
	}
	var o options
	only := flag.String("only", "", "comma-separated systems to run (default all): shoal,shoal1,redis-always,redis-everysec,rediscluster,etcd")
	flag.StringVar(&o.shoalBin, "shoal", "./shoal", "path to the shoal binary")
	flag.StringVar(&o.out, "out", "out", "directory for results.jsonl, report.json, table.md and plots")
	flag.StringVar(&o.imgDir, "img", "", "also copy the PNG plots here (e.g. docs/img)")
	flag.DurationVar(&o.dur, "duration", 10*time.Second, "measured time per main cell")
	flag.DurationVar(&o.sweepDur, "sweep-duration", 4*time.Second, "measured time per client-sweep cell")
	flag.Uint64Var(&o.keys, "keys", 10000, "key space of the workloads (preloaded so GETs hit)")
	flag.Uint64Var(&o.memKeys, "mem-keys", 1000000, "keys written before measuring RSS")
	flag.DurationVar(&o.fillLimit, "mem-fill-limit", 120*time.Second, "bound on writing -mem-keys")
	flag.IntVar(&o.valueSize, "value-size", 64, "value size in bytes")
	flag.IntVar(&o.rbRequests, "rb-requests", 50000, "requests per redis-benchmark test")
	flag.IntVar(&o.rounds, "rounds", 1, "runs of each 50-client cell; the table shows the run with the median ops/s")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary data directories")
	flag.BoolVar(&o.skipMemAndRB, "quick", false, "skip the memory measurement and redis-benchmark")
	flag.Parse()
	o.sweep = []int{1, 10, 50, 100}
	if *only != "" {
		o.only = map[string]bool{}
		for _, s := range strings.Split(*only, ",") {
			o.only[s] = true
		}
	}

	redis.SetLogger(quiet{}) // startup polls would log every refused dial
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code := run(ctx, &o)
	stopAll()
	if o.tmp != "" && !o.keep {
		os.RemoveAll(o.tmp)
	}
	os.Exit(code)
}

func run(ctx context.Context, o *options) int {
	var err error
	if err = os.MkdirAll(o.out, 0o755); err != nil {
		logf("%v", err)
		return 1
	}
	if o.tmp, err = os.MkdirTemp("", "shoal-bench-"); err != nil {
		logf("%v", err)
		return 1
	}
	if o.resultsJSONL, err = os.Create(filepath.Join(o.out, "results.jsonl")); err != nil {
		logf("%v", err)
		return 1
	}
	defer o.resultsJSONL.Close()
	rep := &report{Started: start, Failed: map[string]string{}, Durations: map[string]string{
		"main": o.dur.String(), "sweep": o.sweepDur.String()}}
	rep.FsyncUs = fsyncProbe(o.tmp)
	logf("fdatasync of 4 KiB on %s: p50 %.0f us, p99 %.0f us", o.tmp, rep.FsyncUs["p50"], rep.FsyncUs["p99"])
	if lost, longest, ok := pauseProbe(o.tmp, 3*time.Second); ok {
		rep.PauseMsPerSec, rep.PauseMaxMs = &lost, longest
		logf("machine pauses beside fsyncs: %.0f ms per second, longest %.1f ms", lost, longest)
	} else {
		logf("machine pause probe failed: could not write and sync in %s", o.tmp)
	}
	rep.CPUProbeMs, rep.LoopbackUs = map[string]float64{}, map[string]float64{}
	yardsticks(rep, "before")

	type plan struct {
		name  string
		start func() (*system, error)
		full  bool // sweep and memory too
	}
	plans := []plan{
		{"shoal", func() (*system, error) { return startShoal(ctx, o.sub("shoal16"), o.shoalBin, 16) }, true},
		{"redis-always", func() (*system, error) { return startRedis(ctx, o.sub("ra"), "always") }, true},
		{"redis-everysec", func() (*system, error) { return startRedis(ctx, o.sub("re"), "everysec") }, true},
		{"rediscluster", func() (*system, error) { return startRedisCluster(ctx, o.sub("rc")) }, true},
		{"etcd", func() (*system, error) { return startEtcd(ctx, o.sub("etcd")) }, true},
		{"shoal1", func() (*system, error) { return startShoal(ctx, o.sub("shoal1"), o.shoalBin, 1) }, false},
	}
	for _, p := range plans {
		if ctx.Err() != nil {
			break
		}
		if o.only != nil && !o.only[p.name] {
			continue
		}
		logf("starting %s", p.name)
		s, err := p.start()
		if err != nil {
			logf("%s did not start: %v", p.name, err)
			rep.Failed[p.name] = err.Error()
			continue
		}
		o.suite(ctx, rep, s, p.full)
		s.stop()
		logf("stopped %s", s.name)
	}
	yardsticks(rep, "after")
	if err := writeReport(o, rep); err != nil {
		logf("report: %v", err)
		return 1
	}
	return 0
}

// yardsticks takes the machine's yardsticks into rep under when.
func yardsticks(rep *report, when string) {
	rep.CPUProbeMs[when] = cpuProbe()
	rtt, err := loopbackProbe()
	if err != nil {
		logf("%s the suite: loopback probe failed: %v", when, err)
	} else {
		rep.LoopbackUs[when] = rtt
	}
	logf("%s the suite: CPU probe %.1f ms; loopback round trip %.0f us", when, rep.CPUProbeMs[when], rtt)
}

func (o *options) sub(name string) string {
	d := filepath.Join(o.tmp, name)
	os.MkdirAll(d, 0o755)
	return d
}

// suite runs every workload on s. The "shoal" system is also driven with
// a plain (non-cluster) client, and with redis-benchmark.
func (o *options) suite(ctx context.Context, rep *report, s *system, full bool) {
	base := load.Config{Target: s.kind, Addrs: s.addrs, Cluster: s.cluster, ValueSize: o.valueSize,
		Keys: o.keys, Warmup: time.Second}
	name := s.name
	if s.name == "shoal-16shard" {
		name = "shoal"
	}
	pre := base
	pre.Fill, pre.Clients, pre.Pipeline, pre.Duration, pre.Warmup = true, 50, 16, 60*time.Second, 0
	o.measure(ctx, rep, s, name, "preload", pre)

	main := func(sys string, c load.Config) {
		w := func(label string, clients, pipeline int, read float64) {
			cfg := c
			cfg.Clients, cfg.Pipeline, cfg.ReadRatio, cfg.Duration = clients, pipeline, read, o.dur
			o.measureRounds(ctx, rep, s, sys, label, cfg)
		}
		w("set-c50", 50, 1, 0)
		w("get-c50", 50, 1, 1)
		w("set-p16-c50", 50, 16, 0)
	}
	main(name, base)
	if name == "shoal" {
		plain := base
		plain.Cluster = false
		main("shoal-plain", plain)
	}
	if !full {
		return
	}
	for _, c := range o.sweep {
		if c == 50 {
			continue
		}
		for _, w := range []struct {
			label string
			read  float64
		}{{"set", 0}, {"get", 1}} {
			cfg := base
			cfg.Clients, cfg.ReadRatio, cfg.Duration = c, w.read, o.sweepDur
			o.measure(ctx, rep, s, name, fmt.Sprintf("%s-c%d", w.label, c), cfg)
		}
	}
	if o.skipMemAndRB {
		return
	}
	if name == "shoal" || name == "redis-always" {
		rep.RB = append(rep.RB, o.redisBenchmark(ctx, name, s.addrs[0], false)...)
		if name == "shoal" {
			rep.RB = append(rep.RB, o.redisBenchmark(ctx, name, s.addrs[0], true)...)
		}
	}
	// shoal may not write -mem-keys keys within -mem-fill-limit; Redis then
	// gets exactly the keys shoal got, so the RSS comparison is like for like.
	switch name {
	case "shoal":
		rep.Memory = append(rep.Memory, o.memory(ctx, s, name, base, o.memKeys))
	case "redis-everysec":
		keys := o.memKeys
		for _, m := range rep.Memory {
			if m.System == "shoal" && m.Keys > 0 {
				keys = min(keys, m.Keys)
			}
		}
		rep.Memory = append(rep.Memory, o.memory(ctx, s, name, base, keys))
	}
}

func (o *options) measure(ctx context.Context, rep *report, s *system, sys, label string, cfg load.Config) {
	if ctx.Err() != nil {
		return
	}
	c := cell{System: sys, Workload: label}
	res, cpu, err := o.run(ctx, s, cfg)
	if err != nil {
		c.Err = err.Error()
		logf("%-14s %-12s failed: %v", sys, label, err)
	} else {
		res.Label = label
		c.Result, c.CPU = res, cpu
		logf("%-14s %-12s %s%s", sys, label, res, cpu)
	}
	rep.Cells = append(rep.Cells, c)
	json.NewEncoder(o.resultsJSONL).Encode(c)
}

// run is one load.Run on s that also measures the CPU time of s's
// processes and of the load generator.
func (o *options) run(ctx context.Context, s *system, cfg load.Config) (*load.Result, *cpuUse, error) {
	m := &cpuMeter{procs: s.procs}
	cfg.Window = m.window
	res, err := load.Run(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	return res, m.perOp(res.Ops), nil
}

// String formats u for the log; a nil u prints nothing.
func (u *cpuUse) String() string {
	if u == nil {
		return ""
	}
	return fmt.Sprintf("  cpu/op server %.0f µs client %.0f µs", u.ServerUsPerOp, u.ClientUsPerOp)
}

// measureRounds runs a cell -rounds times and keeps the round with the
// median ops/s, listing every round's figure in the cell: on a small shared
// machine one run can be off by a quarter.
func (o *options) measureRounds(ctx context.Context, rep *report, s *system, sys, label string, cfg load.Config) {
	if o.rounds <= 1 {
		o.measure(ctx, rep, s, sys, label, cfg)
		return
	}
	type round struct {
		res *load.Result
		cpu *cpuUse
	}
	var rounds []round
	var lastErr error
	for i := range o.rounds {
		if ctx.Err() != nil {
			return
		}
		res, cpu, err := o.run(ctx, s, cfg)
		if err != nil {
			lastErr = err
			logf("%-14s %-12s round %d failed: %v", sys, label, i+1, err)
			continue
		}
		res.Label = label
		logf("%-14s %-12s round %d: %s%s", sys, label, i+1, res, cpu)
		rounds = append(rounds, round{res, cpu})
	}
	c := cell{System: sys, Workload: label}
	if len(rounds) == 0 {
		c.Err = lastErr.Error()
	} else {
		sort.Slice(rounds, func(i, j int) bool { return rounds[i].res.OpsPerSec < rounds[j].res.OpsPerSec })
		for _, r := range rounds {
			c.Rounds = append(c.Rounds, r.res.OpsPerSec)
		}
		median := rounds[(len(rounds)-1)/2]
		c.Result, c.CPU = median.res, median.cpu
		logf("%-14s %-12s median of %d rounds: %s%s", sys, label, len(rounds), c.Result, c.CPU)
	}
	rep.Cells = append(rep.Cells, c)
	json.NewEncoder(o.resultsJSONL).Encode(c)
}

// memory writes keys keys and reads every node's VmRSS before and after.
func (o *options) memory(ctx context.Context, s *system, name string, base load.Config, keys uint64) memory {
	m := memory{System: name}
	rss := func() []int64 {
		var out []int64
		for _, p := range s.procs {
			kib, err := rssKiB(p.pid())
			if err != nil {
				m.Err = err.Error()
			}
			out = append(out, kib/1024)
		}
		return out
	}
	m.BeforeMiB = rss()
	cfg := base
	cfg.Fill, cfg.Keys, cfg.Clients, cfg.Pipeline, cfg.Duration, cfg.Warmup = true, keys, 50, 16, o.fillLimit, 0
	res, err := load.Run(ctx, cfg)
	if err != nil {
		m.Err = err.Error()
		return m
	}
	m.Keys, m.FillSec = res.Ops-res.Errors, res.Seconds
	// Let followers apply and memtables settle.
	time.Sleep(5 * time.Second)
	m.AfterMiB = rss()
	for _, v := range m.AfterMiB {
		m.MaxNodeMiB = max(m.MaxNodeMiB, v)
	}
	logf("%s memory: %d keys in %.1fs, RSS MiB before %v after %v", name, m.Keys, m.FillSec, m.BeforeMiB, m.AfterMiB)
	return m
}
