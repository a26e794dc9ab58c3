package eslite

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// vkind is how a value is searched, by the type of its field.
type vkind uint8

const (
	vKeyword vkind = iota // exact string: keyword, ip
	vText                 // analysed into tokens: text
	vNum                  // number: the numeric types
	vDate                 // milliseconds since the epoch: date
	vBool                 // "true" or "false": boolean
)

// val is one searchable value of a document.
type val struct {
	f   uint32 // the field, numbered by the store's fieldTable
	k   vkind
	num float64 // vNum, vDate
	s   string  // vKeyword, vText, vBool; vDate: the value as written
}

// leafTypes are the field types a mapping may declare, besides object and
// nested, and how their values are searched.
var leafTypes = map[string]vkind{
	"keyword": vKeyword, "constant_keyword": vKeyword, "wildcard": vKeyword, "ip": vKeyword,
	"text": vText, "match_only_text": vText,
	"long": vNum, "integer": vNum, "short": vNum, "byte": vNum, "unsigned_long": vNum,
	"double": vNum, "float": vNum, "half_float": vNum, "scaled_float": vNum,
	"date": vDate, "date_nanos": vDate, "boolean": vBool,
}

// integerRange bounds the integer types' values.
var integerRange = map[string][2]float64{
	"long": {math.MinInt64, math.MaxInt64}, "integer": {math.MinInt32, math.MaxInt32},
	"short": {math.MinInt16, math.MaxInt16}, "byte": {math.MinInt8, math.MaxInt8}, "unsigned_long": {0, math.MaxUint64},
}

// defaultDynamic is the type of a new field by its JSON type (see
// walker.jsonType). Unlike Elasticsearch, which maps a new string as text
// with a keyword sub-field, a new string is a keyword.
var defaultDynamic = map[string]string{
	"string": "keyword", "long": "long", "double": "float", "boolean": "boolean", "date": "date", "object": "object",
}

var metadataFields = map[string]bool{
	"_id": true, "_index": true, "_routing": true, "_source": true, "_version": true, "_seq_no": true,
	"_primary_term": true, "_ignored": true, "_field_names": true, "_tier": true,
}

// fieldDef is the mapping of one field or object.
type fieldDef struct {
	typ         string
	id          uint32 // leaves: the store's number of the path
	enabled     bool
	dynamic     string // objects: "" (inherited), "true", "false", "strict" or "runtime"
	noIndex     bool   // "index": false
	ignoreAbove int    // 0: unset
	anyDate     bool   // a date format of its own: values that do not parse are kept unsearchable
}

func (fd *fieldDef) isObject() bool { return fd.typ == "object" || fd.typ == "nested" }

// mapping is the mapping of one index, enforced as an Elasticsearch shard
// enforces it. It is guarded by its index's lock.
type mapping struct {
	fields        map[string]*fieldDef // by dotted path, objects included
	dynamic       string
	dateDetection bool
	numDetection  bool
	templates     []dynTemplate
	limit         int // index.mapping.total_fields.limit
}

// dynTemplate is one entry of dynamic_templates.
type dynTemplate struct {
	matchType, match, unmatch, pathMatch, pathUnmatch []string
	def                                               map[string]any
}

func mapperErr(format string, args ...any) *esError {
	return newErr(http.StatusBadRequest, "mapper_parsing_exception", format, args...)
}

