package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/sluicelogs/sluice/controller/v1alpha1"
	"github.com/sluicelogs/sluice/indexer"
	"github.com/sluicelogs/sluice/internal/config"
	"github.com/sluicelogs/sluice/internal/elastic"
	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/internal/telemetry"
)

// Config is the controller's configuration, read from SLUICE_* environment
// variables. The Kafka user needs the rights of sluice tenant create:
// create and delete topics, ACLs, SCRAM users and quotas.
type Config struct {
	Kafka     kafka.Config
	Elastic   elastic.Config
	Telemetry telemetry.Config
	Webhook   WebhookConfig

	KafkaMode         string `env:"CONTROLLER_KAFKA_MODE, default=direct" help:"How a Tenant's topics, user, ACLs and quotas are made: direct (through the Kafka admin API, as sluice tenant create) or strimzi (as KafkaTopic and KafkaUser resources for the Strimzi operators, on clusters they manage)."`
	StrimziNamespace  string `env:"CONTROLLER_STRIMZI_NAMESPACE" help:"With strimzi: the namespace of the KafkaTopics and KafkaUsers, one the Strimzi entity operator watches. Required with strimzi."`
	StrimziCluster    string `env:"CONTROLLER_STRIMZI_CLUSTER, default=kafka" help:"With strimzi: the Kafka resource the topics and users belong to (label strimzi.io/cluster)."`
	StrimziAPIVersion string `env:"CONTROLLER_STRIMZI_API_VERSION, default=kafka.strimzi.io/v1beta2" help:"With strimzi: the API version of KafkaTopic and KafkaUser (kafka.strimzi.io/v1 on Strimzi releases that dropped v1beta2)."`

	IndexPrefix string `env:"CONTROLLER_INDEX_PREFIX, default=sluice" help:"The indexers' SLUICE_INDEXER_INDEX_PREFIX: the index names a tenant's Elasticsearch role grants."`
	IndexLayout string `env:"CONTROLLER_INDEX_LAYOUT, default=dedicated" help:"The indexers' SLUICE_INDEXER_LAYOUT: the layout of a Tenant that sets none, which decides whether its Elasticsearch role grants the shared indices."`

	LeaderElection   bool          `env:"CONTROLLER_LEADER_ELECTION, default=true" help:"Elect one active controller among the replicas (a Lease named sluice-controller in SLUICE_CONTROLLER_NAMESPACE); the others wait."`
	Namespace        string        `env:"CONTROLLER_NAMESPACE" help:"Namespace of the leader-election Lease (default: the controller pod's own, from its service account)."`
	Retry            time.Duration `env:"CONTROLLER_RETRY, default=30s" help:"How soon a resource whose reconciliation failed for a reason that may pass (Kafka away, a Secret unreadable) is tried again."`
	StatusRefresh    time.Duration `env:"CONTROLLER_STATUS_REFRESH, default=1m" help:"How often an applied Pipeline's status is refreshed with what the routers report of its tenant (the version each runs, errors, pauses) and its recent dead letters."`
	DeadLetterWindow time.Duration `env:"CONTROLLER_DEAD_LETTER_WINDOW, default=5m" help:"The span over which a Pipeline's status counts its tenant's dead letters (status.deadLetters: count, rate per minute, the newest's reason); 0: not counted."`
}

// The ways of making a Tenant's Kafka objects (SLUICE_CONTROLLER_KAFKA_MODE).
const (
	KafkaModeDirect  = "direct"
	KafkaModeStrimzi = "strimzi"
)

// Validate checks the settings, naming each variable at fault.
func (c *Config) Validate() error {
	var p config.Problems
	p.Merge(c.Kafka.Validate())
	p.Merge(c.Telemetry.Validate())
	p.Merge(c.Webhook.Validate())
	if c.Elastic.HasCredentials() {
		p.Merge(c.Elastic.Validate())
		if strings.EqualFold(c.Elastic.Flavor, elastic.FlavorOpenSearch) {
			p.Add(config.Var("ELASTICSEARCH_FLAVOR"), "tenants' roles are made with Elasticsearch's security API; with OpenSearch, leave the SLUICE_ELASTICSEARCH_* credentials unset and make roles with the security plugin")
		}
	}
	switch c.KafkaMode {
	case KafkaModeDirect:
	case KafkaModeStrimzi:
		if c.StrimziNamespace == "" {
			p.Add(config.Var("CONTROLLER_STRIMZI_NAMESPACE"), "must be set with SLUICE_CONTROLLER_KAFKA_MODE=strimzi")
		}
		if c.StrimziCluster == "" {
			p.Add(config.Var("CONTROLLER_STRIMZI_CLUSTER"), "must not be empty with SLUICE_CONTROLLER_KAFKA_MODE=strimzi")
		}
		if c.StrimziAPIVersion != "kafka.strimzi.io/v1beta2" && c.StrimziAPIVersion != "kafka.strimzi.io/v1" {
			p.Add(config.Var("CONTROLLER_STRIMZI_API_VERSION"), "want kafka.strimzi.io/v1beta2 or kafka.strimzi.io/v1, got %q", c.StrimziAPIVersion)
		}
	default:
		p.Add(config.Var("CONTROLLER_KAFKA_MODE"), "want direct or strimzi, got %q", c.KafkaMode)
	}
	p.AddErr(config.Var("CONTROLLER_INDEX_PREFIX"), indexer.ValidateIndexPrefix(c.IndexPrefix))
	if _, err := indexer.ParseLayout(c.IndexLayout); err != nil {
		p.AddErr(config.Var("CONTROLLER_INDEX_LAYOUT"), err)
	}
	if c.Retry <= 0 {
		p.Add(config.Var("CONTROLLER_RETRY"), "must be positive, got %s", c.Retry)
	}
	if c.StatusRefresh <= 0 {
		p.Add(config.Var("CONTROLLER_STATUS_REFRESH"), "must be positive, got %s", c.StatusRefresh)
	}
	if c.DeadLetterWindow < 0 {
		p.Add(config.Var("CONTROLLER_DEAD_LETTER_WINDOW"), "must not be negative, got %s", c.DeadLetterWindow)
	}
	return p.Err()
}

