package kv

import (
	"bytes"
	"math"
	"math/big"
	"strconv"

	"github.com/shoaldb/shoal/internal/keys"
	"github.com/shoaldb/shoal/internal/resp"
)

// maxStringLen is Redis's default proto-max-bulk-len: the largest string
// APPEND and SETRANGE may build when Env.MaxValueLen is 0.
const maxStringLen = 512 << 20

// tooLong reports whether a string of size bytes grown by add bytes would
// exceed the largest string the command may build.
func (d *db) tooLong(size, add int64) bool { return TooLong(d.env.MaxValueLen, size, add) }

// TooLong reports whether a string of size bytes grown by add bytes would
// be longer than limit bytes (maxStringLen if limit is 0).
func TooLong(limit, size, add int64) bool {
	if limit <= 0 {
		limit = maxStringLen
	}
	return size > limit-add
}

// lookupString is lookup that also fails with WRONGTYPE if key holds
// something other than a string.
func (d *db) lookupString(key []byte) (record, bool, error) {
	rec, ok, err := d.lookup(key)
	if err == nil && ok && rec.typ != typeString {
		return record{}, false, errWrongType
	}
	return rec, ok, err
}

// putString makes key a string holding value with the given expiry (0 for
// none), replacing whatever it held. It reads the old record only if the
// key's slot holds keys with an expiry: otherwise the old record has none
// and the write does not depend on it (record.go).
func (d *db) putString(key, value []byte, expireAt int64) error {
	var old record
	expires, err := d.slotExpires(keys.Slot(key))
	if err == nil && expires {
		old, _, err = d.lookup(key)
	}
	if err != nil {
		return err
	}
	return d.store(key, old.expireAt, record{typ: typeString, expireAt: expireAt, payload: value})
}

func cmdGet(d db, args [][]byte) (resp.Value, error) {
	rec, ok, err := d.lookupString(args[1])
	if err != nil || !ok {
		return resp.Null, err
	}
	return resp.Bulk(rec.payload), nil
}

// Expiry options of SET and GETEX.
const (
	optEX = 1 + iota
	optPX
	optEXAT
	optPXAT
)

func expiryOption(b []byte) int {
	switch {
	case equalFold(b, "ex"):
		return optEX
	case equalFold(b, "px"):
		return optPX
	case equalFold(b, "exat"):
		return optEXAT
	case equalFold(b, "pxat"):
		return optPXAT
	}
	return 0
}

// setOptions are the options of SET and GETEX.
type setOptions struct {
	nx, xx, get, keepTTL, persist bool
	ifeq                          bool
	ifeqValue                     []byte
	expiry                        int // 0 or an opt* constant
	expiryArg                     []byte
}

// parseSetOptions parses the options of SET (set) or GETEX (!set), with
// Redis's rules: NX, XX and IFEQ exclude each other; one kind of expiry
// (which may repeat, the last one winning) excludes KEEPTTL and PERSIST.
func parseSetOptions(args [][]byte, set bool) (setOptions, error) {
	var o setOptions
	for i := 0; i < len(args); i++ {
		a := args[i]
		hasNext := i+1 < len(args)
		switch {
		case set && equalFold(a, "nx") && !o.xx && !o.ifeq:
			o.nx = true
		case set && equalFold(a, "xx") && !o.nx && !o.ifeq:
			o.xx = true
		case set && equalFold(a, "get"):
			o.get = true
		case set && equalFold(a, "ifeq") && !o.nx && !o.xx && !o.ifeq && hasNext:
			o.ifeq, o.ifeqValue = true, args[i+1]
			i++
		case set && equalFold(a, "keepttl") && o.expiry == 0:
			o.keepTTL = true
		case !set && equalFold(a, "persist") && o.expiry == 0:
			o.persist = true
		default:
			kind := expiryOption(a)
			if kind == 0 || !hasNext || o.keepTTL || o.persist || (o.expiry != 0 && o.expiry != kind) {
				return o, errSyntax
			}
			o.expiry, o.expiryArg = kind, args[i+1]
			i++
		}
	}
	return o, nil
}

