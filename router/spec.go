package router

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/schemas"
)

// Limits on a pipeline document. They keep one tenant's configuration from
// costing the router more than a bounded amount of memory and time.
const (
	// MaxSpecBytes is the largest pipeline document accepted.
	MaxSpecBytes = 256 << 10
	// MaxSteps is the most steps a pipeline may have.
	MaxSteps = 100
	// MaxTests is the most entries a tests: section may have.
	MaxTests = 100
	// MaxPatternLen is the longest regex pattern, in bytes.
	MaxPatternLen = 4096
	// MaxExprLen is the longest expression, in bytes.
	MaxExprLen = 4096
	// MaxExprNodes bounds an expression's syntax tree (expr.MaxNodes).
	MaxExprNodes = 500
	// ExprMemoryBudget is the VM memory budget of one evaluation
	// (vm.VM.MemoryBudget, in expr's units: roughly elements allocated by
	// ranges, arrays, maps and loops). Exceeding it fails the record with
	// ReasonCostExceeded.
	ExprMemoryBudget = 100_000
	// MaxJSONDepth is the largest depth a json step may ask for;
	// DefaultJSONDepth applies when it gives none.
	MaxJSONDepth     = 16
	DefaultJSONDepth = 5
	// MaxAttributes bounds a processed record's attributes (each is a field
	// of the tenant's index mapping); the rest go to OverflowKey as one JSON
	// object string.
	MaxAttributes = 256
	// MaxArrayItems bounds an array attribute a json step parses, so that
	// a line's bytes cannot turn into many times their size in boxed items
	// (or into an array Elasticsearch indexes item by item): a longer
	// array is kept as its JSON text.
	MaxArrayItems = 1024
	// OverflowKey is the attribute holding attributes beyond MaxAttributes.
	OverflowKey = "_overflow"
	// MaxSampleOneIn bounds a sample step's one_in.
	MaxSampleOneIn = 1_000_000_000
)

// Spec is a decoded pipeline document. Parse returns it validated; Compile
// validates again, so a Spec built by hand is safe to compile.
type Spec struct {
	Tenant  string
	Version int64
	Steps   []StepSpec
	Tests   []TestSpec
	// Patterns are the pipeline's own grok patterns, by name: they add to
	// the built-in ones or replace them.
	Patterns map[string]string
	// Warnings are what the document says that Parse accepts but that
	// should change (a deprecated key), in document order.
	Warnings []Warning

	// positions of tenant and version, for Compile's messages.
	tenantLine, tenantCol, versionLine, versionCol int
}

// StepSpec is one step as written. Type selects which fields apply; see
// the package doc for each step's keys. Line and Column locate the step.
type StepSpec struct {
	Type         string
	Line, Column int
	// Pos is where each key's value is ("pattern[1]" for a list's second
	// item), so that a problem with a pattern or expression is shown at
	// it.
	Pos map[string]valuePos

	Field  string   // json, logfmt, regex, klog, timestamp, set, lift
	From   string   // rename, copy
	To     string   // rename, copy
	Fields []string // remove
	Depth  int      // json
	Prefix string   // json, logfmt
	// csv: the columns' names, as a list or as a header line, and the
	// delimiter (default ","; "\t" for TSV).
	Columns   []string
	Header    string
	Delimiter string
	// Types converts parsed attributes (json, logfmt, regex, csv): attribute
	// key -> string, int, float, bool, ip, duration, bytes or timestamp.
	Types   map[string]string
	Pattern string // regex, grok
	// GrokPatterns are a grok step's patterns when a list is given, tried
	// in order.
	GrokPatterns []string
	Layouts      []string // timestamp: tried in order
	// Timezone names the zone of times written without one (timestamp,
	// klog); default UTC.
	Timezone string
	Value    any // set (normalised scalar); HasValue says it was given
	// HasValue reports that Value was given (it may be nil: value: null).
	HasValue bool
	Expr     string  // set
	If       string  // every step but multiline; see OnError
	OneIn    int64   // sample: keep one record in OneIn
	Rate     float64 // sample: keep this fraction of records (0 < Rate <= 1)
	Key      string  // sample: an expression; records with equal keys are kept or dropped together
	Dataset  string  // route: its dataset (dataset: given as one name)
	// Datasets are a route's datasets when dataset: is a list: the first
	// gets the record, the others copies.
	Datasets []string
	// Copy makes a route send a copy, and the record go on.
	Copy bool
	// If, on a step other than drop, keep and route (where it is the
	// step's own condition), runs the step only when it is true.
	// OnError says what a failing step does to the record: dead_letter
	// (default; dlq is the same), skip (the record goes on; a failing step
	// has changed nothing) or keep_going (as skip, and the error is noted
	// in the record's _errors attribute).
	OnError string
	// multiline: a line matching Continuation joins the record before it,
	// up to MaxLines lines and MaxBytes bytes, waiting at most MaxWait for
	// more (zero values take the defaults).
	Continuation string
	MaxLines     int
	MaxBytes     int
	MaxWait      time.Duration
}

