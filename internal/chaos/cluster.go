package chaos

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shoaldb/shoal/internal/certs"
)

// Build compiles ./cmd/shoal of the module holding the working directory
// into dir and returns the binary's path.
func Build(ctx context.Context, dir string) (string, error) {
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("chaos: go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	if root == "." || root == "" || strings.HasSuffix(strings.TrimSpace(string(gomod)), os.DevNull) {
		return "", errors.New("chaos: not inside the shoal module")
	}
	bin := filepath.Join(dir, "shoal")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/shoal")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("chaos: go build: %w\n%s", err, out)
	}
	return bin, nil
}

// Node is one shoal process. Its client address is reachable from the
// process running the harness.
type Node struct {
	Index int    // 1-based
	Addr  string // client address
	dir   string
	log   string // log file, appended to across restarts
	ns    string // network namespace, or "" on loopback
	join  string

	mu struct {
		sync.Mutex
		cmd    *exec.Cmd
		done   chan struct{} // closed when the process has exited
		killed bool          // the harness killed it
		paused bool
	}
}

// Cluster is a set of shoal processes.
type Cluster struct {
	bin    string
	shards int
	args   []string
	tls    *tls.Config // for the harness's own clients; nil: plain text
	// password is the default user's, "" if it has none.
	password string
	Nodes    []*Node
	net      *Netns // nil on loopback
	logf     func(string, ...any)

	crashMu sync.Mutex
	crashes []string
}

// ClusterConfig describes a cluster to start.
type ClusterConfig struct {
	Bin    string // shoal binary
	Dir    string // data directories and logs go here
	Nodes  int
	Shards int
	Net    *Netns // run each node in its namespace; nil for loopback
	Logf   func(string, ...any)
	// Args are more flags for every node's shoal start.
	Args []string
	// CertsDir, if set, holds the cluster's certificates (package certs):
	// the nodes run with TLS, and the harness's clients trust its CA.
	CertsDir string
	// Password, if set, is the default user's (--requirepass): the
	// harness's clients log in with it.
	Password string
}

// StartCluster starts the nodes one after another, each joining the first,
// and waits until each answers PING. The caller must Stop the cluster,
// also when StartCluster fails.
func StartCluster(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	c := &Cluster{bin: cfg.Bin, shards: cfg.Shards, args: cfg.Args, net: cfg.Net, logf: cfg.Logf}
	if cfg.CertsDir != "" {
		var err error
		if c.tls, err = ClientTLS(cfg.CertsDir); err != nil {
			return c, err
		}
		c.args = append(c.args, "--certs-dir", cfg.CertsDir)
	}
	if cfg.Password != "" {
		c.password = cfg.Password
		c.args = append(c.args, "--requirepass", cfg.Password)
	}
	for i := 1; i <= cfg.Nodes; i++ {
		n := &Node{
			Index: i,
			dir:   filepath.Join(cfg.Dir, fmt.Sprintf("node%d", i)),
			log:   filepath.Join(cfg.Dir, fmt.Sprintf("node%d.log", i)),
		}
		if cfg.Net != nil {
			n.ns = cfg.Net.NS(i)
			n.Addr = net.JoinHostPort(cfg.Net.IP(i), "6379")
		} else {
			p, err := freePort()
			if err != nil {
				return c, err
			}
			n.Addr = fmt.Sprintf("127.0.0.1:%d", p)
		}
		if i > 1 {
			n.join = c.Nodes[0].Addr
		}
		c.Nodes = append(c.Nodes, n)
	}
	for _, n := range c.Nodes {
		if err := c.Start(n); err != nil {
			return c, err
		}
		if err := poll(ctx, 30*time.Second, "node "+n.Addr+" answers PING", func(ctx context.Context) error {
			return ping(ctx, n.Addr, c.tls, c.password)
		}); err != nil {
			return c, err
		}
	}
	return c, nil
}

