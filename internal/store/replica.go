package store

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/shoaldb/shoal/internal/engine"
	"github.com/shoaldb/shoal/internal/keys"
	"github.com/shoaldb/shoal/internal/shoalpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Bootstrap raft state of a newly created shard: its log starts after a
// fictitious snapshot at this index and term, so a replica added later
// always receives a snapshot first (it has no entries before it).
const (
	initialIndex = 10
	initialTerm  = 5
)

// replica is one shard's raft group member on this node. Owned by the loop.
type replica struct {
	shard   uint64
	id      uint64 // raft id of this replica (internal/replicaid)
	removed bool   // applied its own removal: removeReplica after the apply
	// gone is set by removeReplica before the replica's data is deleted,
	// for readers of the data outside the loop (ReplicaInfo.Removed).
	gone       atomic.Bool
	appliedKey []byte                   // keys.AppliedState(shard), written by every apply
	desc       *shoalpb.ShardDescriptor // nil until initialized by a snapshot
	rn         *raft.RawNode
	storage    *raftStorage
	// active: rn may have a Ready. Set by every call that can change
	// raft's state (touch; reads such as Status need not) and cleared by
	// the loop once rn has none, so a cycle asks only the replicas it
	// touched for a Ready, not every replica of the node.
	active bool

	hardState   *raftpb.HardState
	applied     uint64
	appliedTerm uint64
	lead        uint64
	term        uint64
	state       raft.StateType

	// inflight holds ids of proposals made here and not yet resolved, with
	// the log index each was appended at (0 until the Ready that carries
	// it). byIndex maps such indexes back to ids: when another entry is
	// applied at a proposal's index, the proposal was overwritten by a new
	// leader and is known not to have been applied.
	inflight map[uint64]uint64
	byIndex  map[uint64]uint64
	// unlocated holds the ids of proposals handed to raft since the
	// replica's last Ready, which must carry their entries (dropUnlocated).
	unlocated []uint64
	// queued holds the proposals made in this cycle's requests, handed to
	// raft together once the requests have run (proposeQueued).
	queued []queuedProposal
	// heldCommits holds, per follower, the last append this leader made
	// that carries no entries, only the commit index (holdCommit).
	heldCommits []*raftpb.Message
	// readQueue holds ids of ReadIndex requests that arrived since the
	// last cycle: the loop asks raft for one read index for all of them
	// (one heartbeat round per shard and cycle, not one per request).
	// readIndexes maps the id of each such raft request to the ids it
	// covers, until its ReadState arrives; reads holds those waiting for
	// their read index to be applied.
	readQueue   []uint64
	readIndexes map[uint64]readBatch
	reads       []pendingRead

	// lease is this replica's read lease (lease.go). leasePending, if set,
	// is a later lease end waiting for leaseIndex to be applied before it
	// is published. renewing: a renewal is queued. ticks counts ticks
	// since the replica was loaded, up to ElectionTicks: until then it
	// ignores vote requests.
	lease        *lease
	leasePending int64
	leaseIndex   uint64
	renewing     bool
	ticks        int
	// transferTerm is the last term in which this replica asked raft to
	// hand its leadership over: it takes no lease in that term again.
	transferTerm uint64
	// confIndexes are the log indexes of conf change entries staged for
	// persistence and not yet known, on disk, to be committed (stage).
	confIndexes []uint64
	// lastIndex is the index of the last log entry staged for persistence
	// (durable or not); ready.go deletes a replaced suffix beyond it.
	lastIndex uint64
	// logBytes approximates the bytes of entry data in the in-memory log:
	// added to as entries are appended, counted again after each
	// compaction (entries a new leader overwrote are counted until then).
	logBytes int64
	// truncateTo, if set, is the index up to which the in-memory log is
	// compacted once the applied batch holding the truncation commits.
	truncateTo uint64
	// truncProposed is the index of the last truncation this replica
	// proposed while leading (maybeTruncate); none is proposed while the
	// log still holds it. Reset when leadership changes.
	truncProposed uint64
}

// track records a proposal made on this replica.
func (r *replica) track(id uint64) {
	if r.inflight == nil {
		r.inflight = make(map[uint64]uint64)
		r.byIndex = make(map[uint64]uint64)
	}
	r.inflight[id] = 0
	r.unlocated = append(r.unlocated, id)
}

