package devstack

// Translation of the Elasticsearch query DSL to bleve queries. Supported: match_all, match_none,
// query_string, match, match_phrase, multi_match (best_fields/phrase), term, terms, range, bool,
// exists, ids, prefix, wildcard, regexp, constant_score. Keyword fields match exactly, text fields
// are analysed with the standard analyzer (see model.go), numbers, dates and booleans compare by
// value.

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/blevesearch/bleve/v2/search/query"
)

// knownQueryTypes are Elasticsearch query types this store does not implement; they are answered
// with an error saying so instead of "unknown query".
var knownQueryTypes = map[string]bool{
	"boosting": true, "combined_fields": true, "dis_max": true, "distance_feature": true,
	"function_score": true, "fuzzy": true, "geo_bounding_box": true, "geo_distance": true,
	"geo_grid": true, "geo_polygon": true, "geo_shape": true, "has_child": true, "has_parent": true,
	"intervals": true, "knn": true, "match_bool_prefix": true, "match_phrase_prefix": true,
	"more_like_this": true, "nested": true, "parent_id": true, "percolate": true, "pinned": true,
	"rank_feature": true, "script": true, "script_score": true, "semantic": true, "shape": true,
	"simple_query_string": true, "span_containing": true, "span_field_masking": true,
	"span_first": true, "span_multi": true, "span_near": true, "span_not": true, "span_or": true,
	"span_term": true, "span_within": true, "sparse_vector": true, "terms_set": true,
	"text_expansion": true, "weighted_tokens": true, "wrapper": true, "rule": true,
}

// queryCompiler turns Elasticsearch query DSL (decoded with UseNumber) into bleve queries.
type queryCompiler struct {
	field  func(path string) (fieldInfo, bool)
	fields func() []string
	now    time.Time

	leafCache []string // fields(), sorted, read once per request
}

// leaves returns every mapped leaf path, sorted.
func (c *queryCompiler) leaves() []string {
	if c.leafCache == nil && c.fields != nil {
		c.leafCache = append([]string{}, c.fields()...)
		sort.Strings(c.leafCache)
	}
	return c.leafCache
}

func newParsingError(format string, args ...any) *searchError {
	return &searchError{Status: 400, Type: "parsing_exception", Reason: fmt.Sprintf(format, args...)}
}

func newQueryShardError(format string, args ...any) *searchError {
	return &searchError{Status: 400, Type: "query_shard_exception", Reason: fmt.Sprintf(format, args...)}
}

func newIllegalArgument(format string, args ...any) *searchError {
	return &searchError{Status: 400, Type: "illegal_argument_exception", Reason: fmt.Sprintf(format, args...)}
}

// compile translates one query object ({"<type>": {...}}).
func (c *queryCompiler) compile(v any) (query.Query, *searchError) {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, newParsingError("[_na] query malformed, must start with start_object")
	}
	if len(obj) == 0 {
		// Elasticsearch treats an empty query object as match_all.
		return query.NewMatchAllQuery(), nil
	}
	if len(obj) > 1 {
		names := sortedKeys(obj)
		return nil, newParsingError("[%s] malformed query, expected [END_OBJECT] but found [FIELD_NAME]", names[0])
	}
	for typ, body := range obj {
		return c.compileType(typ, body)
	}
	panic("unreachable")
}

func (c *queryCompiler) compileType(typ string, body any) (query.Query, *searchError) {
	switch typ {
	case "match_all":
		q := query.NewMatchAllQuery()
		if err := setBoostFrom(q, body, typ); err != nil {
			return nil, err
		}
		return q, nil
	case "match_none":
		return query.NewMatchNoneQuery(), nil
	case "bool":
		return c.compileBool(body)
	case "term":
		return c.compileTerm(body)
	case "terms":
		return c.compileTerms(body)
	case "match":
		return c.compileMatch(body, false)
	case "match_phrase":
		return c.compileMatch(body, true)
	case "multi_match":
		return c.compileMultiMatch(body)
	case "range":
		return c.compileRange(body)
	case "exists":
		return c.compileExists(body)
	case "query_string":
		return c.compileQueryString(body)
	case "ids":
		return c.compileIDs(body)
	case "prefix", "wildcard", "regexp":
		return c.compilePattern(typ, body)
	case "constant_score":
		return c.compileConstantScore(body)
	}
	if knownQueryTypes[typ] {
		return nil, newParsingError("query [%s] is not supported by the Sluice devstack store", typ)
	}
	return nil, newParsingError("unknown query [%s]", typ)
}

// queryObject is the body of a query of type typ, which must be an object.
func queryObject(typ string, body any) (map[string]any, *searchError) {
	obj, ok := body.(map[string]any)
	if !ok {
		return nil, newParsingError("[%s] query malformed, no start_object after query name", typ)
	}
	return obj, nil
}

