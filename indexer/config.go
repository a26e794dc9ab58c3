package indexer

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluicelogs/sluice/internal/config"
	"github.com/sluicelogs/sluice/internal/elastic"
	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/internal/telemetry"
)

// Config is the indexer's configuration, read from SLUICE_* environment
// variables (see internal/config).
type Config struct {
	Kafka         kafka.Config
	Elasticsearch elastic.Config
	Telemetry     telemetry.Config

	Group string `env:"INDEXER_GROUP, default=sluice-indexer" help:"Consumer group of the indexers; every replica uses the same one. A second, independent group (another cluster, say) gets every record too."`
	ID    string `env:"INDEXER_ID" help:"This indexer's name, unique among the replicas (default: the host name, i.e. the pod name), used in logs and dead letters. Set explicitly (for example to a StatefulSet pod name), it also makes the group membership static: an indexer restarted under its id (after a crash, say) takes its partitions back at once instead of after the session timeout, without a rebalance."`

	IndexPrefix string        `env:"INDEXER_INDEX_PREFIX, default=sluice" help:"First element of every index name: <prefix>-<tenant>[.<dataset>]-YYYY.MM.DD. Also the name of the index template. Must not make names that Elastic's built-in logs-*-* template would capture."`
	Timezone    string        `env:"INDEXER_TIMEZONE, default=UTC" help:"IANA time zone that decides the day of an index (e.g. Europe/Paris)."`
	WindowPast  time.Duration `env:"INDEXER_WINDOW_PAST, default=168h" help:"An event time older than this before the moment of ingest does not pick the index: the ingest time does (the document keeps its @timestamp)."`
	WindowAhead time.Duration `env:"INDEXER_WINDOW_AHEAD, default=24h" help:"Likewise for an event time this far after the moment of ingest."`

	FlushBytes    int           `env:"INDEXER_FLUSH_BYTES, default=5242880" help:"A bulk request is sent when its body reaches this many bytes."`
	FlushInterval time.Duration `env:"INDEXER_FLUSH_INTERVAL, default=1s" help:"A bulk request is sent at the latest this long after its first document."`
	Workers       int           `env:"INDEXER_WORKERS, default=4" help:"Bulk requests in flight at once. Memory is bounded by about (workers + 1) x SLUICE_INDEXER_FLUSH_BYTES plus Kafka fetch buffers."`
	RetryMax      time.Duration `env:"INDEXER_RETRY_MAX, default=30s" help:"Longest wait between retries of documents Elasticsearch refused with 429 or 5xx, or of a request that failed (the wait doubles from 100ms, with jitter)."`

	GiveUp       []string `env:"INDEXER_GIVE_UP" help:"How long documents Elasticsearch refuses for a reason of their index, not theirs, are retried before they go to the tenant's dead-letter topic with that reason, as comma-separated class=duration (0: never give up), over the defaults blocked=30m (a write or flood-stage block), forbidden=30m (401, 403), index_missing=30m (404: auto-creation refused), index_closed=2h, index_config=30m (the shard limit, a missing default pipeline), server_error=30m (5xx), other=30m, too_many_requests=0 (429: the cluster is busy). Meanwhile they are parked with their index, apart from the other tenants' documents."`
	ParkMaxBytes int      `env:"INDEXER_PARK_MAX_BYTES, default=134217728" help:"Memory for parked documents (those of indices that refuse them for now, see SLUICE_INDEXER_GIVE_UP). A partition stops being fetched once it has SLUICE_INDEXER_FLUSH_BYTES parked, or any once the total reaches this, until its parked documents are stored or dead-lettered."`

	RescanInterval  time.Duration `env:"INDEXER_RESCAN_INTERVAL, default=5s" help:"How often topic metadata is refreshed: new <prefix>.parsed.* topics are picked up."`
	CommitInterval  time.Duration `env:"INDEXER_COMMIT_INTERVAL, default=1s" help:"How often the offsets of stored documents are committed."`
	RevokeTimeout   time.Duration `env:"INDEXER_REVOKE_TIMEOUT, default=20s" help:"When partitions move to another indexer, how long to wait for their documents in flight before committing and letting go (what is not stored by then is indexed again by the new owner, as duplicates Elasticsearch recognises)."`
	ShutdownTimeout time.Duration `env:"INDEXER_SHUTDOWN_TIMEOUT, default=20s" help:"On SIGTERM, how long to wait for bulk requests in flight before committing and exiting."`

	Shards           int `env:"INDEXER_SHARDS, default=1" help:"Primary shards of each daily index (index template)."`
	Replicas         int `env:"INDEXER_REPLICAS, default=1" help:"Replicas of each daily index (index template)."`
	TotalFieldsLimit int `env:"INDEXER_TOTAL_FIELDS_LIMIT, default=2000" help:"index.mapping.total_fields.limit of each daily index: a bound on mapping growth from parsed attributes."`
	IgnoreAbove      int `env:"INDEXER_IGNORE_ABOVE, default=1024" help:"Strings longer than this many characters are kept in _source but not indexed (keyword ignore_above)."`

	Layout          string        `env:"INDEXER_LAYOUT, default=dedicated" help:"Index layout of tenants without an override or a record in <prefix>.tenants saying theirs: dedicated (each tenant its own daily indices, <prefix>-<tenant>[.<dataset>]-YYYY.MM.DD) or shared (one daily index for all such tenants, <prefix>-_shared[.<dataset>]-YYYY.MM.DD, routed by tenant; isolation needs document-level security). See docs/indexer.md, Index layouts."`
	LayoutOverrides []string      `env:"INDEXER_LAYOUT_OVERRIDES" help:"Per-tenant layout, comma-separated tenant=layout. An entry wins over the layout of the tenant's record in <prefix>.tenants (sluice-controller's Tenant resources), which wins over SLUICE_INDEXER_LAYOUT. Example: big-shop=dedicated,audit=dedicated"`
	SharedShards    int           `env:"INDEXER_SHARED_SHARDS, default=3" help:"Primary shards of each shared daily index (their own index template, <prefix>-shared). A tenant's documents sit on one of them."`
	PrecreateWindow time.Duration `env:"INDEXER_PRECREATE_WINDOW, default=2h" help:"Tomorrow's indices of the index families written to today are created during this window before local midnight, spread over it (0: off; each index is then created by its first write)."`

	RetentionDays      int           `env:"INDEXER_RETENTION_DAYS, default=7" help:"Daily indices older than this many days are deleted (0: never), the shared indices always, a tenant's own unless an override or its record in <prefix>.tenants says otherwise. The day of today counts as day 0."`
	RetentionOverrides []string      `env:"INDEXER_RETENTION_OVERRIDES" help:"Per-tenant retention, comma-separated tenant=days (0: keep forever), for tenants in the dedicated layout only (shared indices go by SLUICE_INDEXER_RETENTION_DAYS). An entry wins over the retentionDays of the tenant's record in <prefix>.tenants. Example: audit=365,scratch=1"`
	RetentionInterval  time.Duration `env:"INDEXER_RETENTION_INTERVAL, default=1h" help:"How often old indices are looked for. Any replica may delete them; deleting twice is harmless."`
}

