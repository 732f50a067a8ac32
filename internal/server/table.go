package server

import (
	"context"
	"slices"
	"strings"

	"github.com/shoaldb/shoal/internal/acl"
	"github.com/shoaldb/shoal/internal/kv"
	"github.com/shoaldb/shoal/internal/resp"
)

// handler runs one command for connection c. args[0] is the command name
// as the client sent it; args alias the connection's read buffer and are
// valid only until the handler returns.
type handler func(ctx context.Context, c *conn, args [][]byte) resp.Value

// command is one entry of the command table.
type command struct {
	name  string // lower case; "parent|sub" for a subcommand
	arity int    // Redis convention: n means exactly n args, -n at least n
	run   handler

	// What COMMAND reports.
	flags                   []string // Redis command flags ("write", "fast"...)
	cats                    acl.Category
	firstKey, lastKey, step int
	// access is what the command does with its keys (keyAccess).
	access []acl.KeyAccess
	// acl is the command as the ACL sees it (newACLTable).
	acl                   *acl.Command
	group, summary, since string

	spec *kv.Spec            // for commands kv implements
	subs map[string]*command // for containers (CLIENT, CLUSTER...), by lower-case name
}

func (cmd *command) arityOK(n int) bool {
	if cmd.arity >= 0 {
		return n == cmd.arity
	}
	return n >= -cmd.arity
}

// newCommandTable returns every command a client may send: the connection
// and server commands handled here, then every non-internal kv command.
func newCommandTable() map[string]*command {
	t := make(map[string]*command)
	for _, cmd := range serverCommands() {
		t[cmd.name] = cmd
	}
	for _, sp := range kv.Specs() {
		if sp.Flags&kv.Internal != 0 {
			continue
		}
		name := strings.ToLower(sp.Name)
		if _, ok := t[name]; ok {
			continue // the server's own command wins
		}
		t[name] = kvCommand(sp, name)
	}
	return t
}

// kvCommand returns the table entry of a kv command: per-shard commands
// (kv.AllShards) fan out over the cluster, the others are routed by key.
func kvCommand(sp *kv.Spec, name string) *command {
	cmd := &command{
		name:     name,
		arity:    sp.Arity,
		firstKey: sp.FirstKey,
		lastKey:  sp.LastKey,
		step:     sp.Step,
		spec:     sp,
	}
	for _, f := range sp.Flags.Names() {
		if redisFlags[f] {
			cmd.flags = append(cmd.flags, f)
		}
	}
	cmd.run = func(ctx context.Context, c *conn, args [][]byte) resp.Value {
		return runKV(ctx, c, cmd, args)
	}
	if sp.Flags&kv.AllShards != 0 {
		cmd.run = fanoutHandlers[name]
		if cmd.run == nil {
			cmd.run = unsupportedFanout
		}
	}
	cmd.group, cmd.summary, cmd.since = kvDoc(name)
	return cmd
}

// redisFlags are the command flags Redis reports in COMMAND; kv flags that
// are not among them are shoal's own and stay internal.
var redisFlags = map[string]bool{
	"write": true, "readonly": true, "denyoom": true, "admin": true,
	"pubsub": true, "noscript": true, "blocking": true, "loading": true,
	"stale": true, "fast": true, "no_auth": true, "may_replicate": true,
	"movablekeys": true, "no_mandatory_keys": true, "no_multi": true,
	"allow_busy": true, "skip_slowlog": true, "skip_monitor": true,
}

// lookup returns the command named name, in any case, or nil.
func (s *Server) lookup(name []byte) *command {
	return lookupIn(s.cmds, name)
}

func lookupIn(t map[string]*command, name []byte) *command {
	var buf [32]byte
	if len(name) > len(buf) {
		return nil // longer than any command name
	}
	low := buf[:len(name)]
	for i, b := range name {
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		low[i] = b
	}
	return t[string(low)]
}

// container returns a command that dispatches to subcommands; each
// subcommand's arity counts the container's name too, as in Redis.
func container(name string, arity int, group, summary, since string, subs ...*command) *command {
	cmd := &command{
		name: name, arity: arity, group: group, summary: summary, since: since,
		subs: make(map[string]*command, len(subs)),
	}
	for _, sub := range subs {
		sub.name = name + "|" + sub.name
		if sub.group == "" {
			sub.group = group
		}
		if sub.since == "" {
			sub.since = since
		}
		cmd.subs[strings.TrimPrefix(sub.name, name+"|")] = sub
	}
	cmd.run = func(ctx context.Context, c *conn, args [][]byte) resp.Value {
		return runSub(ctx, c, cmd, args)
	}
	return cmd
}

// runSub runs the subcommand named by args[1] of container cmd.
func runSub(ctx context.Context, c *conn, cmd *command, args [][]byte) resp.Value {
	sub := lookupIn(cmd.subs, args[1])
	if sub == nil {
		return unknownSubcommand(cmd.name, args[1])
	}
	if !sub.arityOK(len(args)) {
		return wrongArity(sub.name)
	}
	c.setLastCmd(sub.name)
	return sub.run(ctx, c, args)
}

// sortedCommands returns the commands of t ordered by name.
func sortedCommands(t map[string]*command) []*command {
	cmds := make([]*command, 0, len(t))
	for _, cmd := range t {
		cmds = append(cmds, cmd)
	}
	slices.SortFunc(cmds, func(a, b *command) int { return strings.Compare(a.name, b.name) })
	return cmds
}

// Error replies shared by many commands, worded as Redis 7 words them.
var (
	errSyntax     = resp.Err("ERR syntax error")
	errNotInteger = resp.Err("ERR value is not an integer or out of range")
)

// unknownCommand is Redis's reply to an unknown command: the name and the
// start of the arguments, each cut to 128 bytes.
func unknownCommand(args [][]byte) resp.Value {
	var b strings.Builder
	b.WriteString("ERR unknown command '")
	b.Write(truncate(args[0], 128))
	b.WriteString("', with args beginning with: ")
	start := b.Len()
	for _, a := range args[1:] {
		used := b.Len() - start
		if used >= 128 {
			break
		}
		b.WriteByte('\'')
		b.Write(truncate(a, 128-used))
		b.WriteString("' ")
	}
	return resp.Err(sanitize(b.String()))
}

// unknownSubcommand is Redis's reply to an unknown subcommand of parent.
func unknownSubcommand(parent string, sub []byte) resp.Value {
	return resp.Err(sanitize("ERR unknown subcommand '" + string(truncate(sub, 128)) +
		"'. Try " + strings.ToUpper(parent) + " HELP."))
}

// wrongArity is Redis's reply to a command with a wrong number of arguments.
func wrongArity(name string) resp.Value {
	return resp.Err("ERR wrong number of arguments for '" + name + "' command")
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// sanitize makes msg safe in an error line, as Redis does: no CR or LF.
func sanitize(msg string) string {
	if !strings.ContainsAny(msg, "\r\n") {
		return msg
	}
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(msg)
}

// help returns a HELP reply: the usage line, then lines.
func help(name string, lines ...string) resp.Value {
	vs := make([]resp.Value, 0, len(lines)+3)
	vs = append(vs, resp.Simple(strings.ToUpper(name)+" <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"))
	for _, l := range lines {
		vs = append(vs, resp.Simple(l))
	}
	vs = append(vs, resp.Simple("HELP"), resp.Simple("    Print this help."))
	return resp.Array(vs...)
}
