package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.yaml.in/yaml/v3"

	"github.com/sluicelogs/sluice/internal/kafka"
)

// The config topic, <prefix>.config (kafka.Topics.Config), is a compacted
// topic holding two kinds of records:
//
//   - pipelines: key = tenant id, value = the pipeline YAML document exactly
//     as applied; a tombstone (nil value) deletes the tenant's pipeline, which
//     puts the tenant back on pass-through;
//   - router status: key = status/<tenant>/<router-id>, value = the JSON
//     form of a RouterStatus. Tenant ids never contain '/', so the two kinds
//     cannot collide.
//
// Compaction keeps the latest record of each key, so reading the topic from
// the start to its end gives the current pipelines and the latest status of
// every router for every tenant. The topic has one partition: every reader
// sees every change in the order it was written.

// StatusKeyPrefix starts the key of every router status record.
const StatusKeyPrefix = "status/"

// ErrVersionNotIncreasing is returned (wrapped) by ApplyPipeline when the
// document's version is not greater than the stored one.
var ErrVersionNotIncreasing = errors.New("pipeline version must increase")

// ErrNoPipeline is returned (wrapped) by DeletePipeline when no pipeline is
// stored for the tenant.
var ErrNoPipeline = errors.New("no pipeline stored")

// ErrConfigTopicNotCompacted is returned (wrapped) by EnsureConfigTopic when
// the topic exists with a cleanup policy other than compact: retention would
// eventually delete pipelines, so it is reported rather than used.
var ErrConfigTopicNotCompacted = errors.New("config topic is not compacted")

// RouterStatus is what one router reports about one tenant: the pipeline
// version it has seen in the config topic, the version it applies, and its
// last error. Routers publish it with PublishStatus when any of these
// change; `sluice pipeline get` shows it.
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
	// Since is when this status began (the last change of Stored, Applied
	// or Error).
	Since time.Time `json:"since"`
	// Paused says why the tenant's records are held back ("" when they
	// are not), and PausedUntil when they are resumed (zero: when the
	// work holding them is done).
	Paused      string    `json:"paused,omitempty"`
	PausedUntil time.Time `json:"paused_until,omitzero"`
}

// StatusKey returns the config topic key of a router's status for tenant.
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

// StoredPipeline is a pipeline document as found in the config topic.
type StoredPipeline struct {
	// Tenant is the record key.
	Tenant string
	// Source is the YAML document as applied.
	Source []byte
	// Version is the document's version. When Err is set it is read
	// leniently from the document's top-level version key, 0 if even that
	// fails.
	Version int64
	// Err is set when the stored document no longer parses (for example
	// after an upgrade that tightened validation) or names another tenant
	// than its key. Routers treat such a version as failing to load.
	Err error
	// Offset and Timestamp locate the record in the config topic.
	Offset    int64
	Timestamp time.Time
}

// ConfigSnapshot is the content of the config topic at one moment.
type ConfigSnapshot struct {
	// Pipelines holds the current pipeline of each tenant that has one.
	Pipelines map[string]*StoredPipeline
	// Statuses holds, by tenant, the latest status of every router that
	// reported one, sorted by router id. A tenant may have statuses without
	// a pipeline (it was deleted, or a router reports an error about its
	// pass-through).
	Statuses map[string][]RouterStatus
}

// Tenants returns every tenant with a pipeline or a status, sorted.
func (s *ConfigSnapshot) Tenants() []string {
	set := make(map[string]struct{}, len(s.Pipelines)+len(s.Statuses))
	for t := range s.Pipelines {
		set[t] = struct{}{}
	}
	for t := range s.Statuses {
		set[t] = struct{}{}
	}
	return slices.Sorted(maps.Keys(set))
}

// EnsureConfigTopic creates topic as the config topic if it does not exist:
// one partition (so that every reader sees changes in write order),
// cleanup.policy=compact, and the broker's default replication factor. It is
// idempotent. An existing topic is checked for cleanup.policy=compact and
// reported with ErrConfigTopicNotCompacted otherwise; its partition count is
// not checked (readers handle any number).
func EnsureConfigTopic(ctx context.Context, adm *kadm.Client, topic string) error {
	compact := "compact"
	resp, err := adm.CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": &compact}, topic)
	if err == nil {
		err = resp.Err
	}
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, kerr.TopicAlreadyExists):
		return fmt.Errorf("create config topic %s: %w", topic, err)
	}
	cfgs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return fmt.Errorf("describe config topic %s: %w", topic, err)
	}
	rc, err := cfgs.On(topic, nil)
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		return fmt.Errorf("describe config topic %s: %w", topic, err)
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

