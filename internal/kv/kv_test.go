package kv

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/shoaldb/shoal/internal/keys"
	"github.com/shoaldb/shoal/internal/kv/kvtest"
	"github.com/shoaldb/shoal/internal/resp"
)

// t0 is the default test clock: some time in 2026, in Unix ms.
const t0 = 1_780_000_000_000

// harness runs commands against a kvtest.Mem the way a replica would:
// ReadOnly commands through Read, the others through Apply.
type harness struct {
	t   testing.TB
	mem *kvtest.Mem
	env Env
}

func newHarness(t testing.TB) *harness {
	return &harness{t: t, mem: kvtest.NewMem(), env: Env{NowMs: t0, Rand: 1, FirstSlot: 0, LastSlot: keys.SlotCount - 1}}
}

func (h *harness) do(args ...[]byte) resp.Value {
	h.t.Helper()
	var v resp.Value
	var err error
	if s := Lookup(args[0]); s != nil && s.Flags&ReadOnly != 0 {
		v, err = Read(h.mem, h.env, args)
	} else {
		v, err = Apply(h.mem, h.env, args)
	}
	if err != nil {
		h.t.Fatalf("%s: unexpected error %v", fmtArgs(args), err)
	}
	return v
}

// step is one line of a script: a command and its expected reply, both in
// the notation of splitArgs and format. Commands starting with '@' drive
// the harness: "@now <ms>" sets the clock, "@advance <ms>" moves it,
// "@slots <first> <last>" sets the shard's range, "@rand <n>" the seed.
type step struct {
	cmd, want string
}

func (h *harness) run(steps []step) {
	h.t.Helper()
	for _, s := range steps {
		args := splitArgs(s.cmd)
		if strings.HasPrefix(s.cmd, "@") {
			h.directive(args)
			continue
		}
		got := format(h.do(args...))
		if got != s.want {
			h.t.Errorf("%s = %s, want %s", s.cmd, got, s.want)
		}
		checkIndex(h.t, h.mem)
	}
}

func (h *harness) directive(args [][]byte) {
	h.t.Helper()
	num := func(i int) int64 {
		n, err := strconv.ParseInt(string(args[i]), 10, 64)
		if err != nil {
			h.t.Fatalf("bad directive %q", args)
		}
		return n
	}
	switch string(args[0]) {
	case "@now":
		h.env.NowMs = num(1)
	case "@advance":
		h.env.NowMs += num(1)
	case "@slots":
		h.env.FirstSlot, h.env.LastSlot = int(num(1)), int(num(2))
	case "@rand":
		h.env.Rand = uint64(num(1))
	default:
		h.t.Fatalf("unknown directive %q", args[0])
	}
}

func runScript(t *testing.T, steps []step) {
	t.Helper()
	newHarness(t).run(steps)
}

// splitArgs splits a command line at spaces; an argument in double quotes
// is a Go string literal (so it may hold spaces, escapes, or be empty).
func splitArgs(s string) [][]byte {
	var args [][]byte
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		if s[0] == '"' {
			q, err := strconv.QuotedPrefix(s)
			if err != nil {
				panic(fmt.Sprintf("bad quoted argument in %q", s))
			}
			u, _ := strconv.Unquote(q)
			args = append(args, []byte(u))
			s = s[len(q):]
			continue
		}
		i := strings.IndexByte(s, ' ')
		if i < 0 {
			i = len(s)
		}
		args = append(args, []byte(s[:i]))
		s = s[i:]
	}
	return args
}

func fmtArgs(args [][]byte) string {
	var b strings.Builder
	for i, a := range args {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.Quote(string(a)))
	}
	return b.String()
}

// format renders a reply compactly: +simple, -error, :int, "bulk", (nil),
// [elem elem].
func format(v resp.Value) string {
	switch v.Kind {
	case resp.KindSimple:
		return "+" + string(v.Str)
	case resp.KindError:
		return "-" + string(v.Str)
	case resp.KindInt:
		return ":" + strconv.FormatInt(v.Int, 10)
	case resp.KindBulk:
		return strconv.Quote(string(v.Str))
	case resp.KindNull, resp.KindNullArray:
		return "(nil)"
	case resp.KindArray:
		parts := make([]string, len(v.Elems))
		for i, e := range v.Elems {
			parts[i] = format(e)
		}
		return "[" + strings.Join(parts, " ") + "]"
	}
	return fmt.Sprintf("?%v", v)
}

// checkIndex verifies the expiry index invariant: every record with an
// expiry time has exactly one index entry, at that time, every index entry
// belongs to such a record, and a slot's count record, where there is one,
// counts the slot's entries. It also checks every record decodes.
func checkIndex(t testing.TB, r Reader) {
	t.Helper()
	records := map[string]int64{} // user key -> expireAt, for records with one
	entries := map[string][]int64{}
	counts := map[int]uint64{}      // slot -> its count record
	slotEntries := map[int]uint64{} // slot -> its index entries
	err := r.Iterate([]byte{'u'}, []byte{'v'}, func(k, v []byte) bool {
		slot := int(k[1])<<8 | int(k[2])
		switch {
		case keys.IsExpiryCount(k):
			if len(v) != 8 {
				t.Errorf("count record %q = %q, want 8 bytes", k, v)
				return true
			}
			counts[slot] = binary.BigEndian.Uint64(v)
		case keys.IsData(k):
			rec, err := decodeRecord(v)
			if err != nil {
				t.Errorf("record %q: %v", k, err)
				return true
			}
			if keys.Slot(keys.DataUserKey(k)) != int(k[1])<<8|int(k[2]) {
				t.Errorf("record %q stored under the wrong slot", k)
			}
			if rec.expireAt != 0 {
				records[string(keys.DataUserKey(k))] = rec.expireAt
			}
		case len(k) >= 12 && k[3] == 'x':
			if len(v) != 0 {
				t.Errorf("index entry %q has value %q, want empty", k, v)
			}
			key, at := keys.DecodeExpiry(k)
			entries[string(key)] = append(entries[string(key)], at)
			slotEntries[slot]++
		default:
			t.Errorf("unexpected key %q in user span", k)
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	for key, at := range records {
		if e := entries[key]; len(e) != 1 || e[0] != at {
			t.Errorf("key %q expires at %d but its index entries are %v", key, at, e)
		}
	}
	for key, e := range entries {
		if _, ok := records[key]; !ok {
			t.Errorf("index entries %v for key %q, which has no expiry", e, key)
		}
	}
	for slot, n := range counts {
		if n != slotEntries[slot] {
			t.Errorf("slot %d counts %d index entries, has %d", slot, n, slotEntries[slot])
		}
	}
}

// dump returns every key and value of m in order, for comparing stores.
func dump(t testing.TB, m *kvtest.Mem) []byte {
	var b bytes.Buffer
	err := m.Iterate(nil, nil, func(k, v []byte) bool {
		fmt.Fprintf(&b, "%q=%q\n", k, v)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
