package kv

import (
	"bytes"
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
// "@slots <first> <last>" sets the shard's range, "@rand <n>" the seed,
// "@maxvalue <n>" and "@maxreply <n>" Env.MaxValueLen and MaxReplyLen.
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
	case "@maxvalue":
		h.env.MaxValueLen = num(1)
	case "@maxreply":
		h.env.MaxReplyLen = num(1)
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

// checkIndex fails the test if CheckIndex finds the store's user data
// breaking the invariants of record.go.
func checkIndex(t testing.TB, r Reader) {
	t.Helper()
	if err := CheckIndex(r, 0, keys.SlotCount-1); err != nil {
		t.Error(err)
	}
}

// dump returns every key and value of m in order, for comparing stores.
func dump(t testing.TB, r Reader) []byte {
	var b bytes.Buffer
	err := r.Iterate(nil, nil, func(k, v []byte) bool {
		fmt.Fprintf(&b, "%q=%q\n", k, v)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
