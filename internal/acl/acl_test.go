package acl

import (
	"bytes"
	"errors"
	"math/rand"
	"strings"
	"testing"
)

// testTable is a small command table with the shapes that matter: plain
// commands, a container, a no-auth command, pub/sub.
func testTable() *Table {
	return NewTable([]*Command{
		{Name: "get", Categories: CatRead | CatString | CatFast},
		{Name: "set", Categories: CatWrite | CatString | CatSlow},
		{Name: "del", Categories: CatKeyspace | CatWrite | CatSlow},
		{Name: "flushall", Categories: CatKeyspace | CatWrite | CatSlow | CatDangerous},
		{Name: "select", Categories: CatFast | CatConnection},
		{Name: "auth", Categories: CatFast | CatConnection, NoAuth: true},
		{Name: "publish", Categories: CatPubSub | CatFast},
		{Name: "psubscribe", Categories: CatPubSub | CatSlow},
		{Name: "config", Subs: []*Command{
			{Name: "config|get", Categories: CatAdmin | CatSlow | CatDangerous},
			{Name: "config|set", Categories: CatAdmin | CatSlow | CatDangerous},
		}},
	})
}

// rnd is a fixed source of salts: tests are deterministic.
func rnd() *rand.Rand { return rand.New(rand.NewSource(1)) }

func bs(ops ...string) [][]byte {
	out := make([][]byte, len(ops))
	for i, op := range ops {
		out[i] = []byte(op)
	}
	return out
}

// set applies ops to u as ACL SETUSER does.
func set(t *testing.T, u *User, ops ...string) error {
	t.Helper()
	p, _, err := Prepare(testTable(), bs(ops...), rnd())
	if err != nil {
		return err
	}
	return u.Apply(p)
}

func TestDescribe(t *testing.T) {
	for _, tc := range []struct {
		ops  []string
		want string
	}{
		{nil, "off resetchannels -@all"},
		{[]string{"on", "nopass", "~*", "&*", "+@all"}, "on nopass ~* &* +@all"},
		{[]string{"+@all", "-@dangerous", "+flushall"}, "off resetchannels +@all -@dangerous +flushall"},
		{[]string{"+GET", "-get", "+get"}, "off resetchannels -@all +get"},
		{[]string{"+config|get", "-config"}, "off resetchannels -@all -config"},
		{[]string{"+config|get", "+config|set", "-config|get"}, "off resetchannels -@all +config|set -config|get"},
		{[]string{"+select|0", "+select|1", "+@all"}, "off resetchannels +@all"},
		{[]string{"+select|0", "+select|1"}, "off resetchannels -@all +select|0 +select|1"},
		{[]string{"%R~a*", "%W~a*", "~b", "%R~c"}, "off ~a* ~b %R~c resetchannels -@all"},
		{[]string{"allkeys", "resetkeys", "~x"}, "off ~x resetchannels -@all"},
		{[]string{"&a", "&b", "&a"}, "off resetchannels &a &b -@all"},
		{[]string{"allchannels"}, "off &* -@all"},
		{[]string{"on", "(~k* +get)", "(%W~w*", "+set)"}, "on resetchannels -@all (~k* resetchannels -@all +get) (%W~w* resetchannels -@all +set)"},
		{[]string{"(~k*)", "clearselectors"}, "off resetchannels -@all"},
		{[]string{"on", "nopass", "~*", "+@all", "reset"}, "off sanitize-payload resetchannels -@all"},
		{[]string{"skip-sanitize-payload"}, "off skip-sanitize-payload resetchannels -@all"},
		{[]string{"", "on"}, "on resetchannels -@all"},
	} {
		u := NewUser("u")
		if err := set(t, u, tc.ops...); err != nil {
			t.Errorf("%q: %v", tc.ops, err)
			continue
		}
		if got := u.Describe(); got != tc.want {
			t.Errorf("%q: Describe = %q, want %q", tc.ops, got, tc.want)
		}
	}
}

