package schemas

import (
	"cmp"
	"encoding/binary"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// The hand-written Avro encoder.
//
// goavro encodes from map[string]any. Building that map for a Record and
// letting goavro walk it costs about 54 allocations and 8x the time of
// AppendAvro for a typical line (BenchmarkEncode/goavro-reference), too much
// of the shipper's budget of 4µs per line (250k lines/s per core, for the
// whole shipper). AppendAvro writes the current schema version straight from
// the struct into the caller's buffer and allocates nothing in steady state. TestAppendAvroMatchesGoavro and
// FuzzAppendAvroMatchesGoavro pin its output to goavro's encoding of the same
// record, byte for byte, so the two cannot drift. Decoding the current version
// is hand-written too: see avro_fastdecode.go.
//
// Map entries are written in sorted key order so that equal records always
// encode to equal bytes (Avro readers do not care about the order).
//
// fastEncoderVersion is the schema version AppendAvro writes. Adding a schema
// version means updating AppendAvro and this constant; init refuses to start
// otherwise.
const fastEncoderVersion = 4

// singleObjectMagic starts every single-object encoded value.
var singleObjectMagic = [2]byte{0xC3, 0x01}

// singleObjectHeaderLen is the magic plus the 8-byte fingerprint.
const singleObjectHeaderLen = 10

// currentSingleObjectHeader is the header of the current version, set by
// init once the versions are loaded.
var currentSingleObjectHeader [singleObjectHeaderLen]byte

func singleObjectHeader(fingerprint uint64) [singleObjectHeaderLen]byte {
	var h [singleObjectHeaderLen]byte
	h[0], h[1] = singleObjectMagic[0], singleObjectMagic[1]
	binary.LittleEndian.PutUint64(h[2:], fingerprint)
	return h
}

// AppendSingleObject appends r in Avro single-object encoding (C3 01, the
// 8-byte little-endian fingerprint of the current schema version, then the
// Avro binary body) to dst and returns the extended buffer. The record is only
// read; it may be reused once the call returns. On error dst is returned
// unchanged; the only errors are attribute values AppendAvro rejects.
// Safe for concurrent use.
func AppendSingleObject(dst []byte, r *Record) ([]byte, error) {
	n := len(dst)
	dst = append(dst, currentSingleObjectHeader[:]...)
	out, err := AppendAvro(dst, r)
	if err != nil {
		return dst[:n], err
	}
	return out, nil
}

// AppendAvro appends the Avro binary encoding of r under the current schema
// version (no header) to dst and returns the extended buffer. It allocates
// nothing once dst has room and its internal scratch space is warm.
//
// Timestamps are written as described for timeToNanos. Attribute values are
// normalised as by toScalar; a value of another type fails with an error
// wrapping ErrInvalidRecord, and dst is returned unchanged. Strings are
// written as they are: producers are expected to hand in valid UTF-8, and
// decoders repair it if they did not. Record.Unknown has no place in the
// schema: it is left out, and the record counted in UnknownFieldsDropped.
// Safe for concurrent use.
func AppendAvro(dst []byte, r *Record) ([]byte, error) {
	if len(r.Unknown) > 0 {
		unknownDropped.Add(1)
	}
	n := len(dst)
	b := appendAvroString(dst, r.ID)
	b = appendAvroLong(b, timeToNanos(r.Timestamp))
	b = appendAvroLong(b, timeToNanos(r.ObservedTimestamp))
	b = appendAvroString(b, r.Tenant)
	b = appendAvroString(b, r.Stream)
	b = appendAvroString(b, r.Log)
	b = appendAvroBool(b, r.Truncated)
	b = appendAvroLong(b, r.OriginalSize)
	b = appendAvroBool(b, r.InvalidUTF8)
	b = appendAvroBool(b, r.Partial)
	b = appendAvroString(b, r.Metadata)

	if k := &r.Kubernetes; k.avro != nil {
		b = append(b, k.avro...)
	} else {
		b = appendAvroKubernetes(b, k)
	}

	b, err := appendAvroAttributes(b, r.Attributes)
	if err != nil {
		return dst[:n], err
	}

	s := &r.Source
	b = appendAvroString(b, s.Path)
	b = appendAvroLong(b, s.Offset)
	b = appendAvroString(b, s.Format)
	b = appendAvroString(b, s.Shipper)
	return b, nil
}

// unknownDropped counts the records whose Unknown fields AppendAvro left out.
var unknownDropped atomic.Uint64

// UnknownFieldsDropped returns how many records this process has encoded
// in Avro (AppendAvro, AppendSingleObject, the Confluent encoder) whose
// Record.Unknown was not empty: fields of a newer schema version that the
// current version cannot carry, and which were therefore dropped. A stage
// that re-encodes what it decodes (the router) loses them while it is
// older than its producers; rolling out readers first avoids that.
func UnknownFieldsDropped() uint64 { return unknownDropped.Load() }

// appendAvroLong appends v as a zig-zag varint.
func appendAvroLong(b []byte, v int64) []byte {
	u := uint64(v<<1) ^ uint64(v>>63)
	for u >= 0x80 {
		b = append(b, byte(u)|0x80)
		u >>= 7
	}
	return append(b, byte(u))
}

func appendAvroBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

func appendAvroString(b []byte, s string) []byte {
	b = appendAvroLong(b, int64(len(s)))
	return append(b, s...)
}

func appendAvroDouble(b []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
}

// appendAvroStringMap writes m as one block in sorted key order.
func appendAvroStringMap(b []byte, m map[string]string) []byte {
	if len(m) == 0 {
		return append(b, 0)
	}
	b = appendAvroLong(b, int64(len(m)))
	if len(m) == 1 {
		for k, v := range m {
			b = appendAvroString(appendAvroString(b, k), v)
		}
		return append(b, 0)
	}
	sc := getScratch()
	kvs := sortedStrings(sc, m)
	for _, kv := range kvs {
		b = appendAvroString(appendAvroString(b, kv.k), kv.v)
	}
	putScratch(sc)
	return append(b, 0)
}

// appendAvroAttributes writes m as one block of union values in sorted key
// order.
func appendAvroAttributes(b []byte, m map[string]any) ([]byte, error) {
	if len(m) == 0 {
		return append(b, 0), nil
	}
	b = appendAvroLong(b, int64(len(m)))
	if len(m) == 1 {
		for k, v := range m {
			var err error
			if b, err = appendAvroAttribute(appendAvroString(b, k), k, v); err != nil {
				return b, err
			}
		}
		return append(b, 0), nil
	}
	sc := getScratch()
	defer putScratch(sc)
	for _, kv := range sortedAny(sc, m) {
		var err error
		if b, err = appendAvroAttribute(appendAvroString(b, kv.k), kv.k, kv.v); err != nil {
			return b, err
		}
	}
	return append(b, 0), nil
}

// appendAvroAttribute writes the union index and value; the union is
// ["null","boolean","long","double","string",array], in scalarKind order,
// and an array's items are a union of the first five.
func appendAvroAttribute(b []byte, key string, v any) ([]byte, error) {
	s, err := toScalar(key, v)
	if err != nil {
		return b, err
	}
	if s.kind != kindArray {
		return appendAvroScalar(b, s), nil
	}
	b = appendAvroLong(b, int64(kindArray))
	if n := s.arrayLen(); n > 0 {
		b = appendAvroLong(b, int64(n))
		for i := range n {
			it, err := s.item(key, i)
			if err != nil {
				return b, err
			}
			b = appendAvroScalar(b, it)
		}
	}
	return append(b, 0), nil
}

// appendAvroScalar writes the union index and value of a scalar.
func appendAvroScalar(b []byte, s scalar) []byte {
	b = appendAvroLong(b, int64(s.kind))
	switch s.kind {
	case kindBool:
		b = appendAvroBool(b, s.b)
	case kindLong:
		b = appendAvroLong(b, s.i)
	case kindDouble:
		b = appendAvroDouble(b, s.f)
	case kindString:
		b = appendAvroString(b, s.s)
	}
	return b
}

// Sorting map keys needs a slice; a pool keeps the encoders allocation-free.

type kvString struct{ k, v string }

type kvAny struct {
	k string
	v any
}

type scratch struct {
	strs []kvString
	anys []kvAny
	// order is the sorted key set of the last attribute map sortedAny
	// sorted here, copied into memory of its own (see remember).
	order []string
}

// Bounds on the key set a scratch remembers: one string holds its keys.
const (
	maxRememberedKeys     = 64
	maxRememberedKeyBytes = 4096
)

// maxPooledScratch keeps one record with a huge map from pinning a huge
// buffer in the pool.
const maxPooledScratch = 1024

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func getScratch() *scratch { return scratchPool.Get().(*scratch) }

func putScratch(sc *scratch) {
	// Drop the string references so the pool does not keep records alive.
	clear(sc.strs)
	clear(sc.anys)
	if cap(sc.strs) > maxPooledScratch || cap(sc.anys) > maxPooledScratch {
		return
	}
	sc.strs, sc.anys = sc.strs[:0], sc.anys[:0]
	scratchPool.Put(sc)
}

// sortedStrings returns m's entries sorted by key, in sc's storage.
func sortedStrings(sc *scratch, m map[string]string) []kvString {
	kvs := sc.strs[:0]
	for k, v := range m {
		kvs = append(kvs, kvString{k, v})
	}
	slices.SortFunc(kvs, func(a, b kvString) int { return cmp.Compare(a.k, b.k) })
	sc.strs = kvs
	return kvs
}

// sortedAny returns m's entries sorted by key, in sc's storage. The
// records of one source mostly have the same attribute keys (an
// application's, a pipeline's, an OTLP resource's), so sc remembers the
// last key set it sorted, and a map of the same keys is read in that
// order: a lookup per key costs less than sorting again (on the gateway's
// records of 15 attributes, the sort was half the cost of encoding).
func sortedAny(sc *scratch, m map[string]any) []kvAny {
	kvs := sc.anys[:0]
	if len(m) == len(sc.order) {
		for _, k := range sc.order {
			v, ok := m[k]
			if !ok {
				break
			}
			kvs = append(kvs, kvAny{k, v})
		}
		if len(kvs) == len(m) { // every key of the order, and no other
			sc.anys = kvs
			return kvs
		}
		kvs = kvs[:0]
	}
	for k, v := range m {
		kvs = append(kvs, kvAny{k, v})
	}
	slices.SortFunc(kvs, func(a, b kvAny) int { return cmp.Compare(a.k, b.k) })
	sc.anys = kvs
	sc.remember(kvs)
	return kvs
}

// remember keeps the keys of kvs, in their order, for sortedAny: copied
// into one string, so that the pool keeps no record's memory alive.
func (sc *scratch) remember(kvs []kvAny) {
	sc.order = sc.order[:0]
	n := 0
	for _, kv := range kvs {
		n += len(kv.k)
	}
	if len(kvs) > maxRememberedKeys || n > maxRememberedKeyBytes {
		return
	}
	var b strings.Builder
	b.Grow(n)
	for _, kv := range kvs {
		b.WriteString(kv.k)
	}
	all := b.String()
	for _, kv := range kvs {
		sc.order = append(sc.order, all[:len(kv.k)])
		all = all[len(kv.k):]
	}
}

// appendAvroKubernetes writes k as the kubernetes record of the current
// schema.
func appendAvroKubernetes(b []byte, k *Kubernetes) []byte {
	b = appendAvroString(b, k.NamespaceName)
	b = appendAvroString(b, k.PodName)
	b = appendAvroString(b, k.PodID)
	b = appendAvroString(b, k.ContainerName)
	b = appendAvroString(b, k.DockerID)
	b = appendAvroString(b, k.Host)
	b = appendAvroStringMap(b, k.Labels)
	b = appendAvroStringMap(b, k.Annotations)
	b = appendAvroStringMap(b, k.NamespaceLabels)
	b = appendAvroString(b, k.ContainerImage)
	b = appendAvroString(b, k.Workload.Kind)
	return appendAvroString(b, k.Workload.Name)
}

// CacheEncoding keeps k's Avro encoding in k, for AppendAvro and
// AppendSingleObject to copy instead of writing it again: a writer that
// sends many records with the same metadata (the shipper, the lines of one
// container) saves sorting and writing its labels and annotations for each.
// k's fields must not change afterwards (its maps included): to change
// them, build a new Kubernetes (or call ForgetEncoding first). Copies of k
// share the cache.
func (k *Kubernetes) CacheEncoding() {
	k.avro = nil
	k.avro = appendAvroKubernetes(nil, k)
}

// ForgetEncoding drops what CacheEncoding kept.
func (k *Kubernetes) ForgetEncoding() { k.avro = nil }
