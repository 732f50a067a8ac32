package load

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// chooser picks key indexes in [0, n).
type chooser interface {
	next(r *rand.Rand) uint64
}

type uniform struct{ n uint64 }

func (u uniform) next(r *rand.Rand) uint64 { return r.Uint64N(u.n) }

// zipfian draws with YCSB's default skew (theta 0.99), using the
// rejection-free method of Gray et al., "Quickly generating billion-record
// synthetic databases" (SIGMOD 1994). Rank 0 is the hottest. Ranks are then
// scattered by a multiplicative hash so hot keys land in different hash
// slots rather than next to each other (YCSB's "scrambled" zipfian).
type zipfian struct {
	n                  uint64
	theta, alpha, eta  float64
	zetaN, halfPowTeta float64
}

func newZipfian(n uint64, theta float64) *zipfian {
	zeta := func(n uint64) float64 {
		var s float64
		for i := uint64(1); i <= n; i++ {
			s += 1 / math.Pow(float64(i), theta)
		}
		return s
	}
	z := &zipfian{n: n, theta: theta, zetaN: zeta(n)}
	z.alpha = 1 / (1 - theta)
	z.eta = (1 - math.Pow(2/float64(n), 1-theta)) / (1 - zeta(2)/z.zetaN)
	z.halfPowTeta = 1 + math.Pow(0.5, theta)
	return z
}

func (z *zipfian) next(r *rand.Rand) uint64 {
	u := r.Float64()
	uz := u * z.zetaN
	var rank uint64
	switch {
	case uz < 1:
		rank = 0
	case uz < z.halfPowTeta:
		rank = 1
	default:
		rank = uint64(float64(z.n) * math.Pow(z.eta*u-z.eta+1, z.alpha))
	}
	rank = min(rank, z.n-1)
	return (rank * 0x9E3779B97F4A7C15) % z.n
}

func newChooser(dist string, n uint64) (chooser, error) {
	switch dist {
	case "uniform":
		return uniform{n}, nil
	case "zipfian":
		return newZipfian(n, 0.99), nil
	}
	return nil, fmt.Errorf("unknown distribution %q (want uniform or zipfian)", dist)
}

// appendKey appends key i in redis-benchmark's format ("key:" and 12 digits).
func appendKey(b []byte, i uint64) []byte {
	b = append(b, "key:"...)
	return appendDigits(b, i, 12)
}

// appendTaggedKey appends "key:{TTTTTTTT}NNNNNNNNNNNN": keys with the same
// tag hash to the same slot.
func appendTaggedKey(b []byte, tag, i uint64) []byte {
	b = append(b, "key:{"...)
	b = appendDigits(b, tag, 8)
	b = append(b, '}')
	return appendDigits(b, i, 12)
}

func appendDigits(b []byte, v uint64, n int) []byte {
	start := len(b)
	b = append(b, make([]byte, n)...)
	for j := len(b) - 1; j >= start; j-- {
		b[j] = byte('0' + v%10)
		v /= 10
	}
	return b
}
