package kafka

import (
	"bytes"
	"errors"
	"io"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Cutting oversize records.
//
// A record batch's records are, once decompressed, a sequence of v2
// records, each
//
//	varint length, then length bytes of:
//	int8 attributes, varlong timestamp delta, varint offset delta,
//	varint key length + key, varint value length + value,
//	varint header count, headers (varint key length + key,
//	varint value length + value)
//
// with zig-zag varints and a negative length meaning null. Rather than
// refuse a batch that decompresses past its bound, a BoundedDecompressor
// streams it through its codec's reader, parsing the records as they come,
// and returns them with every oversize record cut: same attributes,
// timestamp delta and offset delta, its key and value cut to their first
// bytes, its headers kept when they are small, and a CutHeader header
// appended that holds the value's original length in decimal. The rest of a
// cut record is read and discarded, never held.
const (
	// DefaultMaxRecord is the default maxRecord of NewBoundedDecompressor:
	// a record whose encoding is larger is cut.
	DefaultMaxRecord = 1 << 20

	// CutBytes is the most of its value a cut record keeps.
	CutBytes = 64 << 10

	// CutKeyBytes is the most of its key a cut record keeps.
	CutKeyBytes = 16 << 10

	// CutHeaderBytes bounds the encoded size of the headers a cut record
	// keeps: larger headers are dropped, all of them.
	CutHeaderBytes = 16 << 10

	// CutHeader names the header a cut record ends with; its value is the
	// original value's length in decimal (0 for a null value).
	CutHeader = "sluice-cut"

	// stubRecord is the encoded size up to which a record is never cut,
	// at any level: a cut record of an empty key and value (its fixed
	// fields and CutHeader) takes up to 44 bytes, so that cutting a
	// record under 64 bytes saves nothing worth its header.
	stubRecord = 64

	// cutLevels is how many ways of cutting a batch there are at most,
	// each keeping a quarter of the one before: 64 KiB, 16 KiB, 4 KiB,
	// 1 KiB, 256 and 64 bytes of value, then none.
	cutLevels = 8
)

// CutSize reports whether r is a record the decompressor cut and the length
// of its original value. It reads the last CutHeader header of r: a
// producer can add such a header itself, which marks its own record as cut
// and nothing else.
func CutSize(r *kgo.Record) (int, bool) {
	for i := len(r.Headers) - 1; i >= 0; i-- {
		h := &r.Headers[i]
		if h.Key != CutHeader {
			continue
		}
		n, err := strconv.Atoi(string(h.Value))
		if err != nil || n < 0 {
			return 0, false
		}
		return n, true
	}
	return 0, false
}

// cutLevel is one way of cutting a batch: records whose encoding is at most
// keep bytes are copied as they are, larger ones keep at most key and value
// bytes of their key and value, and their headers if those take at most
// headers bytes.
type cutLevel struct {
	keep, key, value, headers int
}

// newCutLevels returns the levels of a decompressor that cuts records past
// maxRecord, the most generous first. The first keeps every record up to
// maxRecord and cuts the others to CutBytes; each next level keeps a
// quarter of the value, and the key and headers of at most that size; the
// last keeps records up to stubRecord and cuts the others to their fixed
// fields and CutHeader.
func newCutLevels(maxRecord int) []cutLevel {
	first := cutLevel{
		keep:    maxRecord,
		key:     min(CutKeyBytes, maxRecord),
		value:   min(CutBytes, maxRecord),
		headers: min(CutHeaderBytes, maxRecord),
	}
	levels := []cutLevel{first}
	for v := first.value / 4; len(levels) < cutLevels-1; v /= 4 {
		if v < stubRecord {
			break
		}
		levels = append(levels, cutLevel{
			keep:    min(maxRecord, v),
			key:     min(first.key, v),
			value:   v,
			headers: min(first.headers, v),
		})
	}
	return append(levels, cutLevel{keep: min(maxRecord, stubRecord)})
}

// recInfo is what the size of a record, cut or not, depends on.
type recInfo struct {
	enc    int // encoded size, with its length
	fixed  int // attributes, timestamp and offset deltas
	key    int // key length, negative for null
	value  int // value length, negative for null
	hdrLen int // encoded size of the headers, without their count
	nh     int // header count
}

// size returns what r takes at level l.
func (l *cutLevel) size(r *recInfo) int {
	if r.enc <= l.keep {
		return r.enc
	}
	b := r.fixed + fieldLen(r.key, l.key) + fieldLen(r.value, l.value) + cutHeaderLen(r.value)
	if r.nh > 0 && r.hdrLen <= l.headers {
		b += varintLen(r.nh+1) + r.hdrLen
	} else {
		b++ // a count of one
	}
	return varintLen(b) + b
}

func fieldLen(n, max int) int {
	if n < 0 {
		return 1
	}
	n = min(n, max)
	return varintLen(n) + n
}

// cutHeaderLen is the encoded size of the CutHeader header of a record of
// a value of n bytes: both lengths take one byte.
func cutHeaderLen(n int) int {
	return 1 + len(CutHeader) + 1 + decimalLen(max(n, 0))
}

func decimalLen(n int) int {
	l := 1
	for ; n >= 10; n /= 10 {
		l++
	}
	return l
}

// varintLen is the size of n as a zig-zag varint.
func varintLen(n int) int {
	u := uint32(int32(n))<<1 ^ uint32(int32(n)>>31)
	l := 1
	for ; u >= 0x80; u >>= 7 {
		l++
	}
	return l
}

func appendVarint(b []byte, n int) []byte {
	u := uint32(int32(n))<<1 ^ uint32(int32(n)>>31)
	for ; u >= 0x80; u >>= 7 {
		b = append(b, byte(u)|0x80)
	}
	return append(b, byte(u))
}

var (
	// errNotRecords is a batch that does not parse as v2 records the way
	// franz-go parses them: a legacy message set (whose first offset
	// starts it with a zero byte, which as a record length is no record),
	// a truncated record, or data that is not records.
	errNotRecords = errors.New("decompressed batch is not a sequence of v2 records")
	// errChanged is a stream that decoded differently the second time.
	errChanged = errors.New("batch decoded differently twice")
)

// recReader reads records from a decompressed stream through a pooled chunk.
type recReader struct {
	r      io.Reader
	buf    *chunk
	lo, hi int
	err    error // the reader's, once it returned one
}

func (p *recReader) fill() bool {
	if p.lo < p.hi {
		return true
	}
	for zeros := 0; p.err == nil; {
		n, err := p.r.Read(p.buf[:])
		p.lo, p.hi, p.err = 0, n, err
		if n > 0 {
			return true
		}
		if zeros++; zeros > 100 && err == nil {
			p.err = io.ErrNoProgress
		}
	}
	return false
}

// fail is the error of a record that ends early: the reader's, or
// errNotRecords at the end of the stream or of the record.
func (p *recReader) fail() error {
	if p.lo == p.hi && p.err != nil && p.err != io.EOF {
		return p.err
	}
	return errNotRecords
}

// uvarint reads a varint of at most size bytes (5 for an int32, 10 for an
// int64) within left bytes, as franz-go's kbin does: the last byte may
// hold only the bits left of the value. raw, if not nil, gets the bytes.
func (p *recReader) uvarint(left *int, size int, raw *[]byte) (uint64, error) {
	var x uint64
	for i := 0; i < size; i++ {
		if *left == 0 || !p.fill() {
			return 0, p.fail()
		}
		b := p.buf[p.lo]
		p.lo++
		*left--
		if raw != nil {
			*raw = append(*raw, b)
		}
		if i == size-1 {
			if size == 5 && b > 0x0f || size == 10 && b > 0x01 {
				return 0, errNotRecords
			}
			return x | uint64(b)<<(7*i), nil
		}
		x |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			return x, nil
		}
	}
	return x, nil
}

