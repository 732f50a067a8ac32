package kv

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/shoaldb/shoal/internal/keys"
	"github.com/shoaldb/shoal/internal/resp"
)

// q runs one command line and returns its formatted reply.
func (h *harness) q(cmd string) string {
	h.t.Helper()
	return format(h.do(splitArgs(cmd)...))
}

// must runs cmd and fails the test unless the reply is want.
func (h *harness) must(cmd, want string) {
	h.t.Helper()
	if got := h.q(cmd); got != want {
		h.t.Fatalf("%s = %s, want %s", cmd, got, want)
	}
}

// bulks returns the strings of an array of bulk replies, sorted.
func bulks(v resp.Value) []string {
	var out []string
	for _, e := range v.Elems {
		out = append(out, string(e.Str))
	}
	slices.Sort(out)
	return out
}

func (h *harness) set(keys ...string) {
	for _, k := range keys {
		h.do([]byte("SET"), []byte(k), []byte("v"))
	}
}

func TestKeys(t *testing.T) {
	h := newHarness(t)
	h.set("a", "ab", "b", "h{t}1", "h{t}2", "x{t}", `a\*`)
	h.must(`SET gone v PX 100`, `+OK`)
	tests := []struct {
		pattern string
		want    []string
	}{
		{`*`, []string{"a", `a\*`, "ab", "b", "gone", "h{t}1", "h{t}2", "x{t}"}},
		{`a*`, []string{"a", `a\*`, "ab"}},
		{`?`, []string{"a", "b"}},
		{`a`, []string{"a"}},
		{`zz`, nil},
		{`a\\*`, []string{`a\*`}},
		{`h{t}*`, []string{"h{t}1", "h{t}2"}},
		{`*{t}*`, []string{"h{t}1", "h{t}2", "x{t}"}},
		{`[ab]`, []string{"a", "b"}},
	}
	for _, tt := range tests {
		got := bulks(h.do([]byte("KEYS"), []byte(tt.pattern)))
		if !slices.Equal(got, tt.want) {
			t.Errorf("KEYS %s = %q, want %q", tt.pattern, got, tt.want)
		}
	}
	// "gone" is lazily expired only once the clock passes it.
	h.env.NowMs += 100
	if got := bulks(h.do([]byte("KEYS"), []byte("g*"))); len(got) != 0 {
		t.Errorf("KEYS g* after expiry = %q, want none", got)
	}
	h.must(`DBSIZE`, `:7`)
	h.must(`KEYS`, `-ERR wrong number of arguments for 'keys' command`)

	// Only the shard's own slots count.
	slot := keys.Slot([]byte("t"))
	h.env.FirstSlot, h.env.LastSlot = slot, slot
	if got := bulks(h.do([]byte("KEYS"), []byte("*"))); !slices.Equal(got, []string{"h{t}1", "h{t}2", "x{t}"}) {
		t.Errorf("KEYS * in slot %d = %q, want the {t} keys", slot, got)
	}
	if got := bulks(h.do([]byte("KEYS"), []byte("a"))); len(got) != 0 {
		t.Errorf("KEYS a outside the shard = %q, want none", got)
	}
	h.must(`DBSIZE`, `:3`)
	h.env.FirstSlot, h.env.LastSlot = 5, 4 // an empty range
	h.must(`DBSIZE`, `:0`)
	h.must(`KEYS *`, `[]`)
	h.must(`RANDOMKEY`, `(nil)`)
}

func TestRandomKey(t *testing.T) {
	h := newHarness(t)
	h.must(`RANDOMKEY`, `(nil)`)
	var all []string
	for i := range 20 {
		all = append(all, fmt.Sprintf("key:%d", i))
	}
	h.set(all...)
	h.must(`SET dead v PX 10`, `+OK`)
	h.env.NowMs += 10
	seen := map[string]bool{}
	for r := range 2000 {
		h.env.Rand = uint64(r)
		v := h.do([]byte("RANDOMKEY"))
		if v.Kind != resp.KindBulk {
			t.Fatalf("RANDOMKEY = %s, want a key", format(v))
		}
		if string(v.Str) == "dead" {
			t.Fatalf("RANDOMKEY returned an expired key")
		}
		if again := h.do([]byte("RANDOMKEY")); string(again.Str) != string(v.Str) {
			t.Fatalf("RANDOMKEY with the same seed = %q then %q", v.Str, again.Str)
		}
		seen[string(v.Str)] = true
	}
	if len(seen) != len(all) {
		t.Errorf("RANDOMKEY picked %d distinct keys of %d over 2000 seeds", len(seen), len(all))
	}
	// With a single key, it is found from any starting slot (wrapping).
	h = newHarness(t)
	h.set("only")
	for r := range 50 {
		h.env.Rand = uint64(r)
		h.must(`RANDOMKEY`, `"only"`)
	}
}

