// Package kafkatest is the one way Sluice's tests start an in-process
// Kafka (kfake) and talk to it: Cluster starts one that is closed when
// the test ends; Client and Admin are clients of it, closed with the test;
// CreateTopics, Produce and ReadAll do the steps tests repeat, failing the
// test when one fails.
//
// It is for tests only, and depends on nothing of Sluice's, so that every
// package's tests can use it.
package kafkatest

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// An Opt configures a Cluster.
type Opt func(*[]kfake.Opt)

// Topics seeds the cluster with topics of partitions partitions each. It
// may be given more than once.
func Topics(partitions int32, topics ...string) Opt {
	return With(kfake.SeedTopics(partitions, topics...))
}

// Superuser turns on SASL with a SCRAM-SHA-512 superuser (who is allowed
// everything even with ACLs). Clients authenticate with SCRAM.
func Superuser(user, password string) Opt {
	return With(kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", user, password))
}

// ACLs turns on ACL checks: only superusers and what ACLs allow are
// allowed.
func ACLs() Opt {
	return With(kfake.EnableACLs())
}

// With passes kfake options through as they are (kfake.NumBrokers
// replaces the default of one broker).
func With(opts ...kfake.Opt) Opt {
	return func(all *[]kfake.Opt) { *all = append(*all, opts...) }
}

// Cluster starts a kfake cluster of one broker configured by opts, closed
// when the test ends.
func Cluster(t testing.TB, opts ...Opt) *kfake.Cluster {
	t.Helper()
	all := []kfake.Opt{kfake.NumBrokers(1)}
	for _, o := range opts {
		o(&all)
	}
	c, err := kfake.NewCluster(all...)
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// Client is a client of c with opts, closed when the test ends.
func Client(t testing.TB, c *kfake.Cluster, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return ClientAt(t, c.ListenAddrs(), opts...)
}

// ClientAt is a client of the brokers at addresses brokers with opts,
// closed when the test ends: Client for a test that keeps the addresses
// rather than the cluster, or restarts a cluster on them.
func ClientAt(t testing.TB, brokers []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		t.Fatalf("kafka client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// Admin is an admin client of c with opts, closed when the test ends.
func Admin(t testing.TB, c *kfake.Cluster, opts ...kgo.Opt) *kadm.Client {
	t.Helper()
	return kadm.NewClient(Client(t, c, opts...))
}

// SCRAM authenticates a client as user with SCRAM-SHA-512, as Superuser
// and the Tenants' users expect.
func SCRAM(user, password string) kgo.Opt {
	return kgo.SASL(scram.Auth{User: user, Pass: password}.AsSha512Mechanism())
}

// CreateTopics creates topics of partitions partitions each (replication
// factor 1) through cl, and fails the test unless every one was created.
func CreateTopics(t testing.TB, cl *kgo.Client, partitions int32, topics ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := kadm.NewClient(cl).CreateTopics(ctx, partitions, 1, nil, topics...)
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		t.Fatalf("create topics %v: %v", topics, err)
	}
}

// Produce produces records through cl and waits for them, failing the
// test if one fails.
func Produce(t testing.TB, cl *kgo.Client, records ...*kgo.Record) {
	t.Helper()
	for _, r := range cl.ProduceSync(context.Background(), records...) {
		if r.Err != nil {
			t.Fatalf("produce to %s: %v", r.Record.Topic, r.Err)
		}
	}
}

// ReadAll reads topics from their start up to the end they have when it
// is called, with a new client of c, and returns the records in the order
// they were fetched (a partition's in offset order). It fails the test if
// they are not all read within timeout. It counts records against
// offsets, so it is for topics written without transactions: a
// transaction's marker takes an offset but is no record.
func ReadAll(t testing.TB, c *kfake.Cluster, timeout time.Duration, topics ...string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(topics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatalf("kafka client: %v", err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("end offsets of %v: %v", topics, err)
	}
	var want int64
	ends.Each(func(o kadm.ListedOffset) { want += o.Offset })
	var out []*kgo.Record
	for int64(len(out)) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of the %d records of %v within %s", len(out), want, topics, timeout)
		}
		out = append(out, fs.Records()...)
	}
	return out
}
