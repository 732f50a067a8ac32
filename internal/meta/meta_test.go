package meta

import (
	"encoding/json"
	"math/rand"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/shoaldb/shoal/internal/acl"
	"github.com/shoaldb/shoal/internal/keys"
	"github.com/shoaldb/shoal/internal/kv/kvtest"
	"github.com/shoaldb/shoal/internal/resp"
	"github.com/shoaldb/shoal/internal/shoalpb"
)

func TestNewCoversAllSlotsOnce(t *testing.T) {
	for _, n := range []int{1, 3, 16, 100} {
		st := New("c", "a", "b", n, 0)
		next := 0
		for _, sh := range st.DataShards() {
			if sh.FirstSlot != next || sh.LastSlot < sh.FirstSlot {
				t.Fatalf("New(%d shards): shard %d covers [%d, %d], want to start at %d", n, sh.ID, sh.FirstSlot, sh.LastSlot, next)
			}
			next = sh.LastSlot + 1
		}
		if next != keys.SlotCount {
			t.Fatalf("New(%d shards) covers slots up to %d, want %d", n, next, keys.SlotCount)
		}
	}
}

func cmd(now int64, args ...string) *shoalpb.Command {
	c := &shoalpb.Command{NowMs: now}
	for _, a := range args {
		c.Args = append(c.Args, []byte(a))
	}
	return c
}

func TestAddNodeAndHeartbeat(t *testing.T) {
	w := kvtest.NewMem()
	Save(w, New("c", "a1", "b1", 2, 0))
	v, err := Apply(w, cmd(10, CmdAddNode, "a2", "b2"))
	if err != nil || string(v.Str) != "2" {
		t.Fatalf("add node = %v, %v; want id 2", v, err)
	}
	hb, _ := json.Marshal(Heartbeat{Node: 2, Reports: []LeaderReport{{Shard: 2, Term: 7, Voters: []uint64{1, 2}}}})
	if v, err := Apply(w, cmd(20, CmdHeartbeat, string(hb))); err != nil || v.IsError() {
		t.Fatalf("heartbeat = %v, %v", v, err)
	}
	// A report from an older term does not override a newer leader.
	old, _ := json.Marshal(Heartbeat{Node: 1, Reports: []LeaderReport{{Shard: 2, Term: 6, Voters: []uint64{1}}}})
	Apply(w, cmd(30, CmdHeartbeat, string(old)))
	st, err := Load(w)
	if err != nil {
		t.Fatal(err)
	}
	if sh := st.Shards[2]; sh.Leader != 2 || sh.Term != 7 || len(sh.Voters) != 2 || sh.Generation != 1 {
		t.Errorf("shard 2 = %+v, want leader 2 term 7 voters [1 2] generation 1", sh)
	}
	if !st.Alive(2, 20+LivenessTimeoutMs) || st.Alive(2, 21+LivenessTimeoutMs) {
		t.Errorf("liveness of node 2 wrong around the timeout")
	}
	if v, _ := Apply(w, cmd(40, "META.BOGUS")); !v.IsError() {
		t.Errorf("unknown meta command = %v, want error", v)
	}
}

// countingWriter counts the records written through it.
type countingWriter struct {
	*kvtest.Mem
	sets []string
}

func (c *countingWriter) Set(k, v []byte) error {
	c.sets = append(c.sets, string(k))
	return c.Mem.Set(k, v)
}

