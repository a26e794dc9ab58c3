package router

import (
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

// BenchmarkJSONExpressions adds a set expression and a route condition.
func BenchmarkJSONExpressions(b *testing.B) {
	p := mustPipeline(b,
		StepSpec{Type: "json"},
		StepSpec{Type: "set", Field: "who", Expr: `string(attributes["user.id"]) + "@" + tenant`},
		StepSpec{Type: "route", If: `attributes.status >= 500`, Stream: "errors"},
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
