package server

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoaldb/shoal/internal/kv"
	"github.com/shoaldb/shoal/internal/kv/kvtest"
	"github.com/shoaldb/shoal/internal/meta"
	"github.com/shoaldb/shoal/internal/resp"
	"github.com/shoaldb/shoal/internal/shoalpb"
)

// fakeCluster is a Cluster of three shards over the slot space, each a
// kvtest.Mem, executed in process with kv.Apply and kv.Read. Tests change
// its topology (leaders, replicas) and inject errors.
type fakeCluster struct {
	mu    sync.Mutex
	topo  Topology
	data  map[uint64]*kvtest.Mem
	err   error     // returned by Execute when set
	reqs  []Request // every request executed, args copied
	block chan struct{}
	// metaStore holds the users as the meta shard does; users is what
	// Users returns, read again after each change.
	metaStore *kvtest.Mem
	users     *meta.Users
}

func newFakeCluster() *fakeCluster {
	f := &fakeCluster{
		topo: Topology{
			Self:      1,
			ClusterID: "test",
			Nodes: []Node{
				{ID: 1, Addr: "127.0.0.1:7001", Alive: true},
				{ID: 2, Addr: "127.0.0.1:7002", Alive: true},
				{ID: 3, Addr: "127.0.0.1:7003", Alive: true},
			},
			Shards: []Shard{
				{ID: 10, FirstSlot: 0, LastSlot: 5460, Replicas: []uint64{1, 2, 3}, Leader: 1},
				{ID: 11, FirstSlot: 5461, LastSlot: 10922, Replicas: []uint64{1, 2, 3}, Leader: 1},
				{ID: 12, FirstSlot: 10923, LastSlot: 16383, Replicas: []uint64{1, 2, 3}, Leader: 1},
			},
		},
		data: make(map[uint64]*kvtest.Mem),
	}
	for _, sh := range f.topo.Shards {
		f.data[sh.ID] = kvtest.NewMem()
	}
	f.metaStore = kvtest.NewMem()
	if err := meta.Save(f.metaStore, meta.New("test", "127.0.0.1:7001", "127.0.0.1:17001", 3, 0)); err != nil {
		panic(err)
	}
	f.readUsers()
	return f
}

func (f *fakeCluster) readUsers() {
	u, err := meta.ReadUsers(f.metaStore)
	if err != nil {
		panic(err)
	}
	f.users = u
}

func (f *fakeCluster) Users() Users {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.users
}

func (f *fakeCluster) RefreshUsers(ctx context.Context) error { return nil }

func (f *fakeCluster) SetUser(ctx context.Context, name string, ops []string) (resp.Value, error) {
	return f.applyMeta(append([]string{meta.CmdSetUser, name}, ops...))
}

func (f *fakeCluster) DelUsers(ctx context.Context, names []string) (resp.Value, error) {
	return f.applyMeta(append([]string{meta.CmdDelUser}, names...))
}

func (f *fakeCluster) applyMeta(args []string) (resp.Value, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cmd := &shoalpb.Command{}
	for _, a := range args {
		cmd.Args = append(cmd.Args, []byte(a))
	}
	v, err := meta.Apply(f.metaStore, cmd)
	f.readUsers()
	return v, err
}

func (f *fakeCluster) NodeStatus() []NodeStatus {
	var out []NodeStatus
	for _, n := range f.Topology().Nodes {
		out = append(out, NodeStatus{ID: n.ID, Addr: n.Addr, State: "live"})
	}
	return out
}

func (f *fakeCluster) Decommission(ctx context.Context, node string) (resp.Value, error) {
	return resp.Err("ERR the fake cluster cannot decommission"), nil
}

func (f *fakeCluster) Topology() Topology {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.topo
	t.Nodes = append([]Node(nil), t.Nodes...)
	t.Shards = append([]Shard(nil), t.Shards...)
	return t
}

// setTopo changes the topology under the lock.
func (f *fakeCluster) setTopo(fn func(t *Topology)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.topo)
}

func (f *fakeCluster) setErr(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

func (f *fakeCluster) Execute(ctx context.Context, req Request) (resp.Value, error) {
	f.mu.Lock()
	block := f.block
	f.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return resp.Value{}, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	args := make([][]byte, len(req.Args))
	for i, a := range req.Args {
		args[i] = append([]byte(nil), a...)
	}
	rec := req
	rec.Args = args
	f.reqs = append(f.reqs, rec)
	if f.err != nil {
		return resp.Value{}, f.err
	}
	var sh *Shard
	for i := range f.topo.Shards {
		if f.topo.Shards[i].ID == req.Shard {
			sh = &f.topo.Shards[i]
		}
	}
	if sh == nil {
		return resp.Value{}, errors.New("no such shard")
	}
	env := kv.Env{NowMs: time.Now().UnixMilli(), Rand: rand.Uint64(), FirstSlot: sh.FirstSlot, LastSlot: sh.LastSlot,
		MaxReplyLen: req.MaxReplyLen, MaxValueLen: 0}
	if req.Write {
		return kv.Apply(f.data[sh.ID], env, args)
	}
	return kv.Read(f.data[sh.ID], env, args)
}

// requests returns the requests executed so far.
func (f *fakeCluster) requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Request(nil), f.reqs...)
}

// startServer serves f on a loopback port until the test ends. Node 1 (the
// fake's Self) gets the server's real address.
func startServer(t testing.TB, f *fakeCluster, cfg Config) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	f.setTopo(func(tp *Topology) { tp.Nodes[0].Addr = addr })
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := New(cfg, f)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; !errors.Is(err, ErrClosed) {
			t.Errorf("Serve returned %v, want ErrClosed", err)
		}
	})
	return s, addr
}

// rawConn is a plain TCP client speaking RESP by hand.
type rawConn struct {
	t  testing.TB
	nc net.Conn
	r  *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	return &rawConn{t: t, nc: nc, r: bufio.NewReaderSize(nc, 1<<16)}
}

func (c *rawConn) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.t.Fatal(err)
	}
}

// cmd sends args as a multibulk command.
func (c *rawConn) cmd(args ...string) {
	c.t.Helper()
	c.send(encodeCommand(args...))
}

func encodeCommand(args ...string) string {
	var b strings.Builder
	b.WriteString("*" + itoa(len(args)) + "\r\n")
	for _, a := range args {
		b.WriteString("$" + itoa(len(a)) + "\r\n" + a + "\r\n")
	}
	return b.String()
}

// reply reads one reply and returns it in wire form.
func (c *rawConn) reply() string {
	c.t.Helper()
	var buf []byte
	for {
		_, n, err := resp.ParseValue(buf)
		if err != nil {
			c.t.Fatalf("bad reply %q: %v", buf, err)
		}
		if n > 0 {
			return string(buf[:n])
		}
		line, err := c.r.ReadBytes('\n')
		buf = append(buf, line...)
		if err != nil {
			c.t.Fatalf("reading reply (got %q so far): %v", buf, err)
		}
	}
}

// do sends a command and returns its reply in wire form.
func (c *rawConn) do(args ...string) string {
	c.t.Helper()
	c.cmd(args...)
	return c.reply()
}

// expectEOF checks the server closed the connection.
func (c *rawConn) expectEOF() {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := c.r.ReadByte()
	if err == nil {
		c.t.Fatalf("read %q, want the connection closed", b)
	}
	if !errors.Is(err, io.EOF) {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.t.Fatal("connection still open")
		}
	}
}
