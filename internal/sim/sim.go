package sim

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/shoaldb/shoal/internal/engine"
	"github.com/shoaldb/shoal/internal/keys"
	"github.com/shoaldb/shoal/internal/kv"
	"github.com/shoaldb/shoal/internal/kvmodel"
	"github.com/shoaldb/shoal/internal/replicaid"
	"github.com/shoaldb/shoal/internal/resp"
	"github.com/shoaldb/shoal/internal/shoalpb"
	"github.com/shoaldb/shoal/internal/store"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// shardID is the one data shard of the simulation; it owns every slot.
const shardID = 2

var shardDesc = &shoalpb.ShardDescriptor{Id: shardID, FirstSlot: 0, LastSlot: keys.SlotCount - 1}

// Config configures a run. Zero values mean defaults.
type Config struct {
	Seed    uint64
	Voters  int // initial voters; default 3
	Spares  int // extra nodes membership changes may add; default 1
	Clients int // default 4
	Keys    int // default 3
	// Duration is the virtual time of the faulty phase; default 4s.
	Duration time.Duration
	// NoFaults turns the nemesis off.
	NoFaults bool
	// FaultRate multiplies how often the nemesis acts; default 1.
	FaultRate float64
	// Knobs plant bugs in every store.
	Knobs store.TestingKnobs
	// Log receives a trace of the run; nil discards it.
	Log io.Writer
}

func (c *Config) defaults() {
	if c.Voters == 0 {
		c.Voters = 3
	}
	if c.Spares == 0 {
		c.Spares = 1
	}
	if c.Clients == 0 {
		c.Clients = 4
	}
	if c.Keys == 0 {
		c.Keys = 3
	}
	if c.Duration == 0 {
		c.Duration = 4 * time.Second
	}
	if c.FaultRate == 0 {
		c.FaultRate = 1
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
}

// Result is the outcome of a run.
type Result struct {
	Seed          uint64
	Ops           int // completed operations in the history
	Indeterminate int
	Faults        int
	Check         porcupine.CheckResult
	Info          porcupine.LinearizationInfo
	History       []porcupine.Operation
	// Trace is a hash of every delivered message and every operation:
	// equal traces mean equal runs.
	Trace uint64
	// Panic is set when a node panicked, e.g. raft finding its log
	// corrupted: the run stopped there and is a failure.
	Panic string
	// FollowerReadIndexes and LeaseAnswers sum the stores' counters of
	// the same names: how often reads took those paths.
	FollowerReadIndexes, LeaseAnswers uint64
}

// Failed reports whether the run found a violation.
func (r *Result) Failed() bool { return r.Panic != "" || r.Check != porcupine.Ok }

// sim is one simulated cluster. Everything happens on one goroutine.
type sim struct {
	cfg   Config
	stats store.Stats // counters of stores that crashed (countStats)
	rng   *rand.Rand
	now   int64 // virtual time, ms
	nodes []*node
	net   network
	cls   []*client
	hist  []porcupine.Operation
	trace hash64
	log   io.Writer
	admin *adminOp
	nfail int
	panic string
}

type hash64 interface {
	Write([]byte) (int, error)
	Sum64() uint64
}

// node is one simulated store.
type node struct {
	id      uint64
	s       *sim
	fs      *vfs.MemFS
	eng     *engine.Engine
	st      *store.Store
	downAt  int64
	pending []*store.Pending // requests made to this incarnation
	// slow, when above 1, makes the node run its loop only every slow ms:
	// a node with a slow disk or starved of CPU.
	slow int64
	// crashMid asks for a crash inside the node's next loop cycle: at its
	// first send, its disk is captured as it is at that instant (what it
	// has not synced yet is lost), that batch of messages still leaves,
	// and nothing after it does.
	crashMid   bool
	crashImage *vfs.MemFS
}

func (n *node) up() bool { return n.st != nil }

// machine applies commands with the real Redis semantics.
type machine struct{}

func (machine) Apply(w kv.Writer, d *shoalpb.ShardDescriptor, c *shoalpb.Command) (resp.Value, error) {
	return kv.Apply(w, kv.Env{NowMs: c.GetNowMs(), Rand: c.GetRand(), MaxValueLen: c.GetMaxValueLen(),
		FirstSlot: int(d.GetFirstSlot()), LastSlot: int(d.GetLastSlot())}, c.GetArgs())
}

const epochMs = 1_700_000_000_000

// Run runs one simulation. The caller must have made crypto/rand
// deterministic (testing/cryptotest.SetGlobalRandom) for the run to be
// reproducible.
func Run(cfg Config) (*Result, error) {
	cfg.defaults()
	s := &sim{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5eed)), now: epochMs, trace: fnv.New64a(), log: cfg.Log}
	s.net = network{s: s, cut: map[[2]uint64]bool{}, maxDelay: 5}
	defer s.closeAll()
	total := cfg.Voters + cfg.Spares
	var voters []uint64
	for i := range cfg.Voters {
		voters = append(voters, uint64(i+1))
	}
	for i := range total {
		n := &node{id: uint64(i + 1), s: s, fs: vfs.NewCrashableMem()}
		s.nodes = append(s.nodes, n)
		if err := n.start(); err != nil {
			return nil, err
		}
		if n.id <= uint64(cfg.Voters) {
			if err := n.st.Bootstrap([]*shoalpb.ShardDescriptor{shardDesc}, voters, nil); err != nil {
				return nil, err
			}
		}
	}
	for i := range cfg.Clients {
		s.cls = append(s.cls, &client{id: i, s: s})
	}
	end := s.now + cfg.Duration.Milliseconds()
	panicked := func() *Result {
		return &Result{Seed: cfg.Seed, Ops: len(s.hist), Faults: s.nfail, Panic: s.panic, Trace: s.trace.Sum64()}
	}
	for s.now < end && s.panic == "" {
		if !cfg.NoFaults {
			s.nemesis()
		}
		s.step(true)
	}
	if s.panic != "" {
		return panicked(), nil
	}
	// Heal everything, let the clients finish, then read every key. A
	// panic while healing (a node meeting a log corrupted earlier) is a
	// finding like any other, not a stall.
	s.healAll()
	for deadline := s.now + 20_000; s.now < deadline && s.busy() && s.panic == ""; {
		s.step(false)
	}
	if s.panic != "" {
		return panicked(), nil
	}
	if s.busy() {
		return nil, fmt.Errorf("sim: seed %d: operations still pending 20s of virtual time after healing", cfg.Seed)
	}
	if err := s.finalReads(); err != nil {
		return nil, err
	}
	for _, n := range s.nodes {
		if n.up() {
			if err := kv.CheckIndex(n.eng, 0, keys.SlotCount-1); err != nil {
				return nil, fmt.Errorf("sim: seed %d: node %d: %w", cfg.Seed, n.id, err)
			}
		}
	}
	return s.check(), nil
}

