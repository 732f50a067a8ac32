package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// These tests run the real shoal binary as separate processes on loopback
// and kill them with SIGKILL.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func shoalBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "shoal-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "shoal")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// freePort returns a port p such that p and p+10000 are free.
func freePort(t *testing.T) int {
	t.Helper()
	for range 100 {
		p := 20000 + rand.IntN(10000)
		a, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		b, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+10000))
		a.Close()
		if err != nil {
			continue
		}
		b.Close()
		return p
	}
	t.Fatal("no free port pair")
	return 0
}

type proc struct {
	t    *testing.T
	addr string
	dir  string
	join string
	cmd  *exec.Cmd
	log  *os.File
}

func (p *proc) start() {
	p.t.Helper()
	args := []string{"start", "--data-dir", p.dir, "--addr", p.addr, "--shards", "6", "--log-level", "info"}
	if p.join != "" {
		args = append(args, "--join", p.join)
	}
	p.cmd = exec.Command(shoalBinary(p.t), args...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
}

func (p *proc) kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
	p.cmd = nil
}

func startProcs(t *testing.T, n int) []*proc {
	t.Helper()
	base := t.TempDir()
	var procs []*proc
	for i := range n {
		lf, err := os.Create(filepath.Join(base, fmt.Sprintf("node%d.log", i+1)))
		if err != nil {
			t.Fatal(err)
		}
		p := &proc{t: t, addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), dir: filepath.Join(base, fmt.Sprintf("node%d", i+1)), log: lf}
		if i > 0 {
			p.join = procs[0].addr
		}
		procs = append(procs, p)
	}
	t.Cleanup(func() {
		for _, p := range procs {
			p.kill()
			p.log.Close()
		}
		if os.Getenv("SHOAL_KEEP_LOGS") != "" {
			for _, p := range procs {
				b, _ := os.ReadFile(p.log.Name())
				os.WriteFile(filepath.Join(os.Getenv("SHOAL_KEEP_LOGS"), filepath.Base(p.log.Name())), b, 0o644)
			}
		}
		if t.Failed() {
			for _, p := range procs {
				b, _ := os.ReadFile(p.log.Name())
				if len(b) > 8000 {
					b = b[len(b)-8000:]
				}
				t.Logf("---- %s ----\n%s", p.log.Name(), b)
			}
		}
	})
	for _, p := range procs {
		p.start()
		waitUntil(t, 30*time.Second, "node "+p.addr+" serves", func() error {
			return client(t, p.addr).Ping(context.Background()).Err()
		})
	}
	return procs
}

func client(t *testing.T, addr string) *redis.Client {
	cl := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second,
		ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second})
	t.Cleanup(func() { cl.Close() })
	return cl
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not after %v: %v", what, d, err)
}

// replicated returns nil once CLUSTER SLOTS lists 3 nodes for every range.
func replicated(t *testing.T, addr string) func() error {
	return func() error {
		slots, err := client(t, addr).ClusterSlots(context.Background()).Result()
		if err != nil {
			return err
		}
		covered := 0
		for _, s := range slots {
			if len(s.Nodes) != 3 {
				return fmt.Errorf("slots %d-%d on %d nodes", s.Start, s.End, len(s.Nodes))
			}
			covered += s.End - s.Start + 1
		}
		if covered != 16384 {
			return fmt.Errorf("%d slots covered", covered)
		}
		return nil
	}
}

type ackLog struct {
	mu    sync.Mutex
	acked map[string]string
	ok    int
	fail  int
	errs  map[string]int // distinct error texts
	// maxGap is the longest time any one client went without a
	// successful operation: how long the cluster was unavailable to it.
	maxGap time.Duration
	// killedAt is when a node was killed; resumed the latest time, over
	// clients, of their first success after it.
	killedAt, resumed time.Time
}

// observe records a successful operation of a client whose previous one
// succeeded at *last.
func (a *ackLog) observe(last *time.Time) {
	now := time.Now()
	if !a.killedAt.IsZero() && last.Before(a.killedAt) && now.After(a.killedAt) && now.After(a.resumed) {
		a.resumed = now
	}
	if !last.IsZero() && now.Sub(*last) > a.maxGap {
		a.maxGap = now.Sub(*last)
	}
	*last = now
}

// read reads keys of its own until ctx ends, for the read availability gap.
func (a *ackLog) read(ctx context.Context, cl *redis.Client) {
	var last time.Time
	for i := 0; ctx.Err() == nil; i++ {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := cl.Get(cctx, fmt.Sprintf("w0:%d", i%200)).Err()
		cancel()
		a.mu.Lock()
		if err == nil || err == redis.Nil {
			a.observe(&last)
		}
		a.mu.Unlock()
	}
}

