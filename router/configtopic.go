package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.yaml.in/yaml/v3"

	"github.com/sluicelogs/sluice/internal/kafka"
)

// Topics of the stage (see the package documentation, "The stage"):
//
//   - <prefix>.config.<tenant> (kafka.Topics.TenantConfig): the tenant's
//     pipeline, key PipelineKey, value the YAML document exactly as applied.
//     An empty value (or a tombstone) deletes the pipeline; sluice pipeline
//     delete writes an empty value, which compaction keeps, so that the
//     deletion outlives delete.retention.ms. Records under other keys are
//     ignored. Only the tenant (and administrators) can write it; routers
//     read it. The tenant is the topic's, never the document's.
//   - <prefix>.config (kafka.Topics.Config): the legacy topic, key =
//     tenant. Routers still read it, for each tenant until the tenant's own
//     config topic holds a pipeline record; nothing writes it any more.
//   - <prefix>.status (kafka.Topics.Status): written and read by routers
//     only, read by operators. Keys status/<tenant>/<router> hold one
//     router's RouterStatus of a tenant; good/<tenant> the tenant's last
//     good pipeline (GoodPipeline); retired/<tenant> the versions routers
//     took out of service (Retired).
//   - <prefix>.status.<tenant> (kafka.Topics.TenantStatus): the routers'
//     status records of that tenant (keys status/<tenant>/<router>), for
//     the tenant to read; only routers write it.
//
// Compaction keeps the latest record of each key, so reading a topic from
// the start to its end gives the current state. Each has one partition:
// every reader sees every change in the order it was written.

// PipelineKey is the key of the pipeline record in a tenant's config topic.
const PipelineKey = "pipeline"

// Key prefixes of the status topics.
const (
	StatusKeyPrefix  = "status/"
	GoodKeyPrefix    = "good/"
	RetiredKeyPrefix = "retired/"
)

// ErrVersionNotIncreasing is returned (wrapped) by ApplyPipeline when the
// document's version is not greater than the stored one.
var ErrVersionNotIncreasing = errors.New("pipeline version must increase")

// ErrNoPipeline is returned (wrapped) by DeletePipeline when no pipeline is
// stored for the tenant.
var ErrNoPipeline = errors.New("no pipeline stored")

// ErrNoConfigTopic is returned (wrapped) by ApplyPipeline and
// DeletePipeline when the tenant's config topic does not exist: the tenant
// was not made with sluice tenant create.
var ErrNoConfigTopic = errors.New("the tenant's config topic does not exist")

// ErrConfigTopicNotCompacted is returned (wrapped) by EnsureCompactedTopic
// when the topic exists with a cleanup policy other than compact: retention
// would eventually delete its records, so it is reported rather than used.
var ErrConfigTopicNotCompacted = errors.New("topic is not compacted")

// RouterStatus is what one router reports about one tenant: the pipeline
// version it has seen in the config topic, the version it applies, its
// last error and whether the tenant is paused. `sluice pipeline get` shows
// it.
type RouterStatus struct {
	// Router identifies the router instance (for example its pod name).
	Router string `json:"router"`
	// Tenant is the tenant id.
	Tenant string `json:"tenant"`
	// Stored is the version seen in the config topic, 0 when none (or
	// deleted).
	Stored int64 `json:"stored"`
	// Applied is the version in force, 0 for pass-through.
	Applied int64 `json:"applied"`
	// Error is the last load or run-time error of the tenant's pipeline, ""
	// if none.
	Error string `json:"error,omitempty"`
	// Paused is why the tenant's records are held back (for example its
	// output topic is missing, or its processing is finished in the
	// background), "" when they are not; PausedUntil is when the router
	// tries again (zero: when the work holding them is done).
	Paused      string    `json:"paused,omitempty"`
	PausedUntil time.Time `json:"paused_until,omitzero"`
	// Since is when this status began (the last change of any of the
	// above).
	Since time.Time `json:"since"`
}

