package router

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/sluicelogs/sluice/internal/kafkatest"
	"github.com/sluicelogs/sluice/internal/testwait"
)

// fenceCluster starts an in-process Kafka with single-partition topics.
func fenceCluster(t *testing.T, topics ...string) []string {
	t.Helper()
	return kafkatest.Cluster(t, kafkatest.Topics(1, topics...)).ListenAddrs()
}

// openTxn begins a transaction with transactional id txnID and writes
// value to topic in it, leaving it open. The client stays open until the
// test ends and is never used again unless the test does so.
func openTxn(t *testing.T, brokers []string, txnID, topic, value string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl := kafkatest.ClientAt(t, brokers, append(opts, kgo.TransactionalID(txnID))...)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Value: []byte(value)}).FirstErr(); err != nil {
		t.Fatalf("produce in transaction of %s: %v", txnID, err)
	}
	return cl
}

// committedReader reads topic from the start as read_committed consumers
// (the indexers) do.
type committedReader struct {
	cl   *kgo.Client
	seen []string
}

func newCommittedReader(t *testing.T, brokers []string, topic string) *committedReader {
	return &committedReader{cl: kafkatest.ClientAt(t, brokers, kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(50*time.Millisecond))}
}

// read polls for d, or until want was read, and returns all values read so
// far.
func (r *committedReader) read(d time.Duration, want string) []string {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && (want == "" || !slices.Contains(r.seen, want)) {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		r.cl.PollFetches(ctx).EachRecord(func(rec *kgo.Record) { r.seen = append(r.seen, string(rec.Value)) })
		cancel()
	}
	return r.seen
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.DiscardHandler)
}

func txnState(t *testing.T, adm *kadm.Client, txnID string) kadm.DescribedTransaction {
	t.Helper()
	ds, err := adm.DescribeTransactions(context.Background(), txnID)
	if err != nil {
		t.Fatal(err)
	}
	return ds[txnID]
}

// TestFenceAbandoned: a router of the group went away in the middle of a
// transaction; a committed transaction written after it stays invisible to
// read_committed consumers until the abandoned one is fenced, which aborts
// it. This router's own transaction, another group's and a young one are
// left alone.
func TestFenceAbandoned(t *testing.T) {
	brokers := fenceCluster(t, "logs.parsed.a", "logs.parsed.b")
	const group = "sluice-router"
	ctx := context.Background()

	dead := openTxn(t, brokers, group+"-dead", "logs.parsed.a", "aborted")
	openTxn(t, brokers, group+"-self", "logs.parsed.b", "self")
	openTxn(t, brokers, "other-router-dead", "logs.parsed.b", "other group")
	writer := openTxn(t, brokers, "writer", "logs.parsed.a", "committed")
	if err := writer.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}

	reader := newCommittedReader(t, brokers, "logs.parsed.a")
	if got := reader.read(time.Second, ""); len(got) != 0 {
		t.Fatalf("read_committed consumer read %q past an open transaction", got)
	}

	adm := kadm.NewClient(kafkatest.ClientAt(t, brokers))
	counter := prometheus.NewCounter(prometheus.CounterOpts{Name: "fenced"})
	f := newFencer(adm, []kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ClientID("sluice-router-fence")},
		group, "self", time.Hour, testLogger(), counter)

	// Younger than the bound: a live router's.
	fenced, err := f.fenceAbandoned(ctx)
	if err != nil || len(fenced) != 0 {
		t.Fatalf("fenced %q (err %v) with every transaction younger than the bound", fenced, err)
	}
	if st := txnState(t, adm, group+"-dead"); st.State != "Ongoing" {
		t.Fatalf("young transaction is %s, want Ongoing", st.State)
	}

	time.Sleep(100 * time.Millisecond)
	f.olderThan = 50 * time.Millisecond
	fenced, err = f.fenceAbandoned(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{group + "-dead"}; !slices.Equal(fenced, want) {
		t.Fatalf("fenced %q, want %q", fenced, want)
	}
	if n := testutil.ToFloat64(counter); n != 1 {
		t.Errorf("fence counter is %v, want 1", n)
	}

	got := reader.read(10*time.Second, "committed")
	if !slices.Equal(got, []string{"committed"}) {
		t.Fatalf("read_committed consumer read %q after the fence, want only the committed record", got)
	}
	if st := txnState(t, adm, group+"-dead"); st.State == "Ongoing" {
		t.Errorf("fenced transaction is still Ongoing")
	}
	for _, id := range []string{group + "-self", "other-router-dead"} {
		if st := txnState(t, adm, id); st.State != "Ongoing" {
			t.Errorf("transaction of %s is %s, want it left Ongoing", id, st.State)
		}
	}
	// The router that went away could not commit now.
	if err := dead.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Error("the fenced producer committed its transaction")
	}

	fenced, err = f.fenceAbandoned(ctx)
	if err != nil || len(fenced) != 0 {
		t.Fatalf("second round fenced %q (err %v), want nothing", fenced, err)
	}
}

