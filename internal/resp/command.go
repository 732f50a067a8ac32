package resp

import "bytes"

// Defaults for the zero fields of Limits; they are Redis's.
const (
	DefaultMaxBulkLen      = 512 << 20   // proto-max-bulk-len
	DefaultMaxMultibulkLen = 1024 * 1024 // Redis before 7.0
	DefaultMaxInlineLen    = 64 << 10    // PROTO_INLINE_MAX_SIZE
)

// What Redis accepts from a client that must authenticate but has not yet.
const (
	unauthMaxMultibulkLen = 10
	unauthMaxBulkLen      = 16 << 10
)

// Limits bound what a client may send. Zero (or negative) fields mean the
// defaults.
type Limits struct {
	// MaxBulkLen is the longest argument of a multibulk command, in bytes.
	MaxBulkLen int
	// MaxMultibulkLen is the most arguments a multibulk command may have.
	MaxMultibulkLen int
	// MaxInlineLen is the longest inline command line, and the longest
	// length line ("*3", "$5") of a multibulk command, in bytes.
	MaxInlineLen int
	// Unauthenticated applies the stricter limits Redis uses while a client
	// that must authenticate has not: at most 10 arguments of at most 16 KiB
	// each, so that such a client cannot make the server buffer much. They
	// fail with "unauthenticated multibulk length" and "unauthenticated bulk
	// length".
	Unauthenticated bool
}

func (l Limits) withDefaults() Limits {
	if l.MaxBulkLen <= 0 {
		l.MaxBulkLen = DefaultMaxBulkLen
	}
	if l.MaxMultibulkLen <= 0 {
		l.MaxMultibulkLen = DefaultMaxMultibulkLen
	}
	if l.MaxInlineLen <= 0 {
		l.MaxInlineLen = DefaultMaxInlineLen
	}
	return l
}

// ProtocolError is a malformed command. Its Error text is exactly the error
// Redis replies with before it closes the connection, so a server sends
// "-" + err.Error() and closes.
type ProtocolError struct {
	msg string
}

func (e *ProtocolError) Error() string { return e.msg }

func protocolError(reason string) *ProtocolError {
	return &ProtocolError{msg: "ERR Protocol error: " + reason}
}

// The protocol errors of ParseCommand and Parser.Parse. The one other is the
// *ProtocolError "expected '$', got 'x'", where x is the byte found instead.
var (
	ErrInvalidMultibulkLength = protocolError("invalid multibulk length")
	ErrInvalidBulkLength      = protocolError("invalid bulk length")
	ErrUnbalancedQuotes       = protocolError("unbalanced quotes in request")
	ErrTooBigInline           = protocolError("too big inline request")
	ErrTooBigMbulkCount       = protocolError("too big mbulk count string")
	ErrTooBigBulkCount        = protocolError("too big bulk count string")
	ErrUnauthMultibulkLength  = protocolError("unauthenticated multibulk length")
	ErrUnauthBulkLength       = protocolError("unauthenticated bulk length")
)

func errExpectedDollar(got byte) *ProtocolError {
	if isCRLF(got) {
		got = ' ' // as Redis writes it, keeping the reply one line
	}
	return protocolError("expected '$', got '" + string([]byte{got}) + "'")
}

// ParseCommand parses one command at the start of buf. It returns the
// arguments, the number of bytes consumed and an error.
//
// If buf holds only part of a command it returns n == 0 and err == nil: the
// caller reads more and calls again with the longer buffer. An empty inline
// line, or a multibulk command with a count of zero or less ("*0", "*-1"),
// is consumed with args == nil and n > 0; the caller skips it, as Redis does.
// An error is a *ProtocolError; the input after it cannot be trusted, so the
// caller replies with it and closes the connection.
//
// Arguments of a multibulk command are sub-slices of buf. Inline arguments
// are too, except those with quotes, which are decoded into new slices.
// ParseCommand allocates the args slice on every call; a connection should
// keep a Parser instead, which reuses it and does not rescan a command that
// arrives over many reads.
func ParseCommand(buf []byte, lim Limits) (args [][]byte, n int, err error) {
	p := Parser{Limits: lim}
	return p.Parse(buf)
}

