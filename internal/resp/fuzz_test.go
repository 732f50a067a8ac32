package resp

import (
	"bytes"
	"strings"
	"testing"
)

// fuzzLimits are small enough for the fuzzer to reach every limit.
var fuzzLimits = Limits{MaxBulkLen: 64, MaxMultibulkLen: 8, MaxInlineLen: 48}

// parsed is the outcome of parsing a whole stream of commands.
type parsed struct {
	cmds [][][]byte // copies
	ns   []int      // bytes each command, or skipped empty one, took
	err  string
	rest int // bytes left unparsed at the end
}

// parseStream parses the commands in chunks, delivered one read after the
// other, as a connection loop does: parse what the buffer holds until it is
// incomplete, then read the next chunk. With fresh it gives each read a new
// array, as a buffer that grows by reallocating does.
func parseStream(p *Parser, chunks [][]byte, fresh bool) parsed {
	var out parsed
	var buf []byte
	for _, c := range chunks {
		if fresh {
			buf = append(append(make([]byte, 0, len(buf)+len(c)), buf...), c...)
		} else {
			buf = append(buf, c...)
		}
		for {
			args, n, err := p.Parse(buf)
			if err != nil {
				out.err = err.Error()
				return out
			}
			if n == 0 {
				break
			}
			out.ns = append(out.ns, n)
			if args != nil {
				out.cmds = append(out.cmds, cloneArgs(args))
			}
			buf = buf[n:]
		}
	}
	out.rest = len(buf)
	return out
}

func cloneArgs(args [][]byte) [][]byte {
	out := make([][]byte, len(args))
	for i, a := range args {
		out[i] = bytes.Clone(a)
	}
	return out
}

func (a parsed) equal(b parsed) bool {
	if len(a.cmds) != len(b.cmds) || len(a.ns) != len(b.ns) || a.err != b.err || a.rest != b.rest {
		return false
	}
	for i := range a.cmds {
		if !equalArgs(a.cmds[i], b.cmds[i]) {
			return false
		}
	}
	for i := range a.ns {
		if a.ns[i] != b.ns[i] {
			return false
		}
	}
	return true
}

func encodeCommand(args [][]byte) []byte {
	buf := AppendArrayHeader(nil, len(args))
	for _, a := range args {
		buf = AppendBulk(buf, a)
	}
	return buf
}

func FuzzParseCommand(f *testing.F) {
	for _, c := range commands {
		f.Add([]byte(c), uint16(3), uint8(0))
	}
	f.Add([]byte(strings.Join(commands, "")), uint16(40), uint8(0))
	f.Add([]byte(strings.Join(commands, "")), uint16(7), uint8(3))
	for _, c := range []string{
		"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
		"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$64\r\n" + strings.Repeat("v", 64) + "\r\n",
		"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n",
		"SET k \"a\\x41\\n\" 'b\\'c'\r\nGET k\n",
		"a\"b c\" 'd'\t\"e\"\r\n",
		"\"a\"b\r\n",
		"*1\r\n$-1\r\n",
		"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n",
		"*1\rX$4\r\nPINGxy",
		"*-5\r\n*0\r\n\r\n",
		"*9\r\n",
		"*1\r\n$65\r\n",
		strings.Repeat("x", 50),
		"*" + strings.Repeat("1", 50),
	} {
		f.Add([]byte(c), uint16(5), uint8(1))
	}
	f.Fuzz(func(t *testing.T, data []byte, split uint16, flags uint8) {
		lim := Limits{}
		if flags&1 != 0 {
			lim = fuzzLimits
		}
		if flags&4 != 0 {
			lim.Unauthenticated = true
		}
		fresh := flags&2 != 0

		whole := parseStateless(data, lim)
		k := int(split) % (len(data) + 1)
		p := Parser{Limits: lim}
		chunked := parseStream(&p, [][]byte{data[:k], data[k:]}, fresh)
		if !whole.equal(chunked) {
			t.Fatalf("input %q: parsed whole: %+v; in two reads split at %d: %+v", data, whole, k, chunked)
		}

		// Every command, written as a multibulk, parses back to itself.
		for _, args := range whole.cmds {
			enc := encodeCommand(args)
			got, n, err := ParseCommand(enc, Limits{})
			if err != nil || n != len(enc) || !equalArgs(got, args) {
				t.Fatalf("ParseCommand(%q) = %q, %d, %v; want %q, %d, nil", enc, got, n, err, args, len(enc))
			}
		}

		// An inline line splits as Redis splits it.
		if len(data) > 0 && data[0] != '*' {
			checkInline(t, data, lim)
		}
	})
}

// parseStateless parses a stream with ParseCommand alone.
func parseStateless(data []byte, lim Limits) parsed {
	var out parsed
	buf := data
	for {
		args, n, err := ParseCommand(buf, lim)
		if err != nil {
			out.err = err.Error()
			return out
		}
		if n == 0 {
			out.rest = len(buf)
			return out
		}
		if n > len(buf) {
			panic("ParseCommand consumed more than it was given")
		}
		out.ns = append(out.ns, n)
		if args != nil {
			out.cmds = append(out.cmds, cloneArgs(args))
		}
		buf = buf[n:]
	}
}

