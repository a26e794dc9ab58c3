package schemas

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

const testTopic = "sluice.raw.payments"

// countRequests counts registry requests whose method and path prefix match.
func countRequests(reg *srfake.Registry, method, pathPrefix string) *atomic.Int64 {
	var n atomic.Int64
	reg.Intercept(func(_ http.ResponseWriter, r *http.Request) bool {
		if r.Method == method && strings.HasPrefix(r.URL.Path, pathPrefix) {
			n.Add(1)
		}
		return false
	})
	return &n
}

func TestConfluentRoundTrip(t *testing.T) {
	reg, cl := testRegistry(t)
	enc := NewConfluentEncoder(cl)
	dec := NewDecoder(WithRegistry(cl))
	ctx := context.Background()

	for _, tt := range avroCases() {
		t.Run(tt.name, func(t *testing.T) {
			b := mustEncode(t, enc, testTopic, &tt.r)
			body, _ := AppendAvro(nil, &tt.r)
			if b[0] != 0 || !bytes.Equal(b[confluentHeaderLen:], body) {
				t.Fatalf("not 00 + id + AppendAvro body: % x", head(b))
			}
			got, f, err := dec.Decode(ctx, b)
			if err != nil {
				t.Fatal(err)
			}
			if f != FormatConfluent {
				t.Fatalf("format %v", f)
			}
			mustEqualRecords(t, got, normalized(tt.r))
		})
	}

	ss, ok := reg.GetSchema(testTopic+"-value", 1)
	if !ok {
		t.Fatalf("schema not registered under %s-value", testTopic)
	}
	r := sampleRecord()
	b := mustEncode(t, enc, testTopic, &r)
	if id := binary.BigEndian.Uint32(b[1:5]); int(id) != ss.ID {
		t.Fatalf("header id %d, registry id %d", id, ss.ID)
	}
	if ss.Schema.Schema != CurrentSchema().Text {
		t.Fatal("registered schema is not the current version")
	}
	// The id maps to the embedded version, not a second codec.
	if s, _ := dec.schemaByID(ctx, uint32(ss.ID)); s != currentSchema() {
		t.Fatal("registry schema was not matched to the embedded version")
	}
}

func TestConfluentEncoderCachesIDs(t *testing.T) {
	reg, cl := testRegistry(t)
	posts := countRequests(reg, http.MethodPost, "/subjects/")
	enc := NewConfluentEncoder(cl)
	ctx := context.Background()

	id, err := enc.Register(ctx, testTopic)
	if err != nil {
		t.Fatal(err)
	}
	r := sampleRecord()
	for range 100 {
		b := mustEncode(t, enc, testTopic, &r)
		if got := binary.BigEndian.Uint32(b[1:5]); int(got) != id {
			t.Fatalf("id %d, registered %d", got, id)
		}
	}
	mustEncode(t, enc, "sluice.raw.other", &r)
	if n := posts.Load(); n != 2 {
		t.Fatalf("%d registrations for 2 topics, want 2", n)
	}
	if !reg.SubjectExists("sluice.raw.other-value") {
		t.Fatal("second topic's subject missing")
	}
}

