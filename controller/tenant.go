package controller

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/sluicelogs/sluice/controller/v1alpha1"
	"github.com/sluicelogs/sluice/internal/kafka"
)

// Finalizer is set on a Tenant so that deleting it first removes what the
// controller made in Kafka.
const Finalizer = "sluice.io/tenant"

// Condition types and reasons of a Tenant.
const (
	ConditionReady = "Ready"

	ReasonProvisioned = "Provisioned"
	ReasonInvalid     = "Invalid"
	ReasonKafkaError  = "KafkaError"
	ReasonSecretError = "SecretError"

	ReasonElasticsearchError = "ElasticsearchError"
	// ReasonStrimziPending: the KafkaTopics and KafkaUser are made, and
	// the Strimzi operators have not reported them all Ready yet.
	ReasonStrimziPending = "StrimziPending"

	ReasonNamespaceError    = "NamespaceError"
	ReasonNamespaceConflict = "NamespaceConflict"
)

// TenantLabel is the namespace label that names the namespace's tenant:
// the controller sets it on the namespaces a Tenant lists, and shippers
// read it (SLUICE_SHIPPER_TENANT_LABEL, whose default it is) to send the
// namespace's logs to that tenant's topic.
const TenantLabel = "sluice.io/tenant"

// strimziPoll is how soon a Tenant waiting for the Strimzi operators is
// looked at again.
const strimziPoll = 10 * time.Second

// minPasswordLength is the shortest password taken from a Secret.
const minPasswordLength = 24

// TenantReconciler keeps a tenant's topics, Kafka user, ACLs and quotas as
// its Tenant says, through the same code as sluice tenant create, and
// writes the user's credentials to the Secret the Tenant names.
type TenantReconciler struct {
	Client client.Client
	Admin  *kadm.Client
	// Kafka publishes the tenants' index settings to <prefix>.tenants.
	Kafka  *kgo.Client
	Topics kafka.Topics
	Log    *slog.Logger
	// Retry is how soon a Tenant that failed is tried again (Kafka away,
	// say); controller-runtime backs off on its own as well.
	Retry time.Duration
	// Roles, when set, keeps each tenant's Elasticsearch role.
	Roles *ElasticRoles
	// Strimzi, when set, makes the tenant's topics and user as Strimzi
	// resources instead of through Admin.
	Strimzi *Strimzi
}

// Reconcile brings one Tenant's Kafka objects in line with it.
func (r *TenantReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var t v1alpha1.Tenant
	if err := r.Client.Get(ctx, req.NamespacedName, &t); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	id := t.Spec.ID
	if id == "" {
		id = t.Name
	}
	if !t.DeletionTimestamp.IsZero() {
		return r.remove(ctx, &t, id)
	}
	if controllerutil.AddFinalizer(&t, Finalizer) {
		if err := r.Client.Update(ctx, &t); err != nil {
			return ctrl.Result{}, err
		}
	}
	spec, err := tenantSpec(&t.Spec)
	if err == nil {
		err = kafka.ValidateTenant(id)
	}
	if err != nil {
		// The spec must change before anything can be done: no retry.
		return ctrl.Result{}, r.setReady(ctx, &t, id, metav1.ConditionFalse, ReasonInvalid, err.Error())
	}
	if t.Spec.CredentialsSecret != nil {
		pw, err := r.password(ctx, &t, id)
		if err != nil {
			return r.failed(ctx, &t, id, ReasonSecretError, err)
		}
		spec.Password = pw
	}
	var res kafka.ProvisionResult
	var pending []string
	if r.Strimzi != nil {
		pending, err = r.Strimzi.provision(ctx, r.Topics, id, spec)
	} else {
		res, err = kafka.ProvisionTenant(ctx, r.Admin, r.Topics, id, spec)
	}
	if err != nil {
		return r.failed(ctx, &t, id, ReasonKafkaError, err)
	}
	if err := r.publishIndex(ctx, &t, id); err != nil {
		return r.failed(ctx, &t, id, ReasonKafkaError, err)
	}
	if r.Roles != nil {
		role, err := r.Roles.put(ctx, id, t.Spec.Index.Layout)
		if err != nil {
			return r.failed(ctx, &t, id, ReasonElasticsearchError, err)
		}
		t.Status.ElasticsearchRole = role
	}
	if conflict, err := r.labelNamespaces(ctx, t.Spec.Namespaces, id); err != nil {
		return r.failed(ctx, &t, id, ReasonNamespaceError, err)
	} else if conflict != "" {
		// Someone must decide; nothing is taken from the other tenant.
		return ctrl.Result{}, r.setReady(ctx, &t, id, metav1.ConditionFalse, ReasonNamespaceConflict, conflict)
	}
	if len(pending) > 0 {
		// Strimzi's operators act on their own time; look again soon.
		msg := "waiting for the Strimzi operators to make " + strings.Join(pending, ", ")
		return ctrl.Result{RequeueAfter: min(r.Retry, strimziPoll)}, r.setReady(ctx, &t, id, metav1.ConditionFalse, ReasonStrimziPending, msg)
	}
	msg := fmt.Sprintf("topics, user, ACLs and quotas of tenant %s are in place", id)
	if r.Roles != nil {
		msg = fmt.Sprintf("topics, user, ACLs, quotas and Elasticsearch role of tenant %s are in place", id)
	}
	if res.ACLsSkipped {
		msg += " (the cluster has no authorizer: no ACLs were set)"
	}
	msg += deprecatedFields(&t.Spec)
	if len(res.TopicsCreated) > 0 {
		r.Log.Info("tenant topics created", "tenant", id, "topics", res.TopicsCreated)
	}
	return ctrl.Result{}, r.setReady(ctx, &t, id, metav1.ConditionTrue, ReasonProvisioned, msg)
}

