// Command rebalance measures how a loaded shoal cluster grows: it starts
// three nodes, fills them with keys, runs a steady client load, starts two
// more nodes and reports the time until replicas and leaders are spread
// over all five (each node within one of the mean), the data the new
// nodes received, the clients' throughput and p99 before, during and
// after, whether placement moved anything once balanced, every node's
// peak RSS, and whether every key reads back.
//
//	go run ./cmd/rebalance -shoal ../shoal-bin -keys 200000 -value 1024
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shoaldb/shoal/bench/internal/load"
)

type options struct {
	bin              string
	dir              string
	keys             uint64
	value, clients   int
	shards           int
	read             float64
	phase, chunk     time.Duration
	after, limit     time.Duration
	startNodes, addN int
	sample           int
}

func main() {
	var o options
	flag.StringVar(&o.bin, "shoal", "", "shoal binary (required)")
	flag.StringVar(&o.dir, "dir", "", "data directories and logs (default: a new temporary directory, removed at the end)")
	flag.Uint64Var(&o.keys, "keys", 200000, "keys loaded before the nodes are added")
	flag.IntVar(&o.value, "value", 1024, "bytes per value")
	flag.IntVar(&o.clients, "clients", 16, "clients of the steady load")
	flag.IntVar(&o.shards, "shards", 16, "data shards")
	flag.Float64Var(&o.read, "read", 0.5, "fraction of GETs in the steady load")
	flag.DurationVar(&o.phase, "phase", 20*time.Second, "length of the load measured before and after the move")
	flag.DurationVar(&o.chunk, "chunk", 5*time.Second, "length of each load chunk reported during the move")
	flag.DurationVar(&o.after, "quiet", 60*time.Second, "how long to watch for moves once balanced")
	flag.DurationVar(&o.limit, "limit", 15*time.Minute, "give up if not balanced by then")
	flag.IntVar(&o.startNodes, "nodes", 3, "nodes at the start")
	flag.IntVar(&o.addN, "add", 2, "nodes added")
	flag.IntVar(&o.sample, "check", 20000, "keys read back at the end (spread over the key space)")
	flag.Parse()
	if o.bin == "" {
		log.Fatal("rebalance: -shoal is required")
	}
	if err := run(o); err != nil {
		log.Fatal("rebalance: ", err)
	}
}

type node struct {
	addr, http, dir string
	cmd             *exec.Cmd
}

func (n *node) metrics() (map[string]float64, error) {
	resp, err := http.Get("http://" + n.http + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out, sc.Err()
}

// peakRSS reads VmHWM (the resident set's high-water mark) in MiB.
func (n *node) peakRSS() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", n.cmd.Process.Pid))
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return kb / 1024
		}
	}
	return -1
}

func freeBase() (int, error) {
	for range 1000 {
		p := 21000 + rand.IntN(10000)
		ok := true
		for _, q := range []int{p, p + 10000, p + 20000} {
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(q)))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return p, nil
		}
	}
	return 0, errors.New("no free ports")
}

func start(o options, i int, join string) (*node, error) {
	p, err := freeBase()
	if err != nil {
		return nil, err
	}
	n := &node{addr: fmt.Sprintf("127.0.0.1:%d", p), http: fmt.Sprintf("127.0.0.1:%d", p+20000),
		dir: filepath.Join(o.dir, fmt.Sprintf("node%d", i))}
	args := []string{"start", "--data-dir", n.dir, "--addr", n.addr, "--shards", strconv.Itoa(o.shards)}
	if join != "" {
		args = append(args, "--join", join)
	}
	lf, err := os.Create(filepath.Join(o.dir, fmt.Sprintf("node%d.log", i)))
	if err != nil {
		return nil, err
	}
	n.cmd = exec.Command(o.bin, args...)
	n.cmd.Stdout, n.cmd.Stderr = lf, lf
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := n.cmd.Start(); err != nil {
		return nil, err
	}
	return n, nil
}

// spread is SHOAL NODES as node 1 answers it.
type spread struct {
	replicas, leaders, adding map[int64]int64
	live                      int
}

func nodes(ctx context.Context, c *redis.Client) (spread, error) {
	s := spread{replicas: map[int64]int64{}, leaders: map[int64]int64{}, adding: map[int64]int64{}}
	v, err := c.Do(ctx, "SHOAL", "NODES").Slice()
	if err != nil {
		return s, err
	}
	for _, item := range v {
		kv, _ := item.([]any)
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[fmt.Sprint(kv[i])] = kv[i+1]
		}
		id, _ := m["id"].(int64)
		s.replicas[id], _ = m["replicas"].(int64)
		s.leaders[id], _ = m["leaders"].(int64)
		s.adding[id], _ = m["learners"].(int64)
		if m["state"] == "live" {
			s.live++
		}
	}
	return s, nil
}

// balanced reports whether n live nodes each hold replicas and leaders
// within one of the mean, with no replica being added.
func (s spread) balanced(n int) bool {
	if s.live != n || len(s.replicas) != n {
		return false
	}
	within := func(m map[int64]int64) bool {
		lo, hi := int64(1<<62), int64(0)
		for _, v := range m {
			lo, hi = min(lo, v), max(hi, v)
		}
		return hi-lo <= 1
	}
	for _, a := range s.adding {
		if a != 0 {
			return false
		}
	}
	return within(s.replicas) && within(s.leaders)
}

