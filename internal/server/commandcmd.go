package server

import (
	"context"
	"github.com/shoaldb/shoal/internal/acl"
	"strings"

	"github.com/shoaldb/shoal/internal/kv"
	"github.com/shoaldb/shoal/internal/resp"
)

// COMMAND and its subcommands describe the command table to clients.
//
// No command advertises request or response policies (command tips):
// shoal fans KEYS, DBSIZE, SCAN... out over the cluster itself, from any
// node, and a cluster client that fanned out too would count twice.

func commandContainer() *command {
	cmd := container("command", -1, "server", "Returns detailed information about all commands.", "2.8.13",
		subcommand("count", 2, cmdCommandCount, "2.8.13", "Returns a count of commands."),
		subcommand("info", -2, cmdCommandInfo, "2.8.13", "Returns information about one, multiple or all commands."),
		subcommand("docs", -2, cmdCommandDocs, "7.0.0", "Returns documentary information about one, multiple or all commands."),
		subcommand("list", -2, cmdCommandList, "7.0.0", "Returns a list of command names."),
		subcommand("getkeys", -3, cmdCommandGetKeys, "2.8.13", "Extracts the key names from an arbitrary command."),
		subcommand("help", 2, cmdCommandHelp, "5.0.0", "Returns helpful text about the subcommands."),
	)
	run := cmd.run
	cmd.run = func(ctx context.Context, c *conn, args [][]byte) resp.Value {
		if len(args) == 1 {
			c.setLastCmd("command")
			return allCommandInfo(c.srv.cmds)
		}
		return run(ctx, c, args)
	}
	return cmd
}

func allCommandInfo(t map[string]*command) resp.Value {
	cmds := sortedCommands(t)
	out := make([]resp.Value, len(cmds))
	for i, cmd := range cmds {
		out[i] = commandInfo(cmd)
	}
	return resp.Array(out...)
}

// commandInfo is one command in COMMAND INFO's Redis 7 form: name, arity,
// flags, first key, last key, key step, ACL categories, tips, key
// specifications, subcommands.
func commandInfo(cmd *command) resp.Value {
	subs := make([]resp.Value, 0, len(cmd.subs))
	for _, sub := range sortedCommands(cmd.subs) {
		subs = append(subs, commandInfo(sub))
	}
	return resp.Array(
		resp.BulkString(cmd.name),
		resp.Int(int64(cmd.arity)),
		simpleSet(cmd.flags),
		resp.Int(int64(cmd.firstKey)),
		resp.Int(int64(cmd.lastKey)),
		resp.Int(int64(cmd.step)),
		simpleSet(cmd.cats.Names()),
		resp.Array(),
		resp.Array(),
		resp.Array(subs...),
	)
}

func simpleSet(ss []string) resp.Value {
	elems := make([]resp.Value, len(ss))
	for i, s := range ss {
		elems[i] = resp.Simple(s)
	}
	return resp.Set(elems...)
}

// findCommand finds a command or, as "parent|sub", a subcommand.
func findCommand(t map[string]*command, name []byte) *command {
	parent, sub, ok := strings.Cut(string(name), "|")
	cmd := lookupIn(t, []byte(parent))
	if !ok || cmd == nil {
		return cmd
	}
	return lookupIn(cmd.subs, []byte(sub))
}

func cmdCommandCount(ctx context.Context, c *conn, args [][]byte) resp.Value {
	return resp.Int(int64(len(c.srv.cmds)))
}

// cmdCommandInfo is COMMAND INFO [name ...]: null for unknown names.
func cmdCommandInfo(ctx context.Context, c *conn, args [][]byte) resp.Value {
	if len(args) == 2 {
		return allCommandInfo(c.srv.cmds)
	}
	out := make([]resp.Value, 0, len(args)-2)
	for _, name := range args[2:] {
		if cmd := findCommand(c.srv.cmds, name); cmd != nil {
			out = append(out, commandInfo(cmd))
		} else {
			out = append(out, resp.Null)
		}
	}
	return resp.Array(out...)
}

// cmdCommandDocs is COMMAND DOCS [name ...]: a map of name to docs,
// without unknown names.
func cmdCommandDocs(ctx context.Context, c *conn, args [][]byte) resp.Value {
	var cmds []*command
	if len(args) == 2 {
		cmds = sortedCommands(c.srv.cmds)
	} else {
		for _, name := range args[2:] {
			if cmd := findCommand(c.srv.cmds, name); cmd != nil {
				cmds = append(cmds, cmd)
			}
		}
	}
	elems := make([]resp.Value, 0, 2*len(cmds))
	for _, cmd := range cmds {
		elems = append(elems, resp.BulkString(cmd.name), commandDocs(cmd))
	}
	return resp.Map(elems...)
}