func TestFlush(t *testing.T) {
	h := newHarness(t)
	h.set("a", "b", "{t}1")
	h.must(`EXPIRE a 100`, `:1`)
	h.must(`FLUSHALL bogus`, `-ERR syntax error`)
	h.must(`FLUSHALL SYNC ASYNC`, `-ERR syntax error`)
	slot := keys.Slot([]byte("t"))
	h.env.FirstSlot, h.env.LastSlot = slot, slot
	h.must(`FLUSHDB async`, `+OK`)
	h.env.FirstSlot, h.env.LastSlot = 0, keys.SlotCount-1
	h.must(`DBSIZE`, `:2`)
	h.must(`FLUSHALL SYNC`, `+OK`)
	h.must(`DBSIZE`, `:0`)
	if h.mem.Len() != 0 {
		t.Errorf("after FLUSHALL the store holds %d keys, want 0", h.mem.Len())
	}
	h.must(`FLUSHALL`, `+OK`)
}

// scanAll runs SCAN from slot 0 to the end with the given options and
// returns the keys found and the number of calls.
func (h *harness) scanAll(opts string) ([]string, int) {
	h.t.Helper()
	var found []string
	cursor, calls := 0, 0
	for cursor <= h.env.LastSlot {
		v := h.do(splitArgs("SCAN " + strconv.Itoa(cursor) + " " + opts)...)
		if v.Kind != resp.KindArray || len(v.Elems) != 2 {
			h.t.Fatalf("SCAN %d %s = %s", cursor, opts, format(v))
		}
		next, err := strconv.Atoi(string(v.Elems[0].Str))
		if err != nil || next <= cursor {
			h.t.Fatalf("SCAN %d %s: next cursor %q does not advance", cursor, opts, v.Elems[0].Str)
		}
		found = append(found, bulks(v.Elems[1])...)
		cursor = next
		calls++
	}
	if cursor != h.env.LastSlot+1 {
		h.t.Fatalf("SCAN ended at cursor %d, want %d", cursor, h.env.LastSlot+1)
	}
	slices.Sort(found)
	return found, calls
}

