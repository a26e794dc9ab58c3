package devstack

// The indexing model: how one Elasticsearch document becomes one bleve document.
//
//   - The bleve document id is the Elasticsearch _id.
//   - `_source` is stored, not indexed, as the raw JSON bytes the client sent; searches read it
//     back for hits[]._source.
//   - Every leaf value is indexed at its dotted path. Nested objects and dotted keys give the same
//     path: {"http":{"status":200}} and {"http.status":200} both index `http.status`. An array gives
//     several values of one field (each element carries its array position, so a phrase never
//     matches across two elements). null and empty arrays index nothing, as in Elasticsearch.
//   - The mapped type of the path decides how a value is indexed:
//     keyword (and constant_keyword, wildcard, version, ip): one term, the whole value as written,
//     with doc values for sort and aggregations; a value longer than ignore_above characters is
//     kept in _source but not indexed.
//     text (and match_only_text): analysed like Elasticsearch's standard analyzer (Unicode word
//     segmentation, lower case, no stop words), with term vectors so that phrase queries work.
//     long, integer, short, byte, unsigned_long (integral types, fractions truncated), double,
//     float, half_float, scaled_float: a number (float64, encoded as bleve encodes numbers).
//     date and date_nanos: a date (Unix nanoseconds, encoded as bleve encodes dates), from RFC 3339
//     / ISO 8601 strings with any fraction and offset or from epoch milliseconds (numbers or digit
//     strings); date values are truncated to the millisecond, as Elasticsearch's date type stores
//     them.
//     A number or a date is one full-precision prefix-coded term with doc values in the companion
//     field sortValueField(path), which sorting, aggregations and range queries read, and a few
//     coarse prefix-coded terms (rangeShifts) in the field path itself, for range queries over
//     wide spans (see valuerange.go).
//     boolean: the term T or F with doc values (true/false, or the strings "true"/"false").
//     Numbers and booleans given to keyword or text fields are indexed as their JSON text; digit
//     strings given to numeric fields are coerced, as Elasticsearch does by default.
//   - A path with no mapping is skipped (the store applies the mapping before indexing), and so is
//     a scalar at a path mapped as object.
//   - `_field_names` is one keyword field listing the keyword, text and boolean leaf paths with an
//     indexed value. An `exists` query is a term query on it, or, for a number or a date, a range
//     over all values (its few coarsest terms); an object exists when one of its leaves does.
//     (The previous model also listed numbers, dates and objects: 10 of 23 terms of a log
//     document; an exists query still finds what an index it wrote lists.)
//
// The fields are built here, analysed (termsField): scorch indexes them as they are, on the
// goroutines that build documents rather than on its analysis queue. Their parts come from a
// docArena shared by the documents of a request, and the term maps of repeated keyword values
// and field sets are shared between documents (shared.go): bulk indexing allocates a fraction
// of what bleve's field types would.
//
// Scores come from bleve's tf-idf, not Lucene's BM25: ranking is close, numbers differ.

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/custom"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/keyword"
	"github.com/blevesearch/bleve/v2/analysis/token/lowercase"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/unicode"
	"github.com/blevesearch/bleve/v2/document"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/numeric"
	index "github.com/blevesearch/bleve_index_api"

	"github.com/sluicelogs/sluice/internal/jsonstr"
)

const (
	// sourceField holds the raw _source JSON (stored only).
	sourceField = "_source"
	// fieldNamesField holds the paths present in a document (see the model above).
	fieldNamesField = "_field_names"
	// standardAnalyzerName is the bleve name of the Elasticsearch-like standard analyzer.
	standardAnalyzerName = "es_standard"
	// keywordAnalyzerName is bleve's analyzer that keeps the whole input as one term.
	keywordAnalyzerName = keyword.Name
)

// standardAnalyzer mirrors Elasticsearch's standard analyzer: Unicode text segmentation and lower
// case, without stop words (bleve's own "standard" removes English stop words).
var standardAnalyzer analysis.Analyzer = &analysis.DefaultAnalyzer{
	Tokenizer:    unicode.NewUnicodeTokenizer(),
	TokenFilters: []analysis.TokenFilter{lowercase.NewLowerCaseFilter()},
}