// ApplyPipeline validates src with Load (decoding, compiling and running the
// document's own tests), checks that its version is greater than the stored
// one for its tenant, and writes it to topic. It returns the loaded pipeline.
// Nothing is written when any check fails; errors from Load are returned as
// they are (line-numbered SpecErrors, joined).
//
// The version check reads the topic to its end first; it also holds
// against a stored document that no longer parses (see
// StoredPipeline.Version), and delete lifts it. Two applies racing for
// one tenant can both pass it; the one written last wins in the topic. The
// check guards against re-applying an old document, not against concurrent
// operators.
//
// cl must not be transactional nor a group consumer, and must not be
// consuming topic already (see ReadConfig).
func ApplyPipeline(ctx context.Context, cl *kgo.Client, topic string, src []byte) (*Pipeline, error) {
	p, err := Load(src)
	if err != nil {
		return nil, err
	}
	if err := kafka.ValidateTenant(p.Tenant); err != nil {
		return nil, err
	}
	snap, err := ReadConfig(ctx, cl, topic)
	if err != nil {
		return nil, err
	}
	if cur, ok := snap.Pipelines[p.Tenant]; ok && p.Version <= cur.Version {
		return nil, fmt.Errorf("%w: tenant %s: version %d is not greater than the stored version %d",
			ErrVersionNotIncreasing, p.Tenant, p.Version, cur.Version)
	}
	rec := &kgo.Record{Topic: topic, Key: []byte(p.Tenant), Value: src}
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return nil, fmt.Errorf("write pipeline of tenant %s to %s: %w", p.Tenant, topic, err)
	}
	return p, nil
}

// DeletePipeline writes a tombstone for tenant's pipeline: routers put the
// tenant back on pass-through. It returns ErrNoPipeline (wrapped) when no
// pipeline is stored, so that a mistyped tenant id is noticed.
//
// Router status records of the tenant are left alone: they belong to the
// routers, which are expected to publish Stored 0 and Applied 0 once they
// have seen the deletion, so that `sluice pipeline get` keeps showing what
// each router does. A status of a router that is gone stays until a
// tombstone for its key is written (ReadConfig honours status tombstones).
func DeletePipeline(ctx context.Context, cl *kgo.Client, topic, tenant string) error {
	if err := kafka.ValidateTenant(tenant); err != nil {
		return err
	}
	snap, err := ReadConfig(ctx, cl, topic)
	if err != nil {
		return err
	}
	if _, ok := snap.Pipelines[tenant]; !ok {
		return fmt.Errorf("delete pipeline of tenant %s: %w", tenant, ErrNoPipeline)
	}
	rec := &kgo.Record{Topic: topic, Key: []byte(tenant)}
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return fmt.Errorf("delete pipeline of tenant %s from %s: %w", tenant, topic, err)
	}
	return nil
}

// PublishStatus writes st to topic under StatusKey(st.Tenant, st.Router).
// It blocks until the write is acknowledged or ctx ends. cl must not be
// transactional: status is not part of any consume-transform-produce
// transaction.
func PublishStatus(ctx context.Context, cl *kgo.Client, topic string, st RouterStatus) error {
	if err := kafka.ValidateTenant(st.Tenant); err != nil {
		return fmt.Errorf("publish status: %w", err)
	}
	if st.Router == "" || strings.Contains(st.Router, "/") {
		return fmt.Errorf("publish status: invalid router id %q", st.Router)
	}
	v, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("publish status: %w", err)
	}
	rec := &kgo.Record{Topic: topic, Key: []byte(StatusKey(st.Tenant, st.Router)), Value: v}
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return fmt.Errorf("publish status of tenant %s to %s: %w", st.Tenant, topic, err)
	}
	return nil
}

