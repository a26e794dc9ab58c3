package devstack

// _search and _count: Elasticsearch 8 request parsing, execution over bleve, and response
// rendering. The query DSL is in query.go and querystring.go, aggregations in aggs.go.
//
// Request body keys: query, size, from, sort, _source, track_total_hits, aggs/aggregations,
// track_scores, search_after; keys that only shape what Elasticsearch would add to hits (version,
// seq_no_primary_term, stored_fields, docvalue_fields, fields, highlight, explain, timeout,
// profile, stats, ...) are accepted and ignored. URL parameters: q, df, default_operator,
// lenient, size, from, sort, _source, _source_includes, _source_excludes, track_total_hits,
// track_scores, rest_total_hits_as_int, typed_keys; they win over the body as in Elasticsearch.
//
// Scores are bleve's tf-idf, not BM25: the order of hits by relevance is close to
// Elasticsearch's, the numbers are not. Queries Elasticsearch scores with a constant score as
// well here: range and exact-value queries on numbers and dates, exists and constant_score (the
// boost), bool filter clauses (0).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/document"
	"github.com/blevesearch/bleve/v2/numeric"
	"github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/query"
)

const (
	// maxResultWindow is Elasticsearch's index.max_result_window default.
	maxResultWindow = 10000
	// defaultTrackTotalHits is the exact-count bound Elasticsearch applies by default.
	defaultTrackTotalHits = 10000
)

type searchTarget struct {
	Index  bleve.Index                         // one index, or a bleve.IndexAlias over several
	Names  []string                            // the Elasticsearch index names searched
	Field  func(path string) (fieldInfo, bool) // merged mapping of the searched indices
	Fields func() []string                     // every mapped leaf path
}

// searchError is an Elasticsearch error answer: Status is the HTTP status, Type and Reason go to
// error.type / error.reason (and its root_cause).
type searchError struct {
	Status       int
	Type, Reason string
}

func (e *searchError) Error() string { return e.Type + ": " + e.Reason }

// sortSpec is one sort criterion.
type sortSpec struct {
	kind   string // "_score", "_doc", "_id" or "field"
	field  string
	info   fieldInfo
	fkind  fieldKind
	desc   bool
	absent bool   // unmapped field sorted with unmapped_type: every document is missing it
	format string // date format of the sort values (epoch millis when empty)
}

// sourceFilter is the _source option.
type sourceFilter struct {
	disabled           bool
	includes, excludes []string
}

func (f sourceFilter) none() bool {
	return !f.disabled && len(f.includes) == 0 && len(f.excludes) == 0
}

// searchRequest is a parsed _search request.
type searchRequest struct {
	query       query.Query
	constScore  *float64 // the query scores every hit alike (filter context, match_all)
	size, from  int
	sorts       []sortSpec
	source      sourceFilter
	trackTotal  int // -1: exact; 0: not tracked; n: exact up to n
	trackScores bool
	aggs        []*aggSpec
	aggParser   *aggParser
	searchAfter []any
	totalAsInt  bool
	typedKeys   bool
}

// bodyKeysIgnored only shape parts of the answer this store does not produce.
var bodyKeysIgnored = map[string]bool{
	"timeout": true, "version": true, "seq_no_primary_term": true, "stored_fields": true,
	"docvalue_fields": true, "fields": true, "script_fields": true, "highlight": true,
	"explain": true, "profile": true, "stats": true, "terminate_after": true,
	"runtime_mappings": true, "indices_boost": true, "min_score": true, "_name": true,
	"allow_partial_search_results": true, "batched_reduce_size": true, "ext": true,
}

// bodyKeysUnsupported change results in ways this store does not implement.
var bodyKeysUnsupported = map[string]bool{
	"post_filter": true, "collapse": true, "rescore": true, "suggest": true, "knn": true,
	"pit": true, "slice": true, "rank": true, "retriever": true, "sub_searches": true,
	"point_in_time": true,
}

func jsonTokenName(v any) string {
	switch v.(type) {
	case map[string]any:
		return "START_OBJECT"
	case []any:
		return "START_ARRAY"
	case string:
		return "VALUE_STRING"
	case json.Number:
		return "VALUE_NUMBER"
	case bool:
		return "VALUE_BOOLEAN"
	}
	return "VALUE_NULL"
}