func TestHeartbeatWritesOnlyWhatChanged(t *testing.T) {
	w := &countingWriter{Mem: kvtest.NewMem()}
	Save(w, New("c", "a1", "b1", 64, 0))
	report := func(term uint64, voters ...uint64) string {
		b, _ := json.Marshal(Heartbeat{Node: 1, Reports: []LeaderReport{{Shard: 2, Term: term, Voters: voters}, {Shard: 3, Term: 1, Voters: []uint64{1}}}})
		return string(b)
	}
	Apply(w, cmd(10, CmdHeartbeat, report(1, 1)))
	st, _ := Load(w)
	w.sets = nil
	if v, err := Apply(w, cmd(20, CmdHeartbeat, report(1, 1))); err != nil || v.IsError() {
		t.Fatalf("heartbeat = %v, %v", v, err)
	}
	if want := []string{string(idKey(hbPrefix, 1))}; !slices.Equal(w.sets, want) {
		t.Errorf("a heartbeat changing nothing but the time wrote %q, want only %q", w.sets, want)
	}
	again, err := Reload(w, st)
	if err != nil {
		t.Fatal(err)
	}
	if again.Nodes[1].HeartbeatMs != 20 || st.Nodes[1].HeartbeatMs != 10 {
		t.Errorf("after reload: heartbeat %d (previous state's %d), want 20 (10)", again.Nodes[1].HeartbeatMs, st.Nodes[1].HeartbeatMs)
	}
	if again.Version != st.Version {
		t.Errorf("version moved from %d to %d with only a heartbeat", st.Version, again.Version)
	}

	// A new member: the shard's record and the version change, and a
	// reload given the older state sees the new record.
	w.sets = nil
	Apply(w, cmd(30, CmdHeartbeat, report(2, 1, 2)))
	if len(w.sets) != 3 {
		t.Errorf("a heartbeat with one changed report wrote %q, want the time, the shard and the version", w.sets)
	}
	again, err = Reload(w, again)
	if err != nil {
		t.Fatal(err)
	}
	full, _ := Load(w)
	if !reflect.DeepEqual(again, full) {
		t.Errorf("reload = %s\nwant load's %s", again.Encode(), full.Encode())
	}
	if sh := again.Shards[2]; sh.Term != 2 || sh.Generation != 1 || !slices.Equal(sh.Voters, []uint64{1, 2}) {
		t.Errorf("shard 2 = %+v, want term 2, generation 1, voters [1 2]", sh)
	}
}

func TestLegacyStateIsRewrittenByTheNextCommand(t *testing.T) {
	w := kvtest.NewMem()
	old := New("c", "a1", "b1", 4, 5)
	w.Set(legacyStateKey, old.Encode())
	if st, err := Load(w); err != nil || !reflect.DeepEqual(st, old) {
		t.Fatalf("load of the one-record state = %+v, %v; want %+v", st, err, old)
	}
	v, err := Apply(w, cmd(10, CmdAddNode, "a2", "b2"))
	if err != nil || string(v.Str) != "2" {
		t.Fatalf("add node = %v, %v; want id 2", v, err)
	}
	if _, ok, _ := w.Get(legacyStateKey); ok {
		t.Errorf("the one-record state is still there after a command")
	}
	st, err := Load(w)
	if err != nil {
		t.Fatal(err)
	}
	old.Nodes[2] = &Node{ID: 2, Addr: "a2", BusAddr: "b2", HeartbeatMs: 10}
	old.NextNodeID = 3
	old.Version = 2 // 1 from the rewrite, 2 from the new node
	if !reflect.DeepEqual(st, old) {
		t.Errorf("state after the rewrite = %s\nwant %s", st.Encode(), old.Encode())
	}
}

func TestReloadMatchesLoadForANodeWithoutHeartbeat(t *testing.T) {
	w := kvtest.NewMem()
	Save(w, New("c", "a1", "b1", 2, 1000))
	Apply(w, cmd(1000, CmdAddNode, "a2", "b2"))
	prev, err := Load(w)
	if err != nil {
		t.Fatal(err)
	}
	w.Delete(idKey(hbPrefix, 2))
	again, err := Reload(w, prev)
	if err != nil {
		t.Fatal(err)
	}
	full, _ := Load(w)
	if !reflect.DeepEqual(again, full) || again.Nodes[2].HeartbeatMs != 0 {
		t.Errorf("reload = %s\nwant load's %s", again.Encode(), full.Encode())
	}
}

