package router

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicelogs/sluice/schemas"
)

// specErrors flattens a joined error into its SpecErrors.
func specErrors(t *testing.T, err error) []*SpecError {
	t.Helper()
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	var out []*SpecError
	for _, e := range errs {
		var se *SpecError
		if !errors.As(e, &se) {
			t.Fatalf("error without position: %v", e)
		}
		out = append(out, se)
	}
	return out
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // "line:substring" for each expected error, in order
	}{
		{"unknown step", "tenant: a\nversion: 1\nsteps:\n  - frobnicate: {}\n", []string{"4:unknown step type"}},
		{"unknown key", "tenant: a\nversion: 1\nsteps:\n  - json: {field: log, depht: 3}\n", []string{"4:unknown key \"depht\""}},
		{"unknown top key", "tenant: a\nversion: 1\nstepz: []\n", []string{"3:unknown key"}},
		{"bad regex", "tenant: a\nversion: 1\nsteps:\n  - regex: {pattern: '(?P<x>'}\n", []string{"4:regex.pattern"}},
		{"regex without names", "tenant: a\nversion: 1\nsteps:\n  - regex: {pattern: 'a+'}\n", []string{"4:no named group"}},
		{"bad expr", "tenant: a\nversion: 1\nsteps:\n  - drop: {if: 'nosuch == 1'}\n", []string{"4:unknown name nosuch"}},
		{"non-bool cond", "tenant: a\nversion: 1\nsteps:\n  - drop: {if: 'len(log)'}\n", []string{"4:drop.if"}},
		{"nested loop", "tenant: a\nversion: 1\nsteps:\n  - drop: {if: 'all(1..3, all(1..3, true))'}\n", []string{"4:nested loops"}},
		{"bad layout", "tenant: a\nversion: 1\nsteps:\n  - timestamp: {field: ts, layout: rfc3339}\n", []string{"4:layout"}},
		{"bad layout in a list", "tenant: a\nversion: 1\nsteps:\n  - timestamp: {field: ts, layout: [RFC3339, '%Y %Q']}\n", []string{"4:%Q is not a strftime directive"}},
		{"empty layout list", "tenant: a\nversion: 1\nsteps:\n  - timestamp: {field: ts, layout: []}\n", []string{"4:must not be an empty list"}},
		{"missing layout", "tenant: a\nversion: 1\nsteps:\n  - timestamp: {field: ts}\n", []string{"4:missing layout"}},
		{"bad timezone", "tenant: a\nversion: 1\nsteps:\n  - klog: {timezone: Mars/Olympus}\n", []string{"4:unknown time zone"}},
		{"version 0 and bad tenant", "tenant: Bad_T\nversion: 0\n", []string{"1:invalid tenant", "2:version must be at least 1"}},
		{"route dataset", "tenant: a\nversion: 1\nsteps:\n  - route: {if: 'true', dataset: Bad.Dataset}\n", []string{"4:invalid dataset"}},
		{"multiline without continuation", "tenant: a\nversion: 1\nsteps:\n  - multiline: {}\n", []string{"4:missing continuation"}},
		{"multiline not first", "tenant: a\nversion: 1\nsteps:\n  - json: {}\n  - multiline: {continuation: '^\\s'}\n", []string{"5:must be the first step"}},
		{"multiline bad wait", "tenant: a\nversion: 1\nsteps:\n  - multiline: {continuation: '^\\s', max_wait: 1h}\n", []string{"4:max_wait must be between"}},
		{"multiline bad duration", "tenant: a\nversion: 1\nsteps:\n  - multiline: {continuation: '^\\s', max_wait: soon}\n", []string{"4:invalid duration"}},
		{"multiline bad regex", "tenant: a\nversion: 1\nsteps:\n  - multiline: {continuation: '(x'}\n", []string{"4:missing closing"}},
		{"several at once", "tenant: a\nversion: 1\nsteps:\n  - json: {depth: 99}\n  - set: {field: x}\n  - sample: {one_in: 0}\n", []string{"4:depth", "5:exactly one of value and expr", "6:one_in"}},
		{"missing version", "tenant: a\n", []string{"1:missing version"}},
		{"syntax", "tenant: a\nversion: 1: 2\n", []string{"2:mapping values"}},
		{"alias", "tenant: &t a\nversion: 1\n", []string{"1:anchors"}},
		{"two documents", "tenant: a\nversion: 1\n---\ntenant: b\nversion: 1\n", []string{"3:more than one document"}},
		{"wrong type", "tenant: a\nversion: one\n", []string{"2:version must be an integer"}},
		{"bad test key", "tenant: a\nversion: 1\ntests:\n  - name: x\n    line: y\n    expect: {colour: red}\n", []string{"6:unknown key \"colour\""}},
		{"bad test input field", "tenant: a\nversion: 1\ntests:\n  - name: x\n    input: {lg: y}\n", []string{"5:unknown field"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.src))
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrInvalidSpec) {
				t.Errorf("error does not wrap ErrInvalidSpec: %v", err)
			}
			got := specErrors(t, err)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d errors, want %d: %v", len(got), len(tt.want), err)
			}
			for i, w := range tt.want {
				line, sub, _ := strings.Cut(w, ":")
				if strconv.Itoa(got[i].Line) != line || !strings.Contains(got[i].Error(), sub) {
					t.Errorf("error %d = %v, want line %s containing %q", i, got[i], line, sub)
				}
			}
		})
	}
}

