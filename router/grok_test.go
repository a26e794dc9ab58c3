package router

import (
	"regexp/syntax"
	"slices"
	"strings"
	"testing"

	"github.com/sluicelogs/sluice/schemas"
)

// TestGrokBuiltinsCompile: every built-in pattern expands and compiles
// within the regex bounds, alone and captured.
func TestGrokBuiltinsCompile(t *testing.T) {
	most, mostName := 0, ""
	for name := range grokBuiltin {
		p, err := compileGrok("%{"+name+":x}", nil)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if int(p.re.insts) > most {
			most, mostName = int(p.re.insts), name
		}
	}
	t.Logf("largest built-in: %s, %d instructions (bound %d)", mostName, most, MaxRegexInsts)
}

// TestGrokPatterns: the built-in patterns match what they are named for,
// and not what they are not.
func TestGrokPatterns(t *testing.T) {
	for _, c := range []struct {
		name    string
		matches []string
		not     []string
	}{
		{"INT", []string{"0", "-12", "+7"}, []string{"a1", "1.5"}},
		{"NUMBER", []string{"1", "-1.5", ".5", "3."}, []string{"x", "1e"}},
		{"WORD", []string{"hello", "snake_case"}, []string{"two words", "a-b"}},
		{"IPV4", []string{"10.0.0.1", "255.255.255.255", "0.0.0.0"}, []string{"256.1.1.1", "1.2.3", "1.2.3.4.5"}},
		{"IPV6", []string{"::1", "fe80::1", "2001:db8::8a2e:370:7334", "2001:0db8:0000:0000:0000:ff00:0042:8329", "::", "::ffff:10.0.0.1"}, []string{"1.2.3.4", "12345::", "g::1", "fe80:1"}},
		{"IP", []string{"10.1.2.3", "::1"}, []string{"localhost"}},
		{"HOSTNAME", []string{"example.com", "a-b.c", "localhost", "ip-10-0-0-1.ec2.internal"}, []string{"-bad.com", "a b"}},
		{"IPORHOST", []string{"10.0.0.1", "api.example.com"}, []string{"a b"}},
		{"UUID", []string{"123e4567-e89b-12d3-a456-426614174000"}, []string{"123e4567-e89b-12d3-a456"}},
		{"QS", []string{`"a b"`, `"with \" quote"`, `'single'`}, []string{`"unterminated`}},
		{"HTTPDATE", []string{"21/Nov/2026:10:30:00 +0000"}, []string{"2026-11-21 10:30:00"}},
		{"TIMESTAMP_ISO8601", []string{"2026-11-21T10:30:00Z", "2026-11-21 10:30:00.123+01:00", "2026-11-21T10:30:00+0100", "2026-11-21T10:30"}, []string{"21/Nov/2026"}},
		{"SYSLOGTIMESTAMP", []string{"Nov 21 10:30:00", "Nov  1 10:30:00"}, []string{"2026-11-21"}},
		{"LOGLEVEL", []string{"INFO", "warn", "Warning", "ERROR", "debug", "FATAL"}, []string{"loud"}},
		{"URIPATHPARAM", []string{"/index.html", "/api/v1/items?id=7&x=y"}, []string{"no-slash"}},
		{"URI", []string{"https://user@example.com:8443/a/b?c=d", "http://10.0.0.1/"}, []string{"not a uri"}},
		{"EMAILADDRESS", []string{"ops@example.com", "first.last+tag@sub.example.org"}, []string{"@example.com"}},
		{"MAC", []string{"00:1a:2b:3c:4d:5e", "001a.2b3c.4d5e"}, []string{"00:1a:2b"}},
	} {
		p, err := compileGrok("^%{"+c.name+":v}$", nil)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		for _, s := range c.matches {
			if !p.re.re.MatchString(s) {
				t.Errorf("%s does not match %q", c.name, s)
			}
		}
		for _, s := range c.not {
			if p.re.re.MatchString(s) {
				t.Errorf("%s matches %q", c.name, s)
			}
		}
	}
}

