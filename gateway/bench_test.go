package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicelogs/sluice/internal/apptest"
	common "go.opentelemetry.io/proto/otlp/common/v1"
	logs "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/protobuf/proto"
)

// benchRequest is an OTLP/HTTP protobuf request of n records as an
// application's SDK sends them: a Kubernetes resource, a scope, and
// records of a 120-byte message, a time, a severity, a trace context and
// five attributes.
func benchRequest(n int) []byte {
	res := []*common.KeyValue{
		kv("k8s.namespace.name", str("checkout")), kv("k8s.pod.name", str("cart-7d9f8b6c5d-x2x7q")),
		kv("k8s.pod.uid", str("0b7e6a4c-5d2f-4c1e-9a8b-7c6d5e4f3a2b")), kv("k8s.container.name", str("cart")),
		kv("k8s.node.name", str("node-17")), kv("k8s.deployment.name", str("cart")),
		kv("service.name", str("cart")), kv("service.version", str("1.4.2")),
	}
	recs := make([]*logs.LogRecord, n)
	start := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range recs {
		recs[i] = &logs.LogRecord{
			TimeUnixNano:         uint64(start.Add(time.Duration(i) * time.Millisecond).UnixNano()),
			ObservedTimeUnixNano: uint64(start.Add(time.Duration(i)*time.Millisecond + time.Second).UnixNano()),
			SeverityNumber:       logs.SeverityNumber_SEVERITY_NUMBER_INFO, SeverityText: "INFO",
			Body:    str(fmt.Sprintf("GET /api/cart/%06d 200 in 12.4ms user=ada@example.com items=3 total=42.50 EUR region=eu-west-1 cache=hit", i)),
			TraceId: bytes.Repeat([]byte{byte(i)}, 16), SpanId: bytes.Repeat([]byte{byte(i >> 8)}, 8), Flags: 1,
			Attributes: []*common.KeyValue{
				kv("http.request.method", str("GET")),
				kv("http.response.status_code", &common.AnyValue{Value: &common.AnyValue_IntValue{IntValue: 200}}),
				kv("url.path", str("/api/cart")),
				kv("duration_ms", &common.AnyValue{Value: &common.AnyValue_DoubleValue{DoubleValue: 12.4}}),
				kv("user.id", str("ada")),
			},
		}
	}
	b, err := proto.Marshal(otlpRequest(res, recs...))
	if err != nil {
		panic(err)
	}
	return b
}

// BenchmarkOTLPHTTP: the production binary's `sluice gateway`, at its
// defaults, takes OTLP/HTTP protobuf requests of 100 records each
// (benchRequest) from 8 concurrent clients and produces them to a kfake
// cluster with SCRAM and ACLs, answering each once Kafka acknowledged
// it. The gateway runs as a process of its own, so its CPU time and
// memory are measured alone: the clients and Kafka run in the benchmark's
// process. Reported: records per second, records per CPU-second of the
// gateway, and its peak resident set.
func BenchmarkOTLPHTTP(b *testing.B) {
	apptest.Binary(b) // built before anything is timed
	c, _ := startCluster(b)
	addr := apptest.FreeAddr(b)
	gw := apptest.Start(b, apptest.Config{Args: []string{"gateway"}, Telemetry: true, OnlyEnv: true, Env: []string{
		"SLUICE_KAFKA_BROKERS=" + strings.Join(c.ListenAddrs(), ","),
		"SLUICE_KAFKA_SASL_MECHANISM=SCRAM-SHA-512",
		"SLUICE_GATEWAY_ADDR=" + addr,
		"SLUICE_LOG_LEVEL=warn",
	}})
	if err := gw.WaitReady(context.Background(), 30*time.Second); err != nil {
		b.Fatal(err)
	}
	body := benchRequest(100)
	auth := basic("shop", "shop-secret")
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	post := func() error {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/logs", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("Authorization", auth)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("answer %d", resp.StatusCode)
		}
		return nil
	}
	// Warm up: the tenant's client is made and checked, the pools and
	// kfake's segments filled; the figures are of the steady state.
	for range 200 {
		if err := post(); err != nil {
			b.Fatalf("%v\n%s", err, gw.Output())
		}
	}
	const clients = 8
	n := max(b.N, 400)
	var (
		next   atomic.Int64
		wg     sync.WaitGroup
		failed atomic.Value
	)
	before, err := apptest.ReadProc(gw.Pid())
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if err := post(); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	after, err := apptest.ReadProc(gw.Pid())
	if err != nil {
		b.Fatal(err)
	}
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	records := float64(n * 100)
	b.ReportMetric(records/elapsed.Seconds(), "records/s")
	b.ReportMetric(records/(after.CPU-before.CPU).Seconds(), "records/cpu-s")
	b.ReportMetric(float64(after.HWM)/1e6, "peak-RSS-MB")
	b.ReportMetric(0, "ns/op")
}

func TestMain(m *testing.M) { os.Exit(apptest.Main(m)) }
