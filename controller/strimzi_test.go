package controller

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/sluicelogs/sluice/controller/v1alpha1"
	"github.com/sluicelogs/sluice/internal/kafka"
)

// TestTenantStrimzi: in the Strimzi mode a Tenant becomes KafkaTopics and
// a KafkaUser (its ACLs those of sluice tenant create, its password the
// one in the Tenant's Secret), and is Ready once the operators report them
// Ready; an object of the same name that is not the tenant's is refused
// without touching it, and without holding up the other tenant; deleting
// the Tenant deletes its objects, first telling the topic operator to keep
// the topics unless deleteData.
func TestTenantStrimzi(t *testing.T) {
	ctx := context.Background()
	cluster, adm := testKafka(t)
	shop := &v1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "shop"}, Spec: v1alpha1.TenantSpec{
		Streams:           []string{"audit"},
		CredentialsSecret: &v1alpha1.SecretReference{Namespace: "shop", Name: "sluice-kafka"},
	}}
	web := &v1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: v1alpha1.TenantSpec{DeleteData: true}}
	strimzi := &Strimzi{Namespace: "kafka", Cluster: "logs", APIVersion: "kafka.strimzi.io/v1beta2"}
	// Someone else's KafkaTopic with the name web's raw topic would get.
	foreign := strimzi.object("KafkaTopic", "logs.raw.web", "web", map[string]any{"topicName": "logs.raw.web"})
	foreign.SetLabels(map[string]string{strimziClusterLabel: "logs"})
	cl := fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(shop, web, foreign).
		WithStatusSubresource(&v1alpha1.Tenant{}).Build()
	strimzi.Client = cl
	topics := kafka.Topics{Prefix: "logs"}
	r := &TenantReconciler{Client: cl, Admin: adm, Kafka: asUser(t, cluster, "admin", "admin-secret"), Topics: topics, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Retry: time.Minute, Strimzi: strimzi}
	get := func(kind, name string) *unstructured.Unstructured {
		t.Helper()
		o := &unstructured.Unstructured{}
		o.SetGroupVersionKind(strimzi.gvk(kind))
		if err := cl.Get(ctx, types.NamespacedName{Namespace: "kafka", Name: name}, o); err != nil {
			t.Fatalf("%s %s: %v", kind, name, err)
		}
		return o
	}
	ours := func() []unstructured.Unstructured {
		t.Helper()
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(strimzi.gvk("KafkaTopicList"))
		if err := cl.List(ctx, list, client.MatchingLabels{TenantLabel: "shop"}); err != nil {
			t.Fatal(err)
		}
		return list.Items
	}

	if res := reconcileTenant(t, r, "shop"); res.RequeueAfter != strimziPoll {
		t.Errorf("waiting for Strimzi: requeue after %v, want %v", res.RequeueAfter, strimziPoll)
	}
	if c := readyOf(t, cl, "shop"); c == nil || c.Status != metav1.ConditionFalse || c.Reason != ReasonStrimziPending || !strings.Contains(c.Message, "KafkaUser shop") {
		t.Fatalf("shop before the operators: Ready %+v", c)
	}
	want := append(kafka.TenantTopics(topics, "shop"), topics.ParsedDataset("shop", "audit"))
	want = append(want, kafka.TenantStateTopics(topics, "shop")...)
	if got := ours(); len(got) != len(want) {
		t.Fatalf("%d KafkaTopics, want %d (%v)", len(got), len(want), want)
	}
	for _, topic := range want {
		kt := get("KafkaTopic", topic)
		if name, _, _ := unstructured.NestedString(kt.Object, "spec", "topicName"); name != topic || kt.GetLabels()[strimziClusterLabel] != "logs" {
			t.Errorf("KafkaTopic %s: topicName %q, labels %v", topic, name, kt.GetLabels())
		}
	}
	if p, _, _ := unstructured.NestedInt64(get("KafkaTopic", topics.TenantConfig("shop")).Object, "spec", "partitions"); p != 1 {
		t.Errorf("the config topic has %d partitions, want 1", p)
	}
	user := get("KafkaUser", "shop")
	acls, _, _ := unstructured.NestedSlice(user.Object, "spec", "authorization", "acls")
	if len(acls) != len(kafka.TenantACLRules(topics, "shop")) {
		t.Errorf("KafkaUser has %d ACLs, want those of sluice tenant create: %v", len(acls), acls)
	}
	first := acls[0].(map[string]any)
	if ops := first["operations"].([]any); ops[0] != "Write" || ops[1] != "Describe" {
		t.Errorf("first ACL's operations %v, want Write, Describe", ops)
	}
	if q, _, _ := unstructured.NestedInt64(user.Object, "spec", "quotas", "producerByteRate"); q != int64(kafka.DefaultTenantSpec().ProducerByteRate) {
		t.Errorf("producerByteRate quota %d", q)
	}
	ref, _, _ := unstructured.NestedString(user.Object, "spec", "authentication", "password", "valueFrom", "secretKeyRef", "name")
	var pwStrimzi, pwTenant corev1.Secret
	if err := cl.Get(ctx, types.NamespacedName{Namespace: "kafka", Name: ref}, &pwStrimzi); err != nil {
		t.Fatalf("the KafkaUser's password Secret %q: %v", ref, err)
	}
	if err := cl.Get(ctx, types.NamespacedName{Namespace: "shop", Name: "sluice-kafka"}, &pwTenant); err != nil {
		t.Fatal(err)
	}
	if string(pwStrimzi.Data["password"]) != string(pwTenant.Data["password"]) || len(pwTenant.Data["password"]) < minPasswordLength {
		t.Error("the KafkaUser's password is not the one in the Tenant's Secret")
	}

	// web is refused over the foreign KafkaTopic, which is left as it was.
	reconcileTenant(t, r, "web")
	if c := readyOf(t, cl, "web"); c == nil || c.Reason != ReasonKafkaError || !strings.Contains(c.Message, "not tenant web's") {
		t.Fatalf("web over a foreign KafkaTopic: Ready %+v", c)
	}
	if f := get("KafkaTopic", "logs.raw.web"); f.GetLabels()[TenantLabel] != "" {
		t.Errorf("the foreign KafkaTopic was taken over: %v", f.GetLabels())
	}

	// The operators report every object Ready: the Tenant is Ready. The
	// topic operator's finalizer keeps the KafkaTopics visible once
	// deleted, as in a cluster.
	for _, o := range append(ours(), *get("KafkaUser", "shop")) {
		o.Object["status"] = map[string]any{"observedGeneration": o.GetGeneration(),
			"conditions": []any{map[string]any{"type": "Ready", "status": "True"}}}
		if o.GetKind() == "KafkaTopic" {
			o.SetFinalizers([]string{"strimzi.io/topic-operator"})
		}
		if err := cl.Update(ctx, &o); err != nil {
			t.Fatal(err)
		}
	}
	reconcileTenant(t, r, "shop")
	if c := readyOf(t, cl, "shop"); c == nil || c.Status != metav1.ConditionTrue {
		t.Fatalf("shop once the operators are done: Ready %+v", c)
	}

	// Deleted, deleteData false: the user goes, the KafkaTopics are
	// deleted unmanaged, which keeps the topics.
	deleteTenant(t, cl, r, "shop")
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(strimzi.gvk("KafkaUser"))
	if err := cl.Get(ctx, types.NamespacedName{Namespace: "kafka", Name: "shop"}, u); err == nil {
		t.Error("the KafkaUser is still there")
	}
	left := ours()
	if len(left) != len(want) {
		t.Fatalf("%d KafkaTopics left with the topic operator's finalizer, want %d", len(left), len(want))
	}
	for _, kt := range left {
		if kt.GetDeletionTimestamp() == nil || kt.GetAnnotations()[strimziManaged] != "false" {
			t.Errorf("KafkaTopic %s: deleted %v, annotations %v; want deleted unmanaged", kt.GetName(), kt.GetDeletionTimestamp(), kt.GetAnnotations())
		}
	}
	if err := cl.Get(ctx, types.NamespacedName{Namespace: "kafka", Name: passwordSecretName("shop")}, &corev1.Secret{}); err == nil {
		t.Error("the KafkaUser's password Secret is still there")
	}
}

// TestStrimziDeleteData: with deleteData the KafkaTopics are deleted as
// they are, managed, so that the topic operator deletes the topics.
func TestStrimziDeleteData(t *testing.T) {
	ctx := context.Background()
	strimzi := &Strimzi{Namespace: "kafka", Cluster: "logs", APIVersion: "kafka.strimzi.io/v1beta2"}
	kt := strimzi.object("KafkaTopic", "logs.raw.web", "web", map[string]any{"topicName": "logs.raw.web"})
	kt.SetFinalizers([]string{"strimzi.io/topic-operator"})
	strimzi.Client = fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(kt).Build()
	if err := strimzi.remove(ctx, "web", true); err != nil {
		t.Fatal(err)
	}
	got := &unstructured.Unstructured{}
	got.SetGroupVersionKind(kt.GroupVersionKind())
	if err := strimzi.Client.Get(ctx, client.ObjectKeyFromObject(kt), got); err != nil {
		t.Fatal(err)
	}
	if got.GetDeletionTimestamp() == nil || got.GetAnnotations()[strimziManaged] != "" {
		t.Errorf("deleteData: deleted %v, annotations %v; want deleted, managed", got.GetDeletionTimestamp(), got.GetAnnotations())
	}
}
