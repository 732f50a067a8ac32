package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"time"

	"github.com/shoaldb/shoal/internal/kv"
	"github.com/shoaldb/shoal/internal/meta"
	"github.com/shoaldb/shoal/internal/placement"
	"github.com/shoaldb/shoal/internal/resp"
	"github.com/shoaldb/shoal/internal/server"
	"github.com/shoaldb/shoal/internal/shoalpb"
	"github.com/shoaldb/shoal/internal/store"
	"github.com/shoaldb/shoal/internal/transport"
	"google.golang.org/protobuf/proto"
)

// stateMachine applies committed commands: meta commands to the meta
// shard, Redis commands to data shards. It tells the expiry sweep which
// shards gained expiry index entries.
type stateMachine struct {
	sweeps *sweepState
}

func (m stateMachine) Apply(w kv.Writer, desc *shoalpb.ShardDescriptor, cmd *shoalpb.Command) (resp.Value, error) {
	if desc.GetMeta() {
		return meta.Apply(w, cmd)
	}
	var eff kv.Effects
	v, err := kv.Apply(w, kv.Env{
		NowMs: cmd.GetNowMs(), Rand: cmd.GetRand(), MaxValueLen: cmd.GetMaxValueLen(),
		FirstSlot: int(desc.GetFirstSlot()), LastSlot: int(desc.GetLastSlot()), OwnSlots: true,
		Effects: &eff,
	}, cmd.GetArgs())
	if eff.ExpiryAdded {
		m.sweeps.noteApplying(desc.GetId())
	}
	return v, err
}

// defaultTimeout bounds a command whose context has no deadline: long
// enough to ride out a leader election.
const defaultTimeout = 8 * time.Second

// Execute runs a command on a shard: locally when this node leads it (or
// holds a replica and the client accepts follower reads), otherwise at the
// leader. It retries while the shard has no reachable leader, as long as
// retrying cannot apply a write twice.
func (n *Node) Execute(ctx context.Context, req server.Request) (resp.Value, error) {
	if v, err, ok := n.readNow(req); ok {
		return v, edgeError(err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultTimeout)
		defer cancel()
	}
	var hint uint64
	// A read may be served by a local follower replica (after a read
	// index from the leader) unless leases are off; once that fails, the
	// retries go to the leader.
	followerOK := !n.cfg.NoReadLeases
	for attempt := 0; ; attempt++ {
		v, err, retry := n.tryExecute(ctx, req, hint, followerOK)
		if !retry {
			return v, edgeError(err)
		}
		followerOK = false
		var nl *store.NotLeaderError
		hint = 0
		if errors.As(err, &nl) {
			hint = nl.Leader
		}
		backoff := time.Duration(min(attempt+1, 10)) * 20 * time.Millisecond
		select {
		case <-ctx.Done():
			if req.Write && !errors.As(err, &nl) && !errors.Is(err, errNoLeader) {
				return resp.Value{}, server.ErrTimeout
			}
			return resp.Value{}, server.ErrNoLeader
		case <-time.After(backoff):
		}
	}
}

var errNoLeader = errors.New("node: shard has no known leader")

// abandonGrace is how long a forwarded command may stay unanswered after
// its shard's leader moved to another node before it is abandoned.
const abandonGrace = 500 * time.Millisecond

// edgeError translates store and context errors into the kinds the server
// answers clients with.
func edgeError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrOutcomeUnknown), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, context.Canceled):
		return server.ErrTimeout
	case errors.Is(err, store.ErrStopped):
		return server.ErrUnavailable
	case errors.Is(err, store.ErrTooLarge):
		return server.ErrTooLarge
	}
	return err
}

