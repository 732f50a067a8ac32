package kv

import (
	"strings"
	"testing"

	"github.com/shoaldb/shoal/internal/keys"
	"github.com/shoaldb/shoal/internal/kv/kvtest"
)

// A command whose key's slot the shard does not serve is refused, with
// nothing written, when the shard says which slots it owns.
func TestCommandsOutsideTheShardsSlotsAreRefused(t *testing.T) {
	slot := keys.Slot([]byte("k"))
	env := Env{FirstSlot: slot + 1, LastSlot: keys.SlotCount - 1, OwnSlots: true}
	if slot == keys.SlotCount-1 {
		env.FirstSlot, env.LastSlot = 0, slot-1
	}
	m := kvtest.NewMem()
	for _, args := range []string{"SET k v", "MSET k v", "DEL k", "INCR k"} {
		v, err := Apply(m, env, splitArgs(args))
		if err != nil || !v.IsError() || !strings.HasPrefix(string(v.Str), NotOwnedPrefix) {
			t.Errorf("%v on a shard without slot %d: %v %v", args, slot, v, err)
		}
	}
	if n := m.Len(); n != 0 {
		t.Errorf("%d records written outside the shard's slots", n)
	}
	// Its own slots: applied.
	env.FirstSlot, env.LastSlot = slot, slot
	if v, err := Apply(m, env, splitArgs("SET k v")); err != nil || v.IsError() {
		t.Errorf("SET in the shard's slot: %v %v", v, err)
	}
}