func TestScan(t *testing.T) {
	h := newHarness(t)
	var all []string
	for i := range 100 {
		all = append(all, fmt.Sprintf("k%03d", i))
	}
	h.set(all...)
	h.must(`SET dead v PX 1`, `+OK`)
	h.env.NowMs++
	slices.Sort(all)

	for _, count := range []int{1, 10, 1000} {
		got, calls := h.scanAll("COUNT " + strconv.Itoa(count))
		if !slices.Equal(got, all) {
			t.Errorf("SCAN COUNT %d found %d keys, want %d", count, len(got), len(all))
		}
		if count == 1 && calls != 100 || count == 1000 && calls != 1 {
			t.Errorf("SCAN COUNT %d took %d calls", count, calls)
		}
	}
	if got, _ := h.scanAll(""); !slices.Equal(got, all) {
		t.Errorf("SCAN found %d keys, want %d", len(got), len(all))
	}
	if got, _ := h.scanAll("MATCH k09*"); !slices.Equal(got, all[90:]) {
		t.Errorf("SCAN MATCH k09* = %q", got)
	}
	if got, _ := h.scanAll("MATCH * COUNT 5"); !slices.Equal(got, all) {
		t.Errorf("SCAN MATCH * found %d keys", len(got))
	}
	if got, _ := h.scanAll("TYPE STRING"); !slices.Equal(got, all) {
		t.Errorf("SCAN TYPE STRING found %d keys", len(got))
	}
	if got, _ := h.scanAll("TYPE hash"); len(got) != 0 {
		t.Errorf("SCAN TYPE hash = %q", got)
	}
	if got, _ := h.scanAll("TYPE nosuchtype"); len(got) != 0 {
		t.Errorf("SCAN TYPE nosuchtype = %q", got)
	}

	// A hash tag pins the scan to one slot.
	h.set("{tag}a", "{tag}b")
	slot := keys.Slot([]byte("tag"))
	h.must(`SCAN 0 MATCH {tag}*`, `["16384" ["{tag}a" "{tag}b"]]`)
	h.must(`SCAN `+strconv.Itoa(slot+1)+` MATCH {tag}*`, `["16384" []]`)

	h.must(`SCAN 16384`, `["16384" []]`)
	h.must(`SCAN 99999999999999999999`, `-ERR invalid cursor`)
	h.must(`SCAN -1`, `-ERR invalid cursor`)
	h.must(`SCAN x`, `-ERR invalid cursor`)
	h.must(`SCAN 0 COUNT 0`, `-ERR syntax error`)
	h.must(`SCAN 0 COUNT x`, `-ERR value is not an integer or out of range`)
	h.must(`SCAN 0 COUNT`, `-ERR syntax error`)
	h.must(`SCAN 0 BOGUS 1`, `-ERR syntax error`)
	h.must(`SCAN`, `-ERR wrong number of arguments for 'scan' command`)

	// A shard scans only its own slots, starting at its first.
	h.env.FirstSlot, h.env.LastSlot = slot, slot
	h.must(`SCAN 0`, `["`+strconv.Itoa(slot+1)+`" ["{tag}a" "{tag}b"]]`)
	h.must(`SCAN 0 MATCH *`, `["`+strconv.Itoa(slot+1)+`" ["{tag}a" "{tag}b"]]`)
}

// TestScanWhileWriting checks the SCAN guarantee: a key present for the
// whole scan is returned, whatever is added and deleted in between.
func TestScanWhileWriting(t *testing.T) {
	h := newHarness(t)
	var stable []string
	for i := range 200 {
		stable = append(stable, fmt.Sprintf("s%d", i))
	}
	h.set(stable...)
	found := map[string]bool{}
	cursor, i := 0, 0
	for cursor < keys.SlotCount {
		v := h.do(splitArgs("SCAN " + strconv.Itoa(cursor) + " COUNT 3")...)
		for _, k := range v.Elems[1].Elems {
			found[string(k.Str)] = true
		}
		cursor, _ = strconv.Atoi(string(v.Elems[0].Str))
		// Churn: add and remove other keys between calls.
		h.set(fmt.Sprintf("churn%d", i))
		h.do([]byte("DEL"), []byte(fmt.Sprintf("churn%d", i-5)))
		i++
	}
	for _, k := range stable {
		if !found[k] {
			t.Errorf("SCAN missed %q, present for the whole scan", k)
		}
	}
}

func TestSlotCommands(t *testing.T) {
	h := newHarness(t)
	h.set("{s}a", "{s}b", "{s}c", "other")
	h.must(`SET {s}d v PX 5`, `+OK`)
	h.env.NowMs += 5
	slot := strconv.Itoa(keys.Slot([]byte("s")))
	h.must(`SHOAL.COUNTKEYSINSLOT `+slot, `:3`)
	h.must(`SHOAL.GETKEYSINSLOT `+slot+` 10`, `["{s}a" "{s}b" "{s}c"]`)
	h.must(`SHOAL.GETKEYSINSLOT `+slot+` 2`, `["{s}a" "{s}b"]`)
	h.must(`SHOAL.GETKEYSINSLOT `+slot+` 0`, `[]`)
	h.must(`SHOAL.COUNTKEYSINSLOT 16384`, `-ERR Invalid slot`)
	h.must(`SHOAL.COUNTKEYSINSLOT -1`, `-ERR Invalid slot`)
	h.must(`SHOAL.COUNTKEYSINSLOT x`, `-ERR value is not an integer or out of range`)
	h.must(`SHOAL.GETKEYSINSLOT 16384 1`, `-ERR Invalid slot or number of keys`)
	h.must(`SHOAL.GETKEYSINSLOT 1 -1`, `-ERR Invalid slot or number of keys`)
	h.must(`SHOAL.GETKEYSINSLOT 1 x`, `-ERR value is not an integer or out of range`)
	h.env.FirstSlot, h.env.LastSlot = 0, 0
	if slot != "0" {
		h.must(`SHOAL.COUNTKEYSINSLOT `+slot, `:0`)
		h.must(`SHOAL.GETKEYSINSLOT `+slot+` 10`, `[]`)
	}
}

