package schemas

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// pinnedFingerprints are the fingerprints of every released schema version.
// A change here means a released .avsc was edited in a way that changes its
// canonical form, which would orphan every record written with it: add a new
// version instead.
var pinnedFingerprints = map[int]uint64{
	1: 0x30cd06490410055e,
	2: 0xbe67eaa056871a2e,
	3: 0x8f6028b353e1527c,
	4: 0x765adf17ce10efe2,
}

// v1Canonical is the Parsing Canonical Form of v1, written out by hand from
// the Avro specification, so goavro's canonicalisation is checked too.
const v1Canonical = `{"name":"sluice.LogRecord","type":"record","fields":[` +
	`{"name":"id","type":"string"},{"name":"timestamp","type":"long"},{"name":"observed_timestamp","type":"long"},` +
	`{"name":"tenant","type":"string"},{"name":"stream","type":"string"},{"name":"log","type":"string"},` +
	`{"name":"truncated","type":"boolean"},{"name":"original_size","type":"long"},{"name":"invalid_utf8","type":"boolean"},` +
	`{"name":"kubernetes","type":{"name":"sluice.Kubernetes","type":"record","fields":[` +
	`{"name":"namespace_name","type":"string"},{"name":"pod_name","type":"string"},{"name":"pod_id","type":"string"},` +
	`{"name":"container_name","type":"string"},{"name":"docker_id","type":"string"},{"name":"host","type":"string"},` +
	`{"name":"labels","type":{"type":"map","values":"string"}},{"name":"annotations","type":{"type":"map","values":"string"}}]}},` +
	`{"name":"attributes","type":{"type":"map","values":["null","boolean","long","double","string"]}},` +
	`{"name":"source","type":{"name":"sluice.Source","type":"record","fields":[` +
	`{"name":"path","type":"string"},{"name":"offset","type":"long"},{"name":"format","type":"string"},{"name":"shipper","type":"string"}]}}]}`

// v2Canonical is v1Canonical with partial after invalid_utf8; its default
// is not part of the canonical form.
var v2Canonical = strings.Replace(v1Canonical, `{"name":"invalid_utf8","type":"boolean"},`,
	`{"name":"invalid_utf8","type":"boolean"},{"name":"partial","type":"boolean"},`, 1)

// v3Canonical is v2Canonical with metadata after partial, and
// namespace_labels, container_image and the record workload after
// annotations in kubernetes.
var v3Canonical = strings.Replace(strings.Replace(v2Canonical,
	`{"name":"partial","type":"boolean"},`,
	`{"name":"partial","type":"boolean"},{"name":"metadata","type":"string"},`, 1),
	`{"name":"annotations","type":{"type":"map","values":"string"}}]}},`,
	`{"name":"annotations","type":{"type":"map","values":"string"}},`+
		`{"name":"namespace_labels","type":{"type":"map","values":"string"}},{"name":"container_image","type":"string"},`+
		`{"name":"workload","type":{"name":"sluice.Workload","type":"record","fields":[`+
		`{"name":"kind","type":"string"},{"name":"name","type":"string"}]}}]}},`, 1)

// rabin is CRC-64-AVRO as given in the Avro specification, independent of
// goavro's implementation.
func rabin(b []byte) uint64 {
	const empty = 0xc15d213aa4d7a795
	var table [256]uint64
	for i := range table {
		fp := uint64(i)
		for range 8 {
			fp = (fp >> 1) ^ (empty & -(fp & 1))
		}
		table[i] = fp
	}
	fp := uint64(empty)
	for _, c := range b {
		fp = (fp >> 8) ^ table[byte(fp)^c]
	}
	return fp
}

