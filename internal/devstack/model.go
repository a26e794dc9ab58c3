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
//     float, half_float, scaled_float: a bleve number (float64), for queries.
//     date and date_nanos: a bleve datetime, for queries, from RFC 3339 / ISO 8601 strings with
//     any fraction and offset or from epoch milliseconds (numbers or digit strings); date values
//     are truncated to the millisecond, as Elasticsearch's date type stores them.
//     Numbers and dates also get a companion field, sortValueField(path), with one prefix-coded
//     term and doc values: sorting and aggregations read it (see sortValueField for why).
//     boolean: a bleve boolean (true/false, or the strings "true"/"false").
//     Numbers and booleans given to keyword or text fields are indexed as their JSON text; digit
//     strings given to numeric fields are coerced, as Elasticsearch does by default.
//   - A path with no mapping is skipped (the store applies the mapping before indexing), and so is
//     a scalar at a path mapped as object.
//   - `_field_names` is a keyword field listing every indexed leaf path and its parent object paths,
//     so that an `exists` query is one term query.
//
// Scores come from bleve's tf-idf, not Lucene's BM25: ranking is close, numbers differ.

import (
	"encoding/json"
	"fmt"
	"math"
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
	numberOptions  = index.IndexField
	dateOptions    = index.IndexField
	boolOptions    = index.IndexField | index.DocValues
	namesOptions   = index.IndexField
	sourceOptions  = index.StoreField
	// sortValueOptions is the companion field of numbers and dates (see sortValueField).
	sortValueOptions = index.IndexField | index.DocValues | index.SkipFreqNorm
)

// sortValueField names the companion field holding the doc values of a number or date field.
//
// bleve indexes a number or date as 16 terms (one per precision shift, for range queries), and
// doc values keep every term of a field: sorting or aggregating on the field itself would read
// and decompress 16 times more doc value data than needed. That dominated a sorted keyword
// query over a million documents (a doc value chunk decompressed per matching document), so the
// number or date field is indexed for queries only, and this companion field holds the single
// full-precision term (prefix-coded, as bleve's own) with doc values, for sorting and
// aggregations.
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

// buildDocument turns one Elasticsearch document (its _id and _source JSON) into the bleve
// document to index, following the model described at the top of this file. It returns an error
// for a source that is not a JSON object and a *fieldValueError for a value its mapped type cannot
// take. field must be safe to call from the calling goroutine only; source is not retained except
// as the stored _source (the caller must not modify it afterwards).
func buildDocument(id string, source []byte, field func(path string) (fieldInfo, bool)) (*document.Document, error) {
	// Validate first, so that the walk below can assume well-formed JSON; it reads the leaves
	// straight from the bytes (no intermediate maps): buildDocument is on the bulk indexing path.
	if !json.Valid(source) {
		var v any
		err := json.Unmarshal(source, &v)
		return nil, fmt.Errorf("parse _source of document %q: %w", id, err)
	}
	w := jsonWalker{data: source}
	w.space()
	if w.i >= len(w.data) || w.data[w.i] != '{' {
		return nil, fmt.Errorf("parse _source of document %q: not a JSON object", id)
	}
	b := docBuilder{
		doc:   document.NewDocument(id),
		id:    id,
		field: field,
		names: make(map[string]struct{}, 16),
	}
	b.doc.AddField(document.NewTextFieldCustom(sourceField, nil, source, sourceOptions, nil))
	if err := w.value(&b, "", nil); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(b.names))
	for n := range b.names {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		b.doc.AddField(document.NewTextFieldCustom(fieldNamesField, nil, []byte(n), namesOptions, nil))
	}
	return b.doc, nil
}

type docBuilder struct {
	doc   *document.Document
	id    string
	field func(string) (fieldInfo, bool)
	names map[string]struct{}
}

// scalar indexes one leaf value (string, json.Number or bool) at path.
func (b *docBuilder) scalar(path string, v any, pos []uint64) error {
	fi, ok := b.field(path)
	if !ok {
		return nil
	}
	indexed, err := b.leaf(path, fi, v, pos)
	if err != nil {
		return err
	}
	if indexed {
		b.present(path)
	}
	return nil
}

// jsonWalker visits the leaves of a JSON document already checked by json.Valid.
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

