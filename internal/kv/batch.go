package kv

import (
	"strconv"

	"github.com/shoaldb/shoal/internal/resp"
)

// SHOAL.BATCH n1 a1... n2 b1... applies several write commands in order as
// one command, and so as one raft entry: the server sends a connection's
// run of pipelined writes to one shard this way, so they share a round of
// replication and are applied, or dropped and retried, together and in
// order. ni is the number of arguments of the i-th command. The reply is
// an array of the commands' replies.

// EncodeBatch returns the arguments of a SHOAL.BATCH of cmds.
func EncodeBatch(cmds [][][]byte) [][]byte {
	n := 1
	for _, c := range cmds {
		n += 1 + len(c)
	}
	out := make([][]byte, 0, n)
	out = append(out, []byte("SHOAL.BATCH"))
	for _, c := range cmds {
		out = append(out, strconv.AppendInt(nil, int64(len(c)), 10))
		out = append(out, c...)
	}
	return out
}

// Batchable reports whether the command called name may be part of a
// SHOAL.BATCH: a keyed write that runs on one shard.
func Batchable(s *Spec) bool {
	return s != nil && s.Flags&Write != 0 && s.Flags&(AllShards|Internal) == 0 && s.FirstKey > 0
}

// DenyOOMCommand reports whether a command may grow memory (DenyOOM), so
// that a node over maxmemory refuses it; a SHOAL.BATCH does if any of its
// commands does.
func DenyOOMCommand(args [][]byte) bool {
	if len(args) == 0 {
		return false
	}
	spec := Lookup(args[0])
	switch {
	case spec == nil:
		return false
	case spec.Flags&DenyOOM != 0:
		return true
	case spec.Name != "shoal.batch":
		return false
	}
	cmds, _ := decodeBatch(args[1:])
	for _, c := range cmds {
		if s := Lookup(c[0]); s != nil && s.Flags&DenyOOM != 0 {
			return true
		}
	}
	return false
}

func decodeBatch(args [][]byte) ([][][]byte, bool) {
	var cmds [][][]byte
	for len(args) > 0 {
		n, ok := resp.ParseInt(args[0])
		if !ok || n < 1 || int64(len(args)-1) < n {
			return nil, false
		}
		cmds = append(cmds, args[1:1+n])
		args = args[1+n:]
	}
	return cmds, len(cmds) > 0
}

func cmdBatch(d db, args [][]byte) (resp.Value, error) {
	cmds, ok := decodeBatch(args[1:])
	if !ok {
		return resp.Err("ERR malformed SHOAL.BATCH"), nil
	}
	out := make([]resp.Value, 0, len(cmds))
	for i, c := range cmds {
		if !Batchable(Lookup(c[0])) {
			out = append(out, resp.Err("ERR '"+sanitize(string(c[0]))+"' cannot be batched"))
			continue
		}
		sub := d
		sub.env.Rand = d.env.Rand + uint64(i) // each command its own seed
		v, err := execute(sub, c)
		if err != nil {
			return resp.Value{}, err
		}
		out = append(out, v)
	}
	return resp.Array(out...), nil
}