// checkInline compares how ParseCommand splits the first line of data with
// refSplitArgs.
func checkInline(t *testing.T, data []byte, lim Limits) {
	end := bytes.IndexByte(data, '\n')
	if end < 0 || end > lim.withDefaults().MaxInlineLen {
		return
	}
	line := data[:end]
	line = bytes.TrimSuffix(line, []byte("\r"))
	if bytes.IndexByte(line, 0) >= 0 {
		return // NUL ends a C string; we treat it as a byte
	}
	want, ok := refSplitArgs(line)
	args, n, err := ParseCommand(data, lim)
	switch {
	case !ok && err != ErrUnbalancedQuotes:
		t.Fatalf("ParseCommand(%q) = %q, %d, %v; Redis says unbalanced quotes", data, args, n, err)
	case ok && len(want) == 0 && (err != nil || args != nil || n != end+1):
		t.Fatalf("ParseCommand(%q) = %q, %d, %v; want nil, %d, nil", data, args, n, err, end+1)
	case ok && len(want) > 0 && (err != nil || !equalArgs(args, want) || n != end+1):
		t.Fatalf("ParseCommand(%q) = %q, %d, %v; want %q, %d, nil", data, args, n, err, want, end+1)
	}
}

// refSplitArgs is a model of Redis's sdssplitargs written independently of
// splitArgs: it walks a NUL-terminated string one byte at a time, keeping
// the C function's states (in double quotes, in single quotes, bare).
func refSplitArgs(line []byte) ([][]byte, bool) {
	at := func(i int) byte {
		if i < len(line) {
			return line[i]
		}
		return 0
	}
	space := func(c byte) bool { return strings.IndexByte(" \t\n\v\f\r", c) >= 0 && c != 0 }
	hex := func(c byte) int {
		switch {
		case '0' <= c && c <= '9':
			return int(c - '0')
		case 'a' <= c && c <= 'f':
			return int(c-'a') + 10
		case 'A' <= c && c <= 'F':
			return int(c-'A') + 10
		}
		return -1
	}
	var out [][]byte
	p := 0
	for {
		for at(p) != 0 && space(at(p)) {
			p++
		}
		if at(p) == 0 {
			return out, true
		}
		inDouble, inSingle, done := false, false, false
		cur := []byte{}
		for !done {
			c := at(p)
			switch {
			case inDouble && c == '\\' && at(p+1) == 'x' && hex(at(p+2)) >= 0 && hex(at(p+3)) >= 0:
				cur = append(cur, byte(hex(at(p+2))*16+hex(at(p+3))))
				p += 3
			case inDouble && c == '\\' && at(p+1) != 0:
				p++
				e := at(p)
				if i := strings.IndexByte("nrtba", e); i >= 0 {
					e = "\n\r\t\b\a"[i]
				}
				cur = append(cur, e)
			case inDouble && c == '"', inSingle && c == '\'':
				if at(p+1) != 0 && !space(at(p+1)) {
					return nil, false
				}
				done = true
			case (inDouble || inSingle) && c == 0:
				return nil, false
			case inSingle && c == '\\' && at(p+1) == '\'':
				p++
				cur = append(cur, '\'')
			case inDouble || inSingle:
				cur = append(cur, c)
			case c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == 0:
				done = true
			case c == '"':
				inDouble = true
			case c == '\'':
				inSingle = true
			default:
				cur = append(cur, c)
			}
			if at(p) != 0 {
				p++
			}
		}
		out = append(out, cur)
	}
}

func FuzzParseValue(f *testing.F) {
	for _, tt := range parseValueTests {
		f.Add([]byte(tt.in), uint16(1))
	}
	for _, v := range every {
		f.Add(AppendValue(nil, v, 3), uint16(2))
		f.Add(AppendValue(nil, v, 2), uint16(3))
	}
	f.Add([]byte("*2\r\n|1\r\n+a\r\n=5\r\nmkd:x\r\n>1\r\n!3\r\na\nb\r\n"), uint16(9))
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		v, n, err := ParseValue(data)
		switch {
		case err != nil || n == 0:
			if n != 0 || v.Kind != 0 {
				t.Fatalf("ParseValue(%q) = %s, %d, %v; want no value with an error or incomplete input", data, show(v), n, err)
			}
			return
		case n > len(data):
			t.Fatalf("ParseValue(%q) took %d bytes", data, n)
		}

		// Any shorter prefix is incomplete.
		k := int(split) % n
		if pv, pn, perr := ParseValue(data[:k]); pn != 0 || perr != nil || pv.Kind != 0 {
			t.Fatalf("ParseValue(%q) = %s, %d, %v; want incomplete, as %q is %s", data[:k], show(pv), pn, perr, data[:n], show(v))
		}

		// The value does not alias its input.
		buf := bytes.Clone(data[:n])
		v1, _, _ := ParseValue(buf)
		for i := range buf {
			buf[i] = '*'
		}
		if !v1.Equal(v) {
			t.Fatalf("ParseValue(%q) = %s, which became %s when its buffer changed", data[:n], show(v), show(v1))
		}

		// RESP3 round trip: the same value, and the encoding is a fixpoint.
		enc := AppendValue(nil, v, 3)
		v2, n2, err := ParseValue(enc)
		if err != nil || n2 != len(enc) || !v2.Equal(resp3(v)) {
			t.Fatalf("ParseValue(%q) = %s, %d, %v; want %s, %d, nil (parsed from %q)", enc, show(v2), n2, err, show(v), len(enc), data[:n])
		}
		if enc2 := AppendValue(nil, v2, 3); !bytes.Equal(enc, enc2) {
			t.Fatalf("AppendValue(%s) = %q, want %q", show(v2), enc2, enc)
		}

		// The RESP2 downgrade is a valid reply too.
		enc2 := AppendValue(nil, v, 2)
		if _, n3, err := ParseValue(enc2); err != nil || n3 != len(enc2) {
			t.Fatalf("ParseValue(%q) = _, %d, %v; want %d, nil (RESP2 form of %q)", enc2, n3, err, len(enc2), data[:n])
		}
	})
}
