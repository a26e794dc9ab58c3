package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/sluicelogs/sluice/controller/v1alpha1"
	"github.com/sluicelogs/sluice/internal/config"
	"github.com/sluicelogs/sluice/router"
)

// PipelineWebhookPath is where the webhook server takes the API server's
// admission reviews of Pipelines (the chart's ValidatingWebhookConfiguration
// names it).
const PipelineWebhookPath = "/validate-sluice-io-v1alpha1-pipeline"

// WebhookConfig are the settings of the Pipeline admission webhook.
type WebhookConfig struct {
	Port    int    `env:"CONTROLLER_WEBHOOK_PORT, default=0" help:"Port of the HTTPS server of the Pipeline admission webhook, which refuses at kubectl apply what the controller would refuse to apply; 0 serves none (a refused Pipeline is then accepted by the API server and its status says why it is not applied)."`
	CertDir string `env:"CONTROLLER_WEBHOOK_CERT_DIR" help:"Directory of the webhook's serving certificate and key, tls.crt and tls.key (a mounted Secret); read again when they change. Required with SLUICE_CONTROLLER_WEBHOOK_PORT."`
}

// Validate checks the webhook settings.
func (c WebhookConfig) Validate() error {
	var p config.Problems
	if c.Port < 0 || c.Port > 65535 {
		p.Add(config.Var("CONTROLLER_WEBHOOK_PORT"), "must be a port (1-65535), or 0 for no webhook; got %d", c.Port)
	}
	if c.Port > 0 && c.CertDir == "" {
		p.Add(config.Var("CONTROLLER_WEBHOOK_CERT_DIR"), "is required with SLUICE_CONTROLLER_WEBHOOK_PORT (the directory of tls.crt and tls.key)")
	}
	return p.Err()
}

// server returns the webhook server, nil when there is none: the manager
// then starts none either (it makes one only when asked for it).
func (c WebhookConfig) server() webhook.Server {
	if c.Port == 0 {
		return nil
	}
	// The server's certwatcher reads tls.crt and tls.key again when they
	// change: a renewed certificate (cert-manager's, or a Secret
	// updated by hand) is served without a restart.
	return webhook.NewServer(webhook.Options{Port: c.Port, CertDir: c.CertDir, CertName: "tls.crt", KeyName: "tls.key"})
}

// webhookManager is the part of the manager the webhook needs. Its
// GetWebhookServer makes and starts a server on controller-runtime's
// default port when none was configured, so it is called only with the
// webhook on.
type webhookManager interface {
	GetWebhookServer() webhook.Server
	GetScheme() *runtime.Scheme
}

// register serves v on the manager's webhook server, when there is one.
// Every replica serves admission reviews, the leader or not: the webhook
// server needs no leader election, and the checks read the cache.
func (c WebhookConfig) register(mgr webhookManager, v *PipelineValidator) {
	if c.Port > 0 {
		registerWebhook(mgr.GetWebhookServer(), mgr.GetScheme(), v)
	}
}

// registerWebhook serves v's admission reviews of Pipelines on srv at
// PipelineWebhookPath.
func registerWebhook(srv webhook.Server, scheme *runtime.Scheme, v *PipelineValidator) {
	srv.Register(PipelineWebhookPath, admission.WithValidator[*v1alpha1.Pipeline](scheme, v))
}

