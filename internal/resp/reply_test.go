package resp

import (
	"math"
	"strconv"
	"testing"
)

// show renders a Value for failure messages as its RESP3 encoding; the zero
// Value, which parsers return with errors, is "none".
func show(v Value) string {
	if v.Kind == 0 {
		return "none"
	}
	return strconv.Quote(string(AppendValue(nil, v, 3)))
}

// every holds a value of every kind, and each kind inside aggregates.
var every = []Value{
	OK,
	Simple(""),
	Err("ERR syntax error"),
	Int(0),
	Int(-1 << 63),
	Int(1<<63 - 1),
	BulkString("hello"),
	Bulk(nil),
	Bulk([]byte("a\r\nb\x00")),
	Null,
	NullArray,
	Array(),
	Array(Int(1), BulkString("two"), Null, Array(Simple("x"))),
	Map(),
	Map(BulkString("k"), Int(1), Simple("k2"), Map(Int(1), Double(1.5))),
	Set(),
	Set(BulkString("a"), Int(2)),
	Double(0),
	Double(math.Copysign(0, -1)),
	Double(3.25),
	Double(-1e-300),
	Double(math.Inf(1)),
	Double(math.Inf(-1)),
	Double(math.NaN()),
	Bool(true),
	Bool(false),
	Verbatim("Some string"),
	Verbatim(""),
	Array(Bool(true), Double(0.1), Verbatim("x"), Set(NullArray), Err("WRONGTYPE x")),
}

func TestAppendValueRESP3(t *testing.T) {
	tests := []struct {
		v    Value
		want string
	}{
		{OK, "+OK\r\n"},
		{Err("ERR syntax error"), "-ERR syntax error\r\n"},
		{Int(-42), ":-42\r\n"},
		{BulkString("foo"), "$3\r\nfoo\r\n"},
		{Bulk(nil), "$0\r\n\r\n"},
		{Null, "_\r\n"},
		{NullArray, "_\r\n"},
		{Array(), "*0\r\n"},
		{Array(Int(1), BulkString("a")), "*2\r\n:1\r\n$1\r\na\r\n"},
		{Map(BulkString("k"), Int(1)), "%1\r\n$1\r\nk\r\n:1\r\n"},
		{Set(Int(1), Int(2)), "~2\r\n:1\r\n:2\r\n"},
		{Double(1.5), ",1.5\r\n"},
		{Double(math.Inf(1)), ",inf\r\n"},
		{Double(math.Inf(-1)), ",-inf\r\n"},
		{Double(math.NaN()), ",nan\r\n"},
		{Bool(true), "#t\r\n"},
		{Bool(false), "#f\r\n"},
		{Value{Kind: KindBool, Int: 7}, "#t\r\n"},
		{Verbatim("Some string"), "=15\r\ntxt:Some string\r\n"},
	}
	for _, tt := range tests {
		if got := string(AppendValue(nil, tt.v, 3)); got != tt.want {
			t.Errorf("AppendValue(%s, 3) = %q, want %q", show(tt.v), got, tt.want)
		}
	}
}

func TestAppendValueRESP2(t *testing.T) {
	tests := []struct {
		v    Value
		want string
	}{
		{OK, "+OK\r\n"},
		{Err("ERR syntax error"), "-ERR syntax error\r\n"},
		{Int(7), ":7\r\n"},
		{BulkString("foo"), "$3\r\nfoo\r\n"},
		{Null, "$-1\r\n"},
		{NullArray, "*-1\r\n"},
		{Array(Null, NullArray), "*2\r\n$-1\r\n*-1\r\n"},
		{Map(), "*0\r\n"},
		{Map(BulkString("k"), Int(1), BulkString("j"), Null), "*4\r\n$1\r\nk\r\n:1\r\n$1\r\nj\r\n$-1\r\n"},
		{Set(BulkString("a"), BulkString("b")), "*2\r\n$1\r\na\r\n$1\r\nb\r\n"},
		{Double(1.5), "$3\r\n1.5\r\n"},
		{Double(3), "$1\r\n3\r\n"},
		{Double(math.Inf(1)), "$3\r\ninf\r\n"},
		{Double(math.Inf(-1)), "$4\r\n-inf\r\n"},
		{Double(math.NaN()), "$3\r\nnan\r\n"},
		{Double(1e300), "$6\r\n1e+300\r\n"},
		{Bool(true), ":1\r\n"},
		{Bool(false), ":0\r\n"},
		{Verbatim("Some string"), "$11\r\nSome string\r\n"},
		{Array(Map(Simple("a"), Bool(true)), Set(Double(0.5))), "*2\r\n*2\r\n+a\r\n:1\r\n*1\r\n$3\r\n0.5\r\n"},
	}
	for _, tt := range tests {
		if got := string(AppendValue(nil, tt.v, 2)); got != tt.want {
			t.Errorf("AppendValue(%s, 2) = %q, want %q", show(tt.v), got, tt.want)
		}
	}
}