// Indexing options per kind of field.
const (
	keywordOptions = index.IndexField | index.DocValues
	textOptions    = index.IndexField | index.IncludeTermVectors
	boolOptions    = index.IndexField | index.DocValues
	namesOptions   = index.IndexField
	sourceOptions  = index.StoreField
	// rangeOptions is the field of the coarse terms of numbers and dates (see valuerange.go):
	// neither scored nor sorted on.
	rangeOptions = index.IndexField | index.SkipFreqNorm
	// sortValueOptions is the companion field of numbers and dates (see sortValueField).
	sortValueOptions = index.IndexField | index.DocValues | index.SkipFreqNorm
)

// sortValueField names the companion field holding the full-precision term of a number or date.
//
// Doc values keep every term of a field: were the coarse terms of the field itself among them,
// sorting or aggregating would read and decompress several times more doc value data than
// needed. That dominated a sorted keyword query over a million documents (a doc value chunk
// decompressed per matching document), so the number or date field holds coarse terms only, and
// this companion field the single full-precision term (prefix-coded, as bleve's own) with doc
// values, for sorting, aggregations and the exact level of range queries.
func sortValueField(path string) string { return "_dv:" + path }

// newIndexMapping returns the bleve mapping every devstack index is created with (custom analyzers
// registered; documents are built by buildDocument, not by bleve's dynamic mapping).
func newIndexMapping() mapping.IndexMapping {
	im := mapping.NewIndexMapping()
	err := im.AddCustomAnalyzer(standardAnalyzerName, map[string]interface{}{
		"type":          custom.Name,
		"tokenizer":     unicode.Name,
		"token_filters": []interface{}{lowercase.Name},
	})
	if err != nil {
		// The configuration above is static: failing here is a programming error.
		panic(fmt.Sprintf("devstack: register analyzer: %v", err))
	}
	im.DefaultAnalyzer = standardAnalyzerName
	im.DefaultField = fieldNamesField
	im.StoreDynamic = false
	im.IndexDynamic = false
	im.DocValuesDynamic = false
	im.DefaultMapping.Dynamic = false
	return im
}

// fieldInfo says how an Elasticsearch field is indexed.
type fieldInfo struct {
	// Type is the Elasticsearch mapping type: keyword, text, long, integer, short, byte, double,
	// float, half_float, scaled_float, date, boolean, object, ...
	Type string
	// IgnoreAbove is the keyword ignore_above limit in characters; 0 means none.
	IgnoreAbove int
}

// fieldKind is how a mapped type is indexed and searched.
type fieldKind int

const (
	kindUnsupported fieldKind = iota
	kindKeyword
	kindText
	kindInteger
	kindFloat
	kindDate
	kindBoolean
	kindObject
)

// kindOf classifies an Elasticsearch mapping type.
func kindOf(typ string) fieldKind {
	switch typ {
	case "keyword", "constant_keyword", "wildcard", "version", "ip":
		return kindKeyword
	case "text", "match_only_text":
		return kindText
	case "long", "integer", "short", "byte", "unsigned_long":
		return kindInteger
	case "double", "float", "half_float", "scaled_float":
		return kindFloat
	case "date", "date_nanos":
		return kindDate
	case "boolean":
		return kindBoolean
	case "object", "nested", "flattened":
		return kindObject
	}
	return kindUnsupported
}

// fieldValueError is a value that does not fit its field's mapped type; the store answers it as
// Elasticsearch's 400 mapper_parsing_exception with Error() as the reason.
type fieldValueError struct {
	ID, Field, FieldType, Value string
	Err                         error
}

func (e *fieldValueError) Error() string {
	preview := e.Value
	if len(preview) > 40 {
		preview = preview[:40] + "..."
	}
	return fmt.Sprintf("failed to parse field [%s] of type [%s] in document with id '%s'. Preview of field's value: '%s'",
		e.Field, e.FieldType, e.ID, preview)
}

func (e *fieldValueError) Unwrap() error { return e.Err }

// fieldLookup says how the paths of a document are mapped; a *fieldSet is the lookup of an
// index.
type fieldLookup interface {
	// lookup returns the entry of path, which it only reads during the call.
	lookup(path []byte) (*fieldEntry, bool)
	// sharedNames holds the shared maps of _field_names, or is nil.
	sharedNames() *sharedTerms
}

// fieldEntry is a mapped path as buildDocument indexes it.
type fieldEntry struct {
	path      string // the path, the name of its field
	sortField string // sortValueField(path)
	info      fieldInfo
	kind      fieldKind
	shared    *sharedTerms // the shared maps of a keyword's or a boolean's values, or nil
}

