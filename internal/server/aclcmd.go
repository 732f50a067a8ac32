package server

import (
	"context"
	"crypto/rand"
	"strconv"
	"strings"
	"time"

	"github.com/shoaldb/shoal/internal/acl"
	"github.com/shoaldb/shoal/internal/resp"
)

// aclContainer is the ACL command. Users live in the meta shard: a
// change made on any node is in force on every node, and survives
// restarts, without ACL SAVE or LOAD.
func aclContainer() *command {
	return container("acl", -2, "server", "A container for Access List Control commands.", "6.0.0",
		subcommand("setuser", -3, cmdACLSetUser, "6.0.0", "Creates and modifies a user and its rules, on every node."),
		subcommand("getuser", 3, cmdACLGetUser, "6.0.0", "Lists the ACL rules of a user."),
		subcommand("deluser", -3, cmdACLDelUser, "6.0.0", "Deletes users, on every node, and closes their connections."),
		subcommand("list", 2, cmdACLList, "6.0.0", "Dumps the effective rules in ACL file format."),
		subcommand("users", 2, cmdACLUsers, "6.0.0", "Lists all users."),
		subcommand("whoami", 2, cmdACLWhoAmI, "6.0.0", "Returns the authenticated username of the current connection."),
		subcommand("cat", -2, cmdACLCat, "6.0.0", "Lists the ACL categories, or the commands inside a category."),
		subcommand("dryrun", -4, cmdACLDryRun, "7.0.0", "Simulates the execution of a command by a user, without executing the command."),
		subcommand("log", -2, cmdACLLog, "6.0.0", "Lists recent security events: refused commands, keys, channels and AUTHs."),
		subcommand("genpass", -2, cmdACLGenPass, "6.0.0", "Generates a pseudorandom, secure password that can be used to identify ACL users."),
		subcommand("load", 2, cmdACLFile, "6.0.0", "Not supported: users are kept in the cluster, not in a file."),
		subcommand("save", 2, cmdACLFile, "6.0.0", "Not supported: users are kept in the cluster, not in a file."),
		subcommand("help", 2, cmdACLHelp, "6.0.0", "Returns helpful text about the subcommands."),
	)
}

func cmdACLSetUser(ctx context.Context, c *conn, args [][]byte) resp.Value {
	ops, errv, ok := c.srv.prepareSetUser(args[2], args[3:])
	if !ok {
		return errv
	}
	return c.srv.changeUsers(func() (resp.Value, error) {
		return c.srv.cluster.SetUser(ctx, string(args[2]), ops)
	})
}

func cmdACLDelUser(ctx context.Context, c *conn, args [][]byte) resp.Value {
	names := make([]string, 0, len(args)-2)
	for _, a := range args[2:] {
		if string(a) == "default" {
			return resp.Err("ERR The 'default' user cannot be removed")
		}
		names = append(names, string(a))
	}
	return c.srv.changeUsers(func() (resp.Value, error) { return c.srv.cluster.DelUsers(ctx, names) })
}

// changeUsers runs a change of the users and translates its error.
func (s *Server) changeUsers(change func() (resp.Value, error)) resp.Value {
	if s.cluster.Users() == nil {
		return errLoadingUsers
	}
	v, err := change()
	if err != nil {
		return s.errorReply(err)
	}
	return v
}

// knownUsers returns the users this node knows, or the reply to give.
func knownUsers(c *conn) (Users, resp.Value, bool) {
	users := c.srv.cluster.Users()
	if users == nil {
		return nil, errLoadingUsers, false
	}
	return users, resp.Value{}, true
}

