package indexer

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluicelogs/sluice/schemas"
)

// The document shape (see doc.go for the whole contract):
//
//	{"@timestamp": event time, "tenant", "stream", "log",
//	 "kubernetes": {"pod_name", "namespace_name", "pod_id", "labels": {...},
//	                "annotations": {...}, "namespace_labels": {...}, "host",
//	                "container_name", "container_image", "docker_id",
//	                "workload": {"kind", "name"}},
//	 <each attribute at its dotted path>,
//	 "sluice": {"observed_timestamp", "truncated", "original_size",
//	            "invalid_utf8", "partial", "metadata", "source": {...},
//	            "unknown": {"<field>": "<JSON text>", ...},
//	            "rescued": "<JSON object>"}}
//
// sluice.unknown holds the fields of a record written with a schema version
// newer than this indexer's (schemas.Record.Unknown), each as its JSON
// text in a string, so that no value can conflict with a mapping.
//
// Empty strings, empty maps and false flags are left out.

// reserved are the top-level names Sluice writes, and Elasticsearch's
// metadata fields: an attribute whose first path element is one of them is
// written under attributes. (attributes.kubernetes.x, attributes._id).
var reserved = map[string]bool{
	"@timestamp": true, "tenant": true, "stream": true, "log": true,
	"kubernetes": true, "attributes": true, "sluice": true,
	"_id": true, "_index": true, "_source": true, "_routing": true, "_ignored": true,
	"_ignored_source": true, "_seq_no": true, "_version": true, "_primary_term": true,
	"_doc_count": true, "_tier": true, "_field_names": true, "_data_stream_timestamp": true,
	"_feature": true, "_nested_path": true, "_tsid": true, "_meta": true, "_type": true,
	"_routing_path": true,
}

// moveAll, as the only element of a moved list, moves every attribute into
// sluice.rescued.
const moveAll = "*"

// appendTime writes t in UTC as 2006-01-02T15:04:05.000000000Z: fixed
// width, nanoseconds (Elasticsearch's date parser takes up to nine fraction
// digits). It is time.AppendFormat for this one layout, several times
// faster; years outside 0-9999 are written by AppendFormat.
func appendTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(dst, "2006-01-02T15:04:05.000000000Z")
	}
	hour, minute, sec := t.Clock()
	dst = appendDigits(dst, year, 4)
	dst = append(dst, '-')
	dst = appendDigits(dst, int(month), 2)
	dst = append(dst, '-')
	dst = appendDigits(dst, day, 2)
	dst = append(dst, 'T')
	dst = appendDigits(dst, hour, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, minute, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, sec, 2)
	dst = append(dst, '.')
	dst = appendDigits(dst, t.Nanosecond(), 9)
	return append(dst, 'Z')
}

// appendDigits writes v (>= 0) zero-padded to width digits.
func appendDigits(dst []byte, v, width int) []byte {
	n := len(dst) + width
	dst = append(dst, "000000000"[:width]...)
	for i := n - 1; i >= n-width && v > 0; i-- {
		dst[i] = byte('0' + v%10)
		v /= 10
	}
	return dst
}

// docWriter builds bulk actions and documents. Not safe for concurrent use:
// it holds scratch space.
type docWriter struct {
	stats   docStats
	attrs   []attr
	pairs   []pair
	dedot   map[string]string // label key -> de-dotted key, cached across documents
	rescued map[string]any    // fields placed in sluice.rescued, per document
}

type attr struct {
	path  string // where it is written
	key   string // the attribute's own key
	value any
}

type pair struct{ name, k, v string }

// docStats says which fields appendDoc placed in sluice.rescued rather
// than where they belong.
type docStats struct {
	names      int // keys that cannot be field names
	collisions int // a value where other attributes nest; labels that de-dot to one name
	moved      int // attributes the moved list named
}

