package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/shoaldb/shoal/internal/engine"
	"github.com/shoaldb/shoal/internal/keys"
	"github.com/shoaldb/shoal/internal/kv"
	"github.com/shoaldb/shoal/internal/replicaid"
	"github.com/shoaldb/shoal/internal/resp"
	"github.com/shoaldb/shoal/internal/shoalpb"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// setMachine applies "set k v" commands to meta keys and replies with the
// number of commands it has applied, so tests can see apply order.
type setMachine struct{}

func (setMachine) Apply(w kv.Writer, _ *shoalpb.ShardDescriptor, cmd *shoalpb.Command) (resp.Value, error) {
	args := cmd.GetArgs()
	if len(args) != 3 {
		return resp.Err("ERR bad command"), nil
	}
	if err := w.Set(keys.Meta(string(args[1])), args[2]); err != nil {
		return resp.Value{}, err
	}
	return resp.OK, nil
}

// localNet delivers messages between stores of one test directly.
type localNet struct {
	mu     sync.Mutex
	stores map[uint64]*Store
	down   map[uint64]bool
	// logTail, if set, is the LogTail of the stores started on the net.
	logTail uint64
	// snaps counts the snapshots delivered.
	snaps atomic.Int64
	// held holds back the messages sent by the nodes it has a key for,
	// until release.
	held map[uint64][]*shoalpb.RaftEnvelope
	// lose, if set, drops the messages it reports true for.
	lose func(from uint64, m *raftpb.Message) bool
}

// setLose makes the net drop the messages lose reports true for.
func (n *localNet) setLose(lose func(from uint64, m *raftpb.Message) bool) {
	n.mu.Lock()
	n.lose = lose
	n.mu.Unlock()
}

// hold holds back every message node id sends, until release.
func (n *localNet) hold(id uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.held == nil {
		n.held = map[uint64][]*shoalpb.RaftEnvelope{}
	}
	n.held[id] = []*shoalpb.RaftEnvelope{}
}

// release delivers, in order, the messages held back from node id, and
// lets those it sends from now on through.
func (n *localNet) release(id uint64) {
	n.mu.Lock()
	envs := n.held[id]
	delete(n.held, id)
	n.mu.Unlock()
	localEndpoint{n: n, from: id}.Send(envs)
}

// setDown cuts node id off the net, or brings it back.
func (n *localNet) setDown(id uint64, down bool) {
	n.mu.Lock()
	n.down[id] = down
	n.mu.Unlock()
}

type localEndpoint struct {
	n    *localNet
	from uint64
}

func (e localEndpoint) Send(envs []*shoalpb.RaftEnvelope) {
	e.n.mu.Lock()
	defer e.n.mu.Unlock()
	for _, env := range envs {
		to := replicaid.Node(env.GetMessage().GetTo())
		dst := e.n.stores[to]
		if dst == nil || e.n.down[to] || e.n.down[e.from] ||
			e.n.lose != nil && e.n.lose(e.from, env.GetMessage()) {
			continue
		}
		c := proto.Clone(env).(*shoalpb.RaftEnvelope)
		if q, ok := e.n.held[e.from]; ok {
			e.n.held[e.from] = append(q, c)
			continue
		}
		dst.HandleRaft(e.from, []*shoalpb.RaftEnvelope{c})
		if env.GetMessage().GetType() == raftpb.MessageType_MsgSnap {
			e.n.snaps.Add(1)
			if src := e.n.stores[e.from]; src != nil {
				src.ReportSnapshot(env.GetShardId(), to, false)
			}
		}
	}
}

type testNode struct {
	fs  vfs.FS
	eng *engine.Engine
	st  *Store
}

