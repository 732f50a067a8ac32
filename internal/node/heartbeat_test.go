package node

import (
	"slices"
	"testing"

	"github.com/shoaldb/shoal/internal/meta"
)

func TestUnreported(t *testing.T) {
	report := func(shard, term uint64, voters ...uint64) meta.LeaderReport {
		return meta.LeaderReport{Shard: shard, Term: term, Voters: voters}
	}
	shards := func(rs []meta.LeaderReport) []uint64 {
		var out []uint64
		for _, r := range rs {
			out = append(out, r.Shard)
		}
		return out
	}
	reported := map[uint64]meta.LeaderReport{}
	ack := func(rs []meta.LeaderReport) {
		for _, r := range rs {
			reported[r.Shard] = r
		}
	}
	steps := []struct {
		leading []meta.LeaderReport
		acked   bool
		want    []uint64
	}{
		{[]meta.LeaderReport{report(2, 5, 1, 2), report(3, 5, 1)}, true, []uint64{2, 3}},
		{[]meta.LeaderReport{report(2, 5, 1, 2), report(3, 5, 1)}, true, nil},
		// A change of members, then back, in the same term: both are
		// sent, each differing from the last applied report.
		{[]meta.LeaderReport{report(2, 5, 1, 2, 3), report(3, 5, 1)}, true, []uint64{2}},
		{[]meta.LeaderReport{report(2, 5, 1, 2), report(3, 5, 1)}, true, []uint64{2}},
		// A new term; the heartbeat fails, so it is sent again.
		{[]meta.LeaderReport{report(2, 5, 1, 2), report(3, 6, 1)}, false, []uint64{3}},
		{[]meta.LeaderReport{report(2, 5, 1, 2), report(3, 6, 1)}, true, []uint64{3}},
		{[]meta.LeaderReport{report(2, 5, 1, 2), report(3, 6, 1)}, true, nil},
	}
	for i, s := range steps {
		got := unreported(s.leading, reported)
		if !slices.Equal(shards(got), s.want) {
			t.Fatalf("step %d: reports of shards %v, want %v", i, shards(got), s.want)
		}
		if s.acked {
			ack(got)
		}
	}
}

// A shard's size is reported again only once it moved by more than a
// tenth, or 1 MiB for a small shard.
func TestSizeReportedWhenItMoves(t *testing.T) {
	reported := map[uint64]meta.LeaderReport{2: {Shard: 2, Term: 5, Voters: []uint64{1}, Bytes: 100 << 20}}
	for _, c := range []struct {
		bytes uint64
		want  bool
	}{
		{100 << 20, false}, {105 << 20, false}, {111 << 20, true}, {89 << 20, true},
	} {
		got := unreported([]meta.LeaderReport{{Shard: 2, Term: 5, Voters: []uint64{1}, Bytes: c.bytes}}, reported)
		if (len(got) == 1) != c.want {
			t.Errorf("%d MiB after 100 MiB reported: sent %v, want %v", c.bytes>>20, len(got) == 1, c.want)
		}
	}
	if sizeMoved(1, 512<<10) || !sizeMoved(1, 2<<20) {
		t.Error("small shards: want a report once they grew by more than 1 MiB")
	}
}
