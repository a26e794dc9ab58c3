package schemas

import (
	"testing"
	"unsafe"
)

// TestSortedAnyRemembers: a scratch that remembers the last key set reads a
// map of the same keys in that order, and sorts any other map afresh,
// same-sized ones with other keys included; the keys it keeps are its own
// copies, not the map's strings.
func TestSortedAnyRemembers(t *testing.T) {
	sc := new(scratch)
	key := func(s string) string { return string([]byte(s)) } // a string of its own
	maps := []map[string]any{
		{key("b"): 1, key("a"): "x", key("c"): 2.5},
		{key("b"): 2, key("a"): "y", key("c"): nil},
		{key("b"): 3, key("a"): "z", key("d"): true},
		{key("a"): 1},
		{},
		{key("c"): 1, key("b"): 2, key("a"): 3},
	}
	for i, m := range maps {
		got := sortedAny(sc, m)
		if len(got) != len(m) {
			t.Fatalf("map %d: %d entries, want %d", i, len(got), len(m))
		}
		for j, kv := range got {
			if j > 0 && got[j-1].k >= kv.k {
				t.Fatalf("map %d: not sorted: %v", i, got)
			}
			if v, ok := m[kv.k]; !ok || v != kv.v {
				t.Fatalf("map %d: entry %q = %v, the map has %v", i, kv.k, kv.v, v)
			}
		}
	}
	for _, k := range sc.order {
		for mk := range maps[len(maps)-1] {
			if k == mk && unsafe.StringData(k) == unsafe.StringData(mk) {
				t.Fatalf("the remembered key %q is the map's own string", k)
			}
		}
	}
}