// GoodPipeline is the value of good/<tenant> in the status topic: the last
// pipeline document of the tenant that loaded and was not retired. A router
// that cannot load the tenant's newest stored document at start uses it
// instead of pass-through.
type GoodPipeline struct {
	Tenant  string `json:"tenant"`
	Version int64  `json:"version"`
	Source  string `json:"source"`
	// Router wrote it, At.
	Router string    `json:"router"`
	At     time.Time `json:"at"`
}

// RetiredVersion is one pipeline version taken out of service.
type RetiredVersion struct {
	Version int64     `json:"version"`
	Reason  string    `json:"reason"`
	Router  string    `json:"router"`
	At      time.Time `json:"at"`
}

// Retired is the value of retired/<tenant> in the status topic: the
// tenant's versions taken out of service, at most maxRetired, oldest
// first. Every router following the status topic stops applying them.
type Retired struct {
	Tenant   string           `json:"tenant"`
	Versions []RetiredVersion `json:"versions"`
}

// maxRetired bounds Retired.Versions; versions only increase, so the
// oldest are the least likely to be applied again.
const maxRetired = 16

// StatusKey returns the status topics' key of a router's status for tenant.
func StatusKey(tenant, router string) string {
	return StatusKeyPrefix + tenant + "/" + router
}

// parseStatusKey splits a status key into tenant and router id; ok is false
// for any other key.
func parseStatusKey(key string) (tenant, router string, ok bool) {
	rest, ok := strings.CutPrefix(key, StatusKeyPrefix)
	if !ok {
		return "", "", false
	}
	tenant, router, ok = strings.Cut(rest, "/")
	return tenant, router, ok && tenant != "" && router != ""
}

// StoredPipeline is a pipeline document as found in a config topic.
type StoredPipeline struct {
	// Tenant is the tenant of the topic (the key of the legacy topic).
	Tenant string
	// Source is the YAML document as applied.
	Source []byte
	// Version is the document's version. When Err is set it is read
	// leniently from the document's top-level version key, 0 if even that
	// fails.
	Version int64
	// Err is set when the stored document no longer parses (for example
	// after an upgrade that tightened validation) or names another tenant
	// than its topic's. Routers treat such a version as failing to load.
	Err error
	// Topic, Offset and Timestamp locate the record.
	Topic     string
	Offset    int64
	Timestamp time.Time
}

// ConfigSnapshot is the content of the legacy config topic at one moment.
type ConfigSnapshot struct {
	// Pipelines holds the current pipeline of each tenant that has one.
	Pipelines map[string]*StoredPipeline
}

// StatusSnapshot is the content of a status topic at one moment.
type StatusSnapshot struct {
	// Statuses holds, by tenant, the latest status of every router that
	// reported one, sorted by router id.
	Statuses map[string][]RouterStatus
	// Good and Retired hold the good/ and retired/ records by tenant (only
	// in <prefix>.status).
	Good    map[string]*GoodPipeline
	Retired map[string]*Retired
}

// Tenants returns every tenant with a status, sorted.
func (s *StatusSnapshot) Tenants() []string {
	return slices.Sorted(maps.Keys(s.Statuses))
}

// EnsureCompactedTopic makes sure topic exists and is compacted. A missing
// topic is created with one partition (so that every reader sees changes in
// write order), cleanup.policy=compact and the broker's default replication
// factor. An existing topic is checked for cleanup.policy=compact and
// reported with ErrConfigTopicNotCompacted otherwise; its partition count
// is not checked (readers handle any number). The configuration is
// described before anything is created, so that a principal allowed to
// describe but not to create (a router whose topics are made by an
// operator) can use it.
func EnsureCompactedTopic(ctx context.Context, adm *kadm.Client, topic string) error {
	err := checkCompacted(ctx, adm, topic)
	if !errors.Is(err, kerr.UnknownTopicOrPartition) {
		return err
	}
	resp, err := adm.CreateTopic(ctx, 1, -1, kafka.CompactedConfigs(), topic)
	if err == nil {
		err = resp.Err
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, kerr.TopicAlreadyExists):
		return checkCompacted(ctx, adm, topic)
	default:
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
}

