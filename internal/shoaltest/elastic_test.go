package shoaltest

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoaldb/shoal/internal/meta"
)

// spread returns, from node 1's view, each node's replicas and leaders of
// data shards, and an error while any data shard has other than want
// voters or a learner.
func spread(c *Cluster, want int) (replicas, leaders map[uint64]int, err error) {
	replicas, leaders = map[uint64]int{}, map[uint64]int{}
	for _, sh := range c.Node(1).Topology().Shards {
		if sh.ID == meta.ShardID {
			continue
		}
		if len(sh.Replicas) != want {
			err = fmt.Errorf("shard %d has replicas %v, want %d", sh.ID, sh.Replicas, want)
		}
		for _, r := range sh.Replicas {
			replicas[r]++
		}
		leaders[sh.Leader]++
	}
	return replicas, leaders, err
}

// waitHolds waits until every shard has 3 voters and node holds some.
func waitHolds(c *Cluster, node uint64) {
	c.t.Helper()
	c.WaitFor(90*time.Second, fmt.Sprintf("node %d holding replicas", node), func() error {
		replicas, _, err := spread(c, 3)
		if err != nil {
			return err
		}
		if replicas[node] == 0 {
			return fmt.Errorf("node %d holds no replica yet: %v", node, replicas)
		}
		return nil
	})
}

// writeKeys writes n keys through node 1 and returns a check that reads
// them back through node id.
func writeKeys(t *testing.T, c *Cluster, n int) func(id uint64) {
	cl := c.Client(1)
	for i := range n {
		if err := cl.Set(ctxT(t, 10*time.Second), "key"+strconv.Itoa(i), i, 0).Err(); err != nil {
			t.Fatalf("SET key%d: %v", i, err)
		}
	}
	return func(id uint64) {
		t.Helper()
		cl := c.Client(id)
		for i := range n {
			v, err := cl.Get(ctxT(t, 10*time.Second), "key"+strconv.Itoa(i)).Result()
			if err != nil || v != strconv.Itoa(i) {
				t.Fatalf("GET key%d via node %d = %q, %v", i, id, v, err)
			}
		}
	}
}

// Two nodes join a loaded 3-node cluster: replicas and leaders spread onto
// them with no command, and no write is lost.
func TestNewNodesTakeTheirShare(t *testing.T) {
	c := Start(t, 3, Options{Shards: 10})
	c.WaitFor(60*time.Second, "fully replicated", c.FullyReplicated(3))
	check := writeKeys(t, c, 200)
	c.Add()
	c.Add()
	// 30 data replicas over 5 nodes: 6 each; 10 leaders: 2 each (one
	// either way: placement stops once counts differ by one at most).
	c.WaitFor(90*time.Second, "replicas and leaders spread over 5 nodes", func() error {
		replicas, leaders, err := spread(c, 3)
		if err != nil {
			return err
		}
		for id := uint64(1); id <= 5; id++ {
			if replicas[id] < 5 || replicas[id] > 7 || leaders[id] < 1 || leaders[id] > 3 {
				return fmt.Errorf("replicas %v leaders %v", replicas, leaders)
			}
		}
		return nil
	})
	for id := uint64(1); id <= 5; id++ {
		check(id)
	}
	// A replica that left a node was deleted there.
	for id := uint64(1); id <= 5; id++ {
		replicas, _, _ := spread(c, 3)
		if got, want := len(c.Node(id).Store().Replicas()), replicas[id]; got < want || got > want+1 { // +1: the meta shard
			t.Errorf("node %d holds %d replicas, the topology gives it %d data shards", id, got, want)
		}
	}
}