func TestRuleErrors(t *testing.T) {
	for _, tc := range []struct {
		ops  []string
		want string
	}{
		{[]string{"+nosuch"}, "Error in ACL SETUSER modifier '+nosuch': Unknown command or category name in ACL"},
		{[]string{"-nosuch"}, "Error in ACL SETUSER modifier '-nosuch': " + msgUnknown},
		{[]string{"+@nosuch"}, "Error in ACL SETUSER modifier '+@nosuch': " + msgUnknown},
		{[]string{"+"}, "Error in ACL SETUSER modifier '+': " + msgUnknown},
		{[]string{"bogus"}, "Error in ACL SETUSER modifier 'bogus': Syntax error"},
		{[]string{"%X~k"}, "Error in ACL SETUSER modifier '%X~k': Syntax error"},
		{[]string{"%R"}, "Error in ACL SETUSER modifier '%R': Syntax error"},
		{[]string{"%~k"}, "Error in ACL SETUSER modifier '%~k': Syntax error"},
		{[]string{"~a b"}, "Error in ACL SETUSER modifier '~a b': Syntax error"},
		{[]string{"allkeys", "~foo"}, "Error in ACL SETUSER modifier '~foo': " + msgKeyAfterAll},
		{[]string{"allchannels", "&foo"}, "Error in ACL SETUSER modifier '&foo': " + msgChanAfterAll},
		{[]string{"#abc"}, "Error in ACL SETUSER modifier '#abc': " + msgBadHash},
		{[]string{"!" + strings.Repeat("A", 64)}, "Error in ACL SETUSER modifier '!" + strings.Repeat("A", 64) + "': " + msgBadHash},
		{[]string{"+config|get|x"}, "Error in ACL SETUSER modifier '+config|get|x': " + msgFirstArgSub},
		{[]string{"+config|"}, "Error in ACL SETUSER modifier '+config|': Syntax error"},
		{[]string{"+config|nosuch"}, "Error in ACL SETUSER modifier '+config|nosuch': " + msgUnknown},
		{[]string{"-select|0"}, "Error in ACL SETUSER modifier '-select|0': " + msgUnknown},
		{[]string{"(on)"}, "Error in ACL SETUSER modifier '(on)': Syntax error"},
		{[]string{"(~a", "+get"}, "Unmatched parenthesis in acl selector starting at '(~a'."},
		{[]string{"<nothere"}, "Error in ACL SETUSER modifier '!" + PasswordSHA("nothere") + "': " + msgNoSuchPass},
	} {
		u := NewUser("u")
		before := u.Describe()
		err := set(t, u, tc.ops...)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q: err = %v, want %s", tc.ops, err, tc.want)
		}
		if u.Describe() != before {
			t.Errorf("%q: a refused SETUSER changed the user to %q", tc.ops, u.Describe())
		}
	}
}

func TestApplyIsAllOrNothing(t *testing.T) {
	u := NewUser("u")
	if err := set(t, u, "on", "~a"); err != nil {
		t.Fatal(err)
	}
	err := set(t, u, "+get", "allkeys", "~b") // the last one fails
	var re *RuleError
	if !errors.As(err, &re) || re.Op != "~b" {
		t.Fatalf("err = %v", err)
	}
	if got := u.Describe(); got != "on ~a resetchannels -@all" {
		t.Fatalf("user after a failed SETUSER: %q", got)
	}
}

func TestPasswords(t *testing.T) {
	u := NewUser("u")
	if u.CheckPassword([]byte("")) {
		t.Fatal("a new user (off, no password) logs in")
	}
	if err := set(t, u, "on", ">p1", ">p2", "#"+PasswordSHA("p3")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"p1", "p2", "p3"} {
		if !u.CheckPassword([]byte(p)) {
			t.Errorf("password %q refused", p)
		}
	}
	if u.CheckPassword([]byte("p4")) || u.CheckPassword(nil) {
		t.Error("a wrong password is accepted")
	}
	for _, p := range u.Passwords {
		if len(p) != storedLen || strings.Contains(p, PasswordSHA("p1")) {
			t.Errorf("stored password %q is not salted", p)
		}
	}
	if err := set(t, u, "<p1", "!"+PasswordSHA("p3")); err != nil {
		t.Fatal(err)
	}
	if u.CheckPassword([]byte("p1")) || u.CheckPassword([]byte("p3")) || !u.CheckPassword([]byte("p2")) {
		t.Error("removed passwords still work, or the kept one does not")
	}
	// The stored form is accepted back, as ACL LIST shows it.
	v := NewUser("v")
	if err := set(t, v, "on", "#"+u.Passwords[0]); err != nil || !v.CheckPassword([]byte("p2")) {
		t.Errorf("stored form not accepted back: %v", err)
	}
	if err := set(t, u, "off"); err != nil || u.CheckPassword([]byte("p2")) {
		t.Error("a user that is off logs in")
	}
	if err := set(t, u, "on", "nopass"); err != nil || !u.CheckPassword([]byte("anything")) || len(u.Passwords) != 0 {
		t.Error("nopass does not accept any password")
	}
	if err := set(t, u, "resetpass"); err != nil || u.CheckPassword([]byte("anything")) {
		t.Error("resetpass leaves a way in")
	}
	// Two salts for one password: two different stored forms.
	a, b := HashPassword("x", rnd()), HashPassword("x", rand.New(rand.NewSource(2)))
	if a == b || !sameHash(a, PasswordSHA("x")) || !sameHash(b, PasswordSHA("x")) {
		t.Errorf("salted hashes %q %q", a, b)
	}
}

