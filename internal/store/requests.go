package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/shoaldb/shoal/internal/engine"
	"github.com/shoaldb/shoal/internal/replicaid"
	"github.com/shoaldb/shoal/internal/resp"
	"github.com/shoaldb/shoal/internal/shoalpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

type result struct {
	val   resp.Value
	err   error
	index uint64
}

// waiters is the registry of requests waiting for the loop, keyed by id.
type waiters struct {
	mu sync.Mutex
	m  map[uint64]chan result
}

func (w *waiters) register(id uint64) chan result {
	ch := make(chan result, 1)
	w.mu.Lock()
	w.m[id] = ch
	w.mu.Unlock()
	return ch
}

func (w *waiters) unregister(id uint64) {
	w.mu.Lock()
	delete(w.m, id)
	w.mu.Unlock()
}

func (w *waiters) deliver(id uint64, res result) {
	w.mu.Lock()
	ch := w.m[id]
	delete(w.m, id)
	w.mu.Unlock()
	if ch != nil {
		ch <- res
	}
}

func (w *waiters) failAll(err error) {
	w.mu.Lock()
	m := w.m
	w.m = make(map[uint64]chan result)
	w.mu.Unlock()
	for _, ch := range m {
		ch <- result{err: err}
	}
}

// Pending is a request handed to the loop whose result has not been
// taken yet.
type Pending struct {
	s  *Store
	id uint64
	ch chan result
}

// start registers a new request, runs begin on the loop, and returns it
// without waiting. begin failing completes the request with its error.
func (s *Store) start(begin func(id uint64) error) *Pending {
	id := s.nextID.Add(1)
	p := &Pending{s: s, id: id, ch: s.waiters.register(id)}
	s.submit(func() {
		if err := begin(id); err != nil {
			s.waiters.deliver(id, result{err: err})
		}
	})
	return p
}

// Wait waits for the result. It gives up when ctx ends or the store stops.
func (p *Pending) Wait(ctx context.Context) (resp.Value, error) {
	defer p.s.waiters.unregister(p.id)
	select {
	case res := <-p.ch:
		return res.val, res.err
	case <-ctx.Done():
		return resp.Value{}, ctx.Err()
	case <-p.s.stopc:
		return resp.Value{}, ErrStopped
	}
}

// Poll returns the result if it has arrived, without waiting.
func (p *Pending) Poll() (v resp.Value, err error, done bool) {
	select {
	case res := <-p.ch:
		p.s.waiters.unregister(p.id)
		return res.val, res.err, true
	default:
		return resp.Value{}, nil, false
	}
}

// leaderReplica returns shard's replica if this node leads it.
func (s *Store) leaderReplica(shard uint64) (*replica, error) {
	r := s.replicas[shard]
	if r == nil || !r.initialized() {
		return nil, ErrUnknownShard
	}
	if !r.isLeader() {
		return nil, &NotLeaderError{Shard: shard, Leader: replicaid.Node(r.lead)}
	}
	return r, nil
}

// Propose replicates a command on shard, which this node must lead, and
// returns the reply of applying it once it is committed and applied here.
// The proposer fixes the time and a random seed in the entry.
func (s *Store) Propose(ctx context.Context, shard uint64, args [][]byte) (resp.Value, error) {
	return s.StartPropose(shard, args).Wait(ctx)
}

// StartPropose is Propose without waiting.
func (s *Store) StartPropose(shard uint64, args [][]byte) *Pending {
	if n := argsSize(args); n > s.cfg.MaxEntryBytes {
		return s.start(func(uint64) error {
			return fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, n, s.cfg.MaxEntryBytes)
		})
	}
	return s.start(func(id uint64) error {
		r, err := s.leaderReplica(shard)
		if err != nil {
			return err
		}
		// Entry data is the request id, then the command, so the loop
		// can find its own proposals without decoding them.
		cmd := &shoalpb.Command{Id: id, NowMs: s.cfg.Now().UnixMilli(), Rand: s.cfg.Rand.Uint64(), Args: args,
			MaxValueLen: s.cfg.MaxValueLen()}
		data, err := proto.MarshalOptions{}.MarshalAppend(idBytes(id), cmd)
		if err != nil {
			return err
		}
		if s.cfg.Testing.AckBeforeCommit {
			if err := r.touch().Propose(data); err != nil {
				return proposeErr(err)
			}
			s.stats.proposals.Add(1)
			// The planted bug: answer with the effect on the leader's
			// current state, before the entry is committed.
			b := s.eng.NewBatch()
			val, err := s.cfg.StateMachine.Apply(b, r.desc, cmd)
			b.Close()
			s.waiters.deliver(id, result{val: val, err: err})
			return nil
		}
		if len(r.queued) == 0 {
			s.proposing = append(s.proposing, r)
		}
		r.queued = append(r.queued, queuedProposal{id: id, data: data})
		return nil
	})
}

// argsSize is the bytes of a command's arguments.
func argsSize(args [][]byte) int {
	n := 0
	for _, a := range args {
		n += len(a)
	}
	return n
}

// maxProposalBatch bounds the entry bytes handed to raft in one message;
// raft splits its appends at the same size (MaxSizePerMsg).
const maxProposalBatch = 1 << 20

