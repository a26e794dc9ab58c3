package indexer

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the indexer's Prometheus metrics (namespace sluice, subsystem
// indexer); labels are bounded by the number of tenants and fixed reason
// sets. doc.go lists them.
type metrics struct {
	received    *prometheus.CounterVec
	stored      *prometheus.CounterVec
	duplicates  *prometheus.CounterVec
	retried     *prometheus.CounterVec
	rescued     *prometheus.CounterVec
	deadLetters *prometheus.CounterVec
	dlqErrors   *prometheus.CounterVec
	fieldsMoved *prometheus.CounterVec
	clamped     *prometheus.CounterVec

	requests     *prometheus.CounterVec
	bulkDuration prometheus.Histogram
	bulkBytes    prometheus.Histogram
	bulkDocs     prometheus.Histogram
	// Per tenant only counters: a histogram per tenant is a dozen series
	// each, hundreds of thousands at thousands of tenants.
	tenantBulkSeconds  *prometheus.CounterVec
	tenantBulkRequests *prometheus.CounterVec
	tenantBulkBytes    *prometheus.CounterVec
	commits            *prometheus.CounterVec
	retentionDels      prometheus.Counter
	retentionErrs      prometheus.Counter
	settingsErrs       prometheus.Counter
	settingsTenants    prometheus.Gauge

	parked        *prometheus.CounterVec
	parkedDocs    prometheus.Gauge
	parkedBytes   prometheus.Gauge
	parkedIndices prometheus.Gauge
	paused        *prometheus.GaugeVec

	tenants sync.Map // tenant -> *tenantMetrics
}

// tenantMetrics are one tenant's per-document counters, looked up once.
type tenantMetrics struct {
	received, stored, duplicates, clamped prometheus.Counter
}

func (m *metrics) tenant(tenant string) *tenantMetrics {
	if tm, ok := m.tenants.Load(tenant); ok {
		return tm.(*tenantMetrics)
	}
	tm, _ := m.tenants.LoadOrStore(tenant, &tenantMetrics{
		received:   m.received.WithLabelValues(tenant),
		stored:     m.stored.WithLabelValues(tenant),
		duplicates: m.duplicates.WithLabelValues(tenant),
		clamped:    m.clamped.WithLabelValues(tenant),
	})
	return tm.(*tenantMetrics)
}

const namespace, subsystem = "sluice", "indexer"

