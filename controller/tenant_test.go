package controller

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/sluicelogs/sluice/controller/v1alpha1"
	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/internal/kafkatest"
)

func testScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

// testKafka is a kfake cluster with SASL and ACLs, and an administrator.
func testKafka(t *testing.T) (*kfake.Cluster, *kadm.Client) {
	t.Helper()
	c := kafkatest.Cluster(t, kafkatest.Superuser("admin", "admin-secret"), kafkatest.ACLs())
	return c, kadm.NewClient(asUser(t, c, "admin", "admin-secret"))
}

func asUser(t *testing.T, c *kfake.Cluster, user, pass string) *kgo.Client {
	t.Helper()
	return kafkatest.Client(t, c, kafkatest.SCRAM(user, pass), kgo.UnknownTopicRetries(1))
}

func reconcileTenant(t *testing.T, r *TenantReconciler, name string) ctrl.Result {
	t.Helper()
	res, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{Name: name}})
	if err != nil {
		t.Fatalf("reconcile %s: %v", name, err)
	}
	return res
}

// newTenantReconciler is a TenantReconciler of the cluster's tenants under
// the prefix logs, as an administrator.
func newTenantReconciler(t *testing.T, cl client.Client, cluster *kfake.Cluster, adm *kadm.Client) *TenantReconciler {
	return &TenantReconciler{Client: cl, Admin: adm, Kafka: asUser(t, cluster, "admin", "admin-secret"), Topics: kafka.Topics{Prefix: "logs"},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Retry: time.Second}
}

// deleteTenant deletes a Tenant and reconciles it: its finalizer runs.
func deleteTenant(t *testing.T, cl client.Client, r *TenantReconciler, name string) {
	t.Helper()
	var cur v1alpha1.Tenant
	if err := cl.Get(context.Background(), types.NamespacedName{Name: name}, &cur); err != nil {
		t.Fatal(err)
	}
	if err := cl.Delete(context.Background(), &cur); err != nil {
		t.Fatal(err)
	}
	reconcileTenant(t, r, name)
}

func readyOf(t *testing.T, cl client.Client, name string) *metav1.Condition {
	t.Helper()
	var got v1alpha1.Tenant
	if err := cl.Get(context.Background(), types.NamespacedName{Name: name}, &got); err != nil {
		t.Fatal(err)
	}
	return meta.FindStatusCondition(got.Status.Conditions, ConditionReady)
}

