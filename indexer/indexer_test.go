package indexer

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sethvargo/go-envconfig"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/internal/config"
	"github.com/sluicelogs/sluice/internal/eslite"
	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/internal/kafkatest"
	"github.com/sluicelogs/sluice/internal/testwait"
	"github.com/sluicelogs/sluice/schemas"
)

// testCluster starts an in-process Kafka with the parsed (and the given
// dataset) and dead-letter topics of tenants, 3 partitions each.
func testCluster(t testing.TB, topics ...string) *kfake.Cluster {
	t.Helper()
	return kafkatest.Cluster(t, kafkatest.Topics(3, topics...))
}

func testConfig(t testing.TB, brokers []string, esURL string, env map[string]string) Config {
	t.Helper()
	vars := map[string]string{
		"SLUICE_KAFKA_BROKERS":                 strings.Join(brokers, ","),
		"SLUICE_ELASTICSEARCH_URLS":            esURL,
		"SLUICE_INDEXER_FLUSH_BYTES":           "16384",
		"SLUICE_INDEXER_FLUSH_INTERVAL":        "50ms",
		"SLUICE_INDEXER_COMMIT_INTERVAL":       "50ms",
		"SLUICE_INDEXER_RESCAN_INTERVAL":       "200ms",
		"SLUICE_INDEXER_RETRY_MAX":             "200ms",
		"SLUICE_INDEXER_REVOKE_TIMEOUT":        "5s",
		"SLUICE_INDEXER_SHUTDOWN_TIMEOUT":      "5s",
		"SLUICE_INDEXER_RETENTION_DAYS":        "0",
		"SLUICE_INDEXER_WORKERS":               "3",
		"SLUICE_ELASTICSEARCH_REQUEST_TIMEOUT": "10s",
	}
	maps.Copy(vars, env)
	var cfg Config
	if err := config.LoadFrom(context.Background(), &cfg, envconfig.MapLookuper(vars)); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// runIndexer runs an indexer in the background; stop ends it and checks
// that Run returned nil (it may be called more than once).
func runIndexer(t testing.TB, cfg Config) (*Indexer, *prometheus.Registry, func()) {
	t.Helper()
	var o Options
	if testing.Verbose() {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("indexer", cfg.ID)
	}
	return runIndexerWith(t, cfg, o)
}

// waitTemplates waits for the indexer's two index templates: it consumes
// only once both are in place, so a fault set before then would hold it
// in its start.
func waitTemplates(t testing.TB, es *eslite.Store) {
	t.Helper()
	testwait.For(t, 10*time.Second, "the index templates", func() (bool, string) {
		_, a := es.Template("sluice")
		_, b := es.Template("sluice-shared")
		return a && b, fmt.Sprintf("sluice %v, sluice-shared %v", a, b)
	})
}

// runIndexerWith is runIndexer with the given options (a registry of its
// own is set).
func runIndexerWith(t testing.TB, cfg Config, o Options) (*Indexer, *prometheus.Registry, func()) {
	t.Helper()
	reg := prometheus.NewRegistry()
	o.Registerer = reg
	ix, err := New(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ix.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("indexer did not stop within 30s")
			}
		})
	}
	t.Cleanup(stop)
	return ix, reg, stop
}

// sent is what a test produced: record id by place, and the places of
// records expected in the dead-letter topics.
type sent struct {
	mu    sync.Mutex
	ids   map[string]string // "topic/partition/offset" -> id ("" for a record that is not a record)
	byID  map[string]string // id -> place
	total int
}

func place(topic string, partition int32, offset int64) string {
	return fmt.Sprintf("%s/%d/%d", topic, partition, offset)
}

// eventDay is the event time of test records: noon yesterday (UTC), so
// that their index does not change if a test runs across midnight.
var eventDay = time.Now().UTC().Truncate(24 * time.Hour).Add(-12 * time.Hour)

// produce writes n records to topic: Avro records with ids <topic>-<n>
// (n counting every record the test sent),
// with garbage (not a record) every garbageEvery records (0: none).
func (s *sent) produce(t testing.TB, cl *kgo.Client, topic string, n, garbageEvery int, attrs func(i int) map[string]any) {
	t.Helper()
	recs := make([]*kgo.Record, 0, n)
	ids := make(map[*kgo.Record]string, n) // ProduceSync's results come in completion order
	now := eventDay
	s.mu.Lock()
	base := s.total
	s.mu.Unlock()
	for i := range n {
		id := fmt.Sprintf("%s-%d", topic, base+i)
		var v []byte
		if garbageEvery > 0 && i%garbageEvery == garbageEvery-1 {
			v, id = []byte{0xc3, 0x01, 0xde, 0xad}, "" // a single-object header with no known schema
		} else {
			r := schemas.Record{ID: id, Timestamp: now, ObservedTimestamp: now, Stream: "stdout",
				Log: fmt.Sprintf("line %d of %s", i, topic), Kubernetes: schemas.Kubernetes{PodName: "p", NamespaceName: "ns"}}
			if attrs != nil {
				r.Attributes = attrs(i)
			}
			var err error
			if v, err = schemas.AppendSingleObject(nil, &r); err != nil {
				t.Fatal(err)
			}
		}
		r := &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint(i % 7)), Value: v}
		recs = append(recs, r)
		ids[r] = id
	}
	res := cl.ProduceSync(context.Background(), recs...)
	if err := res.FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids == nil {
		s.ids, s.byID = map[string]string{}, map[string]string{}
	}
	for _, r := range res {
		p, id := place(r.Record.Topic, r.Record.Partition, r.Record.Offset), ids[r.Record]
		s.ids[p] = id
		if id != "" {
			s.byID[id] = p
		}
	}
	s.total += n
}