func (n *node) start() error {
	lo, hi := keys.UserSpan()
	eng, err := engine.Open("db", engine.Options{FS: n.fs, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		RowCacheSpan: [2][]byte{lo, hi}, RowCachePin: keys.IsExpiryCount})
	if err != nil {
		return fmt.Errorf("sim: open node %d: %w", n.id, err)
	}
	knobs := n.s.cfg.Knobs
	knobs.CheckActive = true
	st, err := store.New(store.Config{
		NodeID: n.id, Engine: eng, Transport: endpoint{n.s, n.id}, StateMachine: machine{},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:    func() time.Time { return time.UnixMilli(n.s.now) },
		// step ticks every 10 ms of virtual time; leases are timed by it.
		TickInterval: 10 * time.Millisecond,
		Rand:         rand.New(rand.NewPCG(n.s.rng.Uint64(), n.id)),
		// A short tail makes the leaders' truncation entries frequent;
		// a small log keep makes snapshots to lagging replicas frequent.
		LogTail: 8, LogKeep: 64,
		Testing: knobs,
		// Built in the loop: a goroutine would make runs irreproducible.
		SnapshotsInLoop: true,
	})
	if err != nil {
		eng.Close()
		return fmt.Errorf("sim: start node %d: %w", n.id, err)
	}
	n.eng, n.st, n.pending = eng, st, nil
	return nil
}

// crash loses everything the node had not synced (at the captured
// instant, for a crash inside a cycle).
func (n *node) crash() {
	synced := n.crashImage
	if synced == nil {
		synced = n.fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	}
	n.crashMid, n.crashImage = false, nil
	n.s.countStats(n.st)
	n.st.Stop()
	n.eng.Close()
	n.st, n.eng, n.fs, n.downAt = nil, nil, synced, n.s.now
}

