package eslite

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// query decides whether a document matches. Queries are evaluated on each
// document in turn: there is no inverted index.
type query interface{ match(d *doc) bool }

type matchAll struct{}

func (matchAll) match(*doc) bool { return true }

// boolQuery is Elasticsearch's bool: every must (and filter), no must_not,
// and at least minShould of should (1 when there is no must).
type boolQuery struct {
	must, should, mustNot []query
	minShould             int
}

func (q *boolQuery) match(d *doc) bool {
	for _, c := range q.must {
		if !c.match(d) {
			return false
		}
	}
	for _, c := range q.mustNot {
		if c.match(d) {
			return false
		}
	}
	n := 0
	for _, c := range q.should {
		if n >= q.minShould {
			break
		}
		if c.match(d) {
			n++
		}
	}
	return n >= q.minShould
}

// fieldSel is the fields a query looks at: all of them, or some.
type fieldSel struct {
	all bool
	ids []uint32
}

func (fs *fieldSel) has(f uint32) bool {
	if fs.all {
		return true
	}
	for _, id := range fs.ids {
		if id == f {
			return true
		}
	}
	return false
}

// selectFields resolves a field name, which may hold '*' wildcards ("*"
// alone: every field); with objects, a name also selects the fields
// below it (for exists).
func (s *Store) selectFields(name string, objects bool) fieldSel {
	if name == "*" {
		return fieldSel{all: true}
	}
	return fieldSel{ids: s.fields.match(func(p string) bool {
		return p == name || strings.ContainsAny(name, "*?") && glob(name, p, false) || objects && strings.HasPrefix(p, name+".")
	})}
}

// fieldQuery matches a document with a value in the fields that test
// accepts.
type fieldQuery struct {
	sel  fieldSel
	test func(v *val) bool
}

func (q *fieldQuery) match(d *doc) bool {
	for i := range d.vals {
		if v := &d.vals[i]; q.sel.has(v.f) && q.test(v) {
			return true
		}
	}
	return false
}

// equals tests a value against term: a keyword is equal to it, a text
// holds a token equal to tok (no text test when tok is ""), a number, date
// or boolean is the same.
func equals(term, tok string) func(v *val) bool {
	num, numErr := strconv.ParseFloat(term, 64)
	date, dateOK := parseDate(term)
	if !dateOK {
		date, dateOK = num, numErr == nil
	}
	return func(v *val) bool {
		switch v.k {
		case vText:
			return tok != "" && containsFold(v.s, tok) && anyToken(v.s, func(t string) bool { return t == tok })
		case vNum:
			return numErr == nil && v.num == num
		case vDate:
			return dateOK && v.num == date
		}
		return v.s == term
	}
}

// rangeTest tests a value against bounds ("" for none): numbers and dates
// by value (dates with date math), keywords as strings.
func rangeTest(lo, hi string, incLo, incHi bool, now time.Time) func(v *val) bool {
	type bound struct {
		set, numOK, dateOK bool
		num, date          float64
	}
	mk := func(s string, up bool) bound {
		b := bound{set: s != ""}
		if b.set {
			f, err := strconv.ParseFloat(s, 64)
			b.num, b.numOK = f, err == nil
			b.date, b.dateOK = dateMath(s, now, up)
		}
		return b
	}
	l, h := mk(lo, !incLo), mk(hi, incHi)
	cmp := func(x float64, b bound, ok bool, c int) bool { // x vs bound: c<0 lower, c>0 upper
		if !b.set {
			return true
		}
		bv := b.num
		if ok {
			bv = b.date
		}
		switch {
		case c < 0 && incLo:
			return x >= bv
		case c < 0:
			return x > bv
		case incHi:
			return x <= bv
		}
		return x < bv
	}
	return func(v *val) bool {
		switch v.k {
		case vNum:
			return (!l.set || l.numOK) && (!h.set || h.numOK) && cmp(v.num, l, false, -1) && cmp(v.num, h, false, 1)
		case vDate:
			return (!l.set || l.dateOK) && (!h.set || h.dateOK) && cmp(v.num, l, true, -1) && cmp(v.num, h, true, 1)
		case vKeyword:
			return (lo == "" || strings.Compare(v.s, lo) > 0 || incLo && v.s == lo) && (hi == "" || strings.Compare(v.s, hi) < 0 || incHi && v.s == hi)
		}
		return false
	}
}

// anyToken reports whether fn accepts one of the tokens of text, each
// lowercased.
func anyToken(text string, fn func(tok string) bool) bool {
	found := false
	tokens(text, func(t string) bool {
		found = fn(t)
		return !found
	})
	return found
}

