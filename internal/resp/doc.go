// Package resp implements the Redis serialization protocol (RESP2 and RESP3):
// a pure parser of client commands (multibulk and inline) and append-style
// writers of replies. It does no I/O.
//
// # Commands
//
// A connection keeps a Parser and a buffer of input not yet parsed. After
// each read it parses commands until one is incomplete:
//
//	args, n, err := p.Parse(buf)
//	switch {
//	case err != nil:   // a *ProtocolError: reply "-" + err.Error(), close
//	case n == 0:       // incomplete: read more, append, call again
//	case args == nil:  // an empty command: buf = buf[n:]
//	default:           // run args, then buf = buf[n:]
//	}
//
// The arguments alias buf and, with a Parser, a slice it reuses, so they are
// valid until the next call. The Parser remembers how far it got into an
// incomplete command, so a command that trickles in over many reads costs
// time in proportion to its size. ParseCommand is the same parse without the
// state. Limits bounds what a client may send, with Redis's defaults and
// error texts: lengths are checked before anything is allocated for them.
//
// The parser follows Redis's networking.c, including where it is lenient
// (the bytes after "\r" in a length line and after an argument are skipped,
// not checked) and how inline commands split (sdssplitargs). Where Redis's
// outcome depends on how input was split into reads, this package picks the
// outcome that does not: a line too long is an error whether or not its end
// has arrived.
//
// # Replies
//
// Command logic builds a Value; the connection writes it with AppendValue for
// the client's protocol version, which downgrades RESP3 types for RESP2
// clients as Redis does. The Append functions write single replies and
// aggregate headers without building a Value. Doubles print as Redis 7.2
// prints them.
//
// ParseValue reads any RESP2 or RESP3 reply into a Value that does not alias
// its input, for carrying replies between nodes and for tests.
package resp
