package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// rbRow is one redis-benchmark test.
type rbRow struct {
	System  string  `json:"system"`
	Cluster bool    `json:"cluster"`
	Test    string  `json:"test"`
	RPS     float64 `json:"rps"`
	P50Ms   float64 `json:"p50_ms"`
	P99Ms   float64 `json:"p99_ms"`
	Err     string  `json:"error,omitempty"`
}

// redisBenchmark runs redis-benchmark's SET and GET with 50 clients and
// 64-byte values, bounded to two minutes.
func (o *options) redisBenchmark(ctx context.Context, sys, a string, cluster bool) []rbRow {
	host, port, _ := strings.Cut(a, ":")
	args := []string{"-h", host, "-p", port, "-c", "50", "-n", strconv.Itoa(o.rbRequests),
		"-d", strconv.Itoa(o.valueSize), "-r", strconv.FormatUint(o.keys, 10), "-t", "set,get", "--csv"}
	if cluster {
		args = append(args, "--cluster")
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(cctx, "redis-benchmark", args...).Output()
	if err != nil {
		logf("redis-benchmark %s cluster=%v: %v", sys, cluster, err)
		return []rbRow{{System: sys, Cluster: cluster, Err: err.Error()}}
	}
	// With --cluster it first prints the cluster's masters; keep the CSV.
	var csvLines strings.Builder
	for line := range strings.Lines(string(out)) {
		if strings.HasPrefix(line, `"`) {
			csvLines.WriteString(line)
		}
	}
	recs, err := csv.NewReader(strings.NewReader(csvLines.String())).ReadAll()
	if err != nil || len(recs) < 2 {
		return []rbRow{{System: sys, Cluster: cluster, Err: fmt.Sprintf("unreadable output %q", out)}}
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	var rows []rbRow
	for _, r := range recs[1:] {
		f := func(name string) float64 {
			if i, ok := col[name]; ok && i < len(r) {
				v, _ := strconv.ParseFloat(r[i], 64)
				return v
			}
			return 0
		}
		row := rbRow{System: sys, Cluster: cluster, Test: r[0], RPS: f("rps"), P50Ms: f("p50_latency_ms"), P99Ms: f("p99_latency_ms")}
		logf("redis-benchmark %s cluster=%v %s: %.0f req/s p50 %.3f ms p99 %.3f ms", sys, cluster, row.Test, row.RPS, row.P50Ms, row.P99Ms)
		rows = append(rows, row)
	}
	return rows
}

// fsyncProbe times 200 fdatasyncs of a 4 KiB write in dir: every durable
// system here is bounded by this disk's sync latency.
func fsyncProbe(dir string) map[string]float64 {
	f, err := os.Create(filepath.Join(dir, "fsync-probe"))
	if err != nil {
		return nil
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4096)
	var ds []time.Duration
	for range 200 {
		if _, err := f.Write(buf); err != nil {
			return nil
		}
		t := time.Now()
		if err := f.Sync(); err != nil {
			return nil
		}
		ds = append(ds, time.Since(t))
	}
	slices.Sort(ds)
	us := func(d time.Duration) float64 { return float64(d) / 1e3 }
	return map[string]float64{"p50": us(ds[len(ds)/2]), "p99": us(ds[len(ds)*99/100])}
}

// pauseProbe measures how long the machine stops everything it runs while
// it is busy with both CPU and disk, as every durable system here keeps
// it: for d, one goroutine per CPU spins reading the clock while another
// writes 1 KiB and fdatasyncs in a loop in dir. It returns the time the
// spinners lost, in ms per second (the mean over spinners), and the
// longest gap in ms; ok is false when the writer could not write or sync,
// as then the figures measure nothing. A VM whose host throttles it shows
// gaps that no process inside can explain, and every request that spans
// one gains its length: on one machine here, about 5 ms of every 100 ms.
func pauseProbe(dir string, d time.Duration) (lostMsPerSec, maxGapMs float64, ok bool) {
	f, err := os.Create(filepath.Join(dir, "pause-probe"))
	if err != nil {
		return 0, 0, false
	}
	defer os.Remove(f.Name())
	defer f.Close()
	end := time.Now().Add(d)
	writeErr := make(chan error, 1)
	go func() {
		buf := make([]byte, 1024)
		for i := 0; time.Now().Before(end); i++ {
			if _, err := f.WriteAt(buf, int64(i%1024)*1024); err != nil {
				writeErr <- err
				return
			}
			if err := f.Sync(); err != nil {
				writeErr <- err
				return
			}
			time.Sleep(500 * time.Microsecond) // about a durable server's pace, not a flood
		}
		writeErr <- nil
	}()
	// One spinner per CPU, and a processor more for the writer, so that
	// Go's scheduler never stops a spinner to run it: the gaps left are
	// the operating system's and the host's.
	n := runtime.NumCPU()
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(n + 1))
	gaps := make(chan []time.Duration, n)
	for range n {
		go func() { gaps <- spinGaps(time.Now, end, time.Millisecond) }()
	}
	var lost, longest time.Duration
	for range n {
		for _, g := range <-gaps {
			lost += g
			longest = max(longest, g)
		}
	}
	if err := <-writeErr; err != nil {
		return 0, 0, false
	}
	return float64(lost) / 1e6 / float64(n) / d.Seconds(), float64(longest) / 1e6, true
}

// spinGaps reads now in a loop until it passes end and returns every gap
// longer than over between two readings: time the goroutine did not run.
func spinGaps(now func() time.Time, end time.Time, over time.Duration) []time.Duration {
	var gaps []time.Duration
	prev := now()
	for {
		t := now()
		if g := t.Sub(prev); g > over {
			gaps = append(gaps, g)
		}
		if t.After(end) {
			return gaps
		}
		prev = t
	}
}

// cpuProbe times a fixed single-threaded piece of work, hashing and map
// churn as on a server's request path, and returns the fastest of five
// runs in ms: a yardstick of the machine's speed. Taken before and after
// the suite, it says whether the machine drifted during the run, and lets
// runs on machines of different speed be set side by side.
func cpuProbe() float64 {
	best := time.Duration(1<<63 - 1)
	buf := make([]byte, 256)
	for range 5 {
		t := time.Now()
		m := make(map[string]int)
		for i := range 1 << 16 {
			binary.LittleEndian.PutUint64(buf, uint64(i))
			sum := sha256.Sum256(buf)
			m[string(sum[:8])] = i
		}
		best = min(best, time.Since(t))
	}
	return float64(best) / 1e6
}

// loopbackProbe returns the median round trip, in µs, of 2 000 one-byte
// pings over a loopback TCP connection to another process (this binary
// run with -loopback-echo): the syscalls, wake-ups and process switches
// that every request to every system here pays. The probe is bounded by
// probeTimeout.
func loopbackProbe() (float64, error) {
	self := "/proc/self/exe" // this binary, even if rebuilt since it started
	if _, err := os.Stat(self); err != nil {
		if self, err = os.Executable(); err != nil {
			return 0, err
		}
	}
	cmd := exec.Command(self, "-loopback-echo")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	// Killing the child ends every read below: its stdout and its end
	// of the connection close.
	stop := time.AfterFunc(probeTimeout, func() { cmd.Process.Kill() })
	defer func() {
		stop.Stop()
		cmd.Process.Kill()
		cmd.Wait()
	}()
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("loopback probe: no address from the echo process: %w", err)
	}
	c, err := net.DialTimeout("tcp", strings.TrimSpace(addr), probeTimeout)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(probeTimeout))
	b := []byte{0}
	ds := make([]time.Duration, 0, 2000)
	for range 2000 {
		t := time.Now()
		if _, err := c.Write(b); err != nil {
			return 0, err
		}
		if _, err := io.ReadFull(c, b); err != nil {
			return 0, err
		}
		ds = append(ds, time.Since(t))
	}
	slices.Sort(ds)
	return float64(ds[len(ds)/2]) / 1e3, nil
}

