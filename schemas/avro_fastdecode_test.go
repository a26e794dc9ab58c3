package schemas

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
)

// The hand-written decoder is pinned to the goavro path: for any body, both
// must return DeepEqual Records or both an ErrMalformed.

func TestFastDecoderVersion(t *testing.T) {
	cur := CurrentSchema()
	if cur.Version != fastDecoderVersion {
		t.Fatalf("current schema is v%d but decodeFastBody reads v%d: write its decoder in avro_fastdecode.go", cur.Version, fastDecoderVersion)
	}
	if got := versions[fastDecoderVersion-1].info.Fingerprint; got != fastDecoderFingerprint {
		t.Fatalf("v%d fingerprint is %#016x, fastDecoderFingerprint %#016x", fastDecoderVersion, got, uint64(fastDecoderFingerprint))
	}
	// Every version is on the fast path, under its own fingerprint.
	if len(fastDecoderFingerprints) != len(versions) {
		t.Fatalf("%d versions on the fast path, %d embedded", len(fastDecoderFingerprints), len(versions))
	}
	for fp, v := range fastDecoderFingerprints {
		if got := versions[v-1].info.Fingerprint; got != fp {
			t.Errorf("v%d fingerprint is %#016x, fastDecoderFingerprints says %#016x", v, got, fp)
		}
		if versions[v-1].fast != v {
			t.Errorf("v%d decodes as fast version %d", v, versions[v-1].fast)
		}
	}
}

// floatBits stands for a float64 attribute in comparableRecord, so that
// DeepEqual compares floats bit for bit (NaN equals NaN, -0 differs from 0).
type floatBits uint64

func comparableRecord(r Record) Record {
	if r.Attributes == nil {
		return r
	}
	attrs := make(map[string]any, len(r.Attributes))
	for k, v := range r.Attributes {
		if f, ok := v.(float64); ok {
			v = floatBits(math.Float64bits(f))
		}
		attrs[k] = v
	}
	r.Attributes = attrs
	return r
}

// sameAsGoavro decodes a current-version body both ways and fails unless the
// results agree. It reports whether the body decoded.
func sameAsGoavro(t testing.TB, body []byte) bool {
	t.Helper()
	return sameAsGoavroVersion(t, fastDecoderVersion, body)
}

// sameAsGoavroVersion is sameAsGoavro for a body written with version.
func sameAsGoavroVersion(t testing.TB, version int, body []byte) bool {
	t.Helper()
	got, gotErr := decodeFastBody(body, version)
	want, wantErr := decodeGoavroBody(versions[version-1], body)
	if (gotErr != nil) != (wantErr != nil) {
		t.Fatalf("body % x:\nfast error:   %v\ngoavro error: %v", head(body), gotErr, wantErr)
	}
	if gotErr != nil {
		if !errors.Is(gotErr, ErrMalformed) || !errors.Is(wantErr, ErrMalformed) {
			t.Fatalf("errors wrap different sentinels: fast %v, goavro %v", gotErr, wantErr)
		}
		return false
	}
	if !reflect.DeepEqual(comparableRecord(got), comparableRecord(want)) {
		t.Fatalf("body % x: records differ:\n%s\nfast:   %#v\ngoavro: %#v", head(body), diffRecords(got, want), got, want)
	}
	return true
}

