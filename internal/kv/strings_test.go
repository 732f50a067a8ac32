package kv

import (
	"strings"
	"testing"

	"github.com/shoaldb/shoal/internal/keys"
	"github.com/shoaldb/shoal/internal/kv/kvtest"
	"github.com/shoaldb/shoal/internal/resp"
)

const wrongType = "-WRONGTYPE Operation against a key holding the wrong kind of value"

func TestGetSet(t *testing.T) {
	runScript(t, []step{
		{`GET k`, `(nil)`},
		{`SET k v`, `+OK`},
		{`GET k`, `"v"`},
		{`get k`, `"v"`},
		{`SET k ""`, `+OK`},
		{`GET k`, `""`},
		{`SET "a b" "x\r\ny\x00"`, `+OK`},
		{`GET "a b"`, `"x\r\ny\x00"`},
		{`GET`, `-ERR wrong number of arguments for 'get' command`},
		{`GET a b`, `-ERR wrong number of arguments for 'get' command`},
		{`SET k`, `-ERR wrong number of arguments for 'set' command`},
		{`SeT k v bogus`, `-ERR syntax error`},
	})
}

func TestSetConditions(t *testing.T) {
	runScript(t, []step{
		{`SET k v XX`, `(nil)`},
		{`GET k`, `(nil)`},
		{`SET k v NX`, `+OK`},
		{`SET k w NX`, `(nil)`},
		{`GET k`, `"v"`},
		{`SET k w XX`, `+OK`},
		{`GET k`, `"w"`},
		{`SET k v nx nx`, `(nil)`},
		{`SET k v NX XX`, `-ERR syntax error`},
		{`SET k v XX NX`, `-ERR syntax error`},
		// GET returns the old value whether or not the set happens.
		{`SET k x GET`, `"w"`},
		{`SET k y NX GET`, `"x"`},
		{`GET k`, `"x"`},
		{`SET new y XX GET`, `(nil)`},
		{`GET new`, `(nil)`},
		{`SET new y GET`, `(nil)`},
		{`GET new`, `"y"`},
		// IFEQ: set only if the key exists and holds exactly that value.
		{`SET k z IFEQ nope`, `(nil)`},
		{`GET k`, `"x"`},
		{`SET k z IFEQ x`, `+OK`},
		{`GET k`, `"z"`},
		{`SET missing z IFEQ x`, `(nil)`},
		{`EXISTS missing`, `:0`},
		{`SET k q IFEQ z GET`, `"z"`},
		{`SET k r IFEQ nope GET`, `"q"`},
		{`GET k`, `"q"`},
		{`SET k v IFEQ q NX`, `-ERR syntax error`},
		{`SET k v XX IFEQ q`, `-ERR syntax error`},
		{`SET k v IFEQ`, `-ERR syntax error`},
		{`SET k v ifeq q ifeq q`, `-ERR syntax error`},
		{`SET k "" IFEQ q`, `+OK`},
		{`SET k e IFEQ ""`, `+OK`},
		{`GET k`, `"e"`},
	})
}