// tokens splits text as a standard analyzer would, roughly: runs of
// letters, digits and '_', kept together across a '.' or an apostrophe
// between two of them (example.com, 1.4.2), lowercased. fn returns false
// to stop.
func tokens(text string, fn func(tok string) bool) {
	isWord := func(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }
	start := -1
	lower := true
	for i := 0; i <= len(text); {
		r, size := rune(0), 1
		if i < len(text) {
			if r = rune(text[i]); r >= utf8.RuneSelf {
				r, size = utf8.DecodeRuneInString(text[i:])
			}
		}
		switch {
		case i < len(text) && isWord(r):
			if start < 0 {
				start, lower = i, true
			}
			lower = lower && !unicode.IsUpper(r)
		case start >= 0 && i < len(text) && (r == '.' || r == '\'') && i+1 < len(text) && isWord(rune(text[i+1])):
		case start >= 0:
			tok := text[start:i]
			if !lower {
				tok = strings.ToLower(tok)
			}
			if !fn(tok) {
				return
			}
			start = -1
		}
		i += size
	}
}

// containsFold reports whether s may hold the lowercase tok, ignoring
// the case of ASCII letters: a quick test before splitting s into tokens.
func containsFold(s, tok string) bool {
	for i := 0; i < len(tok); i++ {
		if tok[i] >= utf8.RuneSelf {
			return true // not tested
		}
	}
	for i := 0; i+len(tok) <= len(s); i++ {
		j := 0
		for j < len(tok) && (s[i+j] == tok[j] || s[i+j]|0x20 == tok[j] && tok[j] >= 'a' && tok[j] <= 'z') {
			j++
		}
		if j == len(tok) {
			return true
		}
	}
	return false
}

// analyze returns the tokens of a query text.
func analyze(text string) []string {
	var out []string
	tokens(text, func(t string) bool { out = append(out, t); return true })
	return out
}

// phraseTest tests a text for the tokens in a row, a keyword for being
// the whole phrase.
func phraseTest(phrase string) func(v *val) bool {
	toks := analyze(phrase)
	eq := equals(phrase, "")
	return func(v *val) bool {
		if v.k != vText {
			return eq(v)
		}
		if len(toks) == 0 {
			return false
		}
		var window []string // the last len(toks) tokens
		return anyToken(v.s, func(t string) bool {
			if window = append(window, t); len(window) > len(toks) {
				window = window[1:]
			}
			if len(window) < len(toks) {
				return false
			}
			for i, w := range window {
				if w != toks[i] {
					return false
				}
			}
			return true
		})
	}
}

// patternTest tests keywords against a pattern and the tokens of a text
// against it lowercased: match(pattern, value).
func patternTest(pattern string, match func(p, s string) bool) func(v *val) bool {
	lower := strings.ToLower(pattern)
	return func(v *val) bool {
		switch v.k {
		case vKeyword:
			return match(pattern, v.s)
		case vText:
			return anyToken(v.s, func(t string) bool { return match(lower, t) })
		}
		return false
	}
}

// glob matches s against a pattern of '*' (any run) and '?' (any
// character); with escapes, a backslash makes the next character literal.
func glob(p, s string, escapes bool) bool {
	star, match := -1, 0 // backtracking point in p, and in s
	i, j := 0, 0
	for j < len(s) {
		if i < len(p) {
			switch c := p[i]; {
			case c == '*':
				star, match = i, j
				i++
				continue
			case c == '?':
				_, n := utf8.DecodeRuneInString(s[j:])
				i, j = i+1, j+n
				continue
			case c == '\\' && escapes && i+1 < len(p):
				if p[i+1] == s[j] {
					i, j = i+2, j+1
					continue
				}
			case c == s[j]:
				i, j = i+1, j+1
				continue
			}
		}
		if star < 0 {
			return false
		}
		match++
		i, j = star+1, match
	}
	for i < len(p) && p[i] == '*' {
		i++
	}
	return i == len(p)
}

