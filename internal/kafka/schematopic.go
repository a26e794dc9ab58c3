package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/schemas"
)

// The schemas topic, <prefix>.schemas.
//
// Single-object encoding names a record's writer schema by its fingerprint
// only. A reader built before that version existed (an indexer not yet
// upgraded while routers already write the next version) cannot decode it
// from the fingerprint alone, so every stage that writes records publishes
// the schema versions it embeds to this compacted topic at start
// (PublishSchemas), and readers look fingerprints they do not know up in it
// (SchemaSource, for schemas.WithSchemaSource). It is the idea of
// Confluent's Schema Registry, which keeps its schemas in the compacted
// _schemas topic, without a registry to run: records stay in single-object
// encoding and Kafka is the only dependency.
//
// Each record is one version: the key is the fingerprint as 16 lowercase
// hex digits (SchemaKey), the value the schema text, and the
// SchemaVersionHeader header its version number. Versions are never
// changed once released, so republishing writes the same key and value
// again, which compaction folds away: publishing at every start is
// harmless.

// SchemaVersionHeader is the header of a <prefix>.schemas record that holds
// the schema's version number, in decimal.
const SchemaVersionHeader = "sluice.schema.version"

// SchemaKey returns the key of a schema in <prefix>.schemas: its Rabin
// fingerprint as 16 lowercase hex digits.
func SchemaKey(fingerprint uint64) string {
	return fmt.Sprintf("%016x", fingerprint)
}

// parseSchemaKey is the inverse of SchemaKey.
func parseSchemaKey(key []byte) (uint64, bool) {
	if len(key) != 16 {
		return 0, false
	}
	fp, err := strconv.ParseUint(string(key), 16, 64)
	return fp, err == nil
}

// PublishSchemas writes every schema version this binary embeds
// (schemas.SchemaVersions) to t.Schemas(), and waits until Kafka has them:
// call it before writing any record, so that no reader meets a version
// before it can look it up. The topic is created (compacted, one
// partition) when it does not exist and cl's principal may create it;
// otherwise the error wraps ErrTopicMissing and says what to do. cl must
// not be transactional.
func PublishSchemas(ctx context.Context, cl *kgo.Client, t Topics) error {
	topic := t.Schemas()
	if err := ensureCompactedTopic(ctx, cl, topic); err != nil {
		return err
	}
	vs := schemas.SchemaVersions()
	recs := make([]*kgo.Record, len(vs))
	for i, v := range vs {
		recs[i] = &kgo.Record{
			Topic:   topic,
			Key:     []byte(SchemaKey(v.Fingerprint)),
			Value:   []byte(v.Text),
			Headers: []kgo.RecordHeader{{Key: SchemaVersionHeader, Value: []byte(strconv.Itoa(v.Version))}},
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("publish schema versions to %s: %w", topic, err)
	}
	return nil
}

// PublishSchemasInBackground runs PublishSchemas in a goroutine, each
// attempt bounded by 10 seconds, retried with a backoff (doubling from a
// second up to a minute) until it succeeds or ctx ends; failures are
// logged on log. A stage does not wait for it: a schemas topic whose
// leader does not answer, or that the stage may neither create nor write,
// must not keep it from shipping. The first attempt starts at once and
// usually ends before the stage writes its first record; a reader that
// meets a record of a version not yet published tries the topic again
// after its negative cache expires. The returned channel is closed once
// the versions are published (or ctx ends).
func PublishSchemasInBackground(ctx context.Context, cl *kgo.Client, t Topics, log *slog.Logger) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		bo := &backoff.ExponentialBackOff{InitialInterval: time.Second, RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: time.Minute}
		for {
			actx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := PublishSchemas(actx, cl, t)
			cancel()
			if err == nil || ctx.Err() != nil {
				return
			}
			wait := bo.NextBackOff()
			log.Warn("publishing the record schema versions failed; retrying (readers older than this stage cannot decode a record of a version they do not know until they are published)",
				"topic", t.Schemas(), "retry_in", wait.Round(time.Second), "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
	}()
	return done
}

// ensureCompactedTopic creates topic, compacted with one partition, when
// it does not exist: the shared topics written by whichever stage or tool
// comes first (<prefix>.schemas, <prefix>.tenants).
func ensureCompactedTopic(ctx context.Context, cl *kgo.Client, topic string) error {
	adm := kadm.NewClient(cl)
	details, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return fmt.Errorf("describe topic %s: %w", topic, err)
	}
	if d, ok := details[topic]; ok {
		switch {
		case d.Err == nil:
			return nil
		case !errors.Is(d.Err, kerr.UnknownTopicOrPartition):
			return fmt.Errorf("describe topic %s: %w", topic, d.Err)
		}
	}
	// One partition, like the other compacted topics: a reader sees every
	// change in the order it was written.
	resp, err := adm.CreateTopic(ctx, 1, -1, CompactedConfigs(), topic)
	if err == nil {
		err = resp.Err
	}
	if err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
		return nil
	}
	return fmt.Errorf("%s: %w, and it could not be created (%w): create it compacted (cleanup.policy=compact) with one partition, or let this stage's Kafka user create it",
		topic, ErrTopicMissing, err)
}

// How SchemaSource reads: a refresh gives up after schemaReadTimeout, and
// starts at most every schemaRefreshInterval, so that records naming
// fingerprints nobody published (garbage, or a writer that could not
// publish) cost Kafka a bounded rate of requests.
const (
	schemaReadTimeout     = 10 * time.Second
	schemaRefreshInterval = 200 * time.Millisecond
)