func TestSetExpiry(t *testing.T) {
	runScript(t, []step{
		{`SET k v EX 10`, `+OK`},
		{`PTTL k`, `:10000`},
		{`SET k v PX 1500`, `+OK`},
		{`PTTL k`, `:1500`},
		{`TTL k`, `:2`},
		{`SET k v EXAT 1780000100`, `+OK`},
		{`PTTL k`, `:100000`},
		{`SET k v PXAT 1780000000123`, `+OK`},
		{`PEXPIRETIME k`, `:1780000000123`},
		{`SET k w KEEPTTL`, `+OK`},
		{`PEXPIRETIME k`, `:1780000000123`},
		{`GET k`, `"w"`},
		{`SET k v`, `+OK`},
		{`TTL k`, `:-1`},
		{`SET k v KEEPTTL`, `+OK`},
		{`TTL k`, `:-1`},
		{`SET k v EX 5 EX 7`, `+OK`}, // a repeated option: the last one wins
		{`TTL k`, `:7`},
		{`SET k v EX 5 PX 7`, `-ERR syntax error`},
		{`SET k v PX 5 EXAT 7`, `-ERR syntax error`},
		{`SET k v KEEPTTL EX 5`, `-ERR syntax error`},
		{`SET k v EX 5 KEEPTTL`, `-ERR syntax error`},
		{`SET k v EX`, `-ERR syntax error`},
		{`SET k v PERSIST`, `-ERR syntax error`},
		{`SET k v EX 0`, `-ERR invalid expire time in 'set' command`},
		{`SET k v EX -1`, `-ERR invalid expire time in 'set' command`},
		{`SET k v PX 0`, `-ERR invalid expire time in 'set' command`},
		{`SET k v EXAT 0`, `-ERR invalid expire time in 'set' command`},
		{`SET k v EX 9223372036854776`, `-ERR invalid expire time in 'set' command`},
		{`SET k v PX 9223372036854775807`, `-ERR invalid expire time in 'set' command`},
		{`SET k v EX abc`, `-ERR value is not an integer or out of range`},
		{`SET k v EX 1.5`, `-ERR value is not an integer or out of range`},
		{`TTL k`, `:7`}, // failed SETs changed nothing
		// An absolute time in the past sets nothing, deleting the old value.
		{`SET k v PXAT 1`, `+OK`},
		{`EXISTS k`, `:0`},
		{`SET k v`, `+OK`},
		{`SET k w EXAT 1 GET`, `"v"`},
		{`GET k`, `(nil)`},
		{`SET k v PXAT 1780000000000`, `+OK`}, // == now: expired at once
		{`GET k`, `(nil)`},
	})
}

func TestSetNXEXGetSetDel(t *testing.T) {
	runScript(t, []step{
		{`SETNX k v`, `:1`},
		{`SETNX k w`, `:0`},
		{`GET k`, `"v"`},
		{`SETEX k 10 w`, `+OK`},
		{`GET k`, `"w"`},
		{`TTL k`, `:10`},
		{`SETEX k 0 w`, `-ERR invalid expire time in 'setex' command`},
		{`SETEX k x w`, `-ERR value is not an integer or out of range`},
		{`PSETEX k 0 w`, `-ERR invalid expire time in 'psetex' command`},
		{`PSETEX k 2500 x`, `+OK`},
		{`PTTL k`, `:2500`},
		{`GETSET k y`, `"x"`},
		{`TTL k`, `:-1`},
		{`GETSET nokey y`, `(nil)`},
		{`GET nokey`, `"y"`},
		{`GETDEL k`, `"y"`},
		{`GETDEL k`, `(nil)`},
		{`EXISTS k`, `:0`},
		{`SETEX k 10`, `-ERR wrong number of arguments for 'setex' command`},
		{`SETNX k`, `-ERR wrong number of arguments for 'setnx' command`},
	})
}

func TestGetEx(t *testing.T) {
	runScript(t, []step{
		{`GETEX k`, `(nil)`},
		{`GETEX k EX 0`, `(nil)`}, // the expiry is checked only for an existing key
		{`SET k v`, `+OK`},
		{`GETEX k`, `"v"`},
		{`TTL k`, `:-1`},
		{`GETEX k EX 100`, `"v"`},
		{`TTL k`, `:100`},
		{`GETEX k PX 100`, `"v"`},
		{`PTTL k`, `:100`},
		{`GETEX k EXAT 1780000200`, `"v"`},
		{`TTL k`, `:200`},
		{`GETEX k PXAT 1780000000500`, `"v"`},
		{`PTTL k`, `:500`},
		{`GETEX k PERSIST`, `"v"`},
		{`TTL k`, `:-1`},
		{`GETEX k PERSIST`, `"v"`},
		{`GETEX k EX 0`, `-ERR invalid expire time in 'getex' command`},
		{`GETEX k EX x`, `-ERR value is not an integer or out of range`},
		{`GETEX k EX 1 PERSIST`, `-ERR syntax error`},
		{`GETEX k PERSIST PX 1`, `-ERR syntax error`},
		{`GETEX k KEEPTTL`, `-ERR syntax error`},
		{`GETEX k NX`, `-ERR syntax error`},
		{`GETEX k GET`, `-ERR syntax error`},
		{`GETEX k EX`, `-ERR syntax error`},
		{`GETEX k PXAT 1`, `"v"`}, // in the past: returns the value, deletes the key
		{`EXISTS k`, `:0`},
	})
}

