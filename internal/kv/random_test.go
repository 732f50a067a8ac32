package kv

import (
	"bytes"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/shoaldb/shoal/internal/keys"
	"github.com/shoaldb/shoal/internal/kv/kvtest"
	"github.com/shoaldb/shoal/internal/resp"
)

// cmdGen generates random commands, valid and not, over a small keyspace
// so that commands collide on keys. Every choice comes from next, so a
// fuzzer can drive it as well as a PRNG.
type cmdGen struct {
	next func(n int) int // a number in [0, n)
	now  func() int64
}

// The randomized tests use keys in slots [0, genLastSlot] and shards
// covering just those slots: SHOAL.SWEEP and SHOAL.EXPIRED visit the index
// slot by slot, and kvtest.Mem iterates by scanning its whole map, so a
// full 16384-slot shard would make every sweep slow.
const genLastSlot = 255

// lowSlotKeys returns n keys "<prefix><i>" whose slots are at most
// genLastSlot.
func lowSlotKeys(prefix string, n int) []string {
	var ks []string
	for i := 0; len(ks) < n; i++ {
		k := prefix + strconv.Itoa(i)
		if keys.Slot([]byte(k)) <= genLastSlot {
			ks = append(ks, k)
		}
	}
	return ks
}

// lowTag is a hash tag whose slot is at most genLastSlot.
var lowTag = "{" + lowSlotKeys("t", 1)[0] + "}"

var (
	genKeys  = append(lowSlotKeys("k", 3), lowTag+"c", lowTag+"d")
	genWords = []string{
		"NX", "XX", "GT", "LT", "EX", "PX", "EXAT", "PXAT", "KEEPTTL", "GET", "PERSIST", "IFEQ",
		"MATCH", "COUNT", "TYPE", "SAMPLES", "ENCODING", "USAGE", "IDLETIME", "FREQ", "HELP",
		"*", "k*", "{t*", "*c", "string", "SYNC", "ASYNC", "", "x", "abc",
	}
	genNums = []string{
		"0", "1", "-1", "2", "10", "100", "1500", "0.5", "1e3", "inf", "-0", "01",
		"9223372036854775807", "-9223372036854775808", "536870912",
	}
)

func (g *cmdGen) pick(list []string) string { return list[g.next(len(list))] }

func (g *cmdGen) arg() string {
	switch g.next(6) {
	case 0, 1:
		return g.pick(genKeys)
	case 2:
		return g.pick(genWords)
	case 3:
		return g.pick(genNums)
	case 4: // absolute times around now, in s and ms
		now := g.now()
		if g.next(2) == 0 {
			return strconv.FormatInt(now/1000+int64(g.next(5))-2, 10)
		}
		return strconv.FormatInt(now+int64(g.next(4000))-1000, 10)
	default:
		return strconv.Itoa(g.next(3000))
	}
}

// command returns a random command: usually of the right arity, with keys
// where the spec has them and subcommands for OBJECT and MEMORY.
func (g *cmdGen) command() [][]byte {
	specs := Specs()
	n := g.next(len(specs) + 2)
	if n == len(specs) {
		return [][]byte{[]byte("bogus"), []byte(g.arg())}
	}
	s := Lookup([]byte("set")) // extra weight
	if n < len(specs) {
		s = specs[n]
	}
	if (s.Name == "flushall" || s.Name == "flushdb") && g.next(10) != 0 {
		s = Lookup([]byte("get")) // wiping everything often makes for dull runs
	}
	nargs := s.Arity - 1
	if s.Arity < 0 {
		nargs = -s.Arity - 1 + g.next(4)
	}
	if g.next(10) == 0 {
		nargs = g.next(6) // often the wrong arity
	}
	name := s.Name
	if g.next(2) == 0 {
		name = strings.ToUpper(name)
	}
	args := [][]byte{[]byte(name)}
	for i := 1; i <= nargs; i++ {
		var a string
		switch {
		case i == 1 && s.Name == "object":
			a = g.pick([]string{"ENCODING", "REFCOUNT", "IDLETIME", "FREQ", "HELP", "x"})
		case i == 1 && s.Name == "memory":
			a = g.pick([]string{"USAGE", "USAGE", "HELP", "DOCTOR"})
		case i >= s.FirstKey && s.FirstKey > 0 && (s.Step == 1 || (i-s.FirstKey)%2 == 0) &&
			(s.LastKey < 0 || i <= s.LastKey) && g.next(8) != 0:
			a = g.pick(genKeys)
		default:
			a = g.arg()
		}
		args = append(args, []byte(a))
	}
	return args
}

