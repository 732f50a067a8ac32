package node

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoaldb/shoal/internal/meta"
	"github.com/shoaldb/shoal/internal/placement"
	"github.com/shoaldb/shoal/internal/resp"
	"github.com/shoaldb/shoal/internal/server"
)

// planConfig is the placement configuration this node plans with.
func (n *Node) planConfig() placement.Config {
	return placement.Config{
		ReplicationFactor: n.cfg.ReplicationFactor,
		DeadAfterMs:       n.cfg.DeadAfter.Milliseconds(),
		WatchingSinceMs:   n.placing.sinceMs.Load(),
	}
}

// NodeStatus implements server.Cluster: every node of the meta view with
// its state and its replicas.
func (n *Node) NodeStatus() []server.NodeStatus {
	return n.nodeStatus(n.view.Load(), time.Now().UnixMilli())
}

// nodeStatus is NodeStatus from view, which it only reads.
func (n *Node) nodeStatus(view *meta.State, now int64) []server.NodeStatus {
	cfg := n.planConfig()
	byID := map[uint64]*server.NodeStatus{}
	var out []server.NodeStatus
	for _, id := range view.NodeIDs() {
		nd := view.Nodes[id]
		out = append(out, server.NodeStatus{ID: id, Addr: nd.Addr, State: placement.StateOf(view, id, now, cfg).String()})
	}
	for i := range out {
		byID[out[i].ID] = &out[i]
	}
	for _, sh := range view.Shards {
		for _, v := range sh.Voters {
			if s := byID[v]; s != nil {
				s.Replicas++
				s.Bytes += sh.Bytes
			}
		}
		for _, l := range sh.Learners {
			if s := byID[l]; s != nil {
				s.Replicas++
				s.Learners++
				s.Bytes += sh.Bytes
			}
		}
		if s := byID[sh.Leader]; s != nil && !sh.Meta {
			s.Leaders++
		}
	}
	for i := range out {
		s := &out[i]
		if view.Nodes[s.ID].Decommissioning && s.State != "dead" {
			s.State = "decommissioning"
			if s.Replicas == 0 {
				s.State = "decommissioned"
			}
		}
	}
	return out
}

// Decommission implements server.Cluster.
func (n *Node) Decommission(ctx context.Context, target string) (resp.Value, error) {
	view := n.freshView()
	id, ok := findNode(view, target)
	if !ok {
		return resp.Err(fmt.Sprintf("ERR no node %q: give a node id or address (SHOAL NODES lists them)", target)), nil
	}
	if blocked := placement.DecommissionBlockers(view, id, time.Now().UnixMilli(), n.planConfig()); len(blocked) > 0 {
		ids := make([]string, len(blocked))
		for i, sh := range blocked {
			ids[i] = strconv.FormatUint(sh, 10)
		}
		return resp.Err(fmt.Sprintf("ERR node %d cannot be drained: shards %s would be left with fewer replicas "+
			"than the replication factor (%d) or without a quorum of live replicas; add nodes or bring them back first",
			id, strings.Join(ids, ","), n.cfg.ReplicationFactor)), nil
	}
	if _, err := n.proposeMeta(ctx, []byte(meta.CmdDecommission), []byte(strconv.FormatUint(id, 10))); err != nil {
		return resp.Value{}, err
	}
	n.log.Info("decommissioning node", "node", id)
	return resp.OK, nil
}

// findNode returns the node named by target: its id, client address or
// bus address.
func findNode(view *meta.State, target string) (uint64, bool) {
	if id, err := strconv.ParseUint(target, 10, 64); err == nil {
		_, ok := view.Nodes[id]
		return id, ok
	}
	for id, nd := range view.Nodes {
		if nd.Addr == target || nd.BusAddr == target {
			return id, true
		}
	}
	return 0, false
}

// placementCollector exports the cluster's shape as this node sees it, and
// the placement operations it carried out while leading the meta shard.
type placementCollector struct{ n *Node }

var (
	descNodes = prometheus.NewDesc("shoal_nodes", "Nodes of the cluster by state (live, suspect, dead, decommissioning, decommissioned).",
		[]string{"state"}, nil)
	descUnder = prometheus.NewDesc("shoal_shards_under_replicated",
		"Shards with fewer voters on nodes that are neither dead nor draining than their replication factor.", nil, nil)
	descLearners = prometheus.NewDesc("shoal_replicas_being_added", "Replicas added to a shard and not yet promoted to voter (moves under way).", nil, nil)
	descOps      = prometheus.NewDesc("shoal_placement_ops_total", "Placement operations this node carried out as the meta leader, by kind.",
		[]string{"kind"}, nil)
)

func (c placementCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descNodes
	ch <- descUnder
	ch <- descLearners
	ch <- descOps
}

func (c placementCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	if n.view.Load() == nil || n.st.Load() == nil {
		return
	}
	view, now := n.view.Load(), time.Now().UnixMilli()
	states := map[string]int{"live": 0, "suspect": 0, "dead": 0, "decommissioning": 0, "decommissioned": 0}
	learners := 0
	for _, s := range n.nodeStatus(view, now) {
		states[s.State]++
		learners += s.Learners
	}
	for s, k := range states {
		ch <- prometheus.MustNewConstMetric(descNodes, prometheus.GaugeValue, float64(k), s)
	}
	under := placement.UnderReplicated(view, now, n.planConfig())
	ch <- prometheus.MustNewConstMetric(descUnder, prometheus.GaugeValue, float64(under))
	ch <- prometheus.MustNewConstMetric(descLearners, prometheus.GaugeValue, float64(learners))
	for k := placement.AddLearner; k <= placement.Forget; k++ {
		ch <- prometheus.MustNewConstMetric(descOps, prometheus.CounterValue, float64(n.placeOps[k].Load()), k.String())
	}
}