func TestSchemaFingerprints(t *testing.T) {
	vs := SchemaVersions()
	if len(vs) != len(pinnedFingerprints) {
		t.Fatalf("%d embedded versions, %d pinned: pin the new version's fingerprint", len(vs), len(pinnedFingerprints))
	}
	for i, v := range vs {
		if v.Version != i+1 {
			t.Errorf("versions[%d] is v%d", i, v.Version)
		}
		if want := pinnedFingerprints[v.Version]; v.Fingerprint != want {
			t.Errorf("v%d fingerprint %016x, pinned %016x: released schemas must not change", v.Version, v.Fingerprint, want)
		}
		s := byFingerprint[v.Fingerprint]
		if got := rabin([]byte(s.codec.CanonicalSchema())); got != v.Fingerprint {
			t.Errorf("v%d: goavro Rabin %016x, specification Rabin %016x", v.Version, v.Fingerprint, got)
		}
	}
	for i, want := range []string{v1Canonical, v2Canonical, v3Canonical} {
		if got := versions[i].codec.CanonicalSchema(); got != want {
			t.Errorf("v%d canonical form:\n got %s\nwant %s", i+1, got, want)
		}
	}
	if cur := CurrentSchema(); cur != vs[len(vs)-1] {
		t.Errorf("CurrentSchema() = v%d, want the last version v%d", cur.Version, vs[len(vs)-1].Version)
	}
}

// logrecord.avsc is the current schema at its well-known path,
// schemas/logrecord.avsc; it must be a copy of the newest avro/logrecord.vN.avsc.
func TestLogrecordAvscIsCurrent(t *testing.T) {
	b, err := os.ReadFile("logrecord.avsc")
	if err != nil {
		t.Fatal(err)
	}
	if cur := CurrentSchema(); string(b) != cur.Text {
		t.Fatalf("logrecord.avsc differs from avro/logrecord.v%d.avsc: copy the current version over it", cur.Version)
	}
}

// TestNewFieldsHaveDefaults: a field a version adds to the one before it has
// a default, so the registry's BACKWARD check accepts the new version and
// resolving readers can read old data with it.
func TestNewFieldsHaveDefaults(t *testing.T) {
	type field struct {
		Name    string          `json:"name"`
		Type    json.RawMessage `json:"type"`
		Default json.RawMessage `json:"default"`
	}
	// fields lists a schema's record fields by dotted path, nested records
	// included.
	var fields func(prefix string, raw json.RawMessage, out map[string]field)
	fields = func(prefix string, raw json.RawMessage, out map[string]field) {
		var rec struct {
			Type   string  `json:"type"`
			Fields []field `json:"fields"`
		}
		if json.Unmarshal(raw, &rec) != nil || rec.Type != "record" {
			return
		}
		for _, f := range rec.Fields {
			out[prefix+f.Name] = f
			fields(prefix+f.Name+".", f.Type, out)
		}
	}
	vs := SchemaVersions()
	for i := 1; i < len(vs); i++ {
		prev, cur := map[string]field{}, map[string]field{}
		fields("", json.RawMessage(vs[i-1].Text), prev)
		fields("", json.RawMessage(vs[i].Text), cur)
		if len(cur) == 0 {
			t.Fatalf("v%d: no fields found", vs[i].Version)
		}
		for name, f := range cur {
			if _, old := prev[name]; !old && f.Default == nil {
				t.Errorf("v%d adds field %s without a default", vs[i].Version, name)
			}
		}
	}
}

