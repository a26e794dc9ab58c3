package kafka

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Bounds of the consumer's decompression.
//
// Kafka limits a record batch by its compressed size, so a batch of a few
// kilobytes can hold a record of hundreds of megabytes (300 MiB of a repeated
// byte compresses to about 27 KB with zstd). A consumer that decompresses
// such a batch runs out of memory, restarts, fetches the same batch and runs
// out of memory again, and every tenant it serves stops with it.
//
// A BoundedDecompressor returns no batch larger than
//
//	limit(src) = min(maxBatch, max(DecompressFloor, ratio × len(src)))
//
// and no record larger than maxRecord, and stops no partition for either.
// A batch within its limit is returned as it is, unless it holds a record
// past maxRecord. Any other batch is streamed through its codec's reader
// and its records cut (see CutHeader) at the first of these levels whose
// output fits the limit: records up to maxRecord whole and the others cut
// to CutBytes of value (CutKeyBytes of key, their headers if they take at
// most CutHeaderBytes), then cuts of 16 KiB, 4 KiB, 1 KiB, 256 and 64
// bytes where records past the cut are cut too, then records up to 64
// bytes whole and the others cut to an empty value, key and no headers
// (42 bytes at most). A first pass measures every level, a second writes
// the chosen one into an output of exactly its size: a cut batch is
// decoded twice, and costs the CPU of its decompressed size (which the
// broker paid once already validating it), never its memory.
//
// A batch is still refused, with an error wrapping kgo.ErrMaxDecompress,
// when it cannot be cut within its limit:
//
//   - its records, each cut to the last level (at most 65 bytes each),
//     still exceed the limit: it takes more than limit/65 records (258,000
//     at 16 MiB), or tiny records compressed to less than a byte each,
//     which a fetch holding thousands of such batches would otherwise turn
//     into gigabytes: the record framing alone is past the bound;
//   - it is not v2 records: a legacy message set (magic 0 or 1, whose
//     first inner offset starts it with a zero byte, no record length),
//     or records franz-go would not parse;
//   - a snappy block decodes past 2 × maxBatch (a block decodes whole; a
//     snappy block expands at most about 21 times, so this takes a batch
//     of more than 1.5 MiB at the default), or a zstd frame's window is
//     past maxBatch (common Kafka clients' are 8 MiB at most).
//
// franz-go reports the refusal from PollFetches as a
// *kgo.ErrDecompressTooLarge and stops the partition until the consumer
// moves past the batch. A group consumer cannot always do that itself
// (SetOffsets is ignored for a partition that returned nothing yet in the
// session, as after a restart on the batch's committed offset): an
// operator moves the group's offset past it with kafka-consumer-groups
// --reset-offsets --to-offset NextOffset.
//
// The limit bounds the output of a fetch response: a batch of b bytes
// decompresses to at most max(DecompressFloor, ratio × b) bytes, so one
// response decompresses to at most about max(ratio, DecompressFloor/b_min)
// × F, F its FetchMaxBytes, plus maxBatch for the one batch a broker may
// return past F. A record batch is at least 61 bytes of header plus its
// compressed records (a zstd frame takes at least 10), so
// DecompressFloor/b_min is about 58 and the ratio dominates: 64 MiB for
// F = 1 MiB, at most about 80 MiB counting the oversized batch. Cutting
// does not change it: a fetch of 10,000 batches of a cut bomb each holds
// 10,000 × max(4 KiB, 64 × b) bytes (the cut shrinks to fit), not
// 10,000 × CutBytes. While a batch is cut, its call holds a 64 KiB read
// buffer and its codec's state besides the output: zstd's window (at most
// maxBatch; 8 MiB at most for the frames of common Kafka clients), lz4's block buffers
// (up to 8 MiB), or a snappy block (up to 2 × maxBatch); franz-go
// decompresses one batch at a time per broker.
//
// Real log batches compress 5 to 30 times (JSON and plain-text logs with
// zstd or gzip), snappy cannot exceed about 21 times by its format, and lz4
// about 255 times only for runs of one byte: a ratio of 64 cuts only
// batches no log producer makes. The floor lets small batches of repetitive
// lines through, where the frame overhead dominates the compressed size.
const (
	// DefaultMaxDecompressedBatch bounds one batch's decompressed size:
	// sixteen times Kafka's default max.message.bytes, far above a normal
	// batch of the pipeline and small enough that a few of them at once do
	// not threaten a router.
	DefaultMaxDecompressedBatch = 16 << 20

	// DecompressFloor is what any batch may decompress to, whatever its
	// compressed size.
	DecompressFloor = 4 << 10

	// DefaultDecompressRatio bounds decompressed size over compressed size
	// for batches above the floor.
	DefaultDecompressRatio = 64

	// BoundedFetchMaxBytes is the FetchMaxBytes and FetchMaxPartitionBytes
	// of BoundedFetchOpts: the F of the bound above.
	BoundedFetchMaxBytes = 1 << 20

	// maxDecompressedBatchCap is the largest maxBatch accepted: franz-go
	// holds a batch's size in an int32, and a bound past 1 GiB bounds
	// nothing a router can survive.
	maxDecompressedBatchCap = 1 << 30
)

