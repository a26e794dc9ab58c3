package router

import (
	"os"
	"time"

	"github.com/sluicelogs/sluice/internal/config"
	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/internal/telemetry"
)

// Config is the router's configuration, read from SLUICE_* environment
// variables (see internal/config).
type Config struct {
	Kafka     kafka.Config
	Telemetry telemetry.Config

	Group string `env:"ROUTER_GROUP, default=sluice-router" help:"Consumer group of the routers; every replica uses the same one."`
	ID    string `env:"ROUTER_ID" help:"This router's name, unique among the replicas (default: the host name, i.e. the pod name). It makes the transactional id <group>-<id> and names the router in pipeline status. Set explicitly (for example to a StatefulSet pod name), it also makes the group membership static: a restarted router takes its partitions back without a rebalance."`

	BatchMaxTime       time.Duration `env:"ROUTER_BATCH_MAX_TIME, default=250ms" help:"Longest a transaction waits for the tenants' processing. A tenant not done by then is left out of the transaction: its partitions are paused and rewound, its records finished in the background (on at most half the cores) and committed in a later transaction, so a slow pipeline never delays the other tenants."`
	TransactionTimeout time.Duration `env:"ROUTER_TRANSACTION_TIMEOUT, default=60s" help:"Kafka transaction timeout: the broker aborts a transaction left open longer (a router that died mid-transaction). Must be well above SLUICE_ROUTER_BATCH_MAX_TIME; a transaction normally lasts that plus one flush."`
	MaxRecordBytes     int           `env:"ROUTER_MAX_RECORD_BYTES, default=1048576" help:"Largest raw record decoded. A larger one goes to the tenant's dead-letter topic (reason too_large, payload cut) without being decoded."`
	MaxBatchBytes      int           `env:"ROUTER_MAX_BATCH_BYTES, default=16777216" help:"Most a record batch of a raw topic may decompress to (also at most 64 times its compressed size, or 4 KiB). Kafka's size limits count compressed bytes; a batch over this bound is read with its large records cut (they are dead-lettered as too_large), so no tenant's data can exhaust the router's memory."`
	RescanInterval     time.Duration `env:"ROUTER_RESCAN_INTERVAL, default=5s" help:"How often topic metadata is refreshed: new <prefix>.raw.* topics are picked up, missing output topics noticed."`
	StatusHeartbeat    time.Duration `env:"ROUTER_STATUS_HEARTBEAT, default=10m" help:"How often the router republishes its status of every tenant to <prefix>.status (and <prefix>.status.<tenant>); a tenant's status is also published, in batches, within a second of any change."`
	ShutdownTimeout    time.Duration `env:"ROUTER_SHUTDOWN_TIMEOUT, default=20s" help:"On SIGTERM, how long to wait for the transaction in progress to end."`
	TenantRetryMax     time.Duration `env:"ROUTER_TENANT_RETRY_MAX, default=30s" help:"Longest pause of a tenant whose output topics are missing or denied (doubling from 1s)."`
	PseudonymKeysDir   string        `env:"ROUTER_PSEUDONYM_KEYS_DIR" help:"Directory of the tenants' secret keys for the pipeline function pseudonym() (HMAC-SHA256): one file per tenant, named by the tenant id, holding its key (at least 16 bytes; trailing white space is ignored), which is how a Kubernetes Secret mounted as a volume looks. Read at startup (the router does not start if it cannot be read) and every 30s: new, changed and removed keys take effect without a restart. Empty: no keys; pseudonym() then fails and the record goes where the step's on_error says."`
}

// Validate reports every problem, each naming the variable at fault.
func (c *Config) Validate() error {
	var p config.Problems
	add := func(name, format string, args ...any) { p.Add(config.Var(name), format, args...) }
	p.Merge(c.Kafka.Validate())
	p.Merge(c.Telemetry.Validate())
	if c.Group == "" {
		add("ROUTER_GROUP", "must not be empty")
	}
	if c.MaxRecordBytes < 1024 {
		add("ROUTER_MAX_RECORD_BYTES", "must be at least 1024, got %d", c.MaxRecordBytes)
	}
	if c.MaxBatchBytes < c.MaxRecordBytes {
		add("ROUTER_MAX_BATCH_BYTES", "must be at least SLUICE_ROUTER_MAX_RECORD_BYTES (%d), got %d", c.MaxRecordBytes, c.MaxBatchBytes)
	}
	if c.BatchMaxTime > 0 && c.TransactionTimeout < 10*c.BatchMaxTime {
		add("ROUTER_TRANSACTION_TIMEOUT", "must be at least 10 times SLUICE_ROUTER_BATCH_MAX_TIME (%s), got %s", c.BatchMaxTime, c.TransactionTimeout)
	}
	p.Positive(map[string]time.Duration{
		"ROUTER_BATCH_MAX_TIME":      c.BatchMaxTime,
		"ROUTER_TRANSACTION_TIMEOUT": c.TransactionTimeout,
		"ROUTER_RESCAN_INTERVAL":     c.RescanInterval,
		"ROUTER_STATUS_HEARTBEAT":    c.StatusHeartbeat,
		"ROUTER_SHUTDOWN_TIMEOUT":    c.ShutdownTimeout,
		"ROUTER_TENANT_RETRY_MAX":    c.TenantRetryMax,
	})
	return p.Err()
}

func (c *Config) id() string {
	if c.ID != "" {
		return c.ID
	}
	if h, err := os.Hostname(); err == nil {
		return h
	}
	return "router"
}
