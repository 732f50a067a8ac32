package chaos

import (
	"github.com/shoaldb/shoal/internal/kvmodel"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

func op(client int, call, ret int64, in kvmodel.Input, out kvmodel.Output) porcupine.Operation {
	return porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret}
}

func TestCheckerFindsStaleRead(t *testing.T) {
	// SET k 1<<20 is acknowledged at t=2; a GET that starts afterwards
	// still sees the key missing.
	h := []porcupine.Operation{
		op(0, 0, 2, kvmodel.Input{Kind: kvmodel.OpSet, Key: "k", Value: 1 << 20}, kvmodel.Output{}),
		op(1, 3, 4, kvmodel.Input{Kind: kvmodel.OpGet, Key: "k"}, kvmodel.Output{}),
		op(2, 0, 10, kvmodel.Input{Kind: kvmodel.OpGet, Key: "other"}, kvmodel.Output{}),
	}
	viz := filepath.Join(t.TempDir(), "viz.html")
	v, err := Check(h, nil, 0, viz)
	if err != nil {
		t.Fatal(err)
	}
	if v.Linearizable != porcupine.Illegal {
		t.Fatalf("stale read: checker says %s, want %s", v.Linearizable, porcupine.Illegal)
	}
	if v.Visualization != viz {
		t.Fatalf("visualization = %q, want %q", v.Visualization, viz)
	}
}

func TestCheckerFindsLostIncrement(t *testing.T) {
	// Two acknowledged INCRs in sequence both return 1.
	h := []porcupine.Operation{
		op(0, 0, 1, kvmodel.Input{Kind: kvmodel.OpIncr, Key: "k"}, kvmodel.Output{Value: 1}),
		op(1, 2, 3, kvmodel.Input{Kind: kvmodel.OpIncr, Key: "k"}, kvmodel.Output{Value: 1}),
	}
	if v, _ := Check(h, nil, 0, ""); v.Linearizable != porcupine.Illegal {
		t.Fatalf("lost increment: checker says %s, want %s", v.Linearizable, porcupine.Illegal)
	}
}

