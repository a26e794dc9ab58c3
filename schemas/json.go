package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/sluicelogs/sluice/internal/jsonstr"
)

// The JSON form of a Record is an object with the Record's json field names.
//
//   - Timestamps are RFC 3339 strings in UTC with exactly nine fractional
//     digits ("2024-05-01T12:00:00.000000000Z"), or null when unset (the
//     zero time; see timeToNanos for the shared rules).
//   - Maps are always objects: a nil map is written as {}. The fields of
//     schema v3 are the exception, so that records without them encode as
//     before: metadata, kubernetes.namespace_labels,
//     kubernetes.container_image and kubernetes.workload (an object
//     {"kind","name"}) are left out when empty (workload: both empty).
//   - Attribute values are JSON null, booleans, numbers, strings and arrays
//     of those (an empty array is written as []). Integers
//     are written without a fraction; floats always with a fraction or an
//     exponent (1.0, 1e+21), so each reads back as the type it was written
//     as. NaN and infinities have no JSON form: encoding them fails with
//     ErrInvalidRecord.
//   - Map keys are sorted, so equal records encode to equal bytes.
//   - Record.Unknown (fields of a newer schema version) is written as
//     "unknown": an object of the fields' JSON texts as JSON strings, left
//     out when there are none; DecodeJSON reads it back (a value that is
//     not a string is kept as its compact JSON text).
//
// Decoding accepts any JSON object: missing fields and null are zero, unknown
// fields are ignored, field names match case-insensitively (as
// encoding/json does). Timestamps may have any number of fractional digits
// and any offset; they are converted to UTC. Attribute values map to
//
//	null -> nil, true/false -> bool, string -> string,
//	a number written as an integer that fits int64 -> int64,
//	any other number (fraction, exponent, or too large) -> float64,
//	an array of those -> []any of those,
//
// and values that have no such form are kept as their compact JSON text (a
// string): objects, arrays holding objects or arrays, and numbers beyond
// float64's range (as an item too, such a number is kept as its text).
// Attributes are documented as flattened scalars and arrays of scalars, but
// dropping or rejecting a whole line because one producer nested a field
// would lose more than it protects.

// jsonTimeLayout is RFC 3339 with a fixed nine-digit fraction.
const jsonTimeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// AppendJSON appends the JSON form of r to dst and returns the extended
// buffer. On error (an unsupported or non-finite attribute value, wrapping
// ErrInvalidRecord) dst is returned unchanged. Strings that are not valid
// UTF-8 are written with U+FFFD for each invalid byte. Safe for concurrent use.
func AppendJSON(dst []byte, r *Record) ([]byte, error) {
	n := len(dst)
	b := append(dst, `{"id":`...)
	b = appendJSONString(b, r.ID)
	b = append(b, `,"timestamp":`...)
	b = appendJSONTime(b, r.Timestamp)
	b = append(b, `,"observed_timestamp":`...)
	b = appendJSONTime(b, r.ObservedTimestamp)
	b = append(b, `,"tenant":`...)
	b = appendJSONString(b, r.Tenant)
	b = append(b, `,"stream":`...)
	b = appendJSONString(b, r.Stream)
	b = append(b, `,"log":`...)
	b = appendJSONString(b, r.Log)
	b = append(b, `,"truncated":`...)
	b = strconv.AppendBool(b, r.Truncated)
	b = append(b, `,"original_size":`...)
	b = strconv.AppendInt(b, r.OriginalSize, 10)
	b = append(b, `,"invalid_utf8":`...)
	b = strconv.AppendBool(b, r.InvalidUTF8)
	b = append(b, `,"partial":`...)
	b = strconv.AppendBool(b, r.Partial)
	if r.Metadata != "" {
		b = append(b, `,"metadata":`...)
		b = appendJSONString(b, r.Metadata)
	}

	k := &r.Kubernetes
	b = append(b, `,"kubernetes":{"namespace_name":`...)
	b = appendJSONString(b, k.NamespaceName)
	b = append(b, `,"pod_name":`...)
	b = appendJSONString(b, k.PodName)
	b = append(b, `,"pod_id":`...)
	b = appendJSONString(b, k.PodID)
	b = append(b, `,"container_name":`...)
	b = appendJSONString(b, k.ContainerName)
	b = append(b, `,"docker_id":`...)
	b = appendJSONString(b, k.DockerID)
	b = append(b, `,"host":`...)
	b = appendJSONString(b, k.Host)
	b = append(b, `,"labels":`...)
	b = appendJSONStringMap(b, k.Labels)
	b = append(b, `,"annotations":`...)
	b = appendJSONStringMap(b, k.Annotations)
	if len(k.NamespaceLabels) > 0 {
		b = append(b, `,"namespace_labels":`...)
		b = appendJSONStringMap(b, k.NamespaceLabels)
	}
	if k.ContainerImage != "" {
		b = append(b, `,"container_image":`...)
		b = appendJSONString(b, k.ContainerImage)
	}
	if k.Workload != (Workload{}) {
		b = append(b, `,"workload":{"kind":`...)
		b = appendJSONString(b, k.Workload.Kind)
		b = append(b, `,"name":`...)
		b = appendJSONString(b, k.Workload.Name)
		b = append(b, '}')
	}

	b = append(b, `},"attributes":`...)
	b, err := appendJSONAttributes(b, r.Attributes)
	if err != nil {
		return dst[:n], err
	}

	s := &r.Source
	b = append(b, `,"source":{"path":`...)
	b = appendJSONString(b, s.Path)
	b = append(b, `,"offset":`...)
	b = strconv.AppendInt(b, s.Offset, 10)
	b = append(b, `,"format":`...)
	b = appendJSONString(b, s.Format)
	b = append(b, `,"shipper":`...)
	b = appendJSONString(b, s.Shipper)
	b = append(b, '}')
	if len(r.Unknown) > 0 {
		b = append(b, `,"unknown":`...)
		b = appendJSONStringMap(b, r.Unknown)
	}
	return append(b, '}'), nil
}

