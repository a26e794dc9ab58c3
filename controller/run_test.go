package controller

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sethvargo/go-envconfig"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/sluicelogs/sluice/internal/config"
)

// TestConfig: the defaults are valid, and a bad value names its variable.
func TestConfig(t *testing.T) {
	var cfg Config
	if err := config.LoadFrom(context.Background(), &cfg, envconfig.MapLookuper(nil)); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil || !cfg.LeaderElection || cfg.Retry <= 0 || cfg.StatusRefresh <= 0 {
		t.Fatalf("defaults: %+v, %v", cfg, err)
	}
	cfg.Retry = 0
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "SLUICE_CONTROLLER_RETRY") {
		t.Fatalf("a zero retry: %v", err)
	}
}

// TestReconcilesCounted: every reconciliation is counted by its result.
func TestReconcilesCounted(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetrics(reg)
	results := []struct {
		res ctrl.Result
		err error
	}{{ctrl.Result{}, nil}, {ctrl.Result{RequeueAfter: 1}, nil}, {ctrl.Result{}, errors.New("x")}}
	for _, r := range results {
		rec := m.counted("tenant", reconcileFunc(func() (ctrl.Result, error) { return r.res, r.err }))
		_, _ = rec.Reconcile(context.Background(), ctrl.Request{})
	}
	for _, result := range []string{"ok", "requeued", "error"} {
		if n := testutil.ToFloat64(m.reconciles.WithLabelValues("tenant", result)); n != 1 {
			t.Errorf("%s: %v reconciles counted, want 1", result, n)
		}
	}
}

type reconcileFunc func() (ctrl.Result, error)

func (f reconcileFunc) Reconcile(context.Context, ctrl.Request) (ctrl.Result, error) { return f() }
