// Command loadgen drives a Redis-protocol or etcd target with a fixed
// number of clients for a bounded time and prints throughput and latency
// percentiles, as a human line on stderr and a JSON line on stdout.
//
//	loadgen -target shoal -addrs 127.0.0.1:6379 -clients 50 -read-ratio 0
//	loadgen -target rediscluster -addrs 127.0.0.1:7000,127.0.0.1:7001 -pipeline 16
//	loadgen -target etcd -addrs 127.0.0.1:2379 -read-ratio 1 -preload
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/shoaldb/shoal/bench/internal/load"
)

func main() {
	var cfg load.Config
	addrs := flag.String("addrs", "127.0.0.1:6379", "comma-separated client addresses of the target's nodes")
	flag.StringVar(&cfg.Target, "target", "shoal", "shoal, redis, rediscluster or etcd")
	flag.BoolVar(&cfg.Cluster, "cluster", false, "use a cluster-aware client (go-redis ClusterClient)")
	flag.IntVar(&cfg.Clients, "clients", 50, "concurrent clients, one connection each")
	flag.IntVar(&cfg.Pipeline, "pipeline", 1, "commands per round trip")
	flag.IntVar(&cfg.ValueSize, "value-size", 64, "value size in bytes")
	flag.Uint64Var(&cfg.Keys, "keys", 100000, "key space size")
	flag.StringVar(&cfg.Dist, "dist", "uniform", "key distribution: uniform or zipfian (theta 0.99)")
	flag.Float64Var(&cfg.ReadRatio, "read-ratio", 0, "fraction of GETs (0 = all SET, 1 = all GET)")
	flag.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured time (also the bound for -n and -fill)")
	flag.Int64Var(&cfg.Requests, "n", 0, "stop after this many commands (0: run for -duration)")
	flag.DurationVar(&cfg.Warmup, "warmup", time.Second, "unmeasured time before -duration")
	flag.BoolVar(&cfg.Fill, "fill", false, "write every key once, then stop")
	flag.IntVar(&cfg.FillBatch, "fill-batch", 1, "with -fill: keys per MSET (keys of one MSET share a {hash tag})")
	preload := flag.Bool("preload", false, "write every key once before the measured run, so GETs hit")
	flag.Uint64Var(&cfg.Seed, "seed", 0, "random seed (0: random)")
	flag.DurationVar(&cfg.Timeline, "timeline", 0, "count commands in buckets of this width by completion time (JSON: timeline), to see when slow ones happen")
	flag.DurationVar(&cfg.SlowAbove, "slow", 10*time.Millisecond, "with -timeline: a command is slow above this latency")
	cpuprofile := flag.String("cpuprofile", "", "write the load generator's own CPU profile of the measured run to this file")
	flag.Parse()
	cfg.Addrs = strings.Split(*addrs, ",")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *preload && !cfg.Fill {
		fill := cfg
		fill.Fill, fill.ReadRatio, fill.Pipeline, fill.Duration = true, 0, 16, 2*time.Minute
		fill.Timeline = 0
		res, err := load.Run(ctx, fill)
		if err != nil {
			fatal(err)
		}
		fmt.Fprintf(os.Stderr, "preload: %d keys in %.1fs, %d errors\n", res.Ops, res.Seconds, res.Errors)
		warnShortFill(res, fill.Keys)
	}
	if *cpuprofile != "" {
		stopProfile, err := startCPUProfile(*cpuprofile)
		if err != nil {
			fatal(err)
		}
		defer stopProfile()
	}
	res, err := load.Run(ctx, cfg)
	if err != nil {
		fatal(err)
	}
	fmt.Fprintln(os.Stderr, res)
	if cfg.Timeline > 0 {
		printSlowest(res)
	}
	if cfg.Fill {
		warnShortFill(res, cfg.Keys)
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		fatal(err)
	}
}

// startCPUProfile starts Go's CPU profiler writing to path and returns
// what stops it and closes the file.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "loadgen:", err)
	os.Exit(1)
}

// warnShortFill says so when a fill ran out of time (or met errors) before
// every key was written: GETs of the rest would miss, and a miss costs a
// server a different amount of work than a hit.
func warnShortFill(res *load.Result, keys uint64) {
	if written := res.Ops - res.Errors; written < keys {
		fmt.Fprintf(os.Stderr, "loadgen: warning: the fill wrote %d of %d keys (time ran out or writes failed); raise -duration\n", written, keys)
	}
}

// printSlowest names the timeline's buckets with the most slow commands.
func printSlowest(res *load.Result) {
	var slow uint64
	buckets := 0
	for _, b := range res.Timeline {
		slow += b.Slow
		if b.Slow > 0 {
			buckets++
		}
	}
	top := load.SlowestBuckets(res.Timeline, 5)
	var in uint64
	for _, b := range top {
		in += b.Slow
	}
	fmt.Fprintf(os.Stderr, "slow (> %v ms): %d commands in %d buckets; the %d worst buckets hold %d:\n",
		res.SlowAboveMs, slow, buckets, len(top), in)
	for _, b := range top {
		fmt.Fprintf(os.Stderr, "  at %8.0f ms: %6d of %6d slow, max %.1f ms\n", b.AtMs, b.Slow, b.Ops, b.MaxMs)
	}
}
