package eslite

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/sluicelogs/sluice/internal/jsonstr"
)

// walker reads one document source and checks it against an index's
// mapping as it goes, as an Elasticsearch shard does: the first problem in
// document order is the error. It collects the document's searchable
// values, and the fields it adds to the mapping, which are applied only
// once the whole document is accepted.
//
// Strings are not copied: values alias src, which is never modified.
type walker struct {
	ft    *fieldTable
	m     *mapping
	src   []byte
	pos   int
	depth int
	id    string
	added map[string]*fieldDef
	order []string
	vals  []val
	keys  []string // the keys of the objects being read, for duplicates
	// intern holds an index's keyword values: a value that repeats from
	// document to document is one string, so that scans compare in cache.
	intern map[string]string
}

// scalar is a JSON string, number or boolean as written.
type scalar struct {
	kind byte // '"', '0' or 't'
	text string
}

const maxDepth = 200

// walkDocument checks src, the source of document id, against m.
func walkDocument(ft *fieldTable, m *mapping, id string, src []byte, intern map[string]string) (*walker, *esError) {
	w := &walker{ft: ft, m: m, src: src, id: id, vals: make([]val, 0, 24), intern: intern}
	w.ws()
	if w.pos == len(src) {
		return nil, newErr(http.StatusBadRequest, "document_parsing_exception", "failed to parse, document is empty")
	}
	if src[w.pos] != '{' {
		return nil, w.syntax(w.pos, "Malformed content, must start with an object")
	}
	if e := w.object("", m.dynamic); e != nil {
		return nil, e
	}
	if w.ws(); w.pos != len(src) {
		return nil, w.syntax(w.pos, "Malformed content, found extra data after parsing")
	}
	if n := len(m.fields) + len(w.order); n > m.limit && len(w.order) > 0 {
		return nil, illegalArg("Limit of total fields [%d] has been exceeded while adding new fields [%d]", m.limit, len(w.order))
	}
	return w, nil
}

// apply adds the fields the document brought to the mapping.
func (w *walker) apply() {
	for _, p := range w.order {
		w.m.fields[p] = w.added[p]
	}
}

func (w *walker) lookup(path string) *fieldDef {
	if fd := w.m.fields[path]; fd != nil {
		return fd
	}
	return w.added[path]
}

func (w *walker) add(path string, fd *fieldDef) {
	if w.added == nil {
		w.added = map[string]*fieldDef{}
	}
	if _, ok := w.added[path]; !ok {
		w.order = append(w.order, path)
	}
	w.added[path] = fd
}

func (w *walker) ws() {
	for w.pos < len(w.src) {
		switch w.src[w.pos] {
		case ' ', '\t', '\n', '\r':
			w.pos++
		default:
			return
		}
	}
}

func (w *walker) syntax(off int, format string, args ...any) *esError {
	return docErr(w.src, off, "failed to parse: "+format, args...)
}

func (w *walker) expect(c byte, what string) *esError {
	if w.ws(); w.pos >= len(w.src) {
		return w.syntax(w.pos, "Unexpected end-of-input: expected %s", what)
	}
	if w.src[w.pos] != c {
		return w.syntax(w.pos, "Unexpected character (%q): expected %s", w.src[w.pos], what)
	}
	w.pos++
	return nil
}

// object reads the object at w.pos, the value of path (root: "").
func (w *walker) object(path, dyn string) *esError {
	if w.depth++; w.depth > maxDepth {
		return w.syntax(w.pos, "Document nesting depth exceeds the maximum allowed (%d)", maxDepth)
	}
	defer func() { w.depth-- }()
	w.pos++ // '{'
	if w.ws(); w.pos < len(w.src) && w.src[w.pos] == '}' {
		w.pos++
		return nil
	}
	first := len(w.keys)
	defer func() { w.keys = w.keys[:first] }()
	for {
		if w.ws(); w.pos >= len(w.src) || w.src[w.pos] != '"' {
			return w.expect('"', "a double-quote to start a field name")
		}
		keyOff := w.pos
		key, e := w.str()
		if e != nil {
			return e
		}
		if keys := w.keys[first:]; len(keys) < 64 {
			for _, k := range keys {
				if k == key {
					return w.syntax(keyOff, "Duplicate field '%s'", key)
				}
			}
			w.keys = append(w.keys, key)
		}
		if e := w.expect(':', "a colon to separate field name and value"); e != nil {
			return e
		}
		if e := w.member(path, key, keyOff, dyn); e != nil {
			return e
		}
		if w.ws(); w.pos < len(w.src) && w.src[w.pos] == '}' {
			w.pos++
			return nil
		}
		if e := w.expect(',', "a comma to separate Object entries"); e != nil {
			return e
		}
	}
}