// newMapping builds an index's mapping from its settings and its mappings
// objects (the template's, then the create request's).
func newMapping(ft *fieldTable, settings map[string]string, raws []json.RawMessage) (*mapping, *esError) {
	m := &mapping{fields: map[string]*fieldDef{}, dynamic: "true", dateDetection: true, limit: 1000}
	if v, ok := settings["mapping.total_fields.limit"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, illegalArg("Failed to parse value [%s] for setting [index.mapping.total_fields.limit] must be >= 0", v)
		}
		m.limit = n
	}
	put := func(p string, fd *fieldDef) { m.fields[p] = fd }
	get := func(p string) *fieldDef { return m.fields[p] }
	for _, raw := range raws {
		if len(raw) == 0 {
			continue
		}
		var root map[string]any
		if err := decodeJSON(raw, &root); err != nil {
			return nil, mapperErr("Failed to parse mapping: %v", err)
		}
		if inner, ok := root["_doc"].(map[string]any); ok && len(root) == 1 {
			root = inner
		}
		var unsupported []string
		for _, k := range sortedKeys(root) {
			v := root[k]
			switch k {
			case "properties":
				props, ok := v.(map[string]any)
				if !ok {
					return nil, mapperErr("Expected map for property [properties] on field [_doc] but got a %T", v)
				}
				if e := m.parseProperties(ft, "", props, get, put); e != nil {
					return nil, e
				}
			case "dynamic":
				if m.dynamic = dynamicValue(v); m.dynamic == "" {
					return nil, mapperErr("Could not convert [dynamic] to boolean")
				}
			case "date_detection":
				m.dateDetection = fmt.Sprint(v) != "false"
			case "numeric_detection":
				m.numDetection = fmt.Sprint(v) == "true"
			case "dynamic_templates":
				ts, e := parseDynamicTemplates(v)
				if e != nil {
					return nil, e
				}
				m.templates = ts
			case "_source", "_meta", "_routing", "dynamic_date_formats", "_data_stream_timestamp", "subobjects", "enabled", "_field_names":
			default:
				b, _ := json.Marshal(v)
				unsupported = append(unsupported, k+" : "+string(b))
			}
		}
		if len(unsupported) > 0 {
			return nil, mapperErr("Root mapping definition has unsupported parameters:  [%s]", strings.Join(unsupported, "] ["))
		}
	}
	if len(m.fields) > m.limit {
		return nil, illegalArg("Limit of total fields [%d] has been exceeded", m.limit)
	}
	return m, nil
}

func dynamicValue(v any) string {
	switch s := fmt.Sprint(v); s {
	case "true", "false", "strict", "runtime":
		return s
	}
	return ""
}

// parseProperties reads a properties object below prefix.
func (m *mapping) parseProperties(ft *fieldTable, prefix string, props map[string]any, get func(string) *fieldDef, put func(string, *fieldDef)) *esError {
	for _, name := range sortedKeys(props) {
		def, ok := props[name].(map[string]any)
		if !ok {
			return mapperErr("Expected map for property [fields] on field [%s] but got a %T", name, props[name])
		}
		parts := strings.Split(name, ".")
		path := prefix
		for _, p := range parts[:len(parts)-1] {
			if p == "" {
				return illegalArg("field name cannot contain only dots")
			}
			path = joinPath(path, p)
			if fd := get(path); fd == nil || !fd.isObject() {
				put(path, &fieldDef{typ: "object", enabled: true})
			}
		}
		if _, e := m.parseField(ft, joinPath(path, parts[len(parts)-1]), def, get, put); e != nil {
			return e
		}
	}
	return nil
}

// parseField reads the definition of the field at path, recording it and
// what is below it with put.
func (m *mapping) parseField(ft *fieldTable, path string, def map[string]any, get func(string) *fieldDef, put func(string, *fieldDef)) (*fieldDef, *esError) {
	name := path[strings.LastIndexByte(path, '.')+1:]
	fd := &fieldDef{typ: "object", enabled: true}
	if t, ok := def["type"]; ok {
		if fd.typ, ok = t.(string); !ok {
			return nil, mapperErr("No type specified for field [%s]", name)
		}
	}
	if _, leaf := leafTypes[fd.typ]; !leaf && !fd.isObject() {
		return nil, mapperErr("No handler for type [%s] declared on field [%s]", fd.typ, name)
	}
	props, hasProps := def["properties"].(map[string]any)
	if hasProps && !fd.isObject() {
		return nil, mapperErr("unknown parameter [properties] on mapper [%s] of type [%s]", name, fd.typ)
	}
	for k, v := range def {
		switch k {
		case "enabled":
			fd.enabled = fmt.Sprint(v) != "false"
		case "dynamic":
			if fd.dynamic = dynamicValue(v); fd.dynamic == "" {
				return nil, mapperErr("Could not convert [dynamic] to boolean")
			}
		case "index":
			fd.noIndex = fmt.Sprint(v) == "false"
		case "ignore_above":
			n, err := strconv.Atoi(fmt.Sprint(v))
			if err != nil || n < 0 {
				return nil, mapperErr("Failed to parse mapping: [ignore_above] must be a positive integer, got [%v]", v)
			}
			fd.ignoreAbove = n
		case "format":
			for _, f := range strings.Split(fmt.Sprint(v), "||") {
				switch f {
				case "strict_date_optional_time", "date_optional_time", "strict_date_optional_time_nanos", "strict_date_time", "date_time", "epoch_millis", "iso8601":
				default:
					fd.anyDate = true
				}
			}
		}
	}
	plain := true // no parameter but type and properties
	for k := range def {
		plain = plain && (k == "type" || k == "properties")
	}
	if prev := get(path); fd.isObject() && prev != nil && prev.isObject() && plain {
		fd = prev // an object without parameters adds to the one mapped
	} else {
		if !fd.isObject() {
			fd.id = ft.id(path)
		}
		put(path, fd)
	}
	if hasProps {
		if e := m.parseProperties(ft, path, props, get, put); e != nil {
			return nil, e
		}
	}
	return fd, nil
}

