package indexer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/internal/kafka"
)

// Tenants' index settings, from <prefix>.tenants (kafka.TenantSettings,
// published by sluice-controller from the Tenant resources).
//
// Every indexer follows the topic from its start, with a client of its own
// and no consumer group (every replica needs every record), and keeps the
// latest valid record of each tenant in an immutable snapshot that a
// change replaces whole (tenantSettings): a route or a retention pass
// reads one snapshot and never half a change.
//
// Precedence, setting by setting: the indexer's own per-tenant settings,
// SLUICE_INDEXER_LAYOUT_OVERRIDES and SLUICE_INDEXER_RETENTION_OVERRIDES,
// win: they are the indexer operator's word (for example what keeps a
// tenant dedicated on an Elasticsearch license without document-level
// security, whatever its record says); then the tenant's record; then the
// defaults, SLUICE_INDEXER_LAYOUT and SLUICE_INDEXER_RETENTION_DAYS. A
// record overridden so is logged once per change of the record.
//
// A record that does not decode, or whose key is not a tenant id, is
// logged, counted (tenant_settings_errors_total) and ignored: the tenant
// keeps the settings it had. A tombstone takes the tenant back to the
// defaults. Nothing about the topic stops the indexer: a missing topic (a
// cluster from before it) is logged once and looked for again at every
// metadata refresh (SLUICE_INDEXER_RESCAN_INTERVAL), read errors are
// retried.
//
// At start, consuming waits until the records up to the end offsets seen
// at start are applied, but no longer than tenantSettingsWait: a restart
// does not send a tenant's first documents to the wrong layout's indices,
// and a topic slow to answer does not hold indexing up. Retention waits
// for them without a bound (see retentionLoop): deleting by the defaults
// what a record keeps longer cannot be undone.
//
// A change of layout applies to the documents polled after it (pollLoop
// works their routes out again); those written before stay in their
// indices, and sluice search finds a tenant's documents in both layouts.
// What the layouts rely on still holds: the shared indices are deleted by
// day with SLUICE_INDEXER_RETENTION_DAYS only (no record can name them); a
// record's retentionDays applies to the tenant's dedicated indices, found
// by their names, as an override does; and tomorrow's index of a
// dedicated family is not created ahead of midnight once its tenant is in
// the shared layout (precreator).

// tenantSettingsWait bounds how long consuming waits at start for the
// tenants' settings to be read.
const tenantSettingsWait = 5 * time.Second

// tenantSnapshot is the tenants' settings as read at one moment: the
// latest valid record of each tenant that has one. It is never changed
// once published. A nil snapshot has no record.
type tenantSnapshot struct {
	records map[string]kafka.TenantSettings
	days    bool // some record keeps indices for a number of days
}

func (s *tenantSnapshot) get(tenant string) (kafka.TenantSettings, bool) {
	if s == nil {
		return kafka.TenantSettings{}, false
	}
	v, ok := s.records[tenant]
	return v, ok
}

// keepsDays reports whether some record sets a retention above 0 days:
// retention has work to do even when the indexer's settings set none.
func (s *tenantSnapshot) keepsDays() bool { return s != nil && s.days }

func (s *tenantSnapshot) len() int {
	if s == nil {
		return 0
	}
	return len(s.records)
}

// tenantSettings holds the current snapshot. A nil *tenantSettings has no
// records and is caught up.
type tenantSettings struct {
	cur  atomic.Pointer[tenantSnapshot]
	once sync.Once
	done chan struct{} // closed by markCaughtUp
}

func newTenantSettings() *tenantSettings {
	return &tenantSettings{done: make(chan struct{})}
}

func (ts *tenantSettings) load() *tenantSnapshot {
	if ts == nil {
		return nil
	}
	return ts.cur.Load()
}

var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// caughtUp is closed once the records up to the end offsets seen at
// start are applied, or it is known that there are none to read (no
// topic, no right to read it), or the reader stopped.
func (ts *tenantSettings) caughtUp() <-chan struct{} {
	if ts == nil {
		return closed
	}
	return ts.done
}

func (ts *tenantSettings) markCaughtUp() { ts.once.Do(func() { close(ts.done) }) }

// tenantFollower reads <prefix>.tenants into a tenantSettings. Its
// methods run on one goroutine.
type tenantFollower struct {
	topic              string
	settings           *tenantSettings
	env                layouts        // SLUICE_INDEXER_LAYOUT and its overrides, without the records
	retentionDays      int            // SLUICE_INDEXER_RETENTION_DAYS
	retentionOverrides map[string]int // SLUICE_INDEXER_RETENTION_OVERRIDES
	rescan, retryMax   time.Duration
	log                *slog.Logger
	warn               func(key, msg string, args ...any) // rate-limited
	errs               prometheus.Counter
	tenants            prometheus.Gauge

	caught  bool // the records up to the end offsets seen at start are applied
	missing bool // the topic did not exist at start
	found   bool // ... and has been read since
}

