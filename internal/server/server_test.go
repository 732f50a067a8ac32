package server

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shoaldb/shoal/internal/keys"
	"github.com/shoaldb/shoal/internal/memlimit"
)

func newClient(t *testing.T, addr string, proto int) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: proto, MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	return c
}

// keyInShard returns a key with prefix whose slot lies in [first, last].
func keyInShard(prefix string, first, last int) string {
	for i := 0; ; i++ {
		k := prefix + strconv.Itoa(i)
		if s := keys.Slot([]byte(k)); s >= first && s <= last {
			return k
		}
	}
}

func TestGoRedis(t *testing.T) {
	for _, proto := range []int{2, 3} {
		t.Run("RESP"+strconv.Itoa(proto), func(t *testing.T) {
			f := newFakeCluster()
			_, addr := startServer(t, f, Config{})
			c := newClient(t, addr, proto)
			ctx := context.Background()

			if got, err := c.Ping(ctx).Result(); err != nil || got != "PONG" {
				t.Fatalf("PING = %q, %v", got, err)
			}
			if got, err := c.Echo(ctx, "hi").Result(); err != nil || got != "hi" {
				t.Fatalf("ECHO = %q, %v", got, err)
			}
			for i := range 50 {
				k := "key:" + strconv.Itoa(i)
				if err := c.Set(ctx, k, "v"+strconv.Itoa(i), 0).Err(); err != nil {
					t.Fatal(err)
				}
			}
			for i := range 50 {
				k := "key:" + strconv.Itoa(i)
				if got, err := c.Get(ctx, k).Result(); err != nil || got != "v"+strconv.Itoa(i) {
					t.Fatalf("GET %s = %q, %v", k, got, err)
				}
			}
			if err := c.Get(ctx, "missing").Err(); err != redis.Nil {
				t.Fatalf("GET missing: %v, want redis.Nil", err)
			}
			if n, err := c.Incr(ctx, "counter").Result(); err != nil || n != 1 {
				t.Fatalf("INCR = %d, %v", n, err)
			}
			// Errors leave the connection usable.
			if err := c.Incr(ctx, "key:1").Err(); err == nil || !strings.HasPrefix(err.Error(), "ERR value is not an integer") {
				t.Fatalf("INCR of a string: %v", err)
			}
			if got, err := c.Get(ctx, "key:1").Result(); err != nil || got != "v1" {
				t.Fatalf("GET after error = %q, %v", got, err)
			}
			// Keys on different shards.
			a, b := keyInShard("a", 0, 5460), keyInShard("b", 10923, 16383)
			if err := c.MGet(ctx, a, b).Err(); err == nil || err.Error() != "CROSSSLOT Keys in request don't hash to the same slot" {
				t.Fatalf("MGET across shards: %v", err)
			}
			// Keys on one shard but different slots are fine in shoal.
			a2 := keyInShard("c", 0, 5460)
			if err := c.MSet(ctx, a, "1", a2, "2").Err(); err != nil {
				t.Fatalf("MSET on one shard: %v", err)
			}
			if got, err := c.MGet(ctx, "{t}x", "{t}y").Result(); err != nil || len(got) != 2 {
				t.Fatalf("MGET {t}: %v, %v", got, err)
			}
			if n, err := c.DBSize(ctx).Result(); err != nil || n != 53 {
				t.Fatalf("DBSIZE = %d, %v; want 53", n, err)
			}
			if got, err := c.Do(ctx, "SELECT", "0").Result(); err != nil || got != "OK" {
				t.Fatalf("SELECT 0 = %v, %v", got, err)
			}
			if err := c.Do(ctx, "SELECT", "1").Err(); err == nil || err.Error() != "ERR SELECT is not allowed in cluster mode" {
				t.Fatalf("SELECT 1: %v", err)
			}
			if got, err := c.Do(ctx, "CLUSTER", "KEYSLOT", "foo").Int(); err != nil || got != 12182 {
				t.Fatalf("CLUSTER KEYSLOT foo = %d, %v", got, err)
			}
		})
	}
}

func TestHello(t *testing.T) {
	f := newFakeCluster()
	_, addr := startServer(t, f, Config{})
	c := newClient(t, addr, 3)
	ctx := context.Background()
	got, err := c.Do(ctx, "HELLO", "3").Result()
	if err != nil {
		t.Fatal(err)
	}
	m, ok := got.(map[any]any)
	if !ok {
		t.Fatalf("HELLO 3 = %T %v, want a map", got, got)
	}
	want := map[string]any{"server": "redis", "version": DefaultVersion, "proto": int64(3), "mode": "cluster", "role": "master"}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("HELLO[%s] = %v, want %v", k, m[k], v)
		}
	}
	if id, ok := m["id"].(int64); !ok || id <= 0 {
		t.Errorf("HELLO id = %v", m["id"])
	}
	if mods, ok := m["modules"].([]any); !ok || len(mods) != 0 {
		t.Errorf("HELLO modules = %v", m["modules"])
	}

	r := dialRaw(t, addr)
	if got := r.do("HELLO", "4"); got != "-NOPROTO unsupported protocol version\r\n" {
		t.Errorf("HELLO 4 = %q", got)
	}
	if got := r.do("HELLO", "x"); got != "-ERR Protocol version is not an integer or out of range\r\n" {
		t.Errorf("HELLO x = %q", got)
	}
	if got := r.do("HELLO", "3", "AUTH", "bob", "pw"); !strings.HasPrefix(got, "-WRONGPASS") {
		t.Errorf("HELLO 3 AUTH bob = %q", got)
	}
	if got := r.do("HELLO", "3", "BOGUS"); got != "-ERR Syntax error in HELLO option 'BOGUS'\r\n" {
		t.Errorf("HELLO 3 BOGUS = %q", got)
	}
	if got := r.do("HELLO", "3", "SETNAME", "n1"); !strings.HasPrefix(got, "%7\r\n") {
		t.Errorf("HELLO 3 SETNAME = %q, want a RESP3 map", got)
	}
	if got := r.do("CLIENT", "GETNAME"); got != "$2\r\nn1\r\n" {
		t.Errorf("CLIENT GETNAME = %q", got)
	}
	if got := r.do("GET", "nope"); got != "_\r\n" {
		t.Errorf("GET missing on RESP3 = %q", got)
	}
	if got := r.do("RESET"); got != "+RESET\r\n" {
		t.Errorf("RESET = %q", got)
	}
	if got := r.do("GET", "nope"); got != "$-1\r\n" {
		t.Errorf("GET missing after RESET = %q", got)
	}
	if got := r.do("CLIENT", "GETNAME"); got != "$-1\r\n" {
		t.Errorf("CLIENT GETNAME after RESET = %q", got)
	}
	if got := r.do("HELLO"); !strings.HasPrefix(got, "*14\r\n") {
		t.Errorf("HELLO on RESP2 = %q, want a flat array", got)
	}
}