func (p *recReader) varint(left *int, raw *[]byte) (int, error) {
	u, err := p.uvarint(left, 5, raw)
	x := uint32(u)
	return int(int32(x>>1) ^ -int32(x&1)), err
}

func (p *recReader) varlong(left *int, raw *[]byte) error {
	_, err := p.uvarint(left, 10, raw)
	return err
}

// read appends the next n bytes to dst; skip drops them.
func (p *recReader) read(dst []byte, n int) ([]byte, error) {
	for n > 0 {
		if !p.fill() {
			return dst, p.fail()
		}
		m := min(n, p.hi-p.lo)
		dst = append(dst, p.buf[p.lo:p.lo+m]...)
		p.lo += m
		n -= m
	}
	return dst, nil
}

func (p *recReader) skip(n int) error {
	for n > 0 {
		if !p.fill() {
			return p.fail()
		}
		m := min(n, p.hi-p.lo)
		p.lo += m
		n -= m
	}
	return nil
}

// field reads a key or value of a record within left: its length, then
// the first max bytes of it appended to out (when out is kept), the rest
// skipped. It returns the length, negative for null.
func (p *recReader) field(left *int, out *[]byte, max int) (int, error) {
	n, err := p.varint(left, nil)
	if err != nil {
		return 0, err
	}
	if n < 0 {
		if out != nil {
			*out = append(*out, 1) // null
		}
		return n, nil
	}
	if n > *left {
		return 0, errNotRecords
	}
	*left -= n
	k := 0
	if out != nil {
		k = min(n, max)
		*out = appendVarint(*out, k)
		if *out, err = p.read(*out, k); err != nil {
			return 0, err
		}
	}
	return n, p.skip(n - k)
}

