package router

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sluicelogs/sluice/internal/kafkatest"
	"github.com/sluicelogs/sluice/schemas"
)

// TestRouteCopiesAndDefault: a route to several datasets, copy routes, a
// default route without if, and the tests: section checking copies.
func TestRouteCopiesAndDefault(t *testing.T) {
	src := `tenant: shop
version: 1
steps:
  - json: {}
  - route: {if: 'attributes.audit == true', dataset: audit, copy: true}
  - route: {if: 'attributes.level == "error"', dataset: [errors, oncall]}
  - route: {if: 'attributes.level == "debug"', dataset: debug}
  - route: {dataset: rest}
tests:
  - name: an audited error goes to errors, with copies to oncall and audit
    line: '{"level":"error","audit":true}'
    expect: {dataset: errors, copies: [audit, oncall]}
  - name: an audited info line goes to the default route, with a copy to audit
    line: '{"level":"info","audit":true}'
    expect: {dataset: rest, copies: [audit]}
  - name: a debug line goes to debug, and nowhere else
    line: '{"level":"debug"}'
    expect: {dataset: debug, copies: []}
`
	p, err := Load([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(p.Datasets(), ","); got != "audit,errors,oncall,debug,rest" {
		t.Errorf("datasets %s", got)
	}
	// A copy to where the record goes anyway is not made twice.
	p2, err := Load([]byte("tenant: shop\nversion: 1\nsteps:\n  - route: {dataset: a, copy: true}\n  - route: {dataset: a}\n"))
	if err != nil {
		t.Fatal(err)
	}
	r := schemas.Record{Log: "x"}
	if res := p2.Process(&r); res.Dataset != "a" || len(res.Copies) != 0 {
		t.Errorf("%+v", res)
	}
	// A failing test names the copies.
	bad := strings.Replace(src, "copies: [audit, oncall]", "copies: [audit]", 1)
	if _, err := Load([]byte(bad)); err == nil || !strings.Contains(err.Error(), `copies go to ["audit" "oncall"], want ["audit"]`) {
		t.Errorf("%v", err)
	}
}

// TestSampleRateAndKey: a rate keeps about that share; a key keeps or
// drops every record with its value together.
func TestSampleRateAndKey(t *testing.T) {
	p, err := Load([]byte("tenant: t\nversion: 1\nsteps:\n  - sample: {rate: 0.25}\n"))
	if err != nil {
		t.Fatal(err)
	}
	kept := 0
	for i := range 20000 {
		r := schemas.Record{ID: fmt.Sprintf("id-%d", i)}
		if !p.Process(&r).Dropped {
			kept++
		}
	}
	if kept < 4600 || kept > 5400 {
		t.Errorf("rate 0.25 kept %d of 20000", kept)
	}

	p, err = Load([]byte("tenant: t\nversion: 1\nsteps:\n  - json: {}\n  - sample: {one_in: 4, key: 'attributes.trace_id'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	traces := map[string][2]int{} // kept, dropped
	for i := range 4000 {
		trace := fmt.Sprintf("t%d", i%100)
		r := schemas.Record{ID: fmt.Sprintf("id-%d", i), Log: `{"trace_id":"` + trace + `"}`}
		c := traces[trace]
		if p.Process(&r).Dropped {
			c[1]++
		} else {
			c[0]++
		}
		traces[trace] = c
	}
	keptTraces := 0
	for trace, c := range traces {
		if c[0] > 0 && c[1] > 0 {
			t.Fatalf("trace %s split: %d kept, %d dropped", trace, c[0], c[1])
		}
		if c[0] > 0 {
			keptTraces++
		}
	}
	if keptTraces < 10 || keptTraces > 45 {
		t.Errorf("%d of 100 traces kept with one_in 4", keptTraces)
	}

	for doc, want := range map[string]string{
		"  - sample: {}\n":                         "exactly one of one_in and rate",
		"  - sample: {one_in: 2, rate: 0.5}\n":     "exactly one of one_in and rate",
		"  - sample: {rate: 1.5}\n":                "sample.rate must be above 0 and at most 1",
		"  - sample: {rate: 0.5, key: 'nosuch'}\n": "sample.key",
		"  - route: {dataset: []}\n":               "must not be an empty list",
		"  - route: {dataset: [ok, Bad.Name]}\n":   "invalid dataset",
	} {
		if _, err := Load([]byte("tenant: t\nversion: 1\nsteps:\n" + doc)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", doc, err, want)
		}
	}
}

// TestRouteCopiesProduced: a router produces each copy as a record of its
// own, in the same transaction; a copy whose dataset topic is missing is
// dead-lettered alone while the record and its other copies go.
func TestRouteCopiesProduced(t *testing.T) {
	cluster := routerCluster(t, "shop")
	brokers := cluster.ListenAddrs()
	cl := kafkatest.ClientAt(t, brokers)
	kafkatest.CreateTopics(t, cl, 2, "logs.parsed.shop.errors", "logs.parsed.shop.audit", "logs.dlq.shop.errors", "logs.dlq.shop.audit")
	apply(t, cl, `tenant: shop
version: 1
steps:
  - json: {}
  - route: {if: 'attributes.seq % 5 == 0', dataset: audit, copy: true}
  - route: {if: 'attributes.seq % 2 == 0', dataset: [errors, oncall]}
`)
	rt := startRouter(t, routerConfig(t, brokers, nil))
	out, wait := consumeOutputs(t, brokers, "shop", "shop.errors", "shop.audit")
	produceLines(t, cl, "shop", 0, 20)
	// seq 0..19: 10 even (to errors, each with a dead-lettered copy for the
	// missing oncall), 10 odd (main), 4 multiples of 5 (copies to audit).
	wait(30*time.Second, "every record and copy", func(o *output) bool {
		return len(o.parsed["logs.parsed.shop"]) >= 10 && len(o.parsed["logs.parsed.shop.errors"]) >= 10 &&
			len(o.parsed["logs.parsed.shop.audit"]) >= 4 && len(o.dlq["logs.dlq.shop"]) >= 10
	})
	time.Sleep(300 * time.Millisecond)
	wait(time.Second, "", func(*output) bool { return true })
	out.mu.Lock()
	defer out.mu.Unlock()
	for topic, want := range map[string]int{"logs.parsed.shop": 10, "logs.parsed.shop.errors": 10, "logs.parsed.shop.audit": 4} {
		if n := len(out.parsed[topic]); n != want {
			t.Errorf("%s: %d records, want %d", topic, n, want)
		}
	}
	for _, d := range out.dlq["logs.dlq.shop"] {
		if d.Reason != ReasonTopicMissing || !strings.Contains(d.Error, "oncall") {
			t.Errorf("dead letter %s: %s", d.Reason, d.Error)
		}
	}
	if n := len(out.dlq["logs.dlq.shop"]); n != 10 {
		t.Errorf("%d dead letters, want 10 (the oncall copies)", n)
	}
	// Each record produced is counted, copies included: 10 main, 10 to
	// errors, 4 copies to audit.
	if n := testutil.ToFloat64(rt.m.tenant("shop").out); n != 24 {
		t.Errorf("records_out_total %v, want 24", n)
	}
}

// TestDeprecatedStreamKey: stream, the former name of a route's dataset
// and of a test's expected dataset, is still accepted, as one name or a
// list, with a warning each where it is written; both names at once are
// an error.
func TestDeprecatedStreamKey(t *testing.T) {
	p, err := Load([]byte(`tenant: shop
version: 1
steps:
  - route: {if: 'attributes.audit == true', stream: audit}
  - route: {if: 'stream == "stderr"', stream: [errors, oncall]}
tests:
  - name: audit
    input: {log: x, stream: stdout, attributes: {audit: true}}
    expect: {stream: audit}
  - name: stderr
    input: {log: x, stream: stderr}
    expect: {dataset: errors, copies: [oncall]}
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(p.Datasets(), ","); got != "audit,errors,oncall" {
		t.Errorf("datasets %s", got)
	}
	var got []string
	for _, w := range p.Warnings() {
		got = append(got, w.String())
	}
	want := []string{
		"line 4, column 45: route.stream is deprecated: write route.dataset (same meaning)",
		"line 5, column 39: route.stream is deprecated: write route.dataset (same meaning)",
		"line 9, column 14: expect.stream is deprecated: write expect.dataset (same meaning)",
	}
	if !slices.Equal(got, want) {
		t.Errorf("warnings\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	p, err = Load([]byte("tenant: shop\nversion: 1\nsteps:\n  - route: {dataset: audit}\ntests:\n  - name: a\n    line: x\n    expect: {dataset: audit}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if w := p.Warnings(); len(w) != 0 {
		t.Errorf("dataset: warnings %v", w)
	}

	for _, tt := range []struct{ doc, want string }{
		{"steps:\n  - route: {dataset: a, stream: b}\n",
			"line 4, column 25: route: give dataset only (stream is its deprecated name), not both"},
		{"steps:\n  - route: {stream: a, dataset: a}\n",
			"line 4, column 24: route: give dataset only (stream is its deprecated name), not both"},
		{"steps:\n  - route: {dataset: a}\ntests:\n  - name: a\n    line: x\n    expect: {dataset: a, stream: a}\n",
			"line 8, column 26: expect: give dataset only (stream is its deprecated name), not both"},
	} {
		_, err := Parse([]byte("tenant: shop\nversion: 1\n" + tt.doc))
		if err == nil || err.Error() != tt.want {
			t.Errorf("%q: %v, want %q", tt.doc, err, tt.want)
		}
	}
}
