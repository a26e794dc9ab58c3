package kafka

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/plugin/kprom"
)

// NewMetrics returns kgo hooks that export client metrics to reg as
// sluice_kafka_* (connections, bytes and errors per broker, produce and fetch
// bytes per topic, buffered records), labelled with the client id. Pass it
// with kgo.WithHooks to exactly one client: the metrics are registered when
// the client is created and unregistered when it is closed. Clients sharing
// reg must have distinct client ids.
func NewMetrics(reg prometheus.Registerer) *kprom.Metrics {
	return kprom.NewMetrics("sluice",
		kprom.Subsystem("kafka"),
		kprom.Registerer(reg),
		kprom.WithClientLabel(),
	)
}