// TestSpec is one entry of a pipeline's tests: section.
type TestSpec struct {
	Name         string
	Line, Column int
	// Input is the record fed to the pipeline (from input: or line:).
	Input schemas.Record
	// Lines, from lines:, are consecutive log lines of one container,
	// joined by the pipeline's multiline step (if it has one) before the
	// other steps run, as the router joins them; Expect is checked on the
	// first record they make.
	Lines []string
	// Expect is what the outcome must match.
	Expect TestExpect
}

// TestExpect is the expected outcome of a test. Nil pointers are not
// checked; Attributes is a subset check; Absent lists attribute keys that
// must not exist.
type TestExpect struct {
	Dataset    *string  // the route's dataset, "" for the main parsed topic
	Copies     []string // the datasets that get copies, in any order; nil: not checked
	Records    *int     // with lines: how many records they make
	Dropped    bool
	DLQ        bool
	Log        *string
	Timestamp  *string
	Attributes map[string]any
	Absent     []string
}

// stepKeys lists the keys each step type accepts.
var stepKeys = map[string][]string{
	"json":      {"field", "depth", "prefix", "types", "if", "on_error"},
	"logfmt":    {"field", "prefix", "types", "if", "on_error"},
	"regex":     {"field", "pattern", "types", "if", "on_error"},
	"csv":       {"field", "columns", "header", "delimiter", "types", "if", "on_error"},
	"grok":      {"field", "pattern", "if", "on_error"},
	"klog":      {"field", "timezone", "if", "on_error"},
	"timestamp": {"field", "layout", "timezone", "if", "on_error"},
	"set":       {"field", "value", "expr", "if", "on_error"},
	"rename":    {"from", "to", "if", "on_error"},
	"remove":    {"fields", "if", "on_error"},
	"copy":      {"from", "to", "if", "on_error"},
	"lift":      {"field", "if", "on_error"},
	"drop":      {"if", "on_error"},
	"keep":      {"if", "on_error"},
	"sample":    {"one_in", "rate", "key", "if", "on_error"},
	"route":     {"if", "dataset", "stream", "copy", "on_error"}, // stream: dataset's deprecated name
	"multiline": {"continuation", "max_lines", "max_bytes", "max_wait"},
}

// ownIf are the steps whose if is their own condition (what they drop,
// keep or route), not a guard on whether they run.
var ownIf = map[string]bool{"drop": true, "keep": true, "route": true}

// unsupportedSteps are step types users know from other tools; they are
// rejected with a pointer to what to use instead.
var unsupportedSteps = map[string]string{}

// Warning is what a document says that Parse accepts but that should
// change, such as a deprecated key, with where it is.
type Warning struct {
	Line, Column int
	// Msg describes it, lower-case, without position.
	Msg string
}