// fieldBody splits the {"<field>": <value or options>} shape of term, match, range, prefix...
func fieldBody(typ string, body any) (string, any, *searchError) {
	obj, err := queryObject(typ, body)
	if err != nil {
		return "", nil, err
	}
	var field string
	var value any
	n := 0
	for k, v := range obj {
		if k == "boost" || k == "_name" {
			continue
		}
		field, value = k, v
		n++
	}
	if n == 0 {
		return "", nil, newIllegalArgument("[%s] query doesn't support multiple fields, found none", typ)
	}
	if n > 1 {
		return "", nil, newParsingError("[%s] query doesn't support multiple fields, found [%s] and [%s]", typ, sortedKeys(obj)[0], sortedKeys(obj)[1])
	}
	return field, value, nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// boostable is every bleve query with a boost.
type boostable interface {
	query.Query
	SetBoost(float64)
}

func setBoost(q query.Query, b float64) {
	if bq, ok := q.(boostable); ok && b != 1 {
		bq.SetBoost(b)
	}
}

func setBoostFrom(q query.Query, body any, typ string) *searchError {
	obj, err := queryObject(typ, body)
	if err != nil {
		return err
	}
	if b, ok := obj["boost"]; ok {
		f, err := numberValue(b)
		if err != nil {
			return newParsingError("[%s] failed to parse field [boost]", typ)
		}
		setBoost(q, f)
	}
	return nil
}

// clauses reads a bool clause: one query object or an array of them.
func (c *queryCompiler) clauses(v any) ([]query.Query, *searchError) {
	var items []any
	switch v := v.(type) {
	case []any:
		items = v
	case map[string]any:
		items = []any{v}
	case nil:
		return nil, nil
	default:
		return nil, newParsingError("[bool] query does not support [%v]", v)
	}
	out := make([]query.Query, 0, len(items))
	for _, it := range items {
		q, err := c.compile(it)
		if err != nil {
			return nil, err
		}
		out = append(out, q)
	}
	return out, nil
}

func (c *queryCompiler) compileBool(body any) (query.Query, *searchError) {
	obj, err := queryObject("bool", body)
	if err != nil {
		return nil, err
	}
	var must, filter, should, mustNot []query.Query
	msm := ""
	boost := 1.0
	for k, v := range obj {
		var err *searchError
		switch k {
		case "must":
			must, err = c.clauses(v)
		case "filter":
			filter, err = c.clauses(v)
		case "should":
			should, err = c.clauses(v)
		case "must_not", "mustNot":
			mustNot, err = c.clauses(v)
		case "minimum_should_match":
			msm = scalarText(v)
		case "boost":
			f, e := numberValue(v)
			if e != nil {
				return nil, newParsingError("[bool] failed to parse field [boost]")
			}
			boost = f
		case "_name", "adjust_pure_negative":
		default:
			return nil, newParsingError("[bool] query does not support [%s]", k)
		}
		if err != nil {
			return nil, err
		}
	}
	if len(must)+len(filter)+len(should)+len(mustNot) == 0 {
		q := query.NewMatchAllQuery()
		setBoost(q, boost)
		return q, nil
	}
	minShould := 0
	if len(should) > 0 {
		if msm != "" {
			n, err := minimumShouldMatch(msm, len(should))
			if err != nil {
				return nil, err
			}
			minShould = n
		} else if len(must) == 0 && len(filter) == 0 {
			minShould = 1
		}
	}
	// Filter clauses are required and score 0: they join the must clauses, so that the
	// conjunction leaps from match to match. (bleve's own BooleanQuery.Filter checks every match
	// of the rest against them, every document of the index when the rest is empty.)
	var filterQ query.Query
	switch len(filter) {
	case 0:
	case 1:
		filterQ = &constScoreQuery{q: filter[0]}
	default:
		filterQ = &constScoreQuery{q: query.NewConjunctionQuery(filter)}
	}
	bq := &query.BooleanQuery{}
	switch {
	case len(must) > 0 && filterQ != nil:
		bq.Must = query.NewConjunctionQuery(append(must, filterQ))
	case len(must) > 0:
		bq.Must = query.NewConjunctionQuery(must)
	case filterQ != nil:
		bq.Must = filterQ
	case len(should) > 0 && minShould == 0:
		// Optional should clauses need a required part to hang on to.
		bq.Must = query.NewConjunctionQuery([]query.Query{query.NewMatchAllQuery()})
	}
	if len(should) > 0 {
		if minShould > len(should) {
			return query.NewMatchNoneQuery(), nil
		}
		d := query.NewDisjunctionQuery(should)
		d.SetMin(float64(minShould))
		bq.Should = d
	}
	if len(mustNot) > 0 {
		bq.MustNot = query.NewDisjunctionQuery(mustNot)
	}
	setBoost(bq, boost)
	return bq, nil
}

// minimumShouldMatch evaluates the simple forms of minimum_should_match: an integer, a negative
// integer, a percentage or a negative percentage.
func minimumShouldMatch(spec string, n int) (int, *searchError) {
	s := strings.TrimSpace(spec)
	pct := strings.HasSuffix(s, "%")
	s = strings.TrimSuffix(s, "%")
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, newIllegalArgument("unsupported minimum_should_match [%s]", spec)
	}
	var r int
	if pct {
		r = n * v / 100
		if v < 0 {
			r = n + n*v/100
		}
	} else {
		r = v
		if v < 0 {
			r = n + v
		}
	}
	return max(0, min(r, n+1)), nil
}

// mapped returns the field's info; ok is false for a field absent from every searched mapping.
func (c *queryCompiler) mapped(field string) (fieldInfo, bool) {
	if c.field == nil {
		return fieldInfo{}, false
	}
	return c.field(field)
}

// termValueQuery is an exact-value query of one field, as a term query on that field type does.
// lenient drops values the field cannot hold (query_string over many fields) instead of erring.
func (c *queryCompiler) termValueQuery(field string, fi fieldInfo, v any, lenient bool) (query.Query, *searchError) {
	switch kindOf(fi.Type) {
	case kindKeyword, kindText:
		q := query.NewTermQuery(scalarText(v))
		q.SetField(field)
		return q, nil
	case kindInteger, kindFloat:
		f, err := numberValue(v)
		if err != nil {
			if lenient {
				return nil, nil
			}
			return nil, newQueryShardError("failed to create query: For input string: \"%s\"", scalarText(v))
		}
		return numberRange(field, &f, &f, true, true), nil
	case kindDate:
		start, err := c.dateBound(scalarText(v), "", nil, false)
		if err != nil {
			if lenient {
				return nil, nil
			}
			return nil, err
		}
		end, err := c.dateBound(scalarText(v), "", nil, true)
		if err != nil {
			return nil, err
		}
		return dateRange(field, start, end, true, true), nil
	case kindBoolean:
		b, err := boolValue(v)
		if err != nil {
			if lenient {
				return nil, nil
			}
			return nil, newQueryShardError("Can't parse boolean value [%s], expected [true] or [false]", scalarText(v))
		}
		q := query.NewBoolFieldQuery(b)
		q.SetField(field)
		return q, nil
	}
	if lenient {
		return nil, nil
	}
	return nil, newQueryShardError("field [%s] of type [%s] does not support term queries", field, fi.Type)
}

