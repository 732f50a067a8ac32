package chaos

import (
	"testing"
	"time"
)

func TestLongestGap(t *testing.T) {
	ts := []int64{1, 2, 10, 11, 30}
	for _, c := range []struct {
		from, to int64
		want     time.Duration
	}{
		{0, 40, 19},  // 11 -> 30
		{3, 12, 7},   // from 3 to the success at 10
		{12, 29, 17}, // no success in the window: all of it
		{10, 11, 0},
	} {
		if got := longestGap(ts, c.from, c.to); got != c.want {
			t.Errorf("longestGap(%v, %d, %d) = %v, want %v", ts, c.from, c.to, got, c.want)
		}
	}
}

func TestPercentiles(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i))
	}
	if got, want := percentiles(ds), (Percentiles{P50: 50, P99: 99, Max: 100}); got != want {
		t.Errorf("percentiles(1..100) = %+v, want %+v", got, want)
	}
}

func TestParseFaults(t *testing.T) {
	fs, err := ParseFaults("kill,partition-one")
	if err != nil || len(fs) != 2 || fs[0] != FaultKill || !fs[1].IsPartition() {
		t.Fatalf(`ParseFaults("kill,partition-one") = %v, %v`, fs, err)
	}
	if _, err := ParseFaults("kill,flood"); err == nil {
		t.Fatal(`ParseFaults("kill,flood") succeeded, want an error`)
	}
}