func TestParseTooLarge(t *testing.T) {
	_, err := Parse(make([]byte, MaxSpecBytes+1))
	if !errors.Is(err, ErrSpecTooLarge) {
		t.Fatalf("got %v", err)
	}
}

func TestLoadRunsTests(t *testing.T) {
	src := `tenant: shop
version: 1
steps:
  - json: {}
tests:
  - name: good
    line: '{"a":1}'
    expect: {attributes: {a: 1}}
  - name: bad
    line: '{"a":1}'
    expect: {attributes: {a: 2}}
`
	_, err := Load([]byte(src))
	if !errors.Is(err, ErrTestFailed) {
		t.Fatalf("got %v", err)
	}
	errs := specErrors(t, err)
	if len(errs) != 1 || errs[0].Line != 9 || !strings.Contains(errs[0].Msg, `"bad"`) {
		t.Errorf("got %v", err)
	}
}

func TestLoadValid(t *testing.T) {
	p, err := Load([]byte("tenant: shop\nversion: 7\nsteps:\n  - set: {field: x, value: 3}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Tenant != "shop" || p.Version != 7 {
		t.Errorf("got %s v%d", p.Tenant, p.Version)
	}
	r := schemas.Record{}
	p.Process(&r)
	if r.Attributes["x"] != int64(3) {
		t.Errorf("x = %#v", r.Attributes["x"])
	}
}

// TestExpressionCostBounded checks that expressions that would loop or
// allocate a lot fail quickly, at compile time or at run time.
func TestExpressionCostBounded(t *testing.T) {
	// Too many nodes: refused at compile time.
	huge := strings.Repeat("1 + ", MaxExprNodes) + "1"
	if _, err := Parse([]byte("tenant: a\nversion: 1\nsteps:\n  - set: {field: x, expr: '" + huge + "'}\n")); err == nil {
		t.Error("expression over MaxExprNodes compiled")
	}
	for _, e := range []string{
		`len(map(1..100000000, #))`,
		`len(1..10000000)`,
		`len(repeat("abc", 10000000))`,
		`len(reduce(1..1000000, #acc + 1, 0)) > 0`,
	} {
		t.Run(e, func(t *testing.T) {
			p, err := Compile(&Spec{Tenant: "a", Version: 1, Steps: []StepSpec{{Type: "set", Field: "x", Expr: e}}})
			if err != nil {
				return // refused at compile time is fine too
			}
			start := time.Now()
			r := schemas.Record{}
			res := p.Process(&r)
			if res.DLQ == nil || res.DLQ.Reason != ReasonCostExceeded {
				t.Fatalf("got %+v, want cost_exceeded", res)
			}
			if d := time.Since(start); d > 100*time.Millisecond {
				t.Errorf("took %v", d)
			}
		})
	}
}