// remove takes back what the controller made for a deleted Tenant: its
// user, ACLs and quotas, and its topics only when spec.deleteData says so.
func (r *TenantReconciler) remove(ctx context.Context, t *v1alpha1.Tenant, id string) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(t, Finalizer) {
		return ctrl.Result{}, nil
	}
	if kafka.ValidateTenant(id) == nil {
		if err := r.unlabelNamespaces(ctx, t.Spec.Namespaces, id); err != nil {
			return r.failed(ctx, t, id, ReasonNamespaceError, err)
		}
		remove := kafka.RevokeTenant
		if t.Spec.DeleteData {
			remove = kafka.DeleteTenant
		}
		if r.Strimzi != nil {
			remove = func(ctx context.Context, _ *kadm.Client, _ kafka.Topics, id string) error {
				return r.Strimzi.remove(ctx, id, t.Spec.DeleteData)
			}
		}
		if err := remove(ctx, r.Admin, r.Topics, id); err != nil {
			return r.failed(ctx, t, id, ReasonKafkaError, fmt.Errorf("removing tenant %s: %w", id, err))
		}
		if err := kafka.DeleteTenantSettings(ctx, r.Kafka, r.Topics, id); err != nil {
			return r.failed(ctx, t, id, ReasonKafkaError, fmt.Errorf("removing tenant %s's index settings: %w", id, err))
		}
		if r.Roles != nil {
			if err := r.Roles.delete(ctx, id); err != nil {
				return r.failed(ctx, t, id, ReasonElasticsearchError, err)
			}
		}
		r.Log.Info("tenant removed", "tenant", id, "topics_deleted", t.Spec.DeleteData)
	}
	controllerutil.RemoveFinalizer(t, Finalizer)
	return ctrl.Result{}, r.Client.Update(ctx, t)
}

// publishIndex publishes the Tenant's index settings to <prefix>.tenants,
// where the indexers read them, when they differ from the last published
// (status.index); settings taken away are deleted there, which puts the
// tenant back on the indexers' defaults.
func (r *TenantReconciler) publishIndex(ctx context.Context, t *v1alpha1.Tenant, id string) error {
	want := t.Spec.Index
	if t.Status.Index != nil && equality.Semantic.DeepEqual(*t.Status.Index, want) {
		return nil
	}
	if want.Layout == "" && want.RetentionDays == nil {
		if t.Status.Index == nil {
			return nil // never published
		}
		if err := kafka.DeleteTenantSettings(ctx, r.Kafka, r.Topics, id); err != nil {
			return fmt.Errorf("delete tenant %s's index settings: %w", id, err)
		}
		t.Status.Index = nil
		return nil
	}
	s := kafka.TenantSettings{Layout: want.Layout}
	if d := want.RetentionDays; d != nil {
		days := int(*d)
		s.RetentionDays = &days
	}
	if err := kafka.PublishTenantSettings(ctx, r.Kafka, r.Topics, id, s); err != nil {
		return fmt.Errorf("publish tenant %s's index settings: %w", id, err)
	}
	days := "default"
	if s.RetentionDays != nil {
		days = strconv.Itoa(*s.RetentionDays)
	}
	r.Log.Info("tenant index settings published", "tenant", id, "layout", cmp.Or(want.Layout, "default"), "retention_days", days)
	t.Status.Index = want.DeepCopy()
	return nil
}