func (s *sim) closeAll() {
	for _, n := range s.nodes {
		if n.up() {
			n.st.Stop()
			n.eng.Close()
			n.st = nil
		}
	}
}

// step advances virtual time by 1 ms: delivers due messages, runs every
// live store (ticking every 10 ms), and moves clients on.
func (s *sim) step(newOps bool) {
	s.now++
	s.net.deliver()
	tick := s.now%10 == 0
	for _, n := range s.nodes {
		if !n.up() || (n.slow > 1 && s.now%n.slow != 0) {
			continue
		}
		more := n.stepStore(tick)
		for i := 0; more && i < 8 && n.crashImage == nil; i++ {
			more = n.stepStore(false)
		}
		if s.panic != "" {
			return
		}
		if n.crashImage != nil {
			s.logf("crash n%d inside a cycle", n.id)
			n.crash()
		}
	}
	for _, c := range s.cls {
		c.advance(newOps)
	}
	s.advanceAdmin()
}

// stepStore runs one cycle of the node's store; a panic (a broken
// invariant, such as raft finding acknowledged entries missing) ends the
// run as a failure.
func (n *node) stepStore(tick bool) (more bool) {
	defer func() {
		if r := recover(); r != nil {
			n.s.panic = fmt.Sprintf("n%d: %v", n.id, r)
			n.s.logf("PANIC %s", n.s.panic)
		}
	}()
	return n.st.Step(tick)
}

func (s *sim) busy() bool {
	for _, c := range s.cls {
		if c.op != nil {
			return true
		}
	}
	return false
}

func (s *sim) logf(format string, args ...any) {
	fmt.Fprintf(s.log, "%6d ", s.now-epochMs)
	fmt.Fprintf(s.log, format+"\n", args...)
}

// leader returns a live node whose replica believes it leads, preferring
// the highest term.
func (s *sim) leader() *node {
	var best *node
	var term uint64
	for _, n := range s.nodes {
		if !n.up() {
			continue
		}
		if ri, ok := n.st.Replica(shardID); ok && ri.IsLeader && ri.Term >= term {
			best, term = n, ri.Term
		}
	}
	return best
}

func (s *sim) randomUp() *node {
	var up []*node
	for _, n := range s.nodes {
		if n.up() {
			up = append(up, n)
		}
	}
	if len(up) == 0 {
		return nil
	}
	return up[s.rng.IntN(len(up))]
}

// finalReads reads every key through the leader once the cluster is
// healed, as operations of the history.
func (s *sim) finalReads() error {
	for k := range s.cfg.Keys {
		c := &client{id: 1000 + k, s: s}
		c.begin(kvmodel.Input{Kind: kvmodel.OpGet, Key: keyName(k)})
		for deadline := s.now + 20_000; c.op != nil && s.now < deadline; {
			s.step(false)
			if c.op != nil {
				c.poll()
			}
		}
		if c.op != nil {
			return fmt.Errorf("sim: seed %d: final read of %s did not complete", s.cfg.Seed, keyName(k))
		}
	}
	return nil
}

func keyName(i int) string { return "k" + strconv.Itoa(i) }

func (s *sim) record(op porcupine.Operation) {
	s.hist = append(s.hist, op)
	fmt.Fprintf(s.trace, "op %d %v %v %d %d\n", op.ClientId, op.Input, op.Output, op.Call, op.Return)
}

func (s *sim) check() *Result {
	res := &Result{Seed: s.cfg.Seed, Ops: len(s.hist), Faults: s.nfail, History: s.hist, Trace: s.trace.Sum64()}
	for _, op := range s.hist {
		if op.Output.(kvmodel.Output).Unknown {
			res.Indeterminate++
		}
	}
	for _, n := range s.nodes {
		if n.up() {
			s.countStats(n.st)
		}
	}
	res.FollowerReadIndexes, res.LeaseAnswers = s.stats.FollowerReadIndexes, s.stats.LeaseAnswers
	res.Check, res.Info = porcupine.CheckOperationsVerbose(kvmodel.Model, s.hist, 60*time.Second)
	return res
}

