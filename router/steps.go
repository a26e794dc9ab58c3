package router

import (
	"encoding/csv"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/schemas"
)

// state is the per-record state of one Process call.
type state struct {
	tenant  string
	key     PseudonymKey // the tenant's, for pseudonym(); zero: none
	ev      *evaluator   // nil when the pipeline has no expressions
	dataset string
	routed  bool
	copies  []string // datasets that get a copy of the record
	dropped bool
	// work and alloc are the record's budget left (see meter).
	work, alloc int64
}

func (st *state) reset() { st.work, st.alloc = MaxRecordCost, ExprAllocBudget }

// charge takes work units from the record's budget, or fails with
// ReasonCostExceeded.
func (st *state) charge(work int64, what string) *stepError {
	if work < 0 || work > st.work {
		st.work = 0
		return failf(ReasonCostExceeded, "%s: %w (MaxRecordCost)", what, errCostExceeded)
	}
	st.work -= work
	return nil
}

// chargeValue charges storing v: lists and maps are stored as JSON text.
func (st *state) chargeValue(v any) *stepError {
	switch v.(type) {
	case nil, bool, int, int64, float64, string:
		return nil
	}
	n := sizeOf(v, true)
	if n > st.alloc || n > st.work {
		st.work = 0
		return failf(ReasonCostExceeded, "result too large: %w (ExprAllocBudget)", errCostExceeded)
	}
	st.work -= n
	st.alloc -= n
	return nil
}

// exprFail is the step error of a failed evaluation.
func exprFail(err error) *stepError {
	var ce *costError
	switch {
	case errors.As(err, &ce):
		return &stepError{reason: ReasonCostExceeded, err: err}
	case errors.Is(err, ErrNoPseudonymKey):
		return &stepError{reason: ReasonPseudonymKeyMissing, err: err}
	}
	return &stepError{reason: ReasonExpr, err: err}
}

// step is one compiled step. apply mutates r; a non-nil error sends the
// record to the DLQ.
type step interface {
	apply(r *schemas.Record, st *state) *stepError
}

// parseInput fetches a parse step's input string.
func parseInput(f fieldRef, r *schemas.Record) (string, *stepError) {
	s, ok := f.getString(r)
	if !ok {
		return "", failf(ReasonParse, "field %s is missing or not a string", f.name)
	}
	return s, nil
}

type jsonStep struct {
	field  fieldRef
	depth  int
	prefix string
	types  map[string]string // attribute -> type (types:)
}

func (s *jsonStep) apply(r *schemas.Record, st *state) *stepError {
	in, serr := parseInput(s.field, r)
	if serr != nil {
		return serr
	}
	if err := st.charge(mul(int64(len(in)), costJSONByte), "json"); err != nil {
		return err
	}
	// Parse into a scratch map first so that a bad line leaves r unchanged.
	var kv []kvPair
	err := flattenJSON(in, s.prefix, s.depth, func(k string, v any) { kv = append(kv, kvPair{k, v}) })
	if err != nil {
		return &stepError{reason: ReasonParse, err: err}
	}
	return setTyped(r, kv, s.types)
}

// setTyped sets parsed attributes, converted first to the types the step's
// types: give them (as a grok capture's type converts it): a value that
// does not convert fails the step and sets nothing.
func setTyped(r *schemas.Record, kv []kvPair, types map[string]string) *stepError {
	if len(types) > 0 {
		out := kv[:0]
		for _, p := range kv {
			if typ, ok := types[p.k]; ok {
				if p.v == nil {
					continue // null: absent, as "-" and empty are
				}
				v, keep, err := convertValue(p.v, typ)
				if err != nil {
					return failf(ReasonParse, "%s: %v", p.k, err)
				}
				if !keep {
					continue
				}
				p.v = v
			}
			out = append(out, p)
		}
		kv = out
	}
	for _, p := range kv {
		setAttr(r, p.k, p.v)
	}
	return nil
}

