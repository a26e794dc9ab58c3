package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/internal/kafkatest"
	"github.com/sluicelogs/sluice/router"
)

// TestPipelineOwnership: with the ACLs sluice tenant create sets, enforced,
// a tenant applies, gets and deletes its own pipeline with its own
// credentials (apply making the dataset topics it routes to), and cannot
// read, write or delete another tenant's pipeline or status, nor forge
// routers' status; a router principal with the router's ACLs loads every
// tenant's pipeline and writes status the tenant can read.
func TestPipelineOwnership(t *testing.T) {
	c := kafkatest.Cluster(t, kafkatest.Superuser("admin", "admin-secret"), kafkatest.ACLs(),
		kafkatest.With(kfake.User("SCRAM-SHA-512", "router", "router-secret")))
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	topics := kafka.Topics{Prefix: "logs"}
	t.Setenv("SLUICE_KAFKA_BROKERS", strings.Join(c.ListenAddrs(), ","))
	t.Setenv("SLUICE_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
	as := func(user, pass string) {
		t.Setenv("SLUICE_KAFKA_SASL_USERNAME", user)
		t.Setenv("SLUICE_KAFKA_SASL_PASSWORD", pass)
	}
	client := func(user, pass string, opts ...kgo.Opt) *kgo.Client {
		t.Helper()
		return kafkatest.Client(t, c, append([]kgo.Opt{kafkatest.SCRAM(user, pass), kgo.UnknownTopicRetries(1)}, opts...)...)
	}

	// The operator makes the tenants, the routers' status topic and the
	// routers' ACLs.
	as("admin", "admin-secret")
	for _, tenant := range []string{"shop", "shop-web"} {
		setStdin(t, tenant+"-password\n")
		var out, errOut bytes.Buffer
		if err := run(ctx, []string{"tenant", "create", "--password-stdin", "--partitions", "2", tenant}, &out, &errOut); err != nil {
			t.Fatalf("tenant create %s: %v\n%s", tenant, err, errOut.String())
		}
		if !strings.Contains(out.String(), "logs.config."+tenant) || !strings.Contains(out.String(), "quotas: produce 5.24288e+06 bytes/s") {
			t.Errorf("tenant create printed:\n%s", out.String())
		}
	}
	adminCl := client("admin", "admin-secret")
	adm := kadm.NewClient(adminCl)
	quotas, err := adm.DescribeClientQuotas(ctx, true, []kadm.DescribeClientQuotaComponent{{Type: "user", MatchName: kmsg.StringPtr("shop")}})
	if err != nil || len(quotas) != 1 {
		t.Fatalf("quotas of shop: %+v %v", quotas, err)
	}
	got := map[string]float64{}
	for _, v := range quotas[0].Values {
		got[v.Key] = v.Value
	}
	if got["producer_byte_rate"] != 5<<20 || got["consumer_byte_rate"] != 10<<20 || got["controller_mutation_rate"] != 10 {
		t.Errorf("default quotas of shop: %v", got)
	}
	if _, err := kafka.CreateTopics(ctx, adm, 1, -1, kafka.CompactedConfigs(), topics.Status()); err != nil {
		t.Fatal(err)
	}
	for _, b := range kafka.ACLs("User:router", kafka.RouterACLRules(topics, "sluice-router")) {
		if res, err := adm.CreateACLs(ctx, b); err != nil || res[0].Err != nil {
			t.Fatalf("router ACLs: %v %+v", err, res)
		}
	}

	const shopDoc = "tenant: shop\nversion: 1\nsteps:\n  - route: {if: 'log contains \"audit\"', dataset: audit}\n"
	const webDoc = "tenant: shop-web\nversion: 1\nsteps:\n  - set: {field: env, value: prod}\n"

	// shop applies, gets and re-applies its own pipeline; apply makes the
	// dataset topic through the tenant's prefixed CREATE ACL.
	as("shop", "shop-password")
	out, _, err := runPipelineCmd(t, "apply", "-f", writePipeline(t, shopDoc))
	if err != nil || !strings.HasSuffix(out, "\n+"+strings.ReplaceAll(strings.TrimSuffix(shopDoc, "\n"), "\n", "\n+")+
		"\ncreated dataset topic logs.parsed.shop.audit\napplied: tenant shop version 1 to logs.config.shop\n") {
		t.Fatalf("shop applies its pipeline: %q %v", out, err)
	}
	if out, _, err := runPipelineCmd(t, "get", "shop"); err != nil || !strings.Contains(out, "# stored: version 1") || !strings.Contains(out, shopDoc) {
		t.Fatalf("shop gets its pipeline: %q %v", out, err)
	}

	// shop cannot touch shop-web's pipeline: a document naming shop-web is
	// refused, and so are get and delete.
	if _, _, err := runPipelineCmd(t, "apply", "-f", writePipeline(t, webDoc)); !errors.Is(err, kerr.TopicAuthorizationFailed) ||
		!strings.Contains(err.Error(), "may not touch tenant shop-web's pipeline") {
		t.Errorf("shop applies shop-web's pipeline: %v", err)
	}
	for _, cmd := range []string{"get", "delete"} {
		if _, _, err := runPipelineCmd(t, cmd, "shop-web"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
			t.Errorf("shop runs %s on shop-web: %v, want TOPIC_AUTHORIZATION_FAILED", cmd, err)
		}
	}
	if _, _, err := runPipelineCmd(t, "list"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("shop lists every tenant's status: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	shop := client("shop", "shop-password")
	for _, rec := range []*kgo.Record{
		{Topic: "logs.config.shop-web", Key: []byte(router.PipelineKey), Value: []byte(webDoc)},
		{Topic: "logs.config.shop-web", Key: []byte(router.PipelineKey), Value: []byte{}},
		{Topic: "logs.status.shop", Key: []byte(router.StatusKey("shop", "r1")), Value: []byte(`{"applied": 9}`)},
		{Topic: "logs.status.shop-web", Key: []byte(router.StatusKey("shop-web", "r1")), Value: []byte(`{}`)},
		{Topic: "logs.status", Key: []byte(router.GoodKeyPrefix + "shop-web"), Value: []byte(`{}`)},
		{Topic: "logs.parsed.shop", Value: []byte("forged output")},
	} {
		if err := shop.ProduceSync(ctx, rec).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
			t.Errorf("shop writes %s: %v, want TOPIC_AUTHORIZATION_FAILED", rec.Topic, err)
		}
	}
	for _, topic := range []string{"logs.status.shop-web", "logs.status"} {
		if _, err := router.ReadStatus(ctx, shop, topic, ""); !errors.Is(err, kerr.TopicAuthorizationFailed) {
			t.Errorf("shop reads %s: %v, want TOPIC_AUTHORIZATION_FAILED", topic, err)
		}
	}
	if _, err := kadm.NewClient(shop).CreateTopic(ctx, 1, -1, nil, "logs.parsed.shop-web.x"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("shop creates a dataset topic of shop-web: %v", err)
	}

	// shop-web applies its own.
	as("shop-web", "shop-web-password")
	if out, _, err := runPipelineCmd(t, "apply", "-f", writePipeline(t, webDoc)); err != nil {
		t.Fatalf("shop-web applies its pipeline: %q %v", out, err)
	}

	// The router principal loads both, and publishes status that each
	// tenant reads; it cannot write pipelines.
	rcl := client("router", "router-secret")
	if err := router.EnsureCompactedTopic(ctx, kadm.NewClient(rcl), topics.Status()); err != nil {
		t.Errorf("router checks the status topic: %v", err)
	}
	loaded := map[string]string{}
	fctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- router.FollowConfig(fctx, []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...),
			kafkatest.SCRAM("router", "router-secret")}, topics,
			func(ev router.ConfigEvent) {
				if ev.Source == router.SourceTenant {
					loaded[ev.Tenant] = string(ev.Src)
				}
			}, stop)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("router follows the config topics: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the router never caught up")
	}
	if loaded["shop"] != shopDoc || loaded["shop-web"] != webDoc {
		t.Errorf("router loaded %q", loaded)
	}
	st := []byte(`{"router":"r1","tenant":"shop","stored":1,"applied":1,"paused":"output topic does not exist"}`)
	for _, topic := range []string{"logs.status", "logs.status.shop"} {
		if err := rcl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(router.StatusKey("shop", "r1")), Value: st}).FirstErr(); err != nil {
			t.Fatalf("router writes %s: %v", topic, err)
		}
	}
	if err := rcl.ProduceSync(ctx, &kgo.Record{Topic: "logs.config.shop", Key: []byte(router.PipelineKey), Value: []byte{}}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("router writes a tenant's pipeline: %v", err)
	}

	as("shop", "shop-password")
	if out, _, err := runPipelineCmd(t, "get", "shop"); err != nil || !strings.Contains(out, "# router r1: applies version 1") ||
		!strings.Contains(out, "output topic does not exist") {
		t.Errorf("shop sees its status: %q %v", out, err)
	}

	// Where a tenant may not make dataset topics, apply names those
	// missing and the command that makes them.
	as("admin", "admin-secret")
	if _, err := adm.DeleteACLs(ctx, kadm.NewACLs().Allow("User:shop").Operations(kadm.OpCreate).
		Topics("logs.parsed.shop.").ResourcePatternType(kadm.ACLPatternPrefixed).AllowHosts()); err != nil {
		t.Fatal(err)
	}
	as("shop", "shop-password")
	doc2 := strings.Replace(shopDoc, "version: 1", "version: 2", 1) + "  - route: {if: 'true', dataset: billing}\n"
	if _, _, err := runPipelineCmd(t, "apply", "-f", writePipeline(t, doc2)); err == nil ||
		!strings.Contains(err.Error(), "logs.parsed.shop.billing") || !strings.Contains(err.Error(), "sluice tenant create --datasets billing shop") {
		t.Errorf("apply with a dataset topic the tenant cannot make: %v", err)
	}
	if out, _, err := runPipelineCmd(t, "get", "shop"); err != nil || !strings.Contains(out, "# stored: version 1") {
		t.Errorf("a refused apply changed the pipeline: %q %v", out, err)
	}
	// --allow-missing-streams, the former name of --allow-missing-datasets,
	// stores it all the same, with a warning.
	if out, errOut, err := runPipelineCmd(t, "apply", "--allow-missing-streams", "-f", writePipeline(t, doc2)); err != nil ||
		!strings.Contains(out, "applied: tenant shop version 2") ||
		!strings.HasPrefix(errOut, "warning: --allow-missing-streams is deprecated: use --allow-missing-datasets\n") {
		t.Errorf("apply --allow-missing-streams: %q, %q, %v", out, errOut, err)
	}

	if out, _, err := runPipelineCmd(t, "delete", "shop"); err != nil || !strings.Contains(out, "deleted") {
		t.Errorf("shop deletes its pipeline: %q %v", out, err)
	}
}
