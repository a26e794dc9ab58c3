package router

import (
	"maps"
	"testing"
	"time"

	"github.com/sluicelogs/sluice/schemas"
)

// benchRecord is a ~300-byte record as the shipper produces it.
func benchRecord(log string) schemas.Record {
	return schemas.Record{
		ID:        "4f1c2a9be07d6a35",
		Timestamp: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC),
		Tenant:    "shop",
		Stream:    "stdout",
		Log:       log,
		Kubernetes: schemas.Kubernetes{
			NamespaceName: "shop", PodName: "checkout-7d9f8b6c5-x2x4z", ContainerName: "checkout",
		},
	}
}

const benchJSON = `{"level":"info","ts":"2026-11-21T10:00:00.123Z","msg":"order placed","order_id":"A-102938","user":{"id":4711,"plan":"pro"},"amount":129.95,"currency":"EUR","items":3,"latency_ms":12,"path":"/api/v1/orders","method":"POST","status":201}`

const benchAccess = `10.244.1.17 - - [21/Nov/2026:10:00:00 +0000] "GET /api/v1/products/12345?ref=home&utm_source=newsletter HTTP/1.1" 200 5123 "https://shop.example.com/" "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"`

func benchmark(b *testing.B, p *Pipeline, log string) {
	b.Helper()
	base := benchRecord(log)
	b.SetBytes(int64(len(log)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r := base
		r.Attributes = nil
		if res := p.Process(&r); res.DLQ != nil {
			b.Fatal(res.DLQ)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkPassThrough(b *testing.B) {
	benchmark(b, PassThrough("shop"), benchJSON)
}

// BenchmarkJSONTwoRewrites is a JSON parse followed by a rename and a
// remove: the "JSON parse + two rewrites" figure of the performance goal.
func BenchmarkJSONTwoRewrites(b *testing.B) {
	p := mustPipeline(b,
		StepSpec{Type: "json"},
		StepSpec{Type: "rename", From: "msg", To: "message"},
		StepSpec{Type: "remove", Fields: []string{"ts"}},
	)
	benchmark(b, p, benchJSON)
}

// benchJSONEscaped is an error line as applications write them: quotes, a
// stack trace's newlines and tabs, and a non-ASCII name escaped as \u.
const benchJSONEscaped = `{"level":"error","ts":"2026-11-21T10:00:00.123Z","msg":"payment failed: \"card declined\"","error":"java.lang.IllegalStateException: declined\n\tat com.shop.Pay.charge(Pay.java:42)\n\tat com.shop.Api.post(Api.java:17)","user":"J\u00fcrgen","path":"/api/v1/pay","status":402}`

// BenchmarkJSONEscaped is BenchmarkJSONTwoRewrites on a line whose strings
// hold escapes, which cost a decoded copy each.
func BenchmarkJSONEscaped(b *testing.B) {
	p := mustPipeline(b,
		StepSpec{Type: "json"},
		StepSpec{Type: "rename", From: "msg", To: "message"},
		StepSpec{Type: "remove", Fields: []string{"ts"}},
	)
	benchmark(b, p, benchJSONEscaped)
}

// BenchmarkJSONExpressions adds a set expression and a route condition.
func BenchmarkJSONExpressions(b *testing.B) {
	p := mustPipeline(b,
		StepSpec{Type: "json"},
		StepSpec{Type: "set", Field: "who", Expr: `string(attributes["user.id"]) + "@" + tenant`},
		StepSpec{Type: "route", If: `attributes.status >= 500`, Dataset: "errors"},
	)
	benchmark(b, p, benchJSON)
}

func BenchmarkRegex(b *testing.B) {
	p := mustPipeline(b, StepSpec{Type: "regex",
		Pattern: `^(?P<client>\S+) \S+ \S+ \[(?P<time>[^\]]+)\] "(?P<method>[A-Z]+) (?P<path>[^ "]+) [^"]*" (?P<status>\d{3}) (?P<bytes>\d+) "(?P<referer>[^"]*)" "(?P<agent>[^"]*)"`})
	benchmark(b, p, benchAccess)
}

func BenchmarkLogfmt(b *testing.B) {
	p := mustPipeline(b, StepSpec{Type: "logfmt"})
	benchmark(b, p, `level=info ts=2026-11-21T10:00:00.123Z msg="order placed" order_id=A-102938 user=4711 plan=pro amount=129.95 currency=EUR items=3 latency_ms=12 path=/api/v1/orders method=POST status=201 trace_id=4bf92f3577b34da6a3ce929d0e0e4736`)
}

// BenchmarkGrokCombined parses the access line of BenchmarkRegex with the
// built-in %{COMBINEDAPACHELOG}: more fields (ident, auth, HTTP version)
// and typed status and bytes.
func BenchmarkGrokCombined(b *testing.B) {
	p := mustPipeline(b, StepSpec{Type: "grok", Pattern: `%{COMBINEDAPACHELOG}`})
	benchmark(b, p, benchAccess)
}

const benchIngress = `10.244.1.17 - - [21/Nov/2026:10:00:00 +0000] "GET /api/v1/products/12345?ref=home HTTP/1.1" 200 5123 "https://shop.example.com/" "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36" 512 0.012 [shop-frontend-80] [] 10.244.2.31:8080 5123 0.011 200 9f2c1e4b7a6d5c3e8f9a0b1c2d3e4f5a`

// BenchmarkRegexNginxIngress is an ingress-nginx line parsed with a regex
// written by hand, as a pipeline without grok needs it.
func BenchmarkRegexNginxIngress(b *testing.B) {
	p := mustPipeline(b, StepSpec{Type: "regex",
		Pattern: `^(?P<remote_addr>\S+) - (?P<remote_user>\S+) \[(?P<time_local>[^\]]+)\] "(?P<method>[A-Z]+) (?P<path>\S+) HTTP/(?P<protocol>[0-9.]+)" (?P<status>\d{3}) (?P<body_bytes_sent>\d+) "(?P<http_referer>[^"]*)" "(?P<http_user_agent>[^"]*)" (?P<request_length>\d+) (?P<request_time>[0-9.]+) \[(?P<proxy_upstream_name>[^\]]*)\] \[(?P<proxy_alternative_upstream_name>[^\]]*)\] (?P<upstream_addr>\S+) (?P<upstream_response_length>\S+) (?P<upstream_response_time>\S+) (?P<upstream_status>\S+) (?P<req_id>\S+)$`})
	benchmark(b, p, benchIngress)
}

// BenchmarkGrokNginxIngress parses the same line with %{NGINX_INGRESS}:
// typed status, sizes and time, lists of upstreams.
func BenchmarkGrokNginxIngress(b *testing.B) {
	p := mustPipeline(b, StepSpec{Type: "grok", Pattern: `^%{NGINX_INGRESS}$`})
	benchmark(b, p, benchIngress)
}

// parserPair is one log format parsed two ways: by a ready parser (grok,
// or the csv step) and by a regex step written for the format by hand,
// as a pipeline without the ready parser needs it. Both are anchored,
// match the fields by the same delimiters and set the same attributes
// with the same types (the regex through its types:); where one checks a
// field more closely, its comment says so. want is part of what both set.
type parserPair struct {
	name        string
	line        string
	ready, hand StepSpec
	want        map[string]any
}

// benchParse checks, once, that the step parses the pair's line into the
// attributes the pair wants, then measures it.
func benchParse(b *testing.B, pp parserPair, s StepSpec) {
	b.Helper()
	p := mustPipeline(b, s)
	r := benchRecord(pp.line)
	if res := p.Process(&r); res.DLQ != nil {
		b.Fatal(res.DLQ)
	}
	for k, v := range pp.want {
		if got, ok := r.Attributes[k]; !ok || got != v {
			b.Fatalf("%s: %s = %#v (%T), want %#v (%T)", pp.name, k, got, got, v, v)
		}
	}
	benchmark(b, p, pp.line)
}

var benchNginxAccess = parserPair{
	name:  "nginx combined",
	line:  `203.0.113.42 - - [21/Nov/2026:10:00:00 +0000] "GET /static/css/app.3f9a1c.css HTTP/2.0" 200 18342 "https://shop.example.com/products/12345" "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15"`,
	ready: StepSpec{Type: "grok", Pattern: `^%{NGINX_ACCESS}$`},
	hand: StepSpec{Type: "regex",
		Pattern: `^(?P<remote_addr>\S+) - (?P<remote_user>\S+) \[(?P<time_local>[^\]]*)\] "(?:(?P<method>\w+) (?P<path>\S+)(?: HTTP/(?P<protocol>[0-9.]+))?|(?P<request>[^"]*))" (?P<status>\d+) (?P<body_bytes_sent>\d+) "(?P<http_referer>[^"]*)" "(?P<http_user_agent>[^"]*)"$`,
		Types:   map[string]string{"status": "int", "body_bytes_sent": "int"}},
	want: map[string]any{"remote_addr": "203.0.113.42", "path": "/static/css/app.3f9a1c.css", "protocol": "2.0",
		"status": int64(200), "body_bytes_sent": int64(18342), "http_referer": "https://shop.example.com/products/12345"},
}

// BenchmarkRegexNginxAccess parses nginx's combined format with a hand-written regex.
func BenchmarkRegexNginxAccess(b *testing.B) { benchParse(b, benchNginxAccess, benchNginxAccess.hand) }

// BenchmarkGrokNginxAccess parses the same line with %{NGINX_ACCESS}.
func BenchmarkGrokNginxAccess(b *testing.B) { benchParse(b, benchNginxAccess, benchNginxAccess.ready) }

var benchApacheAccess = parserPair{
	name:  "apache combined",
	line:  `198.51.100.7 - frank [21/Nov/2026:10:00:00 +0100] "GET /wp-content/uploads/2026/11/banner.jpg HTTP/1.1" 200 48213 "https://blog.example.org/2026/11/hello-world/" "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:120.0) Gecko/20100101 Firefox/120.0"`,
	ready: StepSpec{Type: "grok", Pattern: `^%{APACHE_ACCESS}$`},
	// Apache writes a quote inside a quoted value as \"; the referrer and
	// agent keep their quotes, as %{QS} does.
	hand: StepSpec{Type: "regex",
		Pattern: `^(?P<clientip>\S+) (?P<ident>\S+) (?P<auth>\S+) \[(?P<timestamp>[^\]]*)\] "(?:(?P<verb>\w+) (?P<request>\S+)(?: HTTP/(?P<httpversion>[0-9.]+))?|(?P<rawrequest>(?:[^"\\]|\\.)*))" (?P<response>\d+) (?P<bytes>\d+|-) (?P<referrer>"(?:[^"\\]|\\.)*") (?P<agent>"(?:[^"\\]|\\.)*")$`,
		Types:   map[string]string{"response": "int", "bytes": "int"}},
	want: map[string]any{"clientip": "198.51.100.7", "auth": "frank", "verb": "GET", "httpversion": "1.1",
		"response": int64(200), "bytes": int64(48213), "referrer": `"https://blog.example.org/2026/11/hello-world/"`},
}

// BenchmarkRegexApacheAccess parses Apache's combined format with a hand-written regex.
func BenchmarkRegexApacheAccess(b *testing.B) {
	benchParse(b, benchApacheAccess, benchApacheAccess.hand)
}

// BenchmarkGrokApacheAccess parses the same line with %{APACHE_ACCESS}.
func BenchmarkGrokApacheAccess(b *testing.B) {
	benchParse(b, benchApacheAccess, benchApacheAccess.ready)
}

var benchSyslog3164 = parserPair{
	name:  "syslog 3164",
	line:  `<34>Oct 11 22:14:15 mymachine su[123]: 'su root' failed for lonvick on /dev/pts/8`,
	ready: StepSpec{Type: "grok", Pattern: `^%{SYSLOG3164}$`},
	// The ready parser checks that the hostname is a host name or an
	// address; the regex takes any word.
	hand: StepSpec{Type: "regex",
		Pattern: `^(?:<(?P<priority>\d+)>)?(?P<timestamp>[A-Z][a-z]{2} +\d{1,2} \d{2}:\d{2}:\d{2}) (?P<hostname>\S+) (?P<appname>[^\s\[\]]+)(?:\[(?P<procid>\d+)\])?: ?(?P<message>.*)$`,
		Types:   map[string]string{"priority": "int", "procid": "int"}},
	want: map[string]any{"priority": int64(34), "timestamp": "Oct 11 22:14:15", "hostname": "mymachine", "appname": "su",
		"procid": int64(123), "message": "'su root' failed for lonvick on /dev/pts/8"},
}

// BenchmarkRegexSyslog3164 parses an RFC 3164 syslog line with a hand-written regex.
func BenchmarkRegexSyslog3164(b *testing.B) { benchParse(b, benchSyslog3164, benchSyslog3164.hand) }

// BenchmarkGrokSyslog3164 parses the same line with %{SYSLOG3164}.
func BenchmarkGrokSyslog3164(b *testing.B) { benchParse(b, benchSyslog3164, benchSyslog3164.ready) }

var benchSyslog5424 = parserPair{
	name:  "syslog 5424",
	line:  `<165>1 2026-11-21T10:00:00.123456+01:00 web-01.example.com checkout 4711 ORDER [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][origin ip="10.0.0.1" software="checkout"] order A-102938 placed`,
	ready: StepSpec{Type: "grok", Pattern: `^%{SYSLOG5424}$`},
	// The ready parser checks the timestamp's month, day and time ranges;
	// the regex its form.
	hand: StepSpec{Type: "regex",
		Pattern: `^<(?P<priority>\d+)>(?P<version>\d+) (?:-|(?P<timestamp>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)) (?:-|(?P<hostname>\S+)) (?:-|(?P<appname>\S+)) (?:-|(?P<procid>\S+)) (?:-|(?P<msgid>\S+)) (?:-|(?P<structured_data>(?:\[(?:[^\]\\]|\\.)*\])+))(?: (?P<message>.*))?$`,
		Types:   map[string]string{"priority": "int", "version": "int"}},
	want: map[string]any{"priority": int64(165), "version": int64(1), "timestamp": "2026-11-21T10:00:00.123456+01:00",
		"hostname": "web-01.example.com", "procid": "4711", "msgid": "ORDER",
		"structured_data": `[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][origin ip="10.0.0.1" software="checkout"]`,
		"message":         "order A-102938 placed"},
}

// BenchmarkRegexSyslog5424 parses an RFC 5424 syslog line with a hand-written regex.
func BenchmarkRegexSyslog5424(b *testing.B) { benchParse(b, benchSyslog5424, benchSyslog5424.hand) }

// BenchmarkGrokSyslog5424 parses the same line with %{SYSLOG5424}.
func BenchmarkGrokSyslog5424(b *testing.B) { benchParse(b, benchSyslog5424, benchSyslog5424.ready) }

var benchEnvoyAccess = parserPair{
	name:  "envoy",
	line:  `[2026-11-21T10:00:00.123Z] "GET /api/v1/products/12345?ref=home HTTP/1.1" 200 - 0 5123 12 11 "10.0.0.1" "curl/8.0.1" "9f2c1e4b-7a6d-4c3e-8f9a-0b1c2d3e4f5a" "shop.example.com" "10.244.2.31:8080"`,
	ready: StepSpec{Type: "grok", Pattern: `^%{ENVOY_ACCESS}$`},
	hand: StepSpec{Type: "regex",
		Pattern: `^\[(?P<start_time>[^\]]*)\] "(?P<method>\S+) (?P<path>\S+) (?P<protocol>[^"]*)" (?P<response_code>\d+) (?P<response_flags>\S+) (?P<bytes_received>\d+) (?P<bytes_sent>\d+) (?P<duration>\d+) (?:-|(?P<upstream_service_time>\d+)) "(?P<x_forwarded_for>[^"]*)" "(?P<user_agent>[^"]*)" "(?P<request_id>[^"]*)" "(?P<authority>[^"]*)" "(?P<upstream_host>[^"]*)"$`,
		Types: map[string]string{"response_code": "int", "bytes_received": "int", "bytes_sent": "int",
			"duration": "int", "upstream_service_time": "int"}},
	want: map[string]any{"start_time": "2026-11-21T10:00:00.123Z", "protocol": "HTTP/1.1", "response_code": int64(200),
		"response_flags": "-", "bytes_sent": int64(5123), "upstream_service_time": int64(11), "upstream_host": "10.244.2.31:8080"},
}

// BenchmarkRegexEnvoyAccess parses Envoy's default access log format with a hand-written regex.
func BenchmarkRegexEnvoyAccess(b *testing.B) { benchParse(b, benchEnvoyAccess, benchEnvoyAccess.hand) }

// BenchmarkGrokEnvoyAccess parses the same line with %{ENVOY_ACCESS}.
func BenchmarkGrokEnvoyAccess(b *testing.B) { benchParse(b, benchEnvoyAccess, benchEnvoyAccess.ready) }

var benchCSVColumns = []string{"time", "tenant", "order_id", "customer", "country", "items", "amount", "currency", "status", "latency_ms"}

var benchCSVLine = parserPair{
	name:  "csv",
	line:  `2026-11-21T10:00:00.123Z,shop,A-102938,"Doe, Jane",DE,3,129.95,EUR,201,12`,
	ready: StepSpec{Type: "csv", Columns: benchCSVColumns, Types: map[string]string{"items": "int", "amount": "float", "status": "int", "latency_ms": "int"}},
	// The regex knows which column is quoted; a doubled quote inside it
	// stays doubled (the csv step unquotes it).
	hand: StepSpec{Type: "regex",
		Pattern: `^(?P<time>[^,"]*),(?P<tenant>[^,"]*),(?P<order_id>[^,"]*),"(?P<customer>(?:[^"]|"")*)",(?P<country>[^,"]*),(?P<items>[^,"]*),(?P<amount>[^,"]*),(?P<currency>[^,"]*),(?P<status>[^,"]*),(?P<latency_ms>[^,"]*)$`,
		Types:   map[string]string{"items": "int", "amount": "float", "status": "int", "latency_ms": "int"}},
	want: map[string]any{"time": "2026-11-21T10:00:00.123Z", "customer": "Doe, Jane", "items": int64(3), "amount": 129.95,
		"status": int64(201), "latency_ms": int64(12)},
}

// BenchmarkRegexCSV parses a ten-column CSV line with a hand-written regex.
func BenchmarkRegexCSV(b *testing.B) { benchParse(b, benchCSVLine, benchCSVLine.hand) }

// BenchmarkCSV parses the same line with the csv step.
func BenchmarkCSV(b *testing.B) { benchParse(b, benchCSVLine, benchCSVLine.ready) }

// TestParserPairsAgree: the ready parser and the hand-written regex of
// each benchmarked format set the same attributes, with the same types.
func TestParserPairsAgree(t *testing.T) {
	for _, pp := range []parserPair{benchNginxAccess, benchApacheAccess, benchSyslog3164, benchSyslog5424, benchEnvoyAccess, benchCSVLine} {
		var got [2]map[string]any
		for i, s := range []StepSpec{pp.ready, pp.hand} {
			r := benchRecord(pp.line)
			if res := mustPipeline(t, s).Process(&r); res.DLQ != nil {
				t.Fatalf("%s: %v", pp.name, res.DLQ)
			}
			got[i] = r.Attributes
		}
		if !maps.Equal(got[0], got[1]) {
			t.Errorf("%s:\nready %#v\nhand  %#v", pp.name, got[0], got[1])
		}
		for k, v := range pp.want {
			if got[0][k] != v {
				t.Errorf("%s: %s = %#v, want %#v", pp.name, k, got[0][k], v)
			}
		}
	}
}
