package schemas

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"
)

// DecodeSingleObject decodes a value in Avro single-object encoding written
// with any embedded schema version. An unknown fingerprint is an
// ErrUnknownSchema (Decoder.Decode with WithSchemaSource looks it up
// instead); a short header, a body that does not match the schema, or
// trailing bytes are an ErrMalformed. The Record does not retain b. Safe for
// concurrent use; never panics.
func DecodeSingleObject(b []byte) (Record, error) {
	if len(b) < singleObjectHeaderLen || b[0] != singleObjectMagic[0] || b[1] != singleObjectMagic[1] {
		return Record{}, fmt.Errorf("decode single-object: %w: %d-byte value has no C3 01 + fingerprint header", ErrMalformed, len(b))
	}
	fp := binary.LittleEndian.Uint64(b[2:singleObjectHeaderLen])
	s, ok := byFingerprint[fp]
	if !ok {
		return Record{}, fmt.Errorf("decode single-object: fingerprint %016x: %w", fp, ErrUnknownSchema)
	}
	r, err := decodeAvroBody(s, b[singleObjectHeaderLen:])
	if err != nil {
		return Record{}, fmt.Errorf("decode single-object (schema v%d): %w", s.info.Version, err)
	}
	return r, nil
}

// decodeAvroBody decodes one Avro binary body written with s: by hand when s
// is a version decodeFastBody reads, else through goavro. Errors wrap
// ErrMalformed.
func decodeAvroBody(s *avroSchema, body []byte) (Record, error) {
	if s.fast != 0 {
		return decodeFastBody(body, s.fast)
	}
	return decodeGoavroBody(s, body)
}

