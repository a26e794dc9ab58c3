package router

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/internal/kafkatest"
	"github.com/sluicelogs/sluice/internal/testwait"
	"github.com/sluicelogs/sluice/schemas"
)

// waitVersion waits until tenant's pipeline version v is in force.
func waitVersion(t *testing.T, rt *Router, tenant string, v int64) {
	t.Helper()
	testwait.For(t, 20*time.Second, fmt.Sprintf("version %d of %s in force", v, tenant), func() (bool, string) {
		got := rt.pipes.get(tenant).Version
		return got == v, fmt.Sprintf("version %d", got)
	})
}

// markerLatencies sends a marker record to tenant every interval until
// stop is closed, and measures for each the time from its produce to its
// being readable (read_committed) in the tenant's parsed topic.
type markerLatencies struct {
	mu   sync.Mutex
	sent map[int]time.Time
	seen map[int]time.Duration
}

func (m *markerLatencies) run(t *testing.T, brokers []string, tenant string, interval time.Duration, stop <-chan struct{}) (wait func()) {
	m.sent, m.seen = map[int]time.Time{}, map[int]time.Duration{}
	prod := kafkatest.ClientAt(t, brokers, kgo.ProducerLinger(0))
	cons := kafkatest.ClientAt(t, brokers, kgo.ConsumeTopics("logs.parsed."+tenant), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(20*time.Millisecond))
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	// Also when the test ends early: nothing may outlive it.
	t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Go(func() {
		for ctx.Err() == nil {
			cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
				rec, _, err := schemas.NewDecoder().Decode(ctx, r.Value)
				if err != nil {
					return
				}
				n, err := strconv.Atoi(strings.TrimPrefix(rec.Log, "marker "))
				if err != nil {
					return
				}
				m.mu.Lock()
				m.seen[n] = time.Since(m.sent[n])
				m.mu.Unlock()
			})
		}
	})
	wg.Go(func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			m.mu.Lock()
			m.sent[i] = time.Now()
			m.mu.Unlock()
			if err := prod.ProduceSync(ctx, &kgo.Record{Topic: "logs.raw." + tenant, Key: []byte("m"), Value: fmt.Appendf(nil, "marker %d", i)}).FirstErr(); err != nil && ctx.Err() == nil {
				t.Errorf("produce marker: %v", err)
			}
		}
	})
	return func() {
		testwait.Eventually(t, 30*time.Second, "every marker to arrive", func() (bool, string) {
			m.mu.Lock()
			defer m.mu.Unlock()
			return len(m.seen) == len(m.sent), fmt.Sprintf("%d of %d arrived", len(m.seen), len(m.sent))
		})
		cancel()
		wg.Wait()
	}
}

// check reports the fast tenant's latencies, with what the noisy tenant
// cost (its processing time and how often it was left out of a
// transaction), and fails the test when a marker was lost or the p99 is
// over 2s: the goal is well under a second, and the bound leaves room for
// a slow shared machine (and the race detector) without letting a shared
// transaction of seconds pass.
func (m *markerLatencies) check(t *testing.T, rt *Router, noisy string) {
	t.Helper()
	p50, lost := m.quantile(0.5)
	p99, _ := m.quantile(0.99)
	worst, _ := m.quantile(1)
	t.Logf("fast tenant: %d markers, p50 %s, p99 %s, max %s; %s: %.1fs of processing, left out of %v transactions",
		len(m.sent), p50, p99, worst, noisy, testutil.ToFloat64(rt.m.tenantSeconds.WithLabelValues(noisy)), testutil.ToFloat64(rt.m.throttled.WithLabelValues(noisy)))
	if lost > 0 {
		t.Errorf("%d of the fast tenant's markers never arrived", lost)
	}
	if p99 > 2*time.Second {
		t.Errorf("fast tenant p99 latency %s with %s beside it, want under 2s", p99, noisy)
	}
}

