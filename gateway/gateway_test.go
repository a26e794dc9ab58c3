package gateway

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	common "go.opentelemetry.io/proto/otlp/common/v1"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/sluicelogs/sluice/schemas"
)

// TestGatewayOTelSDKExporter: the OpenTelemetry Go SDK's OTLP log exporters,
// OTLP/HTTP and OTLP/gRPC, gzip on, send through the gateway as tenant
// shop; the records land in shop's raw topic in the shipper's format, with
// the body as log, the Kubernetes resource attributes in the record's
// kubernetes fields, and the rest as attributes.
func TestGatewayOTelSDKExporter(t *testing.T) {
	auth := map[string]string{"Authorization": basic("shop", "shop-secret")}
	exporters := map[string]func(e *testEnv) (sdklog.Exporter, error){
		"http": func(e *testEnv) (sdklog.Exporter, error) {
			return otlploghttp.New(context.Background(),
				otlploghttp.WithEndpoint(e.g.Addr()), otlploghttp.WithInsecure(),
				otlploghttp.WithHeaders(auth),
				otlploghttp.WithCompression(otlploghttp.GzipCompression),
				otlploghttp.WithRetry(otlploghttp.RetryConfig{Enabled: false}))
		},
		"grpc": func(e *testEnv) (sdklog.Exporter, error) {
			return otlploggrpc.New(context.Background(),
				otlploggrpc.WithEndpoint(e.g.GRPCAddr()), otlploggrpc.WithInsecure(),
				otlploggrpc.WithHeaders(auth),
				otlploggrpc.WithCompressor("gzip"),
				otlploggrpc.WithRetry(otlploggrpc.RetryConfig{Enabled: false}))
		},
	}
	for name, newExporter := range exporters {
		t.Run(name, func(t *testing.T) {
			e := startEnv(t, map[string]string{"SLUICE_GATEWAY_GRPC_ADDR": "127.0.0.1:0"})
			exp, err := newExporter(e)
			if err != nil {
				t.Fatal(err)
			}
			testSDKExporter(t, e, exp, "otlp_"+name)
		})
	}
}

func testSDKExporter(t *testing.T, e *testEnv, exp sdklog.Exporter, endpoint string) {
	var (
		mu      sync.Mutex
		errs    []error
		ctx     = context.Background()
		started = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	)
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() }))
	res := sdkresource.NewSchemaless(
		attribute.String("k8s.namespace.name", "checkout"),
		attribute.String("k8s.pod.name", "cart-7d9f-abcde"),
		attribute.String("k8s.pod.uid", "0b7e-uid"),
		attribute.String("k8s.container.name", "cart"),
		attribute.String("k8s.node.name", "node-1"),
		attribute.String("k8s.deployment.name", "cart"),
		attribute.String("container.image.name", "registry/cart"),
		attribute.String("container.image.tag", "1.4"),
		attribute.String("service.name", "cart"),
		attribute.String("tenant", "web"), // says nothing: the credentials do
	)
	lp := sdklog.NewLoggerProvider(sdklog.WithResource(res), sdklog.WithProcessor(sdklog.NewBatchProcessor(exp)))
	logger := lp.Logger("cart/http", otellog.WithInstrumentationVersion("1.2.3"))
	const n = 50
	for i := range n {
		var r otellog.Record
		r.SetTimestamp(started.Add(time.Duration(i) * time.Millisecond))
		r.SetSeverity(otellog.SeverityWarn)
		r.SetSeverityText("WARN")
		r.SetBody(attribute.StringValue(fmt.Sprintf("request %d slow", i)))
		r.AddAttributes(attribute.Int("attempt", i), attribute.Bool("retry", i%2 == 0),
			attribute.Map("http", attribute.String("method", "GET"), attribute.Int("status", 200)))
		logger.Emit(ctx, r)
	}
	var structured otellog.Record
	structured.SetBody(attribute.MapValue(attribute.String("event", "checkout"), attribute.Int("items", 3)))
	logger.Emit(ctx, structured)
	if err := lp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(errs) > 0 {
		t.Fatalf("export errors: %v", errs)
	}
	mu.Unlock()

	recs := e.readRaw(t, "shop")
	if len(recs) != n+1 {
		t.Fatalf("%d records in logs.raw.shop, want %d", len(recs), n+1)
	}
	if web := e.readRaw(t, "web"); len(web) != 0 {
		t.Fatalf("%d records in logs.raw.web", len(web))
	}
	slices.SortFunc(recs, func(a, b schemas.Record) int { return a.Timestamp.Compare(b.Timestamp) })
	r := recs[0]
	if r.Log != "request 0 slow" || !r.Timestamp.Equal(started) || r.Tenant != "shop" || len(r.ID) != 32 {
		t.Errorf("record: log %q time %s tenant %q id %q", r.Log, r.Timestamp, r.Tenant, r.ID)
	}
	wantKube := schemas.Kubernetes{NamespaceName: "checkout", PodName: "cart-7d9f-abcde", PodID: "0b7e-uid", ContainerName: "cart",
		Host: "node-1", ContainerImage: "registry/cart:1.4", Workload: schemas.Workload{Kind: "Deployment", Name: "cart"}}
	if fmt.Sprint(r.Kubernetes) != fmt.Sprint(wantKube) {
		t.Errorf("kubernetes %+v\nwant %+v", r.Kubernetes, wantKube)
	}
	for k, want := range map[string]any{
		"severity_text": "WARN", "severity_number": int64(13), "attempt": int64(0), "retry": true,
		"http.method": "GET", "http.status": int64(200), "service.name": "cart", "tenant": "web",
		"otel.scope.name": "cart/http", "otel.scope.version": "1.2.3",
	} {
		if got := r.Attributes[k]; got != want {
			t.Errorf("attribute %s = %#v, want %#v", k, got, want)
		}
	}
	if _, ok := r.Attributes["k8s.pod.name"]; ok {
		t.Error("k8s.pod.name is an attribute besides kubernetes.pod_name")
	}
	if r.Source.Format != "otlp" || r.Source.Shipper != "sluice-gateway test" {
		t.Errorf("source %+v", r.Source)
	}
	// The record without a time: the SDK sets the observed time, which is
	// the event time then.
	var s schemas.Record
	for _, rec := range recs {
		if strings.Contains(rec.Log, "checkout") {
			s = rec
		}
	}
	if s.Log != `{"event":"checkout","items":3}` || s.Timestamp.IsZero() {
		t.Errorf("structured body: log %q time %s", s.Log, s.Timestamp)
	}
	testutilCount(t, e, `sluice_gateway_records_total{outcome="accepted",tenant="shop"}`, n+1)
	if metricValue(t, e.reg, `sluice_gateway_requests_total{code="200",endpoint="`+endpoint+`",tenant="shop"}`) == 0 {
		t.Errorf("no request counted on endpoint %s", endpoint)
	}
}