// commandDocs is the docs map of one command: the three mandatory fields,
// and the subcommands of a container. Arguments are not described.
func commandDocs(cmd *command) resp.Value {
	elems := []resp.Value{
		resp.BulkString("summary"), resp.BulkString(cmd.summary),
		resp.BulkString("since"), resp.BulkString(cmd.since),
		resp.BulkString("group"), resp.BulkString(cmd.group),
	}
	if len(cmd.subs) > 0 {
		var subs []resp.Value
		for _, sub := range sortedCommands(cmd.subs) {
			subs = append(subs, resp.BulkString(sub.name), commandDocs(sub))
		}
		elems = append(elems, resp.BulkString("subcommands"), resp.Map(subs...))
	}
	return resp.Map(elems...)
}

// cmdCommandList is COMMAND LIST [FILTERBY MODULE name | ACLCAT cat |
// PATTERN pattern].
func cmdCommandList(ctx context.Context, c *conn, args [][]byte) resp.Value {
	keep := func(*command) bool { return true }
	switch {
	case len(args) == 2:
	case len(args) == 5 && strings.EqualFold(string(args[2]), "filterby"):
		arg := strings.ToLower(string(args[4]))
		switch strings.ToLower(string(args[3])) {
		case "module":
			keep = func(*command) bool { return false } // shoal has no modules
		case "aclcat":
			keep = func(cmd *command) bool {
				c, ok := acl.CategoryByName(strings.TrimPrefix(arg, "@"))
				return ok && cmd.cats&c != 0
			}
		case "pattern":
			keep = func(cmd *command) bool { return kv.Match([]byte(arg), []byte(cmd.name)) }
		default:
			return errSyntax
		}
	default:
		return errSyntax
	}
	var out []resp.Value
	for _, cmd := range sortedCommands(c.srv.cmds) {
		if keep(cmd) {
			out = append(out, resp.BulkString(cmd.name))
		}
		for _, sub := range sortedCommands(cmd.subs) {
			if keep(sub) {
				out = append(out, resp.BulkString(sub.name))
			}
		}
	}
	return resp.Array(out...)
}

// cmdCommandGetKeys is COMMAND GETKEYS command [arg ...].
func cmdCommandGetKeys(ctx context.Context, c *conn, args [][]byte) resp.Value {
	target := args[2:]
	cmd := c.srv.lookup(target[0])
	if cmd == nil {
		return resp.Err("ERR Invalid command specified")
	}
	if !cmd.arityOK(len(target)) {
		return resp.Err("ERR Invalid number of arguments specified for command")
	}
	var ks [][]byte
	if cmd.spec != nil {
		ks = cmd.spec.Keys(target)
	}
	if len(ks) == 0 {
		return resp.Err("ERR The command has no key arguments")
	}
	out := make([]resp.Value, len(ks))
	for i, k := range ks {
		out[i] = resp.Bulk(k)
	}
	return resp.Array(out...)
}

func cmdCommandHelp(ctx context.Context, c *conn, args [][]byte) resp.Value {
	return help("command",
		"(no subcommand)",
		"    Return details about all commands.",
		"COUNT",
		"    Return the total number of commands.",
		"DOCS [<command-name> ...]",
		"    Return documentation details about commands (summary, since, group).",
		"GETKEYS <full-command>",
		"    Return the keys from a full command.",
		"INFO [<command-name> ...]",
		"    Return details about commands.",
		"LIST [FILTERBY (MODULE <module-name>|ACLCAT <category>|PATTERN <pattern>)]",
		"    Return a list of all commands in this server.",
	)
}

func cmdClientHelp(ctx context.Context, c *conn, args [][]byte) resp.Value {
	return help("client",
		"GETNAME",
		"    Return the name of the current connection.",
		"ID",
		"    Return the ID of the current connection.",
		"INFO",
		"    Return information about the current client connection.",
		"LIST [TYPE <type>] [ID <id> [<id> ...]]",
		"    Return information about client connections.",
		"NO-EVICT (ON|OFF)",
		"    Accepted for compatibility: shoal never evicts.",
		"NO-TOUCH (ON|OFF)",
		"    Accepted for compatibility: shoal keeps no access times.",
		"SETINFO <option> <value>",
		"    Set client meta attr. Options are LIB-NAME and LIB-VER.",
		"SETNAME <name>",
		"    Assign the name <name> to the current connection.",
	)
}