// countStats adds the counters of a store about to go to the run's.
func (s *sim) countStats(st *store.Store) {
	x := st.Stats()
	s.stats.FollowerReadIndexes += x.FollowerReadIndexes
	s.stats.LeaseAnswers += x.LeaseAnswers
}

// ---- network ----

type packet struct {
	at, seq  int64
	from, to uint64
	env      *shoalpb.RaftEnvelope
}

type network struct {
	s        *sim
	queue    []packet
	seq      int64
	cut      map[[2]uint64]bool // [from, to] cannot talk
	drop     float64
	dup      float64
	maxDelay int
}

// endpoint is a node's store.Transport.
type endpoint struct {
	s    *sim
	from uint64
}

func (e endpoint) Send(envs []*shoalpb.RaftEnvelope) {
	nw := &e.s.net
	if n := e.s.nodes[e.from-1]; n.crashMid {
		if n.crashImage != nil {
			return // the node is already dead
		}
		n.crashImage = n.fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	}
	for _, env := range envs {
		snap := env.GetMessage().GetType() == raftpb.MessageType_MsgSnap
		if !snap && nw.s.rng.Float64() < nw.drop {
			continue
		}
		copies := 1
		if !snap && nw.s.rng.Float64() < nw.dup {
			copies = 2
		}
		for range copies {
			nw.seq++
			nw.queue = append(nw.queue, packet{
				at: nw.s.now + 1 + int64(nw.s.rng.IntN(nw.maxDelay)), seq: nw.seq,
				from: e.from, to: replicaid.Node(env.GetMessage().GetTo()), env: proto.Clone(env).(*shoalpb.RaftEnvelope),
			})
		}
	}
}

func (nw *network) blocked(from, to uint64) bool { return nw.cut[[2]uint64{from, to}] }

// deliver hands every due packet to its destination, in time order.
func (nw *network) deliver() {
	var due []packet
	rest := nw.queue[:0]
	for _, p := range nw.queue {
		if p.at <= nw.s.now {
			due = append(due, p)
		} else {
			rest = append(rest, p)
		}
	}
	nw.queue = rest
	slices.SortFunc(due, func(a, b packet) int {
		if a.at != b.at {
			return int(a.at - b.at)
		}
		return int(a.seq - b.seq)
	})
	for _, p := range due {
		src, dst := nw.s.nodes[p.from-1], nw.s.nodes[p.to-1]
		m := p.env.GetMessage()
		ok := dst.up() && !nw.blocked(p.from, p.to)
		if ok {
			fmt.Fprintf(nw.s.trace, "msg %d>%d %v %d %d\n", p.from, p.to, m.GetType(), m.GetTerm(), m.GetIndex())
			dst.st.HandleRaft(p.from, []*shoalpb.RaftEnvelope{p.env})
		}
		if m.GetType() == raftpb.MessageType_MsgSnap && src.up() {
			src.st.ReportSnapshot(p.env.GetShardId(), p.to, !ok)
		}
	}
}

// ---- nemesis ----

// nemesis injects, with small probabilities per millisecond, crashes and
// restarts, partitions of every shape, message loss and duplication, slow
// links, and membership changes.
func (s *sim) nemesis() {
	r := s.rng.Float64() / s.cfg.FaultRate
	switch {
	case r < 0.0015:
		if n := s.randomUp(); n != nil && s.downCount() < len(s.nodes)-2 {
			if s.rng.IntN(2) == 0 {
				n.crashMid = true // happens at its next send
			} else {
				s.logf("crash n%d", n.id)
				n.crash()
			}
			s.nfail++
		}
	case r < 0.004:
		for _, n := range s.nodes {
			if !n.up() && s.now-n.downAt > 100 {
				s.logf("restart n%d", n.id)
				if err := n.start(); err != nil {
					panic(err)
				}
				break
			}
		}
	case r < 0.005:
		s.partition()
		s.nfail++
	case r < 0.0065:
		s.logf("heal")
		clear(s.net.cut)
	case r < 0.007:
		s.net.drop = []float64{0, 0, 0.05, 0.2}[s.rng.IntN(4)]
		s.net.dup = []float64{0, 0, 0.05}[s.rng.IntN(3)]
		s.net.maxDelay = []int{1, 5, 20, 60}[s.rng.IntN(4)]
		s.logf("net drop=%v dup=%v delay<=%dms", s.net.drop, s.net.dup, s.net.maxDelay)
	case r < 0.0085:
		s.membership()
	case r < 0.009:
		n := s.nodes[s.rng.IntN(len(s.nodes))]
		n.slow = []int64{1, 1, 3, 20}[s.rng.IntN(4)]
		s.logf("n%d runs every %dms", n.id, n.slow)
	}
}

