// Package simnet is an in-memory network for in-process multi-node tests.
//
// A Network connects Endpoints. An Endpoint has the node-facing methods of
// *transport.Transport (Addr, SetNodeID, SetPeer, RemovePeer, Send, Call,
// CallAddr, Close) and calls a transport.Handler with the same contract, so
// a node runs unchanged on either. The Network injects faults, all safe to
// change while traffic flows:
//
//   - Partition, Isolate and Cut block links between node ids (Cut one way
//     only); Heal removes all three. A blocked raft message is dropped and
//     reported to its sender; a blocked Call fails with an error wrapping
//     transport.ErrUnreachable, and also transport.ErrNotSent if the request
//     never left.
//   - SetDropRate drops that fraction of raft messages.
//   - SetDelay delays every raft message and each direction of a Call by a
//     random duration. Messages on one link stay in order unless
//     SetReorder(true).
//
// Every random choice is drawn from one generator seeded by New's seed.
//
// Each Endpoint delivers raft messages on its own goroutine. A MsgSnap is
// delivered whole through HandleRaft, after which the sender is told
// ReportSnapshot(failed=false); a blocked or dropped snapshot is reported
// failed. A Call runs the callee's HandleCall on the caller's goroutine.
//
// To crash a node, Close its Endpoint: messages in flight to it are lost.
// To restart it, register a new Endpoint at the same address.
package simnet

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/shoaldb/shoal/internal/transport"
)

// Network is a set of endpoints and the faults between them. The zero
// value is not usable; call New.
//
// Lock order: Network.mu before an endpoint's inbox.mu. Endpoint.mu is
// never held while taking another lock.
type Network struct {
	mu sync.Mutex
	// rng makes every random choice; guarded by mu.
	rng    *rand.Rand
	byAddr map[string]*Endpoint // live endpoints
	nextID int                  // for generated addresses

	// group is the partition group of each node; nil without a partition.
	// Nodes not in the map are in group 0.
	group    map[uint64]int
	isolated map[uint64]bool
	cut      map[[2]uint64]bool // {from, to}

	dropRate           float64
	minDelay, maxDelay time.Duration
	reorder            bool
	// last is the latest delivery time scheduled on each link, to keep
	// links in order under random delays.
	last map[[2]*Endpoint]time.Time
	seq  uint64 // orders packets scheduled for the same instant
}

// New returns an empty network whose random choices derive from seed.
func New(seed int64) *Network {
	return &Network{
		rng:      rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15)),
		byAddr:   make(map[string]*Endpoint),
		isolated: make(map[uint64]bool),
		cut:      make(map[[2]uint64]bool),
		last:     make(map[[2]*Endpoint]time.Time),
	}
}

// Endpoint registers a node with id (0 if not yet known; see SetNodeID) at
// addr, served by h. An empty addr gets a generated one. It panics if a
// live endpoint already has addr, as listening on it would fail.
func (n *Network) Endpoint(id uint64, addr string, h transport.Handler) *Endpoint {
	n.mu.Lock()
	defer n.mu.Unlock()
	if addr == "" {
		n.nextID++
		addr = fmt.Sprintf("simnet-%d", n.nextID)
	}
	if _, ok := n.byAddr[addr]; ok {
		panic(fmt.Sprintf("simnet: address %s in use", addr))
	}
	e := newEndpoint(n, addr, h)
	e.id.Store(id)
	n.byAddr[addr] = e
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.deliver()
	}()
	return e
}

// unregister removes a closing endpoint.
func (n *Network) unregister(e *Endpoint) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.byAddr[e.addr] == e {
		delete(n.byAddr, e.addr)
	}
	for k := range n.last {
		if k[0] == e || k[1] == e {
			delete(n.last, k)
		}
	}
}

// Partition splits the nodes into groups that cannot reach each other.
// Nodes named in no group form one more group together. It replaces any
// earlier partition; isolations and cuts stay.
func (n *Network) Partition(groups ...[]uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.group = make(map[uint64]int)
	for i, g := range groups {
		for _, id := range g {
			n.group[id] = i + 1
		}
	}
}

// Isolate cuts node id off from every other node, both ways.
func (n *Network) Isolate(id uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.isolated[id] = true
}

// Cut blocks traffic from node from to node to, but not back.
func (n *Network) Cut(from, to uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut[[2]uint64{from, to}] = true
}

// Heal removes every partition, isolation and cut. Drop rate and delay
// stay.
func (n *Network) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.group = nil
	clear(n.isolated)
	clear(n.cut)
}

// SetDropRate makes the network drop a fraction p (0 to 1) of raft
// messages. Calls are never dropped.
func (n *Network) SetDropRate(p float64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.dropRate = min(max(p, 0), 1)
}

// SetDelay delays each raft message and each direction of a Call by a
// duration drawn uniformly from [min, max].
func (n *Network) SetDelay(min, max time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.minDelay, n.maxDelay = min, max
	if n.maxDelay < n.minDelay {
		n.maxDelay = n.minDelay
	}
}

// SetReorder lets delayed raft messages overtake earlier ones on the same
// link. Off by default: a link delivers in order.
func (n *Network) SetReorder(on bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.reorder = on
}

// blockedLocked reports whether traffic from node from to node to is
// blocked.
func (n *Network) blockedLocked(from, to uint64) bool {
	if from == to {
		return false
	}
	return n.isolated[from] || n.isolated[to] || n.cut[[2]uint64{from, to}] ||
		(n.group != nil && n.group[from] != n.group[to])
}

func (n *Network) blocked(from, to uint64) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.blockedLocked(from, to)
}

func (n *Network) delayLocked() time.Duration {
	if n.maxDelay <= n.minDelay {
		return n.minDelay
	}
	return n.minDelay + time.Duration(n.rng.Int64N(int64(n.maxDelay-n.minDelay)+1))
}

// schedule decides the fate of a raft message from src to the endpoint at
// addr: it is either put in the destination's inbox, or dropped and false
// returned.
func (n *Network) schedule(src *Endpoint, addr string, p *packet, now time.Time) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	dst := n.byAddr[addr]
	if dst == nil || n.blockedLocked(p.fromID, dst.id.Load()) {
		return false
	}
	if n.dropRate > 0 && n.rng.Float64() < n.dropRate {
		return false
	}
	p.at = now.Add(n.delayLocked())
	link := [2]*Endpoint{src, dst}
	if !n.reorder {
		if last := n.last[link]; p.at.Before(last) {
			p.at = last
		}
		n.last[link] = p.at
	}
	n.seq++
	p.seq = n.seq
	dst.inbox.push(p)
	return true
}

// route finds the endpoint at addr for a Call from node from, and the
// delay of the request.
func (n *Network) route(from uint64, addr string) (*Endpoint, time.Duration, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	dst := n.byAddr[addr]
	if dst == nil || n.blockedLocked(from, dst.id.Load()) {
		return nil, 0, false
	}
	return dst, n.delayLocked(), true
}

// reply decides whether the reply of a Call served by dst reaches node
// to, and its delay.
func (n *Network) reply(dst *Endpoint, to uint64) (time.Duration, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.byAddr[dst.addr] != dst || n.blockedLocked(dst.id.Load(), to) {
		return 0, false
	}
	return n.delayLocked(), true
}
