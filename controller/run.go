package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	"github.com/sluicelogs/sluice/internal/config"
	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/internal/telemetry"
)

// Config is the controller's configuration, read from SLUICE_* environment
// variables. The Kafka user needs the rights of sluice tenant create:
// create and delete topics, ACLs, SCRAM users and quotas.
type Config struct {
	Kafka     kafka.Config
	Telemetry telemetry.Config
	Webhook   WebhookConfig

	LeaderElection bool          `env:"CONTROLLER_LEADER_ELECTION, default=true" help:"Elect one active controller among the replicas (a Lease named sluice-controller in SLUICE_CONTROLLER_NAMESPACE); the others wait."`
	Namespace      string        `env:"CONTROLLER_NAMESPACE" help:"Namespace of the leader-election Lease (default: the controller pod's own, from its service account)."`
	Retry          time.Duration `env:"CONTROLLER_RETRY, default=30s" help:"How soon a resource whose reconciliation failed for a reason that may pass (Kafka away, a Secret unreadable) is tried again."`
	StatusRefresh  time.Duration `env:"CONTROLLER_STATUS_REFRESH, default=1m" help:"How often an applied Pipeline's status is refreshed with what the routers report of its tenant (the version each runs, errors, pauses)."`
}

// Validate checks the settings, naming each variable at fault.
func (c *Config) Validate() error {
	var p config.Problems
	p.Merge(c.Kafka.Validate())
	p.Merge(c.Telemetry.Validate())
	p.Merge(c.Webhook.Validate())
	if c.Retry <= 0 {
		p.Add(config.Var("CONTROLLER_RETRY"), "must be positive, got %s", c.Retry)
	}
	if c.StatusRefresh <= 0 {
		p.Add(config.Var("CONTROLLER_STATUS_REFRESH"), "must be positive, got %s", c.StatusRefresh)
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
		Scheme:                  scheme,
		Metrics:                 server.Options{BindAddress: "0"}, // served by the telemetry server instead
		HealthProbeBindAddress:  "0",
		LeaderElection:          cfg.LeaderElection,
		LeaderElectionID:        "sluice-controller",
		LeaderElectionNamespace: cfg.Namespace,
		WebhookServer:           cfg.Webhook.server(), // nil without the webhook: the manager serves none
		// Secrets are read one by one, never cached: the controller
		// needs only those the Tenants name.
		Client: client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}}}},
	})
	if err != nil {
		return fmt.Errorf("controller manager: %w", err)
	}
	m := newMetrics(reg)
	tenants := &TenantReconciler{Client: mgr.GetClient(), Admin: kadm.NewClient(cl), Topics: cfg.Kafka.Topics(), Log: log, Retry: cfg.Retry}
	pipelines := &PipelineReconciler{Client: mgr.GetClient(), Kafka: cl, Topics: cfg.Kafka.Topics(), Log: log, Retry: cfg.Retry, StatusRefresh: cfg.StatusRefresh}
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
	log.Info("controller starting", "leader_election", cfg.LeaderElection, "topic_prefix", cfg.Kafka.TopicPrefix, "webhook_port", cfg.Webhook.Port)
	cfg.Webhook.readyWhenServing(ctx, mgr, ready, log)
	defer ready(false)
	if err := mgr.Start(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	log.Info("controller stopped")
	return nil
}
