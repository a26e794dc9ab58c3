//go:build !race

// Allocation counts only mean something without the race detector: under
// it sync.Pool drops items at random and the instrumentation allocates.
// These tests are therefore left out of race builds, and `make test` runs
// them in a build without it (go test -run Allocs ./...).

package schemas

import (
	"fmt"
	"testing"
)

func TestAppendAvroAllocs(t *testing.T) {
	for _, r := range []Record{sampleRecord(), podRecord()} {
		buf := make([]byte, 0, 4096)
		allocs := testing.AllocsPerRun(1000, func() {
			buf, _ = AppendSingleObject(buf[:0], &r)
		})
		if allocs != 0 {
			t.Fatalf("AppendSingleObject: %v allocs per record, want 0", allocs)
		}
		allocs = testing.AllocsPerRun(1000, func() {
			buf, _ = AppendJSON(buf[:0], &r)
		})
		if allocs != 0 {
			t.Fatalf("AppendJSON: %v allocs per record, want 0", allocs)
		}
	}
}

// TestFastDecodeAllocs pins what decoding sampleRecord allocates: one copy of
// the body that every string is cut from, two allocations for each of the
// three maps (header and one group of slots), and the boxing of the
// attribute values "info", "POST" and 12.7 (int64(201) and other values below
// 256 are not boxed on the heap). The fields of schema v3 cost nothing when
// empty; podRecord, which has them, costs the namespace labels' map more.
func TestFastDecodeAllocs(t *testing.T) {
	const want = 1 + 3*2 + 3
	check := func(t *testing.T, what string, b []byte, want int) {
		t.Helper()
		allocs := testing.AllocsPerRun(1000, func() {
			if _, err := DecodeSingleObject(b); err != nil {
				t.Fatal(err)
			}
		})
		t.Logf("DecodeSingleObject(%s): %v allocs per record", what, allocs)
		if allocs > float64(want) {
			t.Fatalf("DecodeSingleObject(%s): %v allocs per record, want at most %d", what, allocs, want)
		}
	}
	r := sampleRecord()
	b, _ := AppendSingleObject(nil, &r)
	check(t, "sampleRecord", b, want)
	// Older versions, which shippers not yet upgraded write, take the same
	// fast path.
	for _, v := range olderVersions() {
		check(t, fmt.Sprintf("sampleRecord written with v%d", v), olderSingleObject(t, v, &r), want)
	}
	p := podRecord()
	b, _ = AppendSingleObject(nil, &p)
	check(t, "podRecord", b, want+2)
}