// appendDoc appends rec's document to dst. tenant is the one of the topic
// it came from. moved lists written paths (as in the Elasticsearch error
// that rejected a previous attempt) whose attributes go into sluice.rescued
// instead: an attribute at a listed path, under it, or above it; moveAll
// moves every attribute.
func (w *docWriter) appendDoc(dst []byte, rec *schemas.Record, tenant string, moved []string) ([]byte, docStats) {
	clear(w.rescued)
	w.stats = docStats{}
	dst = append(dst, `{"@timestamp":"`...)
	dst = appendTime(dst, rec.Timestamp)
	dst = append(dst, `","tenant":`...)
	dst = schemas.AppendJSONString(dst, tenant)
	if rec.Stream != "" {
		dst = append(dst, `,"stream":`...)
		dst = schemas.AppendJSONString(dst, rec.Stream)
	}
	dst = append(dst, `,"log":`...)
	dst = schemas.AppendJSONString(dst, rec.Log)
	dst = w.appendKubernetes(dst, &rec.Kubernetes, moved)
	dst = w.appendAttributes(dst, rec.Attributes, moved)

	opened := false // the sluice object, written only when it has a field
	field := func(name string) {
		if opened {
			dst = append(dst, ',')
		} else {
			dst = append(dst, `,"sluice":{`...)
		}
		opened = true
		dst = append(dst, '"')
		dst = append(dst, name...)
		dst = append(dst, `":`...)
	}
	if !rec.ObservedTimestamp.IsZero() {
		field("observed_timestamp")
		dst = append(dst, '"')
		dst = appendTime(dst, rec.ObservedTimestamp)
		dst = append(dst, '"')
	}
	if rec.Truncated {
		field("truncated")
		dst = append(dst, "true"...)
		field("original_size")
		dst = strconv.AppendInt(dst, rec.OriginalSize, 10)
	}
	if rec.InvalidUTF8 {
		field("invalid_utf8")
		dst = append(dst, "true"...)
	}
	if rec.Partial {
		field("partial")
		dst = append(dst, "true"...)
	}
	if rec.Metadata != "" {
		field("metadata")
		dst = schemas.AppendJSONString(dst, rec.Metadata)
	}
	if s := &rec.Source; s.Path != "" || s.Format != "" || s.Shipper != "" {
		field("source")
		dst = append(dst, `{"path":`...)
		dst = schemas.AppendJSONString(dst, s.Path)
		dst = append(dst, `,"offset":`...)
		dst = strconv.AppendInt(dst, s.Offset, 10)
		dst = append(dst, `,"format":`...)
		dst = schemas.AppendJSONString(dst, s.Format)
		dst = append(dst, `,"shipper":`...)
		dst = schemas.AppendJSONString(dst, s.Shipper)
		dst = append(dst, '}')
	}
	if len(rec.Unknown) > 0 {
		field("unknown")
		dst = appendUnknown(dst, rec.Unknown)
	}
	if len(w.rescued) > 0 {
		field("rescued")
		dst = schemas.AppendJSONString(dst, string(appendObject(nil, w.rescued)))
	}
	if opened {
		dst = append(dst, '}')
	}
	return append(dst, '}'), w.stats
}

// appendUnknown writes a record's unknown fields as an object of strings,
// in key order.
func appendUnknown(dst []byte, unknown map[string]string) []byte {
	return appendSortedObject(dst, unknown, schemas.AppendJSONString)
}

