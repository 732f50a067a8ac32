package placement

import (
	"fmt"
	"slices"
	"testing"

	"github.com/shoaldb/shoal/internal/meta"
)

const now = 100_000

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
		case TransferLeader:
			sh.Leader = op.Node
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