// TestFenceAbandonedWithoutStartTime: with no transaction start time from
// the broker, a transaction is fenced once two checks at least the bound
// apart saw the same one open; a router that keeps committing and starting
// transactions in between is not fenced, also when its producer epoch
// stays the same from one transaction to the next (brokers before Kafka
// 4.0).
func TestFenceAbandonedWithoutStartTime(t *testing.T) {
	brokers := fenceCluster(t, "logs.parsed.a", "logs.parsed.b")
	const group = "g"
	ctx := context.Background()

	openTxn(t, brokers, group+"-dead", "logs.parsed.a", "aborted")
	live := openTxn(t, brokers, group+"-live", "logs.parsed.b", "live 1", kgo.MaxVersions(kversion.V3_9_0()))

	adm := kadm.NewClient(kafkatest.ClientAt(t, brokers))
	f := newFencer(adm, []kgo.Opt{kgo.SeedBrokers(brokers...)}, group, "self", 200*time.Millisecond, testLogger(), nil)
	f.describe = func(ctx context.Context, ids ...string) (kadm.DescribedTransactions, error) {
		ds, err := adm.DescribeTransactions(ctx, ids...)
		for id, d := range ds {
			d.StartTimestamp = -1
			ds[id] = d
		}
		return ds, err
	}

	fenced, err := f.fenceAbandoned(ctx)
	if err != nil || len(fenced) != 0 {
		t.Fatalf("first check fenced %q (err %v), want nothing", fenced, err)
	}
	before := txnState(t, adm, group+"-live")
	time.Sleep(250 * time.Millisecond)
	if err := live.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if err := live.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := live.ProduceSync(ctx, &kgo.Record{Topic: "logs.parsed.b", Value: []byte("live 2")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	if after := txnState(t, adm, group+"-live"); after.ProducerID != before.ProducerID || after.ProducerEpoch != before.ProducerEpoch {
		t.Fatalf("producer id and epoch of the live router changed between transactions (%d/%d, then %d/%d): the test needs them unchanged",
			before.ProducerID, before.ProducerEpoch, after.ProducerID, after.ProducerEpoch)
	}

	fenced, err = f.fenceAbandoned(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{group + "-dead"}; !slices.Equal(fenced, want) {
		t.Fatalf("fenced %q, want %q", fenced, want)
	}
	if err := live.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("the live producer was fenced: %v", err)
	}
	reader := newCommittedReader(t, brokers, "logs.parsed.a")
	if got := reader.read(time.Second, ""); len(got) != 0 {
		t.Fatalf("read_committed consumer read %q from an aborted transaction", got)
	}
}

// TestFencerRun: the loop fences at once and again every interval, and
// stops with its context.
func TestFencerRun(t *testing.T) {
	brokers := fenceCluster(t, "logs.parsed.a")
	openTxn(t, brokers, "g-dead", "logs.parsed.a", "aborted")
	adm := kadm.NewClient(kafkatest.ClientAt(t, brokers))
	counter := prometheus.NewCounter(prometheus.CounterOpts{Name: "fenced"})
	f := newFencer(adm, []kgo.Opt{kgo.SeedBrokers(brokers...)}, "g", "self", 100*time.Millisecond, testLogger(), counter)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { f.run(ctx, 50*time.Millisecond); close(done) }()
	testwait.For(t, 10*time.Second, "the loop's first fencing", func() (bool, string) {
		return testutil.ToFloat64(counter) != 0, ""
	})
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
	if n := testutil.ToFloat64(counter); n != 1 {
		t.Fatalf("fenced %v transactions, want 1", n)
	}
}