func checkCompacted(ctx context.Context, adm *kadm.Client, topic string) error {
	cfgs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return fmt.Errorf("describe topic %s: %w", topic, err)
	}
	rc, err := cfgs.On(topic, nil)
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		return fmt.Errorf("describe topic %s: %w", topic, err)
	}
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" {
			if v := c.MaybeValue(); !strings.Contains(v, "compact") {
				return fmt.Errorf("%w: %s has cleanup.policy=%s", ErrConfigTopicNotCompacted, topic, v)
			}
			return nil
		}
	}
	return fmt.Errorf("%w: %s has no cleanup.policy", ErrConfigTopicNotCompacted, topic)
}

// topicExists reports whether topic exists, from a metadata request. A
// topic the client may not describe is reported as the authorization error.
func topicExists(ctx context.Context, cl *kgo.Client, topic string) (bool, error) {
	details, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil {
		return false, fmt.Errorf("describe topic %s: %w", topic, err)
	}
	d, ok := details[topic]
	switch {
	case !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition):
		return false, nil
	case d.Err != nil:
		return false, fmt.Errorf("describe topic %s: %w", topic, d.Err)
	}
	return true, nil
}

// ApplyPipeline validates src with Load (decoding, compiling and running the
// document's own tests), checks that its version is greater than the one
// stored in the tenant's config topic, and writes it there. The tenant's
// config topic is the one of the tenant the document names: with a
// tenant's credentials, a document naming another tenant is refused by
// Kafka (TOPIC_AUTHORIZATION_FAILED, reported as such), and routers would
// ignore it in any other topic. It returns the loaded pipeline. Nothing is
// written when any check fails; errors from Load are returned as they are
// (line-numbered SpecErrors, joined). A missing config topic is reported
// with ErrNoConfigTopic: sluice tenant create makes it.
//
// The version check reads the topic to its end first; it also holds
// against a stored document that no longer parses (see
// StoredPipeline.Version), and delete lifts it. Two applies racing for
// one tenant can both pass it; the one written last wins. The check guards
// against re-applying an old document, not against concurrent operators.
//
// cl must not be transactional nor a group consumer (see ReadPipeline).
func ApplyPipeline(ctx context.Context, cl *kgo.Client, topics kafka.Topics, src []byte) (*Pipeline, error) {
	p, err := Load(src)
	if err != nil {
		return nil, err
	}
	if err := kafka.ValidateTenant(p.Tenant); err != nil {
		return nil, err
	}
	cur, err := ReadPipeline(ctx, cl, topics, p.Tenant)
	if err != nil {
		return nil, err
	}
	if cur != nil && p.Version <= cur.Version {
		return nil, fmt.Errorf("%w: tenant %s: version %d is not greater than the stored version %d",
			ErrVersionNotIncreasing, p.Tenant, p.Version, cur.Version)
	}
	topic := topics.TenantConfig(p.Tenant)
	rec := &kgo.Record{Topic: topic, Key: []byte(PipelineKey), Value: src}
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return nil, fmt.Errorf("write pipeline of tenant %s to %s: %w", p.Tenant, topic, err)
	}
	return p, nil
}

