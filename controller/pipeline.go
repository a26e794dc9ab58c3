package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/sluicelogs/sluice/controller/v1alpha1"
	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/router"
	"github.com/sluicelogs/sluice/schemas"
)

// PipelineFinalizer is set on a Pipeline so that deleting it first puts its
// tenant back on pass-through.
const PipelineFinalizer = "sluice.io/pipeline"

// Condition types and reasons of a Pipeline.
const (
	ConditionValidated = "Validated"
	ConditionApplied   = "Applied"

	ReasonValid            = "Valid"
	ReasonInvalidDocument  = "InvalidDocument"
	ReasonNoTenant         = "NoTenant"
	ReasonWrongTenant      = "WrongTenant"
	ReasonApplied          = "Applied"
	ReasonVersionNotRaised = "VersionNotRaised"
	ReasonNotApplied       = "NotApplied"
)

// PipelineReconciler validates a Pipeline's document, runs its tests, and
// applies it to its tenant's config topic exactly as sluice pipeline apply
// does, when the tenant owns the Pipeline's namespace. A document that
// fails is never applied: the version in force stays.
type PipelineReconciler struct {
	Client client.Client
	// Kafka writes and reads the config topics; not transactional, not a
	// group consumer.
	Kafka  *kgo.Client
	Topics kafka.Topics
	Log    *slog.Logger
	Retry  time.Duration
	// StatusRefresh is how often an applied Pipeline's status is refreshed
	// with what the routers report; 0 never.
	StatusRefresh time.Duration
	// DeadLetterWindow is the span of the dead letters counted in the
	// status; 0 counts none.
	DeadLetterWindow time.Duration
}

// deadLettersRead bounds what is read of a tenant's dead letters for one
// status, however many or large a tenant makes them: past it they are
// counted from the topic's offsets. Pipelines are reconciled one at a
// time, so this also bounds how long one tenant's dead letters hold up the
// others' statuses.
var deadLettersRead = kafka.ReadLimit{Records: 10000, Bytes: 8 << 20}

// Reconcile validates and applies one Pipeline.
func (r *PipelineReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var p v1alpha1.Pipeline
	if err := r.Client.Get(ctx, req.NamespacedName, &p); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !p.DeletionTimestamp.IsZero() {
		return r.remove(ctx, &p)
	}
	// The admission webhook runs the same checks (checkPipeline).
	loaded, owner, err := checkPipeline(ctx, r.Client, &p)
	var ref *refusal
	switch {
	case errors.As(err, &ref):
		return ctrl.Result{}, r.refuse(ctx, &p, ref)
	case err != nil:
		return r.failed(ctx, &p, ConditionValidated, ReasonNotApplied, err)
	}
	if controllerutil.AddFinalizer(&p, PipelineFinalizer) {
		if err := r.Client.Update(ctx, &p); err != nil {
			return ctrl.Result{}, err
		}
	}
	p.Status.Tenant, p.Status.Problems = owner, nil
	setCondition(&p, ConditionValidated, metav1.ConditionTrue, ReasonValid, validMessage(loaded))

	stored, err := router.ReadPipeline(ctx, r.Kafka, r.Topics, owner)
	if err != nil {
		return r.failed(ctx, &p, ConditionApplied, ReasonNotApplied, err)
	}
	var same bool
	var notRaised *refusal
	if stored != nil {
		same, notRaised = versionNotRaised(loaded.Version, []byte(p.Spec.Document), stored.Version, stored.Source)
	}
	switch {
	case same:
		// Applied already.
	case notRaised != nil:
		setCondition(&p, ConditionApplied, metav1.ConditionFalse, ReasonVersionNotRaised, notApplied(stored.Version, notRaised.msg))
		return ctrl.Result{}, r.writeStatus(ctx, &p, metav1.ConditionFalse, ReasonVersionNotRaised)
	default:
		if _, err := router.ApplyPipeline(ctx, r.Kafka, r.Topics, []byte(p.Spec.Document)); err != nil {
			return r.failed(ctx, &p, ConditionApplied, ReasonNotApplied, err)
		}
		r.Log.Info("pipeline applied", "tenant", owner, "version", loaded.Version, "resource", req.NamespacedName)
	}
	p.Status.AppliedVersion = loaded.Version
	setCondition(&p, ConditionApplied, metav1.ConditionTrue, ReasonApplied, fmt.Sprintf("version %d is stored in %s", loaded.Version, r.Topics.TenantConfig(owner)))
	if err := r.routers(ctx, &p, owner); err != nil {
		// The routers' reports are for information: not a failure.
		r.Log.Warn("reading the routers' status", "tenant", owner, "err", err)
	}
	if err := r.deadLetters(ctx, &p, owner); err != nil {
		r.Log.Warn("reading the tenant's dead letters", "tenant", owner, "err", err)
	}
	if err := r.writeStatus(ctx, &p, metav1.ConditionTrue, ReasonApplied); err != nil {
		return ctrl.Result{}, err // retried with backoff; a result beside an error is ignored
	}
	return ctrl.Result{RequeueAfter: r.StatusRefresh}, nil
}

