//go:build !race

// Allocation counts only mean something without the race detector; `make
// test` runs the allocation tests in a build without it.

package jsonstr

import "testing"

// TestUnquoteAllocs pins what the callers' hot paths rely on: nothing for
// a string input without escapes, one allocation for the decoded value
// otherwise, and nothing for Scan.
func TestUnquoteAllocs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want float64
	}{
		{`"plain value"`, 0},
		{`"caf\u00e9 \"au lait\"\n"`, 1},
	} {
		if n := testing.AllocsPerRun(100, func() { _, _, _ = Unquote(tc.in, 0) }); n != tc.want {
			t.Errorf("Unquote(%q): %v allocations, want %v", tc.in, n, tc.want)
		}
		b := []byte(tc.in)
		if n := testing.AllocsPerRun(100, func() { _, _, _ = Scan(b, 0) }); n != 0 {
			t.Errorf("Scan(%q): %v allocations, want 0", tc.in, n)
		}
	}
}
