package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/indexer"
	"github.com/sluicelogs/sluice/internal/apptest"
	"github.com/sluicelogs/sluice/internal/esfake"
	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/internal/kafkatest"
	"github.com/sluicelogs/sluice/internal/testwait"
	"github.com/sluicelogs/sluice/schemas"
)

// TestIndexerSurvivesKill9 runs the real binary as the indexer against an
// Elasticsearch fake that rejects some requests and items, kills it with
// SIGKILL at random moments while records stream into three parsed topics,
// restarts it each time, and lets a last instance catch up and stop on
// SIGTERM. Then every record is stored exactly once, in the index of its
// topic, and every record that is not a record is in its tenant's
// dead-letter topic.
func TestIndexerSurvivesKill9(t *testing.T) {
	apptest.Binary(t)
	const (
		group        = "sluice-indexer"
		kills        = 6
		maxRecords   = 24_000
		garbageEvery = 1500 // one record in this many is not a record
	)
	// The event time is noon yesterday: the index day never changes
	// during the test.
	eventTime := time.Now().UTC().Truncate(24 * time.Hour).Add(-12 * time.Hour)
	type target struct{ topic, tenant, dataset, dlq, index string }
	var targets []target
	for _, tg := range []target{{"logs.parsed.alpha", "alpha", "", "logs.dlq.alpha", ""},
		{"logs.parsed.alpha.audit", "alpha", "audit", "logs.dlq.alpha", ""},
		{"logs.parsed.beta", "beta", "", "logs.dlq.beta", ""}} {
		tg.index = indexer.IndexName("sluice", tg.tenant, tg.dataset, eventTime, time.UTC)
		targets = append(targets, tg)
	}
	parsed := []string{targets[0].topic, targets[1].topic, targets[2].topic}
	dlqTopics := []string{"logs.dlq.alpha", "logs.dlq.beta"}

	cluster := kafkatest.Cluster(t, kafkatest.Topics(3, append(parsed, dlqTopics...)...))
	brokers := cluster.ListenAddrs()
	cl := kafkatest.Client(t, cluster)

	// Faults keep retries in flight when the kills land.
	es := esfake.Start(t, esfake.Seed(5))
	es.SetFaults(esfake.Faults{RequestStatus: 429, RequestFraction: 0.05, ItemFraction: 0.1, Latency: 2 * time.Millisecond})

	// Every process runs under the same SLUICE_INDEXER_ID, as a
	// StatefulSet pod does: static membership, so a restarted indexer
	// takes its partitions back at once rather than after the session
	// timeout of the member that was killed.
	env := func() []string {
		return []string{
			"SLUICE_KAFKA_BROKERS=" + strings.Join(brokers, ","),
			"SLUICE_ELASTICSEARCH_URLS=" + es.URL(),
			"SLUICE_INDEXER_ID=crash-indexer",
			"SLUICE_INDEXER_GROUP=" + group,
			"SLUICE_INDEXER_FLUSH_BYTES=32768",
			"SLUICE_INDEXER_FLUSH_INTERVAL=50ms",
			"SLUICE_INDEXER_COMMIT_INTERVAL=100ms",
			"SLUICE_INDEXER_RETRY_MAX=200ms",
			"SLUICE_INDEXER_RESCAN_INTERVAL=1s",
			"SLUICE_INDEXER_SHUTDOWN_TIMEOUT=10s",
			"SLUICE_INDEXER_RETENTION_DAYS=0",
			"SLUICE_TELEMETRY_ADDR=",
			"SLUICE_LOG_LEVEL=info",
		}
	}

	// What the producer sent: the target of every record id, and the place
	// (topic/partition/offset) of every record that is not a record.
	var (
		mu       sync.Mutex
		sentIDs  = map[string]target{}
		garbage  = map[string]target{}
		stop     atomic.Bool
		producer sync.WaitGroup
	)
	producer.Go(func() {
		for n := 0; n < maxRecords && !stop.Load(); {
			recs := make([]*kgo.Record, 0, 60)
			ids := make(map[*kgo.Record]string, 60) // results come in completion order
			for range 60 {
				tg := targets[n%len(targets)]
				id := fmt.Sprintf("crash-%06d", n)
				var v []byte
				if n%garbageEvery == garbageEvery-1 {
					v, id = []byte{0xc3, 0x01, 0xde, 0xad}, "" // a single-object header of no known schema
				} else {
					rec := schemas.Record{ID: id, Timestamp: eventTime, ObservedTimestamp: eventTime, Stream: "stdout",
						Log:        fmt.Sprintf("line %d of %s", n, tg.topic),
						Kubernetes: schemas.Kubernetes{PodName: fmt.Sprintf("pod-%d", n%5), NamespaceName: tg.tenant},
						Attributes: map[string]any{"seq": int64(n), "level": "info"}}
					var err error
					if v, err = schemas.AppendSingleObject(nil, &rec); err != nil {
						t.Error(err)
						return
					}
				}
				r := &kgo.Record{Topic: tg.topic, Key: fmt.Appendf(nil, "k%d", n%11), Value: v}
				recs = append(recs, r)
				ids[r] = id
				n++
			}
			res := cl.ProduceSync(context.Background(), recs...)
			if err := res.FirstErr(); err != nil {
				t.Errorf("produce: %v", err)
				return
			}
			mu.Lock()
			for _, r := range res {
				tg := targets[0]
				for _, x := range targets {
					if x.topic == r.Record.Topic {
						tg = x
					}
				}
				if id := ids[r.Record]; id != "" {
					sentIDs[id] = tg
				} else {
					garbage[recordPlace(r.Record.Topic, r.Record.Partition, r.Record.Offset)] = tg
				}
			}
			mu.Unlock()
			time.Sleep(5 * time.Millisecond)
		}
	})
	stopProducer := func() {
		stop.Store(true)
		producer.Wait()
	}
	t.Cleanup(stopProducer)

	rng := rand.New(rand.NewPCG(9, 21))
	for k := range kills {
		id := fmt.Sprintf("indexer %d", k)
		p := apptest.Sluice(t, env(), "indexer")
		select {
		case <-p.Done():
			t.Fatalf("%s exited before it was killed: %v", id, p.Wait())
		case <-time.After(time.Duration(200+rng.IntN(700)) * time.Millisecond):
		}
		if err := p.Kill(); err != nil {
			t.Fatal(err)
		}
		if err := p.Wait(); !apptest.Killed(err) {
			t.Fatalf("%s: %v, want killed by SIGKILL", id, err)
		}
		t.Logf("kill %d/%d: %d ids stored, %d conflicts so far", k+1, kills, len(es.IDs()), es.Stats().Conflicts)
	}
	stopProducer()
	mu.Lock()
	produced, undecodable := len(sentIDs), len(garbage)
	mu.Unlock()

	final := apptest.Sluice(t, env(), "indexer")
	if !testwait.Eventually(t, 45*time.Second, "the last indexer to commit every offset", func() (bool, string) {
		return committedToEnd(cl, group, parsed), ""
	}) {
		_ = final.Signal(syscall.SIGQUIT) // its goroutines, in the output
		_ = final.Wait()
		t.Fatalf("%d of %d ids stored", len(es.IDs()), produced)
	}
	final.Terminate(t)

	// Every record is stored once, in the index of its topic; nothing else
	// is stored.
	held := es.IDs()
	missing, doubled, misplaced := 0, 0, 0
	for id, tg := range sentIDs {
		switch indices := held[id]; {
		case len(indices) == 0:
			if missing++; missing <= 10 {
				t.Errorf("%s (%s) is not stored", id, tg.topic)
			}
		case len(indices) > 1:
			if doubled++; doubled <= 10 {
				t.Errorf("%s (%s) is stored in %v", id, tg.topic, indices)
			}
		case indices[0] != tg.index:
			if misplaced++; misplaced <= 10 {
				t.Errorf("%s (%s) is stored in %s, want %s", id, tg.topic, indices[0], tg.index)
			}
		}
	}
	for id, indices := range held {
		if _, ok := sentIDs[id]; !ok {
			t.Errorf("%s is stored in %v, but was never produced", id, indices)
		}
	}

	// Every record that is not a record is dead-lettered to its tenant's
	// topic. Dead letters are at least once: an indexer killed after
	// writing one and before committing past its record writes it again
	// after the restart, so each kill may add a copy of the dead letters
	// in flight, and no more.
	dead := readIndexerDeadLetters(t, cluster, dlqTopics...)
	copies := 0
	for p, tg := range garbage {
		letters := dead[p]
		if len(letters) == 0 {
			t.Errorf("record %s is not a record but was not dead-lettered", p)
			continue
		}
		copies += len(letters) - 1
		if len(letters) > 1+kills {
			t.Errorf("record %s dead-lettered %d times in %d kills", p, len(letters), kills)
		}
		for _, d := range letters {
			if d.topic != tg.dlq || d.Reason != "decode" || d.Stage != "indexer" || d.Instance != "crash-indexer" {
				t.Errorf("dead letter of %s in %s: reason %q, stage %q, instance %q; want %s, decode, indexer, crash-indexer",
					p, d.topic, d.Reason, d.Stage, d.Instance, tg.dlq)
			}
		}
	}
	for p, letters := range dead {
		if _, ok := garbage[p]; !ok {
			t.Errorf("record %s dead-lettered (%s: %s) but it is a record", p, letters[0].Reason, letters[0].Error)
		}
	}

	st := es.Stats()
	t.Logf("%d records produced (+%d not records), %d kills, %d stored, %d missing, %d doubled, %d misplaced; "+
		"%d duplicates answered 409, %d items rejected 429, %d requests faulted; %d dead letters (%d repeated after a kill)",
		produced, undecodable, kills, len(held), missing, doubled, misplaced,
		st.Conflicts, st.ItemRejected, st.RequestsFaulted, undecodable+copies, copies)
	if st.Conflicts == 0 {
		t.Error("no document was answered 409: no kill landed while stored records were not yet committed, and the test proved nothing")
	}
	if st.ItemRejected == 0 || st.RequestsFaulted == 0 {
		t.Errorf("the faults were not exercised: %+v", st)
	}
}

