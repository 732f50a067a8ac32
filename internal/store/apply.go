package store

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/shoaldb/shoal/internal/engine"
	"github.com/shoaldb/shoal/internal/keys"
	"github.com/shoaldb/shoal/internal/replicaid"
	"github.com/shoaldb/shoal/internal/resp"
	"github.com/shoaldb/shoal/internal/shoalpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

type delivery struct {
	id  uint64
	res result
}

// apply applies the committed entries of every ready replica in one batch,
// together with each replica's new applied state, then wakes waiters and
// tells raft.
func (s *Store) apply(ready []readyReplica) {
	b := s.eng.NewBatch()
	var out []delivery
	var touched []uint64
	for _, x := range ready {
		r := x.r
		if len(x.rd.CommittedEntries) == 0 {
			continue
		}
		for _, e := range x.rd.CommittedEntries {
			if e.GetIndex() <= r.applied {
				continue // covered by a snapshot applied in this cycle
			}
			out = s.applyEntry(b, r, e, out)
			r.applied, r.appliedTerm = e.GetIndex(), e.GetTerm()
			s.stats.appliedEntries.Add(1)
		}
		s.putProto(b, r.appliedKey, &shoalpb.AppliedState{
			Index: r.applied, Term: r.appliedTerm, ConfState: r.storage.conf,
		})
		s.maybeTruncate(b, r)
		touched = append(touched, r.shard)
	}
	if b.Empty() {
		b.Close()
	} else if err := b.Commit(false); err != nil {
		// The log is durable; a replica that cannot apply must not go on.
		panic(fmt.Sprintf("store: commit applied batch: %v", err))
	}
	defer func() {
		for _, x := range ready {
			if x.r.removed {
				s.removeReplica(x.r, "it applied its removal")
			}
		}
	}()
	for _, x := range ready {
		for _, m := range x.apply {
			s.stepLocal(x.r, m)
		}
		s.afterApply(x.r, x.rd)
	}
	for _, d := range out {
		s.waiters.deliver(d.id, d.res)
	}
	if len(touched) > 0 && s.cfg.OnApplied != nil {
		s.cfg.OnApplied(touched)
	}
}

func (s *Store) applyEntry(b *engine.Batch, r *replica, e *raftpb.Entry, out []delivery) []delivery {
	id, applied, mine := r.resolve(e)
	if mine && !applied {
		out = append(out, delivery{id, result{err: ErrDropped}})
		mine = false
	}
	switch e.GetType() {
	case raftpb.EntryType_EntryNormal:
		if len(e.GetData()) == 0 {
			return out // a new leader's empty entry
		}
		if len(e.GetData()) < 8 {
			panic(fmt.Sprintf("store: shard %d entry %d: short command", r.shard, e.GetIndex()))
		}
		cmd := &s.cmd // the state machine does not keep it
		proto.Reset(cmd)
		if err := decodeCommand(e.GetData()[8:], cmd); err != nil {
			panic(fmt.Sprintf("store: shard %d entry %d: bad command: %v", r.shard, e.GetIndex(), err))
		}
		if to, ok := truncation(e.GetData(), cmd); ok {
			s.truncate(b, r, to)
			return out
		}
		val, err := s.cfg.StateMachine.Apply(b, r.desc, cmd)
		if err != nil {
			panic(fmt.Sprintf("store: shard %d entry %d: apply: %v", r.shard, e.GetIndex(), err))
		}
		if mine {
			out = append(out, delivery{id, result{val: val, index: e.GetIndex()}})
		}
	case raftpb.EntryType_EntryConfChange, raftpb.EntryType_EntryConfChangeV2:
		var cc raftpb.ConfChangeI
		if e.GetType() == raftpb.EntryType_EntryConfChange {
			c := &raftpb.ConfChange{}
			if err := proto.Unmarshal(e.GetData(), c); err != nil {
				panic(fmt.Sprintf("store: bad conf change: %v", err))
			}
			cc = c
		} else {
			c := &raftpb.ConfChangeV2{}
			if err := proto.Unmarshal(e.GetData(), c); err != nil {
				panic(fmt.Sprintf("store: bad conf change: %v", err))
			}
			cc = c
		}
		match := matchIndexes(r)
		r.storage.conf = r.touch().ApplyConfChange(cc)
		s.countReplicaIDs(b, r, cc.AsV2())
		s.farewellRemoved(r, e.GetIndex(), match)
		r.dropLease()
		s.dirty = true
		s.log.Info("applied conf change", "shard", r.shard, "conf", r.storage.conf.String())
		if mine {
			out = append(out, delivery{id, result{index: e.GetIndex()}})
		}
		if removedFrom(r.storage.conf, r.id) {
			r.removed = true // removed once this batch commits (apply)
		}
	}
	return out
}