// expireAtMs converts the argument of an EX, PX, EXAT or PXAT option to a
// Unix time in ms, with Redis's checks: the number must be positive, and
// neither the conversion to ms nor adding the current time may overflow.
func expireAtMs(kind int, arg []byte, nowMs int64, cmd string) (int64, error) {
	n, ok := resp.ParseInt(arg)
	if !ok {
		return 0, errNotInt
	}
	seconds := kind == optEX || kind == optEXAT
	if n <= 0 || seconds && n > math.MaxInt64/1000 {
		return 0, invalidExpire(cmd)
	}
	if seconds {
		n *= 1000
	}
	if kind == optEX || kind == optPX {
		if n > math.MaxInt64-nowMs {
			return 0, invalidExpire(cmd)
		}
		n += nowMs
	}
	if n <= 0 {
		return 0, invalidExpire(cmd)
	}
	return n, nil
}

// cmdSet: SET key value [NX|XX|IFEQ cmp] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL].
func cmdSet(d db, args [][]byte) (resp.Value, error) {
	o, err := parseSetOptions(args[3:], true)
	if err != nil {
		return resp.Value{}, err
	}
	var at int64
	if o.expiry != 0 {
		if at, err = expireAtMs(o.expiry, o.expiryArg, d.env.NowMs, "set"); err != nil {
			return resp.Value{}, err
		}
	}
	key := args[1]
	if !o.get && !o.nx && !o.xx && !o.ifeq && !o.keepTTL {
		return resp.OK, d.putString(key, args[2], at)
	}
	old, found, err := d.lookup(key)
	if err != nil {
		return resp.Value{}, err
	}
	if found && old.typ != typeString && (o.get || o.ifeq) {
		return resp.Value{}, errWrongType
	}
	reply, notSet := resp.OK, resp.Null
	if o.get {
		reply = resp.Null
		if found {
			reply = resp.Bulk(old.payload)
		}
		notSet = reply
	}
	if o.nx && found || o.xx && !found || o.ifeq && (!found || !bytes.Equal(old.payload, o.ifeqValue)) {
		return notSet, nil
	}
	if o.keepTTL {
		at = old.expireAt
	}
	return reply, d.store(key, old.expireAt, record{typ: typeString, expireAt: at, payload: args[2]})
}

func cmdSetNX(d db, args [][]byte) (resp.Value, error) {
	_, found, err := d.lookup(args[1])
	if err != nil || found {
		return resp.Int(0), err
	}
	return resp.Int(1), d.store(args[1], 0, record{typ: typeString, payload: args[2]})
}

func cmdSetEX(d db, args [][]byte) (resp.Value, error)  { return setEx(d, args, optEX, "setex") }
func cmdPSetEX(d db, args [][]byte) (resp.Value, error) { return setEx(d, args, optPX, "psetex") }

func setEx(d db, args [][]byte, kind int, cmd string) (resp.Value, error) {
	at, err := expireAtMs(kind, args[2], d.env.NowMs, cmd)
	if err != nil {
		return resp.Value{}, err
	}
	return resp.OK, d.putString(args[1], args[3], at)
}

func cmdGetSet(d db, args [][]byte) (resp.Value, error) {
	old, found, err := d.lookupString(args[1])
	if err != nil {
		return resp.Value{}, err
	}
	reply := resp.Null
	if found {
		reply = resp.Bulk(old.payload)
	}
	return reply, d.store(args[1], old.expireAt, record{typ: typeString, payload: args[2]})
}

func cmdGetDel(d db, args [][]byte) (resp.Value, error) {
	rec, found, err := d.lookupString(args[1])
	if err != nil || !found {
		return resp.Null, err
	}
	return resp.Bulk(rec.payload), d.remove(args[1], rec.expireAt)
}

