package router

// Expressions use github.com/expr-lang/expr rather than cel-go: it is
// Go-native with a small dependency tree, compiles once to bytecode for a
// fast VM, type-checks against a simple map environment, and bounds cost
// with expr.MaxNodes at compile time and a VM memory budget at run time.
// cel-go would bring protobuf-based types and a heavier runtime for no gain
// here.

import (
	"errors"
	"fmt"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"

	"github.com/sluicelogs/sluice/schemas"
)

// exprEnv is the typed environment expressions compile against. At run
// time the same names hold the record being processed; see the package doc.
var exprEnv = map[string]any{
	"tenant":     "",
	"id":         "",
	"stream":     "",
	"log":        "",
	"timestamp":  time.Time{},
	"namespace":  "",
	"pod":        "",
	"container":  "",
	"attributes": map[string]any{},
}

// compileExpr compiles src once for a pipeline version. cond requires a
// bool result (checked at compile time). Nested loops (a predicate inside a
// predicate, as in all(a, any(b, ...))) are rejected: with MaxNodes and the
// memory budget they are what could still multiply run time.
func compileExpr(src string, cond bool) (*vm.Program, error) {
	if len(src) > MaxExprLen {
		return nil, fmt.Errorf("expression longer than %d bytes", MaxExprLen)
	}
	tree, err := parser.Parse(src)
	if err != nil {
		return nil, fmt.Errorf("compile expression: %w", err)
	}
	if nestedPredicate(&tree.Node) {
		return nil, errors.New("compile expression: nested loops (a predicate inside a predicate) are not allowed")
	}
	opts := []expr.Option{expr.Env(exprEnv), expr.MaxNodes(MaxExprNodes)}
	if cond {
		opts = append(opts, expr.AsBool())
	}
	p, err := expr.Compile(src, opts...)
	if err != nil {
		return nil, fmt.Errorf("compile expression: %w", err)
	}
	return p, nil
}

// predicateCounter counts predicate nodes under a node.
type predicateCounter struct{ n int }

func (c *predicateCounter) Visit(n *ast.Node) {
	if _, ok := (*n).(*ast.PredicateNode); ok {
		c.n++
	}
}

// predicateCollector collects predicate nodes.
type predicateCollector struct{ preds []*ast.PredicateNode }

func (c *predicateCollector) Visit(n *ast.Node) {
	if p, ok := (*n).(*ast.PredicateNode); ok {
		c.preds = append(c.preds, p)
	}
}

func nestedPredicate(root *ast.Node) bool {
	var all predicateCollector
	ast.Walk(root, &all)
	for _, p := range all.preds {
		var c predicateCounter
		ast.Walk(&p.Node, &c)
		if c.n > 0 {
			return true
		}
	}
	return false
}

// evaluator holds what one goroutine needs to run expressions: a VM and an
// environment map, both reused from record to record. Not safe for
// concurrent use; Pipeline keeps them in a sync.Pool.
type evaluator struct {
	vm  vm.VM
	env map[string]any
}

func newEvaluator() *evaluator {
	return &evaluator{env: make(map[string]any, len(exprEnv))}
}

// run evaluates p against r under the memory budget.
func (e *evaluator) run(p *vm.Program, tenant string, r *schemas.Record) (any, error) {
	e.env["tenant"] = tenant
	e.env["id"] = r.ID
	e.env["stream"] = r.Stream
	e.env["log"] = r.Log
	e.env["timestamp"] = r.Timestamp
	e.env["namespace"] = r.Kubernetes.NamespaceName
	e.env["pod"] = r.Kubernetes.PodName
	e.env["container"] = r.Kubernetes.ContainerName
	e.env["attributes"] = r.Attributes
	e.vm.MemoryBudget = ExprMemoryBudget
	out, err := e.vm.Run(p, e.env)
	e.env["attributes"] = nil // do not keep the record alive in the pool
	return out, err
}

// cond evaluates a condition program.
func (e *evaluator) cond(p *vm.Program, tenant string, r *schemas.Record) (bool, error) {
	out, err := e.run(p, tenant, r)
	if err != nil {
		return false, err
	}
	b, ok := out.(bool)
	if !ok {
		return false, fmt.Errorf("condition returned %T, want bool", out)
	}
	return b, nil
}

// Filter is a condition in the pipelines' expression language (the names of
// the package doc: log, stream, pod, attributes, ...), for tools that select
// records the way a pipeline's drop and keep steps do (sluice tail
// --filter). Not safe for concurrent use.
type Filter struct {
	p *vm.Program
	e *evaluator
}

// CompileFilter compiles a condition, with the bounds pipelines have.
func CompileFilter(src string) (*Filter, error) {
	p, err := compileExpr(src, true)
	if err != nil {
		return nil, err
	}
	return &Filter{p: p, e: newEvaluator()}, nil
}

// Match reports whether r, of tenant, satisfies the condition.
func (f *Filter) Match(tenant string, r *schemas.Record) (bool, error) {
	return f.e.cond(f.p, tenant, r)
}
