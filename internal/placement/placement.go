// Package placement decides where replicas and leaders should be. Plan is
// a pure function: the meta state and the time in, an ordered list of
// operations out. The node that leads the meta shard runs it periodically
// and carries the operations out at each shard's leader.
//
// A replica moves by being added elsewhere first, as a learner, which is
// promoted once it has caught up in the same configuration change (raft's
// joint consensus) that removes the replica it replaces: a shard never has
// fewer voters than its replication factor because of a planned change,
// nor more (four voters, one of them dead, would need three for a
// quorum: one more failure and the shard could neither serve nor repair
// itself). The planner
//   - replaces the replicas of dead nodes (no heartbeat for DeadAfter) and
//     of nodes being drained, and up-replicates shards below their
//     replication factor;
//   - removes voters past the factor: a dead node's first, then the one on
//     the node holding the most replicas, with leadership handed away from
//     it first;
//   - when nothing else is under way, moves one replica at a time from the
//     live node holding the most to the one holding the fewest, while they
//     differ by two or more (so a balanced cluster plans nothing);
//   - spreads data shard leadership over live nodes;
//   - forgets a drained node once it holds nothing and was stopped.
package placement

import (
	"cmp"
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
	Remove                         // remove Node's replica of Shard
	Forget                         // remove drained, stopped Node from the cluster (Shard: the meta shard)
)

