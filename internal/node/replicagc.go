package node

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/shoaldb/shoal/internal/meta"
)

// removedQuery asks a shard's leader whether a replica left the shard.
type removedQuery struct {
	Shard   uint64 `json:"shard"`
	Replica uint64 `json:"replica"`
}

// collectReplicas deletes the local replicas that left their shard without
// learning it: a node that was down when it was removed (or replaced as
// dead) comes back with replicas no leader talks to any more. For each
// replica whose shard, in the meta view, does not list this node, it asks
// the shard's leader (store.IsRemoved) and removes the replica if so.
func (n *Node) collectReplicas() {
	view := n.view.Load()
	st := n.st.Load()
	if view == nil || st == nil {
		return
	}
	for shard, ri := range st.Replicas() {
		sh := view.Shards[shard]
		if sh == nil || sh.Leader == 0 || sh.Leader == n.ID() || ri.IsLeader ||
			slices.Contains(sh.Voters, n.ID()) || slices.Contains(sh.Learners, n.ID()) {
			continue
		}
		if shard == meta.ShardID && len(sh.Voters) == 0 {
			continue
		}
		body, _ := json.Marshal(removedQuery{Shard: shard, Replica: ri.ID})
		ctx, cancel := context.WithTimeout(n.ctx, 2*time.Second)
		out, err := n.net.Call(ctx, sh.Leader, methodRemoved, body)
		var removed bool
		if err == nil && json.Unmarshal(out, &removed) == nil && removed {
			err = st.RemoveStale(ctx, shard, ri.ID)
			n.log.Info("removed a replica its shard no longer lists", "shard", shard, "replica", ri.ID, "err", err)
		}
		cancel()
	}
}
