// Package v1alpha1 holds the custom resources of Sluice, group sluice.io,
// version v1alpha1: Tenant (cluster-scoped) and Pipeline (namespaced). The
// CRDs in the Helm chart are generated from these types by controller-gen
// (see the Makefile's crds target); TestCRDsUpToDate keeps them in step.
//
// +kubebuilder:object:generate=true
// +groupName=sluice.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Tenant is a team of the shared cluster and everything Sluice makes for
// it: its topics, its Kafka user with its ACLs and quotas, and the
// Elasticsearch role of its indices.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=st
// +kubebuilder:validation:XValidation:rule="(has(self.spec) && has(self.spec.id) ? self.spec.id : self.metadata.name) == (has(oldSelf.spec) && has(oldSelf.spec.id) ? oldSelf.spec.id : oldSelf.metadata.name)",message="the tenant id (spec.id, or the name when spec.id is unset) cannot change"
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="ID",type=string,JSONPath=`.status.id`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Tenant struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   TenantSpec   `json:"spec,omitempty"`
	Status TenantStatus `json:"status,omitempty"`
}

// TenantSpec is what a tenant is given.
//
// +kubebuilder:validation:XValidation:rule="!has(self.datasets) || !has(self.streams)",message="give datasets only: streams is its deprecated name"
type TenantSpec struct {
	// ID names the tenant's topics (<prefix>.raw.<id>, ...) and Kafka user;
	// the resource's name when empty. The id in force cannot change: not
	// set, unset or changed once the Tenant exists (a rule on the Tenant),
	// which would orphan what was made under the old one.
	// +optional
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`
	ID string `json:"id,omitempty"`

	// Namespaces the tenant owns: its Pipelines live there, and the
	// controller labels each sluice.io/tenant=<id>, the label shippers read
	// to send a namespace's logs to its tenant. A namespace labelled for
	// another tenant is not taken (the Tenant is not Ready until one of
	// them gives it up).
	// +optional
	Namespaces []string `json:"namespaces,omitempty"`
	// NamespaceSelector selects further namespaces the tenant owns, for
	// its Pipelines; they are not labelled (label them so that shippers
	// send their logs to the tenant).
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`

	// Topics are the settings of the tenant's topics when they are made.
	// +optional
	Topics TopicsSpec `json:"topics,omitempty"`
	// Datasets are the datasets (what a pipeline's routes send records
	// to) to make topics for, <prefix>.parsed.<id>.<dataset>; a pipeline
	// applied with the tenant's credentials makes those it routes to
	// anyway, where the tenant may create topics.
	// +optional
	Datasets []string `json:"datasets,omitempty"`
	// Streams is the former name of datasets, still accepted, with a note
	// in the Ready condition; giving both is refused.
	//
	// Deprecated: write datasets.
	// +optional
	Streams []string `json:"streams,omitempty"`
	// Quotas of the tenant's Kafka user.
	// +optional
	Quotas QuotasSpec `json:"quotas,omitempty"`

	// Index is how the indexers store the tenant's documents.
	// +optional
	Index IndexSpec `json:"index,omitempty"`

	// CredentialsSecret is where the tenant's Kafka user name and password
	// are written (keys username and password), in a namespace the tenant
	// owns.
	// +optional
	CredentialsSecret *SecretReference `json:"credentialsSecret,omitempty"`

	// DeleteData deletes the tenant's topics when the Tenant is deleted.
	// By default they are kept, with their data, and only the user, its
	// ACLs and quotas are removed.
	// +optional
	DeleteData bool `json:"deleteData,omitempty"`
}

// TopicsSpec sets up a tenant's topics.
type TopicsSpec struct {
	// Partitions of each topic made; 3 when unset.
	// +optional
	// +kubebuilder:validation:Minimum=1
	Partitions *int32 `json:"partitions,omitempty"`
	// ReplicationFactor of each topic made; the broker's default when unset.
	// +optional
	// +kubebuilder:validation:Minimum=1
	ReplicationFactor *int32 `json:"replicationFactor,omitempty"`
	// Retention of each topic made (retention.ms); 168h when unset.
	// +optional
	Retention *metav1.Duration `json:"retention,omitempty"`
}

// IndexSpec is a tenant's index layout and retention. The controller
// publishes them to <prefix>.tenants, where every indexer reads them; an
// indexer's own SLUICE_INDEXER_LAYOUT_OVERRIDES or
// SLUICE_INDEXER_RETENTION_OVERRIDES entry for the tenant wins over them.
type IndexSpec struct {
	// Layout is dedicated (the tenant's own daily indices) or shared (the
	// shared daily indices, isolated by document-level security); the
	// indexers' SLUICE_INDEXER_LAYOUT when unset.
	// +optional
	// +kubebuilder:validation:Enum=dedicated;shared
	Layout string `json:"layout,omitempty"`
	// RetentionDays is how many days of daily indices are kept, 0 for
	// ever; the indexers' SLUICE_INDEXER_RETENTION_DAYS when unset. It
	// applies to the dedicated layout only: shared indices are kept as
	// long as the indexers keep them for everyone.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=36500
	RetentionDays *int32 `json:"retentionDays,omitempty"`
}

