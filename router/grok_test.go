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

// TestGrokReadyParsers: the ready parsers on lines as their programs
// write them.
func TestGrokReadyParsers(t *testing.T) {
	for _, c := range []struct {
		pattern, line string
		want          map[string]any
		absent        []string
	}{
		{"NGINX_ACCESS", `10.1.2.3 - - [21/Nov/2026:10:30:00 +0000] "GET /cart?id=7 HTTP/1.1" 200 512 "-" "curl/8.5.0"`,
			map[string]any{"remote_addr": "10.1.2.3", "remote_user": "-", "method": "GET", "path": "/cart?id=7", "protocol": "1.1",
				"status": int64(200), "body_bytes_sent": int64(512), "http_referer": "-", "http_user_agent": "curl/8.5.0"}, []string{"request"}},
		{"NGINX_INGRESS", `192.168.1.10 - alice [21/Nov/2026:10:30:00 +0000] "POST /api/v1/items HTTP/2.0" 502 150 "https://shop.example/" "Mozilla/5.0 (X11)" 87 0.004 [default-api-8080] [] 10.244.0.12:8080, 10.244.0.13:8080 0, 150 0.001, 0.003 502, 502 4b5c7f0e9a1d2c3b4a5f6e7d8c9b0a1f`,
			map[string]any{"remote_addr": "192.168.1.10", "remote_user": "alice", "method": "POST", "status": int64(502), "request_length": int64(87),
				"request_time": 0.004, "proxy_upstream_name": "default-api-8080", "proxy_alternative_upstream_name": "",
				"upstream_addr": "10.244.0.12:8080, 10.244.0.13:8080", "upstream_status": "502, 502", "req_id": "4b5c7f0e9a1d2c3b4a5f6e7d8c9b0a1f"}, nil},
		{"SYSLOG3164", `<34>Oct 11 22:14:15 mymachine su[123]: 'su root' failed for lonvick on /dev/pts/8`,
			map[string]any{"priority": int64(34), "timestamp": "Oct 11 22:14:15", "hostname": "mymachine", "appname": "su", "procid": int64(123),
				"message": "'su root' failed for lonvick on /dev/pts/8"}, nil},
		{"SYSLOG3164", `Nov  1 03:04:05 node-7 kubelet: E1101 failed`,
			map[string]any{"hostname": "node-7", "appname": "kubelet", "message": "E1101 failed"}, []string{"priority", "procid"}},
		{"SYSLOG5424", `<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application"] An application event`,
			map[string]any{"priority": int64(165), "version": int64(1), "timestamp": "2003-10-11T22:14:15.003Z", "hostname": "mymachine.example.com",
				"appname": "evntslog", "msgid": "ID47", "structured_data": `[exampleSDID@32473 iut="3" eventSource="Application"]`, "message": "An application event"}, []string{"procid"}},
		{"SYSLOG5424", `<13>1 - - - - - -`, map[string]any{"priority": int64(13)}, []string{"timestamp", "hostname", "message"}},
		{"ENVOY_ACCESS", `[2016-04-15T20:17:00.310Z] "POST /api/v1/locations HTTP/2" 204 - 154 0 226 100 "10.0.35.28" "nsq2http" "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2" "locations" "tcp://10.0.2.1:80"`,
			map[string]any{"start_time": "2016-04-15T20:17:00.310Z", "method": "POST", "path": "/api/v1/locations", "protocol": "HTTP/2",
				"response_code": int64(204), "response_flags": "-", "bytes_received": int64(154), "duration": int64(226),
				"upstream_service_time": int64(100), "authority": "locations", "upstream_host": "tcp://10.0.2.1:80"}, nil},
		{"APACHE_ACCESS", `::1 - - [21/Nov/2026:10:30:00 +0000] "GET / HTTP/1.1" 304 - "-" "-"`,
			map[string]any{"clientip": "::1", "response": int64(304)}, []string{"bytes"}},
		{"APACHE_ACCESS", `10.1.2.3 - - [21/Nov/2026:10:30:00 +0000] "\x16\x03\x01\x02\"x" 400 226 "-" "say \"hi\""`,
			map[string]any{"rawrequest": `\x16\x03\x01\x02\"x`, "response": int64(400), "agent": `"say \"hi\""`}, []string{"verb", "request"}},
		{"SYSLOG3164", `Nov 21 10:30:00.123 10.0.0.9 app: ok`,
			map[string]any{"timestamp": "Nov 21 10:30:00.123", "hostname": "10.0.0.9", "appname": "app", "message": "ok"}, nil},
	} {
		r, f := grokRecord(t, []StepSpec{{Type: "grok", Pattern: "^%{" + c.pattern + "}$"}}, nil, c.line)
		if f != nil {
			t.Errorf("%s: %v", c.pattern, f)
			continue
		}
		for k, v := range c.want {
			if r.Attributes[k] != v {
				t.Errorf("%s: %s = %#v, want %#v", c.pattern, k, r.Attributes[k], v)
			}
		}
		for _, k := range c.absent {
			if _, ok := r.Attributes[k]; ok {
				t.Errorf("%s: %s is set (%#v)", c.pattern, k, r.Attributes[k])
			}
		}
	}
	// Syslog lines SYSLOG3164 does not take: without a hostname (as
	// syslog(3) writes them to /dev/log), a timestamp of another form.
	for _, c := range [][2]string{
		{"SYSLOG3164", `<13>Nov 21 10:30:00 sshd[42]: error: no host key`},
		{"SYSLOG3164", `<13>Nov 21 10:30:00 sshd: error: no host key`},
		{"SYSLOG3164", `2026-11-21 10:30:00 node-7 kubelet: ok`},
	} {
		if r, f := grokRecord(t, []StepSpec{{Type: "grok", Pattern: "^%{" + c[0] + "}$"}}, nil, c[1]); f == nil {
			t.Errorf("%s matches %q: %v", c[0], c[1], r.Attributes)
		}
	}
}

