package main

import (
	"strings"
	"testing"

	"github.com/shoaldb/shoal/bench/internal/load"
)

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