func TestMultiKey(t *testing.T) {
	runScript(t, []step{
		{`MSET a 1 b 2 c 3`, `+OK`},
		{`MGET a b c d`, `["1" "2" "3" (nil)]`},
		{`MSET a 1 b`, `-ERR wrong number of arguments for 'mset' command`},
		{`MSET a`, `-ERR wrong number of arguments for 'mset' command`},
		{`MSET a x a y`, `+OK`},
		{`GET a`, `"y"`},
		{`SET t v EX 100`, `+OK`},
		{`MSET t w`, `+OK`},
		{`TTL t`, `:-1`},
		{`MSETNX a 1 z 2`, `:0`},
		{`EXISTS z`, `:0`},
		{`MSETNX y 1 z 2`, `:1`},
		{`MGET y z`, `["1" "2"]`},
		{`MSETNX q 1 q`, `-ERR wrong number of arguments for 'msetnx' command`},
		{`MGET`, `-ERR wrong number of arguments for 'mget' command`},
	})
}

func TestAppendStrlenRanges(t *testing.T) {
	runScript(t, []step{
		{`APPEND k Hello`, `:5`},
		{`APPEND k " World"`, `:11`},
		{`GET k`, `"Hello World"`},
		{`STRLEN k`, `:11`},
		{`STRLEN nokey`, `:0`},
		{`GETRANGE k 0 4`, `"Hello"`},
		{`GETRANGE k -5 -1`, `"World"`},
		{`GETRANGE k 0 -1`, `"Hello World"`},
		{`GETRANGE k 6 100`, `"World"`},
		{`GETRANGE k 5 3`, `""`},
		{`GETRANGE k -1 -5`, `""`},
		{`GETRANGE k 0 -100`, `"H"`}, // Redis 7 clamps a too-negative end to 0
		{`GETRANGE k -100 2`, `"Hel"`},
		{`GETRANGE k 20 30`, `""`},
		{`GETRANGE k -9223372036854775808 9223372036854775807`, `"Hello World"`},
		{`GETRANGE nokey 0 -1`, `""`},
		{`GETRANGE k a 1`, `-ERR value is not an integer or out of range`},
		{`SUBSTR k 0 4`, `"Hello"`},
		{`SET e ""`, `+OK`},
		{`GETRANGE e 0 -1`, `""`},
		{`SETRANGE k 6 Redis`, `:11`},
		{`GET k`, `"Hello Redis"`},
		{`SETRANGE k 11 !`, `:12`},
		{`SETRANGE n 3 x`, `:4`},
		{`GET n`, `"\x00\x00\x00x"`},
		{`SETRANGE m 3 ""`, `:0`},
		{`EXISTS m`, `:0`},
		{`SETRANGE k 100 ""`, `:12`},
		{`SETRANGE k -1 x`, `-ERR offset is out of range`},
		{`SETRANGE k x x`, `-ERR value is not an integer or out of range`},
		{`SETRANGE k 536870911 xx`, `-ERR string exceeds maximum allowed size (proto-max-bulk-len)`},
		{`SETRANGE k 9223372036854775807 x`, `-ERR string exceeds maximum allowed size (proto-max-bulk-len)`},
		{`SET t v EX 100`, `+OK`},
		{`APPEND t x`, `:2`},
		{`SETRANGE t 0 y`, `:2`},
		{`TTL t`, `:100`},
		{`GET t`, `"yx"`},
	})
}

