// Package placement decides where replicas and leaders should be. Plan is
// a pure function: the meta state and the time in, an ordered list of
// operations out. The node that leads the meta shard runs it periodically
// and carries the operations out.
package placement

import (
	"fmt"
	"slices"

	"github.com/shoaldb/shoal/internal/meta"
)

// Kind is the kind of an operation.
type Kind int

// Operation kinds.
const (
	AddLearner     Kind = iota + 1 // add Node as a learner of Shard
	Promote                        // make learner Node a voter of Shard
	TransferLeader                 // move Shard's leadership to Node
)

func (k Kind) String() string {
	switch k {
	case AddLearner:
		return "add-learner"
	case Promote:
		return "promote"
	case TransferLeader:
		return "transfer-leader"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Op is one placement operation.
type Op struct {
	Kind  Kind   `json:"kind"`
	Shard uint64 `json:"shard"`
	Node  uint64 `json:"node"`
}

func (o Op) String() string { return fmt.Sprintf("%v shard=%d node=%d", o.Kind, o.Shard, o.Node) }

// Config holds the targets. Zero values mean defaults.
type Config struct {
	ReplicationFactor int // data shards; default 3
	MetaReplicas      int // meta shard; default 5
	MaxOps            int // membership operations per plan; default 32
}

func (c *Config) defaults() {
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = 3
	}
	if c.MetaReplicas == 0 {
		c.MetaReplicas = 5
	}
	if c.MaxOps == 0 {
		c.MaxOps = 32
	}
}

// Plan returns the operations that move st toward its targets: every shard
// up-replicated to its replication factor on live nodes (a learner first,
// promoted once it has caught up), then data shard leadership spread evenly
// over live nodes (at most one transfer per plan, so leadership reports can
// catch up between plans).
func Plan(st *meta.State, nowMs int64, cfg Config) []Op {
	cfg.defaults()
	var live []uint64
	for _, id := range st.NodeIDs() {
		if st.Alive(id, nowMs) {
			live = append(live, id)
		}
	}
	if len(live) == 0 {
		return nil
	}
	replicasOn := make(map[uint64]int)
	for _, sh := range st.Shards {
		for _, id := range append(slices.Clone(sh.Voters), sh.Learners...) {
			replicasOn[id]++
		}
	}
	var ops []Op
	shards := append([]*meta.Shard{st.Shards[meta.ShardID]}, st.DataShards()...)
	for _, sh := range shards {
		if sh == nil || len(ops) >= cfg.MaxOps {
			continue
		}
		want := cfg.ReplicationFactor
		if sh.Meta {
			want = cfg.MetaReplicas
		}
		want = min(want, len(live))
		if len(sh.Learners) > 0 {
			ops = append(ops, Op{Kind: Promote, Shard: sh.ID, Node: sh.Learners[0]})
			continue
		}
		if len(sh.Voters) >= want {
			continue
		}
		var best uint64
		for _, id := range live {
			if slices.Contains(sh.Voters, id) {
				continue
			}
			if best == 0 || replicasOn[id] < replicasOn[best] {
				best = id
			}
		}
		if best != 0 {
			ops = append(ops, Op{Kind: AddLearner, Shard: sh.ID, Node: best})
			replicasOn[best]++
		}
	}
	if len(ops) > 0 {
		return ops
	}
	if op, ok := balanceLeaders(st, live); ok {
		ops = append(ops, op)
	}
	return ops
}

// balanceLeaders moves one data shard's leadership from the live node that
// leads most to a live voter of that shard that leads fewest, when they
// differ by more than one.
func balanceLeaders(st *meta.State, live []uint64) (Op, bool) {
	leads := make(map[uint64]int)
	for _, id := range live {
		leads[id] = 0
	}
	for _, sh := range st.DataShards() {
		if _, ok := leads[sh.Leader]; ok {
			leads[sh.Leader]++
		}
	}
	for _, sh := range st.DataShards() {
		from := sh.Leader
		if _, ok := leads[from]; !ok {
			continue
		}
		var to uint64
		for _, id := range sh.Voters {
			if _, ok := leads[id]; !ok || id == from {
				continue
			}
			if to == 0 || leads[id] < leads[to] {
				to = id
			}
		}
		if to != 0 && leads[from]-leads[to] > 1 && leads[from] == maxLeads(leads) {
			return Op{Kind: TransferLeader, Shard: sh.ID, Node: to}, true
		}
	}
	return Op{}, false
}

func maxLeads(leads map[uint64]int) int {
	m := 0
	for _, n := range leads {
		m = max(m, n)
	}
	return m
}
