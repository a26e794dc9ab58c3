package schemas

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"
)

// Every decoder has a fuzz test. Each asserts that decoding never panics,
// that every error wraps one of the sentinels the decoder documents, and
// that whatever decodes is a normalised Record (checkDecoded) that survives
// re-encoding in every format unchanged (checkStable).

// fuzzRecords are the records whose encodings seed the corpora.
func fuzzRecords() []Record {
	var rs []Record
	for _, c := range avroCases() {
		if c.name != "long strings" {
			rs = append(rs, c.r)
		}
	}
	rng := rand.New(rand.NewPCG(9, 10))
	for range 8 {
		rs = append(rs, randomRecord(rng, true))
	}
	return rs
}

// checkDecoded fails unless r is normalised as decoders promise: valid
// UTF-8, UTC times, no empty maps, attribute values of the five kinds.
func checkDecoded(t *testing.T, r Record) {
	t.Helper()
	strs := []string{r.ID, r.Tenant, r.Stream, r.Log, r.Kubernetes.NamespaceName, r.Kubernetes.PodName,
		r.Kubernetes.PodID, r.Kubernetes.ContainerName, r.Kubernetes.DockerID, r.Kubernetes.Host,
		r.Source.Path, r.Source.Format, r.Source.Shipper, r.Metadata, r.Kubernetes.ContainerImage,
		r.Kubernetes.Workload.Kind, r.Kubernetes.Workload.Name}
	for _, m := range []map[string]string{r.Kubernetes.Labels, r.Kubernetes.Annotations, r.Kubernetes.NamespaceLabels} {
		if m != nil && len(m) == 0 {
			t.Fatal("decoded an empty, non-nil string map")
		}
		for k, v := range m {
			strs = append(strs, k, v)
		}
	}
	if r.Attributes != nil && len(r.Attributes) == 0 {
		t.Fatal("decoded empty, non-nil attributes")
	}
	if r.Unknown != nil && len(r.Unknown) == 0 {
		t.Fatal("decoded empty, non-nil unknown fields")
	}
	for k, v := range r.Unknown {
		strs = append(strs, k, v)
	}
	for k, v := range r.Attributes {
		strs = append(strs, k)
		items, array := v.([]any)
		if !array {
			items = []any{v}
		} else if items == nil {
			t.Fatalf("attribute %q is a nil array", k)
		}
		for _, it := range items {
			switch it := it.(type) {
			case nil, bool, int64, float64:
			case string:
				strs = append(strs, it)
			default:
				t.Fatalf("attribute %q has type %T", k, v)
			}
		}
	}
	for _, s := range strs {
		if !utf8.ValidString(s) {
			t.Fatalf("decoded invalid UTF-8 %q", s)
		}
	}
	for _, ts := range []time.Time{r.Timestamp, r.ObservedTimestamp} {
		if ts.Location() != time.UTC {
			t.Fatalf("decoded time %v is not UTC", ts)
		}
		if !ts.IsZero() && ts.UnixNano() == 0 {
			t.Fatalf("decoded the epoch as a non-zero time")
		}
	}
}

// checkStable re-encodes a decoded record in every format and requires it to
// decode back unchanged (but for Unknown, which Avro cannot carry), and the
// re-encodings to be byte-stable. confluent may be nil when dec has no
// registry.
func checkStable(t *testing.T, dec *Decoder, confluent *ConfluentEncoder, r Record) {
	t.Helper()
	checkDecoded(t, r)
	ctx := context.Background()
	encs := []Encoder{SingleObjectEncoder{}, JSONEncoder{}}
	if confluent != nil {
		encs = append(encs, confluent)
	}
	for _, enc := range encs {
		if enc.Format() == FormatJSON && hasNonFinite(&r) {
			continue // JSON has no NaN or infinity
		}
		b1, err := enc.AppendEncode(ctx, nil, testTopic, &r)
		if err != nil {
			t.Fatalf("re-encode %v: %v", enc.Format(), err)
		}
		r2, f, err := dec.Decode(ctx, b1)
		if err != nil {
			t.Fatalf("decode re-encoded %v: %v", enc.Format(), err)
		}
		if f != enc.Format() {
			t.Fatalf("re-encoded %v decoded as %v", enc.Format(), f)
		}
		want := r
		if enc.Format() != FormatJSON {
			want.Unknown = nil
		}
		if d := diffRecords(r2, want); d != "" {
			t.Fatalf("%v round trip changed the record:\n%s", enc.Format(), d)
		}
		b2, err := enc.AppendEncode(ctx, nil, testTopic, &r2)
		if err != nil || !bytes.Equal(b1, b2) {
			t.Fatalf("%v encoding not stable (%v)", enc.Format(), err)
		}
	}
}