// String writes the warning as SpecError writes an error: "line L, column
// C: msg".
func (w Warning) String() string {
	return fmt.Sprintf("line %d, column %d: %s", w.Line, w.Column, w.Msg)
}

// decoder collects problems while walking the YAML tree.
type decoder struct {
	lines    []string // the document's, for where a block's text starts
	errs     []error
	warns    []Warning
	badSteps map[int]bool // steps with a decoding problem
	badNames bool         // tenant or version with a decoding problem
}

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	line, col := 1, 1
	if n != nil && n.Line > 0 {
		line, col = n.Line, n.Column
	}
	d.errs = append(d.errs, &SpecError{Line: line, Column: col, Msg: fmt.Sprintf(format, args...), Err: ErrInvalidSpec})
}

func (d *decoder) warnf(n *yaml.Node, format string, args ...any) {
	d.warns = append(d.warns, Warning{Line: max(n.Line, 1), Column: max(n.Column, 1), Msg: fmt.Sprintf(format, args...)})
}

// renamedKey decodes a key that has a deprecated former name: the second
// of the two given (seen says whether one was) is an error, the former
// name (key == old) a warning. It reports whether the value is to be
// decoded.
func (d *decoder) renamedKey(seen *bool, k *yaml.Node, what, key, old, now string) bool {
	if *seen {
		d.errorf(k, "%s: give %s only (%s is its deprecated name), not both", what, now, old)
		return false
	}
	*seen = true
	if key == old {
		d.warnf(k, "%s.%s is deprecated: write %s.%s (same meaning)", what, old, what, now)
	}
	return true
}

var yamlLineRE = regexp.MustCompile(`line (\d+)`)

// yamlError turns a yaml.v3 syntax error into a SpecError; yaml.v3 only
// gives the line in its message.
func yamlError(err error) error {
	line := 1
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		if n, e := strconv.Atoi(m[1]); e == nil && n > 0 {
			line = n
		}
	}
	return &SpecError{Line: line, Column: 1, Msg: err.Error(), Err: ErrInvalidSpec}
}

// Parse decodes and validates one pipeline document: structure (strict:
// unknown keys are errors), tenant and dataset names, limits, and that every
// regex, layout and expression compiles. It returns every problem at once,
// joined with errors.Join, each a *SpecError with a line and column, or the
// spec with what it accepted but should change in its Warnings. YAML
// anchors and aliases are rejected. Parse does not run the tests.
func Parse(src []byte) (*Spec, error) {
	if len(src) > MaxSpecBytes {
		return nil, &SpecError{Line: 1, Column: 1, Msg: fmt.Sprintf("document is %d bytes, more than %d", len(src), MaxSpecBytes), Err: ErrSpecTooLarge}
	}
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &SpecError{Line: 1, Column: 1, Msg: "empty document", Err: ErrInvalidSpec}
		}
		return nil, yamlError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &SpecError{Line: max(extra.Line, 1), Column: max(extra.Column, 1), Msg: "more than one document: one pipeline per document", Err: ErrInvalidSpec}
	} else if !errors.Is(err, io.EOF) {
		return nil, yamlError(err)
	}
	d := decoder{lines: strings.Split(string(src), "\n")}
	if hasAlias(&doc) {
		d.errorf(&doc, "yaml anchors and aliases are not allowed")
		return nil, errors.Join(d.errs...)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	spec := d.spec(root)
	// Check what decoded cleanly with Compile's rules too, so that every
	// problem is reported at once; skip what the decoder already flagged.
	check := *spec
	check.Steps = nil
	for i, st := range spec.Steps {
		if !d.badSteps[i] {
			check.Steps = append(check.Steps, st)
		}
	}
	_, errs := compile(&check, !d.badNames)
	errs = append(d.errs, errs...)
	if len(errs) > 0 {
		sortErrors(errs)
		return nil, errors.Join(errs...)
	}
	spec.Warnings = d.warns
	return spec, nil
}