func (a *ackLog) write(ctx context.Context, cl *redis.Client, prefix string) {
	var last time.Time
	for i := 0; ctx.Err() == nil; i++ {
		k, v := fmt.Sprintf("%s:%d", prefix, i%200), strconv.Itoa(i)
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := cl.Set(cctx, k, v, 0).Err()
		cancel()
		a.mu.Lock()
		if err == nil {
			a.acked[k] = v
			a.ok++
			a.observe(&last)
		} else {
			delete(a.acked, k) // outcome unknown; a later ack decides
			a.fail++
			a.errs[err.Error()]++
		}
		a.mu.Unlock()
	}
}

func verify(t *testing.T, addr string, acked map[string]string) {
	t.Helper()
	cl := client(t, addr)
	for k, v := range acked {
		var got string
		var err error
		waitUntil(t, 15*time.Second, "GET "+k, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			got, err = cl.Get(ctx, k).Result()
			return err
		})
		if got != v {
			t.Fatalf("acknowledged write lost: GET %s = %q via %s, want %q", k, got, addr, v)
		}
	}
}

func TestProcessKillNineNoAcknowledgedWriteLost(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test: skipped in -short mode")
	}
	procs := startProcs(t, 3)
	waitUntil(t, 60*time.Second, "every shard on 3 nodes", replicated(t, procs[0].addr))

	// Writers through nodes 2 and 3 while node 1 is killed and restarted.
	a := &ackLog{acked: map[string]string{}, errs: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i, p := range []*proc{procs[1], procs[2], procs[1], procs[2]} {
		cl := client(t, p.addr)
		wg.Add(1)
		go func() { defer wg.Done(); a.write(ctx, cl, fmt.Sprintf("w%d", i)) }()
	}
	reads := &ackLog{}
	for _, p := range []*proc{procs[1], procs[2]} {
		cl := client(t, p.addr)
		wg.Add(1)
		go func() { defer wg.Done(); reads.read(ctx, cl) }()
	}
	time.Sleep(time.Second)
	a.mu.Lock()
	reads.mu.Lock()
	a.killedAt, reads.killedAt = time.Now(), time.Now()
	reads.mu.Unlock()
	a.mu.Unlock()
	procs[0].kill()
	before := a.snapshotOK()
	waitUntil(t, 10*time.Second, "writes resume after SIGKILL of node 1", func() error {
		if a.snapshotOK() < before+100 {
			return fmt.Errorf("%d acknowledged writes since the kill", a.snapshotOK()-before)
		}
		return nil
	})
	procs[0].start()
	time.Sleep(2 * time.Second)
	cancel()
	wg.Wait()
	t.Logf("writes: %d acknowledged, %d failed or unknown: %v", a.ok, a.fail, a.errs)
	t.Logf("after the SIGKILL every client succeeded again within: writes %v, reads %v",
		a.resumed.Sub(a.killedAt).Round(time.Millisecond), reads.resumed.Sub(reads.killedAt).Round(time.Millisecond))
	t.Logf("longest time a client saw no successful operation (kill, restart, rebalancing): writes %v, reads %v",
		a.maxGap.Round(time.Millisecond), reads.maxGap.Round(time.Millisecond))

	// SIGKILL every node at once, restart them all: nothing acknowledged is lost.
	for _, p := range procs {
		p.kill()
	}
	for _, p := range procs {
		p.start()
	}
	for _, p := range procs {
		verify(t, p.addr, a.acked)
	}
}

func (a *ackLog) snapshotOK() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ok
}

// shoal node status and shoal node decommission against four real
// processes: the drained node ends with no replica, the others keep every
// key.
func TestProcessNodeDecommission(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test: skipped in -short mode")
	}
	procs := startProcs(t, 4)
	cli := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(shoalBinary(t), args...).CombinedOutput()
		if err != nil {
			t.Fatalf("shoal %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	waitUntil(t, 60*time.Second, "4 nodes each holding replicas", func() error {
		out, err := exec.Command(shoalBinary(t), "node", "status", "--host", procs[1].addr).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) != 5 || !strings.HasPrefix(lines[0], "ID") {
			return fmt.Errorf("status:\n%s", out)
		}
		for _, l := range lines[1:] {
			f := strings.Fields(l)
			if len(f) < 4 || f[2] != "live" || f[3] == "0" {
				return fmt.Errorf("status:\n%s", out)
			}
		}
		return nil
	})
	ctx := context.Background()
	for i := range 200 {
		if err := client(t, procs[0].addr).Set(ctx, fmt.Sprintf("k%d", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	out := cli("node", "decommission", procs[3].addr, "--host", procs[1].addr, "--every", "1s")
	if !strings.Contains(out, "holds no replica: it can be stopped") {
		t.Fatalf("decommission said:\n%s", out)
	}
	if out := cli("node", "status", "--host", procs[0].addr); !strings.Contains(out, "decommissioned") {
		t.Errorf("status after the drain:\n%s", out)
	}
	for i := range 200 {
		if v, err := client(t, procs[2].addr).Get(ctx, fmt.Sprintf("k%d", i)).Int(); err != nil || v != i {
			t.Fatalf("k%d = %d, %v", i, v, err)
		}
	}
}
