package schemas

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Schema resolution: reading records written with a schema that is not one
// of the reader's versions.
//
// goavro cannot resolve a writer schema into a reader schema, so such a
// record is decoded with its writer schema (checkAvro first, then goavro,
// as for every schema not on the fast path) and the result is resolved onto
// the reader's newest version here, following Avro's resolution rules:
//
//   - record fields match by name; a writer field the reader lacks is kept
//     in Record.Unknown as JSON text (dotted path for fields of kubernetes
//     and source); a reader field the writer lacks takes the reader's
//     default (its zero value when it has none, as for external producers'
//     partial schemas);
//   - where types differ, the promotions int -> long -> float -> double,
//     string <-> bytes, and unions on either side (the written branch is
//     resolved against the first reader branch it can be read as) apply.
//
// Whether a writer schema can be read at all is decided once, when it is
// first seen (newResolution): a field both schemas have whose writer type
// can never be read as the reader's (a required string written as a long,
// say) makes the schema unusable, which decoders report as
// ErrUnknownSchema. A union branch the reader cannot read fails only the
// records that use it, with ErrMalformed.

// resolution is the plan for one writer schema against one reader schema.
// Read-only once built; shared by concurrent decodes.
type resolution struct {
	unknown  []unknownField
	defaults []defaultField
}

// unknownField is a writer field the reader does not know.
type unknownField struct {
	path []string  // enclosing record fields, from the top level
	name string    // the field
	key  string    // its key in Record.Unknown: path and name, dotted
	t    *avroType // its writer type
}

// defaultField is a reader field the writer lacks that has a default.
type defaultField struct {
	path []string
	name string
	t    *avroType // its reader type
	raw  any       // the default, as encoding/json decodes it
}

// newResolution plans reading records written with writer as reader, or
// says why they cannot be.
func newResolution(writer, reader *avroSchema) (*resolution, error) {
	defaults, err := fieldDefaults(reader.info.Text)
	if err != nil {
		return nil, fmt.Errorf("reader schema defaults: %w", err)
	}
	res := &resolution{}
	if err := res.plan(nil, writer.tree, reader.tree, defaults); err != nil {
		return nil, err
	}
	return res, nil
}

// plan compares two record types field by field, descending into fields
// that are records in both.
func (res *resolution) plan(path []string, w, r *avroType, defaults map[string]any) error {
	for i, name := range w.names {
		wt := w.fields[i]
		j := slices.Index(r.names, name)
		if j < 0 {
			key := strings.Join(append(slices.Clip(path), name), ".")
			res.unknown = append(res.unknown, unknownField{path: path, name: name, key: key, t: wt})
			continue
		}
		rt := r.fields[j]
		if wt.kind == avroRecord && rt.kind == avroRecord {
			if err := res.plan(append(slices.Clip(path), name), wt, rt, defaults); err != nil {
				return err
			}
			continue
		}
		if !readable(wt, rt, map[[2]*avroType]bool{}) {
			return fmt.Errorf("field %s: written as %s, which cannot be read as %s",
				strings.Join(append(slices.Clip(path), name), "."), describeType(wt), describeType(rt))
		}
	}
	for j, name := range r.names {
		if slices.Contains(w.names, name) {
			continue
		}
		key := strings.Join(append(slices.Clip(path), name), ".")
		if raw, ok := defaults[key]; ok {
			res.defaults = append(res.defaults, defaultField{path: path, name: name, t: r.fields[j], raw: raw})
		}
	}
	return nil
}

// readable reports whether some datum of w can be read as r under Avro's
// resolution rules. Names of records, enums and fixed types are not
// compared, and enum symbols are not: external producers name their types
// as they like. seen breaks the cycles of recursive types.
func readable(w, r *avroType, seen map[[2]*avroType]bool) bool {
	pair := [2]*avroType{w, r}
	if seen[pair] {
		return true
	}
	seen[pair] = true
	if w.kind == avroUnion {
		for _, b := range w.branches {
			if readable(b, r, seen) {
				return true
			}
		}
		return false
	}
	if r.kind == avroUnion {
		for _, b := range r.branches {
			if readable(w, b, seen) {
				return true
			}
		}
		return false
	}
	switch w.kind {
	case avroInt:
		return r.kind == avroInt || r.kind == avroLong || r.kind == avroFloat || r.kind == avroDouble
	case avroLong:
		return r.kind == avroLong || r.kind == avroFloat || r.kind == avroDouble
	case avroFloat:
		return r.kind == avroFloat || r.kind == avroDouble
	case avroString, avroBytes:
		return r.kind == avroString || r.kind == avroBytes
	case avroRecord:
		if r.kind != avroRecord {
			return false
		}
		for i, name := range w.names {
			if j := slices.Index(r.names, name); j >= 0 && !readable(w.fields[i], r.fields[j], seen) {
				return false
			}
		}
		return true
	case avroMap, avroArray:
		return r.kind == w.kind && readable(w.items, r.items, seen)
	case avroFixed:
		return r.kind == avroFixed && r.size == w.size
	default: // null, boolean, double, enum
		return r.kind == w.kind
	}
}