// TestTypes: the types a grok capture or a parse step's types: give, with
// "-", empty and null absent.
func TestTypes(t *testing.T) {
	for _, c := range []struct {
		text, typ string
		want      any
		ok        bool
	}{
		{"42", "int", int64(42), true}, {"-", "int", nil, false}, {"", "float", nil, false},
		{"1.5", "float", 1.5, true}, {"Yes", "bool", true, true}, {"off", "bool", false, true},
		{"::ffff:10.0.0.1", "ip", "10.0.0.1", true},
		{"1.5s", "duration", 1.5, true}, {"120ms", "duration", 0.12, true}, {"2h45m", "duration", 9900.0, true}, {"0.004", "duration", 0.004, true},
		{"512", "bytes", int64(512), true}, {"10KB", "bytes", int64(10000), true}, {"1.5 MiB", "bytes", int64(1572864), true}, {"2g", "bytes", int64(2e9), true},
		{"2026-11-21T11:00:00+0100", "timestamp", "2026-11-21T10:00:00Z", true},
		{"x", "string", "x", true},
	} {
		v, ok, err := convertCapture(c.text, c.typ)
		if err != nil || ok != c.ok || v != c.want {
			t.Errorf("%q as %s: %#v, %v, %v; want %#v", c.text, c.typ, v, ok, err, c.want)
		}
	}
	for _, c := range [][2]string{{"x", "int"}, {"1.2.3", "float"}, {"maybe", "bool"}, {"300.1.1.1", "ip"}, {"soon", "duration"}, {"10 parsecs", "bytes"}, {"yesterday", "timestamp"}} {
		if _, _, err := convertCapture(c[0], c[1]); err == nil {
			t.Errorf("%q as %s: no error", c[0], c[1])
		}
	}

	src := `tenant: t
version: 1
steps:
  - regex: {pattern: '^(?P<status>\S+) (?P<took>\S+) (?P<size>\S+)$', types: {status: int, took: duration, size: bytes}}
  - json: {field: extra, types: {n: int, gone: int}, on_error: skip}
tests:
  - name: typed captures
    input: {log: '503 12ms 2KiB', attributes: {extra: '{"n":"7","gone":null}'}}
    expect: {attributes: {status: 503, took: 0.012, size: 2048, n: 7}, absent: [gone]}
  - name: a dash is absent
    line: '- - -'
    expect: {absent: [status, took, size]}
  - name: what does not convert fails the step
    line: 'x 1s 1'
    expect: {dlq: true}
`
	if _, err := Load([]byte(src)); err != nil {
		t.Fatal(err)
	}
	if _, err := Load([]byte("tenant: t\nversion: 1\nsteps:\n  - logfmt: {types: {a: money}}\n")); err == nil || !strings.Contains(err.Error(), `logfmt.types: a: unknown type "money"`) {
		t.Errorf("%v", err)
	}
}

// TestGrokCostBounded: a grok step pays for every pattern it tries, so a
// tenant's long list of large patterns on long lines ends in
// cost_exceeded, within the record's budget, instead of holding the
// router (the budget is what keeps one tenant from slowing the others).
func TestGrokCostBounded(t *testing.T) {
	big := `%{IPORHOST:a} %{HTTPDATE:b} %{URI:c} %{TIMESTAMP_ISO8601:d} %{LOGLEVEL:e} %{EMAILADDRESS:f} %{UUID:g}$`
	var pats []string
	for range 32 {
		pats = append(pats, big)
	}
	line := strings.Repeat("10.0.0.1 ", 8<<10) // 72 KiB that no pattern matches
	_, f := grokRecord(t, []StepSpec{{Type: "grok", GrokPatterns: pats, OnError: "skip"}}, nil, line)
	if f == nil || f.Reason != ReasonCostExceeded {
		t.Fatalf("failure %v, want cost_exceeded", f)
	}
}