func mustAppendAvro(t testing.TB, r *Record) []byte {
	t.Helper()
	b, err := AppendAvro(nil, r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// reblockAvroMaps rewrites one datum of type t at the start of b with each
// map's entries shuffled and split into random blocks, some with a negative
// count and a byte size (sometimes a wrong one, which readers ignore), as
// other writers may send them. It returns the datum and the bytes after it.
func reblockAvroMaps(rng *rand.Rand, t *avroType, b []byte) (out, rest []byte, err error) {
	return rewriteAvroMaps(t, b, func(entries []avroEntry) []byte {
		rng.Shuffle(len(entries), func(i, j int) { entries[i], entries[j] = entries[j], entries[i] })
		var out []byte
		for len(entries) > 0 {
			n := 1 + rng.IntN(len(entries))
			var block []byte
			for _, e := range entries[:n] {
				block = append(block, e.enc...)
			}
			entries = entries[n:]
			if rng.IntN(2) == 0 {
				out = appendAvroLong(out, int64(n))
			} else {
				size := int64(len(block))
				if rng.IntN(4) == 0 {
					size = rng.Int64N(1000) - 500
				}
				out = appendAvroLong(appendAvroLong(out, -int64(n)), size)
			}
			out = append(out, block...)
		}
		return out
	})
}

func reblocked(t testing.TB, rng *rand.Rand, body []byte) []byte {
	t.Helper()
	out, rest, err := reblockAvroMaps(rng, currentSchema().tree, body)
	if err != nil || len(rest) != 0 {
		t.Fatalf("reblock: %v (%d bytes left)", err, len(rest))
	}
	return out
}

// overlong rewrites a one-byte varint as an equivalent non-minimal two-byte
// one, which Avro readers accept.
func overlong(v byte) []byte { return []byte{v | 0x80, 0} }

func TestFastDecodeMatchesGoavro(t *testing.T) {
	for _, tt := range avroCases() {
		t.Run(tt.name, func(t *testing.T) {
			body := mustAppendAvro(t, &tt.r)
			if !sameAsGoavro(t, body) {
				t.Fatal("does not decode")
			}
			got, _ := decodeFastBody(body, fastDecoderVersion)
			mustEqualRecords(t, got, normalized(tt.r))
		})
	}
	t.Run("random", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(5, 6))
		for range 3000 {
			r := randomRecord(rng, rng.IntN(4) != 0)
			body := mustAppendAvro(t, &r)
			if !sameAsGoavro(t, body) {
				t.Fatal("does not decode")
			}
			if !sameAsGoavro(t, reblocked(t, rng, body)) {
				t.Fatal("reblocked body does not decode")
			}
		}
	})
	t.Run("mutated", func(t *testing.T) {
		// Random byte edits of valid bodies: mostly errors, some valid
		// bodies with other values.
		rng := rand.New(rand.NewPCG(7, 8))
		var decoded int
		for range 20000 {
			r := randomRecord(rng, rng.IntN(2) == 0)
			body := mustAppendAvro(t, &r)
			for range 1 + rng.IntN(3) {
				i := rng.IntN(len(body))
				switch rng.IntN(3) {
				case 0:
					body[i] = byte(rng.Uint32())
				case 1:
					body[i] ^= 1 << rng.IntN(8)
				default:
					body = append(body[:i], body[i+1:]...)
				}
			}
			if sameAsGoavro(t, body) {
				decoded++
			}
		}
		t.Logf("%d of 20000 mutated bodies decoded", decoded)
	})

	// Hand-made bodies, from the zero record's zero bytes (see bodyWith).
	maxInt31 := appendAvroLong(nil, math.MaxInt32)
	bodies := []struct {
		name string
		body []byte
		ok   bool
	}{
		{"zero", bodyWith(0, 0), true},
		{"labels in two blocks", bodyWith(fieldLabels, 2, 2, 'a', 2, 'x', 2, 2, 'b', 0, 0), true},
		{"labels in a negative block", bodyWith(fieldLabels, 3, 6, 2, 'a', 2, 'x', 2, 'b', 0, 0), true},
		{"negative block with a wrong byte size", bodyWith(fieldLabels, 1, 0x7f, 2, 'a', 2, 'x', 0), true},
		{"negative block with a negative byte size", bodyWith(fieldLabels, 1, 3, 2, 'a', 2, 'x', 0), true},
		{"empty negative block count", bodyWith(fieldLabels, 1, 0, 0), false}, // -1 entries of 0 bytes, then missing data
		{"attributes in blocks of each kind", bodyWith(fieldAttributes,
			3, 20, 2, 'n', 0, 2, 'b', 2, 1, // -2 entries, 10 bytes: null, true
			4, 2, 'l', 4, 0x80, 0x04, 2, 'd', 6, 0, 0, 0, 0, 0, 0, 0xf8, 0x7f, // 2 entries: 256, NaN
			2, 2, 's', 8, 4, 0xff, 'x', // 1 entry: "\xffx"
			0), true},
		{"non-minimal varints", append(append(overlong(2), 'a'), bodyWith(1, overlong(4)...)[1:]...), true},
		{"invalid UTF-8 log", bodyWith(fieldLog, 8, 'a', 0xff, 0xfe, 'b'), true},
		{"invalid UTF-8 log with the flag set", append(bodyWith(fieldLog, 2, 0xff)[:fieldLog+2], append([]byte{0, 0, 1}, make([]byte, zeroBodyLen-fieldLog-4)...)...), true},
		{"colliding repaired label keys", bodyWith(fieldLabels, 6, 2, 0xff, 2, 'a', 2, 0xfe, 2, 'b', 6, 0xef, 0xbf, 0xbd, 2, 'c', 0), true},
		{"colliding repaired keys, no valid one", bodyWith(fieldLabels, 4, 2, 0xfe, 2, 'b', 2, 0xff, 2, 'a', 0), true},
		{"colliding repaired attribute keys", bodyWith(fieldAttributes, 4, 2, 0xff, 8, 2, 'a', 2, 0xfe, 8, 2, 'b', 0), true},
		{"duplicate key", bodyWith(fieldLabels, 4, 2, 'k', 0, 2, 'k', 0, 0), false},
		{"duplicate key across blocks", bodyWith(fieldLabels, 2, 2, 'k', 0, 2, 2, 'k', 0, 0), false},
		{"duplicate invalid key", bodyWith(fieldAttributes, 4, 2, 0xff, 0, 2, 0xff, 0, 0), false},
		{"map count 2^31-1", bodyWith(fieldLabels, maxInt31...), false},
		{"attribute count 2^31-1", bodyWith(fieldAttributes, maxInt31...), false},
		{"negative block count 2^31-1", bodyWith(fieldLabels, appendAvroLong(appendAvroLong(nil, -math.MaxInt32), 2)...), false},
		{"negative block count min int64", bodyWith(fieldLabels, appendAvroLong(nil, math.MinInt64)...), false},
		{"string length beyond data", bodyWith(fieldLog, appendAvroLong(nil, 1<<40)...), false},
		{"negative string length", bodyWith(fieldLog, appendAvroLong(nil, -3)...), false},
		{"negative key length", bodyWith(fieldLabels, 2, 1, 0, 0), false},
		{"overlong varint", bodyWith(fieldOriginalSize, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00), false},
		{"varint overflow", bodyWith(fieldOriginalSize, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f), false},
		{"largest 10-byte varint", bodyWith(fieldOriginalSize, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), true},
		{"boolean 2", bodyWith(fieldTruncated, 2), false},
		{"partial", bodyWith(fieldPartial, 1), true},
		{"partial 2", bodyWith(fieldPartial, 2), false},
		{"invalid UTF-8 log, partial", append(bodyWith(fieldLog, 2, 0xff)[:fieldLog+2], append([]byte{0, 0, 0, 1}, make([]byte, zeroBodyLen-fieldLog-5)...)...), true},
		{"v1 zero body", make([]byte, zeroBodyLenV1), false},
		{"v2 zero body", make([]byte, zeroBodyLenV2), false},
		{"metadata partial", bodyWith(fieldMetadata, 14, 'p', 'a', 'r', 't', 'i', 'a', 'l'), true},
		{"metadata invalid UTF-8", bodyWith(fieldMetadata, 4, 'p', 0xff), true},
		{"namespace labels in two blocks", bodyWith(fieldNamespaceLabels, 2, 2, 'a', 2, 'x', 1, 8, 2, 'b', 0, 0), true},
		{"colliding repaired namespace label keys", bodyWith(fieldNamespaceLabels, 4, 2, 0xfe, 2, 'b', 2, 0xff, 2, 'a', 0), true},
		{"duplicate namespace label", bodyWith(fieldNamespaceLabels, 4, 2, 'k', 0, 2, 'k', 0, 0), false},
		{"namespace label count 2^31-1", bodyWith(fieldNamespaceLabels, maxInt31...), false},
		{"container image", bodyWith(fieldContainerImage, 6, 'n', 'g', 'x'), true},
		{"workload", append(bodyWith(fieldWorkloadKind, 2, 'J')[:fieldWorkloadName+1], append([]byte{2, 'j'}, make([]byte, zeroBodyLen-fieldWorkloadName-1)...)...), true},
		{"workload kind beyond data", bodyWith(fieldWorkloadKind, 40, 'x'), false},
		{"negative container image length", bodyWith(fieldContainerImage, 1), false},
		{"union index 5", bodyWith(fieldAttributes, 2, 2, 'k', 10, 0), false},
		{"union index 257", bodyWith(fieldAttributes, 2, 2, 'k', 0x82, 0x04, 0), false},
		{"union index -1", bodyWith(fieldAttributes, 2, 2, 'k', 1, 0), false},
		{"short double", bodyWith(fieldAttributes, 2, 2, 'k', 6, 0, 0, 0, 0, 0, 0, 0), false},
		{"empty", nil, false},
		{"trailing byte", make([]byte, zeroBodyLen+1), false},
	}
	for _, tt := range bodies {
		t.Run(tt.name, func(t *testing.T) {
			if ok := sameAsGoavro(t, tt.body); ok != tt.ok {
				t.Fatalf("decoded = %v, want %v", ok, tt.ok)
			}
		})
	}
}

