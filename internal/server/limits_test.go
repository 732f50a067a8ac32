package server

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/shoaldb/shoal/internal/memlimit"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// closedByServer reads nc until the server closes it.
func closedByServer(t *testing.T, nc net.Conn) {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err := io.Copy(io.Discard, nc)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server did not close the connection")
	}
}

// A client that sends commands and never reads the replies is closed once
// its writes make no progress for the write timeout; other clients go on.
func TestWriteTimeoutClosesStalledReader(t *testing.T) {
	s, addr := startServer(t, newFakeCluster(), Config{WriteTimeout: 300 * time.Millisecond})
	r := dialRaw(t, addr)
	big := strings.Repeat("v", 1<<20)
	if got := r.do("SET", "big", big); got != "+OK\r\n" {
		t.Fatalf("SET big = %q", got)
	}
	stalled := dialRaw(t, addr)
	var pipe strings.Builder
	for range 64 { // 64 MiB of replies, far more than socket buffers hold
		pipe.WriteString(encodeCommand("GET", "big"))
	}
	stalled.send(pipe.String())
	waitFor(t, "the stalled reader to be closed", 20*time.Second, func() bool {
		return s.stats.outputLimit.Load() == 1
	})
	if got := r.do("PING"); got != "+PONG\r\n" {
		t.Fatalf("PING from another client = %q", got)
	}
	closedByServer(t, stalled.nc)
}

// A client that leaves more than the soft output limit unread for the soft
// seconds is closed, even while it reads a little.
func TestOutputSoftLimit(t *testing.T) {
	s, addr := startServer(t, newFakeCluster(), Config{})
	r := dialRaw(t, addr)
	if got := r.do("CONFIG", "SET", "client-output-buffer-limit", "normal 0 1mb 0"); got != "+OK\r\n" {
		t.Fatalf("CONFIG SET = %q", got)
	}
	if got := r.do("SET", "big", strings.Repeat("v", 1<<20)); got != "+OK\r\n" {
		t.Fatalf("SET big = %q", got)
	}
	stalled := dialRaw(t, addr)
	var pipe strings.Builder
	for range 16 {
		pipe.WriteString(encodeCommand("GET", "big"))
	}
	stalled.send(pipe.String())
	waitFor(t, "the client over the soft limit to be closed", 20*time.Second, func() bool {
		return s.stats.outputLimit.Load() == 1
	})
	closedByServer(t, stalled.nc)
	if got := r.do("CONFIG", "GET", "client-output-buffer-limit"); !strings.Contains(got, "normal 0 1048576 0 ") {
		t.Errorf("CONFIG GET client-output-buffer-limit = %q", got)
	}
}

// A reply larger than the hard output limit is refused before it is built,
// and the connection stays usable.
func TestReplyBound(t *testing.T) {
	_, addr := startServer(t, newFakeCluster(), Config{})
	r := dialRaw(t, addr)
	if got := r.do("CONFIG", "SET", "client-output-buffer-limit", "normal 1mb 0 0"); got != "+OK\r\n" {
		t.Fatalf("CONFIG SET = %q", got)
	}
	v := strings.Repeat("v", 400<<10)
	if got := r.do("MSET", "{t}a", v, "{t}b", v, "{t}c", v); got != "+OK\r\n" {
		t.Fatalf("MSET = %q", got)
	}
	if got := r.do("MGET", "{t}a", "{t}b"); !strings.HasPrefix(got, "*2\r\n") {
		t.Fatalf("MGET of 800 KiB = %.40q", got)
	}
	const tooLarge = "-ERR reply too large: it would hold more than 1048576 bytes"
	if got := r.do("MGET", "{t}a", "{t}b", "{t}c"); !strings.HasPrefix(got, tooLarge) {
		t.Fatalf("MGET of 1.2 MiB = %.80q", got)
	}
	// KEYS joins every shard's keys: the sum is bounded too.
	for i := range 10000 {
		r.cmd("SET", "key:"+strings.Repeat("k", 100)+itoa(i), "1")
	}
	for range 10000 {
		r.reply()
	}
	if got := r.do("KEYS", "key:*"); !strings.HasPrefix(got, tooLarge) {
		t.Fatalf("KEYS of 10 000 keys of 105 bytes = %.80q", got)
	}
	if got := r.do("PING"); got != "+PONG\r\n" {
		t.Fatalf("PING after refusals = %q", got)
	}
}