func parseDynamicTemplates(v any) ([]dynTemplate, *esError) {
	list, ok := v.([]any)
	if !ok {
		return nil, mapperErr("Dynamic template syntax error. An array of named objects is expected.")
	}
	var out []dynTemplate
	for _, e := range list {
		named, ok := e.(map[string]any)
		if !ok || len(named) != 1 {
			return nil, mapperErr("A dynamic template must be defined with a name")
		}
		for name, body := range named {
			b, ok := body.(map[string]any)
			if !ok {
				return nil, mapperErr("A dynamic template must be defined with a name")
			}
			var t dynTemplate
			for k, v := range b {
				var list *[]string
				switch k {
				case "match_mapping_type":
					list = &t.matchType
				case "match":
					list = &t.match
				case "unmatch":
					list = &t.unmatch
				case "path_match":
					list = &t.pathMatch
				case "path_unmatch":
					list = &t.pathUnmatch
				case "mapping":
					if t.def, ok = v.(map[string]any); !ok {
						return nil, mapperErr("dynamic template [%s] has invalid content", name)
					}
					continue
				default:
					return nil, mapperErr("Illegal dynamic template parameter: [%s]", k)
				}
				switch x := v.(type) {
				case string:
					*list = []string{x}
				case []any:
					for _, s := range x {
						*list = append(*list, fmt.Sprint(s))
					}
				}
			}
			if t.def == nil {
				return nil, mapperErr("dynamic template [%s] has invalid content", name)
			}
			out = append(out, t)
		}
	}
	return out, nil
}

// matches reports whether the template maps a new field of this path,
// name and JSON type.
func (t *dynTemplate) matches(path, name, jsonType string) bool {
	any := func(pats []string, s string) bool {
		for _, p := range pats {
			if glob(p, s, false) {
				return true
			}
		}
		return false
	}
	return (len(t.matchType) == 0 || any(t.matchType, jsonType) || jsonType == "date" && any(t.matchType, "string")) &&
		(len(t.match) == 0 || any(t.match, name)) && !any(t.unmatch, name) &&
		(len(t.pathMatch) == 0 || any(t.pathMatch, path)) && !any(t.pathUnmatch, path)
}

func joinPath(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// describe renders the mapping as GET /{index} shows it.
func (m *mapping) describe() map[string]any {
	props := map[string]any{}
	for _, p := range sortedKeys(m.fields) {
		fd := m.fields[p]
		parent := props
		parts := strings.Split(p, ".")
		for _, part := range parts[:len(parts)-1] {
			obj, _ := parent[part].(map[string]any)
			if obj == nil {
				obj = map[string]any{}
				parent[part] = obj
			}
			if obj["properties"] == nil {
				obj["properties"] = map[string]any{}
			}
			parent = obj["properties"].(map[string]any)
		}
		def, _ := parent[parts[len(parts)-1]].(map[string]any)
		if def == nil {
			def = map[string]any{}
			parent[parts[len(parts)-1]] = def
		}
		if fd.typ != "object" {
			def["type"] = fd.typ
		}
		if fd.ignoreAbove > 0 {
			def["ignore_above"] = fd.ignoreAbove
		}
		if !fd.enabled {
			def["enabled"] = false
		}
	}
	out := map[string]any{}
	if len(props) > 0 {
		out["properties"] = props
	}
	if m.dynamic != "true" {
		out["dynamic"] = m.dynamic
	}
	return out
}

// decodeJSON decodes JSON with numbers as json.Number.
func decodeJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}
