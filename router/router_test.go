package router

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sethvargo/go-envconfig"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/internal/config"
	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/internal/kafkatest"
	"github.com/sluicelogs/sluice/internal/testwait"
	"github.com/sluicelogs/sluice/schemas"
)

// routerCluster starts an in-process Kafka with the raw, parsed and dead-
// letter topics of the given tenants.
func routerCluster(t testing.TB, tenants ...string) *kfake.Cluster {
	t.Helper()
	var topics, state []string
	for _, tn := range tenants {
		topics = append(topics, "logs.raw."+tn, "logs.parsed."+tn, "logs.dlq."+tn)
		state = append(state, "logs.config."+tn, "logs.status."+tn)
	}
	return kafkatest.Cluster(t, kafkatest.Topics(2, topics...), kafkatest.Topics(1, state...))
}

func routerConfig(t testing.TB, brokers []string, env map[string]string) Config {
	t.Helper()
	vars := map[string]string{
		"SLUICE_KAFKA_BROKERS":           strings.Join(brokers, ","),
		"SLUICE_ROUTER_ID":               "r1",
		"SLUICE_ROUTER_RESCAN_INTERVAL":  "200ms",
		"SLUICE_ROUTER_STATUS_HEARTBEAT": "1m",
		"SLUICE_ROUTER_TENANT_RETRY_MAX": "1s",
	}
	for k, v := range env {
		vars[k] = v
	}
	var cfg Config
	if err := config.LoadFrom(context.Background(), &cfg, envconfig.MapLookuper(vars)); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startRouter runs a router in the background until the test ends.
func startRouter(t testing.TB, cfg Config) *Router {
	t.Helper()
	rt, stop := runRouter(t, cfg)
	t.Cleanup(stop)
	return rt
}

// runRouter runs a router in the background; stop ends it and checks that
// Run returned nil (it may be called more than once).
func runRouter(t testing.TB, cfg Config) (*Router, func()) {
	t.Helper()
	o := Options{Registerer: prometheus.NewRegistry()}
	if testing.Verbose() {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	rt, err := New(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	var once sync.Once
	return rt, func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("router did not stop within 30s")
			}
		})
	}
}

func apply(t testing.TB, cl *kgo.Client, doc string) {
	t.Helper()
	if _, err := ApplyPipeline(context.Background(), cl, kafka.Topics{Prefix: "logs"}, []byte(doc)); err != nil {
		t.Fatalf("apply: %v", err)
	}
}

// output is what a read_committed consumer saw on parsed and dead-letter
// topics.
type output struct {
	mu      sync.Mutex
	parsed  map[string][]schemas.Record // by topic
	dlq     map[string][]schemas.DeadLetter
	records int
}