// BoundedDecompressor is a kgo.Decompressor that bounds each batch's
// decompressed size by its compressed size (see DefaultDecompressRatio). It
// decodes every Kafka codec the way franz-go's default decompressor does:
// gzip (concatenated members included), snappy (raw, or in the xerial
// framing of the Java client), lz4 (the frame format) and zstd (concatenated
// and skippable frames included). It is safe for concurrent use.
//
// A batch over its bound, or holding a record past maxRecord, is returned
// with its records cut (see CutHeader and CutSize). One that cannot be cut
// within its bound is refused with an error wrapping kgo.ErrMaxDecompress,
// which franz-go reports from PollFetches as a *kgo.ErrDecompressTooLarge
// when the batch is the first of its partition in a fetch response; a later
// batch of the response is dropped with everything after it and fetched
// again, first, by the next fetch.
type BoundedDecompressor struct {
	maxBatch  int
	ratio     int
	maxRecord int
	levels    []cutLevel

	gzip    sync.Pool // *gzipReader
	lz4     sync.Pool // *lz4Reader
	zstd    sync.Pool // *zstdDecoder
	scratch sync.Pool // *[]byte
}

var _ kgo.Decompressor = (*BoundedDecompressor)(nil)

// NewBoundedDecompressor returns a decompressor whose batches decompress to
// at most min(maxBatch, max(DecompressFloor, ratio × compressed size)),
// their records cut to fit, and whose records are at most maxRecord bytes
// encoded (their length included), larger ones cut. maxBatch <= 0 means
// DefaultMaxDecompressedBatch, ratio <= 0 DefaultDecompressRatio and
// maxRecord <= 0 DefaultMaxRecord; maxBatch is capped at 1 GiB and
// maxRecord raised to 64 bytes.
func NewBoundedDecompressor(maxBatch, ratio, maxRecord int) *BoundedDecompressor {
	if maxBatch <= 0 {
		maxBatch = DefaultMaxDecompressedBatch
	}
	maxBatch = min(maxBatch, maxDecompressedBatchCap)
	if ratio <= 0 {
		ratio = DefaultDecompressRatio
	}
	if maxRecord <= 0 {
		maxRecord = DefaultMaxRecord
	}
	maxRecord = max(maxRecord, stubRecord)
	d := &BoundedDecompressor{maxBatch: maxBatch, ratio: ratio, maxRecord: maxRecord, levels: newCutLevels(maxRecord)}
	d.gzip.New = func() any {
		r := new(gzipReader)
		r.lim.R = &r.inner
		return r
	}
	d.lz4.New = func() any {
		r := &lz4Reader{inner: lz4.NewReader(nil)}
		r.lim.R = r.inner
		return r
	}
	d.zstd.New = func() any {
		// One goroutine-free decoder per concurrent call. The cap limit
		// makes DecodeAll decode no more than the capacity of its
		// destination, which is how each batch gets its own bound; the
		// max memory bounds everything else (declared content and
		// window sizes) at maxBatch.
		inner, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxMemory(uint64(maxBatch)),
			zstd.WithDecodeAllCapLimit(true),
		)
		if err != nil {
			return &zstdDecoder{err: err}
		}
		z := &zstdDecoder{inner: inner}
		runtime.AddCleanup(z, func(inner *zstd.Decoder) { inner.Close() }, inner)
		return z
	}
	return d
}