// readDeadLetters reads every dead letter of topics, to their end, by the
// place of the record they carry.
func readDeadLetters(t testing.TB, c *kfake.Cluster, topics ...string) map[string]schemas.DeadLetter {
	t.Helper()
	out := map[string]schemas.DeadLetter{}
	for _, r := range kafkatest.ReadAll(t, c, 20*time.Second, topics...) {
		var d schemas.DeadLetter
		if err := json.Unmarshal(r.Value, &d); err != nil {
			t.Errorf("dead letter is not JSON: %v", err)
			continue
		}
		p := place(d.Topic, d.Partition, d.Offset)
		if _, dup := out[p]; dup {
			t.Errorf("record %s dead-lettered twice", p)
		}
		out[p] = d
	}
	return out
}

// accountFor checks that every produced record is stored exactly once in
// es or is in dead (exactly one of the two), and returns how many went
// where.
func (s *sent) accountFor(t testing.TB, es *eslite.Store, dead map[string]schemas.DeadLetter) (stored, dlq int) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	held := es.IDs()
	delete(held, "seed")
	for p, id := range s.ids {
		indices := held[id]
		_, isDead := dead[p]
		switch {
		case id != "" && len(indices) == 1 && !isDead:
			stored++
		case len(indices) == 0 && isDead:
			dlq++
		default:
			t.Errorf("record %s (id %q): in indices %v, dead-lettered %v", p, id, indices, isDead)
		}
	}
	return stored, dlq
}

// waitCommitted waits until group's committed offsets reach the end of
// every partition of topics.
func waitCommitted(t testing.TB, within time.Duration, what string, cl *kgo.Client, group string, topics ...string) {
	t.Helper()
	testwait.For(t, within, what, func() (bool, string) {
		ok, err := kafka.CaughtUp(context.Background(), cl, group, topics...)
		if err != nil {
			return false, err.Error()
		}
		return ok, "committed offsets short of the end"
	})
}

// committedAll reports whether group's committed offsets reached the end
// of every partition of topics.
func committedAll(t testing.TB, cl *kgo.Client, group string, topics ...string) bool {
	ok, _ := kafka.CaughtUp(context.Background(), cl, group, topics...)
	return ok
}

// watchCommits checks, until the test ends, that no committed offset ever
// passes a record that is neither stored nor expected in a dead-letter
// topic (records a test sends there are checked at the end).
func (s *sent) watchCommits(t *testing.T, adm *kadm.Client, es *eslite.Store, group string) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			committed, err := adm.FetchOffsets(ctx, group)
			if err == nil {
				held := es.IDs()
				s.mu.Lock()
				committed.Each(func(o kadm.OffsetResponse) {
					for off := int64(0); off < o.At; off++ {
						id, ok := s.ids[place(o.Topic, o.Partition, off)]
						if ok && id != "" && !strings.HasPrefix(id, "logs.parsed.pay") && len(held[id]) == 0 {
							t.Errorf("offset %d of %s/%d committed before record %s was stored", o.At, o.Topic, o.Partition, id)
							cancel()
							return
						}
					}
				})
				s.mu.Unlock()
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
}