func hasAlias(n *yaml.Node) bool {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return true
	}
	for _, c := range n.Content {
		if hasAlias(c) {
			return true
		}
	}
	return false
}

// mapping calls fn for each key of a mapping node, reporting keys not in
// allowed (unless allowed is nil) and duplicates.
func (d *decoder) mapping(n *yaml.Node, what string, allowed []string, fn func(key string, k, v *yaml.Node)) bool {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s must be a mapping", what)
		return false
	}
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, "%s: keys must be strings", what)
			continue
		}
		ok := allowed == nil // nil: any key
		for _, a := range allowed {
			if a == k.Value {
				ok = true
				break
			}
		}
		if !ok {
			d.errorf(k, "%s: unknown key %q", what, k.Value)
			continue
		}
		if seen[k.Value] {
			d.errorf(k, "%s: duplicate key %q", what, k.Value)
			continue
		}
		seen[k.Value] = true
		fn(k.Value, k, v)
	}
	return true
}

func (d *decoder) str(n *yaml.Node, what string) string {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		d.errorf(n, "%s must be a string", what)
		return ""
	}
	return n.Value
}

// strs returns a list of strings.
func (d *decoder) strs(n *yaml.Node, what string) []string {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "%s must be a list of strings", what)
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for _, c := range n.Content {
		out = append(out, d.str(c, what))
	}
	return out
}

// strOrList returns one string, or a list of at least one.
func (d *decoder) strOrList(n *yaml.Node, what string) []string {
	if n.Kind != yaml.SequenceNode {
		return []string{d.str(n, what)}
	}
	if len(n.Content) == 0 {
		d.errorf(n, "%s must not be an empty list", what)
		return nil
	}
	return d.strs(n, what)
}

func (d *decoder) int(n *yaml.Node, what string) int64 {
	var v int64
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&v) != nil {
		d.errorf(n, "%s must be an integer", what)
		return 0
	}
	return v
}

func (d *decoder) bool(n *yaml.Node, what string) bool {
	var v bool
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&v) != nil {
		d.errorf(n, "%s must be true or false", what)
		return false
	}
	return v
}

// value decodes an attribute value: a scalar, or a list of scalars (an
// array attribute).
func (d *decoder) value(n *yaml.Node, what string) any {
	if n.Kind != yaml.SequenceNode {
		return d.scalar(n, what)
	}
	items := make([]any, len(n.Content))
	for i, c := range n.Content {
		if c.Kind != yaml.ScalarNode {
			d.errorf(c, "%s: a list item must be a scalar (null, bool, number or string)", what)
			return nil
		}
		items[i] = d.scalar(c, what)
	}
	return items
}

// scalar decodes a scalar into an attribute value.
func (d *decoder) scalar(n *yaml.Node, what string) any {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, "%s must be a scalar (null, bool, number or string)", what)
		return nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		d.errorf(n, "%s: %v", what, err)
		return nil
	}
	return normalize(v)
}