// decodeGoavroBody decodes one Avro binary body written with s through
// goavro; when s is not one of the reader's versions, its resolution keeps
// the fields the reader does not know in Record.Unknown and fills in the
// defaults of those the writer lacks. Errors wrap ErrMalformed.
func decodeGoavroBody(s *avroSchema, body []byte) (Record, error) {
	if err := checkAvro(s.tree, body); err != nil {
		return Record{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	native, err := nativeFromBinary(s, body)
	if err != nil {
		return Record{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	m, ok := native.(map[string]any)
	if !ok {
		return Record{}, fmt.Errorf("%w: avro datum is %T, want a record", ErrMalformed, native)
	}
	var unknown map[string]string
	if s.res != nil {
		if unknown, err = s.res.apply(m); err != nil {
			return Record{}, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
	}
	r, err := recordFromNative(m)
	if err != nil {
		return Record{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	r.Unknown = unknown
	return r, nil
}

// nativeFromBinary runs goavro on a body that passed checkAvro. goavro is
// third-party code fed with untrusted bytes: should it still panic, the panic
// becomes an error for this record instead of taking the stage down. Only
// this call is covered, never this package's own code, so its bugs still
// crash the fuzz tests.
func nativeFromBinary(s *avroSchema, body []byte) (native any, err error) {
	defer func() {
		if p := recover(); p != nil {
			native, err = nil, fmt.Errorf("goavro panicked: %v", p)
		}
	}()
	native, rest, err := s.codec.NativeFromBinary(body)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%d trailing bytes after the record", len(rest))
	}
	return native, nil
}

// recordFromNative converts goavro's native form of a LogRecord into a Record.
// It goes by field name, not by schema version: a field the writer schema
// lacks stays zero (resolution has added the reader's defaults), a field
// Record lacks is ignored here (resolution has kept it in Unknown). That is
// what lets old versions, newer ones and compatible schemas fetched from a
// registry decode into the current Record without per-version code. A field
// of an unexpected type is an error.
//
// The result is normalised: strings are valid UTF-8 (runs of invalid bytes
// become U+FFFD, and InvalidUTF8 is set when Log needed it), empty maps are
// nil, attribute values are nil, bool, int64, float64 or string, and
// timestamps are as nanosToTime makes them.
func recordFromNative(m map[string]any) (Record, error) {
	var nr nativeReader
	r := Record{
		ID:                nr.str(m, "id"),
		Timestamp:         nr.time(m, "timestamp"),
		ObservedTimestamp: nr.time(m, "observed_timestamp"),
		Tenant:            nr.str(m, "tenant"),
		Stream:            nr.str(m, "stream"),
		Truncated:         nr.boolean(m, "truncated"),
		OriginalSize:      nr.long(m, "original_size"),
		InvalidUTF8:       nr.boolean(m, "invalid_utf8"),
		Partial:           nr.boolean(m, "partial"),
		Metadata:          nr.str(m, "metadata"),
	}
	if v, ok := m["log"]; ok {
		log, repaired := nr.asString("log", v)
		r.Log = log
		r.InvalidUTF8 = r.InvalidUTF8 || repaired
	}
	if k := nr.record(m, "kubernetes"); k != nil {
		r.Kubernetes = Kubernetes{
			NamespaceName: nr.str(k, "namespace_name"),
			PodName:       nr.str(k, "pod_name"),
			PodID:         nr.str(k, "pod_id"),
			ContainerName: nr.str(k, "container_name"),
			DockerID:      nr.str(k, "docker_id"),
			Host:          nr.str(k, "host"),
			Labels:        nr.stringMap(k, "labels"),
			Annotations:   nr.stringMap(k, "annotations"),

			NamespaceLabels: nr.stringMap(k, "namespace_labels"),
			ContainerImage:  nr.str(k, "container_image"),
		}
		if w := nr.record(k, "workload"); w != nil {
			r.Kubernetes.Workload = Workload{Kind: nr.str(w, "kind"), Name: nr.str(w, "name")}
		}
	}
	r.Attributes = nr.attributes(m, "attributes")
	if s := nr.record(m, "source"); s != nil {
		r.Source = Source{
			Path:    nr.str(s, "path"),
			Offset:  nr.long(s, "offset"),
			Format:  nr.str(s, "format"),
			Shipper: nr.str(s, "shipper"),
		}
	}
	return r, nr.err
}

// nativeReader reads fields of goavro native records, keeping the first error
// so the conversion reads straight.
type nativeReader struct{ err error }

func (nr *nativeReader) fail(field string, v any, want string) {
	if nr.err == nil {
		nr.err = fmt.Errorf("field %q is %T, want %s", field, v, want)
	}
}

// unwrapUnion returns the value of a goavro union wrapper ({"type": value});
// other values are returned as they are. Only used where a scalar is
// expected, where a one-entry map can mean nothing else.
func unwrapUnion(v any) any {
	if u, ok := v.(map[string]any); ok && len(u) == 1 {
		for _, inner := range u {
			return inner
		}
	}
	return v
}

// asString accepts Avro string and bytes; it reports whether it had to repair
// invalid UTF-8.
func (nr *nativeReader) asString(field string, v any) (string, bool) {
	switch v := unwrapUnion(v).(type) {
	case string:
		return validString(v)
	case []byte:
		return validString(string(v))
	case nil:
		return "", false
	default:
		nr.fail(field, v, "string")
		return "", false
	}
}

func (nr *nativeReader) str(m map[string]any, field string) string {
	v, ok := m[field]
	if !ok {
		return ""
	}
	s, _ := nr.asString(field, v)
	return s
}

func (nr *nativeReader) long(m map[string]any, field string) int64 {
	v, ok := m[field]
	if !ok {
		return 0
	}
	switch v := unwrapUnion(v).(type) {
	case int64:
		return v
	case int32:
		return int64(v)
	case nil:
		return 0
	default:
		nr.fail(field, v, "long")
		return 0
	}
}

func (nr *nativeReader) boolean(m map[string]any, field string) bool {
	v, ok := m[field]
	if !ok {
		return false
	}
	switch v := unwrapUnion(v).(type) {
	case bool:
		return v
	case nil:
		return false
	default:
		nr.fail(field, v, "boolean")
		return false
	}
}

// time accepts a long of Unix nanoseconds (LogRecord's timestamp-nanos, which
// goavro does not know and decodes as a plain long) and the time.Time goavro
// makes of timestamp-millis and timestamp-micros in foreign schemas.
func (nr *nativeReader) time(m map[string]any, field string) time.Time {
	v, ok := m[field]
	if !ok {
		return time.Time{}
	}
	switch v := unwrapUnion(v).(type) {
	case int64:
		return nanosToTime(v)
	case int32:
		return nanosToTime(int64(v))
	case time.Time:
		return normalizeTime(v)
	case nil:
		return time.Time{}
	default:
		nr.fail(field, v, "long (timestamp-nanos)")
		return time.Time{}
	}
}

func (nr *nativeReader) record(m map[string]any, field string) map[string]any {
	v, ok := m[field]
	if !ok || v == nil {
		return nil
	}
	rec, ok := v.(map[string]any)
	if !ok {
		nr.fail(field, v, "record")
	}
	return rec
}

// stringMap converts a map<string>. Keys and values are repaired to valid
// UTF-8; colliding repaired keys are resolved as in attributes.
func (nr *nativeReader) stringMap(m map[string]any, field string) map[string]string {
	v, ok := m[field]
	if !ok || v == nil {
		return nil
	}
	src, ok := v.(map[string]any)
	if !ok {
		nr.fail(field, v, "map<string>")
		return nil
	}
	if len(src) == 0 {
		return nil
	}
	out := make(map[string]string, len(src))
	var bad []kvString // entries whose key is invalid UTF-8
	for k, val := range src {
		s, _ := nr.asString(field+"."+k, val)
		if _, repaired := validString(k); repaired {
			bad = append(bad, kvString{k, s})
			continue
		}
		out[k] = s
	}
	if bad != nil {
		slices.SortFunc(bad, func(a, b kvString) int { return cmp.Compare(a.k, b.k) })
		for _, kv := range bad {
			fixed, _ := validString(kv.k)
			if _, taken := out[fixed]; !taken {
				out[fixed] = kv.v
			}
		}
	}
	return out
}

// attributes converts the attribute map. goavro's map is fresh and ours, so
// it is reused as Record.Attributes: union wrappers are replaced by their
// values in place, which saves a map per record.
//
// Keys that are invalid UTF-8 are repaired; when two keys repair to the same
// string, a key that was valid wins, else the smallest original key, so the
// result does not depend on map iteration order.
func (nr *nativeReader) attributes(m map[string]any, field string) map[string]any {
	v, ok := m[field]
	if !ok || v == nil {
		return nil
	}
	attrs, ok := v.(map[string]any)
	if !ok {
		nr.fail(field, v, "map")
		return nil
	}
	if len(attrs) == 0 {
		return nil
	}
	var bad []kvAny // entries whose key is invalid UTF-8
	for k, val := range attrs {
		val = nr.attribute(k, val)
		if _, repaired := validString(k); repaired {
			bad = append(bad, kvAny{k, val})
			continue
		}
		attrs[k] = val
	}
	if bad != nil {
		for _, kv := range bad {
			delete(attrs, kv.k)
		}
		slices.SortFunc(bad, func(a, b kvAny) int { return cmp.Compare(a.k, b.k) })
		for _, kv := range bad {
			fixed, _ := validString(kv.k)
			if _, taken := attrs[fixed]; !taken {
				attrs[fixed] = kv.v
			}
		}
	}
	return attrs
}

// attribute converts one attribute value. LogRecord's union gives nil, bool,
// int64, float64, string and arrays of those; the widening cases serve
// foreign schemas with int, float or bytes members.
func (nr *nativeReader) attribute(key string, v any) any {
	v = unwrapUnion(v)
	if items, ok := v.([]any); ok {
		// goavro's slice is fresh and ours, like the map.
		for i, it := range items {
			items[i] = nr.scalar(key, unwrapUnion(it), true)
		}
		return items
	}
	return nr.scalar(key, v, false)
}

// scalar converts an attribute value or array item that is not an array.
func (nr *nativeReader) scalar(key string, v any, item bool) any {
	switch tv := v.(type) {
	case nil, bool, int64, float64:
		return v
	case string:
		if utf8.ValidString(tv) {
			return v // already boxed: no allocation
		}
		s, _ := validString(tv)
		return s
	case int32:
		return int64(tv)
	case float32:
		return float64(tv)
	case []byte:
		s, _ := validString(string(tv))
		return s
	default:
		want := "null, boolean, int, long, float, double, string, bytes or an array of those"
		if item {
			want = "null, boolean, int, long, float, double, string or bytes"
		}
		nr.fail("attributes."+key, v, want)
		return nil
	}
}
