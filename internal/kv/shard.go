package kv

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"strconv"

	"github.com/shoaldb/shoal/internal/keys"
	"github.com/shoaldb/shoal/internal/resp"
)

// Per-shard commands act on the slots [Env.FirstSlot, Env.LastSlot]; the
// server runs them on every shard and merges the replies.

// isLiteral reports whether pattern has no glob syntax, so that it matches
// exactly one key: itself.
func isLiteral(pattern []byte) bool {
	return bytes.IndexAny(pattern, `*?[\`) < 0
}

// patternSlot returns the one slot every key matching pattern hashes to,
// or -1 if there is none: the pattern must start with literal bytes up to a
// '{', followed by a non-empty literal hash tag and '}'.
func patternSlot(pattern []byte) int {
	open := bytes.IndexByte(pattern, '{')
	if open < 0 || !isLiteral(pattern[:open]) {
		return -1
	}
	end := bytes.IndexByte(pattern[open+1:], '}')
	if end <= 0 || !isLiteral(pattern[open+1:open+1+end]) {
		return -1
	}
	return keys.Slot(pattern[:open+1+end+1])
}

// cmdKeys: KEYS pattern, over this shard's live keys.
func cmdKeys(d db, args [][]byte) (resp.Value, error) {
	pattern := args[1]
	first, last, ok := d.slots()
	if !ok {
		return resp.Array(), nil
	}
	all := len(pattern) == 1 && pattern[0] == '*'
	if !all && isLiteral(pattern) {
		_, found, err := d.lookup(pattern)
		if err != nil || !found || !d.ownsSlot(keys.Slot(pattern)) {
			return resp.Array(), err
		}
		return resp.Array(resp.Bulk(bytes.Clone(pattern))), nil
	}
	lo, hi := keys.SlotSpan(first, last)
	if slot := patternSlot(pattern); slot >= 0 {
		if !d.ownsSlot(slot) {
			return resp.Array(), nil
		}
		lo, hi = keys.DataSlotPrefix(slot)
	}
	var out []resp.Value
	size := d.replySize()
	var serr error
	err := d.scanLive(lo, hi, func(key []byte, _ record) bool {
		if all || Match(pattern, key) {
			if serr = size.add(len(key)); serr != nil {
				return false
			}
			out = append(out, resp.Bulk(bytes.Clone(key)))
		}
		return true
	})
	if err == nil {
		err = serr
	}
	return resp.Array(out...), err
}

// cmdDBSize counts this shard's live keys.
func cmdDBSize(d db, _ [][]byte) (resp.Value, error) {
	first, last, ok := d.slots()
	if !ok {
		return resp.Int(0), nil
	}
	lo, hi := keys.SlotSpan(first, last)
	var n int64
	err := d.scanLive(lo, hi, func([]byte, record) bool { n++; return true })
	return resp.Int(n), err
}

// rng returns the command's PRNG, seeded from Env.Rand alone.
func (d *db) rng() *rand.Rand {
	return rand.New(rand.NewPCG(d.env.Rand, d.env.Rand^0x9e3779b97f4a7c15))
}

// cmdRandomKey picks a random slot of the shard and returns the first live
// key at or after it, wrapping around to the shard's first slot. Keys
// following long runs of empty slots are likelier picks; no key is loaded
// beyond those walked over.
func cmdRandomKey(d db, _ [][]byte) (resp.Value, error) {
	first, last, ok := d.slots()
	if !ok {
		return resp.Null, nil
	}
	slot := first + d.rng().IntN(last-first+1)
	lo, hi := keys.SlotSpan(first, last)
	mid, _ := keys.DataSlotPrefix(slot)
	var key []byte
	pick := func(k []byte, _ record) bool {
		key = bytes.Clone(k)
		return false
	}
	if err := d.scanLive(mid, hi, pick); err != nil || key != nil {
		return bulkOrNull(key), err
	}
	err := d.scanLive(lo, mid, pick)
	return bulkOrNull(key), err
}

func bulkOrNull(b []byte) resp.Value {
	if b == nil {
		return resp.Null
	}
	return resp.Bulk(b)
}

// cmdFlush: FLUSHALL and FLUSHDB [ASYNC|SYNC] delete the shard's whole
// span, records and expiry index alike.
func cmdFlush(d db, args [][]byte) (resp.Value, error) {
	if len(args) > 2 || len(args) == 2 && !equalFold(args[1], "sync") && !equalFold(args[1], "async") {
		return resp.Value{}, errSyntax
	}
	first, last, ok := d.slots()
	if !ok {
		return resp.OK, nil
	}
	lo, hi := keys.SlotSpan(first, last)
	return resp.OK, d.w.DeleteRange(lo, hi)
}

// parseCursor parses a SCAN cursor as Redis's string2ull does, minus the
// negative numbers strtoull would wrap around.
func parseCursor(b []byte) (uint64, bool) {
	b = bytes.TrimLeft(b, " \t\n\v\f\r")
	if len(b) > 0 && b[0] == '+' {
		b = b[1:]
	}
	if len(b) == 0 || b[0] < '0' || b[0] > '9' {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b), 10, 64)
	return n, err == nil
}

// cmdScan: SCAN slot [MATCH pattern] [COUNT n] [TYPE type]. The cursor is a
// slot: the scan covers whole slots from max(slot, FirstSlot) until it has
// examined at least COUNT live keys or passed LastSlot, and the reply's
// cursor is the next slot to scan (LastSlot+1 once the shard is done).
// Whole slots per call keep the cursor stateless: every key present for the
// whole scan is returned, whatever is written in between.
func cmdScan(d db, args [][]byte) (resp.Value, error) {
	cursor, ok := parseCursor(args[1])
	if !ok {
		return resp.Value{}, cmdError("ERR invalid cursor")
	}
	count, pattern, usePattern, typ, hasType := 10, []byte(nil), false, "", false
	for i := 2; i < len(args); i += 2 {
		if i+1 >= len(args) {
			return resp.Value{}, errSyntax
		}
		switch a := args[i+1]; {
		case equalFold(args[i], "count"):
			n, ok := resp.ParseInt(a)
			if !ok {
				return resp.Value{}, errNotInt
			}
			if n < 1 {
				return resp.Value{}, errSyntax
			}
			count = int(min(n, int64(1<<31)))
		case equalFold(args[i], "match"):
			pattern, usePattern = a, !(len(a) == 1 && a[0] == '*')
		case equalFold(args[i], "type"):
			typ, hasType = string(bytes.ToLower(a)), true
		default:
			return resp.Value{}, errSyntax
		}
	}

	first, last, ok := d.slots()
	next := d.env.LastSlot + 1
	var found []resp.Value
	reply := func() resp.Value {
		return resp.Array(resp.BulkString(strconv.Itoa(next)), resp.Array(found...))
	}
	if !ok || cursor > uint64(last) {
		return reply(), nil
	}
	lo, hi := keys.SlotSpan(max(int(cursor), first), last)
	if slot := patternSlot(pattern); usePattern && slot >= 0 {
		if slot < max(int(cursor), first) || slot > last {
			return reply(), nil
		}
		lo, hi = keys.DataSlotPrefix(slot)
	}
	seen, cur := 0, -1
	size := d.replySize()
	var derr error
	err := d.r.Iterate(lo, hi, func(k, v []byte) bool {
		if len(k) < 4 {
			return true
		}
		slot := int(binary.BigEndian.Uint16(k[1:3]))
		if slot != cur && seen >= count {
			next = slot
			return false
		}
		cur = slot
		if !keys.IsData(k) {
			return true
		}
		rec, err := decodeRecord(v)
		if err != nil {
			derr = err
			return false
		}
		if rec.expired(d.env.NowMs) {
			return true
		}
		seen++
		key := keys.DataUserKey(k)
		if (!usePattern || Match(pattern, key)) && (!hasType || typeName(rec.typ) == typ) {
			if derr = size.add(len(key)); derr != nil {
				return false
			}
			found = append(found, resp.Bulk(bytes.Clone(key)))
		}
		return true
	})
	if err == nil {
		err = derr
	}
	return reply(), err
}

// parseLimit parses the limit of SHOAL.SWEEP and SHOAL.EXPIRED.
func parseLimit(b []byte) (int, error) {
	n, ok := resp.ParseInt(b)
	if !ok {
		return 0, errNotInt
	}
	if n < 0 {
		return 0, cmdError("ERR value is out of range, must be positive")
	}
	return int(min(n, int64(1<<31))), nil
}

// expiredEntries returns up to limit expiry index entries of the shard
// that are due at Env.NowMs, in slot then time order.
func (d *db) expiredEntries(limit int) ([][]byte, error) {
	first, last, ok := d.slots()
	if !ok || limit == 0 {
		return nil, nil
	}
	var due [][]byte
	span := func(i int) (lo, hi []byte) { return keys.ExpirySlotSpan(first+i, d.env.NowMs) }
	err := iterateSpans(d.r, last-first+1, span, func(k, _ []byte) bool {
		due = append(due, bytes.Clone(k))
		return len(due) < limit
	})
	return due, err
}

// NextExpiry returns the earliest time in the expiry index of env's slots,
// or ok=false if the index is empty. A shard whose earliest time is still
// to come has nothing to sweep until then, unless a write adds an earlier
// one.
func NextExpiry(r Reader, env Env) (at int64, ok bool, err error) {
	d := db{r: r, env: env}
	first, last, valid := d.slots()
	if !valid {
		return 0, false, nil
	}
	span := func(i int) (lo, hi []byte) { return keys.ExpiryIndexSpan(first + i) }
	err = firstInSpans(r, last-first+1, span, func(k []byte) bool {
		t := int64(0) // a malformed entry is due at once: the sweep drops it
		if len(k) >= 12 {
			_, t = keys.DecodeExpiry(k)
		}
		if !ok || t < at {
			at, ok = t, true
		}
		return true
	})
	return at, ok, err
}

// cmdSweep: SHOAL.SWEEP limit deletes up to limit keys of the shard whose
// expiry time has come (active expiry) and returns how many it deleted.
func cmdSweep(d db, args [][]byte) (resp.Value, error) {
	limit, err := parseLimit(args[1])
	if err != nil {
		return resp.Value{}, err
	}
	due, err := d.expiredEntries(limit)
	if err != nil {
		return resp.Value{}, err
	}
	var n int64
	for _, e := range due {
		if len(e) < 12 { // malformed: drop it, or it stays due forever
			if err := d.dropEntry(e); err != nil {
				return resp.Value{}, err
			}
			continue
		}
		key, at := keys.DecodeExpiry(e)
		v, ok, err := d.r.Get(keys.Data(key))
		if err != nil {
			return resp.Value{}, err
		}
		if rec, derr := decodeRecord(v); ok && derr == nil && rec.expireAt == at {
			if err := d.remove(key, at); err != nil {
				return resp.Value{}, err
			}
			n++
			continue
		}
		// An entry without its record cannot happen while store and
		// remove keep the index in step; drop it rather than keep it due.
		if err := d.dropEntry(e); err != nil {
			return resp.Value{}, err
		}
	}
	return resp.Int(n), nil
}

// dropEntry deletes the index entry e, which has no record.
func (d *db) dropEntry(e []byte) error {
	if err := d.w.Delete(e); err != nil {
		return err
	}
	return d.countExpiries(int(binary.BigEndian.Uint16(e[1:3])), -1)
}

// cmdExpired: SHOAL.EXPIRED limit counts, up to limit, the keys of the
// shard whose expiry time has come; the leader proposes a sweep when it is
// not zero.
func cmdExpired(d db, args [][]byte) (resp.Value, error) {
	limit, err := parseLimit(args[1])
	if err != nil {
		return resp.Value{}, err
	}
	due, err := d.expiredEntries(limit)
	return resp.Int(int64(len(due))), err
}

// parseSlot parses a CLUSTER slot argument.
func parseSlot(b []byte) (int, bool, error) {
	n, ok := resp.ParseInt(b)
	if !ok {
		return 0, false, errNotInt
	}
	return int(n), n >= 0 && n < keys.SlotCount, nil
}

// cmdCountKeysInSlot: SHOAL.COUNTKEYSINSLOT slot (CLUSTER COUNTKEYSINSLOT).
func cmdCountKeysInSlot(d db, args [][]byte) (resp.Value, error) {
	slot, valid, err := parseSlot(args[1])
	if err != nil {
		return resp.Value{}, err
	}
	if !valid {
		return resp.Value{}, cmdError("ERR Invalid slot")
	}
	if !d.ownsSlot(slot) {
		return resp.Int(0), nil
	}
	lo, hi := keys.DataSlotPrefix(slot)
	var n int64
	err = d.scanLive(lo, hi, func([]byte, record) bool { n++; return true })
	return resp.Int(n), err
}

// cmdGetKeysInSlot: SHOAL.GETKEYSINSLOT slot count (CLUSTER GETKEYSINSLOT).
func cmdGetKeysInSlot(d db, args [][]byte) (resp.Value, error) {
	slot, valid, err := parseSlot(args[1])
	if err != nil {
		return resp.Value{}, err
	}
	count, ok := resp.ParseInt(args[2])
	if !ok {
		return resp.Value{}, errNotInt
	}
	if !valid || count < 0 {
		return resp.Value{}, cmdError("ERR Invalid slot or number of keys")
	}
	var out []resp.Value
	if !d.ownsSlot(slot) || count == 0 {
		return resp.Array(), nil
	}
	lo, hi := keys.DataSlotPrefix(slot)
	size := d.replySize()
	var serr error
	err = d.scanLive(lo, hi, func(key []byte, _ record) bool {
		if serr = size.add(len(key)); serr != nil {
			return false
		}
		out = append(out, resp.Bulk(bytes.Clone(key)))
		return int64(len(out)) < count
	})
	if err == nil {
		err = serr
	}
	return resp.Array(out...), err
}
