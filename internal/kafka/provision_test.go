package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelogs/sluice/internal/kafkatest"
	"github.com/sluicelogs/sluice/internal/testwait"
)

// TestProvisionTenant: with ACLs enforced, a tenant made by ProvisionTenant
// can write its raw topic and read its parsed and dead-letter topics, and is
// refused on another tenant's; provisioning twice changes nothing; a
// deleted tenant is gone.
func TestProvisionTenant(t *testing.T) {
	c := kafkatest.Cluster(t, kafkatest.Superuser("admin", "admin-secret"), kafkatest.ACLs())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	as := func(user, pass string, opts ...kgo.Opt) *kgo.Client {
		t.Helper()
		return kafkatest.Client(t, c, append([]kgo.Opt{kafkatest.SCRAM(user, pass), kgo.UnknownTopicRetries(1)}, opts...)...)
	}
	adm := kadm.NewClient(as("admin", "admin-secret", kgo.MetadataMinAge(100*time.Millisecond)))
	topics := Topics{Prefix: "logs"}
	spec := TenantSpec{Partitions: 2, ReplicationFactor: -1, Retention: 72 * time.Hour, ProducerByteRate: 1 << 20}
	for _, tenant := range []string{"shop", "shop-web"} {
		spec.Password = tenant + "-secret"
		res, err := ProvisionTenant(ctx, adm, topics, tenant, spec)
		if err != nil {
			t.Fatalf("provision %s: %v", tenant, err)
		}
		if len(res.TopicsCreated) != 5 || !res.UserSet {
			t.Fatalf("provision %s: %+v", tenant, res)
		}
	}
	// Idempotent: nothing new, no error.
	spec.Password = ""
	if res, err := ProvisionTenant(ctx, adm, topics, "shop", spec); err != nil || len(res.TopicsCreated) != 0 || res.UserSet {
		t.Fatalf("second provision: %+v %v", res, err)
	}
	if got, err := ListTenants(ctx, adm, topics); err != nil || !slices.Equal(got, []string{"shop", "shop-web"}) {
		t.Fatalf("tenants %v %v", got, err)
	}

	// The administrator publishes the tenants' index settings; no tenant
	// may write them (nor read them: see below).
	if err := PublishTenantSettings(ctx, as("admin", "admin-secret"), topics, "shop", TenantSettings{Layout: TenantLayoutShared}); err != nil {
		t.Fatalf("publish tenant settings: %v", err)
	}

	shop := as("shop", "shop-secret")
	if err := shop.ProduceSync(ctx, &kgo.Record{Topic: "logs.raw.shop", Value: []byte("line")}).FirstErr(); err != nil {
		t.Fatalf("shop produces to its raw topic: %v", err)
	}
	for _, topic := range []string{"logs.raw.shop-web", "logs.parsed.shop", topics.Tenants()} {
		err := shop.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("line")}).FirstErr()
		if !errors.Is(err, kerr.TopicAuthorizationFailed) {
			t.Errorf("shop produces to %s: %v, want TOPIC_AUTHORIZATION_FAILED", topic, err)
		}
	}
	// The admin writes parsed records; the tenant reads its own, not
	// shop-web's, whose name its prefixed ACL must not match.
	admin := as("admin", "admin-secret")
	for _, topic := range []string{"logs.parsed.shop", "logs.parsed.shop-web"} {
		if err := admin.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("parsed")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	read := func(topic string) error {
		cl := as("shop", "shop-secret", kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.ConsumerGroup("shop.reader"))
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		for {
			fs := cl.PollFetches(pctx)
			if err := fs.Err(); err != nil {
				return err
			}
			if fs.NumRecords() > 0 {
				return nil
			}
		}
	}
	if err := read("logs.parsed.shop"); err != nil {
		t.Errorf("shop reads its parsed topic: %v", err)
	}
	if err := read("logs.parsed.shop-web"); err == nil {
		t.Error("shop reads shop-web's parsed topic")
	}
	if err := read(topics.Tenants()); err == nil {
		t.Errorf("shop reads %s", topics.Tenants())
	}

	if err := DeleteTenant(ctx, adm, topics, "shop"); err != nil {
		t.Fatal(err)
	}
	// Listing reads metadata the client may have cached for a few seconds.
	testwait.For(t, 15*time.Second, "the tenants after deleting shop to be shop-web alone", func() (bool, string) {
		got, err := ListTenants(ctx, adm, topics)
		return slices.Equal(got, []string{"shop-web"}), fmt.Sprintf("tenants %v, %v", got, err)
	})
	if err := DeleteTenant(ctx, adm, topics, "shop"); err != nil {
		t.Fatalf("deleting twice: %v", err)
	}
}

