package router

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/sluicelogs/sluice/schemas"
)

// RunTests runs the pipeline's tests: section and returns one error per
// failed test (a *SpecError at the test's line wrapping ErrTestFailed), or
// nil when all pass. A test input without an id gets the test's name as id
// (sample steps hash the id); its tenant is the pipeline's. pseudonym()
// uses TestPseudonymKey, never the tenant's key: tests are written and
// read by whoever reads the pipeline.
func (p *Pipeline) RunTests() []error {
	if p.spec == nil {
		return nil
	}
	var errs []error
	for _, t := range p.spec.Tests {
		if msg := p.runTest(&t); msg != "" {
			errs = append(errs, &SpecError{
				Line: max(t.Line, 1), Column: max(t.Column, 1),
				Msg: fmt.Sprintf("test %q: %s", t.Name, msg),
				Err: ErrTestFailed,
			})
		}
	}
	return errs
}

// runTest returns "" when t passes, else what differs.
func (p *Pipeline) runTest(t *TestSpec) string {
	r := t.Input
	r.Attributes = maps.Clone(t.Input.Attributes)
	e := &t.Expect
	if len(t.Lines) > 0 {
		recs := make([]schemas.Record, len(t.Lines))
		for i, l := range t.Lines {
			recs[i] = schemas.Record{Log: l}
		}
		if p.multiline != nil {
			recs = p.multiline.Join(recs)
		}
		if e.Records != nil && len(recs) != *e.Records {
			return fmt.Sprintf("the lines make %d records, want %d", len(recs), *e.Records)
		}
		r = recs[0]
	} else if e.Records != nil && *e.Records != 1 {
		return fmt.Sprintf("one input makes one record, want %d (give lines:)", *e.Records)
	}
	r.Tenant = p.Tenant
	if r.ID == "" {
		r.ID = t.Name
	}
	res := p.ProcessWithKey(&r, TestPseudonymKey)
	switch {
	case res.DLQ != nil && !e.DLQ:
		return fmt.Sprintf("record went to the dlq: %v", res.DLQ)
	case res.DLQ == nil && e.DLQ:
		return "want the record in the dlq, it was not"
	case e.DLQ:
		return ""
	case res.Dropped && !e.Dropped:
		return "record was dropped"
	case !res.Dropped && e.Dropped:
		return "want the record dropped, it was kept"
	case e.Dropped:
		return ""
	}
	if e.Dataset != nil && res.Dataset != *e.Dataset {
		return fmt.Sprintf("dataset is %q, want %q", res.Dataset, *e.Dataset)
	}
	if e.Copies != nil {
		got, want := slices.Sorted(slices.Values(res.Copies)), slices.Sorted(slices.Values(e.Copies))
		if !slices.Equal(got, want) {
			return fmt.Sprintf("copies go to %q, want %q", got, want)
		}
	}
	if e.Log != nil && r.Log != *e.Log {
		return fmt.Sprintf("log is %q, want %q", r.Log, *e.Log)
	}
	if e.Timestamp != nil {
		want, err := time.Parse(time.RFC3339Nano, *e.Timestamp)
		if err != nil {
			return fmt.Sprintf("expect.timestamp: %v", err)
		}
		if !r.Timestamp.Equal(want) {
			return fmt.Sprintf("timestamp is %s, want %s", r.Timestamp.Format(time.RFC3339Nano), *e.Timestamp)
		}
	}
	for _, k := range sortedKeys(e.Attributes) {
		got, ok := r.Attributes[k]
		if !ok {
			return fmt.Sprintf("attribute %q is missing, want %v", k, e.Attributes[k])
		}
		if !sameValue(got, e.Attributes[k]) {
			return fmt.Sprintf("attribute %q is %s, want %s", k, showValue(got), showValue(e.Attributes[k]))
		}
	}
	for _, k := range e.Absent {
		if v, ok := r.Attributes[k]; ok {
			return fmt.Sprintf("attribute %q is %s, want it absent", k, showValue(v))
		}
	}
	return ""
}

// showValue shows an attribute value in a test failure: Go syntax for a
// scalar, so that 1 and "1" differ, JSON for an array.
func showValue(v any) string {
	if items, ok := v.([]any); ok {
		return jsonString(items)
	}
	return fmt.Sprintf("%#v", v)
}

// sameValue compares attribute values; int64 and float64 compare as
// numbers.
func sameValue(a, b any) bool {
	switch x := a.(type) {
	case []any:
		y, ok := b.([]any)
		return ok && slices.EqualFunc(x, y, sameValue)
	case int64:
		switch y := b.(type) {
		case int64:
			return x == y
		case float64:
			return float64(x) == y
		}
		return false
	case float64:
		switch y := b.(type) {
		case int64:
			return x == float64(y)
		case float64:
			return x == y
		}
		return false
	}
	return a == b
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
