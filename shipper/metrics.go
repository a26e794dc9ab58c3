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
	lostLines        *prometheus.CounterVec
	lostBytes        *prometheus.CounterVec
	deadLetters      *prometheus.CounterVec
	deadLetterErrors *prometheus.CounterVec
	partialFlushes   *prometheus.CounterVec
	capReductions    *prometheus.CounterVec
	partialJoins     prometheus.Counter
	truncations      prometheus.Counter
	invalidUTF8      prometheus.Counter
	rotations        *prometheus.CounterVec
	filesSkipped     *prometheus.CounterVec
	openErrors       *prometheus.CounterVec
	checkpointErrors *prometheus.CounterVec
	checkpointMisses *prometheus.CounterVec
	damagedFiles     *prometheus.CounterVec

	filesTracked     prometheus.Gauge
	filesOpen        prometheus.Gauge
	filesPolled      prometheus.Gauge
	heldFiles        prometheus.Gauge
	heldBytes        prometheus.Gauge
	unshippedBytes   *prometheus.GaugeVec
	unshippedAge     *prometheus.GaugeVec
	bufferedBytes    *prometheus.GaugeVec
	checkpointAge    prometheus.Gauge
	tenantsPaused    prometheus.Gauge
	checkpointSaveAt prometheus.Gauge

	metadataLookups *prometheus.CounterVec
	kubeAPIErrors   prometheus.Counter
	kubeCached      *prometheus.GaugeVec
	kubeSynced      prometheus.Gauge
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
	gaugeVec := func(name, help string, labels ...string) *prometheus.GaugeVec {
		g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help}, labels)
		reg.MustRegister(g)
		return g
	}
	m := &metrics{
		linesRead:        counter("lines_read_total", "Physical lines read from container log files.", "tenant"),
		bytesRead:        counter("read_bytes_total", "Bytes read from container log files.", "tenant"),
		recordsProduced:  counter("records_produced_total", "Records acknowledged by the output (Kafka, or written to stdout).", "tenant"),
		produceErrors:    counter("produce_errors_total", "Records the output failed to deliver, by reason (topic_missing, denied, message_too_large, timeout, rejected, shutdown, other). All but rejected are read and sent again.", "tenant", "reason"),
		lostLines:        counter("lost_lines_total", "Lines that could not be shipped, by reason: released (a deleted file held past SLUICE_SHIPPER_HELD_FILES_MAX_AGE/_MAX_BYTES), rejected (Kafka refused the record for good; it is dead-lettered). Lines of a file deleted before it was read (deleted) or past damage in a compressed rotation (unreadable) cannot be counted: see lost_bytes_total.", "tenant", "reason"),
		lostBytes:        counter("lost_bytes_total", "Bytes that could not be shipped, by reason: released, rejected, deleted (a checkpointed file deleted before it was read to its end: at least the bytes it had when last seen), unreadable (compressed bytes left after damage in a compressed rotation).", "tenant", "reason"),
		deadLetters:      counter("dead_letters_total", "Records written to the tenant's dead-letter topic, by reason.", "tenant", "reason"),
		deadLetterErrors: counter("dead_letter_errors_total", "Dead letters that could not be written.", "tenant"),
		partialFlushes:   counter("partial_flushes_total", "Messages whose end never came (CRI P without F, docker log without newline, unterminated last line), shipped flagged partial after SLUICE_SHIPPER_PARTIAL_FLUSH_TIMEOUT.", "tenant"),
		capReductions:    counter("record_cap_reductions_total", "Times Kafka refused a record as too large and the tenant's records were cut shorter.", "tenant"),
		partialJoins:     counter("partial_joins_total", "Messages reassembled from more than one partial line (CRI P/F, docker 16 KiB splits).").WithLabelValues(),
		truncations:      counter("truncations_total", "Messages truncated at SLUICE_SHIPPER_MAX_LINE_BYTES or the topic's record limit.").WithLabelValues(),
		invalidUTF8:      counter("invalid_utf8_total", "Messages whose invalid UTF-8 was replaced with U+FFFD.").WithLabelValues(),
		rotations:        counter("rotations_total", "Rotations and truncations detected, by kind (rename, truncate).", "kind"),
		filesSkipped:     counter("files_skipped_total", "Matched files not shipped (or, for older, shipped from their end), by reason (layout, tenant, excluded, older).", "reason"),
		openErrors:       counter("open_errors_total", "Failed opens of log files, retried with backoff, by reason (fd_limit, not_found, permission, other).", "reason"),
		checkpointErrors: counter("checkpoint_errors_total", "Checkpoint load or save failures, by reason (corrupt, save).", "reason"),
		checkpointMisses: counter("checkpoint_misses_total", "Checkpointed files deleted before they were read to their end (found neither plain nor compressed when the stream was reopened); their unread lines could not be shipped.", "tenant"),
		damagedFiles:     counter("damaged_files_total", "Compressed rotations that ended early (damaged or cut short): the lines past the damage are lost and cannot be counted (lost_bytes_total{reason=\"unreadable\"} has the compressed bytes left).", "tenant"),
		filesTracked:     gauge("files_tracked", "Container log streams being tailed."),
		filesOpen:        gauge("files_open", "Log files held open (each one a file descriptor)."),
		filesPolled:      gauge("files_polled", "Streams whose directory could not be watched and are polled every SLUICE_SHIPPER_POLL_INTERVAL instead."),
		heldFiles:        gauge("held_deleted_files", "Deleted files held open because they are not read to their end yet."),
		heldBytes:        gauge("held_deleted_bytes", "Disk bytes held by deleted files still open (bounded by SLUICE_SHIPPER_HELD_FILES_MAX_BYTES)."),
		unshippedBytes:   gaugeVec("unshipped_bytes", "Bytes in tracked files after their checkpoint, per tenant. Growing means inflow is faster than outflow.", "tenant"),
		unshippedAge:     gaugeVec("oldest_unshipped_age_seconds", "Per tenant, how long its longest-waiting stream has had bytes not yet acknowledged by Kafka.", "tenant"),
		bufferedBytes:    gaugeVec("buffered_bytes", "Per tenant, bytes read and not yet acknowledged (bounded by SLUICE_SHIPPER_TENANT_MAX_BUFFERED_BYTES; all tenants by SLUICE_SHIPPER_MAX_BUFFERED_BYTES).", "tenant"),
		checkpointAge:    gauge("checkpoint_age_seconds", "Seconds since the checkpoints were last known saved (saved, or unchanged since the last save)."),
		tenantsPaused:    gauge("tenants_paused", "Tenants whose shipping is paused because their topic is missing or access is denied."),
		checkpointSaveAt: gauge("checkpoint_saved_timestamp_seconds", "Unix time of the last successful checkpoint save."),

		metadataLookups: counter("metadata_lookups_total", "Look-ups of a container's pod in the Kubernetes metadata cache (when a stream starts and when the cache changed), by result: hit (found), miss (not there yet: the stream waits up to SLUICE_SHIPPER_METADATA_WAIT), partial (given up waiting: lines are shipped with what the log path says, flagged metadata=partial, until the pod is known).", "result"),
		kubeAPIErrors:   counter("kubernetes_api_errors_total", "Failed requests to the Kubernetes API server (lists, watches, Job look-ups); informers retry with backoff.").WithLabelValues(),
		kubeCached:      gaugeVec("kubernetes_cached_objects", "Objects in the Kubernetes metadata cache, by kind: pod (this node's, deleted ones within SLUICE_SHIPPER_METADATA_RETENTION included), namespace, job (Jobs whose CronJob was looked up).", "kind"),
		kubeSynced:      gauge("kubernetes_synced", "1 once the Kubernetes metadata cache has listed pods and namespaces."),
	}
	for _, r := range []string{"hit", "miss", "partial"} {
		m.metadataLookups.WithLabelValues(r)
	}
	return m
}

// forTenant creates a tenant's series of the counters that count rare
// events, at 0, so that rate() and increase() see their first event.
func (m *metrics) forTenant(tenant string) {
	for _, r := range []string{reasonRejected, "released"} {
		m.lostLines.WithLabelValues(tenant, r)
	}
	for _, r := range []string{reasonRejected, "released", "deleted", "unreadable"} {
		m.lostBytes.WithLabelValues(tenant, r)
	}
	m.deadLetters.WithLabelValues(tenant, reasonRejected)
	m.deadLetterErrors.WithLabelValues(tenant)
	m.partialFlushes.WithLabelValues(tenant)
	m.capReductions.WithLabelValues(tenant)
	m.checkpointMisses.WithLabelValues(tenant)
	m.damagedFiles.WithLabelValues(tenant)
}
