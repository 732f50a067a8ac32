// Package gcfloor keeps the garbage collector's heap target above a floor.
//
// A node's live Go heap is small (Pebble keeps memtables and its block
// cache outside it), so with GOGC=100 the collector runs whenever a few
// MiB have been allocated: under load several times a second per node,
// each cycle taking CPU from requests and adding to their latency. Go has
// a ceiling for the heap (GOMEMLIMIT) but no floor, so Run sets GOGC from
// the live heap: high enough that the next collection waits until the
// heap reaches the floor, and never below the base percentage, so a large
// live heap (where the floor no longer matters) keeps its usual headroom.
package gcfloor

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// maxPercent bounds the percentage when the live heap is tiny (at start).
const maxPercent = 2000

// Percent is the GOGC that puts the next heap target, live × (1 +
// GOGC/100), at floor or above, and is at least base.
func Percent(live, floor uint64, base int) int {
	if live == 0 {
		return maxPercent
	}
	if live >= floor {
		return base
	}
	p := int((floor - live) * 100 / live)
	if (floor-live)*100%live != 0 {
		p++
	}
	return min(max(p, base), maxPercent)
}

// Run adjusts GOGC every interval from the live heap of the last
// collection until ctx ends, then restores base.
func Run(ctx context.Context, floor uint64, base int, interval time.Duration) {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	t := time.NewTicker(interval)
	defer t.Stop()
	defer debug.SetGCPercent(base)
	last := -1
	for {
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			if p := Percent(sample[0].Value.Uint64(), floor, base); p != last {
				debug.SetGCPercent(p)
				last = p
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