// freePort returns a port p such that p, p+10000 (the bus port) and
// p+20000 (the HTTP port) are free on loopback.
func freePort() (int, error) {
	for range 200 {
		p := 15000 + rand.IntN(10000)
		var ls []net.Listener
		for _, q := range []int{p, p + 10000, p + 20000} {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", q))
			if err != nil {
				break
			}
			ls = append(ls, l)
		}
		for _, l := range ls {
			l.Close()
		}
		if len(ls) == 3 {
			return p, nil
		}
	}
	return 0, errors.New("chaos: no free port triple")
}

// Version describes the source the binary was built from: the commit, with
// "+dirty" when the working tree had changes.
func Version(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "git", "describe", "--always", "--dirty=+dirty").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// Start starts n's process (again).
func (c *Cluster) Start(n *Node) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.cmd != nil {
		return fmt.Errorf("chaos: node %d already running", n.Index)
	}
	lf, err := os.OpenFile(n.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(lf, "---- chaos: starting node %d at %s ----\n", n.Index, time.Now().Format(time.RFC3339Nano))
	args := []string{"start", "--data-dir", n.dir, "--addr", n.Addr, "--shards", fmt.Sprint(c.shards)}
	if n.join != "" {
		args = append(args, "--join", n.join)
	}
	args = append(args, c.args...)
	name := c.bin
	if n.ns != "" {
		// ip netns exec execs the binary, so the PID is shoal's own.
		args = append([]string{"netns", "exec", n.ns, c.bin}, args...)
		name = "ip"
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	// If the harness dies, so do its nodes.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return fmt.Errorf("chaos: start node %d: %w", n.Index, err)
	}
	done := make(chan struct{})
	n.mu.cmd, n.mu.done, n.mu.killed, n.mu.paused = cmd, done, false, false
	go func() {
		err := cmd.Wait()
		lf.Close()
		n.mu.Lock()
		expected := n.mu.killed
		n.mu.cmd = nil
		n.mu.Unlock()
		if !expected {
			c.crash(fmt.Sprintf("node %d (pid %d) exited on its own: %v; log %s", n.Index, cmd.Process.Pid, err, n.log))
		}
		close(done)
	}()
	return nil
}

func (c *Cluster) crash(msg string) {
	c.crashMu.Lock()
	c.crashes = append(c.crashes, msg)
	c.crashMu.Unlock()
	if c.logf != nil {
		c.logf("CRASH: %s", msg)
	}
}

// Crashes returns the node exits the harness did not cause.
func (c *Cluster) Crashes() []string {
	c.crashMu.Lock()
	defer c.crashMu.Unlock()
	return append([]string(nil), c.crashes...)
}

// signal sends sig to n's process by its PID.
func (n *Node) signal(sig syscall.Signal) (done chan struct{}, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.cmd == nil {
		return nil, fmt.Errorf("chaos: node %d is not running", n.Index)
	}
	switch sig {
	case syscall.SIGKILL:
		n.mu.killed = true
	case syscall.SIGSTOP:
		n.mu.paused = true
	case syscall.SIGCONT:
		n.mu.paused = false
	}
	return n.mu.done, n.mu.cmd.Process.Signal(sig)
}

// Kill sends SIGKILL to n and waits for it to exit.
func (c *Cluster) Kill(n *Node) error {
	done, err := n.signal(syscall.SIGKILL)
	if err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("chaos: node %d did not exit after SIGKILL", n.Index)
	}
}

// Terminate sends SIGTERM to n and waits up to d for it to exit.
func (c *Cluster) Terminate(n *Node, d time.Duration) error {
	n.mu.Lock()
	n.mu.killed = true // an exit the harness asked for
	n.mu.Unlock()
	done, err := n.signal(syscall.SIGTERM)
	if err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-time.After(d):
		return fmt.Errorf("chaos: node %d did not exit within %v of SIGTERM", n.Index, d)
	}
}