// routers fills the Pipeline's status with what each router reports of
// the tenant in <prefix>.status.<tenant>.
func (r *PipelineReconciler) routers(ctx context.Context, p *v1alpha1.Pipeline, tenant string) error {
	snap, err := router.ReadStatus(ctx, r.Kafka, r.Topics.TenantStatus(tenant), tenant)
	if err != nil {
		return err
	}
	p.Status.Routers = nil
	inForce := 0
	for _, st := range snap.Statuses[tenant] {
		p.Status.Routers = append(p.Status.Routers, v1alpha1.RouterVersion{Router: st.Router, Version: st.Applied, Error: st.Error, Paused: st.Paused})
		if st.Applied == p.Status.AppliedVersion {
			inForce++
		}
	}
	p.Status.RoutersInForce = fmt.Sprintf("%d/%d", inForce, len(p.Status.Routers))
	return nil
}

// deadLetters fills the Pipeline's status with what reached the tenant's
// dead-letter topic over the last DeadLetterWindow.
func (r *PipelineReconciler) deadLetters(ctx context.Context, p *v1alpha1.Pipeline, tenant string) error {
	if r.DeadLetterWindow <= 0 {
		return nil
	}
	recent, err := kafka.ReadRecent(ctx, r.Kafka, r.Topics.DLQ(tenant), time.Now().Add(-r.DeadLetterWindow), deadLettersRead)
	if err != nil {
		p.Status.DeadLetters = nil
		return err
	}
	st := &v1alpha1.DeadLetterStatus{
		Window:    r.DeadLetterWindow.String(),
		Count:     recent.Records,
		Estimated: recent.Estimated,
		PerMinute: strconv.FormatFloat(float64(recent.Records)/r.DeadLetterWindow.Minutes(), 'f', 1, 64),
	}
	if recent.Last != nil {
		st.Last = lastDeadLetter(recent.Last)
	}
	p.Status.DeadLetters = st
	return nil
}

// maxDeadLetterError bounds the error text of a dead letter in a status.
const maxDeadLetterError = 512

// lastDeadLetter describes a dead-letter record; one that is not a
// DeadLetter document says so in its reason.
func lastDeadLetter(rec *kgo.Record) *v1alpha1.DeadLetter {
	last := &v1alpha1.DeadLetter{Time: metav1.NewTime(rec.Timestamp)}
	var dl schemas.DeadLetter
	if err := json.Unmarshal(rec.Value, &dl); err != nil {
		last.Reason, last.Error = "undecodable", fmt.Sprintf("offset %d of partition %d is not a dead letter: %v", rec.Offset, rec.Partition, err)
		return last
	}
	last.Stage, last.Reason, last.PipelineVersion = dl.Stage, dl.Reason, dl.PipelineVersion
	last.Error = cut(dl.Error, maxDeadLetterError)
	if dl.Stage == "router" {
		step := int32(dl.Step)
		last.Step = &step
	}
	return last
}

// cut shortens s to at most n bytes, on a rune boundary, marking the cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n - len("…")
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// all returns a request for every Pipeline: what a change of the Tenants
// may affect.
func (r *PipelineReconciler) all(ctx context.Context, _ client.Object) []reconcile.Request {
	var list v1alpha1.PipelineList
	if err := r.Client.List(ctx, &list); err != nil {
		r.Log.Warn("listing pipelines after a tenant changed", "err", err)
		return nil
	}
	reqs := make([]reconcile.Request, len(list.Items))
	for i := range list.Items {
		reqs[i] = reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])}
	}
	return reqs
}

// owner returns the id of the Tenant that owns namespace ns, "" when none
// does. Two Tenants claiming one namespace is an error of the platform's
// configuration, reported rather than resolved by a guess.
func owner(ctx context.Context, c client.Reader, ns string) (string, error) {
	var tenants v1alpha1.TenantList
	if err := c.List(ctx, &tenants); err != nil {
		return "", fmt.Errorf("list tenants: %w", err)
	}
	var nsLabels labels.Set
	var owners []string
	for _, t := range tenants.Items {
		if !t.DeletionTimestamp.IsZero() {
			continue
		}
		owns := slices.Contains(t.Spec.Namespaces, ns)
		if !owns && t.Spec.NamespaceSelector != nil {
			sel, err := metav1.LabelSelectorAsSelector(t.Spec.NamespaceSelector)
			if err != nil {
				continue // the Tenant's own status reports it
			}
			if nsLabels == nil {
				var n corev1.Namespace
				if err := c.Get(ctx, types.NamespacedName{Name: ns}, &n); err != nil {
					return "", fmt.Errorf("read namespace %s: %w", ns, client.IgnoreNotFound(err))
				}
				nsLabels = labels.Set(n.Labels)
			}
			owns = sel.Matches(nsLabels)
		}
		if owns {
			id := t.Spec.ID
			if id == "" {
				id = t.Name
			}
			owners = append(owners, id)
		}
	}
	switch len(owners) {
	case 0:
		return "", nil
	case 1:
		return owners[0], nil
	}
	return "", fmt.Errorf("namespace %s is claimed by several tenants (%s)", ns, strings.Join(owners, ", "))
}