// dropUnlocated fails the proposals handed to raft since the previous
// Ready that this Ready carried nowhere. Raft appends a leader's proposal
// to its unstable log at once (it forwards none: the replica runs with
// DisableProposalForwarding) and puts it in appends to the followers at
// once; a Ready hands out every unstable entry and every such append. So
// a proposal that is neither in the Ready's entries to persist nor in an
// append it sends (handleReady locates both) was replaced before it left
// this node: by a new leader's conflicting append or snapshot stepped in
// the same cycle, or, for a refused membership change, by an empty entry.
// No other node has it; it will never apply. Without this its client
// would wait until its deadline. A proposal that did leave in an append
// is located by its index and resolved when that index applies, as
// itself or as another entry: the append may reach a node that later
// leads and commits it.
func (r *replica) dropUnlocated(deliver func(id uint64)) {
	for _, id := range r.unlocated {
		if idx, ok := r.inflight[id]; ok && idx == 0 {
			delete(r.inflight, id)
			deliver(id)
		}
	}
	r.unlocated = r.unlocated[:0]
}

// queuedProposal is a proposal waiting to be handed to raft: the request
// id and the entry data.
type queuedProposal struct {
	id   uint64
	data []byte
}

// holdCommit decides whether to keep back m, a message this replica's raft
// wants sent. A leader sends each follower an append without entries
// whenever its commit index moves, and the follower answers it: under load
// that doubles the messages of every write, to tell followers what the
// next append, a heartbeat or the next tick tells them anyway. Such an
// append is held, replacing one held for the same follower; any later
// append with entries to that follower carries a newer commit index and
// discards it; what is still held at the next tick is sent (takeHeld).
// Dropping or delaying a message is always safe in raft, and a follower's
// commit index only decides how soon it applies; the leader answers
// clients and serves reads by itself. It reports whether m was held.
func (r *replica) holdCommit(m *raftpb.Message) bool {
	if m.GetType() != raftpb.MessageType_MsgApp {
		return false
	}
	empty := len(m.GetEntries()) == 0
	for i, h := range r.heldCommits {
		if h.GetTo() != m.GetTo() {
			continue
		}
		if empty {
			r.heldCommits[i] = m
			return true
		}
		r.heldCommits = slices.Delete(r.heldCommits, i, i+1)
		return false
	}
	if empty {
		r.heldCommits = append(r.heldCommits, m)
	}
	return empty
}

// takeHeld returns the held commit appends and forgets them.
func (r *replica) takeHeld() []*raftpb.Message {
	held := r.heldCommits
	r.heldCommits = nil
	return held
}

// locate records the log indexes of this replica's own proposals among
// entries about to be persisted.
func (r *replica) locate(ents []*raftpb.Entry) {
	if len(r.inflight) == 0 {
		return
	}
	for _, e := range ents {
		id, ok := entryID(e)
		if !ok {
			continue
		}
		if idx, mine := r.inflight[id]; mine && idx == 0 {
			r.inflight[id] = e.GetIndex()
			r.byIndex[e.GetIndex()] = id
		}
	}
}

// resolve is called for each applied entry: it returns the id of this
// replica's proposal at that index, if any, and whether it is the entry
// itself (applied) or was overwritten (dropped).
func (r *replica) resolve(e *raftpb.Entry) (id uint64, applied, found bool) {
	want, ok := r.byIndex[e.GetIndex()]
	if !ok {
		return 0, false, false
	}
	delete(r.byIndex, e.GetIndex())
	delete(r.inflight, want)
	got, _ := entryID(e)
	return want, got == want, true
}

// readBatch is one raft read index request: the reads it covers, when it
// was asked (Store.clock readings: at is 0 if the answer may not extend
// the lease), and whether a follower asked it (of its leader).
type readBatch struct {
	ids      []uint64
	at       int64
	asked    int64
	follower bool
}

// pendingRead is a read whose read index is known, waiting until the
// replica has applied it. A follower's carries the leader's clock reading
// (ms) from the lease answer, and when it was asked; a leader's has 0.
type pendingRead struct {
	id    uint64
	index uint64
	nowMs int64
	asked int64
}

func (r *replica) initialized() bool { return r.desc != nil }

func (r *replica) isLeader() bool { return r.state == raft.StateLeader }

// WriteBootstrap writes the initial state of a new shard whose voters are
// voters into b. The shard's data, if any, is written by the caller into
// the same batch.
func WriteBootstrap(b *engine.Batch, desc *shoalpb.ShardDescriptor, voters []uint64) {
	id := desc.GetId()
	setProto(b, keys.Descriptor(id), desc)
	setProto(b, keys.HardState(id), &raftpb.HardState{
		Term: proto.Uint64(initialTerm), Commit: proto.Uint64(initialIndex), Vote: proto.Uint64(0),
	})
	setProto(b, keys.AppliedState(id), &shoalpb.AppliedState{
		Index: initialIndex, Term: initialTerm, ConfState: &raftpb.ConfState{Voters: voters},
	})
	setProto(b, keys.TruncatedState(id), &shoalpb.TruncatedState{Index: initialIndex, Term: initialTerm})
}