func TestUsers(t *testing.T) {
	w := kvtest.NewMem()
	Save(w, New("c", "a1", "b1", 2, 0))
	st, _ := Load(w)
	if u, ok := st.User("default"); !ok || u.Describe() != acl.DefaultUser().Describe() {
		t.Fatalf("a new cluster's default user = %v", u)
	}
	if _, ok := st.User("alice"); ok {
		t.Fatal("alice exists before she is created")
	}
	apply := func(args ...string) string {
		t.Helper()
		v, err := Apply(w, cmd(1, args...))
		if err != nil {
			t.Fatal(err)
		}
		if v.IsError() {
			return string(v.Str)
		}
		if v.Kind == resp.KindInt {
			return strconv.FormatInt(v.Int, 10)
		}
		return string(v.Str)
	}
	before, _ := readVersion(w)
	apply(CmdSetUser, "alice", "on", "~a*", "+get")
	apply(CmdSetUser, "alice", "+set")
	if got := apply(CmdSetUser, "alice", "allkeys", "~b"); !strings.Contains(got, "Adding a pattern after the * pattern") {
		t.Errorf("a refused modifier replied %q", got)
	}
	apply(CmdSetUser, "default", "resetpass", "#"+acl.HashPassword("pw", rand.New(rand.NewSource(1))))
	st, err := Load(w)
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := st.User("alice"); !ok || a.Describe() != "on ~a* resetchannels -@all +get +set" {
		t.Errorf("alice = %+v", a)
	}
	if d, _ := st.User("default"); d.NoPass || !d.CheckPassword([]byte("pw")) {
		t.Errorf("default = %+v", d)
	}
	if after, _ := readVersion(w); after != before+3 {
		t.Errorf("version %d -> %d after three accepted changes", before, after)
	}
	if got := apply(CmdDelUser, "alice", "default"); !strings.Contains(got, "cannot be removed") {
		t.Errorf("deleting default replied %q", got)
	}
	if got := apply(CmdDelUser, "alice", "bob"); got != "1" {
		t.Errorf("DELUSER alice bob = %q, want 1", got)
	}
	st, _ = Load(w)
	if _, ok := st.User("alice"); ok || !slices.Equal(st.UserNames(), []string{"default"}) {
		t.Errorf("users after DELUSER: %v", st.UserNames())
	}
	// A state sent to another node carries the users.
	dec, err := Decode(st.Encode())
	if err != nil || dec.Users["default"] == nil || !dec.Users["default"].CheckPassword([]byte("pw")) {
		t.Errorf("decoded users %+v, %v", dec.Users, err)
	}
}

// A leader's report of its shard's size is kept in the shard's record; a
// report without one keeps the size known.
func TestShardSizeReported(t *testing.T) {
	w := &countingWriter{Mem: kvtest.NewMem()}
	Save(w, New("c", "a1", "b1", 4, 0))
	hb := func(bytes uint64) string {
		b, _ := json.Marshal(Heartbeat{Node: 1, Reports: []LeaderReport{{Shard: 2, Term: 1, Voters: []uint64{1}, Bytes: bytes}}})
		return string(b)
	}
	Apply(w, cmd(10, CmdHeartbeat, hb(1<<20)))
	Apply(w, cmd(20, CmdHeartbeat, hb(0)))
	st, err := Load(w)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Shards[2].Bytes; got != 1<<20 {
		t.Errorf("shard 2 bytes = %d, want %d", got, 1<<20)
	}
	Apply(w, cmd(30, CmdHeartbeat, hb(3<<20)))
	if st, _ = Load(w); st.Shards[2].Bytes != 3<<20 {
		t.Errorf("shard 2 bytes after a new report = %d", st.Shards[2].Bytes)
	}
}

// A drained node that holds no replica is forgotten; one that is not
// drained, or still holds a replica, is not.
func TestRemoveNode(t *testing.T) {
	w := &countingWriter{Mem: kvtest.NewMem()}
	st := New("c", "a1", "b1", 2, 0)
	st.Nodes[2] = &Node{ID: 2, Addr: "a2", BusAddr: "b2"}
	st.Nodes[3] = &Node{ID: 3, Addr: "a3", BusAddr: "b3"}
	st.Shards[2].Voters = []uint64{1, 3}
	Save(w, st)
	for _, c := range []struct {
		cmd  []string
		want string
	}{
		{[]string{CmdRemoveNode, "2"}, "ERR only a decommissioned node is removed"},
		{[]string{CmdDecommission, "2"}, "OK"},
		{[]string{CmdDecommission, "3"}, "OK"},
		{[]string{CmdRemoveNode, "3"}, "ERR node 3 still holds a replica of shard 2"},
		{[]string{CmdRemoveNode, "2"}, "OK"},
		{[]string{CmdRemoveNode, "2"}, "OK"},
	} {
		v, err := Apply(w, cmd(10, c.cmd...))
		if err != nil || string(v.Str) != c.want {
			t.Errorf("%v = %q %v, want %q", c.cmd, v.Str, err, c.want)
		}
	}
	got, err := Load(w)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got.Nodes[2]; ok || got.Nodes[3] == nil {
		t.Errorf("nodes after removing 2: %v", got.NodeIDs())
	}
	if v, _ := Apply(w, cmd(20, CmdHeartbeat, `{"node":2}`)); !v.IsError() {
		t.Errorf("a heartbeat of the removed node = %v, want an error", v)
	}
}
