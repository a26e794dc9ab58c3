package router

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr/vm"
	"github.com/sluicelogs/sluice/schemas"
)

// Pipeline is a compiled pipeline version for one tenant. It is immutable
// after Compile and safe for concurrent use by any number of goroutines.
type Pipeline struct {
	Tenant  string
	Version int64 // 0 for PassThrough

	steps  []step
	types  []string // step types, for Failure
	guards []guard  // each step's if and on_error
	spec   *Spec    // nil for PassThrough
	// evals pools evaluators (a VM and an env map) when any step uses an
	// expression; nil otherwise.
	evals *sync.Pool
	// multiline is the first step when it is a multiline step.
	multiline *Multiline
}

// onError is what a failing step does to the record.
type onError uint8

const (
	onErrorDeadLetter onError = iota // to the dead-letter topic
	onErrorSkip                      // the record goes on
	onErrorKeepGoing                 // the record goes on, the error noted in ErrorsKey
)

// ErrorsKey is the attribute where steps with on_error: keep_going note
// their errors, one per line: "step <n> (<type>): <error>".
const ErrorsKey = "_errors"

// guard is what runs around a step: its if (nil: always) and its on_error.
type guard struct {
	cond    *vm.Program
	onError onError
}

// compileGuard compiles a step's if (unless it is the step's own
// condition) and on_error.
func compileGuard(ss *StepSpec) (guard, error) {
	var g guard
	switch ss.OnError {
	case "", "dead_letter", "dlq":
	case "skip":
		g.onError = onErrorSkip
	case "keep_going":
		g.onError = onErrorKeepGoing
	default:
		return g, fmt.Errorf("%s.on_error must be dead_letter, skip or keep_going, got %q", ss.Type, ss.OnError)
	}
	if ss.If != "" && !ownIf[ss.Type] {
		p, err := compileExpr(ss.If, true)
		if err != nil {
			return g, valueError("if", ss.If, fmt.Errorf("%s.if: %w", ss.Type, err))
		}
		g.cond = p
	}
	return g, nil
}

// Result is the outcome of processing one record.
type Result struct {
	// Dataset is the route chosen: "" for the tenant's main parsed topic,
	// else the dataset of <prefix>.parsed.<tenant>.<dataset>.
	Dataset string
	// Copies are the datasets that also get the record, each once (route
	// steps with copy, and a route's datasets after its first).
	Copies []string
	// Dropped is set when a drop, keep or sample step filtered the record
	// out; the record must not be written anywhere.
	Dropped bool
	// DLQ is set when a step failed: the record goes to the tenant's
	// dead-letter topic. Dataset and Dropped are then meaningless.
	DLQ *Failure
}

