package server

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// must runs a command and fails the test on an error.
func must(t *testing.T, c *redis.Client, args ...any) any {
	t.Helper()
	v, err := c.Do(context.Background(), args...).Result()
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return v
}

// errOf runs a command and returns its error text ("" if none).
func errOf(c *redis.Client, args ...any) string {
	if err := c.Do(context.Background(), args...).Err(); err != nil {
		return err.Error()
	}
	return ""
}

func TestAuthentication(t *testing.T) {
	f := newFakeCluster()
	_, addr := startServer(t, f, Config{})
	admin := newClient(t, addr, 2)
	if got := errOf(admin, "AUTH", "x"); !strings.Contains(got, "without any password configured") {
		t.Errorf("AUTH x with no password set: %q", got)
	}
	if got := must(t, admin, "ACL", "WHOAMI"); got != "default" {
		t.Errorf("WHOAMI = %v", got)
	}
	must(t, admin, "CONFIG", "SET", "requirepass", "s3cret")

	r := dialRaw(t, addr)
	for _, tc := range []struct {
		cmd  []string
		want string
	}{
		{[]string{"GET", "k"}, "-NOAUTH Authentication required.\r\n"},
		{[]string{"NOSUCH"}, "-ERR unknown command 'NOSUCH', with args beginning with: \r\n"},
		{[]string{"HELLO", "3"}, "-NOAUTH HELLO must be called"},
		{[]string{"AUTH", "wrong"}, "-WRONGPASS invalid username-password pair or user is disabled.\r\n"},
		{[]string{"AUTH", "nosuchuser", "s3cret"}, "-WRONGPASS"},
		{[]string{"PING"}, "-NOAUTH"},
		{[]string{"AUTH", "s3cret"}, "+OK\r\n"},
		{[]string{"SET", "k", "v"}, "+OK\r\n"},
		{[]string{"RESET"}, "+RESET\r\n"},
		{[]string{"GET", "k"}, "-NOAUTH"},
		{[]string{"HELLO", "2", "AUTH", "default", "s3cret"}, "*14\r\n"},
		{[]string{"GET", "k"}, "$1\r\nv\r\n"},
	} {
		if got := r.do(tc.cmd...); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%q = %q, want %q...", tc.cmd, got, tc.want)
		}
	}
	// A connection made while the default user had no password stays
	// logged in as it, as in Redis.
	if got := errOf(admin, "GET", "k"); got != "" {
		t.Errorf("the earlier connection: %q", got)
	}
	// go-redis logs in with the password.
	c := redis.NewClient(&redis.Options{Addr: addr, Password: "s3cret", MaxRetries: -1})
	defer c.Close()
	if v := must(t, c, "GET", "k"); v != "v" {
		t.Errorf("GET = %v", v)
	}
	must(t, admin, "CONFIG", "SET", "requirepass", "")
	if got := dialRaw(t, addr).do("GET", "k"); got != "$1\r\nv\r\n" {
		t.Errorf("after requirepass \"\": %q", got)
	}
	if st := f.users.Users["default"]; st == nil || strings.Contains(st.Describe(), "s3cret") {
		t.Errorf("default user %+v", st)
	}
}

