package router

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the router's Prometheus metrics (namespace sluice, subsystem
// router); labels are bounded by the number of tenants.
type metrics struct {
	recordsIn      *prometheus.CounterVec
	recordsOut     *prometheus.CounterVec
	dropped        *prometheus.CounterVec
	dlq            *prometheus.CounterVec
	stepErrors     *prometheus.CounterVec
	loadErrors     *prometheus.CounterVec
	fallbacks      *prometheus.CounterVec
	version        *prometheus.GaugeVec
	transactions   *prometheus.CounterVec
	latency        prometheus.Histogram
	tenantLatency  *prometheus.CounterVec
	tenantsPaused  prometheus.Gauge
	batchDuration  prometheus.Histogram
	tenantSeconds  *prometheus.CounterVec
	throttled      *prometheus.CounterVec
	multilineHolds *prometheus.CounterVec
	fenced         prometheus.Counter
	keys           prometheus.Gauge
	keyErrors      *prometheus.CounterVec

	tenants sync.Map // tenant -> *tenantMetrics, looked up once per tenant
}

// tenantMetrics are one tenant's per-record metrics.
type tenantMetrics struct {
	in, out prometheus.Counter
	latency prometheus.Counter // summed latency: with in, the tenant's mean
}

// tenant returns a tenant's per-record metrics without a label lookup per
// record.
func (m *metrics) tenant(tenant string) *tenantMetrics {
	if tm, ok := m.tenants.Load(tenant); ok {
		return tm.(*tenantMetrics)
	}
	tm, _ := m.tenants.LoadOrStore(tenant, &tenantMetrics{
		in:      m.recordsIn.WithLabelValues(tenant),
		out:     m.recordsOut.WithLabelValues(tenant),
		latency: m.tenantLatency.WithLabelValues(tenant),
	})
	return tm.(*tenantMetrics)
}

func newMetrics(reg prometheus.Registerer) *metrics {
	const ns, sub = "sluice", "router"
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help}, labels)
		reg.MustRegister(c)
		return c
	}
	m := &metrics{
		recordsIn:      counter("records_in_total", "Records consumed from raw topics.", "tenant"),
		recordsOut:     counter("records_out_total", "Records produced to parsed topics (committed or not).", "tenant"),
		dropped:        counter("records_dropped_total", "Records dropped on purpose by a pipeline, by reason (drop, keep, sample).", "tenant", "reason"),
		dlq:            counter("dlq_total", "Records sent to the tenant's dead-letter topic, by reason.", "tenant", "reason"),
		stepErrors:     counter("step_errors_total", "Step failures, by step type.", "tenant", "step_type"),
		loadErrors:     counter("pipeline_load_errors_total", "Pipeline versions that failed to load (validation, compile or their tests); the previous version stays in force.", "tenant"),
		fallbacks:      counter("pipeline_fallbacks_total", "Pipeline versions taken out of service after failing at run time (panic or expression error).", "tenant"),
		transactions:   counter("transactions_total", "Kafka transactions ended, by result (commit, abort).", "result"),
		tenantSeconds:  counter("tenant_processing_seconds_total", "Time spent processing a tenant's records (decode, pipeline, encode), in the transaction or in the background.", "tenant"),
		throttled:      counter("tenant_throttled_total", "Transactions a tenant was left out of because its processing took longer than SLUICE_ROUTER_BATCH_MAX_TIME; its records were finished in the background.", "tenant"),
		multilineHolds: counter("multiline_holds_total", "Partitions held back for continuation lines of a young multiline record (at most max_wait, once per batch).", "tenant"),
		version: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "pipeline_version",
			Help: "Pipeline version in force per tenant (0: pass-through)."}, []string{"tenant"}),
		// Per tenant only counters: a histogram per tenant is a dozen
		// series each, hundreds of thousands at thousands of tenants.
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "latency_seconds",
			Help:    "Time from a record's append to its raw topic to its transformation, all tenants (per tenant: tenant_latency_seconds_total).",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}),
		tenantLatency: counter("tenant_latency_seconds_total", "Summed time from the append of the tenant's records to their raw topic to their transformation; divided by records_in_total, the tenant's mean latency.", "tenant"),
		tenantsPaused: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "tenants_paused",
			Help: "Tenants whose raw topics are paused because an output topic is missing or denied."}),
		batchDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "transaction_seconds",
			Help: "Duration of one consume-transform-produce transaction.", Buckets: prometheus.ExponentialBuckets(0.001, 3, 10)}),
		fenced: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "transactions_fenced_total",
			Help: "Open transactions of routers that are gone, aborted by fencing their transactional id."}),
		keys: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "pseudonym_keys",
			Help: "Tenants' pseudonym keys in force, read from SLUICE_ROUTER_PSEUDONYM_KEYS_DIR."}),
		keyErrors: counter("pseudonym_key_errors_total", "Key files of SLUICE_ROUTER_PSEUDONYM_KEYS_DIR refused at a reading of the directory (every 30s), by reason (too_short, too_long, not_a_tenant, unreadable: a file, or the directory); a refused file's tenant keeps the key it had.", "reason"),
	}
	reg.MustRegister(m.version, m.latency, m.tenantsPaused, m.batchDuration, m.fenced, m.keys)
	return m
}