func appendJSONTime(b []byte, t time.Time) []byte {
	n := timeToNanos(t)
	if n == 0 {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = time.Unix(0, n).UTC().AppendFormat(b, jsonTimeLayout)
	return append(b, '"')
}

func appendJSONStringMap(b []byte, m map[string]string) []byte {
	if len(m) == 0 {
		return append(b, "{}"...)
	}
	sc := getScratch()
	b = append(b, '{')
	for i, kv := range sortedStrings(sc, m) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, kv.k)
		b = append(b, ':')
		b = appendJSONString(b, kv.v)
	}
	putScratch(sc)
	return append(b, '}')
}

func appendJSONAttributes(b []byte, m map[string]any) ([]byte, error) {
	if len(m) == 0 {
		return append(b, "{}"...), nil
	}
	sc := getScratch()
	defer putScratch(sc)
	b = append(b, '{')
	for i, kv := range sortedAny(sc, m) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, kv.k)
		b = append(b, ':')
		s, err := toScalar(kv.k, kv.v)
		if err != nil {
			return b, err
		}
		if s.kind != kindArray {
			if b, err = appendJSONScalar(b, kv.k, s); err != nil {
				return b, err
			}
			continue
		}
		b = append(b, '[')
		for i := range s.arrayLen() {
			if i > 0 {
				b = append(b, ',')
			}
			it, err := s.item(kv.k, i)
			if err != nil {
				return b, err
			}
			if b, err = appendJSONScalar(b, kv.k, it); err != nil {
				return b, err
			}
		}
		b = append(b, ']')
	}
	return append(b, '}'), nil
}

// appendJSONScalar writes an attribute value or array item that is not an
// array.
func appendJSONScalar(b []byte, key string, s scalar) ([]byte, error) {
	switch s.kind {
	case kindNull:
		b = append(b, "null"...)
	case kindBool:
		b = strconv.AppendBool(b, s.b)
	case kindLong:
		b = strconv.AppendInt(b, s.i, 10)
	case kindDouble:
		if math.IsNaN(s.f) || math.IsInf(s.f, 0) {
			return b, fmt.Errorf("attribute %q: %v has no JSON form: %w", key, s.f, ErrInvalidRecord)
		}
		b = appendJSONFloat(b, s.f)
	case kindString:
		b = appendJSONString(b, s.s)
	}
	return b, nil
}

