package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gz "github.com/klauspost/compress/gzip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sethvargo/go-envconfig"
	"github.com/sluicelogs/sluice/internal/config"

	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpccreds "google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// grpcClient is a LogsService client of gRPC's own library on the
// gateway's gRPC listener, closed with the test.
func grpcClient(t *testing.T, addr string, creds grpccreds.TransportCredentials) (*grpc.ClientConn, collogs.LogsServiceClient) {
	t.Helper()
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, collogs.NewLogsServiceClient(conn)
}

func withAuth(user, password string, kv ...string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), append([]string{"authorization", basic(user, password)}, kv...)...)
}

// TestGatewayOTLPGRPC: gRPC's own client calls Export, gzip-compressed and
// not, with the credentials in the authorization metadata: the records
// land as through OTLP/HTTP, a retried call keeps its ids, and each refusal
// is the status code an OTLP exporter acts on.
func TestGatewayOTLPGRPC(t *testing.T) {
	e := startEnv(t, map[string]string{"SLUICE_GATEWAY_GRPC_ADDR": "127.0.0.1:0", "SLUICE_GATEWAY_MAX_RECORDS_PER_REQUEST": "10"})
	conn, cl := grpcClient(t, e.g.GRPCAddr(), nil)
	req := otlpRequest(nil, otlpLines(5, "grpc")...)
	ctx := withAuth("shop", "shop-secret", "idempotency-key", "batch-1")
	for _, opts := range [][]grpc.CallOption{{grpc.UseCompressor(gzip.Name)}, nil} {
		resp, err := cl.Export(ctx, req, opts...)
		if err != nil || resp.GetPartialSuccess() != nil {
			t.Fatalf("export: %v %v", resp, err)
		}
	}
	recs := e.readRaw(t, "shop")
	if got := ids(recs); len(got) != 10 || len(slices.Compact(got)) != 5 {
		t.Fatalf("%d records, ids %v", len(recs), got)
	}

	// A record the gateway refuses alone is partial success.
	bad := otlpRequest(nil, otlpLines(2, "partial")...)
	for i := range maxAttributes + 1 {
		lr := bad.ResourceLogs[0].ScopeLogs[0].LogRecords[1]
		lr.Attributes = append(lr.Attributes, kv(fmt.Sprint("a", i), str("v")))
	}
	if resp, err := cl.Export(ctx, bad); err != nil {
		t.Fatalf("partial: %v", err)
	} else if ps := resp.GetPartialSuccess(); ps.GetRejectedLogRecords() != 1 || ps.GetErrorMessage() == "" {
		t.Fatalf("partial success %v", ps)
	}

	for name, tc := range map[string]struct {
		ctx    context.Context
		method string
		msg    proto.Message
		want   codes.Code
	}{
		"bad password":     {withAuth("shop", "nope"), grpcExportPath, req, codes.Unauthenticated},
		"unknown tenant":   {withAuth("nobody", "nope"), grpcExportPath, req, codes.Unauthenticated},
		"no credentials":   {context.Background(), grpcExportPath, req, codes.Unauthenticated},
		"unknown method":   {ctx, "/opentelemetry.proto.collector.logs.v1.LogsService/Nope", req, codes.Unimplemented},
		"too many records": {ctx, grpcExportPath, otlpRequest(nil, otlpLines(11, "many")...), codes.ResourceExhausted},
		"not a request":    {ctx, grpcExportPath, wrapperspb.String("x"), codes.InvalidArgument},
	} {
		var resp collogs.ExportLogsServiceResponse
		err := conn.Invoke(tc.ctx, tc.method, tc.msg, &resp)
		if status.Code(err) != tc.want {
			t.Errorf("%s: %v, want %s", name, err, tc.want)
		}
	}
	if got, want := status.Convert(mustFail(t, cl, withAuth("shop", "nope"), req)).Message(), status.Convert(mustFail(t, cl, withAuth("nobody", "x"), req)).Message(); got != want {
		t.Errorf("bad password %q, unknown tenant %q: the answers tell them apart", got, want)
	}

	// Kafka's quota throttle: RESOURCE_EXHAUSTED with RetryInfo, which
	// OTLP exporters wait for before they retry.
	e.throttleProduce(2500)
	if _, err := cl.Export(ctx, otlpRequest(nil, otlpLines(1, "throttled")...)); err != nil {
		t.Fatalf("the throttled request: %v", err)
	}
	st := status.Convert(mustFail(t, cl, ctx, req))
	var delay time.Duration
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			delay = ri.GetRetryDelay().AsDuration()
		}
	}
	if st.Code() != codes.ResourceExhausted || delay <= 0 || delay > 3*time.Second { // 2.5 s less the time since Kafka answered
		t.Errorf("after the throttle: %s, retry delay %s", st, delay)
	}

	// HTTP/1 on the gRPC listener is told, not hung up on.
	resp, err := http.Post("http://"+e.g.GRPCAddr()+grpcExportPath, "application/grpc", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusHTTPVersionNotSupported {
		t.Errorf("HTTP/1: %d", resp.StatusCode)
	}
}