func consumeOutputs(t testing.TB, brokers []string, tenants ...string) (*output, func(time.Duration, string, func(*output) bool)) {
	var topics []string
	for _, tn := range tenants {
		topics = append(topics, "logs.parsed."+tn, "logs.dlq."+tn)
	}
	cl := kafkatest.ClientAt(t, brokers, kgo.ConsumeTopics(topics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(50*time.Millisecond))
	out := &output{parsed: map[string][]schemas.Record{}, dlq: map[string][]schemas.DeadLetter{}}
	dec := schemas.NewDecoder()
	wait := func(timeout time.Duration, what string, cond func(*output) bool) {
		t.Helper()
		testwait.For(t, timeout, what, func() (bool, string) {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			fs := cl.PollFetches(ctx)
			cancel()
			fs.EachRecord(func(r *kgo.Record) {
				out.mu.Lock()
				defer out.mu.Unlock()
				out.records++
				if strings.Contains(r.Topic, ".dlq.") {
					var d schemas.DeadLetter
					if err := json.Unmarshal(r.Value, &d); err != nil {
						t.Errorf("dead letter is not JSON: %v", err)
					}
					out.dlq[r.Topic] = append(out.dlq[r.Topic], d)
					return
				}
				rec, _, err := dec.Decode(context.Background(), r.Value)
				if err != nil {
					t.Errorf("decode parsed record: %v", err)
				}
				out.parsed[r.Topic] = append(out.parsed[r.Topic], rec)
			})
			out.mu.Lock()
			defer out.mu.Unlock()
			reasons := map[string]int{}
			for _, ds := range out.dlq {
				for _, d := range ds {
					reasons[d.Reason]++
				}
			}
			return cond(out), fmt.Sprintf("%d records so far; dead letters by reason: %v", out.records, reasons)
		})
	}
	return out, wait
}

// waitVersionMetric waits until rt reports version v of tenant's pipeline
// in force.
func waitVersionMetric(t testing.TB, rt *Router, tenant string, v float64) {
	t.Helper()
	testwait.For(t, 20*time.Second, fmt.Sprintf("version %v of %s's pipeline in force", v, tenant), func() (bool, string) {
		got := testutil.ToFloat64(rt.m.version.WithLabelValues(tenant))
		return got == v, fmt.Sprintf("version %v", got)
	})
}

func produceLines(t testing.TB, cl *kgo.Client, tenant string, from, n int) {
	t.Helper()
	var rs []*kgo.Record
	for i := from; i < from+n; i++ {
		line := fmt.Sprintf(`{"seq":%d,"level":"info","msg":"hello from %s"}`, i, tenant)
		rs = append(rs, &kgo.Record{Topic: "logs.raw." + tenant, Key: []byte("c1"), Value: []byte(line)})
	}
	kafkatest.Produce(t, cl, rs...)
}

const jsonPipeline = `tenant: %s
version: %d
steps:
  - json: {field: log}
  - set: {field: parsed_by, value: v%d}
`

// TestTenantIsolation: three tenants; one applies a pipeline that fails
// validation, then one that fails at run time. The other two keep flowing
// and the broken tenant keeps being served by its last good version.
func TestTenantIsolation(t *testing.T) {
	cluster := routerCluster(t, "alpha", "beta", "gamma")
	brokers := cluster.ListenAddrs()
	cl := kafkatest.ClientAt(t, brokers)
	rt := startRouter(t, routerConfig(t, brokers, nil))
	// A version is retired after failing on retireMinRecords records in a
	// row over retireMinWindow; smaller here.
	const minRecords = 50
	rt.pipes.mu.Lock()
	rt.pipes.minRecords, rt.pipes.minWindow = minRecords, 0
	rt.pipes.mu.Unlock()
	for _, tn := range []string{"alpha", "beta", "gamma"} {
		apply(t, cl, fmt.Sprintf(jsonPipeline, tn, 1, 1))
	}
	out, wait := consumeOutputs(t, brokers, "alpha", "beta", "gamma")
	count := func(tn string) int { return len(out.parsed["logs.parsed."+tn]) }

	// Wait until every router applies version 1 before counting on it.
	for _, tn := range []string{"alpha", "beta", "gamma"} {
		waitVersionMetric(t, rt, tn, 1)
	}
	for _, tn := range []string{"alpha", "beta", "gamma"} {
		produceLines(t, cl, tn, 0, 100)
	}
	wait(30*time.Second, "the first 100 records of each tenant", func(o *output) bool {
		return count("alpha") >= 100 && count("beta") >= 100 && count("gamma") >= 100
	})

	// gamma stores a pipeline that does not validate: refused by apply, so
	// write it to the config topic directly, as a buggy tool would.
	broken := "tenant: gamma\nversion: 2\nsteps:\n  - regex: {field: log, pattern: '(unclosed'}\n"
	kafkatest.Produce(t, cl, &kgo.Record{Topic: "logs.config.gamma", Key: []byte(PipelineKey), Value: []byte(broken)})
	testwait.For(t, 20*time.Second, "the broken pipeline to be reported", func() (bool, string) {
		return testutil.ToFloat64(rt.m.loadErrors.WithLabelValues("gamma")) != 0, ""
	})
	for _, tn := range []string{"alpha", "beta", "gamma"} {
		produceLines(t, cl, tn, 100, 100)
	}
	wait(30*time.Second, "records after gamma's broken pipeline", func(o *output) bool {
		return count("alpha") >= 200 && count("beta") >= 200 && count("gamma") >= 200
	})

	// gamma applies a pipeline that fails at run time on every record.
	apply(t, cl, "tenant: gamma\nversion: 3\nsteps:\n  - json: {field: log}\n  - set: {field: x, expr: 'attributes[\"missing\"] + 1'}\n")
	waitVersionMetric(t, rt, "gamma", 3)
	for _, tn := range []string{"alpha", "beta", "gamma"} {
		produceLines(t, cl, tn, 200, 100)
	}
	// A version whose expressions fail on every record dead-letters
	// minRecords-1 of them; the next takes it out of service and version 1
	// processes the rest.
	wait(30*time.Second, "records after gamma's failing pipeline", func(o *output) bool {
		return count("alpha") >= 300 && count("beta") >= 300 && count("gamma")+len(o.dlq["logs.dlq.gamma"]) >= 300
	})
	if v := testutil.ToFloat64(rt.m.version.WithLabelValues("gamma")); v != 1 {
		t.Errorf("gamma's version in force is %v, want the last good one, 1", v)
	}
	if v := testutil.ToFloat64(rt.m.fallbacks.WithLabelValues("gamma")); v != 1 {
		t.Errorf("gamma fallbacks = %v, want 1", v)
	}
	out.mu.Lock()
	defer out.mu.Unlock()
	dlq := out.dlq["logs.dlq.gamma"]
	if len(dlq) != minRecords-1 {
		t.Errorf("gamma: %d dead letters, want %d", len(dlq), minRecords-1)
	}
	for _, d := range dlq {
		if d.Reason != ReasonExpr || d.PipelineVersion != 3 {
			t.Errorf("gamma dead letter: %+v", d)
		}
	}
	for _, tn := range []string{"alpha", "beta", "gamma"} {
		recs := out.parsed["logs.parsed."+tn]
		want := 300
		if tn == "gamma" {
			want -= len(dlq)
		}
		if len(recs) != want {
			t.Errorf("%s: %d parsed records, want exactly %d", tn, len(recs), want)
		}
		seen := map[int64]bool{}
		for _, r := range recs {
			if r.Tenant != tn || r.Attributes["parsed_by"] != "v1" || r.Attributes["level"] != "info" {
				t.Errorf("%s: record not processed by version 1: tenant %q attributes %v", tn, r.Tenant, r.Attributes)
				break
			}
			seq, _ := r.Attributes["seq"].(int64)
			seen[seq] = true
		}
		if len(seen) != want {
			t.Errorf("%s: %d distinct sequence numbers, want %d", tn, len(seen), want)
		}
	}
}

// TestDeadLetters: records a pipeline cannot process go to the tenant's
// dead-letter topic with the reason and the original payload, and never
// block the partition.
func TestDeadLetters(t *testing.T) {
	cluster := routerCluster(t, "shop")
	brokers := cluster.ListenAddrs()
	cl := kafkatest.ClientAt(t, brokers)
	rt := startRouter(t, routerConfig(t, brokers, nil))
	apply(t, cl, fmt.Sprintf(jsonPipeline, "shop", 1, 1))
	waitVersionMetric(t, rt, "shop", 1)
	rs := []*kgo.Record{
		{Topic: "logs.raw.shop", Value: []byte(`{"seq":1}`)},
		{Topic: "logs.raw.shop", Value: []byte("not json at all")},
		{Topic: "logs.raw.shop", Value: []byte{0xff, 0xfe, 'x'}},
		{Topic: "logs.raw.shop", Value: []byte(`{"seq":2}`)},
	}
	kafkatest.Produce(t, cl, rs...)
	out, wait := consumeOutputs(t, brokers, "shop")
	wait(30*time.Second, "2 parsed and 2 dead letters", func(o *output) bool {
		return len(o.parsed["logs.parsed.shop"]) == 2 && len(o.dlq["logs.dlq.shop"]) == 2
	})
	out.mu.Lock()
	defer out.mu.Unlock()
	for _, d := range out.dlq["logs.dlq.shop"] {
		if d.Reason != ReasonParse || d.PipelineVersion != 1 || d.Topic != "logs.raw.shop" || d.StepType != "json" {
			t.Errorf("dead letter %+v", d)
		}
	}
	if d := out.dlq["logs.dlq.shop"][1]; d.PayloadEncoding != "base64" {
		t.Errorf("non-UTF-8 payload encoded as %q", d.PayloadEncoding)
	}
}

// TestMissingOutputTopic: one tenant's parsed topic does not exist. Its
// records cannot be written, so it is paused; the other tenant's records
// flow meanwhile; once the topic exists, the paused tenant's records all
// arrive, each once.
func TestMissingOutputTopic(t *testing.T) {
	cluster := routerCluster(t, "ok")
	brokers := cluster.ListenAddrs()
	cl := kafkatest.ClientAt(t, brokers)
	kafkatest.CreateTopics(t, cl, 2, "logs.raw.lost", "logs.dlq.lost")
	rt := startRouter(t, routerConfig(t, brokers, nil))
	out, wait := consumeOutputs(t, brokers, "ok", "lost")
	produceLines(t, cl, "lost", 0, 50)
	produceLines(t, cl, "ok", 0, 50)
	wait(30*time.Second, "the healthy tenant's records", func(o *output) bool {
		return len(o.parsed["logs.parsed.ok"]) >= 50
	})
	testwait.For(t, 20*time.Second, "the tenant without its parsed topic to be paused", func() (bool, string) {
		return testutil.ToFloat64(rt.m.tenantsPaused) != 0, ""
	})
	if st := tenantStatus(rt, "lost"); !strings.Contains(st.Paused, "logs.parsed.lost") {
		t.Errorf("status of the paused tenant says %q, want the missing topic", st.Paused)
	}
	produceLines(t, cl, "ok", 50, 50)
	wait(30*time.Second, "the healthy tenant's records while the other is paused", func(o *output) bool {
		return len(o.parsed["logs.parsed.ok"]) >= 100
	})
	kafkatest.CreateTopics(t, cl, 2, "logs.parsed.lost")
	wait(60*time.Second, "the paused tenant's records", func(o *output) bool {
		return len(o.parsed["logs.parsed.lost"]) >= 50
	})
	time.Sleep(500 * time.Millisecond)
	wait(time.Second, "", func(*output) bool { return true })
	out.mu.Lock()
	defer out.mu.Unlock()
	if n, m := len(out.parsed["logs.parsed.ok"]), len(out.parsed["logs.parsed.lost"]); n != 100 || m != 50 {
		t.Errorf("parsed records: ok %d (want 100), lost %d (want 50)", n, m)
	}
	// The missing topic is found before anything is produced: no
	// transaction, and so no other tenant's records, had to be replayed.
	if n := testutil.ToFloat64(rt.m.transactions.WithLabelValues("abort")); n != 0 {
		t.Errorf("%v transactions aborted, want none", n)
	}
}

// tenantStatus is what rt reports for tenant.
func tenantStatus(rt *Router, tenant string) RouterStatus {
	for _, st := range rt.pipes.statuses(rt.id) {
		if st.Tenant == tenant {
			return st
		}
	}
	return RouterStatus{}
}

// TestMultiline: continuation lines of one container (a stack trace) join
// the line before them, also when they arrive a little later, in another
// poll; another container's lines in between stay apart; bounds hold.
func TestMultiline(t *testing.T) {
	cluster := routerCluster(t, "java")
	brokers := cluster.ListenAddrs()
	cl := kafkatest.ClientAt(t, brokers)
	rt := startRouter(t, routerConfig(t, brokers, nil))
	apply(t, cl, "tenant: java\nversion: 1\nsteps:\n  - multiline: {continuation: '^(\\s+at |Caused by: |\\s+\\.\\.\\. )', max_lines: 4, max_wait: 2s}\n  - set: {field: joined, value: true}\n")
	waitVersionMetric(t, rt, "java", 1)
	send := func(key string, lines ...string) {
		t.Helper()
		var rs []*kgo.Record
		for _, l := range lines {
			rs = append(rs, &kgo.Record{Topic: "logs.raw.java", Key: []byte(key), Value: []byte(l)})
		}
		kafkatest.Produce(t, cl, rs...)
	}
	send("c1", "Exception in thread \"main\" java.lang.IllegalStateException: boom")
	send("c2", "an unrelated line from another container")
	time.Sleep(300 * time.Millisecond) // the rest comes in a later poll
	send("c1", "\tat com.shop.Cart.add(Cart.java:42)", "\tat com.shop.Main.main(Main.java:7)", "Caused by: java.io.IOException: disk")
	send("c1", "\tat com.shop.Disk.write(Disk.java:9)", "second message") // over max_lines: a new record; then a new message
	out, wait := consumeOutputs(t, brokers, "java")
	wait(30*time.Second, "the joined records", func(o *output) bool { return len(o.parsed["logs.parsed.java"]) >= 4 })
	time.Sleep(300 * time.Millisecond)
	wait(time.Second, "", func(*output) bool { return true })
	out.mu.Lock()
	defer out.mu.Unlock()
	var got []string
	for _, r := range out.parsed["logs.parsed.java"] {
		got = append(got, r.Log)
		if r.Attributes["joined"] != true {
			t.Errorf("record not processed by the rest of the pipeline: %v", r.Attributes)
		}
	}
	want := map[string]bool{
		"Exception in thread \"main\" java.lang.IllegalStateException: boom\n\tat com.shop.Cart.add(Cart.java:42)\n\tat com.shop.Main.main(Main.java:7)\nCaused by: java.io.IOException: disk": true,
		"\tat com.shop.Disk.write(Disk.java:9)":    true,
		"second message":                           true,
		"an unrelated line from another container": true,
	}
	if len(got) != len(want) {
		t.Errorf("got %d records, want %d: %q", len(got), len(want), got)
	}
	for _, g := range got {
		if !want[g] {
			t.Errorf("unexpected record %q", g)
		}
	}
}

// TestJoinFlags: a joined record is flagged invalid_utf8 or partial when any
// of its lines is (a partial line is one whose end never came, so the
// joined message is incomplete too); the next record keeps its own flags.
func TestJoinFlags(t *testing.T) {
	ml, err := compileMultiline(&StepSpec{Continuation: `^\s+at `})
	if err != nil {
		t.Fatal(err)
	}
	var j joiner
	add := func(off int64, rec schemas.Record) *joined {
		return j.add("java", &kgo.Record{Topic: "logs.raw.java", Key: []byte("c1"), Offset: off}, rec, ml)
	}
	add(0, schemas.Record{Log: "java.lang.IllegalStateException: boom"})
	add(1, schemas.Record{Log: "\tat com.shop.Cart.add(Cart.java:42)", InvalidUTF8: true})
	add(2, schemas.Record{Log: "\tat com.shop.Main.main(Main.ja", Partial: true})
	add(3, schemas.Record{Log: "\tat com.shop.Next.run(Next.java:1)"})
	g := add(4, schemas.Record{Log: "next message"})
	if g == nil || g.lines != 4 {
		t.Fatalf("joined %v, want 4 lines", g)
	}
	if !g.rec.InvalidUTF8 || !g.rec.Partial || g.rec.Truncated {
		t.Errorf("joined record flags: invalid_utf8 %v partial %v truncated %v; want true, true, false", g.rec.InvalidUTF8, g.rec.Partial, g.rec.Truncated)
	}
	rest := j.all()
	if len(rest) != 1 || rest[0].rec.Log != "next message" || rest[0].rec.Partial || rest[0].rec.InvalidUTF8 {
		t.Errorf("next record: %+v", rest)
	}
}

// TestJoinKeepsFirstLinesMetadata: a joined record keeps the first line's
// Kubernetes metadata and its completeness (metadata), as it keeps its id:
// the lines of one container share them, save a shipper whose pod cache
// caught up between two lines.
func TestJoinKeepsFirstLinesMetadata(t *testing.T) {
	ml, err := compileMultiline(&StepSpec{Continuation: `^\s+at `})
	if err != nil {
		t.Fatal(err)
	}
	var j joiner
	add := func(off int64, rec schemas.Record) *joined {
		return j.add("java", &kgo.Record{Topic: "logs.raw.java", Key: []byte("c1"), Offset: off}, rec, ml)
	}
	first := schemas.Kubernetes{NamespaceName: "shop", PodName: "cart-0"}
	add(0, schemas.Record{ID: "a", Log: "java.lang.IllegalStateException: boom", Metadata: schemas.MetadataPartial, Kubernetes: first})
	add(1, schemas.Record{ID: "b", Log: "\tat com.shop.Cart.add(Cart.java:42)", Kubernetes: schemas.Kubernetes{
		NamespaceName: "shop", PodName: "cart-0", NamespaceLabels: map[string]string{"team": "shop"},
		ContainerImage: "cart:1", Workload: schemas.Workload{Kind: "StatefulSet", Name: "cart"},
	}})
	g := add(2, schemas.Record{ID: "c", Log: "next message"})
	if g == nil || g.lines != 2 {
		t.Fatalf("joined %v, want 2 lines", g)
	}
	k := g.rec.Kubernetes
	if g.rec.ID != "a" || g.rec.Metadata != schemas.MetadataPartial || k.PodName != "cart-0" ||
		k.NamespaceLabels != nil || k.ContainerImage != "" || k.Workload != (schemas.Workload{}) {
		t.Errorf("joined record: id %q, metadata %q, kubernetes %+v; want the first line's", g.rec.ID, g.rec.Metadata, k)
	}
}

// TestPodMetadataPassesThrough: the pod metadata of schema v3 (labels,
// namespace labels, container image, workload) and metadata partial come
// out of the parsed topic as they went into the raw one, in every input
// format, with and without a pipeline.
func TestPodMetadataPassesThrough(t *testing.T) {
	cluster := routerCluster(t, "plain", "piped")
	brokers := cluster.ListenAddrs()
	cl := kafkatest.ClientAt(t, brokers)
	rt := startRouter(t, routerConfig(t, brokers, nil))
	apply(t, cl, fmt.Sprintf(jsonPipeline, "piped", 1, 1))
	waitVersionMetric(t, rt, "piped", 1)
	in := schemas.Record{
		ID:        "pod-1",
		Timestamp: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC),
		Stream:    "stdout",
		Log:       `{"msg":"hello"}`,
		Metadata:  schemas.MetadataPartial,
		Kubernetes: schemas.Kubernetes{
			NamespaceName:   "shop",
			PodName:         "cart-7d9f8b6c5-x2k4q",
			ContainerName:   "cart",
			Labels:          map[string]string{"app.kubernetes.io/name": "cart"},
			Annotations:     map[string]string{"sluice.io/parser": "json"},
			NamespaceLabels: map[string]string{"team": "shop", "kubernetes.io/metadata.name": "shop"},
			ContainerImage:  "registry.example.com/shop/cart:1.4.2",
			Workload:        schemas.Workload{Kind: "Deployment", Name: "cart"},
		},
	}
	var rs []*kgo.Record
	for _, tenant := range []string{"plain", "piped"} {
		avro, err := schemas.AppendSingleObject(nil, &in)
		if err != nil {
			t.Fatal(err)
		}
		js, err := schemas.AppendJSON(nil, &in)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range [][]byte{avro, js} {
			rs = append(rs, &kgo.Record{Topic: "logs.raw." + tenant, Key: []byte("c1"), Value: v})
		}
	}
	kafkatest.Produce(t, cl, rs...)
	out, wait := consumeOutputs(t, brokers, "plain", "piped")
	wait(30*time.Second, "2 parsed records per tenant", func(o *output) bool {
		return len(o.parsed["logs.parsed.plain"]) == 2 && len(o.parsed["logs.parsed.piped"]) == 2
	})
	out.mu.Lock()
	defer out.mu.Unlock()
	for topic, recs := range out.parsed {
		for _, got := range recs {
			if got.Log != in.Log || got.Metadata != schemas.MetadataPartial ||
				!reflect.DeepEqual(got.Kubernetes, in.Kubernetes) {
				t.Errorf("%s: got log %q, metadata %q, kubernetes %+v;\nwant %q, %q, %+v", topic, got.Log, got.Metadata, got.Kubernetes, in.Log, in.Metadata, in.Kubernetes)
			}
			if piped := topic == "logs.parsed.piped"; piped != (got.Attributes["parsed_by"] == "v1") {
				t.Errorf("%s: attributes %v", topic, got.Attributes)
			}
		}
	}
}