// Pause sends SIGSTOP to n; Resume sends SIGCONT.
// Wipe starts stopped node n again with an empty data directory: a new
// node, with a new identity, joining through another node.
func (c *Cluster) Wipe(n *Node) error {
	if n.Running() {
		return fmt.Errorf("chaos: wipe node %d: still running", n.Index)
	}
	if err := os.RemoveAll(n.dir); err != nil {
		return err
	}
	for _, o := range c.Nodes {
		if o != n {
			n.join = o.Addr // node 1 joined nobody: it created the cluster
			break
		}
	}
	return c.Start(n)
}

func (c *Cluster) Pause(n *Node) error  { _, err := n.signal(syscall.SIGSTOP); return err }
func (c *Cluster) Resume(n *Node) error { _, err := n.signal(syscall.SIGCONT); return err }

// TLS returns the TLS configuration of clients of the cluster, nil if it
// runs in plain text.
func (c *Cluster) TLS() *tls.Config { return c.tls }

// Password returns the default user's password, "" if it has none.
func (c *Cluster) Password() string { return c.password }

// ClientTLS is the configuration of a client trusting the CA in dir
// (every node certificate names localhost).
func ClientTLS(dir string) (*tls.Config, error) {
	ca, err := os.ReadFile(filepath.Join(dir, certs.CACert))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("chaos: no CA certificate in %s", dir)
	}
	return &tls.Config{RootCAs: pool, ServerName: "localhost"}, nil
}

// PID returns n's process id, 0 if it is not running.
func (n *Node) PID() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.cmd == nil {
		return 0
	}
	return n.mu.cmd.Process.Pid
}

// Running reports whether n's process is alive (possibly paused).
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.mu.cmd != nil
}

// Stop kills every node. It is safe to call more than once.
func (c *Cluster) Stop() {
	for _, n := range c.Nodes {
		if n.Running() {
			c.Kill(n)
		}
	}
}

// Range is one slot range from CLUSTER SLOTS; Nodes[0] is its leader.
type Range struct {
	Start, End int
	Nodes      []string
}

// Slots returns CLUSTER SLOTS as seen by the first node that answers.
func (c *Cluster) Slots(ctx context.Context) ([]Range, error) {
	var err error
	for _, i := range rand.Perm(len(c.Nodes)) {
		n := c.Nodes[i]
		if !n.Running() {
			continue
		}
		var rs []Range
		if rs, err = slots(ctx, n.Addr, c.tls, c.password); err == nil {
			return rs, nil
		}
	}
	if err == nil {
		err = errors.New("chaos: no node running")
	}
	return nil, err
}

func slots(ctx context.Context, addr string, tc *tls.Config, password string) ([]Range, error) {
	cl := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second,
		ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second, TLSConfig: tc, Password: password})
	defer cl.Close()
	ss, err := cl.ClusterSlots(ctx).Result()
	if err != nil {
		return nil, err
	}
	rs := make([]Range, 0, len(ss))
	for _, s := range ss {
		r := Range{Start: s.Start, End: s.End}
		for _, n := range s.Nodes {
			r.Nodes = append(r.Nodes, n.Addr)
		}
		rs = append(rs, r)
	}
	return rs, nil
}

func ping(ctx context.Context, addr string, tc *tls.Config, password string) error {
	cl := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second,
		ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second, TLSConfig: tc, Password: password})
	defer cl.Close()
	return cl.Ping(ctx).Err()
}

// shoalNodes returns SHOAL NODES as node at addr answers it: per node id,
// its fields.
func shoalNodes(ctx context.Context, addr string, tc *tls.Config, password string) (map[int64]map[string]any, error) {
	cl := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second,
		ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second, TLSConfig: tc, Password: password, Protocol: 2})
	defer cl.Close()
	nodes, err := cl.Do(ctx, "SHOAL", "NODES").Slice()
	if err != nil {
		return nil, err
	}
	out := map[int64]map[string]any{}
	for _, item := range nodes {
		kv, _ := item.([]any)
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[fmt.Sprint(kv[i])] = kv[i+1]
		}
		id, _ := m["id"].(int64)
		out[id] = m
	}
	return out, nil
}