// tryExecute makes one attempt; retry says whether another attempt is safe
// and useful.
func (n *Node) tryExecute(ctx context.Context, req server.Request, hint uint64, followerOK bool) (v resp.Value, err error, retry bool) {
	st := n.st.Load()
	ri, local := st.Replica(req.Shard)
	if local && ri.Initialized && (ri.IsLeader || !req.Write && (req.FollowerRead || followerOK && ri.Leader != 0)) {
		v, err := n.executeLocal(ctx, req)
		return v, err, retryable(err)
	}
	leader := hint
	if leader == 0 && local {
		leader = ri.Leader
	}
	if leader == 0 || leader == n.ID() {
		if sh := n.view.Load().Shards[req.Shard]; sh != nil && sh.Leader != n.ID() {
			leader = sh.Leader
		}
	}
	if leader == 0 || leader == n.ID() {
		return resp.Value{}, errNoLeader, true
	}
	n.forwarded.Add(1)
	body, _ := proto.Marshal(&shoalpb.ForwardRequest{
		ShardId: req.Shard, Args: req.Args, Write: req.Write, FollowerRead: req.FollowerRead,
		MaxReplyLen: req.MaxReplyLen,
	})
	// Give up on the call if the shard's leader moved elsewhere and the
	// node we asked still has not answered a grace period later: a healthy
	// old leader (a planned transfer) answers within it, a paused or cut
	// off one does not.
	cctx, cancel := context.WithCancel(ctx)
	grace := time.AfterFunc(time.Hour, cancel) // armed only if the leader moves
	grace.Stop()
	stop := context.AfterFunc(n.leaders.ctx(req.Shard), func() { grace.Reset(abandonGrace) })
	out, err := n.net.Call(cctx, leader, methodForward, body)
	stop()
	grace.Stop()
	moved := ctx.Err() == nil && cctx.Err() != nil
	cancel()
	if moved && err != nil {
		// The leader we asked was replaced while it did not answer. A
		// read is retried at the new leader; a write may have executed.
		if !req.Write {
			return resp.Value{}, errNoLeader, true
		}
		return resp.Value{}, server.ErrTimeout, false
	}
	if err != nil {
		var ce *transport.CallError
		if errors.As(err, &ce) {
			switch ce.Code {
			case codeNotLeader:
				l, _ := strconv.ParseUint(ce.Msg, 10, 64)
				return resp.Value{}, &store.NotLeaderError{Shard: req.Shard, Leader: l}, true
			case codeNoReplica:
				return resp.Value{}, errNoLeader, true
			case codeIndeterminate:
				return resp.Value{}, server.ErrTimeout, false
			case codeTooLarge:
				return resp.Value{}, server.ErrTooLarge, false
			case codeOOM:
				return resp.Value{}, server.ErrOOM, false
			case codeDiskFull:
				return resp.Value{}, server.ErrDiskFull, false
			}
			return resp.Value{}, fmt.Errorf("node: forwarded command failed on node %d: %s", leader, ce.Msg), false
		}
		if errors.Is(err, transport.ErrTooLarge) {
			return resp.Value{}, server.ErrTooLarge, false // it never will fit
		}
		// The leader could not be reached. A read is safe to retry; a
		// write may have been executed if the request got through.
		if !req.Write || errors.Is(err, transport.ErrUnknownPeer) || notSent(err) {
			return resp.Value{}, errNoLeader, true
		}
		n.log.Debug("forwarded write failed, outcome unknown", "shard", req.Shard, "leader", leader, "err", err)
		return resp.Value{}, server.ErrTimeout, false
	}
	v, _, perr := resp.ParseValue(out)
	if perr != nil {
		return resp.Value{}, fmt.Errorf("node: bad forwarded reply: %w", perr), false
	}
	return v, nil, false
}

// notSent reports whether a failed call certainly never reached the peer.
func notSent(err error) bool { return errors.Is(err, transport.ErrNotSent) }

// retryable reports whether a local attempt that failed with err may be
// retried (possibly elsewhere) without risking a second application.
func retryable(err error) bool {
	var nl *store.NotLeaderError
	switch {
	case err == nil:
		return false
	case errors.As(err, &nl), errors.Is(err, store.ErrUnknownShard), errors.Is(err, store.ErrBusy),
		errors.Is(err, store.ErrDropped):
		return true // nothing was applied
	}
	return false
}

// readNow serves a read that needs no waiting at once: this node holds the
// shard's lease, or the client accepts a follower read of a local replica.
// It spares the common read the deadline and retry machinery of Execute.
func (n *Node) readNow(req server.Request) (v resp.Value, err error, ok bool) {
	if req.Write {
		return resp.Value{}, nil, false
	}
	st := n.st.Load()
	if st == nil {
		return resp.Value{}, nil, false
	}
	ri, local := st.Replica(req.Shard)
	if !local || !ri.Initialized || !req.FollowerRead && !st.LeaseRead(ri) {
		return resp.Value{}, nil, false
	}
	v, err = n.readLocal(ri, req.Args, 0, req.MaxReplyLen)
	return v, err, !ri.Removed()
}