// loadReplica reads a replica's persisted state and builds its RawNode.
func (s *Store) loadReplica(shard uint64) (*replica, error) {
	r := &replica{shard: shard, appliedKey: keys.AppliedState(shard), lease: &lease{}}
	var desc shoalpb.ShardDescriptor
	if err := getProto(s.eng, keys.Descriptor(shard), &desc); err != nil {
		return nil, err
	}
	r.desc = &desc
	var hs raftpb.HardState
	if err := getProto(s.eng, keys.HardState(shard), &hs); err != nil {
		return nil, err
	}
	var as shoalpb.AppliedState
	if err := getProto(s.eng, keys.AppliedState(shard), &as); err != nil {
		return nil, err
	}
	var ts shoalpb.TruncatedState
	if err := getProto(s.eng, keys.TruncatedState(shard), &ts); err != nil {
		return nil, err
	}
	ms := raft.NewMemoryStorage()
	if err := ms.ApplySnapshot(&raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{
		Index: proto.Uint64(ts.GetIndex()), Term: proto.Uint64(ts.GetTerm()), ConfState: as.GetConfState(),
	}}); err != nil {
		return nil, err
	}
	var ents []*raftpb.Entry
	lo, hi := keys.LogSpan(shard)
	var decodeErr error
	err := s.eng.Iterate(lo, hi, func(k, v []byte) bool {
		e := &raftpb.Entry{}
		if decodeErr = proto.Unmarshal(v, e); decodeErr != nil {
			return false
		}
		if e.GetIndex() > ts.GetIndex() {
			ents = append(ents, e)
		}
		return true
	})
	if err == nil {
		err = decodeErr
	}
	if err != nil {
		return nil, fmt.Errorf("store: load log of shard %d: %w", shard, err)
	}
	if err := ms.Append(ents); err != nil {
		return nil, err
	}
	r.logBytes = entriesBytes(ents)
	if as.GetIndex() > hs.GetCommit() {
		// The hard state on disk carries the commit index of its last
		// term or vote change only (stage, in ready.go). Applied entries
		// were committed, so the commit index is at least the applied one.
		hs.Commit = proto.Uint64(as.GetIndex())
	}
	if err := ms.SetHardState(&hs); err != nil {
		return nil, err
	}
	r.hardState = &hs
	for _, e := range ents {
		r.noteConfChange(e, hs.GetCommit())
	}
	r.applied, r.appliedTerm = as.GetIndex(), as.GetTerm()
	r.storage = &raftStorage{MemoryStorage: ms, eng: s.eng, shard: shard, conf: as.GetConfState(), builds: s.snapshotBuilds()}
	if r.id, err = s.localReplicaID(shard); err != nil {
		return nil, err
	}
	r.lastIndex, _ = ms.LastIndex()
	return r, s.startRawNode(r)
}

// newUninitializedReplica creates an empty replica for a shard this node
// was added to; the leader will send it a snapshot. It starts from the
// term and vote an earlier empty replica of the shard made durable: a
// replica without a descriptor is not loaded when the node restarts, but
// the vote it gave must outlive the restart, or it could vote twice in a
// term and let two leaders win it.
//
// The hard state is the one of replica id only: a replica of the shard
// that this node had before (an earlier incarnation, removed) voted as
// another raft member. The id is written with the next raft writes, so
// that a hard state on disk always belongs to the id beside it.
func (s *Store) newUninitializedReplica(shard, id uint64) (*replica, error) {
	ms := raft.NewMemoryStorage()
	hs := &raftpb.HardState{}
	prev, err := s.localReplicaID(shard)
	if err != nil {
		return nil, err
	}
	if v, ok, err := s.eng.Get(keys.HardState(shard)); err != nil {
		return nil, err
	} else if ok && prev == id {
		if err := proto.Unmarshal(v, hs); err != nil {
			return nil, fmt.Errorf("store: hard state of shard %d: %w", shard, err)
		}
		// The log is empty: nothing is known to be committed.
		hs.Commit = proto.Uint64(0)
		if err := ms.SetHardState(hs); err != nil {
			return nil, err
		}
	}
	r := &replica{shard: shard, id: id, appliedKey: keys.AppliedState(shard), hardState: hs, lease: &lease{}}
	r.storage = &raftStorage{MemoryStorage: ms, eng: s.eng, shard: shard, conf: &raftpb.ConfState{}, builds: s.snapshotBuilds()}
	if prev != id {
		// Staged, so that it follows the removal of the earlier replica
		// (removeReplica) and precedes any hard state of this one.
		b := s.pendingBatch()
		b.Delete(keys.HardState(shard))
		b.Set(keys.LocalReplicaID(shard), binary.BigEndian.AppendUint64(nil, id))
		s.pendingStaged = append(s.pendingStaged, staged{r: r})
		s.pendingSync = true
	}
	return r, s.startRawNode(r)
}