// decodeCommand decodes a Command as proto.Unmarshal does, except that
// its arguments are slices of b instead of copies: every replica decodes
// every entry, and raft entries are never modified, so the copies would
// only cost an allocation per argument. Fields it does not know are
// skipped.
func decodeCommand(b []byte, cmd *shoalpb.Command) error {
	cmd.Args = make([][]byte, 0, 4)
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		if num > protowire.MaxValidNumber {
			return fmt.Errorf("store: command field number %d out of range", num)
		}
		b = b[n:]
		var v uint64
		switch {
		case num == 4 && typ == protowire.BytesType:
			var arg []byte
			arg, n = protowire.ConsumeBytes(b)
			if n >= 0 {
				cmd.Args = append(cmd.Args, arg[:len(arg):len(arg)])
			}
		case (num <= 3 || num == 5) && typ == protowire.VarintType:
			v, n = protowire.ConsumeVarint(b)
			switch num {
			case 1:
				cmd.Id = v
			case 2:
				cmd.NowMs = int64(v)
			case 3:
				cmd.Rand = v
			case 5:
				cmd.MaxValueLen = int64(v)
			}
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
	}
	return nil
}

// afterApply releases linearizable reads whose read index is now applied.
func (s *Store) afterApply(r *replica, rd raft.Ready) {
	if r.truncateTo > 0 {
		if err := r.storage.Compact(r.truncateTo); err != nil && err != raft.ErrCompacted {
			panic(fmt.Sprintf("store: compact raft storage: %v", err))
		}
		r.truncateTo = 0
		r.logBytes = r.storage.bytesFrom(0)
	}
	for _, rs := range rd.ReadStates {
		id, nowMs, ok := readStateCtx(rs.RequestCtx)
		if !ok {
			continue
		}
		b, mine := r.readIndexes[id]
		if !mine {
			continue
		}
		delete(r.readIndexes, id)
		if b.follower && nowMs == 0 {
			// raft answered, with no leader clock reading to judge
			// expiry by: the reads must go to the leader.
			res := s.notLeader(r)
			for _, id := range b.ids {
				s.waiters.deliver(id, res)
			}
			continue
		}
		s.extendLease(r, b, rs.Index)
		for _, id := range b.ids {
			r.reads = append(r.reads, pendingRead{id: id, index: rs.Index, asked: b.asked, nowMs: nowMs})
		}
	}
	r.publishLease()
	n := 0
	for _, pr := range r.reads {
		if pr.index <= r.applied {
			res := result{index: pr.index}
			if pr.nowMs != 0 {
				res.val = resp.Int(pr.nowMs) // a follower's: the leader's time
			}
			s.waiters.deliver(pr.id, res)
			continue
		}
		r.reads[n] = pr
		n++
	}
	r.reads = r.reads[:n]
}

// persistSnapshot replaces a replica's state with a received snapshot.
func (s *Store) persistSnapshot(b *engine.Batch, r *replica, snap *raftpb.Snapshot) {
	// step checked the snapshot when it arrived (checkSnapshot): one walk
	// of the data, in the loop, writes it.
	n := 0
	desc, err := walkSnapshotData(snap.GetData(), func(k, v []byte) error {
		b.Set(k, v)
		n++
		return nil
	}, func(desc *shoalpb.ShardDescriptor) error {
		if desc.GetId() != r.shard {
			return fmt.Errorf("it carries shard %d", desc.GetId())
		}
		if r.desc != nil {
			lo, hi := descSpan(r.desc)
			b.DeleteRange(lo, hi)
		}
		lo, hi := descSpan(desc)
		b.DeleteRange(lo, hi)
		return nil
	})
	if err != nil {
		panic(fmt.Sprintf("store: snapshot of shard %d: %v", r.shard, err))
	}
	md := snap.GetMetadata()
	llo, lhi := keys.LogSpan(r.shard)
	b.DeleteRange(llo, lhi)
	setProto(b, keys.Descriptor(r.shard), desc)
	setProto(b, keys.AppliedState(r.shard), &shoalpb.AppliedState{
		Index: md.GetIndex(), Term: md.GetTerm(), ConfState: md.GetConfState(),
	})
	setProto(b, keys.TruncatedState(r.shard), &shoalpb.TruncatedState{Index: md.GetIndex(), Term: md.GetTerm()})
	r.desc = desc
	s.log.Info("applied snapshot", "shard", r.shard, "index", md.GetIndex(), "keys", n)
}