// Limit returns how many bytes a batch of compressedLen compressed bytes
// may decompress to.
func (d *BoundedDecompressor) Limit(compressedLen int) int {
	if compressedLen > d.maxBatch/d.ratio {
		return d.maxBatch
	}
	return min(d.maxBatch, max(DecompressFloor, d.ratio*compressedLen))
}

// MaxBatch returns the bound of any one batch.
func (d *BoundedDecompressor) MaxBatch() int { return d.maxBatch }

// Ratio returns the bound of decompressed over compressed size.
func (d *BoundedDecompressor) Ratio() int { return d.ratio }

// gzipReader and lz4Reader are pooled with the bytes.Reader they read and
// the LimitedReader that bounds them, so that a call allocates none of them.
type gzipReader struct {
	inner gzip.Reader
	src   bytes.Reader
	lim   io.LimitedReader
}

type lz4Reader struct {
	inner *lz4.Reader
	src   bytes.Reader
	lim   io.LimitedReader
}

type zstdDecoder struct {
	inner *zstd.Decoder
	src   bytes.Reader // what a stream decodes
	err   error        // from NewReader, which fails only on bad options
}

var errMalformedXerial = errors.New("snappy: malformed xerial framing")

// Decompress decompresses src, compressed with codec, to at most
// d.Limit(len(src)) bytes, cutting its records past the max record or to
// fit the limit, or refuses it with an error wrapping kgo.ErrMaxDecompress
// if they cannot be cut to fit. CodecNone returns src itself.
func (d *BoundedDecompressor) Decompress(src []byte, codec kgo.CompressionCodecType) ([]byte, error) {
	if codec == kgo.CodecNone {
		return src, nil
	}
	limit := d.Limit(len(src))
	var (
		out []byte
		err error
	)
	switch codec {
	case kgo.CodecGzip:
		out, err = d.gunzip(src, limit)
	case kgo.CodecSnappy:
		out, err = unsnappy(src, limit)
	case kgo.CodecLz4:
		out, err = d.unlz4(src, limit)
	case kgo.CodecZstd:
		out, err = d.unzstd(src, limit)
	default:
		return nil, fmt.Errorf("unknown compression codec %d", codec)
	}
	switch {
	case err == nil:
		// Within the limit: records past maxRecord are cut all the
		// same, from the output. A batch that does not parse as
		// records (a legacy message set) is returned as it is.
		if len(out) > d.maxRecord && hasLargeRecord(out, d.maxRecord) {
			if cut, err := d.cutRecords(memReader(out), limit); err == nil {
				return cut, nil
			}
		}
		return out, nil
	case !errors.Is(err, errTooLarge):
		return nil, err
	}
	// Past the limit: stream the records, cutting them to fit it.
	s := stream{d: d, codec: codec, src: src}
	out, err = d.cutRecords(s.open, limit)
	s.close()
	if err != nil {
		why := "its records do not fit it even cut"
		if !errors.Is(err, errTooLarge) {
			why = "its records cannot be cut: " + err.Error()
		}
		return nil, fmt.Errorf("%w: %s batch of %d compressed bytes decompresses past its limit of %d bytes (at most %d times its size, %d bytes for any batch), and %s",
			kgo.ErrMaxDecompress, codecName(codec), len(src), limit, d.ratio, d.maxBatch, why)
	}
	return out, nil
}

// stream opens a batch's decompressed records as a stream, as many times
// as cutRecords reads them, with pooled readers.
type stream struct {
	d     *BoundedDecompressor
	codec kgo.CompressionCodecType
	src   []byte

	gz      *gzipReader
	lz      *lz4Reader
	zs      *zstdDecoder
	scratch *[]byte // a raw snappy batch decoded, or a xerial block
	xerial  xerialReader
	mem     bytes.Reader
}

// maxSnappyBlock is the most one snappy block may decode to, for its
// records to be cut: a block decodes whole.
func (s *stream) maxSnappyBlock() int { return 2 * s.d.maxBatch }