func TestAuth(t *testing.T) {
	f := newFakeCluster()
	_, addr := startServer(t, f, Config{})
	r := dialRaw(t, addr)
	want := "-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n"
	if got := r.do("AUTH", "secret"); got != want {
		t.Errorf("AUTH secret = %q", got)
	}
	if got := r.do("AUTH", "default", "secret"); got != "+OK\r\n" {
		t.Errorf("AUTH default secret = %q", got)
	}
	if got := r.do("AUTH", "alice", "secret"); got != "-WRONGPASS invalid username-password pair or user is disabled.\r\n" {
		t.Errorf("AUTH alice secret = %q", got)
	}
	if got := r.do("PING"); got != "+PONG\r\n" {
		t.Errorf("PING = %q", got)
	}
}

func TestRawProtocol(t *testing.T) {
	f := newFakeCluster()
	_, addr := startServer(t, f, Config{})

	t.Run("protocol error closes", func(t *testing.T) {
		r := dialRaw(t, addr)
		r.send("*1\r\n$x\r\n")
		if got := r.reply(); got != "-ERR Protocol error: invalid bulk length\r\n" {
			t.Fatalf("got %q", got)
		}
		r.expectEOF()
	})
	t.Run("commands before the error run", func(t *testing.T) {
		r := dialRaw(t, addr)
		r.send("PING\r\n*-x\r\n")
		if got := r.reply(); got != "+PONG\r\n" {
			t.Fatalf("got %q", got)
		}
		if got := r.reply(); got != "-ERR Protocol error: invalid multibulk length\r\n" {
			t.Fatalf("got %q", got)
		}
		r.expectEOF()
	})
	t.Run("inline", func(t *testing.T) {
		r := dialRaw(t, addr)
		r.send("PING\r\n\r\nset greeting \"hello world\"\r\nget greeting\r\nECHO 'a b'\n")
		for _, want := range []string{"+PONG\r\n", "+OK\r\n", "$11\r\nhello world\r\n", "$3\r\na b\r\n"} {
			if got := r.reply(); got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		}
		r.send("set x \"unbalanced\r\n")
		if got := r.reply(); got != "-ERR Protocol error: unbalanced quotes in request\r\n" {
			t.Fatalf("got %q", got)
		}
		r.expectEOF()
	})
	t.Run("split reads", func(t *testing.T) {
		r := dialRaw(t, addr)
		msg := encodeCommand("SET", "split", strings.Repeat("z", 100)) + encodeCommand("GET", "split")
		for i := range len(msg) {
			r.send(msg[i : i+1])
		}
		if got := r.reply(); got != "+OK\r\n" {
			t.Fatalf("got %q", got)
		}
		if got := r.reply(); got != "$100\r\n"+strings.Repeat("z", 100)+"\r\n" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("errors keep the connection", func(t *testing.T) {
		r := dialRaw(t, addr)
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"foo", "a", "b"}, "-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n"},
			{[]string{"FOO"}, "-ERR unknown command 'FOO', with args beginning with: \r\n"},
			{[]string{"GET"}, "-ERR wrong number of arguments for 'get' command\r\n"},
			{[]string{"get", "a", "b"}, "-ERR wrong number of arguments for 'get' command\r\n"},
			{[]string{"PING", "a", "b"}, "-ERR wrong number of arguments for 'ping' command\r\n"},
			{[]string{"CLIENT", "NOPE"}, "-ERR unknown subcommand 'NOPE'. Try CLIENT HELP.\r\n"},
			{[]string{"CLUSTER", "setslot", "1"}, "-ERR unknown subcommand 'setslot'. Try CLUSTER HELP.\r\n"},
			{[]string{"CLIENT", "SETNAME"}, "-ERR wrong number of arguments for 'client|setname' command\r\n"},
			{[]string{"CLIENT", "SETNAME", "a b"}, "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"},
			{[]string{"PING"}, "+PONG\r\n"},
			{[]string{"ping", "hello"}, "$5\r\nhello\r\n"},
			{[]string{"SET", "k", "v", "BOGUS"}, "-ERR syntax error\r\n"},
			{[]string{"Set", "k", "v"}, "+OK\r\n"},
			{[]string{"gEt", "k"}, "$1\r\nv\r\n"},
			{[]string{"TIME", "x"}, "-ERR wrong number of arguments for 'time' command\r\n"},
			{[]string{"SHOAL.COUNTKEYSINSLOT", "0"}, "-ERR unknown command 'SHOAL.COUNTKEYSINSLOT', with args beginning with: '0' \r\n"},
		} {
			if got := r.do(tc.args...); got != tc.want {
				t.Errorf("%q = %q, want %q", tc.args, got, tc.want)
			}
		}
	})
	t.Run("quit", func(t *testing.T) {
		r := dialRaw(t, addr)
		r.send("QUIT\r\nPING\r\n")
		if got := r.reply(); got != "+OK\r\n" {
			t.Fatalf("got %q", got)
		}
		r.expectEOF()
	})
}

func TestUnknownCommandText(t *testing.T) {
	long := strings.Repeat("x", 200)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"foo"}, "ERR unknown command 'foo', with args beginning with: "},
		{[]string{"foo", "a", "b"}, "ERR unknown command 'foo', with args beginning with: 'a' 'b' "},
		{[]string{long}, "ERR unknown command '" + long[:128] + "', with args beginning with: "},
		{[]string{"f", long, "b"}, "ERR unknown command 'f', with args beginning with: '" + long[:128] + "' "},
		{[]string{"f", strings.Repeat("a", 120), "bcdefghijklmn", "z"}, "ERR unknown command 'f', with args beginning with: '" +
			strings.Repeat("a", 120) + "' 'bcdef' "},
		{[]string{"f", "a\r\nb"}, "ERR unknown command 'f', with args beginning with: 'a  b' "},
	} {
		args := make([][]byte, len(tc.args))
		for i, a := range tc.args {
			args[i] = []byte(a)
		}
		if got := string(unknownCommand(args).Str); got != tc.want {
			t.Errorf("unknownCommand(%q) =\n%q, want\n%q", tc.args, got, tc.want)
		}
	}
}