// Compile validates spec and compiles it: regexes, layouts and expressions
// are compiled once here. Errors are *SpecError values joined with
// errors.Join, located at the step at fault.
func Compile(spec *Spec) (*Pipeline, error) {
	if spec == nil {
		return nil, &SpecError{Line: 1, Column: 1, Msg: "nil spec", Err: ErrInvalidSpec}
	}
	p, errs := compile(spec, true)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// compile does Compile's work and returns every problem; names says
// whether to check tenant and version.
func compile(spec *Spec, names bool) (*Pipeline, []error) {
	var errs []error
	if names {
		errs = validateNames(spec)
	}
	if len(spec.Steps) > MaxSteps {
		errs = append(errs, &SpecError{Line: 1, Column: 1, Msg: fmt.Sprintf("%d steps, more than %d", len(spec.Steps), MaxSteps), Err: ErrInvalidSpec})
	}
	p := &Pipeline{Tenant: spec.Tenant, Version: spec.Version, spec: spec}
	usesExpr := false
	for i := range spec.Steps {
		ss := &spec.Steps[i]
		s, ex, err := compileStep(ss, spec.Patterns)
		var g guard
		if err == nil {
			g, err = compileGuard(ss)
		}
		if err != nil {
			line, col := ss.locate(err)
			errs = append(errs, &SpecError{
				Line: line, Column: col,
				Msg: err.Error(),
				Err: fmt.Errorf("%w: %w", ErrInvalidSpec, err),
			})
			continue
		}
		usesExpr = usesExpr || ex || g.cond != nil
		if ml, ok := s.(*Multiline); ok {
			if i != 0 {
				errs = append(errs, &SpecError{Line: max(ss.Line, 1), Column: max(ss.Column, 1),
					Msg: "multiline must be the first step (it joins raw lines before anything else)", Err: ErrInvalidSpec})
				continue
			}
			p.multiline = ml
		}
		p.steps = append(p.steps, s)
		p.types = append(p.types, ss.Type)
		p.guards = append(p.guards, g)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if usesExpr {
		p.evals = &sync.Pool{New: func() any { return newEvaluator() }}
	}
	return p, nil
}

// Load parses, compiles and runs the tests of a pipeline document: what a
// router does with a new version from the config topic and what `sluice
// pipeline validate` does. Any problem, including a failed test, is an
// error, and the version must not be used.
func Load(src []byte) (*Pipeline, error) {
	spec, err := Parse(src)
	if err != nil {
		return nil, err
	}
	p, err := Compile(spec)
	if err != nil {
		return nil, err
	}
	if errs := p.RunTests(); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// PassThrough returns the pipeline of a tenant without one: records go
// unchanged to the main parsed topic (apart from the MaxAttributes bound).
// tenant is not validated: the caller took it from a topic name.
func PassThrough(tenant string) *Pipeline {
	return &Pipeline{Tenant: tenant}
}

// Multiline returns the pipeline's multiline step, or nil. The router
// joins continuation lines with it before Process (which skips the step).
func (p *Pipeline) Multiline() *Multiline { return p.multiline }

// Spec returns the spec the pipeline was compiled from (nil for
// PassThrough). The caller must not modify it.
func (p *Pipeline) Spec() *Spec { return p.spec }

// Process runs the pipeline on r, mutating r in place. It never panics: a
// panicking step is recovered and reported as a DLQ Failure with reason
// ReasonPanic. On a DLQ result r may be partly rewritten; the caller keeps
// the original payload for the dead-letter document. Attributes beyond
// MaxAttributes are moved to OverflowKey before Process returns.
//
// Process has no pseudonym key: pseudonym() fails with
// ReasonPseudonymKeyMissing. See ProcessWithKey.
func (p *Pipeline) Process(r *schemas.Record) Result {
	return p.ProcessWithKey(r, PseudonymKey{})
}

// ProcessWithKey is Process with key as the tenant's pseudonym key: the
// router passes the tenant's key, a pipeline's tests and sluice pipeline
// test pass TestPseudonymKey.
func (p *Pipeline) ProcessWithKey(r *schemas.Record, key PseudonymKey) (res Result) {
	if len(p.steps) == 0 {
		// Nothing to run: no state to put on the heap.
		boundAttributes(r)
		return Result{}
	}
	st := state{tenant: p.Tenant, key: key}
	st.reset()
	i := -1
	defer func() {
		if v := recover(); v != nil {
			f := &Failure{Step: i, Reason: ReasonPanic, Err: fmt.Errorf("%w: panic: %v", ErrStep, v)}
			if i >= 0 && i < len(p.types) {
				f.StepType = p.types[i]
			}
			res = Result{DLQ: f}
		}
		if st.ev != nil {
			p.evals.Put(st.ev)
		}
	}()
	if p.evals != nil {
		st.ev = p.evals.Get().(*evaluator)
	}
	var start time.Time
	for i = 0; i < len(p.steps); i++ {
		if i == 0 {
			start = time.Now()
		} else if st.work < MaxRecordCost-minTimedCost && time.Since(start) > MaxRecordTime {
			// Only a record that did real work: a process paused by the
			// scheduler or a collection must not dead-letter cheap records.
			d := time.Since(start)
			return Result{DLQ: &Failure{Step: i, StepType: p.types[i], Reason: ReasonCostExceeded,
				Err: fmt.Errorf("%w: %w: record in process for %v, more than MaxRecordTime", ErrStep, errCostExceeded, d.Round(time.Millisecond))}}
		}
		g := p.guards[i]
		var err *stepError
		if g.cond != nil {
			run, cerr := st.ev.cond(g.cond, &st, r)
			switch {
			case cerr != nil:
				err = exprFail(cerr)
			case !run:
				continue
			}
		}
		if err == nil {
			err = p.steps[i].apply(r, &st)
		}
		if err != nil {
			// A record over its cost bound is dead-lettered whatever
			// on_error says: the bound is not the step's to waive.
			if g.onError == onErrorDeadLetter || err.reason == ReasonCostExceeded {
				return Result{DLQ: &Failure{Step: i, StepType: p.types[i], Reason: err.reason, Err: fmt.Errorf("%w: %w", ErrStep, err.err)}}
			}
			if g.onError == onErrorKeepGoing {
				noteError(r, i, p.types[i], err)
			}
			continue
		}
		if st.dropped {
			return Result{Dropped: true}
		}
	}
	i = -1
	boundAttributes(r)
	// A copy to where the record itself goes would be a duplicate.
	copies := slices.DeleteFunc(st.copies, func(c string) bool { return c == st.dataset })
	return Result{Dataset: st.dataset, Copies: copies}
}

// Datasets returns the datasets the pipeline routes records to, in step
// order, each once: the topics <prefix>.parsed.<tenant>.<dataset> it needs.
func (p *Pipeline) Datasets() []string {
	if p.spec == nil {
		return nil
	}
	var out []string
	for _, s := range p.spec.Steps {
		if s.Type != "route" {
			continue
		}
		for _, ds := range s.routeDatasets() {
			if !slices.Contains(out, ds) {
				out = append(out, ds)
			}
		}
	}
	return out
}

// Warnings are what the pipeline's document says that should change (a
// deprecated key), from Spec.Warnings; none for PassThrough.
func (p *Pipeline) Warnings() []Warning {
	if p.spec == nil {
		return nil
	}
	return p.spec.Warnings
}

// noteError adds a step's error to the record's ErrorsKey attribute.
func noteError(r *schemas.Record, i int, typ string, err *stepError) {
	msg, _, _ := strings.Cut(err.err.Error(), "\n") // an expression's error goes on with its source
	line := fmt.Sprintf("step %d (%s): %s", i+1, typ, msg)
	if prev, ok := r.Attributes[ErrorsKey].(string); ok && prev != "" {
		line = prev + "\n" + line
	}
	setAttr(r, ErrorsKey, line)
}