func (s *sim) downCount() int {
	d := 0
	for _, n := range s.nodes {
		if !n.up() {
			d++
		}
	}
	return d
}

// partition cuts the network in one of several shapes.
func (s *sim) partition() {
	clear(s.net.cut)
	ids := make([]uint64, len(s.nodes))
	for i := range ids {
		ids[i] = uint64(i + 1)
	}
	s.rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	cutBoth := func(a, b uint64) { s.net.cut[[2]uint64{a, b}], s.net.cut[[2]uint64{b, a}] = true, true }
	switch s.rng.IntN(4) {
	case 0: // isolate the leader
		if l := s.leader(); l != nil {
			for _, id := range ids {
				if id != l.id {
					cutBoth(l.id, id)
				}
			}
			s.logf("partition: leader n%d isolated", l.id)
		}
	case 1: // random split into two sides
		k := 1 + s.rng.IntN(len(ids)-1)
		for _, a := range ids[:k] {
			for _, b := range ids[k:] {
				cutBoth(a, b)
			}
		}
		s.logf("partition: %v | %v", ids[:k], ids[k:])
	case 2: // asymmetric: one node cannot hear the others
		for _, id := range ids[1:] {
			s.net.cut[[2]uint64{id, ids[0]}] = true
		}
		s.logf("partition: n%d deaf", ids[0])
	case 3: // one link cut
		cutBoth(ids[0], ids[1])
		s.logf("partition: link n%d-n%d", ids[0], ids[1])
	}
}

func (s *sim) healAll() {
	clear(s.net.cut)
	s.net.drop, s.net.dup, s.net.maxDelay = 0, 0, 5
	for _, n := range s.nodes {
		n.slow = 0
		if !n.up() {
			if err := n.start(); err != nil {
				panic(err)
			}
		}
	}
	s.logf("heal all")
}

// ---- membership ----

// adminOp is a membership change in flight.
type adminOp struct {
	p    *store.Pending
	desc string
}

// membership adds a spare as a learner, promotes a learner, or removes a
// voter when there are more voters than configured, at the leader.
func (s *sim) membership() {
	if s.admin != nil {
		return
	}
	l := s.leader()
	if l == nil {
		return
	}
	ri, _ := l.st.Replica(shardID)
	var change *raftpb.ConfChangeSingle
	var desc string
	mk := func(t raftpb.ConfChangeType, id uint64) *raftpb.ConfChangeSingle {
		return &raftpb.ConfChangeSingle{Type: t.Enum(), NodeId: proto.Uint64(id)}
	}
	var also *raftpb.ConfChangeSingle
	switch {
	case len(ri.Learners) > 0 && len(ri.Voters) >= s.cfg.Voters && s.rng.IntN(2) == 0:
		// The learner replaces a voter (maybe the leader) in one change,
		// through a joint configuration, as placement moves replicas.
		v := ri.Voters[s.rng.IntN(len(ri.Voters))]
		change, also = mk(raftpb.ConfChangeType_ConfChangeAddNode, ri.Learners[0]), mk(raftpb.ConfChangeType_ConfChangeRemoveNode, v)
		desc = fmt.Sprintf("promote n%d replacing n%d", ri.Learners[0], v)
	case len(ri.Learners) > 0:
		change, desc = mk(raftpb.ConfChangeType_ConfChangeAddNode, ri.Learners[0]), fmt.Sprintf("promote n%d", ri.Learners[0])
	case len(ri.Voters) > s.cfg.Voters:
		v := ri.Voters[s.rng.IntN(len(ri.Voters))]
		change, desc = mk(raftpb.ConfChangeType_ConfChangeRemoveNode, v), fmt.Sprintf("remove n%d", v)
	default:
		for _, n := range s.nodes {
			if !slices.Contains(ri.Voters, n.id) {
				change, desc = mk(raftpb.ConfChangeType_ConfChangeAddLearnerNode, n.id), fmt.Sprintf("add learner n%d", n.id)
				break
			}
		}
	}
	if change == nil {
		return
	}
	s.logf("membership: %s at n%d", desc, l.id)
	changes := []*raftpb.ConfChangeSingle{change}
	if also != nil {
		changes = append(changes, also)
	}
	s.admin = &adminOp{p: l.st.StartChangeReplicas(shardID, changes), desc: desc}
	l.pending = append(l.pending, s.admin.p)
	s.nfail++
}

