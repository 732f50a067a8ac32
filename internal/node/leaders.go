package node

import (
	"context"
	"sync"
	"time"
)

// leaderWatch gives each shard a context that is cancelled when the
// shard's leader, as this node knows it, moves from one node to another.
// A command forwarded to a leader that stops answering without closing its
// connections (a paused process, a half-open network) would otherwise
// hang until its deadline although a new leader already serves the shard.
type leaderWatch struct {
	mu      sync.Mutex
	leaders map[uint64]uint64 // shard -> last known leader
	ctxs    map[uint64]watchCtx
}

type watchCtx struct {
	ctx    context.Context
	cancel context.CancelFunc
}

// ctx returns the context of shard's current leadership.
func (w *leaderWatch) ctx(shard uint64) context.Context {
	w.mu.Lock()
	defer w.mu.Unlock()
	c, ok := w.ctxs[shard]
	if !ok {
		c.ctx, c.cancel = context.WithCancel(context.Background())
		w.ctxs[shard] = c
	}
	return c.ctx
}

// observe records shard's leader, cancelling its context if the leader
// moved from one known node to another.
func (w *leaderWatch) observe(shard, leader uint64) {
	if leader == 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	old := w.leaders[shard]
	w.leaders[shard] = leader
	if old == 0 || old == leader {
		return
	}
	if c, ok := w.ctxs[shard]; ok {
		c.cancel()
		delete(w.ctxs, shard)
	}
}

// watchLeaders feeds the watch from the local replicas (which learn a new
// leader first) and the meta view.
func (n *Node) watchLeaders() {
	n.every(50*time.Millisecond, func() {
		for id, ri := range n.st.Load().Replicas() {
			n.leaders.observe(id, ri.Leader)
		}
		for id, sh := range n.view.Load().Shards {
			if _, local := n.st.Load().Replica(id); !local {
				n.leaders.observe(id, sh.Leader)
			}
		}
	})
}