// SchemaSource looks schema fingerprints up in <prefix>.schemas. Its Lookup
// is a schemas.SchemaSource: build a decoder with
// schemas.WithSchemaSource(src.Lookup). It keeps what it has read and, for
// a fingerprint it does not have, reads what was added to the topic since
// (directly by partition, from where it stopped, without a consumer
// group) with a client made for that read and closed after it, so it holds
// no connection between lookups. The decoder caches its answers; lookups
// happen once per new version, and for fingerprints nobody published.
// Safe for concurrent use.
type SchemaSource struct {
	topic string
	opts  func() ([]kgo.Opt, error)

	sem         chan struct{} // held by the one lookup at work; guards the fields below
	known       map[uint64]string
	next        map[int32]int64 // per partition, the offset to read next
	lastRefresh time.Time       // when the last refresh started
	lastOK      bool            // whether it read to the end
}

// NewSchemaSource returns a source reading t.Schemas() through clients
// made with opts (the stage's connection options: brokers, TLS, SASL). opts
// is called at each refresh, not now, so a stage can make its source
// before it connects. It contacts nothing.
func NewSchemaSource(t Topics, opts func() ([]kgo.Opt, error)) *SchemaSource {
	return &SchemaSource{
		topic: t.Schemas(),
		opts:  opts,
		sem:   make(chan struct{}, 1),
		known: make(map[uint64]string),
		next:  make(map[int32]int64),
	}
}

// Lookup returns the schema text published under fingerprint. It answers
// from what it has read when it can; otherwise it reads the topic's new
// records (waiting for the previous refresh to be schemaRefreshInterval
// old, and for concurrent lookups), bounded by ctx and schemaReadTimeout.
// A fingerprint the topic does not hold, or a topic that does not exist,
// is an error wrapping schemas.ErrUnknownSchema; any other error means the
// topic could not be read.
func (s *SchemaSource) Lookup(ctx context.Context, fingerprint uint64) (string, error) {
	called := time.Now()
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return "", fmt.Errorf("look up schema %s: %w", SchemaKey(fingerprint), ctx.Err())
	}
	defer func() { <-s.sem }()
	if text, ok := s.known[fingerprint]; ok {
		return text, nil
	}
	// A refresh that started after this lookup was called, read to the
	// end and did not find the fingerprint has answered it already.
	if !s.lastOK || !s.lastRefresh.After(called) {
		if wait := schemaRefreshInterval - time.Since(s.lastRefresh); wait > 0 {
			timer := time.NewTimer(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				timer.Stop()
				return "", fmt.Errorf("look up schema %s: %w", SchemaKey(fingerprint), ctx.Err())
			}
		}
		s.lastRefresh = time.Now()
		err := s.refresh(ctx)
		s.lastOK = err == nil
		if err != nil {
			return "", fmt.Errorf("look up schema %s: %w", SchemaKey(fingerprint), err)
		}
		if text, ok := s.known[fingerprint]; ok {
			return text, nil
		}
	}
	return "", fmt.Errorf("%s has no schema %s: %w", s.topic, SchemaKey(fingerprint), schemas.ErrUnknownSchema)
}

// refresh reads the records added to the topic since the last refresh.
func (s *SchemaSource) refresh(ctx context.Context) error {
	opts, err := s.opts()
	if err != nil {
		return fmt.Errorf("kafka settings: %w", err)
	}
	cl, err := NewClient(append(slices.Clip(opts), kgo.KeepControlRecords())...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, schemaReadTimeout)
	defer cancel()

	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, s.topic)
	if err != nil {
		return fmt.Errorf("list end offsets of %s: %w", s.topic, err)
	}
	from := make(map[int32]kgo.Offset)
	end := make(map[int32]int64)
	var listErr error
	ends.Each(func(o kadm.ListedOffset) {
		switch {
		case errors.Is(o.Err, kerr.UnknownTopicOrPartition):
			// No topic: nothing published yet.
		case o.Err != nil:
			listErr = o.Err
		case o.Offset > s.next[o.Partition]:
			from[o.Partition] = kgo.NewOffset().At(s.next[o.Partition])
			end[o.Partition] = o.Offset
		}
	})
	if listErr != nil {
		return fmt.Errorf("list end offsets of %s: %w", s.topic, listErr)
	}
	if len(from) == 0 {
		return nil
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{s.topic: from})
	for len(end) > 0 {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("read %s: %w", s.topic, err)
		}
		var authErr error
		fetches.EachError(func(_ string, _ int32, err error) {
			if errors.Is(err, kerr.TopicAuthorizationFailed) {
				authErr = err
			}
		})
		if authErr != nil {
			return fmt.Errorf("read %s: %w", s.topic, authErr)
		}
		// Other fetch errors are retried by the client until the timeout.
		fetches.EachRecord(func(r *kgo.Record) {
			if r.Topic != s.topic {
				return
			}
			s.next[r.Partition] = r.Offset + 1
			if !r.Attrs.IsControl() {
				s.add(r)
			}
			if e, ok := end[r.Partition]; ok && r.Offset+1 >= e {
				delete(end, r.Partition)
			}
		})
	}
	return nil
}

// add takes one record of the topic in: a schema, or a tombstone removing
// one. Records whose key is not a SchemaKey are not schemas and are left
// alone; whether a schema's text has the fingerprint of its key is for the
// decoder to check.
func (s *SchemaSource) add(r *kgo.Record) {
	fp, ok := parseSchemaKey(r.Key)
	if !ok {
		return
	}
	if r.Value == nil {
		delete(s.known, fp)
		return
	}
	s.known[fp] = string(r.Value)
}