func TestPipeline(t *testing.T) {
	f := newFakeCluster()
	_, addr := startServer(t, f, Config{})
	r := dialRaw(t, addr)
	const n = 1000
	var b strings.Builder
	for i := range n {
		b.WriteString(encodeCommand("SET", "p"+strconv.Itoa(i), "v"+strconv.Itoa(i)))
	}
	r.send(b.String())
	for i := range n {
		if got := r.reply(); got != "+OK\r\n" {
			t.Fatalf("reply %d = %q", i, got)
		}
	}
	b.Reset()
	for i := range n {
		if i%100 == 0 {
			b.WriteString("PING\r\n") // inline mixed in
		}
		b.WriteString(encodeCommand("GET", "p"+strconv.Itoa(i)))
	}
	r.send(b.String())
	for i := range n {
		if i%100 == 0 {
			if got := r.reply(); got != "+PONG\r\n" {
				t.Fatalf("PING before %d = %q", i, got)
			}
		}
		v := "v" + strconv.Itoa(i)
		if got, want := r.reply(), "$"+strconv.Itoa(len(v))+"\r\n"+v+"\r\n"; got != want {
			t.Fatalf("GET %d = %q, want %q", i, got, want)
		}
	}

	// go-redis pipeline too.
	c := newClient(t, addr, 3)
	ctx := context.Background()
	cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range n {
			p.Get(ctx, "p"+strconv.Itoa(i))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, cmd := range cmds {
		if got := cmd.(*redis.StringCmd).Val(); got != "v"+strconv.Itoa(i) {
			t.Fatalf("pipelined GET %d = %q", i, got)
		}
	}
}

func TestLargeValue(t *testing.T) {
	f := newFakeCluster()
	_, addr := startServer(t, f, Config{})
	// Generous timeouts: moving MiBs around is slow under -race.
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, MaxRetries: -1,
		ReadTimeout: time.Minute, WriteTimeout: time.Minute})
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	big := bytes.Repeat([]byte("0123456789abcdef"), DefaultMaxBulkLen/16) // the most proto-max-bulk-len allows
	big[12345] = 'X'
	if err := c.Set(ctx, "big", big, 0).Err(); err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(ctx, "big").Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, big) {
		t.Fatalf("GET big: %d bytes, not what was set", len(got))
	}
	if n, err := c.StrLen(ctx, "big").Result(); err != nil || n != int64(len(big)) {
		t.Fatalf("STRLEN = %d, %v", n, err)
	}
	// The connection stays usable and small commands still work.
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
}

func TestBulkTooLarge(t *testing.T) {
	f := newFakeCluster()
	cfg := Config{}
	cfg.Limits.MaxBulkLen = 1 << 10
	_, addr := startServer(t, f, cfg)
	r := dialRaw(t, addr)
	r.send("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000\r\n")
	if got := r.reply(); got != "-ERR Protocol error: invalid bulk length\r\n" {
		t.Fatalf("got %q", got)
	}
	r.expectEOF()
}

func TestMoved(t *testing.T) {
	f := newFakeCluster()
	_, addr := startServer(t, f, Config{})
	// Node 2 leads shard 10 (slots 0-5460); node 1 (self) is a replica.
	f.setTopo(func(tp *Topology) { tp.Shards[0].Leader = 2 })
	k := keyInShard("m", 0, 5460)
	slot := keys.Slot([]byte(k))
	moved := fmt.Sprintf("-MOVED %d 127.0.0.1:7002\r\n", slot)

	// A plain client is served: the Cluster forwards.
	plain := dialRaw(t, addr)
	if got := plain.do("SET", k, "v"); got != "+OK\r\n" {
		t.Fatalf("plain SET = %q", got)
	}
	if got := plain.do("GET", k); got != "$1\r\nv\r\n" {
		t.Fatalf("plain GET = %q", got)
	}

	// A client that read the slot map is redirected.
	aware := dialRaw(t, addr)
	if got := aware.do("CLUSTER", "SLOTS"); !strings.HasPrefix(got, "*3\r\n") {
		t.Fatalf("CLUSTER SLOTS = %q", got)
	}
	if got := aware.do("GET", k); got != moved {
		t.Fatalf("aware GET = %q, want %q", got, moved)
	}
	if got := aware.do("SET", k, "w"); got != moved {
		t.Fatalf("aware SET = %q, want %q", got, moved)
	}
	// Keys of shards led here still run.
	k2 := keyInShard("m", 5461, 10922)
	if got := aware.do("SET", k2, "x"); got != "+OK\r\n" {
		t.Fatalf("aware SET on a local shard = %q", got)
	}

	// READONLY: reads of a shard with a local replica are served here,
	// writes are still redirected.
	ro := dialRaw(t, addr)
	if got := ro.do("READONLY"); got != "+OK\r\n" {
		t.Fatalf("READONLY = %q", got)
	}
	if got := ro.do("GET", k); got != "$1\r\nv\r\n" {
		t.Fatalf("READONLY GET = %q", got)
	}
	reqs := f.requests()
	if last := reqs[len(reqs)-1]; !last.FollowerRead || last.Write || last.Shard != 10 {
		t.Fatalf("READONLY GET request = %+v", last)
	}
	if got := ro.do("SET", k, "w"); got != moved {
		t.Fatalf("READONLY SET = %q, want %q", got, moved)
	}
	// Without a local replica even reads are redirected.
	f.setTopo(func(tp *Topology) { tp.Shards[0].Replicas = []uint64{2, 3} })
	if got := ro.do("GET", k); got != moved {
		t.Fatalf("READONLY GET without a local replica = %q, want %q", got, moved)
	}
	if got := ro.do("READWRITE"); got != "+OK\r\n" {
		t.Fatalf("READWRITE = %q", got)
	}
	// No known leader: run it here and let the Cluster decide.
	f.setTopo(func(tp *Topology) { tp.Shards[0].Leader = 0 })
	if got := aware.do("GET", k); got != "$1\r\nv\r\n" {
		t.Fatalf("aware GET with no leader = %q", got)
	}
}

// With ClusterClientsOnly every connection is redirected, as in Redis
// Cluster, whether or not it asked for the slot map, and RESET does not
// make it a plain client again.
func TestMovedForEveryClientWhenClusterClientsOnly(t *testing.T) {
	f := newFakeCluster()
	_, addr := startServer(t, f, Config{ClusterClientsOnly: true})
	f.setTopo(func(tp *Topology) { tp.Shards[0].Leader = 2 })
	k := keyInShard("m", 0, 5460)
	moved := fmt.Sprintf("-MOVED %d 127.0.0.1:7002\r\n", keys.Slot([]byte(k)))

	c := dialRaw(t, addr)
	if got := c.do("SET", k, "v"); got != moved {
		t.Fatalf("SET = %q, want %q", got, moved)
	}
	if got := c.do("GET", k); got != moved {
		t.Fatalf("GET = %q, want %q", got, moved)
	}
	// A pipelined run of writes, which the server batches per shard when
	// it runs them here, is redirected command by command.
	c.send(encodeCommand("SET", k, "1") + encodeCommand("SET", k, "2"))
	for i := range 2 {
		if got := c.reply(); got != moved {
			t.Fatalf("pipelined SET %d = %q, want %q", i, got, moved)
		}
	}
	if got := c.do("RESET"); got != "+RESET\r\n" {
		t.Fatalf("RESET = %q", got)
	}
	if got := c.do("SET", k, "v"); got != moved {
		t.Fatalf("SET after RESET = %q, want %q", got, moved)
	}
	if n := len(f.requests()); n != 0 {
		t.Fatalf("the Cluster ran %d requests for a shard led elsewhere: %+v", n, f.requests())
	}
	// Shards led here, and a shard with no known leader, still run here.
	k2 := keyInShard("m", 5461, 10922)
	if got := c.do("SET", k2, "x"); got != "+OK\r\n" {
		t.Fatalf("SET on a local shard = %q", got)
	}
	f.setTopo(func(tp *Topology) { tp.Shards[0].Leader = 0 })
	if got := c.do("SET", k, "w"); got != "+OK\r\n" {
		t.Fatalf("SET with no known leader = %q", got)
	}
}

