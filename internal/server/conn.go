package server

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/shoaldb/shoal/internal/keys"
	"github.com/shoaldb/shoal/internal/kv"
	"github.com/shoaldb/shoal/internal/resp"
)

const (
	// minReadBuf is the read buffer a connection starts with and returns to
	// after a large command.
	minReadBuf = 16 << 10
	// shrinkAbove: buffers grown beyond this by a large command or reply are
	// released once they are no longer needed, so idle clients stay small.
	shrinkAbove = 1 << 20
	// flushAbove: replies are written before the read batch ends when the
	// output grows beyond this, bounding memory for long pipelines.
	flushAbove = 1 << 20
)

// errQueryBufLimit closes a client whose command outgrows
// client-query-buffer-limit.
var errQueryBufLimit = errors.New("server: client query buffer limit reached")

// conn is one client connection. Its goroutine (serve) owns everything
// except st, which other connections read for CLIENT LIST.
type conn struct {
	srv *Server
	// run holds consecutive pipelined writes not yet executed; their
	// arguments point into rbuf, which stays put until process ends.
	run     []runWrite
	nc      net.Conn
	id      uint64
	created time.Time
	addr    string // remote address
	laddr   string // local address
	lhost   string // local IP, announced for nodes bound to a wildcard address
	fd      int    // socket descriptor, -1 if unknown

	parser  resp.Parser
	rbuf    []byte // unparsed input; args of the command running alias it
	out     []byte // replies not yet written
	closing bool   // QUIT: close once the pending replies are written
	// held is the bytes of rbuf and out counted against maxmemory-clients
	// (Server.reserve).
	held int64
	// auth is who the client is, for access control.
	auth authUser

	// mu guards st. Only the connection's goroutine writes st, holding mu;
	// it may read st without mu. Other goroutines read st under mu.
	mu sync.Mutex
	st connState
}

// connState is the per-connection state that commands set and CLIENT LIST
// reports.
type connState struct {
	name    string // CLIENT SETNAME
	libName string // CLIENT SETINFO LIB-NAME
	libVer  string // CLIENT SETINFO LIB-VER
	proto   int    // 2 or 3 (HELLO)
	// readonly (READONLY): reads may be served by a follower replica and
	// are not redirected to the leader when this node holds a replica.
	readonly bool
	// clusterAware: the client has asked for the slot map (CLUSTER SLOTS,
	// SHARDS or NODES) or sent READONLY/READWRITE, so it understands MOVED
	// and gets one instead of being forwarded (as every client does under
	// Config.ClusterClientsOnly).
	clusterAware bool
	noEvict      bool
	noTouch      bool
	lastCmd      string // full name of the last command, e.g. "client|list"
	user         string // the user the connection runs as
	lastActive   time.Time
	qbuf         int // unparsed bytes after the last read batch
	qbufFree     int
	rbufCap      int
	obufCap      int
}

func newConn(s *Server, nc net.Conn) *conn {
	now := time.Now()
	c := &conn{
		srv:     s,
		nc:      nc,
		id:      s.nextID.Add(1),
		created: now,
		addr:    nc.RemoteAddr().String(),
		laddr:   nc.LocalAddr().String(),
		fd:      -1,
	}
	c.lhost, _, _ = net.SplitHostPort(c.laddr)
	if sc, ok := nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			raw.Control(func(fd uintptr) { c.fd = int(fd) })
		}
	}
	c.parser.Limits = s.cfg.Limits
	c.st.proto = 2
	c.st.lastActive = now
	return c
}