func TestIncrDecr(t *testing.T) {
	runScript(t, []step{
		{`INCR n`, `:1`},
		{`INCR n`, `:2`},
		{`DECR n`, `:1`},
		{`INCRBY n 10`, `:11`},
		{`DECRBY n 20`, `:-9`},
		{`GET n`, `"-9"`},
		{`INCRBY n -1`, `:-10`},
		{`SET n 9223372036854775806`, `+OK`},
		{`INCR n`, `:9223372036854775807`},
		{`INCR n`, `-ERR increment or decrement would overflow`},
		{`GET n`, `"9223372036854775807"`},
		{`SET n -9223372036854775808`, `+OK`},
		{`DECR n`, `-ERR increment or decrement would overflow`},
		{`INCRBY n 9223372036854775807`, `:-1`},
		{`DECRBY n -9223372036854775808`, `-ERR decrement would overflow`},
		{`INCRBY n 9223372036854775808`, `-ERR value is not an integer or out of range`},
		{`INCRBY n x`, `-ERR value is not an integer or out of range`},
		{`SET s " 1"`, `+OK`},
		{`INCR s`, `-ERR value is not an integer or out of range`},
		{`SET s "1 "`, `+OK`},
		{`INCR s`, `-ERR value is not an integer or out of range`},
		{`SET s 01`, `+OK`},
		{`INCR s`, `-ERR value is not an integer or out of range`},
		{`SET s +1`, `+OK`},
		{`INCR s`, `-ERR value is not an integer or out of range`},
		{`SET s -0`, `+OK`},
		{`INCR s`, `-ERR value is not an integer or out of range`},
		{`SET s 1.0`, `+OK`},
		{`INCR s`, `-ERR value is not an integer or out of range`},
		{`SET s ""`, `+OK`},
		{`INCR s`, `-ERR value is not an integer or out of range`},
		{`SET s 0`, `+OK`},
		{`INCR s`, `:1`},
		{`INCRBY s +5`, `-ERR value is not an integer or out of range`},
		{`SET t 5 EX 100`, `+OK`},
		{`INCR t`, `:6`},
		{`TTL t`, `:100`},
	})
}

func TestIncrByFloat(t *testing.T) {
	runScript(t, []step{
		{`INCRBYFLOAT f 10.5`, `"10.5"`},
		{`INCRBYFLOAT f 0.1`, `"10.6"`},
		{`INCRBYFLOAT f -5`, `"5.6"`},
		{`SET f 0.1`, `+OK`},
		{`INCRBYFLOAT f 0.2`, `"0.3"`}, // long double precision, as in Redis
		{`SET f 5.0e3`, `+OK`},
		{`INCRBYFLOAT f 2.0e2`, `"5200"`},
		{`SET f 1`, `+OK`},
		{`INCRBYFLOAT f 1e-20`, `"1"`},
		{`SET f 0`, `+OK`},
		{`INCRBYFLOAT f -1e-20`, `"0"`}, // %.17Lf of a tiny negative number is "-0"
		{`INCRBYFLOAT f 0x10`, `"16"`},
		{`INCRBYFLOAT f 1e20`, `"100000000000000000016"`},
		{`SET f 3`, `+OK`},
		{`INCRBYFLOAT f inf`, `-ERR increment would produce NaN or Infinity`},
		{`INCRBYFLOAT f -Infinity`, `-ERR increment would produce NaN or Infinity`},
		{`INCRBYFLOAT f nan`, `-ERR value is not a valid float`},
		{`INCRBYFLOAT f " 1"`, `-ERR value is not a valid float`},
		{`INCRBYFLOAT f "1 "`, `-ERR value is not a valid float`},
		{`INCRBYFLOAT f 1_0`, `-ERR value is not a valid float`},
		{`INCRBYFLOAT f ""`, `-ERR value is not a valid float`},
		{`INCRBYFLOAT f 1e5000`, `-ERR value is not a valid float`},
		{`INCRBYFLOAT f +1.5`, `"4.5"`},
		{`SET f abc`, `+OK`},
		{`INCRBYFLOAT f 1`, `-ERR value is not a valid float`},
		{`SET f 1e4932`, `+OK`},
		{`INCRBYFLOAT f 1e4932`, `-ERR increment would produce NaN or Infinity`},
		{`SET t 1 EX 100`, `+OK`},
		{`INCRBYFLOAT t 1.5`, `"2.5"`},
		{`TTL t`, `:100`},
	})
}

