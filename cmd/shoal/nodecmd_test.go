package main

import "testing"

func TestBar(t *testing.T) {
	for _, tc := range []struct {
		done, total int64
		want        string
	}{
		{0, 7, "[..........]"},
		{3, 7, "[####......]"},
		{7, 7, "[##########]"},
		{0, 0, "[..........]"},
	} {
		if got := bar(tc.done, tc.total, 10); got != tc.want {
			t.Errorf("bar(%d, %d) = %q, want %q", tc.done, tc.total, got, tc.want)
		}
	}
}
