package kafka

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// logBatch returns n bytes of JSON log lines, as repetitive as real ones
// (they compress 5 to 10 times).
func logBatch(n int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	levels := []string{"info", "warn", "error", "debug"}
	var b bytes.Buffer
	for b.Len() < n {
		fmt.Fprintf(&b, `{"ts":"2025-03-%02dT%02d:%02d:%02d.%03dZ","level":%q,"svc":"checkout-%d","msg":"order %d processed in %dms","trace":"%016x"}`+"\n",
			rng.IntN(28)+1, rng.IntN(24), rng.IntN(60), rng.IntN(60), rng.IntN(1000),
			levels[rng.IntN(len(levels))], rng.IntN(8), rng.Uint32(), rng.IntN(5000), rng.Uint64())
	}
	return b.Bytes()[:n]
}

// kgoCompress compresses data with franz-go's default compressor, the
// format a franz-go producer sends when it compresses one batch at once.
func kgoCompress(t testing.TB, codec kgo.CompressionCodec, data []byte) []byte {
	t.Helper()
	c, err := kgo.DefaultCompressor(codec)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := c.Compress(new(bytes.Buffer), data)
	if out == nil {
		t.Fatal("compress failed")
	}
	return bytes.Clone(out)
}

// xerialSnappy frames data the way the Java client's SnappyOutputStream
// (and franz-go's producer when it merges batches) does.
func xerialSnappy(data []byte) []byte {
	out := append([]byte{130, 'S', 'N', 'A', 'P', 'P', 'Y', 0}, 0, 0, 0, 1, 0, 0, 0, 1)
	for len(data) > 0 {
		n := min(len(data), 32<<10)
		block := s2.EncodeSnappy(nil, data[:n])
		out = binary.BigEndian.AppendUint32(out, uint32(len(block)))
		out = append(out, block...)
		data = data[n:]
	}
	return out
}