func (k Kind) String() string {
	switch k {
	case AddLearner:
		return "add-learner"
	case Promote:
		return "promote"
	case TransferLeader:
		return "transfer-leader"
	case Remove:
		return "remove"
	case Forget:
		return "forget"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Op is one placement operation.
type Op struct {
	Kind  Kind   `json:"kind"`
	Shard uint64 `json:"shard"`
	Node  uint64 `json:"node"`
	// Keep, for Remove: the voters the shard must keep. The shard's
	// leader checks it against its current configuration, which may be
	// newer than the view the plan was made from.
	Keep int `json:"keep,omitempty"`
	// Replace, for Promote: the voter removed in the same configuration
	// change (raft's joint consensus), so that the shard's voters never
	// outnumber its replication factor: four voters with one dead would
	// need three of them for a quorum.
	Replace uint64 `json:"replace,omitempty"`
}

func (o Op) String() string {
	if o.Replace != 0 {
		return fmt.Sprintf("%v shard=%d node=%d replacing=%d", o.Kind, o.Shard, o.Node, o.Replace)
	}
	return fmt.Sprintf("%v shard=%d node=%d", o.Kind, o.Shard, o.Node)
}

// DefaultDeadAfterMs is how long a node may miss heartbeats before its
// replicas are replaced elsewhere, as CockroachDB's
// server.time_until_store_dead: long enough that a restart or a short
// network cut costs no data movement.
const DefaultDeadAfterMs int64 = 5 * 60 * 1000

// Config holds the targets. Zero values mean defaults.
type Config struct {
	ReplicationFactor int // data shards; default 3
	MetaReplicas      int // meta shard; default 5
	MaxOps            int // membership operations per plan; default 32
	// DeadAfterMs: a node that has not heartbeated for this long is dead;
	// default DefaultDeadAfterMs.
	DeadAfterMs int64
	// WatchingSinceMs is when the planner's node began to watch the
	// heartbeats (it started, or came to lead the meta shard): no node is
	// dead before DeadAfterMs past it, so a cluster that restarts after
	// being down a while does not find every node dead.
	WatchingSinceMs int64
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
	if c.DeadAfterMs == 0 {
		c.DeadAfterMs = DefaultDeadAfterMs
	}
}

// NodeState is what the planner makes of a node's heartbeats.
type NodeState int

// Node states.
const (
	Live    NodeState = iota // heartbeated within meta.LivenessTimeoutMs
	Suspect                  // missed heartbeats, not yet for DeadAfterMs
	Dead                     // missed heartbeats for DeadAfterMs: its replicas are replaced
)

func (s NodeState) String() string {
	switch s {
	case Live:
		return "live"
	case Suspect:
		return "suspect"
	case Dead:
		return "dead"
	}
	return fmt.Sprintf("NodeState(%d)", int(s))
}

// StateOf returns the state of node id at nowMs.
func StateOf(st *meta.State, id uint64, nowMs int64, cfg Config) NodeState {
	cfg.defaults()
	n := st.Nodes[id]
	if n == nil {
		return Dead
	}
	if nowMs-n.HeartbeatMs <= meta.LivenessTimeoutMs {
		return Live
	}
	if nowMs-max(n.HeartbeatMs, cfg.WatchingSinceMs) > cfg.DeadAfterMs {
		return Dead
	}
	return Suspect
}

// planner holds one Plan's view of the cluster.
type planner struct {
	st       *meta.State
	cfg      Config
	state    map[uint64]NodeState
	live     []uint64       // live nodes that take replicas (not decommissioning), in order
	replicas map[uint64]int // replicas (voters and learners) per node
	ops      []Op
	// urgent: some shard is short of voters on live nodes, has a voter
	// too many or a learner on a node that takes none: no rebalancing move
	// starts until that is repaired.
	urgent bool
	// incoming marks the nodes a learner is being added to: each takes
	// one move at a time.
	incoming map[uint64]bool
}

// Plan returns the operations that move st toward its targets.
func Plan(st *meta.State, nowMs int64, cfg Config) []Op {
	cfg.defaults()
	p := &planner{st: st, cfg: cfg, state: map[uint64]NodeState{}, replicas: map[uint64]int{}, incoming: map[uint64]bool{}}
	for _, id := range st.NodeIDs() {
		p.state[id] = StateOf(st, id, nowMs, cfg)
		if p.state[id] == Live && !st.Nodes[id].Decommissioning {
			p.live = append(p.live, id)
		}
	}
	if len(p.live) == 0 {
		return nil
	}
	for _, sh := range st.Shards {
		for _, id := range members(sh) {
			p.replicas[id]++
		}
	}
	shards := append([]*meta.Shard{st.Shards[meta.ShardID]}, st.DataShards()...)
	for _, sh := range shards {
		if sh != nil && len(p.ops) < cfg.MaxOps {
			p.repair(sh)
		}
	}
	// A drained node that was stopped, holding nothing, is forgotten.
	for _, id := range st.NodeIDs() {
		if p.draining(id) && p.state[id] != Live && p.replicas[id] == 0 {
			p.ops = append(p.ops, Op{Kind: Forget, Shard: meta.ShardID, Node: id})
		}
	}
	if p.urgent {
		return p.ops
	}
	p.rebalance()
	if len(p.ops) > 0 || len(p.incoming) > 0 {
		return p.ops
	}
	if op, ok := balanceLeaders(st, p.live); ok {
		return []Op{op}
	}
	return nil
}

func members(sh *meta.Shard) []uint64 { return append(slices.Clone(sh.Voters), sh.Learners...) }

// want is the number of voters sh should have.
func (p *planner) want(sh *meta.Shard) int {
	n := p.cfg.ReplicationFactor
	if sh.Meta {
		n = p.cfg.MetaReplicas
	}
	return min(n, len(p.live))
}

// repair plans at most one membership change of sh (raft runs one at a
// time): a learner is promoted, in place of a voter if the shard has its
// voters (a dead or draining one, or one of a rebalancing move), or
// removed if its node is not live; a learner is added while too few voters
// are on nodes that are neither dead nor draining; a voter too many is
// removed.
func (p *planner) repair(sh *meta.Shard) {
	want := p.want(sh)
	if len(sh.Learners) > 0 {
		l := sh.Learners[0]
		p.incoming[l] = true
		if !p.takes(l) {
			p.urgent = true
			p.remove(sh, l)
			return
		}
		op := Op{Kind: Promote, Shard: sh.ID, Node: l}
		if len(sh.Voters) >= want {
			old, ok := p.surplus(sh)
			if !ok {
				return // a voter is down: wait, rather than change the quorum
			}
			if old == sh.Leader {
				p.handOff(sh, old)
				return
			}
			op.Replace = old
			p.replicas[old]--
		}
		p.ops = append(p.ops, op)
		return
	}
	standing := 0 // voters on nodes that are not dead nor being drained
	for _, v := range sh.Voters {
		if p.state[v] != Dead && !p.draining(v) {
			standing++
		}
	}
	if standing < want {
		p.urgent = true
		if to, ok := p.emptiest(sh); ok {
			p.ops = append(p.ops, Op{Kind: AddLearner, Shard: sh.ID, Node: to})
			p.replicas[to]++
		}
		return
	}
	if len(sh.Voters) > want {
		p.urgent = true
		if v, ok := p.surplus(sh); ok {
			p.remove(sh, v)
		}
	}
}

// takes reports whether node is live and may hold replicas.
func (p *planner) takes(node uint64) bool { return slices.Contains(p.live, node) }

// draining reports whether node is being decommissioned.
func (p *planner) draining(node uint64) bool {
	n := p.st.Nodes[node]
	return n != nil && n.Decommissioning
}

// emptiest returns the live node without a replica of sh that holds the
// fewest replicas.
func (p *planner) emptiest(sh *meta.Shard) (uint64, bool) {
	var best uint64
	for _, id := range p.live {
		if slices.Contains(sh.Voters, id) || slices.Contains(sh.Learners, id) {
			continue
		}
		if best == 0 || p.replicas[id] < p.replicas[best] {
			best = id
		}
	}
	return best, best != 0
}

// surplus picks the voter of sh to remove: one on a dead node, else, if
// every voter is live (removing one cannot cost the quorum), one on a node
// being drained, else the one on the node holding the most replicas.
func (p *planner) surplus(sh *meta.Shard) (uint64, bool) {
	for _, v := range sh.Voters {
		if p.state[v] == Dead {
			return v, true
		}
	}
	for _, v := range sh.Voters {
		if p.state[v] != Live {
			return 0, false
		}
	}
	for _, v := range sh.Voters {
		if p.draining(v) {
			return v, true
		}
	}
	return slices.MaxFunc(sh.Voters, func(a, b uint64) int {
		return cmp.Or(cmp.Compare(p.replicas[a], p.replicas[b]), cmp.Compare(a, b))
	}), true
}

// remove plans the removal of node's replica of sh, by its leader: if the
// node leads sh, its leadership goes to another live voter first.
func (p *planner) remove(sh *meta.Shard, node uint64) {
	if sh.Leader == node {
		p.handOff(sh, node)
		return
	}
	p.ops = append(p.ops, Op{Kind: Remove, Shard: sh.ID, Node: node, Keep: p.want(sh)})
	p.replicas[node]--
}

// handOff plans moving sh's leadership from node to another live voter.
func (p *planner) handOff(sh *meta.Shard, node uint64) {
	for _, v := range sh.Voters {
		if v != node && p.takes(v) {
			p.ops = append(p.ops, Op{Kind: TransferLeader, Shard: sh.ID, Node: v})
			return
		}
	}
}

// rebalance plans replica moves of data shards from the live nodes
// holding the most replicas to those holding the fewest, while they differ
// by two or more: a learner is added on the emptier node; once it has
// caught up, repair promotes it in place of the fuller node's voter. Each
// node takes one incoming move at a time (counts include the moves under
// way), so a node that joins is filled at the pace of one snapshot at a
// time while several join in parallel.
func (p *planner) rebalance() {
	less := func(a, b uint64) int { return cmp.Or(cmp.Compare(p.replicas[a], p.replicas[b]), cmp.Compare(a, b)) }
	moving := map[uint64]bool{} // shards given a move in this plan
	for len(p.ops) < p.cfg.MaxOps {
		var free []uint64
		for _, id := range p.live {
			if !p.incoming[id] {
				free = append(free, id)
			}
		}
		if len(free) == 0 {
			return
		}
		from, to := slices.MaxFunc(p.live, less), slices.MinFunc(free, less)
		if p.replicas[from]-p.replicas[to] < 2 {
			return
		}
		planned := false
		for _, sh := range p.st.DataShards() {
			if !moving[sh.ID] && len(sh.Learners) == 0 && slices.Contains(sh.Voters, from) && !slices.Contains(sh.Voters, to) {
				p.ops = append(p.ops, Op{Kind: AddLearner, Shard: sh.ID, Node: to})
				moving[sh.ID], p.incoming[to] = true, true
				p.replicas[to]++
				p.replicas[from]--
				planned = true
				break
			}
		}
		if !planned {
			return
		}
	}
}

// balanceLeaders moves one data shard's leadership between live nodes:
// of the transfers from a shard's leader to another of its live voters,
// the one between the nodes whose counts of led shards differ most, if by
// more than one. Each such transfer narrows the spread, so a cluster
// converges and then plans none.
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
	var best Op
	bestGap := 1
	for _, sh := range st.DataShards() {
		from := sh.Leader
		if _, ok := leads[from]; !ok {
			continue
		}
		for _, id := range sh.Voters {
			if _, ok := leads[id]; ok && id != from && leads[from]-leads[id] > bestGap {
				best, bestGap = Op{Kind: TransferLeader, Shard: sh.ID, Node: id}, leads[from]-leads[id]
			}
		}
	}
	return best, best.Kind != 0
}

// UnderReplicated counts the data shards with fewer voters on nodes
// neither dead nor draining than their replication factor.
func UnderReplicated(st *meta.State, nowMs int64, cfg Config) int {
	cfg.defaults()
	under := 0
	for _, sh := range st.DataShards() {
		standing := 0
		for _, v := range sh.Voters {
			if nd := st.Nodes[v]; nd != nil && !nd.Decommissioning && StateOf(st, v, nowMs, cfg) != Dead {
				standing++
			}
		}
		if standing < cfg.ReplicationFactor {
			under++
		}
	}
	return under
}

// DecommissionBlockers returns the shards that draining node would leave
// short: those it holds a replica of when fewer live nodes that take
// replicas would remain than their replication factor, and those whose
// other live voters and a replacement would not make a quorum. Empty: the
// node can be drained.
func DecommissionBlockers(st *meta.State, node uint64, nowMs int64, cfg Config) []uint64 {
	cfg.defaults()
	takers := 0
	for _, id := range st.NodeIDs() {
		if id != node && !st.Nodes[id].Decommissioning && StateOf(st, id, nowMs, cfg) == Live {
			takers++
		}
	}
	var out []uint64
	for _, sh := range append([]*meta.Shard{st.Shards[meta.ShardID]}, st.DataShards()...) {
		if sh == nil || !slices.Contains(members(sh), node) {
			continue
		}
		want := cfg.ReplicationFactor
		if sh.Meta {
			want = min(cfg.MetaReplicas, max(takers, 1))
		}
		liveOthers := 0
		for _, v := range sh.Voters {
			if v != node && StateOf(st, v, nowMs, cfg) == Live {
				liveOthers++
			}
		}
		if takers < want || liveOthers+1 < want/2+1 {
			out = append(out, sh.ID)
		}
	}
	return out
}
