package router

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"github.com/sluicelogs/sluice/schemas"
)

// FuzzParseSpec checks that the pipeline decoder never panics and that
// every error it returns carries a position.
func FuzzParseSpec(f *testing.F) {
	files, _ := filepath.Glob("testdata/golden/*/pipeline.yaml")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("tenant: a\nversion: 1\nsteps:\n  - json: {depth: 99}\n  - set: {field: x}\n"))
	f.Add([]byte("tenant: &a a\nversion: *a\n"))
	f.Add([]byte("- [1, {a: b}]\n---\nx"))
	f.Fuzz(func(t *testing.T, src []byte) {
		spec, err := Parse(src)
		if err == nil {
			if _, err := Compile(spec); err != nil {
				t.Fatalf("parsed spec does not compile: %v", err)
			}
			return
		}
		errs := []error{err}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			errs = j.Unwrap()
		}
		for _, e := range errs {
			var se *SpecError
			if !errors.As(e, &se) || se.Line < 1 || se.Column < 1 {
				t.Fatalf("error without position: %v", e)
			}
		}
	})
}

// fuzzStep runs one step on a log line: no panic, no DLQ for panics, and
// attribute values of the allowed types.
func fuzzStep(t *testing.T, p *Pipeline, line string) {
	r := schemas.Record{ID: "x", Log: line}
	res := p.Process(&r)
	if res.DLQ != nil && res.DLQ.Reason == ReasonPanic {
		t.Fatalf("panic: %v", res.DLQ)
	}
	if len(r.Attributes) > MaxAttributes {
		t.Fatalf("%d attributes", len(r.Attributes))
	}
	for k, v := range r.Attributes {
		switch v.(type) {
		case nil, bool, int64, float64, string:
		default:
			t.Fatalf("attribute %q has type %T", k, v)
		}
	}
}

func FuzzJSONStep(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"a":{"b":{"c":[1,2,{"d":null}]}}}`, `{"n":1e400,"s":"\ud800"}`, `{}`, `[]`, `{"a":1} x`} {
		f.Add(s)
	}
	p := mustPipeline(f, StepSpec{Type: "json", Depth: 3})
	f.Fuzz(func(t *testing.T, line string) {
		fuzzStep(t, p, line)
		r := schemas.Record{Log: line}
		if res := p.Process(&r); res.DLQ == nil {
			for _, v := range r.Attributes {
				if s, ok := v.(string); ok && utf8.ValidString(line) && !utf8.ValidString(s) {
					t.Fatalf("invalid utf-8 %q from valid input", s)
				}
			}
		}
	})
}

func FuzzLogfmtStep(f *testing.F) {
	for _, s := range []string{`a=1 b="x y" c`, `a="\"q\""`, `=x`, `a="`, `k=v\t k2=`, `a="\u00e9"`} {
		f.Add(s)
	}
	p := mustPipeline(f, StepSpec{Type: "logfmt"})
	f.Fuzz(func(t *testing.T, line string) { fuzzStep(t, p, line) })
}

func FuzzKlogStep(f *testing.F) {
	for _, s := range []string{"I1121 09:15:02.123456    4242 controller.go:118] sync", "F0229 23:59:60.999999 1 a:1]", "W1301 00:00:00.000000 1 a.go:1] x", "E"} {
		f.Add(s)
	}
	p := mustPipeline(f, StepSpec{Type: "klog"})
	f.Fuzz(func(t *testing.T, line string) { fuzzStep(t, p, line) })
}

func FuzzRegexStep(f *testing.F) {
	for _, s := range []string{"GET /a 200", "x", "", "POST  /b 5000"} {
		f.Add(s)
	}
	p := mustPipeline(f, StepSpec{Type: "regex", Pattern: `^(?P<method>\S+) (?P<path>\S+) (?P<status>\d+)(?P<rest>.*)$`})
	f.Fuzz(func(t *testing.T, line string) { fuzzStep(t, p, line) })
}