func TestCheck(t *testing.T) {
	tbl := testTable()
	type call struct {
		args     []string
		keys     []KeyRef
		channels []ChannelRef
		want     Denial
		at       int
	}
	r, w, rw := []KeyRef{{1, Read}}, []KeyRef{{1, Write}}, []KeyRef{{1, Read | Write}}
	for _, tc := range []struct {
		ops   []string
		calls []call
	}{
		{[]string{"on", "+@all", "~*", "&*"}, []call{
			{args: []string{"get", "k"}, keys: r},
			{args: []string{"config", "set", "x"}},
		}},
		{[]string{"+@read", "~*"}, []call{
			{args: []string{"get", "k"}, keys: r},
			{args: []string{"set", "k"}, keys: w, want: DeniedCommand},
			{args: []string{"auth", "x"}}, // no-auth commands always run
		}},
		{[]string{"+@all", "-@dangerous", "allkeys"}, []call{
			{args: []string{"flushall"}, want: DeniedCommand},
			{args: []string{"config", "get"}, want: DeniedCommand},
			{args: []string{"get", "k"}, keys: r},
		}},
		{[]string{"+config|get"}, []call{
			{args: []string{"config", "get"}},
			{args: []string{"config", "set"}, want: DeniedCommand},
		}},
		{[]string{"+select|0"}, []call{
			{args: []string{"select", "0"}},
			{args: []string{"select", "1"}, want: DeniedCommand},
		}},
		{[]string{"+@all", "%R~r*", "%W~w*", "~a*"}, []call{
			{args: []string{"get", "r1"}, keys: r},
			{args: []string{"get", "w1"}, keys: r, want: DeniedKey, at: 1},
			{args: []string{"set", "w1"}, keys: w},
			{args: []string{"set", "r1"}, keys: w, want: DeniedKey, at: 1},
			{args: []string{"set", "a1"}, keys: rw},
			{args: []string{"set", "w1"}, keys: rw, want: DeniedKey, at: 1},
			{args: []string{"del", "r1", "w1"}, keys: []KeyRef{{1, 0}, {2, 0}}}, // neither: any pattern
			{args: []string{"del", "x"}, keys: []KeyRef{{1, 0}}, want: DeniedKey, at: 1},
		}},
		{[]string{"+@all", "&news.*"}, []call{
			{args: []string{"publish", "news.a"}, channels: []ChannelRef{{1, false}}},
			{args: []string{"publish", "sport"}, channels: []ChannelRef{{1, false}}, want: DeniedChannel, at: 1},
			{args: []string{"psubscribe", "news.*"}, channels: []ChannelRef{{1, true}}},
			{args: []string{"psubscribe", "news.a*"}, channels: []ChannelRef{{1, true}}, want: DeniedChannel, at: 1},
		}},
		// Selectors: any one allowing is enough; the reported refusal is a
		// key over a command, the last argument over an earlier one.
		{[]string{"+get", "~a*", "(+set ~b*)"}, []call{
			{args: []string{"get", "a1"}, keys: r},
			{args: []string{"set", "b1"}, keys: w},
			{args: []string{"set", "a1"}, keys: w, want: DeniedKey, at: 1},
			{args: []string{"get", "b1"}, keys: r, want: DeniedKey, at: 1},
			{args: []string{"del", "a1"}, keys: []KeyRef{{1, Write}}, want: DeniedCommand},
		}},
	} {
		u := NewUser("u")
		if err := set(t, u, tc.ops...); err != nil {
			t.Fatalf("%q: %v", tc.ops, err)
		}
		c := tbl.Compile(u)
		for _, cl := range tc.calls {
			name := cl.args[0]
			if name == "config" {
				name += "|" + cl.args[1]
			}
			d, at := c.Check(tbl.Lookup(name), bs(cl.args...), cl.keys, cl.channels)
			if d != cl.want || at != cl.at {
				t.Errorf("%q: %q = %v at %d, want %v at %d", tc.ops, cl.args, d, at, cl.want, cl.at)
			}
		}
	}
}