// member reads the value of key in the object at parent, expanding a
// dotted key into objects.
func (w *walker) member(parent, key string, keyOff int, dyn string) *esError {
	if key == "" {
		return w.syntax(keyOff, "field name cannot be an empty string")
	}
	if parent == "" && metadataFields[key] {
		return docErr(w.src, keyOff, "Field [%s] is a metadata field and cannot be added inside a document. Use the index API request parameters.", key)
	}
	name := key
	for {
		dot := strings.IndexByte(name, '.')
		if dot < 0 {
			break
		}
		part := name[:dot]
		if part == "" || dot == len(name)-1 {
			return w.syntax(keyOff, "field name starting or ending with a [.] makes object resolution ambiguous: [%s]", key)
		}
		sub := joinPath(parent, part)
		fd := w.lookup(sub)
		if fd == nil {
			switch dyn {
			case "strict":
				return w.strict(parent, part, keyOff)
			case "false", "runtime":
				return w.skip()
			}
			fd = &fieldDef{typ: "object", enabled: true}
			w.add(sub, fd)
		}
		if !fd.isObject() {
			return docErr(w.src, keyOff, "Could not dynamically add mapping for field [%s]. Existing mapping for [%s] must be of type object but found [%s].",
				joinPath(parent, key), sub, fd.typ)
		}
		if !fd.enabled {
			return w.skip()
		}
		if fd.dynamic != "" {
			dyn = fd.dynamic
		}
		parent, name = sub, name[dot+1:]
	}
	return w.value(parent, name, dyn)
}

func (w *walker) strict(parent, name string, off int) *esError {
	if parent == "" {
		parent = "_doc"
	}
	e := docErr(w.src, off, "mapping set to strict, dynamic introduction of [%s] within [%s] is not allowed", name, parent)
	e.Type = "strict_dynamic_mapping_exception"
	return e
}

// value reads the value of the field name of the object at parent.
func (w *walker) value(parent, name, dyn string) *esError {
	if w.ws(); w.pos >= len(w.src) {
		return w.syntax(w.pos, "Unexpected end-of-input: expected a value")
	}
	switch w.src[w.pos] {
	case '[':
		return w.array(func() *esError { return w.value(parent, name, dyn) })
	case 'n':
		return w.literal("null")
	}
	path := joinPath(parent, name)
	start := w.pos
	isObj := w.src[w.pos] == '{'
	var sc scalar
	if !isObj {
		var e *esError
		if sc, e = w.scalar(); e != nil {
			return e
		}
	}
	fd := w.lookup(path)
	if fd == nil {
		switch dyn {
		case "strict":
			return w.strict(parent, name, start)
		case "false", "runtime":
			if isObj {
				return w.skip()
			}
			return nil
		}
		jt := "object"
		if !isObj {
			jt = w.jsonType(sc)
		}
		var e *esError
		if fd, e = w.dynamic(path, jt); e != nil {
			return e
		}
	}
	switch {
	case !fd.enabled:
		if isObj {
			return w.skip()
		}
		return nil
	case fd.isObject() && !isObj:
		return docErr(w.src, start, "object mapping for [%s] tried to parse field [%s] as object, but found a concrete value", path, name)
	case fd.isObject():
		if fd.dynamic != "" {
			dyn = fd.dynamic
		}
		return w.object(path, dyn)
	case isObj:
		if e := w.skip(); e != nil {
			return e
		}
		e := w.fieldErr(w.pos-1, path, fd, string(w.src[start:w.pos]), "illegal_state_exception", "Can't get text on a START_OBJECT")
		return e
	}
	return w.leaf(path, fd, sc, start)
}

