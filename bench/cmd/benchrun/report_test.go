package main

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoaldb/shoal/bench/internal/load"
)

// TestMain lets loopbackProbe run this test binary as its echo process.
func TestMain(m *testing.M) {
	if len(os.Args) == 2 && os.Args[1] == "-loopback-echo" {
		loopbackEcho()
		return
	}
	os.Exit(m.Run())
}

func TestTablesShowCPUPerOperation(t *testing.T) {
	c := func(sys, wl string, ops, cpu float64) cell {
		x := cell{System: sys, Workload: wl, Result: &load.Result{OpsPerSec: ops}}
		if cpu > 0 {
			x.CPU = &cpuUse{ServerUsPerOp: cpu, ClientUsPerOp: 10}
		}
		return x
	}
	r := &report{Cells: []cell{
		c("shoal", "set-c50", 4000, 300),
		c("etcd", "set-c50", 3000, 400),
		c("redis-always", "set-c50", 30000, 0), // not measured
	}}
	var b strings.Builder
	table(&b, r)
	targets(&b, r)
	out := b.String()
	for _, want := range []string{
		"| set-c50 server CPU µs/op | 300 | – | 400 (0.75×) |",
		"SET c50: server CPU per op, shoal ÷ etcd (not a goal) | 0.75× (300 vs 400 µs)",
		"| SET c50: shoal ÷ etcd put | 1.33× |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "shoal ÷ redis-always (not a goal)") {
		t.Errorf("a CPU ratio was shown for a system without a CPU figure:\n%s", out)
	}
}

// The table names the machine's speed before and after the suite.
func TestTableShowsTheMachineYardstick(t *testing.T) {
	r := &report{CPUProbeMs: map[string]float64{"before": 41.25, "after": 80.5},
		LoopbackUs: map[string]float64{"before": 30, "after": 61},
		FsyncUs:    map[string]float64{"p50": 170, "p99": 900}}
	paused := 54.4
	r.PauseMsPerSec, r.PauseMaxMs = &paused, 8.25
	var b strings.Builder
	table(&b, r)
	want := "CPU probe 41.2 and 80.5 ms, loopback round trip 30 and 61 µs. fdatasync of 4 KiB: p50 170 µs, p99 900 µs. " +
		"Machine pauses beside fsyncs (every thread stopped): 54 ms per second, longest 8.2 ms."
	if !strings.Contains(b.String(), want) {
		t.Errorf("table lacks %q:\n%s", want, b.String())
	}
	r.LoopbackUs = nil
	b.Reset()
	table(&b, r)
	if !strings.Contains(b.String(), "loopback round trip n/a and n/a µs") {
		t.Errorf("a failed loopback probe is not shown as n/a:\n%s", b.String())
	}
}

// The loopback probe pings another process and reaps it.
func TestLoopbackProbe(t *testing.T) {
	rtt, err := loopbackProbe()
	if err != nil || rtt <= 0 {
		t.Fatalf("loopbackProbe = %v µs, %v", rtt, err)
	}
	t.Logf("loopback round trip %.0f µs, CPU probe %.1f ms", rtt, cpuProbe())
}

// spinGaps reports the gaps between clock readings longer than its bound,
// including the one that ends past the deadline.
func TestSpinGapsFindsTheTimeNotRun(t *testing.T) {
	base := time.Unix(0, 0)
	ms := func(f float64) time.Time { return base.Add(time.Duration(f * float64(time.Millisecond))) }
	readings := []time.Time{ms(0), ms(0.1), ms(0.2), ms(5.2), ms(5.3), ms(5.9), ms(12)}
	i := 0
	now := func() time.Time { t := readings[i]; i++; return t }
	got := spinGaps(now, ms(10), time.Millisecond)
	want := []time.Duration{5 * time.Millisecond, 6100 * time.Microsecond}
	if !slices.Equal(got, want) {
		t.Fatalf("spinGaps = %v, want %v", got, want)
	}
	if i != len(readings) {
		t.Fatalf("spinGaps read the clock %d times, want %d (it must stop once past the end)", i, len(readings))
	}
}
