package indexer

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluicelogs/sluice/internal/eslite"
	"github.com/sluicelogs/sluice/internal/kafkatest"
	"github.com/sluicelogs/sluice/internal/testwait"
)

// TestIndexerMissingDeadLetterTopic: a tenant whose dead-letter topic is
// missing holds back only its own partitions (they pause, nothing is
// committed past a record whose dead letter is not written); the other
// tenant goes on. Once the topic exists, everything is written.
func TestIndexerMissingDeadLetterTopic(t *testing.T) {
	c := testCluster(t, "logs.parsed.shop", "logs.parsed.pay", "logs.dlq.pay")
	es := eslite.Start(t)
	cl := kafkatest.Client(t, c)
	var s sent
	s.produce(t, cl, "logs.parsed.shop", 600, 100, nil) // 6 records that are not records
	_, reg, stop := runIndexer(t, testConfig(t, c.ListenAddrs(), es.URL(), nil))
	s.produce(t, cl, "logs.parsed.pay", 600, 0, nil)
	waitCommitted(t, 30*time.Second, "tenant pay committed", cl, "sluice-indexer", "logs.parsed.pay")
	testwait.For(t, 20*time.Second, "dead letters refused twice", func() (bool, string) {
		v := metricValue(t, reg, "sluice_indexer_dead_letter_errors_total", map[string]string{"tenant": "shop"})
		return v >= 2, fmt.Sprintf("sluice_indexer_dead_letter_errors_total %v", v)
	})
	if committedAll(t, cl, "sluice-indexer", "logs.parsed.shop") {
		t.Fatal("shop committed although its dead letters could not be written")
	}
	if got := metricValue(t, reg, "sluice_indexer_pending_records", map[string]string{"tenant": "shop"}); got == 0 {
		t.Fatal("nothing pending for shop")
	}

	kafkatest.CreateTopics(t, cl, 3, "logs.dlq.shop")
	waitCommitted(t, 60*time.Second, "tenant shop committed", cl, "sluice-indexer", "logs.parsed.shop")
	stop()
	dead := readDeadLetters(t, c, "logs.dlq.shop", "logs.dlq.pay")
	stored, dlq := s.accountFor(t, es, dead)
	if stored != 1200-6 || dlq != 6 {
		t.Errorf("%d stored, %d dead-lettered", stored, dlq)
	}
}

// TestIndexerSplitsRefusedRequests: an Elasticsearch (or a proxy before
// it) that refuses requests over a size with 413 gets smaller requests;
// the one document that is too large on its own is dead-lettered with the
// status.
func TestIndexerSplitsRefusedRequests(t *testing.T) {
	c := testCluster(t, "logs.parsed.shop", "logs.dlq.shop")
	fake := eslite.New()
	const limit = 6000
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/_bulk") {
			body, _ := io.ReadAll(r.Body)
			if len(body) > limit {
				w.Header().Set("X-Elastic-Product", "Elasticsearch")
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusRequestEntityTooLarge)
				_, _ = w.Write([]byte(`{"error":{"type":"content_too_long_exception","reason":"request body is too large"},"status":413}`))
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		fake.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	cl := kafkatest.Client(t, c)
	var s sent
	s.produce(t, cl, "logs.parsed.shop", 200, 0, func(i int) map[string]any {
		if i == 77 {
			return map[string]any{"blob": strings.Repeat("x", 2*limit)}
		}
		return nil
	})
	_, _, stop := runIndexer(t, testConfig(t, c.ListenAddrs(), srv.URL, nil))
	waitCommitted(t, 30*time.Second, "every offset committed", cl, "sluice-indexer", "logs.parsed.shop")
	stop()
	dead := readDeadLetters(t, c, "logs.dlq.shop")
	stored, dlq := s.accountFor(t, fake, dead)
	if stored != 199 || dlq != 1 {
		t.Fatalf("%d stored, %d dead-lettered", stored, dlq)
	}
	for _, d := range dead {
		if d.Status != 413 || d.Reason != "rejected" {
			t.Errorf("dead letter %+v", d)
		}
	}
}

// TestIndexerKeepsPaceUnderItemRefusals: Elasticsearch refuses 40% of the
// items of every bulk request with 429. The wait before the refused items
// go again must start over whenever some documents were stored: had it
// grown with every partial refusal (as it once did), a batch of 10000
// would wait 0.1+0.2+...+51.2 s before its last items went in, and the deadline
// below would pass. With one worker the requests and the
// refusals (seeded) come in the same order every run.
func TestIndexerKeepsPaceUnderItemRefusals(t *testing.T) {
	c := testCluster(t, "logs.parsed.shop", "logs.dlq.shop")
	es := eslite.Start(t, eslite.Seed(11), eslite.WithFaults(eslite.Faults{ItemFraction: 0.4}))
	cl := kafkatest.Client(t, c)
	var s sent
	s.produce(t, cl, "logs.parsed.shop", 10000, 0, nil)
	start := time.Now()
	_, reg, stop := runIndexer(t, testConfig(t, c.ListenAddrs(), es.URL(), map[string]string{
		"SLUICE_INDEXER_WORKERS": "1", "SLUICE_INDEXER_RETRY_MAX": "1m",
		// One batch of all 10000 records (produced before the indexer starts).
		"SLUICE_INDEXER_FLUSH_BYTES": "16777216", "SLUICE_INDEXER_FLUSH_INTERVAL": "3s",
	}))
	waitCommitted(t, 30*time.Second, "every offset committed", cl, "sluice-indexer", "logs.parsed.shop")
	took := time.Since(start)
	stop()
	stored, dlq := s.accountFor(t, es, nil)
	if stored != 10000 || dlq != 0 {
		t.Fatalf("%d stored, %d dead-lettered", stored, dlq)
	}
	retried := metricValue(t, reg, "sluice_indexer_docs_retried_total", map[string]string{"tenant": "shop", "reason": "too_many_requests"})
	if retried < 4000 {
		t.Fatalf("%v items retried: the faults did not take", retried)
	}
	t.Logf("10000 documents with 40%% of items refused: %v items retried, all stored in %s", retried, took.Round(time.Millisecond))
}
