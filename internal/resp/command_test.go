package resp

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// cmd builds an argument list for test tables.
func cmd(args ...string) [][]byte {
	out := make([][]byte, len(args))
	for i, a := range args {
		out[i] = []byte(a)
	}
	return out
}

func equalArgs(a, b [][]byte) bool {
	if len(a) != len(b) || (a == nil) != (b == nil) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func TestParseCommand(t *testing.T) {
	tests := []struct {
		in   string
		args [][]byte
		n    int // 0 means len(in)
	}{
		// Multibulk.
		{in: "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", args: cmd("GET", "k")},
		{in: "*1\r\n$4\r\nPING\r\n", args: cmd("PING")},
		{in: "*3\r\n$3\r\nSET\r\n$0\r\n\r\n$5\r\na\r\nb\x00\r\n", args: cmd("SET", "", "a\r\nb\x00")},
		{in: "*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n", args: cmd("PING"), n: 14},
		{in: "*0\r\n", args: nil},
		{in: "*-1\r\n", args: nil},
		{in: "*-10\r\nPING\r\n", args: nil, n: 6},      // any count <= 0 is skipped
		{in: "*1\rX$4\r\nPING\r\n", args: cmd("PING")}, // like Redis, the byte after '\r' is not checked
		{in: "*1\r\n$4\r\nPINGxy", args: cmd("PING")},  // nor the two after an argument
		{in: "*1\r\n$20\r\n01234567890123456789\r\n", args: cmd("01234567890123456789")},

		// Inline.
		{in: "PING\r\n", args: cmd("PING")},
		{in: "PING\n", args: cmd("PING")},
		{in: "GET k\r\nGET j\r\n", args: cmd("GET", "k"), n: 7},
		{in: "  SET   k \t v  \r\n", args: cmd("SET", "k", "v")},
		{in: "\r\n", args: nil},
		{in: "\n", args: nil},
		{in: " \t \r\n", args: nil},
		{in: "a\rb\r\n", args: cmd("a", "b")},        // a CR inside the line separates
		{in: "a\r\r\n", args: cmd("a")},              // only the last CR belongs to the line end
		{in: "a\vb \vc\r\n", args: cmd("a\vb", "c")}, // \v separates but does not end a bare argument
		{in: "a\x00b\r\n", args: cmd("a\x00b")},      // NUL is an ordinary byte
		{in: "$3\r\nGET\r\n", args: cmd("$3"), n: 4}, // not a multibulk: inline
	}
	for _, tt := range tests {
		want := tt.n
		if want == 0 {
			want = len(tt.in)
		}
		args, n, err := ParseCommand([]byte(tt.in), Limits{})
		if err != nil || n != want || !equalArgs(args, tt.args) {
			t.Errorf("ParseCommand(%q) = %q, %d, %v; want %q, %d, nil", tt.in, args, n, err, tt.args, want)
		}
	}
}

func TestParseCommandQuoting(t *testing.T) {
	tests := []struct {
		in   string
		args [][]byte
		err  error
	}{
		{in: `SET k "hello world"`, args: cmd("SET", "k", "hello world")},
		{in: `"a" "" 'b'`, args: cmd("a", "", "b")},
		{in: `"\n\r\t\b\a\\\"\q"`, args: cmd("\n\r\t\b\a\\\"q")},
		{in: `"\x41\x4a\x4A\x00\xff"`, args: cmd("AJJ\x00\xff")},
		{in: `"\x" "\x4" "\x4g" "\xg4"`, args: cmd("x", "x4", "x4g", "xg4")}, // not two hex digits
		{in: `'a\'b' 'c\nd' 'e\\x'`, args: cmd("a'b", `c\nd`, `e\\x`)},
		{in: `'e\\'`, err: ErrUnbalancedQuotes}, // \' is an escaped quote even after a backslash
		{in: `'it''s'`, err: ErrUnbalancedQuotes},
		{in: `a"b c"`, args: cmd("ab c")}, // a quote may start inside an argument
		{in: `a'b c' d`, args: cmd("ab c", "d")},
		{in: "\"a\"\tb", args: cmd("a", "b")}, // closing quote then white space
		{in: "\"a\"\vb", args: cmd("a", "b")}, // \v counts as white space there
		{in: "'a'\rb", args: cmd("a", "b")},
		{in: `"a"b`, err: ErrUnbalancedQuotes}, // closing quote then a byte
		{in: `x"y z"w`, err: ErrUnbalancedQuotes},
		{in: `'a'b`, err: ErrUnbalancedQuotes},
		{in: `"abc`, err: ErrUnbalancedQuotes},
		{in: `"abc\"`, err: ErrUnbalancedQuotes},
		{in: `"abc\`, err: ErrUnbalancedQuotes},
		{in: `'abc`, err: ErrUnbalancedQuotes},
		{in: `'abc\'`, err: ErrUnbalancedQuotes},
		{in: `"`, err: ErrUnbalancedQuotes},
		{in: `"a'b" 'c"d'`, args: cmd("a'b", `c"d`)},
	}
	for _, tt := range tests {
		in := tt.in + "\r\n"
		args, n, err := ParseCommand([]byte(in), Limits{})
		if tt.err != nil {
			if err != tt.err || n != 0 || args != nil {
				t.Errorf("ParseCommand(%q) = %q, %d, %v; want error %v", in, args, n, err, tt.err)
			}
			continue
		}
		if err != nil || n != len(in) || !equalArgs(args, tt.args) {
			t.Errorf("ParseCommand(%q) = %q, %d, %v; want %q, %d, nil", in, args, n, err, tt.args, len(in))
		}
	}
}

func TestParseCommandErrors(t *testing.T) {
	small := Limits{MaxBulkLen: 10, MaxMultibulkLen: 3, MaxInlineLen: 16}
	unauth := Limits{Unauthenticated: true}
	tests := []struct {
		in   string
		lim  Limits
		want string
	}{
		{"*x\r\n", Limits{}, "ERR Protocol error: invalid multibulk length"},
		{"*\r\n", Limits{}, "ERR Protocol error: invalid multibulk length"},
		{"*01\r\n", Limits{}, "ERR Protocol error: invalid multibulk length"},
		{"*+1\r\n", Limits{}, "ERR Protocol error: invalid multibulk length"},
		{"* 1\r\n", Limits{}, "ERR Protocol error: invalid multibulk length"},
		{"*1 \r\n", Limits{}, "ERR Protocol error: invalid multibulk length"},
		{"*-0\r\n", Limits{}, "ERR Protocol error: invalid multibulk length"},
		{"*99999999999999999999\r\n", Limits{}, "ERR Protocol error: invalid multibulk length"},
		{"*1048577\r\n", Limits{}, "ERR Protocol error: invalid multibulk length"},
		{"*4\r\n", small, "ERR Protocol error: invalid multibulk length"},
		{"*11\r\n", unauth, "ERR Protocol error: unauthenticated multibulk length"},
		{"*1\r\n$x\r\n", Limits{}, "ERR Protocol error: invalid bulk length"},
		{"*1\r\n$\r\n", Limits{}, "ERR Protocol error: invalid bulk length"},
		{"*1\r\n$-1\r\n", Limits{}, "ERR Protocol error: invalid bulk length"},
		{"*1\r\n$01\r\n", Limits{}, "ERR Protocol error: invalid bulk length"},
		{"*1\r\n$536870913\r\n", Limits{}, "ERR Protocol error: invalid bulk length"},
		{"*1\r\n$11\r\n", small, "ERR Protocol error: invalid bulk length"},
		{"*1\r\n$16385\r\n", unauth, "ERR Protocol error: unauthenticated bulk length"},
		{"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n", Limits{}, "ERR Protocol error: expected '$', got 'f'"},
		{"*1\r\nfoo\r\n", Limits{}, "ERR Protocol error: expected '$', got 'f'"},
		{"*1\r\n\r\n", Limits{}, "ERR Protocol error: expected '$', got ' '"}, // CR shown as a space, as Redis does
		{"*1\r\n\x80\r\n", Limits{}, "ERR Protocol error: expected '$', got '\x80'"},
		{"*2\r\n$1\r\na\r\n*1\r\n", Limits{}, "ERR Protocol error: expected '$', got '*'"},
		{`"unclosed` + "\r\n", Limits{}, "ERR Protocol error: unbalanced quotes in request"},
		{strings.Repeat("x", 17), small, "ERR Protocol error: too big inline request"},
		{strings.Repeat("x", 17) + "\n", small, "ERR Protocol error: too big inline request"},
		{strings.Repeat("x", 65537), Limits{}, "ERR Protocol error: too big inline request"},
		{"*" + strings.Repeat("1", 16), small, "ERR Protocol error: too big mbulk count string"},
		{"*" + strings.Repeat("1", 65536), Limits{}, "ERR Protocol error: too big mbulk count string"},
		{"*1\r\n$" + strings.Repeat("1", 16), small, "ERR Protocol error: too big bulk count string"},
		{"*1\r\n$" + strings.Repeat("1", 16) + "\r\n", small, "ERR Protocol error: too big bulk count string"},
	}
	for _, tt := range tests {
		args, n, err := ParseCommand([]byte(tt.in), tt.lim)
		var pe *ProtocolError
		if !errors.As(err, &pe) || err.Error() != tt.want || n != 0 || args != nil {
			t.Errorf("ParseCommand(%.40q, %+v) = %q, %d, %v; want error %q", tt.in, tt.lim, args, n, err, tt.want)
		}
	}
}

func TestParseCommandLimits(t *testing.T) {
	// Exactly at each limit is allowed.
	small := Limits{MaxBulkLen: 10, MaxMultibulkLen: 3, MaxInlineLen: 16}
	tests := []struct {
		in   string
		lim  Limits
		args [][]byte
	}{
		{"*3\r\n$1\r\na\r\n$1\r\nb\r\n$10\r\n0123456789\r\n", small, cmd("a", "b", "0123456789")},
		{"0123456789abcdef\n", small, cmd("0123456789abcdef")},
		{"0123456789abcde\r\n", small, cmd("0123456789abcde")}, // the CR counts
		{"*1\r\n$1\r\nx\r\n", Limits{MaxInlineLen: 2}, cmd("x")},
		{"*10\r\n" + strings.Repeat("$1\r\nx\r\n", 10), Limits{Unauthenticated: true},
			cmd("x", "x", "x", "x", "x", "x", "x", "x", "x", "x")},
		{"*1\r\n$16384\r\n" + strings.Repeat("x", 16384) + "\r\n", Limits{Unauthenticated: true}, cmd(strings.Repeat("x", 16384))},
	}
	for _, tt := range tests {
		args, n, err := ParseCommand([]byte(tt.in), tt.lim)
		if err != nil || n != len(tt.in) || !equalArgs(args, tt.args) {
			t.Errorf("ParseCommand(%.40q, %+v) = %.40q, %d, %v; want %.40q, %d, nil", tt.in, tt.lim, args, n, err, tt.args, len(tt.in))
		}
	}
	// A line just short of the limit is still waited for.
	for _, in := range []string{strings.Repeat("x", 16), "*" + strings.Repeat("1", 15), "*1\r\n$" + strings.Repeat("1", 14)} {
		if args, n, err := ParseCommand([]byte(in), small); args != nil || n != 0 || err != nil {
			t.Errorf("ParseCommand(%q, %+v) = %q, %d, %v; want incomplete", in, small, args, n, err)
		}
	}
}

// commands is a pipeline of every shape of command, used by several tests.
var commands = []string{
	"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n",
	"PING\r\n",
	"*0\r\n",
	"*2\r\n$3\r\nGET\r\n$0\r\n\r\n",
	"\r\n",
	"SET k \"a b\\x41\" 'c\\'d'\n",
	"*-1\r\n",
	"*1\r\n$4\r\nPING\r\n",
	" \n",
	"ECHO x\r\n",
}

func TestParseCommandPipeline(t *testing.T) {
	buf := []byte(strings.Join(commands, ""))
	var got [][][]byte
	for len(buf) > 0 {
		args, n, err := ParseCommand(buf, Limits{})
		if err != nil || n == 0 {
			t.Fatalf("ParseCommand(%q) = %q, %d, %v; want a command", buf, args, n, err)
		}
		if args != nil {
			got = append(got, args)
		}
		buf = buf[n:]
	}
	want := [][][]byte{
		cmd("SET", "key", "value"), cmd("PING"), cmd("GET", ""), cmd("SET", "k", "a bA", "c'd"), cmd("PING"), cmd("ECHO", "x"),
	}
	if len(got) != len(want) {
		t.Fatalf("parsed %q, want %q", got, want)
	}
	for i := range want {
		if !equalArgs(got[i], want[i]) {
			t.Errorf("command %d = %q, want %q", i, got[i], want[i])
		}
	}
}

// TestParseCommandIncomplete cuts every command at every point: the prefix
// must be incomplete, never an error or a different command.
func TestParseCommandIncomplete(t *testing.T) {
	for _, c := range commands {
		want, wantN, _ := ParseCommand([]byte(c), Limits{})
		for i := range len(c) {
			// Copy so the prefix has no capacity beyond it.
			prefix := []byte(c[:i])
			if args, n, err := ParseCommand(prefix, Limits{}); args != nil || n != 0 || err != nil {
				t.Errorf("ParseCommand(%q) = %q, %d, %v; want incomplete", prefix, args, n, err)
			}
		}
		// And a Parser fed one byte at a time gets the command at the end.
		var p Parser
		for i := 1; i <= len(c); i++ {
			args, n, err := p.Parse([]byte(c[:i]))
			switch {
			case i < len(c) && (args != nil || n != 0 || err != nil):
				t.Errorf("Parser fed %q: Parse(%q) = %q, %d, %v; want incomplete", c, c[:i], args, n, err)
			case i == len(c) && (err != nil || n != wantN || !equalArgs(args, want)):
				t.Errorf("Parser fed %q: Parse(%q) = %q, %d, %v; want %q, %d, nil", c, c[:i], args, n, err, want, wantN)
			}
		}
	}
}

// TestParserBufferMoves checks that a Parser resumes correctly whether the
// caller's buffer grows in place, moves to a new array or is compacted to
// the front of its array.
func TestParserBufferMoves(t *testing.T) {
	in := "*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n$2\r\nEX\r\nNEXT"
	want := cmd("SET", "k", "value", "EX")
	wantN := len(in) - len("NEXT")
	for _, mode := range []string{"in place", "new array", "compacted"} {
		var p Parser
		// The command starts 7 bytes into the array, after input already
		// consumed.
		arr := append(make([]byte, 0, 256), "consume"...)
		off := 7
		for i := 1; i <= len(in); i++ {
			switch mode {
			case "new array":
				arr = append(append(make([]byte, 0, len(arr)+1), arr...), in[i-1])
			case "compacted":
				if off > 0 {
					arr = arr[:copy(arr, arr[off:])]
					off = 0
				}
				arr = append(arr, in[i-1])
			default:
				arr = append(arr, in[i-1])
			}
			args, n, err := p.Parse(arr[off:])
			if err != nil {
				t.Fatalf("%s: Parse(%q) error %v", mode, arr[off:], err)
			}
			if n == 0 {
				continue
			}
			if n != wantN || !equalArgs(args, want) || i != wantN {
				t.Fatalf("%s: Parse(%q) = %q, %d; want %q, %d after %d bytes", mode, arr[off:], args, n, want, wantN, wantN)
			}
			break
		}
	}
}

func TestParserContractBroken(t *testing.T) {
	// A caller that gives up on a partial command without Reset, and
	// passes a shorter or different buffer, gets a fresh parse.
	var p Parser
	if _, n, _ := p.Parse([]byte("*2\r\n$3\r\nGET\r\n")); n != 0 {
		t.Fatalf("Parse of a partial command consumed %d bytes", n)
	}
	args, n, err := p.Parse([]byte("PING\r\n"))
	if err != nil || n != 6 || !equalArgs(args, cmd("PING")) {
		t.Errorf("Parse(%q) after a partial command = %q, %d, %v; want [PING], 6, nil", "PING\r\n", args, n, err)
	}
	if _, n, _ := p.Parse([]byte("*2\r\n$3\r\nGET\r\n")); n != 0 {
		t.Fatalf("Parse of a partial command consumed %d bytes", n)
	}
	args, n, err = p.Parse([]byte("*1\r\n$1\r\nx\r\n"))
	if err != nil || n != 11 || !equalArgs(args, cmd("x")) {
		t.Errorf("Parse(%q) after a partial command = %q, %d, %v; want [x], 11, nil", "*1\r\n$1\r\nx\r\n", args, n, err)
	}
}

// TestParseCommandUntrustedLengths checks that lengths a client claims do
// not turn into allocations before the bytes arrive.
func TestParseCommandUntrustedLengths(t *testing.T) {
	for _, in := range []string{
		"*1\r\n$536870000\r\n",
		"*1048576\r\n",
		"*1048576\r\n$536870000\r\nxx",
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range 100 {
			if args, n, err := ParseCommand([]byte(in), Limits{}); args != nil || n != 0 || err != nil {
				t.Fatalf("ParseCommand(%q) = %q, %d, %v; want incomplete", in, args, n, err)
			}
		}
		runtime.ReadMemStats(&after)
		if d := after.TotalAlloc - before.TotalAlloc; d > 1<<20 {
			t.Errorf("100 × ParseCommand(%q) allocated %d bytes", in, d)
		}
	}
}

func TestParserAllocs(t *testing.T) {
	in := []byte("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n")
	var p Parser
	allocs := testing.AllocsPerRun(100, func() {
		if _, n, err := p.Parse(in); n != len(in) || err != nil {
			t.Fatalf("Parse(%q) = %d, %v", in, n, err)
		}
	})
	if allocs != 0 {
		t.Errorf("Parser.Parse(%q) allocates %v times, want 0", in, allocs)
	}
	allocs = testing.AllocsPerRun(100, func() { _, _, _ = ParseCommand(in, Limits{}) })
	if allocs != 1 {
		t.Errorf("ParseCommand(%q) allocates %v times, want 1 (the args slice)", in, allocs)
	}
}

func TestProtocolErrorsAreSentinels(t *testing.T) {
	_, _, err := ParseCommand([]byte("*x\r\n"), Limits{})
	if !errors.Is(err, ErrInvalidMultibulkLength) {
		t.Errorf("errors.Is(%v, ErrInvalidMultibulkLength) = false", err)
	}
	// A wrapped protocol error is still found.
	wrapped := fmt.Errorf("conn 7: %w", err)
	var pe *ProtocolError
	if !errors.As(wrapped, &pe) || pe.Error() != "ERR Protocol error: invalid multibulk length" {
		t.Errorf("errors.As(%v) = %v", wrapped, pe)
	}
}

func TestParserDropsHugeArgs(t *testing.T) {
	var p Parser
	big := "*2000\r\n" + strings.Repeat("$1\r\nx\r\n", 2000)
	if _, n, err := p.Parse([]byte(big)); n != len(big) || err != nil {
		t.Fatalf("Parse(2000 args) = %d, %v", n, err)
	}
	if _, n, err := p.Parse([]byte("*1\r\n$1\r\nx\r\n")); n != 11 || err != nil {
		t.Fatalf("Parse(1 arg) = %d, %v", n, err)
	}
	if c := cap(p.args); c > 1024 {
		t.Errorf("after a 1-argument command the Parser keeps room for %d arguments", c)
	}
}

func TestParseInt(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"7", 7, true},
		{"-7", -7, true},
		{"9223372036854775807", 1<<63 - 1, true},
		{"-9223372036854775808", -1 << 63, true},
		{"9223372036854775808", 0, false},
		{"-9223372036854775809", 0, false},
		{"18446744073709551615", 0, false}, // fits uint64, not int64
		{"18446744073709551616", 0, false}, // overflows uint64 in the last digit
		{"99999999999999999999", 0, false}, // overflows uint64 before it
		{"-99999999999999999999", 0, false},
		{"100000000000000000000", 0, false}, // 21 bytes
		{"", 0, false},
		{"-", 0, false},
		{"-0", 0, false},
		{"00", 0, false},
		{"01", 0, false},
		{"+1", 0, false},
		{" 1", 0, false},
		{"1 ", 0, false},
		{"1a", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseInt([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseInt(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
