package shipper

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the shipper's Prometheus metrics (namespace sluice,
// subsystem shipper); the package doc lists them.
type metrics struct {
	linesRead        *prometheus.CounterVec
	bytesRead        *prometheus.CounterVec
	recordsProduced  *prometheus.CounterVec
	produceErrors    *prometheus.CounterVec
	partialJoins     prometheus.Counter
	truncations      prometheus.Counter
	invalidUTF8      prometheus.Counter
	rotations        *prometheus.CounterVec
	filesSkipped     *prometheus.CounterVec
	checkpointErrors *prometheus.CounterVec
	checkpointMisses prometheus.Counter

	filesTracked     prometheus.Gauge
	unshippedBytes   prometheus.Gauge
	bufferedBytes    prometheus.Gauge
	checkpointAge    prometheus.Gauge
	tenantsPaused    prometheus.Gauge
	checkpointSaveAt prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	const ns, sub = "sluice", "shipper"
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help}, labels)
		reg.MustRegister(c)
		return c
	}
	gauge := func(name, help string) prometheus.Gauge {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help})
		reg.MustRegister(g)
		return g
	}
	return &metrics{
		linesRead:        counter("lines_read_total", "Physical lines read from container log files.", "tenant"),
		bytesRead:        counter("read_bytes_total", "Bytes read from container log files.", "tenant"),
		recordsProduced:  counter("records_produced_total", "Records acknowledged by the output (Kafka, or written to stdout).", "tenant"),
		produceErrors:    counter("produce_errors_total", "Records the output failed to deliver (they are re-read and sent again), by reason.", "tenant", "reason"),
		partialJoins:     counter("partial_joins_total", "Messages reassembled from more than one partial line (CRI P/F, docker 16 KiB splits).").WithLabelValues(),
		truncations:      counter("truncations_total", "Messages truncated at SLUICE_SHIPPER_MAX_LINE_BYTES.").WithLabelValues(),
		invalidUTF8:      counter("invalid_utf8_total", "Messages whose invalid UTF-8 was replaced with U+FFFD.").WithLabelValues(),
		rotations:        counter("rotations_total", "Rotations and truncations detected, by kind (rename, truncate).", "kind"),
		filesSkipped:     counter("files_skipped_total", "Matched files not shipped, by reason (layout, tenant).", "reason"),
		checkpointErrors: counter("checkpoint_errors_total", "Checkpoint load or save failures, by reason (corrupt, save).", "reason"),
		checkpointMisses: counter("checkpoint_misses_total", "Checkpointed files that were gone (compressed or deleted) when the shipper came back; lines after the checkpoint in them could not be shipped.").WithLabelValues(),
		filesTracked:     gauge("files_tracked", "Container log files currently open."),
		unshippedBytes:   gauge("unshipped_bytes", "Bytes in tracked files after their checkpoint: file size minus acknowledged position. Growing means inflow is faster than outflow."),
		bufferedBytes:    gauge("buffered_bytes", "Bytes read and handed to the output but not yet acknowledged (bounded by SLUICE_SHIPPER_MAX_BUFFERED_BYTES)."),
		checkpointAge:    gauge("checkpoint_age_seconds", "Seconds since the checkpoint file was last saved successfully."),
		tenantsPaused:    gauge("tenants_paused", "Tenants whose shipping is paused because their topic is missing or access is denied."),
		checkpointSaveAt: gauge("checkpoint_saved_timestamp_seconds", "Unix time of the last successful checkpoint save."),
	}
}
