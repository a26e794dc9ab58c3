package indexer

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/internal/eslite"
	"github.com/sluicelogs/sluice/internal/kafkatest"
	"github.com/sluicelogs/sluice/internal/testwait"
)

// logBuffer collects what a logger writes; safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startIndexer runs an indexer whose readiness and logs the test watches;
// stop ends it and checks that Run returned nil.
func startIndexer(t *testing.T, cfg Config) (ready *atomic.Bool, logs *logBuffer, stop func()) {
	t.Helper()
	ready, logs = new(atomic.Bool), new(logBuffer)
	_, _, stop = runIndexerWith(t, cfg, Options{
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Ready:  ready.Store,
	})
	return ready, logs, stop
}

// TestIndexerOpenSearch: with SLUICE_ELASTICSEARCH_FLAVOR=opensearch the
// indexer works against OpenSearch 2.x: it becomes ready, installs its
// template and stores every record of two tenants exactly once; documents
// OpenSearch refuses with its own wording of mapping errors are rescued.
func TestIndexerOpenSearch(t *testing.T) {
	topics := []string{"logs.parsed.shop", "logs.parsed.pay", "logs.dlq.shop", "logs.dlq.pay"}
	c := testCluster(t, topics...)
	es := eslite.Start(t, eslite.OpenSearch())
	cl := kafkatest.Client(t, c)

	ready, logs, stop := startIndexer(t, testConfig(t, c.ListenAddrs(), es.URL(), map[string]string{"SLUICE_ELASTICSEARCH_FLAVOR": "opensearch"}))
	testwait.For(t, 10*time.Second, "the indexer to be ready", func() (bool, string) { return ready.Load(), "" })
	if _, ok := es.Template("sluice"); !ok {
		t.Fatal("ready without the index template")
	}
	// code is a number in the shop index (a document says so first) and a
	// word in some records: OpenSearch refuses those with
	// mapper_parsing_exception, and the indexer rescues them.
	esBulk(t, es.URL(), `{"create":{"_index":"`+IndexName("sluice", "shop", "", eventDay, time.UTC)+`","_id":"seed"}}`+"\n"+`{"code":1}`+"\n")
	code := func(i int) map[string]any {
		if i%50 == 49 {
			return map[string]any{"code": "E-oops"}
		}
		return map[string]any{"code": int64(i)}
	}

	var s sent
	s.produce(t, cl, "logs.parsed.shop", 500, 0, code)
	s.produce(t, cl, "logs.parsed.pay", 300, 0, nil)
	waitCommitted(t, 20*time.Second, "every offset committed", cl, "sluice-indexer", topics[:2]...)
	stop()

	dead := readDeadLetters(t, c, "logs.dlq.shop", "logs.dlq.pay")
	if stored, dlq := s.accountFor(t, es, dead); stored != 800 || dlq != 0 {
		t.Errorf("%d stored, %d dead-lettered; want 800 stored", stored, dlq)
	}
	rescued := 0
	for _, doc := range es.Docs(IndexName("sluice", "shop", "", eventDay, time.UTC)) {
		if strings.Contains(string(doc), `"rescued":"{\"code\":\"E-oops\"}"`) {
			rescued++
		}
	}
	if rescued != 10 {
		t.Errorf("%d rescued documents, want 10", rescued)
	}
	if strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("warnings against OpenSearch:\n%s", logs)
	}
}

// TestIndexerElasticsearchFlavorAgainstOpenSearch: without the setting the
// indexer never becomes ready against OpenSearch, and its log says why and
// what to set.
func TestIndexerElasticsearchFlavorAgainstOpenSearch(t *testing.T) {
	topics := []string{"logs.parsed.shop", "logs.dlq.shop"}
	c := testCluster(t, topics...)
	es := eslite.Start(t, eslite.OpenSearch())
	cl := kafkatest.Client(t, c, kgo.DefaultProduceTopic("logs.parsed.shop"))
	var s sent
	s.produce(t, cl, "logs.parsed.shop", 50, 0, nil)

	ready, logs, stop := startIndexer(t, testConfig(t, c.ListenAddrs(), es.URL(), nil))
	want := "the server at " + es.URL() + " is OpenSearch 2.17.1; set SLUICE_ELASTICSEARCH_FLAVOR=opensearch"
	testwait.For(t, 10*time.Second, "the log to explain the refusal", func() (bool, string) { return strings.Contains(logs.String(), want), "" })
	if !strings.Contains(logs.String(), "installing the index template failed; retrying") {
		t.Errorf("the explanation is not the template's:\n%s", logs)
	}
	// Consumption starts only once the template is installed.
	if ready.Load() || len(es.IDs()) != 0 {
		t.Errorf("ready %v with %d documents against a server the client refuses", ready.Load(), len(es.IDs()))
	}
	stop()
	if ready.Load() {
		t.Error("ready after stopping")
	}
}