func TestPermissions(t *testing.T) {
	f := newFakeCluster()
	_, addr := startServer(t, f, Config{})
	admin := newClient(t, addr, 3)
	must(t, admin, "ACL", "SETUSER", "alice", "on", ">pw", "~a*", "%R~r*", "+@all", "-@dangerous", "-acl")
	must(t, admin, "SET", "r1", "x")
	if got := must(t, admin, "ACL", "DRYRUN", "alice", "get", "r1"); got != "OK" {
		t.Errorf("DRYRUN get r1 = %v", got)
	}
	if got := must(t, admin, "ACL", "DRYRUN", "alice", "set", "r1", "v"); got != "This user has no permissions to access the 'r1' key" {
		t.Errorf("DRYRUN set r1 = %v", got)
	}
	if got := must(t, admin, "ACL", "DRYRUN", "alice", "flushall"); got != "This user has no permissions to run the 'flushall' command" {
		t.Errorf("DRYRUN flushall = %v", got)
	}
	if got := errOf(admin, "ACL", "DRYRUN", "bob", "get", "x"); got != "ERR User 'bob' not found" {
		t.Errorf("DRYRUN of an unknown user: %q", got)
	}

	a := redis.NewClient(&redis.Options{Addr: addr, Username: "alice", Password: "pw", MaxRetries: -1})
	defer a.Close()
	ctx := context.Background()
	for _, tc := range []struct {
		args []any
		want string
	}{
		{[]any{"SET", "a1", "v"}, ""},
		{[]any{"GET", "r1"}, ""},
		{[]any{"SET", "r1", "v"}, "NOPERM this user has no permissions to access one of the keys used as arguments"},
		{[]any{"SET", "b1", "v"}, "NOPERM this user has no permissions to access one of the keys used as arguments"},
		{[]any{"MSET", "a2", "v", "b2", "v"}, "NOPERM this user has no permissions to access one of the keys used as arguments"},
		{[]any{"FLUSHALL"}, "NOPERM this user has no permissions to run the 'flushall' command"},
		{[]any{"CONFIG", "SET", "maxclients", "1"}, "NOPERM this user has no permissions to run the 'config|set' command"},
		{[]any{"ACL", "SETUSER", "alice", "+@all"}, "NOPERM this user has no permissions to run the 'acl|setuser' command"},
		{[]any{"ACL", "NOSUCH"}, "ERR unknown subcommand 'NOSUCH'. Try ACL HELP."},
		{[]any{"EXISTS", "r1"}, ""}, // no access flags: any pattern will do
	} {
		if got := errOf(a, tc.args...); got != tc.want {
			t.Errorf("alice %v: %q, want %q", tc.args, got, tc.want)
		}
	}
	// Pipelined writes, which the server batches into one raft entry,
	// are checked one by one.
	cmds, _ := a.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "a3", "1", 0)
		p.Set(ctx, "b3", "1", 0)
		p.Set(ctx, "a4", "1", 0)
		return nil
	})
	if cmds[0].Err() != nil || cmds[1].Err() == nil || !strings.HasPrefix(cmds[1].Err().Error(), "NOPERM") || cmds[2].Err() != nil {
		t.Errorf("pipeline: %v", cmds)
	}
	for _, k := range []string{"b1", "b2", "b3"} {
		if n := must(t, admin, "EXISTS", k); n != int64(0) {
			t.Errorf("a refused write created %s", k)
		}
	}

	log := must(t, admin, "ACL", "LOG").([]any)
	if len(log) == 0 {
		t.Fatal("ACL LOG is empty")
	}
	if e := log[0].(map[any]any); e["reason"] != "key" || e["object"] != "b3" || e["username"] != "alice" || e["context"] != "toplevel" {
		t.Errorf("newest ACL LOG entry: %v", e)
	}
	found := false
	for _, e := range log {
		e := e.(map[any]any)
		found = found || e["reason"] == "command" && e["object"] == "acl|setuser"
	}
	if !found {
		t.Errorf("no entry for the refused ACL SETUSER in %v", log)
	}
	if !strings.Contains(must(t, admin, "INFO", "stats").(string), "acl_access_denied_key:4") {
		t.Errorf("INFO stats: %s", must(t, admin, "INFO", "stats"))
	}

	// Changed permissions apply to connections already open; a deleted
	// user's connections are closed.
	must(t, admin, "ACL", "SETUSER", "alice", "-get")
	if got := errOf(a, "GET", "r1"); !strings.HasPrefix(got, "NOPERM") {
		t.Errorf("GET after -get: %q", got)
	}
	must(t, admin, "ACL", "DELUSER", "alice")
	if got := errOf(a, "SET", "a1", "v"); got == "" {
		t.Error("a deleted user's connection still runs commands")
	}
	if got := errOf(admin, "ACL", "DELUSER", "default"); got != "ERR The 'default' user cannot be removed" {
		t.Errorf("DELUSER default: %q", got)
	}
	if got := errOf(admin, "AUTH", "alice", "pw"); !strings.HasPrefix(got, "WRONGPASS") {
		t.Errorf("AUTH of a deleted user: %q", got)
	}
}

// remoteListener makes every connection look as if it came from another
// host, for protected mode.
type remoteListener struct{ net.Listener }

func (l remoteListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return remoteConn{c}, nil
}

type remoteConn struct{ net.Conn }

func (remoteConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 40000} }

func TestProtectedMode(t *testing.T) {
	f := newFakeCluster()
	s := New(Config{}, f)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(remoteListener{ln})
	defer s.Close()
	addr := ln.Addr().String()
	if got := dialRaw(t, addr).do("PING"); !strings.HasPrefix(got, "-DENIED") {
		t.Errorf("a remote client with no password set: %q", got)
	}
	if st := s.SecurityStats(); st.ProtectedModeRefusals != 1 {
		t.Errorf("stats %+v", st)
	}
	f.SetUser(context.Background(), "default", []string{"resetpass", "#" + strings.Repeat("ab", 48)})
	if got := dialRaw(t, addr).do("PING"); !strings.HasPrefix(got, "-NOAUTH") {
		t.Errorf("a remote client once a password is set: %q", got)
	}
}

func TestAuthorizeScrape(t *testing.T) {
	f := newFakeCluster()
	s, addr := startServer(t, f, Config{})
	ctx := context.Background()
	admin := newClient(t, addr, 2)
	if !s.AuthorizeScrape(ctx, "", "", "", "test") {
		t.Error("no credentials, default user without a password: refused")
	}
	must(t, admin, "ACL", "SETUSER", "prom", "on", ">pw", "+info")
	must(t, admin, "ACL", "SETUSER", "app", "on", ">pw", "+get")
	must(t, admin, "CONFIG", "SET", "requirepass", "s3cret")
	for _, tc := range []struct {
		cert, user, pass string
		want             bool
	}{
		{"", "", "", false},
		{"", "prom", "pw", true},
		{"", "prom", "wrong", false},
		{"", "app", "pw", false}, // may not run INFO
		{"", "", "s3cret", true}, // the default user, as AUTH <password>
		{"", "default", "nope", false},
		{"prom", "", "", true},
		{"app", "", "", false},
		{"ghost", "prom", "pw", false}, // a certificate names the user
	} {
		if got := s.AuthorizeScrape(ctx, tc.cert, tc.user, tc.pass, "test"); got != tc.want {
			t.Errorf("AuthorizeScrape(cert %q, %q/%q) = %v, want %v", tc.cert, tc.user, tc.pass, got, tc.want)
		}
	}
	if n := s.SecurityStats().AuthFailures; n != 2 {
		t.Errorf("auth failures = %d, want 2 (the two wrong passwords)", n)
	}
}