func TestRedirect(t *testing.T) {
	topo := Topology{
		Self: 1,
		Nodes: []Node{
			{ID: 1, Addr: ":6379"}, {ID: 2, Addr: "0.0.0.0:6380"}, {ID: 3, Addr: "10.0.0.3:6381"}, {ID: 4, Addr: "bad"},
		},
	}
	for _, tc := range []struct {
		sh              Shard
		write, readonly bool
		want            string // "" for no redirect
	}{
		{Shard{Leader: 1, Replicas: []uint64{1, 2}}, true, false, ""},
		{Shard{Leader: 0, Replicas: []uint64{1, 2}}, true, false, ""},
		{Shard{Leader: 2, Replicas: []uint64{1, 2}}, true, false, "127.0.0.9:6380"},
		{Shard{Leader: 2, Replicas: []uint64{1, 2}}, false, false, "127.0.0.9:6380"},
		{Shard{Leader: 2, Replicas: []uint64{1, 2}}, false, true, ""},
		{Shard{Leader: 2, Replicas: []uint64{1, 2}}, true, true, "127.0.0.9:6380"},
		{Shard{Leader: 3, Replicas: []uint64{2, 3}}, false, true, "10.0.0.3:6381"},
		{Shard{Leader: 4, Replicas: []uint64{1, 4}}, true, false, ""},
		{Shard{Leader: 5, Replicas: []uint64{1, 5}}, true, false, ""},
	} {
		got, ok := redirect(topo, tc.sh, tc.write, tc.readonly, "127.0.0.9")
		if !ok {
			got = ""
		}
		if got != tc.want {
			t.Errorf("redirect(%+v, write=%v, readonly=%v) = %q, want %q", tc.sh, tc.write, tc.readonly, got, tc.want)
		}
	}
}

func TestErrorMapping(t *testing.T) {
	f := newFakeCluster()
	_, addr := startServer(t, f, Config{})
	r := dialRaw(t, addr)
	for _, tc := range []struct {
		err  error
		want string
	}{
		{ErrNoLeader, "-TRYAGAIN "},
		{fmt.Errorf("shard 10: %w", ErrTimeout), "-TRYAGAIN "},
		{ErrUnavailable, "-CLUSTERDOWN The cluster is down\r\n"},
		{context.DeadlineExceeded, "-TRYAGAIN "},
		// Text from inside shoal never reaches the client.
		{fmt.Errorf("disk\non fire"), "-ERR internal error: the command failed on the node (see its log)\r\n"},
		{fmt.Errorf("shard 3: %w", ErrTooLarge), "-ERR command too large: "},
		{ErrOOM, "-OOM command not allowed when used memory > 'maxmemory'.\r\n"},
	} {
		f.setErr(tc.err)
		if got := r.do("GET", "k"); !strings.HasPrefix(got, tc.want) {
			t.Errorf("GET with %v = %q, want %q...", tc.err, got, tc.want)
		}
		if got := r.do("DBSIZE"); !strings.HasPrefix(got, tc.want) {
			t.Errorf("DBSIZE with %v = %q, want %q...", tc.err, got, tc.want)
		}
	}
	f.setErr(nil)
	if got := r.do("SET", "k", "v"); got != "+OK\r\n" {
		t.Fatalf("SET after errors = %q", got)
	}
}

func TestFanout(t *testing.T) {
	f := newFakeCluster()
	_, addr := startServer(t, f, Config{})
	c := newClient(t, addr, 2)
	ctx := context.Background()
	want := make(map[string]bool)
	for i := range 300 {
		k := "fan:" + strconv.Itoa(i)
		want[k] = true
		if err := c.Set(ctx, k, "x", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for id, m := range f.data {
		if m.Len() == 0 {
			t.Fatalf("shard %d got no keys; the test needs keys on every shard", id)
		}
	}
	got, err := c.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("KEYS * returned %d keys, want %d", len(got), len(want))
	}
	for _, k := range got {
		if !want[k] {
			t.Fatalf("KEYS returned unknown key %q", k)
		}
	}
	if got, err := c.Keys(ctx, "fan:1?").Result(); err != nil || len(got) != 10 {
		t.Fatalf("KEYS fan:1? = %v, %v", got, err)
	}
	if n, err := c.DBSize(ctx).Result(); err != nil || n != 300 {
		t.Fatalf("DBSIZE = %d, %v", n, err)
	}
	if k, err := c.RandomKey(ctx).Result(); err != nil || !want[k] {
		t.Fatalf("RANDOMKEY = %q, %v", k, err)
	}
	info, err := c.Info(ctx, "keyspace").Result()
	if err != nil || !strings.Contains(info, "db0:keys=300,expires=0,avg_ttl=0\r\n") {
		t.Fatalf("INFO keyspace = %q, %v", info, err)
	}
	if err := c.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := c.DBSize(ctx).Result(); err != nil || n != 0 {
		t.Fatalf("DBSIZE after FLUSHALL = %d, %v", n, err)
	}
	if err := c.RandomKey(ctx).Err(); err != redis.Nil {
		t.Fatalf("RANDOMKEY of nothing: %v", err)
	}
	if err := c.Do(ctx, "FLUSHDB", "bogus").Err(); err == nil || err.Error() != "ERR syntax error" {
		t.Fatalf("FLUSHDB bogus: %v", err)
	}
	info, err = c.Info(ctx, "keyspace").Result()
	if err != nil || info != "# Keyspace\r\n" {
		t.Fatalf("INFO keyspace of nothing = %q, %v", info, err)
	}
}

func TestScan(t *testing.T) {
	f := newFakeCluster()
	_, addr := startServer(t, f, Config{})
	c := newClient(t, addr, 3)
	ctx := context.Background()
	want := make(map[string]bool)
	for i := range 500 {
		k := "scan:" + strconv.Itoa(i)
		want[k] = true
		if err := c.Set(ctx, k, "x", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, count := range []int64{1, 2, 7, 10, 33, 100} {
		seen := make(map[string]int)
		var cursor uint64
		calls := 0
		for {
			ks, next, err := c.Scan(ctx, cursor, "", count).Result()
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range ks {
				seen[k]++
			}
			calls++
			if next == 0 {
				break
			}
			if next <= cursor || next >= keys.SlotCount {
				t.Fatalf("COUNT %d: cursor %d after %d", count, next, cursor)
			}
			cursor = next
		}
		if len(seen) != len(want) {
			t.Errorf("COUNT %d: saw %d keys, want %d", count, len(seen), len(want))
		}
		for k, n := range seen {
			if n != 1 || !want[k] {
				t.Errorf("COUNT %d: key %q seen %d times", count, k, n)
			}
		}
		t.Logf("COUNT %d: %d calls", count, calls)
	}
	// MATCH with the scan iterator.
	var matched []string
	it := c.Scan(ctx, 0, "scan:4?", 50).Iterator()
	for it.Next(ctx) {
		matched = append(matched, it.Val())
	}
	if err := it.Err(); err != nil || len(matched) != 10 {
		t.Fatalf("SCAN MATCH scan:4? = %v, %v", matched, err)
	}

	r := dialRaw(t, addr)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"SCAN", "x"}, "-ERR invalid cursor\r\n"},
		{[]string{"SCAN", "-1"}, "-ERR invalid cursor\r\n"},
		{[]string{"SCAN", "16384"}, "-ERR invalid cursor\r\n"},
		{[]string{"SCAN", "0", "COUNT", "x"}, "-ERR value is not an integer or out of range\r\n"},
		{[]string{"SCAN", "0", "COUNT", "0"}, "-ERR syntax error\r\n"},
		{[]string{"SCAN", "0", "COUNT"}, "-ERR syntax error\r\n"},
		{[]string{"SCAN", "0", "BOGUS", "1"}, "-ERR syntax error\r\n"},
	} {
		if got := r.do(tc.args...); got != tc.want {
			t.Errorf("%q = %q, want %q", tc.args, got, tc.want)
		}
	}
	// Validation happens before any shard is asked.
	before := len(f.requests())
	r.do("SCAN", "0", "COUNT", "0")
	if after := len(f.requests()); after != before {
		t.Errorf("invalid SCAN reached %d shards", after-before)
	}
	// The last shard ends the scan with cursor 0.
	if got := r.do("SCAN", "16000", "COUNT", "100000"); !strings.HasPrefix(got, "*2\r\n$1\r\n0\r\n") {
		t.Errorf("SCAN of the last slots = %q", got)
	}
}

