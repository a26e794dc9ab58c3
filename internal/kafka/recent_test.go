package kafka

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/internal/kafkatest"
)

// TestReadRecent: the records of a window are counted by their timestamps,
// the committed ones only (not aborted records, not markers), over every
// partition; past the reading bound the count comes from the offsets; the
// newest record is returned either way; a missing topic is ErrNoTopic.
func TestReadRecent(t *testing.T) {
	c := kafkatest.Cluster(t, kafkatest.Topics(1, testTopic))
	ctx := context.Background()
	admin := kafkatest.Client(t, c)
	kafkatest.CreateTopics(t, admin, 2, "dlq")
	producer := kafkatest.Client(t, c, kgo.TransactionalID("router-1"),
		kgo.DefaultProduceTopic("dlq"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	now := time.Now()
	txn := func(end kgo.TransactionEndTry, recs ...*kgo.Record) {
		t.Helper()
		if err := producer.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		kafkatest.Produce(t, producer, recs...)
		if err := producer.EndTransaction(ctx, end); err != nil {
			t.Fatal(err)
		}
	}
	rec := func(p int32, age time.Duration, v string) *kgo.Record {
		return &kgo.Record{Partition: p, Timestamp: now.Add(-age), Value: []byte(v)}
	}
	// An hour ago: outside the window.
	txn(kgo.TryCommit, rec(0, time.Hour, "old"), rec(1, time.Hour, "old"))
	// Within it: 3 + 2 committed, 2 aborted.
	txn(kgo.TryCommit, rec(0, 4*time.Minute, "a"), rec(0, 3*time.Minute, "b"), rec(1, 3*time.Minute, "c"))
	txn(kgo.TryAbort, rec(0, time.Minute, "aborted"), rec(1, time.Minute, "aborted"))
	txn(kgo.TryCommit, rec(1, 2*time.Minute, "d"), rec(0, 30*time.Second, "newest"))

	got, err := ReadRecent(ctx, admin, "dlq", now.Add(-5*time.Minute), ReadLimit{Records: 1000, Bytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if got.Records != 5 || got.Estimated || got.Last == nil || string(got.Last.Value) != "newest" {
		t.Fatalf("ReadRecent = %+v (last %s), want 5 exact records, the newest last", got, lastValue(got))
	}

	// Bounded by records or by bytes: more arrived than may be read; the
	// count is the offsets' (records, aborted ones and markers), the
	// newest still found.
	// (Fetches of one batch each, so that the byte bound stops a read
	// that one fetch would have finished.)
	small := kafkatest.Client(t, c, kgo.FetchMaxBytes(1), kgo.FetchMaxPartitionBytes(1))
	for _, limit := range []ReadLimit{{Records: 2, Bytes: 1 << 20}, {Records: 1000, Bytes: 2}} {
		got, err = ReadRecent(ctx, small, "dlq", now.Add(-5*time.Minute), limit)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Estimated || got.Records < 5 || got.Last == nil || string(got.Last.Value) != "newest" {
			t.Fatalf("ReadRecent within %+v = %+v (last %s), want an estimate of at least 5, the newest last", limit, got, lastValue(got))
		}
	}

	// Nothing since: zero, no record.
	got, err = ReadRecent(ctx, admin, "dlq", now.Add(time.Minute), ReadLimit{Records: 1000, Bytes: 1 << 20})
	if err != nil || got.Records != 0 || got.Last != nil {
		t.Fatalf("ReadRecent of the future = %+v, %v; want nothing", got, err)
	}

	if _, err := ReadRecent(ctx, admin, "absent", now.Add(-time.Minute), ReadLimit{Records: 1000, Bytes: 1 << 20}); !errors.Is(err, ErrNoTopic) {
		t.Fatalf("ReadRecent of a missing topic: %v, want ErrNoTopic", err)
	}
}

func lastValue(r Recent) string {
	if r.Last == nil {
		return "none"
	}
	return fmt.Sprintf("%q", r.Last.Value)
}
