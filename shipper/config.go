package shipper

import (
	"os"
	"path/filepath"
	"time"

	"github.com/sluicelogs/sluice/internal/config"
	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/internal/telemetry"
)

// Config is the shipper's configuration, read from SLUICE_* environment
// variables (see internal/config). Interactive switches (--output, --once)
// are flags of the command, not settings.
type Config struct {
	Kafka     kafka.Config
	Telemetry telemetry.Config

	NodeName string `env:"NODE_NAME" help:"Name of this node, part of every record id and kubernetes.host (default: the host name). Set it from the downward API (spec.nodeName)."`

	Paths         []string `env:"SHIPPER_PATHS, default=/var/log/containers/*.log" help:"Comma-separated globs of container log files to tail. Symlinks into /var/log/pods are followed."`
	CheckpointDir string   `env:"SHIPPER_CHECKPOINT_DIR, default=/var/lib/sluice/shipper" help:"Directory for the checkpoint file (read-write, node-local, kept across restarts)."`
	TenantMap     []string `env:"SHIPPER_TENANT_MAP" help:"Ordered namespace-glob=tenant rules, comma-separated; the first match wins, else tenant = namespace. Example: team-a-*=team-a,payments=pay"`
	Exclude       []string `env:"SHIPPER_EXCLUDE" help:"Comma-separated namespace-glob/pod-glob rules of containers to skip. Example: kube-system/*,monitoring/prometheus-*"`

	MaxLineBytes     int   `env:"SHIPPER_MAX_LINE_BYTES, default=262144" help:"Longest message kept, in bytes, after joining partial lines; longer ones are truncated on a UTF-8 boundary and flagged."`
	MaxBufferedBytes int64 `env:"SHIPPER_MAX_BUFFERED_BYTES, default=4194304" help:"Bound on bytes read but not yet acknowledged by Kafka (message bytes plus a fixed per-record overhead); when reached, reading pauses (backpressure). At least 4 x SLUICE_SHIPPER_MAX_LINE_BYTES."`

	RescanInterval     time.Duration `env:"SHIPPER_RESCAN_INTERVAL, default=5s" help:"How often the globs are re-evaluated to find new and removed files."`
	PollInterval       time.Duration `env:"SHIPPER_POLL_INTERVAL, default=250ms" help:"How often a file at its end is checked for new data, rotation and truncation."`
	CheckpointInterval time.Duration `env:"SHIPPER_CHECKPOINT_INTERVAL, default=2s" help:"How often acknowledged positions are saved."`
	ShutdownTimeout    time.Duration `env:"SHIPPER_SHUTDOWN_TIMEOUT, default=20s" help:"On SIGTERM, how long to wait for Kafka to acknowledge what was read before saving checkpoints and exiting."`
	TenantRetryMax     time.Duration `env:"SHIPPER_TENANT_RETRY_MAX, default=30s" help:"Longest wait between retries for a tenant whose topic is missing or denied (the wait doubles from 1s)."`
}

// Validate reports every problem with the configuration, each naming the
// variable at fault.
func (c *Config) Validate() error {
	var p config.Problems
	add := func(name, format string, args ...any) { p.Add(config.Var(name), format, args...) }
	p.Merge(c.Kafka.Validate())
	p.Merge(c.Telemetry.Validate())
	if len(c.Paths) == 0 {
		add("SHIPPER_PATHS", "must name at least one glob")
	}
	for _, p := range c.Paths {
		if _, err := filepath.Match(p, ""); err != nil {
			add("SHIPPER_PATHS", "bad glob %q: %v", p, err)
		}
	}
	if c.CheckpointDir == "" {
		add("SHIPPER_CHECKPOINT_DIR", "must not be empty")
	}
	if _, err := ParseTenantMap(c.TenantMap); err != nil {
		add("SHIPPER_TENANT_MAP", "%v", err)
	}
	if _, err := ParseExclude(c.Exclude); err != nil {
		add("SHIPPER_EXCLUDE", "%v", err)
	}
	if c.MaxLineBytes < 1024 || c.MaxLineBytes > 900*1024 {
		add("SHIPPER_MAX_LINE_BYTES", "must be between 1024 and 921600 (below Kafka's default 1 MiB message limit), got %d", c.MaxLineBytes)
	}
	if c.MaxBufferedBytes < 4*int64(c.MaxLineBytes) || c.MaxBufferedBytes > 1<<30 {
		add("SHIPPER_MAX_BUFFERED_BYTES", "must be at least 4 x SLUICE_SHIPPER_MAX_LINE_BYTES (%d) and at most 1 GiB, got %d", 4*c.MaxLineBytes, c.MaxBufferedBytes)
	}
	p.Positive(map[string]time.Duration{
		"SHIPPER_RESCAN_INTERVAL":     c.RescanInterval,
		"SHIPPER_POLL_INTERVAL":       c.PollInterval,
		"SHIPPER_CHECKPOINT_INTERVAL": c.CheckpointInterval,
		"SHIPPER_SHUTDOWN_TIMEOUT":    c.ShutdownTimeout,
		"SHIPPER_TENANT_RETRY_MAX":    c.TenantRetryMax,
	})
	return p.Err()
}

// MemoryLimit is the Go soft memory limit the shipper command sets when
// GOMEMLIMIT is not in the environment: a base for the runtime, the Kafka
// client and its compressors, plus room for the read-ahead budget twice
// (once as read, once encoded). With the defaults it is 24 MiB, which holds
// the resident set near 34 MiB at 20,000 lines/s (see the README).
func (c *Config) MemoryLimit() int64 {
	return 16<<20 + 2*c.MaxBufferedBytes
}

// nodeName returns the configured node name or the host name.
func (c *Config) nodeName() string {
	if c.NodeName != "" {
		return c.NodeName
	}
	if h, err := os.Hostname(); err == nil {
		return h
	}
	return "unknown"
}