func newFieldEntry(path string, fi fieldInfo) *fieldEntry {
	return &fieldEntry{path: path, sortField: sortValueField(path), info: fi, kind: kindOf(fi.Type)}
}

// funcLookup adapts a lookup function (tests use them); its documents share no maps.
type funcLookup func(path string) (fieldInfo, bool)

func (f funcLookup) sharedNames() *sharedTerms { return nil }

func (f funcLookup) lookup(path []byte) (*fieldEntry, bool) {
	p := string(path)
	fi, ok := f(p)
	if !ok {
		return nil, false
	}
	return newFieldEntry(p, fi), true
}

// buildDocument is buildDocumentWith over a lookup function.
func buildDocument(id string, source []byte, field func(path string) (fieldInfo, bool)) (*document.Document, error) {
	return buildDocumentWith(id, source, funcLookup(field), nil)
}

// buildDocumentWith turns one Elasticsearch document (its _id and _source JSON) into the bleve
// document to index, following the model described at the top of this file. It returns an error
// for a source that is not a JSON object and a *fieldValueError for a value its mapped type cannot
// take. The document is allocated from a (nil: a new one), which only the calling goroutine may
// use meanwhile; fields is a *fieldSet (safe for concurrent use) or a funcLookup, which need only
// be safe to call from the calling goroutine. source is not retained except as the stored
// _source and as the terms of keyword values: the caller must not modify it afterwards.
func buildDocumentWith(id string, source []byte, fields fieldLookup, a *docArena) (*document.Document, error) {
	// Validate first, so that the walk below can assume well-formed JSON; it reads the leaves
	// straight from the bytes (no intermediate maps): buildDocument is on the bulk indexing path.
	if !json.Valid(source) {
		var v any
		err := json.Unmarshal(source, &v)
		return nil, fmt.Errorf("parse _source of document %q: %w", id, err)
	}
	return buildValidDocument(id, source, fields, a)
}

// buildValidDocument is buildDocumentWith for a source known to be valid JSON: one that
// escompat.ParseDocument accepted, which is stricter than json.Valid (it also refuses invalid
// UTF-8, duplicate keys and extra data).
func buildValidDocument(id string, source []byte, fields fieldLookup, a *docArena) (*document.Document, error) {
	w := jsonWalker{data: source}
	w.space()
	if w.i >= len(w.data) || w.data[w.i] != '{' {
		return nil, fmt.Errorf("parse _source of document %q: not a JSON object", id)
	}
	if a == nil {
		a = &docArena{}
	}
	b := docBuilder{docArena: a, id: id, lookup: fields}
	b.list = append(b.list[:0], document.NewTextFieldCustom(sourceField, nil, source, sourceOptions, nil))
	b.names = b.names[:0]
	b.path = b.path[:0]
	b.unmapped = false
	clear(b.firsts)
	if err := w.value(&b, nil); err != nil {
		return nil, err
	}
	b.fieldNames()
	// The store adds _version and _seq_no, scorch _id: room for them.
	list := b.docFields(len(b.list) + 3)
	doc := &document.Document{Fields: append(list, b.list...)}
	doc.SetID(id)
	return doc, nil
}

// docArena allocates the parts of built documents in chunks that the documents built one after
// the other share. The documents of one bulk request are built together and die together, once
// their batch is applied: sharing costs no memory, and saves allocations and the garbage
// collector's work. An arena is not safe for concurrent use.
type docArena struct {
	fields []termsField
	tfs    []index.TokenFreq
	locs   []index.TokenLocation
	ptrs   []*index.TokenLocation
	bytes  []byte
	lists  []document.Field

	// Scratch space of one document, reused by the next.
	list   []document.Field       // the fields of the document being built
	path   []byte                 // the dotted path of the value being walked
	names  []string               // paths present, with repeats
	key    []byte                 // of the shared map of _field_names
	firsts map[string]*termsField // the first keyword or boolean field of each name

	// unmapped reports whether the last document built has a value at a path the lookup did
	// not map: it would build otherwise once the mapping has the path. (Mappings only gain
	// paths, so a document without one builds the same under a later mapping.)
	unmapped bool
}

