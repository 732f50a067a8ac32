// Package resp implements the Redis serialization protocol (RESP2 and RESP3):
// a pure parser of client commands (multibulk and inline) and append-style
// writers of replies. It does no I/O.
package resp