func TestLoadVersions(t *testing.T) {
	v1 := CurrentSchema().Text
	v2 := strings.Replace(v1, `{"name": "host", "type": "string"},`, `{"name": "host", "type": "string"}, {"name": "node", "type": "string", "default": ""},`, 1)
	if v2 == v1 {
		t.Fatal("test schema edit did not apply")
	}
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	tests := []struct {
		name    string
		fs      fstest.MapFS
		wantErr string
	}{
		{"two versions", fstest.MapFS{"avro/logrecord.v1.avsc": file(v1), "avro/logrecord.v2.avsc": file(v2)}, ""},
		{"none", fstest.MapFS{}, "no schema files"},
		{"gap", fstest.MapFS{"avro/logrecord.v1.avsc": file(v1), "avro/logrecord.v3.avsc": file(v2)}, "v2 is missing"},
		{"leading zero", fstest.MapFS{"avro/logrecord.v01.avsc": file(v1)}, "positive integer"},
		{"not a number", fstest.MapFS{"avro/logrecord.vx.avsc": file(v1)}, "positive integer"},
		{"same canonical form", fstest.MapFS{
			"avro/logrecord.v1.avsc": file(v1),
			"avro/logrecord.v2.avsc": file(strings.Replace(v1, `"doc": "The container id."`, `"doc": "Container id."`, 1)),
		}, "same canonical form"},
		{"invalid schema", fstest.MapFS{"avro/logrecord.v1.avsc": file(`{"type":"record"`)}, "parse avro schema"},
		{"not a record", fstest.MapFS{"avro/logrecord.v1.avsc": file(`"string"`)}, "want a record"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs, byFP, err := loadVersions(tt.fs)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(vs) != 2 || vs[1].info.Version != 2 || byFP[vs[1].info.Fingerprint] != vs[1] {
				t.Fatalf("unexpected versions %+v", vs)
			}
			// v1 data still decodes once v2 exists: the point of keeping every
			// version.
			r := sampleRecord()
			body, _ := AppendAvro(nil, &r)
			got, err := decodeAvroBody(vs[0], body)
			if err != nil {
				t.Fatal(err)
			}
			mustEqualRecords(t, got, normalized(r))
		})
	}
}

// avroCases are records for the encoder and round-trip tables.
func avroCases() []struct {
	name string
	r    Record
} {
	long := strings.Repeat("x", 1<<20)
	return []struct {
		name string
		r    Record
	}{
		{"zero", Record{}},
		{"sample", sampleRecord()},
		{"empty maps", Record{
			Kubernetes: Kubernetes{Labels: map[string]string{}, Annotations: map[string]string{}},
			Attributes: map[string]any{},
		}},
		{"one entry maps", Record{
			Kubernetes: Kubernetes{Labels: map[string]string{"app": "web"}, Annotations: map[string]string{"": ""}},
			Attributes: map[string]any{"k": "v"},
		}},
		{"unicode", Record{
			ID: "日本語", Log: "héllo wörld 🚀 \u2028\u2029 \x00\x1f \"quoted\" \\ \ufffd", Tenant: "ß",
			Kubernetes: Kubernetes{Labels: map[string]string{"ключ": "значение", "🔑": "🚪"}},
			Attributes: map[string]any{"名前": "値", "emoji🙂": "😀"},
		}},
		{"extreme integers", Record{
			OriginalSize: math.MaxInt64,
			Source:       Source{Offset: math.MinInt64},
			Attributes: map[string]any{
				"max": int64(math.MaxInt64), "min": int64(math.MinInt64), "zero": int64(0),
				"minus one": int64(-1), "63": int64(63), "64": int64(64), "-64": int64(-64), "-65": int64(-65),
			},
		}},
		{"extreme times", Record{
			Timestamp:         time.Unix(0, math.MaxInt64).UTC(),
			ObservedTimestamp: time.Unix(0, math.MinInt64).UTC(),
		}},
		{"times out of range are clamped", Record{
			Timestamp:         time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
			ObservedTimestamp: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
		}},
		{"one nanosecond after the epoch, in another zone", Record{
			Timestamp:         time.Unix(0, 1).In(time.FixedZone("CET", 3600)),
			ObservedTimestamp: time.Unix(0, -1).UTC(),
		}},
		{"every attribute kind", Record{Attributes: map[string]any{
			"null": nil, "true": true, "false": false, "long": int64(42), "double": 3.25,
			"string": "s", "empty string": "", "negative zero": math.Copysign(0, -1),
			"nan": math.NaN(), "+inf": math.Inf(1), "-inf": math.Inf(-1),
			"smallest": math.SmallestNonzeroFloat64, "largest": math.MaxFloat64,
		}}},
		{"widened attribute types", Record{Attributes: map[string]any{
			"int": int(-7), "int8": int8(-8), "int16": int16(-16), "int32": int32(-32),
			"uint": uint(7), "uint8": uint8(8), "uint16": uint16(16), "uint32": uint32(math.MaxUint32),
			"uint64": uint64(math.MaxInt64), "float32": float32(1.5),
		}}},
		{"flags", Record{Truncated: true, InvalidUTF8: true, Partial: true, OriginalSize: 1 << 20}},
		{"partial", Record{Log: "a line whose end never came", Partial: true}},
		{"pod metadata", podRecord()},
		{"path-only metadata", Record{Metadata: MetadataPartial, Kubernetes: Kubernetes{NamespaceName: "shop", PodName: "cart-0"}}},
		{"one entry namespace labels, workload kind only", Record{Kubernetes: Kubernetes{
			NamespaceLabels: map[string]string{"team": "shop"}, Workload: Workload{Kind: "ReplicaSet"},
		}}},
		{"empty namespace labels", Record{Kubernetes: Kubernetes{NamespaceLabels: map[string]string{}, ContainerImage: "busybox"}}},
		{"long strings", Record{Log: long, ID: strings.Repeat("é", 64), Kubernetes: Kubernetes{Labels: map[string]string{long[:128]: long[:200]}}}},
	}
}

