//go:build linux

package engine

import (
	"os"
	"syscall"
	"testing"
	"time"
)

// BenchmarkSyncCPU writes 600 bytes (about four raft entries) into a
// preallocated file and fdatasyncs them, as the WAL does once per group
// commit, and reports the CPU time each sync costs the process (user and
// system, from getrusage) besides its wall time: on a VM, flushing the
// virtual disk's cache can cost a large share of a write's CPU. The file
// is in the test's temporary directory, which must be on a real disk
// (not tmpfs) for the figure to mean anything.
//
//	go test ./internal/engine -run '^$' -bench SyncCPU
func BenchmarkSyncCPU(b *testing.B) {
	f, err := os.OpenFile(b.TempDir()+"/wal", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	const size = 600
	// Preallocated where the filesystem can, as Pebble's WAL is.
	_ = syscall.Fallocate(int(f.Fd()), 0, 0, 64<<20)
	buf := make([]byte, size)
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	before := cpu()
	for i := 0; b.Loop(); i++ {
		if _, err := f.WriteAt(buf, int64(i%(64<<20/size))*size); err != nil {
			b.Fatal(err)
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((cpu()-before).Microseconds())/float64(b.N), "cpu-µs/op")
}
