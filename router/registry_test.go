package router

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func testRegistry(t *testing.T) *registry {
	t.Helper()
	return newRegistry(newMetrics(prometheus.NewRegistry()))
}

// exprPipeline is a version whose expression fails on records without a
// number in attribute n.
func exprPipeline(tenant string, version int) []byte {
	return fmt.Appendf(nil, "tenant: %s\nversion: %d\nsteps:\n  - json: {field: log}\n  - set: {field: x, expr: 'attributes[\"n\"] + 1'}\n", tenant, version)
}

func statusOf(t *testing.T, r *registry, tenant string) RouterStatus {
	t.Helper()
	for _, st := range r.statuses("r1") {
		if st.Tenant == tenant {
			return st
		}
	}
	t.Fatalf("no status of %s", tenant)
	return RouterStatus{}
}

// TestRecordErrorsDoNotRetire: expression errors on some records, or on
// every record for fewer than minRecords or shorter than minWindow, only
// dead-letter those records.
func TestRecordErrorsDoNotRetire(t *testing.T) {
	r := testRegistry(t)
	r.minRecords, r.minWindow = 20, time.Hour
	r.apply("shop", exprPipeline("shop", 1), false)
	p := r.get("shop")
	good := &Failure{Reason: ReasonParse}
	for i := range 1000 {
		res := Result{DLQ: &Failure{Reason: ReasonExpr}}
		if i%100 == 99 {
			res = Result{}
		}
		if r.observe("shop", p, res) {
			t.Fatalf("record %d retired the version", i)
		}
	}
	// Parse errors never count: the line is the problem.
	r.minWindow = 0
	for i := range 100 {
		if r.observe("shop", p, Result{DLQ: good}) {
			t.Fatalf("parse error %d retired the version", i)
		}
	}
	// Nor does a tenant without a pseudonym key: the operator's setting,
	// and the version before would let through what this one pseudonymizes.
	for i := range 100 {
		if r.observe("shop", p, Result{DLQ: &Failure{Reason: ReasonPseudonymKeyMissing}}) {
			t.Fatalf("missing key %d retired the version", i)
		}
	}
	// Every record failing, but not for minWindow yet.
	r.minWindow = time.Hour
	for range 100 {
		if r.observe("shop", p, Result{DLQ: &Failure{Reason: ReasonExpr}}) {
			t.Fatal("a failure streak shorter than the window retired the version")
		}
	}
	if got := r.get("shop"); got != p || got.Version != 1 {
		t.Errorf("version in force %d, want 1", got.Version)
	}
}

// TestSustainedFailureRetires: a version failing on every record for
// minRecords and minWindow is retired; the previous one takes over, and
// the retirement is published.
func TestSustainedFailureRetires(t *testing.T) {
	r := testRegistry(t)
	r.minRecords, r.minWindow = 10, 50*time.Millisecond
	r.apply("shop", testPipeline("shop", 1), false)
	r.apply("shop", exprPipeline("shop", 2), false)
	r.drain("r1", false)
	p := r.get("shop")
	fail := Result{DLQ: &Failure{Reason: ReasonExpr, Err: fmt.Errorf("boom")}}
	retired := -1
	start := time.Now()
	for i := 0; retired < 0 && time.Since(start) < 5*time.Second; i++ {
		if r.observe("shop", p, fail) {
			retired = i
		}
		time.Sleep(time.Millisecond)
	}
	if retired < 9 {
		t.Fatalf("retired after %d records, want at least 10 over 50ms", retired+1)
	}
	if time.Since(start) < 50*time.Millisecond {
		t.Errorf("retired before the window")
	}
	if v := r.get("shop").Version; v != 1 {
		t.Errorf("version in force %d, want 1", v)
	}
	st := statusOf(t, r, "shop")
	if st.Applied != 1 || st.Stored != 2 || !strings.Contains(st.Error, "failed on every record") || !strings.Contains(st.Error, "now applying version 1") {
		t.Errorf("status %+v", st)
	}
	out := r.drain("r1", false)
	if len(out) != 1 || out[0].retired == nil || len(out[0].retired.Versions) != 1 || out[0].retired.Versions[0].Version != 2 ||
		out[0].retired.Versions[0].Router != "r1" {
		t.Fatalf("drain %+v, want retired version 2", out)
	}
	// good/ was version 2: it becomes version 1.
	if out[0].good == nil || out[0].good.Version != 1 {
		t.Errorf("good %+v, want version 1", out[0].good)
	}
	// A router restarting reads version 2 in the config topic and the
	// retirement in the status topic: version 2 stays out of service.
	r2 := testRegistry(t)
	r2.setGood("shop", out[0].good)
	r2.setRetired("shop", out[0].retired)
	r2.apply("shop", exprPipeline("shop", 2), false)
	if v := r2.get("shop").Version; v != 1 {
		t.Errorf("restarted router applies version %d, want the last good, 1", v)
	}
	if st := statusOf(t, r2, "shop"); !strings.Contains(st.Error, "taken out of service") {
		t.Errorf("restarted router's status %+v", st)
	}
	// A new version is applied.
	r2.apply("shop", testPipeline("shop", 3), false)
	if v := r2.get("shop").Version; v != 3 {
		t.Errorf("version 3 not applied: %d", v)
	}
}