func TestAppendAvroZeroRecord(t *testing.T) {
	// Every field of the zero record encodes as a single 0 byte: empty
	// strings, 0 longs, false, empty maps.
	got, err := AppendAvro(nil, &Record{})
	if err != nil {
		t.Fatal(err)
	}
	if want := make([]byte, zeroBodyLen); !bytes.Equal(got, want) {
		t.Fatalf("got % x, want % x", got, want)
	}
}

// TestAppendAvroMatchesGoavro pins the hand-written encoder to goavro: for
// every record, AppendAvro must produce exactly the bytes goavro produces
// (map entries sorted, which goavro leaves in random order).
func TestAppendAvroMatchesGoavro(t *testing.T) {
	check := func(t *testing.T, r *Record) {
		t.Helper()
		got, err := AppendAvro(nil, r)
		if err != nil {
			t.Fatal(err)
		}
		if want := goavroBody(t, r); !bytes.Equal(got, want) {
			t.Fatalf("AppendAvro differs from goavro:\n got % x\nwant % x", head(got), head(want))
		}
	}
	for _, tt := range avroCases() {
		t.Run(tt.name, func(t *testing.T) { check(t, &tt.r) })
	}
	t.Run("random", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		for range 3000 {
			r := randomRecord(rng, rng.IntN(4) != 0)
			check(t, &r)
		}
	})
}

func head(b []byte) []byte { return b[:min(len(b), 512)] }

func TestAppendAvroAppends(t *testing.T) {
	r := sampleRecord()
	body, _ := AppendAvro(nil, &r)
	prefix := []byte("prefix")
	got, err := AppendAvro(bytes.Clone(prefix), &r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, append(prefix, body...)) {
		t.Fatal("AppendAvro did not append to dst")
	}
	so, _ := AppendSingleObject(bytes.Clone(prefix), &r)
	hdr := singleObjectHeader(CurrentSchema().Fingerprint)
	if !bytes.Equal(so, append(append(bytes.Clone(prefix), hdr[:]...), body...)) {
		t.Fatal("AppendSingleObject is not prefix + header + body")
	}
}

