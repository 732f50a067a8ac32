package server

import (
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoaldb/shoal/internal/resp"
)

// startRedis starts Debian's redis-server on a free loopback port, or
// skips the test when it is not installed (.ci/run installs it).
func startRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed (apt-get install redis-server): no differential test")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", t.TempDir(), "--daemonize", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := "127.0.0.1:" + port
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server did not start: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCategoriesMatchRedis: every command's ACL categories are Redis's.
func TestCategoriesMatchRedis(t *testing.T) {
	addr := startRedis(t)
	rc := dialRaw(t, addr)
	s := New(Config{}, newFakeCluster())
	var all []*command
	for _, cmd := range sortedCommands(s.cmds) {
		all = append(all, cmd)
		all = append(all, sortedCommands(cmd.subs)...)
	}
	checked := 0
	for _, cmd := range all {
		v, _, err := resp.ParseValue([]byte(rc.do("COMMAND", "INFO", cmd.name)))
		if err != nil || len(v.Elems) != 1 {
			t.Fatalf("COMMAND INFO %s: %v %v", cmd.name, v, err)
		}
		info := v.Elems[0]
		if len(info.Elems) < 7 || cmd.name == "object" || cmd.name == "memory" {
			// Newer than this redis-server (CLIENT SETINFO, 7.2); or, for
			// OBJECT and MEMORY, containers in Redis whose subcommands
			// shoal's single commands take the categories of.
			continue
		}
		var want []string
		for _, c := range info.Elems[6].Elems {
			want = append(want, string(c.Str))
		}
		slices.Sort(want)
		got := cmd.cats.Names()
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: categories %v, Redis has %v", cmd.name, got, want)
		}
		checked++
	}
	if checked < 80 {
		t.Errorf("only %d commands compared", checked)
	}
}

