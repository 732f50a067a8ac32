package kv

import (
	"strconv"

	"github.com/shoaldb/shoal/internal/keys"
	"github.com/shoaldb/shoal/internal/resp"
)

// ReplyTooLargePrefix begins the error reply of a read whose reply would
// pass Env.MaxReplyLen.
const ReplyTooLargePrefix = "ERR reply too large"

// ReplyElemOverhead approximates the memory of one element of a reply
// besides its bytes: the resp.Value holding it and the allocator's
// rounding.
const ReplyElemOverhead = 64

// replySize counts the memory of a reply as a command builds it, so that
// the command stops before passing Env.MaxReplyLen instead of building a
// reply of any size.
type replySize struct {
	n, limit int64
}

func (d *db) replySize() replySize { return replySize{limit: d.env.MaxReplyLen} }

// add counts an element of n bytes. It fails once the reply passes the
// limit; the command must then stop and return the error.
func (r *replySize) add(n int) error {
	r.n += int64(n) + ReplyElemOverhead
	if r.limit > 0 && r.n > r.limit {
		return ReplyTooLarge(r.limit)
	}
	return nil
}

// valueSizer is implemented by readers that tell the sizes of values
// without reading them (the engine's).
type valueSizer interface {
	ValueSizes(keys [][]byte, fn func(i, size int)) error
}

// sizeFirstAbove is how many keys a read asks for before it sums their
// sizes first: a command that reads many keys is refused by the sum
// instead of after copying values up to the limit, which made a 7 KB MGET
// of one 1 MiB key 512 times cost 64 MiB of copies.
const sizeFirstAbove = 8

// checkSizes refuses a read of keys (user keys) whose values would take
// the reply past the limit, judging by their stored sizes when the reader
// can tell them cheaply. A stored record is a little longer than its
// value, so this errs towards refusing.
func (d *db) checkSizes(userKeys [][]byte) error {
	vs, ok := d.r.(valueSizer)
	if !ok || d.env.MaxReplyLen <= 0 || len(userKeys) <= sizeFirstAbove {
		return nil
	}
	dataKeys := make([][]byte, len(userKeys))
	for i, k := range userKeys {
		dataKeys[i] = keys.Data(k)
	}
	size := d.replySize()
	var serr error
	err := vs.ValueSizes(dataKeys, func(_, n int) {
		if serr == nil {
			serr = size.add(max(n, 0))
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// ReplyTooLarge is the error of a command whose reply would pass limit
// bytes.
func ReplyTooLarge(limit int64) error {
	return cmdError(ReplyTooLargePrefix + ": it would hold more than " + strconv.FormatInt(limit, 10) +
		" bytes, the most one command may answer (client-output-buffer-limit); ask for less at a time")
}

// RefuseEarly returns the error reply of a write that fails whatever its
// keys hold, so that the server refuses it before proposing it: a
// SETRANGE whose string would pass maxValueLen (0: the default). Redis
// checks the key's type first; for such a SETRANGE on a key of another
// type this error comes instead of WRONGTYPE.
func RefuseEarly(args [][]byte, maxValueLen int64) (resp.Value, bool) {
	if len(args) != 4 || !equalFold(args[0], "setrange") || len(args[3]) == 0 {
		return resp.Value{}, false
	}
	off, ok := resp.ParseInt(args[2])
	if !ok || off < 0 {
		return resp.Value{}, false // the command's own checks answer
	}
	if TooLong(maxValueLen, off, int64(len(args[3]))) {
		return resp.Err(string(errTooBig)), true
	}
	return resp.Value{}, false
}