func (c *queryCompiler) compileTerm(body any) (query.Query, *searchError) {
	field, value, err := fieldBody("term", body)
	if err != nil {
		return nil, err
	}
	boost := 1.0
	caseInsensitive := false
	if opts, ok := value.(map[string]any); ok {
		for k, v := range opts {
			switch k {
			case "value":
			case "boost":
				if boost, err = floatOption("term", k, v); err != nil {
					return nil, err
				}
			case "case_insensitive":
				caseInsensitive = v == true
			case "_name":
			default:
				return nil, newParsingError("[term] query does not support [%s]", k)
			}
		}
		var ok bool
		if value, ok = opts["value"]; !ok {
			return nil, newParsingError("[term] query requires a value")
		}
	}
	if _, isObj := value.(map[string]any); isObj || value == nil {
		return nil, newParsingError("[term] query does not support array or object values")
	}
	fi, ok := c.mapped(field)
	if !ok {
		return query.NewMatchNoneQuery(), nil
	}
	var q query.Query
	if caseInsensitive && kindOf(fi.Type) == kindKeyword {
		rq := query.NewRegexpQuery("(?i)" + regexp.QuoteMeta(scalarText(value)))
		rq.SetField(field)
		q = rq
	} else if q, err = c.termValueQuery(field, fi, value, false); err != nil {
		return nil, err
	}
	setBoost(q, boost)
	return q, nil
}

func floatOption(typ, key string, v any) (float64, *searchError) {
	f, err := numberValue(v)
	if err != nil {
		return 0, newParsingError("[%s] failed to parse field [%s]", typ, key)
	}
	return f, nil
}

func (c *queryCompiler) compileTerms(body any) (query.Query, *searchError) {
	obj, err := queryObject("terms", body)
	if err != nil {
		return nil, err
	}
	boost := 1.0
	var field string
	var values []any
	n := 0
	for k, v := range obj {
		switch k {
		case "boost":
			f, err := floatOption("terms", k, v)
			if err != nil {
				return nil, err
			}
			boost = f
		case "_name":
		default:
			arr, ok := v.([]any)
			if !ok {
				if _, isObj := v.(map[string]any); isObj {
					return nil, newParsingError("[terms] query does not support terms lookup in the Sluice devstack store")
				}
				return nil, newParsingError("[terms] query does not support [%s]", k)
			}
			field, values = k, arr
			n++
		}
	}
	if n != 1 {
		return nil, newParsingError("[terms] query requires exactly one field, found [%d]", n)
	}
	fi, ok := c.mapped(field)
	if !ok || len(values) == 0 {
		return query.NewMatchNoneQuery(), nil
	}
	qs := make([]query.Query, 0, len(values))
	for _, v := range values {
		if v == nil {
			return nil, newIllegalArgument("No value specified for terms query")
		}
		q, err := c.termValueQuery(field, fi, v, false)
		if err != nil {
			return nil, err
		}
		qs = append(qs, q)
	}
	d := query.NewDisjunctionQuery(qs)
	setBoost(d, boost)
	return d, nil
}

// analyzeText runs the standard analyzer over s and returns its terms in order.
func analyzeText(s string) []string {
	tokens := standardAnalyzer.Analyze([]byte(s))
	out := make([]string, 0, len(tokens))
	for _, t := range tokens {
		out = append(out, string(t.Term))
	}
	return out
}

// matchOptions are the options match, match_phrase and query_string share.
type matchOptions struct {
	and     bool // operator AND (match) / default_operator AND
	phrase  bool
	lenient bool
	msm     string
	// zeroAll: zero_terms_query all (analysis left no terms).
	zeroAll bool
}

// fieldTextQuery is the query a match (or a query_string term) makes on one field.
func (c *queryCompiler) fieldTextQuery(field string, fi fieldInfo, text string, o matchOptions) (query.Query, *searchError) {
	switch kindOf(fi.Type) {
	case kindText:
		terms := analyzeText(text)
		if len(terms) == 0 {
			if o.zeroAll {
				return query.NewMatchAllQuery(), nil
			}
			return query.NewMatchNoneQuery(), nil
		}
		if len(terms) == 1 {
			q := query.NewTermQuery(terms[0])
			q.SetField(field)
			return q, nil
		}
		if o.phrase {
			return query.NewPhraseQuery(terms, field), nil
		}
		qs := make([]query.Query, len(terms))
		for i, t := range terms {
			q := query.NewTermQuery(t)
			q.SetField(field)
			qs[i] = q
		}
		if o.and {
			return query.NewConjunctionQuery(qs), nil
		}
		d := query.NewDisjunctionQuery(qs)
		if o.msm != "" {
			n, err := minimumShouldMatch(o.msm, len(qs))
			if err != nil {
				return nil, err
			}
			d.SetMin(float64(max(n, 1)))
		}
		return d, nil
	default:
		return c.termValueQuery(field, fi, text, o.lenient)
	}
}

