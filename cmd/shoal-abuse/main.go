// Command shoal-abuse replays hostile and careless client loads against a
// real shoal cluster and reports, for each, what the clients were
// answered, the nodes' peak memory, and a well-behaved client's latency
// before and during the load. See docs/robustness.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/shoaldb/shoal/internal/abuse"
	"github.com/shoaldb/shoal/internal/chaos"
)

func main() {
	var cfg abuse.Config
	var loads, args string
	flag.IntVar(&cfg.Nodes, "nodes", 3, "cluster size")
	flag.IntVar(&cfg.Shards, "shards", 16, "data shards")
	flag.StringVar(&loads, "loads", "", "comma-separated loads to run (default all): "+names())
	flag.DurationVar(&cfg.Baseline, "baseline", 0, "how long the probe runs alone before each load (default 5s)")
	flag.DurationVar(&cfg.Duration, "duration", 0, "how long each load runs (default 15s)")
	flag.StringVar(&args, "args", "", "more flags for every node's shoal start, space-separated")
	flag.StringVar(&cfg.Bin, "bin", "", "shoal binary (default: build ./cmd/shoal of this module)")
	flag.StringVar(&cfg.Dir, "out", "", "directory for the nodes' data and logs (default: a new temp dir)")
	flag.Parse()
	if loads != "" {
		cfg.Loads = strings.Split(loads, ",")
	}
	cfg.Args = strings.Fields(args)
	cfg.Logf = log.Printf
	chaos.QuietRedisLogger()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := abuse.Run(ctx, cfg)
	if rep != nil {
		fmt.Print(rep)
	}
	if err != nil {
		log.Fatal(err)
	}
	if rep.Failed() {
		os.Exit(1)
	}
}

func names() string {
	var ns []string
	for _, l := range abuse.Loads() {
		ns = append(ns, l.Name)
	}
	return strings.Join(ns, ", ")
}