func requireOneOf(t *testing.T, err error, sentinels ...error) {
	t.Helper()
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("error %q wraps none of %v", err, sentinels)
}

func FuzzDecodeSingleObject(f *testing.F) {
	for _, r := range fuzzRecords() {
		b, _ := AppendSingleObject(nil, &r)
		f.Add(b)
	}
	f.Add(singleObject(bodyWith(fieldLabels, appendAvroLong(nil, math.MaxInt32)...)))
	f.Add(singleObject(bodyWith(fieldLog, 8, 'a', 0xff, 0xfe, 'b')))
	f.Add([]byte{0xC3, 0x01})
	f.Add(singleObject(bodyWith(fieldNamespaceLabels, appendAvroLong(nil, math.MaxInt32)...)))
	for _, v := range olderVersions() {
		for _, r := range fuzzRecords()[:4] {
			f.Add(olderSingleObject(f, v, &r))
		}
	}
	dec := NewDecoder()
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeSingleObject(b)
		if err != nil {
			requireOneOf(t, err, ErrMalformed, ErrUnknownSchema)
			return
		}
		checkStable(t, dec, nil, r)
	})
}

// fuzzRegistry is a registry holding the current schema (id 1) and a foreign
// schema (id 2), with a Decoder that already knows both.
func fuzzRegistry(f *testing.F) (*Decoder, *ConfluentEncoder) {
	reg, cl := testRegistry(f)
	reg.SeedSchema(testTopic+"-value", 1, 1, sr.Schema{Schema: CurrentSchema().Text})
	reg.SeedSchema("foreign-value", 1, 2, sr.Schema{Schema: fuzzForeignSchema})
	dec := NewDecoder(WithRegistry(cl))
	for id := range uint32(3) {
		dec.schemaByID(context.Background(), id)
	}
	return dec, NewConfluentEncoder(cl)
}

const fuzzForeignSchema = `{"type":"record","name":"Ext","fields":[
	{"name":"log","type":["null","string"]},
	{"name":"timestamp","type":{"type":"long","logicalType":"timestamp-micros"}},
	{"name":"attributes","type":{"type":"map","values":["null","int","float","bytes",{"type":"array","items":"int"}]}}]}`

