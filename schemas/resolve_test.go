package schemas

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"
)

// withVersions makes a Decoder that knows only the versions under fsys
// (avro/logrecord.vN.avsc), as a binary built before the others existed
// would: the newest of them is what it resolves other schemas onto.
func withVersions(tb testing.TB, fsys fstest.MapFS) DecoderOption {
	tb.Helper()
	vs, byFP, err := loadVersions(fsys)
	if err != nil {
		tb.Fatal(err)
	}
	return func(d *Decoder) { d.known, d.reader = byFP, vs[len(vs)-1] }
}

// previousOnly is what a binary built before the current version embeds:
// every version but the current one.
func previousOnly() fstest.MapFS {
	fsys := fstest.MapFS{}
	for _, v := range versions[:len(versions)-1] {
		fsys[fmt.Sprintf("avro/logrecord.v%d.avsc", v.info.Version)] = &fstest.MapFile{Data: []byte(v.info.Text)}
	}
	return fsys
}

// readerOf is what a binary built when v was the newest version embeds.
func readerOf(v int) fstest.MapFS {
	fsys := fstest.MapFS{}
	for _, s := range versions[:v] {
		fsys[fmt.Sprintf("avro/logrecord.v%d.avsc", s.info.Version)] = &fstest.MapFile{Data: []byte(s.info.Text)}
	}
	return fsys
}

// unknownSince is Record.Unknown of r, written with the current version,
// as a reader whose newest version is v reads it: the fields of the
// versions after v, as JSON text.
func unknownSince(r *Record, v int) map[string]string {
	var u map[string]string
	if v < 3 {
		u = map[string]string{}
	}
	if v < 2 {
		u["partial"] = fmt.Sprint(r.Partial)
	}
	if v < 3 {
		k := &r.Kubernetes
		u["metadata"] = string(appendJSONString(nil, r.Metadata))
		u["kubernetes.namespace_labels"] = string(appendJSONStringMap(nil, k.NamespaceLabels))
		u["kubernetes.container_image"] = string(appendJSONString(nil, k.ContainerImage))
		u["kubernetes.workload"] = `{"kind":` + string(appendJSONString(nil, k.Workload.Kind)) +
			`,"name":` + string(appendJSONString(nil, k.Workload.Name)) + `}`
	}
	return u
}

// mapSource is a schema source over fixed schemas that counts lookups.
type mapSource struct {
	schemas map[uint64]string
	err     error // returned instead, when set
	lookups atomic.Int64
}

func newMapSource(texts ...string) *mapSource {
	s := &mapSource{schemas: map[uint64]string{}}
	for _, text := range texts {
		codec, err := goavro.NewCodec(text)
		if err != nil {
			panic(err)
		}
		s.schemas[codec.Rabin] = text
	}
	return s
}

func (s *mapSource) lookup(_ context.Context, fp uint64) (string, error) {
	s.lookups.Add(1)
	if s.err != nil {
		return "", s.err
	}
	text, ok := s.schemas[fp]
	if !ok {
		return "", fmt.Errorf("no schema %016x: %w", fp, ErrUnknownSchema)
	}
	return text, nil
}

// singleObjectWith frames body for the schema text.
func singleObjectWith(tb testing.TB, text string, body []byte) []byte {
	tb.Helper()
	codec, err := goavro.NewCodec(text)
	if err != nil {
		tb.Fatal(err)
	}
	h := singleObjectHeader(codec.Rabin)
	return append(h[:], body...)
}

// TestOlderReaderReadsNewerVersion: a binary that knows only the versions
// up to v reads a record written with the current version through the
// schema source. Every field v has is read; those it lacks are kept in
// Unknown.
func TestOlderReaderReadsNewerVersion(t *testing.T) {
	for _, v := range olderVersions() {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) { testOlderReader(t, v) })
	}
}

