package load

import (
	"math/bits"
	"time"
)

// subBits sets the histogram's precision: each power-of-two range of
// latencies is split into 1<<subBits linear buckets, so a recorded value
// is off by at most 1/128 (under 0.8%), as in an HDR histogram with two
// significant digits.
const subBits = 7

// Histogram counts latencies in log-linear buckets. The zero value is
// ready to use; it is not safe for concurrent use (give each worker its
// own and Merge them).
type Histogram struct {
	counts []uint64
	n      uint64
	sum    time.Duration
	max    time.Duration
}

func bucketOf(v uint64) int {
	if v < 2<<subBits {
		return int(v)
	}
	shift := bits.Len64(v) - (subBits + 1)
	top := v >> shift // in [1<<subBits, 2<<subBits)
	return (2 << subBits) + (shift-1)<<subBits + int(top-(1<<subBits))
}

// bucketHigh is the largest value that falls in bucket i.
func bucketHigh(i int) uint64 {
	if i < 2<<subBits {
		return uint64(i)
	}
	j := i - (2 << subBits)
	shift := j>>subBits + 1
	top := uint64(j&(1<<subBits-1)) + 1<<subBits
	return (top+1)<<shift - 1
}

// Record adds one observation.
func (h *Histogram) Record(d time.Duration) { h.RecordN(d, 1) }

// RecordN adds n observations of the same latency (a pipeline's commands
// all complete when the batch does).
func (h *Histogram) RecordN(d time.Duration, n uint64) {
	if d < 0 {
		d = 0
	}
	i := bucketOf(uint64(d))
	if i >= len(h.counts) {
		h.counts = append(h.counts, make([]uint64, i+1-len(h.counts))...)
	}
	h.counts[i] += n
	h.n += n
	h.sum += d * time.Duration(n)
	h.max = max(h.max, d)
}

// Merge adds o's observations to h.
func (h *Histogram) Merge(o *Histogram) {
	if len(o.counts) > len(h.counts) {
		h.counts = append(h.counts, make([]uint64, len(o.counts)-len(h.counts))...)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// Count is the number of observations.
func (h *Histogram) Count() uint64 { return h.n }

// Mean is the average observation.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}

// Max is the largest observation.
func (h *Histogram) Max() time.Duration { return h.max }

// Quantile returns the latency at or below which a fraction q of the
// observations fall (q in [0, 1]), rounded up to its bucket's upper edge.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(time.Duration(bucketHigh(i)), h.max)
		}
	}
	return h.max
}