func TestAppendValueInvalid(t *testing.T) {
	for _, v := range []Value{{}, {Kind: 200}, Map(Int(1)), Array(Value{})} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("AppendValue(%+v) did not panic", v)
				}
			}()
			AppendValue(nil, v, 3)
		}()
	}
}

func TestAppendWriters(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"AppendSimple", AppendSimple(nil, "OK"), "+OK\r\n"},
		{"AppendSimple CRLF", AppendSimple(nil, "a\r\nb\n"), "+a  b\r\n"},
		{"AppendError", AppendError(nil, "ERR unknown command 'x'"), "-ERR unknown command 'x'\r\n"},
		{"AppendError CRLF inside", AppendError(nil, "ERR a\r\nb\rc\nd"), "-ERR a  b c d\r\n"},
		{"AppendError CRLF at ends", AppendError(nil, "\r\nERR x\r\n\n"), "-ERR x\r\n"},
		{"AppendError empty", AppendError(nil, ""), "-\r\n"},
		{"AppendInt", AppendInt(nil, -9223372036854775808), ":-9223372036854775808\r\n"},
		{"AppendBulk", AppendBulk(nil, []byte("a\r\n")), "$3\r\na\r\n\r\n"},
		{"AppendBulk nil", AppendBulk(nil, nil), "$0\r\n\r\n"},
		{"AppendBulkString", AppendBulkString(nil, "héllo"), "$6\r\nhéllo\r\n"},
		{"AppendNull 2", AppendNull(nil, 2), "$-1\r\n"},
		{"AppendNull 3", AppendNull(nil, 3), "_\r\n"},
		{"AppendArrayHeader", AppendArrayHeader(nil, 3), "*3\r\n"},
		{"AppendMapHeader 2", AppendMapHeader(nil, 3, 2), "*6\r\n"},
		{"AppendMapHeader 3", AppendMapHeader(nil, 3, 3), "%3\r\n"},
		{"AppendSetHeader 2", AppendSetHeader(nil, 2, 2), "*2\r\n"},
		{"AppendSetHeader 3", AppendSetHeader(nil, 2, 3), "~2\r\n"},
		{"AppendDouble 2", AppendDouble(nil, -0.25, 2), "$5\r\n-0.25\r\n"},
		{"AppendDouble 3", AppendDouble(nil, -0.25, 3), ",-0.25\r\n"},
		{"AppendBool 2", AppendBool(nil, true, 2), ":1\r\n"},
		{"AppendBool 3", AppendBool(nil, false, 3), "#f\r\n"},
		{"appends", AppendInt([]byte("+OK\r\n"), 1), "+OK\r\n:1\r\n"},
	}
	for _, tt := range tests {
		if string(tt.got) != tt.want {
			t.Errorf("%s = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

// TestAppendFloat checks doubles print as Redis 7.2+ prints them.
func TestAppendFloat(t *testing.T) {
	tests := []struct {
		f    float64
		want string
	}{
		{0, "0"},
		{math.Copysign(0, -1), "-0"},
		{1, "1"},
		{-1, "-1"},
		{1.5, "1.5"},
		{-2.5, "-2.5"},
		{0.1, "0.1"},
		{1.0 / 3, "0.3333333333333333"},
		{2.0 / 3, "0.6666666666666666"},
		{123.456, "123.456"},
		{12345678.9, "12345678.9"},
		{3.0000000000000004, "3.0000000000000004"},
		{0.001, "0.001"},
		{0.000001, "0.000001"},       // decimal while the exponent is above -7
		{0.0000015, "1.5e-6"},        // 15e-7: scientific, as the last digit is at 10^-7
		{0.00000125, "1.25e-6"},      // 125e-8: scientific
		{1e-7, "1e-7"},               // scientific with no zero padding of the exponent
		{1.234e-5, "1.234e-5"},       //
		{0.001234567, "0.001234567"}, // decimal again, as the exponent is small
		{1.2345678901, "1.2345678901"},
		{1e15, "1000000000000000"},           // integers print in full
		{1 << 62, "4611686018427387904"},     // up to 2^62
		{-(1 << 62), "-4611686018427387904"}, //
		{1 << 63, "9223372036854776000"},     // beyond: shortest digits, plain while the exponent < digits+7
		{1e19, "1e+19"},                      //
		{1.2345678901234e20, "123456789012340000000"},
		{1.5e20, "1.5e+20"},
		{1e100, "1e+100"},
		{1.5e300, "1.5e+300"},
		{math.MaxFloat64, "1.7976931348623157e+308"},
		{-math.MaxFloat64, "-1.7976931348623157e+308"},
		{5e-324, "5e-324"},
		{-1e-300, "-1e-300"},
		{1.5e-105, "1.5e-105"},
		{math.Inf(1), "inf"},
		{math.Inf(-1), "-inf"},
		{math.NaN(), "nan"},
	}
	for _, tt := range tests {
		got := string(appendFloat(nil, tt.f))
		if got != tt.want {
			t.Errorf("appendFloat(%v) = %q, want %q", tt.f, got, tt.want)
		}
		if back, err := strconv.ParseFloat(got, 64); err != nil || (back != tt.f && !math.IsNaN(tt.f)) {
			t.Errorf("appendFloat(%v) = %q, which reads back as %v, %v", tt.f, got, back, err)
		}
	}
}

func TestAppendAllocs(t *testing.T) {
	v := Array(BulkString("key"), Int(12), Double(1.5), Map(Simple("a"), Bool(true)), Null)
	dst := make([]byte, 0, 1024)
	for _, proto := range []int{2, 3} {
		if n := testing.AllocsPerRun(100, func() { dst = AppendValue(dst[:0], v, proto) }); n != 0 {
			t.Errorf("AppendValue(%s, %d) allocates %v times, want 0", show(v), proto, n)
		}
	}
	if n := testing.AllocsPerRun(100, func() {
		dst = AppendError(dst[:0], "ERR x\r\ny")
		dst = AppendSimple(dst, "OK")
		dst = AppendDouble(dst, 1.25e-9, 2)
	}); n != 0 {
		t.Errorf("writers allocate %v times, want 0", n)
	}
}

// resp3 returns v as it reads back from RESP3, which has one null for both
// Null and NullArray.
func resp3(v Value) Value {
	switch v.Kind {
	case KindNullArray:
		return Null
	case KindArray, KindMap, KindSet:
		elems := make([]Value, len(v.Elems))
		for i, e := range v.Elems {
			elems[i] = resp3(e)
		}
		v.Elems = elems
	}
	return v
}

// TestRoundTrip checks that every kind, written for RESP3, parses back to
// an equal Value, and that its RESP2 form parses too.
func TestRoundTrip(t *testing.T) {
	for _, v := range every {
		enc := AppendValue(nil, v, 3)
		got, n, err := ParseValue(enc)
		if err != nil || n != len(enc) || !got.Equal(resp3(v)) {
			t.Errorf("ParseValue(%q) = %s, %d, %v; want %s, %d, nil", enc, show(got), n, err, show(v), len(enc))
		}
		enc2 := AppendValue(nil, v, 2)
		if _, n, err := ParseValue(enc2); err != nil || n != len(enc2) {
			t.Errorf("ParseValue(%q) = _, %d, %v; want %d, nil", enc2, n, err, len(enc2))
		}
	}
}

func TestValueEqual(t *testing.T) {
	tests := []struct {
		a, b Value
		want bool
	}{
		{Bulk(nil), BulkString(""), true},
		{Array(), Value{Kind: KindArray, Elems: []Value{}}, true},
		{Double(math.NaN()), Double(math.Float64frombits(0x7ff8000000000001)), true},
		{Double(0), Double(math.Copysign(0, -1)), false},
		{Double(math.NaN()), Double(1), false},
		{Bool(true), Value{Kind: KindBool, Int: 2}, true},
		{Int(1), Value{Kind: KindInt, Int: 1, Str: []byte("ignored")}, true},
		{Int(1), Bool(true), false},
		{Null, NullArray, false},
		{Simple("a"), BulkString("a"), false},
		{Array(Int(1)), Array(Int(2)), false},
		{Array(Int(1)), Array(Int(1), Int(1)), false},
		{Map(Int(1), Int(2)), Array(Int(1), Int(2)), false},
	}
	for _, tt := range tests {
		if got := tt.a.Equal(tt.b); got != tt.want {
			t.Errorf("%s.Equal(%s) = %v, want %v", show(tt.a), show(tt.b), got, tt.want)
		}
		if got := tt.b.Equal(tt.a); got != tt.want {
			t.Errorf("%s.Equal(%s) = %v, want %v", show(tt.b), show(tt.a), got, tt.want)
		}
	}
}

func TestKindString(t *testing.T) {
	want := []string{"Kind(0)", "simple", "error", "int", "bulk", "null", "null-array", "array", "map", "set", "double", "bool", "verbatim", "Kind(13)"}
	for k, w := range want {
		if got := Kind(k).String(); got != w {
			t.Errorf("Kind(%d).String() = %q, want %q", k, got, w)
		}
	}
}