// dynamic maps a new field from the first dynamic template that matches,
// or from its JSON type.
func (w *walker) dynamic(path, jsonType string) (*fieldDef, *esError) {
	name := path[strings.LastIndexByte(path, '.')+1:]
	for i := range w.m.templates {
		t := &w.m.templates[i]
		if !t.matches(path, name, jsonType) {
			continue
		}
		def := t.def
		if _, ok := def["type"]; !ok {
			def = map[string]any{"type": defaultDynamic[jsonType]}
			for k, v := range t.def {
				def[k] = v
			}
		}
		return w.m.parseField(w.ft, path, def, w.lookup, w.add)
	}
	fd := &fieldDef{typ: defaultDynamic[jsonType], enabled: true}
	if !fd.isObject() {
		fd.id = w.ft.id(path)
	}
	w.add(path, fd)
	return fd, nil
}

// jsonType is a new value's type for dynamic mapping and
// match_mapping_type.
func (w *walker) jsonType(sc scalar) string {
	switch sc.kind {
	case 't':
		return "boolean"
	case '0':
		if strings.ContainsAny(sc.text, ".eE") {
			return "double"
		}
		return "long"
	}
	if w.m.dateDetection && strings.ContainsAny(sc.text, ":-/") {
		if _, ok := parseDate(sc.text); ok {
			return "date"
		}
	}
	if w.m.numDetection {
		if _, err := strconv.ParseInt(sc.text, 10, 64); err == nil {
			return "long"
		}
		if _, err := strconv.ParseFloat(sc.text, 64); err == nil && isDecimal(sc.text) {
			return "double"
		}
	}
	return "string"
}

// leaf checks a scalar against the type of its field and keeps its value.
func (w *walker) leaf(path string, fd *fieldDef, sc scalar, off int) *esError {
	v := val{f: fd.id, k: leafTypes[fd.typ], s: sc.text}
	bad := func(reason string) *esError {
		return w.fieldErr(off, path, fd, sc.text, "illegal_argument_exception", reason)
	}
	switch v.k {
	case vKeyword, vText:
		if fd.typ == "ip" {
			if _, err := netip.ParseAddr(sc.text); err != nil || sc.kind != '"' {
				return bad("'" + sc.text + "' is not an IP string literal.")
			}
		}
		if fd.ignoreAbove > 0 && utf8.RuneCountInString(sc.text) > fd.ignoreAbove {
			return nil // kept in _source, not indexed
		}
		if v.k == vKeyword && w.intern != nil {
			if s, ok := w.intern[v.s]; ok {
				v.s = s
			} else if len(w.intern) < 1<<16 {
				w.intern[v.s] = v.s
			}
		}
	case vNum:
		if sc.kind == 't' {
			return bad("Current token (VALUE_" + strings.ToUpper(sc.text) + ") not numeric, can not use numeric value accessors")
		}
		f, err := strconv.ParseFloat(sc.text, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) || !isDecimal(sc.text) {
			return bad(`For input string: "` + sc.text + `"`)
		}
		if r, ok := integerRange[fd.typ]; ok && (f < r[0] || f > r[1]) {
			return bad("Value [" + sc.text + "] is out of range for " + article(fd.typ))
		}
		if math.IsInf(f, 0) || fd.typ == "float" && math.Abs(f) > math.MaxFloat32 || fd.typ == "half_float" && math.Abs(f) > 65504 {
			return bad("[" + fd.typ + "] supports only finite values, but got [Infinity]")
		}
		if _, ok := integerRange[fd.typ]; ok {
			f = math.Trunc(f) // coerced, as Elasticsearch does
		}
		v.num = f
	case vDate:
		ms, ok := 0.0, false
		if sc.kind == '"' {
			ms, ok = parseDate(sc.text)
		}
		if !ok && isDecimal(sc.text) { // epoch_millis
			f, err := strconv.ParseFloat(sc.text, 64)
			ms, ok = f, err == nil
		}
		if !ok {
			if fd.anyDate {
				return nil
			}
			return bad("failed to parse date field [" + sc.text + "] with format [strict_date_optional_time||epoch_millis]")
		}
		v.num = ms
	case vBool:
		switch {
		case sc.kind == '0':
			return bad("Current token (VALUE_NUMBER_INT) not of boolean type")
		case sc.text == "":
			v.s = "false"
		case sc.text != "true" && sc.text != "false":
			return bad("Failed to parse value [" + sc.text + "] as only [true] or [false] are allowed.")
		}
	}
	if !fd.noIndex {
		w.vals = append(w.vals, v)
	}
	return nil
}