func grokRecord(t *testing.T, steps []StepSpec, patterns map[string]string, log string) (schemas.Record, *Failure) {
	t.Helper()
	p, err := Compile(&Spec{Tenant: "t", Version: 1, Steps: steps, Patterns: patterns})
	if err != nil {
		t.Fatal(err)
	}
	r := schemas.Record{Log: log}
	res := p.Process(&r)
	return r, res.DLQ
}

// TestGrokStep: captures set attributes (dotted names, typed), absent
// values stay absent, the first pattern that matches wins, and what does
// not convert or match goes by on_error.
func TestGrokStep(t *testing.T) {
	line := `10.1.2.3 - alice [21/Nov/2026:10:30:00 +0000] "GET /cart?id=7 HTTP/1.1" 200 512 "https://shop.example/" "curl/8.5.0"`
	r, f := grokRecord(t, []StepSpec{{Type: "grok", Pattern: "%{COMBINEDAPACHELOG}"}}, nil, line)
	if f != nil {
		t.Fatal(f)
	}
	want := map[string]any{"clientip": "10.1.2.3", "ident": "-", "auth": "alice", "timestamp": "21/Nov/2026:10:30:00 +0000",
		"verb": "GET", "request": "/cart?id=7", "httpversion": "1.1", "response": int64(200), "bytes": int64(512),
		"referrer": `"https://shop.example/"`, "agent": `"curl/8.5.0"`}
	for k, v := range want {
		if r.Attributes[k] != v {
			t.Errorf("%s = %#v, want %#v", k, r.Attributes[k], v)
		}
	}
	if _, ok := r.Attributes["rawrequest"]; ok {
		t.Error("a group that took no part in the match is set")
	}

	// "-" for bytes: absent, not an error.
	r, f = grokRecord(t, []StepSpec{{Type: "grok", Pattern: "%{COMMONAPACHELOG}"}}, nil,
		`10.1.2.3 - - [21/Nov/2026:10:30:00 +0000] "GET / HTTP/1.1" 304 -`)
	if f != nil || r.Attributes["response"] != int64(304) {
		t.Fatalf("%v %v", f, r.Attributes)
	}
	if _, ok := r.Attributes["bytes"]; ok {
		t.Error("bytes - is set")
	}

	// Types, dotted fields, a pipeline's own pattern, a raw named group.
	r, f = grokRecord(t, []StepSpec{{Type: "grok",
		Pattern: `^%{REQID:req.id} %{NUMBER:took:float}ms ok=%{WORD:ok:bool} from=%{IP:client.ip:ip} n=%{INT:n:int} (?P<rest>.*)$`}},
		map[string]string{"REQID": `req-[0-9a-f]+`}, "req-9f 12.5ms ok=yes from=::ffff:10.0.0.9 n=-3 tail text")
	if f != nil {
		t.Fatal(f)
	}
	for k, v := range map[string]any{"req.id": "req-9f", "took": 12.5, "ok": true, "client.ip": "10.0.0.9", "n": int64(-3), "rest": "tail text"} {
		if r.Attributes[k] != v {
			t.Errorf("%s = %#v, want %#v", k, r.Attributes[k], v)
		}
	}

	// Patterns in order: the second matches.
	r, f = grokRecord(t, []StepSpec{{Type: "grok", GrokPatterns: []string{`^%{INT:code:int}$`, `^%{WORD:word}$`}}}, nil, "hello")
	if f != nil || r.Attributes["word"] != "hello" {
		t.Fatalf("%v %v", f, r.Attributes)
	}

	// A value that does not convert: dead-lettered whole, or with
	// on_error: skip, the record unchanged.
	_, f = grokRecord(t, []StepSpec{{Type: "grok", Pattern: `^%{NOTSPACE:a} %{NOTSPACE:n:int}$`}}, nil, "x y")
	if f == nil || f.Reason != ReasonParse || !strings.Contains(f.Err.Error(), `"y" is not an int`) {
		t.Fatalf("failure %v", f)
	}
	r, f = grokRecord(t, []StepSpec{{Type: "grok", Pattern: `^%{NOTSPACE:a} %{NOTSPACE:n:int}$`, OnError: "skip"}}, nil, "x y")
	if f != nil || len(r.Attributes) != 0 {
		t.Fatalf("skip: %v %v", f, r.Attributes)
	}
	_, f = grokRecord(t, []StepSpec{{Type: "grok", Pattern: `^%{INT:n}$`}}, nil, "no")
	if f == nil || !strings.Contains(f.Err.Error(), "matches none") {
		t.Fatalf("no match: %v", f)
	}
}

