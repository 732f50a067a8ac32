package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// system is one running target: its processes and how to reach it.
type system struct {
	name    string   // row name in the report, e.g. "redis-always"
	kind    string   // load.Config.Target
	cluster bool     // drive it with a cluster-aware client
	addrs   []string // client addresses
	procs   []*proc
}

func (s *system) stop() {
	for _, p := range s.procs {
		p.stop()
	}
}

// failed stops what was started and explains why the system is unusable.
func (s *system) failed(err error) error {
	var tails []string
	for _, p := range s.procs {
		if p.exited() {
			tails = append(tails, fmt.Sprintf("%s exited: %s", p.name, p.tail()))
		}
	}
	s.stop()
	if len(tails) > 0 {
		return fmt.Errorf("%s: %w (%s)", s.name, err, strings.Join(tails, "; "))
	}
	return fmt.Errorf("%s: %w", s.name, err)
}

func ping(ctx context.Context, a string) error {
	c := redis.NewClient(&redis.Options{Addr: a, Protocol: 2, DisableIdentity: true, MaxRetries: -1})
	defer c.Close()
	return c.Ping(ctx).Err()
}

// startShoal starts a 3-node shoal cluster and waits until every slot
// range has three replicas.
func startShoal(ctx context.Context, dir, bin string, shards int) (*system, error) {
	s := &system{name: fmt.Sprintf("shoal-%dshard", shards), kind: "shoal", cluster: true}
	var ports []int
	for i := range 3 {
		p, err := freePort()
		if err != nil {
			return nil, s.failed(err)
		}
		ports = append(ports, p)
		s.addrs = append(s.addrs, addr(p))
		args := []string{"start", "--data-dir", filepath.Join(dir, fmt.Sprint("shoal", i+1)),
			"--addr", addr(p), "--shards", strconv.Itoa(shards), "--log-level", "warn"}
		if i > 0 {
			args = append(args, "--join", addr(ports[0]))
		}
		pr, err := startProc(dir, fmt.Sprintf("shoal%d", i+1), bin, args...)
		if err != nil {
			return nil, s.failed(err)
		}
		s.procs = append(s.procs, pr)
		if err := poll(ctx, 30*time.Second, func() error { return ping(ctx, addr(p)) }); err != nil {
			return nil, s.failed(err)
		}
	}
	c := redis.NewClient(&redis.Options{Addr: s.addrs[0], Protocol: 2, DisableIdentity: true})
	defer c.Close()
	masters := 0
	err := poll(ctx, 90*time.Second, func() error {
		slots, err := c.ClusterSlots(ctx).Result()
		if err != nil {
			return err
		}
		covered, seen := 0, map[string]bool{}
		for _, r := range slots {
			if len(r.Nodes) != 3 {
				return fmt.Errorf("slots %d-%d have %d replicas", r.Start, r.End, len(r.Nodes))
			}
			covered += r.End - r.Start + 1
			seen[r.Nodes[0].Addr] = true
		}
		if covered != 16384 {
			return fmt.Errorf("CLUSTER SLOTS covers %d slots", covered)
		}
		masters = len(seen)
		return nil
	})
	if err != nil {
		return nil, s.failed(err)
	}
	// Placement spreads shard leadership a little after up-replication,
	// and goes on moving leaders for a few seconds after they first cover
	// every node. A cluster client that loads its slot map meanwhile has
	// its commands forwarded, not redirected, until it reloads the map: in
	// a trial, 22% of the first 10 s SET cell after the preload, and none
	// of the next two. Wait until the leaders are spread (a 1-shard
	// cluster has one) and the map has held still for 3 s, but measure
	// anyway if that takes over a minute.
	settled := time.Now()
	var last string
	err = poll(ctx, 60*time.Second, func() error {
		slots, err := c.ClusterSlots(ctx).Result()
		if err != nil {
			return err
		}
		var b strings.Builder
		seen := map[string]bool{}
		for _, r := range slots {
			fmt.Fprintf(&b, "%d-%d:%s ", r.Start, r.End, r.Nodes[0].Addr)
			seen[r.Nodes[0].Addr] = true
		}
		if m := b.String(); m != last {
			last, settled = m, time.Now()
		}
		switch masters = len(seen); {
		case shards >= 3 && masters < 3:
			return errors.New("leaders not spread yet")
		case time.Since(settled) < 3*time.Second:
			return errors.New("shard leaders moved within the last 3 s")
		}
		return nil
	})
	if err != nil {
		logf("%s: %v; measuring anyway", s.name, err)
	}
	logf("%s up on %v (shard leaders on %d nodes)", s.name, s.addrs, masters)
	return s, nil
}