const probeTimeout = 30 * time.Second

// loopbackEcho serves loopbackProbe: it prints the address it listens on
// and echoes one connection until it closes, or exits after probeTimeout
// (should its parent have died).
func loopbackEcho() {
	time.AfterFunc(probeTimeout, func() { os.Exit(1) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "loopback echo:", err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr())
	c, err := ln.Accept()
	if err != nil {
		fmt.Fprintln(os.Stderr, "loopback echo:", err)
		os.Exit(1)
	}
	io.Copy(c, c)
}

// Row and column order of the tables.
var (
	systems   = []string{"shoal", "shoal-plain", "shoal-1shard", "redis-always", "redis-everysec", "rediscluster", "etcd"}
	workloads = []string{"set-c50", "get-c50", "set-p16-c50"}
)

func (r *report) get(sys, w string) *cellResult {
	for _, c := range r.Cells {
		if c.System == sys && c.Workload == w && c.Result != nil {
			x := &cellResult{ops: c.Result.OpsPerSec, p50: c.Result.P50Ms, p99: c.Result.P99Ms, p999: c.Result.P999Ms, errs: c.Result.Errors}
			if c.CPU != nil {
				x.serverCPU, x.clientCPU = c.CPU.ServerUsPerOp, c.CPU.ClientUsPerOp
			}
			return x
		}
	}
	return nil
}

type cellResult struct {
	ops, p50, p99, p999  float64
	serverCPU, clientCPU float64 // µs per operation; 0 if not measured
	errs                 uint64
}

func writeReport(o *options, r *report) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.out, "report.json"), b, 0o644); err != nil {
		return err
	}
	var md strings.Builder
	table(&md, r)
	targets(&md, r)
	if err := os.WriteFile(filepath.Join(o.out, "table.md"), []byte(md.String()), 0o644); err != nil {
		return err
	}
	fmt.Print(md.String())
	if err := plots(o, r); err != nil {
		logf("plots: %v", err)
	}
	return nil
}

