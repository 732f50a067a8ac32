package load

import (
	"sort"
	"time"
)

// Bucket is one slice of a run's measured window: the commands that
// completed in it, how many of them took longer than the run's SlowAbove,
// and the longest.
type Bucket struct {
	AtMs  float64 `json:"at_ms"` // the bucket's start, from the window's opening
	Ops   uint64  `json:"ops"`
	Slow  uint64  `json:"slow"`
	MaxMs float64 `json:"max_ms"`
}

// timeline counts one worker's commands by completion time. Slow
// commands that gather in a few buckets point at a stall (a flush, a
// compaction, a GC, a leader change); spread evenly, at load.
type timeline struct {
	width, slowAbove time.Duration
	buckets          []Bucket
}

func (t *timeline) record(sinceOpen, latency time.Duration, n uint64) {
	if t.width <= 0 || sinceOpen < 0 {
		return
	}
	i := int(sinceOpen / t.width)
	for len(t.buckets) <= i {
		t.buckets = append(t.buckets, Bucket{AtMs: float64(time.Duration(len(t.buckets))*t.width) / 1e6})
	}
	b := &t.buckets[i]
	b.Ops += n
	if latency > t.slowAbove {
		b.Slow += n
	}
	b.MaxMs = max(b.MaxMs, float64(latency)/1e6)
}

func (t *timeline) merge(o *timeline) {
	for i, b := range o.buckets {
		if i == len(t.buckets) {
			t.buckets = append(t.buckets, Bucket{AtMs: b.AtMs})
		}
		m := &t.buckets[i]
		m.Ops += b.Ops
		m.Slow += b.Slow
		m.MaxMs = max(m.MaxMs, b.MaxMs)
	}
}

// SlowestBuckets returns up to n buckets of tl with the most slow
// commands, most first; buckets without any are left out.
func SlowestBuckets(tl []Bucket, n int) []Bucket {
	var out []Bucket
	for _, b := range tl {
		if b.Slow > 0 {
			out = append(out, b)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Slow > out[j].Slow })
	return out[:min(n, len(out))]
}