func TestExpiryBoundary(t *testing.T) {
	runScript(t, []step{
		{`SET k v PX 100`, `+OK`},
		{`@advance 99`, ``},
		{`GET k`, `"v"`},
		{`PTTL k`, `:1`},
		{`@advance 1`, ``}, // now == expireAt: expired
		{`GET k`, `(nil)`},
		{`EXISTS k`, `:0`},
		{`TTL k`, `:-2`},
		{`DBSIZE`, `:0`},
		{`KEYS *`, `[]`},
		{`SHOAL.EXPIRED 10`, `:1`},
		{`STRLEN k`, `:0`},
		// A write that touches the expired key deletes it first.
		{`INCR k`, `:1`},
		{`TTL k`, `:-1`},
		{`SHOAL.EXPIRED 10`, `:0`},
		{`SET a v PX 10`, `+OK`},
		{`@advance 10`, ``},
		{`APPEND a x`, `:1`},
		{`GET a`, `"x"`},
		{`SET b v PX 10`, `+OK`},
		{`@advance 10`, ``},
		{`SET b w NX`, `+OK`},
		{`SET c v PX 10`, `+OK`},
		{`@advance 10`, ``},
		{`RENAME c d`, `-ERR no such key`},
		{`DEL c`, `:0`},
		{`SET e v PX 10`, `+OK`},
		{`@advance 10`, ``},
		{`EXPIRE e 100`, `:0`},
		{`PERSIST e`, `:0`},
		{`GETEX e PERSIST`, `(nil)`},
		{`SHOAL.EXPIRED 10`, `:0`},
	})
}

func TestReadNeverWrites(t *testing.T) {
	h := newHarness(t)
	h.must(`SET k v PX 10`, `+OK`)
	h.must(`SET j v`, `+OK`)
	h.env.NowMs += 10
	before := dump(t, h.mem)
	for _, s := range Specs() {
		if s.Flags&ReadOnly == 0 {
			continue
		}
		for _, cmd := range []string{"k", "k k", "j", "* COUNT 1", "0", "0 1", "ENCODING k", "USAGE k", "10"} {
			args := append([][]byte{[]byte(s.Name)}, splitArgs(cmd)...)
			if _, err := Read(h.mem, h.env, args); err != nil {
				t.Fatalf("Read(%s): %v", fmtArgs(args), err)
			}
		}
	}
	if after := dump(t, h.mem); string(after) != string(before) {
		t.Errorf("Read changed the store:\nbefore %s\nafter %s", before, after)
	}
}

func TestNextExpiry(t *testing.T) {
	h := newHarness(t)
	start := h.env.NowMs
	next := func(want int64, wantOK bool) {
		t.Helper()
		at, ok, err := NextExpiry(h.mem, h.env)
		if err != nil || ok != wantOK || ok && at != want {
			t.Fatalf("NextExpiry = %d, %v, %v; want %d, %v", at, ok, err, want, wantOK)
		}
	}
	next(0, false)
	h.must(`SET a v`, `+OK`)
	next(0, false)
	h.must(`SET a v PX 500`, `+OK`)
	h.must(`SET {b}x v PX 200`, `+OK`) // another slot
	next(start+200, true)
	h.must(`PERSIST {b}x`, `:1`)
	next(start+500, true)
	sb := keys.Slot([]byte("b"))
	h.env.FirstSlot, h.env.LastSlot = sb, sb // a shard of {b}'s slot only
	next(0, false)

	// A malformed entry first in its slot (shorter than any expiry key)
	// does not hide the slot: it is due at once, and the sweep drops it.
	h.env.FirstSlot, h.env.LastSlot = 0, keys.SlotCount-1
	sa := keys.Slot([]byte("a"))
	lo, _ := keys.ExpiryIndexSpan(sa)
	if err := h.mem.Set(append(lo, 0), nil); err != nil {
		t.Fatal(err)
	}
	// The slot's count, as a count made after the corruption would be.
	if err := h.mem.Set(keys.ExpiryCount(sa), binary.BigEndian.AppendUint64(nil, 2)); err != nil {
		t.Fatal(err)
	}
	next(0, true)
	h.must(`SHOAL.SWEEP 10`, `:0`)
	next(start+500, true)
	checkIndex(t, h.mem) // the count lost the dropped entry
}

