package schemas

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"unicode/utf8"
)

// The hand-written Avro decoder.
//
// goavro decodes into map[string]any: about 116 allocations and 7.5µs per
// typical record (BenchmarkDecode/avro-goavro-reference), most of the
// router's budget of ~3.3µs per record (300k records/s per core, decode and
// encode). decodeFastBody reads bodies written with schema version
// fastDecoderVersion, or with one of the versions before it (v3 lacks
// array attributes, v2 also metadata and the pod metadata of kubernetes, v1
// also partial: what
// shippers older than the current version write, and what Kafka holds from
// before), straight into a Record.
// Every other schema, foreign schemas from the registry included, stays
// with goavro (decodeGoavroBody).
//
// It must be indistinguishable from the goavro path: the same Record for
// every body that path accepts, and an ErrMalformed for every body it
// rejects, which is what checkAvro rejects plus duplicate map keys. So it
// accepts what checkAvro accepts (multiple map blocks, negative block counts
// followed by an ignored byte size, non-minimal varints) and rejects the same
// things (varints over 10 bytes or 64 bits, booleans other than 0 and 1,
// lengths and union indexes out of range, trailing bytes). Normalisation
// follows recordFromNative: invalid UTF-8 is repaired (InvalidUTF8 is set
// when Log needed it), empty maps are nil, keys that repair to the same
// string resolve as in nativeReader.attributes. TestFastDecodeMatchesGoavro
// and FuzzFastDecodeMatchesGoavro pin it to the goavro path.
//
// Allocation: the body is copied into one string and every string of the
// Record that needed no repair is a substring of it, so a record costs that
// copy, its (at most four) maps and the boxing of non-trivial attribute
// values. The flip side is that any one retained string keeps the whole
// body's copy alive; decoded Records still never alias the input. A count or
// length is checked against the bytes left before anything is allocated
// for it.

// fastDecoderVersion is the schema version decodeFastBody reads, and
// fastDecoderFingerprint that version's fingerprint: a body is decoded here
// only when its writer schema is exactly that one or an older version named
// in fastDecoderFingerprints (TestFastDecoderVersion checks every pair, and
// that fastDecoderVersion is the current version). Adding a schema version
// means writing its decoder here too; until then it decodes, slowly,
// through goavro. Keep the previous versions fast as well while shippers
// that write them may still run: consumers are rolled out first, so for a
// while nearly everything they read is a previous version.
const (
	fastDecoderVersion       = 4
	fastDecoderFingerprint   = 0x765adf17ce10efe2
	fastDecoderV3Fingerprint = 0x8f6028b353e1527c
	fastDecoderV2Fingerprint = 0xbe67eaa056871a2e
	fastDecoderV1Fingerprint = 0x30cd06490410055e
)

// fastDecoderFingerprints maps the fingerprint of every version
// decodeFastBody reads to that version.
var fastDecoderFingerprints = map[uint64]int{
	fastDecoderFingerprint:   fastDecoderVersion,
	fastDecoderV3Fingerprint: 3,
	fastDecoderV2Fingerprint: 2,
	fastDecoderV1Fingerprint: 1,
}

// decodeFastBody decodes one Avro binary body written with schema version
// (1 to fastDecoderVersion). Errors wrap ErrMalformed.
func decodeFastBody(body []byte, version int) (Record, error) {
	c := fastCursor{s: string(body), arrays: version >= 4}
	r := c.record(version)
	if c.err == nil && len(c.s) != 0 {
		c.fail(fmt.Errorf("%d trailing bytes after the record", len(c.s)))
	}
	if c.err != nil {
		return Record{}, fmt.Errorf("%w: %v", ErrMalformed, c.err)
	}
	return r, nil
}

// fastCursor reads Avro binary data from the front of s. The first error is
// kept and empties s, so every later read fails too and returns a zero value:
// callers read a whole record and check err once.
type fastCursor struct {
	s      string // data not read yet
	err    error
	arrays bool // the attribute union has its array branch (v4 on)
}

func (c *fastCursor) fail(err error) {
	if c.err == nil {
		c.err = err
	}
	c.s = ""
}