// serve runs the connection until the client leaves, a protocol error, QUIT,
// or ctx is cancelled (Server.Close also closes nc, ending any blocked I/O).
func (c *conn) serve(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer c.nc.Close()
	defer func() { c.srv.reserve(-c.held) }()
	if !c.admit(ctx) {
		c.flush()
		return
	}
	c.rbuf = make([]byte, 0, minReadBuf)
	for {
		c.parser.Limits.MaxBulkLen = int(c.srv.lim.maxBulkLen.Load())
		rerr := c.read()
		now := time.Now()
		n, perr := c.process(ctx)
		c.srv.stats.record(now, n)
		c.noteBatch(now)
		if err := c.flush(); err != nil {
			c.logEnd(err)
			return
		}
		switch {
		case perr != nil:
			c.logEnd(perr)
			return
		case c.closing:
			return
		case rerr != nil:
			c.logEnd(rerr)
			return
		}
		c.shrink()
	}
}

// read appends what the client sent to rbuf, growing it when a single
// command does not fit.
func (c *conn) read() error {
	if len(c.rbuf) == cap(c.rbuf) {
		limit := int(c.srv.lim.queryBuf.Load())
		if cap(c.rbuf) >= limit {
			return errQueryBufLimit
		}
		size := min(2*cap(c.rbuf), limit)
		if !c.fit(size, cap(c.out)) {
			return errClientMem
		}
		grown := make([]byte, len(c.rbuf), size)
		copy(grown, c.rbuf)
		c.rbuf = grown
	}
	if d := time.Duration(c.srv.idleTimeout.Load()); d > 0 {
		c.nc.SetReadDeadline(time.Now().Add(d))
	} else {
		c.nc.SetReadDeadline(time.Time{})
	}
	n, err := c.nc.Read(c.rbuf[len(c.rbuf):cap(c.rbuf)])
	c.rbuf = c.rbuf[:len(c.rbuf)+n]
	c.srv.stats.netIn.Add(int64(n))
	return err
}

// process parses and runs every complete command in rbuf, in order,
// appending the replies to out. It returns how many commands ran, and the
// protocol error that must end the connection, if any.
func (c *conn) process(ctx context.Context) (n int, err error) {
	off := 0
	for off < len(c.rbuf) && !c.closing {
		args, m, perr := c.parser.Parse(c.rbuf[off:])
		if perr != nil {
			c.out = resp.AppendError(c.out, perr.Error())
			err = perr
			break
		}
		if m == 0 {
			break // incomplete: wait for more input
		}
		off += m
		if args == nil {
			continue // empty inline line
		}
		n++
		if shard, ok := c.batchShard(args); ok {
			// The parser reuses args; the bytes it points to stay put.
			c.run = append(c.run, runWrite{args: slices.Clone(args), shard: shard})
			continue
		}
		c.flushRun(ctx)
		v := c.exec(ctx, args)
		c.out = resp.AppendValue(c.out, v, c.st.proto)
		if !c.fit(cap(c.rbuf), cap(c.out)) {
			c.out = c.out[:0]
			err = errClientMem
			break
		}
		if len(c.out) >= flushAbove {
			if err = c.flush(); err != nil {
				break
			}
		}
	}
	c.flushRun(ctx)
	// Keep the incomplete tail at the front of the buffer.
	c.rbuf = c.rbuf[:copy(c.rbuf, c.rbuf[off:])]
	return n, err
}

// batchShard reports whether args is a write that may join a run of
// pipelined writes, and the shard it runs on: a keyed kv write whose keys
// are on one shard and that this connection would not be redirected for.
// The run goes to the shard as one SHOAL.BATCH, one raft entry, so the
// writes of a pipeline share replication rounds and still apply in order.
func (c *conn) batchShard(args [][]byte) (uint64, bool) {
	cmd := c.srv.lookup(args[0])
	if cmd == nil || cmd.spec == nil || !kv.Batchable(cmd.spec) || !cmd.arityOK(len(args)) {
		return 0, false
	}
	if !c.unrestricted() {
		return 0, false // exec checks its permissions
	}
	if c.srv.overMemory(cmd.spec) || c.srv.diskFull(cmd.spec) {
		return 0, false // runKV refuses it
	}
	if _, refused := kv.RefuseEarly(args, c.srv.MaxValueLen()); refused {
		return 0, false
	}
	ks := cmd.spec.Keys(args)
	if len(ks) == 0 {
		return 0, false
	}
	topo := c.srv.cluster.Topology()
	slot := keys.Slot(ks[0])
	sh, ok := shardOf(topo.Shards, slot)
	if !ok {
		return 0, false
	}
	for _, k := range ks[1:] {
		if s := keys.Slot(k); s < sh.FirstSlot || s > sh.LastSlot {
			return 0, false
		}
	}
	if c.redirected() {
		if _, moved := redirect(topo, sh, true, c.st.readonly, c.lhost); moved {
			return 0, false
		}
	}
	return sh.ID, true
}

