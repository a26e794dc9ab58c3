package kafka

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelogs/sluice/internal/kafkatest"
	"github.com/sluicelogs/sluice/schemas"
)

// TestSchemaTopic: PublishSchemas makes the compacted topic and writes
// every embedded version; a SchemaSource finds each, answers a fingerprint
// nobody published with ErrUnknownSchema (which a decoder caches), finds
// versions published after its last read, and republishing changes
// nothing readers see.
func TestSchemaTopic(t *testing.T) {
	c := kafkatest.Cluster(t, kafkatest.Topics(1, testTopic))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	cl := kafkatest.Client(t, c)
	topics := Topics{Prefix: "logs"}
	optsFn := func() ([]kgo.Opt, error) { return opts, nil }

	// Before anything is published the topic does not exist: every
	// fingerprint is unknown.
	cur := schemas.CurrentSchema()
	if _, err := NewSchemaSource(topics, optsFn).Lookup(ctx, cur.Fingerprint); !errors.Is(err, schemas.ErrUnknownSchema) {
		t.Fatalf("no topic: err = %v, want ErrUnknownSchema", err)
	}

	if err := PublishSchemas(ctx, cl, topics); err != nil {
		t.Fatal(err)
	}
	cfgs, err := kadm.NewClient(cl).DescribeTopicConfigs(ctx, topics.Schemas())
	if err != nil {
		t.Fatal(err)
	}
	rc, err := cfgs.On(topics.Schemas(), nil)
	if err != nil || rc.Err != nil {
		t.Fatal(err, rc.Err)
	}
	compacted := false
	for _, c := range rc.Configs {
		compacted = compacted || (c.Key == "cleanup.policy" && c.MaybeValue() == "compact")
	}
	if !compacted {
		t.Fatalf("%s is not compacted: %+v", topics.Schemas(), rc.Configs)
	}

	src := NewSchemaSource(topics, optsFn)
	for _, v := range schemas.SchemaVersions() {
		text, err := src.Lookup(ctx, v.Fingerprint)
		if err != nil || text != v.Text {
			t.Fatalf("v%d: %q, %v", v.Version, text, err)
		}
	}
	records := kafkatest.ReadAll(t, c, 30*time.Second, topics.Schemas())
	if len(records) != len(schemas.SchemaVersions()) {
		t.Fatalf("%d records, want %d", len(records), len(schemas.SchemaVersions()))
	}
	for i, r := range records {
		v := schemas.SchemaVersions()[i]
		if string(r.Key) != SchemaKey(v.Fingerprint) || len(r.Headers) != 1 || r.Headers[0].Key != SchemaVersionHeader ||
			string(r.Headers[0].Value) != strconv.Itoa(v.Version) {
			t.Fatalf("record %d: key %s, headers %v", i, r.Key, r.Headers)
		}
	}

	// An unknown fingerprint, through a decoder: looked up once, then
	// remembered.
	var lookups atomic.Int64
	dec := schemas.NewDecoder(schemas.WithSchemaSource(func(ctx context.Context, fp uint64) (string, error) {
		lookups.Add(1)
		return src.Lookup(ctx, fp)
	}))
	bogus := append([]byte{0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8}, 0)
	for range 5 {
		if _, _, err := dec.Decode(ctx, bogus); !errors.Is(err, schemas.ErrUnknownSchema) {
			t.Fatalf("bogus fingerprint: err = %v, want ErrUnknownSchema", err)
		}
	}
	if n := lookups.Load(); n != 1 {
		t.Fatalf("%d lookups of an unknown fingerprint, want 1", n)
	}

	// A newer version published after the source's last read: a record
	// written with it decodes, its new field kept.
	newer := strings.Replace(cur.Text, `"fields": [`, `"fields": [{"name": "node_pool", "type": "string", "default": ""},`, 1)
	codec, err := goavro.NewCodec(newer)
	if err != nil {
		t.Fatal(err)
	}
	kafkatest.Produce(t, cl, &kgo.Record{Topic: topics.Schemas(), Key: []byte(SchemaKey(codec.Rabin)), Value: []byte(newer)})
	r := schemas.Record{ID: "x", Log: "hello", Partial: true}
	current, _ := schemas.AppendAvro(nil, &r)
	body := append(append([]byte{0xC3, 0x01}, fingerprintLE(codec.Rabin)...), 0) // node_pool ""
	body = append(body, current...)
	got, _, err := dec.Decode(ctx, body)
	if err != nil {
		t.Fatal(err)
	}
	if got.Log != "hello" || !got.Partial || got.Unknown["node_pool"] != `""` {
		t.Fatalf("newer version: %+v", got)
	}

	// Republishing is harmless: the same keys and values again, and a
	// fresh source reads the same schemas.
	if err := PublishSchemas(ctx, cl, topics); err != nil {
		t.Fatal(err)
	}
	again := kafkatest.ReadAll(t, c, 30*time.Second, topics.Schemas())
	latest := map[string]string{}
	for _, r := range again {
		latest[string(r.Key)] = string(r.Value)
	}
	if len(latest) != len(schemas.SchemaVersions())+1 {
		t.Fatalf("%d distinct keys after republishing, want %d", len(latest), len(schemas.SchemaVersions())+1)
	}
	fresh := NewSchemaSource(topics, optsFn)
	for _, v := range schemas.SchemaVersions() {
		if text, err := fresh.Lookup(ctx, v.Fingerprint); err != nil || text != v.Text || latest[SchemaKey(v.Fingerprint)] != v.Text {
			t.Fatalf("v%d after republishing: %v", v.Version, err)
		}
	}
}

// fingerprintLE is a fingerprint as a single-object header holds it,
// little-endian.
func fingerprintLE(fp uint64) []byte {
	b := make([]byte, 8)
	for i := range b {
		b[i] = byte(fp >> (8 * i))
	}
	return b
}

// TestPublishSchemasInBackground: the caller does not wait, and a refused
// attempt (the topic cannot be created yet) is retried until the versions
// are published.
func TestPublishSchemasInBackground(t *testing.T) {
	c := kafkatest.Cluster(t, kafkatest.Topics(1, testTopic))
	var refused atomic.Int32
	c.ControlKey(int16(kmsg.CreateTopics), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if refused.Add(1) > 1 {
			return nil, nil, false // from the second attempt on, as the broker answers
		}
		req := kr.(*kmsg.CreateTopicsRequest)
		resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewCreateTopicsResponseTopic()
			st.Topic = rt.Topic
			st.ErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	opts := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	cl := kafkatest.Client(t, c)
	topics := Topics{Prefix: "logs"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	done := PublishSchemasInBackground(ctx, cl, topics, slog.New(slog.DiscardHandler))
	if waited := time.Since(start); waited > 100*time.Millisecond {
		t.Errorf("the caller waited %s", waited)
	}
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("not published within 30s")
	}
	if refused.Load() < 2 {
		t.Fatalf("%d create attempts, want a refused one and a retry", refused.Load())
	}
	src := NewSchemaSource(topics, func() ([]kgo.Opt, error) { return opts, nil })
	cur := schemas.CurrentSchema()
	if text, err := src.Lookup(ctx, cur.Fingerprint); err != nil || text != cur.Text {
		t.Fatalf("current version after the retry: %v", err)
	}
}
