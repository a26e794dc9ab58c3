package router

import (
	"context"
	"encoding/json"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/schemas"
)

// FuzzRouterRecord feeds arbitrary raw records through the router's whole
// record path (size bound, decode, multiline joining, the pipeline,
// encoding, dead letters) for a tenant without a pipeline and one with a
// parsing pipeline. Nothing may panic, every output must be a decodable
// record on the tenant's parsed topic or a dead letter with a reason, and
// no record may make the router allocate more than a bounded amount.
func FuzzRouterRecord(f *testing.F) {
	rec := schemas.Record{Log: `{"level":"info","msg":"hi"}`, Timestamp: time.Unix(1700000000, 0)}
	avro, err := schemas.AppendSingleObject(nil, &rec)
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range [][]byte{
		avro,
		avro[:len(avro)/2],
		[]byte(`{"log":"a line","id":"x","attributes":{"a":1}}`),
		[]byte(`{"level":"error","msg":"boom","n":[1,2,3]}`),
		[]byte("plain text line\n"),
		[]byte("\tat com.shop.Main.main(Main.java:7)"),
		[]byte("\xff\xfe invalid utf-8"),
		[]byte(strings.Repeat("x", 2<<10)),
		{0xc3, 0x01, 0, 0, 0, 0, 0, 0, 0, 0},
		{0, 0, 0, 0, 1, 0xff},
	} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	cfg := routerConfig(f, []string{"127.0.0.1:9092"}, map[string]string{"SLUICE_ROUTER_MAX_RECORD_BYTES": "65536"})
	rt, err := New(cfg, Options{Registerer: prometheus.NewRegistry()})
	if err != nil {
		f.Fatal(err)
	}
	rt.pipes.apply("parse", []byte("tenant: parse\nversion: 1\nsteps:\n"+
		"  - multiline: {continuation: '^\\s+at '}\n"+
		"  - json: {field: log, on_error: skip}\n"+
		"  - grok: {pattern: ['^%{NGINX_INGRESS}$', '^%{SYSLOG5424}$', '%{IP:ip:ip} %{INT:n:int}'], on_error: skip}\n"+
		"  - klog: {on_error: skip}\n"+
		"  - csv: {columns: [a, b, c], types: {b: bytes, c: duration}, on_error: keep_going}\n"+
		"  - timestamp: {field: a, layout: [ISO8601, unix_ms, '%d/%b/%Y:%H:%M:%S %z'], on_error: skip}\n"+
		"  - set: {field: size, expr: 'len(log)'}\n"+
		"  - route: {if: 'attributes.level == \"error\"', dataset: errors}\n"), false)
	if rt.pipes.get("parse").Version != 1 {
		f.Fatal("fuzz pipeline did not load")
	}
	dec := schemas.NewDecoder()
	f.Fuzz(func(t *testing.T, value []byte, parse bool) {
		tenant := "plain"
		if parse {
			tenant = "parse"
		}
		r := &kgo.Record{Topic: "logs.raw." + tenant, Key: []byte("c"), Value: value, Offset: 7, Timestamp: time.Now()}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		var j joiner
		outs := rt.handle(context.Background(), tenant, r, &j, nil)
		for _, g := range j.all() {
			outs = append(outs, g.run(rt, nil)...)
		}
		runtime.ReadMemStats(&after)
		// Decoding, the pipeline's copies and encoding are a few times the
		// record; the bound is far below what a decompression or expression
		// blow-up would take.
		if n := after.TotalAlloc - before.TotalAlloc; n > 16<<20 {
			t.Errorf("a %d-byte record made the router allocate %d bytes", len(value), n)
		}
		if len(outs) > 1 {
			t.Fatalf("%d outputs for one record", len(outs))
		}
		for _, out := range outs {
			switch {
			case out.Topic == "logs.dlq."+tenant:
				var d schemas.DeadLetter
				if err := json.Unmarshal(out.Value, &d); err != nil || d.Reason == "" {
					t.Fatalf("dead letter %q: %v", out.Value, err)
				}
			case strings.HasPrefix(out.Topic, "logs.parsed."+tenant):
				got, _, err := dec.Decode(context.Background(), out.Value)
				if err != nil {
					t.Fatalf("output does not decode: %v", err)
				}
				if got.Tenant != tenant || got.ID == "" {
					t.Fatalf("output tenant %q id %q", got.Tenant, got.ID)
				}
			default:
				t.Fatalf("output to %s", out.Topic)
			}
		}
	})
}