// A command longer than client-query-buffer-limit closes its connection.
func TestQueryBufferLimit(t *testing.T) {
	s, addr := startServer(t, newFakeCluster(), Config{QueryBufLimit: 1 << 20})
	r := dialRaw(t, addr)
	r.send("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000000\r\n" + strings.Repeat("x", 1200<<10))
	closedByServer(t, r.nc)
	if n := s.stats.queryLimit.Load(); n != 1 {
		t.Errorf("client_query_buffer_limit_disconnections = %d, want 1", n)
	}
	if got := dialRaw(t, addr).do("EXISTS", "k"); got != ":0\r\n" {
		t.Errorf("EXISTS k = %q, want :0", got)
	}
}

// Half-sent large commands of many clients cannot take more memory than
// maxmemory-clients: a client whose buffer would pass it is closed.
func TestMaxMemoryClients(t *testing.T) {
	s, addr := startServer(t, newFakeCluster(), Config{MaxMemoryClients: "4mb"})
	var conns []*rawConn
	for range 4 {
		c := dialRaw(t, addr)
		// An evicted client's write fails: that is expected.
		io.WriteString(c.nc, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$8000000\r\n"+strings.Repeat("x", 3<<20))
		conns = append(conns, c)
	}
	waitFor(t, "clients to be evicted", 20*time.Second, func() bool { return s.stats.evicted.Load() >= 2 })
	if used := s.lim.clientMemUsed.Load(); used > 4<<20 {
		t.Errorf("client buffers hold %d bytes, above maxmemory-clients (4 MiB)", used)
	}
	other := dialRaw(t, addr)
	if got := other.do("PING"); got != "+PONG\r\n" {
		t.Fatalf("PING from a new client = %q", got)
	}
	for _, c := range append(conns, other) {
		c.nc.Close()
	}
	waitFor(t, "client buffers to be released", 10*time.Second, func() bool { return s.lim.clientMemUsed.Load() == 0 })
}

// Over maxmemory, commands that may grow memory answer -OOM, pipelined or
// not; reads and deletes still run.
func TestOOM(t *testing.T) {
	mem := memlimit.New(1) // any process uses more than a byte
	s, addr := startServer(t, newFakeCluster(), Config{Memory: mem})
	r := dialRaw(t, addr)
	const oom = "-OOM command not allowed when used memory > 'maxmemory'.\r\n"
	if got := r.do("SET", "k", "v"); got != oom {
		t.Errorf("SET over maxmemory = %q", got)
	}
	r.send(encodeCommand("SET", "a", "1") + encodeCommand("APPEND", "a", "1") + encodeCommand("DEL", "a"))
	for i, want := range []string{oom, oom, ":0\r\n"} {
		if got := r.reply(); got != want {
			t.Errorf("pipelined reply %d = %q, want %q", i, got, want)
		}
	}
	if got := r.do("GET", "k"); got != "$-1\r\n" {
		t.Errorf("GET over maxmemory = %q", got)
	}
	if n := s.stats.oom.Load(); n != 3 {
		t.Errorf("oom_refusals = %d, want 3", n)
	}
	if got := r.do("CONFIG", "SET", "maxmemory", "0"); got != "+OK\r\n" {
		t.Fatalf("CONFIG SET maxmemory 0 = %q", got)
	}
	if got := r.do("SET", "k", "v"); got != "+OK\r\n" {
		t.Errorf("SET without maxmemory = %q", got)
	}
}

// SETRANGE that would build a string past proto-max-bulk-len is refused
// before it reaches the cluster.
func TestSetRangeRefusedEarly(t *testing.T) {
	f := newFakeCluster()
	_, addr := startServer(t, f, Config{})
	r := dialRaw(t, addr)
	if got := r.do("SETRANGE", "k", "536870911", "x"); got != "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n" {
		t.Errorf("SETRANGE k 536870911 x = %q", got)
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d requests reached the cluster, want 0", n)
	}
	if got := r.do("CONFIG", "SET", "proto-max-bulk-len", "64mb"); !strings.HasPrefix(got, "-ERR CONFIG SET failed") {
		t.Errorf("CONFIG SET proto-max-bulk-len 64mb = %q", got)
	}
	if got := r.do("CONFIG", "SET", "proto-max-bulk-len", "1mb"); got != "+OK\r\n" {
		t.Fatalf("CONFIG SET proto-max-bulk-len 1mb = %q", got)
	}
	if got := r.do("SETRANGE", "k", "1048576", "x"); got != "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n" {
		t.Errorf("SETRANGE k 1048576 x = %q", got)
	}
	r.send("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1048577\r\n")
	if got := r.reply(); got != "-ERR Protocol error: invalid bulk length\r\n" {
		t.Errorf("a bulk past proto-max-bulk-len = %q", got)
	}
}
