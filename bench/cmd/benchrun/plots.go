package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// sweepSystems are the systems with a client sweep, in plot order.
var sweepSystems = []string{"shoal", "redis-always", "redis-everysec", "rediscluster", "etcd"}

// plots writes gnuplot data and scripts to o.out and renders
// bench-throughput.png and bench-latency.png (copied to o.imgDir if set).
func plots(o *options, r *report) error {
	var sys []string
	for _, s := range sweepSystems {
		if r.get(s, "set-c50") != nil {
			sys = append(sys, s)
		}
	}
	if len(sys) == 0 {
		return nil
	}
	for _, op := range []string{"set", "get"} {
		var b strings.Builder
		fmt.Fprintf(&b, "clients %s\n", strings.Join(sys, " "))
		for _, c := range o.sweep {
			fmt.Fprintf(&b, "%d", c)
			for _, s := range sys {
				if x := r.get(s, fmt.Sprintf("%s-c%d", op, c)); x != nil && x.ops > 0 {
					fmt.Fprintf(&b, " %.0f", x.ops)
				} else {
					fmt.Fprint(&b, " ?")
				}
			}
			fmt.Fprintln(&b)
		}
		if err := os.WriteFile(filepath.Join(o.out, "sweep-"+op+".dat"), []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	var lat strings.Builder
	fmt.Fprintln(&lat, "system set-p50 set-p99 set-p99.9 get-p50 get-p99 get-p99.9")
	for _, s := range append(sys, "shoal-plain") {
		set, get := r.get(s, "set-c50"), r.get(s, "get-c50")
		if set == nil || get == nil {
			continue
		}
		fmt.Fprintf(&lat, "%s %.3f %.3f %.3f %.3f %.3f %.3f\n", s, set.p50, set.p99, set.p999, get.p50, get.p99, get.p999)
	}
	if err := os.WriteFile(filepath.Join(o.out, "latency.dat"), []byte(lat.String()), 0o644); err != nil {
		return err
	}

	var sweepPlot []string
	for _, op := range []string{"set", "get"} {
		var lines []string
		for i := range sys {
			lines = append(lines, fmt.Sprintf("'sweep-%s.dat' using 1:%d with linespoints lw 2 pt 7 title columnheader", op, i+2))
		}
		sweepPlot = append(sweepPlot, fmt.Sprintf("set title '%s, 64-byte values, no pipelining'\nplot %s", strings.ToUpper(op), strings.Join(lines, ", \\\n  ")))
	}
	script := fmt.Sprintf(`set terminal pngcairo size 1400,560 font 'sans,11'
set output 'bench-throughput.png'
set datafile missing '?'
set multiplot layout 1,2 title 'Throughput vs clients (one machine, loopback; higher is better)'
set logscale xy
set xtics (1, 10, 50, 100)
set xlabel 'clients'
set ylabel 'ops/s'
set grid
set key top left
%s
unset multiplot

set output 'bench-latency.png'
set multiplot layout 1,2 title 'Latency at 50 clients, 64-byte values (lower is better)'
unset logscale x
set logscale y
set xtics auto
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set xtics rotate by -30
set xlabel ''
set ylabel 'ms (log scale)'
set key top left
set title 'SET'
plot 'latency.dat' using 2:xtic(1) title 'p50', '' using 3 title 'p99', '' using 4 title 'p99.9'
set title 'GET (linearizable for shoal and etcd)'
plot 'latency.dat' using 5:xtic(1) title 'p50', '' using 6 title 'p99', '' using 7 title 'p99.9'
unset multiplot
`, strings.Join(sweepPlot, "\n"))
	if err := os.WriteFile(filepath.Join(o.out, "plots.gnuplot"), []byte(script), 0o644); err != nil {
		return err
	}
	cmd := exec.Command("gnuplot", "plots.gnuplot")
	cmd.Dir = o.out
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("gnuplot: %w: %s", err, out)
	}
	if o.imgDir == "" {
		return nil
	}
	for _, f := range []string{"bench-throughput.png", "bench-latency.png"} {
		b, err := os.ReadFile(filepath.Join(o.out, f))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(o.imgDir, f), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
