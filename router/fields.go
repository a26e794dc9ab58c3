package router

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sluicelogs/sluice/schemas"
)

// fieldKind says which part of a record a field reference names.
type fieldKind uint8

const (
	fieldAttr fieldKind = iota
	fieldLog
	fieldStream
	fieldTimestamp
)

// attrPrefix forces a reference to name an attribute, for attribute keys
// that collide with a record field: "attributes.log" is attribute "log".
const attrPrefix = "attributes."

// fieldRef is a parsed field reference; see the package doc for the rule.
type fieldRef struct {
	kind fieldKind
	key  string // attribute key when kind == fieldAttr
	name string // as written, for messages
}

// parseFieldRef applies the field-reference rule: "log", "stream" and
// "timestamp" are record fields, "attributes.K" is attribute K, and any other
// name is the attribute of that exact key.
func parseFieldRef(s string) (fieldRef, error) {
	switch s {
	case "":
		return fieldRef{}, fmt.Errorf("empty field name")
	case "log":
		return fieldRef{kind: fieldLog, name: s}, nil
	case "stream":
		return fieldRef{kind: fieldStream, name: s}, nil
	case "timestamp":
		return fieldRef{kind: fieldTimestamp, name: s}, nil
	}
	key := strings.TrimPrefix(s, attrPrefix)
	if key == "" {
		return fieldRef{}, fmt.Errorf("empty attribute key in %q", s)
	}
	return fieldRef{kind: fieldAttr, key: key, name: s}, nil
}

// get returns the value of the field and whether it is present. Record
// string fields are present when non-empty, timestamp when non-zero.
func (f fieldRef) get(r *schemas.Record) (any, bool) {
	switch f.kind {
	case fieldLog:
		return r.Log, r.Log != ""
	case fieldStream:
		return r.Stream, r.Stream != ""
	case fieldTimestamp:
		return r.Timestamp, !r.Timestamp.IsZero()
	}
	v, ok := r.Attributes[f.key]
	return v, ok
}

// getString returns the field as a string: present string fields and string
// attributes only.
func (f fieldRef) getString(r *schemas.Record) (string, bool) {
	switch f.kind {
	case fieldLog:
		return r.Log, r.Log != ""
	case fieldStream:
		return r.Stream, r.Stream != ""
	case fieldAttr:
		s, ok := r.Attributes[f.key].(string)
		return s, ok
	}
	return "", false
}

// set writes v (any value; it is normalised) to the field.
func (f fieldRef) set(r *schemas.Record, v any) error {
	switch f.kind {
	case fieldLog:
		r.Log = stringOf(v)
	case fieldStream:
		r.Stream = stringOf(v)
	case fieldTimestamp:
		switch t := v.(type) {
		case time.Time:
			r.Timestamp = t.UTC()
		case string:
			p, err := time.Parse(time.RFC3339Nano, t)
			if err != nil {
				return fmt.Errorf("set timestamp: %w", err)
			}
			r.Timestamp = p.UTC()
		default:
			return fmt.Errorf("set timestamp: want a time or an RFC 3339 string, got %T", v)
		}
	default:
		setAttr(r, f.key, normalize(v))
	}
	return nil
}

// del removes the field: attributes are deleted, record fields zeroed.
func (f fieldRef) del(r *schemas.Record) {
	switch f.kind {
	case fieldLog:
		r.Log = ""
	case fieldStream:
		r.Stream = ""
	case fieldTimestamp:
		r.Timestamp = time.Time{}
	default:
		delete(r.Attributes, f.key)
	}
}

func setAttr(r *schemas.Record, k string, v any) {
	if r.Attributes == nil {
		r.Attributes = make(map[string]any, 8)
	}
	r.Attributes[k] = v
}

// normalize converts v to an attribute value: nil, bool, int64, float64,
// string, or an array of those. Other integers become int64 (uint64 over
// MaxInt64 becomes float64), time.Time an RFC 3339 string, a list of
// scalars ([]any, []string) an array ([]any) of normalised items, and
// anything else, a list holding lists or maps included, its JSON text.
func normalize(v any) any {
	switch x := v.(type) {
	case nil, bool, int64, float64, string:
		return x
	case []any:
		items := make([]any, len(x))
		for i, it := range x {
			switch it.(type) {
			case []any, []string, map[string]any:
				return jsonString(v)
			}
			items[i] = normalize(it)
		}
		return items
	case []string:
		items := make([]any, len(x))
		for i, s := range x {
			items[i] = s
		}
		return items
	case int:
		return int64(x)
	case int8:
		return int64(x)
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case uint:
		return normalize(uint64(x))
	case uint8:
		return int64(x)
	case uint16:
		return int64(x)
	case uint32:
		return int64(x)
	case uint64:
		if x > math.MaxInt64 {
			return float64(x)
		}
		return int64(x)
	case float32:
		return float64(x)
	case json.Number:
		return numberValue(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case []byte:
		return string(x)
	}
	return jsonString(v)
}

// stringOf formats an attribute-like value as a string.
func stringOf(v any) string {
	switch x := normalize(v).(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case []any:
		return jsonString(x)
	}
	return fmt.Sprint(v)
}

// numberValue is int64 for an integral JSON number that fits, else float64
// (or the text itself when it is neither, which valid JSON never gives).
func numberValue(n json.Number) any {
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return i
	}
	if f, err := strconv.ParseFloat(string(n), 64); err == nil {
		return f
	}
	return string(n)
}

// jsonString is v as compact JSON without HTML escaping; map keys sorted.
func jsonString(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// boundAttributes enforces MaxAttributes: when a record has more, the keys
// after the first MaxAttributes-1 in sorted order move into one JSON object
// string at OverflowKey (merged with an existing OverflowKey object).
func boundAttributes(r *schemas.Record) {
	if len(r.Attributes) <= MaxAttributes {
		return
	}
	over := make(map[string]any)
	if s, ok := r.Attributes[OverflowKey].(string); ok {
		_ = json.Unmarshal([]byte(s), &over) // a non-object old value is replaced
	}
	delete(r.Attributes, OverflowKey)
	keys := make([]string, 0, len(r.Attributes))
	for k := range r.Attributes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys[MaxAttributes-1:] {
		over[k] = r.Attributes[k]
		delete(r.Attributes, k)
	}
	r.Attributes[OverflowKey] = jsonString(over)
}
