package gateway

import (
	"net"
	"strconv"
	"time"

	"github.com/sluicelogs/sluice/internal/config"
	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/internal/telemetry"
)

// Config is the gateway's configuration, read from SLUICE_* environment
// variables (see internal/config).
//
// The Kafka settings are the other stages' but for the credentials: the
// gateway has none of its own. SLUICE_KAFKA_SASL_MECHANISM (and TLS) say
// how to authenticate; the user name and password are each request's.
type Config struct {
	Kafka     kafka.Config
	Telemetry telemetry.Config

	Addr     string `env:"GATEWAY_ADDR, default=:4318" help:"Listen address of the ingest API (OTLP/HTTP on /v1/logs, lines on /v1/lines), host:port. 4318 is OTLP/HTTP's port."`
	GRPCAddr string `env:"GATEWAY_GRPC_ADDR" help:"Listen address of OTLP/gRPC (the LogsService Export call), host:port, e.g. :4317. Empty: off. It shares the HTTP listener's TLS, credentials and bounds."`

	TLSCertFile     string `env:"GATEWAY_TLS_CERT_FILE" help:"PEM certificate to serve HTTPS (and gRPC over TLS) with; needs SLUICE_GATEWAY_TLS_KEY_FILE. Empty: plain HTTP, for a gateway behind a TLS-terminating ingress."`
	TLSKeyFile      string `env:"GATEWAY_TLS_KEY_FILE" help:"PEM private key of SLUICE_GATEWAY_TLS_CERT_FILE."`
	TLSClientCAFile string `env:"GATEWAY_TLS_CLIENT_CA_FILE" help:"PEM CA certificates: when set, clients must present a certificate they signed (mutual TLS), besides their credentials. Needs SLUICE_GATEWAY_TLS_CERT_FILE."`

	TokensFile string `env:"GATEWAY_TOKENS_FILE" help:"File of bearer tokens, one per line: TOKEN USERNAME PASSWORD (the tenant's Kafka credentials), '#' starts a comment. A request with Authorization: Bearer TOKEN acts as that user. Re-read when it changes. Empty: only basic authentication."`

	AuthTTL        time.Duration `env:"GATEWAY_AUTH_TTL, default=1m" help:"How long credentials Kafka accepted are trusted without a new SASL handshake: after it, the next request makes a new client for them (a changed password or a deleted user takes effect within this long)."`
	AuthFailureTTL time.Duration `env:"GATEWAY_AUTH_FAILURE_TTL, default=5s" help:"How long credentials Kafka refused are refused without asking it again (401), so that a client retrying a wrong password does not make a SASL handshake per request."`
	MaxClients     int           `env:"GATEWAY_MAX_CLIENTS, default=256" help:"Most Kafka clients kept at once, one per tenant credentials in use. When all are busy, requests with other credentials are answered 429."`
	ClientIdle     time.Duration `env:"GATEWAY_CLIENT_IDLE_TIMEOUT, default=5m" help:"A Kafka client unused for this long is closed."`

	MaxBodyBytes         int64 `env:"GATEWAY_MAX_BODY_BYTES, default=8388608" help:"Largest request body, as sent (compressed or not); larger requests are answered 413."`
	MaxDecompressedBytes int64 `env:"GATEWAY_MAX_DECOMPRESSED_BYTES, default=33554432" help:"Largest request body after gzip decompression; larger ones (gzip bombs) are answered 413 without being decompressed further."`
	MaxRecords           int   `env:"GATEWAY_MAX_RECORDS_PER_REQUEST, default=10000" help:"Most log records in one request; more is answered 413."`
	MaxLogBytes          int   `env:"GATEWAY_MAX_LOG_BYTES, default=262144" help:"Longest log message kept, in bytes; longer ones are truncated on a UTF-8 boundary and flagged truncated, as the shipper does."`
	MaxRecordBytes       int   `env:"GATEWAY_MAX_RECORD_BYTES, default=921600" help:"Largest encoded record (message, attributes and metadata); a larger one is rejected alone (partial success). At most 900 KiB, below Kafka's default 1 MiB message limit."`

	MaxInflightBytes       int64 `env:"GATEWAY_MAX_INFLIGHT_BYTES, default=268435456" help:"Bound on the bytes of requests being handled: a body counts twice its decompressed size while it is read and decoded (itself and its records to be), then its encoded records count until Kafka acknowledged them. A request that would pass it is answered 429 with Retry-After, as soon as it would."`
	TenantMaxInflightBytes int64 `env:"GATEWAY_TENANT_MAX_INFLIGHT_BYTES" help:"Each tenant's bound within SLUICE_GATEWAY_MAX_INFLIGHT_BYTES; past it that tenant's requests are answered 429, and the rest of the budget stays for the others. Default: a quarter of SLUICE_GATEWAY_MAX_INFLIGHT_BYTES."`
	MaxRequests            int   `env:"GATEWAY_MAX_CONCURRENT_REQUESTS, default=256" help:"Most requests handled at once; more are answered 429 with Retry-After."`
	TenantMaxRequests      int   `env:"GATEWAY_TENANT_MAX_CONCURRENT_REQUESTS" help:"Most requests of one tenant handled at once; more are answered 429. Default: a quarter of SLUICE_GATEWAY_MAX_CONCURRENT_REQUESTS."`
	MaxConnections         int   `env:"GATEWAY_MAX_CONNECTIONS, default=4096" help:"Most client connections open at once; further connections wait to be accepted."`

	AckTimeout      time.Duration `env:"GATEWAY_ACK_TIMEOUT, default=30s" help:"How long a request waits for Kafka to acknowledge its records; past it the request is answered 503 and the client retries (record ids make the retry no duplicate)."`
	Linger          time.Duration `env:"GATEWAY_KAFKA_LINGER, default=0s" help:"How long the producer waits to fill a batch with concurrent requests' records before sending it. 0 sends at once; records of concurrent requests still share batches while one is in flight, which on the benchmark costs the least CPU and time."`
	RetryAfter      time.Duration `env:"GATEWAY_RETRY_AFTER, default=1s" help:"Retry-After given with 429 and 503 answers caused by the gateway's bounds (Kafka's quota throttling gives its own delay)."`
	ReadTimeout     time.Duration `env:"GATEWAY_READ_TIMEOUT, default=30s" help:"Longest time to read a request, headers and body."`
	IdleTimeout     time.Duration `env:"GATEWAY_IDLE_TIMEOUT, default=2m" help:"How long an idle keep-alive connection is kept."`
	ShutdownTimeout time.Duration `env:"GATEWAY_SHUTDOWN_TIMEOUT, default=20s" help:"On SIGTERM, how long requests in progress may take to finish (their records to be acknowledged) before the gateway exits."`

	InsecureTrustUsername bool `env:"GATEWAY_INSECURE_TRUST_USERNAME" help:"Only with SLUICE_KAFKA_SASL_MECHANISM=none (a development Kafka without authentication): the user name of a request names its tenant and no password is checked. Never in production."`
}