// Validate reports every problem, each naming the variable at fault.
func (c *Config) Validate() error {
	var p config.Problems
	add := func(name, format string, args ...any) { p.Add(config.Var(name), format, args...) }
	p.Merge(c.Kafka.Validate())
	p.Merge(c.Elasticsearch.Validate())
	p.Merge(c.Telemetry.Validate())
	if c.Group == "" {
		add("INDEXER_GROUP", "must not be empty")
	}
	p.AddErr(config.Var("INDEXER_INDEX_PREFIX"), ValidateIndexPrefix(c.IndexPrefix))
	if _, err := time.LoadLocation(c.Timezone); err != nil || c.Timezone == "" {
		add("INDEXER_TIMEZONE", "%q is not an IANA time zone name", c.Timezone)
	}
	if c.FlushBytes < 1024 || c.FlushBytes > 100<<20 {
		add("INDEXER_FLUSH_BYTES", "must be between 1024 and 104857600 (Elasticsearch's default http.max_content_length), got %d", c.FlushBytes)
	}
	if c.Workers < 1 || c.Workers > 256 {
		add("INDEXER_WORKERS", "must be between 1 and 256, got %d", c.Workers)
	}
	if c.Shards < 1 || c.Shards > 1024 {
		add("INDEXER_SHARDS", "must be between 1 and 1024, got %d", c.Shards)
	}
	if c.Replicas < 0 || c.Replicas > 16 {
		add("INDEXER_REPLICAS", "must be between 0 and 16, got %d", c.Replicas)
	}
	if c.TotalFieldsLimit < 100 {
		add("INDEXER_TOTAL_FIELDS_LIMIT", "must be at least 100 (the fields Sluice itself maps), got %d", c.TotalFieldsLimit)
	}
	if c.IgnoreAbove < 1 || c.IgnoreAbove > 8191 {
		// 32766 bytes is Lucene's term limit; 8191 characters of up to 4
		// bytes stay within it.
		add("INDEXER_IGNORE_ABOVE", "must be between 1 and 8191, got %d", c.IgnoreAbove)
	}
	if _, err := parseGiveUp(c.GiveUp); err != nil {
		add("INDEXER_GIVE_UP", "%v", err)
	}
	if c.ParkMaxBytes < c.FlushBytes {
		add("INDEXER_PARK_MAX_BYTES", "must be at least SLUICE_INDEXER_FLUSH_BYTES (%d), got %d", c.FlushBytes, c.ParkMaxBytes)
	}
	if c.RetentionDays < 0 {
		add("INDEXER_RETENTION_DAYS", "must not be negative, got %d", c.RetentionDays)
	}
	retentionOverrides, err := ParseRetentionOverrides(c.RetentionOverrides)
	if err != nil {
		add("INDEXER_RETENTION_OVERRIDES", "%v", err)
	}
	p.Merge(c.validateLayout(retentionOverrides))
	if c.WindowPast < 0 {
		add("INDEXER_WINDOW_PAST", "must not be negative")
	}
	if c.WindowAhead < 0 {
		add("INDEXER_WINDOW_AHEAD", "must not be negative")
	}
	p.Positive(map[string]time.Duration{
		"INDEXER_FLUSH_INTERVAL":     c.FlushInterval,
		"INDEXER_RETRY_MAX":          c.RetryMax,
		"INDEXER_COMMIT_INTERVAL":    c.CommitInterval,
		"INDEXER_RESCAN_INTERVAL":    c.RescanInterval,
		"INDEXER_REVOKE_TIMEOUT":     c.RevokeTimeout,
		"INDEXER_SHUTDOWN_TIMEOUT":   c.ShutdownTimeout,
		"INDEXER_RETENTION_INTERVAL": c.RetentionInterval,
	})
	return p.Err()
}

