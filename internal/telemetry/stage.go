package telemetry

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
)

// StageDefaults fills in what a stage's Options leave nil, alike in every
// stage: a logger that discards, a registry of the stage's own (its
// metrics are then kept but served nowhere, and stages sharing a process,
// as in tests, do not register the same metric twice), and a readiness
// callback that does nothing.
func StageDefaults(log *slog.Logger, reg prometheus.Registerer, ready func(bool)) (*slog.Logger, prometheus.Registerer, func(bool)) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if ready == nil {
		ready = func(bool) {}
	}
	return log, reg, ready
}