// executeLocal runs a command against the local replica of its shard.
func (n *Node) executeLocal(ctx context.Context, req server.Request) (resp.Value, error) {
	st := n.st.Load()
	if req.Write {
		if err := n.refuseGrowth(req.Args); err != nil {
			return resp.Value{}, err
		}
		start := time.Now()
		v, err := st.Propose(ctx, req.Shard, req.Args)
		if err == nil {
			n.writeSeconds.Observe(time.Since(start).Seconds())
		}
		return v, err
	}
	ri, ok := st.Replica(req.Shard)
	if !ok || !ri.Initialized {
		return resp.Value{}, store.ErrUnknownShard
	}
	var nowMs int64
	if !req.FollowerRead && !st.LeaseRead(ri) {
		var err error
		if nowMs, err = st.ReadIndex(ctx, req.Shard); err != nil {
			return resp.Value{}, err
		}
	}
	v, err := n.readLocal(ri, req.Args, nowMs, req.MaxReplyLen)
	if ri.Removed() {
		// The replica left the shard while it read: its data may have
		// been deleted under the read. The caller retries elsewhere.
		return resp.Value{}, store.ErrUnknownShard
	}
	return v, err
}

// readLocal runs a read command on the local replica's data, which the
// caller has made fresh enough, judging expiry at nowMs (the leader's
// clock reading for a follower's read), or at this node's time if 0. A
// reply that would hold more than maxReply bytes (0: no bound) is refused.
func (n *Node) readLocal(ri store.ReplicaInfo, args [][]byte, nowMs, maxReply int64) (resp.Value, error) {
	d := ri.Desc
	if d.GetMeta() {
		if len(args) == 1 && string(args[0]) == meta.CmdReadUsers {
			return n.readUsers()
		}
		return resp.Value{}, errors.New("node: reads of the meta shard go through the meta view")
	}
	if nowMs == 0 {
		nowMs = time.Now().UnixMilli()
	}
	env := kv.Env{
		NowMs: nowMs, Rand: rand.Uint64(), MaxReplyLen: maxReply,
		FirstSlot: int(d.GetFirstSlot()), LastSlot: int(d.GetLastSlot()), OwnSlots: true,
	}
	if !multiKeyRead(args) {
		return kv.Read(n.eng, env, args) // one Get is atomic by itself
	}
	// A read of several keys must see one state: an MSET applied between
	// two of its Gets would otherwise be seen half done.
	snap := n.eng.NewSnapshot()
	defer snap.Close()
	return kv.Read(snap, env, args)
}

// refuseGrowth returns why this node, leading the shard, must refuse a
// write that may add data (over maxmemory, or short of disk), or nil.
func (n *Node) refuseGrowth(args [][]byte) error {
	full, over := n.disk.Full(), n.mem.Over()
	switch {
	case !full && !over || !kv.DenyOOMCommand(args):
		return nil
	case full:
		return server.ErrDiskFull
	}
	return server.ErrOOM
}

// multiKeyRead reports whether a read command may read more than one key.
func multiKeyRead(args [][]byte) bool {
	spec := kv.Lookup(args[0])
	if spec == nil {
		return false
	}
	return spec.Flags&kv.AllShards != 0 || spec.LastKey != spec.FirstKey
}

// proposeMeta runs a meta command wherever the meta leader is.
func (n *Node) proposeMeta(ctx context.Context, args ...[]byte) (resp.Value, error) {
	v, err := n.Execute(ctx, server.Request{Shard: meta.ShardID, Args: args, Write: true})
	if err == nil && v.IsError() {
		err = errors.New(string(v.Str))
	}
	return v, err
}

// Methods served to other nodes through Net.Call.
const (
	methodForward   = "forward"
	methodJoin      = "join"
	methodPlacement = "placement"
	methodView      = "view"
	methodRemoved   = "removed"
)

// Call error codes.
const (
	codeNotLeader     = "notleader"
	codeNoReplica     = "noreplica"
	codeIndeterminate = "indeterminate"
	codeTooLarge      = "toolarge"
	codeOOM           = "oom"
	codeDiskFull      = "diskfull"
)

// HandleRaft implements transport.Handler.
func (n *Node) HandleRaft(from uint64, envs []*shoalpb.RaftEnvelope) {
	if st := n.st.Load(); st != nil {
		st.HandleRaft(from, envs)
	}
}

// ReportUnreachable implements transport.Handler.
func (n *Node) ReportUnreachable(shard, to uint64) {
	if st := n.st.Load(); st != nil {
		st.ReportUnreachable(shard, to)
	}
}

// ReportSnapshot implements transport.Handler.
func (n *Node) ReportSnapshot(shard, to uint64, failed bool) {
	if st := n.st.Load(); st != nil {
		st.ReportSnapshot(shard, to, failed)
	}
}