// TestGatewayOTLPJSON: OTLP's JSON encoding, with hex trace and span ids, is
// answered in JSON, and the ids are kept.
func TestGatewayOTLPJSON(t *testing.T) {
	e := startEnv(t, nil)
	body := `{"resourceLogs":[{"resource":{"attributes":[{"key":"k8s.namespace.name","value":{"stringValue":"api"}}]},
	"scopeLogs":[{"scope":{"name":"s"},"logRecords":[
	 {"timeUnixNano":"1740830400000000000","severityNumber":17,"severityText":"ERROR","body":{"stringValue":"boom"},
	  "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","unknownField":1,
	  "attributes":[{"key":"n","value":{"intValue":"42"}},{"key":"list","value":{"arrayValue":{"values":[{"stringValue":"a"},{"intValue":1}]}}}]},
	 {"observedTimeUnixNano":1740830400000000001,"body":{"kvlistValue":{"values":[{"key":"a","value":{"doubleValue":1.5}}]}}}]}]}]}`
	r := e.post(t, "/v1/logs", []byte(body), "Content-Type", "application/json", "Authorization", basic("shop", "shop-secret"))
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/json" || strings.TrimSpace(string(r.body)) != "{}" {
		t.Fatalf("answer %d %s %q", r.status, r.header.Get("Content-Type"), r.body)
	}
	recs := e.readRaw(t, "shop")
	if len(recs) != 2 {
		t.Fatalf("%d records", len(recs))
	}
	slices.SortFunc(recs, func(a, b schemas.Record) int { return strings.Compare(a.Log, b.Log) })
	a := recs[0]
	if a.Log != "boom" || a.Attributes["trace_id"] != "5b8efff798038103d269b633813fc60c" || a.Attributes["span_id"] != "eee19b7ec3c1b174" ||
		a.Attributes["n"] != int64(42) || a.Attributes["severity_number"] != int64(17) || a.Kubernetes.NamespaceName != "api" ||
		fmt.Sprint(a.Attributes["list"]) != "[a 1]" || !a.Timestamp.Equal(time.Unix(0, 1740830400000000000)) {
		t.Errorf("record %+v", a)
	}
	if b := recs[1]; b.Log != `{"a":1.5}` || !b.Timestamp.Equal(time.Unix(0, 1740830400000000001)) {
		t.Errorf("record %+v", b)
	}

	// Bad JSON, and an id that is not hex: 400 with a google.rpc.Status
	// in JSON saying why.
	for _, bad := range []string{`{"resourceLogs":[`, `{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"zz8efff798038103d269b633813fc60c"}]}]}]}`} {
		r := e.post(t, "/v1/logs", []byte(bad), "Content-Type", "application/json", "Authorization", basic("shop", "shop-secret"))
		var st struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal(r.body, &st); err != nil || r.status != http.StatusBadRequest || st.Code != 3 || st.Message == "" {
			t.Errorf("bad JSON %q: %d %q (%v)", bad, r.status, r.body, err)
		}
	}
}