// proposeQueued hands each replica's proposals of this cycle to raft, as
// few messages as possible. Raft sends each follower one append per
// proposal message, so proposals from many clients of one shard reach a
// follower together and are acknowledged together, instead of costing an
// append and a response each. It runs right after the cycle's requests,
// so nothing has changed leadership since they were checked, except a
// request of the same cycle; that is checked again here.
func (s *Store) proposeQueued() {
	for _, r := range s.proposing {
		queued := r.queued
		r.queued = nil
		for len(queued) > 0 {
			n, size := 1, len(queued[0].data)
			for n < len(queued) && size+len(queued[n].data) <= maxProposalBatch {
				size += len(queued[n].data)
				n++
			}
			batch := queued[:n]
			queued = queued[n:]
			err := s.proposeBatch(r, batch)
			for _, p := range batch {
				if err != nil {
					s.waiters.deliver(p.id, result{err: err})
				} else {
					r.track(p.id)
				}
			}
		}
	}
	s.proposing = s.proposing[:0]
}

// proposeBatch appends proposals to r's raft log in one message.
func (s *Store) proposeBatch(r *replica, batch []queuedProposal) error {
	if s.replicas[r.shard] != r {
		return ErrUnknownShard
	}
	if !r.isLeader() {
		return &NotLeaderError{Shard: r.shard, Leader: replicaid.Node(r.lead)}
	}
	ents, backing := make([]*raftpb.Entry, len(batch)), make([]raftpb.Entry, len(batch))
	for i, p := range batch {
		backing[i].Data = p.data
		ents[i] = &backing[i]
	}
	if err := r.touch().Step(&raftpb.Message{Type: raftpb.MessageType_MsgProp.Enum(), From: proto.Uint64(r.id), Entries: ents}); err != nil {
		return proposeErr(err)
	}
	s.stats.proposals.Add(uint64(len(batch)))
	return nil
}

func proposeErr(err error) error {
	if errors.Is(err, raft.ErrProposalDropped) {
		return ErrBusy
	}
	return err
}

// ReadIndex returns once a read of shard's local data is linearizable:
// the shard's leader (this node or another) confirmed its leadership after
// the call, and this replica has applied everything that leader had
// applied then. At a follower it returns the leader's clock reading (ms)
// when it answered, by which the read must judge expiry as the leader
// would (0 at the leader: its own clock is the one). It fails with a
// NotLeaderError when this replica knows no leader, loses it before the
// answer comes, or cannot serve the read (the leader answered without a
// clock reading, or the replica did not catch up in time): the read must
// then go to the leader.
func (s *Store) ReadIndex(ctx context.Context, shard uint64) (nowMs int64, err error) {
	v, err := s.StartReadIndex(shard).Wait(ctx)
	return v.Int, err
}

// StartReadIndex is ReadIndex without waiting.
func (s *Store) StartReadIndex(shard uint64) *Pending {
	return s.start(func(id uint64) error {
		if s.cfg.Testing.ReadsWithoutQuorum {
			if r := s.replicas[shard]; r != nil && r.initialized() {
				s.waiters.deliver(id, result{})
				return nil
			}
		}
		r := s.replicas[shard]
		if r == nil || !r.initialized() {
			return ErrUnknownShard
		}
		if r.lead == 0 {
			return &NotLeaderError{Shard: shard}
		}
		if len(r.readQueue) == 0 {
			s.reading = append(s.reading, r)
		}
		r.readQueue = append(r.readQueue, id)
		return nil
	})
}

// ChangeReplicas proposes a membership change of shard, which this node
// must lead, and returns once it is applied here. Each change names a
// node (NodeId): a node added gets a new replica, with the next id of the
// shard (internal/replicaid); a node promoted or removed is the one whose
// replica the configuration lists.
func (s *Store) ChangeReplicas(ctx context.Context, shard uint64, changes []*raftpb.ConfChangeSingle) error {
	_, err := s.StartChangeReplicas(shard, changes).Wait(ctx)
	return err
}

// StartChangeReplicas is ChangeReplicas without waiting.
func (s *Store) StartChangeReplicas(shard uint64, changes []*raftpb.ConfChangeSingle) *Pending {
	return s.startChange(shard, changes, nil)
}

// RemoveReplica removes node's replica of shard, which this node must
// lead, and returns once the removal is applied here. A voter is removed
// only if at least keep voters remain, judged by the configuration the
// leader has applied when it proposes (raft proposes no conf change while
// another is pending): a planner working from an older view cannot take
// the shard below keep.
func (s *Store) RemoveReplica(ctx context.Context, shard, node uint64, keep int) error {
	remove := []*raftpb.ConfChangeSingle{{Type: raftpb.ConfChangeType_ConfChangeRemoveNode.Enum(), NodeId: proto.Uint64(node)}}
	_, err := s.startChange(shard, remove, func(r *replica) error {
		voters := r.storage.conf.GetVoters()
		if _, voter := replicaid.Of(voters, node); voter && len(voters)-1 < keep {
			return fmt.Errorf("store: shard %d has %d voters: removing node %d's would leave fewer than %d", shard, len(voters), node, keep)
		}
		return nil
	}).Wait(ctx)
	return err
}

