package resp

import (
	"fmt"
	"math"
	"strconv"
)

// The writers append one reply, or the header of an aggregate reply, to dst
// and return the extended slice, like strconv.AppendInt. They allocate only
// when dst must grow. Where RESP2 and RESP3 differ they take proto: 3 means
// RESP3, anything else RESP2.

// AppendValue appends v encoded for protocol version proto. On RESP2 the
// RESP3 kinds are downgraded as Redis does: a Map becomes a flat array of
// keys and values, a Set an array, a Double a bulk string, a Bool the
// integer 1 or 0, Null a null bulk string, NullArray a null array and
// Verbatim a bulk string. It panics if v, or a value inside it, has an
// invalid Kind or is a Map with an odd number of elements: replies are built
// by the server, so that is a bug.
func AppendValue(dst []byte, v Value, proto int) []byte {
	switch v.Kind {
	case KindSimple:
		return appendLine(append(dst, '+'), v.Str)
	case KindError:
		return appendLine(append(dst, '-'), v.Str)
	case KindInt:
		return AppendInt(dst, v.Int)
	case KindBulk:
		return AppendBulk(dst, v.Str)
	case KindNull:
		return AppendNull(dst, proto)
	case KindNullArray:
		if proto == 3 {
			return append(dst, "_\r\n"...)
		}
		return append(dst, "*-1\r\n"...)
	case KindArray:
		dst = AppendArrayHeader(dst, len(v.Elems))
	case KindMap:
		if len(v.Elems)%2 != 0 {
			panic(fmt.Sprintf("resp: map reply with an odd number of elements (%d)", len(v.Elems)))
		}
		dst = AppendMapHeader(dst, len(v.Elems)/2, proto)
	case KindSet:
		dst = AppendSetHeader(dst, len(v.Elems), proto)
	case KindDouble:
		return AppendDouble(dst, v.Float, proto)
	case KindBool:
		return AppendBool(dst, v.Int != 0, proto)
	case KindVerbatim:
		if proto == 3 {
			dst = appendLength(dst, '=', len(v.Str)+4)
			dst = append(dst, "txt:"...)
			dst = append(dst, v.Str...)
			return append(dst, '\r', '\n')
		}
		return AppendBulk(dst, v.Str)
	default:
		panic(fmt.Sprintf("resp: reply with invalid kind %v", v.Kind))
	}
	for _, e := range v.Elems {
		dst = AppendValue(dst, e, proto)
	}
	return dst
}

// AppendSimple appends the simple string reply +s. Any CR or LF in s is
// dropped from its ends and replaced by a space elsewhere, as for errors.
func AppendSimple(dst []byte, s string) []byte {
	return appendLine(append(dst, '+'), s)
}

// AppendError appends the error reply -msg, where msg already starts with its
// code, e.g. "ERR syntax error" or "WRONGTYPE ...". As Redis does, CR and LF
// are trimmed from the ends of msg and replaced by spaces inside it, so the
// reply stays one line.
func AppendError(dst []byte, msg string) []byte {
	return appendLine(append(dst, '-'), msg)
}

