package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// cpuUse is the CPU time spent during one measured window, per operation:
// by the system's server processes together, and by this process, which
// runs the load generator. On a machine whose cores every process shares,
// it is the figure that says how much work an operation costs, where
// throughput mostly says how the cores were shared out.
type cpuUse struct {
	ServerUsPerOp float64 `json:"server_cpu_us_per_op"`
	ClientUsPerOp float64 `json:"client_cpu_us_per_op"`
}

// cpuMeter samples CPU times when a load.Run window opens and closes.
type cpuMeter struct {
	procs []*proc

	mu               sync.Mutex
	server0, client0 float64
	opened, closed   bool
	server, client   float64 // seconds used in the window
}

// window is a load.Config.Window.
func (m *cpuMeter) window(open bool) {
	server, serr := m.serverSeconds()
	client := selfCPUSeconds()
	m.mu.Lock()
	defer m.mu.Unlock()
	if serr != nil {
		m.opened = false // a process died: no figure for this window
		return
	}
	if open {
		m.server0, m.client0, m.opened = server, client, true
		return
	}
	if m.opened {
		m.server, m.client, m.closed = server-m.server0, client-m.client0, true
	}
}

// perOp divides the window's CPU time by ops; nil if the window did not
// both open and close.
func (m *cpuMeter) perOp(ops uint64) *cpuUse {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.closed || ops == 0 {
		return nil
	}
	n := float64(ops)
	return &cpuUse{ServerUsPerOp: m.server * 1e6 / n, ClientUsPerOp: m.client * 1e6 / n}
}

func (m *cpuMeter) serverSeconds() (float64, error) {
	total := 0.0
	for _, p := range m.procs {
		s, err := cpuSeconds(p.pid())
		if err != nil {
			return 0, err
		}
		total += s
	}
	return total, nil
}

// cpuSeconds reads the user and system CPU time of pid from
// /proc/PID/stat, whose times are in USER_HZ (100 per second on Linux).
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, field 2, is in parentheses and may hold spaces;
	// fields 14 and 15 (utime, stime) are the 12th and 13th after it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("unreadable /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unreadable /proc/%d/stat times", pid)
	}
	return float64(utime+stime) / 100, nil
}

// selfCPUSeconds is the CPU time this process has used.
func selfCPUSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}
