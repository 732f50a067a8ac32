package store

import (
	"encoding/binary"
	"slices"
	"sync/atomic"
	"time"

	"github.com/shoaldb/shoal/internal/shoalpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
	"google.golang.org/protobuf/proto"
)

// Leader leases let a leader serve linearizable reads from its local state
// without a heartbeat round per read.
//
// Why it is safe. A lease starts from a raft read index: the loop notes
// the time t at which it asks raft for a read index; when the ReadState
// arrives, a quorum of voters has received a heartbeat sent after t and
// reset its election timer. With CheckQuorum, etcd raft makes a voter that
// heard from its leader less than an election timeout ago refuse to vote
// (and to pre-vote) for anyone else, and a voter starts an election of its
// own only after its election timer runs out. Ticks never come faster than
// the tick interval, so no voter of that quorum helps elect another leader
// until (ElectionTicks-1) tick intervals after t. The lease ends well
// before: leaseDuration below. Three things could let a voter vote early,
// and each is closed:
//
//   - a restarted (or new) replica has forgotten its leader: it ignores
//     vote requests until it has ticked ElectionTicks times (Store.step);
//   - a leadership transfer makes voters vote at once: the leader drops
//     its lease before it asks raft to transfer, and takes no new one
//     for the rest of that term (raft gives a transfer up after an
//     election timeout, but its MsgTimeoutNow may still arrive later and
//     start the target's election);
//   - a membership change changes the quorums: the leader drops its lease
//     and forgets lease requests in flight when it applies one.
//
// A lease also waits until the replica has applied its read index, so the
// local state holds every write committed before the lease began; every
// later write is acknowledged only after this leader applied it.
//
// Lease times are Store.clock readings: monotonic, so a step of the wall
// clock cannot stretch a lease.

// leaseDuration is how long a lease lasts from the moment its read index
// was requested: two ticks short of the election timeout, less 10% for
// clock rate differences between nodes.
func (c *Config) leaseDuration() time.Duration {
	return c.TickInterval * time.Duration(c.ElectionTicks-2) * 9 / 10
}

// lease is a leader's read lease, shared between the loop (which extends
// and drops it) and request goroutines (which check it).
type lease struct {
	until atomic.Int64 // Store.clock reading before which reads may be local; 0: none
	used  atomic.Bool  // a read used the lease since the loop last renewed it
}

// valid reports whether a linearizable read may be served locally at now.
func (l *lease) valid(now int64) bool { return now < l.until.Load() }

// clock returns nanoseconds since the store was created, on the monotonic
// clock when Config.Now provides one; never 0.
func (s *Store) clock() int64 { return int64(s.cfg.Now().Sub(s.epoch)) + 1 }

func (l *lease) drop() { l.until.Store(0) }

// LeaseRead reports whether this node holds a read lease on ri's shard: a
// linearizable read of the shard may then be served from local state
// without a read index. The caller must read after the call returns.
func (s *Store) LeaseRead(ri ReplicaInfo) bool {
	if ri.lease == nil || !ri.lease.valid(s.clock()) {
		return false
	}
	ri.lease.used.Store(true)
	return true
}

// dropLease ends r's lease and voids lease requests in flight: their
// acknowledgements were counted under a quorum that may no longer hold.
func (r *replica) dropLease() {
	r.lease.drop()
	for id, b := range r.readIndexes {
		b.at = 0
		r.readIndexes[id] = b
	}
	r.leasePending = 0
}

// extendLease is called when the read index of batch b has arrived at
// index: once index is applied, the lease runs until b.at plus the lease
// duration.
func (s *Store) extendLease(r *replica, b readBatch, index uint64) {
	if b.at == 0 || s.cfg.DisableLeases || !r.isLeader() {
		return
	}
	if st := r.rn.BasicStatus(); st.LeadTransferee != 0 || st.GetTerm() == r.transferTerm {
		return
	}
	until := b.at + int64(s.cfg.leaseDuration())
	if s.cfg.Testing.LongLeases {
		until += int64(10 * s.cfg.leaseDuration())
	}
	if until <= max(r.leasePending, r.lease.until.Load()) {
		return
	}
	r.leasePending, r.leaseIndex = until, index
}

// publishLease makes a pending extension visible once its read index is
// applied.
func (r *replica) publishLease() {
	if r.leasePending != 0 && r.applied >= r.leaseIndex {
		r.lease.until.Store(r.leasePending)
		r.leasePending = 0
	}
}

// renewLeases queues a lease renewal (a read index with no reads) for each
// leader whose lease was used since the last renewal and runs out within
// half a lease. Called on ticks.
func (s *Store) renewLeases() {
	now := s.clock()
	half := int64(s.cfg.leaseDuration() / 2)
	for _, r := range s.order {
		if !r.isLeader() || r.renewing || r.lease.until.Load()-now > half || !r.lease.used.Swap(false) {
			continue
		}
		r.renewing = true
		if len(r.readQueue) == 0 {
			s.reading = append(s.reading, r)
		}
	}
}

// answerUnderLease answers m, a follower's read index request that r's
// raft would confirm with a heartbeat round, at once with r's applied
// index if r leads under a valid lease; the follower's reads wait until
// it has applied that index itself. It reports whether it answered; if
// not, raft handles m. The index is high enough: no other leader can
// have been elected, and this one acknowledges a write only once it has
// applied it. It is not too high for any state served before: a
// follower learns of a commit only once its leader has applied it
// (capCommit), so no replica's state is ahead of the leader's applied
// index.
//
// A follower may not know yet that the entries up to that index are
// committed (capCommit and holdCommit keep it back until the next append
// or tick), so a heartbeat telling it leaves with the answer, built as
// raft builds them: with a commit index no higher than what the follower
// is known to hold.
func (s *Store) answerUnderLease(r *replica, m *raftpb.Message) bool {
	if s.cfg.DisableLeases || len(m.GetEntries()) != 1 ||
		!r.lease.valid(s.clock()) && !s.cfg.Testing.AnswerWithoutLease {
		return false
	}
	st := r.rn.BasicStatus()
	if st.RaftState != raft.StateLeader || st.GetTerm() != r.term || st.LeadTransferee != 0 {
		return false // raft stepped down in this cycle's steps, or is handing over
	}
	r.lease.used.Store(true)
	s.stats.leaseAnswers.Add(1)
	// The answer carries this leader's clock reading after the request's
	// context: the follower judges expiry by it, as this leader would.
	ctx := binary.BigEndian.AppendUint64(slices.Clip(m.GetEntries()[0].GetData()), uint64(s.cfg.Now().UnixMilli()))
	s.replies = append(s.replies, &shoalpb.RaftEnvelope{ShardId: r.shard, Message: &raftpb.Message{
		Type: raftpb.MessageType_MsgReadIndexResp.Enum(), To: proto.Uint64(m.GetFrom()), From: proto.Uint64(r.id),
		Term: proto.Uint64(st.GetTerm()), Index: proto.Uint64(r.applied), Entries: []*raftpb.Entry{{Data: ctx}},
	}})
	var match uint64
	r.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
		if id == m.GetFrom() {
			match = pr.Match
		}
	})
	s.replies = append(s.replies, s.heartbeat(r, m.GetFrom(), min(match, r.applied)))
	return true
}
