package node

import (
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/shoaldb/shoal/internal/engine"
	"github.com/shoaldb/shoal/internal/keys"
	"github.com/shoaldb/shoal/internal/kv"
	"github.com/shoaldb/shoal/internal/shoalpb"
	"github.com/shoaldb/shoal/internal/store"
)

// A follower's read judges expiry at the leader's clock reading it is
// given, not at this node's clock.
func TestReadLocalJudgesExpiryAtTheGivenTime(t *testing.T) {
	eng, err := engine.Open("db", engine.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	env := kv.Env{NowMs: 1_000, FirstSlot: 0, LastSlot: keys.SlotCount - 1}
	b := eng.NewBatch()
	if _, err := kv.Apply(b, env, [][]byte{[]byte("SET"), []byte("k"), []byte("v"), []byte("PX"), []byte("1000")}); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(false); err != nil {
		t.Fatal(err)
	}
	n := &Node{eng: eng}
	ri := store.ReplicaInfo{Desc: &shoalpb.ShardDescriptor{Id: 2, FirstSlot: 0, LastSlot: keys.SlotCount - 1}}
	get := [][]byte{[]byte("GET"), []byte("k")}
	if v, err := n.readLocal(ri, get, 1_500, 0); err != nil || string(v.Str) != "v" {
		t.Errorf("GET at 1 500 ms (expiry at 2 000) = %q, %v; want v", v.Str, err)
	}
	// This node's clock is far past 2 000 ms since the epoch; only the
	// given time keeps the key.
	if v, err := n.readLocal(ri, get, 1_999, 0); err != nil || string(v.Str) != "v" {
		t.Errorf("GET at 1 999 ms = %q, %v; want v", v.Str, err)
	}
	if v, err := n.readLocal(ri, get, 2_500, 0); err != nil || v.Str != nil {
		t.Errorf("GET at 2 500 ms = %q, %v; want nil (expired)", v.Str, err)
	}
	if v, err := n.readLocal(ri, get, 0, 0); err != nil || v.Str != nil {
		t.Errorf("GET at this node's time = %q, %v; want nil (expired)", v.Str, err)
	}
}