func TestAppendInvalidAttributes(t *testing.T) {
	for _, v := range []any{struct{}{}, []any{[]any{}}, []any{"a", map[string]any{}}, []int{1}, map[string]any{}, uint64(math.MaxUint64), uint(math.MaxUint64), time.Now(), new(int64)} {
		r := Record{Log: "x", Attributes: map[string]any{"a": "ok", "bad": v}}
		dst := []byte("keep")
		for name, enc := range map[string]func([]byte, *Record) ([]byte, error){
			"AppendAvro": AppendAvro, "AppendSingleObject": AppendSingleObject, "AppendJSON": AppendJSON,
		} {
			got, err := enc(dst, &r)
			if !errors.Is(err, ErrInvalidRecord) {
				t.Errorf("%s(%T): err = %v, want ErrInvalidRecord", name, v, err)
			}
			if string(got) != "keep" {
				t.Errorf("%s(%T): dst = %q, want it unchanged", name, v, got)
			}
		}
	}
}

// TestSingleObjectRoundTrip documents what survives encode+decode, for every
// Avro format (single-object and Confluent share the body):
//   - every string, bool and int64 exactly, including math.MinInt64/MaxInt64;
//   - float64 attributes bit for bit (NaN, ±Inf, -0 included);
//   - timestamps as instants within 1677-09-21..2262-04-11, returned in UTC;
//     the zero time round-trips, the Unix epoch itself reads back as the
//     zero time, times outside the range are clamped;
//   - nil and empty maps both read back as nil;
//   - other Go integer and float attribute types read back as int64/float64.
func TestSingleObjectRoundTrip(t *testing.T) {
	for _, tt := range avroCases() {
		t.Run(tt.name, func(t *testing.T) {
			b, err := AppendSingleObject(nil, &tt.r)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeSingleObject(b)
			if err != nil {
				t.Fatal(err)
			}
			mustEqualRecords(t, got, normalized(tt.r))
		})
	}
	t.Run("clamping", func(t *testing.T) {
		r := Record{
			Timestamp:         time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC),
			ObservedTimestamp: time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC),
		}
		b, _ := AppendSingleObject(nil, &r)
		got, _ := DecodeSingleObject(b)
		if got.Timestamp.UnixNano() != math.MaxInt64 || got.ObservedTimestamp.UnixNano() != math.MinInt64 {
			t.Fatalf("got %v, %v; want the int64 nanosecond limits", got.Timestamp, got.ObservedTimestamp)
		}
	})
	t.Run("epoch reads back as unset", func(t *testing.T) {
		r := Record{Timestamp: time.Unix(0, 0)}
		b, _ := AppendSingleObject(nil, &r)
		got, _ := DecodeSingleObject(b)
		if !got.Timestamp.IsZero() {
			t.Fatalf("got %v, want the zero time", got.Timestamp)
		}
	})
	t.Run("random", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(3, 4))
		for range 2000 {
			r := randomRecord(rng, true)
			b, err := AppendSingleObject(nil, &r)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeSingleObject(b)
			if err != nil {
				t.Fatal(err)
			}
			mustEqualRecords(t, got, normalized(r))
		}
	})
}

// zeroBody is the current (v3) body of Record{}: 28 zero bytes. bodyWith
// replaces the byte of one field with other bytes, to build malformed
// bodies. (v2's has 23: no metadata, namespace_labels, container_image or
// workload; v1's 22: no partial either. Fields up to partial are at the
// same offsets in every version.)
const (
	fieldLog             = 5
	fieldTruncated       = 6
	fieldOriginalSize    = 7
	fieldInvalidUTF8     = 8
	fieldPartial         = 9
	fieldMetadata        = 10
	fieldLabels          = 17
	fieldNamespaceLabels = 19
	fieldContainerImage  = 20
	fieldWorkloadKind    = 21
	fieldWorkloadName    = 22
	fieldAttributes      = 23
	fieldShipper         = 27
	zeroBodyLen          = 28
	zeroBodyLenV2        = 23
	zeroBodyLenV1        = 22
)

func bodyWith(field int, repl ...byte) []byte {
	b := make([]byte, 0, zeroBodyLen+len(repl))
	b = append(b, make([]byte, field)...)
	b = append(b, repl...)
	return append(b, make([]byte, zeroBodyLen-field-1)...)
}