func TestCheckerAcceptsIndeterminate(t *testing.T) {
	const a, b = 1 << 20, 2 << 20
	h := []porcupine.Operation{
		op(0, 0, 1, kvmodel.Input{Kind: kvmodel.OpSet, Key: "k", Value: a}, kvmodel.Output{}),
		// Timed out: may or may not have happened.
		op(1, 2, kvmodel.Never, kvmodel.Input{Kind: kvmodel.OpSet, Key: "k", Value: b}, kvmodel.Output{Unknown: true}),
		op(2, 3, 4, kvmodel.Input{Kind: kvmodel.OpGet, Key: "k"}, kvmodel.Output{Found: true, Value: a}),
		// It happened after all, later.
		op(3, 5, 6, kvmodel.Input{Kind: kvmodel.OpGet, Key: "k"}, kvmodel.Output{Found: true, Value: b}),
		// An unknown INCR and a CAS that fails against b+1.
		op(4, 7, kvmodel.Never, kvmodel.Input{Kind: kvmodel.OpIncr, Key: "k"}, kvmodel.Output{Unknown: true}),
		op(5, 8, 9, kvmodel.Input{Kind: kvmodel.OpCAS, Key: "k", Value: 3 << 20, Old: b}, kvmodel.Output{Found: false}),
		op(6, 10, 11, kvmodel.Input{Kind: kvmodel.OpGet, Key: "k"}, kvmodel.Output{Found: true, Value: b + 1}),
	}
	finals := map[string]kvmodel.Output{"k": {Found: true, Value: b + 1}}
	v, err := Check(h, finals, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if !v.OK() {
		t.Fatalf("history with indeterminate operations: %+v, want linearizable and nothing lost", v)
	}
}

func TestDurabilityFindsLostWrite(t *testing.T) {
	h := []porcupine.Operation{
		op(0, 0, 1, kvmodel.Input{Kind: kvmodel.OpSet, Key: "k", Value: 1 << 20}, kvmodel.Output{}),
		op(0, 2, 3, kvmodel.Input{Kind: kvmodel.OpSet, Key: "k", Value: 2 << 20}, kvmodel.Output{}),
	}
	v, _ := Check(h, map[string]kvmodel.Output{"k": {Found: true, Value: 1 << 20}}, 0, "")
	if len(v.Lost) != 1 || v.DurableKeys != 1 {
		t.Fatalf("lost write: Lost = %q, DurableKeys = %d; want one lost write on one key", v.Lost, v.DurableKeys)
	}
}

func TestDurabilityAllowsLaterWrites(t *testing.T) {
	const a, b, c = 1 << 20, 2 << 20, 3 << 20
	h := []porcupine.Operation{
		op(0, 0, 1, kvmodel.Input{Kind: kvmodel.OpSet, Key: "k", Value: a}, kvmodel.Output{}),
		op(1, 2, 3, kvmodel.Input{Kind: kvmodel.OpIncr, Key: "k"}, kvmodel.Output{Value: a + 1}),
		// Indeterminate, called long before the last acknowledged write:
		// it may still take effect after it.
		op(2, 0, kvmodel.Never, kvmodel.Input{Kind: kvmodel.OpSet, Key: "j", Value: b}, kvmodel.Output{Unknown: true}),
		op(3, 5, 6, kvmodel.Input{Kind: kvmodel.OpSet, Key: "j", Value: c}, kvmodel.Output{}),
	}
	finals := map[string]kvmodel.Output{"k": {Found: true, Value: a + 2}, "j": {Found: true, Value: b}}
	if lost, n := durability(h, finals); len(lost) != 0 || n != 2 {
		t.Fatalf("durability = %q on %d keys, want nothing lost on 2 keys", lost, n)
	}
	// A final value below the acknowledged INCR lost an increment.
	finals["k"] = kvmodel.Output{Found: true, Value: a}
	if lost, _ := durability(h, finals); len(lost) != 1 {
		t.Fatalf("durability = %q, want the INCR reported lost", lost)
	}
}

// A check that times out writes no visualization: it found nothing wrong
// to show, and a verbose check of the whole history is what took a long
// run's memory.
func TestTimedOutCheckWritesNoVisualization(t *testing.T) {
	// 22 INCRs that never returned, then a read no subset of them explains:
	// proving that takes porcupine millions of states, far beyond 10 ms.
	var h []porcupine.Operation
	for i := range 22 {
		h = append(h, op(i, int64(i), kvmodel.Never, kvmodel.Input{Kind: kvmodel.OpIncr, Key: "k"}, kvmodel.Output{Unknown: true}))
	}
	h = append(h, op(99, 100, 101, kvmodel.Input{Kind: kvmodel.OpGet, Key: "k"}, kvmodel.Output{Found: true, Value: 1000}))
	viz := filepath.Join(t.TempDir(), "viz.html")
	v, err := Check(h, nil, 10*time.Millisecond, viz)
	if err != nil {
		t.Fatal(err)
	}
	if v.Linearizable != porcupine.Unknown {
		t.Fatalf("checker says %s within 10ms, want %s (timed out)", v.Linearizable, porcupine.Unknown)
	}
	if v.Visualization != "" {
		t.Fatalf("visualization %q written for a check that timed out", v.Visualization)
	}
	if _, err := os.Stat(viz); !os.IsNotExist(err) {
		t.Fatalf("visualization file exists after a timed-out check (stat: %v)", err)
	}
}

// Keys are checked one at a time: a violation on the last key checked is
// still found after the others pass.
func TestCheckerFindsViolationOnLastKey(t *testing.T) {
	h := []porcupine.Operation{
		op(0, 0, 1, kvmodel.Input{Kind: kvmodel.OpSet, Key: "a", Value: 1 << 20}, kvmodel.Output{}),
		op(1, 2, 3, kvmodel.Input{Kind: kvmodel.OpGet, Key: "a"}, kvmodel.Output{Found: true, Value: 1 << 20}),
		// z: two acknowledged INCRs in sequence both return 1.
		op(2, 0, 1, kvmodel.Input{Kind: kvmodel.OpIncr, Key: "z"}, kvmodel.Output{Value: 1}),
		op(3, 2, 3, kvmodel.Input{Kind: kvmodel.OpIncr, Key: "z"}, kvmodel.Output{Value: 1}),
	}
	viz := filepath.Join(t.TempDir(), "viz.html")
	v, err := Check(h, nil, time.Minute, viz)
	if err != nil {
		t.Fatal(err)
	}
	if v.Linearizable != porcupine.Illegal || v.Visualization != viz {
		t.Fatalf("checker says %s (visualization %q), want %s with a visualization", v.Linearizable, v.Visualization, porcupine.Illegal)
	}
}
