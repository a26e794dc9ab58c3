package devstack

import "github.com/sluicelogs/sluice/internal/telemetry"

// Config is the settings of the dev stack itself (SLUICE_DEV_*, telemetry,
// logging), loaded with config.Load; the stages read their own
// (SLUICE_SHIPPER_*, ...) with dev defaults underneath.
type Config struct {
	Dir         string `env:"DEV_DIR, default=.sluice" help:"Directory of the dev stack: the node log tree (node/var/log/...), Kafka's and the store's data, checkpoints. Kept across runs."`
	KafkaAddr   string `env:"DEV_KAFKA_ADDR, default=127.0.0.1:9092" help:"Address of the embedded Kafka (ignored when SLUICE_KAFKA_BROKERS is set)."`
	ESAddr      string `env:"DEV_ES_ADDR, default=127.0.0.1:9200" help:"Address of the embedded Elasticsearch-compatible store (ignored when SLUICE_ELASTICSEARCH_URLS is set)."`
	GatewayAddr string `env:"DEV_GATEWAY_ADDR, default=127.0.0.1:4318" help:"Listen address of the ingest gateway (OTLP/HTTP on /v1/logs, lines on /v1/lines), host:port. Against the embedded Kafka it checks no password: the basic-auth user name is the tenant (curl -u shop: ...). Empty disables it."`
	Store       StoreConfig
	Telemetry   Telemetry
}

// Validate reports every problem, each naming the variable at fault.
func (c *Config) Validate() error { return c.Store.Validate() }

// Telemetry is telemetry.Config with a loopback default address: the dev
// stack runs on a workstation, often on a shared network, and its metrics
// (tenants, pods and topics by name) are nobody else's to read. The
// stages' own commands keep telemetry.DefaultAddr, where Prometheus scrapes
// them in their pods.
type Telemetry struct {
	Addr      string `env:"TELEMETRY_ADDR, default=127.0.0.1:9464" help:"Listen address of the dev stack's /metrics, /healthz and /readyz server, host:port: loopback only unless set (e.g. :9464 for every interface). Empty disables the server."`
	LogFormat string `env:"LOG_FORMAT, default=text" help:"Log format: text or json."`
	LogLevel  string `env:"LOG_LEVEL, default=info" help:"Lowest level logged: debug, info, warn or error."`
}

// Config is t as the telemetry package takes it.
func (t Telemetry) Config() telemetry.Config { return telemetry.Config(t) }
