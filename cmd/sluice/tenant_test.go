package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/internal/kafkatest"
)

// TestTenantCommands: with ACLs enforced, `sluice tenant create` makes a
// tenant whose printed credentials write its raw topic and nothing else;
// list shows it; delete needs --yes and removes it.
func TestTenantCommands(t *testing.T) {
	c := kafkatest.Cluster(t, kafkatest.Superuser("admin", "admin-secret"), kafkatest.ACLs())
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
	// The role printed is JSON after its comment lines, and says what DLS
	// needs.
	printedRole := func() map[string]any {
		t.Helper()
		_, js, ok := strings.Cut(out.String(), "\n{\n")
		var role map[string]any
		if err := json.Unmarshal([]byte("{\n"+js), &role); !ok || err != nil {
			t.Fatalf("no role in:\n%s (%v)", out.String(), err)
		}
		return role
	}
	if role := printedRole(); len(role["indices"].([]any)) != 2 || !strings.Contains(out.String(), "document-level security") ||
		!strings.Contains(out.String(), "Basic license") || !strings.Contains(out.String(), "OpenSearch") {
		t.Errorf("create printed:\n%s", out.String())
	}
	// Idempotent; another tenant for the refusals.
	for _, args := range [][]string{{"tenant", "create", "--no-user", "--shared-indices=false", "shop"}, {"tenant", "create", "pay"}} {
		out.Reset()
		if err := run(ctx, args, &out, &errOut); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if slices.Contains(args, "--shared-indices=false") {
			if role := printedRole(); len(role["indices"].([]any)) != 1 || strings.Contains(out.String(), `"query"`) {
				t.Errorf("with --shared-indices=false, create printed:\n%s", out.String())
			}
		}
	}
	if strings.Contains(out.String(), password) {
		t.Fatal("another tenant got the same password")
	}

	cl := kafkatest.Client(t, c, kafkatest.SCRAM("shop", password), kgo.UnknownTopicRetries(1))
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
	return kafkatest.Client(t, c, kafkatest.SCRAM("admin", "admin-secret"))
}

// TestOutputYAML: tenant create and pipeline apply with --output yaml
// print the resource and touch no Kafka (the brokers named do not exist),
// and a pipeline that fails validation prints nothing.
func TestOutputYAML(t *testing.T) {
	t.Setenv("SLUICE_KAFKA_BROKERS", "127.0.0.1:1")
	ctx := context.Background()
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"tenant", "create", "--output", "yaml", "--datasets", "audit", "--partitions", "6", "shop"}, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	for _, want := range []string{"apiVersion: sluice.io/v1alpha1", "kind: Tenant", "name: shop", "partitions: 6", "- audit", "name: sluice-kafka"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("tenant create --output yaml printed no %q:\n%s", want, out.String())
		}
	}
	// --streams, the former name of --datasets, prints the same, with a
	// warning.
	var old, oldErr bytes.Buffer
	if err := run(ctx, []string{"tenant", "create", "--output", "yaml", "--streams", "audit", "--partitions", "6", "shop"}, &old, &oldErr); err != nil ||
		old.String() != out.String() || oldErr.String() != "warning: --streams is deprecated: use --datasets\n" {
		t.Errorf("tenant create --streams: %v, stderr %q, printed:\n%s", err, oldErr.String(), old.String())
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte("tenant: shop\nversion: 2\nsteps:\n  - json: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run(ctx, []string{"pipeline", "apply", "--output", "yaml", "-f", good}, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "kind: Pipeline") || !strings.Contains(out.String(), "namespace: shop") || !strings.Contains(out.String(), "    version: 2") {
		t.Errorf("pipeline apply --output yaml printed:\n%s", out.String())
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("tenant: shop\nversion: 2\nsteps:\n  - nope: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run(ctx, []string{"pipeline", "apply", "--output", "yaml", "-f", bad}, &out, &errOut); err == nil || out.Len() != 0 {
		t.Errorf("a broken pipeline: err %v, printed %q", err, out.String())
	}
}
