package diskspace

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

func TestDecide(t *testing.T) {
	const r = 100
	for _, tt := range []struct {
		free    int64
		ballast bool
		want    Decision
	}{
		{1000, true, Decision{}},
		{100, true, Decision{}},
		{99, true, Decision{Full: true}},
		{50, true, Decision{Full: true}},
		{49, true, Decision{Full: true, Release: true}},
		{0, true, Decision{Full: true, Release: true}},
		{149, false, Decision{Full: true}}, // just released: still refusing
		{199, false, Decision{Full: true}},
		{200, false, Decision{}},
		{399, false, Decision{}},
		{400, false, Decision{Recreate: true}},
	} {
		if got := Decide(tt.free, r, tt.ballast); got != tt.want {
			t.Errorf("Decide(free %d, reserve %d, ballast %v) = %+v, want %+v", tt.free, r, tt.ballast, got, tt.want)
		}
	}
	if got := DefaultReserve(1 << 30); got != MinReserve {
		t.Errorf("DefaultReserve(1 GiB) = %d, want the minimum %d", got, MinReserve)
	}
	if got := DefaultReserve(50 << 30); got != 512<<20 {
		t.Errorf("DefaultReserve(50 GiB) = %d, want 1%%", got)
	}
	if got := DefaultReserve(1 << 40); got != MaxReserve {
		t.Errorf("DefaultReserve(1 TiB) = %d, want the maximum %d", got, MaxReserve)
	}
}

// A Guard over a filesystem whose free space the test sets: it refuses
// writes, deletes the ballast when nearly full, and writes it back.
func TestGuard(t *testing.T) {
	dir := t.TempDir()
	free := int64(10 << 20)
	const reserve = 1 << 20
	g := &Guard{dir: dir, reserve: reserve, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		statfs: func(string) (int64, int64, error) { return free, 1 << 30, nil }}
	ballast := func() bool {
		_, err := os.Stat(filepath.Join(dir, BallastName))
		return err == nil
	}
	step := func(f int64, full, hasBallast bool) {
		t.Helper()
		free = f
		g.Check()
		if g.Full() != full || ballast() != hasBallast {
			t.Fatalf("free %d: full %v, ballast %v; want %v, %v", f, g.Full(), ballast(), full, hasBallast)
		}
	}
	step(10<<20, false, true) // room: the ballast is written
	step(2<<20, false, true)
	step(900<<10, true, true)   // below the reserve: refuse writes
	step(400<<10, true, false)  // nearly full: the ballast goes
	step(1400<<10, true, false) // what it freed is for the database
	step(3<<20, false, false)   // two reserves free: accept writes
	step(5<<20, false, true)    // four: the ballast comes back
	if st, err := os.Stat(filepath.Join(dir, BallastName)); err != nil || st.Size() != reserve {
		t.Fatalf("ballast: %v, %v; want %d bytes", st, err, reserve)
	}
}