// Run runs the controller on the cluster rc points at until ctx ends:
// the Tenant and Pipeline reconcilers, with leader election when asked,
// and the Pipeline admission webhook when its port is set.
// reg receives the controller's metrics; ready reports readiness.
func Run(ctx context.Context, cfg Config, rc *rest.Config, log *slog.Logger, reg prometheus.Registerer, ready func(bool)) error {
	opts, err := cfg.Kafka.Options()
	if err != nil {
		return fmt.Errorf("kafka settings: %w", err)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()

	scheme := runtime.NewScheme()
	// Only what the controller reads or writes: no other API group is
	// registered.
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			return err
		}
	}
	ctrl.SetLogger(logrFrom(log))
	mgr, err := ctrl.NewManager(rc, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                server.Options{BindAddress: "0"}, // served by the telemetry server instead
		HealthProbeBindAddress: "0",
		LeaderElection:         cfg.LeaderElection,
		LeaderElectionID:       "sluice-controller",
		// A stopping leader gives the Lease up, so that the next one
		// takes over at once instead of after the lease duration: Run
		// returns when the manager stops, nothing runs after it.
		LeaderElectionReleaseOnCancel: true,
		LeaderElectionNamespace:       cfg.Namespace,
		WebhookServer:                 cfg.Webhook.server(), // nil without the webhook: the manager serves none
		// Secrets are read one by one, never cached: the controller
		// needs only those the Tenants name.
		Client: client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}}}},
	})
	if err != nil {
		return fmt.Errorf("controller manager: %w", err)
	}
	m := newMetrics(reg)
	tenants := &TenantReconciler{Client: mgr.GetClient(), Admin: kadm.NewClient(cl), Kafka: cl, Topics: cfg.Kafka.Topics(), Log: log, Retry: cfg.Retry}
	if cfg.KafkaMode == KafkaModeStrimzi {
		tenants.Strimzi = &Strimzi{Client: mgr.GetClient(), Namespace: cfg.StrimziNamespace, Cluster: cfg.StrimziCluster, APIVersion: cfg.StrimziAPIVersion}
	}
	// Roles are made when there are credentials to make them with: a
	// cluster without security has no roles to make.
	if cfg.Elastic.HasCredentials() {
		es, err := cfg.Elastic.NewClient()
		if err != nil {
			return fmt.Errorf("elasticsearch client: %w", err)
		}
		tenants.Roles = &ElasticRoles{Client: es, IndexPrefix: cfg.IndexPrefix, DefaultLayout: cfg.IndexLayout}
	}
	pipelines := &PipelineReconciler{Client: mgr.GetClient(), Kafka: cl, Topics: cfg.Kafka.Topics(), Log: log, Retry: cfg.Retry, StatusRefresh: cfg.StatusRefresh, DeadLetterWindow: cfg.DeadLetterWindow}
	// A namespace created after its Tenant is labelled when it appears.
	if err := ctrl.NewControllerManagedBy(mgr).For(&v1alpha1.Tenant{}).Named("tenant").
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(tenants.claiming)).
		Complete(m.counted("tenant", tenants)); err != nil {
		return err
	}
	// A Pipeline refused because no Tenant owned its namespace is looked
	// at again when the Tenants change.
	if err := ctrl.NewControllerManagedBy(mgr).For(&v1alpha1.Pipeline{}).Named("pipeline").
		Watches(&v1alpha1.Tenant{}, handler.EnqueueRequestsFromMapFunc(pipelines.all)).
		Complete(m.counted("pipeline", pipelines)); err != nil {
		return err
	}
	cfg.Webhook.register(mgr, &PipelineValidator{Client: mgr.GetClient(), Log: log, Decisions: m.admissions})
	log.Info("controller starting", "leader_election", cfg.LeaderElection, "topic_prefix", cfg.Kafka.TopicPrefix, "kafka_mode", cfg.KafkaMode,
		"elasticsearch_roles", tenants.Roles != nil, "webhook_port", cfg.Webhook.Port)
	cfg.Webhook.readyWhenServing(ctx, mgr, ready, log)
	defer ready(false)
	if err := mgr.Start(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	log.Info("controller stopped")
	return nil
}