func (s *sim) advanceAdmin() {
	if s.admin == nil {
		return
	}
	if _, err, done := s.admin.p.Poll(); done {
		s.logf("membership: %s: %v", s.admin.desc, err)
		s.admin = nil
		return
	}
	// The node it was made at crashed: give up on it.
	for _, n := range s.nodes {
		if slices.Contains(n.pending, s.admin.p) {
			return
		}
	}
	s.admin = nil
}

// ---- clients ----

// giveUpMs is how long a client waits for a request before recording it
// as indeterminate. Long: the healing phase completes most requests, and
// every indeterminate write multiplies the checker's work.
const giveUpMs = 10_000

// client runs one operation at a time.
type client struct {
	id int
	s  *sim
	op *clientOp
}

type clientOp struct {
	in      kvmodel.Input
	call    int64
	target  *node // node the current attempt runs on
	gen     *store.Store
	p       *store.Pending
	reading bool              // a get whose ReadIndex is in flight
	replica store.ReplicaInfo // the replica asked for the read index
	retries int
	retryAt int64 // next attempt not before this time
}

func (c *client) advance(newOps bool) {
	if c.op == nil {
		if newOps && c.s.rng.Float64() < 0.02 {
			c.begin(c.randomInput())
		}
		return
	}
	c.poll()
}

func (c *client) randomInput() kvmodel.Input {
	k := keyName(c.s.rng.IntN(c.s.cfg.Keys))
	v := int64(c.s.rng.IntN(20))
	switch c.s.rng.IntN(4) {
	case 0:
		return kvmodel.Input{Kind: kvmodel.OpGet, Key: k}
	case 1:
		return kvmodel.Input{Kind: kvmodel.OpSet, Key: k, Value: v}
	case 2:
		return kvmodel.Input{Kind: kvmodel.OpIncr, Key: k}
	default:
		return kvmodel.Input{Kind: kvmodel.OpCAS, Key: k, Old: int64(c.s.rng.IntN(20)), Value: v}
	}
}

func (c *client) begin(in kvmodel.Input) {
	c.op = &clientOp{in: in, call: c.s.now}
	c.attempt(nil)
}

// attempt sends the operation to a node: the hinted leader, else a random
// live node (reads always go to a random node, so that a replica serving
// reads without a quorum would be caught).
func (c *client) attempt(hint *node) {
	op := c.op
	n := hint
	if n == nil || !n.up() {
		n = c.s.randomUp()
	}
	if n == nil {
		return // retried on the next step
	}
	op.target, op.gen = n, n.st
	if ri, _ := n.st.Replica(shardID); op.in.Kind == kvmodel.OpGet && n.st.LeaseRead(ri) {
		c.finishRead(n) // a leader lease: no read index needed
		return
	}
	if op.in.Kind == kvmodel.OpGet {
		op.reading = true
		op.replica, _ = n.st.Replica(shardID)
		op.p = n.st.StartReadIndex(shardID)
	} else {
		op.p = n.st.StartPropose(shardID, op.args())
	}
	n.pending = append(n.pending, op.p)
}

func (op *clientOp) args() [][]byte {
	itoa := func(n int64) []byte { return strconv.AppendInt(nil, n, 10) }
	switch op.in.Kind {
	case kvmodel.OpSet:
		if op.in.Value%2 == 1 {
			// A TTL far beyond the run: the value is the same to the
			// model, and the replicas keep expiry index entries and
			// their counts through the faults (checked at the end).
			return [][]byte{[]byte("SET"), []byte(op.in.Key), itoa(op.in.Value), []byte("EX"), []byte("100000000")}
		}
		return [][]byte{[]byte("SET"), []byte(op.in.Key), itoa(op.in.Value)}
	case kvmodel.OpIncr:
		return [][]byte{[]byte("INCR"), []byte(op.in.Key)}
	case kvmodel.OpCAS:
		return [][]byte{[]byte("SET"), []byte(op.in.Key), itoa(op.in.Value), []byte("IFEQ"), itoa(op.in.Old)}
	}
	panic(fmt.Sprintf("sim: no args for %v", op.in.Kind))
}

