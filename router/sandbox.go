package router

import (
	"errors"
	"fmt"
	"hash"
	"math"
	"math/bits"
	"reflect"
	"regexp"
	"regexp/syntax"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/vm/runtime"
)

// Cost bounds. A record's whole trip through Process (every step: parse
// steps, regexes, expressions) draws on one meter of MaxRecordCost work
// units and ExprAllocBudget bytes; see the package doc, Expressions.
const (
	// MaxRecordCost is the work one record may cost, in units that take at
	// most about 10ns each: an expression function or operator charges the
	// bytes it reads and writes plus 4 per call, a regex len(input) × its
	// program's instructions, json steps, fromJSON and parseUserAgent 4
	// per input byte, logfmt steps 1 per byte, a loop (map, filter, all,
	// ...) 4 × its elements × the nodes of its body. About 170ms at worst;
	// an access-log regex on a 64 KiB line costs a quarter of it.
	MaxRecordCost = 16 << 20
	// ExprAllocBudget bounds the bytes expression functions and operators
	// may allocate for one record (strings, lists, JSON), counted before
	// they allocate, across all the record's evaluations.
	ExprAllocBudget = 8 << 20
	// MaxRegexInsts bounds the compiled program of a regex (regex steps,
	// constant and dynamic matches patterns): counted repetition such as
	// x{1,1000} multiplies it.
	MaxRegexInsts = 2000
	// MaxRecordTime bounds the time one record spends in Process, checked
	// between steps, once the record has used minTimedCost of its budget:
	// wall time alone, which a paused or overloaded process also shows,
	// does not fail a cheap record.
	MaxRecordTime = 250 * time.Millisecond
)

// Cost factors, in work units.
const (
	costJSONByte   = 4    // per input byte of a json step or fromJSON
	costIter       = 4    // per element and body node of a predicate
	costCall       = 1    // per metered call, on top of its bytes
	fromJSONFactor = 16   // allocation per input byte of fromJSON
	maxRegexCache  = 16   // dynamic patterns cached per evaluator
	klogCost       = 4096 // a klog step (anchored header regex)
	timestampCost  = 256  // per layout a timestamp step tries
	minTimedCost   = MaxRecordCost / 16
)

// errCostExceeded is the error of an evaluation or step that ran out of
// budget; Process turns it into ReasonCostExceeded.
var errCostExceeded = errors.New("cost budget exceeded")

// meter is the budget left to the record being processed. Expression
// functions get it as a hidden first argument (meterVar); steps charge it
// through state.
type meter struct {
	work  int64
	alloc int64
	// over is set once a charge failed, so that a wrapped error from the
	// VM is still recognised.
	over bool
	// res caches compiled dynamic matches patterns (bounded).
	res map[string]*sandboxRE
	// key and tenant are the record's tenant's pseudonym key (zero: none)
	// and name, for pseudonym(); mac is the HMAC state of macKey, the key
	// it last used.
	key    PseudonymKey
	tenant string
	mac    hash.Hash
	macKey []byte
}

func (m *meter) reset() {
	m.work, m.alloc, m.over = MaxRecordCost, ExprAllocBudget, false
}

// charge takes work units and allocation bytes from the budget, or fails
// without taking anything.
func (m *meter) charge(work, alloc int64) error {
	if work < 0 || alloc < 0 || work > m.work || alloc > m.alloc {
		m.over = true
		return errCostExceeded
	}
	m.work -= work
	m.alloc -= alloc
	return nil
}

// mul multiplies non-negative sizes, saturating instead of overflowing.
func mul(a, b int64) int64 {
	if a <= 0 || b <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi != 0 || lo > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(lo)
}

// add adds non-negative sizes, saturating.
func add(a, b int64) int64 {
	if s := a + b; s >= a {
		return s
	}
	return math.MaxInt64
}

// meterVar is the environment name that holds the evaluation's *meter.
// Users cannot name it: identifiers starting with "__" are rejected.
const meterVar = "__meter"

// sandboxRE is a compiled regex and its program size.
type sandboxRE struct {
	re    *regexp.Regexp
	insts int64
}