func (c *queryCompiler) compileMatch(body any, phrase bool) (query.Query, *searchError) {
	typ := "match"
	if phrase {
		typ = "match_phrase"
	}
	field, value, err := fieldBody(typ, body)
	if err != nil {
		return nil, err
	}
	o := matchOptions{phrase: phrase}
	boost := 1.0
	if opts, ok := value.(map[string]any); ok {
		var ok bool
		if value, ok = opts["query"]; !ok {
			return nil, newParsingError("[%s] requires query value", typ)
		}
		for k, v := range opts {
			switch k {
			case "query", "_name", "analyzer", "auto_generate_synonyms_phrase_query", "fuzzy_transpositions", "max_expansions", "prefix_length":
			case "operator":
				switch strings.ToLower(scalarText(v)) {
				case "and":
					o.and = true
				case "or":
				default:
					return nil, newIllegalArgument("No enum constant for operator [%s]", scalarText(v))
				}
			case "minimum_should_match":
				o.msm = scalarText(v)
			case "lenient":
				o.lenient = v == true
			case "zero_terms_query":
				o.zeroAll = strings.EqualFold(scalarText(v), "all")
			case "boost":
				if boost, err = floatOption(typ, k, v); err != nil {
					return nil, err
				}
			case "slop":
				// Phrase slop is not supported by bleve's phrase query: slop 0 is applied.
			case "fuzziness":
				return nil, newParsingError("[%s] option [fuzziness] is not supported by the Sluice devstack store", typ)
			default:
				return nil, newParsingError("[%s] query does not support [%s]", typ, k)
			}
		}
	}
	if value == nil {
		return nil, newParsingError("[%s] requires query value", typ)
	}
	if _, isObj := value.(map[string]any); isObj {
		return nil, newParsingError("[%s] unknown token [START_OBJECT] after [query]", typ)
	}
	if _, isArr := value.([]any); isArr {
		return nil, newParsingError("[%s] unknown token [START_ARRAY] after [query]", typ)
	}
	return c.onField(field, boost, func(fi fieldInfo) (query.Query, *searchError) {
		return c.fieldTextQuery(field, fi, scalarText(value), o)
	})
}

// onField builds with build the query of one field, boosted; none when the
// field is not mapped or build made no query.
func (c *queryCompiler) onField(field string, boost float64, build func(fieldInfo) (query.Query, *searchError)) (query.Query, *searchError) {
	fi, ok := c.mapped(field)
	if !ok {
		return query.NewMatchNoneQuery(), nil
	}
	q, err := build(fi)
	if err != nil {
		return nil, err
	}
	if q == nil {
		return query.NewMatchNoneQuery(), nil
	}
	setBoost(q, boost)
	return q, nil
}

func (c *queryCompiler) compileMultiMatch(body any) (query.Query, *searchError) {
	opts, err := queryObject("multi_match", body)
	if err != nil {
		return nil, err
	}
	value, ok := opts["query"]
	if !ok || value == nil {
		return nil, newParsingError("[multi_match] requires query value")
	}
	o := matchOptions{lenient: true}
	var patterns []string
	boost := 1.0
	for k, v := range opts {
		switch k {
		case "query", "_name", "analyzer", "tie_breaker", "auto_generate_synonyms_phrase_query":
		case "fields":
			switch v := v.(type) {
			case []any:
				for _, f := range v {
					patterns = append(patterns, scalarText(f))
				}
			case string:
				patterns = append(patterns, v)
			}
		case "type":
			switch scalarText(v) {
			case "best_fields", "most_fields":
			case "phrase":
				o.phrase = true
			default:
				return nil, newParsingError("[multi_match] type [%s] is not supported by the Sluice devstack store", scalarText(v))
			}
		case "operator":
			o.and = strings.EqualFold(scalarText(v), "and")
		case "minimum_should_match":
			o.msm = scalarText(v)
		case "lenient":
			o.lenient = v == true
		case "zero_terms_query":
			o.zeroAll = strings.EqualFold(scalarText(v), "all")
		case "boost":
			f, err := floatOption("multi_match", k, v)
			if err != nil {
				return nil, err
			}
			boost = f
		default:
			return nil, newParsingError("[multi_match] query does not support [%s]", k)
		}
	}
	if len(patterns) == 0 {
		patterns = []string{"*"}
	}
	var qs []query.Query
	for _, f := range c.expandFields(patterns) {
		q, err := c.fieldTextQuery(f.path, f.info, scalarText(value), o)
		if err != nil {
			return nil, err
		}
		if q != nil {
			setBoost(q, f.boost)
			qs = append(qs, q)
		}
	}
	if len(qs) == 0 {
		return query.NewMatchNoneQuery(), nil
	}
	d := query.NewDisjunctionQuery(qs)
	setBoost(d, boost)
	return d, nil
}

// mappedField is one concrete field a pattern expanded to.
type mappedField struct {
	path  string
	info  fieldInfo
	boost float64
}

// expandFields resolves field names and patterns (`*`, `kubernetes.*`, `log^2`) to mapped leaf
// fields that can be searched. A field named explicitly and unmapped is dropped.
func (c *queryCompiler) expandFields(patterns []string) []mappedField {
	var out []mappedField
	seen := map[string]bool{}
	for _, p := range patterns {
		boost := 1.0
		if i := strings.LastIndexByte(p, '^'); i > 0 {
			if f, err := strconv.ParseFloat(p[i+1:], 64); err == nil {
				boost = f
				p = p[:i]
			}
		}
		if !strings.ContainsAny(p, "*?") {
			if fi, ok := c.mapped(p); ok && !seen[p] && searchableKind(fi.Type) {
				seen[p] = true
				out = append(out, mappedField{p, fi, boost})
			}
			continue
		}
		for _, f := range c.leaves() {
			if seen[f] || strings.HasPrefix(f, "_") || !globMatch(p, f) {
				continue
			}
			fi, ok := c.mapped(f)
			if !ok || !searchableKind(fi.Type) {
				continue
			}
			seen[f] = true
			out = append(out, mappedField{f, fi, boost})
		}
	}
	return out
}