// startChange proposes changes of shard's members if check (if any)
// allows it on the leader's replica.
func (s *Store) startChange(shard uint64, changes []*raftpb.ConfChangeSingle, check func(*replica) error) *Pending {
	return s.start(func(id uint64) error {
		r, err := s.leaderReplica(shard)
		if err != nil {
			return err
		}
		if check != nil {
			if err := check(r); err != nil {
				return err
			}
		}
		changes, err := replicaChanges(r, changes)
		if err != nil {
			return err
		}
		cc := &raftpb.ConfChangeV2{Changes: changes, Context: idBytes(id)}
		if err := r.touch().ProposeConfChange(cc); err != nil {
			return proposeErr(err)
		}
		r.track(id)
		return nil
	})
}

// TransferLeader asks shard's raft, which this node must lead, to hand
// leadership to node to.
func (s *Store) TransferLeader(ctx context.Context, shard, to uint64) error {
	return s.call(ctx, func() error {
		r, err := s.leaderReplica(shard)
		if err != nil {
			return err
		}
		rid, ok := replicaid.Of(r.storage.conf.GetVoters(), to)
		if !ok {
			return fmt.Errorf("store: shard %d has no voter on node %d", shard, to)
		}
		r.dropLease() // before any vote can be cast for to (lease.go)
		r.transferTerm = r.rn.BasicStatus().GetTerm()
		r.touch().TransferLeader(rid)
		return nil
	})
}

// Progress is a leader's view of how far each replica of a shard is.
type Progress struct {
	Applied uint64
	Commit  uint64
	Match   map[uint64]uint64 // node id -> highest index known replicated there
}

// Progress returns the replication progress of shard, which this node
// must lead.
func (s *Store) Progress(ctx context.Context, shard uint64) (Progress, error) {
	var p Progress
	err := s.call(ctx, func() error {
		r, err := s.leaderReplica(shard)
		if err != nil {
			return err
		}
		st := r.rn.Status()
		p = Progress{Applied: r.applied, Commit: st.GetCommit(), Match: make(map[uint64]uint64)}
		for id, pr := range st.Progress {
			p.Match[replicaid.Node(id)] = pr.Match
		}
		return nil
	})
	return p, err
}

// Bootstrap creates new shards on this node only, each with the given
// voters, before Start. write, if set, adds initial data to the batch.
func (s *Store) Bootstrap(descs []*shoalpb.ShardDescriptor, voters []uint64, write func(b *engine.Batch)) error {
	b := s.eng.NewBatch()
	for _, d := range descs {
		if _, ok := s.replicas[d.GetId()]; ok {
			b.Close()
			return fmt.Errorf("store: shard %d already exists", d.GetId())
		}
		WriteBootstrap(b, d, voters)
	}
	if write != nil {
		write(b)
	}
	if err := b.Commit(true); err != nil {
		return err
	}
	for _, d := range descs {
		r, err := s.loadReplica(d.GetId())
		if err != nil {
			return err
		}
		s.addReplica(r)
	}
	s.publishInfo()
	return nil
}

// Campaign makes this node campaign for leadership of shard (used after
// bootstrap so a single-node cluster does not wait an election timeout).
func (s *Store) Campaign(ctx context.Context, shard uint64) error {
	return s.call(ctx, func() error {
		r := s.replicas[shard]
		if r == nil {
			return ErrUnknownShard
		}
		return r.touch().Campaign()
	})
}

// replicaChanges turns changes naming nodes into changes naming r's
// shard's replicas. An added node gets the shard's next replica id; that
// counter is advanced when the change applies, and raft proposes no conf
// change before the previous ones applied, so no id is given twice.
func replicaChanges(r *replica, changes []*raftpb.ConfChangeSingle) ([]*raftpb.ConfChangeSingle, error) {
	cs := r.storage.conf
	members := slices.Concat(cs.GetVoters(), cs.GetLearners(), cs.GetVotersOutgoing(), cs.GetLearnersNext())
	next := max(1, r.desc.GetNextReplicaInc())
	out := make([]*raftpb.ConfChangeSingle, len(changes))
	for i, c := range changes {
		node := c.GetNodeId()
		id, member := replicaid.Of(members, node)
		switch c.GetType() {
		case raftpb.ConfChangeType_ConfChangeAddLearnerNode:
			if member {
				return nil, fmt.Errorf("store: node %d already has replica %#x of shard %d", node, id, r.shard)
			}
			id = replicaid.Make(node, next)
			next++
		case raftpb.ConfChangeType_ConfChangeAddNode:
			if !member {
				// A voter is added as a learner first, and promoted.
				return nil, fmt.Errorf("store: node %d has no replica of shard %d to promote", node, r.shard)
			}
		default:
			if !member {
				return nil, fmt.Errorf("store: node %d has no replica of shard %d", node, r.shard)
			}
		}
		out[i] = &raftpb.ConfChangeSingle{Type: c.Type, NodeId: proto.Uint64(id)}
	}
	return out, nil
}