// compileRegex compiles an RE2 pattern and rejects one whose program is
// larger than MaxRegexInsts.
func compileRegex(pattern string) (*sandboxRE, error) {
	if len(pattern) > MaxPatternLen {
		return nil, fmt.Errorf("pattern longer than %d bytes", MaxPatternLen)
	}
	return compileRegexExpanded(pattern)
}

// compileRegexExpanded is compileRegex for a pattern made by expanding a
// shorter one (grok), whose length was checked before: only its program's
// size is bounded.
func compileRegexExpanded(pattern string) (*sandboxRE, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, err
	}
	sr, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil, err
	}
	prog, err := syntax.Compile(sr.Simplify())
	if err != nil {
		return nil, err
	}
	if n := len(prog.Inst); n > MaxRegexInsts {
		return nil, fmt.Errorf("pattern compiles to %d instructions, more than %d (bounded repetition such as {1,1000} multiplies the size)", n, MaxRegexInsts)
	}
	return &sandboxRE{re: re, insts: int64(len(prog.Inst))}, nil
}

// cost is what matching the regex against n bytes is charged: Go's
// regexp runs in time linear in input length × program size.
func (s *sandboxRE) cost(n int) int64 { return mul(int64(n)+1, s.insts) }

// Functions.
//
// Every builtin that can allocate or scan in proportion to its input is
// replaced by a function that takes the meter first (the patcher below adds
// it to every call) and charges before it works. The ones kept from expr
// run in constant time.

// nativeBuiltins stay expr's own: constant time and size.
var nativeBuiltins = []string{"abs", "ceil", "floor", "round", "type", "first", "last", "now"}

// predicateBuiltins are the loops allowed; each is charged its elements ×
// the size of its body before it starts.
var predicateBuiltins = map[string]bool{
	"all": true, "none": true, "any": true, "one": true, "filter": true, "map": true,
	"find": true, "findIndex": true, "findLast": true, "findLastIndex": true,
	"count": true, "sum": true, "reduce": true,
}

// meteredFunc is a function the user calls by name.
type meteredFunc struct {
	name  string
	fn    func(m *meter, args []any) (any, error)
	types []any
}

var meteredFuncs = append([]meteredFunc{
	{"len", fnLen, []any{new(func(*meter, any) int)}},
	{"int", fnScalar("int"), []any{new(func(*meter, any) int)}},
	{"float", fnScalar("float"), []any{new(func(*meter, any) float64)}},
	{"string", fnString, []any{new(func(*meter, any) string)}},
	{"upper", fnCase("upper"), []any{new(func(*meter, string) string)}},
	{"lower", fnCase("lower"), []any{new(func(*meter, string) string)}},
	{"trim", fnScan("trim"), []any{new(func(*meter, string) string), new(func(*meter, string, string) string)}},
	{"trimPrefix", fnScan("trimPrefix"), []any{new(func(*meter, string) string), new(func(*meter, string, string) string)}},
	{"trimSuffix", fnScan("trimSuffix"), []any{new(func(*meter, string) string), new(func(*meter, string, string) string)}},
	{"indexOf", fnScan("indexOf"), []any{new(func(*meter, string, string) int)}},
	{"lastIndexOf", fnScan("lastIndexOf"), []any{new(func(*meter, string, string) int)}},
	{"hasPrefix", fnScan("hasPrefix"), []any{new(func(*meter, string, string) bool)}},
	{"hasSuffix", fnScan("hasSuffix"), []any{new(func(*meter, string, string) bool)}},
	{"split", fnSplit("split"), []any{new(func(*meter, string, string) []string), new(func(*meter, string, string, int) []string)}},
	{"splitAfter", fnSplit("splitAfter"), []any{new(func(*meter, string, string) []string), new(func(*meter, string, string, int) []string)}},
	{"replace", fnReplace, []any{new(func(*meter, string, string, string) string)}},
	{"repeat", fnRepeat, []any{new(func(*meter, string, int) string)}},
	{"join", fnJoin, []any{new(func(*meter, any) string), new(func(*meter, any, string) string)}},
	{"toJSON", fnToJSON, []any{new(func(*meter, any) string)}},
	{"fromJSON", fnFromJSON, []any{new(func(*meter, string) any)}},
	{"toBase64", fnBase64("toBase64"), []any{new(func(*meter, string) string)}},
	{"fromBase64", fnBase64("fromBase64"), []any{new(func(*meter, string) string)}},
	{"keys", fnElems("keys"), []any{new(func(*meter, map[string]any) []any), new(func(*meter, any) []any)}},
	{"values", fnElems("values"), []any{new(func(*meter, map[string]any) []any), new(func(*meter, any) []any)}},
	{"max", fnElems("max"), []any{new(func(*meter, ...any) any)}},
	{"min", fnElems("min"), []any{new(func(*meter, ...any) any)}},
}, redactFuncs...)