// TestIndexerFaults: with Elasticsearch refusing whole requests (429, 503)
// and items (429), answering slowly, and rejecting documents (a mapping
// conflict the rescue fixes, a broken mapping it cannot), every record ends
// up stored exactly once or in its tenant's dead-letter topic with the
// reason, and no offset is committed before the records below it are done.
func TestIndexerFaults(t *testing.T) {
	topics := []string{"logs.parsed.shop", "logs.parsed.shop.audit", "logs.parsed.pay", "logs.dlq.shop", "logs.dlq.pay"}
	c := testCluster(t, topics...)
	es := eslite.Start(t, eslite.Seed(1))
	cl := kafkatest.Client(t, c, kgo.DefaultProduceTopic("logs.parsed.shop"))
	adm := kadm.NewClient(cl)

	// Somebody's template maps log as a number for tenant pay: no rescue
	// can make its documents fit.
	broken := `{"index_patterns":["sluice-pay-*"],"priority":900,"template":{"mappings":{"properties":{"log":{"type":"long"}}}}}`
	putTemplate(t, es.URL(), "broken-pay", broken)

	_, reg, stop := runIndexer(t, testConfig(t, c.ListenAddrs(), es.URL(), nil))
	waitTemplates(t, es)
	// code is a number in the shop index (a document says so first) and
	// a word in some records: those are rescued.
	esBulk(t, es.URL(), `{"create":{"_index":"`+IndexName("sluice", "shop", "", eventDay, time.UTC)+`","_id":"seed"}}`+"\n"+`{"code":1}`+"\n")
	code := func(i int) map[string]any {
		if i%50 == 49 {
			return map[string]any{"code": "E-oops", "level": "warn"}
		}
		return map[string]any{"code": int64(i), "level": "info"}
	}

	es.SetFaults(eslite.Faults{RequestStatus: 429, RequestFraction: 0.15, ItemFraction: 0.15, Latency: 2 * time.Millisecond})
	var s sent
	s.watchCommits(t, adm, es, "sluice-indexer")
	s.produce(t, cl, "logs.parsed.shop", 1500, 0, code)
	s.produce(t, cl, "logs.parsed.shop.audit", 300, 100, nil)
	s.produce(t, cl, "logs.parsed.pay", 40, 0, nil)
	es.SetFaults(eslite.Faults{RequestStatus: 503, RequestFraction: 0.15, ItemFraction: 0.15, Latency: 5 * time.Millisecond})
	s.produce(t, cl, "logs.parsed.shop", 500, 0, code)

	waitCommitted(t, 60*time.Second, "every offset committed", cl, "sluice-indexer", topics[:3]...)
	stop()
	dead := readDeadLetters(t, c, "logs.dlq.shop", "logs.dlq.pay")
	stored, dlq := s.accountFor(t, es, dead)
	if want := 1500 + 300 + 500 - 3; stored != want {
		t.Errorf("%d stored, want %d", stored, want)
	}
	if dlq != 3+40 {
		t.Errorf("%d dead-lettered, want 43", dlq)
	}
	for p, d := range dead {
		switch {
		case strings.HasPrefix(p, "logs.parsed.pay/"):
			if d.Reason != "rejected" || d.Stage != "indexer" || d.Status != 400 || !strings.HasPrefix(d.Index, "sluice-pay-") ||
				len(d.Document) == 0 || !strings.Contains(d.Error, "log") {
				t.Errorf("pay dead letter %+v", d)
			}
			payload, err := base64.StdEncoding.DecodeString(d.Payload)
			if err != nil || d.PayloadEncoding != "base64" {
				t.Errorf("payload: %v", err)
			} else if rec, err := schemas.DecodeSingleObject(payload); err != nil || rec.ID != s.ids[p] {
				t.Errorf("payload is not the record: %v", err)
			}
		default:
			if d.Reason != "decode" || d.Topic != "logs.parsed.shop.audit" {
				t.Errorf("shop dead letter %+v", d)
			}
		}
	}
	// The rescued documents keep the word in sluice.rescued.
	rescued := 0
	for _, idx := range es.Indices() {
		for _, doc := range es.Docs(idx) {
			if strings.Contains(string(doc), `"rescued":"{\"code\":\"E-oops\"}"`) {
				rescued++
			}
		}
	}
	if rescued != 40 {
		t.Errorf("%d rescued documents, want 40", rescued)
	}
	st := es.Stats()
	if st.ItemRejected == 0 || st.RequestsFaulted == 0 {
		t.Errorf("faults were not exercised: %+v", st)
	}
	if got := metricValue(t, reg, "sluice_indexer_docs_rescued_total", map[string]string{"tenant": "shop"}); got < 40 {
		t.Errorf("docs_rescued_total{shop} = %v", got)
	}
	if _, ok := es.Template("sluice"); !ok {
		t.Error("index template not installed")
	}
	for _, tenant := range []string{"shop", "pay"} {
		for _, name := range []string{"sluice_indexer_tenant_bulk_seconds_total", "sluice_indexer_tenant_bulk_requests_total", "sluice_indexer_tenant_bulk_bytes_total"} {
			if metricValue(t, reg, name, map[string]string{"tenant": tenant}) == 0 {
				t.Errorf("%s{tenant=%s} not observed", name, tenant)
			}
		}
	}
	for _, idx := range es.Indices() {
		if !strings.HasPrefix(idx, "sluice-shop-") && !strings.HasPrefix(idx, "sluice-shop.audit-") && !strings.HasPrefix(idx, "sluice-pay-") {
			t.Errorf("unexpected index %s", idx)
		}
	}
}

// putTemplate installs an index template over HTTP.
func putTemplate(t testing.TB, url, name, body string) {
	t.Helper()
	esRequest(t, http.MethodPut, url+"/_index_template/"+name, "application/json", body)
}

// esBulk sends a bulk body and fails the test on any error.
func esBulk(t testing.TB, url, body string) {
	t.Helper()
	out := esRequest(t, http.MethodPost, url+"/_bulk", "application/x-ndjson", body)
	if strings.Contains(out, `"errors":true`) {
		t.Fatalf("bulk: %s", out)
	}
}

func esRequest(t testing.TB, method, url, contentType, body string) string {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 300 {
		t.Fatalf("%s %s: %s: %s", method, url, res.Status, out)
	}
	return string(out)
}

// metricValue returns the counter, gauge or histogram sample count of name with the given label values from reg.
func metricValue(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue metrics
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return 0
}
