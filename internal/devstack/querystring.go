package devstack

// The query_string query: Lucene syntax as Elasticsearch accepts it.
//
// The grammar (precedence, grouping, field:, +/-, NOT/AND/OR, ranges, comparisons, boosts, fuzzy)
// is parsed by github.com/grindlemire/go-lucene, whose expression tree is translated to bleve
// queries below. Its lexer does not follow Lucene's term rules, so terms are lexed here first and
// handed to it as placeholder words:
//   - go-lucene rejects characters Lucene accepts in terms every day: `@timestamp`, `user@host`,
//     `/var/log/x.log` (in the middle of a term), `a=b`, `#`, `,`, `%`...;
//   - it parses bare numbers into float64/int (losing `007`, `1.10`, turning `nan` into NaN) while
//     a keyword value must stay exactly as typed;
//   - it treats lowercase and/or/not as operators (Lucene: only upper case) and knows neither
//     `&&`, `||` nor `!`;
//   - it does not unescape `\"` inside quoted phrases;
//   - it always joins adjacent clauses with AND, while Elasticsearch uses default_operator (OR);
//   - its ranges have one inclusive flag for both ends (`[a TO b}` is valid Lucene).
// The lexer below handles all of these, inserts the default operator between adjacent clauses,
// and keeps each term's text, kind and range inclusivity in a side table.
//
// Semantics follow Elasticsearch's classic query parser: `+x` must, `-x`/`NOT x` must not, other
// clauses of an OR group are optional when a must clause is present; go-lucene gives AND a higher
// precedence than OR (a AND b OR c is (a AND b) OR c), which Lucene does not strictly do.
// Not supported: phrase slop (`"a b"~3` is an exact phrase), `NOT NOT x`.

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	lucene "github.com/grindlemire/go-lucene"
	"github.com/grindlemire/go-lucene/pkg/lucene/expr"

	"github.com/blevesearch/bleve/v2/search/query"
)

// qsTermKind is what a placeholder stands for.
type qsTermKind int

const (
	qsTerm   qsTermKind = iota // a bare term, maybe with wildcards
	qsPhrase                   // "quoted"
	qsRegexp                   // /regexp/
	qsField                    // a field name
)

// qsToken is the original text behind one placeholder.
type qsToken struct {
	kind     qsTermKind
	text     string // unescaped text
	raw      string // text with escapes kept (wildcard terms need to know which * were escaped)
	wildcard bool   // an unescaped * or ? in a bare term
	// inclusive is the bracket of a range end: [ ] inclusive, { } exclusive.
	inclusive bool
}

// qsLexed is a query string rewritten for go-lucene.
type qsLexed struct {
	skeleton string
	tokens   []qsToken
}

func placeholder(i int) string {
	// Letters only, so go-lucene keeps it as a string literal; the "qz" prefix never collides with
	// AND/OR/NOT/TO.
	b := []byte{'q', 'z'}
	for {
		b = append(b, byte('a'+i%26))
		i /= 26
		if i == 0 {
			break
		}
	}
	return string(b)
}

func placeholderIndex(s string) (int, bool) {
	if len(s) < 3 || s[0] != 'q' || s[1] != 'z' {
		return 0, false
	}
	n, mul := 0, 1
	for _, c := range s[2:] {
		if c < 'a' || c > 'z' {
			return 0, false
		}
		n += int(c-'a') * mul
		mul *= 26
	}
	return n, true
}

func isQSSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

// isQSSpecial reports the characters that end a term (unless escaped).
func isQSSpecial(c byte) bool {
	switch c {
	case '(', ')', '[', ']', '{', '}', '^', '"', '~', ':':
		return true
	}
	return isQSSpace(c)
}