// appendLine appends s as the rest of a simple string or error line.
func appendLine[S string | []byte](dst []byte, s S) []byte {
	for len(s) > 0 && isCRLF(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isCRLF(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	start := len(dst)
	dst = append(dst, s...)
	for i := start; i < len(dst); i++ {
		if isCRLF(dst[i]) {
			dst[i] = ' '
		}
	}
	return append(dst, '\r', '\n')
}

func isCRLF(c byte) bool { return c == '\r' || c == '\n' }

// AppendInt appends the integer reply :n.
func AppendInt(dst []byte, n int64) []byte {
	dst = strconv.AppendInt(append(dst, ':'), n, 10)
	return append(dst, '\r', '\n')
}

// AppendBulk appends b as a bulk string reply. A nil b is an empty string,
// not a null; see AppendNull.
func AppendBulk(dst []byte, b []byte) []byte {
	dst = appendLength(dst, '$', len(b))
	dst = append(dst, b...)
	return append(dst, '\r', '\n')
}

// AppendBulkString appends s as a bulk string reply.
func AppendBulkString(dst []byte, s string) []byte {
	dst = appendLength(dst, '$', len(s))
	dst = append(dst, s...)
	return append(dst, '\r', '\n')
}

// AppendNull appends the null reply: _ on RESP3, the null bulk string $-1 on
// RESP2.
func AppendNull(dst []byte, proto int) []byte {
	if proto == 3 {
		return append(dst, "_\r\n"...)
	}
	return append(dst, "$-1\r\n"...)
}

// AppendArrayHeader appends the header of an array of n elements, which the
// caller appends next.
func AppendArrayHeader(dst []byte, n int) []byte {
	return appendLength(dst, '*', n)
}

// AppendMapHeader appends the header of a map of n key-value pairs, which
// the caller appends next, key then value. On RESP2 it is an array of 2n.
func AppendMapHeader(dst []byte, n int, proto int) []byte {
	if proto == 3 {
		return appendLength(dst, '%', n)
	}
	return appendLength(dst, '*', 2*n)
}

// AppendSetHeader appends the header of a set of n elements, which the
// caller appends next. On RESP2 it is an array.
func AppendSetHeader(dst []byte, n int, proto int) []byte {
	if proto == 3 {
		return appendLength(dst, '~', n)
	}
	return appendLength(dst, '*', n)
}

// AppendDouble appends a double reply, formatted as Redis formats doubles
// (see appendFloat). On RESP2 it is a bulk string.
func AppendDouble(dst []byte, f float64, proto int) []byte {
	if proto == 3 {
		dst = appendFloat(append(dst, ','), f)
		return append(dst, '\r', '\n')
	}
	var buf [32]byte
	return AppendBulk(dst, appendFloat(buf[:0], f))
}

// AppendBool appends a boolean reply; on RESP2 the integer 1 or 0.
func AppendBool(dst []byte, b bool, proto int) []byte {
	switch {
	case proto == 3 && b:
		return append(dst, "#t\r\n"...)
	case proto == 3:
		return append(dst, "#f\r\n"...)
	case b:
		return append(dst, ":1\r\n"...)
	}
	return append(dst, ":0\r\n"...)
}

func appendLength(dst []byte, typ byte, n int) []byte {
	dst = strconv.AppendInt(append(dst, typ), int64(n), 10)
	return append(dst, '\r', '\n')
}

// appendFloat appends f as Redis 7.2 and later print doubles (d2string):
// "inf", "-inf", "nan", "0" and "-0"; integers of magnitude up to 2^62 in
// full; anything else as the shortest decimal that reads back as f, laid out
// as Redis's fpconv_dtoa does (plain digits when the exponent is small,
// otherwise 1.5e+20 or 1.5e-7). Redis finds those digits with Grisu2, which
// in rare cases gives a longer string than the shortest; both read back as
// the same double.
func appendFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "nan"...)
	case math.IsInf(f, 1):
		return append(dst, "inf"...)
	case math.IsInf(f, -1):
		return append(dst, "-inf"...)
	case f == 0 && math.Signbit(f):
		return append(dst, "-0"...)
	case f >= -(1<<62) && f <= 1<<62 && f == math.Trunc(f):
		return strconv.AppendInt(dst, int64(f), 10)
	}
	if f < 0 {
		dst = append(dst, '-')
		f = -f
	}
	// Shortest digits d1.d2d3...e±x; the value is digits * 10^k.
	var buf [32]byte
	sci := strconv.AppendFloat(buf[:0], f, 'e', -1, 64)
	e := len(sci) - 1
	for sci[e] != 'e' {
		e--
	}
	x := 0
	for _, c := range sci[e+2:] {
		x = 10*x + int(c-'0')
	}
	if sci[e+1] == '-' {
		x = -x
	}
	var digitsBuf [24]byte
	digits := append(digitsBuf[:0], sci[0])
	if e > 1 {
		digits = append(digits, sci[2:e]...)
	}
	nd := len(digits)
	k := x - (nd - 1)
	absx := max(x, -x)
	switch {
	case k >= 0 && absx < nd+7: // 12345000
		dst = append(dst, digits...)
		for range k {
			dst = append(dst, '0')
		}
		return dst
	case k < 0 && (k > -7 || absx < 4) && nd+k > 0: // 123.45
		dst = append(dst, digits[:nd+k]...)
		dst = append(dst, '.')
		return append(dst, digits[nd+k:]...)
	case k < 0 && (k > -7 || absx < 4): // 0.00012345
		dst = append(dst, '0', '.')
		for range -(nd + k) {
			dst = append(dst, '0')
		}
		return append(dst, digits...)
	}
	dst = append(dst, digits[0]) // 1.2345e+20
	if nd > 1 {
		dst = append(dst, '.')
		dst = append(dst, digits[1:]...)
	}
	if x < 0 {
		dst = append(dst, 'e', '-')
	} else {
		dst = append(dst, 'e', '+')
	}
	return strconv.AppendInt(dst, int64(absx), 10)
}