func cmdACLGetUser(ctx context.Context, c *conn, args [][]byte) resp.Value {
	users, errv, ok := knownUsers(c)
	if !ok {
		return errv
	}
	u, ok := users.User(string(args[2]))
	if !ok {
		return resp.Null
	}
	strs := func(ss []string) resp.Value {
		vs := make([]resp.Value, len(ss))
		for i, s := range ss {
			vs[i] = resp.BulkString(s)
		}
		return resp.Array(vs...)
	}
	selector := func(s *acl.Selector) []resp.Value {
		return []resp.Value{
			resp.BulkString("commands"), resp.BulkString(s.DescribeCommands()),
			resp.BulkString("keys"), resp.BulkString(s.DescribeKeys()),
			resp.BulkString("channels"), resp.BulkString(s.DescribeChannels()),
		}
	}
	fields := []resp.Value{
		resp.BulkString("flags"), strs(u.Flags()),
		resp.BulkString("passwords"), strs(u.Passwords),
	}
	fields = append(fields, selector(u.Selectors[0])...)
	var sels []resp.Value
	for _, s := range u.Selectors[1:] {
		sels = append(sels, resp.Map(selector(s)...))
	}
	fields = append(fields, resp.BulkString("selectors"), resp.Array(sels...))
	return resp.Map(fields...)
}

func cmdACLList(ctx context.Context, c *conn, args [][]byte) resp.Value {
	return eachUser(c, func(name string, u *acl.User) string { return "user " + name + " " + u.Describe() })
}

func cmdACLUsers(ctx context.Context, c *conn, args [][]byte) resp.Value {
	return eachUser(c, func(name string, _ *acl.User) string { return name })
}

// eachUser replies line(user) for every user, in name order.
func eachUser(c *conn, line func(name string, u *acl.User) string) resp.Value {
	users, errv, ok := knownUsers(c)
	if !ok {
		return errv
	}
	var out []resp.Value
	for _, name := range users.UserNames() {
		u, _ := users.User(name)
		out = append(out, resp.BulkString(line(name, u)))
	}
	return resp.Array(out...)
}

func cmdACLWhoAmI(ctx context.Context, c *conn, args [][]byte) resp.Value {
	return resp.BulkString(c.auth.name)
}

func cmdACLCat(ctx context.Context, c *conn, args [][]byte) resp.Value {
	var names []string
	if len(args) == 2 {
		names = acl.CategoryNames()
	} else if len(args) == 3 {
		cat, ok := acl.CategoryByName(string(args[2]))
		if !ok {
			return resp.Err(sanitize("ERR Unknown category '" + string(truncate(args[2], 128)) + "'"))
		}
		names = c.srv.aclTable.InCategory(cat)
	} else {
		return wrongArity("acl|cat")
	}
	out := make([]resp.Value, len(names))
	for i, n := range names {
		out[i] = resp.BulkString(n)
	}
	return resp.Array(out...)
}

// cmdACLDryRun is ACL DRYRUN user command [arg...]: whether the user may
// run the command, without running it.
func cmdACLDryRun(ctx context.Context, c *conn, args [][]byte) resp.Value {
	users, errv, ok := knownUsers(c)
	if !ok {
		return errv
	}
	u, ok := users.User(string(args[2]))
	if !ok {
		return resp.Err(sanitize("ERR User '" + string(truncate(args[2], 128)) + "' not found"))
	}
	cargs := args[3:]
	cmd := c.srv.lookup(cargs[0])
	if cmd != nil && cmd.subs != nil {
		cmd = nil
		if len(cargs) >= 2 {
			cmd = lookupIn(c.srv.lookup(cargs[0]).subs, cargs[1])
		}
	}
	if cmd == nil {
		return resp.Err(sanitize("ERR Command '" + string(truncate(cargs[0], 128)) + "' not found"))
	}
	if !cmd.arityOK(len(cargs)) {
		return resp.Err("ERR wrong number of arguments for '" + cmd.name + "' command")
	}
	d, at := c.srv.aclTable.Compile(u).Check(cmd.acl, cargs, cmd.keyRefs(cargs), nil)
	switch d {
	case acl.DeniedCommand:
		return resp.BulkString("This user has no permissions to run the '" + cmd.name + "' command")
	case acl.DeniedKey:
		return resp.BulkString("This user has no permissions to access the '" + string(cargs[at]) + "' key")
	case acl.DeniedChannel:
		return resp.BulkString("This user has no permissions to access the '" + string(cargs[at]) + "' channel")
	}
	return resp.OK
}