// Hidden functions the patcher calls in place of operators.
var operatorFuncs = []meteredFunc{
	{"__add", opAdd, []any{new(func(*meter, string, string) string), new(func(*meter, int, int) int), new(func(*meter, float64, float64) float64), new(func(*meter, any, any) any)}},
	{"__addx", opAdd, []any{new(func(*meter, any, any) any)}},
	{"__eq", opEq, []any{new(func(*meter, any, any) bool)}},
	{"__ne", opNe, []any{new(func(*meter, any, any) bool)}},
	{"__lt", opCompare("<"), []any{new(func(*meter, any, any) bool)}},
	{"__le", opCompare("<="), []any{new(func(*meter, any, any) bool)}},
	{"__gt", opCompare(">"), []any{new(func(*meter, any, any) bool)}},
	{"__ge", opCompare(">="), []any{new(func(*meter, any, any) bool)}},
	{"__in", opIn, []any{new(func(*meter, any, any) bool)}},
	{"__contains", opStrings("contains"), []any{new(func(*meter, any, any) bool)}},
	{"__startsWith", opStrings("startsWith"), []any{new(func(*meter, any, any) bool)}},
	{"__endsWith", opStrings("endsWith"), []any{new(func(*meter, any, any) bool)}},
	{"__matches", opMatches, []any{new(func(*meter, any, any) bool)}},
	{"__matchre", opMatchRE, []any{new(func(*meter, any, *sandboxRE) bool)}},
	{"__fetch", opFetch, []any{new(func(*meter, any, any) any)}},
	{"__iter", opIter, []any{new(func(*meter, []any, int) []any), new(func(*meter, []int, int) []int), new(func(*meter, []string, int) []string), new(func(*meter, map[string]any, int) map[string]any), new(func(*meter, any, int) any)}},
}

// userFuncs are the names the call patcher gives the meter to.
var userFuncs = func() map[string]bool {
	m := make(map[string]bool, len(meteredFuncs))
	for _, f := range meteredFuncs {
		m[f.name] = true
	}
	return m
}()

// allowedBuiltins are the builtin names an expression may use.
var allowedBuiltins = func() map[string]bool {
	m := make(map[string]bool)
	for _, f := range meteredFuncs {
		m[f.name] = true
	}
	for _, n := range nativeBuiltins {
		m[n] = true
	}
	for n := range predicateBuiltins {
		m[n] = true
	}
	return m
}()

// sandboxOptions are the compile options every expression gets: expr's
// builtins off except the constant-time ones, and the metered functions.
// compileExpr applies the patchers itself, each followed by a type check,
// so that errors in the user's source are reported before any rewriting.
var sandboxOptions = func() []expr.Option {
	opts := []expr.Option{expr.DisableAllBuiltins()}
	for _, n := range nativeBuiltins {
		opts = append(opts, expr.EnableBuiltin(n))
	}
	for _, fs := range [][]meteredFunc{meteredFuncs, operatorFuncs} {
		for _, f := range fs {
			fn := f.fn
			opts = append(opts, expr.Function(f.name, func(args ...any) (any, error) {
				m, ok := args[0].(*meter)
				if !ok || m == nil {
					return nil, errors.New("internal error: no meter")
				}
				return fn(m, args[1:])
			}, f.types...))
		}
	}
	return opts
}()