// appendJSONFloat writes f like encoding/json does, plus ".0" when that
// would look like an integer, so the value reads back as a float64.
func appendJSONFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// Clean up e-09 to e-9, as encoding/json does.
		if n := len(b); n-start >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
		return b
	}
	if bytes.IndexByte(b[start:], '.') < 0 {
		b = append(b, ".0"...)
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendJSONString writes s as a JSON string: quotes, backslashes and control
// characters escaped, invalid UTF-8 bytes replaced by \ufffd, and U+2028 and
// U+2029 escaped so the output is also valid JavaScript.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// DecodeJSON decodes the JSON form of a Record (see the top of json.go).
// Input that is not a JSON object (a syntax error, or another JSON value) is
// an ErrUnknownFormat, so callers treat it like any other plain-text line; an
// object whose fields have the wrong types is an ErrMalformed. The Record does
// not retain b. Safe for concurrent use; never panics.
func DecodeJSON(b []byte) (Record, error) {
	if i := skipJSONSpace(b); i == len(b) || b[i] != '{' {
		return Record{}, fmt.Errorf("decode json: not a json object: %w", ErrUnknownFormat)
	}
	var jr jsonRecord
	if err := json.Unmarshal(b, &jr); err != nil {
		if se := (*json.SyntaxError)(nil); errors.As(err, &se) {
			return Record{}, fmt.Errorf("decode json: %v: %w", err, ErrUnknownFormat)
		}
		return Record{}, fmt.Errorf("decode json: %w: %v", ErrMalformed, err)
	}
	r := Record{
		ID:                jr.ID,
		Timestamp:         jr.Timestamp.t,
		ObservedTimestamp: jr.ObservedTimestamp.t,
		Tenant:            jr.Tenant,
		Stream:            jr.Stream,
		Log:               jr.Log.s,
		Truncated:         jr.Truncated,
		OriginalSize:      jr.OriginalSize,
		InvalidUTF8:       jr.InvalidUTF8 || jr.Log.invalid,
		Partial:           jr.Partial,
		Metadata:          jr.Metadata,
		Kubernetes:        jr.Kubernetes,
		Source:            jr.Source,
	}
	if len(r.Kubernetes.Labels) == 0 {
		r.Kubernetes.Labels = nil
	}
	if len(r.Kubernetes.Annotations) == 0 {
		r.Kubernetes.Annotations = nil
	}
	if len(r.Kubernetes.NamespaceLabels) == 0 {
		r.Kubernetes.NamespaceLabels = nil
	}
	if len(jr.Attributes) > 0 {
		r.Attributes = make(map[string]any, len(jr.Attributes))
		for k, v := range jr.Attributes {
			r.Attributes[k] = v.v
		}
	}
	if len(jr.Unknown) > 0 {
		r.Unknown = make(map[string]string, len(jr.Unknown))
		for k, v := range jr.Unknown {
			r.Unknown[k] = v.s
		}
	}
	return r, nil
}

func skipJSONSpace(b []byte) int {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// jsonRecord is what DecodeJSON unmarshals into. encoding/json already
// replaces invalid UTF-8 in strings with U+FFFD.
type jsonRecord struct {
	ID                string               `json:"id"`
	Timestamp         jsonTime             `json:"timestamp"`
	ObservedTimestamp jsonTime             `json:"observed_timestamp"`
	Tenant            string               `json:"tenant"`
	Stream            string               `json:"stream"`
	Log               jsonLog              `json:"log"`
	Truncated         bool                 `json:"truncated"`
	OriginalSize      int64                `json:"original_size"`
	InvalidUTF8       bool                 `json:"invalid_utf8"`
	Partial           bool                 `json:"partial"`
	Metadata          string               `json:"metadata"`
	Kubernetes        Kubernetes           `json:"kubernetes"`
	Attributes        map[string]jsonValue `json:"attributes"`
	Source            Source               `json:"source"`
	Unknown           map[string]jsonText  `json:"unknown"`
}

// jsonText reads a value of "unknown": a string is the field's JSON text,
// any other value is kept as its compact JSON text.
type jsonText struct{ s string }

func (jt *jsonText) UnmarshalJSON(b []byte) error {
	if b[0] != '"' {
		jt.s = compactJSON(b)
		return nil
	}
	if s, ok := unquote(b); ok {
		jt.s = s
		return nil
	}
	return json.Unmarshal(b, &jt.s)
}

// jsonTime reads an RFC 3339 timestamp; null and "" are the zero time.
type jsonTime struct{ t time.Time }

func (jt *jsonTime) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		jt.t = time.Time{}
		return nil
	}
	s, ok := unquote(b)
	if !ok {
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("timestamp: want an RFC 3339 string or null, got %.40s", b)
		}
	}
	if s == "" {
		jt.t = time.Time{}
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("timestamp: %w", err)
	}
	jt.t = normalizeTime(t)
	return nil
}