// refuse records a document that cannot be applied as it is: nothing is
// retried until the Pipeline (or the Tenants) change. Both conditions say
// that it was not applied and which version stays in force.
func (r *PipelineReconciler) refuse(ctx context.Context, p *v1alpha1.Pipeline, ref *refusal) error {
	p.Status.Problems = ref.problems
	why := ref.msg
	if len(ref.problems) > 0 {
		why += fmt.Sprintf(" (%d problem(s), in status.problems)", len(ref.problems))
	}
	msg := notApplied(p.Status.AppliedVersion, why)
	setCondition(p, ConditionValidated, metav1.ConditionFalse, ref.reason, msg)
	setCondition(p, ConditionApplied, metav1.ConditionFalse, ReasonNotApplied, msg)
	return r.writeStatus(ctx, p, metav1.ConditionFalse, ref.reason)
}

// failed records a failure that may pass (Kafka away) and asks for
// another try.
func (r *PipelineReconciler) failed(ctx context.Context, p *v1alpha1.Pipeline, cond, reason string, err error) (ctrl.Result, error) {
	r.Log.Warn("pipeline not reconciled", "resource", client.ObjectKeyFromObject(p), "err", err)
	setCondition(p, cond, metav1.ConditionFalse, reason, err.Error())
	if serr := r.writeStatus(ctx, p, metav1.ConditionFalse, reason); serr != nil {
		return ctrl.Result{}, errors.Join(err, serr)
	}
	return ctrl.Result{RequeueAfter: r.Retry}, nil
}

// othersOf counts the other Pipelines of p's tenant that are not being
// deleted: while one is left, the tenant's stored pipeline is its.
func (r *PipelineReconciler) othersOf(ctx context.Context, p *v1alpha1.Pipeline) (int, error) {
	if p.Status.Tenant == "" {
		return 0, nil
	}
	var list v1alpha1.PipelineList
	if err := r.Client.List(ctx, &list); err != nil {
		return 0, fmt.Errorf("list pipelines: %w", err)
	}
	n := 0
	for _, o := range list.Items {
		if o.Status.Tenant == p.Status.Tenant && o.DeletionTimestamp.IsZero() && (o.Namespace != p.Namespace || o.Name != p.Name) {
			n++
		}
	}
	return n, nil
}

// remove puts the tenant of a deleted Pipeline back on pass-through,
// unless another Pipeline of the tenant is left.
func (r *PipelineReconciler) remove(ctx context.Context, p *v1alpha1.Pipeline) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(p, PipelineFinalizer) {
		return ctrl.Result{}, nil
	}
	others, err := r.othersOf(ctx, p)
	if err != nil {
		return ctrl.Result{}, err
	}
	if p.Status.Tenant != "" && others == 0 {
		err := router.DeletePipeline(ctx, r.Kafka, r.Topics, p.Status.Tenant)
		if err != nil && !errors.Is(err, router.ErrNoPipeline) {
			return ctrl.Result{}, err
		}
		r.Log.Info("pipeline deleted; the tenant is on pass-through", "tenant", p.Status.Tenant)
	}
	controllerutil.RemoveFinalizer(p, PipelineFinalizer)
	return ctrl.Result{}, r.Client.Update(ctx, p)
}

func (r *PipelineReconciler) writeStatus(ctx context.Context, p *v1alpha1.Pipeline, ready metav1.ConditionStatus, reason string) error {
	msg := "the document is applied"
	if ready != metav1.ConditionTrue {
		msg = "see the Validated and Applied conditions"
	}
	setCondition(p, ConditionReady, ready, reason, msg)
	p.Status.ObservedGeneration = p.Generation
	return r.Client.Status().Update(ctx, p)
}

func setCondition(p *v1alpha1.Pipeline, typ string, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&p.Status.Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: p.Generation,
	})
}

// problems lists the problems of a document that failed router.Load, each
// with its line and column, as sluice pipeline validate prints them.
func problems(err error) []string {
	var out []string
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		out = append(out, e.Error())
	}
	walk(err)
	return out
}