// ParseRetentionOverrides reads tenant=days rules.
func ParseRetentionOverrides(rules []string) (map[string]int, error) {
	out := make(map[string]int, len(rules))
	for _, r := range rules {
		tenant, days, ok := strings.Cut(strings.TrimSpace(r), "=")
		if !ok {
			return nil, fmt.Errorf("%q is not tenant=days", r)
		}
		if err := kafka.ValidateTenant(tenant); err != nil {
			return nil, err
		}
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%q: days must be a whole number, 0 or more", r)
		}
		if _, dup := out[tenant]; dup {
			return nil, fmt.Errorf("tenant %q appears twice", tenant)
		}
		out[tenant] = n
	}
	return out, nil
}

// giveUpDefaults are how long documents of each retried failure class are
// retried before they are dead-lettered (0: forever). Throttling is never
// given up: it says the cluster is busy, not that the document or its
// index cannot be written. A closed index is usually an operator's
// maintenance and is waited on longer.
var giveUpDefaults = map[string]time.Duration{
	classBlocked:     30 * time.Minute,
	classForbidden:   30 * time.Minute,
	classMissing:     30 * time.Minute,
	classClosed:      2 * time.Hour,
	classIndexConfig: 30 * time.Minute,
	classServerError: 30 * time.Minute,
	classOther:       30 * time.Minute,
	classThrottled:   0,
}

// parseGiveUp reads class=duration rules over giveUpDefaults.
func parseGiveUp(rules []string) (map[string]time.Duration, error) {
	out := maps.Clone(giveUpDefaults)
	for _, r := range rules {
		class, d, ok := strings.Cut(strings.TrimSpace(r), "=")
		if !ok {
			return nil, fmt.Errorf("%q is not class=duration", r)
		}
		if _, known := giveUpDefaults[class]; !known {
			return nil, fmt.Errorf("%q: unknown class %q (known: %s)", r, class, strings.Join(slices.Sorted(maps.Keys(giveUpDefaults)), ", "))
		}
		v, err := time.ParseDuration(d)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("%q: want a duration such as 30m, 0 for never", r)
		}
		out[class] = v
	}
	return out, nil
}

func (c *Config) id() string {
	if c.ID != "" {
		return c.ID
	}
	if h, err := os.Hostname(); err == nil {
		return h
	}
	return "indexer"
}