// zstdStream compresses data with a streaming encoder, which declares no
// content size: the frame a streaming producer writes.
func zstdStream(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	// franz-go's window; a larger one is refused past the max batch.
	w, err := zstd.NewWriter(&b, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	for len(data) > 0 { // several writes, as a producer streaming records
		n := min(len(data), 100<<10)
		if _, err := w.Write(data[:n]); err != nil {
			t.Fatal(err)
		}
		data = data[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gzipStream(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// zstdSkippable is a skippable frame of n bytes of payload.
func zstdSkippable(n int) []byte {
	b := binary.LittleEndian.AppendUint32(nil, zstdSkippableMagic|3)
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	return append(b, make([]byte, n)...)
}

type compressed struct {
	name  string
	codec kgo.CompressionCodecType
	src   []byte
}

// encodings returns data in every wire format a Kafka producer writes.
func encodings(t testing.TB, data []byte) []compressed {
	half := len(data) / 2
	return []compressed{
		{"gzip", kgo.CodecGzip, kgoCompress(t, kgo.GzipCompression(), data)},
		{"gzip-two-members", kgo.CodecGzip, append(gzipStream(t, data[:half]), gzipStream(t, data[half:])...)},
		{"snappy-raw", kgo.CodecSnappy, kgoCompress(t, kgo.SnappyCompression(), data)},
		{"snappy-xerial", kgo.CodecSnappy, xerialSnappy(data)},
		{"lz4", kgo.CodecLz4, kgoCompress(t, kgo.Lz4Compression(), data)},
		{"zstd", kgo.CodecZstd, kgoCompress(t, kgo.ZstdCompression(), data)},
		{"zstd-stream", kgo.CodecZstd, zstdStream(t, data)},
		{"zstd-frames", kgo.CodecZstd, bytes.Join([][]byte{
			kgoCompress(t, kgo.ZstdCompression(), data[:half]), zstdSkippable(10), zstdStream(t, data[half:]),
		}, nil)},
	}
}

func TestDecompressLimit(t *testing.T) {
	d := NewBoundedDecompressor(0, 0, 0)
	for _, tt := range []struct{ in, want int }{
		{0, DecompressFloor},
		{10, DecompressFloor},
		{100, 6400},
		{1000, 64000},
		{DefaultMaxDecompressedBatch / 64, DefaultMaxDecompressedBatch},
		{DefaultMaxDecompressedBatch/64 + 1, DefaultMaxDecompressedBatch},
		{1 << 40, DefaultMaxDecompressedBatch},
	} {
		if got := d.Limit(tt.in); got != tt.want {
			t.Errorf("Limit(%d) = %d, want %d", tt.in, got, tt.want)
		}
	}
	if d.MaxBatch() != DefaultMaxDecompressedBatch || d.Ratio() != DefaultDecompressRatio {
		t.Errorf("defaults: max %d ratio %d", d.MaxBatch(), d.Ratio())
	}
	if small := NewBoundedDecompressor(1000, 2, 0); small.Limit(0) != 1000 || small.Limit(10_000) != 1000 {
		t.Errorf("a max batch under the floor bounds everything: %d %d", small.Limit(0), small.Limit(10_000))
	}
}

func TestDecompressRoundTrip(t *testing.T) {
	d := NewBoundedDecompressor(0, 0, 0)
	for _, size := range []int{1, 1000, 300 << 10, 3 << 20} {
		data := logBatch(size)
		for _, c := range encodings(t, data) {
			t.Run(fmt.Sprintf("%s/%d", c.name, size), func(t *testing.T) {
				out, err := d.Decompress(c.src, c.codec)
				if err != nil {
					t.Fatalf("%d bytes compressed to %d: %v", size, len(c.src), err)
				}
				if !bytes.Equal(out, data) {
					t.Fatalf("decompressed %d bytes, want the %d compressed", len(out), len(data))
				}
				if len(out) > d.Limit(len(c.src)) {
					t.Errorf("decompressed %d past the limit %d", len(out), d.Limit(len(c.src)))
				}
			})
		}
	}
	if out, err := d.Decompress([]byte("as is"), kgo.CodecNone); err != nil || string(out) != "as is" {
		t.Errorf("CodecNone: %q, %v", out, err)
	}
	if _, err := d.Decompress([]byte("x"), 5); err == nil {
		t.Error("codec 5 decompressed")
	}
}

// The paths where the headers give the output size are taken for the
// formats that declare it.
func TestZstdBound(t *testing.T) {
	data := logBatch(300 << 10)
	for _, tt := range []struct {
		name  string
		src   []byte
		exact bool
	}{
		{"declared", kgoCompress(t, kgo.ZstdCompression(), data), true},
		{"stream", zstdStream(t, data), false},
		{"empty", kgoCompress(t, kgo.ZstdCompression(), nil), true},
	} {
		bound, exact, ok := zstdBound(tt.src)
		if !ok || exact != tt.exact || bound < uint64(len(data)) && len(tt.src) > 20 {
			t.Errorf("%s: bound %d exact %v ok %v, want exact %v and at least %d", tt.name, bound, exact, ok, tt.exact, len(data))
		}
	}
}

// At the bound exactly a batch decompresses, one byte past it is refused.
// Random data does not compress, so the limit is the max batch.
func TestDecompressAtLimit(t *testing.T) {
	const max = 256 << 10
	d := NewBoundedDecompressor(max, 64, 0)
	data := make([]byte, max+1)
	rand.NewChaCha8([32]byte{3, 4}).Read(data)
	for _, size := range []int{max, max + 1} {
		for _, c := range encodings(t, data[:size]) {
			t.Run(fmt.Sprintf("%s/%d", c.name, size), func(t *testing.T) {
				out, err := d.Decompress(c.src, c.codec)
				switch {
				case size <= max && err != nil:
					t.Fatalf("refused at the limit: %v", err)
				case size <= max && !bytes.Equal(out, data[:size]):
					t.Fatal("round trip differs")
				case size > max && !errors.Is(err, kgo.ErrMaxDecompress):
					t.Fatalf("%d bytes past the limit %d: %v, want ErrMaxDecompress", size, max, err)
				}
			})
		}
	}
}

// A zstd frame whose window is past the max batch is refused as too
// large, small as its content is.
func TestDecompressZstdWindow(t *testing.T) {
	var b bytes.Buffer
	w, err := zstd.NewWriter(&b, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(8<<20))
	if err != nil {
		t.Fatal(err)
	}
	data := logBatch(100 << 10)
	w.Write(data[:50<<10])
	w.Flush() // the frame starts before its size is known: it keeps its window
	w.Write(data[50<<10:])
	w.Close()
	var h zstd.Header
	if err := h.Decode(b.Bytes()); err != nil || h.WindowSize != 8<<20 {
		t.Fatalf("window %d, %v", h.WindowSize, err)
	}
	if out, err := NewBoundedDecompressor(0, 0, 0).Decompress(b.Bytes(), kgo.CodecZstd); err != nil || !bytes.Equal(out, data) {
		t.Fatalf("8 MiB window under a 16 MiB max batch: %v", err)
	}
	if _, err := NewBoundedDecompressor(4<<20, 0, 0).Decompress(b.Bytes(), kgo.CodecZstd); !errors.Is(err, kgo.ErrMaxDecompress) {
		t.Fatalf("8 MiB window over a 4 MiB max batch: %v, want ErrMaxDecompress", err)
	}
}

// bombs returns 64 MiB of zeros in every format.
func bombs(t *testing.T) []compressed {
	zeros := make([]byte, 64<<20)
	bs := encodings(t, zeros)
	// A gzip of two members, the last small, declares a small size at
	// its end, so the bomb decodes up to the limit.
	bs = append(bs, compressed{"gzip-small-last-member", kgo.CodecGzip,
		append(gzipStream(t, zeros), gzipStream(t, []byte("tail"))...)})
	// zstd encodes blocks of zeros as RLE blocks, whose sizes the block
	// headers declare; repeated text takes compressed blocks, which
	// only the decoder's capacity bounds.
	bs = append(bs, compressed{"zstd-stream-text", kgo.CodecZstd, zstdStream(t, bytes.Repeat([]byte("all work and no play "), 3<<20))})
	return bs
}

func TestDecompressBombs(t *testing.T) {
	d := NewBoundedDecompressor(0, 0, 0)
	for _, b := range bombs(t) {
		t.Run(b.name, func(t *testing.T) {
			if out, err := d.Decompress(b.src, b.codec); !errors.Is(err, kgo.ErrMaxDecompress) {
				t.Fatalf("%d compressed bytes: got %d bytes, %v; want ErrMaxDecompress", len(b.src), len(out), err)
			}
		})
	}
}

// The worst case of zstd: frames that declare no size, enough of them
// that the limit is the max batch. The decoder grows its buffer for the
// block that crosses the limit before it stops.
func TestDecompressZstdWorstCase(t *testing.T) {
	frame := zstdStream(t, bytes.Repeat([]byte("all work and no play "), 50_000))
	src := bytes.Repeat(frame, (300<<10)/len(frame)+1)
	d := NewBoundedDecompressor(0, 0, 0)
	if d.Limit(len(src)) != DefaultMaxDecompressedBatch {
		t.Fatalf("limit %d", d.Limit(len(src)))
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := d.Decompress(src, kgo.CodecZstd)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, kgo.ErrMaxDecompress) {
		t.Fatalf("%d bytes of frames decoding to %d MiB: %v", len(src), len(src)/len(frame), err)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d compressed bytes: allocated %d MiB", len(src), alloc>>20)
	if alloc > DefaultMaxDecompressedBatch*5/2 {
		t.Errorf("allocated %d MiB refusing the frames", alloc>>20)
	}
}

// rawBatch is a v2 record batch of one record, its records already
// compressed with codec.
func rawBatch(codec kgo.CompressionCodecType, records []byte) []byte {
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		Attributes:           int16(codec),
		FirstTimestamp:       time.Now().UnixMilli(),
		MaxTimestamp:         time.Now().UnixMilli(),
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           1,
		Records:              records,
	}
	enc := b.AppendTo(nil)
	binary.BigEndian.PutUint32(enc[8:], uint32(len(enc)-12))
	binary.BigEndian.PutUint32(enc[17:], crc32.Checksum(enc[21:], crc32.MakeTable(crc32.Castagnoli)))
	return enc
}

// zstdRecordBomb returns the zstd compressed records of one record whose
// value is n zero bytes, encoded without holding the value in memory.
func zstdRecordBomb(t *testing.T, n int) []byte {
	t.Helper()
	var body []byte
	body = append(body, 0)                     // attributes
	body = binary.AppendVarint(body, 0)        // timestamp delta
	body = binary.AppendVarint(body, 0)        // offset delta
	body = binary.AppendVarint(body, -1)       // no key
	body = binary.AppendVarint(body, int64(n)) // value length
	tail := binary.AppendVarint(nil, 0)        // no headers
	length := int64(len(body) + n + len(tail)) // what follows the length
	var out bytes.Buffer
	w, err := zstd.NewWriter(&out, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	w.Write(binary.AppendVarint(nil, length))
	w.Write(body)
	zeros := make([]byte, 1<<20)
	for left := n; left > 0; left -= len(zeros) {
		w.Write(zeros[:min(left, len(zeros))])
	}
	w.Write(tail)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// Whatever src, Decompress does not panic and returns nothing past the
// limit. What it returns is what franz-go's decompressor returns, or, for a
// batch of records cut, records franz-go parses that are the original ones,
// each whole or cut.
func FuzzBoundedDecompress(f *testing.F) {
	// Small seeds keep the fuzzer fast; zeros compress past the limit.
	for _, c := range encodings(f, logBatch(4<<10)) {
		f.Add(c.src, byte(c.codec))
	}
	for _, c := range encodings(f, make([]byte, 256<<10)) {
		f.Add(c.src, byte(c.codec))
	}
	// Records past the max record, and past the limit.
	for _, c := range encodings(f, appendRecords(nil,
		testRec{key: []byte("k"), value: []byte("small")},
		testRec{value: make([]byte, 100<<10), headers: []kgo.RecordHeader{{Key: "h", Value: []byte("v")}}},
		testRec{key: make([]byte, 80<<10)})) {
		f.Add(c.src, byte(c.codec))
	}
	f.Add([]byte{}, byte(0))
	f.Add([]byte("not compressed"), byte(7))
	const maxRecord = 64 << 10
	d := NewBoundedDecompressor(1<<20, 64, maxRecord)
	// The original records, for batches that are cut: nothing is cut
	// within 64 MiB.
	ref := NewBoundedDecompressor(64<<20, 1<<20, maxDecompressedBatchCap)
	franz := kgo.DefaultDecompressor()
	f.Fuzz(func(t *testing.T, src []byte, codec byte) {
		c := kgo.CompressionCodecType(codec % 6)
		out, err := d.Decompress(src, c)
		if err != nil {
			if out != nil {
				t.Errorf("output with an error: %v", err)
			}
			return
		}
		if c == kgo.CodecNone {
			if !bytes.Equal(out, src) {
				t.Error("CodecNone changed src")
			}
			return
		}
		if limit := d.Limit(len(src)); len(out) > limit {
			t.Fatalf("%d bytes of %d decompressed to %d, past the limit %d", len(src), c, len(out), limit)
		}
		orig, oerr := ref.Decompress(src, c)
		if oerr == nil && !bytes.Contains(orig, []byte(CutHeader)) {
			// orig decoded whole, within 64 MiB: franz-go decodes
			// the same.
			want, werr := franz.Decompress(src, c)
			if werr != nil || !bytes.Equal(orig, want) {
				t.Fatalf("codec %d: %d bytes, franz-go: %d bytes, %v", c, len(orig), len(want), werr)
			}
		}
		if oerr == nil && bytes.Equal(out, orig) {
			return
		}
		// Cut: the output parses as records with franz-go.
		n := countRecords(t, out)
		got := franzRecords(t, out, n)
		if oerr == nil && !bytes.Contains(orig, []byte(CutHeader)) {
			checkCut(t, franzRecords(t, orig, n), got, maxRecord)
		}
	})
}

// countRecords counts the v2 records of raw by their lengths.
func countRecords(t *testing.T, raw []byte) int {
	t.Helper()
	n := 0
	for len(raw) > 0 {
		l, used := binary.Varint(raw)
		if used <= 0 || l <= 0 || int64(len(raw)-used) < l {
			t.Fatalf("record %d: bad length %d", n, l)
		}
		raw = raw[used+int(l):]
		n++
	}
	return n
}