func searchableKind(typ string) bool {
	switch kindOf(typ) {
	case kindKeyword, kindText, kindInteger, kindFloat, kindDate, kindBoolean:
		return true
	}
	return false
}

func (c *queryCompiler) compileExists(body any) (query.Query, *searchError) {
	obj, err := queryObject("exists", body)
	if err != nil {
		return nil, err
	}
	fv, ok := obj["field"]
	if !ok {
		return nil, newParsingError("[exists] must be provided with a [field]")
	}
	for k := range obj {
		if k != "field" && k != "boost" && k != "_name" {
			return nil, newParsingError("[exists] query does not support [%s]", k)
		}
	}
	q := c.existsQuery(scalarText(fv))
	return q, setBoostFrom(q, body, "exists")
}

// existsQuery matches documents with a value at field (a leaf or an object path; patterns allowed),
// every hit scored 1 as Elasticsearch scores them.
func (c *queryCompiler) existsQuery(field string) query.Query {
	var qs []query.Query
	if !strings.ContainsAny(field, "*?") {
		if fi, ok := c.mapped(field); ok && kindOf(fi.Type) != kindObject {
			qs = c.leafExists(qs, field, fi)
		} else {
			// An object: any of its leaves.
			leaves := c.leaves()
			prefix := field + "."
			for i := sort.SearchStrings(leaves, prefix); i < len(leaves) && strings.HasPrefix(leaves[i], prefix); i++ {
				fi, _ := c.mapped(leaves[i])
				qs = c.leafExists(qs, leaves[i], fi)
			}
		}
	} else {
		for _, f := range c.leaves() {
			if globMatch(field, f) {
				fi, _ := c.mapped(f)
				qs = c.leafExists(qs, f, fi)
			}
		}
	}
	switch len(qs) {
	case 0:
		return query.NewMatchNoneQuery()
	case 1:
		return &constScoreQuery{q: qs[0], boost: 1}
	}
	return &constScoreQuery{q: query.NewDisjunctionQuery(qs), boost: 1}
}

// leafExists appends the queries of documents with a value at the leaf path: its term in
// _field_names, where buildDocument lists keyword, text and boolean fields (and where indices
// written by the previous model list every field), and for numbers and dates their coarsest
// terms (see model.go).
func (c *queryCompiler) leafExists(qs []query.Query, path string, fi fieldInfo) []query.Query {
	q := query.NewTermQuery(path)
	q.SetField(fieldNamesField)
	qs = append(qs, q)
	switch kindOf(fi.Type) {
	case kindInteger, kindFloat, kindDate:
		qs = append(qs, numberRange(path, nil, nil, true, true))
	}
	return qs
}

func (c *queryCompiler) compileIDs(body any) (query.Query, *searchError) {
	obj, err := queryObject("ids", body)
	if err != nil {
		return nil, err
	}
	var ids []string
	for k, v := range obj {
		switch k {
		case "values":
			arr, ok := v.([]any)
			if !ok {
				return nil, newParsingError("[ids] values must be an array")
			}
			for _, id := range arr {
				ids = append(ids, scalarText(id))
			}
		case "boost", "_name":
		default:
			return nil, newParsingError("[ids] query does not support [%s]", k)
		}
	}
	if len(ids) == 0 {
		return query.NewMatchNoneQuery(), nil
	}
	q := query.NewDocIDQuery(ids)
	return q, setBoostFrom(q, body, "ids")
}

// compilePattern handles prefix, wildcard and regexp on keyword and text fields.
func (c *queryCompiler) compilePattern(typ string, body any) (query.Query, *searchError) {
	field, value, err := fieldBody(typ, body)
	if err != nil {
		return nil, err
	}
	boost := 1.0
	caseInsensitive := false
	if opts, ok := value.(map[string]any); ok {
		key := "value"
		if _, ok := opts["value"]; !ok {
			if typ == "wildcard" {
				key = "wildcard"
			}
		}
		for k, v := range opts {
			switch k {
			case "value", "wildcard", "rewrite", "_name", "flags", "max_determinized_states":
			case "case_insensitive":
				caseInsensitive = v == true
			case "boost":
				if boost, err = floatOption(typ, k, v); err != nil {
					return nil, err
				}
			default:
				return nil, newParsingError("[%s] query does not support [%s]", typ, k)
			}
		}
		if value, ok = opts[key]; !ok {
			return nil, newParsingError("[%s] requires a value", typ)
		}
	}
	fi, ok := c.mapped(field)
	if !ok {
		return query.NewMatchNoneQuery(), nil
	}
	k := kindOf(fi.Type)
	if k != kindKeyword && k != kindText {
		return nil, newQueryShardError("Can only use %s queries on keyword and text fields - not on [%s] which is of type [%s]", typ, field, fi.Type)
	}
	s := scalarText(value)
	var re string
	switch typ {
	case "prefix":
		re = regexp.QuoteMeta(s) + ".*"
	case "wildcard":
		re = wildcardRegexp(s, true)
	case "regexp":
		if _, err := regexp.Compile(s); err != nil {
			return nil, newQueryShardError("failed to create query: invalid regular expression [%s]", s)
		}
		re = s
	}
	if caseInsensitive {
		re = "(?i)" + re
	}
	q := query.NewRegexpQuery(re)
	q.SetField(field)
	setBoost(q, boost)
	return q, nil
}