// TestRandomInvariants runs random commands, advancing the clock and
// sweeping now and then, and checks the expiry index after every step.
func TestRandomInvariants(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 7))
		h := newHarness(t)
		h.env.LastSlot = genLastSlot
		g := &cmdGen{next: rng.IntN, now: func() int64 { return h.env.NowMs }}
		for i := range 2000 {
			h.env.Rand = rng.Uint64()
			if rng.IntN(10) == 0 {
				h.env.NowMs += int64(rng.IntN(3000))
			}
			args := g.command()
			if rng.IntN(20) == 0 {
				args = [][]byte{[]byte("SHOAL.SWEEP"), []byte(strconv.Itoa(rng.IntN(4)))}
			}
			h.do(args...)
			checkIndex(t, h.mem)
			if t.Failed() {
				t.Fatalf("seed %d step %d: invariant broken after %s", seed, i, fmtArgs(args))
			}
		}
	}
}

// TestDeterminism applies one random command sequence to two stores. The
// second also serves random reads in between, which must not change it.
// The stores and the replies must be identical.
func TestDeterminism(t *testing.T) {
	for seed := range uint64(10) {
		rng := rand.New(rand.NewPCG(seed, 11))
		a, b := kvtest.NewMem(), kvtest.NewMem()
		env := Env{NowMs: t0, LastSlot: genLastSlot}
		g := &cmdGen{next: rng.IntN, now: func() int64 { return env.NowMs }}
		noise := &cmdGen{next: rand.New(rand.NewPCG(seed, 12)).IntN, now: g.now}
		for i := range 2000 {
			env.NowMs += int64(rng.IntN(200))
			env.Rand = rng.Uint64()
			args := g.command()
			if s := Lookup(args[0]); s != nil && s.Flags&ReadOnly != 0 {
				continue // reads go to b only, as noise
			}
			va, erra := Apply(a, env, args)
			for range 3 {
				if _, err := Read(b, env, noise.command()); err != nil {
					t.Fatal(err)
				}
			}
			vb, errb := Apply(b, env, args)
			if erra != nil || errb != nil {
				t.Fatalf("seed %d: %s: errors %v, %v", seed, fmtArgs(args), erra, errb)
			}
			if format(va) != format(vb) {
				t.Fatalf("seed %d step %d: %s replied %s and %s", seed, i, fmtArgs(args), format(va), format(vb))
			}
		}
		if da, db := dump(t, a), dump(t, b); !bytes.Equal(da, db) {
			t.Fatalf("seed %d: stores differ:\n%s\n---\n%s", seed, da, db)
		}
	}
}

// model is the naive reference for TestDifferential: a map from key to
// value and expiry time.
type model struct {
	m   map[string]modelEntry
	now int64
}

type modelEntry struct {
	val      string
	expireAt int64 // 0: none
}

func (m *model) get(k string) (modelEntry, bool) {
	e, ok := m.m[k]
	if ok && e.expireAt != 0 && e.expireAt <= m.now {
		delete(m.m, k)
		return modelEntry{}, false
	}
	return e, ok
}

func bulk(s string) string { return strconv.Quote(s) }

