package kv

import (
	"math/big"
	"strings"
)

// Redis's INCRBYFLOAT computes in C long double, which on x86-64 is the
// x87 80-bit format: a 64-bit mantissa and exponents up to 2^16383.
// big.Float with 64 bits of precision, rounding to nearest even, reproduces
// its parsing, addition and printing exactly; ldMaxExp and ldMinExp bound
// the exponent range (as big.Float.MantExp reports it).
const (
	ldPrec   = 64
	ldMaxExp = 16384
	ldMinExp = -16444
)

// parseFloat parses b as Redis parses floats (strtold plus checks): decimal
// or hexadecimal notation with an optional sign and exponent, or
// "inf"/"infinity" in any case (reported as inf=true). Leading or trailing
// spaces, NaN, underscores and values out of long double range are
// rejected.
func parseFloat(b []byte) (f *big.Float, inf, ok bool) {
	if len(b) == 0 || len(b) >= 5*1024 {
		return nil, false, false
	}
	s := string(b)
	body := strings.TrimLeft(s, "+-")
	if len(s)-len(body) > 1 || body == "" {
		return nil, false, false
	}
	switch strings.ToLower(body) {
	case "inf", "infinity":
		return nil, true, true
	}
	if !validFloatChars(body) {
		return nil, false, false
	}
	base := 10
	if len(body) > 1 && body[0] == '0' && (body[1] == 'x' || body[1] == 'X') {
		base = 0 // hexadecimal mantissa, optional 'p' exponent
	}
	f = new(big.Float).SetPrec(ldPrec).SetMode(big.ToNearestEven)
	if _, _, err := f.Parse(s, base); err != nil {
		return nil, false, false
	}
	if f.IsInf() || !inLongDoubleRange(f) {
		return nil, false, false
	}
	if f.Sign() == 0 && !zeroMantissa(body, base == 0) {
		return nil, false, false // underflow: strtold reports ERANGE
	}
	return f, false, true
}

// zeroMantissa reports whether the digits of a float literal before its
// exponent are all zero, so that a parsed zero is exact, not an underflow.
func zeroMantissa(s string, hex bool) bool {
	if hex {
		s = s[2:]
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '0' || c == '.':
		case !hex && (c == 'e' || c == 'E'), hex && (c == 'p' || c == 'P'):
			return true
		default:
			return false
		}
	}
	return true
}

// inLongDoubleRange reports whether f is neither too large for a long
// double nor a non-zero value too small for one.
func inLongDoubleRange(f *big.Float) bool {
	if f.Sign() == 0 {
		return true
	}
	exp := f.MantExp(nil)
	return exp <= ldMaxExp && exp >= ldMinExp
}

// validFloatChars rejects characters no strtold number contains; among
// them the underscores that big.Float accepts and strtold does not.
func validFloatChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9', c == '.', c == '+', c == '-':
		case c == 'x' || c == 'X' || c == 'p' || c == 'P':
		case c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
		default:
			return false
		}
	}
	return true
}

// addFloat returns a+b in long double arithmetic, or ok=false if the sum
// overflows (Redis's "would produce NaN or Infinity").
func addFloat(a, b *big.Float) (*big.Float, bool) {
	z := new(big.Float).SetPrec(ldPrec).SetMode(big.ToNearestEven).Add(a, b)
	return z, inLongDoubleRange(z)
}

// formatFloat prints f as INCRBYFLOAT stores it (Redis's "%.17Lf" with
// trailing zeros removed): plain decimal notation, 17 digits after the
// point before trimming, and "-0" printed as "0".
func formatFloat(f *big.Float) []byte {
	b := f.Append(nil, 'f', 17)
	for b[len(b)-1] == '0' {
		b = b[:len(b)-1]
	}
	if b[len(b)-1] == '.' {
		b = b[:len(b)-1]
	}
	if string(b) == "-0" {
		b = []byte("0")
	}
	return b
}