// readyWhenServing reports the replica ready: at once without the
// webhook; with it, once its server accepts connections, since the
// webhook's Service sends admission reviews to ready pods only and the
// API server refuses a Pipeline whose review fails (failurePolicy Fail).
func (c WebhookConfig) readyWhenServing(ctx context.Context, mgr webhookManager, ready func(bool), log *slog.Logger) {
	if c.Port == 0 {
		ready(true)
		return
	}
	check := mgr.GetWebhookServer().StartedChecker()
	go func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			if err := check(nil); err == nil {
				log.Info("admission webhook serving", "port", c.Port, "path", PipelineWebhookPath, "cert_dir", c.CertDir)
				ready(true)
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
}

// PipelineValidator is the admission webhook of Pipelines: on create and
// on a change of the document it runs the checks the reconciler runs
// before applying (checkPipeline: the namespace's tenant, validation and
// tests, the document's tenant) and refuses what the reconciler would
// refuse, with the same words, so that kubectl apply, Argo CD or Flux
// report the problem at once rather than in the status. What needs Kafka
// is left to the reconciler, with one exception that needs none: a change
// of a document that is in force must raise its version.
type PipelineValidator struct {
	// Client reads Tenants, Namespaces and Pipelines; the manager's,
	// from its cache.
	Client client.Reader
	Log    *slog.Logger
	// Decisions counts the decisions by result (allowed, denied,
	// error); nil counts nothing.
	Decisions *prometheus.CounterVec
}

// ValidateCreate checks a new Pipeline.
func (v *PipelineValidator) ValidateCreate(ctx context.Context, p *v1alpha1.Pipeline) (admission.Warnings, error) {
	return v.decide(ctx, nil, p)
}

// ValidateUpdate checks a changed document. An update that leaves the
// document as it is (labels, annotations, the finalizer the controller
// adds and removes) is allowed: it changes nothing the reconciler applies,
// and refusing it could hold up a deletion whose Tenant is gone.
func (v *PipelineValidator) ValidateUpdate(ctx context.Context, old, p *v1alpha1.Pipeline) (admission.Warnings, error) {
	if old.Spec.Document == p.Spec.Document || !p.DeletionTimestamp.IsZero() {
		v.count("allowed")
		return nil, nil
	}
	return v.decide(ctx, old, p)
}

// ValidateDelete allows every deletion: deleting a Pipeline puts its
// tenant back on pass-through, which is always possible.
func (v *PipelineValidator) ValidateDelete(context.Context, *v1alpha1.Pipeline) (admission.Warnings, error) {
	return nil, nil
}

func (v *PipelineValidator) decide(ctx context.Context, old, p *v1alpha1.Pipeline) (admission.Warnings, error) {
	loaded, owner, err := checkPipeline(ctx, v.Client, p)
	if err == nil && old != nil {
		if ref := inForceNotRaised(old, loaded.Version, p.Spec.Document); ref != nil {
			err = ref
		}
	}
	key := client.ObjectKeyFromObject(p)
	var ref *refusal
	switch {
	case errors.As(err, &ref):
		v.count("denied")
		v.Log.Info("pipeline refused at admission", "resource", key, "reason", ref.reason, "problems", len(ref.problems))
		return nil, ref
	case err != nil:
		// Not a verdict on the document: the API server reports an
		// internal error, and the same request may pass later.
		v.count("error")
		v.Log.Warn("pipeline admission check failed", "resource", key, "err", err)
		return nil, apierrors.NewInternalError(fmt.Errorf("checking the Pipeline: %w", err))
	}
	v.count("allowed")
	return v.warnings(ctx, p, loaded, owner), nil
}

// inForceNotRaised refuses a change of a document that is in force without
// a greater version, by the reconciler's rule (versionNotRaised), when the
// old object shows what is stored without asking Kafka: the reconciler
// applied its document (Applied at its generation). The stored version
// only grows, so the reconciler would refuse the change too. In any other
// case the stored version is unknown here and the reconciler decides.
func inForceNotRaised(old *v1alpha1.Pipeline, version int64, doc string) *refusal {
	c := meta.FindStatusCondition(old.Status.Conditions, ConditionApplied)
	if c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != old.Generation || old.Status.AppliedVersion == 0 {
		return nil
	}
	_, ref := versionNotRaised(version, []byte(doc), old.Status.AppliedVersion, []byte(old.Spec.Document))
	return ref
}

// warnings are what is worth saying of a Pipeline that passes.
func (v *PipelineValidator) warnings(ctx context.Context, p *v1alpha1.Pipeline, loaded *router.Pipeline, owner string) admission.Warnings {
	w := admission.Warnings(documentWarnings(loaded))
	if len(loaded.Spec().Tests) == 0 {
		w = append(w, "the document has no tests: a test of each kind of line the tenant logs lets a change that breaks them be refused before it is applied")
	}
	var list v1alpha1.PipelineList
	if err := v.Client.List(ctx, &list); err != nil {
		v.Log.Warn("listing pipelines for admission warnings", "err", err)
		return w
	}
	for _, o := range list.Items {
		if o.Status.Tenant == owner && o.DeletionTimestamp.IsZero() && (o.Namespace != p.Namespace || o.Name != p.Name) {
			w = append(w, fmt.Sprintf("Pipeline %s/%s is tenant %s's too: the tenant has one pipeline, the one applied last, with the greatest version", o.Namespace, o.Name, owner))
		}
	}
	return w
}

func (v *PipelineValidator) count(result string) {
	if v.Decisions != nil {
		v.Decisions.WithLabelValues(result).Inc()
	}
}
