package transport_test

import (
	"context"
	"fmt"
	"runtime"
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
// loopback, the way a node forwards the commands of clients that do not
// route by slot: a 100-byte request, a 10-byte reply; with 50 callers at
// once and with one. cpu-µs/call is the CPU time of both ends (one
// process) per call.
func BenchmarkCall(b *testing.B) {
	for _, callers := range []int{50, 1} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) { benchmarkCall(b, callers) })
	}
}

func benchmarkCall(b *testing.B, callers int) {
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
	call := func(body []byte) bool {
		if _, err := a.Call(ctx, 2, "echo", body); err != nil {
			b.Error(err)
			return false
		}
		return true
	}
	start := cpuTime(b)
	b.ResetTimer()
	if callers == 1 {
		body := make([]byte, 100)
		for i := 0; i < b.N && call(body); i++ {
		}
	} else {
		// RunParallel starts parallelism × GOMAXPROCS callers.
		b.SetParallelism(max(callers/runtime.GOMAXPROCS(0), 1))
		b.RunParallel(func(pb *testing.PB) {
			body := make([]byte, 100)
			for pb.Next() && call(body) {
			}
		})
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime(b)-start)/float64(time.Microsecond)/float64(b.N), "cpu-µs/call")
}