// convertValue converts a parsed value to typ, as convertCapture converts
// its text; an array item by item, absent items left out.
func convertValue(v any, typ string) (any, bool, error) {
	items, isArray := v.([]any)
	if !isArray {
		text, isStr := v.(string)
		if !isStr {
			text = fmt.Sprint(v)
		}
		return convertCapture(text, typ)
	}
	out := make([]any, 0, len(items))
	for _, it := range items {
		if it == nil {
			continue
		}
		c, keep, err := convertValue(it, typ)
		if err != nil {
			return nil, false, err
		}
		if keep {
			out = append(out, c)
		}
	}
	return out, true, nil
}

// csvStep reads one delimited line (CSV, TSV) into the attributes its
// columns name, with RFC 4180 quoting.
type csvStep struct {
	field   fieldRef
	columns []string
	comma   rune
	types   map[string]string
}

func (s *csvStep) apply(r *schemas.Record, st *state) *stepError {
	in, serr := parseInput(s.field, r)
	if serr != nil {
		return serr
	}
	if err := st.charge(mul(int64(len(in)), 2), "csv"); err != nil {
		return err
	}
	var buf [16]string
	vals, err := splitCSV(buf[:0], in, s.comma)
	if err != nil {
		return failf(ReasonParse, "%v", err)
	}
	if len(vals) > len(s.columns) {
		return failf(ReasonParse, "csv: %d values, more than the %d columns", len(vals), len(s.columns))
	}
	kv := make([]kvPair, 0, len(vals))
	for i, v := range vals {
		kv = append(kv, kvPair{s.columns[i], v})
	}
	return setTyped(r, kv, s.types)
}

type kvPair struct {
	k string
	v any
}

type logfmtStep struct {
	field  fieldRef
	prefix string
	types  map[string]string
}

func (s *logfmtStep) apply(r *schemas.Record, st *state) *stepError {
	in, serr := parseInput(s.field, r)
	if serr != nil {
		return serr
	}
	if err := st.charge(int64(len(in)), "logfmt"); err != nil {
		return err
	}
	var kv []kvPair
	if err := parseLogfmt(in, s.prefix, func(k string, v any) { kv = append(kv, kvPair{k, v}) }); err != nil {
		return &stepError{reason: ReasonParse, err: err}
	}
	return setTyped(r, kv, s.types)
}

type regexStep struct {
	field fieldRef
	re    *sandboxRE
	names []string
	types map[string]string
}

func (s *regexStep) apply(r *schemas.Record, st *state) *stepError {
	in, serr := parseInput(s.field, r)
	if serr != nil {
		return serr
	}
	if err := st.charge(s.re.cost(len(in)), "regex"); err != nil {
		return err
	}
	m := s.re.re.FindStringSubmatchIndex(in)
	if m == nil {
		return failf(ReasonParse, "regex: %s does not match", s.field.name)
	}
	if len(s.types) == 0 {
		for i, name := range s.names {
			if name != "" && m[2*i] >= 0 {
				setAttr(r, name, in[m[2*i]:m[2*i+1]])
			}
		}
		return nil
	}
	// Typed captures are converted from their text, not boxed first;
	// nothing is set unless every one converts.
	kv := make([]kvPair, 0, len(s.names))
	for i, name := range s.names {
		if name == "" || m[2*i] < 0 {
			continue
		}
		text := in[m[2*i]:m[2*i+1]]
		typ, typed := s.types[name]
		if !typed {
			kv = append(kv, kvPair{name, text})
			continue
		}
		v, keep, err := convertCapture(text, typ)
		if err != nil {
			return failf(ReasonParse, "%s: %v", name, err)
		}
		if keep {
			kv = append(kv, kvPair{name, v})
		}
	}
	for _, p := range kv {
		setAttr(r, p.k, p.v)
	}
	return nil
}

type klogStep struct {
	field fieldRef
	loc   *time.Location // of the header's time, which has no zone
}

