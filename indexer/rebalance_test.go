package indexer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/internal/eslite"
	"github.com/sluicelogs/sluice/internal/kafkatest"
	"github.com/sluicelogs/sluice/internal/testwait"
)

// TestIndexerRebalance: two indexers in one group (dynamic membership: no
// SLUICE_INDEXER_ID) while records stream in; the second joins mid-stream,
// the first leaves mid-stream. Nothing is lost,
// and a record indexed twice is only ever a 409 (each id is held once).
func TestIndexerRebalance(t *testing.T) {
	topics := []string{"logs.parsed.shop", "logs.parsed.pay", "logs.dlq.shop", "logs.dlq.pay"}
	c := testCluster(t, topics...)
	es := eslite.Start(t, eslite.Seed(2), eslite.WithFaults(eslite.Faults{ItemFraction: 0.05, Latency: 2 * time.Millisecond}))
	cl := kafkatest.Client(t, c)
	adm := kadm.NewClient(cl)
	var s sent
	s.watchCommits(t, adm, es, "sluice-indexer")

	ctx, cancel := context.WithCancel(context.Background())
	var producing sync.WaitGroup
	producing.Go(func() {
		for i := 0; ctx.Err() == nil && i < 60; i++ {
			s.produce(t, cl, "logs.parsed.shop", 100, 0, nil)
			s.produce(t, cl, "logs.parsed.pay", 50, 0, nil)
			time.Sleep(40 * time.Millisecond)
		}
	})
	defer func() { cancel(); producing.Wait() }()

	_, _, stopA := runIndexer(t, testConfig(t, c.ListenAddrs(), es.URL(), nil))
	testwait.For(t, 20*time.Second, "the first documents", func() (bool, string) { n := es.Stats().Created; return n > 500, fmt.Sprintf("%d created", n) })
	_, regB, _ := runIndexer(t, testConfig(t, c.ListenAddrs(), es.URL(), nil))
	testwait.For(t, 20*time.Second, "the second indexer to store documents", func() (bool, string) {
		v := metricValue(t, regB, "sluice_indexer_docs_stored_total", map[string]string{"tenant": "shop"})
		return v > 0, fmt.Sprintf("sluice_indexer_docs_stored_total %v", v)
	})
	stopA()
	producing.Wait()
	waitCommitted(t, 60*time.Second, "every offset committed", cl, "sluice-indexer", topics[:2]...)

	stored, dlq := s.accountFor(t, es, nil)
	if stored != s.total || dlq != 0 {
		t.Errorf("%d of %d records stored, %d dead-lettered", stored, s.total, dlq)
	}
	t.Logf("%d records, %d duplicates answered 409", s.total, es.Stats().Conflicts)
}

// TestIndexerPausesWhileElasticsearchIsDown: with the cluster down nothing
// is committed and consumption pauses (the batches in flight stay bounded);
// when it is back, everything is stored.
func TestIndexerPausesWhileElasticsearchIsDown(t *testing.T) {
	topics := []string{"logs.parsed.shop", "logs.dlq.shop"}
	c := testCluster(t, topics...)
	es := eslite.Start(t, eslite.Seed(3))
	cl := kafkatest.Client(t, c, kgo.DefaultProduceTopic("logs.parsed.shop"))
	adm := kadm.NewClient(cl)
	_, reg, stop := runIndexer(t, testConfig(t, c.ListenAddrs(), es.URL(), map[string]string{"SLUICE_INDEXER_WORKERS": "2"}))
	waitTemplates(t, es)

	es.SetFaults(eslite.Faults{Down: true})
	var s sent
	for range 20 {
		s.produce(t, cl, "logs.parsed.shop", 500, 0, nil) // ~3.5 MiB of documents, far more than 3 batches of 16 KiB
	}
	// The indexer has joined its group, read records and retried them
	// (under the race detector joining can take seconds), and has then
	// had a while to commit what it must not.
	testwait.For(t, 30*time.Second, "records pending and retried", func() (bool, string) {
		pending := metricValue(t, reg, "sluice_indexer_pending_records", map[string]string{"tenant": "shop"})
		retried := metricValue(t, reg, "sluice_indexer_docs_retried_total", map[string]string{"tenant": "shop", "reason": "server_error"})
		return pending > 0 && retried > 0, fmt.Sprintf("%v pending, %v retried", pending, retried)
	})
	time.Sleep(1500 * time.Millisecond)
	committed, err := adm.FetchOffsets(context.Background(), "sluice-indexer")
	switch {
	case errors.Is(err, kerr.GroupIDNotFound):
		// kfake knows a group once an offset is committed: none was.
	case err != nil:
		t.Fatal(err)
	}
	committed.Each(func(o kadm.OffsetResponse) {
		if o.At > 0 {
			t.Errorf("offset %d of %s/%d committed while Elasticsearch is down", o.At, o.Topic, o.Partition)
		}
	})
	// Registered but not stored: at most what 2 workers and the poll loop
	// hold, plus one poll.
	pending := metricValue(t, reg, "sluice_indexer_pending_records", map[string]string{"tenant": "shop"})
	if pending == 0 || pending > 10_000+3*100 {
		t.Errorf("%v records pending while Elasticsearch is down", pending)
	}
	if len(es.IDs()) != 0 {
		t.Errorf("documents stored while down")
	}

	es.SetFaults(eslite.Faults{})
	waitCommitted(t, 60*time.Second, "every offset committed", cl, "sluice-indexer", "logs.parsed.shop")
	stop()
	if stored, _ := s.accountFor(t, es, nil); stored != s.total {
		t.Errorf("%d of %d stored", stored, s.total)
	}
}
