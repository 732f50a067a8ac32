package resp

import (
	"errors"
	"math"
	"strings"
	"testing"
)

var parseValueTests = []struct {
	in   string
	want Value
}{
	{"+OK\r\n", OK},
	{"+\r\n", Simple("")},
	{"-ERR unknown command\r\n", Err("ERR unknown command")},
	{":0\r\n", Int(0)},
	{":-9223372036854775808\r\n", Int(-1 << 63)},
	{"$3\r\nfoo\r\n", BulkString("foo")},
	{"$0\r\n\r\n", BulkString("")},
	{"$4\r\na\r\nb\r\n", BulkString("a\r\nb")},
	{"$-1\r\n", Null},
	{"*-1\r\n", NullArray},
	{"_\r\n", Null},
	{"*0\r\n", Array()},
	{"*2\r\n:1\r\n*1\r\n+x\r\n", Array(Int(1), Array(Simple("x")))},
	{"%1\r\n+k\r\n:1\r\n", Map(Simple("k"), Int(1))},
	{"%0\r\n", Map()},
	{"~2\r\n:1\r\n:2\r\n", Set(Int(1), Int(2))},
	{">2\r\n+message\r\n$1\r\nx\r\n", Array(Simple("message"), BulkString("x"))},
	{",1.5\r\n", Double(1.5)},
	{",-0\r\n", Double(math.Copysign(0, -1))},
	{",inf\r\n", Double(math.Inf(1))},
	{",-inf\r\n", Double(math.Inf(-1))},
	{",nan\r\n", Double(math.NaN())},
	{",1e400\r\n", Double(math.Inf(1))}, // out of range rounds, as strtod does
	{",1.5e-7\r\n", Double(1.5e-7)},
	{",10\r\n", Double(10)},
	{"#t\r\n", Bool(true)},
	{"#f\r\n", Bool(false)},
	{"(3492890328409238509324850943850943825024385\r\n", BulkString("3492890328409238509324850943850943825024385")},
	{"(-1\r\n", BulkString("-1")},
	{"!21\r\nSYNTAX invalid syntax\r\n", Err("SYNTAX invalid syntax")},
	{"!9\r\n\r\nERR a\nb\r\n", Err("ERR a b")}, // made one line, as AppendError writes it
	{"=15\r\ntxt:Some string\r\n", Verbatim("Some string")},
	{"=7\r\nmkd:# x\r\n", Verbatim("# x")},
	{"=4\r\ntxt:\r\n", Verbatim("")},
	// Attributes are dropped, wherever they are.
	{"|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n*2\r\n:2039123\r\n:9543892\r\n",
		Array(Int(2039123), Int(9543892))},
	{"*2\r\n|1\r\n+ttl\r\n:3600\r\n:1\r\n:2\r\n", Array(Int(1), Int(2))},
	{"|0\r\n|1\r\n|1\r\n+a\r\n+b\r\n+c\r\n+d\r\n+e\r\n", Simple("e")}, // an attribute on an attribute's key
}

func TestParseValue(t *testing.T) {
	for _, tt := range parseValueTests {
		// With a trailing byte that is not part of it.
		buf := []byte(tt.in + "+")
		v, n, err := ParseValue(buf)
		if err != nil || n != len(tt.in) || !v.Equal(tt.want) {
			t.Errorf("ParseValue(%q) = %s, %d, %v; want %s, %d, nil", buf, show(v), n, err, show(tt.want), len(tt.in))
		}
	}
}

// TestParseValueIncomplete cuts every reply at every point: the prefix must
// be incomplete, never an error or another value.
func TestParseValueIncomplete(t *testing.T) {
	for _, tt := range parseValueTests {
		for i := range len(tt.in) {
			prefix := []byte(tt.in[:i])
			if v, n, err := ParseValue(prefix); n != 0 || err != nil || v.Kind != 0 {
				t.Errorf("ParseValue(%q) = %s, %d, %v; want incomplete", prefix, show(v), n, err)
			}
		}
	}
}