// TestNewTopicPickedUp: a tenant whose raw topic is created after the
// router started is consumed within the rescan interval.
func TestNewTopicPickedUp(t *testing.T) {
	cluster := routerCluster(t, "early")
	brokers := cluster.ListenAddrs()
	cl := kafkatest.ClientAt(t, brokers)
	rt := startRouter(t, routerConfig(t, brokers, nil))
	produceLines(t, cl, "early", 0, 5)
	out, wait := consumeOutputs(t, brokers, "early", "late")
	wait(20*time.Second, "the first tenant's records", func(o *output) bool { return len(o.parsed["logs.parsed.early"]) == 5 })
	kafkatest.CreateTopics(t, cl, 2, "logs.raw.late", "logs.parsed.late", "logs.dlq.late")
	produceLines(t, cl, "late", 0, 5)
	start := time.Now()
	testwait.For(t, 20*time.Second, "the new tenant's records to be routed", func() (bool, string) {
		n := testutil.ToFloat64(rt.m.recordsOut.WithLabelValues("late"))
		return n >= 5, fmt.Sprintf("%v of 5 routed", n)
	})
	t.Logf("new topic routed after %s", time.Since(start).Round(10*time.Millisecond))
	wait(20*time.Second, "the new tenant's records", func(o *output) bool { return len(o.parsed["logs.parsed.late"]) == 5 })
	_ = out
}

