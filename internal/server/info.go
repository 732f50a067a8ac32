package server

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/shoaldb/shoal/internal/memlimit"
	"github.com/shoaldb/shoal/internal/resp"
)

// field is one "name:value" line of INFO.
type field struct{ name, value string }

// infoSection is one "# Name" block of INFO.
type infoSection struct {
	name   string // lower case
	title  string
	dflt   bool // part of INFO without arguments
	fields func(s *Server, ctx context.Context, now time.Time) []field
}

var infoSections = []infoSection{
	{"server", "Server", true, (*Server).serverInfo},
	{"clients", "Clients", true, (*Server).clientsInfo},
	{"memory", "Memory", true, (*Server).memoryInfo},
	{"persistence", "Persistence", true, (*Server).persistenceInfo},
	{"stats", "Stats", true, (*Server).statsInfo},
	{"replication", "Replication", true, (*Server).replicationInfo},
	{"cpu", "CPU", true, (*Server).cpuInfo},
	{"modules", "Modules", true, nil},
	{"cluster", "Cluster", true, (*Server).clusterSection},
	{"keyspace", "Keyspace", true, (*Server).keyspaceInfo},
}

// cmdInfo is INFO [section ...]. Sections are chosen as Redis 7 does:
// none or "default" for the default set, "all" or "everything" for all,
// else the named ones; unknown names are ignored.
func cmdInfo(ctx context.Context, c *conn, args [][]byte) resp.Value {
	names := make([]string, len(args)-1)
	for i, a := range args[1:] {
		names[i] = strings.ToLower(string(a))
	}
	return verbatim(c.srv.Info(ctx, names...))
}

// Info returns the text of INFO for the named sections.
func (s *Server) Info(ctx context.Context, sections ...string) string {
	want := make(map[string]bool)
	all, dflt := false, len(sections) == 0
	for _, n := range sections {
		switch n {
		case "all", "everything":
			all = true
		case "default":
			dflt = true
		default:
			want[n] = true
		}
	}
	now := time.Now()
	var b strings.Builder
	for _, sec := range infoSections {
		if !all && !(dflt && sec.dflt) && !want[sec.name] {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("\r\n")
		}
		b.WriteString("# " + sec.title + "\r\n")
		if sec.fields == nil {
			continue
		}
		for _, f := range sec.fields(s, ctx, now) {
			b.WriteString(f.name + ":" + f.value + "\r\n")
		}
	}
	return b.String()
}

func itoa[T int | int64 | uint64](n T) string { return strconv.FormatInt(int64(n), 10) }

func (s *Server) serverInfo(ctx context.Context, now time.Time) []field {
	exe, _ := os.Executable()
	up := now.Sub(s.started)
	return []field{
		{"redis_version", s.cfg.Version},
		{"redis_git_sha1", "00000000"},
		{"redis_git_dirty", "0"},
		{"redis_mode", "cluster"},
		{"os", runtime.GOOS + " " + runtime.GOARCH},
		{"arch_bits", strconv.Itoa(strconv.IntSize)},
		{"process_id", strconv.Itoa(os.Getpid())},
		{"process_supervised", "no"},
		{"run_id", s.cfg.RunID},
		{"tcp_port", strconv.Itoa(s.port())},
		{"server_time_usec", itoa(now.UnixMicro())},
		{"uptime_in_seconds", itoa(int64(up / time.Second))},
		{"uptime_in_days", itoa(int64(up / (24 * time.Hour)))},
		{"executable", exe},
		{"config_file", ""},
	}
}

// port is the TCP port of the most recent listener, 0 if none.
func (s *Server) port() int {
	if a, ok := s.Addr().(*net.TCPAddr); ok {
		return a.Port
	}
	return 0
}

func (s *Server) clientsInfo(ctx context.Context, now time.Time) []field {
	s.mu.Lock()
	n := len(s.mu.conns)
	s.mu.Unlock()
	return []field{
		{"connected_clients", strconv.Itoa(n)},
		{"cluster_connections", "0"},
		{"maxclients", itoa(s.maxClients.Load())},
		{"blocked_clients", "0"},
		{"tracking_clients", "0"},
		{"clients_in_timeout_table", "0"},
	}
}

func (s *Server) memoryInfo(ctx context.Context, now time.Time) []field {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	rss := uint64(memlimit.ResidentBytes(0))
	if rss == 0 {
		rss = m.Sys // best available: memory obtained from the OS
	}
	return []field{
		{"used_memory", itoa(m.HeapAlloc)},
		{"used_memory_human", humanBytes(m.HeapAlloc)},
		{"used_memory_rss", itoa(rss)},
		{"used_memory_rss_human", humanBytes(rss)},
		{"maxmemory", itoa(s.maxMemory())},
		{"maxmemory_human", humanBytes(uint64(s.maxMemory()))},
		{"maxmemory_policy", "noeviction"},
		{"mem_clients_normal", itoa(s.lim.clientMemUsed.Load())},
		{"maxmemory_clients", itoa(s.clientMemLimit())},
		{"mem_allocator", runtime.Version()},
	}
}

