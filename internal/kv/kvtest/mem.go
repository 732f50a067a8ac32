// Package kvtest provides an in-memory kv.Writer for tests.
package kvtest

import (
	"bytes"
	"sort"
)

// Mem is a sorted in-memory key/value map satisfying kv.Writer. It is not
// safe for concurrent use.
type Mem struct {
	m map[string][]byte
}

// NewMem returns an empty Mem.
func NewMem() *Mem { return &Mem{m: make(map[string][]byte)} }

// Get returns a copy of the value of key.
func (s *Mem) Get(key []byte) ([]byte, bool, error) {
	v, ok := s.m[string(key)]
	if !ok {
		return nil, false, nil
	}
	return bytes.Clone(v), true, nil
}

// Iterate calls fn for each key in [lo, hi) in order until fn returns false.
func (s *Mem) Iterate(lo, hi []byte, fn func(k, v []byte) bool) error {
	var ks []string
	for k := range s.m {
		if k >= string(lo) && (hi == nil || k < string(hi)) {
			ks = append(ks, k)
		}
	}
	sort.Strings(ks)
	for _, k := range ks {
		v, ok := s.m[k]
		if !ok {
			continue // deleted by fn
		}
		if !fn([]byte(k), v) {
			break
		}
	}
	return nil
}

// Set stores a copy of value under key.
func (s *Mem) Set(key, value []byte) error {
	s.m[string(key)] = bytes.Clone(value)
	return nil
}

// Delete removes key.
func (s *Mem) Delete(key []byte) error {
	delete(s.m, string(key))
	return nil
}

// DeleteRange removes every key in [lo, hi).
func (s *Mem) DeleteRange(lo, hi []byte) error {
	for k := range s.m {
		if k >= string(lo) && k < string(hi) {
			delete(s.m, k)
		}
	}
	return nil
}

// Len returns the number of keys stored.
func (s *Mem) Len() int { return len(s.m) }