func (d *decoder) spec(n *yaml.Node) *Spec {
	s := &Spec{}
	var hasTenant, hasVersion bool
	d.badSteps = make(map[int]bool)
	ok := d.mapping(n, "pipeline", []string{"tenant", "version", "patterns", "steps", "tests"}, func(key string, k, v *yaml.Node) {
		switch key {
		case "tenant":
			hasTenant = true
			s.tenantLine, s.tenantCol = v.Line, v.Column
			n := len(d.errs)
			s.Tenant = d.str(v, "tenant")
			d.badNames = d.badNames || len(d.errs) > n
		case "version":
			hasVersion = true
			s.versionLine, s.versionCol = v.Line, v.Column
			n := len(d.errs)
			s.Version = d.int(v, "version")
			d.badNames = d.badNames || len(d.errs) > n
		case "patterns":
			d.mapping(v, "patterns", nil, func(name string, k, v *yaml.Node) {
				if !grokNameRE.MatchString(name) {
					d.errorf(k, "patterns: %q is not a pattern name (letters, digits, _)", name)
					return
				}
				if s.Patterns == nil {
					s.Patterns = map[string]string{}
				}
				s.Patterns[name] = d.str(v, "patterns."+name)
			})
		case "steps":
			for i, sn := range d.list(v, "steps", MaxSteps) {
				n := len(d.errs)
				s.Steps = append(s.Steps, d.step(sn))
				d.badSteps[i] = len(d.errs) > n
			}
		case "tests":
			for _, tn := range d.list(v, "tests", MaxTests) {
				s.Tests = append(s.Tests, d.test(tn))
			}
		}
	})
	if ok && !hasTenant {
		d.errorf(n, "missing tenant")
	}
	if ok && !hasVersion {
		d.errorf(n, "missing version")
	}
	d.badNames = d.badNames || !ok || !hasTenant || !hasVersion
	return s
}

// list returns the items of a YAML list of at most max items, or nil after
// reporting why it is not one.
func (d *decoder) list(v *yaml.Node, what string, max int) []*yaml.Node {
	if v.Kind != yaml.SequenceNode {
		d.errorf(v, "%s must be a list", what)
		return nil
	}
	if len(v.Content) > max {
		d.errorf(v, "%d %s, more than %d", len(v.Content), what, max)
		return nil
	}
	return v.Content
}

func (d *decoder) step(n *yaml.Node) StepSpec {
	st := StepSpec{Line: n.Line, Column: n.Column}
	if n.Kind != yaml.MappingNode || len(n.Content) != 2 {
		d.errorf(n, "a step must be a mapping with exactly one key, the step type")
		return st
	}
	k, v := n.Content[0], n.Content[1]
	st.Type = k.Value
	if msg, ok := unsupportedSteps[st.Type]; ok {
		d.errorf(k, "%s", msg)
		return st
	}
	allowed, ok := stepKeys[st.Type]
	if !ok {
		d.errorf(k, "unknown step type %q", st.Type)
		return st
	}
	var hasDataset bool
	d.mapping(v, st.Type+" step", allowed, func(key string, k, v *yaml.Node) {
		what := st.Type + "." + key
		if st.Pos == nil {
			st.Pos = map[string]valuePos{}
		}
		st.Pos[key] = d.nodePos(v)
		if v.Kind == yaml.SequenceNode {
			for i, item := range v.Content {
				st.Pos[fmt.Sprintf("%s[%d]", key, i)] = d.nodePos(item)
			}
		}
		switch key {
		case "field":
			st.Field = d.str(v, what)
		case "from":
			st.From = d.str(v, what)
		case "to":
			st.To = d.str(v, what)
		case "fields":
			st.Fields = d.strs(v, what)
		case "depth":
			st.Depth = int(d.int(v, what))
		case "prefix":
			st.Prefix = d.str(v, what)
		case "pattern":
			if st.Type == "grok" && v.Kind == yaml.SequenceNode {
				st.GrokPatterns = d.strOrList(v, what)
				return
			}
			st.Pattern = d.str(v, what)
		case "layout":
			st.Layouts = d.strOrList(v, what) // tried in order
		case "timezone":
			st.Timezone = d.str(v, what)
		case "value":
			st.HasValue = true
			st.Value = d.value(v, what)
		case "expr":
			st.Expr = d.str(v, what)
		case "if":
			st.If = d.str(v, what)
		case "one_in":
			st.OneIn = d.int(v, what)
		case "dataset", "stream":
			if !d.renamedKey(&hasDataset, k, st.Type, key, "stream", "dataset") {
				return
			}
			if v.Kind == yaml.SequenceNode {
				st.Datasets = d.strOrList(v, what)
				return
			}
			st.Dataset = d.str(v, what)
		case "copy":
			st.Copy = d.bool(v, what)
		case "columns":
			st.Columns = d.strs(v, what)
		case "header":
			st.Header = d.str(v, what)
		case "delimiter":
			st.Delimiter = d.str(v, what)
		case "types":
			d.mapping(v, what, nil, func(field string, _, tv *yaml.Node) {
				if st.Types == nil {
					st.Types = map[string]string{}
				}
				st.Types[field] = d.str(tv, what+"."+field)
			})
		case "rate":
			switch x := d.scalar(v, what).(type) {
			case float64:
				st.Rate = x
			case int64:
				st.Rate = float64(x)
			default:
				d.errorf(v, "%s must be a number", what)
			}
		case "key":
			st.Key = d.str(v, what)
		case "on_error":
			st.OnError = d.str(v, what)
		case "continuation":
			st.Continuation = d.str(v, what)
		case "max_lines":
			st.MaxLines = int(d.int(v, what))
		case "max_bytes":
			st.MaxBytes = int(d.int(v, what))
		case "max_wait":
			s := d.str(v, what)
			w, err := time.ParseDuration(s)
			if err != nil {
				d.errorf(v, "%s: %v", what, err)
				return
			}
			st.MaxWait = w
		}
	})
	return st
}

