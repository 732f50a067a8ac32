package engine

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Stats follow the writes, flushes included, and an engine closed goes on
// reporting the figures it had at Close.
func TestStatsFollowWritesAndOutliveClose(t *testing.T) {
	// A small memtable, so the writes below fill several and flush them.
	e, err := Open("db", Options{FS: vfs.NewMem(), MemTableSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	before := e.Stats()
	value := make([]byte, 1024)
	for i := range 8 {
		b := e.NewWriteBatch()
		for j := range 1024 {
			if err := b.Set(fmt.Appendf(nil, "k%d-%d", i, j), value); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(false); err != nil {
			t.Fatal(err)
		}
	}
	after := e.Stats()
	if d := after.WALBytesWritten - before.WALBytesWritten; d < 8<<20 {
		t.Errorf("WAL bytes grew by %d over 8 MiB of writes", d)
	}
	if after.Flushes == 0 || after.FlushedBytes == 0 {
		t.Errorf("8 MiB through 1 MiB memtables: %d flushes, %d bytes flushed", after.Flushes, after.FlushedBytes)
	}
	// What was flushed is on disk, in sstables.
	if after.DiskBytes < after.FlushedBytes {
		t.Errorf("%d bytes on disk after %d bytes flushed", after.DiskBytes, after.FlushedBytes)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	// A flush still running when after was read may have ended before
	// Close: counters can only have grown, and then stay.
	closed := e.Stats()
	if closed.WALBytesWritten < after.WALBytesWritten || closed.Flushes < after.Flushes || closed.FlushedBytes < after.FlushedBytes {
		t.Errorf("stats after Close went back: %+v, before Close %+v", closed, after)
	}
	if again := e.Stats(); again != closed {
		t.Errorf("stats after Close changed: %+v, then %+v", closed, again)
	}
}
