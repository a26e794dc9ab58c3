package escompat

import (
	"encoding/json"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Mapping is the field mapping of one index, enforced the way an
// Elasticsearch 8 shard enforces it: every value of a document must parse as
// its field's type (with Elasticsearch's coercions), objects must stay
// objects, and fields not yet mapped are mapped dynamically from the JSON
// type and the dynamic templates, within the total fields limit.
//
// Checking a document is split in two so a failed document never changes the
// mapping: Check validates the whole document and returns the fields it would
// add; Apply adds them. A Mapping is not safe for concurrent use: callers
// serialise Check+Apply with every other use, as a shard does.
//
// Supported: properties (nested "properties", dotted names, multi-fields in
// "fields", enabled, dynamic, coerce, ignore_malformed, format),
// dynamic_templates (match_mapping_type, unmatch_mapping_type, match,
// unmatch, path_match, path_unmatch, match_pattern "regex", {name} and
// {dynamic_type}), dynamic (true, false, strict, runtime), date_detection,
// numeric_detection, and the settings index.mapping.total_fields.limit,
// index.mapping.total_fields.ignore_dynamic_beyond_limit and
// index.mapping.depth.limit. Value checks cover the keyword, text, numeric,
// boolean, date, ip, object and nested types; values of other types (e.g.
// geo_point, flattened) are accepted as they are.
//
// Unlike Elasticsearch, which maps a new string field as text with a keyword
// sub-field, Mapping maps it as keyword.
type Mapping struct {
	fields           map[string]*fieldDef // by full dotted path, objects included
	dynamic          string               // root: "true", "false", "strict" or "runtime"
	dateDetection    bool
	numericDetection bool
	templates        []*dynamicTemplate
	templatesRaw     *node // dynamic_templates as given, for GET _mapping
	totalLimit       int
	ignoreBeyond     bool
	depthLimit       int
}

// fieldDef is the mapping of one field or object.
type fieldDef struct {
	typ             string
	enabled         bool
	dynamic         string // objects: "" (inherit), "true", "false", "strict", "runtime"
	coerce          bool
	ignoreMalformed bool
	runtime         bool // a runtime field: not indexed, not checked
	noIndex         bool // "index": false
	ignoreAbove     int  // "ignore_above", 0 when unset
	format          string
	dates           dateFormats
	multi           []string // paths of multi-fields ("fields")
	multiOf         string   // for a multi-field: the path of its parent
	params          obj      // the definition as given, less properties and fields
}

func (f *fieldDef) isObject() bool { return f.typ == "object" || f.typ == "nested" }

// knownTypes are the field types Elasticsearch 8 accepts in a mapping.
var knownTypes = map[string]bool{
	"binary": true, "boolean": true, "keyword": true, "constant_keyword": true, "wildcard": true,
	"long": true, "integer": true, "short": true, "byte": true, "double": true, "float": true,
	"half_float": true, "scaled_float": true, "unsigned_long": true, "date": true, "date_nanos": true,
	"alias": true, "object": true, "flattened": true, "nested": true, "join": true, "passthrough": true,
	"integer_range": true, "float_range": true, "long_range": true, "double_range": true,
	"date_range": true, "ip_range": true, "ip": true, "version": true, "murmur3": true,
	"aggregate_metric_double": true, "histogram": true, "text": true, "match_only_text": true,
	"annotated_text": true, "completion": true, "search_as_you_type": true, "semantic_text": true,
	"token_count": true, "dense_vector": true, "sparse_vector": true, "rank_feature": true,
	"rank_features": true, "geo_point": true, "geo_shape": true, "point": true, "shape": true,
	"percolator": true, "counted_keyword": true,
}

var stringTypes = map[string]bool{
	"keyword": true, "constant_keyword": true, "wildcard": true, "text": true, "match_only_text": true,
	"search_as_you_type": true, "version": true, "counted_keyword": true, "annotated_text": true,
}

var integerTypes = map[string]bool{"long": true, "integer": true, "short": true, "byte": true, "unsigned_long": true}

var floatTypes = map[string]bool{"double": true, "float": true, "half_float": true, "scaled_float": true}

// metadataFields may not appear at the root of a document.
var metadataFields = map[string]bool{
	"_id": true, "_index": true, "_routing": true, "_source": true, "_version": true, "_seq_no": true,
	"_primary_term": true, "_ignored": true, "_field_names": true, "_data_stream_timestamp": true,
	"_tier": true, "_nested_path": true, "_feature": true, "_tsid": true, "_ts_routing_hash": true,
	"_ignored_source": true,
}

var rootMappingKeys = map[string]bool{
	"properties": true, "dynamic_templates": true, "dynamic": true, "date_detection": true,
	"numeric_detection": true, "dynamic_date_formats": true, "_source": true, "_meta": true,
	"_routing": true, "runtime": true, "_data_stream_timestamp": true, "subobjects": true,
	"enabled": true, "_field_names": true, "_doc_count": true,
}

func mapperParsing(format string, args ...any) *Error {
	return NewError(http.StatusBadRequest, "mapper_parsing_exception", format, args...)
}

// NewMapping builds the mapping of a new index from its settings and one or
// more "mappings" objects (e.g. a template's, then the create-index
// request's); later mappings add to and override earlier ones. Any of them
// may be nil. It fails with mapper_parsing_exception for definitions
// Elasticsearch would refuse (unknown types, malformed parameters) and with
// illegal_argument_exception when the fields exceed the total fields limit.
func NewMapping(settings json.RawMessage, mappings ...json.RawMessage) (*Mapping, *Error) {
	m := &Mapping{
		fields:        make(map[string]*fieldDef),
		dynamic:       "true",
		dateDetection: true,
		totalLimit:    1000,
		depthLimit:    20,
	}
	s := FlattenSettings(settings)
	for key, dst := range map[string]*int{"mapping.total_fields.limit": &m.totalLimit, "mapping.depth.limit": &m.depthLimit} {
		if v, ok := s[key]; ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return nil, IllegalArgument("Failed to parse value [%s] for setting [index.%s] must be >= 0", v, key)
			}
			*dst = n
		}
	}
	if v, ok := s["mapping.total_fields.ignore_dynamic_beyond_limit"]; ok {
		m.ignoreBeyond = v == "true"
	}
	for _, raw := range mappings {
		if len(raw) == 0 {
			continue
		}
		doc, perr := ParseDocument(raw)
		if perr != nil {
			return nil, mapperParsing("Failed to parse mapping: %s", perr.Reason)
		}
		if err := m.merge(doc.root); err != nil {
			return nil, err
		}
	}
	if len(m.fields) > m.totalLimit {
		return nil, IllegalArgument("Limit of total fields [%d] has been exceeded", m.totalLimit)
	}
	return m, nil
}