// record reads the next record into r. With l nil it only measures the
// record; with l, it appends the record as level l has it to out. It
// returns io.EOF at the end of the stream, between records.
func (p *recReader) record(r *recInfo, l *cutLevel, out []byte) ([]byte, error) {
	var lenRaw [5]byte
	raw := lenRaw[:0]
	if !p.fill() {
		if p.err == io.EOF {
			return out, io.EOF
		}
		return out, p.fail()
	}
	unbounded := 5
	length, err := p.varint(&unbounded, &raw)
	if err != nil {
		return out, err
	}
	if length <= 0 {
		return out, errNotRecords
	}
	*r = recInfo{enc: len(raw) + length}
	if l != nil && r.enc <= l.keep {
		out = append(out, raw...)
		return p.read(out, length)
	}
	// A record to measure or to cut: its fields one by one, as franz-go
	// reads them, within its length.
	var (
		left  = length
		start = len(out)
		fixed [16]byte // attributes, and the deltas' varints
		fraw  = fixed[:0]
		keep  *[]byte // the cut record, when writing
	)
	if l != nil {
		// Room for the length, which is known at the end.
		out = append(out, 0, 0, 0, 0, 0)
		keep = &out
	}
	if !p.fill() {
		return out, p.fail()
	}
	fraw = append(fraw, p.buf[p.lo])
	p.lo++
	left--
	if err := p.varlong(&left, &fraw); err != nil {
		return out, err
	}
	if _, err := p.varint(&left, &fraw); err != nil {
		return out, err
	}
	r.fixed = len(fraw)
	var lkey, lvalue int
	if l != nil {
		out = append(out, fraw...)
		lkey, lvalue = l.key, l.value
	}
	if r.key, err = p.field(&left, keep, lkey); err != nil {
		return out, err
	}
	if r.value, err = p.field(&left, keep, lvalue); err != nil {
		return out, err
	}
	if r.nh, err = p.varint(&left, nil); err != nil {
		return out, err
	}
	if r.nh > left {
		return out, errNotRecords
	}
	// The headers are copied as they come while they fit the level's
	// headers, after room for their count; past it they are dropped.
	countAt := len(out)
	hkeep := l != nil && r.nh > 0
	if hkeep {
		out = appendVarint(out, r.nh+1)
	}
	for range max(r.nh, 0) {
		for range 2 { // key, value
			var hraw [5]byte
			h := hraw[:0]
			n, err := p.varint(&left, &h)
			if err != nil {
				return out, err
			}
			m := max(n, 0)
			if m > left {
				return out, errNotRecords
			}
			left -= m
			r.hdrLen += len(h) + m
			if hkeep && r.hdrLen <= l.headers {
				out = append(out, h...)
				if out, err = p.read(out, m); err != nil {
					return out, err
				}
				continue
			}
			hkeep = false
			if err := p.skip(m); err != nil {
				return out, err
			}
		}
	}
	if err := p.skip(left); err != nil { // what franz-go ignores
		return out, err
	}
	if l == nil {
		return out, nil
	}
	if !hkeep {
		out = appendVarint(out[:countAt], 1)
	}
	out = appendVarint(out, len(CutHeader))
	out = append(out, CutHeader...)
	out = appendVarint(out, decimalLen(max(r.value, 0)))
	out = strconv.AppendInt(out, int64(max(r.value, 0)), 10)
	body := len(out) - start - 5
	n := len(appendVarint(out[start:start], body))
	copy(out[start+n:], out[start+5:])
	return out[:start+n+body], nil
}