func (s *Store) startRawNode(r *replica) error {
	rn, err := raft.NewRawNode(&raft.Config{
		ID:              r.id,
		ElectionTick:    s.cfg.ElectionTicks,
		HeartbeatTick:   s.cfg.HeartbeatTicks,
		Storage:         r.storage,
		Applied:         r.applied,
		MaxSizePerMsg:   1 << 20,
		MaxInflightMsgs: 256,
		// Bound memory held by proposals the leader cannot commit (e.g.
		// while it has lost its quorum).
		MaxUncommittedEntriesSize: 64 << 20,
		// And memory held by appends a follower has not acknowledged
		// (kept in the transport's queues until sent).
		MaxInflightBytes: 64 << 20,
		CheckQuorum:      true,
		PreVote:          true,
		// A leader removed from its group stops leading at once instead
		// of going on until it notices it has no quorum.
		StepDownOnRemoval: true,
		// A proposal stepped at a replica that has just stopped leading
		// fails (ErrBusy, retried by the caller) instead of going to the
		// leader, where this node could not follow it to its log index
		// (dropUnlocated).
		DisableProposalForwarding: true,
		// The loop stages writes and applies without waiting for the
		// disk (ready.go).
		AsyncStorageWrites: true,
		Logger:             &raftLogger{l: s.log.With("shard", r.shard)},
	})
	if err != nil {
		return fmt.Errorf("store: start raft for shard %d: %w", r.shard, err)
	}
	r.rn = rn
	return nil
}

// touch records that rn is about to be called and may then have a Ready.
// Every call that can change raft's state goes through it (cycle clears
// the mark); TestingKnobs.CheckActive checks that none is missed.
func (r *replica) touch() *raft.RawNode {
	r.active = true
	return r.rn
}

// noteConfChange records e's index if it is a conf change above commit,
// the commit index known on disk.
func (r *replica) noteConfChange(e *raftpb.Entry, commit uint64) {
	switch e.GetType() {
	case raftpb.EntryType_EntryConfChange, raftpb.EntryType_EntryConfChangeV2:
		if e.GetIndex() > commit {
			r.confIndexes = append(r.confIndexes, e.GetIndex())
		}
	}
}

// commitsConfChange reports whether commit covers a conf change entry
// whose commit is not on disk yet, and forgets those it covers: the
// caller writes the hard state.
func (r *replica) commitsConfChange(commit uint64) bool {
	n := 0
	for n < len(r.confIndexes) && r.confIndexes[n] <= commit {
		n++
	}
	r.confIndexes = r.confIndexes[n:]
	return n > 0
}

// localReplicaID returns the raft id of this node's replica of shard, as
// written when the replica was created; a replica created before replica
// ids existed (or with its shard) has its node's id.
func (s *Store) localReplicaID(shard uint64) (uint64, error) {
	v, ok, err := s.eng.Get(keys.LocalReplicaID(shard))
	if err != nil {
		return 0, err
	}
	if !ok || len(v) != 8 {
		return s.cfg.NodeID, nil
	}
	return binary.BigEndian.Uint64(v), nil
}

// tombstone returns the raft id of the last replica of shard this node
// removed, or 0.
func (s *Store) tombstone(shard uint64) (uint64, error) {
	if id, ok := s.tombstones[shard]; ok {
		return id, nil // its batch may not have committed yet
	}
	v, ok, err := s.eng.Get(keys.Tombstone(shard))
	if err != nil || !ok || len(v) != 8 {
		return 0, err
	}
	return binary.BigEndian.Uint64(v), nil
}

// snapshotBuilds returns the wait group of the goroutines that build
// snapshots, or nil if they are built in the loop.
func (s *Store) snapshotBuilds() *sync.WaitGroup {
	if s.cfg.SnapshotsInLoop {
		return nil
	}
	return &s.snapBuilds
}
