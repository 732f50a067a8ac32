package chaos

import (
	"fmt"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

// valueBits is how many low bits of a written value INCR may change: every
// SET and CAS writes a unique multiple of 1<<valueBits, so the writer of any
// value read later is known (see Workload.newValue).
const valueBits = 20

func base(v int64) int64 { return v &^ (1<<valueBits - 1) }

// Verdict is the outcome of checking one history.
type Verdict struct {
	Linearizable porcupine.CheckResult // Ok, Illegal or Unknown (timed out)
	// Visualization is the path of porcupine's HTML view of the history,
	// written when the result is not Ok.
	Visualization string
	// Lost lists acknowledged writes missing from the final reads.
	Lost []string
	// DurableKeys counts keys whose final value the durability check could
	// pin to one acknowledged write.
	DurableKeys int
	CheckTime   time.Duration
}

// OK reports whether the history passed every check.
func (v Verdict) OK() bool { return v.Linearizable == porcupine.Ok && len(v.Lost) == 0 }

// Check checks h for linearizability (at most timeout; 0 means no limit)
// and the final reads in finals for durability. When the history is not
// proven linearizable and vizPath is not empty, it writes the visualization
// there.
func Check(h []porcupine.Operation, finals map[string]Output, timeout time.Duration, vizPath string) (Verdict, error) {
	h = patchUnknown(h)
	start := time.Now()
	res, info := porcupine.CheckOperationsVerbose(Model, h, timeout)
	v := Verdict{Linearizable: res, CheckTime: time.Since(start)}
	if res != porcupine.Ok && vizPath != "" {
		if err := porcupine.VisualizePath(Model, info, vizPath); err != nil {
			return v, fmt.Errorf("chaos: visualization: %w", err)
		}
		v.Visualization = vizPath
	}
	v.Lost, v.DurableKeys = durability(h, finals)
	return v, nil
}

// patchUnknown bounds the return time of unknown SETs and CASes whose value
// a completed operation observed: the write must have happened before that
// observer returned. This is sound because written values are unique, and
// it keeps porcupine's search small.
func patchUnknown(h []porcupine.Operation) []porcupine.Operation {
	seen := map[int64]int64{} // value base -> earliest return of an observer
	note := func(v int64, ret int64) {
		b := base(v)
		if b == 0 {
			return
		}
		if r, ok := seen[b]; !ok || ret < r {
			seen[b] = ret
		}
	}
	for _, op := range h {
		in, out := op.Input.(Input), op.Output.(Output)
		if out.Unknown {
			continue
		}
		switch {
		case in.Kind == OpGet && out.Found, in.Kind == OpIncr:
			note(out.Value, op.Return)
		case in.Kind == OpCAS && out.Found:
			note(in.Old, op.Return)
		}
	}
	patched := make([]porcupine.Operation, len(h))
	copy(patched, h)
	for i, op := range patched {
		in, out := op.Input.(Input), op.Output.(Output)
		if !out.Unknown || (in.Kind != OpSet && in.Kind != OpCAS) {
			continue
		}
		if r, ok := seen[base(in.Value)]; ok && r < op.Return && r >= op.Call {
			patched[i].Return = r
		}
	}
	return patched
}

// durability checks, per key, that the final read shows the last
// acknowledged write when no other write could have been ordered after it:
// every other write to the key returned before that write was called. Keys
// where a later or concurrent write exists are left to the linearizability
// check, which includes the final reads.
func durability(h []porcupine.Operation, finals map[string]Output) (lost []string, pinned int) {
	byKey := map[string][]porcupine.Operation{}
	for _, op := range h {
		in, out := op.Input.(Input), op.Output.(Output)
		if in.Kind.IsWrite() && !(in.Kind == OpCAS && !out.Unknown && !out.Found) {
			byKey[in.Key] = append(byKey[in.Key], op)
		}
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fin, ok := finals[k]
		if !ok {
			continue
		}
		ops := byKey[k]
		last := -1
		for i, op := range ops {
			if !op.Output.(Output).Unknown && (last < 0 || op.Return > ops[last].Return) {
				last = i
			}
		}
		if last < 0 {
			continue
		}
		w := ops[last]
		alone := true
		for i, op := range ops {
			if i != last && op.Return >= w.Call {
				alone = false
				break
			}
		}
		if !alone {
			continue
		}
		pinned++
		in, out := w.Input.(Input), w.Output.(Output)
		want := in.Value
		if in.Kind == OpIncr {
			want = out.Value
		}
		if !fin.Found || fin.Value != want {
			got := "nil"
			if fin.Found {
				got = fmt.Sprint(fin.Value)
			}
			lost = append(lost, fmt.Sprintf("%s: acknowledged %s, final read %s", k, describe(in, out), got))
		}
	}
	return lost, pinned
}