func TestCluster(t *testing.T) {
	f := newFakeCluster()
	_, addr := startServer(t, f, Config{})
	f.setTopo(func(tp *Topology) {
		tp.Shards[1].Leader = 2
		tp.Shards[2].Leader = 0
		tp.Shards[2].Replicas = []uint64{3, 1}
		tp.Nodes[2].Alive = false
	})
	c := newClient(t, addr, 2)
	ctx := context.Background()

	slots, err := c.ClusterSlots(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	// Node 3 is down: as in Redis, it is left out where it is a replica.
	want := []redis.ClusterSlot{
		{Start: 0, End: 5460, Nodes: []redis.ClusterNode{
			{ID: nodeID(1), Addr: addr}, {ID: nodeID(2), Addr: "127.0.0.1:7002"}}},
		{Start: 5461, End: 10922, Nodes: []redis.ClusterNode{
			{ID: nodeID(2), Addr: "127.0.0.1:7002"}, {ID: nodeID(1), Addr: addr}}},
		{Start: 10923, End: 16383, Nodes: []redis.ClusterNode{
			{ID: nodeID(3), Addr: "127.0.0.1:7003"}, {ID: nodeID(1), Addr: addr}}},
	}
	if fmt.Sprint(slots) != fmt.Sprint(want) {
		t.Errorf("CLUSTER SLOTS =\n%v\nwant\n%v", slots, want)
	}

	nodes, err := c.ClusterNodes(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(addr, ":")
	p, _ := strconv.Atoi(port)
	wantNodes := fmt.Sprintf("%s %s@%d myself,master - 0 0 1 connected 0-5460\n", nodeID(1), addr, p+10000) +
		fmt.Sprintf("%s 127.0.0.1:7002@17002 master - 0 0 2 connected 5461-10922\n", nodeID(2)) +
		fmt.Sprintf("%s 127.0.0.1:7003@17003 master,fail - 0 0 3 disconnected 10923-16383\n", nodeID(3))
	if nodes != wantNodes {
		t.Errorf("CLUSTER NODES =\n%s\nwant\n%s", nodes, wantNodes)
	}

	shards, err := c.ClusterShards(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(shards) != 3 || shards[1].Slots[0].Start != 5461 || shards[1].Nodes[0].Role != "master" ||
		shards[1].Nodes[0].ID != nodeID(2) || shards[1].Nodes[1].Role != "replica" || shards[2].Nodes[0].Health != "failed" {
		t.Errorf("CLUSTER SHARDS = %+v", shards)
	}

	info, err := c.ClusterInfo(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"cluster_state:fail", "cluster_slots_assigned:16384", "cluster_slots_ok:10923",
		"cluster_slots_fail:5461", "cluster_known_nodes:3", "cluster_size:3", "cluster_my_epoch:1"} {
		if !strings.Contains(info, line+"\r\n") {
			t.Errorf("CLUSTER INFO lacks %q:\n%s", line, info)
		}
	}
	if id, err := c.Do(ctx, "CLUSTER", "MYID").Text(); err != nil || id != nodeID(1) || len(id) != 40 {
		t.Errorf("CLUSTER MYID = %q, %v", id, err)
	}

	// COUNTKEYSINSLOT and GETKEYSINSLOT ask the shard owning the slot.
	for _, k := range []string{"{s}a", "{s}b", "{s}c"} {
		if err := c.Set(ctx, k, "1", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	slot := int64(keys.Slot([]byte("s")))
	if n, err := c.ClusterCountKeysInSlot(ctx, int(slot)).Result(); err != nil || n != 3 {
		t.Errorf("COUNTKEYSINSLOT = %d, %v", n, err)
	}
	if ks, err := c.ClusterGetKeysInSlot(ctx, int(slot), 2).Result(); err != nil || len(ks) != 2 {
		t.Errorf("GETKEYSINSLOT = %v, %v", ks, err)
	}
	r := dialRaw(t, addr)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"CLUSTER", "COUNTKEYSINSLOT", "16384"}, "-ERR Invalid slot\r\n"},
		{[]string{"CLUSTER", "COUNTKEYSINSLOT", "x"}, "-ERR value is not an integer or out of range\r\n"},
		{[]string{"CLUSTER", "GETKEYSINSLOT", "1", "-1"}, "-ERR Invalid slot or number of keys\r\n"},
		{[]string{"CLUSTER", "KEYSLOT", "{user1000}.following"}, ":3443\r\n"},
		{[]string{"CLUSTER", "COUNTKEYSINSLOT", "0"}, ":0\r\n"},
	} {
		if got := r.do(tc.args...); got != tc.want {
			t.Errorf("%q = %q, want %q", tc.args, got, tc.want)
		}
	}
}

func TestClusterClient(t *testing.T) {
	f := newFakeCluster()
	_, addr := startServer(t, f, Config{})
	f.setTopo(func(tp *Topology) { // every shard on node 1, which is this server
		for i := range tp.Shards {
			tp.Shards[i].Replicas = []uint64{1}
		}
	})
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{addr}, MaxRedirects: 1})
	defer c.Close()
	ctx := context.Background()
	for i := range 100 {
		if err := c.Set(ctx, "cc:"+strconv.Itoa(i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 100 {
		if got, err := c.Get(ctx, "cc:"+strconv.Itoa(i)).Int(); err != nil || got != i {
			t.Fatalf("GET = %d, %v", got, err)
		}
	}
	if n, err := c.DBSize(ctx).Result(); err != nil || n != 100 {
		t.Fatalf("DBSIZE = %d, %v", n, err)
	}
}

func TestClientCommands(t *testing.T) {
	f := newFakeCluster()
	_, addr := startServer(t, f, Config{})
	r := dialRaw(t, addr)
	id := r.do("CLIENT", "ID")
	if !regexp.MustCompile(`^:\d+\r\n$`).MatchString(id) {
		t.Fatalf("CLIENT ID = %q", id)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"CLIENT", "SETNAME", "worker-1"}, "+OK\r\n"},
		{[]string{"CLIENT", "GETNAME"}, "$8\r\nworker-1\r\n"},
		{[]string{"CLIENT", "SETINFO", "LIB-NAME", "mylib"}, "+OK\r\n"},
		{[]string{"CLIENT", "SETINFO", "lib-ver", "1.2"}, "+OK\r\n"},
		{[]string{"CLIENT", "SETINFO", "lib-ver", "1 2"}, "-ERR lib-ver cannot contain spaces, newlines or special characters.\r\n"},
		{[]string{"CLIENT", "SETINFO", "color", "red"}, "-ERR Unrecognized option 'color'\r\n"},
		{[]string{"CLIENT", "NO-EVICT", "on"}, "+OK\r\n"},
		{[]string{"CLIENT", "NO-TOUCH", "maybe"}, "-ERR syntax error\r\n"},
		{[]string{"READONLY"}, "+OK\r\n"},
	} {
		if got := r.do(tc.args...); got != tc.want {
			t.Errorf("%q = %q, want %q", tc.args, got, tc.want)
		}
	}
	line := `id=\d+ addr=127\.0\.0\.1:\d+ laddr=127\.0\.0\.1:\d+ fd=\d+ name=%s age=\d+ idle=\d+ flags=%s ` +
		`db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=\d+ qbuf-free=\d+ argv-mem=0 multi-mem=0 rbs=\d+ rbp=0 ` +
		`obl=0 oll=0 omem=0 tot-mem=\d+ events=r cmd=%s user=default redir=-1 resp=%d lib-name=%s lib-ver=%s\n`
	info := r.do("CLIENT", "INFO")
	want := regexp.MustCompile(`^\$\d+\r\n` + fmt.Sprintf(line, "worker-1", "r", `client\|info`, 2, "mylib", `1\.2`) + "\r\n$")
	if !want.MatchString(info) {
		t.Errorf("CLIENT INFO = %q", info)
	}
	other := dialRaw(t, addr)
	other.do("PING")
	list := r.do("CLIENT", "LIST")
	lines := regexp.MustCompile(fmt.Sprintf(line, `\S*`, `\w`, `\S+`, 2, `\S*`, `\S*`)).FindAllString(list, -1)
	if len(lines) != 2 {
		t.Errorf("CLIENT LIST has %d client lines, want 2:\n%s", len(lines), list)
	}
	if got := r.do("CLIENT", "LIST", "ID", strings.TrimSuffix(id[1:], "\r\n")); strings.Count(got, "id=") != 1 {
		t.Errorf("CLIENT LIST ID = %q, want one line", got)
	}
	if got := r.do("CLIENT", "LIST", "TYPE", "pubsub"); got != "$0\r\n\r\n" {
		t.Errorf("CLIENT LIST TYPE pubsub = %q", got)
	}
	if got := r.do("CLIENT", "LIST", "ID", "x"); got != "-ERR Invalid client ID\r\n" {
		t.Errorf("CLIENT LIST ID x = %q", got)
	}
	if got := r.do("CLIENT", "HELP"); !strings.HasPrefix(got, "*") {
		t.Errorf("CLIENT HELP = %q", got)
	}
}

func TestInfo(t *testing.T) {
	f := newFakeCluster()
	_, addr := startServer(t, f, Config{RunID: strings.Repeat("ab", 20)})
	c := newClient(t, addr, 3)
	ctx := context.Background()
	info, err := c.Info(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# Server\r\n", "redis_version:7.2.4\r\n", "redis_mode:cluster\r\n", "arch_bits:64\r\n",
		"run_id:" + strings.Repeat("ab", 20) + "\r\n", "tcp_port:" + addr[strings.LastIndex(addr, ":")+1:] + "\r\n",
		"uptime_in_seconds:", "uptime_in_days:0\r\n", "process_id:",
		"\r\n\r\n# Clients\r\n", "connected_clients:1\r\n", "maxclients:10000\r\n",
		"# Memory\r\n", "used_memory:", "used_memory_human:", "used_memory_rss:",
		"# Persistence\r\n", "aof_enabled:1\r\n",
		"# Stats\r\n", "total_connections_received:1\r\n", "total_commands_processed:", "instantaneous_ops_per_sec:",
		"# Replication\r\n", "role:master\r\n",
		"# CPU\r\n", "used_cpu_sys:", "used_cpu_user:",
		"# Cluster\r\n", "cluster_enabled:1\r\n", "shoal_nodes_live:3\r\n", "shoal_nodes_dead:0\r\n",
		"shoal_replicas_being_added:0\r\n",
		"# Keyspace\r\n",
	} {
		if !strings.Contains(info, want) {
			t.Errorf("INFO lacks %q", want)
		}
	}
	if strings.HasSuffix(info, "\r\n\r\n") {
		t.Errorf("INFO ends with a blank line")
	}
	if got, _ := c.Info(ctx, "server").Result(); strings.Contains(got, "# Clients") || !strings.HasPrefix(got, "# Server\r\n") {
		t.Errorf("INFO server = %q", got)
	}
	if got, _ := c.Info(ctx, "CPU", "cluster").Result(); got != "# CPU\r\n"+strings.SplitN(got, "# CPU\r\n", 2)[1] ||
		!strings.Contains(got, "\r\n\r\n# Cluster\r\ncluster_enabled:1\r\n") {
		t.Errorf("INFO cpu cluster = %q", got)
	}
	if got, _ := c.Info(ctx, "nosuch").Result(); got != "" {
		t.Errorf("INFO nosuch = %q", got)
	}
	if got, _ := c.Info(ctx, "everything").Result(); !strings.Contains(got, "# Modules\r\n") {
		t.Errorf("INFO everything lacks modules")
	}
	for range 5 {
		c.Ping(ctx)
	}
	if err := c.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Info(ctx, "stats").Result(); !strings.Contains(got, "total_commands_processed:1\r\n") {
		t.Errorf("INFO stats after RESETSTAT = %q", got)
	}
	if got, err := c.Time(ctx).Result(); err != nil || time.Since(got).Abs() > time.Minute {
		t.Errorf("TIME = %v, %v", got, err)
	}
}

func TestHumanBytes(t *testing.T) {
	for _, tc := range []struct {
		n    uint64
		want string
	}{{0, "0B"}, {1023, "1023B"}, {1024, "1.00K"}, {1536, "1.50K"}, {5 << 20, "5.00M"}, {3 << 30, "3.00G"}} {
		if got := humanBytes(tc.n); got != tc.want {
			t.Errorf("humanBytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestConfig(t *testing.T) {
	f := newFakeCluster()
	mem := memlimit.New(0)
	s, addr := startServer(t, f, Config{Memory: mem})
	c := newClient(t, addr, 2)
	ctx := context.Background()
	got, err := c.ConfigGet(ctx, "maxmemory*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got["maxmemory"] != "0" || got["maxmemory-policy"] != "noeviction" || got["maxmemory-clients"] != "20%" {
		t.Errorf("CONFIG GET maxmemory* = %v", got)
	}
	got, err = c.ConfigGet(ctx, "*").Result()
	if err != nil || len(got) != len(params) || got["appendonly"] != "yes" || got["databases"] != "1" ||
		got["cluster-enabled"] != "yes" || got["port"] != addr[strings.LastIndex(addr, ":")+1:] {
		t.Errorf("CONFIG GET * = %v, %v", got, err)
	}

	r := dialRaw(t, addr)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"CONFIG", "SET", "maxmemory", "1gb"}, "+OK\r\n"},
		{[]string{"CONFIG", "GET", "maxmemory"}, "*2\r\n$9\r\nmaxmemory\r\n$10\r\n1073741824\r\n"},
		{[]string{"CONFIG", "SET", "maxmemory", "0"}, "+OK\r\n"},
		{[]string{"CONFIG", "GET", "nosuch"}, "*0\r\n"},
		{[]string{"CONFIG", "SET", "save", ""}, "+OK\r\n"},
		{[]string{"CONFIG", "SET", "appendonly", "no"}, "-ERR CONFIG SET failed (possibly related to argument 'appendonly') - can't set immutable config\r\n"},
		{[]string{"CONFIG", "SET", "nosuch", "1"}, "-ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'\r\n"},
		{[]string{"CONFIG", "SET", "maxclients"}, "-ERR wrong number of arguments for 'config|set' command\r\n"},
		{[]string{"CONFIG", "SET", "maxclients", "10", "timeout"}, "-ERR wrong number of arguments for 'config|set' command\r\n"},
		{[]string{"CONFIG", "SET", "maxclients", "x"}, "-ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument couldn't be parsed into an integer\r\n"},
		{[]string{"CONFIG", "SET", "hz", "20", "HZ", "30"}, "-ERR CONFIG SET failed (possibly related to argument 'HZ') - duplicate parameter\r\n"},
		{[]string{"CONFIG", "SET", "maxclients", "50", "timeout", "300", "maxmemory-policy", "allkeys-lru"}, "+OK\r\n"},
		{[]string{"CONFIG", "SET", "maxmemory-policy", "sometimes"}, "-ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy') - argument(s) must be one of the following: noeviction, allkeys-lru, allkeys-lfu, allkeys-random, volatile-lru, volatile-lfu, volatile-random, volatile-ttl\r\n"},
		{[]string{"CONFIG", "REWRITE"}, "-ERR CONFIG REWRITE is not supported: shoal takes its configuration from command-line flags\r\n"},
	} {
		if got := r.do(tc.args...); got != tc.want {
			t.Errorf("%q = %q, want %q", tc.args, got, tc.want)
		}
	}
	if s.maxClients.Load() != 50 || time.Duration(s.idleTimeout.Load()) != 300*time.Second {
		t.Errorf("CONFIG SET did not apply: maxclients %d, timeout %v", s.maxClients.Load(), time.Duration(s.idleTimeout.Load()))
	}
	// A failed CONFIG SET changes nothing.
	r.do("CONFIG", "SET", "maxclients", "60", "appendonly", "no")
	if s.maxClients.Load() != 50 {
		t.Errorf("a failed CONFIG SET changed maxclients to %d", s.maxClients.Load())
	}
	for _, tc := range []struct{ in, want string }{{"0", "0"}, {"100", "100"}, {"1k", "1000"}, {"1KB", "1024"}, {"2mb", "2097152"}, {"3g", "3000000000"}} {
		if got, err := parseMemory(tc.in); err != nil || got != tc.want {
			t.Errorf("parseMemory(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "x", "-1", "1tb", "1.5g"} {
		if got, err := parseMemory(in); err == nil {
			t.Errorf("parseMemory(%q) = %q, want an error", in, got)
		}
	}
}

func TestCommand(t *testing.T) {
	f := newFakeCluster()
	s, addr := startServer(t, f, Config{})
	c := newClient(t, addr, 3)
	ctx := context.Background()
	infos, err := c.Command(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != len(s.cmds) {
		t.Errorf("COMMAND lists %d commands, table has %d", len(infos), len(s.cmds))
	}
	get := infos["get"]
	if get == nil || get.Arity != 2 || get.FirstKeyPos != 1 || get.LastKeyPos != 1 || get.StepCount != 1 || !get.ReadOnly {
		t.Errorf("COMMAND get = %+v", get)
	}
	if mset := infos["mset"]; mset == nil || mset.Arity != -3 || mset.LastKeyPos != -1 || mset.StepCount != 2 {
		t.Errorf("COMMAND mset = %+v", mset)
	}
	for name := range infos {
		if strings.HasPrefix(name, "shoal.") {
			t.Errorf("COMMAND lists internal command %q", name)
		}
	}
	if n, err := c.Do(ctx, "COMMAND", "COUNT").Int(); err != nil || n != len(s.cmds) {
		t.Errorf("COMMAND COUNT = %d, %v", n, err)
	}
	if got, err := c.CommandList(ctx, &redis.FilterBy{Pattern: "cluster*"}).Result(); err != nil || len(got) < 5 {
		t.Errorf("COMMAND LIST FILTERBY PATTERN cluster* = %v, %v", got, err)
	}
	if got, err := c.CommandGetKeys(ctx, "mset", "a", "1", "b", "2").Result(); err != nil || fmt.Sprint(got) != "[a b]" {
		t.Errorf("COMMAND GETKEYS mset = %v, %v", got, err)
	}
	res, err := c.Do(ctx, "COMMAND", "DOCS", "get", "client", "nosuch").Result()
	if err != nil {
		t.Fatal(err)
	}
	docs, ok := res.(map[any]any)
	if !ok || len(docs) != 2 {
		t.Fatalf("COMMAND DOCS = %v", res)
	}
	if d, _ := docs["get"].(map[any]any); d["summary"] == "" || d["since"] != "1.0.0" || d["group"] != "string" {
		t.Errorf("COMMAND DOCS get = %v", d)
	}
	if d, _ := docs["client"].(map[any]any); d["subcommands"] == nil {
		t.Errorf("COMMAND DOCS client = %v", d)
	}
	r := dialRaw(t, addr)
	if got := r.do("COMMAND", "INFO", "get", "nosuch"); !strings.HasPrefix(got, "*2\r\n*10\r\n$3\r\nget\r\n:2\r\n") || !strings.HasSuffix(got, "$-1\r\n") {
		t.Errorf("COMMAND INFO get nosuch = %q", got)
	}
	if got := r.do("COMMAND", "INFO", "client|setname"); !strings.HasPrefix(got, "*1\r\n*10\r\n$14\r\nclient|setname\r\n:3\r\n") {
		t.Errorf("COMMAND INFO client|setname = %q", got)
	}
	if got := r.do("COMMAND", "GETKEYS", "ping"); got != "-ERR The command has no key arguments\r\n" {
		t.Errorf("COMMAND GETKEYS ping = %q", got)
	}
	if got := r.do("COMMAND", "GETKEYS", "get"); got != "-ERR Invalid number of arguments specified for command\r\n" {
		t.Errorf("COMMAND GETKEYS get = %q", got)
	}
}

func TestMaxClients(t *testing.T) {
	f := newFakeCluster()
	_, addr := startServer(t, f, Config{MaxClients: 1})
	first := dialRaw(t, addr)
	if got := first.do("PING"); got != "+PONG\r\n" {
		t.Fatalf("PING = %q", got)
	}
	second := dialRaw(t, addr)
	if got := second.reply(); got != "-ERR max number of clients reached\r\n" {
		t.Fatalf("second client got %q", got)
	}
	second.expectEOF()
}

func TestIdleTimeout(t *testing.T) {
	f := newFakeCluster()
	_, addr := startServer(t, f, Config{IdleTimeout: 100 * time.Millisecond})
	r := dialRaw(t, addr)
	if got := r.do("PING"); got != "+PONG\r\n" {
		t.Fatalf("PING = %q", got)
	}
	r.expectEOF()
}

func TestClose(t *testing.T) {
	f := newFakeCluster()
	f.block = make(chan struct{}) // commands wait until Close cancels them
	s, addr := startServer(t, f, Config{})
	idle := dialRaw(t, addr)
	idle.do("PING")
	busy := dialRaw(t, addr)
	busy.cmd("GET", "k")
	deadline := time.Now().Add(5 * time.Second)
	for len(s.clients()) < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	idle.expectEOF()
	busy.expectEOF()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(ln); err != ErrClosed {
		t.Errorf("Serve after Close = %v, want ErrClosed", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, cfg := range []Config{
		{MaxClients: -1}, {IdleTimeout: -1}, {MaxFanout: -2}, {RunID: "xyz"}, {RunID: strings.Repeat("g", 40)},
	} {
		if err := cfg.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want an error", cfg)
		}
		if err := New(cfg, newFakeCluster()).ListenAndServe(); err == nil {
			t.Errorf("ListenAndServe with %+v = nil, want an error", cfg)
		}
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("Validate(Config{}) = %v", err)
	}
}

func TestClusterNodesText(t *testing.T) {
	topo := Topology{
		Self: 2,
		Nodes: []Node{
			{ID: 2, Addr: ":6380", Alive: true},
			{ID: 1, Addr: "10.0.0.1:6379", Alive: true},
			{ID: 3, Addr: "10.0.0.3:6381", Alive: false},
		},
		Shards: []Shard{
			{ID: 1, FirstSlot: 0, LastSlot: 99, Leader: 1, Replicas: []uint64{1, 2}},
			{ID: 2, FirstSlot: 100, LastSlot: 199, Leader: 1, Replicas: []uint64{1, 2}},
			{ID: 3, FirstSlot: 200, LastSlot: 200, Leader: 2, Replicas: []uint64{2}},
			{ID: 4, FirstSlot: 201, LastSlot: 16383, Leader: 0, Replicas: []uint64{1, 3}},
		},
	}
	want := nodeID(1) + " 10.0.0.1:6379@16379 master - 0 0 1 connected 0-199 201-16383\n" +
		nodeID(2) + " 127.0.0.5:6380@16380 myself,master - 0 0 2 connected 200\n" +
		nodeID(3) + " 10.0.0.3:6381@16381 master,fail - 0 0 3 disconnected\n"
	if got := clusterNodes(topo, "127.0.0.5"); got != want {
		t.Errorf("clusterNodes =\n%s\nwant\n%s", got, want)
	}
	if !coversAllSlots(topo.Shards) {
		t.Error("coversAllSlots = false, want true")
	}
	topo.Shards = topo.Shards[1:]
	if coversAllSlots(topo.Shards) {
		t.Error("coversAllSlots with slots 0-99 missing = true")
	}
}

func TestKeylessAndGaps(t *testing.T) {
	f := newFakeCluster()
	_, addr := startServer(t, f, Config{})
	r := dialRaw(t, addr)
	if got := r.do("OBJECT", "HELP"); !strings.HasPrefix(got, "*") {
		t.Errorf("OBJECT HELP = %q", got)
	}
	r.do("SET", "k", "v")
	if got := r.do("OBJECT", "ENCODING", "k"); !strings.HasPrefix(got, "$") {
		t.Errorf("OBJECT ENCODING k = %q", got)
	}
	// A topology with a hole: keyed commands in the hole and fan-outs
	// fail rather than answer partially.
	f.setTopo(func(tp *Topology) { tp.Shards = tp.Shards[1:] })
	k := keyInShard("h", 0, 5460)
	for _, args := range [][]string{{"GET", k}, {"DBSIZE"}, {"KEYS", "*"}, {"SCAN", "0"}} {
		if got := r.do(args...); got != "-CLUSTERDOWN Hash slot not served\r\n" {
			t.Errorf("%q with slots 0-5460 unserved = %q", args, got)
		}
	}
	if got := r.do("SCAN", "6000"); !strings.HasPrefix(got, "*2\r\n") {
		t.Errorf("SCAN 6000 with slots 0-5460 unserved = %q", got)
	}
}