func TestSweep(t *testing.T) {
	h := newHarness(t)
	for i := range 50 {
		k := fmt.Sprintf("k%d", i)
		switch i % 3 {
		case 0:
			h.must(`SET `+k+` v PX `+strconv.Itoa(10+i), `+OK`) // expires at now+10+i
		case 1:
			h.must(`SET `+k+` v PX 1000`, `+OK`)
		default:
			h.must(`SET `+k+` v`, `+OK`)
		}
	}
	h.must(`SHOAL.EXPIRED 100`, `:0`)
	h.must(`SHOAL.SWEEP 100`, `:0`)
	h.env.NowMs += 10 + 24 // keys k0, k3 ... k24 (i <= 24, i%3 == 0) are due
	h.must(`SHOAL.EXPIRED 100`, `:9`)
	h.must(`SHOAL.EXPIRED 4`, `:4`)
	h.must(`SHOAL.EXPIRED 0`, `:0`)
	h.must(`SHOAL.SWEEP 4`, `:4`)
	checkIndex(t, h.mem)
	h.must(`SHOAL.EXPIRED 100`, `:5`)
	h.must(`SHOAL.SWEEP 100`, `:5`)
	checkIndex(t, h.mem)
	h.must(`SHOAL.EXPIRED 100`, `:0`)
	h.must(`SHOAL.SWEEP 100`, `:0`)
	// Exactly the due keys are gone from storage; the rest are untouched.
	for i := range 50 {
		_, ok, _ := h.mem.Get(keys.Data([]byte(fmt.Sprintf("k%d", i))))
		if want := !(i%3 == 0 && i <= 24); ok != want {
			t.Errorf("after sweep, record k%d present = %v, want %v", i, ok, want)
		}
	}
	h.must(`DBSIZE`, `:41`)
	h.env.NowMs += 1000
	h.must(`SHOAL.SWEEP 1000`, `:25`)
	h.must(`DBSIZE`, `:16`)
	h.must(`SHOAL.SWEEP -1`, `-ERR value is out of range, must be positive`)
	h.must(`SHOAL.SWEEP x`, `-ERR value is not an integer or out of range`)
	h.must(`SHOAL.EXPIRED x`, `-ERR value is not an integer or out of range`)

	// A shard sweeps only its own slots.
	h = newHarness(t)
	h.must(`SET {a}1 v PX 1`, `+OK`)
	h.must(`SET {b}1 v PX 1`, `+OK`)
	h.env.NowMs++
	sa := keys.Slot([]byte("a"))
	h.env.FirstSlot, h.env.LastSlot = sa, sa
	h.must(`SHOAL.SWEEP 10`, `:1`)
	h.env.FirstSlot, h.env.LastSlot = 0, keys.SlotCount-1
	h.must(`SHOAL.EXPIRED 10`, `:1`)
	if strings.Contains(string(dump(t, h.mem)), "{a}1") {
		t.Errorf("{a}1 survived its shard's sweep")
	}
}

// An index entry without its record (left by the blind SETs of b9e81a5, or
// by corruption) is counted by the first SET of its slot; the sweep that
// drops it must take it off the count.
func TestSweepUncountsOrphanEntry(t *testing.T) {
	h := newHarness(t)
	h.must(`SET {a}1 v PX 100000`, `+OK`)
	slot := keys.Slot([]byte("a"))
	h.mem.Delete(keys.ExpiryCount(slot))               // as an older version left it
	h.mem.Set(keys.Expiry([]byte("{a}2"), t0+50), nil) // a stale entry, as b9e81a5 left them
	h.must(`SET {a}3 v`, `+OK`)                        // counts 2 entries
	h.env.NowMs += 60
	h.must(`SHOAL.SWEEP 10`, `:0`) // drops the stale entry
	checkIndex(t, h.mem)
	if n, ok, _ := (&db{r: h.mem}).expiryCount(keys.ExpiryCount(slot)); !ok || n != 1 {
		t.Fatalf("count after the sweep = %d, %v; want 1", n, ok)
	}
}