// recordCost is what processing value costs with tenant's pipeline in
// force, the least of a few runs: the tests size their load by it, so that
// it stays the same load in records per CPU-second on any machine, with or
// without the race detector.
func recordCost(t *testing.T, rt *Router, tenant string, value []byte) time.Duration {
	t.Helper()
	best := time.Duration(math.MaxInt64)
	for range 3 {
		start := time.Now()
		var j joiner
		if outs := rt.handle(context.Background(), tenant, &kgo.Record{Topic: "logs.raw." + tenant, Value: value, Timestamp: time.Now()}, &j, nil); len(outs) != 1 {
			t.Fatalf("%d outputs", len(outs))
		}
		best = min(best, time.Since(start))
	}
	t.Logf("a record of %s costs %s", tenant, best)
	return best
}

// quantile returns the q quantile of the latencies seen, and how many of
// the markers sent were never seen.
func (m *markerLatencies) quantile(q float64) (time.Duration, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ds []time.Duration
	for _, d := range m.seen {
		ds = append(ds, d)
	}
	slices.Sort(ds)
	if len(ds) == 0 {
		return 0, len(m.sent)
	}
	return ds[min(len(ds)-1, int(q*float64(len(ds))))], len(m.sent) - len(m.seen)
}

// TestSlowTenantDoesNotDelayOthers: one tenant's pipeline is expensive and
// its records keep coming in bulk, so its share of a poll takes seconds to
// process; another tenant sends one record every 100ms. The slow tenant is
// left out of the transactions it cannot finish in time and finished in
// the background, so the other tenant's records stay visible within about
// a transaction, and none of either tenant's records is lost or repeated.
func TestSlowTenantDoesNotDelayOthers(t *testing.T) {
	cluster := routerCluster(t, "slow", "fast")
	brokers := cluster.ListenAddrs()
	cl := kafkatest.ClientAt(t, brokers, kgo.ProducerBatchMaxBytes(4<<20))
	rt := startRouter(t, routerConfig(t, brokers, nil))
	// Regex steps that scan a long line again and again: legal, and
	// slow (milliseconds per record).
	var doc strings.Builder
	doc.WriteString("tenant: slow\nversion: 1\nsteps:\n")
	for i := range 20 {
		fmt.Fprintf(&doc, "  - regex: {field: log, pattern: '(?P<w%d>[a-z]+ [a-z]+ [0-9]+ zz%d)', on_error: skip}\n", i, i)
	}
	apply(t, cl, doc.String())
	waitVersion(t, rt, "slow", 1)

	line := strings.Repeat("lorem ipsum 42 ", 400) // 6 KB, no match: every step scans it all
	// Three CPU-seconds of records, in three bulks: each takes the slow
	// tenant's share of a poll well past SLUICE_ROUTER_BATCH_MAX_TIME.
	slowRecords := 3 * max(10, int(time.Second/recordCost(t, rt, "slow", []byte(line))))
	stop := make(chan struct{})
	var lat markerLatencies
	waitMarkers := lat.run(t, brokers, "fast", 100*time.Millisecond, stop)
	time.Sleep(500 * time.Millisecond) // a baseline before the load
	for b := range 3 {
		var rs []*kgo.Record
		for i := range slowRecords / 3 {
			rs = append(rs, &kgo.Record{Topic: "logs.raw.slow", Key: []byte("c"), Value: fmt.Appendf(nil, "%d %s", b*slowRecords/3+i, line)})
		}
		kafkatest.Produce(t, cl, rs...)
	}
	// Every record comes out once: parsed, or dead-lettered as
	// cost_exceeded. These records do real work (more than a sixteenth of
	// MaxRecordCost), so MaxRecordTime applies to them: on a machine loaded
	// enough that one spends more than that in its steps (a record costs
	// milliseconds alone, hundreds under a heavy make test with the race
	// detector), it is dead-lettered, as documented, and never parsed.
	out, wait := consumeOutputs(t, brokers, "slow")
	wait(300*time.Second, "the slow tenant's records", func(o *output) bool {
		return len(o.parsed["logs.parsed.slow"])+len(o.dlq["logs.dlq.slow"]) >= slowRecords
	})
	close(stop)
	waitMarkers()
	lat.check(t, rt, "slow")
	if testutil.ToFloat64(rt.m.throttled.WithLabelValues("slow")) == 0 {
		t.Error("the slow tenant was never left out of a transaction: the test did not load the router")
	}
	time.Sleep(300 * time.Millisecond)
	wait(time.Second, "", func(*output) bool { return true })
	out.mu.Lock()
	defer out.mu.Unlock()
	seen := map[string]bool{}
	note := func(n string) {
		if seen[n] {
			t.Errorf("record %s of the slow tenant delivered twice", n)
		}
		seen[n] = true
	}
	for _, r := range out.parsed["logs.parsed.slow"] {
		n, _, _ := strings.Cut(r.Log, " ")
		note(n)
	}
	for _, d := range out.dlq["logs.dlq.slow"] {
		if d.Reason != ReasonCostExceeded {
			t.Errorf("a record of the slow tenant dead-lettered as %s: %s", d.Reason, d.Error)
		}
		n, _, _ := strings.Cut(d.Payload, " ")
		note(n)
	}
	if n := len(out.dlq["logs.dlq.slow"]); n > 0 {
		t.Logf("%d of %d records of the slow tenant spent more than MaxRecordTime (%s) in their steps: dead-lettered as cost_exceeded", n, slowRecords, MaxRecordTime)
	}
	if len(seen) != slowRecords {
		t.Errorf("slow tenant: %d distinct records, want %d", len(seen), slowRecords)
	}
}