// builtinFn returns expr's implementation of a builtin, as a Func.
func builtinFn(name string) func(args ...any) (any, error) {
	f := builtin.Builtins[builtin.Index[name]]
	switch {
	case f.Func != nil:
		return f.Func
	case f.Fast != nil:
		fast := f.Fast
		return func(args ...any) (any, error) {
			if len(args) != 1 {
				return nil, fmt.Errorf("%s: want 1 argument, got %d", name, len(args))
			}
			return fast(args[0]), nil
		}
	case f.Safe != nil:
		safe := f.Safe
		return func(args ...any) (any, error) {
			out, _, err := safe(args...)
			return out, err
		}
	}
	panic("router: builtin " + name + " has no implementation")
}

func fnLen(m *meter, args []any) (any, error) {
	if err := m.charge(costCall, 0); err != nil {
		return nil, err
	}
	if s, ok := args[0].(string); ok {
		return len(s), nil
	}
	return runtime.Len(args[0]), nil
}

// fnScalar meters int and float: parsing a string reads it.
func fnScalar(name string) func(*meter, []any) (any, error) {
	impl := builtinFn(name)
	return func(m *meter, args []any) (any, error) {
		n := int64(costCall)
		if s, ok := args[0].(string); ok {
			n += int64(len(s))
		}
		if err := m.charge(n, 0); err != nil {
			return nil, err
		}
		return impl(args...)
	}
}

func fnString(m *meter, args []any) (any, error) {
	if s, ok := args[0].(string); ok {
		return s, m.charge(costCall, 0)
	}
	n := sizeOf(args[0], false)
	if err := m.charge(add(n, costCall), n); err != nil {
		return nil, err
	}
	return fmt.Sprintf("%v", args[0]), nil
}

func fnCase(name string) func(*meter, []any) (any, error) {
	return func(m *meter, args []any) (any, error) {
		s, _ := args[0].(string)
		// Case mapping can change a character's UTF-8 length: at most
		// 3 bytes for 2.
		n := int64(len(s))
		if err := m.charge(add(n, costCall), n+n/2); err != nil {
			return nil, err
		}
		if name == "upper" {
			return strings.ToUpper(s), nil
		}
		return strings.ToLower(s), nil
	}
}

// fnScan meters functions that read their arguments and return a part of
// them or a number.
func fnScan(name string) func(*meter, []any) (any, error) {
	impl := builtinFn(name)
	return func(m *meter, args []any) (any, error) {
		n := int64(costCall)
		for _, a := range args {
			if s, ok := a.(string); ok {
				n = add(n, int64(len(s)))
			}
		}
		if err := m.charge(n, 0); err != nil {
			return nil, err
		}
		return impl(args...)
	}
}

func fnSplit(name string) func(*meter, []any) (any, error) {
	impl := builtinFn(name)
	return func(m *meter, args []any) (any, error) {
		s, _ := args[0].(string)
		sep, _ := args[1].(string)
		if err := m.charge(add(int64(len(s)), costCall), 0); err != nil {
			return nil, err
		}
		var parts int64
		if sep == "" {
			parts = int64(utf8.RuneCountInString(s))
		} else {
			parts = int64(strings.Count(s, sep)) + 1
		}
		if len(args) > 2 {
			if k, ok := args[2].(int); ok && k >= 0 && int64(k) < parts {
				parts = int64(k)
			}
		}
		// A []string of parts headers (the strings share s's bytes).
		if err := m.charge(parts, mul(parts, 16)); err != nil {
			return nil, err
		}
		return impl(args...)
	}
}

func fnReplace(m *meter, args []any) (any, error) {
	s, _ := args[0].(string)
	old, _ := args[1].(string)
	repl, _ := args[2].(string)
	if err := m.charge(add(int64(len(s)), costCall), 0); err != nil {
		return nil, err
	}
	var k int64
	if old == "" {
		k = int64(utf8.RuneCountInString(s)) + 1
	} else {
		k = int64(strings.Count(s, old))
	}
	size := int64(len(s))
	if len(repl) > len(old) {
		size = add(size, mul(k, int64(len(repl)-len(old))))
	}
	if err := m.charge(size, size); err != nil {
		return nil, err
	}
	return strings.ReplaceAll(s, old, repl), nil
}

