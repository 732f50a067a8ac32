// Command shoal-chaos runs shoal's black-box fault test: a real cluster of
// shoal processes, concurrent Redis clients, a nemesis that kills, pauses
// and partitions nodes, and a linearizability and durability check of the
// recorded history. See docs/fault-testing.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/shoaldb/shoal/internal/chaos"
)

func main() {
	var cfg chaos.Config
	flag.IntVar(&cfg.Nodes, "nodes", 3, "cluster size")
	flag.IntVar(&cfg.Shards, "shards", 8, "data shards")
	flag.IntVar(&cfg.Clients, "clients", 6, "concurrent clients (every third is cluster-aware)")
	flag.IntVar(&cfg.Keys, "keys", 16, "keys shared by the clients")
	flag.DurationVar(&cfg.Duration, "duration", time.Minute, "how long faults are applied")
	flag.DurationVar(&cfg.FaultFor, "fault-for", 5*time.Second, "how long each fault lasts")
	flag.DurationVar(&cfg.Quiet, "quiet", 5*time.Second, "pause between faults")
	flag.Uint64Var(&cfg.Seed, "seed", 0, "seed of the schedule and workload (0: from the clock)")
	faults := flag.String("faults", "all", "comma-separated faults: kill, kill-leader, pause, partition-one, partition-leader, partition-split, or all")
	flag.StringVar(&cfg.Network, "network", "auto", "loopback, netns, or auto (netns when root with ip and iptables)")
	flag.DurationVar(&cfg.CheckTimeout, "check-timeout", 5*time.Minute, "bound on the linearizability check")
	flag.BoolVar(&cfg.FollowerReads, "follower-reads", false, "self-test: plain clients send READONLY, so reads may be stale and the checker must report a violation")
	flag.BoolVar(&cfg.TLS, "tls", false, "run the cluster secured: certificates (TLS for clients, mutual TLS between nodes) and a password every client logs in with")
	flag.StringVar(&cfg.Bin, "bin", "", "shoal binary to test (default: build ./cmd/shoal of this module)")
	flag.StringVar(&cfg.OutDir, "out", "", "directory for the report, visualization, node logs and data (default: a new temp dir)")
	flag.Parse()

	var err error
	if cfg.Faults, err = chaos.ParseFaults(*faults); err != nil {
		log.Fatal(err)
	}
	cfg.Logf = log.Printf
	chaos.QuietRedisLogger()
	// SIGINT/SIGTERM end the run early; Run still cleans up and reports.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := chaos.Run(ctx, cfg)
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