func TestTooLong(t *testing.T) {
	tests := []struct {
		limit, size, add int64
		want             bool
	}{
		{0, 0, 0, false},
		{0, maxStringLen - 1, 1, false},
		{0, maxStringLen, 0, false},
		{0, maxStringLen, 1, true},
		{0, 1, maxStringLen, true},
		{0, 1<<63 - 1, 1, true},
		{1 << 20, 1<<20 - 1, 1, false},
		{1 << 20, 1 << 20, 1, true},
		{1 << 20, 536870911, 1, true},
		{1 << 20, 1<<63 - 1, 1<<63 - 1, true},
	}
	for _, tt := range tests {
		if got := TooLong(tt.limit, tt.size, tt.add); got != tt.want {
			t.Errorf("TooLong(%d, %d, %d) = %v, want %v", tt.limit, tt.size, tt.add, got, tt.want)
		}
	}
}

func TestWrongType(t *testing.T) {
	h := newHarness(t)
	// Plant a record of another type, as a future hash command would.
	if err := h.mem.Set(dataKey("h"), (&record{typ: typeHash, payload: []byte("x")}).encode()); err != nil {
		t.Fatal(err)
	}
	h.run([]step{
		{`GET h`, wrongType},
		{`GETSET h v`, wrongType},
		{`GETDEL h`, wrongType},
		{`GETEX h PERSIST`, wrongType},
		{`APPEND h v`, wrongType},
		{`STRLEN h`, wrongType},
		{`INCR h`, wrongType},
		{`DECRBY h 1`, wrongType},
		{`INCRBYFLOAT h 1`, wrongType},
		{`INCRBYFLOAT h notafloat`, wrongType},
		{`GETRANGE h 0 1`, wrongType},
		{`SETRANGE h 0 v`, wrongType},
		{`SETRANGE h 0 ""`, wrongType},
		{`SET h v GET`, wrongType},
		{`SET h v NX GET`, wrongType},
		{`SET h v IFEQ x`, wrongType},
		{`MGET h`, `[(nil)]`},
		{`TYPE h`, `+hash`},
		{`OBJECT ENCODING h`, `"hashtable"`},
		{`SETNX h v`, `:0`},
		{`SET h v NX`, `(nil)`},
		{`SET h v`, `+OK`}, // a plain SET overwrites any type
		{`TYPE h`, `+string`},
	})
}

func dataKey(k string) []byte { return keys.Data([]byte(k)) }

func TestUnknownAndArity(t *testing.T) {
	long := strings.Repeat("a", 200)
	runScript(t, []step{
		{`FOO`, `-ERR unknown command 'FOO', with args beginning with: `},
		{`foo a "b c"`, `-ERR unknown command 'foo', with args beginning with: 'a' 'b c' `},
		{`foo "a\r\nb"`, `-ERR unknown command 'foo', with args beginning with: 'a  b' `},
		{`foo ` + long, `-ERR unknown command 'foo', with args beginning with: '` + long[:128] + `' `},
		{`HGET h f`, `-ERR unknown command 'HGET', with args beginning with: 'h' 'f' `},
		{`INCR`, `-ERR wrong number of arguments for 'incr' command`},
		{`Del`, `-ERR wrong number of arguments for 'del' command`},
		{`STRLEN a b`, `-ERR wrong number of arguments for 'strlen' command`},
	})
}

func TestReadRejectsWrites(t *testing.T) {
	h := newHarness(t)
	v, err := Read(h.mem, h.env, splitArgs("SET k v"))
	if err != nil || !v.IsError() {
		t.Fatalf("Read(SET k v) = %s, %v; want an error reply", format(v), err)
	}
	if h.mem.Len() != 0 {
		t.Fatalf("Read(SET k v) wrote %d keys", h.mem.Len())
	}
	if v, _ := Read(h.mem, h.env, nil); !v.IsError() {
		t.Fatalf("Read(no args) = %s, want an error reply", format(v))
	}
}

// dataReads is a Writer that counts the reads of user data records.
type dataReads struct {
	*kvtest.Mem
	n int
}

func (r *dataReads) Get(key []byte) ([]byte, bool, error) {
	if keys.IsData(key) {
		r.n++
	}
	return r.Mem.Get(key)
}

