package engine

import "sync"

// Stats are Pebble's counters and gauges that tell where a node's disk
// and background CPU go: how much the WAL, flushes and compactions
// write, and how much the memtables and the LSM's shape hold.
type Stats struct {
	WALBytesWritten  uint64 // bytes written to the WAL, record overhead included
	Flushes          int64  // memtable flushes
	FlushedBytes     uint64 // bytes of sstables written by flushes
	Compactions      int64  // compactions of every kind
	CompactedBytes   uint64 // bytes of sstables written by compactions
	CompactionDebt   uint64 // bytes compactions still have to rewrite, estimated
	MemTableBytes    uint64 // bytes held by memtables, flushing ones included
	MemTables        int64  // memtables, flushing ones included
	L0Files          int64  // sstables in level 0
	L0Sublevels      int32  // level 0's sublevels: what a point read may search
	ReadAmp          int    // sublevels and levels a point read may search
	DiskBytes        uint64 // bytes on disk: sstables, WAL and the rest
	BlockCacheHits   int64
	BlockCacheMisses int64
	BlockCacheBytes  int64
	OpenSnapshots    int
	TombstoneEntries uint64 // point and range deletions in sstables, estimated
}

// statsAfterClose keeps the figures an engine had when it closed, for
// scrapes that race Close or come after it: Pebble does not say that a
// closed database may still be asked for its metrics.
type statsAfterClose struct {
	mu     sync.Mutex
	closed bool
	last   Stats
}

// Stats returns the database's current figures; after Close, the last
// ones it had.
func (e *Engine) Stats() Stats {
	e.closing.mu.Lock()
	defer e.closing.mu.Unlock()
	if e.closing.closed {
		return e.closing.last
	}
	return e.collectStats()
}

func (e *Engine) collectStats() Stats {
	m := e.db.Metrics()
	s := Stats{
		WALBytesWritten:  m.WAL.BytesWritten,
		Flushes:          m.Flush.Count,
		Compactions:      m.Compact.Count,
		CompactionDebt:   m.Compact.EstimatedDebt,
		MemTableBytes:    m.MemTable.Size,
		MemTables:        m.MemTable.Count,
		L0Files:          m.Levels[0].TablesCount,
		L0Sublevels:      m.Levels[0].Sublevels,
		ReadAmp:          m.ReadAmp(),
		DiskBytes:        m.DiskSpaceUsage(),
		BlockCacheHits:   m.BlockCache.Hits,
		BlockCacheMisses: m.BlockCache.Misses,
		BlockCacheBytes:  m.BlockCache.Size,
		OpenSnapshots:    m.Snapshots.Count,
		TombstoneEntries: m.Keys.TombstoneCount,
	}
	for _, l := range m.Levels {
		s.FlushedBytes += l.TableBytesFlushed + l.BlobBytesFlushed
		s.CompactedBytes += l.TableBytesCompacted + l.BlobBytesCompacted
	}
	return s
}