// decodeBody decodes a request body that must be a JSON object (empty means {}).
func decodeBody(body []byte) (map[string]any, *searchError) {
	if len(bytes.TrimSpace(body)) == 0 {
		return map[string]any{}, nil
	}
	var v any
	if err := decodeJSON(body, &v); err != nil {
		return nil, &searchError{Status: 400, Type: "x_content_parse_exception", Reason: "failed to parse the request body: " + err.Error()}
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, newParsingError("Unknown key for a %s in [_na].", jsonTokenName(v))
	}
	return obj, nil
}

func parseSearchRequest(t searchTarget, body []byte, params url.Values, now time.Time) (*searchRequest, *searchError) {
	obj, err := decodeBody(body)
	if err != nil {
		return nil, err
	}
	c := &queryCompiler{field: t.Field, fields: t.Fields, now: now}
	r := &searchRequest{size: 10, trackTotal: defaultTrackTotalHits}
	var queryBody any
	for k, v := range obj {
		switch {
		case k == "query":
			queryBody = v
		case k == "size":
			if r.size, err = intParam("size", v); err != nil {
				return nil, err
			}
		case k == "from":
			if r.from, err = intParam("from", v); err != nil {
				return nil, err
			}
		case k == "sort":
			if r.sorts, err = parseSort(c, v); err != nil {
				return nil, err
			}
		case k == "_source":
			if r.source, err = parseSourceOption(v); err != nil {
				return nil, err
			}
		case k == "track_total_hits":
			if r.trackTotal, err = parseTrackTotal(v); err != nil {
				return nil, err
			}
		case k == "track_scores":
			r.trackScores = v == true
		case k == "aggs" || k == "aggregations":
			if r.aggParser == nil {
				r.aggParser = &aggParser{c: c}
			}
			specs, err := r.aggParser.parseAggs(v)
			if err != nil {
				return nil, err
			}
			r.aggs = append(r.aggs, specs...)
		case k == "search_after":
			arr, ok := v.([]any)
			if !ok {
				return nil, newParsingError("[search_after] must be an array")
			}
			r.searchAfter = arr
		case bodyKeysIgnored[k]:
		case bodyKeysUnsupported[k]:
			return nil, newIllegalArgument("[%s] is not supported by the Sluice devstack store", k)
		default:
			return nil, newParsingError("Unknown key for a %s in [%s].", jsonTokenName(v), k)
		}
	}
	// URL parameters win over the body.
	if v := params.Get("size"); v != "" {
		if r.size, err = intParam("size", json.Number(v)); err != nil {
			return nil, err
		}
	}
	if v := params.Get("from"); v != "" {
		if r.from, err = intParam("from", json.Number(v)); err != nil {
			return nil, err
		}
	}
	if v := params.Get("sort"); v != "" {
		if r.sorts, err = parseSortParam(c, v); err != nil {
			return nil, err
		}
	}
	if r.source, err = sourceParams(r.source, params); err != nil {
		return nil, err
	}
	if v := params.Get("track_total_hits"); v != "" {
		var tv any = json.Number(v)
		if b, err := strconv.ParseBool(v); err == nil {
			tv = b
		}
		if r.trackTotal, err = parseTrackTotal(tv); err != nil {
			return nil, err
		}
	}
	if v := params.Get("track_scores"); v != "" {
		r.trackScores = parseQSBool(v)
	}
	r.totalAsInt = parseQSBool(params.Get("rest_total_hits_as_int"))
	r.typedKeys = parseQSBool(params.Get("typed_keys"))
	if r.totalAsInt && r.trackTotal > 0 {
		r.trackTotal = -1
	}

	if r.from+r.size > maxResultWindow {
		return nil, newIllegalArgument("Result window is too large, from + size must be less than or equal to: [%d] but was [%d]. See the scroll api for a more efficient way to request large data sets. This limit can be set by changing the [index.max_result_window] index level setting.", maxResultWindow, r.from+r.size)
	}
	if r.searchAfter != nil {
		if r.from > 0 {
			return nil, newIllegalArgument("[from] parameter must be set to 0 when [search_after] is used")
		}
		if len(r.searchAfter) != len(r.sorts) || len(r.sorts) == 0 {
			return nil, newIllegalArgument("search_after has %d value(s) but sort has %d.", len(r.searchAfter), len(r.sorts))
		}
	}
	if r.query, r.constScore, err = requestQuery(c, queryBody, params); err != nil {
		return nil, err
	}
	return r, nil
}

