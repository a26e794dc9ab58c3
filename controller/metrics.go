package controller

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

type metrics struct {
	reconciles *prometheus.CounterVec
	admissions *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sluice", Subsystem: "controller", Name: "reconciles_total",
			Help: "Reconciliations by kind (tenant, pipeline) and result: ok, requeued (a retry after a failure that may pass, or an applied Pipeline's status refresh), error.",
		}, []string{"kind", "result"}),
		admissions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sluice", Subsystem: "controller", Name: "admissions_total",
			Help: "Decisions of the Pipeline admission webhook by result: allowed, denied (what the reconciler would refuse to apply), error (the check itself failed, for example the Tenants unreadable).",
		}, []string{"result"}),
	}
	reg.MustRegister(m.reconciles, m.admissions)
	return m
}

// counted counts the results of r's reconciliations.
func (m *metrics) counted(kind string, r reconcile.Reconciler) reconcile.Reconciler {
	return reconcile.Func(func(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
		res, err := r.Reconcile(ctx, req)
		result := "ok"
		switch {
		case err != nil:
			result = "error"
		case res.RequeueAfter > 0:
			result = "requeued"
		}
		m.reconciles.WithLabelValues(kind, result).Inc()
		return res, err
	})
}