// routeDatasets are a route step's datasets, from dataset: as one name or
// a list.
func (ss *StepSpec) routeDatasets() []string {
	if len(ss.Datasets) > 0 || ss.Dataset == "" {
		return ss.Datasets
	}
	return []string{ss.Dataset}
}

// grokSources are a grok step's patterns, from pattern: as one or a list.
func (ss *StepSpec) grokSources() []string {
	if ss.Pattern == "" {
		return ss.GrokPatterns
	}
	return append(slices.Clip(ss.GrokPatterns), ss.Pattern)
}

// nodePos is where a value's text is written: for a | or > block, the
// first column of the line after the indicator.
func (d *decoder) nodePos(n *yaml.Node) valuePos {
	p := valuePos{Line: n.Line, Column: n.Column,
		Quoted: n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) != 0,
		Block:  n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0}
	if p.Block && n.Line < len(d.lines) {
		next := d.lines[n.Line] // the line after the indicator's (1-based n.Line)
		p.Column = len(next) - len(strings.TrimLeft(next, " ")) + 1
	}
	return p
}

func (d *decoder) test(n *yaml.Node) TestSpec {
	t := TestSpec{Line: n.Line, Column: n.Column}
	var hasInput bool
	ok := d.mapping(n, "test", []string{"name", "input", "line", "lines", "expect"}, func(key string, k, v *yaml.Node) {
		switch key {
		case "name":
			t.Name = d.str(v, "test name")
		case "lines":
			if hasInput {
				d.errorf(k, "test: give one of input, line and lines")
			}
			hasInput = true
			for _, ln := range d.list(v, "test lines", MaxMultilineLines) {
				t.Lines = append(t.Lines, d.str(ln, "test lines"))
			}
			if len(t.Lines) == 0 {
				d.errorf(v, "test lines must not be empty")
			}
		case "line":
			if hasInput {
				d.errorf(k, "test: give one of input, line and lines")
			}
			hasInput = true
			t.Input.Log = d.str(v, "test line")
		case "input":
			if hasInput {
				d.errorf(k, "test: give one of input, line and lines")
			}
			hasInput = true
			t.Input = d.record(v)
		case "expect":
			t.Expect = d.expect(v)
		}
	})
	if ok && t.Name == "" {
		d.errorf(n, "test: missing name")
	}
	if ok && !hasInput {
		d.errorf(n, "test %q: missing input, line or lines", t.Name)
	}
	return t
}