// TestGatewayUnauthorized: a wrong password, an unknown user, a user name that
// is no tenant id, a malformed header, an unknown token and no
// credentials are all answered 401 with one body; nothing is written.
func TestGatewayUnauthorized(t *testing.T) {
	e := startEnv(t, map[string]string{"SLUICE_GATEWAY_TOKENS_FILE": writeTokens(t, "tok-0123456789abcdef shop shop-secret\n")})
	req, _ := proto.Marshal(otlpRequest(nil, otlpLines(3, "x")...))
	var first response
	for i, auth := range []string{
		basic("shop", "wrong"),
		basic("shop", "wrong"), // refused from the cache, alike
		basic("nobody", "nobody-secret"),
		basic("web", "shop-secret"), // another tenant's password
		basic("Not_A_Tenant", "x"),
		"Basic !!!",
		"Bearer tok-unknown-0123456789",
		"",
	} {
		r := e.post(t, "/v1/logs", req, "Content-Type", "application/x-protobuf", "Authorization", auth)
		if r.status != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%q: answer %d", auth, r.status)
		}
		if i == 0 {
			first = r
			var st rpcstatus.Status
			if err := proto.Unmarshal(r.body, &st); err != nil || st.Code != 16 {
				t.Errorf("401 body %q: %v", r.body, err)
			}
		} else if !bytes.Equal(r.body, first.body) {
			t.Errorf("%q: body %q differs from %q", auth, r.body, first.body)
		}
	}
	if recs := e.readRaw(t, "shop"); len(recs) != 0 {
		t.Errorf("%d records written", len(recs))
	}
	// Refused user names leave nothing behind.
	e.g.lim.mu.Lock()
	if n := len(e.g.lim.tenants); n != 0 {
		t.Errorf("%d tenants known after refusals only", n)
	}
	e.g.lim.mu.Unlock()
	// The token stands for shop's credentials.
	if r := e.post(t, "/v1/logs", req, "Content-Type", "application/x-protobuf", "Authorization", "Bearer tok-0123456789abcdef"); r.status != http.StatusOK {
		t.Errorf("bearer token: %d %q", r.status, r.body)
	}
	if recs := e.readRaw(t, "shop"); len(recs) != 3 {
		t.Errorf("%d records after the token's request", len(recs))
	}
	// Every refusal is counted; the cached one did not ask Kafka again.
	testutilCount(t, e, `sluice_gateway_auth_total{result="denied"}`, 8)
	testutilCount(t, e, `sluice_gateway_auth_total{result="verified"}`, 1)
}

// TestGatewayTenantFromCredentials: what a request says about its tenant changes
// nothing; shop's credentials write shop's topic only.
func TestGatewayTenantFromCredentials(t *testing.T) {
	e := startEnv(t, nil)
	req := otlpRequest([]*common.KeyValue{kv("tenant", str("web")), kv("sluice.tenant", str("web"))}, otlpLines(2, "claims web")...)
	if r := e.postOTLP(t, "shop", req); r.status != http.StatusOK {
		t.Fatalf("answer %d %q", r.status, r.body)
	}
	lines := `{"tenant":"web","log":"a record naming web"}` + "\n" + `{"log":"x","kubernetes":{"namespace_name":"web"}}`
	if r := e.post(t, "/v1/lines", []byte(lines), "Content-Type", "application/x-ndjson", "Authorization", basic("shop", "shop-secret")); r.status != http.StatusOK {
		t.Fatalf("lines: %d %q", r.status, r.body)
	}
	if web := e.readRaw(t, "web"); len(web) != 0 {
		t.Fatalf("web's topic has %d records", len(web))
	}
	recs := e.readRaw(t, "shop")
	if len(recs) != 4 {
		t.Fatalf("shop's topic has %d records", len(recs))
	}
	for _, r := range recs {
		if r.Tenant != "shop" {
			t.Errorf("record %q has tenant %q", r.Log, r.Tenant)
		}
	}
}

