package transport_test

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCall measures a Call's round trip between two transports on
// loopback with 50 callers at once, the way a node forwards the commands
// of clients that do not route by slot: a 100-byte request, a 10-byte
// reply. cpu-µs/call is the CPU time of both ends (one process) per call.
func BenchmarkCall(b *testing.B) {
	ha, hb := newRecorder(), newRecorder()
	hb.call = func(_ context.Context, _ uint64, _ string, body []byte) ([]byte, error) {
		return body[:10], nil
	}
	a, srv := start(b, 1, ha), start(b, 2, hb)
	a.SetPeer(2, srv.Addr())
	ctx := context.Background()
	if _, err := a.Call(ctx, 2, "echo", make([]byte, 100)); err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(25) // 50 callers on 2 CPUs
	start := cpuTime(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		body := make([]byte, 100)
		for pb.Next() {
			if _, err := a.Call(ctx, 2, "echo", body); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(cpuTime(b)-start)/float64(time.Microsecond)/float64(b.N), "cpu-µs/call")
}
