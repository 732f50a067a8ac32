// Package engine wraps the node's single Pebble database: it holds every
// replica's raft log and state and all user data. It adapts Pebble batches,
// snapshots and the database itself to the kv.Reader and kv.Writer shapes.
package engine

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Engine is one Pebble database.
type Engine struct {
	db      *pebble.DB
	cache   *rowCache // nil when Options.RowCacheSpan is not set
	closing statsAfterClose
}

// Options configure Open. Zero values mean defaults.
type Options struct {
	// FS is the filesystem; nil means the real disk. Tests pass vfs.NewMem()
	// or a crashable memory filesystem.
	FS vfs.FS
	// Logger receives Pebble's log lines at debug level.
	Logger *slog.Logger
	// CacheSize is the block cache size in bytes; default 64 MiB.
	CacheSize int64
	// MemTableSize is the size of each memtable in bytes; default
	// DefaultMemTableSize.
	MemTableSize int64
	// RowCacheSpan is the span [lo, hi) of keys whose point reads are
	// cached (see rowCache); none when hi is nil.
	RowCacheSpan [2][]byte
	// RowCacheSize bounds the row cache in bytes; default
	// DefaultRowCacheSize.
	RowCacheSize int64
	// RowCachePin reports whether the row cache keeps key when other rows
	// need room: for a small set of hot keys. Pinned rows take at most
	// half of the cache; beyond that, keys are not pinned. None when nil.
	RowCachePin func(key []byte) bool
}

// separateValuesFrom is the smallest value stored in a blob file rather
// than in an sstable's data blocks (Pebble's value separation).
const separateValuesFrom = 16 << 10

// DefaultMemTableSize is the memtable size when Options leave it 0.
const DefaultMemTableSize = 32 << 20

// DefaultRowCacheSize is the row cache's size when Options leave it 0.
const DefaultRowCacheSize = 16 << 20

// Open opens (creating if needed) the database in dir.
func Open(dir string, o Options) (*Engine, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.CacheSize == 0 {
		o.CacheSize = 64 << 20
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = DefaultMemTableSize
	}
	cache := pebble.NewCache(o.CacheSize)
	defer cache.Unref()
	opts := &pebble.Options{
		FS:     o.FS,
		Cache:  cache,
		Logger: pebbleLogger{o.Logger},
		// Raft log entries are written and deleted soon after: a larger
		// memtable lets most of them die before reaching L0.
		MemTableSize: uint64(o.MemTableSize),
		// Value separation needs it; a data directory of an earlier
		// format is upgraded in place when opened.
		FormatMajorVersion: pebble.FormatValueSeparation,
	}
	opts.Experimental.EnableColumnarBlocks = func() bool { return true }
	// Large values (user values, and the raft log entries that carry
	// them) go to blob files when flushed, so that sstable data blocks
	// hold only small values. Otherwise a block holding a value of several
	// MiB, larger than a block cache shard, would be decompressed again by
	// every read that lands in it, including the meta shard's reads of
	// its neighbours: one 32 MiB value made a node spend most of its CPU
	// in snappy for as long as the value stayed in that sstable.
	opts.Experimental.ValueSeparationPolicy = func() pebble.ValueSeparationPolicy {
		return pebble.ValueSeparationPolicy{
			Enabled:               true,
			MinimumSize:           separateValuesFrom,
			MaxBlobReferenceDepth: 10,
			RewriteMinimumAge:     5 * time.Minute,
			TargetGarbageRatio:    0.3,
		}
	}
	// Bloom filters let a point read skip the sstables that cannot hold
	// its key without reading their data blocks.
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	db, err := pebble.Open(dir, opts)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		// Pebble's flock of the directory's LOCK file.
		return nil, fmt.Errorf("engine: open %s: the data directory is in use by another process (%w)", dir, err)
	}
	if err != nil {
		return nil, fmt.Errorf("engine: open %s: %w", dir, err)
	}
	e := &Engine{db: db}
	if lo, hi := o.RowCacheSpan[0], o.RowCacheSpan[1]; hi != nil {
		if o.RowCacheSize == 0 {
			o.RowCacheSize = DefaultRowCacheSize
		}
		e.cache = newRowCache(o.RowCacheSize, lo, hi, o.RowCachePin)
	}
	return e, nil
}

// Close closes the database.
func (e *Engine) Close() error {
	e.closing.mu.Lock()
	e.closing.last, e.closing.closed = e.collectStats(), true
	e.closing.mu.Unlock()
	return e.db.Close()
}

