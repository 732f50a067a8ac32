package server

import "strings"

// kvDoc returns COMMAND DOCS' group, summary and since for a kv command.
// A command missing from the table is still documented, plainly.
func kvDoc(name string) (group, summary, since string) {
	if d, ok := kvDocs[name]; ok {
		return d.group, d.summary, d.since
	}
	return "generic", "Runs " + strings.ToUpper(name) + " on the shard owning its keys.", "1.0.0"
}

type doc struct{ group, since, summary string }

var kvDocs = map[string]doc{
	// string
	"get":         {"string", "1.0.0", "Returns the string value of a key."},
	"set":         {"string", "1.0.0", "Sets the string value of a key, with options for conditions and expiry."},
	"setnx":       {"string", "1.0.0", "Sets the string value of a key only if it does not exist."},
	"setex":       {"string", "2.0.0", "Sets the string value and expiry in seconds of a key."},
	"psetex":      {"string", "2.6.0", "Sets the string value and expiry in milliseconds of a key."},
	"getset":      {"string", "1.0.0", "Sets a key's string value and returns the previous one."},
	"getdel":      {"string", "6.2.0", "Returns the string value of a key and deletes the key."},
	"getex":       {"string", "6.2.0", "Returns the string value of a key and changes its expiry."},
	"mget":        {"string", "1.0.0", "Returns the string values of several keys."},
	"mset":        {"string", "1.0.1", "Sets the string values of several keys."},
	"msetnx":      {"string", "1.0.1", "Sets several keys only if none of them exists."},
	"incr":        {"string", "1.0.0", "Adds one to the integer value of a key."},
	"incrby":      {"string", "1.0.0", "Adds an integer to the integer value of a key."},
	"incrbyfloat": {"string", "2.6.0", "Adds a number to the floating point value of a key."},
	"decr":        {"string", "1.0.0", "Subtracts one from the integer value of a key."},
	"decrby":      {"string", "1.0.0", "Subtracts an integer from the integer value of a key."},
	"append":      {"string", "2.0.0", "Appends a string to the value of a key."},
	"strlen":      {"string", "2.2.0", "Returns the length of a key's string value."},
	"getrange":    {"string", "2.4.0", "Returns a substring of a key's string value."},
	"setrange":    {"string", "2.2.0", "Overwrites part of a key's string value from an offset."},
	// generic
	"del":         {"generic", "1.0.0", "Deletes keys."},
	"unlink":      {"generic", "4.0.0", "Deletes keys."},
	"exists":      {"generic", "1.0.0", "Counts how many of the given keys exist."},
	"expire":      {"generic", "1.0.0", "Sets a key's time to live in seconds."},
	"pexpire":     {"generic", "2.6.0", "Sets a key's time to live in milliseconds."},
	"expireat":    {"generic", "1.2.0", "Sets a key's expiry as a Unix time in seconds."},
	"pexpireat":   {"generic", "2.6.0", "Sets a key's expiry as a Unix time in milliseconds."},
	"expiretime":  {"generic", "7.0.0", "Returns a key's expiry as a Unix time in seconds."},
	"pexpiretime": {"generic", "7.0.0", "Returns a key's expiry as a Unix time in milliseconds."},
	"ttl":         {"generic", "1.0.0", "Returns a key's time to live in seconds."},
	"pttl":        {"generic", "2.6.0", "Returns a key's time to live in milliseconds."},
	"persist":     {"generic", "2.2.0", "Removes a key's expiry."},
	"type":        {"generic", "1.0.0", "Returns the type of value stored at a key."},
	"keys":        {"generic", "1.0.0", "Returns all key names matching a pattern, across the cluster."},
	"scan":        {"generic", "2.8.0", "Iterates over the key names of the cluster; the cursor is a slot."},
	"randomkey":   {"generic", "1.0.0", "Returns a random key name from the cluster."},
	"rename":      {"generic", "1.0.0", "Renames a key, overwriting the destination."},
	"renamenx":    {"generic", "1.0.0", "Renames a key only if the new name does not exist."},
	"touch":       {"generic", "3.2.1", "Counts how many of the given keys exist."},
	"copy":        {"generic", "6.2.0", "Copies the value of a key to a new key."},
	"dbsize":      {"server", "1.0.0", "Returns the number of keys in the cluster."},
	"flushall":    {"server", "1.0.0", "Deletes every key of the cluster."},
	"flushdb":     {"server", "1.0.0", "Deletes every key of the cluster."},
	// hash
	"hset":         {"hash", "2.0.0", "Sets fields of a hash, creating it if needed."},
	"hsetnx":       {"hash", "2.0.0", "Sets a field of a hash only if the field does not exist."},
	"hget":         {"hash", "2.0.0", "Returns the value of a field of a hash."},
	"hmget":        {"hash", "2.0.0", "Returns the values of several fields of a hash."},
	"hmset":        {"hash", "2.0.0", "Sets fields of a hash."},
	"hdel":         {"hash", "2.0.0", "Deletes fields of a hash."},
	"hexists":      {"hash", "2.0.0", "Reports whether a field exists in a hash."},
	"hlen":         {"hash", "2.0.0", "Returns the number of fields of a hash."},
	"hkeys":        {"hash", "2.0.0", "Returns the field names of a hash."},
	"hvals":        {"hash", "2.0.0", "Returns the values of a hash."},
	"hgetall":      {"hash", "2.0.0", "Returns the fields and values of a hash."},
	"hincrby":      {"hash", "2.0.0", "Adds an integer to the integer value of a field of a hash."},
	"hincrbyfloat": {"hash", "2.6.0", "Adds a number to the floating point value of a field of a hash."},
	"hstrlen":      {"hash", "3.2.0", "Returns the length of the value of a field of a hash."},
	"hscan":        {"hash", "2.8.0", "Iterates over the fields and values of a hash."},
	"hrandfield":   {"hash", "6.2.0", "Returns random fields of a hash."},
	// list
	"lpush":     {"list", "1.0.0", "Prepends elements to a list, creating it if needed."},
	"rpush":     {"list", "1.0.0", "Appends elements to a list, creating it if needed."},
	"lpushx":    {"list", "2.2.0", "Prepends elements to a list only if it exists."},
	"rpushx":    {"list", "2.2.0", "Appends elements to a list only if it exists."},
	"lpop":      {"list", "1.0.0", "Removes and returns the first elements of a list."},
	"rpop":      {"list", "1.0.0", "Removes and returns the last elements of a list."},
	"llen":      {"list", "1.0.0", "Returns the length of a list."},
	"lrange":    {"list", "1.0.0", "Returns a range of elements of a list."},
	"lindex":    {"list", "1.0.0", "Returns an element of a list by its index."},
	"lset":      {"list", "1.0.0", "Sets an element of a list by its index."},
	"lrem":      {"list", "1.0.0", "Removes elements equal to a value from a list."},
	"ltrim":     {"list", "1.0.0", "Keeps only a range of elements of a list."},
	"linsert":   {"list", "2.2.0", "Inserts an element before or after another in a list."},
	"lpos":      {"list", "6.0.6", "Returns the index of matching elements of a list."},
	"lmove":     {"list", "6.2.0", "Moves an element from one list to another."},
	"rpoplpush": {"list", "1.2.0", "Moves the last element of a list to the front of another."},
	// set
	"sadd":        {"set", "1.0.0", "Adds members to a set, creating it if needed."},
	"srem":        {"set", "1.0.0", "Removes members from a set."},
	"smembers":    {"set", "1.0.0", "Returns the members of a set."},
	"sismember":   {"set", "1.0.0", "Reports whether a value is a member of a set."},
	"smismember":  {"set", "6.2.0", "Reports whether each of several values is a member of a set."},
	"scard":       {"set", "1.0.0", "Returns the number of members of a set."},
	"spop":        {"set", "1.0.0", "Removes and returns random members of a set."},
	"srandmember": {"set", "1.0.0", "Returns random members of a set."},
	"sinter":      {"set", "1.0.0", "Returns the intersection of sets."},
	"sunion":      {"set", "1.0.0", "Returns the union of sets."},
	"sdiff":       {"set", "1.0.0", "Returns the difference of sets."},
	"sinterstore": {"set", "1.0.0", "Stores the intersection of sets in a key."},
	"sunionstore": {"set", "1.0.0", "Stores the union of sets in a key."},
	"sdiffstore":  {"set", "1.0.0", "Stores the difference of sets in a key."},
	"smove":       {"set", "1.0.0", "Moves a member from one set to another."},
	"sintercard":  {"set", "7.0.0", "Returns the number of members of the intersection of sets."},
	"sscan":       {"set", "2.8.0", "Iterates over the members of a set."},
}