// record decodes a (partial) record given in YAML, with the JSON field
// names of schemas.Record.
func (d *decoder) record(n *yaml.Node) schemas.Record {
	var r schemas.Record
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "test input must be a mapping of record fields")
		return r
	}
	var m map[string]any
	if err := n.Decode(&m); err != nil {
		d.errorf(n, "test input: %v", err)
		return r
	}
	b, err := json.Marshal(m)
	if err != nil {
		d.errorf(n, "test input: %v", err)
		return r
	}
	jd := json.NewDecoder(bytes.NewReader(b))
	jd.DisallowUnknownFields()
	jd.UseNumber()
	if err := jd.Decode(&r); err != nil {
		d.errorf(n, "test input: %v", err)
		return r
	}
	for k, v := range r.Attributes {
		r.Attributes[k] = normalize(v)
	}
	return r
}

func (d *decoder) expect(n *yaml.Node) TestExpect {
	var e TestExpect
	var hasDataset bool
	// stream: dataset's deprecated name.
	d.mapping(n, "expect", []string{"records", "dataset", "stream", "copies", "dropped", "dlq", "log", "timestamp", "attributes", "absent"}, func(key string, k, v *yaml.Node) {
		switch key {
		case "dataset", "stream":
			if !d.renamedKey(&hasDataset, k, "expect", key, "stream", "dataset") {
				return
			}
			s := d.str(v, "expect."+key)
			e.Dataset = &s
		case "records":
			n := int(d.int(v, "expect.records"))
			e.Records = &n
		case "copies":
			if v.Kind != yaml.SequenceNode {
				d.errorf(v, "expect.copies must be a list of datasets")
				return
			}
			e.Copies = []string{}
			for _, c := range v.Content {
				e.Copies = append(e.Copies, d.str(c, "expect.copies"))
			}
		case "dropped":
			e.Dropped = d.bool(v, "expect.dropped")
		case "dlq":
			e.DLQ = d.bool(v, "expect.dlq")
		case "log":
			s := d.str(v, "expect.log")
			e.Log = &s
		case "timestamp":
			s := d.str(v, "expect.timestamp")
			e.Timestamp = &s
		case "attributes":
			if v.Kind != yaml.MappingNode {
				d.errorf(v, "expect.attributes must be a mapping")
				return
			}
			e.Attributes = make(map[string]any, len(v.Content)/2)
			for i := 0; i+1 < len(v.Content); i += 2 {
				e.Attributes[v.Content[i].Value] = d.value(v.Content[i+1], "expect.attributes."+v.Content[i].Value)
			}
		case "absent":
			if v.Kind != yaml.SequenceNode {
				d.errorf(v, "expect.absent must be a list of attribute keys")
				return
			}
			for _, a := range v.Content {
				e.Absent = append(e.Absent, d.str(a, "expect.absent"))
			}
		}
	})
	if e.Dropped && e.DLQ {
		d.errorf(n, "expect: dropped and dlq are exclusive")
	}
	return e
}

// sortErrors orders SpecErrors by position (stable for others).
func sortErrors(errs []error) {
	pos := func(e error) (int, int) {
		var se *SpecError
		if errors.As(e, &se) {
			return se.Line, se.Column
		}
		return 0, 0
	}
	slices.SortStableFunc(errs, func(a, b error) int {
		la, ca := pos(a)
		lb, cb := pos(b)
		if la != lb {
			return la - lb
		}
		return ca - cb
	})
}

// validateNames checks tenant and version; used by Compile.
func validateNames(s *Spec) []error {
	var errs []error
	if err := kafka.ValidateTenant(s.Tenant); err != nil {
		errs = append(errs, &SpecError{Line: max(s.tenantLine, 1), Column: max(s.tenantCol, 1), Msg: fmt.Sprintf("tenant: %v", err), Err: ErrInvalidSpec})
	}
	if s.Version < 1 {
		errs = append(errs, &SpecError{Line: max(s.versionLine, 1), Column: max(s.versionCol, 1), Msg: fmt.Sprintf("version must be at least 1, got %d", s.Version), Err: ErrInvalidSpec})
	}
	return errs
}
