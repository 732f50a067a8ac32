package store

import (
	"fmt"
	"time"

	"github.com/shoaldb/shoal/internal/engine"
	"github.com/shoaldb/shoal/internal/keys"
	"github.com/shoaldb/shoal/internal/shoalpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// The loop never waits for the disk. Raft runs with AsyncStorageWrites:
// each Ready hands the loop the writes to make durable (a message to
// raft.LocalAppendThread) and the committed entries to apply (a message
// to raft.LocalApplyThread), each with the responses to deliver once done.
//
//   - Appends (entries, hard states, snapshots) of every replica are staged
//     into one pending Pebble batch. When no batch is being synced, the
//     pending one is handed to the syncer, which commits it with one fsync
//     (group commit) while the loop goes on; whatever is staged meanwhile
//     forms the next batch. When the sync completes, the loop updates raft's
//     storage and delivers the appends' responses: the acknowledgements
//     to the leader (or the leader's own) and vote replies leave only now.
//   - Committed entries are durable already (raft hands out only those in
//     this mode), so the loop applies them at once, in one batch for all
//     replicas, and answers their proposers; no client waits for a sync
//     that does not concern its entry.
//   - Every other message (a leader's appends and heartbeats, vote
//     requests) is sent in the same cycle, once that cycle's batch is
//     handed to the syncer and its committed entries applied: raft allows
//     it, followers then sync in parallel with their leader, and none
//     learns of a commit its leader has not applied yet.
//
// At most one batch is in flight, so the syncs of a node happen one after
// another, each covering everything that arrived during the previous one.

type readyReplica struct {
	r     *replica
	rd    raft.Ready
	apply []*raftpb.Message // responses to step once rd.CommittedEntries are applied
}

// staged is what one replica wrote into a pending batch: raft's storage is
// told, and the responses delivered, once the batch is durable.
type staged struct {
	r         *replica
	ents      []*raftpb.Entry
	hs        *raftpb.HardState
	snap      *raftpb.Snapshot
	responses []*raftpb.Message
	sent      bool // responses to other nodes already left (SendBeforeSync)
}

// syncJob is a batch of raft writes on its way to the disk.
type syncJob struct {
	b      *engine.Batch
	sync   bool
	staged []staged
}

// handleReady takes the Ready of every replica that has one: sends what may
// leave now, stages the writes, hands them to the syncer if it is idle,
// and applies what is committed.
func (s *Store) handleReady() {
	ready := s.ready[:0]
	defer func() { clear(ready); s.ready = ready[:0] }()
	for _, r := range s.order {
		if r.active && r.rn.HasReady() {
			ready = append(ready, readyReplica{r: r, rd: r.rn.Ready()})
		}
	}
	var out []*shoalpb.RaftEnvelope
	for i := range ready {
		x := &ready[i]
		if ss := x.rd.SoftState; ss != nil {
			s.updateSoftState(x.r, ss)
		}
		applied := x.r.applied // once this cycle's apply is done
		if n := len(x.rd.CommittedEntries); n > 0 {
			applied = max(applied, x.rd.CommittedEntries[n-1].GetIndex())
		}
		for _, m := range x.rd.Messages {
			switch m.GetTo() {
			case raft.LocalAppendThread:
				s.stage(x, m)
			case raft.LocalApplyThread:
				x.apply = m.GetResponses()
			default:
				if len(x.r.unlocated) > 0 && m.GetType() == raftpb.MessageType_MsgApp {
					// A proposal of this cycle leaves in this append even
					// if a newer leader's append has replaced it in the
					// log since (dropUnlocated).
					x.r.locate(m.GetEntries())
				}
				capCommit(m, applied)
				if !x.r.holdCommit(m) {
					out = append(out, &shoalpb.RaftEnvelope{ShardId: x.r.shard, Message: m})
				}
			}
		}
		x.r.dropUnlocated(func(id uint64) { s.waiters.deliver(id, result{err: ErrDropped}) })
	}
	// The messages leave after the apply, telling followers of commits
	// only up to what this node has applied (capCommit). The append
	// starts its fsync first.
	s.send(s.unsynced)
	s.unsynced = nil
	s.handOff()
	s.apply(ready)
	s.send(append(out, s.replies...))
	s.replies = nil
}

// capCommit lowers the commit index m tells a follower to applied, the
// sender's applied index once this cycle's apply is done (the messages
// leave after it). raft may count an entry committed before its leader
// has made it durable itself (two followers acknowledged first), and
// hands it to the leader to apply only after; told at once, a follower
// could apply and serve it before its leader can. Capped, no replica's
// state is ahead of its leader's applied state, so reads served by
// followers (after a read index) and by the leader (under its lease)
// never see a state older than one already served (answerUnderLease).
// A lower commit index is always safe to send; the follower learns the
// rest from the next append or heartbeat.
func capCommit(m *raftpb.Message, applied uint64) {
	switch m.GetType() {
	case raftpb.MessageType_MsgApp, raftpb.MessageType_MsgHeartbeat:
		if m.GetCommit() > applied {
			m.Commit = proto.Uint64(applied)
		}
	}
}

// sendHeld sends the commit appends every replica still holds, unless
// the replica has stopped leading or begun a new term since: a stale
// append is not only useless, the answer of a follower in a newer term
// (a rejection at index 0) would look to a new leader's probe like a match
// at index 0 and send that follower a snapshot it does not need.
func (s *Store) sendHeld() {
	var out []*shoalpb.RaftEnvelope
	for _, r := range s.order {
		held := r.takeHeld()
		if len(held) == 0 {
			continue
		}
		st := r.rn.BasicStatus()
		for _, m := range held {
			if st.RaftState == raft.StateLeader && m.GetTerm() == st.GetTerm() {
				out = append(out, &shoalpb.RaftEnvelope{ShardId: r.shard, Message: m})
			}
		}
	}
	s.send(out)
}

// stage writes the append m of replica x into the pending batch.
func (s *Store) stage(x *readyReplica, m *raftpb.Message) {
	r, b := x.r, s.pendingBatch()
	st := staged{r: r, responses: m.GetResponses()}
	if snap := m.GetSnapshot(); snap != nil && !raft.IsEmptySnap(snap) {
		s.persistSnapshot(b, r, snap)
		r.lastIndex = snap.GetMetadata().GetIndex()
		r.confIndexes = r.confIndexes[:0] // the log is replaced
		st.snap = snap
		s.pendingSync = true
	}
	if ents := m.GetEntries(); len(ents) > 0 {
		s.persistEntries(b, r, ents)
		r.locate(ents)
		st.ents = ents
		s.pendingSync = true
	}
	if m.Term != nil || m.Vote != nil || m.Commit != nil {
		hs := &raftpb.HardState{Term: m.Term, Vote: m.Vote, Commit: m.Commit}
		termOrVote := hs.GetTerm() != r.hardState.GetTerm() || hs.GetVote() != r.hardState.GetVote()
		// A hard state is written only when its term or vote changed, or
		// its commit index covers a conf change for the first time. The
		// commit index need not be durable otherwise: loadReplica raises
		// it to the applied index, and the leader tells the rest. Written
		// with every append, it would be one more key in the WAL and the
		// memtable per shard and batch: as many as the entries themselves
		// when shards get a write or two per cycle. But raft campaigns by
		// the configuration it has applied, and refuses to only while it
		// knows of a committed conf change it has not applied: a replica
		// that restarted having forgotten such a commit could campaign
		// with a configuration the cluster has left behind.
		if r.commitsConfChange(hs.GetCommit()) || termOrVote {
			s.putProto(b, keys.HardState(r.shard), hs)
			s.pendingSync = true
		}
		st.hs = hs
	}
	if s.cfg.Testing.SendBeforeSync {
		// The planted bug: acknowledge before the write is durable.
		for _, resp := range st.responses {
			if resp.GetTo() != r.id {
				s.unsynced = append(s.unsynced, &shoalpb.RaftEnvelope{ShardId: r.shard, Message: resp})
			}
		}
		st.sent = true
	}
	if s.pendingStaged == nil {
		s.pendingStaged, s.freeStaged = s.freeStaged, nil
	}
	s.pendingStaged = append(s.pendingStaged, st)
}

// persistEntries writes entries into b. They may replace a conflicting
// suffix of the log, staged or durable: what lies beyond the new last
// entry is deleted.
func (s *Store) persistEntries(b *engine.Batch, r *replica, ents []*raftpb.Entry) {
	first := ents[0].GetIndex()
	for len(r.confIndexes) > 0 && r.confIndexes[len(r.confIndexes)-1] >= first {
		r.confIndexes = r.confIndexes[:len(r.confIndexes)-1] // replaced
	}
	for _, e := range ents {
		s.keyScratch = keys.AppendLogEntry(s.keyScratch[:0], r.shard, e.GetIndex())
		s.putProto(b, s.keyScratch, e)
		r.noteConfChange(e, 0)
	}
	lastNew := ents[len(ents)-1].GetIndex()
	if r.lastIndex > lastNew {
		b.DeleteRange(keys.LogEntry(r.shard, lastNew+1), keys.LogEntry(r.shard, r.lastIndex+1))
	}
	r.lastIndex = lastNew
}

// pendingBatch returns the batch of raft writes the next sync makes
// durable.
func (s *Store) pendingBatch() *engine.Batch {
	if s.pending == nil {
		s.pending = s.eng.NewWriteBatch()
	}
	return s.pending
}

// handOff gives the pending batch to the syncer unless one is in flight.
// A store that was not started, or a batch with nothing to write (only
// responses waiting for the writes before them, which are durable since
// none is in flight), is completed on the spot.
func (s *Store) handOff() {
	if s.inflight || len(s.pendingStaged) == 0 {
		return
	}
	job := syncJob{b: s.pending, sync: s.pendingSync, staged: s.pendingStaged}
	s.pending, s.pendingSync, s.pendingStaged = nil, false, nil
	s.inflight = true
	if s.started && !job.b.Empty() {
		s.syncc <- job
		return
	}
	s.commit(job)
}

// syncer commits the batches handed to it, one at a time.
func (s *Store) syncer() {
	defer close(s.syncerDone)
	for job := range s.syncc {
		s.commit(job)
	}
}

// commit makes job durable, sends the responses it owes other nodes, and
// queues its completion for the loop. A follower's acknowledgement thus
// leaves as soon as its append is durable, without waiting for the loop
// to pick the completion up: that is the one thing raft requires before
// it may leave, and it is on the critical path of every write.
func (s *Store) commit(job syncJob) {
	if job.b != nil {
		if job.b.Empty() {
			job.b.Close()
		} else if err := s.commitBatch(job); err != nil {
			panic(fmt.Sprintf("store: persist raft state: %v", err))
		}
		if job.sync {
			s.stats.syncs.Add(1)
			n := 0
			for _, st := range job.staged {
				n += len(st.ents)
			}
			s.stats.syncedEntries.Add(uint64(n))
		}
	}
	var out []*shoalpb.RaftEnvelope
	for _, st := range job.staged {
		for _, m := range st.responses {
			if m.GetTo() != st.r.id && !st.sent {
				out = append(out, &shoalpb.RaftEnvelope{ShardId: st.r.shard, Message: m})
			}
		}
	}
	s.send(out)
	s.mu.Lock()
	s.mu.synced = append(s.mu.synced, job)
	s.mu.Unlock()
	s.signal()
}

// commitBatch commits job's batch, timing it for ObserveSync if synced.
func (s *Store) commitBatch(job syncJob) error {
	if !job.sync || s.cfg.ObserveSync == nil {
		return job.b.Commit(job.sync)
	}
	start := time.Now()
	err := job.b.Commit(true)
	s.cfg.ObserveSync(time.Since(start))
	return err
}

// completeSyncs tells raft about durable writes and steps the responses
// addressed to this node (commit sent the others).
func (s *Store) completeSyncs(jobs []syncJob) {
	for _, job := range jobs {
		s.inflight = false
		for _, st := range job.staged {
			s.afterPersist(st)
			for _, m := range st.responses {
				if m.GetTo() == st.r.id {
					s.stepLocal(st.r, m)
				}
			}
		}
		clear(job.staged)
		s.freeStaged = job.staged[:0]
	}
}

// send hands messages to the transport.
func (s *Store) send(out []*shoalpb.RaftEnvelope) {
	if len(out) == 0 {
		return
	}
	s.stats.sends.Add(1)
	s.stats.messagesSent.Add(uint64(len(out)))
	s.cfg.Transport.Send(out)
}

// stepLocal steps a response raft addressed to this node. Stepping fails
// only for a replica no longer in its group (its own acknowledgement then
// has no progress to update), which is harmless.
func (s *Store) stepLocal(r *replica, m *raftpb.Message) {
	if err := r.touch().Step(m); err != nil {
		s.log.Debug("step local response", "shard", r.shard, "type", m.GetType(), "err", err)
	}
}

// afterPersist updates raft's view of the replica's storage once st is
// durable.
func (s *Store) afterPersist(st staged) {
	r := st.r
	if st.snap != nil {
		md := st.snap.GetMetadata()
		if err := r.storage.ApplySnapshot(&raftpb.Snapshot{Metadata: md}); err != nil {
			panic(fmt.Sprintf("store: apply snapshot to raft storage: %v", err))
		}
		r.storage.conf = md.GetConfState()
		r.logBytes = 0
		r.applied, r.appliedTerm = md.GetIndex(), md.GetTerm()
		for idx, id := range r.byIndex {
			if idx <= r.applied {
				delete(r.byIndex, idx)
				delete(r.inflight, id)
				s.waiters.deliver(id, result{err: ErrOutcomeUnknown})
			}
		}
		s.dirty = true
	}
	if len(st.ents) > 0 {
		if err := r.storage.Append(st.ents); err != nil {
			panic(fmt.Sprintf("store: append to raft storage: %v", err))
		}
		r.logBytes += entriesBytes(st.ents)
	}
	if st.hs != nil {
		r.storage.SetHardState(st.hs)
		r.hardState = st.hs
	}
}