// runWrite is a pipelined write waiting in a run.
type runWrite struct {
	args  [][]byte
	shard uint64
}

// flushRun executes the pending run of pipelined writes and appends their
// replies in order. The writes are grouped by shard: each group goes to its
// shard as one SHOAL.BATCH, one raft entry, so a pipeline's writes share
// replication rounds and apply in order within each shard. Different shards
// hold different keys, so their groups run concurrently, as writes to
// different nodes of a Redis Cluster do.
func (c *conn) flushRun(ctx context.Context) {
	if len(c.run) == 0 {
		return
	}
	var order []uint64
	groups := map[uint64][]int{} // shard -> indexes into c.run, in order
	for i, w := range c.run {
		if _, ok := groups[w.shard]; !ok {
			order = append(order, w.shard)
		}
		groups[w.shard] = append(groups[w.shard], i)
		c.setLastCmd(c.srv.lookup(w.args[0]).name)
	}
	replies := make([]resp.Value, len(c.run))
	if len(order) == 1 { // the common case, a single write: no goroutine
		c.runGroup(ctx, order[0], groups[order[0]], replies)
	} else {
		var wg sync.WaitGroup
		for _, shard := range order {
			wg.Go(func() { c.runGroup(ctx, shard, groups[shard], replies) })
		}
		wg.Wait()
	}
	for _, r := range replies {
		c.out = resp.AppendValue(c.out, r, c.st.proto)
	}
	c.run = c.run[:0]
	// Counted if the limit allows: these replies are small (OK, integers),
	// and the writes ran already, so they never end the client.
	c.fit(cap(c.rbuf), cap(c.out))
}

// runGroup executes the writes c.run[idx] on shard (routed already by
// batchShard) and stores their replies: one command as itself, several as
// one SHOAL.BATCH. It only reads c, so groups may run concurrently.
func (c *conn) runGroup(ctx context.Context, shard uint64, idx []int, replies []resp.Value) {
	if len(idx) == 1 {
		replies[idx[0]] = c.srv.execute(ctx, Request{Shard: shard, Args: c.run[idx[0]].args, Write: true})
		return
	}
	cmds := make([][][]byte, len(idx))
	for k, i := range idx {
		cmds[k] = c.run[i].args
	}
	v := c.srv.execute(ctx, Request{Shard: shard, Args: kv.EncodeBatch(cmds), Write: true})
	for k, i := range idx {
		replies[i] = v // an error (e.g. outcome unknown) is every command's reply
		if v.Kind == resp.KindArray && len(v.Elems) == len(idx) {
			replies[i] = v.Elems[k]
		}
	}
}

// exec runs one command and returns its reply.
func (c *conn) exec(ctx context.Context, args [][]byte) resp.Value {
	cmd := c.srv.lookup(args[0])
	if cmd == nil {
		return unknownCommand(args)
	}
	if !cmd.arityOK(len(args)) {
		return wrongArity(cmd.name)
	}
	checked := cmd
	if cmd.subs != nil {
		// An unknown subcommand or a wrong arity is answered by the
		// container before any permission check, as in Redis.
		if len(args) >= 2 {
			checked = lookupIn(cmd.subs, args[1])
			if checked != nil && !checked.arityOK(len(args)) {
				checked = nil
			}
		}
	}
	if checked != nil {
		c.setLastCmd(checked.name) // as CLIENT INFO in the ACL log shows it
		if v, ok := c.permit(ctx, checked, args); !ok {
			return v
		}
	}
	if cmd.subs == nil {
		c.setLastCmd(cmd.name)
	}
	return cmd.run(ctx, c, args)
}