func fnRepeat(m *meter, args []any) (any, error) {
	s, _ := args[0].(string)
	n, _ := args[1].(int)
	if n < 0 {
		return nil, fmt.Errorf("repeat: negative count %d", n)
	}
	size := mul(int64(len(s)), int64(n))
	if err := m.charge(add(size, costCall), size); err != nil {
		return nil, err
	}
	return strings.Repeat(s, n), nil
}

func fnJoin(m *meter, args []any) (any, error) {
	sep := ""
	if len(args) > 1 {
		sep, _ = args[1].(string)
	}
	var elems []string
	switch x := args[0].(type) {
	case []string:
		elems = x
	case []any:
		if err := m.charge(int64(len(x)), mul(int64(len(x)), 16)); err != nil {
			return nil, err
		}
		elems = make([]string, len(x))
		for i, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("join: element %d is %T, not a string", i, e)
			}
			elems[i] = s
		}
	case nil:
		return nil, errors.New("join: nil list")
	default:
		return nil, fmt.Errorf("join: want a list of strings, got %T", args[0])
	}
	var size int64
	for _, e := range elems {
		size = add(size, int64(len(e)))
	}
	if len(elems) > 1 {
		size = add(size, mul(int64(len(elems)-1), int64(len(sep))))
	}
	if err := m.charge(add(size, int64(len(elems))+costCall), size); err != nil {
		return nil, err
	}
	return strings.Join(elems, sep), nil
}

func fnToJSON(m *meter, args []any) (any, error) {
	n := sizeOf(args[0], true)
	if err := m.charge(add(n, costCall), n); err != nil {
		return nil, err
	}
	return builtinFn("toJSON")(args...)
}

func fnFromJSON(m *meter, args []any) (any, error) {
	s, _ := args[0].(string)
	n := int64(len(s))
	if err := m.charge(add(mul(n, costJSONByte), costCall), mul(n, fromJSONFactor)); err != nil {
		return nil, err
	}
	return builtinFn("fromJSON")(args...)
}

func fnBase64(name string) func(*meter, []any) (any, error) {
	impl := builtinFn(name)
	return func(m *meter, args []any) (any, error) {
		s, _ := args[0].(string)
		n := int64(len(s))
		out := n
		if name == "toBase64" {
			out = (n + 2) / 3 * 4
		}
		if err := m.charge(add(n+out, costCall), out); err != nil {
			return nil, err
		}
		return impl(args...)
	}
}

// fnElems meters functions that read every element of a list or map
// (keys and values also allocate a list of them).
func fnElems(name string) func(*meter, []any) (any, error) {
	impl := builtinFn(name)
	return func(m *meter, args []any) (any, error) {
		var n int64
		for _, a := range args {
			n = add(n, elems(a))
		}
		var alloc int64
		if name == "keys" || name == "values" {
			alloc = mul(n, 16)
		}
		if err := m.charge(add(n, costCall), alloc); err != nil {
			return nil, err
		}
		return impl(args...)
	}
}

// elems is the number of elements of a list or map, 1 for anything else.
func elems(v any) int64 {
	switch x := v.(type) {
	case []any:
		return int64(len(x))
	case map[string]any:
		return int64(len(x))
	case string, nil, bool, int, int64, float64:
		return 1
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array, reflect.Map:
		return int64(rv.Len())
	}
	return 1
}