// replicasOnUnlive returns an error naming a node that holds replicas but
// is not live, as node 1 reports them (a node killed for good, until its
// replicas have been rebuilt elsewhere).
func (c *Cluster) replicasOnUnlive(ctx context.Context) error {
	nodes, err := shoalNodes(ctx, c.Nodes[0].Addr, c.tls, c.password)
	if err != nil {
		return err
	}
	for id, m := range nodes {
		if r, _ := m["replicas"].(int64); r > 0 && m["state"] != "live" {
			return fmt.Errorf("node id %d (%v) is %v and holds %d replicas", id, m["addr"], m["state"], r)
		}
	}
	return nil
}

// NodeID returns the cluster's id of node n's current identity.
func (c *Cluster) NodeID(ctx context.Context, n *Node) (int64, error) {
	nodes, err := shoalNodes(ctx, n.Addr, c.tls, c.password)
	if err != nil {
		return 0, err
	}
	var found int64
	for id, m := range nodes {
		if m["addr"] == n.Addr && id > found {
			found = id // a wiped node's address has an older id too
		}
	}
	if found == 0 {
		return 0, fmt.Errorf("chaos: node %s not in SHOAL NODES", n.Addr)
	}
	return found, nil
}

// WaitDrained waits until node id holds no replica, as node 1 sees it.
func (c *Cluster) WaitDrained(ctx context.Context, id int64, d time.Duration) error {
	return poll(ctx, d, fmt.Sprintf("node id %d holds no replica", id), func(ctx context.Context) error {
		nodes, err := shoalNodes(ctx, c.Nodes[0].Addr, c.tls, c.password)
		if err != nil {
			return err
		}
		if r, _ := nodes[id]["replicas"].(int64); r > 0 {
			return fmt.Errorf("node id %d is %v and holds %d replicas", id, nodes[id]["state"], r)
		}
		return nil
	})
}

// Ready returns nil once every node answers PING and CLUSTER SLOTS covers
// every slot with min(N, 3) replicas per range, as seen from every node,
// and no replica is on a node that is not live (a wiped node's replicas
// have been rebuilt).
func (c *Cluster) Ready(ctx context.Context) error {
	if err := c.replicasOnUnlive(ctx); err != nil {
		return err
	}
	want := min(len(c.Nodes), 3)
	for _, n := range c.Nodes {
		rs, err := slots(ctx, n.Addr, c.tls, c.password)
		if err != nil {
			return fmt.Errorf("node %d: %w", n.Index, err)
		}
		covered := 0
		for _, r := range rs {
			if len(r.Nodes) != want {
				return fmt.Errorf("node %d: slots %d-%d on %d nodes, want %d", n.Index, r.Start, r.End, len(r.Nodes), want)
			}
			covered += r.End - r.Start + 1
		}
		if covered != 16384 {
			return fmt.Errorf("node %d: %d slots covered", n.Index, covered)
		}
	}
	return nil
}

// WaitReady polls Ready until it succeeds or d passes.
func (c *Cluster) WaitReady(ctx context.Context, d time.Duration) error {
	return poll(ctx, d, "cluster ready", c.Ready)
}

// NodeByAddr returns the node with client address addr, or nil.
func (c *Cluster) NodeByAddr(addr string) *Node {
	for _, n := range c.Nodes {
		if n.Addr == addr {
			return n
		}
	}
	return nil
}

// poll calls cond every 100ms until it returns nil, ctx ends or d passes.
func poll(ctx context.Context, d time.Duration, what string, cond func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var err error
	for {
		cctx, ccancel := context.WithTimeout(ctx, 3*time.Second)
		err = cond(cctx)
		ccancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("chaos: %s: not after %v: %w", what, d, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
