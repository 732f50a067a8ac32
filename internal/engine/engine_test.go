package engine

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// testEachFS runs fn on the memory filesystem, on it with a row cache
// over every key below 0xff, and on disk.
func testEachFS(t *testing.T, fn func(t *testing.T, e *Engine)) {
	t.Run("mem", func(t *testing.T) {
		e, err := Open("db", Options{FS: vfs.NewMem()})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		fn(t, e)
	})
	t.Run("mem+rowcache", func(t *testing.T) {
		e := openCached(t, 1<<20)
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

// IterateSpans must visit exactly what one Iterate per span visits, in the
// same order, on the database, a batch and a snapshot, and stop when told.
func TestIterateSpansMatchesIterate(t *testing.T) {
	testEachFS(t, func(t *testing.T, e *Engine) {
		b := e.NewWriteBatch()
		for i := range 200 {
			b.Set([]byte{byte(i / 10), byte(i % 10)}, []byte{byte(i)})
		}
		if err := b.Commit(false); err != nil {
			t.Fatal(err)
		}
		// Spans [i,3)..[i,7) of every other first byte: keys in the gaps
		// between spans must not appear.
		span := func(i int) (lo, hi []byte) { return []byte{byte(2 * i), 3}, []byte{byte(2 * i), 7} }
		const n = 10
		var want []string
		for i := range n {
			lo, hi := span(i)
			e.Iterate(lo, hi, func(k, _ []byte) bool { want = append(want, string(k)); return true })
		}
		snap := e.NewSnapshot()
		defer snap.Close()
		batch := e.NewBatch()
		defer batch.Close()
		for name, r := range map[string]interface {
			IterateSpans(int, func(int) ([]byte, []byte), func(k, v []byte) bool) error
		}{"engine": e, "snapshot": snap, "batch": batch} {
			var got []string
			if err := r.IterateSpans(n, span, func(k, _ []byte) bool { got = append(got, string(k)); return true }); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) || len(want) != 40 {
				t.Fatalf("%s: IterateSpans visited %d keys, Iterate per span %d, want 40", name, len(got), len(want))
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("%s: key %d = %x, want %x", name, i, got[i], want[i])
				}
			}
			got = got[:0]
			r.IterateSpans(n, span, func(k, _ []byte) bool { got = append(got, string(k)); return len(got) < 5 })
			if len(got) != 5 {
				t.Fatalf("%s: stopping after 5 keys visited %d", name, len(got))
			}
		}
	})
}

// FirstInSpans visits the first key of each span that has one, and only
// those, and stops when told.
func TestFirstInSpans(t *testing.T) {
	testEachFS(t, func(t *testing.T, e *Engine) {
		b := e.NewWriteBatch()
		for i := range 200 {
			if i/10 != 4 { // span 2 ([4,3)..[4,7)) stays empty
				b.Set([]byte{byte(i / 10), byte(i % 10)}, nil)
			}
		}
		if err := b.Commit(false); err != nil {
			t.Fatal(err)
		}
		span := func(i int) (lo, hi []byte) { return []byte{byte(2 * i), 3}, []byte{byte(2 * i), 7} }
		var got []string
		if err := e.FirstInSpans(10, span, func(k []byte) bool { got = append(got, fmt.Sprintf("%x", k)); return true }); err != nil {
			t.Fatal(err)
		}
		want := []string{"0003", "0203", "0603", "0803", "0a03", "0c03", "0e03", "1003", "1203"}
		if !slices.Equal(got, want) {
			t.Fatalf("FirstInSpans visited %v, want %v", got, want)
		}
		got = got[:0]
		e.FirstInSpans(10, span, func(k []byte) bool { got = append(got, fmt.Sprintf("%x", k)); return len(got) < 3 })
		if !slices.Equal(got, want[:3]) {
			t.Fatalf("stopping after 3 keys visited %v", got)
		}
	})
}

// Opening a data directory another process holds fails with an error that
// says so, not with the lock's errno alone. The test runs itself as that
// other process.
func TestOpenOfADirectoryInUse(t *testing.T) {
	if dir := os.Getenv("SHOAL_ENGINE_HOLD"); dir != "" {
		e, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Println("holding")
		io.Copy(io.Discard, os.Stdin) // until the parent closes stdin
		e.Close()
		return
	}
	dir := t.TempDir()
	holder := exec.Command(os.Args[0], "-test.run=^TestOpenOfADirectoryInUse$")
	holder.Env = append(os.Environ(), "SHOAL_ENGINE_HOLD="+dir)
	stdin, err := holder.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		holder.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "holding\n" {
		t.Fatalf("holder process: %q, %v", line, err)
	}
	_, err = Open(dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("Open of a held directory: %v; want an error saying it is in use", err)
	}
}

// A data directory written by an earlier version (Pebble's default format,
// no value separation) opens, keeps its data, and takes large values into
// blob files from then on.
func TestOpenUpgradesAnEarlierFormat(t *testing.T) {
	fs := vfs.NewMem()
	old, err := pebble.Open("db", &pebble.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Set([]byte("uk"), []byte("before"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	e, err := Open("db", Options{FS: fs})
	if err != nil {
		t.Fatalf("open an earlier format: %v", err)
	}
	defer e.Close()
	if v, ok, err := e.Get([]byte("uk")); err != nil || !ok || string(v) != "before" {
		t.Fatalf("Get(uk) = %q, %v, %v after the upgrade", v, ok, err)
	}
	if got := e.db.FormatMajorVersion(); got < pebble.FormatValueSeparation {
		t.Fatalf("format %v after open, want at least %v", got, pebble.FormatValueSeparation)
	}
	big := bytes.Repeat([]byte("v"), 1<<20)
	b := e.NewWriteBatch()
	b.Set([]byte("ubig"), big)
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
	if err := e.db.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := e.db.Metrics().BlobFiles.LiveCount; n == 0 {
		t.Error("a 1 MiB value flushed to no blob file")
	}
	if v, ok, err := e.Get([]byte("ubig")); err != nil || !ok || !bytes.Equal(v, big) {
		t.Fatalf("Get(ubig) after flush: %d bytes, %v, %v", len(v), ok, err)
	}
}

// ValueSizes tells each value's size, in the memtable and in blob files.
func TestValueSizes(t *testing.T) {
	e, err := Open("db", Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	b := e.NewWriteBatch()
	b.Set([]byte("a"), []byte("12345"))
	b.Set([]byte("c"), bytes.Repeat([]byte("v"), 1<<20))
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		var got []int
		snap := e.NewSnapshot()
		defer snap.Close()
		err := snap.ValueSizes([][]byte{[]byte("c"), []byte("b"), []byte("a"), []byte("zz")}, func(_, n int) { got = append(got, n) })
		if want := []int{1 << 20, -1, 5, -1}; err != nil || !slices.Equal(got, want) {
			t.Errorf("%s: ValueSizes = %v, %v; want %v", when, got, err, want)
		}
	}
	check("in the memtable")
	if err := e.db.Flush(); err != nil {
		t.Fatal(err)
	}
	check("flushed, the large value in a blob file")
}