func (s *klogStep) apply(r *schemas.Record, st *state) *stepError {
	in, serr := parseInput(s.field, r)
	if serr != nil {
		return serr
	}
	// The header regex is anchored and stops after the header; the rest
	// of the line is only sliced.
	if err := st.charge(klogCost, "klog"); err != nil {
		return err
	}
	ref := r.Timestamp
	if ref.IsZero() {
		ref = r.ObservedTimestamp
	}
	if ref.IsZero() {
		ref = time.Now().UTC()
	}
	k, err := parseKlog(in, ref, s.loc)
	if err != nil {
		return &stepError{reason: ReasonParse, err: err}
	}
	msg, kv := k.message, []kvPair(nil)
	if len(msg) > 0 && msg[0] == '"' {
		// Structured klog (InfoS, ErrorS): a quoted message, then
		// key="value" pairs, each an attribute.
		if err := st.charge(int64(len(msg)), "klog"); err != nil {
			return err
		}
		msg, kv = splitKlogStructured(msg)
	}
	r.Timestamp = k.time
	setAttr(r, "severity", k.severity)
	setAttr(r, "pid", k.pid)
	setAttr(r, "file", k.file)
	setAttr(r, "line", k.line)
	setAttr(r, "message", msg)
	for _, p := range kv {
		setAttr(r, p.k, p.v)
	}
	return nil
}

type timestampStep struct {
	field   fieldRef
	layouts []timeLayout // tried in order
	loc     *time.Location
}

func (s *timestampStep) apply(r *schemas.Record, st *state) *stepError {
	v, ok := s.field.get(r)
	if !ok {
		return failf(ReasonTimestamp, "field %s is missing", s.field.name)
	}
	if err := st.charge(int64(len(s.layouts))*timestampCost, "timestamp"); err != nil {
		return err
	}
	var first error
	for _, l := range s.layouts {
		t, err := parseTime(v, l, s.loc)
		if err == nil {
			r.Timestamp = t
			return nil
		}
		if first == nil {
			first = err
		}
	}
	if len(s.layouts) > 1 {
		first = fmt.Errorf("no layout of %d matched; the first said: %w", len(s.layouts), first)
	}
	return &stepError{reason: ReasonTimestamp, err: first}
}

type setStep struct {
	field fieldRef
	value any
	prog  *vm.Program // nil: value
}

func (s *setStep) apply(r *schemas.Record, st *state) *stepError {
	v := s.value
	if s.prog != nil {
		out, err := st.ev.run(s.prog, st, r)
		if err != nil {
			return exprFail(err)
		}
		if err := st.chargeValue(out); err != nil {
			return err
		}
		v = out
	}
	if err := s.field.set(r, v); err != nil {
		return &stepError{reason: ReasonField, err: err}
	}
	return nil
}

type moveStep struct {
	from, to fieldRef
	keep     bool // copy rather than rename
}

func (s *moveStep) apply(r *schemas.Record, _ *state) *stepError {
	v, ok := s.from.get(r)
	if !ok {
		return nil
	}
	if err := s.to.set(r, v); err != nil {
		return &stepError{reason: ReasonField, err: err}
	}
	if !s.keep {
		s.from.del(r)
	}
	return nil
}

type removeStep struct{ fields []fieldRef }

func (s *removeStep) apply(r *schemas.Record, _ *state) *stepError {
	for _, f := range s.fields {
		f.del(r)
	}
	return nil
}

type liftStep struct{ prefix string } // "payload."

func (s *liftStep) apply(r *schemas.Record, _ *state) *stepError {
	var moved []kvPair
	for k, v := range r.Attributes {
		if strings.HasPrefix(k, s.prefix) && len(k) > len(s.prefix) {
			moved = append(moved, kvPair{k, v})
		}
	}
	for _, p := range moved {
		delete(r.Attributes, p.k)
	}
	for _, p := range moved {
		r.Attributes[p.k[len(s.prefix):]] = p.v
	}
	return nil
}

type filterStep struct {
	prog *vm.Program
	keep bool // keep: drop when false; drop: drop when true
}

func (s *filterStep) apply(r *schemas.Record, st *state) *stepError {
	b, err := st.ev.cond(s.prog, st, r)
	if err != nil {
		return exprFail(err)
	}
	if b != s.keep {
		st.dropped = true
	}
	return nil
}