func (w *docWriter) appendKubernetes(dst []byte, k *schemas.Kubernetes, moved []string) []byte {
	if k.PodName == "" && k.NamespaceName == "" && k.PodID == "" && k.Host == "" && k.ContainerName == "" &&
		k.DockerID == "" && len(k.Labels) == 0 && len(k.Annotations) == 0 && len(k.NamespaceLabels) == 0 &&
		k.ContainerImage == "" && k.Workload == (schemas.Workload{}) {
		return dst
	}
	dst = append(dst, `,"kubernetes":{`...)
	start := len(dst)
	str := func(name, v string) {
		if v == "" {
			return
		}
		if len(dst) > start {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = append(dst, name...)
		dst = append(dst, `":`...)
		dst = schemas.AppendJSONString(dst, v)
	}
	str("pod_name", k.PodName)
	str("namespace_name", k.NamespaceName)
	str("pod_id", k.PodID)
	for _, m := range [...]struct {
		name, path string
		m          map[string]string
	}{
		{"labels", "kubernetes.labels.", k.Labels},
		{"annotations", "kubernetes.annotations.", k.Annotations},
		{"namespace_labels", "kubernetes.namespace_labels.", k.NamespaceLabels},
	} {
		if len(m.m) == 0 {
			continue
		}
		if len(dst) > start {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = append(dst, m.name...)
		dst = append(dst, `":`...)
		dst = w.appendDedotted(dst, m.path, m.m, moved)
	}
	str("host", k.Host)
	str("container_name", k.ContainerName)
	str("container_image", k.ContainerImage)
	str("docker_id", k.DockerID)
	if wl := &k.Workload; wl.Kind != "" || wl.Name != "" {
		if len(dst) > start {
			dst = append(dst, ',')
		}
		dst = append(dst, `"workload":{`...)
		wstart := len(dst)
		if wl.Kind != "" {
			dst = append(dst, `"kind":`...)
			dst = schemas.AppendJSONString(dst, wl.Kind)
		}
		if wl.Name != "" {
			if len(dst) > wstart {
				dst = append(dst, ',')
			}
			dst = append(dst, `"name":`...)
			dst = schemas.AppendJSONString(dst, wl.Name)
		}
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

// appendDedotted writes a label or annotation map as an object of keyword
// values whose keys have every '.' replaced by '_' (the de-dot rule of the
// fluent-bit Elasticsearch output's Replace_Dots and of Beats): label keys
// such as app and app.kubernetes.io/name then never collide as a value
// versus an object. Keys are written sorted; when two keys become the same
// (app.kubernetes and app_kubernetes), the key that had no dots keeps the
// name, else the first in order, and the other is placed in sluice.rescued
// under its full original path. An empty key is placed there too, and so
// is a key whose path (path + de-dotted key) the moved list names (moveAll
// included: a total-fields limit is reached by labels as much as by
// attributes).
func (w *docWriter) appendDedotted(dst []byte, path string, m map[string]string, moved []string) []byte {
	w.pairs = w.pairs[:0]
	for k, v := range m {
		if k == "" {
			w.stats.names++
			w.rescue(path, v)
			continue
		}
		name := k
		if strings.IndexByte(k, '.') >= 0 {
			name = w.dedotted(k)
		}
		w.pairs = append(w.pairs, pair{name: name, k: k, v: v})
	}
	// By name; among equal names the key without dots (name == k) first,
	// then by key.
	slices.SortFunc(w.pairs, func(a, b pair) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		if (a.name == a.k) != (b.name == b.k) {
			if a.name == a.k {
				return -1
			}
			return 1
		}
		return strings.Compare(a.k, b.k)
	})
	dst = append(dst, '{')
	n := 0
	for i, p := range w.pairs {
		if i > 0 && p.name == w.pairs[i-1].name {
			w.stats.collisions++
			w.rescue(path+p.k, p.v)
			continue
		}
		if len(moved) > 0 && isMoved(moved, path+p.name) {
			w.stats.moved++
			w.rescue(path+p.k, p.v)
			continue
		}
		if n > 0 {
			dst = append(dst, ',')
		}
		n++
		dst = schemas.AppendJSONString(dst, p.name)
		dst = append(dst, ':')
		dst = schemas.AppendJSONString(dst, p.v)
	}
	return append(dst, '}')
}

func (w *docWriter) dedotted(k string) string {
	if d, ok := w.dedot[k]; ok {
		return d
	}
	if w.dedot == nil || len(w.dedot) > 4096 {
		w.dedot = make(map[string]string)
	}
	d := strings.ReplaceAll(k, ".", "_")
	w.dedot[k] = d
	return d
}

func (w *docWriter) rescue(path string, v any) {
	if w.rescued == nil {
		w.rescued = make(map[string]any)
	}
	w.rescued[path] = v
}

// appendAttributes writes the attributes at their dotted paths (which
// Elasticsearch reads as object paths), sorted. An attribute is placed in
// sluice.rescued instead when its key cannot be a field name (empty, or an
// empty element: "a..b", ".a", "a."), when it is a value at a path other
// attributes are under (a beside a.b: a cannot be both), or when moved says
// so.
func (w *docWriter) appendAttributes(dst []byte, attrs map[string]any, moved []string) []byte {
	if len(attrs) == 0 {
		return dst
	}
	w.attrs = w.attrs[:0]
	dotted := false
	for k, v := range attrs {
		if !validPath(k) {
			w.stats.names++
			w.rescue(k, v)
			continue
		}
		path := k
		first, _, hasDot := strings.Cut(k, ".")
		if reserved[first] {
			path = "attributes." + k
		}
		dotted = dotted || hasDot || path != k
		w.attrs = append(w.attrs, attr{path: path, key: k, value: v})
	}
	slices.SortFunc(w.attrs, func(a, b attr) int { return strings.Compare(a.path, b.path) })
	for i := range w.attrs {
		a := &w.attrs[i]
		switch {
		case isMoved(moved, a.path):
			w.stats.moved++
		case dotted && hasChildren(w.attrs[i+1:], a.path):
			w.stats.collisions++
		default:
			dst = append(dst, ',')
			dst = schemas.AppendJSONString(dst, a.path)
			dst = append(dst, ':')
			dst = appendValue(dst, a.value)
			continue
		}
		w.rescue(a.key, a.value)
	}
	return dst
}

// validPath reports whether Elasticsearch accepts k as a dotted field path:
// no empty element.
func validPath(k string) bool {
	return k != "" && k[0] != '.' && k[len(k)-1] != '.' && !strings.Contains(k, "..")
}

// hasChildren reports whether a path in sorted (the paths sorting after p)
// starts with p + ".". Paths starting with p come right after it.
func hasChildren(sorted []attr, p string) bool {
	for _, a := range sorted {
		if !strings.HasPrefix(a.path, p) {
			return false
		}
		if a.path[len(p)] == '.' { // a.path != p: paths are unique
			return true
		}
	}
	return false
}

// isMoved reports whether the attribute at path p is to be moved: moved
// lists p, a path above it or a path under it, or is moveAll.
func isMoved(moved []string, p string) bool {
	for _, m := range moved {
		if m == moveAll || m == p || under(p, m) || under(m, p) {
			return true
		}
	}
	return false
}

// under reports whether path a lies under path b (b.x...).
func under(a, b string) bool {
	return len(a) > len(b) && a[len(b)] == '.' && strings.HasPrefix(a, b)
}

// appendValue writes an attribute value: nil, bool, int64, float64, string
// or an array of those (the Record contract). A float that JSON cannot hold
// (NaN, ±Inf) is written as a string, anything else unexpected as its %v
// text.
func appendValue(dst []byte, v any) []byte {
	switch v := v.(type) {
	case []any:
		return appendArray(dst, v)
	case []string:
		dst = append(dst, '[')
		for i, s := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = schemas.AppendJSONString(dst, s)
		}
		return append(dst, ']')
	case nil:
		return append(dst, "null"...)
	case bool:
		return strconv.AppendBool(dst, v)
	case int64:
		return strconv.AppendInt(dst, v, 10)
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return schemas.AppendJSONString(dst, strconv.FormatFloat(v, 'g', -1, 64))
		}
		return schemas.AppendJSONFloat(dst, v)
	case string:
		return schemas.AppendJSONString(dst, v)
	case int:
		return strconv.AppendInt(dst, int64(v), 10)
	default:
		return schemas.AppendJSONString(dst, fmt.Sprint(v))
	}
}

// appendArray writes an array attribute so that Elasticsearch can index
// every item under one mapping: it maps an array by its first item and
// refuses, or silently truncates, items of another type. So an array whose
// items are all of one JSON type (nulls aside) is written as it is; one
// mixing integers and fractions is written as fractions (a double field);
// any other mix is written as strings (a keyword field), each item as its
// JSON text. An array of strings is thus a keyword array, searchable item by
// item.
func appendArray(dst []byte, items []any) []byte {
	var kinds uint8
	const (
		isBool = 1 << iota
		isInt
		isFloat
		isString
		isOther
	)
	for _, it := range items {
		switch it.(type) {
		case nil:
		case bool:
			kinds |= isBool
		case int64, int:
			kinds |= isInt
		case float64:
			kinds |= isFloat
		case string:
			kinds |= isString
		default:
			kinds |= isOther
		}
	}
	floats := kinds == isInt|isFloat
	strs := !floats && kinds&(kinds-1) != 0 // more than one kind
	dst = append(dst, '[')
	for i, it := range items {
		if i > 0 {
			dst = append(dst, ',')
		}
		switch {
		case it == nil:
			dst = append(dst, "null"...)
		case floats:
			switch n := it.(type) {
			case int64:
				dst = appendValue(dst, float64(n))
			case int:
				dst = appendValue(dst, float64(n))
			default:
				dst = appendValue(dst, it)
			}
		case strs:
			if s, ok := it.(string); ok {
				dst = schemas.AppendJSONString(dst, s)
			} else {
				dst = schemas.AppendJSONString(dst, string(appendValue(nil, it)))
			}
		default:
			dst = appendValue(dst, it)
		}
	}
	return append(dst, ']')
}

// appendObject writes m as a JSON object with sorted keys.
func appendObject(dst []byte, m map[string]any) []byte {
	return appendSortedObject(dst, m, appendValue)
}

// appendSortedObject writes m as a JSON object with sorted keys, each
// value written by appendV.
func appendSortedObject[V any](dst []byte, m map[string]V, appendV func([]byte, V) []byte) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = schemas.AppendJSONString(dst, k)
		dst = append(dst, ':')
		dst = appendV(dst, m[k])
	}
	return append(dst, '}')
}

// maxIDBytes is Elasticsearch's limit on _id.
const maxIDBytes = 512

// docID returns the _id of a record: its id, or, when the id is missing or
// longer than Elasticsearch allows, a hash derived deterministically from
// the id or from the record's place in its topic, so that indexing it again
// gives the same _id.
func docID(id, topic string, partition int32, offset int64) string {
	switch {
	case id == "":
		var b [4 + 8]byte
		binary.BigEndian.PutUint32(b[:], uint32(partition))
		binary.BigEndian.PutUint64(b[4:], uint64(offset))
		sum := sha256.Sum256(append([]byte(topic), b[:]...))
		return hex.EncodeToString(sum[:16])
	case len(id) > maxIDBytes:
		sum := sha256.Sum256([]byte(id))
		return hex.EncodeToString(sum[:])
	}
	return id
}

// appendAction appends the bulk action line that creates document id in
// index, with its newline.
func appendAction(dst, index []byte, id string) []byte {
	dst = append(dst, `{"create":{"_index":"`...)
	dst = append(dst, index...) // index names need no escaping
	dst = append(dst, `","_id":`...)
	dst = schemas.AppendJSONString(dst, id)
	return append(dst, "}}\n"...)
}