// Get returns a copy of the value of key.
func (e *Engine) Get(key []byte) ([]byte, bool, error) {
	if e.cache == nil || !e.cache.covers(key) {
		return get(e.db, key)
	}
	return e.cache.get(key, func() ([]byte, bool, error) { return get(e.db, key) })
}

// Iterate calls fn for each key in [lo, hi) in order until fn returns false.
func (e *Engine) Iterate(lo, hi []byte, fn func(k, v []byte) bool) error {
	return iterate(e.db, lo, hi, fn)
}

// NewBatch returns an indexed batch: reads through it see its own writes.
func (e *Engine) NewBatch() *Batch { return &Batch{b: e.db.NewIndexedBatch(), e: e} }

// NewWriteBatch returns a write-only batch, cheaper than NewBatch.
func (e *Engine) NewWriteBatch() *Batch { return &Batch{b: e.db.NewBatch(), e: e} }

// DiskUsage estimates the bytes on disk of the keys in [lo, hi): the
// sstables within the span and the parts of those that overlap it.
// Memtables are not counted.
func (e *Engine) DiskUsage(lo, hi []byte) (uint64, error) { return e.db.EstimateDiskUsage(lo, hi) }

// NewSnapshot returns a consistent point-in-time view. Close it when done.
func (e *Engine) NewSnapshot() *Snapshot { return &Snapshot{s: e.db.NewSnapshot()} }

// RowCacheStats returns the row cache's counters; zero without a cache.
func (e *Engine) RowCacheStats() RowCacheStats {
	if e.cache == nil {
		return RowCacheStats{}
	}
	return e.cache.stats()
}

// Batch is a set of writes applied atomically by Commit.
type Batch struct {
	b    *pebble.Batch
	e    *Engine
	rows rowWrites // the writes of keys the row cache covers
}

// Get returns a copy of the value of key, observing the batch's writes.
func (b *Batch) Get(key []byte) ([]byte, bool, error) {
	if c := b.e.cache; c != nil && b.b.Indexed() && c.covers(key) && !b.rows.written(key) {
		// An indexed batch reads what it did not write from the database
		// as it is now, which is what Engine.Get returns.
		return b.e.Get(key)
	}
	return get(b.b, key)
}

// Iterate observes the batch's writes.
func (b *Batch) Iterate(lo, hi []byte, fn func(k, v []byte) bool) error {
	return iterate(b.b, lo, hi, fn)
}

// Set sets key to value.
func (b *Batch) Set(key, value []byte) error {
	if c := b.e.cache; c != nil && c.covers(key) {
		b.rows.set(key, value, true, c.pin(key))
	}
	return b.b.Set(key, value, nil)
}

// Delete deletes key.
func (b *Batch) Delete(key []byte) error {
	if c := b.e.cache; c != nil && c.covers(key) {
		b.rows.set(key, nil, false, c.pin(key))
	}
	return b.b.Delete(key, nil)
}

// DeleteRange deletes every key in [lo, hi).
func (b *Batch) DeleteRange(lo, hi []byte) error {
	if c := b.e.cache; c != nil && c.overlaps(lo, hi) {
		b.rows.deleteRange(lo, hi)
	}
	return b.b.DeleteRange(lo, hi, nil)
}

// Empty reports whether the batch holds no writes.
func (b *Batch) Empty() bool { return b.b.Empty() }

// Len is the batch's size in bytes.
func (b *Batch) Len() int { return b.b.Len() }

// Commit applies the batch; with sync it returns once the batch is durable.
// The batch is closed afterwards.
func (b *Batch) Commit(sync bool) error {
	opts := pebble.NoSync
	if sync {
		opts = pebble.Sync
	}
	if b.e.cache == nil || b.rows.empty() {
		err := b.b.Commit(opts)
		b.b.Close()
		return err
	}
	tok := b.e.cache.begin(&b.rows)
	committed := false
	defer func() { b.e.cache.end(&b.rows, tok, committed) }() // even if Pebble panics
	err := b.b.Commit(opts)
	committed = err == nil
	b.b.Close()
	return err
}

// Close discards an uncommitted batch.
func (b *Batch) Close() { b.b.Close() }

// Snapshot is a point-in-time view of the database.
type Snapshot struct {
	s *pebble.Snapshot
}

// Get returns a copy of the value of key.
func (s *Snapshot) Get(key []byte) ([]byte, bool, error) { return get(s.s, key) }

