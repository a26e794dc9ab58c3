package router

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelogs/sluice/internal/kafkatest"
	"github.com/sluicelogs/sluice/internal/testwait"
)

// TestStatusScales: 10,000 tenants' statuses are published in a few
// produce requests and well under a heartbeat; a round without changes
// publishes nothing; a change publishes that tenant only; stopping
// tombstones every status record of the router.
func TestStatusScales(t *testing.T) {
	c := kafkatest.Cluster(t)
	var produceRequests atomic.Int64
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		produceRequests.Add(1)
		return nil, nil, false
	})
	cl := kafkatest.Client(t, c)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := EnsureCompactedTopic(ctx, kadm.NewClient(cl), testTopics.Status()); err != nil {
		t.Fatal(err)
	}

	const tenants = 10_000
	reg := testRegistry(t)
	for i := range tenants {
		reg.get(fmt.Sprintf("t%05d", i))
	}
	var errs atomic.Int64
	pub := newStatusPublisher(cl, testTopics, "r1", reg, 10*time.Minute, func(string, error) { errs.Add(1) })

	start := time.Now()
	if n := pub.round(ctx, true); n != tenants {
		t.Fatalf("first round produced %d records, want %d", n, tenants)
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("%d statuses in %s, %d produce requests", tenants, took, produceRequests.Load())
	if took > 30*time.Second {
		t.Errorf("publishing %d statuses took %s", tenants, took)
	}
	if n := produceRequests.Load(); n > tenants/50 {
		t.Errorf("%d produce requests for %d statuses: not batched", n, tenants)
	}
	snap, err := ReadStatus(ctx, cl, testTopics.Status(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Statuses) != tenants {
		t.Fatalf("%d tenants in the status topic, want %d", len(snap.Statuses), tenants)
	}

	if n := pub.round(ctx, false); n != 0 {
		t.Errorf("a round without changes produced %d records", n)
	}
	reg.setPaused("t00042", "output topic does not exist", time.Now().Add(time.Second))
	if n := pub.round(ctx, false); n != 1 {
		t.Errorf("one change produced %d records, want 1", n)
	}

	if err := pub.stop(ctx); err != nil {
		t.Fatal(err)
	}
	snap, err = ReadStatus(ctx, cl, testTopics.Status(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Statuses) != 0 {
		t.Errorf("%d tenants still have this router's status after it stopped", len(snap.Statuses))
	}
	if errs.Load() != 0 {
		t.Errorf("%d publishing errors", errs.Load())
	}
}

// TestStatusOfBrokenTenant: one tenant's status topic is missing (its
// status records fail); another tenant's status still reaches its own
// topic at once, and the missing one is reported.
func TestStatusOfBrokenTenant(t *testing.T) {
	c := kafkatest.Cluster(t, kafkatest.Topics(1, testTopics.TenantStatus("good")))
	// As Run makes it: a missing topic fails its records quickly.
	cl := kafkatest.Client(t, c, kgo.UnknownTopicRetries(2))
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := EnsureCompactedTopic(ctx, kadm.NewClient(cl), testTopics.Status()); err != nil {
		t.Fatal(err)
	}
	reg := testRegistry(t)
	for _, tenant := range []string{"broken", "good"} {
		reg.apply(tenant, []byte("tenant: "+tenant+"\nversion: 1\nsteps:\n  - set: {field: a, value: b}\n"), false)
	}
	var failed atomic.Value
	pub := newStatusPublisher(cl, testTopics, "r1", reg, 10*time.Minute, func(tenant string, _ error) { failed.Store(tenant) })
	start := time.Now()
	pub.round(ctx, true)
	reader := kafkatest.Client(t, c)
	testwait.For(t, 30*time.Second, "the good tenant's status to reach its topic", func() (bool, string) {
		snap, err := ReadStatus(ctx, reader, testTopics.TenantStatus("good"), "good")
		if err != nil {
			t.Fatal(err)
		}
		return len(snap.Statuses) == 1, fmt.Sprintf("statuses %v", snap.Statuses)
	})
	t.Logf("the good tenant's status was readable after %s", time.Since(start))
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the good tenant's status took %s beside a tenant without its status topic", d)
	}
	testwait.For(t, 60*time.Second, "the broken tenant's failed status to be reported", func() (bool, string) {
		return failed.Load() != nil, ""
	})
	if got := failed.Load(); got != "broken" {
		t.Errorf("failure reported for %v, want broken", got)
	}
}