// Parser parses the commands one client sends. It behaves as ParseCommand
// but keeps state between calls:
//
//   - the args slice it returns is reused: it and its elements are valid
//     until the next call to Parse (the elements alias buf, so also only as
//     long as the caller leaves those bytes of buf alone);
//   - when a multibulk command is incomplete it remembers how far it got,
//     so that a command arriving over many reads is scanned once rather than
//     once per read (which a slow client could make quadratic).
//
// The second point needs the caller to keep this contract: after a call
// that returns n > 0, the next buf starts n bytes further on; after a call
// that returns n == 0, the next buf starts with the same bytes, followed by
// more. The buffer may move between calls (grow into a new array, or be
// copied to the front of the old one). To give up on a partial command and
// parse unrelated input, call Reset; Parse resets itself after an error.
//
// The zero Parser is ready to use with default Limits.
type Parser struct {
	Limits Limits

	args [][]byte // the current command's arguments; reused

	// A multibulk command that has not fully arrived.
	pending bool
	want    int    // arguments still to come
	pos     int    // bytes of it parsed: the header and the arguments in args
	prev    []byte // the buffer the slices in args point into
}

// Reset forgets any partly parsed command.
func (p *Parser) Reset() {
	p.pending = false
	p.prev = nil
	p.emptyArgs(0)
}

// emptyArgs empties p.args for a command of about n arguments, dropping its
// references into the caller's buffers. It keeps the slice's array unless
// that is much larger than needed, so that one huge command does not pin
// memory for the life of the connection.
func (p *Parser) emptyArgs(n int) {
	if c := cap(p.args); c > 1024 && c > 4*n {
		p.args = nil
		return
	}
	clear(p.args)
	p.args = p.args[:0]
}

// Parse parses one command at the start of buf; see ParseCommand and Parser.
func (p *Parser) Parse(buf []byte) (args [][]byte, n int, err error) {
	if p.pending && (len(buf) < p.pos || buf[0] != '*') {
		p.Reset() // the caller broke the contract; start over
	}
	if len(buf) == 0 {
		return nil, 0, nil
	}
	lim := p.Limits.withDefaults()
	if buf[0] == '*' {
		args, n, err = p.multibulk(buf, lim)
	} else {
		args, n, err = p.inline(buf, lim)
	}
	if err != nil {
		p.Reset()
		return nil, 0, err
	}
	return args, n, nil
}

// multibulk parses "*<count>\r\n" followed by count "$<len>\r\n<bytes>\r\n"
// arguments, resuming where an earlier call on the same command stopped.
//
// Like Redis, it does not check that the byte after a length line's '\r'
// is '\n', nor that an argument's bytes are followed by "\r\n": it skips two
// bytes. A length line's '\r' must come within MaxInlineLen bytes.
func (p *Parser) multibulk(buf []byte, lim Limits) ([][]byte, int, error) {
	if p.pending {
		p.rebase(buf)
	} else {
		line, next, err := lengthLine(buf, 0, lim.MaxInlineLen, ErrTooBigMbulkCount)
		if next == 0 || err != nil {
			return nil, 0, err
		}
		count, ok := ParseInt(line[1:])
		switch {
		case !ok || count > int64(lim.MaxMultibulkLen):
			return nil, 0, ErrInvalidMultibulkLength
		case lim.Unauthenticated && count > unauthMaxMultibulkLen:
			return nil, 0, ErrUnauthMultibulkLength
		case count <= 0:
			return nil, next, nil
		}
		p.pending, p.want, p.pos = true, int(count), next
		p.emptyArgs(p.want)
		if cap(p.args) < p.want {
			// Size the slice for the arguments present, not for the count
			// the client claims: each takes at least 6 bytes ("$0\r\n\r\n").
			p.args = make([][]byte, 0, min(p.want, (len(buf)-next)/6+1))
		}
	}
	for p.want > 0 {
		line, next, err := lengthLine(buf, p.pos, lim.MaxInlineLen, ErrTooBigBulkCount)
		if err != nil {
			return nil, 0, err
		}
		if next == 0 {
			p.prev = buf
			return nil, 0, nil
		}
		if len(line) == 0 || line[0] != '$' {
			return nil, 0, errExpectedDollar(buf[p.pos])
		}
		size, ok := ParseInt(line[1:])
		switch {
		case !ok || size < 0 || size > int64(lim.MaxBulkLen):
			return nil, 0, ErrInvalidBulkLength
		case lim.Unauthenticated && size > unauthMaxBulkLen:
			return nil, 0, ErrUnauthBulkLength
		case int64(len(buf)-next)-2 < size:
			p.prev = buf
			return nil, 0, nil // the argument has not all arrived
		}
		end := next + int(size)
		p.args = append(p.args, buf[next:end])
		p.pos = end + 2
		p.want--
	}
	p.pending, p.prev = false, nil
	return p.args, p.pos, nil
}