// maxRecordBytesLimit is the most SLUICE_GATEWAY_MAX_RECORD_BYTES may be.
const maxRecordBytesLimit = 900 << 10

// Validate reports every problem with the configuration, each naming the
// variable at fault.
func (c *Config) Validate() error {
	var p config.Problems
	add := func(name, format string, args ...any) { p.Add(config.Var(name), format, args...) }
	// The credentials are each request's: check the rest as if some were set.
	kc := c.Kafka
	if kc.SASLEnabled() {
		kc = kc.ForUser("gateway", "gateway")
	}
	p.Merge(kc.Validate())
	if c.Kafka.SASLUsername != "" || c.Kafka.SASLPassword != "" || c.Kafka.SASLPasswordFile != "" {
		add("KAFKA_SASL_USERNAME", "must not be set for the gateway: it produces as each request's tenant, with the request's credentials")
	}
	switch {
	case !c.Kafka.SASLEnabled() && !c.InsecureTrustUsername:
		add("KAFKA_SASL_MECHANISM", "must be a SASL mechanism (SCRAM-SHA-512 as sluice tenant create sets up): the gateway authenticates each request as its tenant's Kafka user; set SLUICE_GATEWAY_INSECURE_TRUST_USERNAME=true only for a development Kafka without authentication")
	case c.Kafka.SASLEnabled() && c.InsecureTrustUsername:
		add("GATEWAY_INSECURE_TRUST_USERNAME", "must not be set with SLUICE_KAFKA_SASL_MECHANISM=%s: Kafka checks the credentials", c.Kafka.SASLMechanism)
	}
	p.Merge(c.Telemetry.Validate())
	for name, addr := range map[string]string{"GATEWAY_ADDR": c.Addr, "GATEWAY_GRPC_ADDR": c.GRPCAddr} {
		if addr == "" && name == "GATEWAY_GRPC_ADDR" {
			continue
		}
		_, port, err := net.SplitHostPort(addr)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
			add(name, "%q is not host:port (host may be empty)", addr)
		}
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		add("GATEWAY_TLS_CERT_FILE", "and SLUICE_GATEWAY_TLS_KEY_FILE must be set together")
	}
	if c.TLSClientCAFile != "" && c.TLSCertFile == "" {
		add("GATEWAY_TLS_CLIENT_CA_FILE", "needs SLUICE_GATEWAY_TLS_CERT_FILE: mutual TLS is TLS")
	}
	if c.MaxClients < 1 {
		add("GATEWAY_MAX_CLIENTS", "must be at least 1, got %d", c.MaxClients)
	}
	if c.MaxBodyBytes < 1024 {
		add("GATEWAY_MAX_BODY_BYTES", "must be at least 1024, got %d", c.MaxBodyBytes)
	}
	if c.MaxDecompressedBytes < c.MaxBodyBytes {
		add("GATEWAY_MAX_DECOMPRESSED_BYTES", "must be at least SLUICE_GATEWAY_MAX_BODY_BYTES (%d), got %d", c.MaxBodyBytes, c.MaxDecompressedBytes)
	}
	if c.MaxRecords < 1 {
		add("GATEWAY_MAX_RECORDS_PER_REQUEST", "must be at least 1, got %d", c.MaxRecords)
	}
	if c.MaxRecordBytes < 1024 || c.MaxRecordBytes > maxRecordBytesLimit {
		add("GATEWAY_MAX_RECORD_BYTES", "must be between 1024 and %d, got %d", maxRecordBytesLimit, c.MaxRecordBytes)
	}
	if c.MaxLogBytes < 1 || c.MaxLogBytes > c.MaxRecordBytes {
		add("GATEWAY_MAX_LOG_BYTES", "must be between 1 and SLUICE_GATEWAY_MAX_RECORD_BYTES (%d), got %d", c.MaxRecordBytes, c.MaxLogBytes)
	}
	if c.MaxInflightBytes < 2*c.MaxDecompressedBytes {
		add("GATEWAY_MAX_INFLIGHT_BYTES", "must be at least twice SLUICE_GATEWAY_MAX_DECOMPRESSED_BYTES (%d), got %d", 2*c.MaxDecompressedBytes, c.MaxInflightBytes)
	}
	if n := c.TenantMaxInflightBytes; n != 0 && (n < 64<<10 || n > c.MaxInflightBytes) {
		add("GATEWAY_TENANT_MAX_INFLIGHT_BYTES", "must be 0 (a quarter of the budget) or between 65536 and SLUICE_GATEWAY_MAX_INFLIGHT_BYTES (%d), got %d", c.MaxInflightBytes, n)
	}
	// Below twice the largest body, the largest requests could never pass;
	// allowed (a deliberately small share), but said in the settings' help.
	if c.MaxRequests < 1 {
		add("GATEWAY_MAX_CONCURRENT_REQUESTS", "must be at least 1, got %d", c.MaxRequests)
	}
	if n := c.TenantMaxRequests; n < 0 || n > c.MaxRequests {
		add("GATEWAY_TENANT_MAX_CONCURRENT_REQUESTS", "must be 0 (a quarter) or between 1 and SLUICE_GATEWAY_MAX_CONCURRENT_REQUESTS (%d), got %d", c.MaxRequests, n)
	}
	if c.MaxConnections < 1 {
		add("GATEWAY_MAX_CONNECTIONS", "must be at least 1, got %d", c.MaxConnections)
	}
	if c.Linger < 0 {
		add("GATEWAY_KAFKA_LINGER", "must not be negative, got %s", c.Linger)
	}
	p.Positive(map[string]time.Duration{
		"GATEWAY_AUTH_TTL":            c.AuthTTL,
		"GATEWAY_AUTH_FAILURE_TTL":    c.AuthFailureTTL,
		"GATEWAY_CLIENT_IDLE_TIMEOUT": c.ClientIdle,
		"GATEWAY_ACK_TIMEOUT":         c.AckTimeout,
		"GATEWAY_RETRY_AFTER":         c.RetryAfter,
		"GATEWAY_READ_TIMEOUT":        c.ReadTimeout,
		"GATEWAY_IDLE_TIMEOUT":        c.IdleTimeout,
		"GATEWAY_SHUTDOWN_TIMEOUT":    c.ShutdownTimeout,
	})
	return p.Err()
}

// tenantMaxInflight is a tenant's share of the byte budget.
func (c *Config) tenantMaxInflight() int64 {
	if c.TenantMaxInflightBytes > 0 {
		return c.TenantMaxInflightBytes
	}
	return max(c.MaxInflightBytes/4, min(2*c.MaxDecompressedBytes, c.MaxInflightBytes))
}

// tenantMaxRequests is a tenant's share of the concurrent requests.
func (c *Config) tenantMaxRequests() int {
	if c.TenantMaxRequests > 0 {
		return c.TenantMaxRequests
	}
	return max(c.MaxRequests/4, 1)
}