// TestMultilineWaitHoldsOnlyItsTenant: a tenant's multiline record waits
// up to max_wait for continuation lines; another tenant's records are
// meanwhile committed at once.
func TestMultilineWaitHoldsOnlyItsTenant(t *testing.T) {
	cluster := routerCluster(t, "java", "other")
	brokers := cluster.ListenAddrs()
	cl := kafkatest.ClientAt(t, brokers)
	rt := startRouter(t, routerConfig(t, brokers, nil))
	apply(t, cl, "tenant: java\nversion: 1\nsteps:\n  - multiline: {continuation: '^\\s+at ', max_wait: 5s}\n")
	waitVersion(t, rt, "java", 1)
	out, wait := consumeOutputs(t, brokers, "java", "other")

	start := time.Now()
	if err := cl.ProduceSync(context.Background(),
		&kgo.Record{Topic: "logs.raw.java", Key: []byte("c"), Value: []byte("Exception in thread main")},
		&kgo.Record{Topic: "logs.raw.other", Key: []byte("c"), Value: []byte("hello")},
	).FirstErr(); err != nil {
		t.Fatal(err)
	}
	wait(10*time.Second, "the other tenant's record", func(o *output) bool { return len(o.parsed["logs.parsed.other"]) == 1 })
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the other tenant's record took %s, held by a multiline wait of 5s", d)
	}
	// A continuation line within max_wait still joins.
	kafkatest.Produce(t, cl, &kgo.Record{Topic: "logs.raw.java", Key: []byte("c"), Value: []byte("\tat Main.main(Main.java:1)")})
	wait(15*time.Second, "the joined record", func(o *output) bool { return len(o.parsed["logs.parsed.java"]) == 1 })
	out.mu.Lock()
	defer out.mu.Unlock()
	if got := out.parsed["logs.parsed.java"][0].Log; got != "Exception in thread main\n\tat Main.main(Main.java:1)" {
		t.Errorf("joined record %q", got)
	}
	if n := testutil.ToFloat64(rt.m.multilineHolds.WithLabelValues("java")); n == 0 {
		t.Error("no multiline hold counted")
	}
}