// DeletePipeline deletes tenant's pipeline: routers put the tenant back on
// pass-through. It writes an empty value (not a tombstone, which
// compaction would eventually remove, bringing back a pipeline of the
// legacy topic). It returns ErrNoPipeline (wrapped) when no pipeline is
// stored, so that a mistyped tenant id is noticed.
//
// Router status records are left alone: they belong to the routers, which
// publish Stored 0 and Applied 0 once they have seen the deletion.
func DeletePipeline(ctx context.Context, cl *kgo.Client, topics kafka.Topics, tenant string) error {
	if err := kafka.ValidateTenant(tenant); err != nil {
		return err
	}
	cur, err := ReadPipeline(ctx, cl, topics, tenant)
	if err != nil {
		return err
	}
	if cur == nil {
		return fmt.Errorf("delete pipeline of tenant %s: %w", tenant, ErrNoPipeline)
	}
	topic := topics.TenantConfig(tenant)
	rec := &kgo.Record{Topic: topic, Key: []byte(PipelineKey), Value: []byte{}}
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return fmt.Errorf("delete pipeline of tenant %s from %s: %w", tenant, topic, err)
	}
	return nil
}

// ReadPipeline reads the tenant's config topic to its end and returns the
// pipeline stored there, nil when none is (or it was deleted). A missing
// topic is ErrNoConfigTopic. A stored document is decoded with Parse (its
// tests are not run); one that no longer parses, or names another tenant,
// is returned with its error.
//
// ReadPipeline consumes through cl directly (no group) and stops consuming
// the topic before it returns, so cl must not be a group consumer nor
// consuming the topic otherwise, and ReadPipeline must not run
// concurrently with itself on one client.
func ReadPipeline(ctx context.Context, cl *kgo.Client, topics kafka.Topics, tenant string) (*StoredPipeline, error) {
	topic := topics.TenantConfig(tenant)
	ok, err := topicExists(ctx, cl, topic)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("tenant %s: %w (%s); make it with: sluice tenant create %s", tenant, ErrNoConfigTopic, topic, tenant)
	}
	var sp *StoredPipeline
	err = readToEnd(ctx, cl, topic, func(r *kgo.Record) {
		if string(r.Key) != PipelineKey {
			return
		}
		if len(r.Value) == 0 {
			sp = nil
			return
		}
		sp = &StoredPipeline{Tenant: tenant, Source: r.Value, Topic: topic, Offset: r.Offset, Timestamp: r.Timestamp}
		sp.Version, sp.Err = storedVersion(tenant, r.Value)
	})
	return sp, err
}

// ReadConfig reads the legacy config topic (key = tenant) from its start to
// the end offsets listed when it is called and returns its pipelines. A
// missing topic reads as empty. See ReadPipeline for what is decoded and
// the constraints on cl.
func ReadConfig(ctx context.Context, cl *kgo.Client, topic string) (*ConfigSnapshot, error) {
	snap := &ConfigSnapshot{Pipelines: make(map[string]*StoredPipeline)}
	err := readToEnd(ctx, cl, topic, func(r *kgo.Record) {
		key := string(r.Key)
		if kafka.ValidateTenant(key) != nil {
			return // status records of old routers, or not ours to interpret
		}
		if len(r.Value) == 0 {
			delete(snap.Pipelines, key)
			return
		}
		sp := &StoredPipeline{Tenant: key, Source: r.Value, Topic: topic, Offset: r.Offset, Timestamp: r.Timestamp}
		sp.Version, sp.Err = storedVersion(key, r.Value)
		snap.Pipelines[key] = sp
	})
	if err != nil {
		return nil, err
	}
	return snap, nil
}

