package resp

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