// parseQuery reads a query of the query DSL.
func (s *Store) parseQuery(v any) (query, *esError) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return nil, parsingErr("[_na] query malformed, must start with start_object and hold one query")
	}
	for kind, body := range m {
		switch kind {
		case "match_all":
			return matchAll{}, nil
		case "bool":
			return s.parseBool(body)
		case "exists":
			b, _ := body.(map[string]any)
			f, ok := b["field"].(string)
			if !ok {
				return nil, parsingErr("[exists] must be provided with a [field]")
			}
			return &fieldQuery{s.selectFields(f, true), func(*val) bool { return true }}, nil
		case "query_string":
			return s.parseQueryString(body)
		}
		field, params, e := leafQuery(kind, body)
		if e != nil {
			return nil, e
		}
		sel := s.selectFields(field, false)
		str := func(k string) string {
			switch x := params[k].(type) {
			case nil:
				return ""
			case string:
				return x
			default:
				return fmt.Sprint(x)
			}
		}
		switch kind {
		case "term":
			return &fieldQuery{sel, equals(str("value"), str("value"))}, nil
		case "terms":
			var qs []query
			for _, t := range params["value"].([]any) {
				qs = append(qs, &fieldQuery{sel, equals(fmt.Sprint(t), fmt.Sprint(t))})
			}
			return &boolQuery{should: qs, minShould: 1}, nil
		case "match":
			text := str("query")
			toks := analyze(text)
			q := &boolQuery{minShould: 1}
			for _, t := range toks {
				q.should = append(q.should, &fieldQuery{sel, equals(text, t)})
			}
			if strings.EqualFold(str("operator"), "and") {
				q.must, q.should, q.minShould = q.should, nil, 0
			}
			if len(toks) == 0 {
				q.should = []query{&fieldQuery{sel, equals(text, "")}}
			}
			return q, nil
		case "match_phrase":
			return &fieldQuery{sel, phraseTest(str("query"))}, nil
		case "prefix":
			return &fieldQuery{sel, patternTest(str("value"), func(p, s string) bool { return strings.HasPrefix(s, p) })}, nil
		case "wildcard":
			return &fieldQuery{sel, patternTest(str("value"), func(p, s string) bool { return glob(p, s, true) })}, nil
		case "range":
			lo, hi, incLo, incHi := str("gt"), str("lt"), false, false
			if v := str("gte"); v != "" {
				lo, incLo = v, true
			}
			if v := str("lte"); v != "" {
				hi, incHi = v, true
			}
			return &fieldQuery{sel, rangeTest(lo, hi, incLo, incHi, time.Now())}, nil
		}
	}
	panic("unreachable")
}

// leafQueries are the queries on one field, and their parameters: the
// first one is the value of the short form {"term": {"field": value}}.
var leafQueries = map[string][]string{
	"term":         {"value", "boost", "case_insensitive", "_name"},
	"terms":        {"value", "boost", "_name"},
	"match":        {"query", "operator", "boost", "analyzer", "lenient", "_name"},
	"match_phrase": {"query", "boost", "analyzer", "slop", "_name"},
	"prefix":       {"value", "boost", "rewrite", "_name"},
	"wildcard":     {"value", "boost", "rewrite", "_name"},
	"range":        {"", "gt", "gte", "lt", "lte", "format", "time_zone", "boost", "relation", "_name"},
}

// leafQuery reads {"kind": {"field": value}} or {"kind": {"field": {params}}}.
func leafQuery(kind string, body any) (string, map[string]any, *esError) {
	keys, ok := leafQueries[kind]
	if !ok {
		return "", nil, parsingErr("unknown query [%s]: eslite serves match_all, bool, term, terms, match, match_phrase, "+
			"prefix, wildcard, range, exists and query_string", kind)
	}
	b, ok := body.(map[string]any)
	if ok && kind == "terms" {
		delete(b, "boost")
	}
	if !ok || len(b) != 1 {
		return "", nil, parsingErr("[%s] query malformed: it takes one field", kind)
	}
	for field, v := range b {
		params, ok := v.(map[string]any)
		if !ok || kind == "terms" {
			if kind == "range" {
				return "", nil, parsingErr("[range] query malformed, no start_object after query name")
			}
			if _, isList := v.([]any); kind == "terms" && !isList {
				return "", nil, parsingErr("[terms] query does not support [%s]", field)
			}
			return field, map[string]any{keys[0]: v}, nil
		}
		for k := range params {
			if !containsStr(keys[1:], k) && k != keys[0] {
				return "", nil, parsingErr("[%s] query does not support [%s]", kind, k)
			}
		}
		return field, params, nil
	}
	return "", nil, nil
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (s *Store) parseBool(body any) (query, *esError) {
	b, ok := body.(map[string]any)
	if !ok {
		return nil, parsingErr("[bool] query malformed")
	}
	q := &boolQuery{}
	for k, v := range b {
		list, ok := v.([]any)
		if !ok {
			list = []any{v}
		}
		var dst *[]query
		switch k {
		case "must", "filter":
			dst = &q.must
		case "should":
			dst = &q.should
		case "must_not":
			dst = &q.mustNot
		case "minimum_should_match":
			n, err := strconv.Atoi(fmt.Sprint(v))
			if err != nil {
				return nil, parsingErr("[bool] minimum_should_match must be an integer")
			}
			q.minShould = -n - 1 // set below
			continue
		case "boost", "_name":
			continue
		default:
			return nil, parsingErr("[bool] query does not support [%s]", k)
		}
		for _, x := range list {
			c, e := s.parseQuery(x)
			if e != nil {
				return nil, e
			}
			*dst = append(*dst, c)
		}
	}
	switch {
	case q.minShould < 0:
		q.minShould = -q.minShould - 1
	case len(q.must) == 0 && len(q.should) > 0:
		q.minShould = 1
	}
	return q, nil
}
