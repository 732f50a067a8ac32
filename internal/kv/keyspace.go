package kv

import (
	"bytes"
	"math"

	"github.com/shoaldb/shoal/internal/keys"
	"github.com/shoaldb/shoal/internal/resp"
)

// cmdDel implements DEL and UNLINK: both delete at once, since a record is
// removed from the batch in constant time whatever its size.
func cmdDel(d db, args [][]byte) (resp.Value, error) {
	var n int64
	for _, key := range args[1:] {
		rec, found, err := d.lookup(key)
		if err != nil {
			return resp.Value{}, err
		}
		if found {
			if err := d.remove(key, rec.expireAt); err != nil {
				return resp.Value{}, err
			}
			n++
		}
	}
	return resp.Int(n), nil
}

// cmdExists implements EXISTS and TOUCH, which count existing keys,
// duplicates included. TOUCH changes nothing: OBJECT IDLETIME measures the
// time since the last write.
func cmdExists(d db, args [][]byte) (resp.Value, error) {
	var n int64
	for _, key := range args[1:] {
		_, found, err := d.lookup(key)
		if err != nil {
			return resp.Value{}, err
		}
		if found {
			n++
		}
	}
	return resp.Int(n), nil
}

func cmdType(d db, args [][]byte) (resp.Value, error) {
	rec, found, err := d.lookup(args[1])
	if err != nil || !found {
		return resp.Simple("none"), err
	}
	return resp.Simple(typeName(rec.typ)), nil
}

// Conditions of EXPIRE and friends.
const (
	expireNX = 1 << iota
	expireXX
	expireGT
	expireLT
)

func parseExpireFlags(args [][]byte) (int, error) {
	var f int
	for _, a := range args {
		switch {
		case equalFold(a, "nx"):
			f |= expireNX
		case equalFold(a, "xx"):
			f |= expireXX
		case equalFold(a, "gt"):
			f |= expireGT
		case equalFold(a, "lt"):
			f |= expireLT
		default:
			return 0, cmdError("ERR Unsupported option " + string(a))
		}
	}
	if f&expireNX != 0 && f&(expireXX|expireGT|expireLT) != 0 {
		return 0, cmdError("ERR NX and XX, GT or LT options at the same time are not compatible")
	}
	if f&expireGT != 0 && f&expireLT != 0 {
		return 0, cmdError("ERR GT and LT options at the same time are not compatible")
	}
	return f, nil
}

func cmdExpire(d db, args [][]byte) (resp.Value, error) {
	return expire(d, args, d.env.NowMs, true, "expire")
}

func cmdPExpire(d db, args [][]byte) (resp.Value, error) {
	return expire(d, args, d.env.NowMs, false, "pexpire")
}

func cmdExpireAt(d db, args [][]byte) (resp.Value, error) {
	return expire(d, args, 0, true, "expireat")
}

func cmdPExpireAt(d db, args [][]byte) (resp.Value, error) {
	return expire(d, args, 0, false, "pexpireat")
}

// expire sets key to expire at base plus the time argument, in seconds or
// ms. A time at or before now deletes the key.
func expire(d db, args [][]byte, base int64, seconds bool, cmd string) (resp.Value, error) {
	flags, err := parseExpireFlags(args[3:])
	if err != nil {
		return resp.Value{}, err
	}
	when, ok := resp.ParseInt(args[2])
	if !ok {
		return resp.Value{}, errNotInt
	}
	if seconds {
		if when > math.MaxInt64/1000 || when < math.MinInt64/1000 {
			return resp.Value{}, invalidExpire(cmd)
		}
		when *= 1000
	}
	if when > math.MaxInt64-base {
		return resp.Value{}, invalidExpire(cmd)
	}
	when += base

	key := args[1]
	rec, found, err := d.lookup(key)
	if err != nil || !found {
		return resp.Int(0), err
	}
	cur := rec.expireAt // 0: none, which GT and LT treat as infinite
	switch {
	case flags&expireNX != 0 && cur != 0,
		flags&expireXX != 0 && cur == 0,
		flags&expireGT != 0 && (cur == 0 || when <= cur),
		flags&expireLT != 0 && cur != 0 && when >= cur:
		return resp.Int(0), nil
	}
	if when <= d.env.NowMs || when <= 0 {
		return resp.Int(1), d.remove(key, cur)
	}
	rec.expireAt = when
	return resp.Int(1), d.store(key, cur, rec)
}