func mustFail(t *testing.T, cl collogs.LogsServiceClient, ctx context.Context, req *collogs.ExportLogsServiceRequest) error {
	t.Helper()
	_, err := cl.Export(ctx, req)
	if err == nil {
		t.Fatal("the call succeeded")
	}
	return err
}

// TestGatewayOTLPGRPCTLS: with TLS, gRPC is HTTP/2 by ALPN, and mutual TLS
// holds for it as for HTTP.
func TestGatewayOTLPGRPCTLS(t *testing.T) {
	roots, cert, env := tlsFiles(t)
	env["SLUICE_GATEWAY_GRPC_ADDR"] = "127.0.0.1:0"
	e := startEnv(t, env)
	_, cl := grpcClient(t, e.g.GRPCAddr(), grpccreds.NewTLS(&tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}}))
	if _, err := cl.Export(withAuth("shop", "shop-secret"), otlpRequest(nil, otlpLines(2, "tls")...)); err != nil {
		t.Fatalf("with a client certificate: %v", err)
	}
	_, anon := grpcClient(t, e.g.GRPCAddr(), grpccreds.NewTLS(&tls.Config{RootCAs: roots}))
	if _, err := anon.Export(withAuth("shop", "shop-secret"), otlpRequest(nil, otlpLines(2, "tls")...)); err == nil {
		t.Fatal("without a client certificate: the call succeeded")
	}
	if n := len(e.readRaw(t, "shop")); n != 2 {
		t.Fatalf("%d records", n)
	}
}

// TestExportResponseEncoding: the answer encoded by hand decodes, in
// protobuf and in OTLP/JSON, as the collector package's
// ExportLogsServiceResponse with the same fields.
func TestExportResponseEncoding(t *testing.T) {
	for _, out := range []outcome{
		{accepted: 3},
		{accepted: 1, rejected: []rejection{{index: 1, reason: reasonRecordInvalid, msg: "record 1: no body"}}},
		{rejected: []rejection{{msg: "é % \"quoted\"\n"}, {msg: "second"}}},
	} {
		want := &collogs.ExportLogsServiceResponse{}
		if len(out.rejected) > 0 {
			want.PartialSuccess = &collogs.ExportLogsPartialSuccess{RejectedLogRecords: int64(len(out.rejected)), ErrorMessage: out.message()}
		}
		var fromProto, fromJSON collogs.ExportLogsServiceResponse
		if err := proto.Unmarshal(exportResponse(out, false), &fromProto); err != nil || !proto.Equal(&fromProto, want) {
			t.Errorf("protobuf: %v, %v; want %v", &fromProto, err, want)
		}
		if err := protojson.Unmarshal(exportResponse(out, true), &fromJSON); err != nil || !proto.Equal(&fromJSON, want) {
			t.Errorf("JSON %s: %v, %v; want %v", exportResponse(out, true), &fromJSON, err, want)
		}
		b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(want)
		if string(b) != string(exportResponse(out, false)) {
			t.Errorf("protobuf bytes differ from the module's encoding")
		}
	}
}

// FuzzGRPCMessage: the reader of a unary call's length-prefixed message
// never panics, takes exactly one whole message (gunzipped when flagged),
// refuses anything else with a reason, and gives back every byte it held
// of the in-flight bounds.
func FuzzGRPCMessage(f *testing.F) {
	msg, _ := proto.Marshal(otlpRequest(nil, otlpLines(2, "fuzz")...))
	var zipped bytes.Buffer
	zw := gz.NewWriter(&zipped)
	zw.Write(msg)
	zw.Close()
	frame := func(flag byte, b []byte) []byte {
		return append(binary.BigEndian.AppendUint32([]byte{flag}, uint32(len(b))), b...)
	}
	f.Add(frame(0, msg), false)
	f.Add(frame(1, zipped.Bytes()), true)
	f.Add(frame(1, msg), true)
	f.Add(append(frame(0, msg), 0), false)
	f.Add(frame(0, msg)[:9], false)
	f.Add([]byte{0, 0xff, 0xff, 0xff, 0xff}, false)
	var cfg Config
	if err := config.LoadFrom(context.Background(), &cfg, envconfig.MapLookuper(map[string]string{
		"SLUICE_KAFKA_BROKERS": "127.0.0.1:1", "SLUICE_GATEWAY_INSECURE_TRUST_USERNAME": "true", "SLUICE_GATEWAY_MAX_BODY_BYTES": "4096", "SLUICE_GATEWAY_MAX_DECOMPRESSED_BYTES": "8192",
	})); err != nil {
		f.Fatal(err)
	}
	g, err := New(cfg, Options{Registerer: prometheus.NewRegistry()})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte, gzipped bool) {
		r := httptest.NewRequest(http.MethodPost, grpcExportPath, bytes.NewReader(body))
		if gzipped {
			r.Header.Set("Grpc-Encoding", "gzip")
		}
		c := &call{g: g, tenant: g.lim.tenant("shop")}
		got, fl := c.readGRPCMessage(r, httptest.NewRecorder())
		switch {
		case fl != nil && fl.msg == "":
			t.Fatal("a refusal without a reason")
		case fl == nil && len(body) < 5:
			t.Fatalf("%d bytes taken as a message", len(body))
		case fl == nil && int64(len(got)) > cfg.MaxDecompressedBytes:
			t.Fatalf("a message of %d bytes", len(got))
		case fl == nil && body[0] == 0 && !bytes.Equal(got, body[5:]):
			t.Fatal("the message is not the frame's payload")
		}
		c.end()
		if n := g.lim.inflight(); n != 0 {
			t.Fatalf("%d bytes still held", n)
		}
	})
}