// lexQueryString rewrites q into go-lucene's input; defaultAnd picks the operator inserted between
// adjacent clauses.
func lexQueryString(q string, defaultAnd bool) (qsLexed, error) {
	var out strings.Builder
	var toks []qsToken
	add := func(t qsToken) {
		out.WriteByte(' ')
		out.WriteString(placeholder(len(toks)))
		out.WriteByte(' ')
		toks = append(toks, t)
	}
	// operandEnded: the previous token ended an operand, so a new operand needs an operator.
	operandEnded := false
	// afterColon: the next operand is a field value (no operator insertion).
	afterColon := false
	startOperand := func() {
		if operandEnded && !afterColon {
			if defaultAnd {
				out.WriteString(" AND ")
			} else {
				out.WriteString(" OR ")
			}
		}
		afterColon = false
	}
	i := 0
	for i < len(q) {
		c := q[i]
		switch {
		case isQSSpace(c):
			i++
			continue
		case c == '(':
			startOperand()
			out.WriteString(" ( ")
			operandEnded = false
			i++
		case c == ')':
			out.WriteString(" ) ")
			operandEnded = true
			afterColon = false
			i++
		case c == '[' || c == '{':
			startOperand()
			end, lo, hi, inclusiveHi, err := lexRange(q, i)
			if err != nil {
				return qsLexed{}, err
			}
			out.WriteString(" [ ")
			add(qsToken{kind: qsTerm, text: unescapeQS(lo), raw: lo, inclusive: c == '['})
			out.WriteString(" TO ")
			add(qsToken{kind: qsTerm, text: unescapeQS(hi), raw: hi, inclusive: inclusiveHi})
			out.WriteString(" ] ")
			i = end
			operandEnded = true
		case c == '"':
			startOperand()
			j := i + 1
			for j < len(q) && q[j] != '"' {
				if q[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(q) {
				return qsLexed{}, fmt.Errorf("Lexical error: unterminated quoted string")
			}
			add(qsToken{kind: qsPhrase, text: unescapeQS(q[i+1 : j]), raw: q[i+1 : j]})
			i = j + 1
			operandEnded = true
			// Phrase slop "..."~N is accepted and ignored (see the file comment).
			if i < len(q) && q[i] == '~' {
				i++
				for i < len(q) && (q[i] >= '0' && q[i] <= '9' || q[i] == '.') {
					i++
				}
			}
		case c == '/':
			startOperand()
			j := i + 1
			for j < len(q) && q[j] != '/' {
				if q[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(q) {
				return qsLexed{}, fmt.Errorf("Lexical error: unterminated regular expression")
			}
			add(qsToken{kind: qsRegexp, text: q[i+1 : j], raw: q[i+1 : j]})
			i = j + 1
			operandEnded = true
		case c == ':':
			out.WriteString(" : ")
			i++
			afterColon = true
			operandEnded = false
			// Comparison operators right after the colon: >=, <=, >, <.
			for i < len(q) && isQSSpace(q[i]) {
				i++
			}
			if i < len(q) && (q[i] == '>' || q[i] == '<') {
				out.WriteByte(q[i])
				i++
				if i < len(q) && q[i] == '=' {
					out.WriteByte('=')
					i++
				}
				// The bound is one term, which may start with - (a negative number, date math).
				j := i
				for j < len(q) && !isQSSpace(q[j]) && q[j] != ')' {
					if q[j] == '\\' {
						j++
					}
					j++
				}
				j = min(j, len(q))
				if j == i {
					return qsLexed{}, fmt.Errorf("Encountered \"<EOF>\": a comparison needs a value")
				}
				add(qsToken{kind: qsTerm, text: unescapeQS(q[i:j]), raw: q[i:j]})
				afterColon = false
				operandEnded = true
				i = j
			}
		case c == '^' || c == '~':
			// Boost or fuzzy: the number stays for go-lucene.
			j := i + 1
			for j < len(q) && (q[j] >= '0' && q[j] <= '9' || q[j] == '.') {
				j++
			}
			out.WriteByte(' ')
			out.WriteString(q[i:j])
			out.WriteByte(' ')
			i = j
			operandEnded = true
		case (c == '+' || c == '-' || c == '!') && !afterColon:
			startOperand()
			switch c {
			case '+':
				out.WriteString(" +")
			case '-':
				out.WriteString(" -")
			default:
				out.WriteString(" NOT ")
			}
			operandEnded = false
			i++
		case c == '&' && strings.HasPrefix(q[i:], "&&"):
			out.WriteString(" AND ")
			operandEnded, afterColon = false, false
			i += 2
		case c == '|' && strings.HasPrefix(q[i:], "||"):
			out.WriteString(" OR ")
			operandEnded, afterColon = false, false
			i += 2
		default:
			// A term: everything up to whitespace or a special character, escapes included.
			j := i
			wild := false
			for j < len(q) && !isQSSpecial(q[j]) {
				if q[j] == '\\' && j+1 < len(q) {
					j += 2
					continue
				}
				if q[j] == '*' || q[j] == '?' {
					wild = true
				}
				j++
			}
			if j == i { // a stray ] or }
				return qsLexed{}, fmt.Errorf("Encountered \"%c\" at position %d", c, i)
			}
			raw := q[i:j]
			isField := j < len(q) && q[j] == ':'
			if !isField && !afterColon {
				switch raw {
				case "AND", "OR":
					out.WriteString(" " + raw + " ")
					operandEnded = false
					i = j
					continue
				case "NOT":
					startOperand()
					out.WriteString(" NOT ")
					operandEnded = false
					i = j
					continue
				}
			}
			startOperand()
			if isField {
				add(qsToken{kind: qsField, text: unescapeQS(raw), raw: raw})
				operandEnded = false
			} else {
				add(qsToken{kind: qsTerm, text: unescapeQS(raw), raw: raw, wildcard: wild})
				operandEnded = true
			}
			i = j
		}
	}
	return qsLexed{skeleton: out.String(), tokens: toks}, nil
}

// lexRange reads "[lo TO hi]" (or with braces) starting at q[i]; it returns the index after it.
func lexRange(q string, i int) (end int, lo, hi string, inclusiveHi bool, err error) {
	j := i + 1
	readTerm := func() (string, error) {
		for j < len(q) && isQSSpace(q[j]) {
			j++
		}
		if j < len(q) && q[j] == '"' {
			k := j + 1
			for k < len(q) && q[k] != '"' {
				if q[k] == '\\' {
					k++
				}
				k++
			}
			if k >= len(q) {
				return "", fmt.Errorf("Lexical error: unterminated quoted string in range")
			}
			s := q[j+1 : k]
			j = k + 1
			return s, nil
		}
		k := j
		for k < len(q) && !isQSSpace(q[k]) && q[k] != ']' && q[k] != '}' {
			if q[k] == '\\' {
				k++
			}
			k++
		}
		k = min(k, len(q))
		s := q[j:k]
		j = k
		if s == "" {
			return "", fmt.Errorf("Encountered a range without bounds")
		}
		return s, nil
	}
	if lo, err = readTerm(); err != nil {
		return
	}
	for j < len(q) && isQSSpace(q[j]) {
		j++
	}
	if !strings.HasPrefix(q[j:], "TO") {
		err = fmt.Errorf("Encountered a range without TO")
		return
	}
	j += 2
	if hi, err = readTerm(); err != nil {
		return
	}
	for j < len(q) && isQSSpace(q[j]) {
		j++
	}
	if j >= len(q) || (q[j] != ']' && q[j] != '}') {
		err = fmt.Errorf("Encountered an unterminated range")
		return
	}
	return j + 1, lo, hi, q[j] == ']', nil
}

// unescapeQS removes Lucene backslash escapes.
func unescapeQS(s string) string {
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

// qsOptions are the options of one query_string query.
type qsOptions struct {
	fields     []string // default fields (patterns); ["*"] by default
	defaultAnd bool
	lenient    bool
	// analyzeWildcard is accepted; wildcard terms on text fields are lower-cased either way.
}

func (c *queryCompiler) compileQueryString(body any) (query.Query, *searchError) {
	opts, err := queryObject("query_string", body)
	if err != nil {
		return nil, err
	}
	qv, ok := opts["query"]
	if !ok {
		return nil, newParsingError("[query_string] must be provided with a [query]")
	}
	o := qsOptions{}
	boost := 1.0
	lenientSet := false
	for k, v := range opts {
		switch k {
		case "query":
		case "default_field":
			o.fields = []string{scalarText(v)}
		case "fields":
			arr, ok := v.([]any)
			if !ok {
				return nil, newParsingError("[query_string] query does not support [fields] of this form")
			}
			for _, f := range arr {
				o.fields = append(o.fields, scalarText(f))
			}
		case "default_operator":
			switch strings.ToLower(scalarText(v)) {
			case "and":
				o.defaultAnd = true
			case "or":
			default:
				return nil, newIllegalArgument("No enum constant for operator [%s]", scalarText(v))
			}
		case "lenient":
			o.lenient, lenientSet = v == true, true
		case "boost":
			f, err := floatOption("query_string", k, v)
			if err != nil {
				return nil, err
			}
			boost = f
		case "analyze_wildcard", "allow_leading_wildcard", "_name", "time_zone", "analyzer",
			"quote_analyzer", "auto_generate_synonyms_phrase_query", "enable_position_increments",
			"fuzziness", "fuzzy_max_expansions", "fuzzy_prefix_length", "fuzzy_transpositions",
			"max_determinized_states", "minimum_should_match", "phrase_slop", "quote_field_suffix",
			"rewrite", "escape", "type", "tie_breaker":
		default:
			return nil, newParsingError("[query_string] query does not support [%s]", k)
		}
	}
	if len(o.fields) == 0 {
		o.fields = []string{"*"}
	}
	if !lenientSet {
		// Elasticsearch is lenient when the default field is a pattern over all fields.
		o.lenient = len(o.fields) == 1 && o.fields[0] == "*"
	}
	q, err := c.queryString(scalarText(qv), o)
	if err != nil {
		return nil, err
	}
	setBoost(q, boost)
	return q, nil
}

// queryString parses and translates one Lucene query string.
func (c *queryCompiler) queryString(s string, o qsOptions) (q query.Query, serr *searchError) {
	fail := func(err error) *searchError {
		return newQueryShardError("Failed to parse query [%s]: %v", s, err)
	}
	if strings.TrimSpace(s) == "" {
		return query.NewMatchNoneQuery(), nil
	}
	lexed, err := lexQueryString(s, o.defaultAnd)
	if err != nil {
		return nil, fail(err)
	}
	var e *expr.Expression
	func() {
		// The parser is third-party code fed with user input: a panic there is a parse error.
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("cannot parse: %v", r)
			}
		}()
		e, err = lucene.Parse(lexed.skeleton)
	}()
	if err != nil {
		return nil, fail(err)
	}
	tr := qsTranslator{c: c, o: o, toks: lexed.tokens}
	q, serr = tr.node(e, "", 1, -1)
	if serr != nil {
		return nil, serr
	}
	if q == nil {
		return query.NewMatchNoneQuery(), nil
	}
	return q, nil
}

type qsTranslator struct {
	c    *queryCompiler
	o    qsOptions
	toks []qsToken
}

// tokenOf returns the side-table entry of a go-lucene leaf (a string, Column or Literal).
func (t *qsTranslator) tokenOf(v any) (qsToken, bool) {
	switch v := v.(type) {
	case *expr.Expression:
		if v != nil && (v.Op == expr.Literal || v.Op == expr.Wild) {
			return t.tokenOf(v.Left)
		}
	case expr.Column:
		return t.tokenOf(string(v))
	case string:
		if i, ok := placeholderIndex(v); ok && i < len(t.toks) {
			return t.toks[i], true
		}
	}
	return qsToken{}, false
}

// exprParam reads an operator parameter go-lucene keeps unexported (boost power, fuzzy distance)
// through its JSON form.
func exprParam(e *expr.Expression, key string, def float64) float64 {
	b, err := json.Marshal(e)
	if err != nil {
		return def
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return def
	}
	if f, ok := m[key].(float64); ok {
		return f
	}
	return def
}

// node translates an expression; field is the field set by an enclosing field:(...) group,
// fuzzy the edit distance of an enclosing ~ (-1 for none).
func (t *qsTranslator) node(v any, field string, boost float64, fuzzy int) (query.Query, *searchError) {
	e, ok := v.(*expr.Expression)
	if !ok || e == nil {
		tok, ok := t.tokenOf(v)
		if !ok {
			return nil, newQueryShardError("Failed to parse query: unexpected element %v", v)
		}
		return t.leaf(field, tok, boost, fuzzy)
	}
	switch e.Op {
	case expr.Literal, expr.Wild:
		tok, ok := t.tokenOf(e)
		if !ok {
			return nil, newQueryShardError("Failed to parse query: unexpected literal %v", e.Left)
		}
		return t.leaf(field, tok, boost, fuzzy)
	case expr.And, expr.Or:
		return t.boolGroup(e, field, boost, fuzzy)
	case expr.Not, expr.MustNot:
		inner, err := t.node(e.Left, field, 1, fuzzy)
		if err != nil {
			return nil, err
		}
		bq := &query.BooleanQuery{Must: query.NewMatchAllQuery()}
		if inner != nil {
			bq.MustNot = query.NewDisjunctionQuery([]query.Query{inner})
		}
		return bq, nil
	case expr.Must:
		return t.node(e.Left, field, boost, fuzzy)
	case expr.Boost:
		return t.node(e.Left, field, boost*exprParam(e, "power", 1), fuzzy)
	case expr.Fuzzy:
		return t.node(e.Left, field, boost, int(exprParam(e, "distance", 1)))
	case expr.Equals, expr.Like:
		f, ok := t.tokenOf(e.Left)
		if !ok {
			return nil, newQueryShardError("Failed to parse query: bad field %v", e.Left)
		}
		return t.node(e.Right, f.text, boost, fuzzy)
	case expr.In:
		f, ok := t.tokenOf(e.Left)
		if !ok {
			return nil, newQueryShardError("Failed to parse query: bad field %v", e.Left)
		}
		list, _ := e.Right.(*expr.Expression)
		if list == nil {
			return nil, newQueryShardError("Failed to parse query: bad list")
		}
		items := listItems(list.Left, nil)
		var qs []query.Query
		for _, it := range items {
			q, err := t.node(it, f.text, 1, fuzzy)
			if err != nil {
				return nil, err
			}
			if q != nil {
				qs = append(qs, q)
			}
		}
		if len(qs) == 0 {
			return nil, nil
		}
		d := query.NewDisjunctionQuery(qs)
		setBoost(d, boost)
		return d, nil
	case expr.Range:
		f, ok := t.tokenOf(e.Left)
		if !ok {
			return nil, newQueryShardError("Failed to parse query: bad field %v", e.Left)
		}
		rb, _ := e.Right.(*expr.RangeBoundary)
		if rb == nil {
			return nil, newQueryShardError("Failed to parse query: bad range")
		}
		lo, okLo := t.tokenOf(rb.Min)
		hi, okHi := t.tokenOf(rb.Max)
		if !okLo || !okHi {
			return nil, newQueryShardError("Failed to parse query: bad range bounds")
		}
		r := rangeSpec{lowerInclusive: lo.inclusive, upperInclusive: hi.inclusive}
		if lo.raw != "*" {
			r.lower = lo.text
		}
		if hi.raw != "*" {
			r.upper = hi.text
		}
		return t.rangeOn(f.text, r, boost)
	case expr.Greater, expr.GreaterEq, expr.Less, expr.LessEq:
		f, ok := t.tokenOf(e.Left)
		if !ok {
			return nil, newQueryShardError("Failed to parse query: bad field %v", e.Left)
		}
		b, ok := t.tokenOf(e.Right)
		if !ok {
			return nil, newQueryShardError("Failed to parse query: bad comparison value")
		}
		var r rangeSpec
		switch e.Op {
		case expr.Greater:
			r.lower = b.text
		case expr.GreaterEq:
			r.lower, r.lowerInclusive = b.text, true
		case expr.Less:
			r.upper = b.text
		case expr.LessEq:
			r.upper, r.upperInclusive = b.text, true
		}
		return t.rangeOn(f.text, r, boost)
	}
	return nil, newQueryShardError("Failed to parse query: operator %v is not supported", e.Op)
}

// listItems flattens the operands of go-lucene's LIST (a slice, maybe of slices).
func listItems(v any, out []*expr.Expression) []*expr.Expression {
	switch l := v.(type) {
	case *expr.Expression:
		out = append(out, l)
	case []*expr.Expression:
		out = append(out, l...)
	case []any:
		for _, it := range l {
			out = listItems(it, out)
		}
	}
	return out
}

// flatten collects the operands of a chain of the same operator.
func flatten(e *expr.Expression, op expr.Operator, out []any) []any {
	for _, side := range []any{e.Left, e.Right} {
		if s, ok := side.(*expr.Expression); ok && s != nil && s.Op == op {
			out = flatten(s, op, out)
		} else {
			out = append(out, side)
		}
	}
	return out
}

// boolGroup translates an AND or OR chain with Lucene's clause semantics: +x must, -x and NOT x
// must not; in an OR chain the other clauses are should (optional when a must clause exists).
func (t *qsTranslator) boolGroup(e *expr.Expression, field string, boost float64, fuzzy int) (query.Query, *searchError) {
	var must, should, mustNot []query.Query
	for _, operand := range flatten(e, e.Op, nil) {
		sub, _ := operand.(*expr.Expression)
		var target *[]query.Query
		inner := operand
		switch {
		case sub != nil && (sub.Op == expr.Not || sub.Op == expr.MustNot):
			target, inner = &mustNot, sub.Left
		case sub != nil && sub.Op == expr.Must:
			target, inner = &must, sub.Left
		case e.Op == expr.And:
			target = &must
		default:
			target = &should
		}
		q, err := t.node(inner, field, 1, fuzzy)
		if err != nil {
			return nil, err
		}
		if q == nil {
			// A clause dropped as not applicable (lenient): required clauses make the group
			// match nothing, optional ones simply vanish.
			if target == &must {
				return nil, nil
			}
			continue
		}
		*target = append(*target, q)
	}
	if len(must) == 0 && len(should) == 0 && len(mustNot) == 0 {
		return nil, nil
	}
	bq := &query.BooleanQuery{}
	switch {
	case len(must) > 0:
		bq.Must = query.NewConjunctionQuery(must)
		if len(should) > 0 {
			bq.Should = query.NewDisjunctionQuery(should)
		}
	case len(should) > 0:
		d := query.NewDisjunctionQuery(should)
		d.SetMin(1)
		bq.Should = d
	default:
		bq.Must = query.NewMatchAllQuery()
	}
	if len(mustNot) > 0 {
		bq.MustNot = query.NewDisjunctionQuery(mustNot)
	}
	setBoost(bq, boost)
	return bq, nil
}

// targets resolves the fields a leaf applies to: the explicit field (maybe a pattern) or the
// default fields.
func (t *qsTranslator) targets(field string) (fields []mappedField, explicit bool) {
	if field != "" {
		return t.c.expandFields([]string{field}), true
	}
	return t.c.expandFields(t.o.fields), false
}

func (t *qsTranslator) lenient(explicit bool, fields []mappedField) bool {
	return t.o.lenient || len(fields) > 1
}

// leaf translates a term, phrase or regexp on a field (or the default fields).
func (t *qsTranslator) leaf(field string, tok qsToken, boost float64, fuzzy int) (query.Query, *searchError) {
	if field == "_exists_" {
		q := t.c.existsQuery(tok.text)
		setBoost(q, boost)
		return q, nil
	}
	if field == "_id" {
		q := query.NewDocIDQuery([]string{tok.text})
		setBoost(q, boost)
		return q, nil
	}
	if tok.kind == qsTerm && tok.raw == "*" {
		if field == "" || field == "*" {
			return query.NewMatchAllQuery(), nil
		}
		// field:* is an exists query in Elasticsearch.
		q := t.c.existsQuery(field)
		setBoost(q, boost)
		return q, nil
	}
	return t.onTargets(field, boost, func(f mappedField, lenient bool) (query.Query, *searchError) {
		q, err := t.fieldLeaf(f, tok, fuzzy, lenient)
		if q != nil {
			setBoost(q, f.boost)
		}
		return q, err
	})
}

func (t *qsTranslator) fieldLeaf(f mappedField, tok qsToken, fuzzy int, lenient bool) (query.Query, *searchError) {
	k := kindOf(f.info.Type)
	switch tok.kind {
	case qsRegexp:
		if k != kindKeyword && k != kindText {
			if lenient {
				return nil, nil
			}
			return nil, newQueryShardError("Can only use regexp queries on keyword and text fields - not on [%s] which is of type [%s]", f.path, f.info.Type)
		}
		q := query.NewRegexpQuery(tok.text)
		q.SetField(f.path)
		return q, nil
	case qsPhrase:
		return t.c.fieldTextQuery(f.path, f.info, tok.text, matchOptions{phrase: true, lenient: lenient})
	}
	if tok.wildcard {
		if k != kindKeyword && k != kindText {
			if lenient {
				return nil, nil
			}
			return nil, newQueryShardError("Can only use wildcard queries on keyword and text fields - not on [%s] which is of type [%s]", f.path, f.info.Type)
		}
		pattern := tok.raw
		if k == kindText {
			pattern = strings.ToLower(pattern)
		}
		q := query.NewRegexpQuery(wildcardRegexp(pattern, true))
		q.SetField(f.path)
		return q, nil
	}
	if fuzzy >= 0 && (k == kindKeyword || k == kindText) {
		text := tok.text
		if k == kindText {
			text = strings.ToLower(text)
		}
		q := query.NewFuzzyQuery(text)
		q.SetFuzziness(min(fuzzy, 2))
		q.SetField(f.path)
		return q, nil
	}
	return t.c.fieldTextQuery(f.path, f.info, tok.text, matchOptions{and: t.o.defaultAnd, lenient: lenient})
}

// rangeOn builds a range from query string syntax on one field (or a pattern).
func (t *qsTranslator) rangeOn(field string, r rangeSpec, boost float64) (query.Query, *searchError) {
	return t.onTargets(field, boost, func(f mappedField, lenient bool) (query.Query, *searchError) {
		return t.c.rangeQuery(f.path, f.info, r, lenient)
	})
}

// onTargets builds with build the query of each field that field (a name,
// a pattern, or "" for the default fields) targets, and returns the query
// matching what any of them matches, boosted; none when build made no
// query. build's lenient says whether a field refusing the query is
// skipped rather than an error.
func (t *qsTranslator) onTargets(field string, boost float64, build func(f mappedField, lenient bool) (query.Query, *searchError)) (query.Query, *searchError) {
	fields, explicit := t.targets(field)
	lenient := t.lenient(explicit, fields)
	var qs []query.Query
	for _, f := range fields {
		q, err := build(f, lenient)
		if err != nil {
			return nil, err
		}
		if q != nil {
			qs = append(qs, q)
		}
	}
	var q query.Query
	switch len(qs) {
	case 0:
		q = query.NewMatchNoneQuery()
	case 1:
		q = qs[0]
	default:
		q = query.NewDisjunctionQuery(qs)
	}
	setBoost(q, boost)
	return q, nil
}

// parseQSBool is used by URL parameters (lenient=true, analyze_wildcard=false).
func parseQSBool(s string) bool {
	b, _ := strconv.ParseBool(s)
	return b
}