// TestTenantReconcile: a Tenant becomes its topics, a SCRAM user whose
// password is in the Secret the Tenant names, and ACLs that let that user
// write its raw topic and not another tenant's; a broken Tenant beside it
// is reported in its own status and changes nothing of the first;
// deleting the Tenant removes the user and keeps the topics (deleteData
// false), or removes both.
func TestTenantReconcile(t *testing.T) {
	ctx := context.Background()
	cluster, adm := testKafka(t)
	partitions := int32(2)
	shop := &v1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "shop"}, Spec: v1alpha1.TenantSpec{
		Namespaces:        []string{"shop", "shop-jobs", "not-yet"},
		Topics:            v1alpha1.TopicsSpec{Partitions: &partitions},
		Datasets:          []string{"audit"},
		CredentialsSecret: &v1alpha1.SecretReference{Namespace: "shop", Name: "sluice-kafka"},
	}}
	broken := &v1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "broken"}, Spec: v1alpha1.TenantSpec{
		Datasets: []string{"Not A Dataset"},
	}}
	cl := fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(shop, broken,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"team": "shop"}}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop-jobs"}}).
		WithStatusSubresource(&v1alpha1.Tenant{}).Build()
	topics := kafka.Topics{Prefix: "logs"}
	tenantOf := func(ns string) string {
		t.Helper()
		var n corev1.Namespace
		if err := cl.Get(ctx, types.NamespacedName{Name: ns}, &n); err != nil {
			t.Fatal(err)
		}
		return n.Labels[TenantLabel]
	}
	r := newTenantReconciler(t, cl, cluster, adm)

	reconcileTenant(t, r, "broken")
	if c := readyOf(t, cl, "broken"); c == nil || c.Status != metav1.ConditionFalse || c.Reason != ReasonInvalid || !strings.Contains(c.Message, "Not A Dataset") {
		t.Fatalf("broken tenant: Ready %+v", c)
	}

	reconcileTenant(t, r, "shop")
	if c := readyOf(t, cl, "shop"); c == nil || c.Status != metav1.ConditionTrue || c.Reason != ReasonProvisioned || strings.Contains(c.Message, "deprecated") {
		t.Fatalf("shop: Ready %+v", c)
	}
	listed, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range append(kafka.TenantTopics(topics, "shop"), topics.ParsedDataset("shop", "audit")) {
		d, ok := listed[want]
		if !ok {
			t.Fatalf("topic %s missing; have %v", want, listed.Names())
		}
		if len(d.Partitions) != int(partitions) && !slices.Contains(kafka.TenantStateTopics(topics, "shop"), want) {
			t.Errorf("topic %s has %d partitions, want %d", want, len(d.Partitions), partitions)
		}
	}
	for _, name := range listed.Names() {
		if strings.Contains(name, "broken") {
			t.Errorf("the broken tenant got topic %s", name)
		}
	}

	var secret corev1.Secret
	if err := cl.Get(ctx, types.NamespacedName{Namespace: "shop", Name: "sluice-kafka"}, &secret); err != nil {
		t.Fatal(err)
	}
	if refs := secret.OwnerReferences; len(refs) != 1 || refs[0].Kind != "Tenant" || refs[0].Name != "shop" || refs[0].BlockOwnerDeletion != nil {
		t.Errorf("the credentials Secret is owned by %+v, want the Tenant (for the garbage collector, not blocking)", refs)
	}
	if string(secret.Data["username"]) != "shop" || len(secret.Data["password"]) < minPasswordLength {
		t.Fatalf("secret holds %q and a password of %d bytes", secret.Data["username"], len(secret.Data["password"]))
	}
	// The user in the Secret writes its raw topic, and not another's.
	user := asUser(t, cluster, "shop", string(secret.Data["password"]))
	if err := user.ProduceSync(ctx, &kgo.Record{Topic: topics.Raw("shop"), Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatalf("the tenant's user cannot write its raw topic: %v", err)
	}
	if _, err := adm.CreateTopic(ctx, 1, -1, nil, topics.Raw("other")); err != nil {
		t.Fatal(err)
	}
	if err := user.ProduceSync(ctx, &kgo.Record{Topic: topics.Raw("other"), Value: []byte("x")}).FirstErr(); err == nil {
		t.Fatal("the tenant's user wrote another tenant's raw topic")
	}

	// Its namespaces that exist are labelled for the shippers; their own
	// labels stay.
	if tenantOf("shop") != "shop" || tenantOf("shop-jobs") != "shop" {
		t.Errorf("namespaces labelled %q and %q, want shop", tenantOf("shop"), tenantOf("shop-jobs"))
	}
	var shopNS corev1.Namespace
	if err := cl.Get(ctx, types.NamespacedName{Name: "shop"}, &shopNS); err != nil || shopNS.Labels["team"] != "shop" {
		t.Errorf("the namespace's own labels were lost: %v (%v)", shopNS.Labels, err)
	}

	// Reconciling again changes nothing: the password stays.
	reconcileTenant(t, r, "shop")
	var again corev1.Secret
	if err := cl.Get(ctx, types.NamespacedName{Namespace: "shop", Name: "sluice-kafka"}, &again); err != nil || string(again.Data["password"]) != string(secret.Data["password"]) {
		t.Fatalf("the password changed on a second reconcile (%v)", err)
	}

	// Deleted without deleteData: the user goes, the topics stay.
	deleteTenant(t, cl, r, "shop")
	var cur v1alpha1.Tenant
	if err := cl.Get(ctx, types.NamespacedName{Name: "shop"}, &cur); err == nil {
		t.Fatalf("the Tenant is still there after its finalizer ran: %+v", cur.Finalizers)
	}
	if tenantOf("shop") != "" || tenantOf("shop-jobs") != "" {
		t.Error("the namespaces keep the tenant label after the Tenant was deleted")
	}
	if listed, _ := adm.ListTopics(ctx); !listed.Has(topics.Raw("shop")) {
		t.Error("the tenant's topics were deleted although deleteData is false")
	}
	users, err := adm.DescribeUserSCRAMs(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if d := users["shop"]; d.Err == nil && len(d.CredInfos) > 0 {
		t.Error("the tenant's SCRAM user is still there")
	}
}

// TestTenantSecretNotOurs: a Tenant naming a Secret that the controller
// did not make for it is not given that Secret's password, nor does it
// overwrite it.
func TestTenantSecretNotOurs(t *testing.T) {
	cluster, adm := testKafka(t)
	foreign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "db"}, Data: map[string][]byte{"password": []byte("someone-elses-password-1234")}}
	tn := &v1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: v1alpha1.TenantSpec{
		CredentialsSecret: &v1alpha1.SecretReference{Namespace: "web", Name: "db"},
	}}
	cl := fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(tn, foreign).WithStatusSubresource(&v1alpha1.Tenant{}).Build()
	r := newTenantReconciler(t, cl, cluster, adm)
	if res := reconcileTenant(t, r, "web"); res.RequeueAfter == 0 {
		t.Error("a secret error is not retried")
	}
	c := readyOf(t, cl, "web")
	if c == nil || c.Reason != ReasonSecretError || strings.Contains(c.Message, "someone-elses") {
		t.Fatalf("Ready %+v", c)
	}
	var s corev1.Secret
	if err := cl.Get(context.Background(), types.NamespacedName{Namespace: "web", Name: "db"}, &s); err != nil || string(s.Data["password"]) != "someone-elses-password-1234" {
		t.Fatalf("the foreign secret was changed (%v)", err)
	}
}

