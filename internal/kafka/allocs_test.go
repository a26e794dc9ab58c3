//go:build !race

// Allocation tests: the race detector's sync.Pool drops items at random, so
// these run without it (make test runs the tests named *Allocs so).

package kafka

import (
	"errors"
	"runtime"
	"runtime/debug"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// decompressMeasured decompresses b with d, with what that allocated.
func decompressMeasured(d *BoundedDecompressor, b compressed) (out []byte, alloc uint64, err error) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	out, err = d.Decompress(b.src, b.codec)
	runtime.ReadMemStats(&after)
	return out, after.TotalAlloc - before.TotalAlloc, err
}

// A decompress of a valid batch allocates its output and little else
// once the pools are warm.
func TestDecompressAllocs(t *testing.T) {
	d := NewBoundedDecompressor(0, 0, 0)
	data := logBatch(1 << 20)
	// Without collections the pools stay warm between calls.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	for _, c := range encodings(t, data) {
		t.Run(c.name, func(t *testing.T) {
			d.Decompress(c.src, c.codec) // warm the pools
			// A pool misses now and then (a goroutine that moved to
			// another P since its Put): take the median call.
			var allocs []uint64
			for range 9 {
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				if _, err := d.Decompress(c.src, c.codec); err != nil {
					t.Fatal(err)
				}
				runtime.ReadMemStats(&after)
				allocs = append(allocs, after.TotalAlloc-before.TotalAlloc)
			}
			slices.Sort(allocs)
			per := allocs[len(allocs)/2]
			t.Logf("%d bytes from %d: %d bytes allocated per call", len(data), len(c.src), per)
			if per > uint64(len(data))+16<<10 {
				t.Errorf("allocated %d per call for %d bytes of output", per, len(data))
			}
		})
	}
}

func TestDecompressBombAllocs(t *testing.T) {
	d := NewBoundedDecompressor(0, 0, 0)
	for _, b := range bombs(t) {
		t.Run(b.name, func(t *testing.T) {
			limit := d.Limit(len(b.src))
			out, alloc, err := decompressMeasured(d, b)
			if !errors.Is(err, kgo.ErrMaxDecompress) {
				t.Fatalf("%d compressed bytes: got %d bytes, %v; want ErrMaxDecompress", len(b.src), len(out), err)
			}
			t.Logf("%d compressed bytes, limit %d: allocated %d KiB: %v", len(b.src), limit, alloc>>10, err)
			// The output's limit, lz4's two block buffers of up to 4 MiB
			// and a decoder's tables; nothing near the 64 MiB.
			if bound := uint64(limit) + 10<<20; alloc > bound {
				t.Errorf("allocated %d bytes refusing a bomb, want under %d", alloc, bound)
			}
			if alloc > 2*DefaultMaxDecompressedBatch {
				t.Errorf("allocated %d bytes, more than twice the max batch", alloc)
			}
		})
	}
}

// Cutting a bomb of any codec takes the output, a decoder's window and
// lz4's block buffers; nothing near the bomb's size.
func TestCutBombAllocs(t *testing.T) {
	d := NewBoundedDecompressor(0, 0, 0)
	for _, b := range recordBombs(t) {
		if b.name == "snappy-raw" {
			continue // refused, not cut: see TestCutBombs
		}
		t.Run(b.name, func(t *testing.T) {
			limit := d.Limit(len(b.src))
			_, alloc, err := decompressMeasured(d, b)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d compressed bytes, limit %d: allocated %d KiB", len(b.src), limit, alloc>>10)
			if bound := uint64(limit) + 12<<20; alloc > bound {
				t.Errorf("allocated %d KiB cutting a bomb, want under %d", alloc>>10, bound>>10)
			}
		})
	}
}
