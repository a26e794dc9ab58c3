// Package resources writes the Tenant and Pipeline resources
// (sluice.io/v1alpha1) that stand for what sluice tenant create and sluice
// pipeline apply do, so that moving a cluster's tenants to Git and
// sluice-controller is one step: the CLI prints them with --output yaml.
// The resource types live in the controller module, which this module
// cannot import; a test there decodes what this package writes into them,
// strictly, so the two cannot drift.
package resources

import (
	"bytes"
	"time"

	"go.yaml.in/yaml/v3"
)

// APIVersion is the group and version of the resources.
const APIVersion = "sluice.io/v1alpha1"

// Tenant describes a Tenant resource, in the terms of sluice tenant
// create's flags.
type Tenant struct {
	Name              string
	Partitions        int32
	ReplicationFactor int16 // -1: the broker's default (left unset)
	Retention         time.Duration
	Datasets          []string
	ProduceRate       float64 // bytes/s; 0 unlimited
	FetchRate         float64
	MutationRate      float64 // partitions/s
	// CredentialsNamespace, when set, asks for the user's credentials in
	// the Secret sluice-kafka of that namespace.
	CredentialsNamespace string
}

// TenantYAML returns the Tenant resource t stands for.
func TenantYAML(t Tenant) ([]byte, error) {
	topics := map[string]any{"partitions": t.Partitions}
	if t.ReplicationFactor > 0 {
		topics["replicationFactor"] = t.ReplicationFactor
	}
	if t.Retention > 0 {
		topics["retention"] = t.Retention.String()
	}
	spec := map[string]any{
		"namespaces": []string{t.Name},
		"topics":     topics,
		"quotas": map[string]any{
			"produceBytesPerSecond":       int64(t.ProduceRate),
			"fetchBytesPerSecond":         int64(t.FetchRate),
			"partitionMutationsPerSecond": int32(t.MutationRate),
		},
	}
	if len(t.Datasets) > 0 {
		spec["datasets"] = t.Datasets
	}
	if t.CredentialsNamespace != "" {
		spec["credentialsSecret"] = map[string]any{"namespace": t.CredentialsNamespace, "name": "sluice-kafka"}
	}
	return marshal(map[string]any{
		"apiVersion": APIVersion,
		"kind":       "Tenant",
		"metadata":   map[string]any{"name": t.Name},
		"spec":       spec,
	})
}

// PipelineYAML returns a Pipeline resource holding the pipeline document
// src of tenant, in the tenant's namespace of the same name.
func PipelineYAML(tenant string, src []byte) ([]byte, error) {
	return marshal(map[string]any{
		"apiVersion": APIVersion,
		"kind":       "Pipeline",
		"metadata":   map[string]any{"name": tenant, "namespace": tenant},
		"spec":       map[string]any{"document": string(src)},
	})
}

// marshal writes v as YAML indented by two spaces, as kubectl writes it.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
