package shoaltest

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shoaldb/shoal/internal/node"
)

// metricValues gathers n's metrics: counters and gauges by name (followed
// by {label="value"} for each label), histograms by name plus "_count"
// (their sample count).
func metricValues(t *testing.T, n *node.Node) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(n.Metrics()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += fmt.Sprintf("{%s=%q}", l.GetName(), l.GetValue())
			}
			if h := m.GetHistogram(); h != nil {
				out[name+"_count"] = float64(h.GetSampleCount())
				continue
			}
			if g := m.GetGauge(); g != nil {
				out[name] = g.GetValue()
				continue
			}
			out[name] = m.GetCounter().GetValue()
		}
	}
	return out
}

// The store and engine counters a node exports on /metrics follow the
// writes it serves.
func TestStoreCountersFollowWrites(t *testing.T) {
	c := Start(t, 1, Options{Shards: 2})
	c.WaitFor(30*time.Second, "shards led", c.AllShardsLed)
	read := func() map[string]float64 { return metricValues(t, c.Node(1)) }
	syncsBefore, before := c.Node(1).Store().Stats().Syncs, read()
	cl := c.Client(1)
	const writes = 50
	for i := range writes {
		if err := cl.Set(ctxT(t, 10*time.Second), fmt.Sprint("m", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	syncsAfter, after := c.Node(1).Store().Stats().Syncs, read()
	for _, name := range []string{"shoal_store_proposals_total", "shoal_store_synced_entries_total", "shoal_store_applied_entries_total"} {
		if d := after[name] - before[name]; d < writes {
			t.Errorf("%s grew by %.0f over %d acknowledged writes", name, d, writes)
		}
	}
	// Each write's raft entry (its command, key and framing: well over 32
	// bytes) reaches the WAL, and so does its applied value.
	if d := after["shoal_engine_wal_written_bytes_total"] - before["shoal_engine_wal_written_bytes_total"]; d < 2*32*writes {
		t.Errorf("WAL bytes grew by %.0f over %d writes", d, writes)
	}
	if after["shoal_store_cycles_total"] <= before["shoal_store_cycles_total"] {
		t.Errorf("cycles did not grow: before %v, after %v", before, after)
	}
	// Every fsynced batch is timed once: the histogram's count follows the
	// store's sync count. The node's own background writes (heartbeats to
	// the meta shard) may sync between the two readings of each pair, so
	// each pair may be one apart.
	timed := after["shoal_store_sync_duration_seconds_count"] - before["shoal_store_sync_duration_seconds_count"]
	syncs := float64(syncsAfter - syncsBefore)
	if timed < 1 || timed < syncs-2 || timed > syncs+2 {
		t.Errorf("%.0f syncs but %.0f sync durations observed", syncs, timed)
	}
	// Every acknowledged write was proposed on this node, which leads
	// every shard, and is timed once; the node's own writes (heartbeats)
	// may add a few.
	proposed := after["shoal_store_write_duration_seconds_count"] - before["shoal_store_write_duration_seconds_count"]
	if proposed < writes || proposed > writes+10 {
		t.Errorf("%.0f write durations observed over %d acknowledged writes", proposed, writes)
	}
}

// Repeated reads of a key are served from the row cache, and a read after
// an overwrite returns the new value.
func TestRowCacheServesRepeatedReads(t *testing.T) {
	c := Start(t, 1, Options{Shards: 2})
	c.WaitFor(30*time.Second, "shards led", c.AllShardsLed)
	cl := c.Client(1)
	ctx := ctxT(t, 30*time.Second)
	before := metricValues(t, c.Node(1))
	const reads = 20
	for i := range 3 {
		want := fmt.Sprint("v", i)
		if err := cl.Set(ctx, "cached", want, 0).Err(); err != nil {
			t.Fatal(err)
		}
		for range reads {
			if got, err := cl.Get(ctx, "cached").Result(); err != nil || got != want {
				t.Fatalf("GET cached = %q, %v; want %q", got, err, want)
			}
		}
	}
	after := metricValues(t, c.Node(1))
	if d := after["shoal_row_cache_hits_total"] - before["shoal_row_cache_hits_total"]; d < 3*reads {
		t.Errorf("row cache hits grew by %.0f over %d GETs of a key just written", d, 3*reads)
	}
	if after["shoal_row_cache_bytes"] <= 0 {
		t.Errorf("row cache holds %.0f bytes after caching a key", after["shoal_row_cache_bytes"])
	}
}
