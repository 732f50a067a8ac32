package server

import (
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestRedisCLI runs the real redis-cli against the server.
func TestRedisCLI(t *testing.T) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("redis-cli not found in PATH; install redis-tools to run this test")
	}
	f := newFakeCluster()
	_, addr := startServer(t, f, Config{})
	port := addr[strings.LastIndex(addr, ":")+1:]
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(cli, append([]string{"-h", "127.0.0.1", "-p", port}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("redis-cli %q: %v\n%s", args, err, out)
		}
		return strings.TrimRight(string(out), "\n")
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"PING"}, "PONG"},
		{[]string{"SET", "greeting", "hello world"}, "OK"},
		{[]string{"GET", "greeting"}, "hello world"},
		{[]string{"CLUSTER", "KEYSLOT", "foo"}, "12182"},
		{[]string{"INCRBY", "n", "5"}, "5"},
		{[]string{"DBSIZE"}, "2"},
		{[]string{"NOSUCH", "x"}, "ERR unknown command 'NOSUCH', with args beginning with: 'x' "},
	} {
		if got := run(tc.args...); got != tc.want {
			t.Errorf("redis-cli %q = %q, want %q", tc.args, got, tc.want)
		}
	}
	if got := run("INFO", "server"); !strings.Contains(got, "redis_version:7.2.4") {
		t.Errorf("redis-cli INFO server = %q", got)
	}
	if got := run("CLUSTER", "NODES"); !strings.Contains(got, "myself,master") {
		t.Errorf("redis-cli CLUSTER NODES = %q", got)
	}

	// Commands from stdin, then --scan, which iterates with SCAN across all
	// shards.
	var want []string
	var cmds strings.Builder
	for i := range 200 {
		k := "cli:" + strconv.Itoa(i)
		want = append(want, k)
		cmds.WriteString("SET " + k + " v\n")
	}
	cmd := exec.Command(cli, "-h", "127.0.0.1", "-p", port)
	cmd.Stdin = strings.NewReader(cmds.String())
	out, err := cmd.CombinedOutput()
	if err != nil || strings.Count(string(out), "OK\n") != 200 {
		t.Fatalf("redis-cli with 200 SETs on stdin: %v\n%s", err, out)
	}
	got := strings.Split(run("--scan", "--pattern", "cli:*"), "\n")
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("redis-cli --scan returned %d keys, want %d", len(got), len(want))
	}
}