// value walks the value at w.i, whose dotted path is path.
func (w *jsonWalker) value(b *docBuilder, path string, pos []uint64) error {
	w.space()
	switch c := w.data[w.i]; {
	case c == '{':
		w.i++
		for {
			w.space()
			if w.data[w.i] == '}' {
				w.i++
				return nil
			}
			if w.data[w.i] == ',' {
				w.i++
				w.space()
			}
			key := w.str()
			w.space()
			w.i++ // ':'
			child := key
			if path != "" {
				child = path + "." + key
			}
			if err := w.value(b, child, pos); err != nil {
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
			if err := w.value(b, path, p); err != nil {
				return err
			}
		}
	case c == '"':
		return b.scalar(path, w.str(), pos)
	case c == 't':
		w.i += 4
		return b.scalar(path, true, pos)
	case c == 'f':
		w.i += 5
		return b.scalar(path, false, pos)
	case c == 'n':
		w.i += 4
		return nil
	default:
		start := w.i
		for w.i < len(w.data) {
			switch w.data[w.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return b.scalar(path, json.Number(w.data[start:w.i]), pos)
			}
			w.i++
		}
		return b.scalar(path, json.Number(w.data[start:w.i]), pos)
	}
}

// str reads the string at w.i (its opening quote) and unescapes it.
func (w *jsonWalker) str() string {
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
		return string(w.data[start+1 : w.i-1])
	}
	var s string
	_ = json.Unmarshal(w.data[start:w.i], &s) // valid: checked by json.Valid
	return s
}

// sortValue adds the doc-values companion of a number or date (see sortValueField).
func (b *docBuilder) sortValue(path string, pos []uint64, v int64) {
	term := numeric.MustNewPrefixCodedInt64(v, 0)
	b.doc.AddField(document.NewTextFieldCustom(sortValueField(path), pos, term, sortValueOptions, nil))
}

// present records path and its parent object paths in _field_names.
func (b *docBuilder) present(path string) {
	for {
		if _, ok := b.names[path]; ok {
			return
		}
		b.names[path] = struct{}{}
		i := strings.LastIndexByte(path, '.')
		if i <= 0 {
			return
		}
		path = path[:i]
	}
}

// leaf indexes one scalar value; it reports whether anything was indexed.
func (b *docBuilder) leaf(path string, fi fieldInfo, v any, pos []uint64) (bool, error) {
	bad := func(err error) (bool, error) {
		return false, &fieldValueError{ID: b.id, Field: path, FieldType: fi.Type, Value: scalarText(v), Err: err}
	}
	switch kindOf(fi.Type) {
	case kindKeyword:
		s := scalarText(v)
		if fi.IgnoreAbove > 0 && utf8.RuneCountInString(s) > fi.IgnoreAbove {
			return false, nil
		}
		b.doc.AddField(document.NewTextFieldCustom(path, pos, []byte(s), keywordOptions, nil))
		return true, nil
	case kindText:
		b.doc.AddField(document.NewTextFieldCustom(path, pos, []byte(scalarText(v)), textOptions, standardAnalyzer))
		return true, nil
	case kindInteger, kindFloat:
		f, err := numberValue(v)
		if err != nil {
			return bad(err)
		}
		if kindOf(fi.Type) == kindInteger {
			f = math.Trunc(f)
		}
		b.doc.AddField(document.NewNumericFieldWithIndexingOptions(path, pos, f, numberOptions))
		b.sortValue(path, pos, numeric.Float64ToInt64(f))
		return true, nil
	case kindDate:
		t, err := dateValue(v)
		if err != nil {
			return bad(err)
		}
		if fi.Type != "date_nanos" {
			t = t.Truncate(time.Millisecond)
		}
		f, err := document.NewDateTimeFieldWithIndexingOptions(path, pos, t, time.RFC3339Nano, dateOptions)
		if err != nil {
			return bad(err)
		}
		b.doc.AddField(f)
		b.sortValue(path, pos, t.UnixNano())
		return true, nil
	case kindBoolean:
		t, err := boolValue(v)
		if err != nil {
			return bad(err)
		}
		b.doc.AddField(document.NewBooleanFieldWithIndexingOptions(path, pos, t, boolOptions))
		return true, nil
	}
	// object (a scalar where an object is mapped) or an unsupported type: not indexed.
	return false, nil
}

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
	return false, fmt.Errorf("failed to parse boolean value, only [true] or [false] are allowed")
}

// dateValue parses a date as Elasticsearch's default format strict_date_optional_time||epoch_millis.
func dateValue(v any) (time.Time, error) {
	switch v := v.(type) {
	case json.Number:
		return epochMillis(v.String())
	case float64:
		return epochMillis(strconv.FormatFloat(v, 'f', -1, 64))
	case string:
		return parseDate(v)
	}
	return time.Time{}, fmt.Errorf("not a date")
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
