package kafka

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/internal/kafkatest"
)

// TestCaughtUpTransactional: a transactional partition ends with a commit
// or abort marker that no read_committed consumer commits past; CaughtUp
// must still say caught up once every visible record is committed, and not
// before.
func TestCaughtUpTransactional(t *testing.T) {
	c := kafkatest.Cluster(t, kafkatest.Topics(1, testTopic))
	ctx := context.Background()
	admin := kafkatest.Client(t, c)
	adm := kadm.NewClient(admin)
	kafkatest.CreateTopics(t, admin, 1, "tx")
	producer := kafkatest.Client(t, c, kgo.TransactionalID("p"), kgo.DefaultProduceTopic("tx"))
	txn := func(n int, commit kgo.TransactionEndTry) {
		t.Helper()
		if err := producer.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for range n {
			kafkatest.Produce(t, producer, &kgo.Record{Value: []byte("v")})
		}
		if err := producer.EndTransaction(ctx, commit); err != nil {
			t.Fatal(err)
		}
	}
	commitAt := func(offset int64) {
		t.Helper()
		var o kadm.Offsets
		o.Add(kadm.Offset{Topic: "tx", Partition: 0, At: offset, LeaderEpoch: -1})
		if _, err := adm.CommitOffsets(ctx, "g", o); err != nil {
			t.Fatal(err)
		}
	}
	check := func(want bool) {
		t.Helper()
		got, err := CaughtUp(ctx, admin, "g", "tx")
		if err != nil || got != want {
			t.Fatalf("CaughtUp = %v, %v; want %v", got, err, want)
		}
	}
	txn(3, kgo.TryCommit) // records 0-2, commit marker 3
	if ok, _ := CaughtUp(ctx, admin, "g", "tx"); ok {
		t.Fatal("caught up with nothing committed")
	}
	commitAt(2)
	check(false) // record 2 not processed
	commitAt(3)
	check(true)          // only the marker lies beyond
	txn(2, kgo.TryAbort) // aborted records 4-5, abort marker 6
	check(true)
	txn(1, kgo.TryCommit) // record 7, marker 8
	check(false)
	commitAt(8)
	check(true)
}