func FuzzDecodeConfluent(f *testing.F) {
	dec, enc := fuzzRegistry(f)
	for _, r := range fuzzRecords() {
		b, err := enc.AppendEncode(context.Background(), nil, testTopic, &r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	codec, _ := goavro.NewCodec(fuzzForeignSchema)
	foreign, err := codec.BinaryFromNative([]byte{0, 0, 0, 0, 2}, map[string]any{
		"log":       goavro.Union("string", "x"),
		"timestamp": time.Unix(1_700_000_000, 123_000).UTC(),
		"attributes": map[string]any{
			"i": goavro.Union("int", int32(1)), "f": goavro.Union("float", float32(2)),
			"b": goavro.Union("bytes", []byte("\xff")), "a": goavro.Union("array", []any{int32(1)}),
		},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(foreign)
	foreign, err = codec.BinaryFromNative([]byte{0, 0, 0, 0, 2}, map[string]any{
		"log": nil, "timestamp": time.Unix(0, 0).UTC(),
		"attributes": map[string]any{"i": goavro.Union("int", int32(-1)), "n": nil},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(foreign)
	f.Add([]byte{0, 0, 0, 0, 9, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := dec.DecodeConfluent(context.Background(), b)
		if err != nil {
			requireOneOf(t, err, ErrMalformed, ErrUnknownSchema)
			return
		}
		checkStable(t, dec, enc, r)
	})
}

func FuzzDecodeJSON(f *testing.F) {
	for _, r := range fuzzRecords() {
		if b, err := AppendJSON(nil, &r); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		`{}`, ` {"log":"x"}`, `{"timestamp":"2025-03-14T10:26:53.5+01:00","attributes":{"a":1,"b":1.5,"c":[1,{"d":null}],"e":1e400}}`,
		`{"kubernetes":{"labels":{"a":"b"}},"LOG":"\ud800"}`,
		`{"metadata":"partial","kubernetes":{"namespace_labels":{"team":"a"},"container_image":"x","workload":{"kind":"Job","name":"j"}}}`,
		`{"kubernetes":{"namespace_labels":{},"workload":null}}`, `{"kubernetes":{"workload":"x"}}`, "{\"log\":\"\xff\"}", `{"log":`, `{"original_size":1.5}`,
	} {
		f.Add([]byte(s))
	}
	dec := NewDecoder()
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeJSON(b)
		if err != nil {
			requireOneOf(t, err, ErrMalformed, ErrUnknownFormat)
			return
		}
		checkStable(t, dec, nil, r)
	})
}

func FuzzDispatch(f *testing.F) {
	dec, enc := fuzzRegistry(f)
	next := nextSchema(f)
	dec.source = newMapSource(next).lookup
	codec, _ := goavro.NewCodec(next)
	for _, r := range fuzzRecords()[:2] {
		body, err := codec.BinaryFromNative(nil, nextNative(&r, nil, 1, 2))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(singleObjectWith(f, next, body))
	}
	for _, r := range fuzzRecords()[:4] {
		for _, e := range []Encoder{SingleObjectEncoder{}, enc, JSONEncoder{}} {
			if b, err := e.AppendEncode(context.Background(), nil, testTopic, &r); err == nil {
				f.Add(b)
			}
		}
	}
	for _, s := range []string{"", "plain text", "{oops", "\xC3\x01", "\x00", "Ã", " \n{}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, format, err := dec.Decode(context.Background(), b)
		sniffed := Sniff(b)
		if err != nil {
			requireOneOf(t, err, ErrUnknownFormat, ErrUnknownSchema, ErrMalformed)
			if errors.Is(err, ErrUnknownFormat) != (format == FormatUnknown) {
				t.Fatalf("format %v with error %v", format, err)
			}
			if format != FormatUnknown && format != sniffed {
				t.Fatalf("Decode reported %v, Sniff %v", format, sniffed)
			}
			return
		}
		if format != sniffed || format == FormatUnknown {
			t.Fatalf("decoded as %v, Sniff says %v", format, sniffed)
		}
		checkStable(t, dec, enc, r)
	})
}

// FuzzDecodeResolved fuzzes schema resolution: bodies under writer
// schemas this version does not embed (a newer version with fields of many
// types, an external producer's), and current-version bodies read by a
// binary that knows only the versions before it, all found through a
// schema source. Decoding never panics, fails only with the documented
// sentinels, allocates a bounded multiple of its input, and what decodes is
// a normalised Record that re-encodes stably.
func FuzzDecodeResolved(f *testing.F) {
	next := nextSchema(f)
	writers := []string{next, fuzzForeignSchema, CurrentSchema().Text}
	src := newMapSource(writers...)
	current := NewDecoder(WithSchemaSource(src.lookup))
	older := NewDecoder(WithSchemaSource(src.lookup), withVersions(f, previousOnly()))
	headers := make([][singleObjectHeaderLen]byte, len(writers))
	for i, w := range writers {
		headers[i] = singleObjectHeader(fingerprintOf(f, w))
	}

	codec, _ := goavro.NewCodec(next)
	for i, r := range fuzzRecords() {
		body, err := codec.BinaryFromNative(nil, nextNative(&r, goavro.Union("string", "x"), int64(i), float32(i)/3))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(0), body)
		cur, _ := AppendAvro(nil, &r)
		f.Add(uint8(2), cur)
	}
	foreign, _ := goavro.NewCodec(fuzzForeignSchema)
	body, err := foreign.BinaryFromNative(nil, map[string]any{
		"log": goavro.Union("string", "x"), "timestamp": time.Unix(1_700_000_000, 0).UTC(),
		"attributes": map[string]any{"a": goavro.Union("array", []any{int32(1)}), "f": goavro.Union("float", float32(2))},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint8(1), body)
	f.Add(uint8(0), []byte{})
	f.Add(uint8(0), appendAvroLong(nil, math.MaxInt32))

	plain := NewDecoder()
	f.Fuzz(func(t *testing.T, writer uint8, body []byte) {
		i := int(writer) % len(writers)
		dec := current
		if i == 2 {
			dec = older
		}
		b := append(headers[i][:], body...)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		r, f, err := dec.Decode(context.Background(), b)
		runtime.ReadMemStats(&after)
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(1<<20+512*len(b)) {
			t.Fatalf("decoding %d bytes allocated %d", len(b), alloc)
		}
		if f != FormatSingleObject {
			t.Fatalf("format %v", f)
		}
		if err != nil {
			requireOneOf(t, err, ErrMalformed)
			return
		}
		if i == 2 {
			for k := range unknownSince(&r, len(versions)-1) {
				if _, ok := r.Unknown[k]; !ok {
					t.Fatalf("v%d read as v%d: Unknown = %v", len(versions), len(versions)-1, r.Unknown)
				}
			}
		}
		checkStable(t, plain, nil, r)
	})
}

// FuzzAppendAvroMatchesGoavro extends TestAppendAvroMatchesGoavro to
// fuzzer-chosen values.
func FuzzAppendAvroMatchesGoavro(f *testing.F) {
	f.Add("id", "log line", int64(1_700_000_000_000_000_000), int64(0), true, false, "app", "web", "tier", "front", "k", uint8(2), int64(42), 1.5, "s", "partial", "nginx:1.27", "Deployment", "web")
	f.Add("", "", int64(0), int64(math.MinInt64), false, true, "", "", "", "", "", uint8(0), int64(math.MaxInt64), math.NaN(), "\xff", "", "", "", "")
	f.Fuzz(func(t *testing.T, id, log string, ts, size int64, truncated, partial bool, k1, v1, k2, v2, attrKey string, attrKind uint8, attrInt int64, attrFloat float64, attrStr, metadata, image, kind, name string) {
		r := Record{
			ID: id, Log: log, Timestamp: time.Unix(0, ts), OriginalSize: size, Truncated: truncated, Partial: partial,
			Metadata: metadata,
			Kubernetes: Kubernetes{
				Labels: map[string]string{k1: v1, k2: v2}, Annotations: map[string]string{v1: k1},
				NamespaceLabels: map[string]string{k2: v1, kind: name}, ContainerImage: image,
				Workload: Workload{Kind: kind, Name: name},
			},
			Source: Source{Offset: size, Path: attrStr},
		}
		values := []any{nil, attrKind%2 == 0, attrInt, attrFloat, attrStr, []any{attrStr, attrInt, nil, attrFloat}, []string{attrStr, k1}, []any{}}
		r.Attributes = map[string]any{attrKey: values[int(attrKind)%len(values)], k1: attrInt, k2: attrFloat}
		got, err := AppendAvro(nil, &r)
		if err != nil {
			t.Fatal(err)
		}
		if want := goavroBody(t, &r); !bytes.Equal(got, want) {
			t.Fatalf("AppendAvro differs from goavro:\n got % x\nwant % x", got, want)
		}
	})
}