func (s spread) String() string {
	return fmt.Sprintf("replicas %v leaders %v adding %v", s.replicas, s.leaders, s.adding)
}

func run(o options) error {
	ctx := context.Background()
	if o.dir == "" {
		d, err := os.MkdirTemp("", "shoal-rebalance-*")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		o.dir = d
	}
	var all []*node
	defer func() {
		for _, n := range all {
			n.cmd.Process.Kill()
			n.cmd.Wait()
		}
	}()
	for i := 1; i <= o.startNodes; i++ {
		join := ""
		if i > 1 {
			join = all[0].addr
		}
		n, err := start(o, i, join)
		if err != nil {
			return err
		}
		all = append(all, n)
		time.Sleep(time.Second)
	}
	c := redis.NewClient(&redis.Options{Addr: all[0].addr, Protocol: 2})
	defer c.Close()
	wait := func(what string, limit time.Duration, ok func(spread) bool) (spread, time.Duration, error) {
		t0 := time.Now()
		var s spread
		var err error
		for time.Since(t0) < limit {
			if s, err = nodes(ctx, c); err == nil && ok(s) {
				return s, time.Since(t0), nil
			}
			time.Sleep(250 * time.Millisecond)
		}
		return s, time.Since(t0), fmt.Errorf("%s: not after %v: %v %v", what, limit, s, err)
	}
	if _, _, err := wait("3 nodes balanced", 2*time.Minute, func(s spread) bool { return s.balanced(o.startNodes) }); err != nil {
		return err
	}
	addrs := func() []string {
		var a []string
		for _, n := range all {
			a = append(a, n.addr)
		}
		return a
	}
	const seed = 42
	fmt.Printf("loading %d keys of %d bytes\n", o.keys, o.value)
	t := time.Now()
	if _, err := load.Run(ctx, load.Config{Target: "shoal", Addrs: addrs(), Cluster: true, Clients: 32, Fill: true,
		FillBatch: 0, Keys: o.keys, ValueSize: o.value, Duration: 30 * time.Minute, Seed: seed}); err != nil {
		return err
	}
	fmt.Printf("loaded in %v\n", time.Since(t).Round(time.Second))
	steady := func(d time.Duration) (*load.Result, error) {
		return load.Run(ctx, load.Config{Target: "shoal", Addrs: addrs(), Cluster: true, Clients: o.clients,
			Keys: o.keys, ValueSize: o.value, ReadRatio: o.read, Duration: d, Seed: seed})
	}
	before, err := steady(o.phase)
	if err != nil {
		return err
	}
	fmt.Printf("before:  %s\n", before)

	for i := 0; i < o.addN; i++ {
		n, err := start(o, o.startNodes+i+1, all[0].addr)
		if err != nil {
			return err
		}
		all = append(all, n)
	}
	t0 := time.Now()
	total := o.startNodes + o.addN
	var balancedAt time.Duration
	for {
		r, err := steady(o.chunk)
		if err != nil {
			return err
		}
		s, _ := nodes(ctx, c)
		fmt.Printf("during %5.0fs: %s | %s\n", time.Since(t0).Seconds(), r, s)
		if s.balanced(total) {
			balancedAt = time.Since(t0)
			break
		}
		if time.Since(t0) > o.limit {
			return fmt.Errorf("not balanced after %v: %s", o.limit, s)
		}
	}
	opsAt := func() float64 {
		var sum float64
		for _, n := range all {
			m, err := n.metrics()
			if err != nil {
				continue
			}
			for k, v := range m {
				if strings.HasPrefix(k, "shoal_placement_ops_total{") && !strings.Contains(k, "transfer-leader") {
					sum += v
				}
			}
		}
		return sum
	}
	opsBalanced := opsAt()
	after, err := steady(o.phase)
	if err != nil {
		return err
	}
	fmt.Printf("after:   %s\n", after)
	if rest := o.after - o.phase; rest > 0 {
		time.Sleep(rest)
	}
	s, _ := nodes(ctx, c)
	moved := opsAt() - opsBalanced

	fmt.Printf("\nbalanced %v after %d nodes joined: %s\n", balancedAt.Round(100*time.Millisecond), o.addN, s)
	fmt.Printf("replica moves proposed in the %v after balance: %.0f\n", o.after, moved)
	for i, n := range all {
		du := dirBytes(n.dir)
		fmt.Printf("node %d: peak RSS %d MiB, data dir %.0f MiB\n", i+1, n.peakRSS(), float64(du)/(1<<20))
	}

	// Every key reads back with the value the fill and the load wrote.
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs()})
	defer cc.Close()
	want := make([]byte, o.value)
	vr := rand.New(rand.NewPCG(seed, 0))
	for i := range want {
		want[i] = 'a' + byte(vr.IntN(26))
	}
	bad := 0
	step := max(1, o.keys/uint64(o.sample))
	checked := 0
	for k := uint64(0); k < o.keys; k += step {
		v, err := cc.Get(ctx, fmt.Sprintf("key:%012d", k)).Result()
		checked++
		if err != nil || v != string(want) {
			bad++
			if bad <= 3 {
				fmt.Printf("key:%012d: %v (len %d)\n", k, err, len(v))
			}
		}
	}
	fmt.Printf("read back %d keys: %d wrong or missing\n", checked, bad)
	if bad > 0 {
		return fmt.Errorf("%d keys wrong or missing", bad)
	}
	return nil
}

func dirBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