func (m *Mapping) merge(root *node) *Error {
	if len(root.keys) == 1 && root.keys[0] == "_doc" && root.vals[0].kind == kindObject {
		root = root.vals[0]
	}
	var unsupported []string
	for i, k := range root.keys {
		v := root.vals[i]
		if !rootMappingKeys[k] {
			unsupported = append(unsupported, k+" : "+preview(v))
			continue
		}
		switch k {
		case "properties":
			if v.kind != kindObject {
				return mapperParsing("Expected map for property [properties] on field [_doc] but got a %s", javaClass(v))
			}
			put := func(path string, fd *fieldDef) { m.fields[path] = fd }
			if err := m.parseProperties("", v, m.lookupFn(nil), put); err != nil {
				return err
			}
		case "dynamic":
			d, ok := parseDynamic(v)
			if !ok {
				return mapperParsing("Could not convert [dynamic] to boolean")
			}
			m.dynamic = d
		case "date_detection":
			m.dateDetection = scalarText(v) != "false"
		case "numeric_detection":
			m.numericDetection = scalarText(v) == "true"
		case "dynamic_templates":
			ts, err := parseDynamicTemplates(v)
			if err != nil {
				return err
			}
			m.templates, m.templatesRaw = ts, v
		}
	}
	if len(unsupported) > 0 {
		return mapperParsing("Root mapping definition has unsupported parameters:  [%s]", strings.Join(unsupported, "] ["))
	}
	return nil
}

func javaClass(n *node) string {
	switch n.kind {
	case kindString:
		return "class java.lang.String"
	case kindNumber:
		return "class java.lang.Integer"
	case kindBool:
		return "class java.lang.Boolean"
	case kindArray:
		return "class java.util.ArrayList"
	}
	return "class java.lang.Object"
}

func parseDynamic(v *node) (string, bool) {
	switch s := scalarText(v); s {
	case "true", "false", "strict", "runtime":
		return s, true
	}
	return "", false
}

