package kafkatest

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestRoundTrip: a seeded topic and a created one take records that
// ReadAll reads back in order, and only up to the end they had.
func TestRoundTrip(t *testing.T) {
	c := Cluster(t, Topics(1, "seeded"))
	if n := len(c.ListenAddrs()); n != 1 {
		t.Fatalf("%d brokers, want 1", n)
	}
	cl := Client(t, c)
	CreateTopics(t, cl, 2, "created")
	var recs []*kgo.Record
	for _, v := range []string{"a", "b", "c"} {
		recs = append(recs, &kgo.Record{Topic: "seeded", Value: []byte(v)}, &kgo.Record{Topic: "created", Value: []byte(v)})
	}
	Produce(t, cl, recs...)

	values := func(rs []*kgo.Record, topic string) []string {
		var out []string
		for _, r := range rs {
			if r.Topic == topic {
				out = append(out, string(r.Value))
			}
		}
		return out
	}
	got := ReadAll(t, c, 10*time.Second, "seeded")
	if v := values(got, "seeded"); len(got) != 3 || !slices.Equal(v, []string{"a", "b", "c"}) {
		t.Errorf("ReadAll(seeded) = %q of %d records", v, len(got))
	}
	got = ReadAll(t, c, 10*time.Second, "seeded", "created")
	if v := values(got, "created"); len(got) != 6 || len(v) != 3 {
		t.Errorf("ReadAll(seeded, created): %d records, %q from created", len(got), v)
	}
}

// TestWith: kfake options pass through; NumBrokers replaces the default.
func TestWith(t *testing.T) {
	c := Cluster(t, With(kfake.NumBrokers(3)), Topics(3, "t"))
	if n := len(c.ListenAddrs()); n != 3 {
		t.Fatalf("%d brokers, want 3", n)
	}
	if ps := c.PartitionInfos("t"); len(ps) != 3 {
		t.Fatalf("%d partitions of t, want 3", len(ps))
	}
}

// TestSuperuserAndACLs: with SASL and ACLs on, the superuser authenticated
// with SCRAM may create topics, and another user may not.
func TestSuperuserAndACLs(t *testing.T) {
	c := Cluster(t, Superuser("admin", "admin-secret"), ACLs(),
		With(kfake.User("SCRAM-SHA-512", "nobody", "nobody-secret")))
	CreateTopics(t, Client(t, c, SCRAM("admin", "admin-secret")), 1, "allowed")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := Admin(t, c, SCRAM("nobody", "nobody-secret")).CreateTopics(ctx, 1, 1, nil, "refused")
	if err == nil {
		err = res.Error()
	}
	if err == nil {
		t.Fatal("a user without ACLs created a topic")
	}
	if _, err := Admin(t, c, SCRAM("admin", "wrong"), kgo.RequestRetries(0)).ListTopics(ctx); err == nil {
		t.Fatal("a wrong password was accepted")
	}
}

// TestClosedWithTheTest: the cluster stops listening when the test that
// started it ends.
func TestClosedWithTheTest(t *testing.T) {
	var addr string
	t.Run("inner", func(t *testing.T) { addr = Cluster(t).ListenAddrs()[0] })
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Fatalf("%s still listens after its test ended", addr)
	}
}
