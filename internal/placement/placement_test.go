package placement

import (
	"fmt"
	"slices"
	"testing"

	"github.com/shoaldb/shoal/internal/meta"
)

const now int64 = 100_000

// cluster returns the state of a new cluster of shards data shards with
// extra nodes joined and alive.
func cluster(shards int, nodes ...uint64) *meta.State {
	st := meta.New("c", "a1", "b1", shards, now)
	for _, id := range nodes {
		st.Nodes[id] = &meta.Node{ID: id, HeartbeatMs: now}
	}
	return st
}

// apply performs ops on st as if they succeeded instantly.
func apply(st *meta.State, ops []Op) {
	for _, op := range ops {
		sh := st.Shards[op.Shard]
		switch op.Kind {
		case AddLearner:
			sh.Learners = append(sh.Learners, op.Node)
		case Promote:
			sh.Learners = slices.DeleteFunc(sh.Learners, func(id uint64) bool { return id == op.Node })
			sh.Voters = append(sh.Voters, op.Node)
			if op.Replace != 0 {
				if sh.Leader == op.Replace {
					panic(fmt.Sprintf("%v: the leader is replaced", op))
				}
				sh.Voters = slices.DeleteFunc(sh.Voters, func(id uint64) bool { return id == op.Replace })
			}
		case TransferLeader:
			sh.Leader = op.Node
		case Forget:
			delete(st.Nodes, op.Node)
		case Remove:
			if sh.Leader == op.Node {
				panic(fmt.Sprintf("%v: the leader is removed", op))
			}
			gone := func(id uint64) bool { return id == op.Node }
			sh.Voters = slices.DeleteFunc(sh.Voters, gone)
			sh.Learners = slices.DeleteFunc(sh.Learners, gone)
		}
	}
}

func TestUpReplicatesThenBalancesLeaders(t *testing.T) {
	st := cluster(12, 2, 3)
	for _, sh := range st.Shards {
		sh.Leader = 1
	}
	var rounds int
	for rounds = 0; rounds < 200; rounds++ {
		ops := Plan(st, now, Config{})
		if len(ops) == 0 {
			break
		}
		apply(st, ops)
	}
	if rounds == 200 {
		t.Fatalf("plan did not converge")
	}
	for _, sh := range st.Shards {
		want := 3
		if len(sh.Voters) != want || len(sh.Learners) != 0 {
			t.Errorf("shard %d: voters %v learners %v, want %d voters", sh.ID, sh.Voters, sh.Learners, want)
		}
	}
	leads := map[uint64]int{}
	for _, sh := range st.DataShards() {
		leads[sh.Leader]++
	}
	for id := uint64(1); id <= 3; id++ {
		if leads[id] != 4 {
			t.Errorf("node %d leads %d data shards, want 4 (all: %v)", id, leads[id], leads)
		}
	}
}

func TestNoReplicasOnDeadNodes(t *testing.T) {
	st := cluster(4, 2, 3)
	st.Nodes[3].HeartbeatMs = now - meta.LivenessTimeoutMs - 1
	for range 50 {
		apply(st, Plan(st, now, Config{}))
	}
	for _, sh := range st.Shards {
		if slices.Contains(sh.Voters, 3) || slices.Contains(sh.Learners, 3) {
			t.Errorf("shard %d placed on dead node 3: %v", sh.ID, sh.Voters)
		}
		if len(sh.Voters) != 2 {
			t.Errorf("shard %d voters %v, want 2 (two live nodes)", sh.ID, sh.Voters)
		}
	}
}

func TestMetaShardGetsFiveReplicas(t *testing.T) {
	st := cluster(2, 2, 3, 4, 5, 6, 7)
	for range 100 {
		apply(st, Plan(st, now, Config{}))
	}
	if got := len(st.Shards[meta.ShardID].Voters); got != 5 {
		t.Errorf("meta voters = %d, want 5", got)
	}
	for _, sh := range st.DataShards() {
		if got := len(sh.Voters); got != 3 {
			t.Errorf("shard %d voters = %d, want 3", sh.ID, got)
		}
	}
}

func TestPlanIsBoundedPerRound(t *testing.T) {
	st := cluster(32, 2, 3)
	if ops := Plan(st, now, Config{MaxOps: 4}); len(ops) != 4 {
		t.Errorf("Plan returned %d ops, want 4: %v", len(ops), fmt.Sprint(ops))
	}
}

