package abuse

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/shoaldb/shoal/internal/chaos"
)

// The short form of shoal-abuse: hostile loads against a real 3-node
// cluster. No node may die, every load must be refused the way Redis
// refuses it, a well-behaved client beside them must get no error, and
// everything it was acknowledged must read back.
func TestHostileClientsCannotTakeANodeDown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of real processes")
	}
	chaos.QuietRedisLogger()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	want := map[string]string{
		"setrange":        "-ERR string exceeds maximum allowed size (proto-max-bulk-len)",
		"oversize-bulk":   "-ERR Protocol error: invalid bulk length",
		"mget-512":        "-ERR reply too large",
		"stalled-readers": "connections held",
		"half-bulks":      "connections held",
	}
	var names []string
	for _, l := range Loads() {
		if _, ok := want[l.Name]; ok {
			names = append(names, l.Name)
		}
	}
	rep, err := Run(ctx, Config{Dir: t.TempDir(), Shards: 8, Loads: names,
		Baseline: time.Second, Duration: 5 * time.Second, Logf: t.Logf})
	if rep != nil {
		t.Log("\n" + rep.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed() {
		t.Fatal("a node died or an acknowledged write was lost")
	}
	if rep.Checked == 0 {
		t.Fatal("the probe had no write acknowledged")
	}
	for _, res := range rep.Results {
		if !strings.Contains(res.Outcome, want[res.Load.Name]) || strings.Contains(res.Outcome, "-dial") {
			t.Errorf("%s: hostile clients got %s, want %q", res.Load.Name, res.Outcome, want[res.Load.Name])
		}
		if len(res.During.Errors) > 0 {
			t.Errorf("%s: the well-behaved client got errors: %v", res.Load.Name, res.During.Errors)
		}
		for i, peak := range res.RSSPeak {
			if peak > maxRSS {
				t.Errorf("%s: node %d peaked at %d MiB of RSS, above %d MiB", res.Load.Name, i+1, peak>>20, maxRSS>>20)
			}
		}
	}
}

// maxRSS bounds a node's resident memory under these loads: what the full
// run measured (docs/robustness.md), with room for a slower machine.
const maxRSS = 1536 << 20
