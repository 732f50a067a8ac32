package server

import (
	"context"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/shoaldb/shoal/internal/keys"
	"github.com/shoaldb/shoal/internal/kv"
	"github.com/shoaldb/shoal/internal/resp"
)

// fanoutHandlers serve the per-shard kv commands (kv.AllShards) for the
// whole cluster, from any node.
var fanoutHandlers = map[string]handler{
	"keys":      cmdKeys,
	"dbsize":    cmdDBSize,
	"randomkey": cmdRandomKey,
	"flushall":  cmdFlush,
	"flushdb":   cmdFlush,
	"scan":      cmdScan,
}

func unsupportedFanout(ctx context.Context, c *conn, args [][]byte) resp.Value {
	return resp.Err("ERR '" + strings.ToLower(string(args[0])) + "' is not supported across shards")
}

// fanout runs args on every shard, at most MaxFanout at a time. It returns
// the replies in shard order, or ok=false and the reply to the first
// failure (an error of the Cluster, or an error reply of a shard).
func (s *Server) fanout(ctx context.Context, shards []Shard, args [][]byte, write, followerRead bool) (vals []resp.Value, fail resp.Value, ok bool) {
	if !coversAllSlots(shards) {
		// A partial answer (a DBSIZE that misses a shard) would look
		// right and be wrong.
		return nil, errSlotDown, false
	}
	vals = make([]resp.Value, len(shards))
	errs := make([]error, len(shards))
	run := func(i int) {
		vals[i], errs[i] = s.cluster.Execute(ctx, Request{
			Shard: shards[i].ID, Args: args, Write: write, FollowerRead: followerRead,
			MaxReplyLen: s.maxReply(),
		})
	}
	if len(shards) == 1 {
		run(0)
	} else {
		sem := make(chan struct{}, s.cfg.MaxFanout)
		var wg sync.WaitGroup
		for i := range shards {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				run(i)
			})
		}
		wg.Wait()
	}
	for i := range shards {
		if errs[i] != nil {
			return nil, s.errorReply(errs[i]), false
		}
		if vals[i].IsError() {
			return nil, vals[i], false
		}
	}
	return vals, resp.Value{}, true
}

// coversAllSlots reports whether shards, ordered by FirstSlot, cover every
// slot exactly once.
func coversAllSlots(shards []Shard) bool {
	next := 0
	for _, sh := range shards {
		if sh.FirstSlot != next || sh.LastSlot < sh.FirstSlot {
			return false
		}
		next = sh.LastSlot + 1
	}
	return next == keys.SlotCount
}

// cmdKeys is KEYS pattern: the keys of every shard, concatenated.
func cmdKeys(ctx context.Context, c *conn, args [][]byte) resp.Value {
	vals, fail, ok := c.srv.fanout(ctx, c.srv.cluster.Topology().Shards, args, false, c.st.readonly)
	if !ok {
		return fail
	}
	return keysReply(vals, c.srv.maxReply())
}

// keysReply joins the shards' KEYS replies, or refuses a reply larger than
// limit bytes (counted as kv counts them).
func keysReply(vals []resp.Value, limit int64) resp.Value {
	n, size := 0, int64(0)
	for _, v := range vals {
		n += len(v.Elems)
		for _, e := range v.Elems {
			size += int64(len(e.Str)) + kv.ReplyElemOverhead
		}
	}
	if limit > 0 && size > limit {
		return resp.Err(kv.ReplyTooLarge(limit).Error())
	}
	all := make([]resp.Value, 0, n)
	for _, v := range vals {
		all = append(all, v.Elems...)
	}
	return resp.Array(all...)
}

// cmdDBSize is DBSIZE: the sum over all shards.
func cmdDBSize(ctx context.Context, c *conn, args [][]byte) resp.Value {
	n, fail, ok := c.srv.dbsize(ctx, c.st.readonly)
	if !ok {
		return fail
	}
	return resp.Int(n)
}