// sizeOf is an upper bound of the bytes of v formatted with %v (json
// false) or as JSON (json true). Walking v costs about as much as building
// it did, which was charged.
func sizeOf(v any, json bool) int64 {
	switch x := v.(type) {
	case nil:
		return 5
	case string:
		if !json {
			return int64(len(x))
		}
		n := int64(len(x)) + 2
		if !utf8.ValidString(x) {
			// Every byte may become \ufffd.
			return mul(int64(len(x)), 6) + 2
		}
		for _, r := range x {
			switch {
			case r < 0x20, r == '"', r == '\\', r == '<', r == '>', r == '&', r == '\u2028', r == '\u2029':
				n += 5
			}
		}
		return n
	case bool, int, int64, float64, float32, int32, uint, uint64, uint32:
		return 32
	case time.Time, time.Duration:
		return 64
	case []any:
		n := int64(2)
		for _, e := range x {
			n = add(n, sizeOf(e, json)+1)
		}
		return n
	case []string:
		n := int64(2)
		for _, e := range x {
			n = add(n, sizeOf(e, json)+1)
		}
		return n
	case map[string]any:
		n := int64(5)
		for k, e := range x {
			n = add(n, add(sizeOf(k, json), sizeOf(e, json)+2))
		}
		return n
	case map[string]string:
		n := int64(5)
		for k, e := range x {
			n = add(n, add(sizeOf(k, json), sizeOf(e, json)+2))
		}
		return n
	case *exprKubernetes:
		if x == nil {
			return 5
		}
		// Field names and punctuation, then the values.
		n := int64(256)
		for _, s := range [...]string{x.NamespaceName, x.PodName, x.PodID, x.ContainerName, x.DockerID, x.Host, x.ContainerImage} {
			n = add(n, sizeOf(s, json))
		}
		for _, m := range [...]map[string]string{x.Labels, x.Annotations, x.NamespaceLabels} {
			n = add(n, sizeOf(m, json))
		}
		return add(n, sizeOf(x.Workload, json))
	case exprWorkload:
		return add(32, add(sizeOf(x.Kind, json), sizeOf(x.Name, json)))
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		n := int64(2)
		for i := 0; i < rv.Len(); i++ {
			n = add(n, sizeOf(rv.Index(i).Interface(), json)+1)
		}
		return n
	case reflect.Map:
		n := int64(5)
		it := rv.MapRange()
		for it.Next() {
			n = add(n, add(sizeOf(it.Key().Interface(), json), sizeOf(it.Value().Interface(), json)+2))
		}
		return n
	case reflect.Pointer:
		if rv.IsNil() {
			return 5
		}
		return sizeOf(rv.Elem().Interface(), json)
	}
	// Structs and other values do not occur in records; bound them
	// generously.
	return 1 << 10
}

// Operators.

func opAdd(m *meter, args []any) (any, error) {
	a, b := args[0], args[1]
	if x, ok := a.(string); ok {
		if y, ok := b.(string); ok {
			n := int64(len(x)) + int64(len(y))
			if err := m.charge(n+costCall, n); err != nil {
				return nil, err
			}
			return x + y, nil
		}
	}
	if err := m.charge(costCall, 0); err != nil {
		return nil, err
	}
	return runtime.Add(a, b), nil
}

// cmpCost is what comparing a and b may read.
func cmpCost(a, b any) int64 {
	x, ok1 := a.(string)
	y, ok2 := b.(string)
	if ok1 && ok2 {
		return int64(min(len(x), len(y))) + costCall
	}
	return add(elems(a), costCall)
}

func opEq(m *meter, args []any) (any, error) {
	if err := m.charge(cmpCost(args[0], args[1]), 0); err != nil {
		return nil, err
	}
	return runtime.Equal(args[0], args[1]), nil
}

func opNe(m *meter, args []any) (any, error) {
	if err := m.charge(cmpCost(args[0], args[1]), 0); err != nil {
		return nil, err
	}
	return !runtime.Equal(args[0], args[1]), nil
}

// opCompare is < <= > >=: a missing value (nil) compares false, so that a
// record without the attribute is data, not a failing pipeline.
func opCompare(op string) func(*meter, []any) (any, error) {
	var f func(a, b any) bool
	switch op {
	case "<":
		f = runtime.Less
	case "<=":
		f = runtime.LessOrEqual
	case ">":
		f = runtime.More
	default:
		f = runtime.MoreOrEqual
	}
	return func(m *meter, args []any) (any, error) {
		if runtime.IsNil(args[0]) || runtime.IsNil(args[1]) {
			return false, nil
		}
		if err := m.charge(cmpCost(args[0], args[1]), 0); err != nil {
			return nil, err
		}
		return f(args[0], args[1]), nil
	}
}

