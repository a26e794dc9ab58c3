package router

// Expressions use github.com/expr-lang/expr, compiled once to bytecode for
// a fast VM, type-checked against a simple map environment. Stored tenant
// pipelines keep working unchanged on it, which switching to cel-go would
// not give. cel-go's cost limit would not be safer either: its runtime cost
// is charged after a call returns, so a single call such as replace() can
// allocate n² bytes before the limit trips, unless every function has a
// static size estimate, which needs bounds on the inputs' sizes (schema
// maxLength bounds); our inputs are log lines of up to 1 MiB.
//
// So every operation that can allocate or loop goes through metered code
// that checks the budget before it allocates (sandbox.go): expr's builtins
// are disabled and a curated set is provided again as typed functions that
// compute their result's size first (replace counts occurrences, join sums
// lengths, ...); a patcher routes the operators (+, comparisons, in,
// contains, matches, ...) and computed member keys through metered
// functions whatever the operands' static types, and charges every loop
// its elements × body size before it starts. The meter is the record's:
// all steps of one Process call, regexes and parse steps included, draw on
// MaxRecordCost and ExprAllocBudget. What can be checked statically is
// checked at compile time: expression size (MaxExprNodes), nested loops,
// builtins without a metered version, regex program size (MaxRegexInsts).
// The VM's own memory budget (ExprMemoryBudget) still bounds ranges and
// literals.

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/checker"
	"github.com/expr-lang/expr/compiler"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/optimizer"
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
	"kubernetes": (*exprKubernetes)(nil),
	"attributes": map[string]any{},
	meterVar:     (*meter)(nil),
}

// exprKubernetes is the kubernetes variable of expressions: the record's
// Kubernetes metadata under its JSON field names (kubernetes.pod_name,
// kubernetes.labels["app"], kubernetes.namespace_labels["team"],
// kubernetes.container_image, kubernetes.workload.kind and .name). Field
// names are checked at compile time; a missing label reads as "". Each
// evaluator fills its one copy for the record being processed, so exposing
// it costs no allocation.
type exprKubernetes struct {
	NamespaceName   string            `expr:"namespace_name" json:"namespace_name"`
	PodName         string            `expr:"pod_name" json:"pod_name"`
	PodID           string            `expr:"pod_id" json:"pod_id"`
	ContainerName   string            `expr:"container_name" json:"container_name"`
	DockerID        string            `expr:"docker_id" json:"docker_id"`
	Host            string            `expr:"host" json:"host"`
	Labels          map[string]string `expr:"labels" json:"labels"`
	Annotations     map[string]string `expr:"annotations" json:"annotations"`
	NamespaceLabels map[string]string `expr:"namespace_labels" json:"namespace_labels"`
	ContainerImage  string            `expr:"container_image" json:"container_image"`
	Workload        exprWorkload      `expr:"workload" json:"workload"`
}

// exprWorkload is kubernetes.workload in expressions.
type exprWorkload struct {
	Kind string `expr:"kind" json:"kind"`
	Name string `expr:"name" json:"name"`
}

func (k *exprKubernetes) set(r *schemas.Kubernetes) {
	*k = exprKubernetes{
		NamespaceName: r.NamespaceName, PodName: r.PodName, PodID: r.PodID,
		ContainerName: r.ContainerName, DockerID: r.DockerID, Host: r.Host,
		Labels: r.Labels, Annotations: r.Annotations, NamespaceLabels: r.NamespaceLabels,
		ContainerImage: r.ContainerImage, Workload: exprWorkload{Kind: r.Workload.Kind, Name: r.Workload.Name},
	}
}