// sampleStep keeps a record when the hash of its key (its id, else its
// log; or the value of the key expression) falls in the kept part: one in
// oneIn, or rate of all (keep below threshold, of 2^64).
type sampleStep struct {
	oneIn     uint64 // 0 with a rate
	threshold uint64
	key       *vm.Program // nil: the record's id
}

func (s *sampleStep) apply(r *schemas.Record, st *state) *stepError {
	key := r.ID
	if key == "" {
		key = r.Log
	}
	if s.key != nil {
		v, err := st.ev.run(s.key, st, r)
		if err != nil {
			return exprFail(err)
		}
		if v != nil {
			key = fmt.Sprint(v)
		}
	}
	h := fnv64a(key)
	if s.oneIn > 0 && h%s.oneIn != 0 || s.oneIn == 0 && h >= s.threshold {
		st.dropped = true
	}
	return nil
}

func fnv64a(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// routeStep sends the record to its datasets when its condition holds
// (nil: always): the first route that does decides where the record goes
// (its first dataset; the others get copies); a copy route sends copies
// and leaves that to the others.
type routeStep struct {
	prog     *vm.Program
	datasets []string
	copy     bool
}

func (s *routeStep) apply(r *schemas.Record, st *state) *stepError {
	if st.routed && !s.copy {
		return nil
	}
	if s.prog != nil {
		b, err := st.ev.cond(s.prog, st, r)
		if err != nil {
			return exprFail(err)
		}
		if !b {
			return nil
		}
	}
	copies := s.datasets
	if !s.copy {
		st.routed = true
		st.dataset = s.datasets[0]
		copies = s.datasets[1:]
	}
	for _, c := range copies {
		if !slices.Contains(st.copies, c) {
			st.copies = append(st.copies, c)
		}
	}
	return nil
}

// compileStep validates and compiles one step spec.
func compileStep(ss *StepSpec, patterns map[string]string) (step, bool, error) {
	field := func(name, v string) (fieldRef, error) {
		if v == "" {
			return fieldRef{}, fmt.Errorf("%s: missing %s", ss.Type, name)
		}
		f, err := parseFieldRef(v)
		if err != nil {
			return fieldRef{}, fmt.Errorf("%s.%s: %w", ss.Type, name, err)
		}
		return f, nil
	}
	defField := func() (fieldRef, error) {
		if ss.Field == "" {
			return fieldRef{kind: fieldLog, name: "log"}, nil
		}
		return field("field", ss.Field)
	}
	cond := func() (*vm.Program, error) {
		if ss.If == "" {
			return nil, fmt.Errorf("%s: missing if", ss.Type)
		}
		p, err := compileExpr(ss.If, true)
		if err != nil {
			return nil, valueError("if", ss.If, fmt.Errorf("%s.if: %w", ss.Type, err))
		}
		return p, nil
	}
	for field, typ := range ss.Types {
		if !grokTypes[typ] {
			return nil, false, fmt.Errorf("%s.types: %s: unknown type %q (string, int, float, bool, ip, duration, bytes, timestamp)", ss.Type, field, typ)
		}
	}
	switch ss.Type {
	case "json":
		f, err := defField()
		if err != nil {
			return nil, false, err
		}
		depth := ss.Depth
		if depth == 0 {
			depth = DefaultJSONDepth
		}
		if depth < 1 || depth > MaxJSONDepth {
			return nil, false, fmt.Errorf("json.depth must be between 1 and %d", MaxJSONDepth)
		}
		return &jsonStep{field: f, depth: depth, prefix: keyPrefix(ss.Prefix), types: ss.Types}, false, nil
	case "logfmt":
		f, err := defField()
		if err != nil {
			return nil, false, err
		}
		return &logfmtStep{field: f, prefix: keyPrefix(ss.Prefix), types: ss.Types}, false, nil
	case "csv":
		f, err := defField()
		if err != nil {
			return nil, false, err
		}
		comma := ','
		if ss.Delimiter != "" {
			d := []rune(ss.Delimiter)
			if ss.Delimiter == "\\t" {
				d = []rune{'\t'}
			}
			if len(d) != 1 || d[0] == '"' || d[0] == '\r' || d[0] == '\n' {
				return nil, false, fmt.Errorf("csv.delimiter must be one character other than a quote or a line break, got %q", ss.Delimiter)
			}
			comma = d[0]
		}
		cols := ss.Columns
		if ss.Header != "" {
			if len(cols) > 0 {
				return nil, false, fmt.Errorf("csv: give columns or header, not both")
			}
			hr := csv.NewReader(strings.NewReader(ss.Header))
			hr.Comma = comma
			if cols, err = hr.Read(); err != nil {
				return nil, false, fmt.Errorf("csv.header: %w", err)
			}
		}
		if len(cols) == 0 {
			return nil, false, fmt.Errorf("csv: missing columns (a list) or header (a header line)")
		}
		for i, c := range cols {
			if c == "" || slices.Contains(cols[:i], c) {
				return nil, false, fmt.Errorf("csv: column %d: empty or repeated name %q", i+1, c)
			}
		}
		return &csvStep{field: f, columns: cols, comma: comma, types: ss.Types}, false, nil
	case "regex":
		f, err := defField()
		if err != nil {
			return nil, false, err
		}
		if ss.Pattern == "" {
			return nil, false, fmt.Errorf("regex: missing pattern")
		}
		re, err := compileRegex(ss.Pattern)
		if err != nil {
			return nil, false, valueError("pattern", ss.Pattern, fmt.Errorf("regex.pattern: %w", err))
		}
		named := false
		for _, n := range re.re.SubexpNames() {
			named = named || n != ""
		}
		if !named {
			return nil, false, fmt.Errorf("regex.pattern: no named group (?P<name>...)")
		}
		return &regexStep{field: f, re: re, names: re.re.SubexpNames(), types: ss.Types}, false, nil
	case "grok":
		f, err := defField()
		if err != nil {
			return nil, false, err
		}
		srcs := ss.grokSources()
		if len(srcs) == 0 {
			return nil, false, fmt.Errorf("grok: missing pattern")
		}
		gs := &grokStep{field: f}
		for i, src := range srcs {
			p, err := compileGrok(src, patterns)
			if err != nil {
				if len(srcs) > 1 {
					return nil, false, valueError(fmt.Sprintf("pattern[%d]", i), src, fmt.Errorf("grok.pattern %d: %w", i+1, err))
				}
				return nil, false, valueError("pattern", src, fmt.Errorf("grok.pattern: %w", err))
			}
			gs.patterns = append(gs.patterns, p)
		}
		return gs, false, nil
	case "klog":
		f, err := defField()
		if err != nil {
			return nil, false, err
		}
		loc, err := loadZone(ss.Timezone)
		if err != nil {
			return nil, false, fmt.Errorf("klog.timezone: %w", err)
		}
		return &klogStep{field: f, loc: loc}, false, nil
	case "timestamp":
		f, err := field("field", ss.Field)
		if err != nil {
			return nil, false, err
		}
		if len(ss.Layouts) == 0 {
			return nil, false, fmt.Errorf("timestamp: missing layout")
		}
		var layouts []timeLayout
		for _, l := range ss.Layouts {
			tl, err := resolveLayout(l)
			if err != nil {
				return nil, false, valueError("layout", "", fmt.Errorf("timestamp.layout: %w", err))
			}
			layouts = append(layouts, tl...)
		}
		loc, err := loadZone(ss.Timezone)
		if err != nil {
			return nil, false, fmt.Errorf("timestamp.timezone: %w", err)
		}
		return &timestampStep{field: f, layouts: layouts, loc: loc}, false, nil
	case "set":
		f, err := field("field", ss.Field)
		if err != nil {
			return nil, false, err
		}
		if ss.HasValue == (ss.Expr != "") {
			return nil, false, fmt.Errorf("set: give exactly one of value and expr")
		}
		if f.kind == fieldTimestamp && ss.HasValue {
			if err := f.set(&schemas.Record{}, ss.Value); err != nil {
				return nil, false, fmt.Errorf("set.value: %w", err)
			}
		}
		if ss.Expr == "" {
			return &setStep{field: f, value: normalize(ss.Value)}, false, nil
		}
		p, err := compileExpr(ss.Expr, false)
		if err != nil {
			return nil, false, valueError("expr", ss.Expr, fmt.Errorf("set.expr: %w", err))
		}
		return &setStep{field: f, prog: p}, true, nil
	case "rename", "copy":
		from, err := field("from", ss.From)
		if err != nil {
			return nil, false, err
		}
		to, err := field("to", ss.To)
		if err != nil {
			return nil, false, err
		}
		if from == to {
			return nil, false, fmt.Errorf("%s: from and to are the same field", ss.Type)
		}
		return &moveStep{from: from, to: to, keep: ss.Type == "copy"}, false, nil
	case "remove":
		if len(ss.Fields) == 0 {
			return nil, false, fmt.Errorf("remove: missing fields")
		}
		s := &removeStep{}
		for _, name := range ss.Fields {
			f, err := field("fields", name)
			if err != nil {
				return nil, false, err
			}
			s.fields = append(s.fields, f)
		}
		return s, false, nil
	case "lift":
		f, err := field("field", ss.Field)
		if err != nil {
			return nil, false, err
		}
		if f.kind != fieldAttr {
			return nil, false, fmt.Errorf("lift.field: %s is not an attribute", f.name)
		}
		return &liftStep{prefix: f.key + "."}, false, nil
	case "drop", "keep":
		p, err := cond()
		if err != nil {
			return nil, false, err
		}
		return &filterStep{prog: p, keep: ss.Type == "keep"}, true, nil
	case "multiline":
		ml, err := compileMultiline(ss)
		if err != nil {
			return nil, false, err
		}
		return ml, false, nil
	case "sample":
		s := &sampleStep{}
		switch {
		case (ss.OneIn != 0) == (ss.Rate != 0):
			return nil, false, fmt.Errorf("sample: give exactly one of one_in and rate")
		case ss.OneIn != 0 && (ss.OneIn < 1 || ss.OneIn > MaxSampleOneIn):
			return nil, false, fmt.Errorf("sample.one_in must be between 1 and %d", MaxSampleOneIn)
		case ss.OneIn != 0:
			s.oneIn = uint64(ss.OneIn)
		case !(ss.Rate > 0 && ss.Rate <= 1):
			return nil, false, fmt.Errorf("sample.rate must be above 0 and at most 1, got %v", ss.Rate)
		case ss.Rate == 1:
			s.oneIn = 1
		default:
			s.threshold = uint64(ss.Rate * (1 << 63) * 2)
		}
		if ss.Key != "" {
			p, err := compileExpr(ss.Key, false)
			if err != nil {
				return nil, false, valueError("key", ss.Key, fmt.Errorf("sample.key: %w", err))
			}
			s.key = p
		}
		return s, s.key != nil, nil
	case "route":
		datasets := ss.routeDatasets()
		if len(datasets) == 0 {
			return nil, false, fmt.Errorf("route: missing dataset")
		}
		for _, ds := range datasets {
			if err := kafka.ValidateDataset(ds); err != nil {
				return nil, false, fmt.Errorf("route.dataset: %w", err)
			}
		}
		s := &routeStep{datasets: datasets, copy: ss.Copy}
		if ss.If == "" {
			return s, false, nil // always: a default route, put last
		}
		p, err := cond()
		if err != nil {
			return nil, false, err
		}
		s.prog = p
		return s, true, nil
	}
	if msg, ok := unsupportedSteps[ss.Type]; ok {
		return nil, false, fmt.Errorf("%s", msg)
	}
	return nil, false, fmt.Errorf("unknown step type %q", ss.Type)
}

// keyPrefix is what a parse step's prefix puts before each key it sets:
// prefix: body puts {"error": 1} at body.error, as the keys of nested
// objects are dotted. A trailing dot is allowed.
func keyPrefix(p string) string {
	if p == "" || strings.HasSuffix(p, ".") {
		return p
	}
	return p + "."
}