func TestFastDecodeTruncated(t *testing.T) {
	var rs []Record
	for _, c := range avroCases() {
		if c.name != "long strings" {
			rs = append(rs, c.r)
		}
	}
	rng := rand.New(rand.NewPCG(11, 12))
	for range 20 {
		rs = append(rs, randomRecord(rng, false))
	}
	for _, r := range rs {
		body := mustAppendAvro(t, &r)
		for _, b := range [][]byte{body, reblocked(t, rng, body)} {
			for n := range len(b) {
				_, err := decodeFastBody(b[:n], fastDecoderVersion)
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("prefix of %d/%d bytes: err = %v, want ErrMalformed", n, len(b), err)
				}
			}
		}
	}
}

func FuzzFastDecodeMatchesGoavro(f *testing.F) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, r := range fuzzRecords() {
		body, _ := AppendAvro(nil, &r)
		f.Add(body)
		f.Add(reblocked(f, rng, body))
	}
	f.Add(bodyWith(fieldLabels, 3, 6, 2, 'a', 2, 'x', 2, 'b', 0, 0))
	f.Add(bodyWith(fieldLabels, 6, 2, 0xff, 2, 'a', 2, 0xfe, 2, 'b', 6, 0xef, 0xbf, 0xbd, 2, 'c', 0))
	f.Add(bodyWith(fieldAttributes, 4, 2, 0xff, 8, 2, 'a', 2, 0xfe, 8, 2, 'b', 0))
	f.Add(bodyWith(fieldLog, 8, 'a', 0xff, 0xfe, 'b'))
	// An array attribute in two blocks, the first with its byte size.
	f.Add(bodyWith(fieldAttributes, 2, 2, 'a', 10, 3, 8, 8, 2, 'x', 0, 2, 4, 2, 0, 0))
	f.Add(bodyWith(fieldNamespaceLabels, 4, 2, 0xfe, 2, 'b', 2, 0xff, 2, 'a', 0))
	f.Add(bodyWith(fieldMetadata, 4, 'p', 0xff))
	f.Fuzz(func(t *testing.T, body []byte) {
		sameAsGoavro(t, body)
	})
}