// TestProvisionTenantWithoutAuthorizer: a cluster without an authorizer
// answers every ACL creation and deletion with SECURITY_DISABLED, as Kafka
// does when no authorizer.class.name is set. Provisioning still makes the
// topics and reports that no ACL was set; deleting still removes the
// tenant. Any other ACL error still fails.
func TestProvisionTenantWithoutAuthorizer(t *testing.T) {
	c := kafkatest.Cluster(t)
	noAuthorizer := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.CreateACLs, kmsg.DeleteACLs}, Err: kerr.SecurityDisabled, Count: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kafkatest.Admin(t, c, kgo.MetadataMinAge(100*time.Millisecond))
	topics := Topics{Prefix: "logs"}
	spec := TenantSpec{Partitions: 1, ReplicationFactor: -1}

	res, err := ProvisionTenant(ctx, adm, topics, "shop", spec)
	if err != nil {
		t.Fatalf("provision without an authorizer: %v", err)
	}
	if !res.ACLsSkipped || len(res.TopicsCreated) != 5 {
		t.Fatalf("provision without an authorizer: %+v, want ACLsSkipped and 5 topics", res)
	}
	if res, err := ProvisionTenant(ctx, adm, topics, "shop", spec); err != nil || !res.ACLsSkipped || len(res.TopicsCreated) != 0 {
		t.Fatalf("second provision: %+v %v", res, err)
	}
	// The first refusal stops the ACL step: one request per provision.
	if hits := noAuthorizer.Hits(); hits != 2 {
		t.Errorf("ACL requests answered SECURITY_DISABLED: %d, want 2", hits)
	}
	if err := DeleteTenant(ctx, adm, topics, "shop"); err != nil {
		t.Fatalf("delete without an authorizer: %v", err)
	}
	if hits := noAuthorizer.Hits(); hits != 3 {
		t.Errorf("ACL requests answered SECURITY_DISABLED after delete: %d, want 3", hits)
	}
	noAuthorizer.Remove()

	// With an authorizer, ACLs are set and reported so.
	if res, err := ProvisionTenant(ctx, adm, topics, "web", spec); err != nil || res.ACLsSkipped {
		t.Fatalf("provision with ACLs: %+v %v", res, err)
	}
	// Other ACL errors are errors.
	c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.CreateACLs}, Err: kerr.ClusterAuthorizationFailed})
	if _, err := ProvisionTenant(ctx, adm, topics, "web", spec); !errors.Is(err, kerr.ClusterAuthorizationFailed) {
		t.Fatalf("provision refused by the authorizer: %v, want CLUSTER_AUTHORIZATION_FAILED", err)
	}
	c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.DeleteACLs}, Err: kerr.ClusterAuthorizationFailed})
	if err := DeleteTenant(ctx, adm, topics, "web"); !errors.Is(err, kerr.ClusterAuthorizationFailed) {
		t.Fatalf("delete refused by the authorizer: %v, want CLUSTER_AUTHORIZATION_FAILED", err)
	}
}

// TestTenantSpecValidate: the defaults are valid, and each bound is held.
func TestTenantSpecValidate(t *testing.T) {
	if err := DefaultTenantSpec().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for name, mutate := range map[string]func(*TenantSpec){
		"no partitions":       func(s *TenantSpec) { s.Partitions = 0 },
		"too many partitions": func(s *TenantSpec) { s.Partitions = 10_001 },
		"replication 0":       func(s *TenantSpec) { s.ReplicationFactor = 0 },
		"replication 33":      func(s *TenantSpec) { s.ReplicationFactor = 33 },
		"negative retention":  func(s *TenantSpec) { s.Retention = -1 },
		"negative quota":      func(s *TenantSpec) { s.ConsumerByteRate = -1 },
		"bad dataset":         func(s *TenantSpec) { s.Datasets = []string{"Not A Dataset"} },
	} {
		s := DefaultTenantSpec()
		mutate(&s)
		if s.Validate() == nil {
			t.Errorf("%s: valid", name)
		}
	}
}