// lookupFn returns a field lookup over the mapping and, if non-nil, the
// pending fields of a check.
func (m *Mapping) lookupFn(pending map[string]*fieldDef) func(string) *fieldDef {
	return func(path string) *fieldDef {
		if fd := m.fields[path]; fd != nil {
			return fd
		}
		return pending[path]
	}
}

// parseProperties reads a "properties" object under prefix.
func (m *Mapping) parseProperties(prefix string, props *node, lookup func(string) *fieldDef, put func(string, *fieldDef)) *Error {
	for i, name := range props.keys {
		def := props.vals[i]
		if def.kind != kindObject {
			return mapperParsing("Expected map for property [fields] on field [%s] but got a %s", name, javaClass(def))
		}
		parts := strings.Split(name, ".")
		for _, p := range parts {
			if strings.TrimSpace(p) == "" {
				return IllegalArgument("field name cannot contain only dots")
			}
		}
		path := prefix
		for _, p := range parts[:len(parts)-1] {
			path = joinPath(path, p)
			if fd := lookup(path); fd == nil || !fd.isObject() {
				put(path, &fieldDef{typ: "object", enabled: true, coerce: true})
			}
		}
		if _, err := m.parseField(joinPath(path, parts[len(parts)-1]), parts[len(parts)-1], def, lookup, put); err != nil {
			return err
		}
	}
	return nil
}

// parseField reads the definition of one field at path and records it, and
// the fields below it, with put.
func (m *Mapping) parseField(path, name string, def *node, lookup func(string) *fieldDef, put func(string, *fieldDef)) (*fieldDef, *Error) {
	fd := &fieldDef{typ: "object", enabled: true, coerce: true}
	var props, fields *node
	for i, k := range def.keys {
		v := def.vals[i]
		switch k {
		case "properties":
			props = v
			continue
		case "fields":
			fields = v
			continue
		case "type":
			if v.kind != kindString {
				return nil, mapperParsing("No type specified for field [%s]", name)
			}
			fd.typ = v.text
		case "enabled":
			fd.enabled = scalarText(v) != "false"
		case "dynamic":
			d, ok := parseDynamic(v)
			if !ok {
				return nil, mapperParsing("Could not convert [dynamic] to boolean")
			}
			fd.dynamic = d
		case "coerce":
			fd.coerce = scalarText(v) != "false"
		case "ignore_malformed":
			fd.ignoreMalformed = scalarText(v) == "true"
		case "index":
			fd.noIndex = scalarText(v) == "false"
		case "ignore_above":
			n, err := strconv.Atoi(scalarText(v))
			if err == nil && n < 0 {
				return nil, mapperParsing("Failed to parse mapping: [ignore_above] must be positive, got [%d]", n)
			}
			fd.ignoreAbove = n
		}
		fd.params = append(fd.params, kv{k, v})
	}
	if !knownTypes[fd.typ] {
		return nil, mapperParsing("No handler for type [%s] declared on field [%s]", fd.typ, name)
	}
	if fd.typ == "date" || fd.typ == "date_nanos" {
		format := ""
		if f := def.member("format"); f != nil {
			format = scalarText(f)
		}
		fd.dates = parseDateFormats(format)
		fd.format = format
	}
	if props != nil && !fd.isObject() {
		return nil, mapperParsing("unknown parameter [properties] on mapper [%s] of type [%s]", name, fd.typ)
	}
	if fields != nil && fd.isObject() {
		return nil, mapperParsing("unknown parameter [fields] on mapper [%s] of type [%s]", name, fd.typ)
	}
	if prev := lookup(path); prev != nil && prev.isObject() && fd.isObject() && len(fd.params) == 0 {
		fd = prev // an object without parameters adds to the existing one
	} else {
		put(path, fd)
	}
	if props != nil {
		if props.kind != kindObject {
			return nil, mapperParsing("Expected map for property [properties] on field [%s] but got a %s", name, javaClass(props))
		}
		if err := m.parseProperties(path, props, lookup, put); err != nil {
			return nil, err
		}
	}
	if fields != nil {
		if fields.kind != kindObject {
			return nil, mapperParsing("Expected map for property [fields] on field [%s] but got a %s", name, javaClass(fields))
		}
		for i, sub := range fields.keys {
			sdef := fields.vals[i]
			if sdef.kind != kindObject {
				return nil, mapperParsing("Expected map for property [fields] on field [%s] but got a %s", sub, javaClass(sdef))
			}
			if sdef.member("properties") != nil || sdef.member("type") == nil {
				return nil, mapperParsing("No type specified for field [%s]", sub)
			}
			sfd, err := m.parseField(path+"."+sub, sub, sdef, lookup, put)
			if err != nil {
				return nil, err
			}
			if sfd.isObject() {
				return nil, mapperParsing("Type [%s] cannot be used in multi field", sfd.typ)
			}
			sfd.multiOf = path
			fd.multi = append(fd.multi, path+"."+sub)
		}
	}
	return fd, nil
}

