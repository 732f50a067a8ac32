package memlimit

import "testing"

func TestOver(t *testing.T) {
	m := New(0)
	if m.Used() <= 0 {
		t.Fatalf("Used() = %d, want a positive sample", m.Used())
	}
	if m.Over() {
		t.Error("Over() with no limit = true")
	}
	m.SetLimit(1 << 20) // a running test binary uses more than 1 MiB
	defer m.SetLimit(0)
	m.Sample()
	if !m.Over() {
		t.Errorf("Over() with a 1 MiB limit and %d bytes used = false", m.Used())
	}
	m.SetLimit(1 << 50)
	if m.Over() {
		t.Error("Over() with a 1 PiB limit = true")
	}
}

func TestParse(t *testing.T) {
	meminfo := "MemTotal:       24608288 kB\nMemFree:         1000 kB\n"
	if got, want := parseMeminfo([]byte(meminfo)), int64(24608288)<<10; got != want {
		t.Errorf("parseMeminfo = %d, want %d", got, want)
	}
	if got := parseMeminfo([]byte("MemFree: 1 kB\n")); got != 0 {
		t.Errorf("parseMeminfo without MemTotal = %d, want 0", got)
	}
	for in, want := range map[string]int64{
		"2147483648\n":          2 << 30,
		"max\n":                 0,
		"9223372036854771712\n": 0, // cgroup v1's "unlimited"
		"":                      0,
	} {
		if got := parseCgroupLimit([]byte(in)); got != want {
			t.Errorf("parseCgroupLimit(%q) = %d, want %d", in, got, want)
		}
	}
}
