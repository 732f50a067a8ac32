package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shoaldb/shoal/internal/kv"
	"github.com/shoaldb/shoal/internal/resp"
)

// param is one parameter of CONFIG GET and CONFIG SET. shoal takes its
// configuration from command-line flags; this table exists so that Redis
// tools reading or setting well-known parameters get sensible answers.
type param struct {
	name  string
	value func(s *Server) string
	// parse validates a CONFIG SET value and returns it normalized; nil
	// accepts any value.
	parse func(v string) (string, error)
	// set applies a parsed value; nil means the parameter is immutable.
	set func(s *Server, v string)
	// note says what the parameter means in shoal.
	note string
}

// fixed is an immutable parameter with a constant value.
func fixed(name, v, note string) param {
	return param{name: name, value: func(*Server) string { return v }, note: note}
}

// stored is a parameter CONFIG SET accepts and CONFIG GET reports but that
// has no effect in shoal.
func stored(name, dflt string, parse func(string) (string, error), note string) param {
	return param{
		name: name,
		value: func(s *Server) string {
			s.mu.Lock()
			defer s.mu.Unlock()
			if v, ok := s.mu.params[name]; ok {
				return v
			}
			return dflt
		},
		parse: parse,
		set: func(s *Server, v string) {
			s.mu.Lock()
			s.mu.params[name] = v
			s.mu.Unlock()
		},
		note: note + "; accepted and stored, no effect",
	}
}

var params = []param{
	{
		name: "protected-mode",
		value: func(s *Server) string {
			if s.protected.Load() {
				return "yes"
			}
			return "no"
		},
		parse: parseBool,
		set:   func(s *Server, v string) { s.protected.Store(v == "yes") },
		note:  "applies to new connections",
	},
	{
		name:  "acllog-max-len",
		value: func(s *Server) string { return itoa(int64(s.aclLog.Max())) },
		parse: parseInt(0, 1<<20),
		set: func(s *Server, v string) {
			n, _ := strconv.Atoi(v)
			s.aclLog.SetMax(n)
		},
		note: "entries ACL LOG keeps on this node",
	},
	{
		// CONFIG SET requirepass changes the default user's password on
		// every node (cmdConfigSet); the password cannot be read back.
		name: "requirepass", value: func(*Server) string { return "" },
		note: "sets the default user's passwords, cluster-wide; never shown",
	},
	fixed("appendonly", "yes", "every write is in the raft log on a majority's disk before it is acknowledged"),
	fixed("appendfsync", "always", "the raft log is synced before a write is acknowledged (group commit)"),
	{name: "bind", value: (*Server).bindValue, note: "from --addr"},
	{name: "port", value: func(s *Server) string { return strconv.Itoa(s.port()) }, note: "from --addr"},
	fixed("databases", "1", "cluster mode: only database 0"),
	fixed("cluster-enabled", "yes", "shoal always speaks Redis Cluster"),
	{
		name:  "maxclients",
		value: func(s *Server) string { return itoa(s.maxClients.Load()) },
		parse: parseInt(1, 1<<31-1),
		set: func(s *Server, v string) {
			n, _ := strconv.ParseInt(v, 10, 64)
			s.maxClients.Store(n)
		},
		note: "applies to new connections",
	},
	{
		name: "timeout",
		value: func(s *Server) string {
			return itoa(int64(time.Duration(s.idleTimeout.Load()) / time.Second))
		},
		parse: parseInt(0, 1<<31-1),
		set: func(s *Server, v string) {
			n, _ := strconv.ParseInt(v, 10, 64)
			s.idleTimeout.Store(int64(time.Duration(n) * time.Second))
		},
		note: "idle client timeout in seconds, 0 for none",
	},
	{
		name:  "proto-max-bulk-len",
		value: func(s *Server) string { return itoa(s.lim.maxBulkLen.Load()) },
		parse: memoryIn(1<<20, MaxMaxBulkLen),
		set:   func(s *Server, v string) { s.lim.maxBulkLen.Store(atoi(v)) },
		note:  "longest string a client may send or a write may build; at most 32mb in shoal",
	},
	{
		name:  "client-query-buffer-limit",
		value: func(s *Server) string { return itoa(s.lim.queryBuf.Load()) },
		parse: memoryIn(1<<20, 1<<30),
		set:   func(s *Server, v string) { s.lim.queryBuf.Store(atoi(v)) },
		note:  "longest command a client may send; a longer one closes the connection",
	},
	{
		name:  "client-output-buffer-limit",
		value: (*Server).outputLimitValue,
		parse: func(v string) (string, error) {
			_, _, _, _, err := parseOutputLimit(v)
			return v, err
		},
		set: func(s *Server, v string) {
			if hard, soft, secs, ok, _ := parseOutputLimit(v); ok {
				s.lim.outHard.Store(hard)
				s.lim.outSoft.Store(soft)
				s.lim.outSoftSecs.Store(secs)
			}
		},
		note: "normal class: a reply past the hard limit is refused, a client over the soft limit for its seconds is closed; other classes ignored",
	},
	{
		name:  "maxmemory",
		value: func(s *Server) string { return itoa(s.maxMemory()) },
		parse: parseMemory,
		set: func(s *Server, v string) {
			if s.cfg.Memory != nil {
				s.cfg.Memory.SetLimit(atoi(v))
			}
		},
		note: "above it (resident memory) writes that may grow memory answer -OOM; shoal never evicts",
	},
	{
		name:  "maxmemory-clients",
		value: func(s *Server) string { return clientMemString(s.lim.clientMem.Load()) },
		parse: parseClientMem,
		set:   func(s *Server, v string) { s.lim.clientMem.Store(clientMemValue(v)) },
		note:  "memory all client buffers may hold, or a percentage of maxmemory; a client that would pass it is closed",
	},
	fixed("tcp-keepalive", "300", "keep-alive period of client sockets"),
	fixed("daemonize", "no", "run shoal under a supervisor"),
	fixed("replica-read-only", "yes", "followers serve reads only to READONLY clients"),
	stored("maxmemory-policy", "noeviction", parseOneOf("noeviction", "allkeys-lru", "allkeys-lfu",
		"allkeys-random", "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"),
		"shoal never evicts"),
	stored("save", "", nil, "no RDB snapshots: durability comes from raft"),
	stored("hz", "10", parseInt(1, 500), "no background cycle to tune"),
	stored("loglevel", "notice", parseOneOf("debug", "verbose", "notice", "warning", "nothing"), "logging is set by flags"),
	stored("slowlog-log-slower-than", "10000", parseInt(-1, 1<<62), "no slow log yet"),
	stored("slowlog-max-len", "128", parseInt(0, 1<<31-1), "no slow log yet"),
	stored("latency-monitor-threshold", "0", parseInt(0, 1<<62), "no latency monitor yet"),
	stored("notify-keyspace-events", "", nil, "no keyspace notifications yet"),
	stored("lazyfree-lazy-user-flush", "no", parseBool, "flushes are raft commands"),
	stored("stop-writes-on-bgsave-error", "yes", parseBool, "no background saves"),
	stored("activedefrag", "no", parseBool, "the Go runtime manages memory"),
}