func recordPlace(topic string, partition int32, offset int64) string {
	return fmt.Sprintf("%s/%d/%d", topic, partition, offset)
}

// committedToEnd reports whether group's committed offsets reached the end
// of every non-empty partition of topics.
func committedToEnd(cl *kgo.Client, group string, topics []string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ok, _ := kafka.CaughtUp(ctx, cl, group, topics...)
	return ok
}

// indexerDeadLetter is a dead letter and the topic it was read from.
type indexerDeadLetter struct {
	schemas.DeadLetter
	topic string
}

// readIndexerDeadLetters reads every record of the dead-letter topics, to their
// end, by the place of the record each carries.
func readIndexerDeadLetters(t testing.TB, c *kfake.Cluster, topics ...string) map[string][]indexerDeadLetter {
	t.Helper()
	out := map[string][]indexerDeadLetter{}
	for _, r := range kafkatest.ReadAll(t, c, 20*time.Second, topics...) {
		d := indexerDeadLetter{topic: r.Topic}
		if err := json.Unmarshal(r.Value, &d.DeadLetter); err != nil {
			t.Errorf("dead letter at %s/%d/%d is not JSON: %v", r.Topic, r.Partition, r.Offset, err)
			continue
		}
		p := recordPlace(d.Topic, d.Partition, d.Offset)
		out[p] = append(out[p], d)
	}
	return out
}