func joinPath(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// dynamicTemplate is one entry of dynamic_templates.
type dynamicTemplate struct {
	name                                   string
	matchTypes, unmatchTypes               []string
	match, unmatch, pathMatch, pathUnmatch []string
	regex                                  bool
	res                                    map[string]*regexp.Regexp
	mapping                                *node
	runtime                                bool
}

func parseDynamicTemplates(v *node) ([]*dynamicTemplate, *Error) {
	if v.kind != kindArray {
		return nil, mapperParsing("Dynamic template syntax error. An array of named objects is expected.")
	}
	var out []*dynamicTemplate
	for _, e := range v.vals {
		if e.kind != kindObject || len(e.keys) != 1 || e.vals[0].kind != kindObject {
			return nil, mapperParsing("A dynamic template must be defined with a name")
		}
		t := &dynamicTemplate{name: e.keys[0], res: make(map[string]*regexp.Regexp)}
		body := e.vals[0]
		for i, k := range body.keys {
			val := body.vals[i]
			list, ok := stringList(val)
			switch k {
			case "match_mapping_type":
				t.matchTypes = list
			case "unmatch_mapping_type":
				t.unmatchTypes = list
			case "match":
				t.match = list
			case "unmatch":
				t.unmatch = list
			case "path_match":
				t.pathMatch = list
			case "path_unmatch":
				t.pathUnmatch = list
			case "match_pattern":
				t.regex = scalarText(val) == "regex"
				ok = true
			case "mapping", "runtime":
				if val.kind != kindObject {
					return nil, mapperParsing("dynamic template [%s] has invalid content [%s]", t.name, preview(body))
				}
				t.mapping, t.runtime, ok = val, k == "runtime", true
			default:
				return nil, mapperParsing("Illegal dynamic template parameter: [%s]", k)
			}
			if !ok {
				return nil, mapperParsing("dynamic template [%s] has invalid content [%s]", t.name, preview(body))
			}
		}
		if t.mapping == nil {
			return nil, mapperParsing("template [%s] must have either mapping or runtime set", t.name)
		}
		for _, mt := range append(append([]string(nil), t.matchTypes...), t.unmatchTypes...) {
			switch mt {
			case "*", "string", "long", "double", "boolean", "date", "object", "binary":
			default:
				return nil, mapperParsing("No field type matched on [%s], possible values are [object, string, long, double, boolean, date, binary]", mt)
			}
		}
		if t.regex {
			for _, list := range [][]string{t.match, t.unmatch, t.pathMatch, t.pathUnmatch} {
				for _, p := range list {
					re, err := regexp.Compile(p)
					if err != nil {
						return nil, mapperParsing("dynamic template [%s] has an invalid regex [%s]", t.name, p)
					}
					t.res[p] = re
				}
			}
		}
		out = append(out, t)
	}
	return out, nil
}

func (t *dynamicTemplate) patternMatch(patterns []string, s string) bool {
	for _, p := range patterns {
		if t.regex {
			if t.res[p].MatchString(s) {
				return true
			}
		} else if GlobMatch(p, s) {
			return true
		}
	}
	return false
}

func (t *dynamicTemplate) matches(path, name, jsonType string) bool {
	if t.matchTypes != nil && !contains(t.matchTypes, "*") && !contains(t.matchTypes, jsonType) {
		return false
	}
	if t.unmatchTypes != nil && (contains(t.unmatchTypes, "*") || contains(t.unmatchTypes, jsonType)) {
		return false
	}
	if t.match != nil && !t.patternMatch(t.match, name) {
		return false
	}
	if t.unmatch != nil && t.patternMatch(t.unmatch, name) {
		return false
	}
	if t.pathMatch != nil && !t.patternMatch(t.pathMatch, path) {
		return false
	}
	if t.pathUnmatch != nil && t.patternMatch(t.pathUnmatch, path) {
		return false
	}
	if jsonType == "object" {
		if t.runtime {
			return false
		}
		// A template that names no mapping type does not turn objects into
		// leaf fields.
		if t.matchTypes == nil || contains(t.matchTypes, "*") {
			if typ := t.mapping.member("type"); typ != nil && typ.kind == kindString &&
				!strings.Contains(typ.text, "{") && typ.text != "object" && typ.text != "nested" && typ.text != "flattened" {
				return false
			}
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// esDynamicType is what {dynamic_type} stands for, per JSON type.
var esDynamicType = map[string]string{
	"string": "text", "long": "long", "double": "float", "boolean": "boolean",
	"date": "date", "object": "object", "binary": "binary",
}

// defaultDynamicType is the type a new field gets without a template.
var defaultDynamicType = map[string]string{
	"string": "keyword", "long": "long", "double": "float", "boolean": "boolean",
	"date": "date", "object": "object", "binary": "binary",
}

// substitute copies a template mapping with {name} and {dynamic_type}
// replaced in every string.
func substitute(n *node, name, dynType string) *node {
	c := *n
	switch n.kind {
	case kindString:
		c.text = strings.ReplaceAll(strings.ReplaceAll(n.text, "{name}", name), "{dynamic_type}", dynType)
	case kindObject, kindArray:
		c.vals = make([]*node, len(n.vals))
		for i, v := range n.vals {
			c.vals[i] = substitute(v, name, dynType)
		}
	}
	return &c
}

// Update is the set of fields a checked document adds to a Mapping.
type Update struct {
	paths []string
	defs  map[string]*fieldDef
}

// Len is the number of fields the update adds (objects and multi-fields
// included).
func (u *Update) Len() int {
	if u == nil {
		return 0
	}
	return len(u.paths)
}

// Fields returns the added fields: path -> type.
func (u *Update) Fields() map[string]string {
	out := make(map[string]string)
	if u == nil {
		return out
	}
	for _, p := range u.paths {
		out[p] = u.defs[p].typ
	}
	return out
}

// Check validates doc, whose _id is id (used in error reasons), against the
// mapping without changing it. It returns the fields the document adds, for
// Apply, or the *Error Elasticsearch would answer the document with:
// document_parsing_exception (wrong value, object/concrete value mismatch,
// malformed field name, metadata field in the document),
// strict_dynamic_mapping_exception, or illegal_argument_exception (total
// fields or depth limit).
func (m *Mapping) Check(id string, doc *Document) (*Update, *Error) {
	c := &checker{m: m, doc: doc, id: id, added: make(map[string]*fieldDef)}
	c.lookup = m.lookupFn(c.added)
	if err := c.object("", doc.root, m.dynamic); err != nil {
		return nil, err
	}
	for _, p := range c.order {
		if fd := c.added[p]; fd.isObject() && strings.Count(p, ".")+2 > m.depthLimit {
			return nil, IllegalArgument("Limit of mapping depth [%d] has been exceeded due to object field [%s]", m.depthLimit, p)
		}
	}
	if n := len(m.fields) + len(c.order); n > m.totalLimit {
		if !m.ignoreBeyond {
			return nil, IllegalArgument("Limit of total fields [%d] has been exceeded while adding new fields [%d]", m.totalLimit, len(c.order))
		}
		keep := max(m.totalLimit-len(m.fields), 0)
		c.order = c.order[:keep]
	}
	return &Update{paths: c.order, defs: c.added}, nil
}

// Apply adds the fields of an update returned by Check on this mapping.
func (m *Mapping) Apply(u *Update) {
	if u == nil {
		return
	}
	for _, p := range u.paths {
		m.fields[p] = u.defs[p]
	}
}

// Fields returns every mapped field and object: path -> type ("keyword",
// "long", "object", ...). Multi-fields appear under their full path, e.g.
// "message.raw".
func (m *Mapping) Fields() map[string]string {
	out := make(map[string]string, len(m.fields))
	for p, fd := range m.fields {
		out[p] = fd.typ
	}
	return out
}

// Len is the number of fields counted against the total fields limit.
func (m *Mapping) Len() int { return len(m.fields) }

// FieldInfo says how one mapped field or object is indexed.
type FieldInfo struct {
	Type        string // "keyword", "text", "long", "date", "object", ...
	IgnoreAbove int    // keyword: longer strings are kept in _source only; 0 when unset
	Format      string // date: the format as mapped, "" for the default
	Index       bool   // false for "index": false and for runtime fields
	Enabled     bool   // false for "enabled": false: nothing at or below the path is indexed
	MultiOf     string // for a multi-field (e.g. "message.raw"): its parent's path
}

func (fd *fieldDef) info() FieldInfo {
	return FieldInfo{
		Type: fd.typ, IgnoreAbove: fd.ignoreAbove, Format: fd.format,
		Index: !fd.noIndex && !fd.runtime, Enabled: fd.enabled, MultiOf: fd.multiOf,
	}
}

// Field returns how the field or object at path (dotted, multi-fields by
// their full path) is mapped.
func (m *Mapping) Field(path string) (FieldInfo, bool) {
	fd := m.fields[path]
	if fd == nil {
		return FieldInfo{}, false
	}
	return fd.info(), true
}

// FieldInfos returns every mapped field and object by path, in a new map
// the caller owns: a snapshot that stays valid while the mapping changes.
func (m *Mapping) FieldInfos() map[string]FieldInfo {
	out := make(map[string]FieldInfo, len(m.fields))
	for p, fd := range m.fields {
		out[p] = fd.info()
	}
	return out
}

// MarshalJSON renders the mapping as GET /{index}/_mapping shows it.
func (m *Mapping) MarshalJSON() ([]byte, error) { return Encode(m.toJSON(), nil), nil }

func (m *Mapping) toJSON() obj {
	var out obj
	if m.dynamic != "true" {
		out = append(out, kv{"dynamic", m.dynamic})
	}
	if m.templatesRaw != nil {
		out = append(out, kv{"dynamic_templates", m.templatesRaw})
	}
	if !m.dateDetection {
		out = append(out, kv{"date_detection", false})
	}
	if m.numericDetection {
		out = append(out, kv{"numeric_detection", true})
	}
	if props := m.propertiesJSON(""); len(props) > 0 {
		out = append(out, kv{"properties", props})
	}
	return out
}

func (m *Mapping) propertiesJSON(prefix string) obj {
	var names []string
	for p, fd := range m.fields {
		if fd.multiOf != "" {
			continue
		}
		rest, ok := strings.CutPrefix(p, prefix)
		if prefix != "" && !ok {
			continue
		}
		if !strings.Contains(rest, ".") {
			names = append(names, rest)
		}
	}
	sort.Strings(names)
	var out obj
	for _, name := range names {
		path := prefix + name
		out = append(out, kv{name, m.fieldJSON(path, m.fields[path])})
	}
	return out
}

func (m *Mapping) fieldJSON(path string, fd *fieldDef) obj {
	var o obj
	if fd.params != nil {
		o = append(o, fd.params...)
	} else if fd.typ != "object" {
		o = obj{{"type", fd.typ}}
	}
	if len(fd.multi) > 0 {
		var fields obj
		for _, sp := range fd.multi {
			if sfd := m.fields[sp]; sfd != nil {
				fields = append(fields, kv{strings.TrimPrefix(sp, path+"."), m.fieldJSON(sp, sfd)})
			}
		}
		o = append(o, kv{"fields", fields})
	}
	if fd.isObject() {
		if props := m.propertiesJSON(path + "."); len(props) > 0 {
			o = append(o, kv{"properties", props})
		}
	}
	if o == nil {
		o = obj{}
	}
	return o
}

// checker walks one document for Mapping.Check.
type checker struct {
	m      *Mapping
	doc    *Document
	id     string
	added  map[string]*fieldDef
	order  []string
	lookup func(string) *fieldDef
}

func (c *checker) put(path string, fd *fieldDef) {
	if _, ok := c.added[path]; !ok {
		c.order = append(c.order, path)
	}
	c.added[path] = fd
}

func (c *checker) loc(off int) location { return locate(c.doc.src, off) }

// object checks the members of an object value at path (root: "").
func (c *checker) object(path string, n *node, dyn string) *Error {
	for i, key := range n.keys {
		v := n.vals[i]
		keyOff := n.koff[i]
		parts, err := c.splitKey(path, key, keyOff)
		if err != nil {
			return err
		}
		if path == "" && metadataFields[parts[0]] && len(parts) == 1 {
			return documentParsing(c.loc(keyOff), "Field [%s] is a metadata field and cannot be added inside a document. Use the index API request parameters.", key)
		}
		p, d := path, dyn
		skip := false
		for j, part := range parts[:len(parts)-1] {
			sub := joinPath(p, part)
			fd := c.lookup(sub)
			if fd == nil {
				switch d {
				case "strict":
					return c.strict(p, part, keyOff)
				case "false":
					skip = true
				case "runtime":
					p = sub
					continue
				default:
					var derr *Error
					if fd, derr = c.dynamicField(sub, part, "object"); derr != nil {
						return derr
					}
					if fd == nil {
						skip = true
					}
				}
				if skip {
					break
				}
			}
			if !fd.enabled || fd.runtime || (!fd.isObject() && !checkedType(fd.typ)) {
				skip = true
				break
			}
			if !fd.isObject() {
				// The dotted key makes the value an object below a leaf field.
				return c.leafGotObject(sub, fd, nestPreview(parts[j+1:], v), keyOff, v)
			}
			p = sub
			if fd.dynamic != "" {
				d = fd.dynamic
			}
		}
		if skip {
			continue
		}
		if err := c.value(p, parts[len(parts)-1], v, d); err != nil {
			return err
		}
	}
	return nil
}

// nestPreview builds {a={b=v}} for the remaining dotted parts a.b.
func nestPreview(parts []string, v *node) *node {
	n := v
	for k := len(parts) - 1; k >= 0; k-- {
		n = &node{kind: kindObject, off: v.off, end: v.end, keys: []string{parts[k]}, vals: []*node{n}}
	}
	return n
}

// splitKey expands a dotted key into object path parts as Elasticsearch's
// dot expansion does, refusing the names it refuses.
func (c *checker) splitKey(path, key string, off int) ([]string, *Error) {
	if key == "" {
		return nil, documentParsing(c.loc(off), "failed to parse: field name cannot be an empty string")
	}
	if !strings.Contains(key, ".") {
		if strings.TrimSpace(key) == "" {
			return nil, documentParsing(c.loc(off), "Field name cannot contain only whitespace: [%s]", joinPath(path, key))
		}
		return []string{key}, nil
	}
	parts := strings.Split(key, ".")
	for len(parts) > 0 && parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	if len(parts) == 0 {
		return nil, documentParsing(c.loc(off), "failed to parse: field name cannot contain only dots")
	}
	for _, p := range parts {
		if p == "" {
			return nil, documentParsing(c.loc(off), "failed to parse: field name cannot contain only whitespace: ['%s']", key)
		}
		if strings.TrimSpace(p) == "" {
			return nil, documentParsing(c.loc(off), "failed to parse: field name starting or ending with a [.] makes object resolution ambiguous: [%s]", key)
		}
	}
	return parts, nil
}

func (c *checker) strict(parent, name string, off int) *Error {
	within := parent
	if within == "" {
		within = "_doc"
	}
	e := documentParsing(c.loc(off), "mapping set to strict, dynamic introduction of [%s] within [%s] is not allowed", name, within)
	e.Type = "strict_dynamic_mapping_exception"
	return e
}

// checkedType reports whether values of typ are checked (else anything goes).
func checkedType(typ string) bool {
	return stringTypes[typ] || integerTypes[typ] || floatTypes[typ] ||
		typ == "boolean" || typ == "date" || typ == "date_nanos" || typ == "ip"
}

// jsonType classifies a value for dynamic mapping and match_mapping_type.
func (c *checker) jsonType(v *node) string {
	switch v.kind {
	case kindBool:
		return "boolean"
	case kindNumber:
		if isIntegerLiteral(v.text) {
			return "long"
		}
		return "double"
	case kindObject:
		return "object"
	case kindString:
		if c.m.dateDetection && isDynamicDate(v.text) {
			return "date"
		}
		if c.m.numericDetection {
			if _, err := strconv.ParseInt(v.text, 10, 64); err == nil {
				return "long"
			}
			if _, ok := parseDecimal(v.text); ok {
				return "double"
			}
		}
	}
	return "string"
}

// dynamicField maps a new field at path from the first matching dynamic
// template, or the default for its JSON type. It returns nil when a runtime
// template leaves the value unindexed.
func (c *checker) dynamicField(path, name, jsonType string) (*fieldDef, *Error) {
	for _, t := range c.m.templates {
		if !t.matches(path, name, jsonType) {
			continue
		}
		def := substitute(t.mapping, name, esDynamicType[jsonType])
		if def.member("type") == nil {
			def.keys = append([]string{"type"}, def.keys...)
			def.vals = append([]*node{{kind: kindString, text: defaultDynamicType[jsonType]}}, def.vals...)
			def.koff = append([]int{0}, def.koff...)
		}
		if t.runtime {
			typ := scalarText(def.member("type"))
			fd := &fieldDef{typ: typ, enabled: true, runtime: true, params: obj{{"type", typ}}}
			c.put(path, fd)
			return fd, nil
		}
		return c.m.parseField(path, name, def, c.lookup, c.put)
	}
	fd := &fieldDef{typ: defaultDynamicType[jsonType], enabled: true, coerce: true}
	if jsonType == "date" {
		fd.dates = parseDateFormats("")
	}
	c.put(path, fd)
	return fd, nil
}

// value checks the value of the field name under parent.
func (c *checker) value(parent, name string, v *node, dyn string) *Error {
	path := joinPath(parent, name)
	switch v.kind {
	case kindNull:
		return nil
	case kindArray:
		for _, e := range v.vals {
			if err := c.value(parent, name, e, dyn); err != nil {
				return err
			}
		}
		return nil
	}
	fd := c.lookup(path)
	if fd == nil {
		switch dyn {
		case "strict":
			return c.strict(parent, name, v.off)
		case "false":
			return nil
		case "runtime":
			if v.kind == kindObject {
				return c.object(path, v, dyn)
			}
			typ := map[string]string{"string": "keyword", "long": "long", "double": "double", "boolean": "boolean", "date": "date"}[c.jsonType(v)]
			c.put(path, &fieldDef{typ: typ, enabled: true, runtime: true, params: obj{{"type", typ}}})
			return nil
		}
		var err *Error
		if fd, err = c.dynamicField(path, name, c.jsonType(v)); err != nil || fd == nil {
			return err
		}
	}
	return c.check(path, name, fd, v, dyn)
}

// check checks a non-array value against the mapping of its field.
func (c *checker) check(path, name string, fd *fieldDef, v *node, dyn string) *Error {
	if !fd.enabled || fd.runtime {
		return nil
	}
	if fd.isObject() {
		if v.kind != kindObject {
			return documentParsing(c.loc(v.off), "object mapping for [%s] tried to parse field [%s] as object, but found a concrete value", path, name)
		}
		if fd.dynamic != "" {
			dyn = fd.dynamic
		}
		return c.object(path, v, dyn)
	}
	if !checkedType(fd.typ) {
		return nil
	}
	if v.kind == kindObject {
		return c.leafGotObject(path, fd, v, v.off, v)
	}
	if err := c.scalar(path, fd, v); err != nil {
		return err
	}
	for _, sp := range fd.multi {
		if sfd := c.lookup(sp); sfd != nil && sfd.enabled && checkedType(sfd.typ) {
			if err := c.scalar(sp, sfd, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// leafGotObject is the error for an object given to a leaf field.
func (c *checker) leafGotObject(path string, fd *fieldDef, shown *node, startOff int, v *node) *Error {
	end := v.end
	if v.kind != kindObject && v.kind != kindArray {
		end = v.off
	}
	e := documentParsing(c.loc(end), "failed to parse field [%s] of type [%s] in document with id '%s'. Preview of field's value: '%s'",
		path, fd.typ, c.id, preview(shown))
	e.CausedBy = &Error{Type: "illegal_state_exception",
		Reason: "Can't get text on a START_OBJECT at " + strings.Trim(c.loc(startOff).String(), "[]")}
	return e
}

// scalar checks a scalar against a leaf field's type.
func (c *checker) scalar(path string, fd *fieldDef, v *node) *Error {
	var (
		reason string
		ok     = true
	)
	switch {
	case stringTypes[fd.typ]:
	case integerTypes[fd.typ]:
		reason, ok = checkInteger(fd.typ, v, fd.coerce)
	case floatTypes[fd.typ]:
		reason, ok = checkFloat(fd.typ, v, fd.coerce)
	case fd.typ == "boolean":
		reason, ok = checkBoolean(v)
	case fd.typ == "ip":
		reason, ok = checkIP(v)
	case fd.typ == "date" || fd.typ == "date_nanos":
		if !fd.dates.check(v) {
			ok = false
			reason = "failed to parse date field [" + scalarText(v) + "] with format [" + fd.dates.String() + "]"
		}
	}
	if ok || fd.ignoreMalformed {
		return nil
	}
	e := documentParsing(c.loc(v.off), "failed to parse field [%s] of type [%s] in document with id '%s'. Preview of field's value: '%s'",
		path, fd.typ, c.id, preview(v))
	e.CausedBy = &Error{Type: "illegal_argument_exception", Reason: reason}
	if strings.HasPrefix(reason, "Current token") {
		e.CausedBy.Type = "x_content_parse_exception"
		e.CausedBy.Reason = c.loc(v.off).String() + " " + reason
	}
	return e
}
