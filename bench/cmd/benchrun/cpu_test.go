package main

import (
	"os"
	"testing"
	"time"
)

func TestCPUSecondsOfThisProcessGrowsWithWork(t *testing.T) {
	before, err := cpuSeconds(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Spin until getrusage has counted 0.3 s of CPU (bounded by wall time).
	start, x := selfCPUSeconds(), 0
	for deadline := time.Now().Add(30 * time.Second); selfCPUSeconds()-start < 0.3 && time.Now().Before(deadline); {
		x++
	}
	after, err := cpuSeconds(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// /proc counts in hundredths of a second.
	if d := after - before; d < 0.25 {
		t.Fatalf("/proc says CPU time grew by %.2f s while getrusage counted 0.3 s (x=%d)", d, x)
	}
}

func TestCPUMeterNeedsAWholeWindow(t *testing.T) {
	m := &cpuMeter{}
	if m.perOp(10) != nil {
		t.Fatal("figure without a window")
	}
	m.window(true)
	if m.perOp(10) != nil {
		t.Fatal("figure from a window that did not close")
	}
	m.window(false)
	u := m.perOp(10)
	if u == nil || u.ServerUsPerOp != 0 || u.ClientUsPerOp < 0 {
		t.Fatalf("perOp = %+v, want a figure with no server time (no server processes)", u)
	}
}