// TestGatewayRetryKeepsIDs: sending a request again gives its records the ids
// they had; an Idempotency-Key gives the same ids to a request whatever
// its body's encoding; another request gets other ids.
func TestGatewayRetryKeepsIDs(t *testing.T) {
	e := startEnv(t, nil)
	req := otlpRequest(nil, otlpLines(10, "retry")...)
	for range 2 {
		if r := e.postOTLP(t, "shop", req); r.status != http.StatusOK {
			t.Fatalf("answer %d", r.status)
		}
	}
	got := ids(e.readRaw(t, "shop"))
	if len(got) != 20 || len(slices.Compact(slices.Clone(got))) != 10 {
		t.Fatalf("ids after a retry: %d records, %d distinct", len(got), len(slices.Compact(slices.Clone(got))))
	}
	// The same request under a key, plain and gzip'd: one set of ids, not
	// the body's.
	b, _ := proto.Marshal(req)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(b)
	zw.Close()
	auth := basic("shop", "shop-secret")
	e.post(t, "/v1/logs", b, "Content-Type", "application/x-protobuf", "Authorization", auth, "Idempotency-Key", "batch-7")
	e.post(t, "/v1/logs", gz.Bytes(), "Content-Type", "application/x-protobuf", "Content-Encoding", "gzip", "Authorization", auth, "Idempotency-Key", "batch-7")
	all := ids(e.readRaw(t, "shop"))
	if len(all) != 40 || len(slices.Compact(slices.Clone(all))) != 20 {
		t.Fatalf("ids with a key: %d records, %d distinct", len(all), len(slices.Compact(slices.Clone(all))))
	}
	// Lines alike; a line's own id is kept.
	lines := []byte("one\ntwo\n{\"id\":\"mine\",\"log\":\"three\"}\n")
	for range 2 {
		if r := e.post(t, "/v1/lines", lines, "Authorization", auth); r.status != http.StatusOK {
			t.Fatalf("lines %d %q", r.status, r.body)
		}
	}
	all = ids(e.readRaw(t, "shop"))
	if len(all) != 46 || len(slices.Compact(slices.Clone(all))) != 23 || !slices.Contains(all, "mine") {
		t.Fatalf("ids of lines: %d records, %d distinct", len(all), len(slices.Compact(slices.Clone(all))))
	}
}

// TestGatewayBounds: a body over the size bound, with or without a length, a gzip
// bomb, and too many records are answered 413 before anything is written;
// an unknown encoding or media type 415; a gzip body that is not gzip 400.
func TestGatewayBounds(t *testing.T) {
	e := startEnv(t, map[string]string{
		"SLUICE_GATEWAY_MAX_BODY_BYTES":            "65536",
		"SLUICE_GATEWAY_MAX_DECOMPRESSED_BYTES":    "1048576",
		"SLUICE_GATEWAY_MAX_RECORDS_PER_REQUEST":   "100",
		"SLUICE_GATEWAY_MAX_INFLIGHT_BYTES":        "8388608",
		"SLUICE_GATEWAY_TENANT_MAX_INFLIGHT_BYTES": "4194304",
	})
	auth := basic("shop", "shop-secret")
	big := bytes.Repeat([]byte("a line of text\n"), 10000) // 150 KB
	if r := e.post(t, "/v1/lines", big, "Authorization", auth); r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversize body: %d %q", r.status, r.body)
	}
	// Without a Content-Length: chunked.
	req, _ := http.NewRequest(http.MethodPost, e.url+"/v1/lines", struct{ *bytes.Reader }{bytes.NewReader(big)})
	req.Header.Set("Authorization", auth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversize chunked body: %d", resp.StatusCode)
	}
	// 64 MiB of zeros gzip to 64 KB.
	var bomb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&bomb, gzip.BestCompression)
	zero := make([]byte, 1<<20)
	for range 64 {
		zw.Write(zero)
	}
	zw.Close()
	if bomb.Len() > 65536 {
		t.Fatalf("bomb of %d bytes", bomb.Len())
	}
	r := e.post(t, "/v1/logs", bomb.Bytes(), "Content-Type", "application/x-protobuf", "Content-Encoding", "gzip", "Authorization", auth)
	if r.status != http.StatusRequestEntityTooLarge || !strings.Contains(string(r.body), "DECOMPRESSED") {
		t.Errorf("gzip bomb: %d %q", r.status, r.body)
	}
	if r := e.postOTLP(t, "shop", otlpRequest(nil, otlpLines(101, "many")...)); r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("101 records: %d %q", r.status, r.body)
	}
	if r := e.post(t, "/v1/logs", []byte("x"), "Content-Type", "application/x-protobuf", "Content-Encoding", "br", "Authorization", auth); r.status != http.StatusUnsupportedMediaType {
		t.Errorf("brotli: %d", r.status)
	}
	if r := e.post(t, "/v1/logs", []byte("x"), "Content-Type", "text/xml", "Authorization", auth); r.status != http.StatusUnsupportedMediaType {
		t.Errorf("xml: %d", r.status)
	}
	if r := e.post(t, "/v1/lines", []byte("not gzip"), "Content-Encoding", "gzip", "Authorization", auth); r.status != http.StatusBadRequest {
		t.Errorf("bad gzip: %d %q", r.status, r.body)
	}
	if recs := e.readRaw(t, "shop"); len(recs) != 0 {
		t.Errorf("%d records written", len(recs))
	}
	if got := e.g.lim.inflight(); got != 0 {
		t.Errorf("%d bytes still held", got)
	}
	testutilCount(t, e, `sluice_gateway_rejections_total{reason="decompressed_too_large",tenant="shop"}`, 1)
}