// QuotasSpec are the Kafka quotas of a tenant's user. Unset takes the
// defaults of sluice tenant create; 0 is unlimited.
type QuotasSpec struct {
	// ProduceBytesPerSecond; 5 MiB/s when unset.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ProduceBytesPerSecond *int64 `json:"produceBytesPerSecond,omitempty"`
	// FetchBytesPerSecond; 10 MiB/s when unset.
	// +optional
	// +kubebuilder:validation:Minimum=0
	FetchBytesPerSecond *int64 `json:"fetchBytesPerSecond,omitempty"`
	// PartitionMutationsPerSecond bounds the dataset topics the tenant makes
	// itself; 10 when unset.
	// +optional
	// +kubebuilder:validation:Minimum=0
	PartitionMutationsPerSecond *int32 `json:"partitionMutationsPerSecond,omitempty"`
}

// SecretReference names a Secret.
type SecretReference struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
}

// TenantStatus is what the controller has made of a Tenant.
type TenantStatus struct {
	// ID is the tenant id in force.
	// +optional
	ID string `json:"id,omitempty"`
	// Index is the index settings last published to <prefix>.tenants for
	// the indexers; unset when none are.
	// +optional
	Index *IndexSpec `json:"index,omitempty"`
	// ElasticsearchRole names the Elasticsearch role granting read on the
	// tenant's indices, when the controller manages roles.
	// +optional
	ElasticsearchRole string `json:"elasticsearchRole,omitempty"`
	// ObservedGeneration is the generation last reconciled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// TenantList is a list of Tenants.
//
// +kubebuilder:object:root=true
type TenantList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Tenant `json:"items"`
}

// Pipeline is a tenant's pipeline document, as sluice pipeline apply takes
// it, in a namespace the tenant owns.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Tenant",type=string,JSONPath=`.status.tenant`
// +kubebuilder:printcolumn:name="Version",type=integer,JSONPath=`.status.appliedVersion`
// +kubebuilder:printcolumn:name="Routers",type=string,JSONPath=`.status.routersInForce`
// +kubebuilder:printcolumn:name="Dead letters/min",type=string,JSONPath=`.status.deadLetters.perMinute`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Pipeline struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   PipelineSpec   `json:"spec,omitempty"`
	Status PipelineStatus `json:"status,omitempty"`
}

// PipelineSpec holds the pipeline document.
type PipelineSpec struct {
	// Document is the pipeline document (YAML), with its tests, exactly as
	// sluice pipeline apply takes it. Its tenant must be the tenant that
	// owns the Pipeline's namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=262144
	Document string `json:"document"`
}

// PipelineStatus is what became of a Pipeline.
type PipelineStatus struct {
	// Tenant is the tenant of the document.
	// +optional
	Tenant string `json:"tenant,omitempty"`
	// AppliedVersion is the version of the document in force: the last
	// one that passed validation and its tests.
	// +optional
	AppliedVersion int64 `json:"appliedVersion,omitempty"`
	// ObservedGeneration is the generation last reconciled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Problems are the validation or test failures of the last document
	// that failed, each with its line and column.
	// +optional
	Problems []string `json:"problems,omitempty"`
	// Routers is what each router reports of the tenant
	// (<prefix>.status.<tenant>), refreshed every
	// SLUICE_CONTROLLER_STATUS_REFRESH.
	// +optional
	Routers []RouterVersion `json:"routers,omitempty"`
	// RoutersInForce says how many of the routers run AppliedVersion, as
	// "2/3".
	// +optional
	RoutersInForce string `json:"routersInForce,omitempty"`
	// DeadLetters sums up the tenant's dead-letter topic over the last
	// SLUICE_CONTROLLER_DEAD_LETTER_WINDOW: records the routers or the
	// indexers could not handle. Refreshed with Routers.
	// +optional
	DeadLetters *DeadLetterStatus `json:"deadLetters,omitempty"`
	// Conditions: Validated, Applied, Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// RouterVersion is what one router reports of the tenant.
type RouterVersion struct {
	// Router names the router (its pod).
	Router string `json:"router"`
	// Version is the version it runs; 0 is pass-through.
	Version int64 `json:"version"`
	// Error is its last load or run-time error of the pipeline.
	// +optional
	Error string `json:"error,omitempty"`
	// Paused is why it holds the tenant's records back, if it does.
	// +optional
	Paused string `json:"paused,omitempty"`
}

// DeadLetterStatus is what reached a tenant's dead-letter topic lately.
type DeadLetterStatus struct {
	// Window is the span counted, such as "5m0s".
	Window string `json:"window"`
	// Count is the number of dead letters in the window.
	Count int64 `json:"count"`
	// Estimated says Count was taken from the topic's offsets, because too
	// many arrived to read them all; it may then be a little high.
	// +optional
	Estimated bool `json:"estimated,omitempty"`
	// PerMinute is Count over the window, as "0.4".
	PerMinute string `json:"perMinute"`
	// Last is the newest dead letter of the window.
	// +optional
	Last *DeadLetter `json:"last,omitempty"`
}

// DeadLetter describes one dead letter: what the tenant needs to find the
// failing step; sluice tail --errors shows them whole.
type DeadLetter struct {
	// Time the dead letter was written.
	Time metav1.Time `json:"time"`
	// Stage that wrote it: router or indexer.
	Stage string `json:"stage"`
	// Reason is its short cause: parse, expr, rejected, ...
	Reason string `json:"reason"`
	// Error is the error's text, cut to 512 characters.
	// +optional
	Error string `json:"error,omitempty"`
	// Step is the index of the pipeline step that failed (-1: not a step),
	// for a router's dead letter.
	// +optional
	Step *int32 `json:"step,omitempty"`
	// PipelineVersion is the version that was in force, for a router's.
	// +optional
	PipelineVersion int64 `json:"pipelineVersion,omitempty"`
}

// PipelineList is a list of Pipelines.
//
// +kubebuilder:object:root=true
type PipelineList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Pipeline `json:"items"`
}