// ReadStatus reads a status topic (<prefix>.status, or a tenant's
// <prefix>.status.<tenant>) to its end and returns its content. A missing
// topic reads as empty. A status value that is not a RouterStatus is
// returned with the decoding problem in Error. When tenant is not "", only
// records of that tenant are kept (a tenant's status topic holds no other,
// and any other would be ignored). See ReadPipeline for the constraints on
// cl.
func ReadStatus(ctx context.Context, cl *kgo.Client, topic, tenant string) (*StatusSnapshot, error) {
	snap := &StatusSnapshot{
		Statuses: make(map[string][]RouterStatus),
		Good:     make(map[string]*GoodPipeline),
		Retired:  make(map[string]*Retired),
	}
	statuses := make(map[string]map[string]RouterStatus)
	err := readToEnd(ctx, cl, topic, func(r *kgo.Record) {
		key := string(r.Key)
		if t, router, ok := parseStatusKey(key); ok {
			if tenant != "" && t != tenant {
				return
			}
			if r.Value == nil {
				delete(statuses[t], router)
				return
			}
			var st RouterStatus
			if err := json.Unmarshal(r.Value, &st); err != nil {
				st = RouterStatus{Error: fmt.Sprintf("undecodable status record at offset %d: %v", r.Offset, err), Since: r.Timestamp}
			}
			st.Tenant, st.Router = t, router // the key is authoritative
			if statuses[t] == nil {
				statuses[t] = make(map[string]RouterStatus)
			}
			statuses[t][router] = st
			return
		}
		if t, ok := strings.CutPrefix(key, GoodKeyPrefix); ok && (tenant == "" || t == tenant) {
			if g := decodeGood(t, r.Value); g != nil {
				snap.Good[t] = g
			} else {
				delete(snap.Good, t)
			}
		}
		if t, ok := strings.CutPrefix(key, RetiredKeyPrefix); ok && (tenant == "" || t == tenant) {
			if rv := decodeRetired(t, r.Value); rv != nil {
				snap.Retired[t] = rv
			} else {
				delete(snap.Retired, t)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	for t, byRouter := range statuses {
		for _, router := range slices.Sorted(maps.Keys(byRouter)) {
			snap.Statuses[t] = append(snap.Statuses[t], byRouter[router])
		}
	}
	return snap, nil
}

// decodeGood decodes a good/<tenant> value; nil for a tombstone or a value
// that is not a GoodPipeline of tenant.
func decodeGood(tenant string, v []byte) *GoodPipeline {
	var g GoodPipeline
	if len(v) == 0 || json.Unmarshal(v, &g) != nil || g.Tenant != tenant || g.Version < 1 {
		return nil
	}
	return &g
}

// decodeRetired decodes a retired/<tenant> value; nil for a tombstone or a
// value that is not a Retired of tenant.
func decodeRetired(tenant string, v []byte) *Retired {
	var rv Retired
	if len(v) == 0 || json.Unmarshal(v, &rv) != nil || rv.Tenant != tenant {
		return nil
	}
	return &rv
}

// storedVersion parses a stored document of tenant and returns its version.
// When the document does not parse, the version is read leniently (just the
// top-level version key; 0 if that fails too), so that the version check of
// ApplyPipeline still holds and `sluice pipeline get` can show it.
func storedVersion(tenant string, src []byte) (int64, error) {
	spec, err := Parse(src)
	if err != nil {
		return lenientVersion(src), err
	}
	if spec.Tenant != tenant {
		return spec.Version, fmt.Errorf("%w: the document names tenant %q but is stored for tenant %q; it is ignored", ErrInvalidSpec, spec.Tenant, tenant)
	}
	return spec.Version, nil
}

// lenientVersion returns the top-level version of a YAML document that may
// be otherwise invalid, or 0.
func lenientVersion(src []byte) (version int64) {
	if len(src) > MaxSpecBytes {
		return 0
	}
	defer func() {
		if recover() != nil { // bad input never crashes
			version = 0
		}
	}()
	var doc struct {
		Version int64 `yaml:"version"`
	}
	if yaml.Unmarshal(src, &doc) != nil {
		return 0
	}
	return doc.Version
}

// endOffsets lists, for each partition of topics that holds records, the
// offset of its last record. Missing topics have none.
func endOffsets(ctx context.Context, cl *kgo.Client, topics ...string) (map[string]map[int32]int64, error) {
	last := make(map[string]map[int32]int64)
	if len(topics) == 0 {
		return last, nil
	}
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %s: %w", strings.Join(topics, ", "), err)
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("list start offsets of %s: %w", strings.Join(topics, ", "), err)
	}
	var errs []error
	ends.Each(func(o kadm.ListedOffset) {
		if errors.Is(o.Err, kerr.UnknownTopicOrPartition) {
			return
		}
		if o.Err != nil {
			errs = append(errs, fmt.Errorf("list end offsets of %s: %w", o.Topic, o.Err))
			return
		}
		s, ok := starts.Lookup(o.Topic, o.Partition)
		if ok && s.Err != nil {
			errs = append(errs, fmt.Errorf("list start offsets of %s: %w", o.Topic, s.Err))
			return
		}
		if ok && o.Offset > s.Offset {
			// The last record of a partition is never compacted away, and
			// these records are never transactional, so offset end-1 holds
			// a record that a consumer will see.
			if last[o.Topic] == nil {
				last[o.Topic] = make(map[int32]int64)
			}
			last[o.Topic][o.Partition] = o.Offset - 1
		}
	})
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return last, nil
}

// readToEnd calls fn for every record of topic from the start up to the end
// offsets listed when it is called, in offset order within a partition. It
// consumes through cl and purges topic from cl's consumer on return.
func readToEnd(ctx context.Context, cl *kgo.Client, topic string, fn func(*kgo.Record)) error {
	if g, _ := cl.OptValue(kgo.ConsumerGroup).(string); g != "" {
		return fmt.Errorf("read %s: client is a group consumer (%s)", topic, g)
	}
	ends, err := endOffsets(ctx, cl, topic)
	if err != nil {
		return err
	}
	last := ends[topic]
	if len(last) == 0 {
		return nil
	}
	assign := make(map[int32]kgo.Offset, len(last))
	for p := range last {
		assign[p] = kgo.NewOffset().AtStart()
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: assign})
	defer cl.PurgeTopicsFromConsuming(topic)

	for len(last) > 0 {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("read %s: %w", topic, err)
		}
		if fetches.IsClientClosed() {
			return fmt.Errorf("read %s: %w", topic, kgo.ErrClientClosed)
		}
		var authErr error
		fetches.EachError(func(_ string, _ int32, err error) {
			if errors.Is(err, kerr.TopicAuthorizationFailed) {
				authErr = err
			}
		})
		if authErr != nil {
			return fmt.Errorf("read %s: %w", topic, authErr)
		}
		// Other fetch errors are retried by the client; the loop ends when
		// every partition reached its end or ctx ends.
		fetches.EachRecord(func(r *kgo.Record) {
			end, ok := last[r.Partition]
			if r.Topic != topic || !ok || r.Offset > end {
				return
			}
			fn(r)
			if r.Offset == end {
				delete(last, r.Partition)
			}
		})
	}
	return nil
}

// ConfigSource says where a ConfigEvent comes from.
type ConfigSource int

const (
	// SourceTenant: the tenant's own config topic <prefix>.config.<tenant>.
	SourceTenant ConfigSource = iota + 1
	// SourceLegacy: the legacy <prefix>.config.
	SourceLegacy
	// SourceGood: a good/<tenant> record of <prefix>.status.
	SourceGood
	// SourceRetired: a retired/<tenant> record of <prefix>.status.
	SourceRetired
)

// ConfigEvent is one change seen by FollowConfig.
type ConfigEvent struct {
	Tenant string
	Source ConfigSource
	// Src is the pipeline document of SourceTenant and SourceLegacy, as
	// stored (not parsed: garbage is passed through so that the router
	// reports it); empty for a deletion.
	Src []byte
	// Good (SourceGood) and Retired (SourceRetired) are nil when the record
	// was deleted or does not decode.
	Good    *GoodPipeline
	Retired *Retired
}

// followPatterns are the regular expressions of the topics FollowConfig
// consumes.
func followPatterns(topics kafka.Topics) []string {
	return []string{
		topics.Pattern(kafka.KindConfig),
		`^` + regexp.QuoteMeta(topics.Config()) + `$`,
		`^` + regexp.QuoteMeta(topics.Status()) + `$`,
	}
}

// FollowConfig follows, for a router, every tenant's config topic (by
// regular expression: config topics made later are picked up at the
// client's next metadata refresh, so pass kgo.MetadataMaxAge in opts), the
// legacy config topic and the good/ and retired/ records of the status
// topic. It consumes with a client of its own built from opts (no consumer
// group: every router reads everything), and calls, from the calling
// goroutine:
//
//   - onEvent for every record that matters, in topic order: the tenant is
//     the config topic's (the key's in the legacy topic); records under
//     other keys are skipped. onEvent owns the event.
//   - onCaughtUp once, after every record up to the end offsets listed at
//     start has been passed to onEvent.
//
// It blocks until ctx ends and then returns nil. It returns an error only
// when the client cannot be created or the topics or their end offsets
// cannot be listed at start. The callbacks must not block for long.
func FollowConfig(ctx context.Context, opts []kgo.Opt, topics kafka.Topics, onEvent func(ConfigEvent), onCaughtUp func()) error {
	patterns := followPatterns(topics)
	opts = append(slices.Clip(opts),
		kgo.ConsumeRegex(),
		kgo.ConsumeTopics(patterns...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	cl, err := kafka.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("follow config topics: %w", err)
	}
	defer cl.Close()

	listed, err := kadm.NewClient(cl).ListTopics(ctx)
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return fmt.Errorf("follow config topics: list topics: %w", err)
	}
	var res []*regexp.Regexp
	for _, p := range patterns {
		res = append(res, regexp.MustCompile(p))
	}
	var names []string
	for _, name := range listed.Names() {
		if slices.ContainsFunc(res, func(re *regexp.Regexp) bool { return re.MatchString(name) }) {
			names = append(names, name)
		}
	}
	last, err := endOffsets(ctx, cl, names...)
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return fmt.Errorf("follow config topics: %w", err)
	}
	caughtUp := false
	checkCaughtUp := func() {
		if !caughtUp && len(last) == 0 {
			caughtUp = true
			onCaughtUp()
		}
	}
	checkCaughtUp()
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return nil
		}
		// Fetch errors are retried by the client.
		fetches.EachRecord(func(r *kgo.Record) {
			if parts := last[r.Topic]; parts != nil {
				if end, ok := parts[r.Partition]; ok && r.Offset >= end {
					delete(parts, r.Partition)
					if len(parts) == 0 {
						delete(last, r.Topic)
					}
				}
			}
			if ev, ok := configEvent(topics, r); ok {
				onEvent(ev)
			}
		})
		checkCaughtUp()
	}
}