// flush writes the pending replies. It gives up, and the connection ends,
// when the client reads none of them for the write timeout, or leaves more
// than the output buffer's soft limit unread for its soft seconds.
func (c *conn) flush() error {
	out := c.out
	defer func() { c.out = c.out[:0] }()
	var overSoft time.Time // when the unread replies passed the soft limit
	for len(out) > 0 {
		now := time.Now()
		var deadline time.Time
		if d := c.srv.cfg.WriteTimeout; d > 0 {
			deadline = now.Add(d)
		}
		soft, secs := c.srv.lim.outSoft.Load(), time.Duration(c.srv.lim.outSoftSecs.Load())*time.Second
		if soft > 0 && int64(len(out)) > soft {
			if overSoft.IsZero() {
				overSoft = now
			}
			if deadline.IsZero() || overSoft.Add(secs).Before(deadline) {
				deadline = overSoft.Add(secs)
			}
		}
		c.nc.SetWriteDeadline(deadline)
		n, err := c.nc.Write(out)
		c.srv.stats.netOut.Add(int64(n))
		out = out[n:]
		if err == nil {
			continue
		}
		var ne net.Error
		progress := n > 0 && (overSoft.IsZero() || time.Since(overSoft) < secs)
		if !errors.As(err, &ne) || !ne.Timeout() {
			return err
		}
		if !progress {
			c.srv.stats.outputLimit.Add(1)
			return err
		}
	}
	return nil
}

// fit counts c's buffers, at rcap and ocap bytes of capacity, against
// maxmemory-clients: the read buffer beyond minReadBuf and the output.
// It reports false, counting nothing, if growing to that would pass the
// limit.
func (c *conn) fit(rcap, ocap int) bool {
	want := int64(max(rcap-minReadBuf, 0) + ocap)
	if want == c.held {
		return true
	}
	if !c.srv.reserve(want - c.held) {
		return false
	}
	c.held = want
	return true
}

// shrink releases buffers grown for a large command or reply.
func (c *conn) shrink() {
	if cap(c.rbuf) > shrinkAbove && len(c.rbuf) < minReadBuf {
		small := make([]byte, len(c.rbuf), minReadBuf)
		copy(small, c.rbuf)
		c.rbuf = small
	}
	if cap(c.out) > shrinkAbove {
		c.out = nil
	}
	c.fit(cap(c.rbuf), cap(c.out))
}

func (c *conn) logEnd(err error) {
	switch {
	case errors.Is(err, errClientMem):
		c.srv.stats.evicted.Add(1)
	case errors.Is(err, errQueryBufLimit):
		c.srv.stats.queryLimit.Add(1)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return // idle timeout: Redis closes silently too
	}
	c.srv.log.Debug("server: closing client", "id", c.id, "addr", c.addr, "err", err)
}

// update applies fn to the connection state under mu.
func (c *conn) update(fn func(st *connState)) {
	c.mu.Lock()
	fn(&c.st)
	c.mu.Unlock()
}

func (c *conn) setLastCmd(name string) {
	c.mu.Lock()
	c.st.lastCmd = name
	c.mu.Unlock()
}

func (c *conn) noteBatch(now time.Time) {
	c.update(func(st *connState) {
		st.lastActive = now
		st.qbuf = len(c.rbuf)
		st.qbufFree = cap(c.rbuf) - len(c.rbuf)
		st.rbufCap = cap(c.rbuf)
		st.obufCap = cap(c.out)
	})
}

// snapshot returns a copy of the connection's state, safe to read from any
// goroutine.
func (c *conn) snapshot() connState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st
}
