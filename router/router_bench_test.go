package router

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/schemas"
)

// process turns one raw record into the records to produce, outside any
// joining of lines (for the benchmark).
func (rt *Router) process(ctx context.Context, r *kgo.Record) []*kgo.Record {
	var j joiner
	out := rt.handle(ctx, "bench", r, &j, nil)
	for _, g := range j.all() {
		out = append(out, g.run(rt, nil)...)
	}
	return out
}

// BenchmarkRouterRecord measures the router's whole per-record work, as a
// records/s figure for one core: decode the raw record (Avro single-object,
// as the shipper writes it), run the tenant's pipeline, encode the result
// (or the dead letter). Kafka I/O and transactions are not included: they
// are the broker's and the client's, amortised over batches.
func BenchmarkRouterRecord(b *testing.B) {
	for _, bc := range []struct {
		name     string
		pipeline string // "" = pass-through
		log      string
	}{
		{"pass-through", "", benchJSON},
		{"json-two-rewrites", "tenant: bench\nversion: 1\nsteps:\n  - json: {field: log}\n  - rename: {from: msg, to: message}\n  - remove: {fields: [ts]}\n", benchJSON},
		{"regex", "tenant: bench\nversion: 1\nsteps:\n  - regex:\n      field: log\n      pattern: '^(?P<client>\\S+) \\S+ \\S+ \\[(?P<time>[^\\]]+)\\] \"(?P<method>[A-Z]+) (?P<path>[^ \"]+) [^\"]*\" (?P<status>\\d{3}) (?P<bytes>\\d+) \"(?P<referer>[^\"]*)\" \"(?P<agent>[^\"]*)\"'\n", benchAccess},
	} {
		b.Run(bc.name, func(b *testing.B) {
			rt, err := New(routerConfig(b, []string{"127.0.0.1:9092"}, nil), Options{Registerer: prometheus.NewRegistry()})
			if err != nil {
				b.Fatal(err)
			}
			if bc.pipeline != "" {
				rt.pipes.apply("bench", []byte(bc.pipeline), false)
				if v := rt.pipes.get("bench").Version; v != 1 {
					b.Fatalf("pipeline not loaded (version %d)", v)
				}
			}
			rec := benchRecord(bc.log)
			rec.Tenant = "bench"
			v, err := schemas.AppendSingleObject(nil, &rec)
			if err != nil {
				b.Fatal(err)
			}
			in := &kgo.Record{Topic: "logs.raw.bench", Key: []byte("c1"), Value: v, Timestamp: time.Now()}
			ctx := context.Background()
			b.SetBytes(int64(len(v)))
			b.ReportAllocs()
			for b.Loop() {
				out := rt.process(ctx, in)
				if len(out) != 1 || out[0].Topic != "logs.parsed.bench" {
					b.Fatalf("unexpected output %v", out)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
