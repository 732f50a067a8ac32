package load

import (
	"testing"
	"time"
)

// Commands land in the bucket of their completion time, slow ones are
// counted apart, and merged timelines add up bucket by bucket.
func TestTimelineBucketsAndMerge(t *testing.T) {
	ms := time.Millisecond
	a := timeline{width: 100 * ms, slowAbove: 10 * ms}
	a.record(50*ms, 2*ms, 1)
	a.record(150*ms, 30*ms, 16) // a pipelined batch: 16 slow commands
	a.record(-ms, 50*ms, 1)     // before the window opened: not counted
	b := timeline{width: 100 * ms, slowAbove: 10 * ms}
	b.record(120*ms, 5*ms, 1)
	b.record(350*ms, 12*ms, 1)

	var all timeline
	all.merge(&a)
	all.merge(&b)
	want := []Bucket{
		{AtMs: 0, Ops: 1, MaxMs: 2},
		{AtMs: 100, Ops: 17, Slow: 16, MaxMs: 30},
		{AtMs: 200},
		{AtMs: 300, Ops: 1, Slow: 1, MaxMs: 12},
	}
	if len(all.buckets) != len(want) {
		t.Fatalf("buckets = %+v, want %+v", all.buckets, want)
	}
	for i := range want {
		if all.buckets[i] != want[i] {
			t.Errorf("bucket %d = %+v, want %+v", i, all.buckets[i], want[i])
		}
	}
	top := SlowestBuckets(all.buckets, 5)
	if len(top) != 2 || top[0].AtMs != 100 || top[1].AtMs != 300 {
		t.Errorf("slowest buckets = %+v, want those at 100 and 300 ms", top)
	}
}

// Buckets narrower than a millisecond are refused: each client would keep
// one per width of the run.
func TestTimelineWidthBelowAMillisecondIsRefused(t *testing.T) {
	for _, tc := range []struct {
		width time.Duration
		ok    bool
	}{{time.Microsecond, false}, {time.Millisecond, true}, {0, true}} {
		c := Config{Target: "redis", Addrs: []string{"127.0.0.1:1"}, Timeline: tc.width}
		if err := c.setDefaults(); (err == nil) != tc.ok {
			t.Errorf("Timeline %v: err = %v, want ok = %v", tc.width, err, tc.ok)
		}
	}
}