// TestTenantNamespaceConflict: a Tenant listing a namespace labelled for
// another tenant does not take it: the label stays, and the Tenant says
// why it is not ready.
func TestTenantNamespaceConflict(t *testing.T) {
	cluster, adm := testKafka(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shared", Labels: map[string]string{TenantLabel: "web"}}}
	tn := &v1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "shop"}, Spec: v1alpha1.TenantSpec{Namespaces: []string{"shared"}}}
	cl := fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(tn, ns).WithStatusSubresource(&v1alpha1.Tenant{}).Build()
	r := newTenantReconciler(t, cl, cluster, adm)
	reconcileTenant(t, r, "shop")
	if c := readyOf(t, cl, "shop"); c == nil || c.Status != metav1.ConditionFalse || c.Reason != ReasonNamespaceConflict || !strings.Contains(c.Message, "shared") {
		t.Fatalf("Ready %+v", c)
	}
	var got corev1.Namespace
	if err := cl.Get(context.Background(), types.NamespacedName{Name: "shared"}, &got); err != nil || got.Labels[TenantLabel] != "web" {
		t.Fatalf("the namespace's tenant label is %q (%v), want web kept", got.Labels[TenantLabel], err)
	}
	if reqs := r.claiming(context.Background(), &got); len(reqs) != 1 || reqs[0].Name != "shop" {
		t.Errorf("a change of namespace shared requeues %v, want the Tenant shop", reqs)
	}
}