func testOlderReader(t *testing.T, v int) {
	src := newMapSource(CurrentSchema().Text)
	dec := NewDecoder(WithSchemaSource(src.lookup), withVersions(t, readerOf(v)))
	ctx := context.Background()

	r := podRecord()
	r.Partial = true
	b, _ := AppendSingleObject(nil, &r) // the current version
	got, f, err := dec.Decode(ctx, b)
	if err != nil || f != FormatSingleObject {
		t.Fatalf("decode: %v, %v", f, err)
	}
	want := asWrittenWith(r, v)
	want.Unknown = unknownSince(&r, v)
	mustEqualRecords(t, got, want)
	if v == 2 && (got.Unknown["metadata"] != `"partial"` || got.Unknown["kubernetes.workload"] != `{"kind":"Deployment","name":"charge-api"}` ||
		got.Unknown["kubernetes.namespace_labels"] != `{"kubernetes.io/metadata.name":"payments-prod","team":"payments"}`) {
		t.Fatalf("Unknown = %v", got.Unknown)
	}

	// The schema is looked up once.
	for range 50 {
		if _, _, err := dec.Decode(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if n := src.lookups.Load(); n != 1 {
		t.Fatalf("%d lookups, want 1", n)
	}
	// Records of the reader's own versions do not need the source.
	if got, _, err := dec.Decode(ctx, olderSingleObject(t, v, &r)); err != nil || got.Unknown != nil || got.Log != r.Log {
		t.Fatalf("v%d record: %+v, %v", v, got, err)
	}

	rng := rand.New(rand.NewPCG(21, uint64(22+v)))
	for range 300 {
		r := randomRecord(rng, true)
		b, _ := AppendSingleObject(nil, &r)
		got, _, err := dec.Decode(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		want := asWrittenWith(r, v)
		want.Unknown = unknownSince(&r, v)
		// The decoder under test is this package's, which reads array
		// attributes whatever the reader's versions; a binary released
		// before v4 fails such a record with ErrMalformed instead.
		want.Attributes = normalized(r).Attributes
		mustEqualRecords(t, got, want)
	}

	// Without a source the fingerprint is unknown, as before.
	if _, _, err := NewDecoder(withVersions(t, readerOf(v))).Decode(ctx, b); !errors.Is(err, ErrUnknownSchema) {
		t.Fatalf("no source: err = %v, want ErrUnknownSchema", err)
	}
}

// nextSchema is a made-up next version: the current one plus new optional
// fields of several types (top-level, in kubernetes and in its workload),
// with stream written as bytes, original_size as an int and attribute
// values of more types, all of which the current version reads by
// promotion.
func nextSchema(t testing.TB) string {
	t.Helper()
	var s map[string]any
	if err := json.Unmarshal([]byte(CurrentSchema().Text), &s); err != nil {
		t.Fatal(err)
	}
	fields := s["fields"].([]any)
	for _, f := range fields {
		f := f.(map[string]any)
		switch f["name"] {
		case "stream":
			f["type"] = "bytes"
		case "original_size":
			f["type"] = "int"
		case "attributes":
			f["type"] = map[string]any{"type": "map", "values": []any{"null", "boolean", "int", "long", "float", "double", "string", "bytes",
				map[string]any{"type": "array", "items": []any{"null", "boolean", "int", "long", "float", "double", "string", "bytes"}}}}
		case "kubernetes":
			k := f["type"].(map[string]any)
			k["fields"] = append(k["fields"].([]any), map[string]any{"name": "node_pool", "type": "string", "default": ""})
			for _, kf := range k["fields"].([]any) {
				if kf := kf.(map[string]any); kf["name"] == "workload" {
					w := kf["type"].(map[string]any)
					w["fields"] = append(w["fields"].([]any), map[string]any{"name": "api_version", "type": "string", "default": ""})
				}
			}
		}
	}
	fields = append(fields,
		map[string]any{"name": "severity", "type": []any{"null", "string"}, "default": nil},
		map[string]any{"name": "sequence", "type": "long", "default": 0},
		map[string]any{"name": "score", "type": "float", "default": 0},
		map[string]any{"name": "tags", "type": map[string]any{"type": "array", "items": "string"}, "default": []any{}},
		map[string]any{"name": "trace", "type": []any{"null", map[string]any{"type": "record", "name": "Trace", "fields": []any{
			map[string]any{"name": "id", "type": "string"}, map[string]any{"name": "sampled", "type": "boolean"},
		}}}, "default": nil},
		map[string]any{"name": "digest", "type": map[string]any{"type": "fixed", "name": "Digest", "size": 2}, "default": "\u0000\u0000"},
		map[string]any{"name": "level", "type": map[string]any{"type": "enum", "name": "Level", "symbols": []any{"INFO", "WARN"}}, "default": "INFO"},
	)
	s["fields"] = fields
	s["doc"] = "A made-up next schema version."
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// nextNative is r in nextSchema's native form, with the new fields set.
func nextNative(r *Record, severity any, sequence int64, score float32) map[string]any {
	m := toNative(r)
	m["stream"] = []byte(r.Stream)
	m["original_size"] = int32(max(math.MinInt32, min(math.MaxInt32, r.OriginalSize)))
	m["kubernetes"].(map[string]any)["node_pool"] = "pool-a"
	m["kubernetes"].(map[string]any)["workload"].(map[string]any)["api_version"] = "apps/v1"
	m["severity"] = severity
	m["sequence"] = sequence
	m["score"] = score
	m["tags"] = []any{"a", "b\"c"}
	m["trace"] = goavro.Union("sluice.Trace", map[string]any{"id": "t1", "sampled": true})
	m["digest"] = []byte{'h', 0xff}
	m["level"] = "WARN"
	return m
}

// TestNewerVersionUnknownFields: the current decoder reads a record written
// with a made-up next version through the schema source: known fields by name with
// promotions, new fields kept as JSON text in Unknown.
func TestNewerVersionUnknownFields(t *testing.T) {
	next := nextSchema(t)
	codec, err := goavro.NewCodec(next)
	if err != nil {
		t.Fatal(err)
	}
	src := newMapSource(next)
	dec := NewDecoder(WithSchemaSource(src.lookup))
	r := podRecord()
	r.Attributes["ratio"] = 0.25
	r.OriginalSize = 4096
	native := nextNative(&r, goavro.Union("string", "warn"), 1<<40, 1.5)
	native["attributes"].(map[string]any)["small"] = goavro.Union("int", int32(-3))
	native["attributes"].(map[string]any)["half"] = goavro.Union("float", float32(0.5))
	native["attributes"].(map[string]any)["raw"] = goavro.Union("bytes", []byte("b\xff"))
	body, err := codec.BinaryFromNative(nil, native)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := dec.Decode(context.Background(), singleObjectWith(t, next, body))
	if err != nil {
		t.Fatal(err)
	}
	want := normalized(r)
	want.Attributes["small"] = int64(-3)
	want.Attributes["half"] = 0.5
	want.Attributes["raw"] = "b\ufffd"
	want.Unknown = map[string]string{
		"kubernetes.node_pool":            `"pool-a"`,
		"kubernetes.workload.api_version": `"apps/v1"`,
		"severity":                        `"warn"`,
		"sequence":                        "1099511627776",
		"score":                           "1.5",
		"tags":                            `["a","b\"c"]`,
		"trace":                           `{"id":"t1","sampled":true}`,
		"digest":                          `"h\ufffd"`,
		"level":                           `"WARN"`,
	}
	mustEqualRecords(t, got, want)

	// A null union value is JSON null.
	body, err = codec.BinaryFromNative(nil, nextNative(&r, nil, -1, float32(math.Inf(-1))))
	if err != nil {
		t.Fatal(err)
	}
	got, _, err = dec.Decode(context.Background(), singleObjectWith(t, next, body))
	if err != nil {
		t.Fatal(err)
	}
	if got.Unknown["severity"] != "null" || got.Unknown["sequence"] != "-1" || got.Unknown["score"] != `"-Infinity"` {
		t.Fatalf("Unknown = %v", got.Unknown)
	}

	// JSON carries the unknown fields, and reads them back; Avro cannot,
	// and counts them.
	j, err := AppendJSON(nil, &got)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(j), `"unknown":{"digest":"\"h\\ufffd\"","kubernetes.node_pool":"\"pool-a\"","kubernetes.workload.api_version":"\"apps/v1\"",`) {
		t.Fatalf("JSON: %s", j)
	}
	back, err := DecodeJSON(j)
	if err != nil {
		t.Fatal(err)
	}
	mustEqualRecords(t, back, got)
	before := UnknownFieldsDropped()
	a, _ := AppendSingleObject(nil, &got)
	if UnknownFieldsDropped() != before+1 {
		t.Fatal("dropping unknown fields was not counted")
	}
	back, _, err = dec.Decode(context.Background(), a)
	if err != nil || back.Unknown != nil {
		t.Fatalf("Avro round trip: %v, %v", back.Unknown, err)
	}
}

// TestResolutionDefaults: a reader field the writer lacks takes the
// reader's default.
func TestResolutionDefaults(t *testing.T) {
	reader := strings.Replace(CurrentSchema().Text, `{"name": "stream", "type": "string",`, `{"name": "stream", "type": "string", "default": "stdout",`, 1)
	if reader == CurrentSchema().Text {
		t.Fatal("test schema edit did not apply")
	}
	const writer = `{"type":"record","name":"LogRecord","namespace":"sluice","fields":[{"name":"log","type":"string"}]}`
	src := newMapSource(writer)
	dec := NewDecoder(WithSchemaSource(src.lookup), withVersions(t, fstest.MapFS{"avro/logrecord.v1.avsc": {Data: []byte(reader)}}))
	got, _, err := dec.Decode(context.Background(), singleObjectWith(t, writer, []byte{4, 'h', 'i'}))
	if err != nil {
		t.Fatal(err)
	}
	mustEqualRecords(t, got, Record{Log: "hi", Stream: "stdout"})

	// A writer built on v2 (an external producer's copy of it, with a
	// field of its own) lacks what v3 added: the current reader fills in
	// their defaults, kubernetes.workload's a record.
	var s map[string]any
	if err := json.Unmarshal([]byte(versions[1].info.Text), &s); err != nil {
		t.Fatal(err)
	}
	s["fields"] = append(s["fields"].([]any), map[string]any{"name": "producer", "type": "string", "default": ""})
	onV2, _ := json.Marshal(s)
	r := podRecord()
	native := toNative(&r)
	native["producer"] = "p"
	codec, err := goavro.NewCodec(string(onV2))
	if err != nil {
		t.Fatal(err)
	}
	body, err := codec.BinaryFromNative(nil, native)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err = NewDecoder(WithSchemaSource(newMapSource(string(onV2)).lookup)).Decode(context.Background(), singleObjectWith(t, string(onV2), body))
	if err != nil {
		t.Fatal(err)
	}
	want := withoutV3(normalized(r))
	want.Unknown = map[string]string{"producer": `"p"`}
	mustEqualRecords(t, got, want)
}

// TestSchemaSourceErrors: what the source does not have is remembered for
// a while and bounded; a source that cannot answer is retryable and not
// remembered; schemas no LogRecord can be read from, or that are not the
// fingerprint's, are unusable.
func TestSchemaSourceErrors(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_700_000_000, 0)
	src := newMapSource()
	dec := NewDecoder(WithSchemaSource(src.lookup))
	dec.now = func() time.Time { return now }
	unknown := append([]byte{0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8}, make([]byte, zeroBodyLen)...)
	for range 10 {
		if _, _, err := dec.Decode(ctx, unknown); !errors.Is(err, ErrUnknownSchema) {
			t.Fatalf("err = %v, want ErrUnknownSchema", err)
		}
	}
	if n := src.lookups.Load(); n != 1 {
		t.Fatalf("%d lookups of a missing fingerprint, want 1 (remembered)", n)
	}
	now = now.Add(missingIDTTL + time.Second)
	if _, _, err := dec.Decode(ctx, unknown); !errors.Is(err, ErrUnknownSchema) || src.lookups.Load() != 2 {
		t.Fatalf("after the TTL: err = %v, %d lookups; want a second lookup", err, src.lookups.Load())
	}
	for i := range 3 * maxMissing {
		b := append([]byte{0xC3, 0x01}, fmt.Appendf(nil, "%08d", i)...)
		dec.Decode(ctx, b)
	}
	if n := len(dec.missFP); n > maxMissing {
		t.Fatalf("%d missing fingerprints remembered, want at most %d", n, maxMissing)
	}

	// A source that cannot answer: ErrRegistry, retried next time.
	src = newMapSource()
	src.err = errors.New("kafka down")
	dec = NewDecoder(WithSchemaSource(src.lookup))
	for range 2 {
		if _, _, err := dec.Decode(ctx, unknown); !errors.Is(err, ErrRegistry) || Reason(err) != "registry" {
			t.Fatalf("err = %v, want ErrRegistry", err)
		}
	}
	if n := src.lookups.Load(); n != 2 {
		t.Fatalf("%d lookups, want 2 (failures are not remembered)", n)
	}

	// A required field of another type: unusable, remembered.
	bad := strings.Replace(versions[1].info.Text, `{"name": "original_size", "type": "long"`, `{"name": "original_size", "type": "string"`, 1)
	src = newMapSource(bad)
	dec = NewDecoder(WithSchemaSource(src.lookup))
	b := singleObjectWith(t, bad, make([]byte, zeroBodyLen))
	for range 3 {
		_, _, err := dec.Decode(ctx, b)
		if !errors.Is(err, ErrUnknownSchema) {
			t.Fatalf("incompatible schema: err = %v, want ErrUnknownSchema", err)
		}
	}
	if n := src.lookups.Load(); n != 1 {
		t.Fatalf("%d lookups of an unusable schema, want 1", n)
	}
	if _, err := dec.schemaByFingerprint(ctx, fingerprintOf(t, bad)); err == nil || !strings.Contains(err.Error(), "not a schema this version can read") {
		t.Fatalf("cached unusable schema: %v", err)
	}

	// A source answering with another fingerprint's schema.
	liar := func(context.Context, uint64) (string, error) { return versions[1].info.Text, nil }
	dec = NewDecoder(WithSchemaSource(liar))
	if _, _, err := dec.Decode(ctx, unknown); !errors.Is(err, ErrUnknownSchema) || !strings.Contains(err.Error(), "fingerprint") {
		t.Fatalf("wrong schema: err = %v, want ErrUnknownSchema", err)
	}
	// Not a record, not Avro.
	for _, text := range []string{`"string"`, `{"type":`} {
		src := func(context.Context, uint64) (string, error) { return text, nil }
		if _, _, err := NewDecoder(WithSchemaSource(src)).Decode(ctx, unknown); !errors.Is(err, ErrUnknownSchema) {
			t.Fatalf("%s: err = %v, want ErrUnknownSchema", text, err)
		}
	}
}

func fingerprintOf(tb testing.TB, text string) uint64 {
	tb.Helper()
	codec, err := goavro.NewCodec(text)
	if err != nil {
		tb.Fatal(err)
	}
	return codec.Rabin
}

// TestConfluentNewerSchema: Confluent-framed records whose registry schema
// matches no embedded version are resolved the same way.
func TestConfluentNewerSchema(t *testing.T) {
	reg, cl := testRegistry(t)
	next := nextSchema(t)
	reg.SeedSchema("next-value", 1, 80, sr.Schema{Schema: next})
	reg.SeedSchema("current-value", 1, 81, sr.Schema{Schema: CurrentSchema().Text})
	ctx := context.Background()
	r := podRecord()
	r.Partial = true

	codec, _ := goavro.NewCodec(next)
	body, err := codec.BinaryFromNative([]byte{0, 0, 0, 0, 80}, nextNative(&r, goavro.Union("string", "warn"), 7, 0.5))
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := NewDecoder(WithRegistry(cl)).Decode(ctx, body)
	if err != nil {
		t.Fatal(err)
	}
	if got.Log != r.Log || !got.Partial || got.Unknown["sequence"] != "7" || got.Unknown["kubernetes.node_pool"] != `"pool-a"` ||
		got.Kubernetes.Workload != r.Kubernetes.Workload || got.Metadata != MetadataPartial || len(got.Unknown) != 9 {
		t.Fatalf("next version via the registry: %+v", got)
	}

	// A reader that knows only the previous versions reads the registry's
	// current one.
	cur := mustEncode(t, SingleObjectEncoder{}, testTopic, &r)
	got, _, err = NewDecoder(WithRegistry(cl), withVersions(t, previousOnly())).Decode(ctx, append([]byte{0, 0, 0, 0, 81}, cur[singleObjectHeaderLen:]...))
	if err != nil {
		t.Fatal(err)
	}
	prev := len(versions) - 1
	want := asWrittenWith(r, prev)
	want.Unknown = unknownSince(&r, prev)
	mustEqualRecords(t, got, want)
}

// TestReadable pins the type rules of resolution.
func TestReadable(t *testing.T) {
	tests := []struct {
		w, r string
		want bool
	}{
		{`"int"`, `"long"`, true}, {`"int"`, `"float"`, true}, {`"int"`, `"double"`, true},
		{`"long"`, `"float"`, true}, {`"long"`, `"double"`, true}, {`"float"`, `"double"`, true},
		{`"long"`, `"int"`, false}, {`"double"`, `"float"`, false}, {`"double"`, `"long"`, false},
		{`"string"`, `"bytes"`, true}, {`"bytes"`, `"string"`, true}, {`"string"`, `"long"`, false},
		{`["null","string"]`, `"string"`, true}, {`["null","long"]`, `"string"`, false},
		{`"int"`, `["null","string","double"]`, true}, {`"boolean"`, `["null","string"]`, false},
		{`{"type":"map","values":"int"}`, `{"type":"map","values":"long"}`, true},
		{`{"type":"map","values":"long"}`, `{"type":"array","items":"long"}`, false},
		{`{"type":"fixed","name":"F","size":2}`, `{"type":"fixed","name":"G","size":3}`, false},
		{`{"type":"enum","name":"E","symbols":["A"]}`, `{"type":"enum","name":"E","symbols":["A","B"]}`, true},
		{`{"type":"record","name":"N","fields":[{"name":"next","type":["null","N"]}]}`, `{"type":"record","name":"M","fields":[{"name":"next","type":["null","M"]}]}`, true},
	}
	for _, tt := range tests {
		w, err1 := parseCanonical(canonical(t, tt.w))
		r, err2 := parseCanonical(canonical(t, tt.r))
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if got := readable(w, r, map[[2]*avroType]bool{}); got != tt.want {
			t.Errorf("readable(%s, %s) = %v, want %v", tt.w, tt.r, got, tt.want)
		}
	}
}

func canonical(tb testing.TB, text string) string {
	tb.Helper()
	codec, err := goavro.NewCodec(text)
	if err != nil {
		tb.Fatal(err)
	}
	return codec.CanonicalSchema()
}