// cmdGetEx: GETEX key [EX s|PX ms|EXAT s|PXAT ms|PERSIST]. As in Redis the
// expiry argument is checked only once the key is known to exist.
func cmdGetEx(d db, args [][]byte) (resp.Value, error) {
	o, err := parseSetOptions(args[2:], false)
	if err != nil {
		return resp.Value{}, err
	}
	key := args[1]
	rec, found, err := d.lookupString(key)
	if err != nil || !found {
		return resp.Null, err
	}
	reply := resp.Bulk(rec.payload)
	old := rec.expireAt
	switch {
	case o.expiry != 0:
		if rec.expireAt, err = expireAtMs(o.expiry, o.expiryArg, d.env.NowMs, "getex"); err != nil {
			return resp.Value{}, err
		}
	case o.persist && old != 0:
		rec.expireAt = 0
	default:
		return reply, nil
	}
	return reply, d.store(key, old, rec)
}

func cmdMGet(d db, args [][]byte) (resp.Value, error) {
	if err := d.checkSizes(args[1:]); err != nil {
		return resp.Value{}, err
	}
	vals := make([]resp.Value, 0, len(args)-1)
	size := d.replySize()
	for _, key := range args[1:] {
		rec, found, err := d.lookup(key)
		if err == nil {
			err = size.add(len(rec.payload))
		}
		if err != nil {
			return resp.Value{}, err
		}
		if found && rec.typ == typeString {
			vals = append(vals, resp.Bulk(rec.payload))
		} else {
			vals = append(vals, resp.Null)
		}
	}
	return resp.Array(vals...), nil
}

func cmdMSet(d db, args [][]byte) (resp.Value, error) {
	if len(args)%2 == 0 {
		return resp.Value{}, arityError("mset")
	}
	for i := 1; i < len(args); i += 2 {
		if err := d.putString(args[i], args[i+1], 0); err != nil {
			return resp.Value{}, err
		}
	}
	return resp.OK, nil
}

func cmdMSetNX(d db, args [][]byte) (resp.Value, error) {
	if len(args)%2 == 0 {
		return resp.Value{}, arityError("msetnx")
	}
	for i := 1; i < len(args); i += 2 {
		_, found, err := d.lookup(args[i])
		if err != nil || found {
			return resp.Int(0), err
		}
	}
	for i := 1; i < len(args); i += 2 {
		if err := d.putString(args[i], args[i+1], 0); err != nil {
			return resp.Value{}, err
		}
	}
	return resp.Int(1), nil
}

func cmdAppend(d db, args [][]byte) (resp.Value, error) {
	key, value := args[1], args[2]
	rec, found, err := d.lookupString(key)
	if err != nil {
		return resp.Value{}, err
	}
	if found && d.tooLong(int64(len(rec.payload)), int64(len(value))) {
		return resp.Value{}, errTooBig
	}
	rec.typ = typeString
	rec.payload = append(rec.payload, value...)
	return resp.Int(int64(len(rec.payload))), d.store(key, rec.expireAt, rec)
}

func cmdStrlen(d db, args [][]byte) (resp.Value, error) {
	rec, _, err := d.lookupString(args[1])
	return resp.Int(int64(len(rec.payload))), err
}

func cmdIncr(d db, args [][]byte) (resp.Value, error) { return incrBy(d, args[1], 1) }
func cmdDecr(d db, args [][]byte) (resp.Value, error) { return incrBy(d, args[1], -1) }

func cmdIncrBy(d db, args [][]byte) (resp.Value, error) {
	n, ok := resp.ParseInt(args[2])
	if !ok {
		return resp.Value{}, errNotInt
	}
	return incrBy(d, args[1], n)
}