// humanBytes formats n as Redis does in *_human fields: 1.50K, 12.00M...
func humanBytes(n uint64) string {
	units := []string{"K", "M", "G", "T", "P"}
	if n < 1024 {
		return itoa(n) + "B"
	}
	v := float64(n) / 1024
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.2f%s", v, units[i])
}

// writeStatus is "err" while the disk is too full for writes, as Redis
// reports a failing AOF.
func (s *Server) writeStatus() string {
	if s.cfg.DiskFull != nil && s.cfg.DiskFull() {
		return "err"
	}
	return "ok"
}

// persistenceInfo: every acknowledged write is already on a majority's
// disk through the raft log, which is what "appendonly yes, appendfsync
// always" promises; there are no RDB snapshots or AOF rewrites.
func (s *Server) persistenceInfo(ctx context.Context, now time.Time) []field {
	return []field{
		{"loading", "0"},
		{"async_loading", "0"},
		{"rdb_bgsave_in_progress", "0"},
		{"aof_enabled", "1"},
		{"aof_rewrite_in_progress", "0"},
		{"aof_last_write_status", s.writeStatus()},
	}
}

func (s *Server) statsInfo(ctx context.Context, now time.Time) []field {
	st := &s.stats
	return []field{
		{"total_connections_received", itoa(st.connections.Load())},
		{"total_commands_processed", itoa(st.commands.Load())},
		{"instantaneous_ops_per_sec", itoa(st.opsPerSec(now))},
		{"total_net_input_bytes", itoa(st.netIn.Load())},
		{"total_net_output_bytes", itoa(st.netOut.Load())},
		{"rejected_connections", itoa(st.rejected.Load())},
		{"evicted_clients", itoa(st.evicted.Load())},
		{"client_query_buffer_limit_disconnections", itoa(st.queryLimit.Load())},
		{"client_output_buffer_limit_disconnections", itoa(st.outputLimit.Load())},
		{"oom_refusals", itoa(st.oom.Load())},
		{"acl_access_denied_auth", itoa(s.acls.authFailures.Load())},
		{"acl_access_denied_cmd", itoa(s.acls.deniedCommand.Load())},
		{"acl_access_denied_key", itoa(s.acls.deniedKey.Load())},
		{"acl_access_denied_channel", itoa(s.acls.deniedChannel.Load())},
		{"protected_mode_refusals", itoa(s.acls.protectedMode.Load())},
	}
}

// replicationInfo: to Redis clients every shoal node is a master (see
// clustercmd.go); replication happens inside shards, through raft.
func (s *Server) replicationInfo(ctx context.Context, now time.Time) []field {
	return []field{
		{"role", "master"},
		{"connected_slaves", "0"},
		{"master_failover_state", "no-failover"},
		{"master_replid", s.cfg.RunID},
		{"master_repl_offset", "0"},
	}
}

func (s *Server) cpuInfo(ctx context.Context, now time.Time) []field {
	u := cpuUsage()
	secs := func(d time.Duration) string {
		return fmt.Sprintf("%d.%06d", d/time.Second, (d%time.Second)/time.Microsecond)
	}
	return []field{
		{"used_cpu_sys", secs(u.sys)},
		{"used_cpu_user", secs(u.user)},
		{"used_cpu_sys_children", secs(u.childSys)},
		{"used_cpu_user_children", secs(u.childUser)},
	}
}

func (s *Server) clusterSection(ctx context.Context, now time.Time) []field {
	states := map[string]int64{}
	var adding int64
	for _, n := range s.cluster.NodeStatus() {
		states[n.State]++
		adding += int64(n.Learners)
	}
	f := []field{{"cluster_enabled", "1"}}
	for _, st := range []string{"live", "suspect", "dead", "decommissioning", "decommissioned"} {
		f = append(f, field{"shoal_nodes_" + st, itoa(states[st])})
	}
	return append(f, field{"shoal_replicas_being_added", itoa(adding)})
}

// keyspaceInfo counts the keys of the whole cluster (a DBSIZE fan-out).
// shoal does not count keys with a TTL, so expires and avg_ttl are always
// 0. Like Redis, an empty database prints no line; so does a count that
// cannot be had right now.
func (s *Server) keyspaceInfo(ctx context.Context, now time.Time) []field {
	n, _, ok := s.dbsize(ctx, false)
	if !ok || n == 0 {
		return nil
	}
	return []field{{"db0", "keys=" + itoa(n) + ",expires=0,avg_ttl=0"}}
}

// cmdTime is TIME: this node's clock as [seconds, microseconds].
func cmdTime(ctx context.Context, c *conn, args [][]byte) resp.Value {
	now := time.Now().UnixMicro()
	return resp.Array(resp.BulkString(itoa(now/1e6)), resp.BulkString(itoa(now%1e6)))
}
