package engine

import (
	"bytes"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// testEachFS runs fn on the memory filesystem and on disk.
func testEachFS(t *testing.T, fn func(t *testing.T, e *Engine)) {
	t.Run("mem", func(t *testing.T) {
		e, err := Open("db", Options{FS: vfs.NewMem()})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		fn(t, e)
	})
	t.Run("disk", func(t *testing.T) {
		e, err := Open(t.TempDir(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		fn(t, e)
	})
}

func TestBatchReadsOwnWrites(t *testing.T) {
	testEachFS(t, func(t *testing.T, e *Engine) {
		b := e.NewBatch()
		b.Set([]byte("a"), []byte("1"))
		b.Set([]byte("b"), []byte("2"))
		if v, ok, _ := b.Get([]byte("a")); !ok || string(v) != "1" {
			t.Fatalf("batch Get(a) = %q, %v; want 1, true", v, ok)
		}
		if _, ok, _ := e.Get([]byte("a")); ok {
			t.Fatalf("uncommitted write visible outside the batch")
		}
		if err := b.Commit(true); err != nil {
			t.Fatal(err)
		}
		snap := e.NewSnapshot()
		defer snap.Close()
		b = e.NewBatch()
		b.DeleteRange([]byte("a"), []byte("b"))
		b.Commit(false)
		var got []string
		e.Iterate(nil, []byte("z"), func(k, v []byte) bool {
			got = append(got, string(k)+"="+string(v))
			return true
		})
		if len(got) != 1 || got[0] != "b=2" {
			t.Fatalf("after DeleteRange: %v, want [b=2]", got)
		}
		if v, ok, _ := snap.Get([]byte("a")); !ok || !bytes.Equal(v, []byte("1")) {
			t.Fatalf("snapshot lost a: %q, %v", v, ok)
		}
	})
}