// rebase points the arguments parsed on earlier calls, which are slices of
// p.prev, at the same bytes of buf. The offset of a slice s = prev[i:j] is
// cap(prev)-cap(s), since slicing from i takes i off the capacity.
func (p *Parser) rebase(buf []byte) {
	if len(p.args) > 0 && (&buf[0] != &p.prev[0] || cap(buf) != cap(p.prev)) {
		for k, a := range p.args {
			i := cap(p.prev) - cap(a)
			p.args[k] = buf[i : i+len(a)]
		}
	}
	p.prev = buf
}

// lengthLine returns the line of a multibulk command at buf[pos:] that holds
// a count or length, without its "\r\n", and the offset after it. It returns
// next == 0 if the line has not all arrived, and tooBig if there is no '\r'
// within max bytes.
func lengthLine(buf []byte, pos, max int, tooBig error) (line []byte, next int, err error) {
	w := window(buf[pos:], max)
	i := bytes.IndexByte(w, '\r')
	switch {
	case i < 0 && len(w) > max:
		return nil, 0, tooBig
	case i < 0 || pos+i+1 >= len(buf):
		return nil, 0, nil
	}
	return buf[pos : pos+i], pos + i + 2, nil
}

// window returns the first max+1 bytes of b, or all of it if it is shorter:
// enough to tell whether a line of at most max bytes ends there.
func window(b []byte, max int) []byte {
	if len(b) > max {
		return b[:max+1]
	}
	return b
}

// inline parses a command sent as one line of text, ended by "\n" or
// "\r\n", as telnet users and some health checks send them.
//
// A line longer than MaxInlineLen is an error whether or not its end has
// arrived, so the outcome does not depend on how the input was split into
// reads (Redis checks only while the end has not arrived).
func (p *Parser) inline(buf []byte, lim Limits) ([][]byte, int, error) {
	w := window(buf, lim.MaxInlineLen)
	i := bytes.IndexByte(w, '\n')
	if i < 0 {
		if len(w) > lim.MaxInlineLen {
			return nil, 0, ErrTooBigInline
		}
		return nil, 0, nil
	}
	line := buf[:i]
	if i > 0 && line[i-1] == '\r' {
		line = line[:i-1]
	}
	p.emptyArgs(0)
	args, err := splitArgs(line, p.args)
	if err != nil {
		return nil, 0, err
	}
	p.args = args
	if len(args) == 0 {
		return nil, i + 1, nil
	}
	return args, i + 1, nil
}