func redisArgs(dir string, port int, fsync string) []string {
	return []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--appendonly", "yes", "--appendfsync", fsync, "--save", "", "--protected-mode", "no",
		"--daemonize", "no", "--logfile", ""}
}

// startRedis starts one Redis with the AOF synced per appendfsync.
func startRedis(ctx context.Context, dir, fsync string) (*system, error) {
	s := &system{name: "redis-" + fsync, kind: "redis"}
	p, err := freePort()
	if err != nil {
		return nil, s.failed(err)
	}
	d := filepath.Join(dir, s.name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return nil, s.failed(err)
	}
	pr, err := startProc(dir, s.name, "redis-server", redisArgs(d, p, fsync)...)
	if err != nil {
		return nil, s.failed(err)
	}
	s.procs, s.addrs = append(s.procs, pr), []string{addr(p)}
	if err := poll(ctx, 20*time.Second, func() error { return ping(ctx, addr(p)) }); err != nil {
		return nil, s.failed(err)
	}
	logf("%s up on %v", s.name, s.addrs)
	return s, nil
}

// startRedisCluster starts three Redis Cluster masters (no replicas) with
// appendfsync always.
func startRedisCluster(ctx context.Context, dir string) (*system, error) {
	s := &system{name: "rediscluster", kind: "rediscluster", cluster: true}
	for i := range 3 {
		p, err := freePort()
		if err != nil {
			return nil, s.failed(err)
		}
		d := filepath.Join(dir, fmt.Sprint("rediscluster", i+1))
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, s.failed(err)
		}
		args := append(redisArgs(d, p, "always"), "--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(d, "nodes.conf"))
		pr, err := startProc(dir, fmt.Sprint("rediscluster", i+1), "redis-server", args...)
		if err != nil {
			return nil, s.failed(err)
		}
		s.procs, s.addrs = append(s.procs, pr), append(s.addrs, addr(p))
		if err := poll(ctx, 20*time.Second, func() error { return ping(ctx, addr(p)) }); err != nil {
			return nil, s.failed(err)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	args := append([]string{"--cluster", "create"}, s.addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(cctx, "redis-cli", args...).CombinedOutput(); err != nil {
		return nil, s.failed(fmt.Errorf("redis-cli --cluster create: %w: %s", err, out))
	}
	for _, a := range s.addrs {
		err := poll(ctx, 30*time.Second, func() error {
			c := redis.NewClient(&redis.Options{Addr: a, Protocol: 2, DisableIdentity: true})
			defer c.Close()
			info, err := c.ClusterInfo(ctx).Result()
			if err != nil {
				return err
			}
			if !strings.Contains(info, "cluster_state:ok") {
				return errors.New("cluster_state not ok")
			}
			return nil
		})
		if err != nil {
			return nil, s.failed(err)
		}
	}
	logf("%s up on %v", s.name, s.addrs)
	return s, nil
}

// startEtcd starts a 3-member etcd cluster and waits for a leader.
func startEtcd(ctx context.Context, dir string) (*system, error) {
	s := &system{name: "etcd", kind: "etcd"}
	var peers, initial []string
	var clients []int
	for i := range 3 {
		c, err := freePort()
		if err != nil {
			return nil, s.failed(err)
		}
		p, err := freePort()
		if err != nil {
			return nil, s.failed(err)
		}
		clients = append(clients, c)
		peers = append(peers, "http://"+addr(p))
		initial = append(initial, fmt.Sprintf("etcd%d=http://%s", i+1, addr(p)))
	}
	for i := range 3 {
		name := fmt.Sprint("etcd", i+1)
		cu := "http://" + addr(clients[i])
		pr, err := startProc(dir, name, "etcd", "--name", name, "--data-dir", filepath.Join(dir, name),
			"--listen-client-urls", cu, "--advertise-client-urls", cu,
			"--listen-peer-urls", peers[i], "--initial-advertise-peer-urls", peers[i],
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", "shoal-bench")
		if err != nil {
			return nil, s.failed(err)
		}
		s.procs, s.addrs = append(s.procs, pr), append(s.addrs, addr(clients[i]))
	}
	err := poll(ctx, 60*time.Second, func() error {
		for _, a := range s.addrs {
			c, err := clientv3.New(clientv3.Config{Endpoints: []string{a}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
			if err != nil {
				return err
			}
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			st, err := c.Status(sctx, a)
			cancel()
			c.Close()
			if err != nil {
				return err
			}
			if st.Leader == 0 {
				return fmt.Errorf("%s has no leader", a)
			}
		}
		return nil
	})
	if err != nil {
		return nil, s.failed(err)
	}
	logf("%s up on %v", s.name, s.addrs)
	return s, nil
}
