package meta

import (
	"encoding/json"
	"testing"

	"github.com/shoaldb/shoal/internal/keys"
	"github.com/shoaldb/shoal/internal/kv/kvtest"
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