func singleObject(body []byte) []byte {
	h := singleObjectHeader(CurrentSchema().Fingerprint)
	return append(h[:], body...)
}

func TestDecodeSingleObjectErrors(t *testing.T) {
	maxInt31 := appendAvroLong(nil, math.MaxInt32)
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"nil", nil, ErrMalformed},
		{"magic only", []byte{0xC3, 0x01}, ErrMalformed},
		{"short fingerprint", []byte{0xC3, 0x01, 1, 2, 3}, ErrMalformed},
		{"wrong magic", append([]byte{0xC3, 0x02}, singleObject(make([]byte, zeroBodyLen))[2:]...), ErrMalformed},
		{"unknown fingerprint", append([]byte{0xC3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8}, make([]byte, zeroBodyLen)...), ErrUnknownSchema},
		{"empty body", singleObject(nil), ErrMalformed},
		{"trailing byte", singleObject(append(make([]byte, zeroBodyLen), 0)), ErrMalformed},
		{"map count 2^31-1 (goavro would reserve ~80 GiB)", singleObject(bodyWith(fieldLabels, maxInt31...)), ErrMalformed},
		{"attribute count 2^31-1", singleObject(bodyWith(fieldAttributes, maxInt31...)), ErrMalformed},
		{"negative block count min int64", singleObject(bodyWith(fieldLabels, appendAvroLong(nil, math.MinInt64)...)), ErrMalformed},
		{"string length beyond data", singleObject(bodyWith(fieldLog, appendAvroLong(nil, 1<<40)...)), ErrMalformed},
		{"negative string length", singleObject(bodyWith(fieldLog, appendAvroLong(nil, -3)...)), ErrMalformed},
		{"overlong varint", singleObject(bodyWith(fieldOriginalSize, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00)), ErrMalformed},
		{"varint overflow", singleObject(bodyWith(fieldOriginalSize, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f)), ErrMalformed},
		{"boolean 2", singleObject(bodyWith(fieldTruncated, 2)), ErrMalformed},
		{"partial 2", singleObject(bodyWith(fieldPartial, 2)), ErrMalformed},
		{"v1 body under the v3 fingerprint", singleObject(make([]byte, zeroBodyLenV1)), ErrMalformed},
		{"v2 body under the v3 fingerprint", singleObject(make([]byte, zeroBodyLenV2)), ErrMalformed},
		{"namespace label count 2^31-1", singleObject(bodyWith(fieldNamespaceLabels, maxInt31...)), ErrMalformed},
		{"duplicate namespace label", singleObject(bodyWith(fieldNamespaceLabels, 4, 2, 'k', 0, 2, 'k', 0, 0)), ErrMalformed},
		{"metadata length beyond data", singleObject(bodyWith(fieldMetadata, appendAvroLong(nil, 1<<20)...)), ErrMalformed},
		{"workload name cut short", singleObject(bodyWith(fieldWorkloadName, 20, 'x')), ErrMalformed},
		{"union index 5", singleObject(bodyWith(fieldAttributes, 2, 2, 'k', 10, 0)), ErrMalformed},
		{"union index -1", singleObject(bodyWith(fieldAttributes, 2, 2, 'k', 1, 0)), ErrMalformed},
		{"duplicate map key", singleObject(bodyWith(fieldLabels, 4, 2, 'k', 0, 2, 'k', 0, 0)), ErrMalformed},
		{"truncated last field", singleObject(bodyWith(fieldShipper, 4, 'x')[:zeroBodyLen]), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeSingleObject(tt.b)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("every truncation of a real record", func(t *testing.T) {
		r := sampleRecord()
		b, _ := AppendSingleObject(nil, &r)
		for n := range len(b) {
			if _, err := DecodeSingleObject(b[:n]); !errors.Is(err, ErrMalformed) {
				t.Fatalf("prefix of %d/%d bytes: err = %v, want ErrMalformed", n, len(b), err)
			}
		}
	})
}

