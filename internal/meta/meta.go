// Package meta is the state machine of the meta shard: the node registry
// with liveness heartbeats and every shard's descriptor (slot range,
// replicas, last reported leader). Like kv it is deterministic: the time of
// a heartbeat is the proposer's, carried in the command.
//
// The state is small (one record per node and per shard) and is stored as
// one JSON record in the meta shard's span; every command rewrites it.
package meta

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/shoaldb/shoal/internal/keys"
	"github.com/shoaldb/shoal/internal/kv"
	"github.com/shoaldb/shoal/internal/resp"
	"github.com/shoaldb/shoal/internal/shoalpb"
)

// ShardID is the id of the meta shard itself.
const ShardID = 1

// LivenessTimeoutMs is how long after its last heartbeat a node counts as
// alive.
const LivenessTimeoutMs = 5000

// Command names of the meta state machine.
const (
	CmdAddNode   = "META.ADDNODE"   // addr busaddr -> node id
	CmdHeartbeat = "META.HEARTBEAT" // json(Heartbeat) -> OK
)

// State is the whole meta state.
type State struct {
	ClusterID  string            `json:"cluster_id"`
	NextNodeID uint64            `json:"next_node_id"`
	Nodes      map[uint64]*Node  `json:"nodes"`
	Shards     map[uint64]*Shard `json:"shards"`
}

// Node is one registered node.
type Node struct {
	ID          uint64 `json:"id"`
	Addr        string `json:"addr"`     // client (RESP) address
	BusAddr     string `json:"bus_addr"` // node-to-node address
	HeartbeatMs int64  `json:"heartbeat_ms"`
}

// Shard is a shard's descriptor plus what its leader last reported.
type Shard struct {
	ID        uint64   `json:"id"`
	Meta      bool     `json:"meta,omitempty"`
	FirstSlot int      `json:"first_slot"`
	LastSlot  int      `json:"last_slot"`
	Voters    []uint64 `json:"voters"`
	Learners  []uint64 `json:"learners,omitempty"`
	Leader    uint64   `json:"leader"`
	Term      uint64   `json:"term"`
	// Generation counts changes of the slot range or the members; a
	// cached descriptor with a lower generation is stale.
	Generation uint64 `json:"generation"`
}

// Descriptor returns the shard's descriptor.
func (s *Shard) Descriptor() *shoalpb.ShardDescriptor {
	return &shoalpb.ShardDescriptor{Id: s.ID, Meta: s.Meta, FirstSlot: int32(s.FirstSlot), LastSlot: int32(s.LastSlot)}
}

// Heartbeat is a node's periodic report: it is alive, and the shards it
// leads have these members.
type Heartbeat struct {
	Node    uint64         `json:"node"`
	Reports []LeaderReport `json:"reports,omitempty"`
}

// LeaderReport is a leader's view of its shard.
type LeaderReport struct {
	Shard    uint64   `json:"shard"`
	Term     uint64   `json:"term"`
	Voters   []uint64 `json:"voters"`
	Learners []uint64 `json:"learners,omitempty"`
}

// Alive reports whether node id heartbeated within the liveness timeout
// before nowMs.
func (s *State) Alive(id uint64, nowMs int64) bool {
	n := s.Nodes[id]
	return n != nil && nowMs-n.HeartbeatMs <= LivenessTimeoutMs
}

// NodeIDs returns the registered node ids in order.
func (s *State) NodeIDs() []uint64 {
	ids := make([]uint64, 0, len(s.Nodes))
	for id := range s.Nodes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// DataShards returns the data shards ordered by first slot.
func (s *State) DataShards() []*Shard {
	var out []*Shard
	for _, sh := range s.Shards {
		if !sh.Meta {
			out = append(out, sh)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].FirstSlot < out[j].FirstSlot })
	return out
}

// New returns the state of a new cluster whose first node is node 1 and
// whose slots are split evenly over dataShards shards (ids 2, 3, ...).
func New(clusterID, addr, busAddr string, dataShards int, nowMs int64) *State {
	st := &State{
		ClusterID: clusterID, NextNodeID: 2,
		Nodes:  map[uint64]*Node{1: {ID: 1, Addr: addr, BusAddr: busAddr, HeartbeatMs: nowMs}},
		Shards: map[uint64]*Shard{ShardID: {ID: ShardID, Meta: true, Voters: []uint64{1}}},
	}
	for i := range dataShards {
		id := uint64(2 + i)
		st.Shards[id] = &Shard{
			ID:        id,
			FirstSlot: i * keys.SlotCount / dataShards,
			LastSlot:  (i+1)*keys.SlotCount/dataShards - 1,
			Voters:    []uint64{1},
		}
	}
	return st
}

var stateKey = keys.Meta("state")

// Load reads the state from the meta shard's span.
func Load(r kv.Reader) (*State, error) {
	b, ok, err := r.Get(stateKey)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("meta: no state")
	}
	return Decode(b)
}

// Decode parses an encoded state.
func Decode(b []byte) (*State, error) {
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("meta: decode state: %w", err)
	}
	return &st, nil
}

// Encode returns the state's encoding.
func (s *State) Encode() []byte {
	b, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("meta: encode state: %v", err))
	}
	return b
}

// Save writes the state.
func Save(w kv.Writer, st *State) error { return w.Set(stateKey, st.Encode()) }

// Apply applies one meta command.
func Apply(w kv.Writer, cmd *shoalpb.Command) (resp.Value, error) {
	st, err := Load(w)
	if err != nil {
		return resp.Value{}, err
	}
	args := cmd.GetArgs()
	if len(args) == 0 {
		return resp.Err("ERR empty meta command"), nil
	}
	var reply resp.Value
	switch strings.ToUpper(string(args[0])) {
	case CmdAddNode:
		if len(args) != 3 {
			return resp.Err("ERR wrong number of arguments for meta add node"), nil
		}
		id := st.NextNodeID
		st.NextNodeID++
		st.Nodes[id] = &Node{ID: id, Addr: string(args[1]), BusAddr: string(args[2]), HeartbeatMs: cmd.GetNowMs()}
		reply = resp.BulkString(strconv.FormatUint(id, 10))
	case CmdHeartbeat:
		if len(args) != 2 {
			return resp.Err("ERR wrong number of arguments for meta heartbeat"), nil
		}
		var hb Heartbeat
		if err := json.Unmarshal(args[1], &hb); err != nil {
			return resp.Err("ERR bad heartbeat"), nil
		}
		n := st.Nodes[hb.Node]
		if n == nil {
			return resp.Err("ERR unknown node"), nil
		}
		n.HeartbeatMs = cmd.GetNowMs()
		for _, r := range hb.Reports {
			sh := st.Shards[r.Shard]
			if sh == nil || r.Term < sh.Term {
				continue
			}
			if !slices.Equal(sh.Voters, r.Voters) || !slices.Equal(sh.Learners, r.Learners) {
				sh.Generation++
			}
			sh.Leader, sh.Term = hb.Node, r.Term
			sh.Voters, sh.Learners = r.Voters, r.Learners
		}
		reply = resp.OK
	default:
		return resp.Err(fmt.Sprintf("ERR unknown meta command '%s'", args[0])), nil
	}
	return reply, Save(w, st)
}