// requestQuery compiles the query from the q URL parameter or the body (match_all when absent).
func requestQuery(c *queryCompiler, queryBody any, params url.Values) (query.Query, *float64, *searchError) {
	if q, ok := params["q"]; ok {
		o := qsOptions{fields: []string{"*"}, lenient: true}
		if df := params.Get("df"); df != "" {
			o.fields = []string{df}
			o.lenient = false
		}
		if v := params.Get("lenient"); v != "" {
			o.lenient = parseQSBool(v)
		}
		switch strings.ToLower(params.Get("default_operator")) {
		case "and":
			o.defaultAnd = true
		case "", "or":
		default:
			return nil, nil, newIllegalArgument("No enum constant for operator [%s]", params.Get("default_operator"))
		}
		s := ""
		if len(q) > 0 {
			s = q[0]
		}
		bq, err := c.queryString(s, o)
		return bq, nil, err
	}
	if queryBody == nil {
		one := 1.0
		return query.NewMatchAllQuery(), &one, nil
	}
	bq, err := c.compile(queryBody)
	if err != nil {
		return nil, nil, err
	}
	return bq, constantScoreOf(queryBody), nil
}

// constantScoreOf returns the score Elasticsearch gives every hit of a non-scoring query.
func constantScoreOf(v any) *float64 {
	obj, ok := v.(map[string]any)
	if !ok || len(obj) != 1 {
		return nil
	}
	boostOf := func(body any, def float64) float64 {
		if m, ok := body.(map[string]any); ok {
			if b, ok := m["boost"]; ok {
				if f, err := numberValue(b); err == nil {
					return f
				}
			}
		}
		return def
	}
	for typ, body := range obj {
		var s float64
		switch typ {
		case "match_all":
			s = boostOf(body, 1)
		case "constant_score":
			s = boostOf(body, 1)
		case "bool":
			m, ok := body.(map[string]any)
			if !ok {
				return nil
			}
			if _, ok := m["must"]; ok {
				return nil
			}
			if _, ok := m["should"]; ok {
				return nil
			}
			s = 0
		default:
			return nil
		}
		return &s
	}
	return nil
}

func intParam(name string, v any) (int, *searchError) {
	f, err := numberValue(v)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > math.MaxInt32 {
		return 0, newIllegalArgument("Failed to parse int parameter [%s] with value [%s]", name, scalarText(v))
	}
	if f < 0 {
		return 0, newIllegalArgument("[%s] parameter cannot be negative, found [%d]", name, int(f))
	}
	return int(f), nil
}

func parseTrackTotal(v any) (int, *searchError) {
	switch v := v.(type) {
	case bool:
		if v {
			return -1, nil
		}
		return 0, nil
	case json.Number:
		n, err := v.Int64()
		if err != nil || n < -1 {
			return 0, newIllegalArgument("[track_total_hits] parameter must be positive or equals to -1, got %s", v)
		}
		if n == -1 {
			return -1, nil
		}
		if n == 0 {
			return 0, nil
		}
		return int(n), nil
	}
	return 0, newParsingError("[track_total_hits] must be a boolean or an integer")
}

// parseSort reads the sort option: "field", {"field": "desc"}, {"field": {"order": ...}}, or an
// array of those.
func parseSort(c *queryCompiler, v any) ([]sortSpec, *searchError) {
	var items []any
	switch v := v.(type) {
	case []any:
		items = v
	default:
		items = []any{v}
	}
	var out []sortSpec
	for _, it := range items {
		switch it := it.(type) {
		case string:
			s, err := newSortSpec(c, it, "", nil)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		case map[string]any:
			for _, field := range sortedKeys(it) {
				opt := it[field]
				order := ""
				var opts map[string]any
				switch o := opt.(type) {
				case string:
					order = o
				case map[string]any:
					opts = o
					if ov, ok := o["order"]; ok {
						order = scalarText(ov)
					}
				default:
					return nil, newParsingError("[sort] option for [%s] must be a string or an object", field)
				}
				s, err := newSortSpec(c, field, order, opts)
				if err != nil {
					return nil, err
				}
				out = append(out, s)
			}
		default:
			return nil, newParsingError("[sort] malformed, expected a field name or an object")
		}
	}
	return out, nil
}