// TestGatewayPartialSuccess: a record too large among good ones is rejected
// alone, and the answer says so (OTLP's partial_success); a malformed line
// among good ones likewise.
func TestGatewayPartialSuccess(t *testing.T) {
	e := startEnv(t, map[string]string{"SLUICE_GATEWAY_MAX_RECORD_BYTES": "4096", "SLUICE_GATEWAY_MAX_LOG_BYTES": "1024"})
	recs := otlpLines(5, "ok")
	recs[2].Attributes = append(recs[2].Attributes, kv("blob", str(strings.Repeat("b", 8000))))
	recs[3].Body = str(strings.Repeat("long ", 1000)) // truncated, kept
	for i := range maxAttributes {
		recs[4].Attributes = append(recs[4].Attributes, kv(fmt.Sprint("a", i), str("v")))
	}
	r := e.postOTLP(t, "shop", otlpRequest(nil, recs...))
	resp := decodeExportResponse(t, r)
	ps := resp.GetPartialSuccess()
	if r.status != http.StatusOK || ps.GetRejectedLogRecords() != 2 || !strings.Contains(ps.GetErrorMessage(), "record 2: ") ||
		!strings.Contains(ps.GetErrorMessage(), "record 4: more than 1000 attributes") {
		t.Fatalf("answer %d %v", r.status, resp)
	}
	got := e.readRaw(t, "shop")
	if len(got) != 3 {
		t.Fatalf("%d records written", len(got))
	}
	for _, rec := range got {
		if strings.HasPrefix(rec.Log, "long") && (!rec.Truncated || rec.OriginalSize != 5000 || len(rec.Log) != 1024) {
			t.Errorf("long record: truncated %v, %d of %d bytes", rec.Truncated, len(rec.Log), rec.OriginalSize)
		}
	}

	body := "{\"log\":\"good\"}\n{\"log\":5}\nnot json\n\n{\"level\":\"info\",\"msg\":\"app object\"}\n"
	lr := e.post(t, "/v1/lines", []byte(body), "Content-Type", "application/x-ndjson", "Authorization", basic("shop", "shop-secret"))
	var ans linesResponse
	if err := json.Unmarshal(lr.body, &ans); err != nil || lr.status != http.StatusOK || ans.Accepted != 2 || ans.Rejected != 2 ||
		!strings.Contains(strings.Join(ans.Errors, ";"), "line 2") || !strings.Contains(strings.Join(ans.Errors, ";"), "line 3: not a JSON object") {
		t.Fatalf("lines answer %d %q", lr.status, lr.body)
	}
	// The same as text: every line goes, as sluice produce sends them
	// (the malformed record is still refused).
	tr := e.post(t, "/v1/lines", []byte(body), "Content-Type", "text/plain", "Authorization", basic("shop", "shop-secret"))
	if err := json.Unmarshal(tr.body, &ans); err != nil || ans.Accepted != 3 || ans.Rejected != 1 {
		t.Fatalf("text answer %d %q", tr.status, tr.body)
	}
	// All bad: 400.
	if br := e.post(t, "/v1/lines", []byte("nope\n"), "Content-Type", "application/x-ndjson", "Authorization", basic("shop", "shop-secret")); br.status != http.StatusBadRequest {
		t.Fatalf("all bad: %d %q", br.status, br.body)
	}
}
