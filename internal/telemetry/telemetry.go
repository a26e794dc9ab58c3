// Package telemetry sets up what every Sluice process exposes about itself:
// a Prometheus registry, an HTTP server for /metrics, /healthz and /readyz,
// an slog logger from settings, and a limiter for logging repeated errors.
//
// Metric names follow one convention in every stage: namespace Namespace,
// subsystem the stage, suffixes _total, _seconds and _bytes, bounded labels. This
// package registers only the standard Go runtime (go_*) and process
// (process_*) collectors.
package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Namespace is the Prometheus namespace of every Sluice metric.
const Namespace = "sluice"

// NewRegistry returns a registry with the Go runtime and process collectors
// registered. Stages register their metrics on it and serve it with Server.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}