// claiming returns a request for every Tenant that lists the namespace ns
// names: what a namespace's appearance may affect.
func (r *TenantReconciler) claiming(ctx context.Context, ns client.Object) []reconcile.Request {
	var list v1alpha1.TenantList
	if err := r.Client.List(ctx, &list); err != nil {
		r.Log.Warn("listing tenants after a namespace changed", "err", err)
		return nil
	}
	var reqs []reconcile.Request
	for _, t := range list.Items {
		if slices.Contains(t.Spec.Namespaces, ns.GetName()) {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: t.Name}})
		}
	}
	return reqs
}

// labelNamespaces sets TenantLabel to id on the namespaces given that
// exist (one created later is labelled on the next reconcile: Namespaces
// are watched). A namespace labelled for another tenant is left alone and
// reported in conflict.
func (r *TenantReconciler) labelNamespaces(ctx context.Context, names []string, id string) (conflict string, err error) {
	for _, name := range names {
		var ns corev1.Namespace
		if err := r.Client.Get(ctx, types.NamespacedName{Name: name}, &ns); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return "", fmt.Errorf("read namespace %s: %w", name, err)
		}
		switch cur, ok := ns.Labels[TenantLabel]; {
		case cur == id:
			continue
		case ok:
			return fmt.Sprintf("namespace %s is labelled %s=%s: it belongs to that tenant; remove the label or the namespace from one of the Tenants", name, TenantLabel, cur), nil
		}
		patch := client.MergeFrom(ns.DeepCopy())
		if ns.Labels == nil {
			ns.Labels = map[string]string{}
		}
		ns.Labels[TenantLabel] = id
		if err := r.Client.Patch(ctx, &ns, patch); err != nil {
			return "", fmt.Errorf("label namespace %s: %w", name, err)
		}
		r.Log.Info("namespace labelled for its tenant", "namespace", name, "tenant", id)
	}
	return "", nil
}

// unlabelNamespaces removes TenantLabel from the namespaces given where it
// names id.
func (r *TenantReconciler) unlabelNamespaces(ctx context.Context, names []string, id string) error {
	for _, name := range names {
		var ns corev1.Namespace
		if err := r.Client.Get(ctx, types.NamespacedName{Name: name}, &ns); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return fmt.Errorf("read namespace %s: %w", name, err)
		}
		if ns.Labels[TenantLabel] != id {
			continue
		}
		patch := client.MergeFrom(ns.DeepCopy())
		delete(ns.Labels, TenantLabel)
		if err := r.Client.Patch(ctx, &ns, patch); err != nil {
			return fmt.Errorf("unlabel namespace %s: %w", name, err)
		}
	}
	return nil
}

// password returns the password in the Secret ref names, making the
// Secret with a new password first when it does not exist. The password
// never appears in a log line, an event or a status.
func (r *TenantReconciler) password(ctx context.Context, t *v1alpha1.Tenant, id string) (string, error) {
	ref := t.Spec.CredentialsSecret
	var s corev1.Secret
	key := types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}
	err := r.Client.Get(ctx, key, &s)
	switch {
	case err == nil:
		if s.Labels[managedByLabel] != managedBy || s.Annotations[tenantAnnotation] != id {
			return "", fmt.Errorf("secret %s exists and was not made for tenant %s by this controller: choose another name", key, id)
		}
		pw := string(s.Data["password"])
		if len(pw) < minPasswordLength {
			return "", fmt.Errorf("secret %s: its password is missing or shorter than %d characters", key, minPasswordLength)
		}
		return pw, nil
	case !apierrors.IsNotFound(err):
		return "", fmt.Errorf("read secret %s: %w", key, err)
	}
	pw, err := newPassword()
	if err != nil {
		return "", err
	}
	s = corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ref.Namespace, Name: ref.Name,
			Labels:      map[string]string{managedByLabel: managedBy},
			Annotations: map[string]string{tenantAnnotation: id}},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{"username": []byte(id), "password": []byte(pw)},
	}
	// Owned by the Tenant, so that the garbage collector deletes it with
	// the Tenant (the password of a revoked user is of no use): the
	// controller itself may not delete Secrets. Not a controller
	// reference, which would block the owner's deletion and need rights
	// on the Tenant's finalizers.
	if err := controllerutil.SetOwnerReference(t, &s, r.Client.Scheme()); err != nil {
		return "", err
	}
	if err := r.Client.Create(ctx, &s); err != nil {
		return "", fmt.Errorf("create secret %s: %w", key, err)
	}
	return pw, nil
}