// chunk is the size of the next chunk of a slab whose last chunk had n elements and that needs
// need: chunks grow from lo to hi, so that the arena of one document stays small.
func chunk(n, need, lo, hi int) int {
	return max(need, min(max(2*n, lo), hi))
}

// docFields returns an empty slice of capacity n for a document's fields.
func (a *docArena) docFields(n int) []document.Field {
	if len(a.lists)+n > cap(a.lists) {
		a.lists = make([]document.Field, 0, chunk(cap(a.lists), n, 32, 2048))
	}
	a.lists = a.lists[:len(a.lists)+n]
	return a.lists[len(a.lists)-n : len(a.lists)-n : len(a.lists)]
}

// tokenFreq returns a new TokenFreq of term.
func (a *docArena) tokenFreq(term []byte) *index.TokenFreq {
	if len(a.tfs) == cap(a.tfs) {
		a.tfs = make([]index.TokenFreq, 0, chunk(cap(a.tfs), 1, 32, 1024))
	}
	a.tfs = append(a.tfs, index.TokenFreq{Term: term})
	return &a.tfs[len(a.tfs)-1]
}

// locations returns n token locations.
func (a *docArena) locations(n int) []index.TokenLocation {
	if len(a.locs)+n > cap(a.locs) {
		a.locs = make([]index.TokenLocation, 0, chunk(cap(a.locs), n, 16, 1024))
	}
	a.locs = a.locs[:len(a.locs)+n]
	return a.locs[len(a.locs)-n : len(a.locs) : len(a.locs)]
}

// locationList returns an empty list of one location (appending more reallocates it).
func (a *docArena) locationList() []*index.TokenLocation {
	if len(a.ptrs) == cap(a.ptrs) {
		a.ptrs = make([]*index.TokenLocation, 0, chunk(cap(a.ptrs), 1, 16, 1024))
	}
	a.ptrs = a.ptrs[:len(a.ptrs)+1]
	return a.ptrs[len(a.ptrs)-1 : len(a.ptrs)-1 : len(a.ptrs)]
}

// alloc returns n bytes.
func (a *docArena) alloc(n int) []byte {
	if len(a.bytes)+n > cap(a.bytes) {
		a.bytes = make([]byte, 0, chunk(cap(a.bytes), n, 512, 64<<10))
	}
	a.bytes = a.bytes[:len(a.bytes)+n]
	return a.bytes[len(a.bytes)-n : len(a.bytes) : len(a.bytes)]
}

// termsField is a field of a bleve document built already analysed: Analyze does nothing, and
// scorch indexes the terms buildDocument computed. It is never stored.
type termsField struct {
	shared bool // freqs is shared (see shared.go)
	name   string
	pos    []uint64
	opts   index.FieldIndexingOptions
	kind   fieldKind // what value holds, for tests and debugging
	value  []byte    // the value: the keyword or text, a number's or a date's full-precision term, T or F
	length int       // number of tokens, the field length of scoring
	freqs  index.TokenFrequencies
}

func (f *termsField) Name() string                                     { return f.name }
func (f *termsField) ArrayPositions() []uint64                         { return f.pos }
func (f *termsField) Options() index.FieldIndexingOptions              { return f.opts }
func (f *termsField) Analyze()                                         {}
func (f *termsField) Value() []byte                                    { return f.value }
func (f *termsField) NumPlainTextBytes() uint64                        { return uint64(len(f.value)) }
func (f *termsField) EncodedFieldType() byte                           { return 't' }
func (f *termsField) AnalyzedLength() int                              { return f.length }
func (f *termsField) AnalyzedTokenFrequencies() index.TokenFrequencies { return f.freqs }

// Size estimates the memory the field holds (scorch accounts for it, per document): the struct,
// and per term a map slot, a TokenFreq and the term, twice.
func (f *termsField) Size() int {
	return 120 + len(f.name) + len(f.value) + 8*len(f.pos) + f.length*(64+2*8)
}

// docBuilder builds one document's fields, from its arena; bleve's interface needs a map per
// field.
type docBuilder struct {
	*docArena
	id     string
	lookup fieldLookup
}

// newField adds a field to the document, with room for terms distinct terms (none: -1).
func (b *docBuilder) newField(name string, pos []uint64, opts index.FieldIndexingOptions, kind fieldKind, value []byte, terms int) *termsField {
	if len(b.fields) == cap(b.fields) {
		b.fields = make([]termsField, 0, chunk(cap(b.fields), 1, 16, 512))
	}
	b.fields = append(b.fields, termsField{name: name, pos: pos, opts: opts, kind: kind, value: value})
	f := &b.fields[len(b.fields)-1]
	if terms >= 0 {
		f.freqs = make(index.TokenFrequencies, terms)
	}
	b.list = append(b.list, f)
	return f
}