// configEvent interprets a record of a followed topic.
func configEvent(topics kafka.Topics, r *kgo.Record) (ConfigEvent, bool) {
	key := string(r.Key)
	switch r.Topic {
	case topics.Config():
		if kafka.ValidateTenant(key) != nil {
			return ConfigEvent{}, false // status records of old routers
		}
		return ConfigEvent{Tenant: key, Source: SourceLegacy, Src: r.Value}, true
	case topics.Status():
		if t, ok := strings.CutPrefix(key, GoodKeyPrefix); ok && kafka.ValidateTenant(t) == nil {
			return ConfigEvent{Tenant: t, Source: SourceGood, Good: decodeGood(t, r.Value)}, true
		}
		if t, ok := strings.CutPrefix(key, RetiredKeyPrefix); ok && kafka.ValidateTenant(t) == nil {
			return ConfigEvent{Tenant: t, Source: SourceRetired, Retired: decodeRetired(t, r.Value)}, true
		}
		return ConfigEvent{}, false
	}
	tenant, kind, _, ok := topics.TenantOf(r.Topic)
	if !ok || kind != kafka.KindConfig || key != PipelineKey {
		return ConfigEvent{}, false
	}
	return ConfigEvent{Tenant: tenant, Source: SourceTenant, Src: r.Value}, true
}