// converge applies plans until one is empty, checking that no round
// takes a shard below its replication factor of voters on nodes that are
// not dead (a replica is added before one is removed).
func converge(t *testing.T, st *meta.State, nowMs int64, cfg Config) int {
	t.Helper()
	standing := func() map[uint64]int {
		m := map[uint64]int{}
		for _, sh := range st.Shards {
			for _, v := range sh.Voters {
				if StateOf(st, v, nowMs, cfg) != Dead {
					m[sh.ID]++
				}
			}
		}
		return m
	}
	for round := 0; round < 1000; round++ {
		ops := Plan(st, nowMs, cfg)
		if len(ops) == 0 {
			return round
		}
		before := standing()
		voters := map[uint64]int{}
		for _, sh := range st.Shards {
			voters[sh.ID] = len(sh.Voters)
		}
		apply(st, ops)
		for _, sh := range st.DataShards() {
			if len(sh.Voters) > 3 {
				t.Fatalf("round %d: shard %d has %d voters after %v: a replacement must be atomic", round, sh.ID, len(sh.Voters), ops)
			}
		}
		for _, sh := range st.Shards {
			if len(sh.Voters) < voters[sh.ID] && len(sh.Voters) < 3 {
				t.Fatalf("round %d: shard %d down to %d voters by %v: a replica must be added before one is removed", round, sh.ID, len(sh.Voters), ops)
			}
		}
		for id, n := range standing() {
			want := 3
			if id == meta.ShardID {
				takers := 0
				for nid, n := range st.Nodes {
					if !n.Decommissioning && StateOf(st, nid, nowMs, cfg) == Live {
						takers++
					}
				}
				want = min(5, takers)
			}
			if n < before[id] && n < want {
				t.Fatalf("round %d: shard %d down from %d to %d voters on nodes not dead by %v", round, id, before[id], n, ops)
			}
		}
	}
	t.Fatal("the plans did not converge in 1000 rounds")
	return 0
}

// grown returns a 3-node cluster of 16 shards, fully replicated with
// leadership spread, and more nodes just joined.
func grown(t *testing.T, more ...uint64) *meta.State {
	st := cluster(16, 2, 3)
	for _, sh := range st.Shards {
		sh.Leader = 1
	}
	converge(t, st, now, Config{})
	for _, id := range more {
		st.Nodes[id] = &meta.Node{ID: id, HeartbeatMs: now}
	}
	return st
}

// replicaCounts returns each node's replicas of data shards and leaders.
func replicaCounts(st *meta.State) (replicas, leaders map[uint64]int) {
	replicas, leaders = map[uint64]int{}, map[uint64]int{}
	for _, sh := range st.DataShards() {
		for _, v := range members(sh) {
			replicas[v]++
		}
		leaders[sh.Leader]++
	}
	return replicas, leaders
}

func TestRebalancesOntoNewNodes(t *testing.T) {
	st := grown(t, 4, 5)
	converge(t, st, now, Config{})
	replicas, leaders := replicaCounts(st)
	for id := uint64(1); id <= 5; id++ {
		// 48 data replicas over 5 nodes: 9 or 10 each; 16 leaders: 3 or 4.
		if replicas[id] < 9 || replicas[id] > 10 || leaders[id] < 3 || leaders[id] > 4 {
			t.Errorf("node %d: %d replicas, %d leaders; all: %v %v", id, replicas[id], leaders[id], replicas, leaders)
		}
	}
	for _, sh := range st.Shards {
		want := 3
		if sh.Meta {
			want = 5
		}
		if len(sh.Voters) != want || len(sh.Learners) != 0 {
			t.Errorf("shard %d: voters %v learners %v", sh.ID, sh.Voters, sh.Learners)
		}
	}
	// Balanced: nothing more to do, however often it is asked.
	for range 10 {
		if ops := Plan(st, now, Config{}); len(ops) != 0 {
			t.Fatalf("a balanced cluster planned %v", ops)
		}
	}
}

func TestReplacesDeadNodeAddingBeforeRemoving(t *testing.T) {
	st := grown(t, 4)
	converge(t, st, now, Config{})
	later := now + DefaultDeadAfterMs + 1
	for _, id := range []uint64{1, 2, 4} {
		st.Nodes[id].HeartbeatMs = later
	}
	if got := StateOf(st, 3, later, Config{}); got != Dead {
		t.Fatalf("node 3 silent for longer than DeadAfter: %v", got)
	}
	converge(t, st, later, Config{})
	for _, sh := range st.Shards {
		if slices.Contains(members(sh), 3) {
			t.Errorf("shard %d still has a replica on dead node 3: %v %v", sh.ID, sh.Voters, sh.Learners)
		}
		if want := 3; len(sh.Voters) != want {
			t.Errorf("shard %d: voters %v, want %d", sh.ID, sh.Voters, want)
		}
	}
}