func TestConfluentDecoderCachesSchemas(t *testing.T) {
	reg, cl := testRegistry(t)
	gets := countRequests(reg, http.MethodGet, "/schemas/ids/")
	r := sampleRecord()
	b := mustEncode(t, NewConfluentEncoder(cl), testTopic, &r)
	dec := NewDecoder(WithRegistry(cl))
	for range 100 {
		if _, _, err := dec.Decode(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	if n := gets.Load(); n != 1 {
		t.Fatalf("%d schema fetches, want 1", n)
	}
}

func TestConfluentUnknownID(t *testing.T) {
	reg, cl := testRegistry(t)
	gets := countRequests(reg, http.MethodGet, "/schemas/ids/")
	dec := NewDecoder(WithRegistry(cl))
	now := time.Unix(1_700_000_000, 0)
	dec.now = func() time.Time { return now }

	b := append([]byte{0, 0, 0, 3, 0xe7}, make([]byte, zeroBodyLen)...)
	for range 10 {
		if _, _, err := dec.Decode(context.Background(), b); !errors.Is(err, ErrUnknownSchema) {
			t.Fatalf("err = %v, want ErrUnknownSchema", err)
		}
	}
	if n := gets.Load(); n != 1 {
		t.Fatalf("%d fetches of a missing id, want 1 (remembered)", n)
	}
	now = now.Add(missingIDTTL + time.Second)
	if _, _, err := dec.Decode(context.Background(), b); !errors.Is(err, ErrUnknownSchema) {
		t.Fatalf("err = %v, want ErrUnknownSchema", err)
	}
	if n := gets.Load(); n != 2 {
		t.Fatalf("%d fetches, want a second one after the TTL", n)
	}

	// An id registered after it was found missing decodes once the TTL has
	// passed.
	r := sampleRecord()
	body, _ := AppendAvro(nil, &r)
	reg.SeedSchema("late-value", 1, 999, sr.Schema{Schema: CurrentSchema().Text})
	now = now.Add(missingIDTTL + time.Second)
	got, _, err := dec.Decode(context.Background(), append([]byte{0, 0, 0, 3, 0xe7}, body...))
	if err != nil {
		t.Fatal(err)
	}
	mustEqualRecords(t, got, normalized(r))
}

func TestConfluentNoRegistry(t *testing.T) {
	dec := NewDecoder()
	_, f, err := dec.Decode(context.Background(), append([]byte{0, 0, 0, 0, 1}, make([]byte, zeroBodyLen)...))
	if !errors.Is(err, ErrNoRegistry) || f != FormatConfluent {
		t.Fatalf("err = %v, format %v; want ErrNoRegistry, confluent", err, f)
	}
	// Other formats need no registry.
	r := sampleRecord()
	b, _ := AppendSingleObject(nil, &r)
	if _, _, err := dec.Decode(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

func TestConfluentRegistryErrors(t *testing.T) {
	reg, cl := testRegistry(t)
	var fail atomic.Bool
	fail.Store(true)
	reg.Intercept(func(w http.ResponseWriter, _ *http.Request) bool {
		if fail.Load() {
			http.Error(w, `{"error_code":50001,"message":"backend down"}`, http.StatusInternalServerError)
			return true
		}
		return false
	})
	ctx := context.Background()
	enc := NewConfluentEncoder(cl)
	r := sampleRecord()
	dst := []byte("keep")
	got, err := enc.AppendEncode(ctx, dst, testTopic, &r)
	if !errors.Is(err, ErrRegistry) || string(got) != "keep" {
		t.Fatalf("encode: err = %v, dst = %q; want ErrRegistry and dst unchanged", err, got)
	}

	dec := NewDecoder(WithRegistry(cl))
	body, _ := AppendAvro(nil, &r)
	b := append([]byte{0, 0, 0, 0, 1}, body...)
	if _, _, err := dec.Decode(ctx, b); !errors.Is(err, ErrRegistry) {
		t.Fatalf("decode: err = %v, want ErrRegistry", err)
	}

	// Transient failures are not remembered.
	fail.Store(false)
	b = mustEncode(t, enc, testTopic, &r)
	if _, _, err := dec.Decode(ctx, b); err != nil {
		t.Fatal(err)
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	dec = NewDecoder(WithRegistry(cl))
	if _, _, err := dec.Decode(cancelled, b); !errors.Is(err, ErrRegistry) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: err = %v, want ErrRegistry wrapping context.Canceled", err)
	}
}

// External producers may register their own record schema. It is decoded as
// fetched and resolved onto Record by field name; goavro's time.Time for
// timestamp-millis is understood, narrower types are widened, fields Record
// lacks are kept in Unknown.
func TestConfluentForeignSchema(t *testing.T) {
	reg, cl := testRegistry(t)
	const foreign = `{"type":"record","name":"AppLog","namespace":"com.example","fields":[
		{"name":"log","type":["null","string"]},
		{"name":"timestamp","type":{"type":"long","logicalType":"timestamp-millis"}},
		{"name":"tenant","type":"string"},
		{"name":"original_size","type":"int"},
		{"name":"attributes","type":{"type":"map","values":["null","int","float","string","bytes"]}},
		{"name":"kubernetes","type":{"type":"record","name":"K8s","fields":[
			{"name":"pod_name","type":"string"},
			{"name":"labels","type":{"type":"map","values":"string"}}]}},
		{"name":"extra","type":"string"}
	]}`
	reg.SeedSchema("external-value", 1, 42, sr.Schema{Schema: foreign})
	codec, err := goavro.NewCodec(foreign)
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2025, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	body, err := codec.BinaryFromNative(nil, map[string]any{
		"log":           goavro.Union("string", "from elsewhere"),
		"timestamp":     ts,
		"tenant":        "acme",
		"original_size": int32(7),
		"attributes": map[string]any{
			"i": goavro.Union("int", int32(-5)), "f": goavro.Union("float", float32(0.5)),
			"b": goavro.Union("bytes", []byte("raw\xff")), "n": nil,
		},
		"kubernetes": map[string]any{"pod_name": "p", "labels": map[string]any{"a": "b"}},
		"extra":      "ignored",
	})
	if err != nil {
		t.Fatal(err)
	}
	dec := NewDecoder(WithRegistry(cl))
	got, _, err := dec.Decode(context.Background(), append([]byte{0, 0, 0, 0, 42}, body...))
	if err != nil {
		t.Fatal(err)
	}
	mustEqualRecords(t, got, Record{
		Log: "from elsewhere", Timestamp: ts, Tenant: "acme", OriginalSize: 7,
		Attributes: map[string]any{"i": int64(-5), "f": 0.5, "b": "raw\ufffd", "n": nil},
		Kubernetes: Kubernetes{PodName: "p", Labels: map[string]string{"a": "b"}},
		Unknown:    map[string]string{"extra": `"ignored"`},
	})

	// A field of a type the record's cannot be read from makes the schema
	// unusable: known when the schema is fetched, not a panic.
	const wrongType = `{"type":"record","name":"Bad","fields":[{"name":"log","type":"long"}]}`
	reg.SeedSchema("bad-value", 1, 43, sr.Schema{Schema: wrongType})
	if _, _, err := dec.Decode(context.Background(), []byte{0, 0, 0, 0, 43, 2}); !errors.Is(err, ErrUnknownSchema) || !strings.Contains(err.Error(), "field log") {
		t.Fatalf("wrong field type: err = %v, want ErrUnknownSchema naming the field", err)
	}
	// A union branch the record cannot read fails only the records that
	// use it.
	const wrongBranch = `{"type":"record","name":"Branchy","fields":[{"name":"log","type":["string","long"]}]}`
	reg.SeedSchema("branchy-value", 1, 44, sr.Schema{Schema: wrongBranch})
	if got, _, err := dec.Decode(context.Background(), []byte{0, 0, 0, 0, 44, 0, 4, 'h', 'i'}); err != nil || got.Log != "hi" {
		t.Fatalf("string branch: %+v, %v", got, err)
	}
	if _, _, err := dec.Decode(context.Background(), []byte{0, 0, 0, 0, 44, 2, 2}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("long branch: err = %v, want ErrMalformed", err)
	}
}

func TestConfluentUnusableSchemas(t *testing.T) {
	reg, cl := testRegistry(t)
	gets := countRequests(reg, http.MethodGet, "/schemas/ids/")
	reg.SeedSchema("json-value", 1, 50, sr.Schema{Schema: `{"type":"object"}`, Type: sr.TypeJSON})
	reg.SeedSchema("string-value", 1, 51, sr.Schema{Schema: `"string"`})
	dec := NewDecoder(WithRegistry(cl))
	for _, id := range []byte{50, 51, 50, 51} {
		_, _, err := dec.Decode(context.Background(), []byte{0, 0, 0, 0, id, 0})
		if !errors.Is(err, ErrUnknownSchema) {
			t.Fatalf("id %d: err = %v, want ErrUnknownSchema", id, err)
		}
	}
	if n := gets.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2 (unusable schemas are remembered)", n)
	}
}

// A schema registered by another tool, reformatted and without docs, is
// still recognised as the embedded version by its canonical form.
func TestConfluentReformattedSchemaMatchesEmbedded(t *testing.T) {
	reg, cl := testRegistry(t)
	reg.SeedSchema("other-value", 1, 60, sr.Schema{Schema: versions[0].codec.CanonicalSchema()})
	dec := NewDecoder(WithRegistry(cl))
	s, err := dec.schemaByID(context.Background(), 60)
	if err != nil {
		t.Fatal(err)
	}
	if s != versions[0] {
		t.Fatal("canonical v1 text was not matched to embedded v1")
	}
}

func TestDecodeConfluentShortHeader(t *testing.T) {
	_, cl := testRegistry(t)
	dec := NewDecoder(WithRegistry(cl))
	for _, b := range [][]byte{{0}, {0, 0, 0, 1}} {
		if _, err := dec.DecodeConfluent(context.Background(), b); !errors.Is(err, ErrMalformed) {
			t.Fatalf("% x: err = %v, want ErrMalformed", b, err)
		}
	}
}
