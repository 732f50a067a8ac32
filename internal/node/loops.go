package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/shoaldb/shoal/internal/keys"
	"github.com/shoaldb/shoal/internal/kv"
	"github.com/shoaldb/shoal/internal/meta"
	"github.com/shoaldb/shoal/internal/placement"
	"github.com/shoaldb/shoal/internal/server"
	"github.com/shoaldb/shoal/internal/store"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// viewKey persists the last meta view fetched from a peer, so a node
// without a meta replica can route after a restart.
var viewKey = append(keys.Ident(), "-view"...)

// reloadView refreshes the cached meta state: from the local meta replica
// when this node has one, else from the persisted copy.
func (n *Node) reloadView() {
	if ri, ok := n.st.Load().Replica(meta.ShardID); ok && ri.Initialized {
		snap := n.eng.NewSnapshot() // the apply loop commits meanwhile
		st, err := meta.Reload(snap, n.view.Load())
		snap.Close()
		if err == nil && !ri.Removed() { // a removed replica's data is being deleted
			n.setView(st)
			return
		}
	}
	if n.view.Load() == nil {
		if b, ok, _ := n.eng.Get(viewKey); ok {
			if st, err := meta.Decode(b); err == nil {
				n.setView(st)
				return
			}
		}
		n.setView(&meta.State{Nodes: map[uint64]*meta.Node{}, Shards: map[uint64]*meta.Shard{}})
	}
}

func (n *Node) setView(st *meta.State) {
	n.view.Store(st)
	if len(st.Nodes) > 0 {
		n.offerUsers(st.UserSet(), false)
	}
	for id, nd := range st.Nodes {
		if id != n.ID() {
			n.net.SetPeer(id, nd.BusAddr)
		}
	}
}

// metaWatcher reloads the view when the local meta replica applies
// something, and fetches it from peers when this node has no meta replica.
func (n *Node) metaWatcher() {
	t := time.NewTicker(n.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.metaDirt:
			n.reloadView()
		case <-t.C:
			if ri, ok := n.st.Load().Replica(meta.ShardID); ok && ri.Initialized {
				n.reloadView()
				continue
			}
			n.fetchView()
		}
	}
}

// fetchView asks known peers for their meta view.
func (n *Node) fetchView() {
	peers := n.view.Load().NodeIDs()
	for _, id := range peers {
		if id == n.ID() {
			continue
		}
		ctx, cancel := context.WithTimeout(n.ctx, time.Second)
		b, err := n.net.Call(ctx, id, methodView, nil)
		cancel()
		if err != nil {
			continue
		}
		st, err := meta.Decode(b)
		if err != nil || len(st.Nodes) == 0 {
			continue
		}
		n.setView(st)
		wb := n.eng.NewWriteBatch()
		wb.Set(viewKey, b)
		wb.Commit(false)
		return
	}
	for _, addr := range n.cfg.Join {
		bus, err := n.cfg.BusAddrOf(addr)
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(n.ctx, time.Second)
		b, err := n.net.CallAddr(ctx, bus, methodView, nil)
		cancel()
		if err != nil {
			continue
		}
		if st, err := meta.Decode(b); err == nil && len(st.Nodes) > 0 {
			n.setView(st)
			return
		}
	}
}

// every calls fn every interval until the node stops.
func (n *Node) every(interval time.Duration, fn func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

// heartbeat reports liveness and, of the shards this node leads, those
// whose report differs from the last one the meta shard applied.
func (n *Node) heartbeat() {
	var leading []meta.LeaderReport
	for _, ri := range n.st.Load().Replicas() {
		if ri.IsLeader && ri.Initialized {
			leading = append(leading, meta.LeaderReport{
				Shard: ri.Shard, Term: ri.Term, Voters: ri.Voters, Learners: ri.Learners, Bytes: n.shardBytes(ri),
			})
		}
	}
	hb := meta.Heartbeat{Node: n.ID(), Reports: unreported(leading, n.reported)}
	b, _ := json.Marshal(hb)
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.HeartbeatInterval*2)
	v, err := n.proposeMeta(ctx, []byte(meta.CmdHeartbeat), b)
	cancel()
	if err != nil || v.IsError() {
		if err == nil && string(v.Str) == "ERR unknown node" && !n.forgotten {
			n.forgotten = true
			n.log.Error("this node was removed from the cluster (it was decommissioned and stopped): it serves as a client of the others only; to join again, start it on an empty data directory", "node", n.ID())
		}
		if n.ctx.Err() == nil {
			n.log.Debug("heartbeat failed", "err", err, "reply", string(v.Str))
		}
		return
	}
	if n.reported == nil {
		n.reported = map[uint64]meta.LeaderReport{}
	}
	for _, r := range hb.Reports {
		n.reported[r.Shard] = r
	}
}

