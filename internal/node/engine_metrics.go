package node

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/shoaldb/shoal/internal/engine"
)

// engineCollector exports the storage engine's Stats, read once per
// scrape.
type engineCollector struct {
	eng *engine.Engine
}

type engineMetric struct {
	desc  *prometheus.Desc
	typ   prometheus.ValueType
	value func(engine.Stats) float64
}

func newEngineMetric(name, help string, typ prometheus.ValueType, value func(engine.Stats) float64) engineMetric {
	return engineMetric{prometheus.NewDesc("shoal_engine_"+name, help, nil, nil), typ, value}
}

var engineMetrics = []engineMetric{
	newEngineMetric("wal_written_bytes_total", "Bytes written to the write-ahead log.", prometheus.CounterValue,
		func(s engine.Stats) float64 { return float64(s.WALBytesWritten) }),
	newEngineMetric("flushes_total", "Memtables flushed to sstables.", prometheus.CounterValue,
		func(s engine.Stats) float64 { return float64(s.Flushes) }),
	newEngineMetric("flushed_bytes_total", "Bytes of sstables written by memtable flushes.", prometheus.CounterValue,
		func(s engine.Stats) float64 { return float64(s.FlushedBytes) }),
	newEngineMetric("compactions_total", "Compactions of every kind.", prometheus.CounterValue,
		func(s engine.Stats) float64 { return float64(s.Compactions) }),
	newEngineMetric("compacted_bytes_total", "Bytes of sstables written by compactions.", prometheus.CounterValue,
		func(s engine.Stats) float64 { return float64(s.CompactedBytes) }),
	newEngineMetric("compaction_debt_bytes", "Bytes compactions still have to rewrite, estimated.", prometheus.GaugeValue,
		func(s engine.Stats) float64 { return float64(s.CompactionDebt) }),
	newEngineMetric("memtable_bytes", "Bytes allocated to memtables, those being flushed included (not how full they are).", prometheus.GaugeValue,
		func(s engine.Stats) float64 { return float64(s.MemTableBytes) }),
	newEngineMetric("memtables", "Memtables, those being flushed included.", prometheus.GaugeValue,
		func(s engine.Stats) float64 { return float64(s.MemTables) }),
	newEngineMetric("l0_files", "Sstables in level 0.", prometheus.GaugeValue,
		func(s engine.Stats) float64 { return float64(s.L0Files) }),
	newEngineMetric("l0_sublevels", "Sublevels of level 0.", prometheus.GaugeValue,
		func(s engine.Stats) float64 { return float64(s.L0Sublevels) }),
	newEngineMetric("read_amplification", "Sublevels and levels a point read may have to search.", prometheus.GaugeValue,
		func(s engine.Stats) float64 { return float64(s.ReadAmp) }),
	newEngineMetric("disk_bytes", "Bytes the database uses on disk.", prometheus.GaugeValue,
		func(s engine.Stats) float64 { return float64(s.DiskBytes) }),
	newEngineMetric("block_cache_hits_total", "Block cache hits.", prometheus.CounterValue,
		func(s engine.Stats) float64 { return float64(s.BlockCacheHits) }),
	newEngineMetric("block_cache_misses_total", "Block cache misses.", prometheus.CounterValue,
		func(s engine.Stats) float64 { return float64(s.BlockCacheMisses) }),
	newEngineMetric("block_cache_bytes", "Bytes held by the block cache.", prometheus.GaugeValue,
		func(s engine.Stats) float64 { return float64(s.BlockCacheBytes) }),
	newEngineMetric("open_snapshots", "Open Pebble snapshots (reads and raft snapshots in progress).", prometheus.GaugeValue,
		func(s engine.Stats) float64 { return float64(s.OpenSnapshots) }),
	newEngineMetric("tombstones", "Deletions held in sstables, estimated.", prometheus.GaugeValue,
		func(s engine.Stats) float64 { return float64(s.TombstoneEntries) }),
}

func (c engineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range engineMetrics {
		ch <- m.desc
	}
}

func (c engineCollector) Collect(ch chan<- prometheus.Metric) {
	if c.eng == nil {
		return
	}
	s := c.eng.Stats()
	for _, m := range engineMetrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.typ, m.value(s))
	}
}