// describeType names a type for error messages.
func describeType(t *avroType) string {
	if t.kind != avroUnion {
		return t.kind.String()
	}
	names := make([]string, len(t.branches))
	for i, b := range t.branches {
		names[i] = b.kind.String()
	}
	return "[" + strings.Join(names, ",") + "]"
}

// fieldDefaults returns the defaults of a schema's record fields by dotted
// path, for the top-level record and the records its fields are directly.
func fieldDefaults(text string) (map[string]any, error) {
	var top any
	if err := json.Unmarshal([]byte(text), &top); err != nil {
		return nil, err
	}
	out := make(map[string]any)
	var walk func(prefix string, t any)
	walk = func(prefix string, t any) {
		rec, ok := t.(map[string]any)
		if !ok || rec["type"] != "record" {
			return
		}
		fields, _ := rec["fields"].([]any)
		for _, f := range fields {
			fm, ok := f.(map[string]any)
			if !ok {
				continue
			}
			name, _ := fm["name"].(string)
			if d, ok := fm["default"]; ok {
				out[prefix+name] = d
			}
			walk(prefix+name+".", fm["type"])
		}
	}
	walk("", top)
	return out, nil
}

// defaultNative converts a default as encoding/json decodes it to the
// native form recordFromNative reads, fresh on every call (recordFromNative
// may modify the maps it is given). A union's default is of its first
// branch.
func defaultNative(t *avroType, v any) any {
	switch t.kind {
	case avroUnion:
		if len(t.branches) > 0 {
			return defaultNative(t.branches[0], v)
		}
	case avroInt, avroLong:
		if f, ok := v.(float64); ok && f >= math.MinInt64 && f < math.MaxInt64 {
			return int64(f)
		}
	case avroMap:
		if m, ok := v.(map[string]any); ok {
			out := make(map[string]any, len(m))
			for k, x := range m {
				out[k] = defaultNative(t.items, x)
			}
			return out
		}
	case avroArray:
		if a, ok := v.([]any); ok {
			out := make([]any, len(a))
			for i, x := range a {
				out[i] = defaultNative(t.items, x)
			}
			return out
		}
	case avroRecord:
		if m, ok := v.(map[string]any); ok {
			out := make(map[string]any, len(m))
			for i, name := range t.names {
				if x, ok := m[name]; ok {
					out[name] = defaultNative(t.fields[i], x)
				}
			}
			return out
		}
	}
	return v
}

// apply resolves one record in goavro's native form, written with the
// planned writer schema: it returns the fields the reader does not know,
// as JSON text (nil when there are none), removing them from m (Record may
// have a field of that name that the reader's version does not, as a
// binary built for an older version does in tests), and adds the reader's
// defaults for fields the writer lacks to m.
func (res *resolution) apply(m map[string]any) (map[string]string, error) {
	var unknown map[string]string
	for _, u := range res.unknown {
		rec := descend(m, u.path)
		v, ok := rec[u.name]
		if !ok {
			continue
		}
		b, err := appendNativeJSON(nil, u.t, v, 0)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", u.key, err)
		}
		if unknown == nil {
			unknown = make(map[string]string, len(res.unknown))
		}
		unknown[u.key] = string(b)
		delete(rec, u.name)
	}
	for _, d := range res.defaults {
		if rec := descend(m, d.path); rec != nil {
			if _, ok := rec[d.name]; !ok {
				rec[d.name] = defaultNative(d.t, d.raw)
			}
		}
	}
	return unknown, nil
}

// descend returns the record at path in m, nil when there is none.
func descend(m map[string]any, path []string) map[string]any {
	for _, p := range path {
		next, ok := m[p].(map[string]any)
		if !ok {
			return nil
		}
		m = next
	}
	return m
}

var errNotNative = errors.New("value does not match its writer type")