// TestTenantIndexSettings: a Tenant's index layout and retention are
// published to <prefix>.tenants for the indexers, once per change; taken
// away, or with the Tenant, they are deleted there.
func TestTenantIndexSettings(t *testing.T) {
	ctx := context.Background()
	cluster, adm := testKafka(t)
	days := int32(30)
	shop := &v1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "shop"}, Spec: v1alpha1.TenantSpec{
		Index: v1alpha1.IndexSpec{Layout: "shared", RetentionDays: &days}}}
	web := &v1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "web"}}
	cl := fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(shop, web).WithStatusSubresource(&v1alpha1.Tenant{}).Build()
	r := newTenantReconciler(t, cl, cluster, adm)
	// records reads <prefix>.tenants whole: key, then value ("" for a
	// tombstone).
	records := func() []string {
		t.Helper()
		ends, err := adm.ListEndOffsets(ctx, r.Topics.Tenants())
		if err != nil {
			t.Fatal(err)
		}
		end := ends[r.Topics.Tenants()][0].Offset
		reader := asUser(t, cluster, "admin", "admin-secret")
		reader.AddConsumePartitions(map[string]map[int32]kgo.Offset{r.Topics.Tenants(): {0: kgo.NewOffset().AtStart()}})
		var out []string
		for int64(len(out)) < end {
			reader.PollFetches(ctx).EachRecord(func(rec *kgo.Record) {
				if len(rec.Value) == 0 {
					out = append(out, string(rec.Key)+" deleted")
					return
				}
				var s kafka.TenantSettings
				if err := s.Decode(rec.Value); err != nil {
					t.Fatalf("record of %s: %v", rec.Key, err)
				}
				days := "default"
				if s.RetentionDays != nil {
					days = fmt.Sprint(*s.RetentionDays)
				}
				out = append(out, fmt.Sprintf("%s %s %s", rec.Key, s.Layout, days))
			})
		}
		return out
	}
	update := func(index v1alpha1.IndexSpec) {
		t.Helper()
		var cur v1alpha1.Tenant
		if err := cl.Get(ctx, types.NamespacedName{Name: "shop"}, &cur); err != nil {
			t.Fatal(err)
		}
		cur.Spec.Index = index
		if err := cl.Update(ctx, &cur); err != nil {
			t.Fatal(err)
		}
		reconcileTenant(t, r, "shop")
	}

	reconcileTenant(t, r, "shop")
	reconcileTenant(t, r, "web") // no settings: nothing published
	reconcileTenant(t, r, "shop")
	want := []string{"shop shared 30"}
	if got := records(); !slices.Equal(got, want) {
		t.Fatalf("published %q, want %q", got, want)
	}
	update(v1alpha1.IndexSpec{Layout: "dedicated"})
	update(v1alpha1.IndexSpec{})
	deleteTenant(t, cl, r, "shop")
	want = append(want, "shop dedicated default", "shop deleted", "shop deleted")
	if got := records(); !slices.Equal(got, want) {
		t.Fatalf("published %q, want %q", got, want)
	}
}

// TestTenantDeprecatedStreams: spec.streams, the former name of
// spec.datasets, still makes the datasets' topics, and the Ready condition
// says to write datasets; were both given (the CRD refuses it), both
// count.
func TestTenantDeprecatedStreams(t *testing.T) {
	ctx := context.Background()
	cluster, adm := testKafka(t)
	legacy := &v1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "legacy"}, Spec: v1alpha1.TenantSpec{Streams: []string{"audit"}}}
	cl := fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(legacy).WithStatusSubresource(&v1alpha1.Tenant{}).Build()
	r := newTenantReconciler(t, cl, cluster, adm)
	reconcileTenant(t, r, "legacy")
	if c := readyOf(t, cl, "legacy"); c == nil || c.Status != metav1.ConditionTrue ||
		!strings.HasSuffix(c.Message, "; spec.streams is deprecated: write spec.datasets (same meaning)") {
		t.Fatalf("legacy: Ready %+v", c)
	}
	listed, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := listed[kafka.Topics{Prefix: "logs"}.ParsedDataset("legacy", "audit")]; !ok {
		t.Errorf("no topic of dataset audit; have %v", listed.Names())
	}

	spec, err := tenantSpec(&v1alpha1.TenantSpec{Datasets: []string{"a", "b"}, Streams: []string{"b", "c"}})
	if err != nil || strings.Join(spec.Datasets, ",") != "a,b,c" {
		t.Errorf("datasets and streams: %v, %v", spec.Datasets, err)
	}
}