// wildcardRegexp turns a Lucene wildcard pattern (`*`, `?`, backslash escapes when escapes is
// true) into an anchored-by-construction regular expression over whole terms.
func wildcardRegexp(pattern string, escapes bool) string {
	var b strings.Builder
	lit := strings.Builder{}
	flush := func() {
		if lit.Len() > 0 {
			b.WriteString(regexp.QuoteMeta(lit.String()))
			lit.Reset()
		}
	}
	for i := 0; i < len(pattern); i++ {
		ch := pattern[i]
		switch {
		case escapes && ch == '\\' && i+1 < len(pattern):
			i++
			lit.WriteByte(pattern[i])
		case ch == '*':
			flush()
			b.WriteString(".*")
		case ch == '?':
			flush()
			b.WriteString(".")
		default:
			lit.WriteByte(ch)
		}
	}
	flush()
	return b.String()
}

func (c *queryCompiler) compileConstantScore(body any) (query.Query, *searchError) {
	obj, err := queryObject("constant_score", body)
	if err != nil {
		return nil, err
	}
	f, ok := obj["filter"]
	if !ok {
		return nil, newParsingError("[constant_score] requires a 'filter' element")
	}
	inner, err := c.compile(f)
	if err != nil {
		return nil, err
	}
	q := &constScoreQuery{q: inner, boost: 1}
	return q, setBoostFrom(q, body, "constant_score")
}

func (c *queryCompiler) compileRange(body any) (query.Query, *searchError) {
	field, value, err := fieldBody("range", body)
	if err != nil {
		return nil, err
	}
	opts, ok := value.(map[string]any)
	if !ok {
		return nil, newParsingError("[range] query malformed, after field missing start object")
	}
	var r rangeSpec
	boost := 1.0
	includeLower, includeUpper := true, true
	var from, to any
	for k, v := range opts {
		switch k {
		case "gt":
			r.lower, r.lowerInclusive = v, false
		case "gte":
			r.lower, r.lowerInclusive = v, true
		case "lt":
			r.upper, r.upperInclusive = v, false
		case "lte":
			r.upper, r.upperInclusive = v, true
		case "from":
			from = v
		case "to":
			to = v
		case "include_lower":
			includeLower = v != false
		case "include_upper":
			includeUpper = v != false
		case "format":
			r.format = scalarText(v)
		case "time_zone":
			loc, err := parseTimeZone(scalarText(v))
			if err != nil {
				return nil, err
			}
			r.loc = loc
		case "boost":
			if boost, err = floatOption("range", k, v); err != nil {
				return nil, err
			}
		case "relation", "_name":
		default:
			return nil, newParsingError("[range] query does not support [%s]", k)
		}
	}
	if from != nil && r.lower == nil {
		r.lower, r.lowerInclusive = from, includeLower
	}
	if to != nil && r.upper == nil {
		r.upper, r.upperInclusive = to, includeUpper
	}
	return c.onField(field, boost, func(fi fieldInfo) (query.Query, *searchError) {
		return c.rangeQuery(field, fi, r, false)
	})
}

// rangeSpec is a range over one field; nil bounds are open.
type rangeSpec struct {
	lower, upper                   any
	lowerInclusive, upperInclusive bool
	format                         string
	loc                            *time.Location
}

// rangeQuery builds the bleve range query for the field's type (nil with lenient when a bound
// does not fit the type).
func (c *queryCompiler) rangeQuery(field string, fi fieldInfo, r rangeSpec, lenient bool) (query.Query, *searchError) {
	if r.lower == nil && r.upper == nil {
		q := c.existsQuery(field)
		return q, nil
	}
	li, ui := r.lowerInclusive, r.upperInclusive
	switch kindOf(fi.Type) {
	case kindInteger, kindFloat:
		var lo, hi *float64
		for i, b := range []any{r.lower, r.upper} {
			if b == nil {
				continue
			}
			f, err := numberValue(b)
			if err != nil {
				if lenient {
					return nil, nil
				}
				return nil, newQueryShardError("failed to create query: For input string: \"%s\"", scalarText(b))
			}
			if i == 0 {
				lo = &f
			} else {
				hi = &f
			}
		}
		return numberRange(field, lo, hi, li, ui), nil
	case kindDate:
		var lo, hi time.Time
		if r.lower != nil {
			// gt rounds up, gte rounds down (Elasticsearch date math rounding rules).
			t, err := c.dateBound(scalarText(r.lower), r.format, r.loc, !li)
			if err != nil {
				if lenient {
					return nil, nil
				}
				return nil, err
			}
			lo = t
		}
		if r.upper != nil {
			// lt rounds down, lte rounds up.
			t, err := c.dateBound(scalarText(r.upper), r.format, r.loc, ui)
			if err != nil {
				if lenient {
					return nil, nil
				}
				return nil, err
			}
			hi = t
		}
		return dateRange(field, lo, hi, li, ui), nil
	case kindKeyword, kindText:
		lo, hi := "", ""
		if r.lower != nil {
			lo = scalarText(r.lower)
		}
		if r.upper != nil {
			hi = scalarText(r.upper)
		}
		q := query.NewTermRangeInclusiveQuery(lo, hi, &li, &ui)
		q.SetField(field)
		return q, nil
	case kindBoolean:
		if lenient {
			return nil, nil
		}
	}
	return nil, newQueryShardError("Field [%s] of type [%s] does not support range queries", field, fi.Type)
}