// apply runs one command on the model and returns the expected reply.
func (m *model) apply(args []string) string {
	k := ""
	if len(args) > 1 {
		k = args[1]
	}
	switch args[0] {
	case "GET":
		if e, ok := m.get(k); ok {
			return bulk(e.val)
		}
		return "(nil)"
	case "SET": // SET k v [NX|XX] [GET] [PX ms|KEEPTTL]
		old, found := m.get(k)
		reply := "+OK"
		var nx, xx, get, keep bool
		var exp int64
		for i := 3; i < len(args); i++ {
			switch args[i] {
			case "NX":
				nx = true
			case "XX":
				xx = true
			case "GET":
				get = true
			case "KEEPTTL":
				keep = true
			case "PX":
				ms, _ := strconv.ParseInt(args[i+1], 10, 64)
				exp = m.now + ms
				i++
			}
		}
		if get {
			reply = "(nil)"
			if found {
				reply = bulk(old.val)
			}
		}
		if nx && found || xx && !found {
			if get {
				return reply
			}
			return "(nil)"
		}
		if keep && found {
			exp = old.expireAt
		}
		m.m[k] = modelEntry{val: args[2], expireAt: exp}
		return reply
	case "INCRBY":
		e, ok := m.get(k)
		n := int64(0)
		if ok {
			var err error
			if n, err = strconv.ParseInt(e.val, 10, 64); err != nil || strconv.FormatInt(n, 10) != e.val {
				return "-ERR value is not an integer or out of range"
			}
		}
		d, _ := strconv.ParseInt(args[2], 10, 64)
		if d > 0 && n > math.MaxInt64-d || d < 0 && n < math.MinInt64-d {
			return "-ERR increment or decrement would overflow"
		}
		e.val = strconv.FormatInt(n+d, 10)
		m.m[k] = e
		return ":" + e.val
	case "DEL":
		n := 0
		for _, k := range args[1:] {
			if _, ok := m.get(k); ok {
				delete(m.m, k)
				n++
			}
		}
		return ":" + strconv.Itoa(n)
	case "EXISTS":
		n := 0
		for _, k := range args[1:] {
			if _, ok := m.get(k); ok {
				n++
			}
		}
		return ":" + strconv.Itoa(n)
	case "PEXPIRE":
		e, ok := m.get(k)
		if !ok {
			return ":0"
		}
		ms, _ := strconv.ParseInt(args[2], 10, 64)
		if ms <= 0 {
			delete(m.m, k)
			return ":1"
		}
		e.expireAt = m.now + ms
		m.m[k] = e
		return ":1"
	case "PERSIST":
		e, ok := m.get(k)
		if !ok || e.expireAt == 0 {
			return ":0"
		}
		e.expireAt = 0
		m.m[k] = e
		return ":1"
	case "PTTL":
		e, ok := m.get(k)
		switch {
		case !ok:
			return ":-2"
		case e.expireAt == 0:
			return ":-1"
		}
		return ":" + strconv.FormatInt(e.expireAt-m.now, 10)
	case "APPEND":
		e, _ := m.get(k)
		e.val += args[2]
		m.m[k] = e
		return ":" + strconv.Itoa(len(e.val))
	case "STRLEN":
		e, _ := m.get(k)
		return ":" + strconv.Itoa(len(e.val))
	case "GETDEL":
		e, ok := m.get(k)
		if !ok {
			return "(nil)"
		}
		delete(m.m, k)
		return bulk(e.val)
	case "GETSET":
		e, ok := m.get(k)
		m.m[k] = modelEntry{val: args[2]}
		if !ok {
			return "(nil)"
		}
		return bulk(e.val)
	case "MSET":
		for i := 1; i+1 < len(args); i += 2 {
			m.m[args[i]] = modelEntry{val: args[i+1]}
		}
		return "+OK"
	case "MGET":
		var out []string
		for _, k := range args[1:] {
			if e, ok := m.get(k); ok {
				out = append(out, bulk(e.val))
			} else {
				out = append(out, "(nil)")
			}
		}
		return "[" + joinSpace(out) + "]"
	case "RENAME":
		e, ok := m.get(k)
		if !ok {
			return "-ERR no such key"
		}
		delete(m.m, k)
		m.m[args[2]] = e
		return "+OK"
	case "DBSIZE":
		n := 0
		for k := range m.m {
			if _, ok := m.get(k); ok {
				n++
			}
		}
		return ":" + strconv.Itoa(n)
	case "GETRANGE": // only 0 -1 is generated
		e, _ := m.get(k)
		return bulk(e.val)
	}
	panic("model: unknown command " + args[0])
}

func joinSpace(s []string) string {
	var b bytes.Buffer
	for i, x := range s {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(x)
	}
	return b.String()
}

