// Package meta is the state machine of the meta shard: the node registry
// with liveness heartbeats and every shard's descriptor (slot range,
// replicas, last reported leader). Like kv it is deterministic: the time of
// a heartbeat is the proposer's, carried in the command.
//
// The state is kept as one record per node and per shard in the meta
// shard's span (see Load).
package meta

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/shoaldb/shoal/internal/acl"
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
	CmdSetUser   = "META.SETUSER"   // name modifier... (acl.Prepare's) -> OK
	CmdDelUser   = "META.DELUSER"   // name... -> number deleted
	// CmdDecommission marks a node to be drained: placement moves its
	// replicas away and puts none on it.
	CmdDecommission = "META.DECOMMISSION" // node id -> OK
	// CmdRemoveNode forgets a drained node that holds no replica: it is
	// no longer listed, and its heartbeats are refused.
	CmdRemoveNode = "META.REMOVENODE" // node id -> OK
)

// State is the whole meta state.
type State struct {
	ClusterID  string            `json:"cluster_id"`
	NextNodeID uint64            `json:"next_node_id"`
	Nodes      map[uint64]*Node  `json:"nodes"`
	Shards     map[uint64]*Shard `json:"shards"`
	// Users are the ACL users by name. A cluster whose default user was
	// never set has no record of it: User returns acl.DefaultUser.
	Users map[string]*acl.User `json:"users,omitempty"`
	// Version is the version record of the meta state this state was
	// read from (see Reload), carried along when a node sends its copy to
	// another: every replica has the same records at the same version. 0
	// for a state that no store holds yet (New) or in the one-record
	// layout.
	Version uint64 `json:"version,omitempty"`
}

// Node is one registered node.
type Node struct {
	ID          uint64 `json:"id"`
	Addr        string `json:"addr"`     // client (RESP) address
	BusAddr     string `json:"bus_addr"` // node-to-node address
	HeartbeatMs int64  `json:"heartbeat_ms"`
	// Decommissioning: the node is being drained (CmdDecommission).
	Decommissioning bool `json:"decommissioning,omitempty"`
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
	// Bytes is the shard's size on its leader's disk, as last reported.
	Bytes uint64 `json:"bytes,omitempty"`
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
	// Bytes is the shard's size on the leader's disk (0: not measured).
	Bytes uint64 `json:"bytes,omitempty"`
}

// Alive reports whether node id heartbeated within the liveness timeout
// before nowMs.
func (s *State) Alive(id uint64, nowMs int64) bool {
	n := s.Nodes[id]
	return n != nil && nowMs-n.HeartbeatMs <= LivenessTimeoutMs
}

// User returns the user named name.
func (s *State) User(name string) (*acl.User, bool) { return s.UserSet().User(name) }

// UserNames returns the users' names in order, the default user's
// included.
func (s *State) UserNames() []string { return s.UserSet().UserNames() }

// UserSet returns the state's users.
func (s *State) UserSet() *Users { return &Users{Version: s.Version, Users: s.Users} }

// Users is the cluster's users at a version of the meta state. It is
// not modified once made.
type Users struct {
	Version uint64               `json:"version"`
	Users   map[string]*acl.User `json:"users,omitempty"`
}

// User returns the user named name.
func (u *Users) User(name string) (*acl.User, bool) {
	if usr, ok := u.Users[name]; ok {
		return usr, true
	}
	if name == "default" {
		return defaultUser, true
	}
	return nil, false
}

// defaultUser is the default user of a cluster that never changed it.
var defaultUser = acl.DefaultUser()