// dateBound parses a date or date math expression (now-1h, now/d, 2026-11-21||+1d/d) in the
// given format (Elasticsearch's default when empty). roundUp picks the last millisecond of a
// rounded unit instead of its first, as Elasticsearch does for gt and lte.
func (c *queryCompiler) dateBound(s, format string, loc *time.Location, roundUp bool) (time.Time, *searchError) {
	t, err := evalDateMath(s, format, c.now, loc, roundUp)
	if err != nil {
		return time.Time{}, &searchError{Status: 400, Type: "parse_exception", Reason: fmt.Sprintf("failed to parse date field [%s] with format [%s]: [%v]", s, orDefault(format, "strict_date_optional_time||epoch_millis"), err)}
	}
	if t.IsZero() {
		// bleve treats the zero time as an open bound; step off it.
		t = t.Add(time.Nanosecond)
	}
	return t, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// parseTimeZone accepts Z, UTC, ±hh:mm, ±hhmm, ±hh and IANA names.
func parseTimeZone(s string) (*time.Location, *searchError) {
	switch s {
	case "", "Z", "UTC", "utc", "GMT", "+00:00", "-00:00":
		return time.UTC, nil
	}
	if s[0] == '+' || s[0] == '-' {
		digits := strings.ReplaceAll(s[1:], ":", "")
		if len(digits) == 2 || len(digits) == 4 {
			h, err1 := strconv.Atoi(digits[:2])
			m := 0
			var err2 error
			if len(digits) == 4 {
				m, err2 = strconv.Atoi(digits[2:])
			}
			if err1 == nil && err2 == nil && h <= 18 && m < 60 {
				off := h*3600 + m*60
				if s[0] == '-' {
					off = -off
				}
				return time.FixedZone(s, off), nil
			}
		}
	}
	loc, err := time.LoadLocation(s)
	if err != nil {
		return nil, newIllegalArgument("Unknown time-zone ID: %s", s)
	}
	return loc, nil
}

// evalDateMath evaluates an Elasticsearch date math expression.
func evalDateMath(s, format string, now time.Time, loc *time.Location, roundUp bool) (time.Time, error) {
	if loc == nil {
		loc = time.UTC
	}
	var t time.Time
	var rest string
	switch {
	case strings.HasPrefix(s, "now"):
		t, rest = now.In(loc), s[3:]
	default:
		anchor := s
		if i := strings.Index(s, "||"); i >= 0 {
			anchor, rest = s[:i], s[i+2:]
		}
		var err error
		if t, err = parseDateFormat(anchor, format, loc); err != nil {
			return time.Time{}, err
		}
		t = t.In(loc)
		if rest == "" && roundUp && format != "" {
			// A formatted date without time (yyyy-MM-dd) stands for its whole unit in
			// Elasticsearch when rounding up; approximate: round up to the day when the format has
			// no time fields.
			if !strings.ContainsAny(strings.ReplaceAll(format, "epoch", ""), "Hhms") && !strings.HasPrefix(format, "epoch") && !strings.Contains(format, "date_optional_time") {
				t = roundDate(t, 'd', true)
			}
		}
	}
	for rest != "" {
		op := rest[0]
		rest = rest[1:]
		switch op {
		case '+', '-':
			i := 0
			for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
				i++
			}
			n := 1
			if i > 0 {
				v, err := strconv.Atoi(rest[:i])
				if err != nil {
					return time.Time{}, err
				}
				n = v
			}
			if i >= len(rest) {
				return time.Time{}, fmt.Errorf("truncated date math [%s]", s)
			}
			unit := rest[i]
			rest = rest[i+1:]
			if op == '-' {
				n = -n
			}
			var err error
			if t, err = addDateUnit(t, unit, n); err != nil {
				return time.Time{}, err
			}
		case '/':
			if rest == "" {
				return time.Time{}, fmt.Errorf("truncated date math [%s]", s)
			}
			unit := rest[0]
			rest = rest[1:]
			if !strings.ContainsRune("yMwdhHms", rune(unit)) {
				return time.Time{}, fmt.Errorf("unit [%c] not supported for date math [%s]", unit, s)
			}
			t = roundDate(t, unit, roundUp)
		default:
			return time.Time{}, fmt.Errorf("operator not supported for date math [%s]", s)
		}
	}
	return t.UTC(), nil
}

func addDateUnit(t time.Time, unit byte, n int) (time.Time, error) {
	switch unit {
	case 'y':
		return t.AddDate(n, 0, 0), nil
	case 'M':
		return t.AddDate(0, n, 0), nil
	case 'w':
		return t.AddDate(0, 0, 7*n), nil
	case 'd':
		return t.AddDate(0, 0, n), nil
	case 'h', 'H':
		return t.Add(time.Duration(n) * time.Hour), nil
	case 'm':
		return t.Add(time.Duration(n) * time.Minute), nil
	case 's':
		return t.Add(time.Duration(n) * time.Second), nil
	}
	return time.Time{}, fmt.Errorf("unit [%c] not supported for date math", unit)
}

// roundDate rounds t down to the start of its unit, or, with up, to the last millisecond of it.
func roundDate(t time.Time, unit byte, up bool) time.Time {
	loc := t.Location()
	y, mo, d := t.Date()
	var start, next time.Time
	switch unit {
	case 'y':
		start = time.Date(y, 1, 1, 0, 0, 0, 0, loc)
		next = start.AddDate(1, 0, 0)
	case 'M':
		start = time.Date(y, mo, 1, 0, 0, 0, 0, loc)
		next = start.AddDate(0, 1, 0)
	case 'w':
		wd := (int(t.Weekday()) + 6) % 7 // Monday = 0
		start = time.Date(y, mo, d-wd, 0, 0, 0, 0, loc)
		next = start.AddDate(0, 0, 7)
	case 'd':
		start = time.Date(y, mo, d, 0, 0, 0, 0, loc)
		next = start.AddDate(0, 0, 1)
	case 'h', 'H':
		start = time.Date(y, mo, d, t.Hour(), 0, 0, 0, loc)
		next = start.Add(time.Hour)
	case 'm':
		start = time.Date(y, mo, d, t.Hour(), t.Minute(), 0, 0, loc)
		next = start.Add(time.Minute)
	case 's':
		start = time.Date(y, mo, d, t.Hour(), t.Minute(), t.Second(), 0, loc)
		next = start.Add(time.Second)
	default:
		return t
	}
	if up {
		return next.Add(-time.Millisecond)
	}
	return start
}

