package gateway

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

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

// BenchmarkOTLPHTTP: OTLP/HTTP protobuf requests of 100 records each,
// from 8 concurrent clients, through the gateway's HTTP server and handler
// into kfake (SCRAM, ACLs), each answered once Kafka acknowledged it.
// records/cpu-s counts the CPU time of the whole process: the clients,
// the gateway and the in-process Kafka.
func BenchmarkOTLPHTTP(b *testing.B) {
	e := startEnv(b, map[string]string{"SLUICE_GATEWAY_KAFKA_LINGER": "0s"})
	body := benchRequest(100)
	auth := basic("shop", "shop-secret")
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	post := func() error {
		req, _ := http.NewRequest(http.MethodPost, e.url+"/v1/logs", bytes.NewReader(body))
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
	// Warm up: the client is made and checked, the pools and kfake's
	// segments filled; the figures are of the steady state.
	for range 200 {
		if err := post(); err != nil {
			b.Fatal(err)
		}
	}
	const clients = 8
	n := max(b.N, 400)
	var (
		next   atomic.Int64
		wg     sync.WaitGroup
		failed atomic.Value
	)
	var before, after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
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
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	records := float64(n * 100)
	b.ReportMetric(records/elapsed.Seconds(), "records/s")
	b.ReportMetric(records/cpu.Seconds(), "records/cpu-s")
	b.ReportMetric(0, "ns/op")
}