// opIn is "in"; false when either side is missing.
func opIn(m *meter, args []any) (any, error) {
	needle, hay := args[0], args[1]
	if runtime.IsNil(needle) || runtime.IsNil(hay) {
		return false, nil
	}
	n := int64(costCall)
	if s, ok := needle.(string); ok {
		n = add(n, int64(len(s)))
	}
	if e := elems(hay); e > 1 {
		n = mul(n, e)
	}
	if err := m.charge(n, 0); err != nil {
		return nil, err
	}
	return runtime.In(needle, hay), nil
}

// opStrings is contains, startsWith, endsWith; false when either side is
// missing.
func opStrings(op string) func(*meter, []any) (any, error) {
	return func(m *meter, args []any) (any, error) {
		if runtime.IsNil(args[0]) || runtime.IsNil(args[1]) {
			return false, nil
		}
		a, ok1 := args[0].(string)
		b, ok2 := args[1].(string)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("invalid operation: %T %s %T", args[0], op, args[1])
		}
		if err := m.charge(int64(len(a))+int64(len(b))+costCall, 0); err != nil {
			return nil, err
		}
		switch op {
		case "contains":
			return strings.Contains(a, b), nil
		case "startsWith":
			return strings.HasPrefix(a, b), nil
		}
		return strings.HasSuffix(a, b), nil
	}
}

// opMatches is matches with a pattern known only at run time: compiled
// once per evaluator (a bounded cache) and bounded like a regex step.
func opMatches(m *meter, args []any) (any, error) {
	if runtime.IsNil(args[0]) || runtime.IsNil(args[1]) {
		return false, nil
	}
	s, ok1 := args[0].(string)
	p, ok2 := args[1].(string)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("invalid operation: %T matches %T", args[0], args[1])
	}
	re, err := m.dynamicRegex(p, "matches")
	if err != nil {
		return nil, err
	}
	if err := m.charge(re.cost(len(s)), 0); err != nil {
		return nil, err
	}
	return re.re.MatchString(s), nil
}

// opMatchRE is matches with a constant pattern, compiled and checked with
// the expression.
func opMatchRE(m *meter, args []any) (any, error) {
	if runtime.IsNil(args[0]) {
		return false, nil
	}
	s, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("invalid operation: %T matches string", args[0])
	}
	re := args[1].(*sandboxRE)
	if err := m.charge(re.cost(len(s)), 0); err != nil {
		return nil, err
	}
	return re.re.MatchString(s), nil
}

// opFetch is a member access with a computed key (a[k]): hashing a long key
// reads it.
func opFetch(m *meter, args []any) (any, error) {
	n := int64(costCall)
	if s, ok := args[1].(string); ok {
		n += int64(len(s))
	}
	if err := m.charge(n, 0); err != nil {
		return nil, err
	}
	if args[0] == nil {
		return nil, fmt.Errorf("cannot fetch %v from nil", args[1])
	}
	return runtime.Fetch(args[0], args[1]), nil
}

// opIter charges a loop before it starts: its elements × the size of its
// body, and the list it may build.
func opIter(m *meter, args []any) (any, error) {
	weight, _ := args[1].(int)
	n := elems(args[0])
	if runtime.IsNil(args[0]) {
		n = 0
	}
	if err := m.charge(add(mul(mul(n, int64(weight)), costIter), costCall), mul(n, 16)); err != nil {
		return nil, err
	}
	return args[0], nil
}

// Patchers.

// callPatcher gives the meter to every call of a metered function.
type callPatcher struct{}

func (callPatcher) Visit(node *ast.Node) {
	call, ok := (*node).(*ast.CallNode)
	if !ok {
		return
	}
	id, ok := call.Callee.(*ast.IdentifierNode)
	if !ok || !userFuncs[id.Value] {
		return
	}
	if len(call.Arguments) > 0 {
		if a, ok := call.Arguments[0].(*ast.IdentifierNode); ok && a.Value == meterVar {
			return
		}
	}
	call.Arguments = append([]ast.Node{meterNode()}, call.Arguments...)
}

func meterNode() ast.Node { return &ast.IdentifierNode{Value: meterVar} }