// parseSortParam reads sort=field:desc,other URL syntax.
func parseSortParam(c *queryCompiler, v string) ([]sortSpec, *searchError) {
	var out []sortSpec
	for _, part := range strings.Split(v, ",") {
		field, order := part, ""
		if i := strings.LastIndexByte(part, ':'); i >= 0 {
			field, order = part[:i], part[i+1:]
		}
		s, err := newSortSpec(c, field, order, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func newSortSpec(c *queryCompiler, field, order string, opts map[string]any) (sortSpec, *searchError) {
	s := sortSpec{field: field}
	switch strings.ToLower(order) {
	case "":
		s.desc = field == "_score"
	case "asc":
	case "desc":
		s.desc = true
	default:
		return s, newIllegalArgument("Unknown SortOrder [%s]", order)
	}
	unmappedType := ""
	for k, v := range opts {
		switch k {
		case "format":
			s.format = scalarText(v)
		case "order", "numeric_type":
		case "mode":
			switch scalarText(v) {
			case "min", "max":
			default:
				return s, newIllegalArgument("sort mode [%s] is not supported by the Sluice devstack store", scalarText(v))
			}
		case "missing":
			if m := scalarText(v); m != "_last" {
				return s, newIllegalArgument("sort missing [%s] is not supported by the Sluice devstack store: only _last", m)
			}
		case "unmapped_type":
			unmappedType = scalarText(v)
		default:
			return s, newParsingError("[field_sort] unknown field [%s]", k)
		}
	}
	switch field {
	case "_score", "_doc", "_id":
		s.kind = field
		return s, nil
	}
	s.kind = "field"
	fi, ok := c.mapped(field)
	if !ok {
		if unmappedType == "" {
			return s, newQueryShardError("No mapping found for [%s] in order to sort on", field)
		}
		s.absent = true
		fi = fieldInfo{Type: unmappedType}
	}
	s.info, s.fkind = fi, kindOf(fi.Type)
	switch s.fkind {
	case kindText:
		return s, newIllegalArgument("Text fields are not optimised for operations that require per-document field data like aggregations and sorting, so these operations are disabled by default. Please use a keyword field instead. Alternatively, set fielddata=true on [%s] in order to load field data by uninverting the inverted index. Note that this can use significant memory.", field)
	case kindKeyword, kindInteger, kindFloat, kindDate, kindBoolean:
	default:
		return s, newIllegalArgument("Field [%s] of type [%s] does not support sorting", field, fi.Type)
	}
	return s, nil
}

func (s sortSpec) bleve() search.SearchSort {
	switch s.kind {
	case "_score":
		return &search.SortScore{Desc: s.desc}
	case "_doc", "_id":
		return &search.SortDocID{Desc: s.desc}
	}
	field := s.field
	if s.fkind == kindInteger || s.fkind == kindFloat || s.fkind == kindDate {
		field = sortValueField(s.field)
	}
	sf := &search.SortField{Field: field, Desc: s.desc, Mode: search.SortFieldMin}
	if s.desc {
		sf.Mode = search.SortFieldMax
	}
	switch s.fkind {
	case kindInteger, kindFloat:
		sf.Type = search.SortFieldAsNumber
	case kindDate:
		sf.Type = search.SortFieldAsDate
	default:
		sf.Type = search.SortFieldAsString
	}
	return sf
}

// sortValue renders a hit's bleve sort value as Elasticsearch does.
func (s sortSpec) sortValue(hit *search.DocumentMatch, v string, ordinal int) any {
	switch s.kind {
	case "_score":
		return hit.Score
	case "_doc":
		return ordinal
	case "_id":
		return hit.ID
	}
	missing := s.absent || v == search.HighTerm || v == search.LowTerm
	switch s.fkind {
	case kindKeyword:
		if missing {
			return nil
		}
		return v
	case kindBoolean:
		if missing {
			return missingLong(s.desc)
		}
		if v == "T" {
			return 1
		}
		return 0
	case kindInteger, kindFloat, kindDate:
		if missing {
			if s.fkind == kindFloat {
				return nil
			}
			return missingLong(s.desc)
		}
		i, err := numeric.PrefixCoded(v).Int64()
		if err != nil {
			return nil
		}
		switch s.fkind {
		case kindDate:
			if s.format != "" {
				return formatAggDate(&aggSpec{format: s.format}, floorDiv(i, int64(time.Millisecond)))
			}
			if s.info.Type == "date_nanos" {
				return i
			}
			return floorDiv(i, int64(time.Millisecond))
		case kindInteger:
			return int64(numeric.Int64ToFloat64(i))
		}
		return numeric.Int64ToFloat64(i)
	}
	return v
}

// missingLong is the sort value Elasticsearch shows for a document missing a long/date field.
func missingLong(desc bool) int64 {
	if desc {
		return math.MinInt64
	}
	return math.MaxInt64
}

// searchAfterValue turns an Elasticsearch sort value into what bleve's SearchAfter expects
// (bleve encodes numbers from decimal text and dates from RFC 3339 itself). A missing-value marker
// (null, or the Long.MIN/MAX Elasticsearch shows) continues after the last valued document.
func (s sortSpec) searchAfterValue(v any) (string, *searchError) {
	switch s.kind {
	case "_score":
		f, err := numberValue(v)
		if err != nil {
			return "", newIllegalArgument("search_after: [%s] is not a score", scalarText(v))
		}
		return strconv.FormatFloat(f, 'f', -1, 64), nil
	case "_id", "_doc":
		return scalarText(v), nil
	}
	switch s.fkind {
	case kindInteger, kindFloat:
		if v == nil {
			if s.desc {
				return "-Inf", nil
			}
			return "+Inf", nil
		}
		f, err := numberValue(v)
		if err != nil {
			return "", newIllegalArgument("search_after: failed to parse [%s] as a number", scalarText(v))
		}
		return strconv.FormatFloat(f, 'g', -1, 64), nil
	case kindDate:
		if str, ok := v.(string); ok && s.format != "" {
			if t, err := parseDateFormat(str, s.format, time.UTC); err == nil {
				v = json.Number(strconv.FormatInt(t.UnixMilli(), 10))
			}
		}
		f, err := numberValue(v)
		if v != nil && err != nil {
			return "", newIllegalArgument("search_after: failed to parse [%s] as a date", scalarText(v))
		}
		var t time.Time
		switch {
		case v == nil || f >= math.MaxInt64/1e6 || f <= math.MinInt64/1e6:
			t = document.MaxTimeRepresentable
			if s.desc {
				t = document.MinTimeRepresentable
			}
		case s.info.Type == "date_nanos":
			t = time.Unix(0, int64(f))
		default:
			t = time.UnixMilli(int64(f))
		}
		return t.UTC().Format(time.RFC3339Nano), nil
	case kindBoolean:
		if scalarText(v) == "1" || v == true {
			return "T", nil
		}
		return "F", nil
	}
	if v == nil {
		if s.desc {
			return search.LowTerm, nil
		}
		return search.HighTerm, nil
	}
	return scalarText(v), nil
}

// parseSourceOption reads _source: true/false, "pattern", ["patterns"], or
// {"includes": [...], "excludes": [...]}.
func parseSourceOption(v any) (sourceFilter, *searchError) {
	strs := func(v any) ([]string, bool) {
		switch v := v.(type) {
		case string:
			return []string{v}, true
		case []any:
			out := make([]string, 0, len(v))
			for _, s := range v {
				str, ok := s.(string)
				if !ok {
					return nil, false
				}
				out = append(out, str)
			}
			return out, true
		}
		return nil, false
	}
	switch v := v.(type) {
	case bool:
		return sourceFilter{disabled: !v}, nil
	case string, []any:
		inc, ok := strs(v)
		if !ok {
			return sourceFilter{}, newParsingError("[_source] must be a boolean, a string, an array of strings or an object")
		}
		return sourceFilter{includes: inc}, nil
	case map[string]any:
		var f sourceFilter
		for k, val := range v {
			list, ok := strs(val)
			if !ok {
				return f, newParsingError("[_source] [%s] must be a string or an array of strings", k)
			}
			switch k {
			case "includes", "include":
				f.includes = list
			case "excludes", "exclude":
				f.excludes = list
			default:
				return f, newParsingError("Unknown key for a START_ARRAY in [%s].", k)
			}
		}
		return f, nil
	}
	return sourceFilter{}, newParsingError("[_source] must be a boolean, a string, an array of strings or an object")
}

func sourceParams(f sourceFilter, params url.Values) (sourceFilter, *searchError) {
	split := func(s string) []string {
		var out []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		return out
	}
	if v, ok := params["_source"]; ok && len(v) > 0 {
		if b, err := strconv.ParseBool(v[0]); err == nil {
			f = sourceFilter{disabled: !b}
		} else {
			f = sourceFilter{includes: split(v[0])}
		}
	}
	if v := params.Get("_source_includes"); v != "" {
		f.disabled = false
		f.includes = split(v)
	}
	if v := params.Get("_source_excludes"); v != "" {
		f.disabled = false
		f.excludes = split(v)
	}
	return f, nil
}

// filterSource applies includes/excludes to a _source object, keeping the original bytes when no
// filter applies.
func filterSource(raw []byte, f sourceFilter) (json.RawMessage, error) {
	if f.none() {
		return json.RawMessage(raw), nil
	}
	var obj map[string]any
	if err := decodeJSON(raw, &obj); err != nil {
		return nil, err
	}
	out := filterObject(obj, "", f)
	b, err := jsonMarshal(out)
	return json.RawMessage(b), err
}

func filterObject(obj map[string]any, prefix string, f sourceFilter) map[string]any {
	out := make(map[string]any, len(obj))
	for k, v := range obj {
		path := k
		if prefix != "" {
			path = prefix + "." + k
		}
		if v, ok := filterValue(v, path, f); ok {
			out[k] = v
		}
	}
	return out
}

func filterValue(v any, path string, f sourceFilter) (any, bool) {
	for _, p := range f.excludes {
		if globMatch(p, path) {
			return nil, false
		}
	}
	included := len(f.includes) == 0
	for _, p := range f.includes {
		if globMatch(p, path) {
			included = true
			break
		}
	}
	switch v := v.(type) {
	case map[string]any:
		if included {
			// Still apply excludes below this object.
			return filterObject(v, path, sourceFilter{excludes: f.excludes}), true
		}
		if !couldIncludeBelow(f.includes, path) {
			return nil, false
		}
		sub := filterObject(v, path, f)
		if len(sub) == 0 {
			return nil, false
		}
		return sub, true
	case []any:
		var out []any
		for _, e := range v {
			if fv, ok := filterValue(e, path, sourceFilterIncluded(f, included)); ok {
				out = append(out, fv)
			}
		}
		if out == nil {
			if included {
				return []any{}, true
			}
			return nil, false
		}
		return out, true
	}
	return v, included
}

func sourceFilterIncluded(f sourceFilter, included bool) sourceFilter {
	if included {
		return sourceFilter{excludes: f.excludes}
	}
	return f
}

// couldIncludeBelow reports whether an include pattern may match a path below prefix.
func couldIncludeBelow(includes []string, prefix string) bool {
	for _, p := range includes {
		if globPrefixMatch(p, prefix+".") {
			return true
		}
	}
	return false
}

// globPrefixMatch reports whether some string starting with prefix matches pattern.
func globPrefixMatch(pattern, prefix string) bool {
	if pattern == "" {
		return prefix == ""
	}
	if prefix == "" {
		return true
	}
	switch pattern[0] {
	case '*':
		return globPrefixMatch(pattern[1:], prefix) || globPrefixMatch(pattern, prefix[1:])
	case '?':
		return globPrefixMatch(pattern[1:], prefix[1:])
	}
	return pattern[0] == prefix[0] && globPrefixMatch(pattern[1:], prefix[1:])
}

// jsonMarshal is json.Marshal without HTML escaping (Elasticsearch does not escape <, >, &).
func jsonMarshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

type shardsInfo struct {
	Total      int `json:"total"`
	Successful int `json:"successful"`
	Skipped    int `json:"skipped"`
	Failed     int `json:"failed"`
}

type totalHits struct {
	Value    uint64 `json:"value"`
	Relation string `json:"relation"`
}

type searchHit struct {
	Index  string          `json:"_index"`
	ID     string          `json:"_id"`
	Score  *float64        `json:"_score"`
	Source json.RawMessage `json:"_source,omitempty"`
	Sort   []any           `json:"sort,omitempty"`
}

type searchHits struct {
	Total    any         `json:"total,omitempty"`
	MaxScore *float64    `json:"max_score"`
	Hits     []searchHit `json:"hits"`
}

type searchResponse struct {
	Took         int64          `json:"took"`
	TimedOut     bool           `json:"timed_out"`
	Shards       shardsInfo     `json:"_shards"`
	Hits         searchHits     `json:"hits"`
	Aggregations map[string]any `json:"aggregations,omitempty"`
}

func shardsOf(t searchTarget) shardsInfo {
	n := len(t.Names)
	return shardsInfo{Total: n, Successful: n}
}

// indexName maps bleve's hit.Index back to an Elasticsearch index name. bleve names an index by
// its path unless SetName was called, so a path component equal to a searched name counts too.
func (t searchTarget) indexName(bleveName string) string {
	for _, n := range t.Names {
		if n == bleveName {
			return n
		}
	}
	parts := strings.Split(filepath.ToSlash(bleveName), "/")
	for i := len(parts) - 1; i >= 0; i-- {
		for _, n := range t.Names {
			if n == parts[i] {
				return n
			}
		}
	}
	if len(t.Names) == 1 {
		return t.Names[0]
	}
	return bleveName
}

// searchFailure turns a bleve error into an Elasticsearch one.
func searchFailure(err error) *searchError {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &searchError{Status: 504, Type: "search_phase_execution_exception", Reason: "search cancelled: " + err.Error()}
	}
	return &searchError{Status: 400, Type: "search_phase_execution_exception", Reason: "all shards failed: " + err.Error()}
}

// executeSearch runs a _search request and returns the JSON response body. It is safe for
// concurrent use; t.Index must stay open until it returns.
func executeSearch(ctx context.Context, t searchTarget, body []byte, params url.Values, now time.Time) ([]byte, *searchError) {
	start := time.Now()
	r, serr := parseSearchRequest(t, body, params, now)
	if serr != nil {
		return nil, serr
	}
	resp := searchResponse{Shards: shardsOf(t), Hits: searchHits{Hits: []searchHit{}}}
	var run *aggRun
	if len(r.aggs) > 0 {
		run = newAggRun(r.aggs, r.aggParser)
	}
	scoring := len(r.sorts) == 0 || r.trackScores
	for _, s := range r.sorts {
		if s.kind == "_score" {
			scoring = true
		}
	}
	var total uint64
	if t.Index != nil {
		from := r.from
		if r.size == 0 {
			from = 0 // bleve's alias would otherwise return the skipped hits
		}
		req := bleve.NewSearchRequestOptions(r.query, r.size, from, false)
		if !r.source.disabled && r.size > 0 {
			req.Fields = []string{sourceField}
		}
		if len(r.sorts) > 0 {
			order := make(search.SortOrder, 0, len(r.sorts))
			for _, s := range r.sorts {
				if s.absent {
					continue
				}
				order = append(order, s.bleve())
			}
			if len(order) > 0 {
				req.Sort = order
			}
		}
		if !scoring {
			req.Score = "none"
		}
		if r.searchAfter != nil {
			after := make([]string, 0, len(r.sorts))
			for i, s := range r.sorts {
				if s.absent {
					continue
				}
				v, err := s.searchAfterValue(r.searchAfter[i])
				if err != nil {
					return nil, err
				}
				after = append(after, v)
			}
			req.SearchAfter = after
			req.From = 0
		}
		sctx := ctx
		if run != nil {
			sctx = context.WithValue(ctx, search.MakeDocumentMatchHandlerKey, search.MakeDocumentMatchHandler(run.makeHandler))
		}
		sr, err := t.Index.SearchInContext(sctx, req)
		if err != nil {
			return nil, searchFailure(err)
		}
		total = sr.Total
		if r.size == 0 {
			sr.Hits = nil
		}
		if len(t.Names) > 1 {
			orderTies(req.Sort, sr.Hits)
		}
		for i, hit := range sr.Hits {
			h := searchHit{Index: t.indexName(hit.Index), ID: hit.ID}
			if scoring {
				score := hit.Score
				if r.constScore != nil {
					score = *r.constScore
				}
				h.Score = &score
			}
			if !r.source.disabled {
				if src, ok := hit.Fields[sourceField].(string); ok {
					if h.Source, err = filterSource([]byte(src), r.source); err != nil {
						return nil, &searchError{Status: 500, Type: "exception", Reason: "read _source of [" + hit.ID + "]: " + err.Error()}
					}
				}
			}
			if len(r.sorts) > 0 {
				h.Sort = make([]any, 0, len(r.sorts))
				j := 0
				for _, s := range r.sorts {
					v := ""
					if !s.absent && j < len(hit.Sort) {
						v = hit.Sort[j]
						j++
					}
					h.Sort = append(h.Sort, s.sortValue(hit, v, r.from+i))
				}
			}
			resp.Hits.Hits = append(resp.Hits.Hits, h)
		}
		if scoring && len(sr.Hits) > 0 {
			ms := sr.MaxScore
			if r.constScore != nil {
				ms = *r.constScore
			}
			resp.Hits.MaxScore = &ms
		}
	}
	switch {
	case r.totalAsInt:
		resp.Hits.Total = total
	case r.trackTotal < 0:
		resp.Hits.Total = totalHits{Value: total, Relation: "eq"}
	case r.trackTotal > 0:
		if total > uint64(r.trackTotal) {
			resp.Hits.Total = totalHits{Value: uint64(r.trackTotal), Relation: "gte"}
		} else {
			resp.Hits.Total = totalHits{Value: total, Relation: "eq"}
		}
	}
	if run != nil {
		aggs, err := run.results(r.typedKeys)
		if err != nil {
			return nil, err
		}
		resp.Aggregations = aggs
	}
	resp.Took = time.Since(start).Milliseconds()
	out, err := jsonMarshal(resp)
	if err != nil {
		return nil, &searchError{Status: 500, Type: "exception", Reason: fmt.Sprintf("encode search response: %v", err)}
	}
	return out, nil
}

// orderTies orders the hits that hits' sort order ranks alike by index name, then by their
// order in their index: bleve merges the hits of several indices in the order their searches
// end, and constant scores (filters, ranges, exists) make ties common.
func orderTies(order search.SortOrder, hits search.DocumentMatchCollection) {
	scoring, desc := order.CacheIsScore(), order.CacheDescending()
	sort.SliceStable(hits, func(i, j int) bool {
		a, b := hits[i], hits[j]
		if c := order.Compare(scoring, desc, a, b); c != 0 {
			return c < 0
		}
		if a.Index != b.Index {
			return a.Index < b.Index
		}
		return a.HitNumber < b.HitNumber
	})
}

// executeCount runs a _count request and returns the JSON response body.
func executeCount(ctx context.Context, t searchTarget, body []byte, params url.Values, now time.Time) ([]byte, *searchError) {
	obj, serr := decodeBody(body)
	if serr != nil {
		return nil, serr
	}
	var queryBody any
	for k, v := range obj {
		if k != "query" {
			return nil, newParsingError("request does not support [%s]", k)
		}
		queryBody = v
	}
	c := &queryCompiler{field: t.Field, fields: t.Fields, now: now}
	q, _, serr := requestQuery(c, queryBody, params)
	if serr != nil {
		return nil, serr
	}
	var count uint64
	if t.Index != nil {
		req := bleve.NewSearchRequestOptions(q, 0, 0, false)
		req.Score = "none"
		sr, err := t.Index.SearchInContext(ctx, req)
		if err != nil {
			return nil, searchFailure(err)
		}
		count = sr.Total
	}
	out, err := jsonMarshal(struct {
		Count  uint64     `json:"count"`
		Shards shardsInfo `json:"_shards"`
	}{count, shardsOf(t)})
	if err != nil {
		return nil, &searchError{Status: 500, Type: "exception", Reason: fmt.Sprintf("encode count response: %v", err)}
	}
	return out, nil
}
