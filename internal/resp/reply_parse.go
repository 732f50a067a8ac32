package resp

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// Bounds on the replies ParseValue accepts.
const (
	maxReplyDepth        = 64        // nested aggregates
	maxReplyBulkLen      = 512 << 20 // as proto-max-bulk-len
	maxReplyAggregateLen = 1<<31 - 1 // elements; a map has two per entry
)

// SyntaxError is bytes that are not a valid reply.
type SyntaxError struct {
	Offset int // of the value or line at fault, in the buffer given to ParseValue
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("resp: invalid reply at offset %d: %s", e.Offset, e.Msg)
}

// errIncomplete stops a parse that ran out of input. It never leaves the
// package.
var errIncomplete = errors.New("resp: incomplete reply")

// ParseValue parses one reply at the start of buf and returns it and the
// number of bytes it took. If buf holds only part of a reply it returns
// n == 0 and err == nil, and the caller reads more and calls again. A
// malformed reply is a *SyntaxError.
//
// It reads every RESP2 and RESP3 type. Attributes (|) are checked and
// dropped. A push (>) becomes an Array, a big number (() a Bulk holding its
// digits, a blob error (!) an Error (with any CR or LF trimmed from its
// ends and replaced by spaces inside, as AppendError would write it), and
// the format of a verbatim string (=) is dropped. Streamed strings and
// aggregates ($?, *?) are not supported. Aggregates may nest 64 deep, bulk
// strings may be 512 MiB long.
//
// The Value does not alias buf: its strings are copied, into one new
// allocation for the whole reply, and its elements share another. Input is
// scanned once to find the reply's end and sizes, so nothing is allocated
// for an incomplete reply, and once more to build it; each call rescans
// from the start of buf.
func ParseValue(buf []byte) (v Value, n int, err error) {
	p := replyParser{buf: buf, keep: true}
	if _, err := p.value(0, 0, &v); err != nil {
		if err == errIncomplete {
			return Value{}, 0, nil
		}
		return Value{}, 0, err
	}
	p.build = true
	p.bytes = make([]byte, 0, p.nbytes)
	p.elems = make([]Value, 0, p.nelems)
	n, err = p.value(0, 0, &v)
	if err != nil {
		panic("resp: ParseValue failed to build a reply it had checked: " + err.Error())
	}
	return v, n, nil
}

// replyParser parses one reply in two passes. The first checks it and counts
// what it needs; the second builds it. Both run the same code, so they
// agree.
type replyParser struct {
	buf   []byte
	build bool // second pass
	keep  bool // false inside attributes, whose contents are checked and dropped

	// First pass: string bytes and aggregate elements the reply needs.
	nbytes, nelems int
	// Second pass: the room for them.
	bytes []byte
	elems []Value

	discard Value // where values not kept are parsed to
}

// value parses the value at p.buf[pos:], which is nested inside depth
// aggregates, into *v and returns the offset after it. (Values are written
// in place rather than returned: copying them up the calls took most of
// the time.)
func (p *replyParser) value(pos, depth int, v *Value) (int, error) {
	for {
		if pos >= len(p.buf) {
			return 0, errIncomplete
		}
		switch typ := p.buf[pos]; typ {
		case '+', '-', ':', ',', '#', '_', '(':
			return p.scalar(pos, v)
		case '$', '!', '=':
			return p.blob(pos, v)
		case '*', '%', '~', '>':
			return p.aggregate(pos, depth, v)
		case '|':
			next, err := p.attribute(pos, depth)
			if err != nil {
				return 0, err
			}
			pos = next // the value the attribute is about follows
		default:
			return 0, p.errorf(pos, "unknown type byte %q", string([]byte{typ}))
		}
	}
}

// scalar parses a value that is one line.
func (p *replyParser) scalar(pos int, v *Value) (int, error) {
	line, next, err := p.line(pos)
	if err != nil {
		return 0, err
	}
	switch p.buf[pos] {
	case '+':
		*v = Value{Kind: KindSimple, Str: p.str(line)}
	case '-':
		*v = Value{Kind: KindError, Str: p.str(line)}
	case ':':
		n, ok := ParseInt(line)
		if !ok {
			return 0, p.errorf(pos, "invalid integer %q", line)
		}
		*v = Value{Kind: KindInt, Int: n}
	case ',':
		f, err := strconv.ParseFloat(string(line), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return 0, p.errorf(pos, "invalid double %q", line)
		}
		*v = Value{Kind: KindDouble, Float: f}
	case '#':
		switch string(line) {
		case "t":
			*v = Value{Kind: KindBool, Int: 1}
		case "f":
			*v = Value{Kind: KindBool}
		default:
			return 0, p.errorf(pos, "invalid boolean %q", line)
		}
	case '_':
		if len(line) != 0 {
			return 0, p.errorf(pos, "invalid null %q", line)
		}
		*v = Value{Kind: KindNull}
	case '(':
		if !isBigNumber(line) {
			return 0, p.errorf(pos, "invalid big number %q", line)
		}
		*v = Value{Kind: KindBulk, Str: p.str(line)}
	}
	return next, nil
}