const (
	managedByLabel   = "app.kubernetes.io/managed-by"
	managedBy        = "sluice-controller"
	tenantAnnotation = "sluice.io/tenant"
)

func newPassword() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// tenantSpec turns a Tenant's spec into what kafka.ProvisionTenant takes,
// with the defaults and bounds of sluice tenant create
// (kafka.DefaultTenantSpec, TenantSpec.Validate).
func tenantSpec(s *v1alpha1.TenantSpec) (kafka.TenantSpec, error) {
	spec := kafka.DefaultTenantSpec()
	if p := s.Topics.Partitions; p != nil {
		spec.Partitions = *p
	}
	if rf := s.Topics.ReplicationFactor; rf != nil {
		if int32(int16(*rf)) != *rf {
			return spec, fmt.Errorf("topics.replicationFactor %d: want -1 or 1 to 32", *rf)
		}
		spec.ReplicationFactor = int16(*rf)
	}
	if d := s.Topics.Retention; d != nil {
		spec.Retention = d.Duration
	}
	q := s.Quotas
	if q.ProduceBytesPerSecond != nil {
		spec.ProducerByteRate = float64(*q.ProduceBytesPerSecond)
	}
	if q.FetchBytesPerSecond != nil {
		spec.ConsumerByteRate = float64(*q.FetchBytesPerSecond)
	}
	if q.PartitionMutationsPerSecond != nil {
		spec.ControllerMutationRate = float64(*q.PartitionMutationsPerSecond)
	}
	spec.Datasets = datasets(s)
	return spec, spec.Validate()
}

// datasets are the datasets of a Tenant's spec: datasets, and streams,
// its deprecated name (the CRD refuses both at once; were both given all
// the same, as by a cluster whose API server runs no CEL rules, both
// count), each once.
func datasets(s *v1alpha1.TenantSpec) []string {
	var out []string
	for _, ds := range slices.Concat(s.Datasets, s.Streams) {
		if !slices.Contains(out, ds) {
			out = append(out, ds)
		}
	}
	return out
}

// deprecatedFields says which deprecated fields a Tenant's spec uses, for
// its Ready condition: "" when none.
func deprecatedFields(s *v1alpha1.TenantSpec) string {
	if len(s.Streams) == 0 {
		return ""
	}
	return "; spec.streams is deprecated: write spec.datasets (same meaning)"
}

// failed records a failure that may pass (Kafka away, a Secret not
// readable) and asks for another try.
func (r *TenantReconciler) failed(ctx context.Context, t *v1alpha1.Tenant, id, reason string, err error) (ctrl.Result, error) {
	r.Log.Warn("tenant not reconciled", "tenant", id, "reason", reason, "err", err)
	if serr := r.setReady(ctx, t, id, metav1.ConditionFalse, reason, err.Error()); serr != nil {
		return ctrl.Result{}, errors.Join(err, serr)
	}
	return ctrl.Result{RequeueAfter: r.Retry}, nil
}

// setReady writes the Ready condition and what was observed.
func (r *TenantReconciler) setReady(ctx context.Context, t *v1alpha1.Tenant, id string, status metav1.ConditionStatus, reason, msg string) error {
	t.Status.ID = id
	t.Status.ObservedGeneration = t.Generation
	meta.SetStatusCondition(&t.Status.Conditions, metav1.Condition{
		Type: ConditionReady, Status: status, Reason: reason, Message: msg, ObservedGeneration: t.Generation,
	})
	return r.Client.Status().Update(ctx, t)
}
