package gateway

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the gateway's Prometheus metrics (namespace sluice,
// subsystem gateway); the package doc lists them. The tenant label is
// only ever a tenant whose credentials Kafka accepted, "" for requests
// refused before (so a client cannot grow the label set).
type metrics struct {
	requests   *prometheus.CounterVec
	records    *prometheus.CounterVec
	bytes      *prometheus.CounterVec
	rejections *prometheus.CounterVec
	ackSeconds *prometheus.HistogramVec
	auth       *prometheus.CounterVec
	clients    prometheus.Gauge
	inflight   prometheus.GaugeFunc
}

// Rejection reasons, the reason label of sluice_gateway_rejections_total.
const (
	reasonUnauthorized   = "unauthorized"
	reasonForbidden      = "forbidden"
	reasonTopicMissing   = "topic_missing"
	reasonBadRequest     = "bad_request"
	reasonUnsupported    = "unsupported_media_type"
	reasonBodyTooLarge   = "body_too_large"
	reasonDecompressed   = "decompressed_too_large"
	reasonTooManyRecords = "too_many_records"
	reasonBackpressure   = "backpressure"
	reasonTenantRequests = "tenant_requests"
	reasonRequests       = "requests"
	reasonThrottled      = "throttled"
	reasonClients        = "clients"
	reasonUnavailable    = "kafka_unavailable"
	reasonRecordInvalid  = "record_invalid"
	reasonRecordTooLarge = "record_too_large"
	reasonRecordRefused  = "record_refused"
)

func newMetrics(reg prometheus.Registerer, inflight func() float64) *metrics {
	const ns, sub = "sluice", "gateway"
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help}, labels)
		reg.MustRegister(c)
		return c
	}
	m := &metrics{
		requests:   counter("requests_total", "Requests answered, by tenant, endpoint (otlp_http, otlp_grpc, lines) and HTTP status code.", "tenant", "endpoint", "code"),
		records:    counter("records_total", "Log records received, by tenant and outcome: accepted (Kafka acknowledged them) or rejected (reported to the client as partial success or in an error).", "tenant", "outcome"),
		bytes:      counter("received_bytes_total", "Request body bytes after decompression, by tenant.", "tenant"),
		rejections: counter("rejections_total", "Requests (and, for record_*, records) refused, by tenant and reason: unauthorized, forbidden, topic_missing, bad_request, unsupported_media_type, body_too_large, decompressed_too_large, too_many_records, backpressure (in-flight bytes), tenant_requests, requests, throttled (Kafka quota), clients, kafka_unavailable, record_invalid, record_too_large, record_refused (by Kafka).", "tenant", "reason"),
		ackSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "ack_seconds",
			Help:    "Time from a request's arrival to Kafka's acknowledgement of its last record, for requests answered 200, by tenant.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"tenant"}),
		auth:    counter("auth_total", "Credential checks, by result: cached (a client checked within SLUICE_GATEWAY_AUTH_TTL), verified (a new SASL handshake succeeded), denied, error (Kafka did not answer).", "result"),
		clients: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "kafka_clients", Help: "Kafka clients open, one per tenant credentials in use."}),
		inflight: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "inflight_bytes",
			Help: "Bytes of requests being handled (decompressed bodies and encoded records not yet acknowledged)."}, inflight),
	}
	reg.MustRegister(m.ackSeconds, m.clients, m.inflight)
	return m
}

// answered counts a request answered with code.
func (m *metrics) answered(tenant, endpoint string, code int) {
	m.requests.WithLabelValues(tenant, endpoint, strconv.Itoa(code)).Inc()
}