// maybeTruncate keeps the log short. A leader proposes a truncation
// entry once its log holds twice LogTail applied entries, or twice
// LogTailBytes of data: every replica that applies it drops its log up to
// the entry's index, the last LogTail entries (and LogTailBytes) kept, or
// what some follower still lacks (its Match, read from raft's progress
// without allocating), up to LogKeep entries and LogKeepBytes. Entries live
// a fraction of a second this way, instead of seconds: few are still in
// the log when Pebble flushes its memtable, so few are written to disk and
// compacted again. All replicas truncate at the same index, so a follower
// that comes to lead still has what a lagging replica lacks.
//
// A lagging follower thus finds up to LogKeep (4096) entries it lacks in
// any replica's log; replicas used to keep 2048 to 4096 entries whatever
// their followers had. Any replica also truncates on its own to LogKeep
// entries once it holds twice that, as one led by an older node, which
// proposes no truncations, must. Truncations write
// into the applied batch, so a truncation and the applied index that
// justifies it become durable together.
func (s *Store) maybeTruncate(b *engine.Batch, r *replica) {
	first, _ := r.storage.FirstIndex()
	if r.applied < first {
		return
	}
	// bounds returns the indexes up to which entries may go to keep at
	// most LogTail entries and LogTailBytes, or LogKeep entries and
	// LogKeepBytes, up to the applied one.
	bounds := func() (tailTo, keepTo uint64) {
		tb, kb := r.storage.keepBytes(first, r.applied, s.cfg.LogTailBytes, s.cfg.LogKeepBytes)
		return max(r.applied-min(r.applied, s.cfg.LogTail), tb), max(r.applied-min(r.applied, s.cfg.LogKeep), kb)
	}
	if r.applied-first >= 2*s.cfg.LogKeep || r.logBytes > 2*s.cfg.LogKeepBytes {
		_, to := bounds()
		s.truncate(b, r, to)
		return
	}
	tail := s.cfg.LogTail
	overBytes := r.logBytes > 2*s.cfg.LogTailBytes
	if !r.isLeader() || r.applied-first < 2*tail && !overBytes || r.truncProposed >= first {
		return // not leading, short enough, or a truncation on its way
	}
	to, keep := bounds()
	r.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
		if id != r.id && pr.Match < to {
			to = pr.Match
		}
	})
	to = max(to, keep)
	if to < first || to-first+1 < tail && !overBytes {
		return // too little to drop
	}
	// Entry data as for a client's command, with request id 0.
	cmd := &shoalpb.Command{Args: [][]byte{truncateLogCmd, binary.BigEndian.AppendUint64(nil, to)}}
	data, err := proto.MarshalOptions{}.MarshalAppend(idBytes(0), cmd)
	if err != nil {
		panic(fmt.Sprintf("store: encode truncation: %v", err))
	}
	if s.proposeBatch(r, []queuedProposal{{data: data}}) == nil {
		r.truncProposed = to
	}
}

// truncateLogCmd is the command of a truncation entry; its argument is the
// last index to drop, 8 bytes big-endian. A client command cannot have this
// name (the server runs only commands it knows, and none starts with a NUL
// byte), and a truncation entry has request id 0.
var truncateLogCmd = []byte("\x00truncate-log")

// truncation returns the index a truncation entry with command cmd drops
// the log up to, if it is one.
func truncation(data []byte, cmd *shoalpb.Command) (to uint64, ok bool) {
	args := cmd.GetArgs()
	if id, _ := idFrom(data[:8]); id != 0 || len(args) != 2 || !bytes.Equal(args[0], truncateLogCmd) || len(args[1]) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(args[1]), true
}

// truncate drops r's log entries up to index to, if it holds them and has
// applied them (a truncation entry's index is always applied: it lies
// before the entry). Truncation entries need not come in increasing order
// (each leader picks its own index), and the in-memory log is compacted
// only after the batch: one that a truncation earlier in the same batch
// already covers is ignored, or it would set the truncated state back
// below entries that batch deleted.
func (s *Store) truncate(b *engine.Batch, r *replica, to uint64) {
	first, _ := r.storage.FirstIndex()
	first = max(first, r.truncateTo+1) // truncateTo is 0 if none
	if to < first || to > r.applied {
		return
	}
	term, err := r.storage.Term(to)
	if err != nil {
		return
	}
	// From first, not 0: what lies before it is gone already, and range
	// deletions that do not overlap are cheaper for every read of the
	// memtable to fragment.
	b.DeleteRange(keys.LogEntry(r.shard, first), keys.LogEntry(r.shard, to+1))
	setProto(b, keys.TruncatedState(r.shard), &shoalpb.TruncatedState{Index: to, Term: term})
	r.truncateTo = max(r.truncateTo, to)
}

// countReplicaIDs advances r's shard's next replica incarnation past the
// replicas cc added, in its descriptor (written to b), so that none is
// given twice (replicaChanges).
func (s *Store) countReplicaIDs(b *engine.Batch, r *replica, cc *raftpb.ConfChangeV2) {
	next := r.desc.GetNextReplicaInc()
	for _, c := range cc.GetChanges() {
		switch c.GetType() {
		case raftpb.ConfChangeType_ConfChangeAddNode, raftpb.ConfChangeType_ConfChangeAddLearnerNode:
			next = max(next, replicaid.Incarnation(c.GetNodeId())+1)
		}
	}
	if r.desc == nil || next == r.desc.GetNextReplicaInc() {
		return
	}
	d := proto.Clone(r.desc).(*shoalpb.ShardDescriptor)
	d.NextReplicaInc = next
	setProto(b, keys.Descriptor(r.shard), d)
	r.desc = d
}