// cmdACLLog is ACL LOG [count | RESET].
func cmdACLLog(ctx context.Context, c *conn, args [][]byte) resp.Value {
	count := int64(10)
	if len(args) == 3 {
		if strings.EqualFold(string(args[2]), "reset") {
			c.srv.aclLog.Reset()
			return resp.OK
		}
		n, err := strconv.ParseInt(string(args[2]), 10, 64)
		if err != nil {
			return errNotInteger
		}
		count = max(n, 0)
	} else if len(args) > 3 {
		return wrongArity("acl|log")
	}
	now := time.Now().UnixMilli()
	entries := c.srv.aclLog.Entries(int(min(count, acl.DefaultLogLen*16)))
	out := make([]resp.Value, len(entries))
	for i, e := range entries {
		out[i] = resp.Map(
			resp.BulkString("count"), resp.Int(e.Count),
			resp.BulkString("reason"), resp.BulkString(e.Reason.String()),
			resp.BulkString("context"), resp.BulkString(e.Context),
			resp.BulkString("object"), resp.BulkString(e.Object),
			resp.BulkString("username"), resp.BulkString(e.Username),
			resp.BulkString("age-seconds"), resp.Double(float64(now-e.UpdatedMs)/1000),
			resp.BulkString("client-info"), resp.BulkString(e.ClientInfo),
			resp.BulkString("entry-id"), resp.Int(e.ID),
			resp.BulkString("timestamp-created"), resp.Int(e.CreatedMs),
			resp.BulkString("timestamp-last-updated"), resp.Int(e.UpdatedMs),
		)
	}
	return resp.Array(out...)
}

const genPassMaxBits = 4096

func cmdACLGenPass(ctx context.Context, c *conn, args [][]byte) resp.Value {
	bits := int64(256)
	if len(args) == 3 {
		n, err := strconv.ParseInt(string(args[2]), 10, 64)
		if err != nil {
			return errNotInteger
		}
		bits = n
	} else if len(args) > 3 {
		return wrongArity("acl|genpass")
	}
	if bits <= 0 || bits > genPassMaxBits {
		return resp.Err("ERR ACL GENPASS argument must be the number of bits for the output password, " +
			"a positive number up to " + strconv.Itoa(genPassMaxBits))
	}
	return resp.BulkString(acl.GenPass(int(bits), rand.Reader))
}

func cmdACLFile(ctx context.Context, c *conn, args [][]byte) resp.Value {
	return resp.Err("ERR shoal keeps users in the cluster, not in an ACL file: ACL SETUSER and ACL DELUSER " +
		"change every node at once and survive restarts")
}

func cmdACLHelp(ctx context.Context, c *conn, args [][]byte) resp.Value {
	return help("acl",
		"CAT [<category>]",
		"    List all commands that belong to <category>, or all command categories",
		"    when no category is specified.",
		"DELUSER <username> [<username> ...]",
		"    Delete a list of users, on every node.",
		"DRYRUN <username> <command> [<arg> ...]",
		"    Returns whether the user can execute the given command without executing the command.",
		"GETUSER <username>",
		"    Get the user's details.",
		"GENPASS [<bits>]",
		"    Generate a secure 256-bit user password. The optional `bits` argument can",
		"    be used to specify a different size.",
		"LIST",
		"    Show users details in config file format.",
		"LOG [<count> | RESET]",
		"    Show the ACL log entries.",
		"SETUSER <username> <attribute> [<attribute> ...]",
		"    Create or modify a user with the specified attributes, on every node.",
		"USERS",
		"    List all the registered usernames.",
		"WHOAMI",
		"    Return the current connection username.",
	)
}