// jsonLog reads the log field and notes whether its raw text was invalid
// UTF-8, which encoding/json replaces silently.
type jsonLog struct {
	s       string
	invalid bool
}

func (jl *jsonLog) UnmarshalJSON(b []byte) error {
	jl.invalid = !utf8.Valid(b)
	if string(b) == "null" {
		jl.s = ""
		return nil
	}
	if s, ok := unquote(b); ok {
		jl.s = s
		return nil
	}
	return json.Unmarshal(b, &jl.s)
}

// unquote decodes a JSON string token, which encoding/json has checked,
// without a second pass of encoding/json over it (and its reflection). It
// reports false when b is not one string token.
func unquote(b []byte) (string, bool) {
	if len(b) == 0 || b[0] != '"' {
		return "", false
	}
	s, end, err := jsonstr.Unquote(b, 0)
	return s, err == nil && end == len(b)
}

// jsonValue reads one attribute value; see the top of json.go.
type jsonValue struct{ v any }

func (jv *jsonValue) UnmarshalJSON(b []byte) error {
	switch b[0] {
	case '{':
		jv.v = compactJSON(b)
	case '[':
		jv.v = jsonArray(b)
	default:
		v, err := jsonScalar(b)
		if err != nil {
			return err
		}
		jv.v = v
	}
	return nil
}

// jsonScalar reads a JSON value that is not an object or array.
func jsonScalar(b []byte) (any, error) {
	switch b[0] {
	case 'n':
		return nil, nil
	case 't':
		return true, nil
	case 'f':
		return false, nil
	case '"':
		s, ok := unquote(b)
		if !ok {
			if err := json.Unmarshal(b, &s); err != nil {
				return nil, err
			}
		}
		return s, nil
	default:
		return jsonNumber(b), nil
	}
}

// jsonArray reads a JSON array: an array of scalars is a []any, anything
// else (an object or array inside) its compact JSON text. encoding/json has
// validated b.
func jsonArray(b []byte) any {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return compactJSON(b)
	}
	items := make([]any, len(raw))
	for i, it := range raw {
		if it[0] == '{' || it[0] == '[' {
			return compactJSON(b)
		}
		v, err := jsonScalar(it)
		if err != nil {
			return compactJSON(b)
		}
		items[i] = v
	}
	return items
}

// jsonNumber converts a JSON number literal: integer syntax that fits int64
// gives int64, anything else float64, and a number beyond float64's range
// is kept as its text.
func jsonNumber(b []byte) any {
	s := string(b)
	if bytes.IndexAny(b, ".eE") < 0 {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return s
	}
	return f
}

func compactJSON(b []byte) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		// Unreachable: encoding/json validated b before calling us.
		return string(b)
	}
	out, _ := validString(buf.String())
	return out
}

// AppendJSONString appends s to b as a JSON string, escaped as AppendJSON
// escapes strings (invalid UTF-8 bytes become \ufffd). For stages that write
// their own JSON documents (the indexer).
func AppendJSONString(b []byte, s string) []byte { return appendJSONString(b, s) }

// AppendJSONFloat appends f as AppendJSON writes a double. f must be finite.
func AppendJSONFloat(b []byte, f float64) []byte { return appendJSONFloat(b, f) }
