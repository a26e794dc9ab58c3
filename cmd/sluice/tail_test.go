package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/internal/kafkatest"
	"github.com/sluicelogs/sluice/schemas"
)

// tenantCluster starts a kfake cluster with tenant shop's raw, parsed and
// dead-letter topics, points SLUICE_KAFKA_BROKERS at it and returns it and
// a client of it.
func tenantCluster(t *testing.T) (*kfake.Cluster, *kgo.Client) {
	t.Helper()
	c := kafkatest.Cluster(t, kafkatest.Topics(2, "logs.raw.shop", "logs.parsed.shop", "logs.dlq.shop"))
	t.Setenv("SLUICE_KAFKA_BROKERS", strings.Join(c.ListenAddrs(), ","))
	return c, kafkatest.Client(t, c)
}

func TestProduce(t *testing.T) {
	c, _ := tenantCluster(t)
	old := stdin
	t.Cleanup(func() { stdin = old })
	stdin = strings.NewReader("plain line\n\n{\"log\":\"a record\",\"stream\":\"stderr\"}\n{\"level\":\"info\"}\n")
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"produce", "--tenant", "shop"}, &out, &errOut); err != nil {
		t.Fatalf("produce: %v", err)
	}
	if !strings.Contains(errOut.String(), "3 lines sent to logs.raw.shop, 3 acknowledged") {
		t.Fatalf("report: %q", errOut.String())
	}
	var got []string
	for _, r := range kafkatest.ReadAll(t, c, 10*time.Second, "logs.raw.shop") {
		got = append(got, string(r.Value))
	}
	if len(got) != 3 {
		t.Fatalf("raw topic holds %q", got)
	}
	if err := run(context.Background(), []string{"produce", "--tenant", "No"}, &out, &errOut); err == nil {
		t.Fatal("invalid tenant accepted")
	}
}

func TestTail(t *testing.T) {
	_, cl := tenantCluster(t)
	ctx := context.Background()
	at := time.Date(2026, 11, 21, 10, 30, 0, 0, time.UTC)
	for i, pod := range []string{"cart-1", "cart-2", "cart-1"} {
		r := schemas.Record{ID: pod, Timestamp: at.Add(time.Duration(i) * time.Second), Log: "hello from " + pod,
			Kubernetes: schemas.Kubernetes{NamespaceName: "shop", PodName: pod, ContainerName: "cart"},
			Attributes: map[string]any{"level": []string{"info", "error", "info"}[i]}}
		v, err := schemas.AppendSingleObject(nil, &r)
		if err != nil {
			t.Fatal(err)
		}
		kafkatest.Produce(t, cl, &kgo.Record{Topic: "logs.parsed.shop", Value: v})
	}
	d := schemas.DeadLetter{Reason: "parse", Error: "step 0 (json): invalid character", Stage: "router", Topic: "logs.raw.shop", Offset: 7, Timestamp: at}
	d.SetPayload([]byte("not json"))
	kafkatest.Produce(t, cl, &kgo.Record{Topic: "logs.dlq.shop", Value: d.Marshal()})

	tail := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		tctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		if err := run(tctx, append([]string{"tail", "--tenant", "shop", "--from-beginning"}, args...), &out, &errOut); err != nil {
			t.Fatalf("tail %v: %v\n%s", args, err, errOut.String())
		}
		return out.String()
	}
	got := tail("-n", "3")
	want := "2026-11-21T10:30:00.000Z  shop/cart-1/cart  hello from cart-1\n" +
		"2026-11-21T10:30:01.000Z  shop/cart-2/cart  hello from cart-2\n" +
		"2026-11-21T10:30:02.000Z  shop/cart-1/cart  hello from cart-1\n"
	if got != want {
		t.Errorf("tail:\n%s\nwant:\n%s", got, want)
	}
	if got := tail("-n", "1", "--filter", `attributes["level"] == "error"`); !strings.Contains(got, "cart-2") || strings.Count(got, "\n") != 1 {
		t.Errorf("tail --filter: %q", got)
	}
	if got := tail("-n", "1", "--json"); !strings.HasPrefix(got, `{"id":"cart-1"`) {
		t.Errorf("tail --json: %q", got)
	}
	if got := tail("-n", "1", "--errors"); !strings.Contains(got, "router parse: step 0 (json): invalid character") || !strings.Contains(got, "not json") {
		t.Errorf("tail --errors: %q", got)
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"tail", "--tenant", "shop", "--group", "other.g"}, &out, &out); err == nil {
		t.Error("a group outside the tenant's prefix was accepted")
	}
}
