package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/internal/apptest"
	"github.com/sluicelogs/sluice/internal/kafkatest"
	"github.com/sluicelogs/sluice/internal/testwait"
	"github.com/sluicelogs/sluice/schemas"
)

// TestRouterDecompressionBomb: a tenant with nothing but produce rights on
// its own raw topic sends a zstd record of 300 MiB (about 30 KB on the
// wire, well under Kafka's limits) between ordinary records, while another
// tenant's records flow. The router (the real binary) must neither die nor
// grow past its memory limit: the bomb goes to the tenant's dead-letter
// topic as too_large, both tenants' other records arrive exactly once, and
// a router killed right after the bomb and restarted (its committed offset
// then points at the bomb) gets past it too.
func TestRouterDecompressionBomb(t *testing.T) {
	apptest.Binary(t)
	var topics []string
	for _, tn := range []string{"evil", "fresh", "good"} {
		topics = append(topics, "logs.raw."+tn, "logs.parsed."+tn, "logs.dlq."+tn)
	}
	cluster := kafkatest.Cluster(t, kafkatest.Topics(1, topics...))
	brokers := cluster.ListenAddrs()
	env := []string{
		"SLUICE_KAFKA_BROKERS=" + strings.Join(brokers, ","),
		"SLUICE_ROUTER_ID=r1",
		"SLUICE_ROUTER_RESCAN_INTERVAL=500ms",
		"SLUICE_TELEMETRY_ADDR=",
		"SLUICE_LOG_LEVEL=info",
	}
	cl := kafkatest.Client(t, cluster)

	// The healthy tenant sends a record every 20ms throughout.
	var stop atomic.Bool
	var good atomic.Int64
	var wg sync.WaitGroup
	t.Cleanup(func() { stop.Store(true); wg.Wait() }) // also when the test ends early
	wg.Go(func() {
		for n := 0; !stop.Load(); n++ {
			if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "logs.raw.good", Value: fmt.Appendf(nil, "good %d", n)}).FirstErr(); err != nil {
				if !stop.Load() {
					t.Error(err)
				}
				return
			}
			good.Store(int64(n + 1))
			time.Sleep(20 * time.Millisecond)
		}
	})

	router := apptest.Sluice(t, env, "router")
	evil := kafkatest.Client(t, cluster,
		kgo.ProducerBatchCompression(kgo.ZstdCompression()),
		kgo.ProducerBatchMaxBytes(400<<20), kgo.BrokerMaxWriteBytes(400<<20))
	produceEvil := func(v []byte) {
		t.Helper()
		kafkatest.Produce(t, evil, &kgo.Record{Topic: "logs.raw.evil", Value: v})
	}
	// Once the record before the bomb is committed, the router is killed:
	// the next one starts with its committed offset at the bomb, the case
	// where a consumer cannot skip a batch it was never given.
	produceEvil([]byte("evil before"))
	waitCommitted(t, brokers, "logs.parsed.evil", 1)
	if err := router.Kill(); err != nil {
		t.Fatal(err)
	}
	produceEvil(make([]byte, 300<<20))
	produceEvil([]byte("evil after"))
	// Another tenant's very first record is a bomb: nothing of its
	// partition was ever read or committed. Each is produced on its own:
	// the bomb is a batch of its own.
	for _, v := range [][]byte{make([]byte, 300<<20), []byte("fresh after")} {
		kafkatest.Produce(t, evil, &kgo.Record{Topic: "logs.raw.fresh", Value: v})
	}
	router = apptest.Sluice(t, env, "router")
	waitCommitted(t, brokers, "logs.parsed.evil", 2)
	waitCommitted(t, brokers, "logs.parsed.fresh", 1)
	router.SamplePeak()
	time.Sleep(2 * time.Second)
	stop.Store(true)
	wg.Wait()

	cons := kafkatest.Client(t, cluster, kgo.ConsumeTopics("logs.parsed.good", "logs.parsed.evil", "logs.parsed.fresh", "logs.dlq.good", "logs.dlq.evil", "logs.dlq.fresh"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(100*time.Millisecond))
	dec := schemas.NewDecoder()
	seen := map[string]int{}
	var dead []schemas.DeadLetter
	want := int(good.Load()) + 3
	testwait.Eventually(t, 30*time.Second, fmt.Sprintf("%d distinct records and both bombs' dead letters", want), func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cons.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			if strings.Contains(r.Topic, ".dlq.") {
				var d schemas.DeadLetter
				if err := json.Unmarshal(r.Value, &d); err != nil {
					t.Errorf("dead letter: %v", err)
				}
				dead = append(dead, d)
				return
			}
			rec, _, err := dec.Decode(context.Background(), r.Value)
			if err != nil {
				t.Errorf("decode: %v", err)
				return
			}
			seen[rec.Log]++
		})
		return len(seen) >= want && len(dead) >= 2, fmt.Sprintf("%d distinct records, %d dead letters", len(seen), len(dead))
	})
	router.Terminate(t) // which reads its peak resident set too
	peak := router.Usage().MaxRSS

	for n := range int(good.Load()) {
		if c := seen[fmt.Sprintf("good %d", n)]; c != 1 {
			t.Errorf("good %d seen %d times, want once", n, c)
		}
	}
	for _, l := range []string{"evil before", "evil after", "fresh after"} {
		if c := seen[l]; c != 1 {
			t.Errorf("%q seen %d times, want once", l, c)
		}
	}
	bombs := map[string]bool{}
	for _, d := range dead {
		if d.Reason != "too_large" || d.PayloadSize != 300<<20 || !d.PayloadTruncated {
			t.Errorf("dead letter %s/%d: reason %q size %d truncated %v, want the bomb as too_large", d.Topic, d.Offset, d.Reason, d.PayloadSize, d.PayloadTruncated)
		}
		if bombs[d.Topic] {
			t.Errorf("the bomb of %s dead-lettered twice", d.Topic)
		}
		bombs[d.Topic] = true
	}
	if !bombs["logs.raw.evil"] || !bombs["logs.raw.fresh"] {
		t.Errorf("dead letters for %v, want both bombs", bombs)
	}
	t.Logf("router peak RSS %d MiB; %d dead letters", peak>>20, len(dead))
	// The chart gives the router 512 Mi; the bound keeps a wide margin.
	if peak > 256<<20 {
		t.Errorf("router peak RSS %d MiB, want under 256 MiB", peak>>20)
	}
}

// waitCommitted waits until topic holds n committed records.
func waitCommitted(t *testing.T, brokers []string, topic string, n int) {
	t.Helper()
	cons, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	// A router killed mid-transaction holds its group's offsets (and so
	// the next router's start) until its transaction is aborted: at the
	// latest at the transaction timeout, 60s.
	got := 0
	testwait.For(t, 90*time.Second, fmt.Sprintf("%d committed records in %s", n, topic), func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		got += cons.PollFetches(ctx).NumRecords()
		cancel()
		return got >= n, fmt.Sprintf("%d committed records", got)
	})
}
