package server

import (
	"fmt"
	"slices"
	"strings"

	"github.com/shoaldb/shoal/internal/acl"
	"github.com/shoaldb/shoal/internal/kv"
)

// commandCategories are the ACL categories of every command and
// subcommand, as Redis 7.2 assigns them (TestCategoriesMatchRedis checks
// them against a real redis-server when one is installed). Commands of
// shoal's own have the categories of the Redis commands they resemble.
var commandCategories = map[string]string{
	// strings
	"get": "@read @string @fast", "set": "@write @string @slow", "setnx": "@write @string @fast",
	"setex": "@write @string @slow", "psetex": "@write @string @slow", "getset": "@write @string @fast",
	"getdel": "@write @string @fast", "getex": "@write @string @fast", "mget": "@read @string @fast",
	"mset": "@write @string @slow", "msetnx": "@write @string @slow", "append": "@write @string @fast",
	"strlen": "@read @string @fast", "incr": "@write @string @fast", "decr": "@write @string @fast",
	"incrby": "@write @string @fast", "decrby": "@write @string @fast", "incrbyfloat": "@write @string @fast",
	"getrange": "@read @string @slow", "substr": "@read @string @slow", "setrange": "@write @string @slow",
	// keyspace
	"del": "@keyspace @write @slow", "unlink": "@keyspace @write @fast", "exists": "@keyspace @read @fast",
	"touch": "@keyspace @read @fast", "type": "@keyspace @read @fast", "expire": "@keyspace @write @fast",
	"pexpire": "@keyspace @write @fast", "expireat": "@keyspace @write @fast", "pexpireat": "@keyspace @write @fast",
	"ttl": "@keyspace @read @fast", "pttl": "@keyspace @read @fast", "expiretime": "@keyspace @read @fast",
	"pexpiretime": "@keyspace @read @fast", "persist": "@keyspace @write @fast", "rename": "@keyspace @write @slow",
	"renamenx": "@keyspace @write @fast", "object": "@keyspace @read @slow", "memory": "@read @slow",
	"keys": "@keyspace @read @slow @dangerous", "dbsize": "@keyspace @read @fast", "randomkey": "@keyspace @read @slow",
	"flushall": "@keyspace @write @slow @dangerous", "flushdb": "@keyspace @write @slow @dangerous",
	"scan": "@keyspace @read @slow",
	// connection
	"ping": "@fast @connection", "echo": "@fast @connection", "hello": "@fast @connection",
	"auth": "@fast @connection", "select": "@fast @connection", "quit": "@fast @connection",
	"reset": "@fast @connection", "readonly": "@fast @connection", "readwrite": "@fast @connection",
	"asking": "@fast @connection",
	"client": "@slow", "client|id": "@slow @connection", "client|setname": "@slow @connection",
	"client|getname": "@slow @connection", "client|info": "@slow @connection",
	"client|list": "@admin @slow @dangerous @connection", "client|setinfo": "@slow @connection",
	"client|no-evict": "@admin @slow @dangerous @connection", "client|no-touch": "@slow @connection",
	"client|help": "@slow @connection",
	// server
	"info": "@slow @dangerous", "time": "@fast",
	"config": "@slow", "config|get": "@admin @slow @dangerous", "config|set": "@admin @slow @dangerous",
	"config|resetstat": "@admin @slow @dangerous", "config|rewrite": "@admin @slow @dangerous",
	"config|help": "@slow",
	"command":     "@slow @connection", "command|count": "@slow @connection", "command|docs": "@slow @connection",
	"command|info": "@slow @connection", "command|list": "@slow @connection",
	"command|getkeys": "@slow @connection", "command|help": "@slow @connection",
	"cluster": "@slow", "cluster|slots": "@slow", "cluster|shards": "@slow", "cluster|nodes": "@slow",
	"cluster|info": "@slow", "cluster|myid": "@slow", "cluster|keyslot": "@slow",
	"cluster|countkeysinslot": "@slow", "cluster|getkeysinslot": "@slow", "cluster|help": "@slow",
	"acl": "@slow", "acl|setuser": "@admin @slow @dangerous", "acl|getuser": "@admin @slow @dangerous",
	"acl|deluser": "@admin @slow @dangerous", "acl|list": "@admin @slow @dangerous",
	"acl|users": "@admin @slow @dangerous", "acl|whoami": "@slow", "acl|cat": "@slow",
	"acl|dryrun": "@admin @slow @dangerous", "acl|log": "@admin @slow @dangerous", "acl|genpass": "@slow",
	"acl|load": "@admin @slow @dangerous", "acl|save": "@admin @slow @dangerous", "acl|help": "@slow",
	// shoal's own, as CLUSTER's subcommands that change the cluster
	"shoal": "@slow", "shoal|nodes": "@admin @slow @dangerous",
	"shoal|decommission": "@admin @slow @dangerous", "shoal|help": "@slow",
}