// UserNames returns the users' names in byte order (Redis's order in ACL
// LIST and ACL USERS), the default user's included.
func (u *Users) UserNames() []string {
	names := []string{"default"}
	for name := range u.Users {
		if name != "default" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// CmdReadUsers is the meta read that returns the users and the version
// of the state they are from, as JSON (a Users).
const CmdReadUsers = "META.USERS"

// ReadUsers reads the users and the version from the meta shard's span.
func ReadUsers(r kv.Reader) (*Users, error) {
	v, err := readVersion(r)
	if err != nil {
		return nil, err
	}
	st := &State{}
	if err := readUserRecords(r, st); err != nil {
		return nil, err
	}
	return &Users{Version: v, Users: st.Users}, nil
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

// The state is stored as one record per piece, so that a command rewrites
// only what it changes: a heartbeat, which every node sends every second,
// writes its node's time and the few shard records whose leader or
// members changed, not the whole state. (Until this layout, the state was
// one JSON record that every command decoded and rewrote, and every node
// with a meta replica decoded again after each apply: at 4 096 shards and
// 10 nodes, 19 ms of CPU per heartbeat on each of those nodes.)
//
//	cluster          JSON {cluster_id, next_node_id}
//	node/<id>        JSON Node without its heartbeat
//	hb/<id>          the node's last heartbeat, ms, 8 bytes big-endian
//	shard/<id>       JSON Shard
//	user/<name>      JSON acl.User
//	version          8 bytes big-endian: bumped by every change except
//	                 heartbeat times, so a reader whose copy has the same
//	                 version need only read the times again
//
// A state in the earlier layout (one record, legacyStateKey) is read as
// is and rewritten in this one by the first command applied to it, on
// every replica alike.
var (
	legacyStateKey = keys.Meta("state")
	clusterKey     = keys.Meta("cluster")
	versionKey     = keys.Meta("version")
	nodePrefix     = keys.Meta("node/")
	hbPrefix       = keys.Meta("hb/")
	shardPrefix    = keys.Meta("shard/")
	userPrefix     = keys.Meta("user/")
)

func userKey(name string) []byte { return append(slices.Clip(userPrefix), name...) }

func idKey(prefix []byte, id uint64) []byte {
	return binary.BigEndian.AppendUint64(slices.Clip(prefix), id)
}

// prefixEnd is the first key after every key starting with prefix (whose
// last byte is '/', so it does not overflow).
func prefixEnd(prefix []byte) []byte {
	end := slices.Clone(prefix)
	end[len(end)-1]++
	return end
}

// ErrNoState: the meta shard's span holds no state.
var ErrNoState = errors.New("meta: no state")

// clusterRecord is what the cluster record holds.
type clusterRecord struct {
	ClusterID  string `json:"cluster_id"`
	NextNodeID uint64 `json:"next_node_id"`
}

// Load reads the whole state from the meta shard's span. r should be a
// consistent view (a snapshot or the apply batch): the records are read one
// by one. Should a commit come between the reads anyway, the version is read
// first, so the state is older than the records read after it and the
// next Reload reads everything again.
func Load(r kv.Reader) (*State, error) {
	if b, ok, err := r.Get(legacyStateKey); err != nil {
		return nil, err
	} else if ok {
		return Decode(b)
	}
	version, err := readVersion(r)
	if err != nil {
		return nil, err
	}
	var c clusterRecord
	if ok, err := getJSON(r, clusterKey, &c); err != nil {
		return nil, err
	} else if !ok {
		return nil, ErrNoState
	}
	st := &State{ClusterID: c.ClusterID, NextNodeID: c.NextNodeID, Version: version,
		Nodes: map[uint64]*Node{}, Shards: map[uint64]*Shard{}}
	err = iterateRecords(r, nodePrefix, func(id uint64, v []byte) error {
		var rec nodeRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("meta: decode node %d: %w", id, err)
		}
		st.Nodes[id] = &Node{ID: rec.ID, Addr: rec.Addr, BusAddr: rec.BusAddr, Decommissioning: rec.Decommissioning}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = iterateRecords(r, shardPrefix, func(id uint64, v []byte) error {
		sh := &Shard{}
		if err := json.Unmarshal(v, sh); err != nil {
			return fmt.Errorf("meta: decode shard %d: %w", id, err)
		}
		st.Shards[id] = sh
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := readUserRecords(r, st); err != nil {
		return nil, err
	}
	return st, readHeartbeats(r, st)
}

// readUserRecords sets st's users from their records.
func readUserRecords(r kv.Reader, st *State) error {
	var uerr error
	err := r.Iterate(userPrefix, prefixEnd(userPrefix), func(k, v []byte) bool {
		u := &acl.User{}
		if uerr = json.Unmarshal(v, u); uerr != nil {
			uerr = fmt.Errorf("meta: decode user %q: %w", k[len(userPrefix):], uerr)
			return false
		}
		if st.Users == nil {
			st.Users = map[string]*acl.User{}
		}
		st.Users[u.Name] = u
		return true
	})
	if err != nil {
		return err
	}
	return uerr
}

// Reload returns the current state as Load does. When prev was loaded
// from the same store and nothing but heartbeat times has changed since,
// it reads only those: the result shares prev's shard and user records,
// so neither may be modified.
func Reload(r kv.Reader, prev *State) (*State, error) {
	if prev == nil || prev.Version == 0 {
		return Load(r)
	}
	v, err := readVersion(r)
	if err != nil || v != prev.Version {
		return Load(r)
	}
	st := &State{ClusterID: prev.ClusterID, NextNodeID: prev.NextNodeID, Version: v,
		Nodes: make(map[uint64]*Node, len(prev.Nodes)), Shards: prev.Shards, Users: prev.Users}
	for id, n := range prev.Nodes {
		c := *n
		c.HeartbeatMs = 0 // as Load leaves a node without a heartbeat record
		st.Nodes[id] = &c
	}
	return st, readHeartbeats(r, st)
}

func readVersion(r kv.Reader) (uint64, error) {
	b, ok, err := r.Get(versionKey)
	if err != nil || !ok {
		return 0, err
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("meta: version record of %d bytes", len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// readHeartbeats sets the heartbeat time of st's nodes.
func readHeartbeats(r kv.Reader, st *State) error {
	return iterateRecords(r, hbPrefix, func(id uint64, v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("meta: heartbeat of node %d has %d bytes", id, len(v))
		}
		if n := st.Nodes[id]; n != nil {
			n.HeartbeatMs = int64(binary.BigEndian.Uint64(v))
		}
		return nil
	})
}

// iterateRecords calls fn with the id and value of every record under
// prefix, in id order.
func iterateRecords(r kv.Reader, prefix []byte, fn func(id uint64, v []byte) error) error {
	var ferr error
	err := r.Iterate(prefix, prefixEnd(prefix), func(k, v []byte) bool {
		if len(k) != len(prefix)+8 {
			ferr = fmt.Errorf("meta: malformed key %q", k)
			return false
		}
		ferr = fn(binary.BigEndian.Uint64(k[len(prefix):]), v)
		return ferr == nil
	})
	if err != nil {
		return err
	}
	return ferr
}

// Decode parses a state encoded by Encode.
func Decode(b []byte) (*State, error) {
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("meta: decode state: %w", err)
	}
	return &st, nil
}

// Encode returns the whole state as one record, as nodes send it to each
// other.
func (s *State) Encode() []byte {
	b, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("meta: encode state: %v", err))
	}
	return b
}

// Save writes the whole state, replacing whatever state w holds, at
// st's version (at least 1). It is for a new cluster's state and for
// rewriting a state in the one-record layout, which every replica does
// alike; a change to a stored state must bump the version instead.
func Save(w kv.Writer, st *State) error {
	lo, hi := keys.MetaSpan()
	if err := w.DeleteRange(lo, hi); err != nil {
		return err
	}
	if err := setJSON(w, clusterKey, clusterRecord{ClusterID: st.ClusterID, NextNodeID: st.NextNodeID}); err != nil {
		return err
	}
	for _, id := range st.NodeIDs() {
		if err := putNode(w, st.Nodes[id]); err != nil {
			return err
		}
		if err := putHeartbeat(w, id, st.Nodes[id].HeartbeatMs); err != nil {
			return err
		}
	}
	for _, sh := range st.Shards {
		if err := setJSON(w, idKey(shardPrefix, sh.ID), sh); err != nil {
			return err
		}
	}
	for _, u := range st.Users {
		if err := setJSON(w, userKey(u.Name), u); err != nil {
			return err
		}
	}
	return w.Set(versionKey, binary.BigEndian.AppendUint64(nil, max(st.Version, 1)))
}

// nodeRecord is what a node's record holds: the node without its
// heartbeat time, which has a record of its own.
type nodeRecord struct {
	ID              uint64 `json:"id"`
	Addr            string `json:"addr"`
	BusAddr         string `json:"bus_addr"`
	Decommissioning bool   `json:"decommissioning,omitempty"`
}

func putNode(w kv.Writer, n *Node) error {
	return setJSON(w, idKey(nodePrefix, n.ID), nodeRecord{ID: n.ID, Addr: n.Addr, BusAddr: n.BusAddr,
		Decommissioning: n.Decommissioning})
}

func putHeartbeat(w kv.Writer, id uint64, ms int64) error {
	return w.Set(idKey(hbPrefix, id), binary.BigEndian.AppendUint64(nil, uint64(ms)))
}

func setJSON(w kv.Writer, key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("meta: encode %q: %w", key, err)
	}
	return w.Set(key, b)
}

// getJSON decodes the record at key into v; ok is false if there is none.
func getJSON(r kv.Reader, key []byte, v any) (ok bool, err error) {
	b, ok, err := r.Get(key)
	if err != nil || !ok {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("meta: decode %q: %w", key, err)
	}
	return true, nil
}

// bumpVersion records that something other than a heartbeat time changed.
func bumpVersion(w kv.Writer) error {
	v, err := readVersion(w)
	if err != nil {
		return err
	}
	return w.Set(versionKey, binary.BigEndian.AppendUint64(nil, v+1))
}

// Apply applies one meta command, reading and writing only the records it
// concerns.
func Apply(w kv.Writer, cmd *shoalpb.Command) (resp.Value, error) {
	if err := migrate(w); err != nil {
		return resp.Value{}, err
	}
	args := cmd.GetArgs()
	if len(args) == 0 {
		return resp.Err("ERR empty meta command"), nil
	}
	switch strings.ToUpper(string(args[0])) {
	case CmdAddNode:
		if len(args) != 3 {
			return resp.Err("ERR wrong number of arguments for meta add node"), nil
		}
		return addNode(w, string(args[1]), string(args[2]), cmd.GetNowMs())
	case CmdHeartbeat:
		if len(args) != 2 {
			return resp.Err("ERR wrong number of arguments for meta heartbeat"), nil
		}
		var hb Heartbeat
		if err := json.Unmarshal(args[1], &hb); err != nil {
			return resp.Err("ERR bad heartbeat"), nil
		}
		return heartbeat(w, &hb, cmd.GetNowMs())
	case CmdSetUser:
		if len(args) < 2 {
			return resp.Err("ERR wrong number of arguments for meta set user"), nil
		}
		return setUser(w, string(args[1]), args[2:])
	case CmdDelUser:
		return delUsers(w, args[1:])
	case CmdDecommission:
		if len(args) != 2 {
			return resp.Err("ERR wrong number of arguments for meta decommission"), nil
		}
		return decommission(w, args[1])
	case CmdRemoveNode:
		if len(args) != 2 {
			return resp.Err("ERR wrong number of arguments for meta remove node"), nil
		}
		return removeNode(w, args[1])
	default:
		return resp.Err(fmt.Sprintf("ERR unknown meta command '%s'", args[0])), nil
	}
}

// migrate rewrites a state kept in the earlier one-record layout in the
// current one.
func migrate(w kv.Writer) error {
	b, ok, err := w.Get(legacyStateKey)
	if err != nil || !ok {
		return err
	}
	st, err := Decode(b)
	if err != nil {
		return err
	}
	return Save(w, st)
}

func addNode(w kv.Writer, addr, busAddr string, nowMs int64) (resp.Value, error) {
	var c clusterRecord
	if ok, err := getJSON(w, clusterKey, &c); err != nil {
		return resp.Value{}, err
	} else if !ok {
		return resp.Value{}, ErrNoState
	}
	id := c.NextNodeID
	c.NextNodeID++
	if err := setJSON(w, clusterKey, c); err != nil {
		return resp.Value{}, err
	}
	if err := putNode(w, &Node{ID: id, Addr: addr, BusAddr: busAddr}); err != nil {
		return resp.Value{}, err
	}
	if err := putHeartbeat(w, id, nowMs); err != nil {
		return resp.Value{}, err
	}
	return resp.BulkString(strconv.FormatUint(id, 10)), bumpVersion(w)
}

// heartbeat records that hb's node is alive at nowMs, and what it reports
// of the shards it leads: a report from a term older than the recorded
// one is ignored.
func heartbeat(w kv.Writer, hb *Heartbeat, nowMs int64) (resp.Value, error) {
	if _, ok, err := w.Get(idKey(nodePrefix, hb.Node)); err != nil {
		return resp.Value{}, err
	} else if !ok {
		return resp.Err("ERR unknown node"), nil
	}
	if err := putHeartbeat(w, hb.Node, nowMs); err != nil {
		return resp.Value{}, err
	}
	changed := false
	for _, r := range hb.Reports {
		var sh Shard
		key := idKey(shardPrefix, r.Shard)
		if ok, err := getJSON(w, key, &sh); err != nil {
			return resp.Value{}, err
		} else if !ok || r.Term < sh.Term {
			continue
		}
		members := slices.Equal(sh.Voters, r.Voters) && slices.Equal(sh.Learners, r.Learners)
		if members && sh.Leader == hb.Node && sh.Term == r.Term && (r.Bytes == 0 || r.Bytes == sh.Bytes) {
			continue
		}
		if r.Bytes != 0 {
			sh.Bytes = r.Bytes
		}
		if !members {
			sh.Generation++
		}
		sh.Leader, sh.Term = hb.Node, r.Term
		sh.Voters, sh.Learners = r.Voters, r.Learners
		if err := setJSON(w, key, &sh); err != nil {
			return resp.Value{}, err
		}
		changed = true
	}
	if changed {
		if err := bumpVersion(w); err != nil {
			return resp.Value{}, err
		}
	}
	return resp.OK, nil
}

// readUser returns the stored user named name, the implicit default user,
// or nil.
func readUser(r kv.Reader, name string) (*acl.User, error) {
	u := &acl.User{}
	if ok, err := getJSON(r, userKey(name), u); err != nil || ok {
		return u, err
	}
	if name == "default" {
		return acl.DefaultUser(), nil
	}
	return nil, nil
}

// setUser applies ACL SETUSER's modifiers, prepared by the proposer, to
// the user named name, creating it if needed: all of them or, with an
// error reply, none.
func setUser(w kv.Writer, name string, args [][]byte) (resp.Value, error) {
	if !acl.ValidName([]byte(name)) {
		return resp.Err("ERR Usernames can't contain spaces or null characters"), nil
	}
	u, err := readUser(w, name)
	if err != nil {
		return resp.Value{}, err
	}
	if u == nil {
		u = acl.NewUser(name)
	}
	ops := make([]string, len(args))
	for i, a := range args {
		ops[i] = string(a)
	}
	if err := u.Apply(ops); err != nil {
		return resp.Err("ERR " + err.Error()), nil
	}
	if err := setJSON(w, userKey(name), u); err != nil {
		return resp.Value{}, err
	}
	return resp.OK, bumpVersion(w)
}

// delUsers deletes the users named, and replies how many existed. The
// default user cannot be deleted.
func delUsers(w kv.Writer, names [][]byte) (resp.Value, error) {
	for _, n := range names {
		if string(n) == "default" {
			return resp.Err("ERR The 'default' user cannot be removed"), nil
		}
	}
	deleted := int64(0)
	for _, n := range names {
		k := userKey(string(n))
		if _, ok, err := w.Get(k); err != nil {
			return resp.Value{}, err
		} else if !ok {
			continue
		}
		if err := w.Delete(k); err != nil {
			return resp.Value{}, err
		}
		deleted++
	}
	if deleted > 0 {
		if err := bumpVersion(w); err != nil {
			return resp.Value{}, err
		}
	}
	return resp.Int(deleted), nil
}

// nodeRecordOf reads the record of the node whose id is arg; bad is the
// reply to an id that does not parse.
func nodeRecordOf(w kv.Writer, arg []byte) (id uint64, rec nodeRecord, found bool, bad resp.Value, err error) {
	id, perr := strconv.ParseUint(string(arg), 10, 64)
	if perr != nil {
		return 0, rec, false, resp.Err("ERR bad node id"), nil
	}
	found, err = getJSON(w, idKey(nodePrefix, id), &rec)
	return id, rec, found, resp.Value{}, err
}

// decommission marks the node whose id is arg as being drained.
func decommission(w kv.Writer, arg []byte) (resp.Value, error) {
	id, rec, found, bad, err := nodeRecordOf(w, arg)
	switch {
	case err != nil:
		return resp.Value{}, err
	case bad.IsError():
		return bad, nil
	case !found:
		return resp.Err("ERR unknown node"), nil
	}
	if rec.Decommissioning {
		return resp.OK, nil
	}
	rec.Decommissioning = true
	if err := setJSON(w, idKey(nodePrefix, id), rec); err != nil {
		return resp.Value{}, err
	}
	return resp.OK, bumpVersion(w)
}

// removeNode forgets the node whose id is arg, if it is being drained and
// no shard lists it.
func removeNode(w kv.Writer, arg []byte) (resp.Value, error) {
	id, rec, found, bad, err := nodeRecordOf(w, arg)
	switch {
	case err != nil:
		return resp.Value{}, err
	case bad.IsError():
		return bad, nil
	case !found:
		return resp.OK, nil // already gone
	}
	if !rec.Decommissioning {
		return resp.Err("ERR only a decommissioned node is removed"), nil
	}
	var holds uint64
	err = iterateRecords(w, shardPrefix, func(shard uint64, v []byte) error {
		var sh Shard
		if err := json.Unmarshal(v, &sh); err != nil {
			return err
		}
		if slices.Contains(sh.Voters, id) || slices.Contains(sh.Learners, id) {
			holds = shard
		}
		return nil
	})
	if err != nil {
		return resp.Value{}, err
	}
	if holds != 0 {
		return resp.Err(fmt.Sprintf("ERR node %d still holds a replica of shard %d", id, holds)), nil
	}
	if err := w.Delete(idKey(nodePrefix, id)); err != nil {
		return resp.Value{}, err
	}
	if err := w.Delete(idKey(hbPrefix, id)); err != nil {
		return resp.Value{}, err
	}
	return resp.OK, bumpVersion(w)
}
