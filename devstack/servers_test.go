package devstack

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/internal/kafkatest"
)

// TestKafkaRestart: the embedded Kafka stopped and started again listens
// on the same address and keeps what it held.
func TestKafkaRestart(t *testing.T) {
	k, err := StartKafka("127.0.0.1:0", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	brokers := k.Brokers()
	cl := kafkatest.ClientAt(t, brokers)
	kafkatest.CreateTopics(t, cl, 1, "t")
	kafkatest.Produce(t, cl, &kgo.Record{Topic: "t", Value: []byte("before")})
	k.Stop()
	if err := k.Restart(); err != nil {
		t.Fatal(err)
	}
	if got := k.Brokers(); strings.Join(got, ",") != strings.Join(brokers, ",") {
		t.Fatalf("brokers %v after the restart, were %v", got, brokers)
	}
	cons := kafkatest.ClientAt(t, brokers, kgo.ConsumeTopics("t"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	recs := cons.PollFetches(ctx).Records()
	if len(recs) != 1 || string(recs[0].Value) != "before" {
		t.Fatalf("records after the restart: %v", recs)
	}
	k.Close()
	if err := k.Restart(); err != nil {
		t.Fatalf("restart after close: %v", err)
	}
	if c, err := net.DialTimeout("tcp", brokers[0], time.Second); err == nil {
		c.Close()
		t.Error("a closed Kafka was started again")
	}
}

// TestStore: the embedded store serves on its address, answers with the
// faults asked for, and says when its address is taken.
func TestStore(t *testing.T) {
	st, err := StartStore("127.0.0.1:0", t.TempDir(), nil, Faults{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	status := func() int {
		res, err := http.Get(st.URL() + "/_cat/indices")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if s := status(); s != http.StatusOK {
		t.Errorf("status %d", s)
	}
	st.SetFaults(Faults{Status: 429, Requests: 1})
	if s := status(); s != http.StatusTooManyRequests {
		t.Errorf("status %d with every request faulted", s)
	}
	st.SetFaults(Faults{Requests: 1})
	if s := status(); s != http.StatusServiceUnavailable {
		t.Errorf("status %d with every request faulted, no status given", s)
	}
	_, err = StartStore(strings.TrimPrefix(st.URL(), "http://"), t.TempDir(), nil, Faults{})
	if err == nil || !strings.Contains(err.Error(), "is not free") {
		t.Errorf("a second store on the address: %v", err)
	}
}