// appendNativeJSON writes v, a goavro native value of type t, as compact
// JSON: records as objects in field order, maps as objects in key order,
// union values unwrapped, bytes and fixed as strings (invalid UTF-8
// replaced), NaN and infinities as the strings "NaN", "Infinity" and
// "-Infinity", goavro's logical-type values (times, durations, decimals)
// as strings. The output is valid UTF-8 and at most a small multiple of
// the body's size (checkAvro bounds item counts and depth).
func appendNativeJSON(b []byte, t *avroType, v any, depth int) ([]byte, error) {
	if depth > maxAvroDepth {
		return b, fmt.Errorf("value nested deeper than %d", maxAvroDepth)
	}
	switch v := v.(type) {
	case time.Time:
		return appendJSONString(b, v.UTC().Format(time.RFC3339Nano)), nil
	case time.Duration:
		return appendJSONString(b, v.String()), nil
	case *big.Rat:
		return appendJSONString(b, v.RatString()), nil
	}
	switch t.kind {
	case avroNull:
		if v != nil {
			return b, errNotNative
		}
		return append(b, "null"...), nil
	case avroBoolean:
		x, ok := v.(bool)
		if !ok {
			return b, errNotNative
		}
		return strconv.AppendBool(b, x), nil
	case avroInt, avroLong:
		switch x := v.(type) {
		case int32:
			return strconv.AppendInt(b, int64(x), 10), nil
		case int64:
			return strconv.AppendInt(b, x, 10), nil
		}
		return b, errNotNative
	case avroFloat, avroDouble:
		var f float64
		switch x := v.(type) {
		case float32:
			f = float64(x)
		case float64:
			f = x
		default:
			return b, errNotNative
		}
		switch {
		case math.IsNaN(f):
			return append(b, `"NaN"`...), nil
		case math.IsInf(f, 1):
			return append(b, `"Infinity"`...), nil
		case math.IsInf(f, -1):
			return append(b, `"-Infinity"`...), nil
		}
		return appendJSONFloat(b, f), nil
	case avroString, avroBytes, avroFixed, avroEnum:
		switch x := v.(type) {
		case string:
			return appendJSONString(b, x), nil
		case []byte:
			return appendJSONString(b, string(x)), nil
		}
		return b, errNotNative
	case avroRecord:
		m, ok := v.(map[string]any)
		if !ok {
			return b, errNotNative
		}
		b = append(b, '{')
		for i, name := range t.names {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, name)
			b = append(b, ':')
			var err error
			if b, err = appendNativeJSON(b, t.fields[i], m[name], depth+1); err != nil {
				return b, err
			}
		}
		return append(b, '}'), nil
	case avroMap:
		m, ok := v.(map[string]any)
		if !ok {
			return b, errNotNative
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			var err error
			if b, err = appendNativeJSON(b, t.items, m[k], depth+1); err != nil {
				return b, err
			}
		}
		return append(b, '}'), nil
	case avroArray:
		a, ok := v.([]any)
		if !ok {
			return b, errNotNative
		}
		b = append(b, '[')
		for i, x := range a {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendNativeJSON(b, t.items, x, depth+1); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	case avroUnion:
		if v == nil {
			return append(b, "null"...), nil
		}
		u, ok := v.(map[string]any)
		if !ok || len(u) != 1 {
			return b, errNotNative
		}
		for name, inner := range u {
			bt := unionBranch(t, name)
			if bt == nil {
				return b, fmt.Errorf("union has no branch %q", name)
			}
			return appendNativeJSON(b, bt, inner, depth+1)
		}
	}
	return b, errNotNative
}

// unionBranch finds the branch of union t that goavro names name: a
// primitive's or a named type's (full) name, "map" or "array". A primitive
// with a logical type is named "long.timestamp-millis" and the like; the
// canonical form t is built from has dropped the logical type, so the part
// before the first dot names it.
func unionBranch(t *avroType, name string) *avroType {
	for _, b := range t.branches {
		if branchName(b) == name {
			return b
		}
	}
	if prim, _, ok := strings.Cut(name, "."); ok {
		if k, isPrim := primitiveKinds[prim]; isPrim {
			for _, b := range t.branches {
				if b.kind == k {
					return b
				}
			}
		}
	}
	return nil
}

func branchName(t *avroType) string {
	switch t.kind {
	case avroRecord, avroEnum, avroFixed:
		return t.name
	}
	return t.kind.String()
}