func newMetrics(reg prometheus.Registerer) *metrics {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: subsystem, Name: name, Help: help}, labels)
		reg.MustRegister(c)
		return c
	}
	histogram := func(name, help string, buckets []float64) prometheus.Histogram {
		h := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Subsystem: subsystem, Name: name, Help: help, Buckets: buckets})
		reg.MustRegister(h)
		return h
	}
	m := &metrics{
		received:    counter("records_received_total", "Records consumed from parsed topics.", "tenant"),
		stored:      counter("docs_stored_total", "Documents Elasticsearch created (201).", "tenant"),
		duplicates:  counter("docs_duplicate_total", "Documents Elasticsearch already held (409 on create): records indexed again after a restart or rebalance.", "tenant"),
		retried:     counter("docs_retried_total", "Documents Elasticsearch did not store for a reason that is not theirs, each time, by reason: too_many_requests (429), server_error (5xx), blocked (a write or flood-stage block), forbidden (401, 403), index_missing (404), index_closed, index_config (the shard limit, a missing default pipeline), other, request (the whole request failed).", "tenant", "reason"),
		rescued:     counter("docs_rescued_total", "Documents Elasticsearch rejected (400, e.g. a mapping conflict) and that were sent again with the offending fields moved into sluice.rescued.", "tenant"),
		deadLetters: counter("dead_lettered_total", "Records written to the tenant's dead-letter topic, by reason: decode (not a record), rejected (refused by Elasticsearch even after the rescue), pipeline (the index's ingest pipeline failed on it), or the class of a failure of its index the indexer gave up on after SLUICE_INDEXER_GIVE_UP (blocked, forbidden, index_missing, index_closed, index_config, server_error, other).", "tenant", "reason"),
		dlqErrors:   counter("dead_letter_errors_total", "Attempts to write a dead letter that Kafka refused (missing or denied dead-letter topic); the source partition pauses until it is written.", "tenant"),
		fieldsMoved: counter("fields_moved_total", "Fields written into sluice.rescued before sending, by reason: name (not a valid field name), collision (a value where other fields nest, or two labels that de-dot to one name).", "tenant", "reason"),
		clamped:     counter("index_time_clamped_total", "Documents whose event time was outside the window around their ingest time, indexed by ingest time.", "tenant"),
		requests:    counter("bulk_requests_total", "Bulk requests, by result: ok, partial (some items failed), failed (the request failed).", "result"),
		commits:     counter("commits_total", "Offset commits, by result (ok, error).", "result"),
		bulkDuration: histogram("bulk_duration_seconds", "Duration of bulk requests, from send to parsed response.",
			prometheus.ExponentialBuckets(0.005, 2, 12)),
		bulkBytes: histogram("bulk_size_bytes", "Bytes of one bulk request (actions included).",
			prometheus.ExponentialBuckets(1024, 4, 10)),
		tenantBulkSeconds:  counter("tenant_bulk_seconds_total", "Summed duration of the bulk requests carrying the tenant's documents (each request counted once per tenant in it); divided by tenant_bulk_requests_total, the tenant's mean request duration.", "tenant"),
		tenantBulkRequests: counter("tenant_bulk_requests_total", "Bulk requests carrying the tenant's documents.", "tenant"),
		tenantBulkBytes:    counter("tenant_bulk_bytes_total", "Bytes of the tenant's documents (actions included) sent in bulk requests.", "tenant"),
		bulkDocs: histogram("bulk_docs", "Documents in one bulk request.",
			prometheus.ExponentialBuckets(1, 4, 9)),
		retentionDels: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Subsystem: subsystem,
			Name: "retention_deleted_indices_total", Help: "Indices deleted by retention."}),
		retentionErrs: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Subsystem: subsystem,
			Name: "retention_errors_total", Help: "Retention passes that failed (listing or deleting)."}),
	}
	m.settingsErrs = prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Subsystem: subsystem,
		Name: "tenant_settings_errors_total", Help: "Records of the tenant settings topic (<prefix>.tenants) ignored for not decoding or for a key that is not a tenant id; their tenant keeps its previous settings."})
	m.settingsTenants = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Subsystem: subsystem,
		Name: "tenant_settings_tenants", Help: "Tenants with a settings record in <prefix>.tenants, as last read."})
	m.parked = counter("docs_parked_total", "Documents parked with their index (Elasticsearch refused them for a reason of the index), by reason (the failure class, as docs_retried_total).", "tenant", "reason")
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Subsystem: subsystem, Name: name, Help: help})
	}
	m.parkedDocs = gauge("parked_documents", "Documents parked now, waiting for their index to take them.")
	m.parkedBytes = gauge("parked_bytes", "Memory of the parked documents (bounded by SLUICE_INDEXER_PARK_MAX_BYTES).")
	m.parkedIndices = gauge("parked_indices", "Indices with parked documents, or that the indexer gave up on and dead-letters for.")
	m.paused = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Subsystem: subsystem, Name: "paused_partitions",
		Help: "Partitions not fetched, by reason: dead_letters (their dead letters cannot be written), parked (too many of their documents are parked)."}, []string{"reason"})
	reg.MustRegister(m.retentionDels, m.retentionErrs, m.settingsErrs, m.settingsTenants, m.parkedDocs, m.parkedBytes, m.parkedIndices, m.paused)
	return m
}

// trackerCollector exports, at scrape time, what the offset tracker knows
// per tenant: consumer lag and the age of the oldest record not yet stored.
type trackerCollector struct {
	t    *tracker
	lag  *prometheus.Desc
	age  *prometheus.Desc
	pend *prometheus.Desc
}

func newTrackerCollector(t *tracker) *trackerCollector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, subsystem, name), help, []string{"tenant"}, nil)
	}
	return &trackerCollector{
		t:    t,
		lag:  desc("consumer_lag_records", "Records in the tenant's assigned partitions not yet consumed (last stable offset minus position, as of the last fetch; on a transactional topic the final commit marker counts as 1)."),
		age:  desc("commit_watermark_age_seconds", "Age of the oldest consumed record of the tenant that is not yet stored or dead-lettered, which holds its partition's commit back (0: none)."),
		pend: desc("pending_records", "Records of the tenant consumed but not yet stored or dead-lettered."),
	}
}

func (c *trackerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.lag
	ch <- c.age
	ch <- c.pend
}

func (c *trackerCollector) Collect(ch chan<- prometheus.Metric) {
	for tenant, s := range c.t.tenantStats(time.Now()) {
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(s.lag), tenant)
		ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, s.age.Seconds(), tenant)
		ch <- prometheus.MustNewConstMetric(c.pend, prometheus.GaugeValue, float64(s.pending), tenant)
	}
}
