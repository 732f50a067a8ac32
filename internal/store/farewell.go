package store

import (
	"github.com/shoaldb/shoal/internal/shoalpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
	"google.golang.org/protobuf/proto"
)

// A replica removed from its group must learn that its removal committed,
// or it never applies it: it goes on counting itself a member, campaigns
// when its leader falls silent and votes for whoever asks (a replica that
// applied its removal refuses to, Store.step).
//
// etcd raft does not see to it. The leader tells followers of a commit in
// its appends and heartbeats, and stops sending any to a node as soon as
// it has applied that node's removal. The appends that announced the
// commit may have announced less: capCommit holds a follower's commit
// index to what its leader has applied, and a leader whose own append was
// slower than its followers' sees the removal committed before it can
// apply it. And a node cut off when its removal committed may never have
// received it. So the leader says farewell itself, with a heartbeat whose
// commit index covers the removal, or an append that carries it:
//   - on applying a conf change, to each node it removed, if that node
//     holds the change (its match index covers it);
//   - on an acknowledgement from a node no longer in its configuration,
//     which arrives when the node appended the change after the leader
//     had applied it;
//   - on a vote request from a node no longer in its configuration: one
//     cut off when its removal committed campaigns once the partition
//     heals, as its leader stays silent. If the leader's log holds the
//     candidate's last entry, their logs agree up to it, and the leader
//     sends the committed entries the candidate lacks (farewellCandidate).
//
// Each is built as raft builds a heartbeat or an append: in the leader's
// term, with a commit index no higher than what the follower is known to
// hold (or is sent), and sent once this node has applied that far. A node
// whose log diverges from its leader's, or lacks entries the leader has
// truncated, still does not learn: that would take a snapshot.

// matchIndexes returns, if r leads its group, the match index of each of
// its followers.
func matchIndexes(r *replica) map[uint64]uint64 {
	if r.rn.BasicStatus().RaftState != raft.StateLeader {
		return nil
	}
	match := map[uint64]uint64{}
	r.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
		match[id] = pr.Match
	})
	return match
}

// farewellRemoved says farewell to each node removed by the conf change
// that r has just applied at index, given the match indexes of r's
// followers before it (matchIndexes).
func (s *Store) farewellRemoved(r *replica, index uint64, match map[uint64]uint64) {
	if r.rn.BasicStatus().RaftState != raft.StateLeader {
		return
	}
	for id, m := range match {
		if id != r.id && m >= index && removedFrom(r.storage.conf, id) {
			s.farewell(r, id, index)
		}
	}
}

// farewellLate says farewell to the sender of m, an acknowledgement that
// raft refused because its sender is no longer in r's configuration.
func (s *Store) farewellLate(r *replica, m *raftpb.Message) {
	st := r.rn.BasicStatus()
	if m.GetType() != raftpb.MessageType_MsgAppResp || m.GetReject() ||
		st.RaftState != raft.StateLeader || m.GetTerm() != st.GetTerm() {
		return
	}
	s.farewell(r, m.GetFrom(), min(m.GetIndex(), r.applied))
}

// maxFarewellBytes bounds the entries of one farewell append; a candidate
// that lacks more gets the rest in answer to its next vote request.
const maxFarewellBytes = 1 << 20

// farewellCandidate says farewell to the sender of m, a vote request
// from a node that r's configuration no longer lists, if r leads its
// group and its log holds the candidate's last entry (index and term of
// m): with a heartbeat if the candidate holds all r has applied, else
// with an append of the applied entries it lacks.
func (s *Store) farewellCandidate(r *replica, m *raftpb.Message) {
	st := r.rn.BasicStatus()
	if st.RaftState != raft.StateLeader {
		return
	}
	last := m.GetIndex()
	if t, err := r.storage.Term(last); err != nil || t != m.GetLogTerm() {
		return
	}
	if last >= r.applied {
		s.farewell(r, m.GetFrom(), r.applied)
		return
	}
	ents, err := r.storage.Entries(last+1, r.applied+1, maxFarewellBytes)
	if err != nil || len(ents) == 0 {
		return
	}
	s.replies = append(s.replies, &shoalpb.RaftEnvelope{ShardId: r.shard, Message: &raftpb.Message{
		Type: raftpb.MessageType_MsgApp.Enum(), To: proto.Uint64(m.GetFrom()), From: proto.Uint64(r.id),
		Term: proto.Uint64(st.GetTerm()), Index: proto.Uint64(last), LogTerm: proto.Uint64(m.GetLogTerm()),
		Entries: ents, Commit: proto.Uint64(ents[len(ents)-1].GetIndex()),
	}})
}

// farewell queues a heartbeat from r telling node to that entries up to
// commit are committed; it leaves with the loop's other replies.
func (s *Store) farewell(r *replica, to, commit uint64) {
	s.replies = append(s.replies, s.heartbeat(r, to, commit))
}

// heartbeat builds a heartbeat from r, which leads its group, telling node
// to that entries up to commit are committed. commit must not exceed what
// to is known to hold, nor r's applied index once the heartbeat leaves.
func (s *Store) heartbeat(r *replica, to, commit uint64) *shoalpb.RaftEnvelope {
	return &shoalpb.RaftEnvelope{ShardId: r.shard, Message: &raftpb.Message{
		Type: raftpb.MessageType_MsgHeartbeat.Enum(), To: proto.Uint64(to), From: proto.Uint64(r.id),
		Term: proto.Uint64(r.rn.BasicStatus().GetTerm()), Commit: proto.Uint64(commit),
	}}
}
