package controller

import (
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/sluicelogs/sluice/controller/v1alpha1"
	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/internal/resources"
)

// TestCLIResources: what sluice tenant create --output yaml and sluice
// pipeline apply --output yaml print (internal/resources) decodes strictly
// into the resource types, and a Tenant so printed is reconciled into the
// very kafka.TenantSpec the command would have provisioned.
func TestCLIResources(t *testing.T) {
	want := kafka.TenantSpec{Partitions: 6, ReplicationFactor: 3, Retention: 72 * time.Hour, Datasets: []string{"audit"},
		ProducerByteRate: 1 << 20, ConsumerByteRate: 2 << 20, ControllerMutationRate: 5}
	b, err := resources.TenantYAML(resources.Tenant{Name: "shop", Partitions: want.Partitions, ReplicationFactor: want.ReplicationFactor,
		Retention: want.Retention, Datasets: want.Datasets, ProduceRate: want.ProducerByteRate, FetchRate: want.ConsumerByteRate,
		MutationRate: want.ControllerMutationRate, CredentialsNamespace: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	var tn v1alpha1.Tenant
	if err := yaml.UnmarshalStrict(b, &tn); err != nil {
		t.Fatalf("%v in\n%s", err, b)
	}
	if tn.APIVersion != v1alpha1.GroupVersion.String() || tn.Kind != "Tenant" || tn.Name != "shop" ||
		tn.Spec.CredentialsSecret == nil || tn.Spec.CredentialsSecret.Namespace != "shop" || len(tn.Spec.Namespaces) != 1 {
		t.Fatalf("decoded %+v", tn)
	}
	got, err := tenantSpec(&tn.Spec)
	if err != nil {
		t.Fatal(err)
	}
	if got.Partitions != want.Partitions || got.ReplicationFactor != want.ReplicationFactor || got.Retention != want.Retention ||
		strings.Join(got.Datasets, ",") != "audit" || got.ProducerByteRate != want.ProducerByteRate ||
		got.ConsumerByteRate != want.ConsumerByteRate || got.ControllerMutationRate != want.ControllerMutationRate {
		t.Errorf("reconciled into %+v, want %+v", got, want)
	}

	// The broker's default replication factor is left unset.
	b, _ = resources.TenantYAML(resources.Tenant{Name: "web", Partitions: 3, ReplicationFactor: -1})
	var web v1alpha1.Tenant
	if err := yaml.UnmarshalStrict(b, &web); err != nil || web.Spec.Topics.ReplicationFactor != nil {
		t.Fatalf("%v: replicationFactor %v", err, web.Spec.Topics.ReplicationFactor)
	}

	doc := "tenant: shop\nversion: 2\nsteps:\n  - json: {}\n"
	b, err = resources.PipelineYAML("shop", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	var p v1alpha1.Pipeline
	if err := yaml.UnmarshalStrict(b, &p); err != nil {
		t.Fatalf("%v in\n%s", err, b)
	}
	if p.Kind != "Pipeline" || p.Namespace != "shop" || p.Spec.Document != doc {
		t.Fatalf("decoded %+v", p)
	}
}