func (s *stream) open() (io.Reader, error) {
	src := s.src
	switch s.codec {
	case kgo.CodecGzip:
		if s.gz == nil {
			s.gz = s.d.gzip.Get().(*gzipReader)
		}
		s.gz.src.Reset(src)
		if err := s.gz.inner.Reset(&s.gz.src); err != nil {
			return nil, err
		}
		return &s.gz.inner, nil
	case kgo.CodecLz4:
		if s.lz == nil {
			s.lz = s.d.lz4.Get().(*lz4Reader)
		}
		s.lz.src.Reset(src)
		s.lz.inner.Reset(&s.lz.src)
		return s.lz.inner, nil
	case kgo.CodecZstd:
		if s.zs == nil {
			s.zs = s.d.zstd.Get().(*zstdDecoder)
		}
		if s.zs.err != nil {
			return nil, s.zs.err
		}
		// Streams decode synchronously (one goroutine-free decoder),
		// with a window of at most the max batch.
		s.zs.src.Reset(src)
		if err := s.zs.inner.Reset(&s.zs.src); err != nil {
			return nil, err
		}
		return s.zs.inner, nil
	case kgo.CodecSnappy:
		if len(src) > xerialHeaderLen && bytes.HasPrefix(src, xerialMagic) {
			if s.scratch == nil {
				s.scratch = s.d.getScratch()
			} else {
				*s.scratch = s.xerial.buf
			}
			s.xerial = xerialReader{src: src[xerialHeaderLen:], buf: *s.scratch, max: s.maxSnappyBlock()}
			return &s.xerial, nil
		}
		if s.scratch == nil {
			n, err := s2.DecodedLen(src)
			if err != nil {
				return nil, err
			}
			if n > s.maxSnappyBlock() {
				return nil, errTooLarge
			}
			s.scratch = s.d.getScratch()
			if cap(*s.scratch) < n {
				*s.scratch = make([]byte, n)
			}
			if *s.scratch, err = s2.Decode((*s.scratch)[:n], src); err != nil {
				return nil, err
			}
		}
		s.mem.Reset(*s.scratch)
		return &s.mem, nil
	}
	return nil, fmt.Errorf("unknown compression codec %d", s.codec)
}

// close returns the readers to their pools, holding nothing of the fetch
// response.
func (s *stream) close() {
	if s.gz != nil {
		s.gz.src.Reset(nil)
		s.d.gzip.Put(s.gz)
	}
	if s.lz != nil {
		s.lz.inner.Reset(nil)
		s.lz.src.Reset(nil)
		s.d.lz4.Put(s.lz)
	}
	if s.zs != nil {
		if s.zs.err == nil {
			s.zs.inner.Reset(nil)
		}
		s.zs.src.Reset(nil)
		s.d.zstd.Put(s.zs)
	}
	s.mem.Reset(nil)
	if sp := s.scratch; sp != nil {
		if s.xerial.buf != nil {
			*sp = s.xerial.buf // grown for a block
		}
		// A scratch past the max batch (a snappy block of up to
		// twice it) is not kept.
		if cap(*sp) <= s.d.maxBatch+zstdSlack {
			*sp = (*sp)[:0]
			s.d.scratch.Put(sp)
		}
	}
	*s = stream{}
}

// xerialReader decodes xerial framed snappy a block at a time.
type xerialReader struct {
	src []byte
	buf []byte // the block decoded
	out []byte // what is left of it to read
	max int
}

func (x *xerialReader) Read(p []byte) (int, error) {
	for len(x.out) == 0 {
		if len(x.src) == 0 {
			return 0, io.EOF
		}
		if len(x.src) < 4 {
			return 0, errMalformedXerial
		}
		size := binary.BigEndian.Uint32(x.src)
		rem := x.src[4:]
		if uint64(size) > uint64(len(rem)) {
			return 0, errMalformedXerial
		}
		block := rem[:size]
		n, err := s2.DecodedLen(block)
		if err != nil {
			return 0, err
		}
		if n > x.max {
			return 0, errTooLarge
		}
		if cap(x.buf) < n {
			x.buf = make([]byte, n)
		}
		if x.out, err = s2.Decode(x.buf[:n], block); err != nil {
			return 0, err
		}
		x.src = rem[size:]
	}
	n := copy(p, x.out)
	x.out = x.out[n:]
	return n, nil
}

// errTooLarge is what the codecs return for a batch over its limit;
// Decompress turns it into a kgo.ErrMaxDecompress naming the sizes.
var errTooLarge = errors.New("decompressed batch too large")

