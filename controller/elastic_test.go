package controller

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/sluicelogs/sluice/controller/v1alpha1"
	"github.com/sluicelogs/sluice/indexer"
	"github.com/sluicelogs/sluice/internal/elastic"
	"github.com/sluicelogs/sluice/internal/eslite"
	"github.com/sluicelogs/sluice/internal/kafka"
)

// TestTenantElasticsearchRole: with Elasticsearch credentials a Tenant
// gets its role, granting the shared indices only when its layout is
// shared; while Elasticsearch refuses, the Tenant says so and is tried
// again, and another Tenant is not held up by it; deleting the Tenant
// deletes its role.
func TestTenantElasticsearchRole(t *testing.T) {
	ctx := context.Background()
	cluster, adm := testKafka(t)
	es := eslite.Start(t, eslite.RequireAuth("Basic "+base64.StdEncoding.EncodeToString([]byte("sluice:es-secret"))))
	esClient, err := (&elastic.Config{URLs: []string{es.URL()}, Username: "sluice", Password: "es-secret", RequestTimeout: 10 * time.Second}).NewClient()
	if err != nil {
		t.Fatal(err)
	}
	shared := &v1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "shop"}, Spec: v1alpha1.TenantSpec{Index: v1alpha1.IndexSpec{Layout: "shared"}}}
	dedicated := &v1alpha1.Tenant{ObjectMeta: metav1.ObjectMeta{Name: "web"}}
	cl := fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(shared, dedicated).
		WithStatusSubresource(&v1alpha1.Tenant{}).Build()
	r := &TenantReconciler{Client: cl, Admin: adm, Kafka: asUser(t, cluster, "admin", "admin-secret"), Topics: kafka.Topics{Prefix: "logs"}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Retry: time.Second, Roles: &ElasticRoles{Client: esClient, IndexPrefix: "logs", DefaultLayout: "dedicated"}}
	entries := func(name string) int {
		t.Helper()
		body, ok := es.Role(name)
		if !ok {
			t.Fatalf("no role %s", name)
		}
		var role struct{ Indices []json.RawMessage }
		if err := json.Unmarshal(body, &role); err != nil {
			t.Fatal(err)
		}
		return len(role.Indices)
	}

	reconcileTenant(t, r, "shop")
	reconcileTenant(t, r, "web")
	if c := readyOf(t, cl, "shop"); c == nil || c.Status != metav1.ConditionTrue || !strings.Contains(c.Message, "Elasticsearch role") {
		t.Fatalf("shop: Ready %+v", c)
	}
	if n := entries(indexer.RoleName("shop")); n != 2 {
		t.Errorf("the shared tenant's role has %d index entries, want its own indices and the shared ones", n)
	}
	if n := entries(indexer.RoleName("web")); n != 1 {
		t.Errorf("the dedicated tenant's role has %d index entries, want its own indices only", n)
	}
	var web v1alpha1.Tenant
	if err := cl.Get(ctx, types.NamespacedName{Name: "web"}, &web); err != nil || web.Status.ElasticsearchRole != "sluice-web" {
		t.Fatalf("web's status names role %q (%v)", web.Status.ElasticsearchRole, err)
	}

	// Elasticsearch away: the Tenant is not Ready and tried again.
	es.SetFaults(eslite.Faults{Down: true})
	if res := reconcileTenant(t, r, "shop"); res.RequeueAfter != time.Second {
		t.Errorf("with Elasticsearch down: requeue after %v, want the retry", res.RequeueAfter)
	}
	if c := readyOf(t, cl, "shop"); c == nil || c.Status != metav1.ConditionFalse || c.Reason != ReasonElasticsearchError {
		t.Fatalf("shop with Elasticsearch down: Ready %+v", c)
	}
	es.SetFaults(eslite.Faults{})

	deleteTenant(t, cl, r, "web")
	if _, ok := es.Role(indexer.RoleName("web")); ok {
		t.Error("the deleted tenant's role is still there")
	}
	if _, ok := es.Role(indexer.RoleName("shop")); !ok {
		t.Error("deleting web took shop's role")
	}
}