func (ix *Indexer) newTenantFollower() *tenantFollower {
	retentionOverrides, _ := ParseRetentionOverrides(ix.cfg.RetentionOverrides) // checked by Validate
	return &tenantFollower{
		topic:              ix.topics.Tenants(),
		settings:           ix.settings,
		env:                layoutsOf(&ix.cfg),
		retentionDays:      ix.cfg.RetentionDays,
		retentionOverrides: retentionOverrides,
		rescan:             ix.cfg.RescanInterval,
		retryMax:           ix.cfg.RetryMax,
		log:                ix.log,
		warn:               ix.logLimited,
		errs:               ix.m.settingsErrs,
		tenants:            ix.m.settingsTenants,
	}
}

// run follows the topic until ctx ends, through a client made with opts
// (the connection settings).
func (f *tenantFollower) run(ctx context.Context, opts []kgo.Opt) {
	// However it ends, nothing waits for it any more.
	defer f.settings.markCaughtUp()
	cl, err := kafka.NewClient(append(slices.Clip(opts),
		// By regular expression: a topic made later is picked up at a
		// metadata refresh, from its start, without an error meanwhile.
		kgo.ConsumeRegex(),
		kgo.ConsumeTopics("^"+regexp.QuoteMeta(f.topic)+"$"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.MetadataMaxAge(f.rescan),
		kgo.MetadataMinAge(min(f.rescan, 5*time.Second)),
	)...)
	if err != nil {
		f.log.Error("the tenant settings topic cannot be read: every tenant has the indexer's own settings", "topic", f.topic, "err", err)
		return
	}
	defer cl.Close()
	ends, ok := f.endOffsets(ctx, cl)
	if !ok {
		return
	}
	f.caughtUpIf(ends)
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return
		}
		// The client retries failed fetches; they are only reported.
		fetches.EachError(func(topic string, partition int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				f.warn("tenant-settings-fetch", "reading the tenant settings topic failed; retrying", "topic", topic, "partition", partition, "err", err)
			}
		})
		var recs []*kgo.Record
		fetches.EachRecord(func(r *kgo.Record) {
			if r.Topic != f.topic {
				return
			}
			recs = append(recs, r)
			if end, ok := ends[r.Partition]; ok && r.Offset >= end {
				delete(ends, r.Partition)
			}
		})
		if len(recs) > 0 && f.missing && !f.found {
			f.found = true
			f.log.Info("the tenant settings topic exists now; its records apply", "topic", f.topic)
		}
		f.apply(recs)
		f.caughtUpIf(ends)
	}
}

// caughtUpIf marks the settings caught up once no partition is left to
// read to its end offset seen at start.
func (f *tenantFollower) caughtUpIf(ends map[int32]int64) {
	if f.caught || len(ends) > 0 {
		return
	}
	f.caught = true
	f.settings.markCaughtUp()
	f.log.Info("tenant settings read", "topic", f.topic, "tenants", f.settings.load().len())
}

// endOffsets returns, by partition, the offset of the last record at
// start, retrying until it is known or ctx ends (ok false). A topic that
// does not exist, or that this indexer may not read, has none: it is
// logged once, and every tenant has the indexer's own settings until
// records come.
func (f *tenantFollower) endOffsets(ctx context.Context, cl *kgo.Client) (ends map[int32]int64, ok bool) {
	adm := kadm.NewClient(cl)
	bo := newBackoff(f.retryMax)
	for {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		ends, err := listLastOffsets(actx, adm, f.topic)
		cancel()
		switch {
		case err == nil:
			return ends, true
		case ctx.Err() != nil:
			return nil, false
		case errors.Is(err, kerr.UnknownTopicOrPartition):
			f.missing = true
			f.log.Info("the tenant settings topic does not exist (nothing published it yet): every tenant has the indexer's own settings until it does; it is looked for at every metadata refresh",
				"topic", f.topic, "rescan_interval", f.rescan)
			return map[int32]int64{}, true
		case errors.Is(err, kerr.TopicAuthorizationFailed):
			f.log.Warn("this indexer's Kafka user may not read the tenant settings topic: every tenant has the indexer's own settings; allow it Read and Describe on the topic",
				"topic", f.topic, "err", err)
			return map[int32]int64{}, true
		}
		f.warn("tenant-settings-offsets", "listing the offsets of the tenant settings topic failed; retrying", "topic", f.topic, "err", err)
		if !sleep(ctx, bo.NextBackOff()) {
			return nil, false
		}
	}
}

// listLastOffsets returns the offset of the last record of each non-empty
// partition of topic.
func listLastOffsets(ctx context.Context, adm *kadm.Client, topic string) (map[int32]int64, error) {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	last := map[int32]int64{}
	var errs []error
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			errs = append(errs, o.Err)
			return
		}
		start := int64(0)
		if s, ok := starts.Lookup(o.Topic, o.Partition); ok {
			if s.Err != nil {
				errs = append(errs, s.Err)
				return
			}
			start = s.Offset
		}
		// The last record of a partition is never compacted away: reading
		// up to it reads everything there was at start.
		if o.Offset > start {
			last[o.Partition] = o.Offset - 1
		}
	})
	return last, errors.Join(errs...)
}