// term adds one occurrence of term to f (no term vector: positions are only kept for text).
func (b *docBuilder) term(f *termsField, key string, term []byte) {
	f.length++
	tf := f.freqs[key]
	if tf == nil {
		tf = b.tokenFreq(term)
		f.freqs[key] = tf
	}
	if !f.opts.SkipFreqNorm() {
		tf.SetFrequency(tf.Frequency() + 1)
	}
}

// single gives f, a keyword or boolean field, its one term: a shared map when the field has
// one for it (see shared.go).
func (b *docBuilder) single(f *termsField, s *sharedTerms, term []byte) {
	if b.firsts == nil {
		b.firsts = make(map[string]*termsField)
	}
	first := b.firsts[f.name]
	if first == nil {
		b.firsts[f.name] = f
	} else if first.shared {
		// Scorch merges f into the first field of its name, which must not be shared.
		tfs := make(index.TokenFrequencies, len(first.freqs))
		for k, tf := range first.freqs {
			c := b.tokenFreq(tf.Term)
			c.SetFrequency(tf.Frequency())
			tfs[k] = c
		}
		first.freqs, first.shared = tfs, false
	}
	if tfs := s.get(term, func(add func([]byte)) { add(term) }); tfs != nil {
		f.freqs, f.shared, f.length = tfs, true, 1
		return
	}
	f.freqs = make(index.TokenFrequencies, 1)
	b.term(f, string(term), term)
}

// text adds the tokens of text to f, with their term vectors, as analysis.TokenFrequency does.
func (b *docBuilder) text(f *termsField, tokens analysis.TokenStream) {
	f.length = len(tokens)
	f.freqs = make(index.TokenFrequencies, len(tokens))
	locs := b.locations(len(tokens))
	for i, t := range tokens {
		locs[i] = index.TokenLocation{ArrayPositions: f.pos, Start: t.Start, End: t.End, Position: t.Position}
		tf := f.freqs[string(t.Term)]
		if tf == nil {
			tf = b.tokenFreq(t.Term)
			tf.Locations = b.locationList()
			f.freqs[string(t.Term)] = tf
		}
		tf.Locations = append(tf.Locations, &locs[i])
		tf.SetFrequency(tf.Frequency() + 1)
	}
}

// jsonScalar is a leaf value of a document.
type jsonScalar struct {
	kind byte   // '"' string, '0' number, 't' true, 'f' false
	raw  []byte // the string (unescaped) or the number as written
}

// text is the scalar as Elasticsearch indexes it in keyword and text fields.
func (v jsonScalar) text() string {
	switch v.kind {
	case 't':
		return "true"
	case 'f':
		return "false"
	}
	return string(v.raw)
}

// scalar indexes v at b.path.
func (b *docBuilder) scalar(v jsonScalar, pos []uint64) error {
	e, ok := b.lookup.lookup(b.path)
	if !ok {
		b.unmapped = true
		return nil
	}
	indexed, err := b.leaf(e, v, pos)
	if err != nil {
		return err
	}
	if indexed && e.kind != kindInteger && e.kind != kindFloat && e.kind != kindDate {
		// Numbers and dates are found by their own terms.
		b.names = append(b.names, e.path)
	}
	return nil
}

// jsonWalker visits the leaves of a JSON document known to be valid (see buildValidDocument).
type jsonWalker struct {
	data []byte
	i    int
}

func (w *jsonWalker) space() {
	for w.i < len(w.data) {
		switch w.data[w.i] {
		case ' ', '\t', '\n', '\r':
			w.i++
		default:
			return
		}
	}
}