// TestDescribeRoundTrip: the rules Describe prints give the same user
// back, for random sequences of modifiers.
func TestDescribeRoundTrip(t *testing.T) {
	ops := []string{"on", "off", "nopass", "resetpass", ">a", ">b", "<a", "+@all", "-@all",
		"+get", "-get", "+@read", "-@write", "+config|get", "-config", "+select|0", "~a*",
		"%R~b*", "%W~c*", "allkeys", "resetkeys", "&x", "allchannels", "resetchannels",
		"(~s* +set)", "clearselectors", "reset", "skip-sanitize-payload"}
	r := rand.New(rand.NewSource(7))
	for i := 0; i < 2000; i++ {
		u := NewUser("u")
		for j := r.Intn(8); j > 0; j-- {
			set(t, u, ops[r.Intn(len(ops))]) // refusals are fine here
		}
		v := NewUser("u")
		if err := set(t, v, strings.Fields(u.Describe())...); err != nil {
			t.Fatalf("%q does not apply: %v", u.Describe(), err)
		}
		if u.Describe() != v.Describe() {
			t.Fatalf("round trip: %q became %q", u.Describe(), v.Describe())
		}
		tbl := testTable()
		cu, cv := tbl.Compile(u), tbl.Compile(v)
		for _, cmd := range tbl.all {
			if cmd.Subs != nil {
				continue
			}
			args := bs(strings.Split(cmd.Name, "|")...)
			du, _ := cu.Check(cmd, args, nil, nil)
			dv, _ := cv.Check(cmd, args, nil, nil)
			if du != dv {
				t.Fatalf("%q: %s allowed differently after the round trip", u.Describe(), cmd.Name)
			}
		}
	}
}

func TestLog(t *testing.T) {
	l := NewLog(3)
	l.Add(LogEntry{Reason: DeniedCommand, Object: "get", Username: "u"}, 1000)
	l.Add(LogEntry{Reason: DeniedCommand, Object: "get", Username: "u"}, 2000)
	l.Add(LogEntry{Reason: DeniedKey, Object: "k", Username: "u"}, 3000)
	e := l.Entries(10)
	if len(e) != 2 || e[0].Object != "k" || e[1].Count != 2 || e[1].CreatedMs != 1000 || e[1].UpdatedMs != 2000 {
		t.Fatalf("entries %+v", e)
	}
	l.Add(LogEntry{Reason: DeniedCommand, Object: "get", Username: "u"}, 3000+groupWithinMs+1)
	if e := l.Entries(10); len(e) != 3 || e[0].Count != 1 {
		t.Fatalf("an old entry was counted: %+v", e)
	}
	for i := 0; i < 5; i++ {
		l.Add(LogEntry{Reason: DeniedAuth, Object: "AUTH", Username: string(rune('a' + i))}, 9e6)
	}
	if e := l.Entries(10); len(e) != 3 || e[0].Username != "e" {
		t.Fatalf("log not bounded: %+v", e)
	}
	l.Reset()
	if len(l.Entries(10)) != 0 {
		t.Fatal("reset kept entries")
	}
}

func TestGenPass(t *testing.T) {
	for _, bits := range []int{1, 4, 5, 255, 256, 4096} {
		p := GenPass(bits, rnd())
		if len(p) != (bits+3)/4 || !isHex(p, len(p)) {
			t.Errorf("GenPass(%d) = %q", bits, p)
		}
	}
}

func FuzzPrepareApply(f *testing.F) {
	f.Add([]byte("on >pw ~* &* +@all (+get ~a*) %RW~b -@dangerous"))
	f.Fuzz(func(t *testing.T, in []byte) {
		ops := bytes.Fields(in)
		p, _, err := Prepare(testTable(), ops, rnd())
		if err != nil {
			return
		}
		u := NewUser("u")
		if err := u.Apply(p); err != nil {
			return
		}
		v := NewUser("u")
		q, _, err := Prepare(testTable(), bs(strings.Fields(u.Describe())...), rnd())
		if err != nil {
			t.Fatalf("%q: %v", u.Describe(), err)
		}
		if err := v.Apply(q); err != nil || v.Describe() != u.Describe() {
			t.Fatalf("%q: round trip gave %q (%v)", u.Describe(), v.Describe(), err)
		}
	})
}