// hasLargeRecord reports whether in, read as v2 records, holds one whose
// encoding is larger than max bytes. It reads only the records' lengths.
func hasLargeRecord(in []byte, max int) bool {
	for len(in) > 0 {
		var n uint32
		used := 0
		for used < len(in) && used < 5 {
			b := in[used]
			n |= uint32(b&0x7f) << (7 * used)
			used++
			if b < 0x80 {
				break
			}
		}
		length := int(int32(n>>1) ^ -int32(n&1))
		total := used + length
		if length <= 0 || total > len(in) || total < 0 {
			return false
		}
		if total > max {
			return true
		}
		in = in[total:]
	}
	return false
}

// cutRecords reads the records open returns twice: once to measure what
// each level makes of them, and once to write them at the most generous
// level within limit. It refuses the batch with errTooLarge when even the
// last level is past limit.
func (d *BoundedDecompressor) cutRecords(open func() (io.Reader, error), limit int) ([]byte, error) {
	p := recReader{buf: chunks.Get().(*chunk)}
	defer func() {
		chunks.Put(p.buf)
		p.r, p.buf = nil, nil
	}()
	levels := d.levels
	var sums [cutLevels]int
	var r recInfo
	last := len(levels) - 1
	rd, err := open()
	if err != nil {
		return nil, err
	}
	p.r = rd
	for {
		if _, err := p.record(&r, nil, nil); err == io.EOF {
			break
		} else if err != nil {
			return nil, err
		}
		for i := range levels {
			sums[i] += levels[i].size(&r)
		}
		// Once even the last level is past the limit, nothing fits:
		// stop decoding.
		if sums[last] > limit {
			return nil, errTooLarge
		}
	}
	level := last
	for i := range levels {
		if sums[i] <= limit {
			level = i
			break
		}
	}
	total := sums[level]
	if rd, err = open(); err != nil {
		return nil, err
	}
	p.r, p.lo, p.hi, p.err = rd, 0, 0, nil
	// The slack is the room a cut record's length takes before it is
	// known.
	out := make([]byte, 0, total+4)
	for {
		out, err = p.record(&r, &levels[level], out)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(out) > total {
			return nil, errChanged
		}
	}
	if len(out) != total {
		return nil, errChanged
	}
	return out[:total:total], nil
}

// memReader opens in for cutRecords.
func memReader(in []byte) func() (io.Reader, error) {
	var r bytes.Reader
	return func() (io.Reader, error) {
		r.Reset(in)
		return &r, nil
	}
}