// A SET reads the record it replaces only if the key's slot holds a key
// with an expiry: otherwise there is no index entry to move.
func TestSetReadsOldRecordOnlyInSlotsWithExpiries(t *testing.T) {
	w := &dataReads{Mem: kvtest.NewMem()}
	env := Env{NowMs: t0, LastSlot: keys.SlotCount - 1}
	reads := func(cmd string, want int) {
		t.Helper()
		w.n = 0
		if v, err := Apply(w, env, splitArgs(cmd)); err != nil || v.Kind == resp.KindError {
			t.Fatalf("%s = %v, %v", cmd, v, err)
		}
		if w.n != want {
			t.Errorf("%s read %d records, want %d", cmd, w.n, want)
		}
		checkIndex(t, w.Mem)
	}
	reads(`SET {a}1 v`, 0)
	reads(`SET {a}1 w`, 0)
	reads(`MSET {a}2 v {a}3 v`, 0)
	reads(`SET {a}4 v EX 100`, 0) // the slot's first expiry
	reads(`SET {a}1 x`, 1)        // now {a}1 might have one
	reads(`SETEX {a}2 10 v`, 1)
	reads(`SET {b}1 v`, 0) // another slot
	reads(`SET {a}1 x NX`, 1)
	reads(`PERSIST {a}4`, 1)
	reads(`PERSIST {a}2`, 1)
	reads(`SET {a}1 y`, 0) // no expiries left in the slot
	reads(`SET {a}5 v PX 10`, 0)
	env.NowMs += 10
	reads(`SHOAL.SWEEP 10`, 1) // deletes {a}5
	reads(`SET {a}1 z`, 0)
}

// A slot written before counts existed (or after FLUSHALL) gets its count
// from its first plain SET, which reads the old record like any write in a
// slot with expiries.
func TestExpiryCountOfAnUncountedSlot(t *testing.T) {
	h := newHarness(t)
	h.must(`SET {a}1 v EX 100`, `+OK`)
	h.must(`SET {a}2 v PX 5000`, `+OK`)
	slot := keys.Slot([]byte("a"))
	h.mem.Delete(keys.ExpiryCount(slot)) // as an older version wrote it
	h.must(`SET {a}1 w`, `+OK`)          // counts 2, then removes {a}1's entry
	if n, ok, _ := (&db{r: h.mem}).expiryCount(keys.ExpiryCount(slot)); !ok || n != 1 {
		t.Fatalf("count after the first SET = %d, %v; want 1", n, ok)
	}
	h.must(`TTL {a}1`, `:-1`)
	h.must(`FLUSHALL`, `+OK`)
	h.must(`SET {a}1 v`, `+OK`)
	if n, ok, _ := (&db{r: h.mem}).expiryCount(keys.ExpiryCount(slot)); !ok || n != 0 {
		t.Fatalf("count after FLUSHALL and a SET = %d, %v; want 0", n, ok)
	}
}

// Effects.ExpiryAdded tells whether a command added an expiry index entry:
// the expiry sweep rescans a shard only after such writes.
func TestEffectsReportAddedExpiries(t *testing.T) {
	w := kvtest.NewMem()
	for _, tc := range []struct {
		cmd   string
		added bool
	}{
		{`SET a v`, false},
		{`SET a v EX 100`, true},
		{`SET a w KEEPTTL`, false}, // same expiry, same entry
		{`EXPIRE a 200`, true},
		{`EXPIRE a 200 NX`, false},
		{`PERSIST a`, false},
		{`SETEX b 10 v`, true},
		{`GETEX b PX 50000`, true},
		{`GETEX b`, false},
		{`RENAME b c`, true}, // c's entry is new
		{`DEL c`, false},
		{`EXPIRE missing 10`, false},
		{`MSET d v e v`, false},
		{`SET f v PXAT 1`, false}, // in the past: removed at once
	} {
		var eff Effects
		env := Env{NowMs: t0, LastSlot: keys.SlotCount - 1, Effects: &eff}
		if v, err := Apply(w, env, splitArgs(tc.cmd)); err != nil || v.Kind == resp.KindError {
			t.Fatalf("%s = %v, %v", tc.cmd, v, err)
		}
		if eff.ExpiryAdded != tc.added {
			t.Errorf("%s: ExpiryAdded = %v, want %v", tc.cmd, eff.ExpiryAdded, tc.added)
		}
		checkIndex(t, w)
	}
}