// TestPanicRetires: a panic retires the version at once, and another
// router following the status topic retires the same version.
func TestPanicRetires(t *testing.T) {
	r := testRegistry(t)
	r.apply("shop", testPipeline("shop", 1), false)
	p := r.get("shop")
	if !r.observe("shop", p, Result{DLQ: &Failure{Reason: ReasonPanic}}) {
		t.Fatal("a panic did not retire the version")
	}
	if v := r.get("shop").Version; v != 0 {
		t.Errorf("version in force %d, want pass-through", v)
	}
	out := r.drain("r1", false)
	if len(out) != 1 || out[0].retired == nil || !out[0].deleteGood {
		t.Fatalf("drain %+v", out)
	}

	other := testRegistry(t)
	other.apply("shop", testPipeline("shop", 1), false)
	other.setRetired("shop", out[0].retired)
	if v := other.get("shop").Version; v != 0 {
		t.Errorf("the other router applies version %d, want pass-through", v)
	}
}

// TestLastGoodAtStart: a stored version that does not load at start (its
// tests use now(), say) leaves the last good version in force, in either
// order of the config and status topics.
func TestLastGoodAtStart(t *testing.T) {
	broken := []byte("tenant: shop\nversion: 2\nsteps:\n  - frobnicate: {}\n")
	good := &GoodPipeline{Tenant: "shop", Version: 1, Source: string(testPipeline("shop", 1))}
	for _, goodFirst := range []bool{true, false} {
		r := testRegistry(t)
		if goodFirst {
			r.setGood("shop", good)
		}
		r.apply("shop", broken, false)
		if !goodFirst {
			r.setGood("shop", good)
		}
		if v := r.get("shop").Version; v != 1 {
			t.Errorf("good first %v: version %d, want 1", goodFirst, v)
		}
		st := statusOf(t, r, "shop")
		if st.Stored != 2 || st.Applied != 1 || !strings.Contains(st.Error, "not applied") || !strings.Contains(st.Error, "last good version 1") {
			t.Errorf("good first %v: status %+v", goodFirst, st)
		}
		// The good record is not rewritten with what it says already.
		for _, o := range r.drain("r1", true) {
			if o.good != nil || o.deleteGood {
				t.Errorf("good first %v: drain writes good/: %+v", goodFirst, o)
			}
		}
	}
	// Applying records the good version; deleting removes it.
	r := testRegistry(t)
	r.apply("shop", testPipeline("shop", 4), false)
	if out := r.drain("r1", false); len(out) != 1 || out[0].good == nil || out[0].good.Version != 4 || out[0].good.Source != string(testPipeline("shop", 4)) {
		t.Errorf("after apply: %+v", out)
	}
	r.apply("shop", []byte{}, false)
	if out := r.drain("r1", false); len(out) != 1 || !out[0].deleteGood || out[0].status.Applied != 0 {
		t.Errorf("after delete: %+v", out)
	}
}

// TestTenantFromTopic: a document naming another tenant is ignored, with
// an error in status; the legacy topic counts until the tenant's own topic
// holds a pipeline.
func TestTenantFromTopic(t *testing.T) {
	r := testRegistry(t)
	r.apply("shop", testPipeline("shop-web", 1), false)
	if v := r.get("shop").Version; v != 0 {
		t.Errorf("another tenant's document applied: version %d", v)
	}
	if st := statusOf(t, r, "shop"); !strings.Contains(st.Error, `names tenant "shop-web"`) {
		t.Errorf("status %+v", st)
	}
	if v := r.get("shop-web").Version; v != 0 {
		t.Errorf("shop-web got a version from shop's topic: %d", v)
	}

	r.apply("web", testPipeline("web", 5), true)
	if v := r.get("web").Version; v != 5 {
		t.Errorf("legacy version %d, want 5", v)
	}
	r.apply("web", testPipeline("web", 1), false)
	r.apply("web", testPipeline("web", 6), true)
	if v := r.get("web").Version; v != 1 {
		t.Errorf("version %d, want the tenant's own topic's, 1", v)
	}
	r.apply("web", []byte{}, false)
	r.apply("web", testPipeline("web", 7), true)
	if v := r.get("web").Version; v != 0 {
		t.Errorf("after deletion in the own topic: version %d, want pass-through", v)
	}
}

// TestPausedStatus: why and until when a tenant is paused is in its status.
func TestPausedStatus(t *testing.T) {
	r := testRegistry(t)
	until := time.Now().Add(time.Second)
	r.setPaused("shop", "output topic does not exist: logs.parsed.shop.audit", until)
	st := statusOf(t, r, "shop")
	if !strings.Contains(st.Paused, "logs.parsed.shop.audit") || !st.PausedUntil.Equal(until) {
		t.Errorf("paused status %+v", st)
	}
	r.drain("r1", false)
	r.setResumed("shop")
	if out := r.drain("r1", false); len(out) != 1 || out[0].status.Paused != "" || !out[0].status.PausedUntil.IsZero() {
		t.Errorf("resumed: %+v", out)
	}
}
