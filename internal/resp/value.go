package resp

import (
	"bytes"
	"math"
	"strconv"
)

// Kind is the type of a reply Value.
type Kind uint8

// Reply kinds. RESP3-only kinds (Map, Set, Double, Bool, BigNumber, Verbatim)
// are downgraded when written to a RESP2 connection: Map and Set become
// arrays, Double a bulk string, Bool an integer, Null a null bulk string
// (or null array for NullArray).
const (
	KindSimple    Kind = iota + 1 // +OK
	KindError                     // -ERR ... (Str holds the whole message, prefix included)
	KindInt                       // :1
	KindBulk                      // $3\r\nfoo
	KindNull                      // RESP2 $-1, RESP3 _
	KindNullArray                 // RESP2 *-1, RESP3 _
	KindArray                     // *n
	KindMap                       // RESP3 %n (Elems holds key, value, key, value...)
	KindSet                       // RESP3 ~n
	KindDouble                    // RESP3 ,1.5
	KindBool                      // RESP3 #t
	KindVerbatim                  // RESP3 =n\r\ntxt:...; Str holds the text without the "txt:" prefix
)

// Value is one reply. It is a plain tree so that replies can be built by the
// command logic, carried across the network and encoded for RESP2 or RESP3
// at the edge.
type Value struct {
	Kind  Kind
	Str   []byte  // Simple, Error, Bulk, Verbatim
	Int   int64   // Int; Bool (0 or 1)
	Float float64 // Double
	Elems []Value // Array, Map, Set
}

// Constructors for the common replies.

// OK is the +OK reply.
var OK = Value{Kind: KindSimple, Str: []byte("OK")}

// Null is the null reply (null bulk string in RESP2).
var Null = Value{Kind: KindNull}

// Simple returns a simple string reply.
func Simple(s string) Value { return Value{Kind: KindSimple, Str: []byte(s)} }

// Err returns an error reply; msg must include its prefix, e.g. "ERR syntax error".
func Err(msg string) Value { return Value{Kind: KindError, Str: []byte(msg)} }

// Int returns an integer reply.
func Int(n int64) Value { return Value{Kind: KindInt, Int: n} }

// Bulk returns a bulk string reply.
func Bulk(b []byte) Value { return Value{Kind: KindBulk, Str: b} }

// BulkString returns a bulk string reply.
func BulkString(s string) Value { return Value{Kind: KindBulk, Str: []byte(s)} }

// Array returns an array reply.
func Array(elems ...Value) Value { return Value{Kind: KindArray, Elems: elems} }

// IsError reports whether v is an error reply.
func (v Value) IsError() bool { return v.Kind == KindError }

// NullArray is the null array reply (*-1 in RESP2, _ in RESP3).
var NullArray = Value{Kind: KindNullArray}

// Map returns a map reply; kv holds keys and values alternately, so its
// length must be even.
func Map(kv ...Value) Value { return Value{Kind: KindMap, Elems: kv} }

// Set returns a set reply.
func Set(elems ...Value) Value { return Value{Kind: KindSet, Elems: elems} }

// Double returns a double reply.
func Double(f float64) Value { return Value{Kind: KindDouble, Float: f} }

// Bool returns a boolean reply.
func Bool(b bool) Value {
	if b {
		return Value{Kind: KindBool, Int: 1}
	}
	return Value{Kind: KindBool}
}

// Verbatim returns a verbatim text reply (format "txt").
func Verbatim(s string) Value { return Value{Kind: KindVerbatim, Str: []byte(s)} }

// Equal reports whether v and w are the same reply. It compares only the
// fields that v's kind uses, treats a nil and an empty Str or Elems alike,
// and holds any two NaN doubles equal (but not 0 and -0, which RESP writes
// differently).
func (v Value) Equal(w Value) bool {
	if v.Kind != w.Kind {
		return false
	}
	switch v.Kind {
	case KindSimple, KindError, KindBulk, KindVerbatim:
		return bytes.Equal(v.Str, w.Str)
	case KindInt:
		return v.Int == w.Int
	case KindBool:
		return (v.Int != 0) == (w.Int != 0)
	case KindDouble:
		if math.IsNaN(v.Float) || math.IsNaN(w.Float) {
			return math.IsNaN(v.Float) && math.IsNaN(w.Float)
		}
		return math.Float64bits(v.Float) == math.Float64bits(w.Float)
	case KindArray, KindMap, KindSet:
		if len(v.Elems) != len(w.Elems) {
			return false
		}
		for i := range v.Elems {
			if !v.Elems[i].Equal(w.Elems[i]) {
				return false
			}
		}
		return true
	}
	return true // Null, NullArray, and invalid kinds carry nothing else
}

// String returns the kind's name.
func (k Kind) String() string {
	switch k {
	case KindSimple:
		return "simple"
	case KindError:
		return "error"
	case KindInt:
		return "int"
	case KindBulk:
		return "bulk"
	case KindNull:
		return "null"
	case KindNullArray:
		return "null-array"
	case KindArray:
		return "array"
	case KindMap:
		return "map"
	case KindSet:
		return "set"
	case KindDouble:
		return "double"
	case KindBool:
		return "bool"
	case KindVerbatim:
		return "verbatim"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}