// operatorPatcher routes operators that can allocate or scan through the
// metered functions, whatever the operands' static types, wraps every
// predicate's collection in __iter, and computed member keys in __fetch.
type operatorPatcher struct{}

var operatorNames = map[string]string{
	"==": "__eq", "!=": "__ne", "<": "__lt", "<=": "__le", ">": "__gt", ">=": "__ge",
	"in": "__in", "contains": "__contains", "startsWith": "__startsWith", "endsWith": "__endsWith",
	"matches": "__matches",
}

func (operatorPatcher) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.BinaryNode:
		name := operatorNames[n.Operator]
		args := []ast.Node{meterNode(), n.Left, n.Right}
		switch n.Operator {
		case "+":
			name = "__addx"
			if known(n.Left) && known(n.Right) {
				name = "__add"
			}
		case "matches":
			if s, ok := n.Right.(*ast.StringNode); ok {
				re, err := compileRegex(s.Value)
				if err != nil {
					// Rejected by checkTree before compilation.
					return
				}
				name = "__matchre"
				args[2] = &ast.ConstantNode{Value: re}
			}
		}
		if name == "" {
			return
		}
		ast.Patch(node, &ast.CallNode{Callee: &ast.IdentifierNode{Value: name}, Arguments: args})
	case *ast.BuiltinNode:
		if !predicateBuiltins[n.Name] || len(n.Arguments) == 0 {
			return
		}
		weight := 1
		for _, a := range n.Arguments[1:] {
			weight += countNodes(a)
		}
		coll := n.Arguments[0]
		n.Arguments[0] = &ast.CallNode{
			Callee:    &ast.IdentifierNode{Value: "__iter"},
			Arguments: []ast.Node{meterNode(), coll, &ast.IntegerNode{Value: weight}},
		}
		n.Arguments[0].SetLocation(coll.Location())
	case *ast.MemberNode:
		switch n.Property.(type) {
		case *ast.StringNode, *ast.IntegerNode:
			return
		}
		if n.Method || n.Optional {
			return
		}
		ast.Patch(node, &ast.CallNode{
			Callee:    &ast.IdentifierNode{Value: "__fetch"},
			Arguments: []ast.Node{meterNode(), n.Node, n.Property},
		})
	}
}

// known says whether a node's static type is known (not interface).
func known(n ast.Node) bool {
	t := n.Type()
	return t != nil && t.Kind() != reflect.Interface
}

type nodeCounter struct{ n int }

func (c *nodeCounter) Visit(*ast.Node) { c.n++ }

func countNodes(n ast.Node) int {
	var c nodeCounter
	ast.Walk(&n, &c)
	return c.n
}

// treeChecker rejects, on the parsed source, what the sandbox does not
// allow: builtins it does not provide, the reserved "__" names, nested
// loops, and constant matches patterns that are invalid or too large. It
// also notes a call of parseUserAgent.
type treeChecker struct {
	err error
	// userAgent is set when the source calls parseUserAgent.
	userAgent bool
}

func (c *treeChecker) Visit(node *ast.Node) {
	if c.err != nil {
		return
	}
	switch n := (*node).(type) {
	case *ast.BuiltinNode:
		if !allowedBuiltins[n.Name] {
			c.err = fmt.Errorf("function %s is not available in pipeline expressions (its cost cannot be bounded)", n.Name)
		}
	case *ast.IdentifierNode:
		if strings.HasPrefix(n.Value, "__") {
			c.err = fmt.Errorf("name %s is reserved", n.Value)
		}
	case *ast.CallNode:
		if id, ok := n.Callee.(*ast.IdentifierNode); ok && id.Value == "parseUserAgent" {
			c.userAgent = true
		}
	case *ast.VariableDeclaratorNode:
		if strings.HasPrefix(n.Name, "__") {
			c.err = fmt.Errorf("name %s is reserved", n.Name)
		}
	case *ast.BinaryNode:
		if n.Operator == "matches" {
			if s, ok := n.Right.(*ast.StringNode); ok {
				if _, err := compileRegex(s.Value); err != nil {
					c.err = fmt.Errorf("matches: %w", err)
				}
			}
		}
	}
}
