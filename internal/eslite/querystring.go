package eslite

import (
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// The query string: a subset of Lucene's classic query parser syntax, read
// by one recursive-descent parser into a tree (qsGroup, qsTerm, qsRange)
// that prints back to an equivalent query string.
//
//	term  "a phrase"  field:value  field:(a OR b)  (a AND b) OR c
//	+required  -prohibited  !prohibited  NOT prohibited  a && b  a || b
//	wild*card  qu?ck  field:*  _exists_:field  * (everything)
//	field:[a TO b]  field:{a TO b}  field:[a TO *}  field:>=a  field:<b
//	escaped\:colon  term^2 (a boost: accepted, without effect: there is no scoring)
//
// Clauses combine as Lucene combines them (QueryParserBase.addClause):
// with default_operator OR a clause is optional unless +, AND or required
// by a following AND; with AND it is required unless - or joined by OR. A
// group of prohibited clauses only matches every document but those, as
// in Elasticsearch. Not supported, with an error saying so: fuzzy and
// proximity (~), regular expressions (/.../ at the start of a term). Unlike
// Lucene, a '/' inside a term is part of it (label keys hold them).

type occur uint8

const (
	should occur = iota
	must
	mustNot
)

type qsNode interface{ print(b *strings.Builder) }

// qsGroup is a parenthesised group of clauses, or the whole query.
type qsGroup struct {
	clauses []qsClause
	boost   string
}

type qsClause struct {
	occur occur
	node  qsNode
}

// qsTerm is a term, a wildcard term or a phrase; field and text are as
// written (escapes kept); field "" is the default fields.
type qsTerm struct {
	field, text string
	phrase      bool
	boost       string
}

// qsRange is a range; its bounds are as written ("*": open), quotes kept.
type qsRange struct {
	field, lo, hi string
	incLo, incHi  bool
	boost         string
}

func (g *qsGroup) String() string {
	var b strings.Builder
	g.printClauses(&b)
	return b.String()
}

func (g *qsGroup) printClauses(b *strings.Builder) {
	for i, c := range g.clauses {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString([...]string{"", "+", "-"}[c.occur])
		c.node.print(b)
	}
}

func (g *qsGroup) print(b *strings.Builder) {
	b.WriteByte('(')
	g.printClauses(b)
	b.WriteByte(')')
	printBoost(b, g.boost)
}

func (t *qsTerm) print(b *strings.Builder) {
	if t.field != "" {
		b.WriteString(t.field + ":")
	}
	if t.phrase {
		b.WriteString(`"` + t.text + `"`)
	} else {
		b.WriteString(t.text)
	}
	printBoost(b, t.boost)
}

func (r *qsRange) print(b *strings.Builder) {
	if r.field != "" {
		b.WriteString(r.field + ":")
	}
	b.WriteString(map[bool]string{true: "[", false: "{"}[r.incLo] + r.lo + " TO " + r.hi + map[bool]string{true: "]", false: "}"}[r.incHi])
	printBoost(b, r.boost)
}

func printBoost(b *strings.Builder, boost string) {
	if boost != "" {
		b.WriteString("^" + boost)
	}
}

// qsError is a syntax error at a byte offset of the query.
type qsError struct {
	pos int
	msg string
}

type qsParser struct {
	s   string
	pos int
	and bool // default_operator AND
}

// parseQueryString parses a query string; and is default_operator AND.
func parseQueryString(s string, and bool) (*qsGroup, *qsError) {
	p := &qsParser{s: s, and: and}
	return p.group("", 0, false)
}

func (p *qsParser) fail(format string, args ...any) *qsError {
	return &qsError{p.pos, fmt.Sprintf(format, args...)}
}

func (p *qsParser) peek() byte {
	if p.pos < len(p.s) {
		return p.s[p.pos]
	}
	return 0
}

func (p *qsParser) ws() {
	for p.pos < len(p.s) && isSpace(p.s[p.pos]) {
		p.pos++
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' }

// isTermChar: the characters a term holds unescaped.
func isTermChar(c byte) bool {
	return !isSpace(c) && !strings.ContainsRune(`()[]{}:^"~\!`, rune(c)) && c != 0
}

// isTermStart: those a term may start with ('+', '-' and '!' are
// modifiers, '/' a regular expression).
func isTermStart(c byte) bool { return isTermChar(c) && c != '+' && c != '-' && c != '/' || c == '\\' }

// operator consumes the operator word (AND, OR, NOT, &&, ||) at p.pos if
// it stands alone.
func (p *qsParser) operator(words ...string) bool {
	for _, w := range words {
		end := p.pos + len(w)
		if strings.HasPrefix(p.s[p.pos:], w) && (end == len(p.s) || !isTermChar(p.s[end])) {
			p.pos = end
			return true
		}
	}
	return false
}

const (
	conjNone = iota
	conjAnd
	conjOr
)

// group reads clauses up to the end, or up to ')' in a group.
func (p *qsParser) group(field string, depth int, inGroup bool) (*qsGroup, *qsError) {
	if depth > 50 {
		return nil, p.fail("groups nested too deeply")
	}
	g := &qsGroup{}
	for {
		p.ws()
		if p.pos == len(p.s) {
			if inGroup {
				return nil, p.fail("missing ')'")
			}
			return g, nil
		}
		if p.peek() == ')' {
			if !inGroup {
				return nil, p.fail("unexpected ')'")
			}
			if len(g.clauses) == 0 {
				return nil, p.fail("empty group '()'")
			}
			return g, nil
		}
		conj := conjNone
		if len(g.clauses) > 0 {
			switch {
			case p.operator("AND", "&&"):
				conj = conjAnd
			case p.operator("OR", "||"):
				conj = conjOr
			}
			if p.ws(); conj != conjNone && (p.pos == len(p.s) || p.peek() == ')') {
				return nil, p.fail("a clause must follow %s", map[int]string{conjAnd: "AND", conjOr: "OR"}[conj])
			}
		}
		mod := should
		switch {
		case p.peek() == '+':
			p.pos++
			mod = must
		case p.peek() == '-' || p.peek() == '!':
			p.pos++
			mod = mustNot
		case p.operator("NOT"):
			mod = mustNot
		}
		if p.ws(); mod != should && (p.pos == len(p.s) || p.peek() == ')') {
			return nil, p.fail("a clause must follow a + or - or NOT")
		}
		n, err := p.clause(field, depth)
		if err != nil {
			return nil, err
		}
		p.add(g, conj, mod, n)
	}
}

// add adds a clause as Lucene's QueryParserBase.addClause does.
func (p *qsParser) add(g *qsGroup, conj int, mod occur, n qsNode) {
	if k := len(g.clauses); k > 0 && g.clauses[k-1].occur != mustNot {
		if conj == conjAnd {
			g.clauses[k-1].occur = must
		} else if conj == conjOr && p.and {
			g.clauses[k-1].occur = should
		}
	}
	o := mod
	switch {
	case mod == mustNot:
	case !p.and && conj == conjAnd:
		o = must
	case p.and && conj != conjOr:
		o = must
	case p.and:
		o = should
	}
	g.clauses = append(g.clauses, qsClause{o, n})
}

// clause reads a term, phrase, range or group, with its field if it names
// one.
func (p *qsParser) clause(field string, depth int) (qsNode, *qsError) {
	if c := p.peek(); !isTermStart(c) || c == '>' || c == '<' {
		return p.value(field, depth)
	}
	start := p.pos
	t, err := p.term()
	if err != nil {
		return nil, err
	}
	if t == "AND" || t == "OR" || t == "NOT" || t == "&&" || t == "||" {
		p.pos = start
		return nil, p.fail("unexpected %s", t)
	}
	if p.peek() == ':' {
		p.pos++
		p.ws()
		return p.value(t, depth)
	}
	return p.termNode(field, t, false)
}

// value reads what follows "field:", or a clause that does not start with
// a term.
func (p *qsParser) value(field string, depth int) (qsNode, *qsError) {
	switch c := p.peek(); {
	case c == '(':
		p.pos++
		g, err := p.group(field, depth+1, true)
		if err != nil {
			return nil, err
		}
		p.pos++ // ')'
		return g, p.boost(&g.boost)
	case c == '"':
		text, err := p.phrase()
		if err != nil {
			return nil, err
		}
		return p.termNode(field, text, true)
	case c == '[' || c == '{':
		return p.rangeNode(field)
	case c == '>' || c == '<':
		p.pos++
		inc := p.peek() == '='
		if inc {
			p.pos++
		}
		bound, err := p.bound(")]}")
		if err != nil {
			return nil, err
		}
		r := &qsRange{field: field, lo: bound, hi: "*", incLo: inc, incHi: true}
		if c == '<' {
			r = &qsRange{field: field, lo: "*", hi: bound, incLo: true, incHi: inc}
		}
		return r, nil
	case c == '/':
		return nil, p.fail("regular expressions (/.../) are not supported")
	case isTermStart(c):
		t, err := p.term()
		if err != nil {
			return nil, err
		}
		return p.termNode(field, t, false)
	case c == 0:
		return nil, p.fail("a term must follow %q", field+":")
	}
	return nil, p.fail("unexpected %q", p.s[p.pos:p.pos+1])
}

func (p *qsParser) termNode(field, text string, phrase bool) (qsNode, *qsError) {
	if p.peek() == '~' {
		return nil, p.fail("fuzzy and proximity searches (~) are not supported")
	}
	t := &qsTerm{field: field, text: text, phrase: phrase}
	return t, p.boost(&t.boost)
}

// term reads a term as written, escapes kept.
func (p *qsParser) term() (string, *qsError) {
	start := p.pos
	for p.pos < len(p.s) {
		switch c := p.s[p.pos]; {
		case c == '\\':
			if p.pos+1 == len(p.s) {
				return "", p.fail("a backslash must escape a character")
			}
			_, n := utf8.DecodeRuneInString(p.s[p.pos+1:])
			p.pos += 1 + n
		case isTermChar(c):
			p.pos++
		default:
			return p.s[start:p.pos], nil
		}
	}
	return p.s[start:], nil
}

// phrase reads a quoted phrase; it returns its text between the quotes.
func (p *qsParser) phrase() (string, *qsError) {
	start := p.pos
	for p.pos++; p.pos < len(p.s); p.pos++ {
		switch p.s[p.pos] {
		case '\\':
			p.pos++
		case '"':
			p.pos++
			return p.s[start+1 : p.pos-1], nil
		}
	}
	p.pos = start
	return "", p.fail("unterminated phrase")
}

// bound reads a range bound: a phrase (quotes kept) or the characters up
// to a space or one of stop.
func (p *qsParser) bound(stop string) (string, *qsError) {
	if p.peek() == '"' {
		start := p.pos
		_, err := p.phrase()
		return p.s[start:p.pos], err
	}
	start := p.pos
	for p.pos < len(p.s) && !isSpace(p.s[p.pos]) && !strings.ContainsRune(stop, rune(p.s[p.pos])) {
		if p.s[p.pos] == '\\' {
			if p.pos++; p.pos == len(p.s) {
				return "", p.fail("a backslash must escape a character")
			}
		}
		p.pos++
	}
	if p.pos == start {
		return "", p.fail("a range bound is missing")
	}
	return p.s[start:p.pos], nil
}

// rangeNode reads [lo TO hi], {lo TO hi} or a mix.
func (p *qsParser) rangeNode(field string) (qsNode, *qsError) {
	r := &qsRange{field: field, incLo: p.peek() == '['}
	p.pos++
	p.ws()
	var err *qsError
	if r.lo, err = p.bound("]}"); err != nil {
		return nil, err
	}
	if p.ws(); !p.operator("TO") {
		return nil, p.fail("a range needs TO between its bounds")
	}
	p.ws()
	if r.hi, err = p.bound("]}"); err != nil {
		return nil, err
	}
	if p.ws(); p.peek() != ']' && p.peek() != '}' {
		return nil, p.fail("a range must end with ] or }")
	}
	r.incHi = p.peek() == ']'
	p.pos++
	return r, p.boost(&r.boost)
}

// boost reads ^number after a clause.
func (p *qsParser) boost(dst *string) *qsError {
	if p.peek() != '^' {
		return nil
	}
	p.pos++
	start := p.pos
	for p.pos < len(p.s) && (p.s[p.pos] >= '0' && p.s[p.pos] <= '9' || p.s[p.pos] == '.') {
		p.pos++
	}
	if p.pos == start {
		return p.fail("a boost (^) needs a number")
	}
	*dst = p.s[start:p.pos]
	return nil
}

// unescape removes the backslashes of escapes.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// hasWildcard reports whether a term holds an unescaped * or ?.
func hasWildcard(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '*', '?':
			return true
		}
	}
	return false
}

// qsOptions are the query_string parameters the compiled query depends
// on.
type qsOptions struct {
	fields []string // the default fields
	and    bool
	now    time.Time
}

// parseQueryString reads a query_string query.
func (s *Store) parseQueryString(body any) (query, *esError) {
	b, ok := body.(map[string]any)
	if !ok {
		return nil, parsingErr("[query_string] query malformed")
	}
	o := qsOptions{now: time.Now()}
	text, ok := b["query"].(string)
	if !ok {
		return nil, parsingErr("[query_string] must be provided with a [query]")
	}
	for k, v := range b {
		switch k {
		case "query", "analyze_wildcard", "lenient", "allow_leading_wildcard", "boost", "_name", "time_zone", "auto_generate_synonyms_phrase_query":
		case "default_field":
			o.fields = []string{fmt.Sprint(v)}
		case "fields":
			list, _ := v.([]any)
			for _, f := range list {
				o.fields = append(o.fields, strings.SplitN(fmt.Sprint(f), "^", 2)[0])
			}
		case "default_operator":
			switch strings.ToUpper(fmt.Sprint(v)) {
			case "AND":
				o.and = true
			case "OR":
			default:
				return nil, parsingErr("[query_string] default_operator must be AND or OR, not [%v]", v)
			}
		default:
			return nil, parsingErr("[query_string] query does not support [%s]", k)
		}
	}
	g, err := parseQueryString(text, o.and)
	if err != nil {
		e := newErr(http.StatusBadRequest, "query_shard_exception", "Failed to parse query [%s]", text)
		e.CausedBy = &esError{Type: "parse_exception", Reason: fmt.Sprintf("Cannot parse '%s': %s at column %d", text, err.msg, err.pos+1)}
		return nil, e
	}
	if len(g.clauses) == 0 {
		return &boolQuery{minShould: 1}, nil // nothing
	}
	return s.compileQS(g, &o), nil
}

// compileQS turns a parsed query string into a query.
func (s *Store) compileQS(n qsNode, o *qsOptions) query {
	sel := func(field string) fieldSel {
		fields := o.fields
		if field != "" {
			fields = []string{unescape(field)}
		}
		if len(fields) == 0 {
			return fieldSel{all: true}
		}
		var out fieldSel
		for _, f := range fields {
			fs := s.selectFields(f, false)
			out.all = out.all || fs.all
			out.ids = append(out.ids, fs.ids...)
		}
		return out
	}
	switch x := n.(type) {
	case *qsGroup:
		q := &boolQuery{}
		for _, c := range x.clauses {
			cq := s.compileQS(c.node, o)
			switch c.occur {
			case must:
				q.must = append(q.must, cq)
			case mustNot:
				q.mustNot = append(q.mustNot, cq)
			default:
				q.should = append(q.should, cq)
			}
		}
		if len(q.must) == 0 && len(q.should) > 0 {
			q.minShould = 1
		}
		return q
	case *qsRange:
		bound := func(b string) string {
			if b == "*" {
				return ""
			}
			return unescape(strings.Trim(b, `"`))
		}
		return &fieldQuery{sel(x.field), rangeTest(bound(x.lo), bound(x.hi), x.incLo, x.incHi, o.now)}
	}
	t := n.(*qsTerm)
	switch {
	case t.phrase:
		return &fieldQuery{sel(t.field), phraseTest(unescape(t.text))}
	case t.field == "_exists_":
		return &fieldQuery{s.selectFields(unescape(t.text), true), func(*val) bool { return true }}
	case t.text == "*":
		if t.field == "*" || t.field == "" && len(o.fields) == 0 {
			return matchAll{}
		}
		names := o.fields
		if t.field != "" {
			names = []string{unescape(t.field)}
		}
		var fs fieldSel
		for _, f := range names {
			x := s.selectFields(f, true)
			fs.all, fs.ids = fs.all || x.all, append(fs.ids, x.ids...)
		}
		return &fieldQuery{fs, func(*val) bool { return true }}
	case hasWildcard(t.text):
		return &fieldQuery{sel(t.field), patternTest(t.text, func(p, s string) bool { return glob(p, s, true) })}
	}
	value := unescape(t.text)
	toks := analyze(value)
	if len(toks) <= 1 {
		return &fieldQuery{sel(t.field), equals(value, strings.Join(toks, ""))}
	}
	q := &boolQuery{minShould: 1}
	fs := sel(t.field)
	for _, tok := range toks {
		q.should = append(q.should, &fieldQuery{fs, equals(value, tok)})
	}
	if o.and {
		q.must, q.should, q.minShould = q.should, nil, 0
	}
	return q
}