// value walks the value at w.i, whose dotted path is b.path.
func (w *jsonWalker) value(b *docBuilder, pos []uint64) error {
	w.space()
	switch c := w.data[w.i]; {
	case c == '{':
		w.i++
		n := len(b.path)
		for {
			w.space()
			if w.data[w.i] == '}' {
				w.i++
				b.path = b.path[:n]
				return nil
			}
			if w.data[w.i] == ',' {
				w.i++
				w.space()
			}
			b.path = b.path[:n]
			if n > 0 {
				b.path = append(b.path, '.')
			}
			b.path = w.appendStr(b.path)
			w.space()
			w.i++ // ':'
			if err := w.value(b, pos); err != nil {
				return err
			}
		}
	case c == '[':
		w.i++
		for n := 0; ; n++ {
			w.space()
			if w.data[w.i] == ']' {
				w.i++
				return nil
			}
			if w.data[w.i] == ',' {
				w.i++
			}
			p := make([]uint64, len(pos)+1)
			copy(p, pos)
			p[len(pos)] = uint64(n)
			if err := w.value(b, p); err != nil {
				return err
			}
		}
	case c == '"':
		return b.scalar(jsonScalar{kind: '"', raw: w.strBytes()}, pos)
	case c == 't':
		w.i += 4
		return b.scalar(jsonScalar{kind: 't'}, pos)
	case c == 'f':
		w.i += 5
		return b.scalar(jsonScalar{kind: 'f'}, pos)
	case c == 'n':
		w.i += 4
		return nil
	default:
		start := w.i
		for w.i < len(w.data) {
			switch w.data[w.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return b.scalar(jsonScalar{kind: '0', raw: w.data[start:w.i]}, pos)
			}
			w.i++
		}
		return b.scalar(jsonScalar{kind: '0', raw: w.data[start:w.i]}, pos)
	}
}

// strBytes reads the string at w.i (its opening quote): the bytes of the source when it has no
// escape, else a new unescaped copy.
func (w *jsonWalker) strBytes() []byte {
	start := w.i
	w.i++
	escaped := false
	for w.data[w.i] != '"' {
		if w.data[w.i] == '\\' {
			escaped = true
			w.i++
		}
		w.i++
	}
	w.i++
	if !escaped {
		return w.data[start+1 : w.i-1 : w.i-1]
	}
	s, _, _ := jsonstr.Unquote(w.data, start) // valid JSON: see buildValidDocument
	return []byte(s)
}

// appendStr reads the string at w.i and appends it, unescaped, to dst.
func (w *jsonWalker) appendStr(dst []byte) []byte {
	return append(dst, w.strBytes()...)
}

// fieldNames adds the _field_names field: the paths present, once each.
func (b *docBuilder) fieldNames() {
	if len(b.names) == 0 {
		return
	}
	sort.Strings(b.names)
	names := slices.Compact(b.names)
	f := b.newField(fieldNamesField, nil, namesOptions, kindKeyword, nil, -1)
	b.key = b.key[:0]
	for _, n := range names {
		b.key = append(append(b.key, n...), 0)
	}
	tfs := b.lookup.sharedNames().get(b.key, func(add func([]byte)) {
		for _, n := range names {
			add([]byte(n))
		}
	})
	if tfs != nil {
		f.freqs, f.shared, f.length = tfs, true, len(names)
		return
	}
	f.freqs = make(index.TokenFrequencies, len(names))
	for _, n := range names {
		t := b.alloc(len(n))
		copy(t, n)
		b.term(f, n, t)
	}
}

// valueTermsLen is the length of the terms of a number or a date, the full-precision one and the
// coarse ones.
var valueTermsLen = func() int {
	n := 0
	for _, s := range rangeShifts {
		n += prefixTermLen(s)
	}
	return n
}()

// value indexes a number or a date, v as bleve encodes it: its full-precision term in the
// companion field, its coarse terms in the field (see valuerange.go). The terms are written in
// one piece of the slab, their map keys are substrings of one string.
func (b *docBuilder) value(e *fieldEntry, pos []uint64, v int64) {
	u := sortable(v)
	all := b.alloc(valueTermsLen)
	at := 0
	for _, shift := range rangeShifts {
		n := prefixTermLen(shift)
		putPrefixTerm(all[at:at+n], u>>shift, shift)
		at += n
	}
	keys := string(all)
	n := prefixTermLen(0)
	exact := all[:n:n]
	f := b.newField(e.sortField, pos, sortValueOptions, e.kind, exact, 1)
	b.term(f, keys[:n], exact)
	f = b.newField(e.path, pos, rangeOptions, e.kind, exact, len(rangeShifts)-1)
	at = n
	for _, shift := range rangeShifts[1:] {
		n := prefixTermLen(shift)
		b.term(f, keys[at:at+n], all[at:at+n:at+n])
		at += n
	}
}