// Iterate calls fn for each key in [lo, hi) in order until fn returns false.
func (s *Snapshot) Iterate(lo, hi []byte, fn func(k, v []byte) bool) error {
	return iterate(s.s, lo, hi, fn)
}

// Close releases the snapshot.
func (s *Snapshot) Close() { s.s.Close() }

// ValueSizes calls fn with the size of each key's value, -1 if absent,
// without reading the values (a large value's size is in its blob file
// handle). One iterator seeks from key to key.
func (s *Snapshot) ValueSizes(keys [][]byte, fn func(i, size int)) error {
	return valueSizes(s.s, keys, fn)
}

func valueSizes(r reader, keys [][]byte, fn func(i, size int)) error {
	it, err := r.NewIter(nil)
	if err != nil {
		return err
	}
	for i, k := range keys {
		size := -1
		if it.SeekGE(k) && bytes.Equal(it.Key(), k) {
			lv := it.LazyValue()
			size = lv.Len()
		}
		fn(i, size)
	}
	err = it.Error()
	if cerr := it.Close(); err == nil {
		err = cerr
	}
	return err
}

type reader interface {
	Get(key []byte) ([]byte, io.Closer, error)
	NewIter(o *pebble.IterOptions) (*pebble.Iterator, error)
}

func get(r reader, key []byte) ([]byte, bool, error) {
	v, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	out := make([]byte, len(v))
	copy(out, v)
	closer.Close()
	return out, true, nil
}

func iterate(r reader, lo, hi []byte, fn func(k, v []byte) bool) error {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return err
		}
		if !fn(it.Key(), v) {
			break
		}
	}
	if err := it.Error(); err != nil {
		it.Close()
		return err
	}
	return it.Close()
}

// IterateSpans calls fn for each key of n disjoint spans, given in
// ascending order by span(i), until fn returns false. One iterator seeks
// from span to span, which costs far less than one Iterate per span.
func (e *Engine) IterateSpans(n int, span func(i int) (lo, hi []byte), fn func(k, v []byte) bool) error {
	return iterateSpans(e.db, n, span, fn)
}

// IterateSpans observes the batch's writes.
func (b *Batch) IterateSpans(n int, span func(i int) (lo, hi []byte), fn func(k, v []byte) bool) error {
	return iterateSpans(b.b, n, span, fn)
}

// IterateSpans is Engine.IterateSpans on the snapshot.
func (s *Snapshot) IterateSpans(n int, span func(i int) (lo, hi []byte), fn func(k, v []byte) bool) error {
	return iterateSpans(s.s, n, span, fn)
}

// FirstInSpans calls fn with the first key of each of n disjoint spans,
// given in ascending order by span(i), that holds one, until fn returns
// false. One iterator seeks from span to span.
func (e *Engine) FirstInSpans(n int, span func(i int) (lo, hi []byte), fn func(k []byte) bool) error {
	return walkSpans(e.db, n, span, func(it *pebble.Iterator, _ []byte) (bool, error) {
		return fn(it.Key()), nil
	})
}

func iterateSpans(r reader, n int, span func(i int) (lo, hi []byte), fn func(k, v []byte) bool) error {
	return walkSpans(r, n, span, func(it *pebble.Iterator, hi []byte) (bool, error) {
		for ok := true; ok && bytes.Compare(it.Key(), hi) < 0; ok = it.Next() {
			v, err := it.ValueAndErr()
			if err != nil || !fn(it.Key(), v) {
				return false, err
			}
		}
		return true, nil
	})
}

// walkSpans seeks one iterator to each of n disjoint spans, given in
// ascending order by span(i), and calls visit with it on the first key of
// each span that holds one; hi is the span's end. visit returns whether
// to go on.
func walkSpans(r reader, n int, span func(i int) (lo, hi []byte), visit func(it *pebble.Iterator, hi []byte) (bool, error)) error {
	if n == 0 {
		return nil
	}
	first, _ := span(0)
	_, last := span(n - 1)
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: first, UpperBound: last})
	if err != nil {
		return err
	}
	for i := range n {
		lo, hi := span(i)
		if !it.SeekGE(lo) || bytes.Compare(it.Key(), hi) >= 0 {
			continue
		}
		more, err := visit(it, hi)
		if err != nil {
			it.Close()
			return err
		}
		if !more {
			break
		}
	}
	if err := it.Error(); err != nil {
		it.Close()
		return err
	}
	return it.Close()
}

type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("pebble: "+format, args...))
}
