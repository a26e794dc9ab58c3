package shipper

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

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

	NodeName string `env:"NODE_NAME" help:"Name of this node, part of every record id and kubernetes.host. Set it from the downward API (spec.nodeName); required inside Kubernetes (where the host name is the pod's name, which changes on every restart). Elsewhere it defaults to the host name."`

	Paths         []string `env:"SHIPPER_PATHS, default=/var/log/containers/*.log" help:"Comma-separated globs of container log files to tail. Symlinks into /var/log/pods are followed."`
	CheckpointDir string   `env:"SHIPPER_CHECKPOINT_DIR, default=/var/lib/sluice/shipper" help:"Directory for the checkpoint file (read-write, node-local, kept across restarts)."`
	TenantMap     []string `env:"SHIPPER_TENANT_MAP" help:"Ordered namespace-glob=tenant rules, comma-separated; the first match wins, else tenant = namespace. Example: team-a-*=team-a,payments=pay"`
	Exclude       []string `env:"SHIPPER_EXCLUDE" help:"Comma-separated namespace-glob/pod-glob rules of containers to skip. Example: kube-system/*,monitoring/prometheus-*"`

	MaxLineBytes           int   `env:"SHIPPER_MAX_LINE_BYTES, default=262144" help:"Longest message kept, in bytes, after joining partial lines; longer ones are truncated on a UTF-8 boundary and flagged."`
	MaxBufferedBytes       int64 `env:"SHIPPER_MAX_BUFFERED_BYTES, default=4194304" help:"Bound on bytes read but not yet acknowledged by Kafka (message bytes plus a fixed per-record overhead), partial messages being joined included; when reached, reading pauses (backpressure). At least 4 x SLUICE_SHIPPER_MAX_LINE_BYTES."`
	TenantMaxBufferedBytes int64 `env:"SHIPPER_TENANT_MAX_BUFFERED_BYTES" help:"Each tenant's guaranteed share of SLUICE_SHIPPER_MAX_BUFFERED_BYTES, and the reserve no tenant may borrow beyond its share: a tenant alone may hold the budget less this, and a tenant whose records Kafka does not acknowledge never leaves the others less than this. Default: a quarter of SLUICE_SHIPPER_MAX_BUFFERED_BYTES. At least SLUICE_SHIPPER_MAX_LINE_BYTES + 16 KiB."`

	ReadFrom    string        `env:"SHIPPER_READ_FROM, default=head" help:"Where files found on the shipper's very first start on a node (no checkpoint yet) are read from: head (all their lines) or tail (only lines written from now on). Files that appear later are always read from their start, and a file with a checkpoint from its checkpoint."`
	IgnoreOlder time.Duration `env:"SHIPPER_IGNORE_OLDER" help:"When set, a file without a checkpoint not written for longer than this is read from its end (its old lines are skipped, new ones shipped); 0 reads every file."`

	PartialFlushTimeout time.Duration `env:"SHIPPER_PARTIAL_FLUSH_TIMEOUT, default=5s" help:"How long a message whose end has not come (a CRI P line without its F, a docker log without its newline, an unterminated last line) waits for it; then it is shipped as it is, flagged partial, and the checkpoint moves past it."`
	DeliveryTimeout     time.Duration `env:"SHIPPER_DELIVERY_TIMEOUT, default=30s" help:"How long a record may wait for Kafka's acknowledgement; after it the record is read again and resent with backoff, one at a time until the partition answers."`
	HeldFilesMaxBytes   int64         `env:"SHIPPER_HELD_FILES_MAX_BYTES, default=268435456" help:"Bound on the disk space held by log files deleted (by kubelet's rotation) before they were read to their end. Past it the oldest are given up (a compressed copy is read instead when there is one; otherwise their unread lines are counted lost)."`
	HeldFilesMaxAge     time.Duration `env:"SHIPPER_HELD_FILES_MAX_AGE, default=1h" help:"How long a deleted log file is held open at most, as SLUICE_SHIPPER_HELD_FILES_MAX_BYTES."`
	CloseInactive       time.Duration `env:"SHIPPER_CLOSE_INACTIVE, default=5m" help:"An idle file is closed after this long without new data (and reopened, by identity, when it changes); idle files are also closed early when file descriptors run short."`

	RescanInterval     time.Duration `env:"SHIPPER_RESCAN_INTERVAL, default=5s" help:"How often the globs are re-evaluated to find new and removed files (new files in watched directories are found at once)."`
	PollInterval       time.Duration `env:"SHIPPER_POLL_INTERVAL, default=250ms" help:"How often a file whose directory cannot be watched (inotify) is checked for new data, rotation and truncation (backing off to 8x while idle). Watched files are read when written, in batches at most this often."`
	CheckpointInterval time.Duration `env:"SHIPPER_CHECKPOINT_INTERVAL, default=2s" help:"How often acknowledged positions are saved (only when they changed)."`
	ShutdownTimeout    time.Duration `env:"SHIPPER_SHUTDOWN_TIMEOUT, default=20s" help:"On SIGTERM, how long to wait for Kafka to acknowledge what was read before saving checkpoints and exiting."`
	TenantRetryMax     time.Duration `env:"SHIPPER_TENANT_RETRY_MAX, default=30s" help:"Longest wait between retries for a tenant whose topic is missing or denied (the wait doubles from 1s)."`

	KubernetesMetadata     string        `env:"SHIPPER_KUBERNETES_METADATA, default=auto" help:"Whether records carry metadata from the Kubernetes API (pod labels, allow-listed annotations and namespace labels, container image, owning workload) and tenants come from namespace labels: on, off, or auto (on inside Kubernetes, where KUBERNETES_SERVICE_HOST is set, or when SLUICE_SHIPPER_KUBERNETES_API is). Pods of this node only are watched (a field selector on spec.nodeName), namespaces cluster-wide; a Job's CronJob is read once per Job. The API server being away never holds shipping back: records then carry what the log path says, flagged metadata=partial."`
	KubernetesAPI          string        `env:"SHIPPER_KUBERNETES_API" help:"URL of the Kubernetes API server. Default: the pod's service account (in-cluster configuration)."`
	KubernetesTokenFile    string        `env:"SHIPPER_KUBERNETES_TOKEN_FILE" help:"With SLUICE_SHIPPER_KUBERNETES_API: a file holding the bearer token for the API server (re-read when it changes); none by default."`
	KubernetesCAFile       string        `env:"SHIPPER_KUBERNETES_CA_FILE" help:"With SLUICE_SHIPPER_KUBERNETES_API over https: the CA bundle the API server's certificate is checked with; the system's by default."`
	AnnotationPrefixes     []string      `env:"SHIPPER_ANNOTATION_PREFIXES" help:"Comma-separated prefixes of the pod annotation keys records carry (an allow-list; a prefix may be a whole key). Default none: annotations can hold secrets and be large."`
	NamespaceLabelPrefixes []string      `env:"SHIPPER_NAMESPACE_LABEL_PREFIXES" help:"Comma-separated prefixes of the namespace label keys records carry (an allow-list). Default none. Pod labels are all carried."`
	MetadataWait           time.Duration `env:"SHIPPER_METADATA_WAIT, default=2s" help:"How long a container whose pod is not in the metadata cache yet waits before its lines are shipped with what the log path says (flagged metadata=partial); its later lines carry the full metadata once the pod is known. Also the longest the shipper waits at start for the first list of pods and namespaces."`
	MetadataRetention      time.Duration `env:"SHIPPER_METADATA_RETENTION, default=5m" help:"How long the metadata of a deleted pod (and namespace) is kept for the late lines of its containers."`
	TenantLabel            string        `env:"SHIPPER_TENANT_LABEL, default=sluice.io/tenant" help:"Namespace label naming the namespace's tenant. The tenant of a container is this label of its namespace, else the first SLUICE_SHIPPER_TENANT_MAP rule that matches, else the namespace name. When the label changes, the next lines go to the new tenant's topic (lines already read stay with the old). Empty: tenants do not come from labels."`
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
	if n, least := c.tenantMaxBuffered(), int64(c.MaxLineBytes)+16<<10; c.TenantMaxBufferedBytes != 0 && (n < least || n > c.MaxBufferedBytes) {
		add("SHIPPER_TENANT_MAX_BUFFERED_BYTES", "must be 0 (a quarter of the budget), or between %d (room for the longest line) and SLUICE_SHIPPER_MAX_BUFFERED_BYTES (%d), got %d", least, c.MaxBufferedBytes, n)
	}
	if c.ReadFrom != "head" && c.ReadFrom != "tail" {
		add("SHIPPER_READ_FROM", "must be head or tail, got %q", c.ReadFrom)
	}
	if c.IgnoreOlder < 0 {
		add("SHIPPER_IGNORE_OLDER", "must not be negative, got %s", c.IgnoreOlder)
	}
	if c.HeldFilesMaxBytes < 0 {
		add("SHIPPER_HELD_FILES_MAX_BYTES", "must not be negative, got %d", c.HeldFilesMaxBytes)
	}
	if c.NodeName == "" && os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		add("NODE_NAME", "must be set inside Kubernetes (from the downward API: fieldRef spec.nodeName); the host name is the pod's name there, so record ids would change on every restart")
	}
	switch c.KubernetesMetadata {
	case "auto", "on", "off":
	default:
		add("SHIPPER_KUBERNETES_METADATA", "must be auto, on or off, got %q", c.KubernetesMetadata)
	}
	if c.KubernetesAPI != "" {
		if u, err := url.Parse(c.KubernetesAPI); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("SHIPPER_KUBERNETES_API", "must be an http or https URL, got %q", c.KubernetesAPI)
		}
	} else if c.KubernetesTokenFile != "" || c.KubernetesCAFile != "" {
		add("SHIPPER_KUBERNETES_API", "must be set with SLUICE_SHIPPER_KUBERNETES_TOKEN_FILE or _CA_FILE (in-cluster configuration brings its own)")
	}
	if c.TenantLabel != "" {
		if err := validLabelKey(c.TenantLabel); err != nil {
			add("SHIPPER_TENANT_LABEL", "%v", err)
		}
	}
	if c.MetadataWait < 0 || c.MetadataWait > time.Minute {
		add("SHIPPER_METADATA_WAIT", "must be between 0 and 1m, got %s", c.MetadataWait)
	}
	if c.MetadataRetention < 0 {
		add("SHIPPER_METADATA_RETENTION", "must not be negative, got %s", c.MetadataRetention)
	}
	p.Positive(map[string]time.Duration{
		"SHIPPER_RESCAN_INTERVAL":       c.RescanInterval,
		"SHIPPER_POLL_INTERVAL":         c.PollInterval,
		"SHIPPER_CHECKPOINT_INTERVAL":   c.CheckpointInterval,
		"SHIPPER_SHUTDOWN_TIMEOUT":      c.ShutdownTimeout,
		"SHIPPER_TENANT_RETRY_MAX":      c.TenantRetryMax,
		"SHIPPER_PARTIAL_FLUSH_TIMEOUT": c.PartialFlushTimeout,
		"SHIPPER_DELIVERY_TIMEOUT":      c.DeliveryTimeout,
		"SHIPPER_HELD_FILES_MAX_AGE":    c.HeldFilesMaxAge,
		"SHIPPER_CLOSE_INACTIVE":        c.CloseInactive,
	})
	return p.Err()
}

// validLabelKey checks a label key: an optional DNS-subdomain prefix and
// '/', then a name of at most 63 alphanumerics, '-', '_' or '.'.
func validLabelKey(key string) error {
	if errs := validation.IsQualifiedName(key); len(errs) > 0 {
		return fmt.Errorf("%q is not a label key: %s", key, strings.Join(errs, "; "))
	}
	return nil
}

// kubernetesEnabled reports whether records carry metadata from the API
// server (SLUICE_SHIPPER_KUBERNETES_METADATA); injected says a client was
// given.
func (c *Config) kubernetesEnabled(injected bool) bool {
	switch c.KubernetesMetadata {
	case "on":
		return true
	case "off":
		return false
	}
	return injected || c.KubernetesAPI != "" || os.Getenv("KUBERNETES_SERVICE_HOST") != ""
}

// tenantMaxBuffered is a tenant's share of the byte budget.
func (c *Config) tenantMaxBuffered() int64 {
	if c.TenantMaxBufferedBytes > 0 {
		return c.TenantMaxBufferedBytes
	}
	return min(max(c.MaxBufferedBytes/4, int64(c.MaxLineBytes)+16<<10), c.MaxBufferedBytes)
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