// TestDifferential compares kv with the map model on random commands over
// a few keys, with the clock moving so that keys expire between commands.
func TestDifferential(t *testing.T) {
	x1, x2 := lowTag+"1", lowTag+"2"
	keysPool := append(lowSlotKeys("k", 3), x1, x2)
	vals := []string{"", "0", "1", "-7", "abc", "x y", "9223372036854775806", "-9223372036854775807"}
	for seed := range uint64(30) {
		rng := rand.New(rand.NewPCG(seed, 3))
		h := newHarness(t)
		h.env.FirstSlot, h.env.LastSlot = 0, genLastSlot
		m := &model{m: map[string]modelEntry{}, now: h.env.NowMs}
		key := func() string { return keysPool[rng.IntN(len(keysPool))] }
		val := func() string { return vals[rng.IntN(len(vals))] }
		ms := func() string { return strconv.Itoa(rng.IntN(400) - 50) }
		for i := range 3000 {
			if rng.IntN(4) == 0 {
				h.env.NowMs += int64(rng.IntN(100))
				m.now = h.env.NowMs
			}
			var args []string
			switch rng.IntN(17) {
			case 0:
				args = []string{"GET", key()}
			case 1:
				args = []string{"SET", key(), val()}
				for _, opt := range []string{"NX", "XX", "GET", "KEEPTTL", "PX"} {
					if rng.IntN(4) != 0 || opt == "XX" && slices.Contains(args, "NX") {
						continue
					}
					if opt == "PX" && !slices.Contains(args, "KEEPTTL") {
						args = append(args, "PX", strconv.Itoa(1+rng.IntN(300)))
					} else if opt != "PX" {
						args = append(args, opt)
					}
				}
			case 2:
				args = []string{"INCRBY", key(), strconv.Itoa(rng.IntN(21) - 10)}
			case 3:
				args = []string{"DEL", key(), key()}
			case 4:
				args = []string{"EXISTS", key(), key()}
			case 5:
				args = []string{"PEXPIRE", key(), ms()}
			case 6:
				args = []string{"PERSIST", key()}
			case 7:
				args = []string{"PTTL", key()}
			case 8:
				args = []string{"APPEND", key(), val()}
			case 9:
				args = []string{"STRLEN", key()}
			case 10:
				args = []string{"GETDEL", key()}
			case 11:
				args = []string{"GETSET", key(), val()}
			case 12:
				args = []string{"MSET", key(), val(), key(), val()}
			case 13:
				args = []string{"MGET", key(), key(), key()}
			case 14:
				args = []string{"RENAME", x1, x2}
			case 15:
				args = []string{"DBSIZE"}
			case 16:
				args = []string{"GETRANGE", key(), "0", "-1"}
			}
			if rng.IntN(50) == 0 {
				h.do([]byte("SHOAL.SWEEP"), []byte("3")) // invisible to the model
			}
			bargs := make([][]byte, len(args))
			for i, a := range args {
				bargs[i] = []byte(a)
			}
			got, want := format(h.do(bargs...)), m.apply(args)
			if got != want {
				t.Fatalf("seed %d step %d: %s = %s, model says %s", seed, i, fmtArgs(bargs), got, want)
			}
			checkIndex(t, h.mem)
		}
		var live []string
		for k := range m.m {
			if _, ok := m.get(k); ok {
				live = append(live, k)
			}
		}
		slices.Sort(live)
		if got := bulks(h.do([]byte("KEYS"), []byte("*"))); !slices.Equal(got, live) {
			t.Fatalf("seed %d: KEYS * = %q, model has %q", seed, got, live)
		}
	}
}

// FuzzApply decodes the input into a command sequence and checks that kv
// never panics, never fails on a healthy store, keeps the expiry index in
// step and that Read never writes.
func FuzzApply(f *testing.F) {
	f.Add([]byte("\x05\x01\x02\x03\x04\x05\x06\x07\x08"))
	f.Add([]byte("SET a 1 EX 10 GET\x00INCR a"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pos := 0
		next := func(n int) int {
			if pos >= len(data) {
				return 0
			}
			b := int(data[pos])
			pos++
			return b % n
		}
		mem := kvtest.NewMem()
		env := Env{NowMs: t0, LastSlot: genLastSlot}
		g := &cmdGen{next: next, now: func() int64 { return env.NowMs }}
		for steps := 0; pos < len(data) && steps < 200; steps++ {
			env.NowMs += int64(next(256)) * 10
			env.Rand = uint64(next(256))
			args := g.command()
			var v resp.Value
			var err error
			if s := Lookup(args[0]); s != nil && s.Flags&ReadOnly != 0 {
				before := dump(t, mem)
				v, err = Read(mem, env, args)
				if !bytes.Equal(before, dump(t, mem)) {
					t.Fatalf("Read(%s) wrote to the store", fmtArgs(args))
				}
			} else {
				v, err = Apply(mem, env, args)
			}
			if err != nil {
				t.Fatalf("%s: error %v", fmtArgs(args), err)
			}
			if v.Kind == 0 {
				t.Fatalf("%s: zero reply", fmtArgs(args))
			}
			checkIndex(t, mem)
		}
	})
}