// unreported returns the reports of leading that differ from the last
// report of the same shard the meta shard applied (reported). Only a
// shard's leader in a term reports for that term, so the meta state's
// record of a shard this node leads is the last report of it that it
// applied: a report equal to that one would change nothing. One that is
// not known to have been applied (its heartbeat failed or timed out) is
// sent again.
func unreported(leading []meta.LeaderReport, reported map[uint64]meta.LeaderReport) []meta.LeaderReport {
	var out []meta.LeaderReport
	for _, r := range leading {
		last, ok := reported[r.Shard]
		if ok && last.Term == r.Term && slices.Equal(last.Voters, r.Voters) && slices.Equal(last.Learners, r.Learners) &&
			!sizeMoved(last.Bytes, r.Bytes) {
			continue
		}
		out = append(out, r)
	}
	return out
}

// sizeMoved reports whether a shard's size went from last (reported) to
// now by more than a tenth or 1 MiB, whichever is more: sizes change with
// every write and compaction, and the meta shard need not hear each.
func sizeMoved(last, now uint64) bool {
	d := max(last, now) - min(last, now)
	return d > max(last/10, 1<<20)
}

// shardBytes is the size on this node's disk of ri's shard, 0 if unknown.
func (n *Node) shardBytes(ri store.ReplicaInfo) uint64 {
	lo, hi := keys.SlotSpan(int(ri.Desc.GetFirstSlot()), int(ri.Desc.GetLastSlot()))
	if ri.Desc.GetMeta() {
		lo, hi = keys.MetaSpan()
	}
	b, err := n.eng.DiskUsage(lo, hi)
	if err != nil {
		return 0
	}
	return max(b, 1) // 0 means not measured
}

// place runs the placement planner if this node leads the meta shard and
// carries out its operations at each shard's leader.
func (n *Node) place() {
	ri, ok := n.st.Load().Replica(meta.ShardID)
	if !ok || !ri.IsLeader {
		n.placing.term = 0
		return
	}
	now := time.Now().UnixMilli()
	if n.placing.term != ri.Term {
		// Heartbeats are judged from the time this node began to lead the
		// meta shard, not from before (placement.Config.WatchingSinceMs).
		n.placing.term = ri.Term
		n.placing.sinceMs.Store(now)
	}
	st := n.freshView()
	ops := placement.Plan(st, now, n.planConfig())
	for _, op := range ops {
		if err := n.runOp(st, op); err != nil {
			n.log.Debug("placement op failed", "op", op.String(), "err", err)
		} else {
			n.placeOps[op.Kind].Add(1)
			n.log.Info("placement", "op", op.String())
		}
	}
}

// freshView returns a copy of the meta view updated with what the local
// replicas know now: their shard's leader, and for shards this node leads,
// the current members. Heartbeats carry the same facts, up to a heartbeat
// interval later.
func (n *Node) freshView() *meta.State {
	st, err := meta.Decode(n.view.Load().Encode())
	if err != nil {
		panic(fmt.Sprintf("node: copy meta view: %v", err))
	}
	for _, ri := range n.st.Load().Replicas() {
		sh := st.Shards[ri.Shard]
		if sh == nil || !ri.Initialized || ri.Leader == 0 || ri.Term < sh.Term {
			continue
		}
		sh.Leader, sh.Term = ri.Leader, ri.Term
		if ri.IsLeader {
			sh.Voters, sh.Learners = ri.Voters, ri.Learners
		}
	}
	return st
}

// runOp sends op to the leader of its shard.
func (n *Node) runOp(st *meta.State, op placement.Op) error {
	sh := st.Shards[op.Shard]
	if sh == nil || sh.Leader == 0 {
		return errors.New("shard leader unknown")
	}
	ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
	defer cancel()
	if sh.Leader == n.ID() {
		return n.executeOp(ctx, op)
	}
	b, _ := json.Marshal(op)
	_, err := n.net.Call(ctx, sh.Leader, methodPlacement, b)
	return err
}

