package main

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/sluicelogs/sluice/indexer"
)

// TestTenantCommands: with ACLs enforced, `sluice tenant create` makes a
// tenant whose printed credentials write its raw topic and nothing else;
// list shows it; delete needs --yes and removes it.
func TestTenantCommands(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.EnableACLs(),
		kfake.Superuser("SCRAM-SHA-512", "admin", "admin-secret"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	t.Setenv("SLUICE_KAFKA_BROKERS", strings.Join(c.ListenAddrs(), ","))
	t.Setenv("SLUICE_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
	t.Setenv("SLUICE_KAFKA_SASL_USERNAME", "admin")
	t.Setenv("SLUICE_KAFKA_SASL_PASSWORD", "admin-secret")
	ctx := context.Background()
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"tenant", "create", "--partitions", "2", "shop"}, &out, &errOut); err != nil {
		t.Fatalf("create: %v\n%s", err, errOut.String())
	}
	m := regexp.MustCompile(`SLUICE_KAFKA_SASL_PASSWORD=(\S+)`).FindStringSubmatch(out.String())
	if m == nil || !strings.Contains(out.String(), "SLUICE_KAFKA_SASL_USERNAME=shop") || !strings.Contains(out.String(), `"privileges"`) {
		t.Fatalf("create printed:\n%s", out.String())
	}
	password := m[1]
	// Idempotent; another tenant for the refusals.
	for _, args := range [][]string{{"tenant", "create", "--no-user", "shop"}, {"tenant", "create", "pay"}} {
		out.Reset()
		if err := run(ctx, args, &out, &errOut); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	if strings.Contains(out.String(), password) {
		t.Fatal("another tenant got the same password")
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.SASL(scram.Auth{User: "shop", Pass: password}.AsSha512Mechanism()),
		kgo.UnknownTopicRetries(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := cl.ProduceSync(pctx, &kgo.Record{Topic: "logs.raw.shop", Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatalf("the tenant cannot write its raw topic: %v", err)
	}
	if err := cl.ProduceSync(pctx, &kgo.Record{Topic: "logs.raw.pay", Value: []byte("hello")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("writing another tenant's topic: %v", err)
	}

	// The tenant reads its parsed topic with sluice tail and its own
	// credentials, and is refused another tenant's, with a clear error.
	for _, topic := range []string{"logs.parsed.shop", "logs.parsed.pay"} {
		if err := admin(t, c).ProduceSync(pctx, &kgo.Record{Topic: topic, Value: []byte(`{"log":"parsed line"}`)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("SLUICE_KAFKA_SASL_USERNAME", "shop")
	t.Setenv("SLUICE_KAFKA_SASL_PASSWORD", password)
	out.Reset()
	if err := run(pctx, []string{"tail", "--tenant", "shop", "--from-beginning", "-n", "1"}, &out, &errOut); err != nil || !strings.Contains(out.String(), "parsed line") {
		t.Fatalf("the tenant tails its parsed topic: %v %q", err, out.String())
	}
	if err := run(pctx, []string{"tail", "--tenant", "pay", "--from-beginning", "-n", "1"}, &out, &errOut); err == nil ||
		!strings.Contains(err.Error(), "TOPIC_AUTHORIZATION_FAILED") {
		t.Fatalf("tailing another tenant's topic: %v", err)
	}
	t.Setenv("SLUICE_KAFKA_SASL_USERNAME", "admin")
	t.Setenv("SLUICE_KAFKA_SASL_PASSWORD", "admin-secret")

	out.Reset()
	if err := run(ctx, []string{"tenant", "list"}, &out, &errOut); err != nil || out.String() != "pay\nshop\n" {
		t.Fatalf("list: %q %v", out.String(), err)
	}
	if err := run(ctx, []string{"tenant", "delete", "shop"}, &out, &errOut); err == nil || !strings.Contains(err.Error(), "--yes") {
		t.Fatalf("delete without --yes: %v", err)
	}
	if err := run(ctx, []string{"tenant", "delete", "--yes", "shop"}, &out, &errOut); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if err := run(ctx, []string{"tenant", "create", "Bad_Name"}, &out, &errOut); err == nil {
		t.Fatal("an invalid tenant id was accepted")
	}
}

// admin is a superuser client of c.
func admin(t *testing.T, c *kfake.Cluster) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.SASL(scram.Auth{User: "admin", Pass: "admin-secret"}.AsSha512Mechanism()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// TestElasticsearchRole: the role's pattern matches the tenant's indices
// and no other tenant's.
func TestElasticsearchRole(t *testing.T) {
	role := ElasticsearchRole("sluice", "shop")
	name := role["indices"].([]any)[0].(map[string]any)["names"].([]string)[0]
	re := regexp.MustCompile("^(?:" + strings.Trim(name, "/") + ")$")
	at := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		tenant, stream string
		want           bool
	}{{"shop", "", true}, {"shop", "audit", true}, {"shop-web", "", false}, {"shop-2fa", "", false}, {"shopping", "", false}} {
		index := indexer.IndexName("sluice", tc.tenant, tc.stream, at, time.UTC)
		if got := re.MatchString(index); got != tc.want {
			t.Errorf("%s: %v, want %v", index, got, tc.want)
		}
	}
}