func (s *Server) bindValue() string {
	host, _, err := net.SplitHostPort(s.cfg.Addr)
	if err != nil || host == "" {
		return "*"
	}
	return host
}

func lookupParam(name string) *param {
	for i := range params {
		if params[i].name == name {
			return &params[i]
		}
	}
	return nil
}

func parseInt(lo, hi int64) func(string) (string, error) {
	return func(v string) (string, error) {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return "", errors.New("argument couldn't be parsed into an integer")
		}
		if n < lo || n > hi {
			return "", errors.New("argument must be between " + itoa(lo) + " and " + itoa(hi) + " inclusive")
		}
		return itoa(n), nil
	}
}

func parseBool(v string) (string, error) {
	switch v = strings.ToLower(v); v {
	case "yes", "no":
		return v, nil
	}
	return "", errors.New("argument must be 'yes' or 'no'")
}

func parseOneOf(choices ...string) func(string) (string, error) {
	return func(v string) (string, error) {
		if v = strings.ToLower(v); slices.Contains(choices, v) {
			return v, nil
		}
		return "", errors.New("argument(s) must be one of the following: " + strings.Join(choices, ", "))
	}
}

// ParseMemory parses a memory value with Redis's units (1k = 1000, 1kb =
// 1024, up to gb), as CONFIG SET and the command line take them.
func ParseMemory(v string) (int64, error) {
	n, err := parseMemory(v)
	if err != nil {
		return 0, fmt.Errorf("%q: %v", v, err)
	}
	return atoi(n), nil
}

// ParseOutputLimit parses the normal class of client-output-buffer-limit
// as the command line takes it: "hard soft seconds".
func ParseOutputLimit(v string) (hard, soft, secs int64, err error) {
	hard, soft, secs, _, err = parseOutputLimit("normal " + v)
	if err != nil {
		err = fmt.Errorf("%q: %v", v, err)
	}
	return hard, soft, secs, err
}

