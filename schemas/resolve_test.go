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

// v1Only is what a binary built when v1 was the only version embeds.
func v1Only() fstest.MapFS {
	return fstest.MapFS{"avro/logrecord.v1.avsc": {Data: []byte(versions[0].info.Text)}}
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

// TestOlderReaderReadsNewerVersion: a binary that knows only v1 reads a
// record written with v2 through the schema source. Every v1 field is
// read; partial, which v1 lacks, is kept in Unknown.
func TestOlderReaderReadsNewerVersion(t *testing.T) {
	src := newMapSource(versions[1].info.Text)
	dec := NewDecoder(WithSchemaSource(src.lookup), withVersions(t, v1Only()))
	ctx := context.Background()

	r := sampleRecord()
	r.Partial = true
	b, _ := AppendSingleObject(nil, &r) // v2, the current version
	got, f, err := dec.Decode(ctx, b)
	if err != nil || f != FormatSingleObject {
		t.Fatalf("decode: %v, %v", f, err)
	}
	want := normalized(r)
	want.Partial = false
	want.Unknown = map[string]string{"partial": "true"}
	mustEqualRecords(t, got, want)
	if got.Unknown["partial"] != "true" {
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
	// v1 records do not need the source.
	if got, _, err := dec.Decode(ctx, v1SingleObject(t, &r)); err != nil || got.Unknown != nil || got.Log != r.Log {
		t.Fatalf("v1 record: %+v, %v", got, err)
	}

	rng := rand.New(rand.NewPCG(21, 22))
	for range 300 {
		r := randomRecord(rng, true)
		b, _ := AppendSingleObject(nil, &r)
		got, _, err := dec.Decode(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		want := normalized(r)
		want.Partial = false
		want.Unknown = map[string]string{"partial": fmt.Sprint(r.Partial)}
		mustEqualRecords(t, got, want)
	}

	// Without a source the fingerprint is unknown, as before.
	if _, _, err := NewDecoder(withVersions(t, v1Only())).Decode(ctx, b); !errors.Is(err, ErrUnknownSchema) {
		t.Fatalf("no source: err = %v, want ErrUnknownSchema", err)
	}
}

// v3Schema is a made-up next version: v2 plus new optional fields of
// several types (top-level and in kubernetes), with stream written as
// bytes, original_size as an int and attribute values of more types, all
// of which a v2 reader reads by promotion.
func v3Schema(t testing.TB) string {
	t.Helper()
	var s map[string]any
	if err := json.Unmarshal([]byte(versions[1].info.Text), &s); err != nil {
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
			f["type"] = map[string]any{"type": "map", "values": []any{"null", "boolean", "int", "long", "float", "double", "string", "bytes"}}
		case "kubernetes":
			k := f["type"].(map[string]any)
			k["fields"] = append(k["fields"].([]any), map[string]any{"name": "node_pool", "type": "string", "default": ""})
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
	s["doc"] = "A made-up schema version 3."
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// v3Native is r in v3's native form, with the new fields set.
func v3Native(r *Record, severity any, sequence int64, score float32) map[string]any {
	m := toNative(r)
	m["stream"] = []byte(r.Stream)
	m["original_size"] = int32(max(math.MinInt32, min(math.MaxInt32, r.OriginalSize)))
	m["kubernetes"].(map[string]any)["node_pool"] = "pool-a"
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
// with a made-up v3 through the schema source: known fields by name with
// promotions, new fields kept as JSON text in Unknown.
func TestNewerVersionUnknownFields(t *testing.T) {
	v3 := v3Schema(t)
	codec, err := goavro.NewCodec(v3)
	if err != nil {
		t.Fatal(err)
	}
	src := newMapSource(v3)
	dec := NewDecoder(WithSchemaSource(src.lookup))
	r := sampleRecord()
	r.Attributes["ratio"] = 0.25
	r.OriginalSize = 4096
	native := v3Native(&r, goavro.Union("string", "warn"), 1<<40, 1.5)
	native["attributes"].(map[string]any)["small"] = goavro.Union("int", int32(-3))
	native["attributes"].(map[string]any)["half"] = goavro.Union("float", float32(0.5))
	native["attributes"].(map[string]any)["raw"] = goavro.Union("bytes", []byte("b\xff"))
	body, err := codec.BinaryFromNative(nil, native)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := dec.Decode(context.Background(), singleObjectWith(t, v3, body))
	if err != nil {
		t.Fatal(err)
	}
	want := normalized(r)
	want.Attributes["small"] = int64(-3)
	want.Attributes["half"] = 0.5
	want.Attributes["raw"] = "b\ufffd"
	want.Unknown = map[string]string{
		"kubernetes.node_pool": `"pool-a"`,
		"severity":             `"warn"`,
		"sequence":             "1099511627776",
		"score":                "1.5",
		"tags":                 `["a","b\"c"]`,
		"trace":                `{"id":"t1","sampled":true}`,
		"digest":               `"h\ufffd"`,
		"level":                `"WARN"`,
	}
	mustEqualRecords(t, got, want)

	// A null union value is JSON null.
	body, err = codec.BinaryFromNative(nil, v3Native(&r, nil, -1, float32(math.Inf(-1))))
	if err != nil {
		t.Fatal(err)
	}
	got, _, err = dec.Decode(context.Background(), singleObjectWith(t, v3, body))
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
	if !strings.Contains(string(j), `"unknown":{"digest":"\"h\\ufffd\"","kubernetes.node_pool":"\"pool-a\"",`) {
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
	reader := strings.Replace(versions[1].info.Text, `{"name": "stream", "type": "string",`, `{"name": "stream", "type": "string", "default": "stdout",`, 1)
	if reader == versions[1].info.Text {
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
	v3 := v3Schema(t)
	reg.SeedSchema("v3-value", 1, 80, sr.Schema{Schema: v3})
	reg.SeedSchema("v2-value", 1, 81, sr.Schema{Schema: versions[1].info.Text})
	ctx := context.Background()
	r := sampleRecord()
	r.Partial = true

	codec, _ := goavro.NewCodec(v3)
	body, err := codec.BinaryFromNative([]byte{0, 0, 0, 0, 80}, v3Native(&r, goavro.Union("string", "warn"), 7, 0.5))
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := NewDecoder(WithRegistry(cl)).Decode(ctx, body)
	if err != nil {
		t.Fatal(err)
	}
	if got.Log != r.Log || !got.Partial || got.Unknown["sequence"] != "7" || got.Unknown["kubernetes.node_pool"] != `"pool-a"` || len(got.Unknown) != 8 {
		t.Fatalf("v3 via the registry: %+v", got)
	}

	// A reader that knows only v1 reads the registry's v2.
	v2 := mustEncode(t, SingleObjectEncoder{}, testTopic, &r)
	got, _, err = NewDecoder(WithRegistry(cl), withVersions(t, v1Only())).Decode(ctx, append([]byte{0, 0, 0, 0, 81}, v2[singleObjectHeaderLen:]...))
	if err != nil {
		t.Fatal(err)
	}
	want := normalized(r)
	want.Partial = false
	want.Unknown = map[string]string{"partial": "true"}
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