// record reads a LogRecord of the given schema version in the field order
// of the schema (and, for the current version, of AppendAvro). v1 lacks
// partial; v1 and v2 lack metadata, and namespace_labels, container_image
// and workload in kubernetes.
func (c *fastCursor) record(version int) Record {
	var r Record
	r.ID = c.str()
	r.Timestamp = nanosToTime(c.long())
	r.ObservedTimestamp = nanosToTime(c.long())
	r.Tenant = c.str()
	r.Stream = c.str()
	log, repaired := validString(c.raw())
	r.Log = log
	r.Truncated = c.boolean()
	r.OriginalSize = c.long()
	r.InvalidUTF8 = c.boolean() || repaired
	if version >= 2 {
		r.Partial = c.boolean()
	}
	if version >= 3 {
		r.Metadata = c.str()
	}

	k := &r.Kubernetes
	k.NamespaceName = c.str()
	k.PodName = c.str()
	k.PodID = c.str()
	k.ContainerName = c.str()
	k.DockerID = c.str()
	k.Host = c.str()
	k.Labels = c.stringMap()
	k.Annotations = c.stringMap()
	if version >= 3 {
		k.NamespaceLabels = c.stringMap()
		k.ContainerImage = c.str()
		k.Workload.Kind = c.str()
		k.Workload.Name = c.str()
	}

	r.Attributes = c.attributes()

	s := &r.Source
	s.Path = c.str()
	s.Offset = c.long()
	s.Format = c.str()
	s.Shipper = c.str()
	return r
}

// long reads a zig-zag varint, with checkAvro's limits.
func (c *fastCursor) long() int64 {
	if len(c.s) > 0 && c.s[0] < 0x80 { // one byte: most lengths and indexes
		u := uint64(c.s[0])
		c.s = c.s[1:]
		return int64(u>>1) ^ -int64(u&1)
	}
	var u uint64
	for i := 0; i < 10; i++ {
		if i >= len(c.s) {
			c.fail(errShort)
			return 0
		}
		b := c.s[i]
		if i == 9 && b > 1 {
			c.fail(errors.New("varint overflows 64 bits"))
			return 0
		}
		u |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			c.s = c.s[i+1:]
			return int64(u>>1) ^ -int64(u&1)
		}
	}
	c.fail(errors.New("varint longer than 10 bytes"))
	return 0
}

func (c *fastCursor) boolean() bool {
	if len(c.s) == 0 {
		c.fail(errShort)
		return false
	}
	b := c.s[0]
	if b > 1 {
		c.fail(fmt.Errorf("boolean byte %#x", b))
		return false
	}
	c.s = c.s[1:]
	return b == 1
}

func (c *fastCursor) double() float64 {
	if len(c.s) < 8 {
		c.fail(fmt.Errorf("double length 8 exceeds the %d bytes left", len(c.s)))
		return 0
	}
	s := c.s[:8]
	c.s = c.s[8:]
	return math.Float64frombits(uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56)
}

// raw reads a string as it is on the wire, possibly invalid UTF-8. It
// shares the cursor's memory.
func (c *fastCursor) raw() string {
	n := c.long()
	if c.err != nil {
		return ""
	}
	if n < 0 {
		c.fail(fmt.Errorf("negative string length %d", n))
		return ""
	}
	if n > int64(len(c.s)) {
		c.fail(fmt.Errorf("string length %d exceeds the %d bytes left", n, len(c.s)))
		return ""
	}
	s := c.s[:n]
	c.s = c.s[n:]
	return s
}

// str reads a string and repairs invalid UTF-8.
func (c *fastCursor) str() string {
	s, _ := validString(c.raw())
	return s
}

// minMapEntryLen is the fewest bytes a map entry of LogRecord takes: the key
// length, and a string length or union index.
const minMapEntryLen = 2

// maxMapHint caps the capacity reserved from a block count: a count the
// data does not back would otherwise reserve ~20 bytes per byte of input.
const maxMapHint = 64

// mapHeader reads a map block header and returns the block's entry count,
// 0 at the end of the map (or on error). A negative count is followed by the
// block's size in bytes, which is read and ignored, as goavro does.
func (c *fastCursor) mapHeader() int { return c.blockHeader("map", minMapEntryLen) }