func cmdTTL(d db, args [][]byte) (resp.Value, error)  { return ttl(d, args[1], false, false) }
func cmdPTTL(d db, args [][]byte) (resp.Value, error) { return ttl(d, args[1], true, false) }

func cmdExpireTime(d db, args [][]byte) (resp.Value, error) {
	return ttl(d, args[1], false, true)
}

func cmdPExpireTime(d db, args [][]byte) (resp.Value, error) {
	return ttl(d, args[1], true, true)
}

// ttl answers TTL, PTTL, EXPIRETIME and PEXPIRETIME: -2 if key is absent,
// -1 if it has no expiry, else the remaining (or absolute, if abs) time in
// ms, or in seconds rounded to nearest.
func ttl(d db, key []byte, ms, abs bool) (resp.Value, error) {
	rec, found, err := d.lookup(key)
	if err != nil || !found {
		return resp.Int(-2), err
	}
	if rec.expireAt == 0 {
		return resp.Int(-1), nil
	}
	t := rec.expireAt
	if !abs {
		t = max(t-d.env.NowMs, 0)
	}
	if !ms {
		t = (t + 500) / 1000
	}
	return resp.Int(t), nil
}

func cmdPersist(d db, args [][]byte) (resp.Value, error) {
	rec, found, err := d.lookup(args[1])
	if err != nil || !found || rec.expireAt == 0 {
		return resp.Int(0), err
	}
	old := rec.expireAt
	rec.expireAt = 0
	return resp.Int(1), d.store(args[1], old, rec)
}

func cmdRename(d db, args [][]byte) (resp.Value, error) { return rename(d, args, false) }

func cmdRenameNX(d db, args [][]byte) (resp.Value, error) { return rename(d, args, true) }

// rename moves src's record, TTL included, to dst. The server guarantees
// both keys live on this shard.
func rename(d db, args [][]byte, nx bool) (resp.Value, error) {
	src, dst := args[1], args[2]
	rec, found, err := d.lookup(src)
	if err != nil {
		return resp.Value{}, err
	}
	if !found {
		return resp.Value{}, errNoKey
	}
	done := resp.OK
	if nx {
		done = resp.Int(1)
	}
	if bytes.Equal(src, dst) {
		if nx {
			return resp.Int(0), nil
		}
		return done, nil
	}
	old, found, err := d.lookup(dst)
	if err != nil {
		return resp.Value{}, err
	}
	if found && nx {
		return resp.Int(0), nil
	}
	if err := d.store(dst, old.expireAt, rec); err != nil {
		return resp.Value{}, err
	}
	return done, d.remove(src, rec.expireAt)
}

// unknownSubcommand is Redis's reply to OBJECT FOO and the like.
func unknownSubcommand(cmd, sub []byte) cmdError {
	return cmdError("ERR unknown subcommand '" + string(sub[:min(len(sub), 128)]) +
		"'. Try " + string(bytes.ToUpper(cmd)) + " HELP.")
}

func helpReply(lines ...string) resp.Value {
	vals := make([]resp.Value, len(lines))
	for i, l := range lines {
		vals[i] = resp.Simple(l)
	}
	return resp.Array(vals...)
}