// blob parses a length-prefixed string: bulk, blob error or verbatim.
func (p *replyParser) blob(pos int, v *Value) (int, error) {
	typ := p.buf[pos]
	size, next, err := p.length(pos)
	switch {
	case err != nil:
		return 0, err
	case size == -1 && typ == '$':
		*v = Value{Kind: KindNull}
		return next, nil
	case size < 0 || size > maxReplyBulkLen:
		return 0, p.errorf(pos, "invalid length %d", size)
	case int64(len(p.buf)-next)-2 < size:
		return 0, errIncomplete
	}
	end := next + int(size)
	if p.buf[end] != '\r' || p.buf[end+1] != '\n' {
		return 0, p.errorf(end, "string not followed by CRLF")
	}
	data := p.buf[next:end]
	switch typ {
	case '$':
		*v = Value{Kind: KindBulk, Str: p.str(data)}
	case '!':
		*v = Value{Kind: KindError, Str: p.errorText(data)}
	case '=':
		if len(data) < 4 || data[3] != ':' {
			return 0, p.errorf(pos, "verbatim string without a format")
		}
		*v = Value{Kind: KindVerbatim, Str: p.str(data[4:])}
	}
	return end + 2, nil
}

// aggregate parses an array, map, set or push.
func (p *replyParser) aggregate(pos, depth int, v *Value) (int, error) {
	typ := p.buf[pos]
	count, next, err := p.length(pos)
	switch {
	case err != nil:
		return 0, err
	case count == -1 && typ == '*':
		*v = Value{Kind: KindNullArray}
		return next, nil
	case typ == '%' && count >= 0 && count <= maxReplyAggregateLen:
		count *= 2 // keys and values
	}
	switch {
	case count < 0 || count > maxReplyAggregateLen:
		return 0, p.errorf(pos, "invalid length %d", count)
	case depth >= maxReplyDepth:
		return 0, p.errorf(pos, "aggregates nested more than %d deep", maxReplyDepth)
	}
	kind := KindArray
	switch typ {
	case '%':
		kind = KindMap
	case '~':
		kind = KindSet
	}
	elems := p.elemsFor(int(count))
	for i := range int(count) {
		e := &p.discard
		if elems != nil {
			e = &elems[i]
		}
		if next, err = p.value(next, depth+1, e); err != nil {
			return 0, err
		}
	}
	*v = Value{Kind: kind, Elems: elems}
	return next, nil
}

// attribute checks and skips an attribute map and returns the offset after
// it.
func (p *replyParser) attribute(pos, depth int) (int, error) {
	count, next, err := p.length(pos)
	switch {
	case err != nil:
		return 0, err
	case count < 0 || count > maxReplyAggregateLen/2:
		return 0, p.errorf(pos, "invalid length %d", count)
	case depth >= maxReplyDepth:
		return 0, p.errorf(pos, "attributes nested more than %d deep", maxReplyDepth)
	}
	keep := p.keep
	p.keep = false
	for range 2 * count {
		if next, err = p.value(next, depth+1, &p.discard); err != nil {
			return 0, err // the parse is over; no need to restore p.keep
		}
	}
	p.keep = keep
	return next, nil
}

// line returns the text of the line at p.buf[pos:] after its type byte and
// without its "\r\n", and the offset after it. The text may hold neither CR
// nor LF.
func (p *replyParser) line(pos int) ([]byte, int, error) {
	i := bytes.IndexByte(p.buf[pos:], '\n')
	if i < 0 {
		return nil, 0, errIncomplete
	}
	end := pos + i // at '\n'
	if end-1 <= pos || p.buf[end-1] != '\r' {
		return nil, 0, p.errorf(pos, "line not ended by CRLF")
	}
	line := p.buf[pos+1 : end-1]
	if bytes.IndexByte(line, '\r') >= 0 {
		return nil, 0, p.errorf(pos, "CR inside a line")
	}
	return line, end + 1, nil
}

// length parses the line at p.buf[pos:] as a length or count.
func (p *replyParser) length(pos int) (int64, int, error) {
	line, next, err := p.line(pos)
	if err != nil {
		return 0, 0, err
	}
	n, ok := ParseInt(line)
	if !ok {
		return 0, 0, p.errorf(pos, "invalid length %q", line)
	}
	return n, next, nil
}

// str returns a copy of b: on the first pass only its size is counted, and
// inside attributes nothing is kept.
func (p *replyParser) str(b []byte) []byte {
	switch {
	case !p.keep:
		return nil
	case !p.build:
		p.nbytes += len(b)
		return nil
	}
	start := len(p.bytes)
	p.bytes = append(p.bytes, b...)
	return p.bytes[start:len(p.bytes):len(p.bytes)]
}

// errorText returns a copy of a blob error's text made fit for a one-line
// error reply, as AppendError writes it.
func (p *replyParser) errorText(b []byte) []byte {
	s := p.str(bytes.Trim(b, "\r\n"))
	for i, c := range s {
		if isCRLF(c) {
			s[i] = ' '
		}
	}
	return s
}

// elemsFor returns room for the n elements of an aggregate, or nil on the
// first pass and inside attributes.
func (p *replyParser) elemsFor(n int) []Value {
	switch {
	case !p.keep:
		return nil
	case !p.build:
		p.nelems += n
		return nil
	}
	start := len(p.elems)
	p.elems = p.elems[:start+n]
	return p.elems[start : start+n : start+n]
}

func (p *replyParser) errorf(pos int, format string, args ...any) error {
	return &SyntaxError{Offset: pos, Msg: fmt.Sprintf(format, args...)}
}

// isBigNumber reports whether b is an optionally negative decimal integer.
func isBigNumber(b []byte) bool {
	if len(b) > 0 && b[0] == '-' {
		b = b[1:]
	}
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
