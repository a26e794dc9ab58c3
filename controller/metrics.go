package controller

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

type metrics struct {
	reconciles *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sluice", Subsystem: "controller", Name: "reconciles_total",
			Help: "Reconciliations by kind (tenant, pipeline) and result: ok, requeued (a retry after a failure that may pass, or an applied Pipeline's status refresh), error.",
		}, []string{"kind", "result"}),
	}
	reg.MustRegister(m.reconciles)
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