// blockHeader reads the header of a block of a map or array whose entries
// take at least minLen bytes each, as mapHeader describes.
func (c *fastCursor) blockHeader(what string, minLen int) int {
	n := c.long()
	if n < 0 {
		if n == math.MinInt64 {
			c.fail(fmt.Errorf("%s block count %d", what, n))
			return 0
		}
		n = -n
		c.long()
	}
	if c.err != nil {
		return 0
	}
	if n > int64(len(c.s)/minLen) {
		c.fail(fmt.Errorf("%s block of %d entries exceeds the %d bytes left", what, n, len(c.s)))
		return 0
	}
	return int(n)
}

// stringMap reads a map<string>, normalised as recordFromNative does: nil
// when it has no entries, keys and values repaired to valid UTF-8 (see
// addRepairedKeys). A key appearing twice as read is an error, as it is for
// goavro.
func (c *fastCursor) stringMap() map[string]string { return readMap(c, c.str) }

// attributes reads the attribute map, like stringMap.
func (c *fastCursor) attributes() map[string]any { return readMap(c, c.attribute) }

// readMap reads an Avro map whose values value reads: blocks, duplicate
// keys rejected, keys that are not valid UTF-8 repaired (addRepairedKeys).
func readMap[V any](c *fastCursor, value func() V) map[string]V {
	var (
		m   map[string]V
		bad []keyValue[V] // entries whose key is invalid UTF-8, as read
	)
	for n := c.mapHeader(); n > 0; n = c.mapHeader() {
		if m == nil {
			m = make(map[string]V, min(n, maxMapHint))
		}
		for range n {
			k, v := c.raw(), value()
			if c.err != nil {
				return nil
			}
			if !utf8.ValidString(k) {
				bad = append(bad, keyValue[V]{k, v})
				continue
			}
			size := len(m)
			if m[k] = v; len(m) == size {
				c.fail(fmt.Errorf("duplicate map key %q", k))
			}
		}
	}
	if c.err == nil && bad != nil {
		addRepairedKeys(c, m, bad)
	}
	return m
}

type keyValue[V any] struct {
	k string
	v V
}

// addRepairedKeys adds to m the entries whose key is invalid UTF-8, under
// the repaired key, resolving collisions as nativeReader.attributes does: a
// key that was valid wins, else the smallest original key. Two entries with
// the same original key are an error.
func addRepairedKeys[V any](c *fastCursor, m map[string]V, bad []keyValue[V]) {
	slices.SortFunc(bad, func(a, b keyValue[V]) int { return cmp.Compare(a.k, b.k) })
	for i := 1; i < len(bad); i++ {
		if bad[i-1].k == bad[i].k {
			c.fail(fmt.Errorf("duplicate map key %q", bad[i].k))
			return
		}
	}
	for _, e := range bad {
		fixed, _ := validString(e.k)
		if _, taken := m[fixed]; !taken {
			m[fixed] = e.v
		}
	}
}

// attribute reads one value of the union ["null","boolean","long","double",
// "string",array] (scalarKind order; no array branch before v4).
func (c *fastCursor) attribute() any {
	i := c.long()
	if c.err != nil {
		return nil
	}
	if c.arrays {
		if i == int64(kindArray) {
			return c.array()
		}
		if i < 0 || i > int64(kindArray) {
			c.fail(fmt.Errorf("union index %d out of range [0,%d)", i, kindArray+1))
			return nil
		}
	}
	return c.scalar(i)
}

// array reads an array of scalars; an empty one is an empty (not nil)
// slice, as goavro reads it.
func (c *fastCursor) array() any {
	items := []any{}
	for n := c.blockHeader("array", 1); n > 0; n = c.blockHeader("array", 1) {
		items = slices.Grow(items, min(n, maxMapHint))
		for range n {
			it := c.scalar(c.long())
			if c.err != nil {
				return nil
			}
			items = append(items, it)
		}
	}
	return items
}

// scalar reads the value of a scalar whose union index, i, was just read.
func (c *fastCursor) scalar(i int64) any {
	if c.err != nil {
		return nil
	}
	if i < 0 || i > int64(kindString) {
		c.fail(fmt.Errorf("union index %d out of range [0,%d)", i, kindString+1))
		return nil
	}
	switch scalarKind(i) {
	case kindBool:
		return c.boolean()
	case kindLong:
		return c.long()
	case kindDouble:
		return c.double()
	case kindString:
		return c.str()
	}
	return nil // kindNull
}