func TestParseValueErrors(t *testing.T) {
	tests := []string{
		"?\r\n",
		"\r\n",
		"+a\rb\r\n",
		"+a\n",
		"+\n",
		":\r\n",
		":+1\r\n",
		":01\r\n",
		":1.0\r\n",
		":99999999999999999999\r\n",
		"$-2\r\n",
		"$x\r\n",
		"$3\r\nfooXX",
		"$3\r\nfoo\rX",
		"$536870913\r\n",
		"!-1\r\n",
		"=-1\r\n",
		"=3\r\ntxt\r\n",
		"=4\r\ntxt.\r\n",
		"*-2\r\n",
		"%-1\r\n",
		"~-1\r\n",
		">-1\r\n",
		"|-1\r\n",
		"*2147483648\r\n",
		"%1073741824\r\n",
		"|1073741824\r\n",
		"*1\r\n?\r\n",
		"%1\r\n+k\r\n?\r\n",
		"|1\r\n+k\r\n?\r\n",
		",\r\n",
		",abc\r\n",
		",1.5x\r\n",
		"#\r\n",
		"#T\r\n",
		"#true\r\n",
		"_x\r\n",
		"(\r\n",
		"(-\r\n",
		"(1.5\r\n",
		"$?\r\n", // streamed strings are not supported
		"*?\r\n",
	}
	for _, in := range tests {
		v, n, err := ParseValue([]byte(in))
		var se *SyntaxError
		if !errors.As(err, &se) || n != 0 || v.Kind != 0 {
			t.Errorf("ParseValue(%q) = %s, %d, %v; want a *SyntaxError", in, show(v), n, err)
		}
	}
	for in, want := range map[string]string{
		"*2\r\n:1\r\n:x\r\n": `resp: invalid reply at offset 8: invalid integer "x"`,
		"\xa9\r\n":           `resp: invalid reply at offset 0: unknown type byte "\xa9"`,
	} {
		if _, _, err := ParseValue([]byte(in)); err == nil || err.Error() != want {
			t.Errorf("ParseValue(%q) error = %v, want %s", in, err, want)
		}
	}
}

func TestParseValueDepth(t *testing.T) {
	nest := func(depth int, open, inner string) string {
		return strings.Repeat(open, depth) + inner
	}
	tests := []struct {
		in string
		ok bool
	}{
		{nest(64, "*1\r\n", ":1\r\n"), true},
		{nest(64, "*1\r\n", "*-1\r\n"), true},
		{nest(65, "*1\r\n", ":1\r\n"), false},
		{nest(65, "*1\r\n", "*0\r\n"), false},
		{nest(64, "%1\r\n+k\r\n", ":1\r\n"), true},
		{nest(65, "~1\r\n", ":1\r\n"), false},
		{nest(63, "*1\r\n", "|1\r\n+k\r\n+v\r\n:1\r\n"), true},
		{nest(64, "*1\r\n", "|1\r\n+k\r\n+v\r\n:1\r\n"), false},
		{nest(1000, "|1\r\n+k\r\n+v\r\n", ":1\r\n"), true}, // attributes in a row do not nest
		{nest(100000, "*1\r\n", ""), false},                // an error, found without the rest
	}
	for _, tt := range tests {
		_, n, err := ParseValue([]byte(tt.in))
		if ok := err == nil && n == len(tt.in); ok != tt.ok {
			t.Errorf("ParseValue(%.40q...) = _, %d, %v; want ok %v", tt.in, n, err, tt.ok)
		}
	}
}

// TestParseValueNoAlias checks that a parsed Value does not change when the
// caller reuses its buffer.
func TestParseValueNoAlias(t *testing.T) {
	for _, tt := range parseValueTests {
		buf := []byte(tt.in)
		v, _, err := ParseValue(buf)
		if err != nil {
			t.Fatalf("ParseValue(%q): %v", tt.in, err)
		}
		for i := range buf {
			buf[i] = 'X'
		}
		if !v.Equal(tt.want) {
			t.Errorf("ParseValue(%q) = %s after its buffer was overwritten, want %s", tt.in, show(v), show(tt.want))
		}
	}
	// Appending to a parsed string or aggregate must not overwrite its
	// neighbours, which share an allocation.
	v, _, _ := ParseValue([]byte("*2\r\n*1\r\n$1\r\na\r\n*1\r\n$1\r\nb\r\n"))
	_ = append(v.Elems[0].Elems, Int(9))
	_ = append(v.Elems[0].Elems[0].Str, 'z')
	if want := Array(Array(BulkString("a")), Array(BulkString("b"))); !v.Equal(want) {
		t.Errorf("after appends to its parts the value is %s, want %s", show(v), show(want))
	}
}

func TestParseValueAllocs(t *testing.T) {
	tests := []struct {
		in     string
		allocs float64
	}{
		{"+OK\r\n", 1},
		{":1\r\n", 0},
		{"_\r\n", 0},
		{"*3\r\n$3\r\nfoo\r\n$3\r\nbar\r\n%1\r\n+a\r\n,1.5\r\n", 2}, // one for all strings, one for all elements
		{"*2\r\n$3\r\nfoo\r\n$3\r\nbar\r\n", 2},
		{"*3\r\n$3\r\nfoo\r\n$3\r\nbar\r\n$3\r\nba", 0}, // incomplete
	}
	for _, tt := range tests {
		buf := []byte(tt.in)
		if got := testing.AllocsPerRun(100, func() { _, _, _ = ParseValue(buf) }); got != tt.allocs {
			t.Errorf("ParseValue(%q) allocates %v times, want %v", tt.in, got, tt.allocs)
		}
	}
}
