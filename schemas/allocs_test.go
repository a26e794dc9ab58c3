//go:build !race

// Allocation counts only mean something without the race detector: under
// it sync.Pool drops items at random and the instrumentation allocates.
// These tests are therefore left out of race builds, and `make test` runs
// them in a build without it (go test -run Allocs ./...).

package schemas

import "testing"

func TestAppendAvroAllocs(t *testing.T) {
	r := sampleRecord()
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

// TestFastDecodeAllocs pins what decoding sampleRecord allocates: one copy of
// the body that every string is cut from, two allocations for each of the
// three maps (header and one group of slots), and the boxing of the
// attribute values "info", "POST" and 12.7 (int64(201) and other values below
// 256 are not boxed on the heap).
func TestFastDecodeAllocs(t *testing.T) {
	r := sampleRecord()
	b, _ := AppendSingleObject(nil, &r)
	const want = 1 + 3*2 + 3
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := DecodeSingleObject(b); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("DecodeSingleObject(sampleRecord): %v allocs per record", allocs)
	if allocs > want {
		t.Fatalf("DecodeSingleObject: %v allocs per record, want at most %d", allocs, want)
	}
	// v1, which shippers older than v2 write, takes the same fast path.
	b = v1SingleObject(t, &r)
	allocs = testing.AllocsPerRun(1000, func() {
		if _, err := DecodeSingleObject(b); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("DecodeSingleObject(sampleRecord written with v1): %v allocs per record", allocs)
	if allocs > want {
		t.Fatalf("DecodeSingleObject of v1: %v allocs per record, want at most %d", allocs, want)
	}
}