// compileExpr compiles src once for a pipeline version. cond requires a
// bool result (checked at compile time). Nested loops (a predicate inside a
// predicate, as in all(a, any(b, ...))) are rejected: they would multiply
// run time by the size of a list. The sandbox's options and checks apply
// (sandbox.go).
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
	var tc treeChecker
	ast.Walk(&tree.Node, &tc)
	if tc.err != nil {
		return nil, fmt.Errorf("compile expression: %w", tc.err)
	}
	// expr.Compile's steps, with the patchers run here: callPatcher
	// before the first type check (calls need the meter argument to
	// check), operatorPatcher after it (it needs the operands' types).
	cfg := conf.CreateNew()
	expr.Env(exprEnv)(cfg)
	expr.MaxNodes(MaxExprNodes)(cfg)
	for _, o := range sandboxOptions {
		o(cfg)
	}
	if cond {
		expr.AsBool()(cfg)
	}
	for name := range cfg.Disabled {
		delete(cfg.Builtins, name)
	}
	tree, err = parser.ParseWithConfig(src, cfg)
	if err != nil {
		return nil, fmt.Errorf("compile expression: %w", err)
	}
	ast.Walk(&tree.Node, callPatcher{})
	if _, err := checker.Check(tree, cfg); err != nil {
		return nil, fmt.Errorf("compile expression: %w", err)
	}
	ast.Walk(&tree.Node, operatorPatcher{})
	if _, err := checker.Check(tree, cfg); err != nil {
		return nil, fmt.Errorf("compile expression: %w", err)
	}
	if err := optimizer.Optimize(&tree.Node, cfg); err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			err = fe.Bind(tree.Source)
		}
		return nil, fmt.Errorf("compile expression: %w", err)
	}
	p, err := compiler.Compile(tree, cfg)
	if err != nil {
		return nil, fmt.Errorf("compile expression: %w", err)
	}
	if tc.userAgent {
		// Built once per process, here rather than in the first record.
		uaParser()
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

// evaluator holds what one goroutine needs to run expressions: a VM, an
// environment map and the meter, reused from record to record. Not safe
// for concurrent use; Pipeline keeps them in a sync.Pool.
type evaluator struct {
	vm  vm.VM
	env map[string]any
	m   meter
	k   exprKubernetes // the record's, during run
}

func newEvaluator() *evaluator {
	e := &evaluator{env: make(map[string]any, len(exprEnv))}
	e.env[meterVar] = &e.m
	e.env["kubernetes"] = &e.k
	return e
}

// run evaluates p against r under the VM memory budget and the record's
// meter, whose state st holds between evaluations.
func (e *evaluator) run(p *vm.Program, st *state, r *schemas.Record) (any, error) {
	e.env["tenant"] = st.tenant
	e.env["id"] = r.ID
	e.env["stream"] = r.Stream
	e.env["log"] = r.Log
	e.env["timestamp"] = r.Timestamp
	e.env["namespace"] = r.Kubernetes.NamespaceName
	e.env["pod"] = r.Kubernetes.PodName
	e.env["container"] = r.Kubernetes.ContainerName
	e.k.set(&r.Kubernetes)
	e.env["attributes"] = r.Attributes
	e.vm.MemoryBudget = ExprMemoryBudget
	e.m.work, e.m.alloc, e.m.over = st.work, st.alloc, false
	e.m.key, e.m.tenant = st.key, st.tenant
	out, err := e.vm.Run(p, e.env)
	st.work, st.alloc = e.m.work, e.m.alloc
	e.env["attributes"] = nil // do not keep the record alive in the pool
	e.env["log"] = nil
	e.k = exprKubernetes{}
	e.m.key = PseudonymKey{}
	if err != nil && (e.m.over || strings.Contains(err.Error(), "memory budget exceeded")) {
		return nil, &costError{err: err}
	}
	return out, err
}

// costError is an evaluation stopped by the budget.
type costError struct{ err error }

func (e *costError) Error() string { return e.err.Error() }
func (e *costError) Unwrap() error { return e.err }

// cond evaluates a condition program.
func (e *evaluator) cond(p *vm.Program, st *state, r *schemas.Record) (bool, error) {
	out, err := e.run(p, st, r)
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

// CompileFilter compiles a condition, with the bounds pipelines have: each
// Match has a record's budget.
func CompileFilter(src string) (*Filter, error) {
	p, err := compileExpr(src, true)
	if err != nil {
		return nil, err
	}
	return &Filter{p: p, e: newEvaluator()}, nil
}

// Match reports whether r, of tenant, satisfies the condition.
func (f *Filter) Match(tenant string, r *schemas.Record) (bool, error) {
	st := state{tenant: tenant}
	st.reset()
	return f.e.cond(f.p, &st, r)
}