func (s *Server) dbsize(ctx context.Context, followerRead bool) (int64, resp.Value, bool) {
	vals, fail, ok := s.fanout(ctx, s.cluster.Topology().Shards, [][]byte{[]byte("DBSIZE")}, false, followerRead)
	if !ok {
		return 0, fail, false
	}
	var n int64
	for _, v := range vals {
		n += v.Int
	}
	return n, resp.Value{}, true
}

// cmdFlush is FLUSHALL and FLUSHDB [ASYNC|SYNC]: every shard, then OK.
func cmdFlush(ctx context.Context, c *conn, args [][]byte) resp.Value {
	_, fail, ok := c.srv.fanout(ctx, c.srv.cluster.Topology().Shards, args, true, false)
	if !ok {
		return fail
	}
	return resp.OK
}

// cmdRandomKey is RANDOMKEY: shards in random order until one has a key.
func cmdRandomKey(ctx context.Context, c *conn, args [][]byte) resp.Value {
	shards := slices.Clone(c.srv.cluster.Topology().Shards)
	rand.Shuffle(len(shards), func(i, j int) { shards[i], shards[j] = shards[j], shards[i] })
	for _, sh := range shards {
		v := c.srv.execute(ctx, Request{Shard: sh.ID, Args: args, FollowerRead: c.st.readonly})
		if v.IsError() || v.Kind == resp.KindBulk {
			return v
		}
	}
	return resp.Null
}

// cmdScan is SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]. The
// cursor is a slot: the scan of the shard owning it starts there and
// answers the next slot to resume from; 0 ends the iteration as in Redis.
// A shard scans whole slots, so every key present for the whole iteration
// is returned exactly once.
func cmdScan(ctx context.Context, c *conn, args [][]byte) resp.Value {
	slot, errv, ok := scanArgs(args)
	if !ok {
		return errv
	}
	sh, ok := shardOf(c.srv.cluster.Topology().Shards, slot)
	if !ok {
		return errSlotDown
	}
	req := slices.Clone(args)
	req[1] = strconv.AppendInt(nil, int64(slot), 10)
	v := c.srv.execute(ctx, Request{Shard: sh.ID, Args: req, FollowerRead: c.st.readonly})
	if v.IsError() {
		return v
	}
	return scanReply(v)
}

// scanArgs validates SCAN's arguments before any shard is asked and returns
// the cursor's slot.
func scanArgs(args [][]byte) (slot int, errv resp.Value, ok bool) {
	cursor, ok := parseCursor(args[1])
	if !ok || cursor >= keys.SlotCount {
		return 0, resp.Err("ERR invalid cursor"), false
	}
	for i := 2; i < len(args); i += 2 {
		if i+1 >= len(args) {
			return 0, errSyntax, false
		}
		switch strings.ToLower(string(args[i])) {
		case "match", "type":
		case "count":
			n, err := strconv.ParseInt(string(args[i+1]), 10, 64)
			if err != nil {
				return 0, errNotInteger, false
			}
			if n < 1 {
				return 0, errSyntax, false
			}
		default:
			return 0, errSyntax, false
		}
	}
	return int(cursor), resp.Value{}, true
}

// parseCursor parses a SCAN cursor as Redis does (strtoull): leading
// blanks and a '+' are allowed, a negative number is not.
func parseCursor(b []byte) (uint64, bool) {
	s := strings.TrimLeft(string(b), " \t\n\v\f\r")
	s = strings.TrimPrefix(s, "+")
	if s == "" || s[0] < '0' || s[0] > '9' {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// scanReply turns a shard's [next-slot, keys] into the client's
// [cursor, keys], where the cursor past the last slot is 0.
func scanReply(v resp.Value) resp.Value {
	if v.Kind != resp.KindArray || len(v.Elems) != 2 {
		return resp.Err("ERR unexpected SCAN reply from shard")
	}
	next, err := strconv.Atoi(string(v.Elems[0].Str))
	if err != nil {
		return resp.Err("ERR unexpected SCAN cursor from shard")
	}
	if next >= keys.SlotCount {
		next = 0
	}
	return resp.Array(resp.BulkString(strconv.Itoa(next)), v.Elems[1])
}