func TestDecodeRepairsInvalidUTF8(t *testing.T) {
	b := singleObject(bodyWith(fieldLog, 8, 'a', 0xff, 0xfe, 'b'))
	got, err := DecodeSingleObject(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Log != "a\ufffdb" || !got.InvalidUTF8 {
		t.Fatalf("Log = %q, InvalidUTF8 = %v; want \"a\\ufffdb\", true", got.Log, got.InvalidUTF8)
	}

	// Keys that repair to the same string resolve the same way whatever
	// order goavro's map iterates in: a valid key wins, else the smallest
	// original key.
	labels := []byte{6, 2, 0xff, 2, 'a', 2, 0xfe, 2, 'b', 6, 0xef, 0xbf, 0xbd, 2, 'c', 0}
	b = singleObject(bodyWith(fieldLabels, labels...))
	for range 20 {
		got, err := DecodeSingleObject(b)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]string{"\ufffd": "c"}; !mapsEqualNil(got.Kubernetes.Labels, want) {
			t.Fatalf("labels = %q, want %q", got.Kubernetes.Labels, want)
		}
	}
	attrs := []byte{4, 2, 0xff, 8, 2, 'a', 2, 0xfe, 8, 2, 'b', 0}
	b = singleObject(bodyWith(fieldAttributes, attrs...))
	for range 20 {
		got, err := DecodeSingleObject(b)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]any{"\ufffd": "b"}; !attrsEqual(got.Attributes, want) {
			t.Fatalf("attributes = %q, want %q", got.Attributes, want)
		}
	}
}

// The golden files pin the wire format: testdata/singleobject.vN.golden is
// goldenRecord(N) encoded with version N. The current version must still encode
// to its file; every version's file must keep decoding. When adding a
// version, write its file with go test ./schemas -run TestGolden -update.
func TestGoldenSingleObject(t *testing.T) {
	cur := CurrentSchema()
	r := goldenRecord(cur.Version)
	golden := func(version int) string {
		return filepath.Join("testdata", "singleobject.v"+strconv.Itoa(version)+".golden")
	}
	if *update {
		// Only the current version's file: older ones are history.
		b, _ := AppendSingleObject(nil, &r)
		if err := os.WriteFile(golden(cur.Version), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range SchemaVersions() {
		path := golden(v.Version)
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeSingleObject(want)
		if err != nil {
			t.Fatalf("decode %s: %v", path, err)
		}
		mustEqualRecords(t, got, normalized(goldenRecord(v.Version)))
		if v.Version == cur.Version {
			b, _ := AppendSingleObject(nil, &r)
			if !bytes.Equal(b, want) {
				t.Fatalf("encoding changed from %s:\n got % x\nwant % x", path, b, want)
			}
		}
	}
}

// goldenRecord is the record of version v's golden file: sampleRecord, with
// the pod metadata of podRecord from v3 on, and arrayRecord's array
// attributes from v4 on.
func goldenRecord(v int) Record {
	if v >= 3 {
		return podRecord()
	}
	return sampleRecord()
}

func TestCheckAvroDepth(t *testing.T) {
	// A recursive schema: each level is one union byte, so a small body
	// nests deeply. The checker must refuse before goavro recurses.
	s, err := newAvroSchema(`{"type":"record","name":"L","fields":[{"name":"next","type":["null","L"]}]}`)
	if err != nil {
		t.Fatal(err)
	}
	deep := append(bytes.Repeat([]byte{2}, 10_000), 0)
	if err := checkAvro(s.tree, deep); err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Fatalf("err = %v, want a nesting error", err)
	}
	shallow := append(bytes.Repeat([]byte{2}, 10), 0)
	if err := checkAvro(s.tree, shallow); err != nil {
		t.Fatal(err)
	}
}

func TestCheckAvroZeroWidthArrays(t *testing.T) {
	s, err := newAvroSchema(`{"type":"record","name":"A","fields":[{"name":"a","type":{"type":"array","items":"null"}}]}`)
	if err != nil {
		t.Fatal(err)
	}
	// 2^40 nulls in 6 bytes.
	b := append(appendAvroLong(nil, 1<<40), 0)
	if _, err := decodeAvroBody(s, b); !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v, want ErrMalformed", err)
	}
}