// apply takes records of the topic in, in order, and publishes one new
// snapshot when any changed a tenant's settings.
func (f *tenantFollower) apply(recs []*kgo.Record) {
	cur := f.settings.load()
	var next map[string]kafka.TenantSettings // cur's records, copied at the first change
	get := func(tenant string) (kafka.TenantSettings, bool) {
		if next != nil {
			v, ok := next[tenant]
			return v, ok
		}
		return cur.get(tenant)
	}
	change := func() {
		if next == nil {
			next = make(map[string]kafka.TenantSettings, cur.len()+1)
			if cur != nil {
				maps.Copy(next, cur.records)
			}
		}
	}
	for _, r := range recs {
		tenant := string(r.Key)
		if err := kafka.ValidateTenant(tenant); err != nil {
			f.errs.Inc()
			f.log.Warn("a record of the tenant settings topic is ignored: its key is not a tenant id",
				"topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "err", err)
			continue
		}
		prev, had := get(tenant)
		if r.Value == nil {
			if had {
				change()
				delete(next, tenant)
				layout, days := f.effective(tenant, nil)
				f.log.Info("tenant settings deleted: the tenant has the indexer's own settings again",
					"tenant", tenant, "layout", layout.String(), "retention_days", days)
			}
			continue
		}
		var s kafka.TenantSettings
		if err := s.Decode(r.Value); err != nil {
			f.errs.Inc()
			keeps := "none (the indexer's own settings)"
			if had {
				keeps = describeSettings(prev)
			}
			f.log.Warn("a tenant's settings record is ignored: the tenant keeps its previous settings",
				"tenant", tenant, "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "keeps", keeps, "err", err)
			continue
		}
		if had && prev.Equal(s) {
			continue
		}
		change()
		next[tenant] = s
		f.logChange(tenant, s)
	}
	if next == nil {
		return
	}
	snap := &tenantSnapshot{records: next}
	for _, s := range next {
		if s.RetentionDays != nil && *s.RetentionDays > 0 {
			snap.days = true
			break
		}
	}
	f.settings.cur.Store(snap)
	f.tenants.Set(float64(len(next)))
}

// effective returns the layout and retention a tenant gets with record s
// (nil: none), by the precedence above.
func (f *tenantFollower) effective(tenant string, s *kafka.TenantSettings) (Layout, int) {
	layout, ok := f.env.overrides[tenant]
	if !ok {
		layout = f.env.def
		if s != nil && s.Layout != kafka.TenantLayoutDefault {
			layout, _ = ParseLayout(s.Layout) // checked by Decode
		}
	}
	days, ok := f.retentionOverrides[tenant]
	if !ok {
		days = f.retentionDays
		if s != nil && s.RetentionDays != nil {
			days = *s.RetentionDays
		}
	}
	return layout, days
}

// logChange logs a tenant's new record: at debug level while the topic is
// read up to where it ended at start (a restart is no change), at info
// level after; and, always, what of it does not apply, once per change.
func (f *tenantFollower) logChange(tenant string, s kafka.TenantSettings) {
	layout, days := f.effective(tenant, &s)
	level := slog.LevelDebug
	if f.caught {
		level = slog.LevelInfo
	}
	f.log.Log(context.Background(), level, "tenant settings changed", "tenant", tenant, "record", describeSettings(s),
		"layout", layout.String(), "retention_days", days)
	if v, ok := f.env.overrides[tenant]; ok && s.Layout != kafka.TenantLayoutDefault && s.Layout != v.String() {
		f.log.Info("the tenant's settings record is overridden by SLUICE_INDEXER_LAYOUT_OVERRIDES, which wins",
			"tenant", tenant, "record_layout", s.Layout, "layout", v.String())
	}
	if d, ok := f.retentionOverrides[tenant]; ok && s.RetentionDays != nil && *s.RetentionDays != d {
		f.log.Info("the tenant's settings record is overridden by SLUICE_INDEXER_RETENTION_OVERRIDES, which wins",
			"tenant", tenant, "record_retention_days", *s.RetentionDays, "retention_days", d)
	}
	if s.RetentionDays != nil && layout == LayoutShared {
		f.log.Info("the tenant is in the shared layout, whose indices are deleted by day with SLUICE_INDEXER_RETENTION_DAYS for every tenant in them: its record's retentionDays applies to its dedicated indices only",
			"tenant", tenant, "record_retention_days", *s.RetentionDays)
	}
}

// describeSettings says a record in a log line.
func describeSettings(s kafka.TenantSettings) string {
	layout, days := s.Layout, "default"
	if layout == kafka.TenantLayoutDefault {
		layout = "default"
	}
	if s.RetentionDays != nil {
		days = strconv.Itoa(*s.RetentionDays)
	}
	return fmt.Sprintf("layout=%s retentionDays=%s", layout, days)
}