// ReadConfig reads topic from its start to the end offsets listed when it
// is called and returns its content. A missing topic reads as empty. Each
// stored document is decoded with Parse (its tests are not run); a document
// that no longer parses is returned with its error, not dropped. A status
// value that is not a RouterStatus is returned with the decoding problem in
// Error.
//
// ReadConfig consumes through cl directly (no group) and stops consuming
// topic before it returns, so cl must not be a group consumer nor consuming
// topic otherwise, and ReadConfig must not run concurrently with itself on
// one client. It blocks until the end is reached or ctx ends.
func ReadConfig(ctx context.Context, cl *kgo.Client, topic string) (*ConfigSnapshot, error) {
	snap := &ConfigSnapshot{
		Pipelines: make(map[string]*StoredPipeline),
		Statuses:  make(map[string][]RouterStatus),
	}
	statuses := make(map[string]map[string]RouterStatus)
	err := readToEnd(ctx, cl, topic, func(r *kgo.Record) {
		key := string(r.Key)
		if tenant, router, ok := parseStatusKey(key); ok {
			if r.Value == nil {
				delete(statuses[tenant], router)
				return
			}
			var st RouterStatus
			if err := json.Unmarshal(r.Value, &st); err != nil {
				st = RouterStatus{Error: fmt.Sprintf("undecodable status record at offset %d: %v", r.Offset, err), Since: r.Timestamp}
			}
			st.Tenant, st.Router = tenant, router // the key is authoritative
			if statuses[tenant] == nil {
				statuses[tenant] = make(map[string]RouterStatus)
			}
			statuses[tenant][router] = st
			return
		}
		if key == "" || strings.HasPrefix(key, StatusKeyPrefix) {
			return // not ours to interpret
		}
		if r.Value == nil {
			delete(snap.Pipelines, key)
			return
		}
		sp := &StoredPipeline{Tenant: key, Source: r.Value, Offset: r.Offset, Timestamp: r.Timestamp}
		sp.Version, sp.Err = storedVersion(key, r.Value)
		snap.Pipelines[key] = sp
	})
	if err != nil {
		return nil, err
	}
	for tenant, byRouter := range statuses {
		if len(byRouter) == 0 {
			continue
		}
		for _, router := range slices.Sorted(maps.Keys(byRouter)) {
			snap.Statuses[tenant] = append(snap.Statuses[tenant], byRouter[router])
		}
	}
	return snap, nil
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
		return spec.Version, fmt.Errorf("%w: document of tenant %q stored under key %q", ErrInvalidSpec, spec.Tenant, tenant)
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

// endOffsets lists, for each partition of topic that holds records, the
// offset of its last record. A missing topic has none.
func endOffsets(ctx context.Context, cl *kgo.Client, topic string) (map[int32]int64, error) {
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %s: %w", topic, err)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list start offsets of %s: %w", topic, err)
	}
	last := make(map[int32]int64)
	ends.Each(func(o kadm.ListedOffset) {
		s, ok := starts.Lookup(o.Topic, o.Partition)
		if ok && o.Offset > s.Offset {
			// The last record of a partition is never compacted away, and
			// config records are never transactional, so offset end-1
			// holds a record that a consumer will see.
			last[o.Partition] = o.Offset - 1
		}
	})
	return last, nil
}

// readToEnd calls fn for every record of topic from the start up to the end
// offsets listed when it is called, in offset order within a partition. It
// consumes through cl and purges topic from cl's consumer on return.
func readToEnd(ctx context.Context, cl *kgo.Client, topic string, fn func(*kgo.Record)) error {
	if g, _ := cl.OptValue(kgo.ConsumerGroup).(string); g != "" {
		return fmt.Errorf("read %s: client is a group consumer (%s)", topic, g)
	}
	last, err := endOffsets(ctx, cl, topic)
	if err != nil || len(last) == 0 {
		return err
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

// FollowConfig follows the config topic for a router. It consumes topic from
// the start with a client of its own built from opts (no consumer group:
// every router reads every partition), and calls, from the calling
// goroutine:
//
//   - onChange(tenant, src) for every pipeline record, in topic order, with
//     src nil for a deletion. src is the stored value as is: FollowConfig
//     does not parse it, and passes garbage through, so that the router
//     reports it. Status records and records with an empty key are skipped.
//     onChange owns src.
//   - onCaughtUp() once, after every record up to the end offsets listed at
//     start has been passed to onChange (at once for an empty or missing
//     topic; a topic created later is picked up).
//
// It blocks until ctx ends and then returns nil. It returns an error only
// when the client cannot be created or the end offsets cannot be listed at
// start. The callbacks must not block for long: changes queue up behind
// them.
func FollowConfig(ctx context.Context, opts []kgo.Opt, topic string, onChange func(tenant string, src []byte), onCaughtUp func()) error {
	opts = append(slices.Clip(opts),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("follow %s: %w", topic, err)
	}
	defer cl.Close()

	last, err := endOffsets(ctx, cl, topic)
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return fmt.Errorf("follow %s: %w", topic, err)
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
			if end, ok := last[r.Partition]; ok && r.Offset >= end {
				delete(last, r.Partition)
			}
			key := string(r.Key)
			if key == "" || strings.HasPrefix(key, StatusKeyPrefix) {
				return
			}
			onChange(key, r.Value)
		})
		checkCaughtUp()
	}
}
