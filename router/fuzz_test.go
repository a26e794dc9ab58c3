package router

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
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

// FuzzExprSandbox compiles fuzzed expressions with the pipelines' options
// and evaluates them on a fuzzed record: no panic escapes, and what one
// evaluation allocates stays bounded.
func FuzzExprSandbox(f *testing.F) {
	for _, s := range []string{
		`len(replace(log, "", log))`,
		`let s0 = log; let s1 = s0 + s0; let s2 = s1 + s1; let s3 = s2 + s2; let s4 = s3 + s3; let s5 = s4 + s4; let s6 = s5 + s5; let s7 = s6 + s6; let s8 = s7 + s7; let s9 = s8 + s8; let s10 = s9 + s9; len(s10 + s10 + s10)`,
		`len(join(map(1..40000, log), ""))`,
		`log matches "(?:\\w+\\s){1,400}END"`,
		`any(1..90000, # * 2 == -1 || log contains "x")`,
		`attributes.status >= 500`,
		`attributes.level in ["error"]`,
		`string(attributes["user.id"] ?? "anon") + "@" + tenant`,
		`toJSON(fromJSON(log))`,
		`split(log, "")`,
		`repeat(log, 1000)`,
		`attributes[log]`,
		`upper(log) + lower(log)`,
		`keys(attributes)`,
		`timestamp.Year() > 2000`,
		`sum(map(1..1000, #))`,
	} {
		f.Add(s, strings.Repeat("word ", 2000), `{"a":1}`)
	}
	f.Fuzz(func(t *testing.T, src, line, attr string) {
		p, err := compileExpr(src, false)
		if err != nil {
			return
		}
		var attrs map[string]any
		_ = flattenJSON(attr, "", 3, func(k string, v any) {
			if attrs == nil {
				attrs = map[string]any{}
			}
			attrs[k] = v
		})
		// Long lines exercise the budget; fuzzed lines are short.
		r := schemas.Record{ID: "x", Log: strings.Repeat(line, max(1, (64<<10)/(len(line)+1))), Attributes: attrs}
		st := state{tenant: "t"}
		st.reset()
		e := newEvaluator()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		func() {
			defer func() {
				if v := recover(); v != nil {
					t.Fatalf("panic: %v", v)
				}
			}()
			out, err := e.run(p, &st, &r)
			if err == nil {
				_ = st.chargeValue(out)
			}
		}()
		runtime.ReadMemStats(&after)
		if d := after.TotalAlloc - before.TotalAlloc; d > 64<<20 {
			t.Fatalf("%q allocated %d MiB", src, d>>20)
		}
	})
}

// FuzzEpoch: an epoch string never panics the conversion; a plain integer
// converts exactly, and the same number as a decimal with a fraction of
// zeros gives the same instant.
func FuzzEpoch(f *testing.F) {
	for _, s := range []string{"1795255200", "1795255200.123", "-1.5", "", "9223372036854775807", "0.000000001", "+7"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, scale := range []int64{1e9, 1e6, 1e3, 1} {
			ns, err := epochNanos(s, scale)
			i, perr := strconv.ParseInt(s, 10, 64)
			if perr != nil || strings.HasPrefix(s, "+") {
				continue
			}
			if i > math.MaxInt64/scale || i < math.MinInt64/scale {
				continue
			}
			if err != nil || ns != i*scale {
				t.Fatalf("%q at %d: %d, %v; want %d", s, scale, ns, err, i*scale)
			}
			if again, err := epochNanos(s+".000", scale); err != nil || again != ns {
				t.Fatalf("%q.000 at %d: %d, %v; want %d", s, scale, again, err, ns)
			}
		}
	})
}

// FuzzKlogStructured: splitting a klog message never panics, and a message
// it does not split comes back whole.
func FuzzKlogStructured(f *testing.F) {
	for _, s := range []string{`"Pod updated" pod="a/b" n=3`, `"x"`, `"unterminated`, `"a" b`, `"a" k="\"q\""`, `"a" k=`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		msg, kv := splitKlogStructured(s)
		if kv == nil && msg != s {
			if q, err := strconv.QuotedPrefix(s); err != nil || strings.TrimLeft(s[len(q):], " ") != "" {
				t.Fatalf("%q: message %q without pairs", s, msg)
			}
		}
	})
}