func (w *walker) fieldErr(off int, path string, fd *fieldDef, preview, causeType, cause string) *esError {
	e := docErr(w.src, off, "failed to parse field [%s] of type [%s] in document with id '%s'. Preview of field's value: '%s'", path, fd.typ, w.id, preview)
	e.CausedBy = &esError{Type: causeType, Reason: cause}
	return e
}

func article(typ string) string {
	if typ == "integer" || typ == "unsigned_long" {
		return "an " + strings.ReplaceAll(typ, "_", " ")
	}
	return "a " + typ
}

func isDecimal(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E') {
			return false
		}
	}
	return s != ""
}

// array reads the array at w.pos, calling elem for each element.
func (w *walker) array(elem func() *esError) *esError {
	if w.depth++; w.depth > maxDepth {
		return w.syntax(w.pos, "Document nesting depth exceeds the maximum allowed (%d)", maxDepth)
	}
	defer func() { w.depth-- }()
	w.pos++ // '['
	if w.ws(); w.pos < len(w.src) && w.src[w.pos] == ']' {
		w.pos++
		return nil
	}
	for {
		if e := elem(); e != nil {
			return e
		}
		if w.ws(); w.pos < len(w.src) && w.src[w.pos] == ']' {
			w.pos++
			return nil
		}
		if e := w.expect(',', "a comma to separate Array entries"); e != nil {
			return e
		}
	}
}

// skip reads a value and keeps nothing of it.
func (w *walker) skip() *esError {
	dec := json.NewDecoder(bytes.NewReader(w.src[w.pos:]))
	var v json.RawMessage
	if err := dec.Decode(&v); err != nil {
		return w.syntax(w.pos, "%v", err)
	}
	w.pos += int(dec.InputOffset())
	return nil
}

func (w *walker) literal(word string) *esError {
	if !strings.HasPrefix(string(w.src[w.pos:min(len(w.src), w.pos+len(word))]), word) {
		return w.syntax(w.pos, "Unrecognized token: was expecting (JSON String, Number, Array, Object or token 'null', 'true' or 'false')")
	}
	w.pos += len(word)
	return nil
}

// scalar reads a string, a number or a boolean.
func (w *walker) scalar() (scalar, *esError) {
	start := w.pos
	if start >= len(w.src) {
		return scalar{}, w.syntax(start, "Unexpected end-of-input: expected a value")
	}
	switch c := w.src[w.pos]; {
	case c == '"':
		s, e := w.str()
		return scalar{'"', s}, e
	case c == 't' || c == 'f':
		word := "true"
		if c == 'f' {
			word = "false"
		}
		return scalar{'t', word}, w.literal(word)
	case c == '-' || c >= '0' && c <= '9':
		end := start
		for end < len(w.src) && strings.IndexByte("0123456789+-.eE", w.src[end]) >= 0 {
			end++
		}
		if !json.Valid(w.src[start:end]) {
			return scalar{}, w.syntax(start, "Invalid numeric value")
		}
		w.pos = end
		return scalar{'0', unsafe.String(&w.src[start], end-start)}, nil
	}
	return scalar{}, w.syntax(start, "Unexpected character (%q): expected a valid value (JSON String, Number, Array, Object or token 'null', 'true' or 'false')", w.src[start])
}

// str reads the string at w.pos. Like Elasticsearch it refuses invalid
// UTF-8.
func (w *walker) str() (string, *esError) {
	end, f, err := jsonstr.Scan(w.src, w.pos)
	if err != nil {
		return "", w.syntax(err.Offset, "%v", err)
	}
	raw := w.src[w.pos+1 : end-1]
	if f&jsonstr.NonASCII != 0 && !utf8.Valid(raw) {
		return "", w.syntax(w.pos, "Invalid UTF-8 in string value")
	}
	w.pos = end
	if f&jsonstr.Escaped != 0 {
		return string(jsonstr.Append(make([]byte, 0, len(raw)), raw)), nil
	}
	if len(raw) == 0 {
		return "", nil
	}
	return unsafe.String(&raw[0], len(raw)), nil
}