// executeOp carries out a placement operation on a shard this node leads.
func (n *Node) executeOp(ctx context.Context, op placement.Op) error {
	st := n.st.Load()
	single := func(t raftpb.ConfChangeType) []*raftpb.ConfChangeSingle {
		return []*raftpb.ConfChangeSingle{{Type: t.Enum(), NodeId: proto.Uint64(op.Node)}}
	}
	switch op.Kind {
	case placement.AddLearner:
		ri, ok := st.Replica(op.Shard)
		if ok && (slices.Contains(ri.Voters, op.Node) || slices.Contains(ri.Learners, op.Node)) {
			return nil
		}
		return st.ChangeReplicas(ctx, op.Shard, single(raftpb.ConfChangeType_ConfChangeAddLearnerNode))
	case placement.Promote:
		p, err := st.Progress(ctx, op.Shard)
		if err != nil {
			return err
		}
		// A learner is promoted once it holds everything applied at the
		// leader: then it cannot make the shard lose availability by
		// counting toward a quorum it cannot yet serve.
		if p.Match[op.Node] < p.Applied {
			return fmt.Errorf("learner %d at %d, leader applied %d", op.Node, p.Match[op.Node], p.Applied)
		}
		changes := single(raftpb.ConfChangeType_ConfChangeAddNode)
		if op.Replace != 0 {
			if op.Replace == n.ID() {
				return errors.New("a leader does not remove its own replica: leadership moves first")
			}
			// One change, through a joint configuration: the voters never
			// outnumber the replication factor.
			changes = append(changes, &raftpb.ConfChangeSingle{
				Type: raftpb.ConfChangeType_ConfChangeRemoveNode.Enum(), NodeId: proto.Uint64(op.Replace)})
		}
		return st.ChangeReplicas(ctx, op.Shard, changes)
	case placement.TransferLeader:
		// Raft refuses proposals while a transfer is pending, until the
		// target has caught up or an election timeout passes: only hand
		// leadership to a replica that is already caught up.
		p, err := st.Progress(ctx, op.Shard)
		if err != nil {
			return err
		}
		if p.Match[op.Node] < p.Applied {
			return fmt.Errorf("transfer target %d at %d, leader applied %d", op.Node, p.Match[op.Node], p.Applied)
		}
		return st.TransferLeader(ctx, op.Shard, op.Node)
	case placement.Forget:
		_, err := n.proposeMeta(ctx, []byte(meta.CmdRemoveNode), []byte(strconv.FormatUint(op.Node, 10)))
		return err
	case placement.Remove:
		if op.Node == n.ID() {
			return errors.New("a leader does not remove its own replica: leadership moves first")
		}
		ri, ok := st.Replica(op.Shard)
		if ok && !slices.Contains(ri.Voters, op.Node) && !slices.Contains(ri.Learners, op.Node) {
			return nil
		}
		return st.RemoveReplica(ctx, op.Shard, op.Node, op.Keep)
	}
	return fmt.Errorf("unknown op %v", op.Kind)
}

// sweepState decides which led shards the expiry sweep scans. A scan of a
// shard's expiry index costs a seek per slot (1 024 for a shard of 16), so
// the sweep scans a shard only when something may be due: when applied
// writes added expiry index entries to it since the sweep last looked (a
// key may now expire before the earliest time the last scan found), or
// when that earliest time has come. Writes that add no entry (most writes
// of most workloads) cannot make anything due sooner. Entries that reach a
// replica other than through its log (in a snapshot) are found by a rescan
// every sweepRescan.
type sweepState struct {
	mu sync.Mutex
	// applying holds the shards whose entries being applied added expiry
	// index entries; noteApplied moves them to written once their batch
	// has committed, so a scan that follows take sees the entries.
	applying map[uint64]bool
	// written holds the shards that gained entries since take.
	written map[uint64]bool
	// next is, per led shard, when to scan it again (Unix ms). Only the
	// sweep goroutine uses it.
	next map[uint64]int64
}

const sweepRescan = time.Minute

// noteApplying records that an entry being applied to shard added expiry
// index entries.
func (s *sweepState) noteApplying(shard uint64) {
	s.mu.Lock()
	s.applying[shard] = true
	s.mu.Unlock()
}

// noteApplied is called once the applied entries have committed.
func (s *sweepState) noteApplied() {
	s.mu.Lock()
	for id := range s.applying {
		s.written[id] = true
	}
	clear(s.applying)
	s.mu.Unlock()
}

func (s *sweepState) take() map[uint64]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.written
	s.written = make(map[uint64]bool, len(w))
	return w
}

// sweepLeading deletes expired keys of the shards this node leads, through
// the log, so every replica deletes the same keys.
func (n *Node) sweepLeading() {
	written := n.sweeps.take()
	led := make(map[uint64]bool)
	for _, ri := range n.st.Load().Replicas() {
		if !ri.IsLeader || !ri.Initialized || ri.Desc.GetMeta() {
			continue
		}
		led[ri.Shard] = true
		next, known := n.sweeps.next[ri.Shard]
		if known && !written[ri.Shard] && time.Now().UnixMilli() < next {
			continue
		}
		n.sweeps.next[ri.Shard] = n.sweep(ri.Shard, int(ri.Desc.GetFirstSlot()), int(ri.Desc.GetLastSlot()))
	}
	// A shard led again later is scanned at once: what it was written
	// meanwhile was not watched.
	for shard := range n.sweeps.next {
		if !led[shard] {
			delete(n.sweeps.next, shard)
		}
	}
}

const sweepBatch = 512

// sweep deletes due keys of the shard, a bounded number per call, and
// returns when to scan it next.
func (n *Node) sweep(shard uint64, first, last int) (next int64) {
	for range 20 { // bounded work per shard per round
		now := time.Now().UnixMilli()
		n.expiryScans.Add(1)
		at, ok, err := kv.NextExpiry(n.eng, kv.Env{NowMs: now, FirstSlot: first, LastSlot: last})
		switch {
		case err != nil:
			return 0 // at the next round
		case !ok:
			return now + sweepRescan.Milliseconds()
		case at > now:
			return min(at, now+sweepRescan.Milliseconds())
		}
		ctx, cancel := context.WithTimeout(n.ctx, 2*time.Second)
		_, err = n.Execute(ctx, server.Request{
			Shard: shard, Write: true,
			Args: [][]byte{[]byte("SHOAL.SWEEP"), []byte(strconv.Itoa(sweepBatch))},
		})
		cancel()
		if err != nil {
			return 0
		}
	}
	return 0 // more may be due
}