// parseDateFormat parses s with an Elasticsearch date format ("a||b" alternatives; named formats
// and Java-style patterns such as yyyy-MM-dd HH:mm:ss). The empty format is the date field default.
func parseDateFormat(s, format string, loc *time.Location) (time.Time, error) {
	if format == "" {
		format = "strict_date_optional_time||epoch_millis"
	}
	var firstErr error
	for _, f := range strings.Split(format, "||") {
		t, err := parseOneDateFormat(s, strings.TrimSpace(f), loc)
		if err == nil {
			return t, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return time.Time{}, firstErr
}

func parseOneDateFormat(s, f string, loc *time.Location) (time.Time, error) {
	switch f {
	case "epoch_millis":
		if !isEpochText(s) && !(len(s) == 4 && isEpochText(s+"0")) {
			return time.Time{}, fmt.Errorf("not epoch millis")
		}
		return epochMillis(s)
	case "epoch_second":
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) > 9e12 {
			return time.Time{}, fmt.Errorf("not epoch seconds")
		}
		return epochMillis(strconv.FormatFloat(v*1000, 'f', -1, 64))
	case "strict_date_optional_time", "date_optional_time", "strict_date_optional_time_nanos",
		"strict_date_time", "date_time", "strict_date_time_no_millis", "date_time_no_millis",
		"strict_date", "date", "iso8601":
		t, ok := parseISODateIn(s, loc)
		if !ok {
			return time.Time{}, fmt.Errorf("not an ISO 8601 date")
		}
		return t, nil
	}
	layout, ok := javaDateLayout(f)
	if !ok {
		return time.Time{}, fmt.Errorf("unsupported date format [%s]", f)
	}
	return time.ParseInLocation(layout, s, loc)
}

// parseISODateIn is parseISODate with loc for values without an offset.
func parseISODateIn(s string, loc *time.Location) (time.Time, bool) {
	t, ok := parseISODate(s)
	if !ok || loc == nil || loc == time.UTC || hasZone(s) {
		return t, ok
	}
	// Reinterpret the wall clock in loc.
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), loc).UTC(), true
}

func hasZone(s string) bool {
	i := strings.IndexAny(s, "Tt")
	if i < 0 {
		return false
	}
	rest := s[i:]
	return strings.ContainsAny(rest, "Zz+-")
}

// javaDateLayout converts the common letters of a Java DateTimeFormatter pattern to a Go layout.
func javaDateLayout(p string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(p); {
		ch := p[i]
		j := i
		for j < len(p) && p[j] == ch {
			j++
		}
		n := j - i
		switch ch {
		case 'y', 'u':
			if n == 2 {
				b.WriteString("06")
			} else {
				b.WriteString("2006")
			}
		case 'M':
			switch n {
			case 1:
				b.WriteString("1")
			case 2:
				b.WriteString("01")
			case 3:
				b.WriteString("Jan")
			default:
				b.WriteString("January")
			}
		case 'd':
			if n == 1 {
				b.WriteString("2")
			} else {
				b.WriteString("02")
			}
		case 'H':
			b.WriteString("15")
		case 'h':
			b.WriteString("03")
		case 'a':
			b.WriteString("PM")
		case 'm':
			b.WriteString("04")
		case 's':
			b.WriteString("05")
		case 'S':
			b.WriteString(strings.Repeat("0", n))
		case 'X':
			if n == 1 {
				b.WriteString("Z07")
			} else if n == 2 {
				b.WriteString("Z0700")
			} else {
				b.WriteString("Z07:00")
			}
		case 'Z':
			b.WriteString("-0700")
		case 'E':
			b.WriteString("Mon")
		case '\'':
			k := strings.IndexByte(p[i+1:], '\'')
			if k < 0 {
				return "", false
			}
			b.WriteString(p[i+1 : i+1+k])
			i = i + k + 2
			continue
		default:
			if (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') {
				return "", false
			}
			b.WriteString(p[i:j])
		}
		i = j
	}
	// A fraction written as ".SSS" needs Go's ".000" form, which the loop produced.
	return b.String(), true
}

// globMatch reports whether name matches a pattern where `*` matches any run of characters and `?`
// one character.
func globMatch(pattern, name string) bool {
	px, nx := 0, 0
	nextPx, nextNx := 0, 0
	for px < len(pattern) || nx < len(name) {
		if px < len(pattern) {
			switch c := pattern[px]; c {
			case '*':
				nextPx, nextNx = px, nx+1
				px++
				continue
			case '?':
				if nx < len(name) {
					px++
					nx++
					continue
				}
			default:
				if nx < len(name) && name[nx] == c {
					px++
					nx++
					continue
				}
			}
		}
		if 0 < nextNx && nextNx <= len(name) {
			px, nx = nextPx, nextNx
			continue
		}
		return false
	}
	return true
}

// decodeJSON decodes with numbers kept as json.Number.
func decodeJSON(data []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("unexpected data after the JSON value")
	}
	return nil
}
