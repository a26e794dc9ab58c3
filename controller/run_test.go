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
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"SLUICE_CONTROLLER_RETRY": "0s"}, "SLUICE_CONTROLLER_RETRY"},
		{map[string]string{"SLUICE_CONTROLLER_DEAD_LETTER_WINDOW": "-1m"}, "SLUICE_CONTROLLER_DEAD_LETTER_WINDOW"},
		{map[string]string{"SLUICE_CONTROLLER_INDEX_LAYOUT": "mixed"}, "SLUICE_CONTROLLER_INDEX_LAYOUT"},
		{map[string]string{"SLUICE_CONTROLLER_INDEX_PREFIX": "Logs"}, "SLUICE_CONTROLLER_INDEX_PREFIX"},
		// Roles are made with Elasticsearch's API only.
		{map[string]string{"SLUICE_ELASTICSEARCH_USERNAME": "sluice", "SLUICE_ELASTICSEARCH_PASSWORD": "pw", "SLUICE_ELASTICSEARCH_FLAVOR": "opensearch"}, "SLUICE_ELASTICSEARCH_FLAVOR"},
		{map[string]string{"SLUICE_CONTROLLER_KAFKA_MODE": "zookeeper"}, "SLUICE_CONTROLLER_KAFKA_MODE"},
		{map[string]string{"SLUICE_CONTROLLER_KAFKA_MODE": "strimzi"}, "SLUICE_CONTROLLER_STRIMZI_NAMESPACE"},
		{map[string]string{"SLUICE_CONTROLLER_KAFKA_MODE": "strimzi", "SLUICE_CONTROLLER_STRIMZI_NAMESPACE": "kafka", "SLUICE_CONTROLLER_STRIMZI_API_VERSION": "v1"}, "SLUICE_CONTROLLER_STRIMZI_API_VERSION"},
		// Credentials are checked as every stage checks them.
		{map[string]string{"SLUICE_ELASTICSEARCH_USERNAME": "sluice"}, "SLUICE_ELASTICSEARCH_PASSWORD"},
	} {
		var cfg Config
		if err := config.LoadFrom(context.Background(), &cfg, envconfig.MapLookuper(tc.env)); err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want a problem with %s", tc.env, err, tc.want)
		}
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
