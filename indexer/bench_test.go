package indexer

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/internal/eslite"
	"github.com/sluicelogs/sluice/internal/kafkatest"
	"github.com/sluicelogs/sluice/schemas"
)

// benchRecords returns n parsed records as the router writes them: Avro
// single-object, a ~300-byte JSON log line with its parsed attributes, and
// the Kubernetes metadata of a typical pod.
func benchRecords(b testing.TB, n int) []*kgo.Record {
	b.Helper()
	out := make([]*kgo.Record, n)
	now := time.Now().UTC()
	for i := range out {
		msg := fmt.Sprintf(`{"level":"info","ts":"%s","msg":"request served","http":{"method":"GET","path":"/api/v1/carts/%d","status":200},"duration_ms":12.5,"user":"u-%d","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}`,
			now.Format(time.RFC3339Nano), i, i%1000)
		r := schemas.Record{
			ID: fmt.Sprintf("node-1/%016x", i), Timestamp: now, ObservedTimestamp: now, Stream: "stdout", Log: msg,
			Kubernetes: schemas.Kubernetes{
				NamespaceName: "shop", PodName: "cart-7d9f8b6c5-x2x9z", PodID: "8a4c0f5e-1111-2222-3333-444455556666",
				ContainerName: "cart", DockerID: "3b2a1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b", Host: "node-1",
				Labels: map[string]string{"app": "cart", "app.kubernetes.io/name": "cart", "app.kubernetes.io/part-of": "shop", "pod-template-hash": "7d9f8b6c5"},
			},
			Attributes: map[string]any{"level": "info", "msg": "request served", "http.method": "GET",
				"http.path": fmt.Sprintf("/api/v1/carts/%d", i), "http.status": int64(200), "duration_ms": 12.5,
				"user": fmt.Sprintf("u-%d", i%1000), "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"},
			Source: schemas.Source{Path: "/var/log/containers/cart-7d9f8b6c5-x2x9z_shop_cart-3b2a.log", Offset: int64(i) * 400, Format: "cri", Shipper: "v0.3.0"},
		}
		v, err := schemas.AppendSingleObject(nil, &r)
		if err != nil {
			b.Fatal(err)
		}
		out[i] = &kgo.Record{Topic: "logs.parsed.shop", Partition: int32(i % 3), Offset: int64(i), Timestamp: now, Value: v}
	}
	return out
}

// BenchmarkDocuments measures the indexer's per-record work on one core:
// decode the Kafka record, pick the index, write the bulk action and the
// document into a bulk body.
func BenchmarkDocuments(b *testing.B) {
	ix, err := New(testConfig(b, []string{"127.0.0.1:9092"}, "http://127.0.0.1:9200", nil), Options{})
	if err != nil {
		b.Fatal(err)
	}
	recs := benchRecords(b, 1024)
	var (
		w     docWriter
		batch batch
		bytes int64
		ctx   = context.Background()
		ti    = ix.topicInfo(map[string]topicInfo{}, "logs.parsed.shop")
	)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		ix.add(ctx, &batch, &w, recs[i%len(recs)], ticket{}, ti)
		if len(batch.buf) >= 5<<20 {
			bytes += int64(len(batch.buf))
			batch.reset()
		}
	}
	bytes += int64(len(batch.buf))
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "docs/s")
	b.ReportMetric(float64(bytes)/float64(b.N), "body-bytes/doc")
}

// BenchmarkEndToEnd runs the indexer against an in-process Kafka holding
// b.N records and an Elasticsearch fake that answers every bulk request
// without storing (a fast sink), from start to every offset committed.
// docs/cpu-s counts the CPU time of the whole process, the in-process Kafka
// and the fake included, so the indexer alone does better.
func BenchmarkEndToEnd(b *testing.B) {
	n := max(b.N, 20_000)
	c := testCluster(b, "logs.parsed.shop", "logs.dlq.shop")
	es := eslite.Start(b, eslite.Discard())
	cl := kafkatest.Client(b, c, kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(100_000))
	recs := benchRecords(b, n)
	for _, r := range recs {
		r.Partition, r.Offset = 0, 0
		cl.Produce(context.Background(), r, func(_ *kgo.Record, err error) {
			if err != nil {
				b.Error(err)
			}
		})
	}
	if err := cl.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	cfg := testConfig(b, c.ListenAddrs(), es.URL(), map[string]string{
		"SLUICE_INDEXER_FLUSH_BYTES": "5242880", "SLUICE_INDEXER_FLUSH_INTERVAL": "200ms", "SLUICE_INDEXER_WORKERS": "4",
	})
	var before, after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	b.ResetTimer()
	start := time.Now()
	_, _, stop := runIndexer(b, cfg)
	deadline := time.Now().Add(5 * time.Minute)
	for !committedAll(b, cl, "sluice-indexer", "logs.parsed.shop") {
		if time.Now().After(deadline) {
			b.Fatal("not every offset committed within 5 minutes")
		}
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	stop()
	cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	if got := es.Stats().Items; got < int64(n) {
		b.Fatalf("the sink saw %d documents of %d", got, n)
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "docs/s")
	b.ReportMetric(float64(n)/cpu.Seconds(), "docs/cpu-s")
	b.ReportMetric(0, "ns/op")
}
