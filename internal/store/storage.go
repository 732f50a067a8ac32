package store

import (
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/shoaldb/shoal/internal/engine"
	"github.com/shoaldb/shoal/internal/keys"
	"github.com/shoaldb/shoal/internal/shoalpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// raftStorage is raft's view of a replica's log: an in-memory copy of the
// untruncated log (persisted in Pebble by the loop) plus snapshots built on
// demand from the replica's span in Pebble.
type raftStorage struct {
	*raft.MemoryStorage
	eng   *engine.Engine
	shard uint64
	conf  *raftpb.ConfState // conf state as of the applied index
	// builds, if set, builds snapshots off the loop (Config.SnapshotsInLoop).
	builds *sync.WaitGroup
	snap   struct {
		sync.Mutex
		building bool
		ready    *raftpb.Snapshot // built, not yet handed to raft
	}
}

// entriesBytes is the bytes of entry data of ents.
func entriesBytes(ents []*raftpb.Entry) int64 {
	var n int64
	for _, e := range ents {
		n += int64(len(e.GetData()))
	}
	return n
}

// bytesFrom returns the bytes of entry data in the log from index lo on.
func (s *raftStorage) bytesFrom(lo uint64) int64 {
	first, _ := s.FirstIndex()
	last, _ := s.LastIndex()
	ents, err := s.Entries(max(lo, first), last+1, math.MaxUint64)
	if err != nil {
		return 0
	}
	return entriesBytes(ents)
}

// keepBytes returns, for each of two limits (tail <= keep), the highest
// index i in [first-1, applied] such that the entries after it, up to
// applied, hold at most that many bytes of data: dropping the log up to i
// keeps at most that much of the applied entries. One pass serves both.
func (s *raftStorage) keepBytes(first, applied uint64, tail, keep int64) (tailTo, keepTo uint64) {
	tailTo, keepTo = first-1, first-1
	if applied < first {
		return tailTo, keepTo
	}
	ents, err := s.Entries(first, applied+1, math.MaxUint64)
	if err != nil {
		return tailTo, keepTo
	}
	var n int64
	for i := len(ents) - 1; i >= 0; i-- {
		n += int64(len(ents[i].GetData()))
		if n > tail && tailTo == first-1 {
			tailTo = ents[i].GetIndex()
		}
		if n > keep {
			keepTo = ents[i].GetIndex()
			break
		}
	}
	return tailTo, keepTo
}

// InitialState returns the persisted hard state and the conf state as of
// the applied index (raft is started with Config.Applied at that index).
func (s *raftStorage) InitialState() (*raftpb.HardState, *raftpb.ConfState, error) {
	hs, _, err := s.MemoryStorage.InitialState()
	if err != nil {
		return nil, nil, err
	}
	return hs, proto.Clone(s.conf).(*raftpb.ConfState), nil
}

// snapshotKeep is how long a snapshot built off the loop waits for raft
// to ask for it again.
const snapshotKeep = time.Minute

// Snapshot builds a snapshot of the replica at its applied index from a
// consistent Pebble snapshot: applied state and data are written in one
// batch, so they always agree.
//
// Off the loop (builds set), the first call takes the Pebble snapshot,
// has a goroutine copy it, and tells raft to ask again; raft does at the
// follower's next heartbeat response, and gets the copy if the log still
// goes on from it (else it is built again). A copy is handed out once: the
// message holding it is all that keeps it in memory.
func (s *raftStorage) Snapshot() (*raftpb.Snapshot, error) {
	if s.builds == nil {
		snap := s.eng.NewSnapshot()
		defer snap.Close()
		return buildSnapshot(snap, s.shard)
	}
	s.snap.Lock()
	defer s.snap.Unlock()
	if ready := s.snap.ready; ready != nil {
		s.snap.ready = nil
		if first, _ := s.FirstIndex(); ready.GetMetadata().GetIndex()+1 >= first {
			return ready, nil
		}
	}
	if !s.snap.building {
		s.snap.building = true
		psnap := s.eng.NewSnapshot()
		s.builds.Add(1)
		go func() {
			defer s.builds.Done()
			snap, err := buildSnapshot(psnap, s.shard)
			psnap.Close()
			s.snap.Lock()
			defer s.snap.Unlock()
			s.snap.building = false
			if err == nil {
				s.snap.ready = snap
				// Raft may not ask again (the follower caught up from
				// the log, or left): the copy is not kept for long.
				time.AfterFunc(snapshotKeep, func() {
					s.snap.Lock()
					defer s.snap.Unlock()
					if s.snap.ready == snap {
						s.snap.ready = nil
					}
				})
			}
		}()
	}
	return nil, raft.ErrSnapshotTemporarilyUnavailable
}

func buildSnapshot(r reader, shard uint64) (*raftpb.Snapshot, error) {
	var as shoalpb.AppliedState
	if err := getProto(r, keys.AppliedState(shard), &as); err != nil {
		return nil, err
	}
	var desc shoalpb.ShardDescriptor
	if err := getProto(r, keys.Descriptor(shard), &desc); err != nil {
		return nil, err
	}
	lo, hi := descSpan(&desc)
	b, err := appendSnapshotData(nil, &desc, func(fn func(k, v []byte) bool) error { return r.Iterate(lo, hi, fn) })
	if err != nil {
		return nil, err
	}
	return &raftpb.Snapshot{
		Data: b,
		Metadata: &raftpb.SnapshotMetadata{
			Index:     proto.Uint64(as.GetIndex()),
			Term:      proto.Uint64(as.GetTerm()),
			ConfState: as.GetConfState(),
		},
	}, nil
}

// descSpan is the Pebble span holding a shard's state machine data.
func descSpan(d *shoalpb.ShardDescriptor) (lo, hi []byte) {
	if d.GetMeta() {
		return keys.MetaSpan()
	}
	return keys.SlotSpan(int(d.GetFirstSlot()), int(d.GetLastSlot()))
}

type reader interface {
	Get(key []byte) ([]byte, bool, error)
	Iterate(lo, hi []byte, fn func(k, v []byte) bool) error
}

type writer interface {
	Set(key, value []byte) error
}

func getProto(r reader, key []byte, m proto.Message) error {
	v, ok, err := r.Get(key)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("store: missing %x", key)
	}
	return proto.Unmarshal(v, m)
}

// putProto is setProto for the loop: it encodes m in the loop's scratch
// buffer instead of a new one for each write.
func (s *Store) putProto(w writer, key []byte, m proto.Message) {
	s.scratch = appendSetProto(w, key, m, s.scratch[:0])
	if cap(s.scratch) > 1<<20 {
		s.scratch = nil // a large entry's buffer is not kept for good
	}
}

func setProto(w writer, key []byte, m proto.Message) { appendSetProto(w, key, m, nil) }

// appendSetProto encodes m after buf and writes it under key; it returns
// the grown buffer, which w does not keep (batches copy what they get).
func appendSetProto(w writer, key []byte, m proto.Message, buf []byte) []byte {
	buf, err := proto.MarshalOptions{}.MarshalAppend(buf, m)
	if err != nil {
		panic(fmt.Sprintf("store: marshal %T: %v", m, err))
	}
	if err := w.Set(key, buf); err != nil {
		panic(fmt.Sprintf("store: batch set: %v", err))
	}
	return buf
}