// memoryIn is parseMemory for values in [lo, hi] bytes.
func memoryIn(lo, hi int64) func(string) (string, error) {
	return func(v string) (string, error) {
		v, err := parseMemory(v)
		if err != nil {
			return "", err
		}
		if n := atoi(v); n < lo || n > hi {
			return "", errors.New("argument must be between " + itoa(lo) + " and " + itoa(hi) + " inclusive")
		}
		return v, nil
	}
}

func atoi(v string) int64 {
	n, _ := strconv.ParseInt(v, 10, 64)
	return n
}

// parseMemory accepts a byte count with Redis's units (1k = 1000,
// 1kb = 1024, up to gb) and returns it in bytes.
func parseMemory(v string) (string, error) {
	low := strings.ToLower(v)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"kb", 1 << 10}, {"mb", 1 << 20}, {"gb", 1 << 30}, {"k", 1e3}, {"m", 1e6}, {"g", 1e9}, {"b", 1}} {
		if strings.HasSuffix(low, u.suffix) {
			low, mult = strings.TrimSuffix(low, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(low, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return "", errors.New("argument must be a memory value")
	}
	return itoa(n * mult), nil
}

// cmdConfigGet is CONFIG GET pattern [pattern ...]: glob patterns over the
// parameter names, as a map of name to value.
func cmdConfigGet(ctx context.Context, c *conn, args [][]byte) resp.Value {
	return configGet(c.srv, args[2:])
}

func configGet(s *Server, patterns [][]byte) resp.Value {
	var elems []resp.Value
	for i := range params {
		p := &params[i]
		for _, pat := range patterns {
			if kv.Match([]byte(strings.ToLower(string(pat))), []byte(p.name)) {
				elems = append(elems, resp.BulkString(p.name), resp.BulkString(p.value(s)))
				break
			}
		}
	}
	return resp.Map(elems...)
}

// cmdConfigSet is CONFIG SET name value [name value ...]. It checks every
// pair before applying any, so it changes all of them or none.
func cmdConfigSet(ctx context.Context, c *conn, args [][]byte) resp.Value {
	if len(args)%2 != 0 {
		return wrongArity("config|set")
	}
	type change struct {
		p *param
		v string
	}
	var changes []change
	var requirePass []byte
	setPass := false
	for i := 2; i < len(args); i += 2 {
		name := strings.ToLower(string(args[i]))
		if name == "requirepass" && !setPass {
			requirePass, setPass = args[i+1], true
			continue
		}
		p := lookupParam(name)
		if p == nil {
			return resp.Err(sanitize("ERR Unknown option or number of arguments for CONFIG SET - '" + string(args[i]) + "'"))
		}
		fail := func(why string) resp.Value {
			return resp.Err(sanitize("ERR CONFIG SET failed (possibly related to argument '" + string(args[i]) + "') - " + why))
		}
		if p.set == nil {
			return fail("can't set immutable config")
		}
		if slices.ContainsFunc(changes, func(ch change) bool { return ch.p == p }) {
			return fail("duplicate parameter")
		}
		v := string(args[i+1])
		if p.parse != nil {
			var err error
			if v, err = p.parse(v); err != nil {
				return fail(err.Error())
			}
		}
		changes = append(changes, change{p, v})
	}
	// The password goes first: it is the one change that can fail.
	if setPass {
		if v := c.srv.setRequirePass(ctx, requirePass); v.IsError() {
			return v
		}
	}
	for _, ch := range changes {
		ch.p.set(c.srv, ch.v)
	}
	return resp.OK
}

func cmdConfigResetStat(ctx context.Context, c *conn, args [][]byte) resp.Value {
	c.srv.stats.reset()
	return resp.OK
}

func cmdConfigRewrite(ctx context.Context, c *conn, args [][]byte) resp.Value {
	return resp.Err("ERR CONFIG REWRITE is not supported: shoal takes its configuration from command-line flags")
}

func cmdConfigHelp(ctx context.Context, c *conn, args [][]byte) resp.Value {
	return help("config",
		"GET <pattern>",
		"    Return parameters matching the glob-like <pattern> and their values.",
		"SET <directive> <value>",
		"    Set the configuration <directive> to <value>.",
		"RESETSTAT",
		"    Reset statistics reported by the INFO command.",
		"REWRITE",
		"    Not supported: shoal's configuration comes from command-line flags.",
	)
}