// leaf indexes one scalar value; it reports whether anything was indexed.
func (b *docBuilder) leaf(e *fieldEntry, v jsonScalar, pos []uint64) (bool, error) {
	bad := func(err error) (bool, error) {
		return false, &fieldValueError{ID: b.id, Field: e.path, FieldType: e.info.Type, Value: v.text(), Err: err}
	}
	switch e.kind {
	case kindKeyword:
		t := v.raw
		switch v.kind {
		case 't':
			t = trueText
		case 'f':
			t = falseText
		}
		if limit := e.info.IgnoreAbove; limit > 0 && len(t) > limit && utf8.RuneCount(t) > limit {
			return false, nil
		}
		b.single(b.newField(e.path, pos, keywordOptions, e.kind, t, -1), e.shared, t)
		return true, nil
	case kindText:
		t := v.raw
		switch v.kind {
		case 't':
			t = trueText
		case 'f':
			t = falseText
		}
		f := b.newField(e.path, pos, textOptions, e.kind, t, -1)
		// The analyzer lower-cases in place: analyse a copy.
		c := b.alloc(len(t))
		copy(c, t)
		b.text(f, standardAnalyzer.Analyze(c))
		return true, nil
	case kindInteger, kindFloat:
		var n float64
		var err error
		switch v.kind {
		case '0':
			n, err = parseNumber(string(v.raw))
		case '"':
			n, err = parseNumber(strings.TrimSpace(string(v.raw)))
		default:
			err = fmt.Errorf("not a number")
		}
		if err != nil {
			return bad(err)
		}
		if e.kind == kindInteger {
			n = math.Trunc(n)
		}
		b.value(e, pos, numeric.Float64ToInt64(n))
		return true, nil
	case kindDate:
		var t time.Time
		var err error
		switch v.kind {
		case '0':
			t, err = epochMillis(string(v.raw))
		case '"':
			t, err = parseDate(string(v.raw))
		default:
			err = fmt.Errorf("not a date")
		}
		if err != nil {
			return bad(err)
		}
		if e.info.Type != "date_nanos" {
			t = t.Truncate(time.Millisecond)
		}
		if t.Before(document.MinTimeRepresentable) || t.After(document.MaxTimeRepresentable) {
			return bad(fmt.Errorf("cannot represent %s in this type", t))
		}
		b.value(e, pos, t.UnixNano())
		return true, nil
	case kindBoolean:
		var t bool
		switch {
		case v.kind == 't':
			t = true
		case v.kind == 'f':
		case v.kind == '"' && string(v.raw) == "true":
			t = true
		case v.kind == '"' && (string(v.raw) == "false" || len(v.raw) == 0):
		default:
			return bad(errNotBoolean)
		}
		term := falseTerm
		if t {
			term = trueTerm
		}
		b.single(b.newField(e.path, pos, boolOptions, e.kind, term, -1), e.shared, term)
		return true, nil
	}
	// object (a scalar where an object is mapped) or an unsupported type: not indexed.
	return false, nil
}

// Constant terms and texts; never modified.
var (
	trueTerm  = []byte("T") // the terms of booleans, as bleve's boolean fields and queries have them
	falseTerm = []byte("F")
	trueText  = []byte("true") // booleans in keyword and text fields
	falseText = []byte("false")
)

var errNotBoolean = fmt.Errorf("failed to parse boolean value, only [true] or [false] are allowed")

// scalarText is the text of a JSON scalar as Elasticsearch indexes it in keyword and text fields.
func scalarText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		if v {
			return "true"
		}
		return "false"
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case nil:
		return "null"
	}
	return fmt.Sprint(v)
}

// numberValue coerces a JSON scalar to a number as Elasticsearch's numeric fields do.
func numberValue(v any) (float64, error) {
	var s string
	switch v := v.(type) {
	case json.Number:
		s = v.String()
	case float64:
		return v, nil
	case string:
		s = strings.TrimSpace(v)
	default:
		return 0, fmt.Errorf("not a number")
	}
	return parseNumber(s)
}

// parseNumber parses a finite number.
func parseNumber(s string) (float64, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("not a number: %q", s)
	}
	return f, nil
}

