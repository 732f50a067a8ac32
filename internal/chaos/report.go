package chaos

import (
	"fmt"
	"github.com/shoaldb/shoal/internal/kvmodel"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// KindStats summarizes the faults of one kind.
type KindStats struct {
	Kind  FaultKind
	Count int
	// Unavailable: per fault, the longest time after it began during
	// which no client write succeeded anywhere (until the next fault).
	Unavailable Percentiles
	// KeyUnavailable: the same for the worst single key, which shows a
	// single shard's outage even while other shards keep accepting writes.
	KeyUnavailable Percentiles
	Indeterminate  int // unknown-outcome writes invoked during these faults
	Ops            int // operations invoked during these faults
}

// Percentiles of a set of durations.
type Percentiles struct{ P50, P99, Max time.Duration }

func percentiles(ds []time.Duration) Percentiles {
	if len(ds) == 0 {
		return Percentiles{}
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.999999) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return Percentiles{P50: rank(0.50), P99: rank(0.99), Max: s[len(s)-1]}
}

// Report is the outcome of one run.
type Report struct {
	Seed                   uint64
	Nodes, Clients, Keys   int
	Network                string
	Duration               time.Duration // wall time of the workload
	Faults                 []Fault
	Kinds                  []KindStats
	Ops, OK, Indeterminate int
	Verdict                Verdict
	Crashes                []string
	Errors                 map[string]int
	Notes                  []string
}

// Failed reports whether the run found a problem.
func (r *Report) Failed() bool {
	if !r.Verdict.OK() || len(r.Crashes) > 0 {
		return true
	}
	for _, f := range r.Faults {
		if f.Err != "" {
			return true
		}
	}
	return false
}

// summarize fills r.Kinds, r.Ops, r.OK and r.Indeterminate from the
// history h, which ends at end.
func (r *Report) summarize(h []porcupine.Operation, end int64) {
	var writes []int64
	byKey := map[string][]int64{}
	for _, op := range h {
		in, out := op.Input.(kvmodel.Input), op.Output.(kvmodel.Output)
		r.Ops++
		if out.Unknown {
			r.Indeterminate++
			continue
		}
		r.OK++
		if in.Kind.IsWrite() {
			writes = append(writes, op.Return)
			byKey[in.Key] = append(byKey[in.Key], op.Return)
		}
	}
	sortInts(writes)
	for _, ts := range byKey {
		sortInts(ts)
	}
	stats := map[FaultKind]*KindStats{}
	un, keyUn := map[FaultKind][]time.Duration{}, map[FaultKind][]time.Duration{}
	for i, f := range r.Faults {
		to := end
		if i+1 < len(r.Faults) {
			to = r.Faults[i+1].Start
		}
		st := stats[f.Kind]
		if st == nil {
			st = &KindStats{Kind: f.Kind}
			stats[f.Kind] = st
		}
		st.Count++
		f.Unavailable = longestGap(writes, f.Start, to)
		for k, ts := range byKey {
			if g := longestGap(ts, f.Start, to); g > f.KeyUnavailable {
				f.KeyUnavailable, f.WorstKey = g, k
			}
		}
		r.Faults[i] = f
		un[f.Kind] = append(un[f.Kind], f.Unavailable)
		keyUn[f.Kind] = append(keyUn[f.Kind], f.KeyUnavailable)
		for _, op := range h {
			if op.Call >= f.Start && op.Call < to {
				st.Ops++
				if op.Output.(kvmodel.Output).Unknown {
					st.Indeterminate++
				}
			}
		}
	}
	for _, k := range AllFaults {
		if st := stats[k]; st != nil {
			st.Unavailable, st.KeyUnavailable = percentiles(un[k]), percentiles(keyUn[k])
			r.Kinds = append(r.Kinds, *st)
		}
	}
}

func sortInts(s []int64) { sort.Slice(s, func(i, j int) bool { return s[i] < s[j] }) }

// longestGap is the longest interval within [from, to) with no time in ts
// (sorted), counting from from; a window with no time at all is one gap.
func longestGap(ts []int64, from, to int64) time.Duration {
	i := sort.Search(len(ts), func(i int) bool { return ts[i] >= from })
	prev, gap, seen := from, int64(0), false
	for ; i < len(ts) && ts[i] < to; i++ {
		gap = max(gap, ts[i]-prev)
		prev, seen = ts[i], true
	}
	if !seen {
		gap = to - from
	}
	return time.Duration(gap)
}

// String formats the report as text.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "shoal chaos run: seed %d, %d nodes (%s), %d clients, %d keys, %v of workload\n",
		r.Seed, r.Nodes, r.Network, r.Clients, r.Keys, r.Duration.Round(time.Second))
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	fmt.Fprintf(&b, "\n%-17s %5s  %-26s  %-26s  %13s  %7s\n", "fault", "count",
		"no write anywhere p50/p99/max", "worst key p50/p99/max", "indeterminate", "ops")
	for _, k := range r.Kinds {
		fmt.Fprintf(&b, "%-17s %5d  %-29s  %-26s  %13d  %7d\n", k.Kind, k.Count,
			k.Unavailable, k.KeyUnavailable, k.Indeterminate, k.Ops)
	}
	fmt.Fprintf(&b, "\noperations: %d total, %d completed, %d indeterminate\n", r.Ops, r.OK, r.Indeterminate)
	fmt.Fprintf(&b, "linearizable: %s (checked in %v)\n", r.Verdict.Linearizable, r.Verdict.CheckTime.Round(time.Millisecond))
	if r.Verdict.Visualization != "" {
		fmt.Fprintf(&b, "visualization: %s\n", r.Verdict.Visualization)
	}
	fmt.Fprintf(&b, "durability: %d keys checked against their last acknowledged write, %d lost\n", r.Verdict.DurableKeys, len(r.Verdict.Lost))
	for _, l := range r.Verdict.Lost {
		fmt.Fprintf(&b, "  LOST %s\n", l)
	}
	for _, c := range r.Crashes {
		fmt.Fprintf(&b, "CRASH %s\n", c)
	}
	for _, f := range r.Faults {
		if f.Err != "" {
			fmt.Fprintf(&b, "FAULT %s on %v: %s\n", f.Kind, f.Nodes, f.Err)
		}
	}
	if len(r.Errors) > 0 {
		fmt.Fprintf(&b, "\nclient errors:\n")
		type kv struct {
			s string
			n int
		}
		var es []kv
		for s, n := range r.Errors {
			es = append(es, kv{s, n})
		}
		sort.Slice(es, func(i, j int) bool { return es[i].n > es[j].n })
		for _, e := range es[:min(len(es), 12)] {
			fmt.Fprintf(&b, "  %7d  %s\n", e.n, e.s)
		}
	}
	return b.String()
}

func (p Percentiles) String() string {
	r := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
	return r(p.P50) + " / " + r(p.P99) + " / " + r(p.Max)
}