// TestFastDecodeOlderMatchesGoavro: v1 and v2 bodies, which lack the fields
// of later versions, take the fast path too and decode as goavro decodes
// them, those fields zero.
func TestFastDecodeOlderMatchesGoavro(t *testing.T) {
	for _, v := range olderVersions() {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) { testFastDecodeOlder(t, v) })
	}
}

func testFastDecodeOlder(t *testing.T, v int) {
	for _, tt := range avroCases() {
		t.Run(tt.name, func(t *testing.T) {
			body := olderBody(t, v, &tt.r)
			if !sameAsGoavroVersion(t, v, body) {
				t.Fatal("does not decode")
			}
			got, _ := decodeFastBody(body, v)
			mustEqualRecords(t, got, asWrittenWith(tt.r, v))
		})
	}
	rng := rand.New(rand.NewPCG(17, uint64(18+v)))
	t.Run("random", func(t *testing.T) {
		for range 2000 {
			r := randomRecord(rng, rng.IntN(4) != 0)
			body := olderBody(t, v, &r)
			if !sameAsGoavroVersion(t, v, body) {
				t.Fatal("does not decode")
			}
			if b, rest, err := reblockAvroMaps(rng, versions[v-1].tree, body); err != nil || len(rest) != 0 {
				t.Fatalf("reblock: %v", err)
			} else if !sameAsGoavroVersion(t, v, b) {
				t.Fatal("reblocked body does not decode")
			}
		}
	})
	t.Run("mutated", func(t *testing.T) {
		for range 5000 {
			r := randomRecord(rng, rng.IntN(2) == 0)
			body := olderBody(t, v, &r)
			for range 1 + rng.IntN(3) {
				i := rng.IntN(len(body))
				switch rng.IntN(3) {
				case 0:
					body[i] = byte(rng.Uint32())
				case 1:
					body[i] ^= 1 << rng.IntN(8)
				default:
					body = append(body[:i], body[i+1:]...)
				}
			}
			sameAsGoavroVersion(t, v, body)
		}
	})
	// v3's body has the current layout; only the attribute union differs.
	zeroLen := map[int]int{1: zeroBodyLenV1, 2: zeroBodyLenV2, 3: zeroBodyLen}[v]
	tests := []struct {
		name string
		body []byte
		ok   bool
	}{
		{"zero", make([]byte, zeroLen), true},
		{"invalid_utf8 set", bodyWith(fieldInvalidUTF8, 1)[:zeroLen], true},
		{"current zero body", make([]byte, zeroBodyLen), zeroLen == zeroBodyLen},
		{"boolean 2", bodyWith(fieldInvalidUTF8, 2)[:zeroLen], false},
	}
	if v == 2 {
		tests = append(tests,
			struct {
				name string
				body []byte
				ok   bool
			}{"partial set", bodyWith(fieldPartial, 1)[:zeroLen], true},
			struct {
				name string
				body []byte
				ok   bool
			}{"v1 zero body", make([]byte, zeroBodyLenV1), false})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if ok := sameAsGoavroVersion(t, v, tt.body); ok != tt.ok {
				t.Fatalf("decoded = %v, want %v", ok, tt.ok)
			}
		})
	}
}

// fuzzOlder fuzzes the fast decoder of an older version v against goavro.
func fuzzOlder(f *testing.F, v int) {
	rng := rand.New(rand.NewPCG(19, uint64(20+v)))
	for _, r := range fuzzRecords() {
		body := olderBody(f, v, &r)
		f.Add(body)
		if b, _, err := reblockAvroMaps(rng, versions[v-1].tree, body); err == nil {
			f.Add(b)
		}
	}
	f.Add(make([]byte, map[int]int{1: zeroBodyLenV1, 2: zeroBodyLenV2, 3: zeroBodyLen}[v]))
	f.Fuzz(func(t *testing.T, body []byte) {
		sameAsGoavroVersion(t, v, body)
	})
}

func FuzzFastDecodeV1MatchesGoavro(f *testing.F) { fuzzOlder(f, 1) }

func FuzzFastDecodeV2MatchesGoavro(f *testing.F) { fuzzOlder(f, 2) }

func FuzzFastDecodeV3MatchesGoavro(f *testing.F) { fuzzOlder(f, 3) }