func TestSuspectNodeIsNotReplaced(t *testing.T) {
	st := grown(t, 4)
	converge(t, st, now, Config{})
	later := now + DefaultDeadAfterMs/2
	for _, id := range []uint64{1, 2, 4} {
		st.Nodes[id].HeartbeatMs = later
	}
	for _, op := range Plan(st, later, Config{}) {
		if op.Kind != TransferLeader {
			t.Errorf("a node down for less than DeadAfter caused %v", op)
		}
	}
}

// A meta leader that has just started (the whole cluster was down for a
// while) finds every heartbeat old: no node is dead before DeadAfter has
// passed since it began to watch.
func TestNoNodeDeadRightAfterARestart(t *testing.T) {
	st := grown(t, 4)
	converge(t, st, now, Config{})
	restart := now + 10*DefaultDeadAfterMs
	st.Nodes[1].HeartbeatMs = restart
	cfg := Config{WatchingSinceMs: restart}
	for _, id := range []uint64{2, 3, 4} {
		if s := StateOf(st, id, restart+1000, cfg); s != Suspect {
			t.Errorf("node %d right after the restart: %v, want suspect", id, s)
		}
	}
	if s := StateOf(st, 2, restart+DefaultDeadAfterMs+1, cfg); s != Dead {
		t.Errorf("node 2 silent DeadAfter after the restart: %v, want dead", s)
	}
	for _, op := range Plan(st, restart+1000, cfg) {
		if op.Kind == Remove || op.Kind == AddLearner {
			t.Errorf("right after a restart: %v", op)
		}
	}
}

func TestDecommissionDrainsNode(t *testing.T) {
	st := grown(t, 4)
	converge(t, st, now, Config{})
	if b := DecommissionBlockers(st, 2, now, Config{}); len(b) != 0 {
		t.Fatalf("4 live nodes, RF 3: draining node 2 blocked by %v", b)
	}
	st.Nodes[2].Decommissioning = true
	converge(t, st, now, Config{})
	for _, sh := range st.Shards {
		if slices.Contains(members(sh), 2) || sh.Leader == 2 {
			t.Errorf("shard %d still on node 2: voters %v learners %v leader %d", sh.ID, sh.Voters, sh.Learners, sh.Leader)
		}
		if len(sh.Voters) != 3 {
			t.Errorf("shard %d: voters %v, want 3", sh.ID, sh.Voters)
		}
	}
	// Stopped, holding nothing, it is forgotten.
	later := now + 6000
	for _, id := range []uint64{1, 3, 4} {
		st.Nodes[id].HeartbeatMs = later
	}
	converge(t, st, later, Config{})
	if _, ok := st.Nodes[2]; ok {
		t.Error("the drained node, stopped, is still registered")
	}
	// Three nodes left for a replication factor of 3: none can go (the
	// meta shard could shrink to two voters; the data shards cannot).
	blocked := DecommissionBlockers(st, 1, later, Config{})
	if len(blocked) != len(st.DataShards()) || slices.Contains(blocked, meta.ShardID) {
		t.Errorf("draining one of 3 nodes with RF 3: blocked by %v, want every data shard", blocked)
	}
}

// A shard whose other voters are down cannot keep a quorum while the node
// is drained.
func TestDecommissionBlockedByQuorum(t *testing.T) {
	st := grown(t, 4, 5)
	converge(t, st, now, Config{})
	var sh *meta.Shard
	for _, s := range st.DataShards() {
		sh = s
		break
	}
	node := sh.Voters[0]
	later := now + 6000
	for id, n := range st.Nodes {
		if id != sh.Voters[1] {
			n.HeartbeatMs = later // sh.Voters[1] missed its heartbeats
		}
	}
	third := sh.Voters[2]
	st.Nodes[third].HeartbeatMs = now // and so did the third
	if b := DecommissionBlockers(st, node, later, Config{}); !slices.Contains(b, sh.ID) {
		t.Errorf("shard %d's other voters are down: draining node %d blocked by %v, want it listed", sh.ID, node, b)
	}
}
