package gcfloor

import "testing"

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		live, floor uint64
		base, want  int
	}{
		{16 * mib, 64 * mib, 100, 300},  // 16 × 4 = 64
		{10 * mib, 64 * mib, 100, 540},  // 10 × 6.4 = 64
		{7 * mib, 64 * mib, 100, 815},   // rounded up: 7 × 9.15 ≥ 64
		{40 * mib, 64 * mib, 100, 100},  // 40 × 1.6 = 64 < 80: base wins
		{64 * mib, 64 * mib, 100, 100},  // at the floor
		{500 * mib, 64 * mib, 100, 100}, // far above it
		{mib / 16, 64 * mib, 100, maxPercent},
		{0, 64 * mib, 100, maxPercent},
		{16 * mib, 64 * mib, 400, 400}, // an explicit GOGC above what the floor needs
	} {
		got := Percent(c.live, c.floor, c.base)
		if got != c.want {
			t.Errorf("Percent(%d, %d, %d) = %d, want %d", c.live, c.floor, c.base, got, c.want)
		}
		if target := c.live + c.live*uint64(got)/100; c.live > 0 && got < maxPercent && target < c.floor {
			t.Errorf("Percent(%d, %d, %d) = %d puts the target at %d, under the floor", c.live, c.floor, c.base, got, target)
		}
	}
}
