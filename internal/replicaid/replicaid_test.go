package replicaid

import "testing"

func TestIDs(t *testing.T) {
	if Make(7, 0) != 7 {
		t.Errorf("incarnation 0 of node 7 = %d, want the node id", Make(7, 0))
	}
	id := Make(7, 3)
	if Node(id) != 7 || Incarnation(id) != 3 || id == 7 {
		t.Errorf("Make(7, 3) = %#x: node %d inc %d", id, Node(id), Incarnation(id))
	}
	if Make(7, 4) <= id {
		t.Error("a later incarnation of the same node must have a larger id")
	}
	if got, ok := Of([]uint64{Make(1, 2), id}, 7); !ok || got != id {
		t.Errorf("Of = %d %v", got, ok)
	}
	if _, ok := Of([]uint64{1, 2}, 7); ok {
		t.Error("Of found a node that is not there")
	}
}
