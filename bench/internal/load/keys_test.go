package load

import "testing"

func TestKeyFormats(t *testing.T) {
	if got := string(appendKey(nil, 42)); got != "key:000000000042" {
		t.Errorf("appendKey(42) = %q", got)
	}
	if got := string(appendTaggedKey(nil, 7, 712)); got != "key:{00000007}000000000712" {
		t.Errorf("appendTaggedKey(7, 712) = %q", got)
	}
}