// TestGatewayGRPCFloodingTenantBesideHealthy: on the gRPC listener, whose
// connections, streams and byte bounds all tenants share, a tenant
// flooding it with large calls from 16 goroutines is refused with
// RESOURCE_EXHAUSTED and RetryInfo, while every call of a healthy tenant
// beside it is acknowledged within the bound.
func TestGatewayGRPCFloodingTenantBesideHealthy(t *testing.T) {
	e := startEnv(t, map[string]string{
		"SLUICE_GATEWAY_GRPC_ADDR":                      "127.0.0.1:0",
		"SLUICE_GATEWAY_MAX_BODY_BYTES":                 "1048576",
		"SLUICE_GATEWAY_MAX_DECOMPRESSED_BYTES":         "1048576",
		"SLUICE_GATEWAY_MAX_INFLIGHT_BYTES":             "8388608",
		"SLUICE_GATEWAY_TENANT_MAX_INFLIGHT_BYTES":      "2097152",
		"SLUICE_GATEWAY_MAX_CONCURRENT_REQUESTS":        "64",
		"SLUICE_GATEWAY_TENANT_MAX_CONCURRENT_REQUESTS": "8",
		"SLUICE_GATEWAY_MAX_RECORDS_PER_REQUEST":        "20000",
	})
	_, flooder := grpcClient(t, e.g.GRPCAddr(), nil)
	_, healthy := grpcClient(t, e.g.GRPCAddr(), nil)
	webCtx, shopCtx := withAuth("web", "web-secret"), withAuth("shop", "shop-secret")
	// Both tenants' clients are made first: the bound is on the steady
	// state, not on a first SASL handshake.
	for _, c := range []struct {
		cl  collogs.LogsServiceClient
		ctx context.Context
	}{{flooder, webCtx}, {healthy, shopCtx}} {
		if _, err := c.cl.Export(c.ctx, otlpRequest(nil, otlpLines(1, "warm up")...)); err != nil {
			t.Fatal(err)
		}
	}
	flood := otlpRequest(nil, otlpLines(3000, "flooding line of about sixty bytes, sent over and over")...)
	var (
		stop                     atomic.Bool
		accepted, refused, other atomic.Int64
		wg                       sync.WaitGroup
		noRetryInfo              atomic.Int64
	)
	for range 16 {
		wg.Go(func() {
			for !stop.Load() {
				_, err := flooder.Export(webCtx, flood)
				switch st := status.Convert(err); {
				case err == nil:
					accepted.Add(1)
				case st.Code() == codes.ResourceExhausted:
					refused.Add(1)
					if !slices.ContainsFunc(st.Details(), func(d any) bool { _, ok := d.(*errdetails.RetryInfo); return ok }) {
						noRetryInfo.Add(1)
					}
				default:
					other.Add(1)
				}
			}
		})
	}
	time.Sleep(200 * time.Millisecond) // the flood builds up
	const requests, per = 20, 100
	var worst time.Duration
	for i := range requests {
		start := time.Now()
		resp, err := healthy.Export(shopCtx, otlpRequest(nil, otlpLines(per, fmt.Sprint("healthy ", i))...))
		d := time.Since(start)
		worst = max(worst, d)
		if err != nil || resp.GetPartialSuccess() != nil {
			t.Errorf("shop's call %d: %v %v", i, resp, err)
		}
		if d > healthyBound {
			t.Errorf("shop's call %d took %s, more than %s", i, d, healthyBound)
		}
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("shop: %d calls of %d records, worst %s; web: %d accepted, %d refused, %d other", requests, per, worst, accepted.Load(), refused.Load(), other.Load())
	if refused.Load() == 0 || other.Load() > 0 || noRetryInfo.Load() > 0 {
		t.Errorf("the flooding tenant: %d refused (%d without RetryInfo), %d other answers", refused.Load(), noRetryInfo.Load(), other.Load())
	}
	if got := len(e.readRaw(t, "shop")); got != requests*per+1 {
		t.Errorf("shop's topic has %d records, want %d", got, requests*per+1)
	}
	if got := e.g.lim.inflight(); got != 0 {
		t.Errorf("%d bytes still held", got)
	}
}