// TestDecodeOlderVersions: records written with v1 and v2, before the
// fields of later versions existed (by shippers not yet upgraded, or still
// in Kafka), decode in both Avro formats, with those fields zero.
func TestDecodeOlderVersions(t *testing.T) {
	for _, v := range olderVersions() {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			reg, cl := testRegistry(t)
			id := 70 + v
			reg.SeedSchema(fmt.Sprintf("v%d-value", v), 1, id, sr.Schema{Schema: versions[v-1].info.Text})
			dec := NewDecoder(WithRegistry(cl))
			ctx := context.Background()
			check := func(t *testing.T, r *Record) {
				t.Helper()
				want := asWrittenWith(*r, v)
				so := olderSingleObject(t, v, r)
				if [2]byte(so[:2]) != singleObjectMagic || binary.LittleEndian.Uint64(so[2:10]) != pinnedFingerprints[v] {
					t.Fatalf("not a v%d single object: % x", v, head(so))
				}
				confluent := append([]byte{0, 0, 0, 0, byte(id)}, so[singleObjectHeaderLen:]...)
				for _, b := range [][]byte{so, confluent} {
					got, _, err := dec.Decode(ctx, b)
					if err != nil {
						t.Fatal(err)
					}
					mustEqualRecords(t, got, want)
				}
			}
			for _, tt := range avroCases() {
				t.Run(tt.name, func(t *testing.T) { check(t, &tt.r) })
			}
			t.Run("random", func(t *testing.T) {
				rng := rand.New(rand.NewPCG(15, uint64(16+v)))
				for range 500 {
					r := randomRecord(rng, true)
					check(t, &r)
				}
			})
		})
	}
}

// TestKubernetesCacheEncoding: a record whose Kubernetes block was
// encoded ahead encodes to the same bytes as one encoded as it goes, and
// changing the block after ForgetEncoding and a new CacheEncoding shows.
func TestKubernetesCacheEncoding(t *testing.T) {
	r := sampleRecord()
	r.Kubernetes.Labels = map[string]string{"app": "cart", "team": "shop", "version": "1.2.3", "app.kubernetes.io/name": "cart"}
	r.Kubernetes.NamespaceLabels = map[string]string{"sluice.io/tenant": "shop"}
	r.Kubernetes.ContainerImage = "registry.example/cart:1.2.3"
	r.Kubernetes.Workload = Workload{Kind: "Deployment", Name: "cart"}
	plain, err := AppendSingleObject(nil, &r)
	if err != nil {
		t.Fatal(err)
	}
	cached := r
	cached.Kubernetes.CacheEncoding()
	got, err := AppendSingleObject(nil, &cached)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, plain) {
		t.Fatal("the cached encoding differs from the plain one")
	}
	back, err := DecodeSingleObject(got)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Kubernetes.Labels, r.Kubernetes.Labels) || back.Kubernetes.Workload != r.Kubernetes.Workload {
		t.Errorf("decoded %+v", back.Kubernetes)
	}
	cached.Kubernetes.ForgetEncoding()
	cached.Kubernetes.Labels = map[string]string{"app": "other"}
	cached.Kubernetes.CacheEncoding()
	got, _ = AppendSingleObject(nil, &cached)
	if back, _ := DecodeSingleObject(got); back.Kubernetes.Labels["app"] != "other" || len(back.Kubernetes.Labels) != 1 {
		t.Errorf("after a new CacheEncoding: labels %v", back.Kubernetes.Labels)
	}
}