func codecName(c kgo.CompressionCodecType) string {
	switch c {
	case kgo.CodecGzip:
		return "gzip"
	case kgo.CodecSnappy:
		return "snappy"
	case kgo.CodecLz4:
		return "lz4"
	case kgo.CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec %d", c)
}

func (d *BoundedDecompressor) gunzip(src []byte, limit int) ([]byte, error) {
	// A gzip member ends with its decoded size modulo 2^32, which the
	// reader checks: a valid batch decodes to at least what its last
	// member declares, so a larger declaration is refused undecoded.
	if len(src) >= 4 && int64(binary.LittleEndian.Uint32(src[len(src)-4:])) > int64(limit) {
		return nil, errTooLarge
	}
	r := d.gzip.Get().(*gzipReader)
	defer d.gzip.Put(r)
	// The pooled reader must not keep the fetch response alive.
	defer r.src.Reset(nil)
	r.src.Reset(src)
	if err := r.inner.Reset(&r.src); err != nil {
		return nil, err
	}
	return readBounded(&r.lim, limit)
}

func (d *BoundedDecompressor) unlz4(src []byte, limit int) ([]byte, error) {
	r := d.lz4.Get().(*lz4Reader)
	defer d.lz4.Put(r)
	r.src.Reset(src)
	r.inner.Reset(&r.src)
	out, err := readBounded(&r.lim, limit)
	r.inner.Reset(nil) // returns the block buffers to lz4's pool
	r.src.Reset(nil)   // and keeps no fetch response alive
	return out, err
}

// chunkSize is the size of the pooled chunks readBounded reads into.
const chunkSize = 64 << 10

type chunk = [chunkSize]byte

var chunks = sync.Pool{New: func() any { return new(chunk) }}

// readBounded reads lim to its end, refusing more than limit bytes, and
// returns what it read in a slice of exactly that size: records keep the
// slice alive, so it should hold nothing else. It reads into pooled chunks
// and copies them out once at the end, so that a call allocates its output
// (and, with cold pools, at most limit bytes of chunks) rather than the
// successive copies of a growing buffer.
func readBounded(lim *io.LimitedReader, limit int) ([]byte, error) {
	var held [32]*chunk // room for 2 MiB of chunks without allocating
	out, used, err := readChunks(lim, limit, held[:0])
	for _, c := range used {
		chunks.Put(c)
	}
	return out, err
}

func readChunks(lim *io.LimitedReader, limit int, used []*chunk) ([]byte, []*chunk, error) {
	lim.N = int64(limit) + 1
	n, zeros := 0, 0
	for {
		i, off := n/chunkSize, n%chunkSize
		if i == len(used) {
			used = append(used, chunks.Get().(*chunk))
		}
		m, err := lim.Read(used[i][off:])
		n += m
		if n > limit {
			return nil, used, errTooLarge
		}
		switch {
		case err == io.EOF:
			out := make([]byte, n)
			for i, c := range used {
				copy(out[i*chunkSize:], c[:])
			}
			return out, used, nil
		case err != nil:
			return nil, used, err
		case m == 0:
			if zeros++; zeros > 100 {
				return nil, used, io.ErrNoProgress
			}
		default:
			zeros = 0
		}
	}
}

func (d *BoundedDecompressor) getScratch() *[]byte {
	if sp, ok := d.scratch.Get().(*[]byte); ok {
		return sp
	}
	return new([]byte)
}

// xerialMagic starts a snappy batch framed by the Java client's
// SnappyOutputStream: the magic, two int32 versions, then blocks of a big
// endian int32 length and a raw snappy block.
var xerialMagic = []byte{130, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const xerialHeaderLen = 16

// unsnappy decodes raw or xerial framed snappy. Snappy blocks start with
// their decoded length, so the output is sized, and refused, before
// anything is decoded.
func unsnappy(src []byte, limit int) ([]byte, error) {
	if len(src) > xerialHeaderLen && bytes.HasPrefix(src, xerialMagic) {
		return unxerial(src[xerialHeaderLen:], limit)
	}
	n, err := s2.DecodedLen(src)
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, errTooLarge
	}
	return s2.Decode(make([]byte, n), src)
}

func unxerial(src []byte, limit int) ([]byte, error) {
	// Walk the block headers first, summing the decoded lengths.
	total := 0
	for rem := src; len(rem) > 0; {
		if len(rem) < 4 {
			return nil, errMalformedXerial
		}
		size := binary.BigEndian.Uint32(rem)
		rem = rem[4:]
		if uint64(size) > uint64(len(rem)) {
			return nil, errMalformedXerial
		}
		n, err := s2.DecodedLen(rem[:size])
		if err != nil {
			return nil, err
		}
		if total += n; total > limit {
			return nil, errTooLarge
		}
		rem = rem[size:]
	}
	out := make([]byte, total)
	at := 0
	for len(src) > 0 {
		size := binary.BigEndian.Uint32(src)
		block := src[4 : 4+size]
		n, _ := s2.DecodedLen(block)
		// Decode writes in place when given room for the decoded length.
		if _, err := s2.Decode(out[at:at+n:at+n], block); err != nil {
			return nil, err
		}
		at += n
		src = src[4+size:]
	}
	return out, nil
}

// unzstd decodes zstd into a buffer whose capacity is the bound: with the
// cap limit, DecodeAll refuses a frame that declares a larger content size
// before decoding it, and stops one that does not declare it once it
// outgrows the capacity.
func (d *BoundedDecompressor) unzstd(src []byte, limit int) ([]byte, error) {
	z := d.zstd.Get().(*zstdDecoder)
	defer d.zstd.Put(z)
	if z.err != nil {
		return nil, z.err
	}
	bound, exact, ok := zstdBound(src)
	if !ok {
		// Malformed framing: leave the error to the decoder, within the
		// limit.
		bound, exact = uint64(limit), false
	}
	if exact {
		// Every frame declares its size or holds only stored blocks:
		// the headers give the output's size. It is sized exactly and
		// returned as is (the slack lets the decoder's fast path run to
		// the end; the headers keep the output from using it).
		if bound > uint64(limit) {
			return nil, errTooLarge
		}
		out, err := z.inner.DecodeAll(src, make([]byte, 0, int(bound)+zstdSlack))
		if err != nil {
			return nil, zstdErr(err, false)
		}
		return out, nil
	}
	// Compressed blocks in frames that do not declare their size: decode
	// into scratch capped at the smaller of the limit and what the blocks
	// can hold at most, then copy out what was decoded. The decoder
	// checks the capacity after each block, and the block that crosses
	// it may first grow the buffer: refusing a batch can take about
	// 2.25 times its limit for a moment, never more.
	c := int(min(bound, uint64(limit)))
	sp := d.getScratch()
	defer d.scratch.Put(sp)
	if cap(*sp) < c+zstdSlack {
		*sp = make([]byte, 0, c+zstdSlack)
	}
	out, err := z.inner.DecodeAll(src, (*sp)[:0:c+zstdSlack])
	switch {
	case err == nil && len(out) > c:
		err = zstd.ErrDecoderSizeExceeded
	case err != nil && c == limit && len(out)+zstdMaxBlock+zstdSlack > c:
		// The decoder stops a block that does not fit the capacity
		// with an error of its own (out holds the blocks before it).
		// Within a block of the limit, the batch is too large.
		return nil, errTooLarge
	}
	if err != nil {
		return nil, zstdErr(err, c == limit)
	}
	return bytes.Clone(out), nil
}

// zstdSlack is the spare capacity the decoder's fast path wants past the
// output.
const zstdSlack = 16

// zstdErr turns the decoder's size errors into errTooLarge when the bound
// exceeded was the limit (or a window larger than any batch may be), and
// into corruption when it was what the frame headers allow.
func zstdErr(err error, atLimit bool) error {
	switch {
	case errors.Is(err, zstd.ErrWindowSizeExceeded):
		return errTooLarge
	case errors.Is(err, zstd.ErrDecoderSizeExceeded) && atLimit:
		return errTooLarge
	case errors.Is(err, zstd.ErrDecoderSizeExceeded):
		return fmt.Errorf("zstd: frames decode past what their headers allow: %w", err)
	}
	return err
}

const (
	zstdMagic          = 0xFD2FB528
	zstdSkippableMagic = 0x184D2A50 // low four bits are the frame's id
	zstdMaxBlock       = 128 << 10  // a block decodes to at most this
)

// zstdBound walks src's frame and block headers without decoding and
// returns what src can decode to at most. exact is set when that is also
// what it decodes to if valid: every frame declares its content size or
// holds only raw and RLE blocks, whose sizes the headers give. ok is unset
// when the framing is malformed.
func zstdBound(src []byte) (bound uint64, exact, ok bool) {
	exact = true
	for len(src) > 0 {
		if len(src) < 4 {
			return 0, false, false
		}
		magic := binary.LittleEndian.Uint32(src)
		if magic&^0xF == zstdSkippableMagic {
			if len(src) < 8 {
				return 0, false, false
			}
			size := uint64(binary.LittleEndian.Uint32(src[4:]))
			if size > uint64(len(src)-8) {
				return 0, false, false
			}
			src = src[8+size:]
			continue
		}
		if magic != zstdMagic {
			return 0, false, false
		}
		var h zstd.Header
		if err := h.Decode(src); err != nil || h.HeaderSize <= 0 || h.HeaderSize > len(src) {
			return 0, false, false
		}
		p := h.HeaderSize
		var frame uint64
		frameExact := true
		for last := false; !last; {
			if len(src)-p < 3 {
				return 0, false, false
			}
			bh := uint32(src[p]) | uint32(src[p+1])<<8 | uint32(src[p+2])<<16
			p += 3
			last = bh&1 == 1
			size := int(bh >> 3)
			switch (bh >> 1) & 3 {
			case 0: // raw
				frame += uint64(size)
				p += size
			case 1: // RLE: one byte repeated size times
				frame += uint64(size)
				p++
			case 2: // compressed
				frame += zstdMaxBlock
				frameExact = false
				p += size
			default:
				return 0, false, false
			}
			if p > len(src) {
				return 0, false, false
			}
		}
		if h.HasCheckSum {
			p += 4
			if p > len(src) {
				return 0, false, false
			}
		}
		if h.HasFCS {
			// The decoder holds a frame to its declared size; a frame
			// declaring more than its blocks can hold is malformed.
			if h.FrameContentSize > frame {
				return 0, false, false
			}
			frame, frameExact = h.FrameContentSize, true
		}
		bound += frame
		exact = exact && frameExact
		src = src[p:]
	}
	return bound, exact, true
}

// BoundedFetchOpts returns the consumer options that bound the memory a
// fetch decompresses to, for consumers of topics producers outside the
// pipeline write to (tenants' raw topics):
//
//   - kgo.WithDecompressor(NewBoundedDecompressor(maxBatch, ratio,
//     maxRecord)): each batch decompresses to at most min(maxBatch,
//     max(DecompressFloor, ratio × its compressed size)), its records cut
//     to fit and to maxRecord.
//   - kgo.FetchMaxBytes and kgo.FetchMaxPartitionBytes of
//     BoundedFetchMaxBytes (1 MiB, Kafka's default batch size limit): with
//     the ratio, one fetch response decompresses to at most about
//     ratio × 1 MiB + maxBatch (80 MiB at the defaults). franz-go buffers at
//     most one response per broker until it is polled; kgo.MaxConcurrentFetches
//     bounds how many brokers are fetched from at once.
//   - kgo.BrokerMaxReadBytes of 1 MiB + 2 × maxBatch (33 MiB at the
//     defaults): a response holds at most 1 MiB of batches, or one larger
//     batch. Any compressed batch that decompresses within maxBatch is at
//     most 7/6 of maxBatch (snappy's worst expansion), and twice maxBatch
//     leaves room for uncompressed batches. A response larger than this
//     fails every fetch from its broker, for all partitions: brokers' and
//     topics' max.message.bytes must stay below 2 × maxBatch (Kafka's
//     default is 1 MiB).
//
// maxBatch, ratio and maxRecord <= 0 mean the defaults. A batch that
// cannot be cut within its bound (see DecompressFloor) stops its
// partition: PollFetches reports a *kgo.ErrDecompressTooLarge until the
// consumer moves past it with SetOffsets to its NextOffset, or, for a group
// consumer whose session has not yet returned records of the partition, an
// operator resets the group's offset past it.
func BoundedFetchOpts(maxBatch, ratio, maxRecord int) []kgo.Opt {
	d := NewBoundedDecompressor(maxBatch, ratio, maxRecord)
	read := min(BoundedFetchMaxBytes+2*int64(d.maxBatch), maxDecompressedBatchCap)
	return []kgo.Opt{
		kgo.WithDecompressor(d),
		kgo.FetchMaxBytes(BoundedFetchMaxBytes),
		kgo.FetchMaxPartitionBytes(BoundedFetchMaxBytes),
		kgo.BrokerMaxReadBytes(int32(read)),
	}
}