func cmdDecrBy(d db, args [][]byte) (resp.Value, error) {
	n, ok := resp.ParseInt(args[2])
	if !ok {
		return resp.Value{}, errNotInt
	}
	if n == math.MinInt64 {
		return resp.Value{}, cmdError("ERR decrement would overflow")
	}
	return incrBy(d, args[1], -n)
}

// incrBy adds delta to the integer held by key (0 if absent), keeping its
// TTL.
func incrBy(d db, key []byte, delta int64) (resp.Value, error) {
	rec, found, err := d.lookupString(key)
	if err != nil {
		return resp.Value{}, err
	}
	var n int64
	if found {
		var ok bool
		if n, ok = resp.ParseInt(rec.payload); !ok {
			return resp.Value{}, errNotInt
		}
	}
	if delta < 0 && n < 0 && delta < math.MinInt64-n || delta > 0 && n > 0 && delta > math.MaxInt64-n {
		return resp.Value{}, cmdError("ERR increment or decrement would overflow")
	}
	n += delta
	rec.typ = typeString
	rec.payload = strconv.AppendInt(nil, n, 10)
	return resp.Int(n), d.store(key, rec.expireAt, rec)
}

func cmdIncrByFloat(d db, args [][]byte) (resp.Value, error) {
	key := args[1]
	rec, found, err := d.lookupString(key)
	if err != nil {
		return resp.Value{}, err
	}
	cur, curInf := new(big.Float).SetPrec(ldPrec), false
	if found {
		var ok bool
		if cur, curInf, ok = parseFloat(rec.payload); !ok {
			return resp.Value{}, errNotFloat
		}
	}
	incr, incrInf, ok := parseFloat(args[2])
	if !ok {
		return resp.Value{}, errNotFloat
	}
	errNaN := cmdError("ERR increment would produce NaN or Infinity")
	if curInf || incrInf {
		return resp.Value{}, errNaN
	}
	sum, ok := addFloat(cur, incr)
	if !ok {
		return resp.Value{}, errNaN
	}
	rec.typ = typeString
	rec.payload = formatFloat(sum)
	return resp.Bulk(rec.payload), d.store(key, rec.expireAt, rec)
}

// cmdGetRange implements GETRANGE and SUBSTR with Redis 7's index rules.
func cmdGetRange(d db, args [][]byte) (resp.Value, error) {
	start, ok1 := resp.ParseInt(args[2])
	end, ok2 := resp.ParseInt(args[3])
	if !ok1 || !ok2 {
		return resp.Value{}, errNotInt
	}
	rec, found, err := d.lookupString(args[1])
	if err != nil || !found {
		return emptyBulk, err
	}
	n := int64(len(rec.payload))
	if start < 0 && end < 0 && start > end {
		return emptyBulk, nil
	}
	if start < 0 {
		start += n
	}
	if end < 0 {
		end += n
	}
	start, end = max(start, 0), max(end, 0)
	end = min(end, n-1)
	if start > end || n == 0 {
		return emptyBulk, nil
	}
	return resp.Bulk(rec.payload[start : end+1]), nil
}

func cmdSetRange(d db, args [][]byte) (resp.Value, error) {
	key, value := args[1], args[3]
	off, ok := resp.ParseInt(args[2])
	if !ok {
		return resp.Value{}, errNotInt
	}
	if off < 0 {
		return resp.Value{}, cmdError("ERR offset is out of range")
	}
	rec, found, err := d.lookupString(key)
	if err != nil {
		return resp.Value{}, err
	}
	if len(value) == 0 {
		return resp.Int(int64(len(rec.payload))), nil
	}
	if d.tooLong(off, int64(len(value))) {
		return resp.Value{}, errTooBig
	}
	if !found {
		rec = record{typ: typeString}
	}
	if end := int(off) + len(value); end > len(rec.payload) {
		rec.payload = append(rec.payload, make([]byte, end-len(rec.payload))...)
	}
	copy(rec.payload[off:], value)
	return resp.Int(int64(len(rec.payload))), d.store(key, rec.expireAt, rec)
}
