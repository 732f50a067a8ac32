package abuse

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// String formats the report as Markdown: one section per load, then the
// verdict.
func (r *Report) String() string {
	var b strings.Builder
	for _, res := range r.Results {
		fmt.Fprintf(&b, "### %s\n\n%s.\n\n", res.Load.Name, res.Load.What)
		fmt.Fprintf(&b, "- hostile clients got: %s\n", res.Outcome)
		if len(res.Counters) > 0 {
			var cs []string
			for k, v := range res.Counters {
				cs = append(cs, fmt.Sprintf("%s +%d", k, v))
			}
			sort.Strings(cs)
			fmt.Fprintf(&b, "- node counters: %s\n", strings.Join(cs, ", "))
		}
		var mem []string
		for i := range res.RSSPeak {
			mem = append(mem, fmt.Sprintf("node %d %s → %s", i+1, mib(res.RSSBefore[i]), mib(res.RSSPeak[i])))
		}
		fmt.Fprintf(&b, "- RSS before → peak: %s\n", strings.Join(mem, ", "))
		fmt.Fprintf(&b, "- nodes' CPU: %.1f s in %s\n", res.CPU.Seconds(), res.Duration)
		fmt.Fprintf(&b, "- probe before: %s\n", res.Baseline)
		fmt.Fprintf(&b, "- probe during: %s\n\n", res.During)
	}
	switch {
	case len(r.Crashes) > 0:
		fmt.Fprintf(&b, "**FAILED**: nodes died:\n")
		for _, c := range r.Crashes {
			fmt.Fprintf(&b, "- %s\n", c)
		}
	case len(r.Lost) > 0:
		fmt.Fprintf(&b, "**FAILED**: %d of %d acknowledged writes lost, e.g. %s\n", len(r.Lost), r.Checked, r.Lost[0])
	default:
		fmt.Fprintf(&b, "No node died; all %d writes the probe had acknowledged read back.\n", r.Checked)
	}
	return b.String()
}

func (w window) String() string {
	s := fmt.Sprintf("%d ops, p50 %s, p99 %s, max %s", w.Ops, ms(w.P50), ms(w.P99), ms(w.Max))
	if len(w.Errors) > 0 {
		var es []string
		for k, v := range w.Errors {
			es = append(es, fmt.Sprintf("%d× %s", v, k))
		}
		sort.Strings(es)
		s += "; errors: " + strings.Join(es, "; ")
	}
	return s
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func mib(n int64) string { return fmt.Sprintf("%d MiB", n>>20) }