// boolValue accepts true/false and their string forms (Elasticsearch also treats "" as false).
func boolValue(v any) (bool, error) {
	switch v := v.(type) {
	case bool:
		return v, nil
	case string:
		switch v {
		case "true":
			return true, nil
		case "false", "":
			return false, nil
		}
	}
	return false, errNotBoolean
}

// parseDate parses strict_date_optional_time||epoch_millis: yyyy[-MM[-dd]][Thh[:mm[:ss[.f…]]]]
// with an optional Z or ±hh[:mm] offset (UTC when absent), or a number of epoch milliseconds.
func parseDate(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, fmt.Errorf("empty date")
	}
	if isEpochText(s) {
		return epochMillis(s)
	}
	t, ok := parseISODate(s)
	if !ok {
		return time.Time{}, fmt.Errorf("failed to parse date field [%s] with format [strict_date_optional_time||epoch_millis]", s)
	}
	return t, nil
}

func isEpochText(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := 0
	for ; i < len(s); i++ {
		c := s[i]
		if c == '.' {
			continue
		}
		if c < '0' || c > '9' {
			return false
		}
		digits++
	}
	// A bare four-digit year is a date in strict_date_optional_time, which is tried first.
	return digits > 0 && !(len(s) == 4 && digits == 4)
}

func epochMillis(s string) (time.Time, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 9e15 {
		return time.Time{}, fmt.Errorf("failed to parse date field [%s] with format [epoch_millis]", s)
	}
	ms := math.Floor(f)
	ns := int64(math.Round((f - ms) * 1e6))
	return time.UnixMilli(int64(ms)).Add(time.Duration(ns)).UTC(), nil
}

// parseISODate is a small hand parser for the ISO 8601 subset above: faster than trying several
// time.Parse layouts, and it accepts any fraction length and offset style.
func parseISODate(s string) (time.Time, bool) {
	p := isoParser{s: s}
	year, ok := p.digits(4, 4)
	if !ok {
		return time.Time{}, false
	}
	month, day := 1, 1
	var hour, minute, sec, nanos int
	loc := time.UTC
	if p.eat('-') {
		if month, ok = p.digits(2, 2); !ok {
			return time.Time{}, false
		}
		if p.eat('-') {
			if day, ok = p.digits(2, 2); !ok {
				return time.Time{}, false
			}
		}
	}
	if p.eat('T') || p.eat('t') {
		if hour, ok = p.digits(2, 2); !ok {
			return time.Time{}, false
		}
		if p.eat(':') {
			if minute, ok = p.digits(2, 2); !ok {
				return time.Time{}, false
			}
			if p.eat(':') {
				if sec, ok = p.digits(2, 2); !ok {
					return time.Time{}, false
				}
				if p.eat('.') || p.eat(',') {
					start := p.i
					frac, ok := p.digits(1, 9)
					if !ok {
						return time.Time{}, false
					}
					for n := p.i - start; n < 9; n++ {
						frac *= 10
					}
					nanos = frac
					for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
						p.i++ // digits past nanoseconds are dropped
					}
				}
			}
		}
		if p.eat('Z') || p.eat('z') {
		} else if p.i < len(p.s) && (p.s[p.i] == '+' || p.s[p.i] == '-') {
			sign := 1
			if p.s[p.i] == '-' {
				sign = -1
			}
			p.i++
			oh, ok := p.digits(2, 2)
			if !ok {
				return time.Time{}, false
			}
			om := 0
			if p.eat(':') {
				if om, ok = p.digits(2, 2); !ok {
					return time.Time{}, false
				}
			} else if p.i < len(p.s) {
				if om, ok = p.digits(2, 2); !ok {
					return time.Time{}, false
				}
			}
			if oh > 18 || om > 59 {
				return time.Time{}, false
			}
			loc = time.FixedZone("", sign*(oh*3600+om*60))
		}
	}
	if p.i != len(p.s) {
		return time.Time{}, false
	}
	if month < 1 || month > 12 || day < 1 || day > daysIn(year, month) || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nanos, loc).UTC(), true
}

func daysIn(year, month int) int {
	return time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

type isoParser struct {
	s string
	i int
}

func (p *isoParser) eat(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

// digits reads between min and max decimal digits.
func (p *isoParser) digits(min, max int) (int, bool) {
	n, v := 0, 0
	for p.i < len(p.s) && n < max && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		v = v*10 + int(p.s[p.i]-'0')
		p.i++
		n++
	}
	return v, n >= min
}