func present(r *report) []string {
	var out []string
	for _, s := range systems {
		for _, c := range r.Cells {
			if c.System == s {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

// table writes absolute figures with, in brackets, shoal's figure divided
// by that system's (so "2.0×" means shoal does twice as well).
func table(w io.Writer, r *report) {
	sys := present(r)
	if p := r.CPUProbeMs; p != nil {
		us := func(k string) string {
			if v, ok := r.LoopbackUs[k]; ok && v > 0 {
				return fmt.Sprintf("%.0f", v)
			}
			return "n/a"
		}
		fmt.Fprintf(w, "\nMachine yardsticks (lower is faster), before and after the suite: CPU probe %.1f and %.1f ms, loopback round trip %s and %s µs.",
			p["before"], p["after"], us("before"), us("after"))
		if f := r.FsyncUs; f != nil {
			fmt.Fprintf(w, " fdatasync of 4 KiB: p50 %.0f µs, p99 %.0f µs.", f["p50"], f["p99"])
		}
		if r.PauseMsPerSec != nil {
			fmt.Fprintf(w, " Machine pauses beside fsyncs (every thread stopped): %.0f ms per second, longest %.1f ms.",
				*r.PauseMsPerSec, r.PauseMaxMs)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "\nThroughput in ops/s, latency in ms; (×) = shoal ÷ that system, so above 1× shoal is ahead (for latency and CPU: shoal's ÷ theirs, below 1× shoal is faster or cheaper). CPU is CPU time per operation in the measured window: of all the system's server processes together, and of the load generator (its client).\n")
	for _, c := range r.Cells {
		if len(c.Rounds) > 1 {
			fmt.Fprintf(w, "Each row is the round with the median ops/s of %d; every round's ops/s is in results.jsonl.\n", len(c.Rounds))
			break
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "| workload | %s |\n|---|%s\n", strings.Join(sys, " | "), strings.Repeat("---:|", len(sys)))
	for _, wl := range workloads {
		rows := []struct {
			label string
			f     func(*cellResult) float64
			fmt   string
		}{
			{wl + " ops/s", func(c *cellResult) float64 { return c.ops }, "%.0f"},
			{wl + " p50", func(c *cellResult) float64 { return c.p50 }, "%.2f"},
			{wl + " p99", func(c *cellResult) float64 { return c.p99 }, "%.2f"},
			{wl + " p99.9", func(c *cellResult) float64 { return c.p999 }, "%.2f"},
			{wl + " server CPU µs/op", func(c *cellResult) float64 { return c.serverCPU }, "%.0f"},
			{wl + " client CPU µs/op", func(c *cellResult) float64 { return c.clientCPU }, "%.0f"},
		}
		ref := r.get("shoal", wl)
		for _, row := range rows {
			fmt.Fprintf(w, "| %s |", row.label)
			for _, s := range sys {
				c := r.get(s, wl)
				if c == nil {
					fmt.Fprint(w, " – |")
					continue
				}
				v := row.f(c)
				if v == 0 && strings.Contains(row.label, "CPU") {
					fmt.Fprint(w, " – |") // not measured
					continue
				}
				fmt.Fprintf(w, " "+row.fmt, v)
				if ref != nil && s != "shoal" && v > 0 {
					fmt.Fprintf(w, " (%.2f×)", row.f(ref)/v)
				}
				if c.errs > 0 && strings.HasSuffix(row.label, "ops/s") {
					fmt.Fprintf(w, " [%d err]", c.errs)
				}
				fmt.Fprint(w, " |")
			}
			fmt.Fprintln(w)
		}
	}
	if len(r.RB) > 0 {
		fmt.Fprintf(w, "\nredis-benchmark -c 50 -d 64 -t set,get:\n\n| system | client | test | req/s | p50 ms | p99 ms |\n|---|---|---|---:|---:|---:|\n")
		for _, x := range r.RB {
			mode := "plain"
			if x.Cluster {
				mode = "--cluster"
			}
			if x.Err != "" {
				fmt.Fprintf(w, "| %s | %s | failed: %s | | | |\n", x.System, mode, x.Err)
				continue
			}
			fmt.Fprintf(w, "| %s | %s | %s | %.0f | %.3f | %.3f |\n", x.System, mode, x.Test, x.RPS, x.P50Ms, x.P99Ms)
		}
	}
	if len(r.Memory) > 0 {
		fmt.Fprintf(w, "\nMemory (VmRSS per node, MiB; growth = (after − before) ÷ keys on the largest node):\n\n| system | keys written | fill s | before | after | max node | growth B/key |\n|---|---:|---:|---|---|---:|---:|\n")
		for _, m := range r.Memory {
			growth := 0.0
			if m.Keys > 0 {
				for i := range m.AfterMiB {
					if i < len(m.BeforeMiB) {
						growth = max(growth, float64(m.AfterMiB[i]-m.BeforeMiB[i])*(1<<20)/float64(m.Keys))
					}
				}
			}
			fmt.Fprintf(w, "| %s | %d | %.1f | %v | %v | %d | %.0f |\n", m.System, m.Keys, m.FillSec, m.BeforeMiB, m.AfterMiB, m.MaxNodeMiB, growth)
		}
	}
	for name, err := range r.Failed {
		fmt.Fprintf(w, "\n%s did not start: %s\n", name, err)
	}
}

// targets compares the run with the goals.
func targets(w io.Writer, r *report) {
	fmt.Fprintf(w, "\n| target | measured | goal | status |\n|---|---:|---:|---|\n")
	ratio := func(label, a, wa, b, wb string, goal float64) {
		x, y := r.get(a, wa), r.get(b, wb)
		if x == nil || y == nil || y.ops == 0 {
			fmt.Fprintf(w, "| %s | n/a | ≥ %.1f× | not measured |\n", label, goal)
			return
		}
		v := x.ops / y.ops
		fmt.Fprintf(w, "| %s | %.2f× | ≥ %.1f× | %s |\n", label, v, goal, verdict(v >= goal, v/goal))
	}
	ratio("SET c50: shoal ÷ etcd put", "shoal", "set-c50", "etcd", "set-c50", 5)
	ratio("SET c50: shoal ÷ redis (fsync always)", "shoal", "set-c50", "redis-always", "set-c50", 1)
	ratio("GET c50: shoal ÷ etcd linearizable get", "shoal", "get-c50", "etcd", "get-c50", 5)
	ratio("GET c50: shoal ÷ redis", "shoal", "get-c50", "redis-always", "get-c50", 0.7)
	ratio("SET P16 ÷ SET P1 (shoal, c50)", "shoal", "set-p16-c50", "shoal", "set-c50", 3)
	ratio("SET c50: 16 shards ÷ 1 shard", "shoal", "set-c50", "shoal-1shard", "set-c50", 1.5)
	ratio("GET c50: 16 shards ÷ 1 shard", "shoal", "get-c50", "shoal-1shard", "get-c50", 1.5)
	if c := r.get("shoal", "set-c50"); c != nil {
		fmt.Fprintf(w, "| p99 SET c50 (shoal) | %.2f ms | < 10 ms | %s |\n", c.p99, verdict(c.p99 < 10, 10/c.p99))
	}
	// CPU per operation is no goal of the issue, but on a machine whose
	// cores all processes share it is the figure that compares the
	// systems' work; shown for the same pairs as the throughput goals.
	cpu := func(label, wl, other string) {
		x, y := r.get("shoal", wl), r.get(other, wl)
		if x == nil || y == nil || x.serverCPU == 0 || y.serverCPU == 0 {
			return
		}
		fmt.Fprintf(w, "| %s: server CPU per op, shoal ÷ %s (not a goal) | %.2f× (%.0f vs %.0f µs) | – | for reference |\n",
			label, other, x.serverCPU/y.serverCPU, x.serverCPU, y.serverCPU)
	}
	cpu("SET c50", "set-c50", "etcd")
	cpu("SET c50", "set-c50", "redis-always")
	cpu("GET c50", "get-c50", "etcd")
	cpu("GET c50", "get-c50", "redis-always")
	var shoal, redis *memory
	for i := range r.Memory {
		switch r.Memory[i].System {
		case "shoal":
			shoal = &r.Memory[i]
		case "redis-everysec":
			redis = &r.Memory[i]
		}
	}
	if shoal != nil && redis != nil && redis.MaxNodeMiB > 0 {
		v := float64(shoal.MaxNodeMiB) / float64(redis.MaxNodeMiB)
		note := ""
		if shoal.Keys < redis.Keys {
			note = fmt.Sprintf(" (shoal held only %d of %d keys)", shoal.Keys, redis.Keys)
		}
		fmt.Fprintf(w, "| RSS per node ÷ redis, %d keys%s | %.2f× | ≤ 2.0× | %s |\n", redis.Keys, note, v, verdict(v <= 2, 2/v))
	}
}

// verdict says met, or missed by a factor.
func verdict(ok bool, factor float64) string {
	if ok {
		return "met"
	}
	return fmt.Sprintf("missed: %.1f× short", 1/factor)
}