// cmdObject: OBJECT ENCODING|REFCOUNT|IDLETIME|FREQ key, OBJECT HELP.
func cmdObject(d db, args [][]byte) (resp.Value, error) {
	sub := args[1]
	var name string
	for _, s := range []string{"encoding", "refcount", "idletime", "freq", "help"} {
		if equalFold(sub, s) {
			name = s
		}
	}
	switch {
	case name == "":
		return resp.Value{}, unknownSubcommand(args[0], sub)
	case name == "help" && len(args) != 2, name != "help" && len(args) != 3:
		return resp.Value{}, arityError("object|" + name)
	case name == "help":
		return helpReply(
			"OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"ENCODING <key>",
			"    Return the internal representation Redis would use for the value of <key>:",
			"    int, embstr or raw for strings.",
			"FREQ <key>",
			"    Not tracked: shoal keeps no LFU counters.",
			"IDLETIME <key>",
			"    Return the number of seconds since <key> was last written.",
			"REFCOUNT <key>",
			"    Return the reference count of the value of <key> (always 1).",
			"HELP",
			"    Print this help.",
		), nil
	}
	rec, found, err := d.lookup(args[2])
	if err != nil || !found {
		return resp.Null, err
	}
	switch name {
	case "encoding":
		return resp.BulkString(encoding(rec)), nil
	case "refcount":
		return resp.Int(1), nil
	case "idletime":
		return resp.Int(max(d.env.NowMs-rec.lastWrite, 0) / 1000), nil
	default: // freq
		return resp.Value{}, cmdError("ERR An LFU maxmemory policy is not selected, " +
			"access frequency not tracked. Please note that when switching between " +
			"policies at runtime LRU and LFU data will take some time to adjust.")
	}
}

// encoding is the encoding Redis would report for rec's value.
func encoding(rec record) string {
	switch rec.typ {
	case typeString:
		if _, ok := resp.ParseInt(rec.payload); ok {
			return "int"
		}
		if len(rec.payload) <= 44 {
			return "embstr"
		}
		return "raw"
	case typeList:
		return "quicklist"
	case typeZSet:
		return "skiplist"
	default:
		return "hashtable"
	}
}

// entryOverhead is what MEMORY USAGE adds for each Pebble entry on top of
// its key and value bytes: Pebble's 8-byte internal key trailer, the varint
// lengths and restart points of a data block, and a share of index and
// filter blocks; about 24 bytes before compression.
const entryOverhead = 24

// cmdMemory: MEMORY USAGE key [SAMPLES n], MEMORY HELP. The usage of a key
// is the bytes of its Pebble record entry, plus those of its expiry index
// entry if it has a TTL, each with entryOverhead: what the key costs on
// disk before compression. SAMPLES is checked and ignored (a string has
// nothing to sample).
func cmdMemory(d db, args [][]byte) (resp.Value, error) {
	sub := args[1]
	switch {
	case equalFold(sub, "help"):
		if len(args) != 2 {
			return resp.Value{}, arityError("memory|help")
		}
		return helpReply(
			"MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
			"USAGE <key> [SAMPLES <count>]",
			"    Return the approximate number of bytes <key> and its value take in storage.",
			"HELP",
			"    Print this help.",
		), nil
	case !equalFold(sub, "usage"):
		return resp.Value{}, unknownSubcommand(args[0], sub)
	case len(args) < 3:
		return resp.Value{}, arityError("memory|usage")
	}
	for i := 3; i < len(args); i += 2 {
		if !equalFold(args[i], "samples") || i+1 >= len(args) {
			return resp.Value{}, errSyntax
		}
		n, ok := resp.ParseInt(args[i+1])
		if !ok {
			return resp.Value{}, errNotInt
		}
		if n < 0 {
			return resp.Value{}, errSyntax
		}
	}
	key := args[2]
	rec, found, err := d.lookup(key)
	if err != nil || !found {
		return resp.Null, err
	}
	usage := len(keys.Data(key)) + headerLen + len(rec.payload) + entryOverhead
	if rec.expireAt != 0 {
		usage += len(keys.Expiry(key, rec.expireAt)) + entryOverhead
	}
	return resp.Int(int64(usage)), nil
}
