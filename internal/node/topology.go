package node

import (
	"github.com/shoaldb/shoal/internal/meta"
	"github.com/shoaldb/shoal/internal/server"
	"github.com/shoaldb/shoal/internal/store"
	"time"
)

// topoCache is a Topology built from one meta view and one store info
// snapshot; it is rebuilt when either changes.
type topoCache struct {
	view *meta.State
	info *map[uint64]store.ReplicaInfo
	at   int64 // unix seconds, to refresh liveness
	topo server.Topology
}

// Topology implements server.Cluster.
func (n *Node) Topology() server.Topology {
	view := n.view.Load()
	snap := n.st.Load().ReplicasSnapshot()
	now := time.Now()
	if c := n.topo.Load(); c != nil && c.view == view && c.info == snap && c.at == now.Unix() {
		return c.topo
	}
	t := server.Topology{Self: n.ID(), ClusterID: n.ident.GetClusterId()}
	for _, id := range view.NodeIDs() {
		nd := view.Nodes[id]
		t.Nodes = append(t.Nodes, server.Node{ID: id, Addr: nd.Addr, Alive: id == n.ID() || view.Alive(id, now.UnixMilli())})
	}
	info := *snap
	for _, sh := range view.DataShards() {
		s := server.Shard{ID: sh.ID, FirstSlot: sh.FirstSlot, LastSlot: sh.LastSlot, Replicas: sh.Voters, Leader: sh.Leader}
		// The local replica knows its shard's leader and members first.
		if ri, ok := info[sh.ID]; ok && ri.Initialized {
			if ri.Leader != 0 {
				s.Leader = ri.Leader
			}
			if len(ri.Voters) > 0 {
				s.Replicas = ri.Voters
			}
		}
		t.Shards = append(t.Shards, s)
	}
	n.topo.Store(&topoCache{view: view, info: snap, at: now.Unix(), topo: t})
	return t
}
