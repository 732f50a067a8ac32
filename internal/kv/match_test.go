package kv

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"", "", true},
		{"", "a", false},
		{"*", "", false}, // as in Redis; KEYS * special-cases "*"
		{"*", "anything", true},
		{"**", "x", true},
		{"a*", "a", true},
		{"a*", "abc", true},
		{"a*", "ba", false},
		{"*a", "ba", true},
		{"*a", "ab", false},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "abc", true},
		{"a*b*c", "acb", false},
		{"h?llo", "hello", true},
		{"h?llo", "hllo", false},
		{"h[ae]llo", "hallo", true},
		{"h[ae]llo", "hillo", false},
		{"h[^e]llo", "hallo", true},
		{"h[^e]llo", "hello", false},
		{"h[a-b]llo", "hbllo", true},
		{"h[a-b]llo", "hcllo", false},
		{"h[b-a]llo", "hallo", true}, // reversed range
		{"[a-]", "-", false},         // as in Redis: the range is a..] and the class unclosed
		{"[a-]", "^", true},
		{"[a-z", "q", true},
		{"[]]", "]", false}, // "[]" is an empty class, then "]" literal
		{"[]]", "x]", false},
		{`[\]]`, "]", true},
		{`[\-]`, "-", true},
		{"[abc", "c", true}, // unclosed class runs to the end
		{"[abc", "d", false},
		{"[", "a", false},
		{"[^", "a", true},
		{`\*`, "*", true},
		{`\*`, "a", false},
		{`a\`, `a\`, true}, // trailing backslash is literal
		{`\?`, "?", true},
		{`\?`, "x", false},
		{"*?", "a", true},
		{"?*", "", false},
		{"[*]", "*", true},
		{"[*]", "a", false},
		{"user:*:name", "user:42:name", true},
		{"user:*:name", "user:42:email", false},
		{"\xff", "\xff", true},
		{"[\x01-\xff]", "\x80", true},
	}
	for _, tt := range tests {
		if got := Match([]byte(tt.pattern), []byte(tt.s)); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}

// refMatch is a direct recursive reading of Redis's glob semantics, used
// as the reference for Match: each '*' tries every split of the rest.
func refMatch(p, s []byte) bool {
	if len(s) == 0 {
		return len(p) == 0
	}
	var rec func(p, s []byte) bool
	rec = func(p, s []byte) bool {
		if len(p) == 0 {
			return len(s) == 0
		}
		if len(s) == 0 {
			return strings.Trim(string(p), "*") == ""
		}
		if p[0] == '*' {
			for i := 0; i <= len(s); i++ {
				if rec(p[1:], s[i:]) {
					return true
				}
			}
			return false
		}
		ok, next := matchOne(p, 0, s[0])
		return ok && rec(p[next:], s[1:])
	}
	return rec(p, s)
}

func TestMatchAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "ab*?[]^-\\"
	gen := func(n int, alpha string) []byte {
		b := make([]byte, rng.IntN(n+1))
		for i := range b {
			b[i] = alpha[rng.IntN(len(alpha))]
		}
		return b
	}
	for range 200000 {
		p, s := gen(7, alphabet), gen(6, "ab-]^")
		if got, want := Match(p, s), refMatch(p, s); got != want {
			t.Fatalf("Match(%q, %q) = %v, reference says %v", p, s, got, want)
		}
	}
}

func TestMatchIsNotExponential(t *testing.T) {
	p := []byte(strings.Repeat("*a", 50) + "b")
	s := []byte(strings.Repeat("a", 10000))
	start := time.Now()
	if Match(p, s) {
		t.Fatalf("Match of a pathological pattern = true, want false")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Match took %v on a pathological pattern", d)
	}
}

func FuzzMatch(f *testing.F) {
	f.Add([]byte("a*b?[c-d]\\e"), []byte("axbycde"))
	f.Add([]byte("[^"), []byte("z"))
	f.Fuzz(func(t *testing.T, p, s []byte) {
		if len(p) > 12 || len(s) > 12 {
			return // keep the exponential reference cheap
		}
		if got, want := Match(p, s), refMatch(p, s); got != want {
			t.Fatalf("Match(%q, %q) = %v, reference says %v", p, s, got, want)
		}
	})
}
