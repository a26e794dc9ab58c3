package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/sluicelogs/sluice/controller/v1alpha1"
	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/router"
	"github.com/sluicelogs/sluice/schemas"
	"github.com/twmb/franz-go/pkg/kgo"
)

func pipelineDoc(tenant string, version int, want string) string {
	return fmt.Sprintf(`tenant: %s
version: %d
steps:
  - json: {}
tests:
  - name: parsed
    line: '{"level":"warn"}'
    expect: {attributes: {level: %s}}
`, tenant, version, want)
}

// TestPipelineReconcile: a Pipeline in a namespace its tenant owns is
// validated, its tests run, and it is stored in the tenant's config topic;
// a next version whose test fails is refused with the line and column of
// the failure, and the version in force stays; a Pipeline in a namespace
// that belongs to another tenant, or to none, is refused and changes
// nothing of the tenant it names; deleting the Pipeline puts the tenant
// back on pass-through.
func TestPipelineReconcile(t *testing.T) {
	ctx := context.Background()
	cluster, adm := testKafka(t)
	topics := kafka.Topics{Prefix: "logs"}
	for _, tn := range []string{"shop", "web"} {
		if _, err := kafka.ProvisionTenant(ctx, adm, topics, tn, kafka.TenantSpec{Partitions: 1, ReplicationFactor: -1}); err != nil {
			t.Fatal(err)
		}
	}
	shop := &v1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "shop"}, Spec: v1alpha1.TenantSpec{Namespaces: []string{"shop"}}}
	web := &v1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: v1alpha1.TenantSpec{Namespaces: []string{"web"}}}
	mine := &v1alpha1.Pipeline{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "main"},
		Spec: v1alpha1.PipelineSpec{Document: pipelineDoc("shop", 1, "warn")}}
	hijack := &v1alpha1.Pipeline{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "evil"},
		Spec: v1alpha1.PipelineSpec{Document: pipelineDoc("shop", 9, "warn")}}
	orphan := &v1alpha1.Pipeline{ObjectMeta: metav1.ObjectMeta{Namespace: "nobody", Name: "p"},
		Spec: v1alpha1.PipelineSpec{Document: pipelineDoc("shop", 9, "warn")}}
	cl := fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(shop, web, mine, hijack, orphan).
		WithStatusSubresource(&v1alpha1.Tenant{}, &v1alpha1.Pipeline{}).Build()
	r := &PipelineReconciler{Client: cl, Kafka: asUser(t, cluster, "admin", "admin-secret"), Topics: topics,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Retry: time.Second, DeadLetterWindow: 5 * time.Minute}
	reconcile := func(ns, name string) *v1alpha1.Pipeline {
		t.Helper()
		if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}); err != nil {
			t.Fatalf("reconcile %s/%s: %v", ns, name, err)
		}
		var p v1alpha1.Pipeline
		if err := cl.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &p); err != nil {
			t.Fatal(err)
		}
		return &p
	}
	stored := func() int64 {
		t.Helper()
		sp, err := router.ReadPipeline(ctx, r.Kafka, topics, "shop")
		if err != nil {
			t.Fatal(err)
		}
		if sp == nil {
			return 0
		}
		return sp.Version
	}
	cond := func(p *v1alpha1.Pipeline, typ string) metav1.Condition {
		c := meta.FindStatusCondition(p.Status.Conditions, typ)
		if c == nil {
			t.Fatalf("%s: no %s condition: %+v", p.Name, typ, p.Status)
		}
		return *c
	}

	p := reconcile("shop", "main")
	if c := cond(p, ConditionReady); c.Status != metav1.ConditionTrue || p.Status.AppliedVersion != 1 || p.Status.Tenant != "shop" || stored() != 1 {
		t.Fatalf("first version: Ready %+v, status %+v, stored v%d", c, p.Status, stored())
	}
	// What the routers report of the tenant shows in the status.
	for i, st := range []router.RouterStatus{{Applied: 1}, {Applied: 0, Paused: "catching up"}} {
		name := fmt.Sprintf("router-%d", i)
		v, _ := json.Marshal(st)
		rec := &kgo.Record{Topic: topics.TenantStatus("shop"), Key: []byte(router.StatusKey("shop", name)), Value: v}
		if err := r.Kafka.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	p = reconcile("shop", "main")
	if p.Status.RoutersInForce != "1/2" || len(p.Status.Routers) != 2 || p.Status.Routers[1].Paused != "catching up" {
		t.Fatalf("routers in the status: %q %+v", p.Status.RoutersInForce, p.Status.Routers)
	}
	if dl := p.Status.DeadLetters; dl == nil || dl.Count != 0 || dl.PerMinute != "0.0" || dl.Last != nil {
		t.Fatalf("dead letters before any: %+v", dl)
	}
	// The tenant's recent dead letters show as a count, a rate and the
	// newest's cause; one older than the window is not counted.
	for i, age := range []time.Duration{time.Hour, 3 * time.Minute, 2 * time.Minute, time.Minute} {
		dl := schemas.DeadLetter{Reason: "parse", Stage: "router", Step: i, PipelineVersion: 1,
			Error: fmt.Sprintf("step %d (json): %s", i, strings.Repeat("x", 600))}
		v, _ := json.Marshal(dl)
		rec := &kgo.Record{Topic: topics.DLQ("shop"), Value: v, Timestamp: time.Now().Add(-age)}
		if err := r.Kafka.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	p = reconcile("shop", "main")
	if dl := p.Status.DeadLetters; dl == nil || dl.Count != 3 || dl.PerMinute != "0.6" || dl.Window != "5m0s" || dl.Last == nil ||
		dl.Last.Reason != "parse" || dl.Last.Step == nil || *dl.Last.Step != 3 || len(dl.Last.Error) > maxDeadLetterError || !strings.HasPrefix(dl.Last.Error, "step 3 (json)") {
		t.Fatalf("dead letters in the status: %+v (last %+v)", dl, dl.Last)
	}

	// Another namespace's Pipeline naming shop, and one in a namespace no
	// Tenant owns: refused; shop's pipeline is untouched.
	if c := cond(reconcile("web", "evil"), ConditionValidated); c.Status != metav1.ConditionFalse || c.Reason != ReasonWrongTenant {
		t.Errorf("a Pipeline in web naming shop: Validated %+v", c)
	}
	if c := cond(reconcile("nobody", "p"), ConditionValidated); c.Status != metav1.ConditionFalse || c.Reason != ReasonNoTenant ||
		c.Message != "not applied, the tenant's pipeline stays as it is: no Tenant owns namespace nobody: a Pipeline must live in a namespace its tenant owns" {
		t.Errorf("a Pipeline in a namespace no Tenant owns: Validated %+v", c)
	}
	if v := stored(); v != 1 {
		t.Fatalf("shop's stored version is %d after the refused Pipelines, want 1", v)
	}
	// A change of the Tenants brings every Pipeline back to be looked at.
	if reqs := r.all(ctx, shop); len(reqs) != 3 {
		t.Errorf("a tenant change requeues %d pipelines, want all 3", len(reqs))
	}

	// Version 2 fails its test: refused with the position, v1 stays.
	p.Spec.Document = pipelineDoc("shop", 2, "error")
	if err := cl.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	p = reconcile("shop", "main")
	c := cond(p, ConditionValidated)
	if c.Status != metav1.ConditionFalse || c.Reason != ReasonInvalidDocument || len(p.Status.Problems) == 0 ||
		!strings.Contains(p.Status.Problems[0], "line 6, column 5") || !strings.Contains(p.Status.Problems[0], `attribute "level"`) {
		t.Fatalf("failing v2: Validated %+v, problems %q", c, p.Status.Problems)
	}
	if v := stored(); v != 1 || p.Status.AppliedVersion != 1 {
		t.Fatalf("after a failing v2: stored v%d, status says v%d; want v1 in force", v, p.Status.AppliedVersion)
	}
	// Without the webhook the API server took the document: the status
	// says that it was not applied and what stays in force.
	for _, typ := range []string{ConditionValidated, ConditionApplied} {
		if c := cond(p, typ); !strings.HasPrefix(c.Message, "not applied, version 1 stays in force: the document fails validation or its tests") {
			t.Errorf("failing v2: %s message %q", typ, c.Message)
		}
	}

	// A change without a new version is not applied, and says why.
	p.Spec.Document = strings.Replace(pipelineDoc("shop", 1, "warn"), "json: {}", "json: {depth: 3}", 1)
	if err := cl.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	if c := cond(reconcile("shop", "main"), ConditionApplied); c.Reason != ReasonVersionNotRaised ||
		c.Message != "not applied, version 1 stays in force: version 1 is not greater than the stored version 1: raise version to apply a change" {
		t.Errorf("a change with the same version: Applied %+v", c)
	}

	// A second Pipeline of shop, applied; deleting it leaves the first's
	// document stored.
	second := &v1alpha1.Pipeline{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "second"},
		Spec: v1alpha1.PipelineSpec{Document: pipelineDoc("shop", 3, "warn")}}
	if err := cl.Create(ctx, second); err != nil {
		t.Fatal(err)
	}
	second = reconcile("shop", "second")
	if v := stored(); v != 3 {
		t.Fatalf("second Pipeline: stored v%d, want 3", v)
	}
	if err := cl.Delete(ctx, second); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(second)}); err != nil {
		t.Fatal(err)
	}
	if v := stored(); v != 3 {
		t.Fatalf("deleting one of two Pipelines of shop left stored v%d, want the pipeline kept", v)
	}

	// Deleted: shop is back on pass-through.
	if err := cl.Get(ctx, client.ObjectKeyFromObject(p), p); err != nil {
		t.Fatal(err)
	}
	if err := cl.Delete(ctx, p); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(p)}); err != nil {
		t.Fatal(err)
	}
	sp, err := router.ReadPipeline(ctx, r.Kafka, topics, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if sp != nil && len(sp.Source) != 0 {
		t.Errorf("the pipeline is still stored after the Pipeline was deleted: %s", sp.Source)
	}
}