func (c *client) poll() {
	op := c.op
	if op.p == nil {
		if c.s.now >= op.retryAt {
			c.attempt(nil)
		}
		return
	}
	if op.target.st != op.gen {
		// The node crashed with the request in flight.
		c.s.logf("c%d %v: node n%d crashed with it in flight", c.id, op.in.Kind, op.target.id)
		c.unknownOrRetry()
		return
	}
	v, err, done := op.p.Poll()
	if !done {
		if c.s.now-op.call > giveUpMs {
			c.finish(kvmodel.Output{Unknown: true}) // give up: outcome unknown
		}
		return
	}
	if err != nil {
		var nl *store.NotLeaderError
		switch {
		case errors.As(err, &nl), errors.Is(err, store.ErrUnknownShard), errors.Is(err, store.ErrBusy),
			errors.Is(err, store.ErrDropped):
			// Definitely not applied: try again, at the hinted leader.
			var hint *node
			if nl != nil && nl.Leader != 0 && op.in.Kind != kvmodel.OpGet {
				hint = c.s.nodes[nl.Leader-1]
			}
			op.p = nil
			op.retries++
			if op.retries > 300 {
				// Every attempt definitely failed: the operation had no
				// effect and is left out of the history.
				c.s.logf("c%d %v: abandoned after %d definite failures", c.id, op.in.Kind, op.retries)
				c.op = nil
				return
			}
			if hint != nil {
				c.attempt(hint)
				return
			}
			op.retryAt = c.s.now + 10
		default:
			c.s.logf("c%d %v: %v", c.id, op.in.Kind, err)
			c.unknownOrRetry()
		}
		return
	}
	if op.reading {
		// The read index is applied here: read the local state, unless
		// the replica left the shard since (its data is being deleted).
		if op.replica.Removed() {
			c.unknownOrRetry()
			return
		}
		op.reading = false
		c.finishRead(op.target)
		return
	}
	c.finish(c.interpret(v))
}

// finishRead ends a get with the value in n's local state.
func (c *client) finishRead(n *node) {
	key := c.op.in.Key
	val, err := kv.Read(n.eng, kv.Env{NowMs: c.s.now, FirstSlot: 0, LastSlot: keys.SlotCount - 1},
		[][]byte{[]byte("GET"), []byte(key)})
	if err != nil {
		panic(err)
	}
	out := kvmodel.Output{Found: val.Kind == resp.KindBulk}
	if out.Found {
		v, err := strconv.ParseInt(string(val.Str), 10, 64)
		if err != nil {
			panic(fmt.Sprintf("sim: %s holds %q, not an integer", key, val.Str))
		}
		out.Value = v
	}
	c.finish(out)
}

// unknownOrRetry ends an operation whose effect is unknown: a read has no
// effect and is retried, a write is recorded as indeterminate.
func (c *client) unknownOrRetry() {
	if c.op.in.Kind == kvmodel.OpGet {
		c.op.p, c.op.reading = nil, false
		c.attempt(nil)
		return
	}
	c.finish(kvmodel.Output{Unknown: true})
}

func (c *client) interpret(v resp.Value) kvmodel.Output {
	switch c.op.in.Kind {
	case kvmodel.OpIncr:
		return kvmodel.Output{Value: v.Int}
	case kvmodel.OpCAS:
		return kvmodel.Output{Found: v.Kind == resp.KindSimple && bytes.Equal(v.Str, []byte("OK"))}
	}
	return kvmodel.Output{}
}

func (c *client) finish(out kvmodel.Output) {
	ret := c.s.now
	if out.Unknown {
		ret = kvmodel.Never // it may take effect at any later time
	}
	c.s.record(porcupine.Operation{ClientId: c.id, Input: c.op.in, Call: c.op.call, Output: out, Return: ret})
	c.op = nil
}
