package engine

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Stats follow the writes, flushes included, and an engine closed keeps
// reporting its last figures.
func TestStatsFollowWritesAndOutliveClose(t *testing.T) {
	// A memtable as small as Pebble allows, so the writes below fill
	// several and flush them.
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
	if after.MemTableBytes == 0 || after.MemTables == 0 || after.DiskBytes == 0 {
		t.Errorf("stats miss the data held: %+v", after)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if closed := e.Stats(); closed.WALBytesWritten < after.WALBytesWritten || closed.Flushes < after.Flushes {
		t.Errorf("stats after Close went back: %+v, before Close %+v", closed, after)
	}
}