// HandleCall implements transport.Handler.
func (n *Node) HandleCall(ctx context.Context, from uint64, method string, body []byte) ([]byte, error) {
	if n.st.Load() == nil {
		return nil, &transport.CallError{Code: codeNoReplica, Msg: "node is starting"}
	}
	switch method {
	case methodForward:
		return n.handleForward(ctx, body)
	case methodJoin:
		return n.handleJoin(ctx, body)
	case methodPlacement:
		var op placement.Op
		if err := json.Unmarshal(body, &op); err != nil {
			return nil, err
		}
		// Only the meta leader's controller sends ops, for members it
		// knows; a node this one has not heard of may have joined a moment
		// ago, and the controller asks again.
		if v := n.view.Load(); v == nil || v.Nodes[op.Node] == nil {
			return nil, fmt.Errorf("node: placement op %v: node %d is not a member this node knows", op, op.Node)
		}
		return nil, n.executeOp(ctx, op)
	case methodView:
		return n.view.Load().Encode(), nil
	case methodRemoved:
		var q removedQuery
		if err := json.Unmarshal(body, &q); err != nil {
			return nil, err
		}
		removed, err := n.st.Load().IsRemoved(ctx, q.Shard, q.Replica)
		if err != nil {
			return nil, err
		}
		return json.Marshal(removed)
	}
	return nil, fmt.Errorf("node: unknown method %q", method)
}

func (n *Node) handleForward(ctx context.Context, body []byte) ([]byte, error) {
	var req shoalpb.ForwardRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		return nil, err
	}
	if len(req.GetArgs()) == 0 {
		return resp.AppendValue(nil, resp.Err("ERR empty command"), 3), nil
	}
	v, err := n.executeLocal(ctx, server.Request{
		Shard: req.GetShardId(), Args: req.GetArgs(), Write: req.GetWrite(), FollowerRead: req.GetFollowerRead(),
		MaxReplyLen: req.GetMaxReplyLen(),
	})
	var nl *store.NotLeaderError
	switch {
	case err == nil:
		return resp.AppendValue(nil, v, 3), nil
	case errors.As(err, &nl):
		return nil, &transport.CallError{Code: codeNotLeader, Msg: strconv.FormatUint(nl.Leader, 10)}
	case errors.Is(err, store.ErrUnknownShard), errors.Is(err, store.ErrBusy):
		return nil, &transport.CallError{Code: codeNoReplica, Msg: err.Error()}
	case errors.Is(err, store.ErrDropped):
		return nil, &transport.CallError{Code: codeNotLeader, Msg: "0"}
	case errors.Is(err, store.ErrOutcomeUnknown):
		return nil, &transport.CallError{Code: codeIndeterminate, Msg: err.Error()}
	case errors.Is(err, store.ErrTooLarge):
		return nil, &transport.CallError{Code: codeTooLarge, Msg: err.Error()}
	case errors.Is(err, server.ErrOOM):
		return nil, &transport.CallError{Code: codeOOM, Msg: err.Error()}
	case errors.Is(err, server.ErrDiskFull):
		return nil, &transport.CallError{Code: codeDiskFull, Msg: err.Error()}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return nil, &transport.CallError{Code: codeIndeterminate, Msg: err.Error()}
	}
	return nil, err
}

func (n *Node) handleJoin(ctx context.Context, body []byte) ([]byte, error) {
	var req joinRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, err
	}
	for _, a := range []string{req.Addr, req.BusAddr} {
		if err := checkAdvertised(a); err != nil {
			return nil, fmt.Errorf("node: join: %w", err)
		}
	}
	v, err := n.proposeMeta(ctx, []byte(meta.CmdAddNode), []byte(req.Addr), []byte(req.BusAddr))
	if err != nil {
		return nil, err
	}
	id, err := strconv.ParseUint(string(v.Str), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("node: bad node id %q", v.Str)
	}
	n.log.Info("registered joining node", "id", id, "addr", req.Addr)
	return json.Marshal(joinReply{NodeID: id, ClusterID: n.ident.GetClusterId()})
}

// checkAdvertised checks an address a joining node advertises, which
// clients and peers will dial: host:port, a host of printable characters
// and a port number.
func checkAdvertised(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || len(addr) > 300 {
		return fmt.Errorf("address %q is not host:port", addr)
	}
	for _, c := range host {
		if c <= ' ' || c > '~' {
			return fmt.Errorf("address %q: the host has unprintable characters", addr)
		}
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 && port != "0" {
		return fmt.Errorf("address %q: bad port", addr)
	}
	return nil
}