// TestGrokCompileErrors: what a grok pattern cannot be says why.
func TestGrokCompileErrors(t *testing.T) {
	user := map[string]string{"LOOP": "a%{LOOP2}", "LOOP2": "%{LOOP}", "INT": "[0-9]+"}
	for pattern, want := range map[string]string{
		"%{NOSUCH:x}":               "no pattern named NOSUCH",
		"%{INT:x":                   "unterminated %{",
		"%{INT:x:money}":            `unknown type "money"`,
		"%{INT::int}":               "a type needs a field",
		"%{LOOP:x}":                 "refers to itself",
		"%{bad-name:x}":             "is not a pattern name",
		"%{INT}":                    "no capture",
		"(?P<x>[0-9]+":              "missing closing )",
		"%{INT:x}{1000}%{INT:y}":    "instructions",
		strings.Repeat("a", 5000):   "longer than",
		"%{INT:x}(?P<unterminated":  "unterminated group name",
		"%{INT:x} %{INT:{bad}:int}": "is not a field name",
	} {
		_, err := compileGrok(pattern, user)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", clipText(pattern, 40), err, want)
		}
	}
	// A pipeline's pattern replaces the built-in one of its name.
	p, err := compileGrok("^%{INT:n}$", user)
	if err != nil || p.re.re.MatchString("-1") {
		t.Errorf("user INT: %v, matches -1: %v", err, err == nil && p.re.re.MatchString("-1"))
	}
}

// TestGrokInPipelineDocument: patterns: and grok steps as written, and
// the errors of each located at their line.
func TestGrokInPipelineDocument(t *testing.T) {
	src := `tenant: web
version: 1
patterns:
  UPSTREAM: '%{IPORHOST}:%{POSINT}'
steps:
  - grok:
      pattern:
        - '^%{IPORHOST:client} \[%{HTTPDATE:time}\] %{INT:status:int} upstream=%{UPSTREAM:upstream}$'
        - '^%{GREEDYDATA:message}$'
tests:
  - name: an access line
    line: '10.0.0.7 [21/Nov/2026:10:30:00 +0000] 502 upstream=10.1.0.4:8080'
    expect: {attributes: {client: 10.0.0.7, status: 502, upstream: '10.1.0.4:8080'}}
  - name: anything else
    line: 'upstream timed out'
    expect: {attributes: {message: upstream timed out}, absent: [status]}
`
	if _, err := Load([]byte(src)); err != nil {
		t.Fatal(err)
	}
	bad := "tenant: web\nversion: 1\npatterns:\n  bad-name: x\nsteps:\n  - grok: {pattern: '%{NOPE:x}'}\n"
	_, err := Load([]byte(bad))
	var lines []int
	for _, e := range specErrors(t, err) {
		lines = append(lines, e.Line)
	}
	if !slices.Equal(lines, []int{4}) && !slices.Equal(lines, []int{4, 6}) {
		t.Errorf("errors at lines %v: %v", lines, err)
	}
}

// FuzzGrokCompile: any pattern either compiles within the bounds or is an
// error; never a panic, and every capture is a group of the program.
func FuzzGrokCompile(f *testing.F) {
	for _, s := range []string{"%{COMBINEDAPACHELOG}", "%{IP:a} %{INT:b:int}", "%{A:b:c:d}", "(?P<x>%{WORD:y})", "%{", "%{}", `\%{INT:x}`, "(?<n>a)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := compileGrok(s, map[string]string{"A": "%{B}", "B": "b"})
		if err != nil {
			return
		}
		if p.re.insts > MaxRegexInsts {
			t.Fatalf("%q: %d instructions", s, p.re.insts)
		}
		if n := p.re.re.NumSubexp(); n < len(p.caps) {
			t.Fatalf("%q: %d groups for %d captures", s, n, len(p.caps))
		}
		if _, err := syntax.Parse(p.re.re.String(), syntax.Perl); err != nil {
			t.Fatal(err)
		}
	})
}