// splitArgs appends to args the arguments of an inline command line, split
// as Redis's sdssplitargs does:
//
//   - arguments are separated by white space (space, \t, \r, \v, \f);
//   - "double quotes" may hold the escapes \xHH, \n, \r, \t, \b, \a, and a
//     backslash before any other byte stands for that byte (\\, \");
//   - 'single quotes' hold bytes as they are, except \' for a quote;
//   - a quote may start in the middle of an argument (a"b c" is "ab c"), but
//     a closing quote ends it and must be followed by white space or the end
//     of the line; otherwise, or if a quote is not closed, the line is an
//     error (ErrUnbalancedQuotes).
//
// One difference: a NUL byte is an ordinary byte here, where C string
// handling makes Redis stop at it.
func splitArgs(line []byte, args [][]byte) ([][]byte, error) {
	i := 0
	for {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if i == len(line) {
			return args, nil
		}
		start := i
		for i < len(line) && !endsBare(line[i]) && line[i] != '"' && line[i] != '\'' {
			i++
		}
		if i == len(line) || endsBare(line[i]) {
			args = append(args, line[start:i])
			continue
		}
		// The argument is the bare bytes so far followed by one quoted
		// section, which must be decoded into a copy.
		arg := append(make([]byte, 0, 16), line[start:i]...)
		var ok bool
		if line[i] == '"' {
			arg, i, ok = appendDoubleQuoted(arg, line, i+1)
		} else {
			arg, i, ok = appendSingleQuoted(arg, line, i+1)
		}
		if !ok {
			return nil, ErrUnbalancedQuotes
		}
		args = append(args, arg)
	}
}

// appendDoubleQuoted decodes the double-quoted text that starts at line[i],
// just after the opening quote, and returns the offset after the closing
// quote.
func appendDoubleQuoted(arg, line []byte, i int) ([]byte, int, bool) {
	for i < len(line) {
		c := line[i]
		switch {
		case c == '\\' && i+3 < len(line) && line[i+1] == 'x' && isHex(line[i+2]) && isHex(line[i+3]):
			arg = append(arg, unhex(line[i+2])<<4|unhex(line[i+3]))
			i += 4
		case c == '\\' && i+1 < len(line):
			arg = append(arg, unescape(line[i+1]))
			i += 2
		case c == '"':
			return arg, i + 1, closes(line, i)
		default:
			arg = append(arg, c)
			i++
		}
	}
	return nil, 0, false
}

// appendSingleQuoted is appendDoubleQuoted for single quotes.
func appendSingleQuoted(arg, line []byte, i int) ([]byte, int, bool) {
	for i < len(line) {
		c := line[i]
		switch {
		case c == '\\' && i+1 < len(line) && line[i+1] == '\'':
			arg = append(arg, '\'')
			i += 2
		case c == '\'':
			return arg, i + 1, closes(line, i)
		default:
			arg = append(arg, c)
			i++
		}
	}
	return nil, 0, false
}

// closes reports whether the quote at line[i] may close an argument: it must
// be followed by white space or the end of the line.
func closes(line []byte, i int) bool {
	return i+1 == len(line) || isSpace(line[i+1])
}

// isSpace reports whether c is white space to C's isspace.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// endsBare reports whether c ends an unquoted argument. Note \v and \f do
// not, though they separate arguments (as in Redis).
func endsBare(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

func unescape(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 'b':
		return '\b'
	case 'a':
		return '\a'
	}
	return c
}

// ParseInt parses a decimal integer as Redis's string2ll does: an optional
// '-', no '+', no leading zeros, no spaces, at most 20 bytes.
func ParseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	if len(b) == 1 && b[0] == '0' {
		return 0, true
	}
	neg := b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || b[0] < '1' || b[0] > '9' {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' || v > (1<<64-1)/10 {
			return 0, false
		}
		d := uint64(c - '0')
		if v*10 > 1<<64-1-d {
			return 0, false
		}
		v = v*10 + d
	}
	if neg {
		if v > 1<<63 {
			return 0, false
		}
		return -int64(v), true // for v == 1<<63 this wraps to MinInt64, as wanted
	}
	if v > 1<<63-1 {
		return 0, false
	}
	return int64(v), true
}