// TestACLMatchesRedis runs the same ACL, AUTH and command sequences
// against redis-server and shoal and compares the replies.
func TestACLMatchesRedis(t *testing.T) {
	raddr := startRedis(t)
	_, saddr := startServer(t, newFakeCluster(), Config{})
	type pair struct{ r, s *rawConn }
	dial := func() pair { return pair{dialRaw(t, raddr), dialRaw(t, saddr)} }
	admin := dial()
	// Redis 7.0 rebuilds a selector's command rules from its bitmap of
	// commands; shoal keeps them as given, as Redis 7.2 does. ACL GETUSER
	// and ACL LIST are compared without them: ACL DRYRUN compares what the
	// rules allow.
	norm := func(args []string, reply string) string {
		if len(args) < 2 || args[0] != "ACL" || (args[1] != "GETUSER" && args[1] != "LIST") {
			return reply
		}
		v, _, err := resp.ParseValue([]byte(reply))
		if err != nil {
			t.Fatalf("%q: %v", reply, err)
		}
		return fmt.Sprint(withoutCommandRules(v))
	}
	same := func(p pair, args ...string) {
		t.Helper()
		r, s := norm(args, p.r.do(args...)), norm(args, p.s.do(args...))
		if r != s {
			t.Errorf("%q:\n redis %q\n shoal %q", args, r, s)
		}
	}
	// Modifiers: accepted or refused alike, with Redis's error texts.
	for _, ops := range [][]string{
		{"on", "nopass", "~*", "&*", "+@all"},
		{"+nosuch"}, {"-nosuch"}, {"+@nosuch"}, {"bogus"}, {"%X~k"}, {"allkeys", "~foo"},
		{"allchannels", "&foo"}, {"#abc"}, {"+config|get|x"}, {"+config|"}, {"+config|nosuch"},
		{"-select|0"}, {"(on)"}, {"(~a", "+get"}, {"<nothere"}, {"reset"},
		{"on", "nopass", "~a*", "%R~r*", "%W~w*", "&ch*", "+@read", "-@dangerous", "+set", "+config|get", "+select|0"},
		{"(~s* +set)"}, {"clearselectors"}, {"resetkeys", "resetchannels", "-@all", "+get", "~k*"},
	} {
		same(admin, append([]string{"ACL", "SETUSER", "u"}, ops...)...)
		same(admin, "ACL", "GETUSER", "u")
		same(admin, "ACL", "LIST")
	}
	same(admin, "ACL", "SETUSER", "bad user")
	same(admin, "ACL", "GETUSER", "nobody")
	same(admin, "ACL", "SETUSER", "v", "on", "nopass", "~a*", "%R~r*", "%W~w*", "+@all", "-@dangerous", "(~s* +set)")
	// What each user may run.
	for _, cmd := range [][]string{
		{"get", "a"}, {"get", "r"}, {"get", "w"}, {"get", "s"}, {"set", "a", "1"}, {"set", "r", "1"},
		{"set", "w", "1"}, {"set", "w", "1", "get"}, {"set", "s", "1"}, {"del", "a", "w"}, {"del", "r"},
		{"exists", "r", "w"}, {"rename", "a", "w"}, {"rename", "r", "w"}, {"flushall"}, {"keys", "*"},
		{"config", "get", "x"}, {"config", "set", "x", "y"}, {"select", "0"}, {"select", "1"},
		{"acl", "whoami"}, {"acl", "setuser", "x"}, {"auth", "x"}, {"nosuch"}, {"get"}, {"config", "nosuch"},
	} {
		for _, u := range []string{"u", "v", "default", "nobody"} {
			same(admin, append([]string{"ACL", "DRYRUN", u}, cmd...)...)
		}
	}
	// Logging in. ("aa" sorts before "default" in ACL USERS and LIST.)
	same(admin, "ACL", "SETUSER", "aa")
	same(admin, "AUTH", "x")
	same(admin, "ACL", "SETUSER", "w", "on", ">pw1", ">pw2", "~*", "+@all")
	c := dial()
	for _, args := range [][]string{
		{"AUTH", "w", "wrong"}, {"AUTH", "nobody", "pw1"}, {"AUTH", "a", "b", "c"}, {"AUTH", "w", "pw2"},
		{"ACL", "WHOAMI"}, {"SET", "k", "v"}, {"ACL", "SETUSER", "w", "<pw2"}, {"AUTH", "w", "pw2"},
		{"AUTH", "w", "pw1"}, {"ACL", "SETUSER", "w", "<pw2"}, {"ACL", "SETUSER", "w", "off"},
		{"AUTH", "w", "pw1"}, {"ACL", "USERS"}, {"ACL", "DELUSER", "default"}, {"ACL", "DELUSER", "u", "nobody"},
		{"ACL", "USERS"}, {"ACL", "CAT"}, {"ACL", "CAT", "nosuch"}, {"ACL", "GENPASS", "0"},
		{"ACL", "GENPASS", "5000"}, {"ACL", "GENPASS", "x"}, {"ACL", "LOG", "x"}, {"ACL", "NOSUCH"},
	} {
		same(c, args...)
	}
	// A password for the default user.
	same(admin, "CONFIG", "SET", "requirepass", "pw")
	c = dial()
	for _, args := range [][]string{
		{"GET", "k"}, {"AUTH", "nope"}, {"AUTH", "pw"}, {"ACL", "WHOAMI"},
		{"RESET"}, {"GET", "k"}, {"HELLO", "2", "AUTH", "default", "nope"},
	} {
		same(c, args...)
	}
	// The ACL log has the refusals, with Redis's reasons and objects.
	l := dial()
	l.r.do("AUTH", "pw")
	l.s.do("AUTH", "pw")
	same(admin, "ACL", "SETUSER", "x", "on", "nopass", "~x*", "+get")
	x := dial()
	for _, args := range [][]string{{"AUTH", "x", "any"}, {"GET", "y"}, {"SET", "x", "1"}, {"AUTH", "x", "any"}, {"GET", "x"}} {
		same(x, args...)
	}
	for i, conn := range []*rawConn{l.r, l.s} {
		conn.cmd("ACL", "LOG")
		var fields []string
		for _, f := range strings.Split(conn.reply(), "\r\n") {
			fields = append(fields, f)
		}
		text := strings.Join(fields, " ")
		for _, want := range []string{
			"reason $3 key $7 context $8 toplevel $6 object $1 y $8 username $1 x",
			"reason $7 command $7 context $8 toplevel $6 object $3 set $8 username $1 x",
			"reason $4 auth $7 context $8 toplevel $6 object $4 AUTH $8 username $1 w",
			"reason $4 auth $7 context $8 toplevel $6 object $5 HELLO $8 username $7 default",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("%s ACL LOG lacks %q: %s", []string{"redis", "shoal"}[i], want, text)
			}
		}
	}
}

// withoutCommandRules returns v with every string that is a command rule
// (+x, -x) dropped from ACL LIST's lines, and ACL GETUSER's "commands"
// values blanked.
func withoutCommandRules(v resp.Value) resp.Value {
	switch v.Kind {
	case resp.KindBulk:
		if !strings.HasPrefix(string(v.Str), "user ") {
			return v
		}
		var keep []string
		for _, f := range strings.Fields(string(v.Str)) {
			if !strings.HasPrefix(f, "+") && !strings.HasPrefix(f, "-") && !strings.HasPrefix(f, "(+") && !strings.HasPrefix(f, "(-") {
				keep = append(keep, strings.TrimSuffix(f, ")"))
			}
		}
		return resp.BulkString(strings.Join(keep, " "))
	case resp.KindArray, resp.KindMap:
		out := v
		out.Elems = make([]resp.Value, len(v.Elems))
		for i, e := range v.Elems {
			if i > 0 && v.Elems[i-1].Kind == resp.KindBulk && string(v.Elems[i-1].Str) == "commands" {
				out.Elems[i] = resp.BulkString("?")
				continue
			}
			out.Elems[i] = withoutCommandRules(e)
		}
		return out
	}
	return v
}