func startNode(t *testing.T, n *localNet, id uint64, fs vfs.FS, logKeep uint64) *testNode {
	t.Helper()
	eng, err := engine.Open("db", engine.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	st, err := New(Config{
		NodeID: id, Engine: eng, Transport: localEndpoint{n, id}, StateMachine: setMachine{},
		TickInterval: 10 * time.Millisecond, LogKeep: logKeep, LogTail: n.logTail,
		Testing: TestingKnobs{CheckActive: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	n.mu.Lock()
	n.stores[id] = st
	n.mu.Unlock()
	return &testNode{fs: fs, eng: eng, st: st}
}

func (tn *testNode) stop(n *localNet, id uint64) {
	n.mu.Lock()
	delete(n.stores, id)
	n.mu.Unlock()
	tn.st.Stop()
	tn.eng.Close()
}

var metaDesc = &shoalpb.ShardDescriptor{Id: 1, Meta: true}

// propose retries a proposal at whichever node leads until it succeeds.
func propose(t *testing.T, nodes map[uint64]*testNode, k, v string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, tn := range nodes {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err := tn.st.Propose(ctx, 1, [][]byte{[]byte("set"), []byte(k), []byte(v)})
			cancel()
			if err == nil {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("propose %s=%s: no leader accepted it within 10s", k, v)
}

func waitValue(t *testing.T, tn *testNode, k, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		v, ok, _ := tn.eng.Get(keys.Meta(k))
		if ok && string(v) == want {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	v, _, _ := tn.eng.Get(keys.Meta(k))
	t.Fatalf("node %d: %s = %q, want %q", tn.st.NodeID(), k, v, want)
}

func TestReplicationFailoverRestartAndSnapshot(t *testing.T) {
	n := &localNet{stores: map[uint64]*Store{}, down: map[uint64]bool{}}
	nodes := startCluster(t, n, func(uint64) vfs.FS { return vfs.NewMem() }, 16, nil)
	for i := range 50 {
		propose(t, nodes, fmt.Sprint("k", i), fmt.Sprint(i))
	}
	for _, tn := range nodes {
		waitValue(t, tn, "k49", "49")
	}

	// Fail the leader: the others elect a new one and keep accepting writes.
	leader := leaderOf(t, nodes)
	fs := nodes[leader].fs
	nodes[leader].stop(n, leader)
	delete(nodes, leader)
	for i := 50; i < 100; i++ {
		propose(t, nodes, fmt.Sprint("k", i), fmt.Sprint(i))
	}

	// Restart it from its own (memory) disk: it catches up. The others
	// truncated their logs past what it has, so this needs a snapshot.
	tn := startNode(t, n, leader, fs, 16)
	tn.st.Start()
	nodes[leader] = tn
	waitValue(t, tn, "k99", "99")
	waitValue(t, tn, "k0", "0")

	// Add a fourth node as a learner, then promote it.
	tn4 := startNode(t, n, 4, vfs.NewMem(), 16)
	tn4.st.Start()
	nodes[4] = tn4
	change := func(typ raftpb.ConfChangeType) {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			for id, tn := range nodes {
				if id == 4 {
					continue
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				err := tn.st.ChangeReplicas(ctx, 1, []*raftpb.ConfChangeSingle{{Type: typ.Enum(), NodeId: proto.Uint64(4)}})
				cancel()
				if err == nil {
					return
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("conf change %v failed", typ)
	}
	change(raftpb.ConfChangeType_ConfChangeAddLearnerNode)
	waitValue(t, tn4, "k99", "99")
	change(raftpb.ConfChangeType_ConfChangeAddNode)
	propose(t, nodes, "after", "promote")
	waitValue(t, tn4, "after", "promote")
	ri, _ := tn4.st.Replica(1)
	if len(ri.Voters) != 4 {
		t.Fatalf("voters after promote = %v, want 4 voters", ri.Voters)
	}
}

// Every replica truncates its log to LogTail entries once all have them;
// a leader keeps what a lagging follower lacks (up to LogKeep entries), so
// the follower catches up from the log, not by snapshot.
func TestLeaderKeepsLogForALaggingFollower(t *testing.T) {
	const tail = 8
	n := &localNet{stores: map[uint64]*Store{}, down: map[uint64]bool{}, logTail: tail}
	nodes := startCluster(t, n, func(uint64) vfs.FS { return vfs.NewMem() }, 1000, nil)
	logLen := func(tn *testNode) int {
		c := 0
		tn.eng.Iterate(keys.LogEntry(1, 0), keys.LogEntry(1, 1<<62), func(_, _ []byte) bool {
			c++
			return true
		})
		return c
	}
	// Logs are truncated as entries are applied: writes go on, one at a
	// time, until every log is down to its tail.
	extra := 0
	shrinks := func(what string) {
		t.Helper()
		waitCond(t, what, func() error {
			for id, tn := range nodes {
				if l := logLen(tn); l >= 2*tail+2 {
					propose(t, nodes, fmt.Sprint("extra", extra), "x")
					extra++
					return fmt.Errorf("node %d holds %d log entries", id, l)
				}
			}
			return nil
		})
	}
	for i := range 40 {
		propose(t, nodes, fmt.Sprint("k", i), fmt.Sprint(i))
	}
	shrinks("every log truncated to its tail")

	leader := leaderOf(t, nodes)
	var lagging uint64
	for id := range nodes {
		if id != leader {
			lagging = id
			break
		}
	}
	n.setDown(lagging, true)
	for i := 40; i < 240; i++ {
		propose(t, nodes, fmt.Sprint("k", i), fmt.Sprint(i))
	}
	if l := logLen(nodes[leader]); l < 200 {
		t.Errorf("the leader holds %d log entries while a follower lacks 200", l)
	}
	n.setDown(lagging, false)
	waitValue(t, nodes[lagging], "k239", "239")
	if s := n.snaps.Load(); s != 0 {
		t.Errorf("the lagging follower got %d snapshots, want none (its entries were in the leader's log)", s)
	}
	shrinks("every log truncated to its tail again")

	// The replicas truncate where their leader tells them: a follower that
	// comes to lead while another lags still has what that one lacks.
	n.setDown(lagging, true)
	for i := 260; i < 460; i++ {
		propose(t, nodes, fmt.Sprint("k", i), fmt.Sprint(i))
	}
	var other uint64
	for id := range nodes {
		if id != leader && id != lagging {
			other = id
		}
	}
	waitCond(t, "leadership handed to the other follower", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		nodes[leader].st.TransferLeader(ctx, 1, other)
		if ri, _ := nodes[other].st.Replica(1); !ri.IsLeader {
			return errors.New("not yet")
		}
		return nil
	})
	n.setDown(lagging, false)
	waitValue(t, nodes[lagging], "k459", "459")
	if s := n.snaps.Load(); s != 0 {
		t.Errorf("the lagging follower got %d snapshots from its new leader, want none", s)
	}
}

// waitCond polls cond until it returns nil, failing the test after 10 s.
func waitCond(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// syncHookFS calls onSync before every sync of its files (and of
// directories): benchmarks count syncs with it (with group commit a store
// should sync once per cycle, however many proposals the cycle holds),
// tests slow them down.
type syncHookFS struct {
	vfs.FS
	onSync func()
}

type syncHookFile struct {
	vfs.File
	onSync func()
}

func (f syncHookFile) Sync() error     { f.onSync(); return f.File.Sync() }
func (f syncHookFile) SyncData() error { f.onSync(); return f.File.SyncData() }
func (f syncHookFile) SyncTo(n int64) (bool, error) {
	f.onSync()
	return f.File.SyncTo(n)
}

func (fs syncHookFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return syncHookFile{f, fs.onSync}, nil
}

func (fs syncHookFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	return fs.wrap(fs.FS.Create(name, c))
}

func (fs syncHookFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	return fs.wrap(fs.FS.OpenReadWrite(name, c, opts...))
}

func (fs syncHookFS) OpenDir(name string) (vfs.File, error) { return fs.wrap(fs.FS.OpenDir(name)) }

func (fs syncHookFS) ReuseForWrite(old, name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	return fs.wrap(fs.FS.ReuseForWrite(old, name, c))
}

// slowSyncs returns a hook for syncHookFS that makes every sync take 30
// ms longer while slow is set.
func slowSyncs(slow *atomic.Bool) func() {
	return func() {
		if slow.Load() {
			time.Sleep(30 * time.Millisecond)
		}
	}
}

// startSlowableCluster starts three stores replicating shard 1, each of
// whose syncs takes 30 ms longer once its flag in slow is set.
func startSlowableCluster(t *testing.T, n *localNet) (nodes map[uint64]*testNode, slow map[uint64]*atomic.Bool) {
	t.Helper()
	slow = map[uint64]*atomic.Bool{1: {}, 2: {}, 3: {}}
	nodes = startCluster(t, n, func(id uint64) vfs.FS { return syncHookFS{vfs.NewMem(), slowSyncs(slow[id])} }, 1000, nil)
	return nodes, slow
}

// startCluster starts three stores replicating shard 1, each on the
// filesystem fs gives it, once prepare (if any) has adjusted it; the test
// stops those still in the map when it ends.
func startCluster(t *testing.T, n *localNet, fs func(id uint64) vfs.FS, logKeep uint64, prepare func(*testNode)) map[uint64]*testNode {
	t.Helper()
	nodes := map[uint64]*testNode{}
	t.Cleanup(func() {
		for id, tn := range nodes {
			tn.stop(n, id)
		}
	})
	for id := uint64(1); id <= 3; id++ {
		tn := startNode(t, n, id, fs(id), logKeep)
		if prepare != nil {
			prepare(tn)
		}
		if err := tn.st.Bootstrap([]*shoalpb.ShardDescriptor{metaDesc}, []uint64{1, 2, 3}, nil); err != nil {
			t.Fatal(err)
		}
		tn.st.Start()
		nodes[id] = tn
	}
	return nodes
}

// leaderOf returns the id of the node whose replica of shard 1 leads.
func leaderOf(t *testing.T, nodes map[uint64]*testNode) uint64 {
	t.Helper()
	for id, tn := range nodes {
		if ri, _ := tn.st.Replica(1); ri.IsLeader {
			return id
		}
	}
	t.Fatal("no leader")
	return 0
}