// keyAccess says what each keyed command does with its keys, as Redis's
// key specifications do: "R" reads the value (ACCESS), "W" inserts,
// updates or deletes, "" neither (EXISTS, TTL's existence check...).
// One entry applies to every key; several apply to the keys in order
// (RENAME reads and deletes its source, writes its destination).
var keyAccess = map[string][]string{
	"get": {"R"}, "set": {"W"}, "setnx": {"W"}, "setex": {"W"}, "psetex": {"W"}, "getset": {"RW"},
	"getdel": {"RW"}, "getex": {"RW"}, "mget": {"R"}, "mset": {"W"}, "msetnx": {"W"}, "append": {"W"},
	"strlen": {""}, "incr": {"RW"}, "decr": {"RW"}, "incrby": {"RW"}, "decrby": {"RW"},
	"incrbyfloat": {"RW"}, "getrange": {"R"}, "substr": {"R"}, "setrange": {"W"},
	"del": {"W"}, "unlink": {"W"}, "exists": {""}, "touch": {""}, "type": {""},
	"expire": {"W"}, "pexpire": {"W"}, "expireat": {"W"}, "pexpireat": {"W"},
	"ttl": {"R"}, "pttl": {"R"}, "expiretime": {"R"}, "pexpiretime": {"R"}, "persist": {"W"},
	"rename": {"RW", "W"}, "renamenx": {"RW", "W"}, "object": {""}, "memory": {""},
}

// setAccess is SET's access to its key: with GET it also reads the value.
func setAccess(args [][]byte) acl.KeyAccess {
	for _, a := range args[3:] {
		if strings.EqualFold(string(a), "get") {
			return acl.Read | acl.Write
		}
	}
	return acl.Write
}

func parseAccess(s string) acl.KeyAccess {
	var a acl.KeyAccess
	if strings.Contains(s, "R") {
		a |= acl.Read
	}
	if strings.Contains(s, "W") {
		a |= acl.Write
	}
	return a
}

// newACLTable gives each command of t its categories and key access and
// returns the table the ACL checks users against. A command without
// categories is a bug in commandCategories: it panics, at start-up.
func newACLTable(t map[string]*command) *acl.Table {
	var cmds []*acl.Command
	for _, cmd := range sortedCommands(t) {
		cmds = append(cmds, aclCommand(cmd))
	}
	return acl.NewTable(cmds)
}

func aclCommand(cmd *command) *acl.Command {
	spec, ok := commandCategories[cmd.name]
	if !ok {
		panic(fmt.Sprintf("server: command %q has no ACL categories", cmd.name))
	}
	for _, name := range strings.Fields(spec) {
		c, ok := acl.CategoryByName(strings.TrimPrefix(name, "@"))
		if !ok {
			panic(fmt.Sprintf("server: command %q: unknown category %q", cmd.name, name))
		}
		cmd.cats |= c
	}
	for _, a := range keyAccess[cmd.name] {
		cmd.access = append(cmd.access, parseAccess(a))
	}
	if cmd.firstKey > 0 && len(cmd.access) == 0 {
		panic(fmt.Sprintf("server: keyed command %q has no key access", cmd.name))
	}
	ac := &acl.Command{Name: cmd.name, Categories: cmd.cats, NoAuth: slices.Contains(cmd.flags, "no_auth")}
	for _, sub := range sortedCommands(cmd.subs) {
		ac.Subs = append(ac.Subs, aclCommand(sub))
	}
	cmd.acl = ac
	return ac
}

// keyRefs returns the key arguments of args and what cmd does with each.
func (cmd *command) keyRefs(args [][]byte) []acl.KeyRef {
	var refs []acl.KeyRef
	for n, i := range kv.KeyIndexes(cmd.firstKey, cmd.lastKey, cmd.step, len(args)) {
		a := cmd.access[min(n, len(cmd.access)-1)]
		if cmd.name == "set" {
			a = setAccess(args)
		}
		refs = append(refs, acl.KeyRef{Index: i, Access: a})
	}
	return refs
}