// A node that dies for good is replaced: after DeadAfter its replicas are
// rebuilt on the other nodes and removed from every shard.
func TestDeadNodeIsReplaced(t *testing.T) {
	c := Start(t, 4, Options{Shards: 6, DeadAfter: 4 * time.Second})
	waitHolds(c, 4)
	check := writeKeys(t, c, 100)
	old := map[uint64]uint64{} // node 4's replicas: shard -> replica id
	for shard, ri := range c.Node(4).Store().Replicas() {
		old[shard] = ri.ID
	}
	c.Crash(4)
	c.WaitFor(90*time.Second, "node 4's replicas replaced", func() error {
		replicas, _, err := spread(c, 3)
		if err != nil {
			return err
		}
		if replicas[4] != 0 {
			return fmt.Errorf("node 4 still holds replicas: %v", replicas)
		}
		for _, sh := range c.Node(1).Topology().Shards {
			if slices.Contains(sh.Replicas, 4) {
				return fmt.Errorf("shard %d lists node 4: %v", sh.ID, sh.Replicas)
			}
		}
		return nil
	})
	for id := uint64(1); id <= 3; id++ {
		check(id)
	}
	// Back after it was replaced, node 4 finds its replicas removed: each
	// is deleted (asked of its shard's leader, or on the first message for
	// a newer replica there), and the node takes new work.
	c.Restart(4)
	c.WaitFor(90*time.Second, "node 4's old replicas deleted", func() error {
		for shard, ri := range c.Node(4).Store().Replicas() {
			if old[shard] == ri.ID {
				return fmt.Errorf("node 4 still holds replica %#x of shard %d", ri.ID, shard)
			}
		}
		return nil
	})
	check(4)
}

// Draining a node moves its replicas away, adding each new replica before
// removing the old; then no shard needs it. Draining one of the three
// nodes left is refused up front with the shards it would leave short.
func TestDecommission(t *testing.T) {
	c := Start(t, 4, Options{Shards: 6})
	waitHolds(c, 4)
	check := writeKeys(t, c, 100)
	if v, err := c.Node(2).Decommission(ctxT(t, 10*time.Second), "4"); err != nil || v.IsError() {
		t.Fatalf("decommission node 4: %v %v", v, err)
	}
	c.WaitFor(90*time.Second, "node 4 drained", func() error {
		if n := len(c.Node(4).Store().Replicas()); n != 0 {
			return fmt.Errorf("node 4 still holds %d replicas", n)
		}
		for _, st := range c.Node(1).NodeStatus() {
			if st.ID == 4 && st.State != "decommissioned" {
				return fmt.Errorf("node 4 is %s", st.State)
			}
		}
		_, _, err := spread(c, 3)
		return err
	})
	for id := uint64(1); id <= 4; id++ {
		check(id) // node 4 still forwards
	}
	m := metricValues(t, c.Node(1))
	if m[`shoal_nodes{state="decommissioned"}`] != 1 || m[`shoal_nodes{state="live"}`] != 3 || m["shoal_shards_under_replicated"] != 0 {
		t.Errorf("node 1's metrics: decommissioned %v, live %v, under-replicated %v", m[`shoal_nodes{state="decommissioned"}`],
			m[`shoal_nodes{state="live"}`], m["shoal_shards_under_replicated"])
	}
	if got := metricValues(t, c.Node(4))["shoal_store_replicas_removed_total"]; got == 0 {
		t.Error("node 4 counts no removed replica")
	}
	var promotes float64 // node 4's replicas were replaced: promotions in their place
	for id := uint64(1); id <= 4; id++ {
		promotes += metricValues(t, c.Node(id))[`shoal_placement_ops_total{kind="promote"}`]
	}
	if promotes == 0 {
		t.Error("no node counts a placement promote")
	}
	// Stopped, the drained node is forgotten: no longer listed.
	c.Crash(4)
	c.WaitFor(30*time.Second, "node 4 forgotten", func() error {
		for _, st := range c.Node(1).NodeStatus() {
			if st.ID == 4 {
				return fmt.Errorf("node 4 is listed, %s", st.State)
			}
		}
		return nil
	})
	v, err := c.Node(1).Decommission(ctxT(t, 10*time.Second), "3")
	if err != nil || !v.IsError() || !strings.Contains(string(v.Str), "cannot be drained: shards") {
		t.Errorf("draining a third of 3 nodes: %v %v, want a refusal naming the shards", v, err)
	}
}
