package router

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error returned by Parse, Compile, Load and RunTests
// wraps one of them; test with errors.Is.
var (
	// ErrInvalidSpec marks a pipeline document that cannot be decoded or
	// does not validate.
	ErrInvalidSpec = errors.New("invalid pipeline")
	// ErrSpecTooLarge marks a document over MaxSpecBytes.
	ErrSpecTooLarge = errors.New("pipeline document too large")
	// ErrTestFailed marks a failed entry of a pipeline's tests: section.
	ErrTestFailed = errors.New("pipeline test failed")
	// ErrStep marks a step that failed on a record at run time; it is the
	// Err of a Failure, wrapped.
	ErrStep = errors.New("step failed")
)

// SpecError is one problem in a pipeline document, at a 1-based line and
// column of the YAML source. Parse, Compile and RunTests return several of
// them joined with errors.Join; unwrap with errors.As on each, or walk the
// Unwrap() []error of the joined error.
type SpecError struct {
	Line, Column int
	// Msg describes the problem, lower-case, without position.
	Msg string
	// Err is the sentinel (ErrInvalidSpec, ErrSpecTooLarge, ErrTestFailed)
	// or an underlying error that itself wraps one.
	Err error
}

func (e *SpecError) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Msg)
}

func (e *SpecError) Unwrap() error { return e.Err }

// Failure says why a record could not be processed: it goes to the tenant's
// dead-letter topic. Reason is a bounded label suitable for metrics.
type Failure struct {
	// Step is the 0-based index of the failing step in the pipeline, or -1
	// when the failure is not tied to a step.
	Step int
	// StepType is the step's type ("json", "set", ...), empty with Step -1.
	StepType string
	// Reason is one of the Reason* constants.
	Reason string
	// Err is the underlying error; it wraps ErrStep.
	Err error
}

func (f *Failure) Error() string {
	if f.Step < 0 {
		return fmt.Sprintf("%s: %v", f.Reason, f.Err)
	}
	return fmt.Sprintf("step %d (%s): %s: %v", f.Step, f.StepType, f.Reason, f.Err)
}

func (f *Failure) Unwrap() error { return f.Err }

// Failure reasons: a bounded set, usable as a metrics label.
const (
	// ReasonParse: a parse step (json, logfmt, regex, klog) could not
	// parse its field, or the field is missing.
	ReasonParse = "parse_error"
	// ReasonTimestamp: a timestamp step could not parse its field.
	ReasonTimestamp = "timestamp_error"
	// ReasonExpr: an expression failed at run time (type error,
	// non-bool condition).
	ReasonExpr = "expr_error"
	// ReasonField: a value could not be written to a field (for example a
	// non-time value to timestamp).
	ReasonField = "field_error"
	// ReasonPanic: a step panicked; the pipeline recovered.
	ReasonPanic = "panic"
	// ReasonTooLarge: a raw record or batch too large to decode, or a
	// processed record larger than its topic takes.
	ReasonTooLarge = "too_large"
	// ReasonTopicMissing: the pipeline routes the record to a dataset whose
	// topic does not exist.
	ReasonTopicMissing = "topic_missing"
	// ReasonCostExceeded: the record used up its budget (MaxRecordCost,
	// ExprAllocBudget, ExprMemoryBudget or MaxRecordTime): Process stopped
	// at the step that ran out.
	ReasonCostExceeded = "cost_exceeded"
	// ReasonPseudonymKeyMissing: pseudonym() was called for a tenant
	// without a key (see SLUICE_ROUTER_PSEUDONYM_KEYS_DIR). An operator's
	// setting, not the pipeline's fault: it never retires a version.
	ReasonPseudonymKeyMissing = "pseudonym_key_missing"
)

// stepError is returned by a step's apply: a reason and an error.
type stepError struct {
	reason string
	err    error
}

func (e *stepError) Error() string { return e.reason + ": " + e.err.Error() }

func failf(reason, format string, args ...any) *stepError {
	return &stepError{reason: reason, err: fmt.Errorf(format, args...)}
}
