package chaos

import (
	"fmt"
	"github.com/shoaldb/shoal/internal/kvmodel"
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
	// Visualization is the path of porcupine's HTML view of the failing
	// key's history, written when the result is Illegal.
	Visualization string
	// Lost lists acknowledged writes missing from the final reads.
	Lost []string
	// DurableKeys counts keys whose final read the durability check
	// compared with their last acknowledged write.
	DurableKeys int
	CheckTime   time.Duration
}

// OK reports whether the history passed every check.
func (v Verdict) OK() bool { return v.Linearizable == porcupine.Ok && len(v.Lost) == 0 }

// Check checks h for linearizability (at most timeout; 0 means no limit)
// and the final reads in finals for durability. When the history is not
// linearizable and vizPath is not empty, it writes porcupine's
// visualization of the failing key there.
//
// Keys are checked one at a time, without recording the partial
// linearizations a visualization needs. Porcupine checks a history's keys
// in parallel, and recording them for 16 keys of about 100 000 operations
// each (an 8-minute run) took the machine's 24 GiB and got the check
// killed; without, that history checks in 15 s within 3.3 GB. Only a key
// found not linearizable is checked again, recording them, for its
// visualization; a check that timed out proved nothing wrong and writes
// none.
func Check(h []porcupine.Operation, finals map[string]kvmodel.Output, timeout time.Duration, vizPath string) (Verdict, error) {
	h = patchUnknown(h)
	start := time.Now()
	res, bad := porcupine.Ok, []porcupine.Operation(nil)
	for _, part := range kvmodel.Model.Partition(h) {
		left := time.Duration(0) // porcupine's "no limit"
		if timeout > 0 {
			if left = timeout - time.Since(start); left <= 0 {
				res = porcupine.Unknown
				break
			}
		}
		if r := porcupine.CheckOperationsTimeout(kvmodel.Model, part, left); r != porcupine.Ok {
			res, bad = r, part
			break
		}
	}
	v := Verdict{Linearizable: res, CheckTime: time.Since(start)}
	if res == porcupine.Illegal && vizPath != "" {
		_, info := porcupine.CheckOperationsVerbose(kvmodel.Model, bad, timeout)
		if err := porcupine.VisualizePath(kvmodel.Model, info, vizPath); err != nil {
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
		in, out := op.Input.(kvmodel.Input), op.Output.(kvmodel.Output)
		if out.Unknown {
			continue
		}
		switch {
		case in.Kind == kvmodel.OpGet && out.Found, in.Kind == kvmodel.OpIncr:
			note(out.Value, op.Return)
		case in.Kind == kvmodel.OpCAS && out.Found:
			note(in.Old, op.Return)
		}
	}
	patched := make([]porcupine.Operation, len(h))
	copy(patched, h)
	for i, op := range patched {
		in, out := op.Input.(kvmodel.Input), op.Output.(kvmodel.Output)
		if !out.Unknown || (in.Kind != kvmodel.OpSet && in.Kind != kvmodel.OpCAS) {
			continue
		}
		if r, ok := seen[base(in.Value)]; ok && r < op.Return && r >= op.Call {
			patched[i].Return = r
		}
	}
	return patched
}

// durability checks, per key, that the final read reflects the last
// acknowledged write W: the final value must descend from W (its writer is
// W's SET or CAS, or the one W's INCR built on, and it is not smaller than
// W's value: only INCR changes a value in place), or from a write that may
// be ordered after W because it had not returned when W was called
// (acknowledged or indeterminate). The workload never deletes, so a missing
// key, or a value from a write that finished before W began, means W was
// lost. Written values are unique, so a value names its writer.
func durability(h []porcupine.Operation, finals map[string]kvmodel.Output) (lost []string, checked int) {
	last := map[string]porcupine.Operation{}
	writer := map[int64]porcupine.Operation{} // SET/CAS value -> its op
	for _, op := range h {
		in, out := op.Input.(kvmodel.Input), op.Output.(kvmodel.Output)
		if in.Kind == kvmodel.OpSet || in.Kind == kvmodel.OpCAS {
			writer[in.Value] = op
		}
		if !in.Kind.IsWrite() || out.Unknown || in.Kind == kvmodel.OpCAS && !out.Found {
			continue
		}
		if w, ok := last[in.Key]; !ok || op.Return > w.Return {
			last[in.Key] = op
		}
	}
	keys := make([]string, 0, len(last))
	for k := range last {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fin, ok := finals[k]
		if !ok {
			continue
		}
		checked++
		w := last[k]
		in, out := w.Input.(kvmodel.Input), w.Output.(kvmodel.Output)
		want := in.Value
		if in.Kind == kvmodel.OpIncr {
			want = out.Value
		}
		switch {
		case fin.Found && base(fin.Value) == base(want) && fin.Value >= want:
			continue // W or INCRs after it
		case fin.Found && base(fin.Value) != base(want):
			if x, ok := writer[base(fin.Value)]; ok && x.Return >= w.Call {
				continue // overwritten by a write that may follow W
			}
		}
		got := "nil"
		if fin.Found {
			got = fmt.Sprint(fin.Value)
		}
		lost = append(lost, fmt.Sprintf("%s: acknowledged %s, final read %s", k, kvmodel.Describe(in, out), got))
	}
	return lost, checked
}