// TestMissingDatasetTopic: records routed to a dataset whose topic does not
// exist are dead-lettered with reason topic_missing; the tenant's other
// records and the other tenants flow, and no transaction is aborted.
func TestMissingDatasetTopic(t *testing.T) {
	cluster := routerCluster(t, "shop", "calm")
	brokers := cluster.ListenAddrs()
	cl := kafkatest.ClientAt(t, brokers)
	rt := startRouter(t, routerConfig(t, brokers, nil))
	apply(t, cl, "tenant: shop\nversion: 1\nsteps:\n  - route: {if: 'log contains \"audit\"', dataset: audit}\n")
	waitVersion(t, rt, "shop", 1)
	out, wait := consumeOutputs(t, brokers, "shop", "calm")
	var rs []*kgo.Record
	for i := range 10 {
		rs = append(rs, &kgo.Record{Topic: "logs.raw.shop", Key: []byte("c"), Value: fmt.Appendf(nil, "audit %d", i)},
			&kgo.Record{Topic: "logs.raw.shop", Key: []byte("c"), Value: fmt.Appendf(nil, "plain %d", i)},
			&kgo.Record{Topic: "logs.raw.calm", Key: []byte("c"), Value: fmt.Appendf(nil, "calm %d", i)})
	}
	kafkatest.Produce(t, cl, rs...)
	wait(20*time.Second, "plain records, dead letters and the other tenant", func(o *output) bool {
		return len(o.parsed["logs.parsed.shop"]) == 10 && len(o.dlq["logs.dlq.shop"]) == 10 && len(o.parsed["logs.parsed.calm"]) == 10
	})
	out.mu.Lock()
	d := out.dlq["logs.dlq.shop"][0]
	out.mu.Unlock()
	if d.Reason != ReasonTopicMissing || !strings.Contains(d.Error, "logs.parsed.shop.audit") || !strings.Contains(d.Payload, "audit") {
		t.Errorf("dead letter: reason %q error %q payload %q", d.Reason, d.Error, d.Payload)
	}
	if n := testutil.ToFloat64(rt.m.transactions.WithLabelValues("abort")); n != 0 {
		t.Errorf("%v transactions aborted, want none", n)
	}
	// Once the topic exists, routed records go there.
	kafkatest.CreateTopics(t, cl, 1, "logs.parsed.shop.audit")
	time.Sleep(1500 * time.Millisecond) // the router's metadata is at most a rescan interval old
	kafkatest.Produce(t, cl, &kgo.Record{Topic: "logs.raw.shop", Key: []byte("c"), Value: []byte("audit late")})
	audit := kafkatest.ClientAt(t, brokers, kgo.ConsumeTopics("logs.parsed.shop.audit"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if fs := audit.PollFetches(ctx); fs.NumRecords() != 1 {
		t.Errorf("dataset topic: %d records, errors %v", fs.NumRecords(), fs.Errors())
	}
}

// TestRecordIDs: a producer's id is combined with the record's content, so
// two different records sent with the same id stay two documents, and a
// re-send of one record keeps its id; without an id, the record's place in
// the topic names it.
func TestRecordIDs(t *testing.T) {
	rt, err := New(routerConfig(t, []string{"127.0.0.1:9092"}, nil), Options{})
	if err != nil {
		t.Fatal(err)
	}
	id := func(topic string, offset int64, value string) string {
		t.Helper()
		rec, f := rt.decode(context.Background(), "shop", &kgo.Record{Topic: topic, Offset: offset, Value: []byte(value), Timestamp: time.Now()})
		if f != nil {
			t.Fatal(f)
		}
		return rec.ID
	}
	a := id("logs.raw.shop", 1, `{"id":"x","log":"first line"}`)
	if b := id("logs.raw.shop", 2, `{"id":"x","log":"second line"}`); a == b {
		t.Error("two different lines with the same producer id got the same record id")
	}
	if again := id("logs.raw.shop", 7, `{"id":"x","log":"first line"}`); again != a {
		t.Error("a re-send of the same record got a new id")
	}
	if a == "x" || len(a) != 32 {
		t.Errorf("id %q: want a 32-digit hash, not the producer's id", a)
	}
	if p, q := id("logs.raw.shop", 1, "plain"), id("logs.raw.shop", 2, "plain"); p == q {
		t.Error("two records without ids at different offsets got the same id")
	}
	if p, q := id("logs.raw.shop", 1, "plain"), id("logs.raw.shop", 1, "plain"); p != q {
		t.Error("a record without an id read twice got two ids")
	}
}

// TestHeavyRecordsDoNotDelayOthers: every record of one tenant costs
// nearly the most a record may (a regex close to the cost budget on a
// 64 KB line, about 0.1 CPU-s), for 4 seconds at close to a core's worth
// a second; another tenant's records stay visible within about a
// transaction.
func TestHeavyRecordsDoNotDelayOthers(t *testing.T) {
	cluster := routerCluster(t, "heavy", "fast")
	brokers := cluster.ListenAddrs()
	cl := kafkatest.ClientAt(t, brokers, kgo.ProducerBatchMaxBytes(1<<20))
	rt := startRouter(t, routerConfig(t, brokers, nil))
	apply(t, cl, "tenant: heavy\nversion: 1\nsteps:\n  - regex: {field: log, pattern: '(?P<words>(?:[a-z]+\\s){1,60}END)', on_error: skip}\n")
	waitVersion(t, rt, "heavy", 1)
	line := strings.Repeat("lorem ipsum ", 5400)

	stop := make(chan struct{})
	var lat markerLatencies
	waitMarkers := lat.run(t, brokers, "fast", 100*time.Millisecond, stop)
	cost := recordCost(t, rt, "heavy", []byte(line))
	every := max(cost*5/4, 20*time.Millisecond)
	heavyRecords := max(4, int(4*time.Second/every))
	for i := range heavyRecords {
		kafkatest.Produce(t, cl, &kgo.Record{Topic: "logs.raw.heavy", Key: []byte("c"), Value: fmt.Appendf(nil, "%d %s", i, line)})
		time.Sleep(every)
	}
	_, wait := consumeOutputs(t, brokers, "heavy")
	wait(300*time.Second, "the heavy tenant's records", func(o *output) bool { return len(o.parsed["logs.parsed.heavy"]) >= heavyRecords })
	close(stop)
	waitMarkers()
	lat.check(t, rt, "heavy")
	if secs := testutil.ToFloat64(rt.m.tenantSeconds.WithLabelValues("heavy")); secs < cost.Seconds()*float64(heavyRecords)/2 {
		t.Errorf("the heavy tenant took %.2fs for %d records: the test did not load the router", secs, heavyRecords)
	}
}

// TestNewTenantFirstRecordsParsed: a tenant made after the router started,
// given a pipeline and sending at once, has its very first records
// processed by that pipeline, not passed through while the router has yet
// to find the tenant's new config topic.
func TestNewTenantFirstRecordsParsed(t *testing.T) {
	cluster := routerCluster(t, "old")
	brokers := cluster.ListenAddrs()
	cl := kafkatest.ClientAt(t, brokers)
	// The raw topic is consumed from the start; the config topic is made
	// later, and the router's metadata (a minute old at most) does not
	// know it yet when the records come.
	kafkatest.CreateTopics(t, cl, 1, "logs.raw.new", "logs.parsed.new", "logs.dlq.new")
	startRouter(t, routerConfig(t, brokers, map[string]string{"SLUICE_ROUTER_RESCAN_INTERVAL": "1m"}))
	time.Sleep(time.Second)
	kafkatest.CreateTopics(t, cl, 1, "logs.config.new")
	apply(t, cl, "tenant: new\nversion: 1\nsteps:\n  - set: {field: parsed_by, value: v1}\n")
	kafkatest.Produce(t, cl, &kgo.Record{Topic: "logs.raw.new", Value: []byte("first")})
	out, wait := consumeOutputs(t, brokers, "new")
	wait(30*time.Second, "the new tenant's first record", func(o *output) bool { return len(o.parsed["logs.parsed.new"]) == 1 })
	out.mu.Lock()
	defer out.mu.Unlock()
	if got := out.parsed["logs.parsed.new"][0].Attributes["parsed_by"]; got != "v1" {
		t.Errorf("first record's parsed_by = %v: not processed by the tenant's pipeline", got)
	}
}

// TestKeptOutputsUsedWhole: the outputs a tenant's background work kept
// for a partition are used only by a poll that reaches at least as far
// (they are not kept per record: a joined record's outputs belong to its
// last line), never by a shorter one, which would commit outputs of
// records it did not consume. A shorter poll (a fetch shares its bytes
// with the other partitions in it, in an order the broker rotates) leaves
// the unit out of the transaction and the outputs kept for the next poll,
// a few times; after that they are given up and the records processed
// again.
func TestKeptOutputsUsedWhole(t *testing.T) {
	rt, err := New(routerConfig(t, []string{"127.0.0.1:9092"}, nil), Options{})
	if err != nil {
		t.Fatal(err)
	}
	recs := func(from, to int64) []*kgo.Record {
		var rs []*kgo.Record
		for o := from; o <= to; o++ {
			rs = append(rs, &kgo.Record{Topic: "logs.raw.slow", Partition: 0, Offset: o})
		}
		return rs
	}
	poll := func(rs []*kgo.Record) kgo.Fetches {
		return kgo.Fetches{{Topics: []kgo.FetchTopic{{Topic: "logs.raw.slow", Partitions: []kgo.FetchPartition{{Partition: 0, Records: rs}}}}}}
	}
	kept := &unit{key: partKey{"logs.raw.slow", 0}, recs: recs(10, 19), outs: []*kgo.Record{{Topic: "logs.parsed.slow"}}, done: true}
	// split polls up to each offset of to in turn and reports, for each,
	// whether its unit was left out, or used the kept outputs.
	split := func(to ...int64) (out []string) {
		l := &loop{rt: rt, parts: map[partKey]*partState{kept.key: {bg: kept, bgDone: true, heldFrom: -1}}}
		for _, o := range to {
			works, rewind := l.split(poll(recs(10, o)))
			switch {
			case len(rewind) == 1 && len(works) == 0:
				out = append(out, "left out")
			case len(rewind) == 0 && len(works) == 1 && len(works[0].units) == 1:
				u := works[0].units[0]
				switch {
				case len(u.outs) == 1 && u.skipTo == 20:
					out = append(out, "used")
				case len(u.outs) == 0 && u.skipTo < 10:
					out = append(out, "processed")
				default:
					out = append(out, fmt.Sprintf("outs %d skipTo %d", len(u.outs), u.skipTo))
				}
			default:
				out = append(out, fmt.Sprintf("%d works, %d left out", len(works), len(rewind)))
			}
		}
		if ps := l.parts[kept.key]; ps.bg != nil && out[len(out)-1] != "left out" {
			t.Errorf("polls to %v: the outputs are still kept after the poll that took or dropped them", to)
		}
		return out
	}
	for _, c := range []struct {
		to   []int64
		want string
	}{
		{[]int64{19}, "used"},
		{[]int64{25}, "used"},
		{[]int64{15}, "left out"},
		{[]int64{15, 19}, "left out, used"},
		{[]int64{15, 12, 25}, "left out, left out, used"},
		{[]int64{15, 15, 15, 15, 19}, "left out, left out, left out, processed, processed"},
	} {
		if got := strings.Join(split(c.to...), ", "); got != c.want {
			t.Errorf("polls to %v: %s, want %s", c.to, got, c.want)
		}
	}
}

// TestPseudonymKeysPerTenant: pseudonym() uses each tenant's own key from
// SLUICE_ROUTER_PSEUDONYM_KEYS_DIR, so the same value gets a different
// pseudonym in each tenant; a tenant without a key has its records
// dead-lettered (pseudonym_key_missing, without retiring its version)
// while the others in the same router go on; a rotated key and a key
// given later take effect without a restart.
func TestPseudonymKeysPerTenant(t *testing.T) {
	cluster := routerCluster(t, "alpha", "beta", "gamma")
	brokers := cluster.ListenAddrs()
	cl := kafkatest.ClientAt(t, brokers)
	keys := map[string]string{"alpha": "alpha-key-0123456789", "beta": "beta-key-abcdefghijk"}
	vol := &secretVolume{t: t, dir: t.TempDir()}
	vol.write(map[string]string{"alpha": keys["alpha"] + "\n", "beta": keys["beta"] + "\n"})
	rt := startRouter(t, routerConfig(t, brokers, map[string]string{"SLUICE_ROUTER_PSEUDONYM_KEYS_DIR": vol.dir}))
	// A version is retired after failing on retireMinRecords records in a
	// row over retireMinWindow: smaller here, and still gamma's stays.
	rt.pipes.mu.Lock()
	rt.pipes.minRecords, rt.pipes.minWindow = 5, 0
	rt.pipes.mu.Unlock()
	tenants := []string{"alpha", "beta", "gamma"}
	for _, tn := range tenants {
		apply(t, cl, "tenant: "+tn+"\nversion: 1\nsteps:\n  - json: {field: log}\n  - set: {field: email, expr: 'pseudonym(attributes.email)'}\n")
	}
	for _, tn := range tenants {
		waitVersion(t, rt, tn, 1)
	}
	produce := func(from, n int) {
		t.Helper()
		var rs []*kgo.Record
		for i := from; i < from+n; i++ {
			for _, tn := range tenants {
				rs = append(rs, &kgo.Record{Topic: "logs.raw." + tn, Key: []byte("c"), Value: fmt.Appendf(nil, `{"seq":%d,"email":"user%d@example.com"}`, i, i)})
			}
		}
		kafkatest.Produce(t, cl, rs...)
	}
	out, wait := consumeOutputs(t, brokers, tenants...)
	// check checks the parsed records of tenant from the index from on:
	// each email the HMAC of user<seq>@example.com under key.
	check := func(tenant string, from int, key string) {
		t.Helper()
		out.mu.Lock()
		defer out.mu.Unlock()
		recs := out.parsed["logs.parsed."+tenant][from:]
		for _, r := range recs {
			seq, _ := r.Attributes["seq"].(int64)
			if want := hmacHex(key, fmt.Sprintf("user%d@example.com", seq)); r.Attributes["email"] != want {
				t.Errorf("%s record %d: email %v, want %s", tenant, seq, r.Attributes["email"], want)
			}
		}
	}

	const n = 20
	produce(0, n)
	wait(30*time.Second, "alpha's and beta's records parsed, gamma's dead-lettered", func(o *output) bool {
		return len(o.parsed["logs.parsed.alpha"]) == n && len(o.parsed["logs.parsed.beta"]) == n && len(o.dlq["logs.dlq.gamma"]) == n
	})
	check("alpha", 0, keys["alpha"])
	check("beta", 0, keys["beta"])
	out.mu.Lock()
	if a, b := out.parsed["logs.parsed.alpha"][0].Attributes["email"], out.parsed["logs.parsed.beta"][0].Attributes["email"]; a == b {
		t.Errorf("alpha and beta give one value the same pseudonym %v", a)
	}
	for _, d := range out.dlq["logs.dlq.gamma"] {
		if d.Reason != ReasonPseudonymKeyMissing || d.StepType != "set" || d.PipelineVersion != 1 ||
			!strings.Contains(d.Error, "no key is configured for tenant gamma") || !strings.Contains(d.Payload, "@example.com") {
			t.Errorf("gamma's dead letter: reason %q step %q version %d error %q", d.Reason, d.StepType, d.PipelineVersion, d.Error)
			break
		}
	}
	n0 := len(out.parsed["logs.parsed.gamma"])
	out.mu.Unlock()
	if n0 != 0 {
		t.Errorf("gamma: %d records parsed without a key", n0)
	}
	if v := rt.pipes.get("gamma").Version; v != 1 || testutil.ToFloat64(rt.m.fallbacks.WithLabelValues("gamma")) != 0 {
		t.Errorf("gamma's version in force is %d: a missing key retired it", v)
	}
	if got := testutil.ToFloat64(rt.m.dlq.WithLabelValues("gamma", ReasonPseudonymKeyMissing)); got != n {
		t.Errorf("dlq_total{gamma, pseudonym_key_missing} = %v, want %d", got, n)
	}
	if got := testutil.ToFloat64(rt.m.keys); got != 2 {
		t.Errorf("pseudonym_keys = %v, want 2", got)
	}

	// alpha's key is rotated and gamma gets one: the next reading of the
	// directory (done here rather than waited for) puts them in force.
	keys["alpha"], keys["gamma"] = "alpha-key-rotated-000", "gamma-key-0123456789"
	vol.write(map[string]string{"alpha": keys["alpha"], "beta": keys["beta"], "gamma": keys["gamma"]})
	if err := rt.keys.load(); err != nil {
		t.Fatal(err)
	}
	produce(n, n)
	wait(30*time.Second, "every tenant's records parsed", func(o *output) bool {
		return len(o.parsed["logs.parsed.alpha"]) == 2*n && len(o.parsed["logs.parsed.beta"]) == 2*n && len(o.parsed["logs.parsed.gamma"]) == n
	})
	check("alpha", n, keys["alpha"])
	check("beta", n, keys["beta"])
	check("gamma", 0, keys["gamma"])
	out.mu.Lock()
	defer out.mu.Unlock()
	if len(out.dlq["logs.dlq.gamma"]) != n || len(out.dlq["logs.dlq.alpha"])+len(out.dlq["logs.dlq.beta"]) != 0 {
		t.Errorf("dead letters: alpha %d, beta %d, gamma %d", len(out.dlq["logs.dlq.alpha"]), len(out.dlq["logs.dlq.beta"]), len(out.dlq["logs.dlq.gamma"]))
	}
}
