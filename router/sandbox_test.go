package router

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/sluicelogs/sluice/schemas"
)

// allocLimit is what processing one record may allocate in these tests.
const allocLimit = 64 << 20

// processMeasured runs p on r and returns the result and the bytes
// allocated meanwhile.
func processMeasured(p *Pipeline, r *schemas.Record) (Result, uint64) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	res := p.Process(r)
	runtime.ReadMemStats(&after)
	return res, after.TotalAlloc - before.TotalAlloc
}

func wordLine(n int) string {
	return strings.Repeat("word ", n/5+1)[:n]
}

// TestSandboxAttacks: expressions and regexes that pass a naive validation
// but would exhaust memory or time are refused at compile time or stop
// with cost_exceeded, with bounded allocation.
func TestSandboxAttacks(t *testing.T) {
	doubling := []StepSpec{{Type: "set", Field: "s0", Expr: `log`}}
	for i := 1; i <= 40; i++ {
		doubling = append(doubling, StepSpec{Type: "set", Field: fmt.Sprintf("s%d", i),
			Expr: fmt.Sprintf(`attributes.s%d + attributes.s%d`, i-1, i-1)})
	}
	var let strings.Builder
	let.WriteString("let s0 = log; ")
	for i := 1; i <= 40; i++ {
		fmt.Fprintf(&let, "let s%d = s%d + s%d; ", i, i-1, i-1)
	}
	let.WriteString("len(s40)")
	var expensive []StepSpec
	for range MaxSteps {
		expensive = append(expensive, StepSpec{Type: "drop", If: `any(1..90000, # * 2 == -1 || log contains "no such text")`})
	}
	for _, tc := range []struct {
		name    string
		steps   []StepSpec
		line    string
		compile string // expected compile error, "" when it compiles
	}{
		{name: "replace with empty old", steps: []StepSpec{{Type: "set", Field: "n", Expr: `len(replace(log, "", log))`}}, line: wordLine(100 << 10)},
		{name: "doubling set steps", steps: doubling, line: "ab"},
		{name: "doubling let", steps: []StepSpec{{Type: "set", Field: "n", Expr: let.String()}}, line: "ab"},
		{name: "join of a mapped range", steps: []StepSpec{{Type: "set", Field: "n", Expr: `len(join(map(1..40000, log), ""))`}}, line: wordLine(64 << 10)},
		{name: "repeat", steps: []StepSpec{{Type: "set", Field: "n", Expr: `len(repeat(log, 100000))`}}, line: wordLine(64 << 10)},
		{name: "split of every character", steps: []StepSpec{{Type: "set", Field: "n", Expr: `len(split(log + log + log + log, ""))`}}, line: wordLine(1 << 20)},
		{name: "toJSON of a big list", steps: []StepSpec{{Type: "set", Field: "n", Expr: `len(toJSON(map(1..90000, log)))`}}, line: wordLine(64 << 10)},
		{name: "set a big list", steps: []StepSpec{{Type: "set", Field: "n", Expr: `map(1..90000, log)`}}, line: wordLine(64 << 10)},
		{name: "string of a big list", steps: []StepSpec{{Type: "set", Field: "n", Expr: `string(map(1..90000, log))`}}, line: wordLine(64 << 10)},
		{name: "bounded repetition regex", steps: []StepSpec{{Type: "regex", Pattern: `(?:\w+\s){1,1000}(?P<end>END)`}}, compile: "instructions, more than"},
		{name: "regex under the size bound on a long line", steps: []StepSpec{{Type: "regex", Pattern: `(?:\w+\s){1,400}(?P<end>END)`}}, line: wordLine(64 << 10)},
		{name: "constant matches too large", steps: []StepSpec{{Type: "drop", If: `log matches "(?:\\w+\\s){1,1000}END"`}}, compile: "instructions, more than"},
		{name: "dynamic matches too large", steps: []StepSpec{{Type: "drop", If: `log matches ("(?:\\w+\\s){1,1000}" + "END")`}}, line: "a", compile: ""},
		{name: "dynamic matches on a long line", steps: []StepSpec{{Type: "drop", If: `log matches ("(?:\\w+\\s){1,400}" + "END")`}}, line: wordLine(64 << 10)},
		{name: "expensive conditions", steps: expensive, line: wordLine(1 << 10)},
		{name: "contains in a loop", steps: []StepSpec{{Type: "drop", If: `count(1..90000, log contains "zz") > 0`}}, line: wordLine(1 << 20)},
		{name: "computed keys in a loop", steps: []StepSpec{{Type: "drop", If: `any(1..90000, attributes[log] != nil)`}}, line: wordLine(1 << 20)},
		{name: "fromJSON", steps: []StepSpec{{Type: "set", Field: "n", Expr: `len(fromJSON("[" + repeat("0,", 1000000) + "0]"))`}}, line: "x"},
		{name: "unmetered builtin", steps: []StepSpec{{Type: "set", Field: "n", Expr: `len(concat(1..10, 1..10))`}}, compile: "not available"},
		{name: "reserved name", steps: []StepSpec{{Type: "set", Field: "n", Expr: `__meter`}}, compile: "reserved"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Compile(&Spec{Tenant: "a", Version: 1, Steps: tc.steps})
			if tc.compile != "" {
				if err == nil || !strings.Contains(err.Error(), tc.compile) {
					t.Fatalf("compile error %v, want one with %q", err, tc.compile)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			r := schemas.Record{ID: "x", Log: tc.line}
			res, alloc := processMeasured(p, &r)
			if tc.name == "dynamic matches too large" {
				if res.DLQ == nil || res.DLQ.Reason != ReasonExpr || !strings.Contains(res.DLQ.Error(), "more than") {
					t.Fatalf("got %+v, want an expression error on the pattern's size", res)
				}
				return
			}
			if res.DLQ == nil || res.DLQ.Reason != ReasonCostExceeded {
				t.Fatalf("got %+v, want cost_exceeded", res)
			}
			if res.DLQ.Step < 0 || res.DLQ.StepType != tc.steps[res.DLQ.Step].Type {
				t.Errorf("failure at step %d (%s)", res.DLQ.Step, res.DLQ.StepType)
			}
			if alloc > allocLimit {
				t.Errorf("allocated %d MiB", alloc>>20)
			}
			t.Logf("%v; allocated %d KiB", res.DLQ, alloc>>10)
		})
	}
}

// TestSandboxOrdinary: ordinary expressions keep working, far from the
// budget, on long lines too.
func TestSandboxOrdinary(t *testing.T) {
	line := `{"level":"error","msg":"` + wordLine(60<<10) + `","status":503,"user":{"id":7}}`
	p := mustPipeline(t,
		StepSpec{Type: "json"},
		StepSpec{Type: "set", Field: "who", Expr: `string(attributes["user.id"] ?? "anon") + "@" + tenant`},
		StepSpec{Type: "set", Field: "short", Expr: `upper(attributes.msg[0:9]) + "|" + lower("ABC") + "|" + trim("  x ") + "|" + join(split("a,b", ","), ";")`},
		StepSpec{Type: "set", Field: "n", Expr: `len(replace(attributes.msg, "word", "w")) + count(split(attributes.msg, " "), # == "word")`},
		StepSpec{Type: "set", Field: "j", Expr: `toJSON({"a": [1, 2]}) + string(fromJSON("[1]")[0]) + string(1.5 + 1) + string(len(keys(attributes)))`},
		StepSpec{Type: "set", Field: "re", Expr: `attributes.msg matches "^word (word )+" && attributes.level matches ("^" + "err")`},
		StepSpec{Type: "route", If: `attributes.status >= 500 and attributes.level in ["error", "fatal"] and attributes.msg startsWith "word" and "ord" in split("w ord", " ")`, Dataset: "errors"},
	)
	r := schemas.Record{ID: "x", Log: line}
	res, alloc := processMeasured(p, &r)
	if res.DLQ != nil || res.Dataset != "errors" {
		t.Fatalf("got %+v", res)
	}
	want := map[string]any{"who": "7@t", "short": "WORD WORD|abc|x|a;b", "j": "{\n  \"a\": [\n    1,\n    2\n  ]\n}12.57", "re": true}
	for k, v := range want {
		if r.Attributes[k] != v {
			t.Errorf("%s = %#v, want %#v", k, r.Attributes[k], v)
		}
	}
	if alloc > 4<<20 {
		t.Errorf("allocated %d KiB", alloc>>10)
	}
}

// TestMissingAttributeComparisons: a missing attribute is data: comparisons
// with it are false, not errors.
func TestMissingAttributeComparisons(t *testing.T) {
	for _, cond := range []string{
		`attributes.status >= 500`,
		`attributes.status < 500`,
		`attributes.status <= 500`,
		`attributes.status > 500`,
		`500 < attributes.status`,
		`attributes.level in ["error"]`,
		`"error" in attributes.levels`,
		`attributes.msg contains "x"`,
		`attributes.msg startsWith "x"`,
		`attributes.msg endsWith "x"`,
		`attributes.msg matches "x"`,
		`attributes.msg matches attributes.pattern`,
		`attributes.msg == "x"`,
	} {
		t.Run(cond, func(t *testing.T) {
			p := mustPipeline(t, StepSpec{Type: "route", If: cond, Dataset: "hit"})
			r := schemas.Record{ID: "x", Log: "x", Attributes: map[string]any{"other": 1}}
			res := p.Process(&r)
			if res.DLQ != nil || res.Dataset != "" {
				t.Fatalf("got %+v, want no route and no failure", res)
			}
			f, err := CompileFilter(cond)
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := f.Match("a", &schemas.Record{}); ok || err != nil {
				t.Fatalf("filter: %v, %v", ok, err)
			}
		})
	}
	// Present values still compare, and mismatched types are still errors.
	p := mustPipeline(t, StepSpec{Type: "route", If: `attributes.status >= 500`, Dataset: "hit"})
	r := schemas.Record{Attributes: map[string]any{"status": int64(503)}}
	if res := p.Process(&r); res.Dataset != "hit" {
		t.Errorf("status 503: %+v", res)
	}
	r = schemas.Record{Attributes: map[string]any{"status": "503"}}
	if res := p.Process(&r); res.DLQ == nil || res.DLQ.Reason != ReasonExpr {
		t.Errorf("status \"503\": %+v, want an expression error", res)
	}
}

// TestFilterBounded: CompileFilter has the pipelines' bounds.
func TestFilterBounded(t *testing.T) {
	if _, err := CompileFilter(`log matches "(?:\\w+\\s){1,1000}END"`); err == nil {
		t.Error("oversized regex accepted")
	}
	f, err := CompileFilter(`len(replace(log, "", log)) > 0`)
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	ok, err := f.Match("a", &schemas.Record{Log: wordLine(100 << 10)})
	runtime.ReadMemStats(&after)
	if ok || err == nil || !strings.Contains(err.Error(), errCostExceeded.Error()) {
		t.Errorf("got %v, %v; want a cost error", ok, err)
	}
	if d := after.TotalAlloc - before.TotalAlloc; d > allocLimit {
		t.Errorf("allocated %d MiB", d>>20)
	}
}

// TestRegexBound: ordinary regexes are far below MaxRegexInsts.
func TestRegexBound(t *testing.T) {
	for _, p := range []string{
		`^(?P<client>\S+) \S+ \S+ \[(?P<time>[^\]]+)\] "(?P<method>[A-Z]+) (?P<path>[^ "]+) [^"]*" (?P<status>\d{3}) (?P<bytes>\d+) "(?P<referer>[^"]*)" "(?P<agent>[^"]*)"`,
		`^(?P<method>[A-Z]+) (?P<path>\S+) (?P<status>\d{3}) ?(?P<rest>.*)$`,
		`(?P<ip>\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})`,
	} {
		re, err := compileRegex(p)
		if err != nil {
			t.Fatal(err)
		}
		if re.insts > MaxRegexInsts/10 {
			t.Errorf("%s: %d instructions", p, re.insts)
		}
	}
}