// TestOversizedRecord: a record too large to produce once processed goes
// to the dead-letter topic (its payload cut to fit), and the tenant's next
// records flow; before, it stalled the tenant for good.
func TestOversizedRecord(t *testing.T) {
	cluster := routerCluster(t, "big")
	brokers := cluster.ListenAddrs()
	cl := kafkatest.ClientAt(t, brokers, kgo.ProducerBatchMaxBytes(4<<20))
	adm := kadm.NewClient(cl)
	// The processed record must fit the topic's own limit, not Kafka's
	// default.
	const limit = 256 << 10
	if _, err := adm.AlterTopicConfigs(context.Background(), []kadm.AlterConfig{{Name: "max.message.bytes", Value: kadm.StringPtr(fmt.Sprint(limit))}}, "logs.parsed.big"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.AlterTopicConfigs(context.Background(), []kadm.AlterConfig{{Name: "max.message.bytes", Value: kadm.StringPtr(fmt.Sprint(4 << 20))}}, "logs.raw.big"); err != nil {
		t.Fatal(err)
	}
	startRouter(t, routerConfig(t, brokers, map[string]string{"SLUICE_ROUTER_MAX_RECORD_BYTES": fmt.Sprint(1 << 20)}))
	over := strings.Repeat("x", limit)        // fits the raw topic, not the parsed one
	huge := strings.Repeat("y", (1<<20)+4096) // more than the router decodes
	for _, v := range []string{over, huge} {
		kafkatest.Produce(t, cl, &kgo.Record{Topic: "logs.raw.big", Key: []byte("c"), Value: []byte(v)})
	}
	produceLines(t, cl, "big", 0, 3)
	out, wait := consumeOutputs(t, brokers, "big")
	wait(30*time.Second, "3 parsed records and 2 dead letters", func(o *output) bool {
		return len(o.parsed["logs.parsed.big"]) == 3 && len(o.dlq["logs.dlq.big"]) == 2
	})
	out.mu.Lock()
	defer out.mu.Unlock()
	for i, want := range []struct {
		truncated   bool
		size, bytes int
		err         string
	}{
		{false, 0, len(over), "more than logs.parsed.big takes"},
		// Cut while its batch was read, to its first kafka.CutBytes.
		{true, len(huge), kafka.CutBytes, "was cut when its batch was read"},
	} {
		d := out.dlq["logs.dlq.big"][i]
		if d.Reason != "too_large" || d.PayloadTruncated != want.truncated || d.PayloadSize != want.size || len(d.Payload) != want.bytes || !strings.Contains(d.Error, want.err) {
			t.Errorf("dead letter %d: reason %q truncated %v size %d payload %d bytes, error %q; want %+v", i, d.Reason, d.PayloadTruncated, d.PayloadSize, len(d.Payload), d.Error, want)
		}
	}
}

// TestStatus: a router publishes, per tenant, the version it applies and
// the last error, for sluice pipeline get; a router that stops cleanly
// removes its status records.
func TestStatus(t *testing.T) {
	cluster := routerCluster(t, "shop")
	brokers := cluster.ListenAddrs()
	cl := kafkatest.ClientAt(t, brokers)
	_, stop := runRouter(t, routerConfig(t, brokers, nil))
	t.Cleanup(stop)
	apply(t, cl, fmt.Sprintf(jsonPipeline, "shop", 1, 1))
	broken := "tenant: shop\nversion: 2\nsteps:\n  - regex: {field: log, pattern: '(unclosed'}\n"
	kafkatest.Produce(t, cl, &kgo.Record{Topic: "logs.config.shop", Key: []byte(PipelineKey), Value: []byte(broken)})
	statuses := func() []RouterStatus {
		snap, err := ReadStatus(context.Background(), kafkatest.ClientAt(t, brokers), "logs.status", "")
		if err != nil {
			t.Fatal(err)
		}
		own, err := ReadStatus(context.Background(), kafkatest.ClientAt(t, brokers), "logs.status.shop", "shop")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(snap.Statuses["shop"], own.Statuses["shop"]) {
			t.Logf("status topics differ (one may lag): %+v and %+v", snap.Statuses["shop"], own.Statuses["shop"])
			return nil
		}
		return snap.Statuses["shop"]
	}
	testwait.For(t, 20*time.Second, "the status to show version 1 applied and version 2 refused", func() (bool, string) {
		st := statuses()
		return len(st) == 1 && st[0].Router == "r1" && st[0].Applied == 1 && st[0].Stored == 2 && strings.Contains(st[0].Error, "not applied"), fmt.Sprintf("%+v", st)
	})
	stop()
	if st := statuses(); len(st) != 0 {
		t.Errorf("status records left after a clean stop: %+v", st)
	}
}
