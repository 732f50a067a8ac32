package kv

// Match reports whether s matches the Redis glob pattern, with the results
// of Redis's stringmatchlen (case-sensitive):
//
//	element  matches
//	*        any run of bytes, including none
//	?        any one byte
//	[abc]    one of the listed bytes; [^abc] one byte not listed; a-z is a
//	         range (reversed bounds are swapped); \x inside takes x
//	         literally; an unclosed [ runs to the end of the pattern
//	\x       x literally; a trailing \ matches a backslash
//
// As in Redis, the empty string matches only the empty pattern (KEYS and
// SCAN treat the pattern "*" as "everything" before calling Match). Bytes
// compare as unsigned values, as Redis does where char is unsigned.
//
// Every element other than * consumes exactly one byte of s, so matching
// backtracks only to the most recent *: time is O(len(pattern)*len(s)) and
// no pattern can make it exponential.
func Match(pattern, s []byte) bool {
	if len(s) == 0 {
		return len(pattern) == 0
	}
	p, i := 0, 0
	star, starI := -1, 0 // pattern index after the last *, and where in s it resumed
	for i < len(s) {
		if p < len(pattern) && pattern[p] == '*' {
			p++
			if p == len(pattern) {
				return true // a trailing * takes the rest of s
			}
			star, starI = p, i
			continue
		}
		if p < len(pattern) {
			if ok, next := matchOne(pattern, p, s[i]); ok {
				p, i = next, i+1
				continue
			}
		}
		if star < 0 {
			return false
		}
		starI++ // let the last * swallow one more byte and retry
		p, i = star, starI
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// matchOne matches the single-byte element of pattern at p (not a *)
// against c and returns the index of the element after it. The extent of an
// element depends only on the pattern, never on c.
func matchOne(pattern []byte, p int, c byte) (ok bool, next int) {
	switch pattern[p] {
	case '?':
		return true, p + 1
	case '\\':
		if p+1 < len(pattern) {
			p++
		}
		return pattern[p] == c, p + 1
	case '[':
		return matchClass(pattern, p+1, c)
	default:
		return pattern[p] == c, p + 1
	}
}

// matchClass matches the class whose body starts at p (just after '[').
func matchClass(pattern []byte, p int, c byte) (ok bool, next int) {
	n := len(pattern)
	negate := p < n && pattern[p] == '^'
	if negate {
		p++
	}
	match := false
	for {
		if p >= n {
			// Unclosed: the class ends with the pattern.
			break
		}
		switch {
		case pattern[p] == '\\' && p+1 < n:
			p++
			if pattern[p] == c {
				match = true
			}
		case pattern[p] == ']':
			if negate {
				match = !match
			}
			return match, p + 1
		case p+2 < n && pattern[p+1] == '-':
			lo, hi := pattern[p], pattern[p+2]
			if lo > hi {
				lo, hi = hi, lo
			}
			if c >= lo && c <= hi {
				match = true
			}
			p += 2
		case pattern[p] == c:
			match = true
		}
		p++
	}
	if negate {
		match = !match
	}
	return match, n
}
