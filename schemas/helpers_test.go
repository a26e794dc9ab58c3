package schemas

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// sampleRecord is a realistic shipped line: a ~300-byte JSON access log from a
// pod with the usual labels, plus a few parsed attributes.
func sampleRecord() Record {
	return Record{
		ID:                "5f1c2a9e8b7d4c3a-000000000004d2a1",
		Timestamp:         time.Date(2025, 3, 14, 9, 26, 53, 589793238, time.UTC),
		ObservedTimestamp: time.Date(2025, 3, 14, 9, 26, 53, 601234567, time.UTC),
		Tenant:            "payments",
		Stream:            "stdout",
		Log: `{"level":"info","ts":"2025-03-14T09:26:53.589Z","caller":"http/server.go:218",` +
			`"msg":"request completed","method":"POST","path":"/v1/charges","status":201,` +
			`"duration_ms":12.7,"request_id":"0b7c6d1e-2f3a-4b5c-8d9e-0f1a2b3c4d5e","user_agent":"okhttp/4.12.0","bytes":512}`,
		Kubernetes: Kubernetes{
			NamespaceName: "payments-prod",
			PodName:       "charge-api-7d9f8b6c5-x2k4q",
			PodID:         "3c1e5f7a-9b2d-4e6f-8a1c-3e5g7i9k1m3o",
			ContainerName: "charge-api",
			DockerID:      "containerd://4f2a8c1e9b7d3f5a6c8e0b2d4f6a8c1e3b5d7f9a1c3e5b7d9f1a3c5e7b9d1f3a",
			Host:          "ip-10-42-17-203.eu-west-1.compute.internal",
			Labels: map[string]string{
				"app.kubernetes.io/name":    "charge-api",
				"app.kubernetes.io/version": "2.31.0",
				"pod-template-hash":         "7d9f8b6c5",
			},
			Annotations: map[string]string{"sluice.io/parser": "json"},
		},
		Attributes: map[string]any{
			"level":       "info",
			"status":      int64(201),
			"duration_ms": 12.7,
			"method":      "POST",
		},
		Source: Source{
			Path:    "/var/log/pods/payments-prod_charge-api-7d9f8b6c5-x2k4q_3c1e5f7a/charge-api/0.log",
			Offset:  8_388_608,
			Format:  "cri",
			Shipper: "sluice-shipper/0.4.0",
		},
	}
}

// podRecord is sampleRecord with the pod metadata of schema v3: namespace
// labels, the container's image, the owning workload, and metadata partial.
func podRecord() Record {
	r := sampleRecord()
	r.Metadata = MetadataPartial
	r.Kubernetes.NamespaceLabels = map[string]string{"team": "payments", "kubernetes.io/metadata.name": "payments-prod"}
	r.Kubernetes.ContainerImage = "registry.example.com/payments/charge-api:2.31.0"
	r.Kubernetes.Workload = Workload{Kind: "Deployment", Name: "charge-api"}
	return r
}

// arrayRecord is podRecord with array attributes (schema v4).
func arrayRecord() Record {
	r := podRecord()
	r.Attributes["tags"] = []any{"eu", "blue"}
	r.Attributes["mixed"] = []any{int64(1), nil, 2.5, true, "x"}
	r.Attributes["empty"] = []any{}
	r.Attributes["names"] = []string{"a", "b"}
	return r
}

// withoutArrays drops the array attributes of r, which versions before v4
// cannot hold.
func withoutArrays(r Record) Record {
	if r.Attributes == nil {
		return r
	}
	attrs := maps.Clone(r.Attributes)
	maps.DeleteFunc(attrs, func(_ string, v any) bool {
		s, err := toScalar("", v)
		return err == nil && s.kind == kindArray
	})
	if len(attrs) == 0 {
		attrs = nil
	}
	r.Attributes = attrs
	return r
}

// withoutV3 clears what schema v3 added to Record (metadata and the pod
// metadata of kubernetes): what a record reads back as from v1 or v2.
func withoutV3(r Record) Record {
	r.Metadata = ""
	r.Kubernetes.NamespaceLabels = nil
	r.Kubernetes.ContainerImage = ""
	r.Kubernetes.Workload = Workload{}
	return r
}

// asWrittenWith is what r (normalised) reads back as when written with
// schema version v.
func asWrittenWith(r Record, v int) Record {
	r = normalized(r)
	if v < 4 {
		r = withoutArrays(r)
	}
	if v < 3 {
		r = withoutV3(r)
	}
	if v < 2 {
		r.Partial = false
	}
	return r
}

// normalized returns what r reads back as from any format: timestamps per
// timeToNanos, empty maps nil, attribute values widened to int64/float64.
// Strings are left alone: callers that feed invalid UTF-8 expect repairs
// themselves.
func normalized(r Record) Record {
	r.Timestamp = normalizeTime(r.Timestamp)
	r.ObservedTimestamp = normalizeTime(r.ObservedTimestamp)
	if len(r.Kubernetes.Labels) == 0 {
		r.Kubernetes.Labels = nil
	} else {
		r.Kubernetes.Labels = maps.Clone(r.Kubernetes.Labels)
	}
	if len(r.Kubernetes.Annotations) == 0 {
		r.Kubernetes.Annotations = nil
	} else {
		r.Kubernetes.Annotations = maps.Clone(r.Kubernetes.Annotations)
	}
	if len(r.Kubernetes.NamespaceLabels) == 0 {
		r.Kubernetes.NamespaceLabels = nil
	} else {
		r.Kubernetes.NamespaceLabels = maps.Clone(r.Kubernetes.NamespaceLabels)
	}
	if len(r.Unknown) == 0 {
		r.Unknown = nil
	} else {
		r.Unknown = maps.Clone(r.Unknown)
	}
	if len(r.Attributes) == 0 {
		r.Attributes = nil
	} else {
		attrs := make(map[string]any, len(r.Attributes))
		for k, v := range r.Attributes {
			s, err := toScalar(k, v)
			if err != nil {
				panic(err)
			}
			attrs[k] = s.value()
		}
		r.Attributes = attrs
	}
	return r
}

func (s scalar) value() any {
	switch s.kind {
	case kindArray:
		items := make([]any, s.arrayLen())
		for i := range items {
			it, err := s.item("", i)
			if err != nil {
				panic(err)
			}
			items[i] = it.value()
		}
		return items
	case kindBool:
		return s.b
	case kindLong:
		return s.i
	case kindDouble:
		return s.f
	case kindString:
		return s.s
	}
	return nil
}

// diffRecords describes how got differs from want, or returns "" when they
// are equal. Times must be equal instants and in UTC; floats are compared by
// bits, so NaN equals NaN and -0 differs from 0; nil and empty maps differ.
func diffRecords(got, want Record) string {
	var diffs []string
	add := func(field string, g, w any) {
		diffs = append(diffs, fmt.Sprintf("%s: got %#v, want %#v", field, g, w))
	}
	checkTime := func(field string, g, w time.Time) {
		if !g.Equal(w) || g.Location() != w.Location() {
			add(field, g, w)
		}
	}
	if got.ID != want.ID {
		add("ID", got.ID, want.ID)
	}
	checkTime("Timestamp", got.Timestamp, want.Timestamp)
	checkTime("ObservedTimestamp", got.ObservedTimestamp, want.ObservedTimestamp)
	if got.Tenant != want.Tenant {
		add("Tenant", got.Tenant, want.Tenant)
	}
	if got.Stream != want.Stream {
		add("Stream", got.Stream, want.Stream)
	}
	if got.Log != want.Log {
		add("Log", got.Log, want.Log)
	}
	if got.Truncated != want.Truncated {
		add("Truncated", got.Truncated, want.Truncated)
	}
	if got.OriginalSize != want.OriginalSize {
		add("OriginalSize", got.OriginalSize, want.OriginalSize)
	}
	if got.InvalidUTF8 != want.InvalidUTF8 {
		add("InvalidUTF8", got.InvalidUTF8, want.InvalidUTF8)
	}
	if got.Partial != want.Partial {
		add("Partial", got.Partial, want.Partial)
	}
	if got.Metadata != want.Metadata {
		add("Metadata", got.Metadata, want.Metadata)
	}
	gk, wk := got.Kubernetes, want.Kubernetes
	if gk.NamespaceName != wk.NamespaceName || gk.PodName != wk.PodName || gk.PodID != wk.PodID ||
		gk.ContainerName != wk.ContainerName || gk.DockerID != wk.DockerID || gk.Host != wk.Host ||
		gk.ContainerImage != wk.ContainerImage || gk.Workload != wk.Workload {
		add("Kubernetes", gk, wk)
	}
	if !mapsEqualNil(got.Kubernetes.Labels, want.Kubernetes.Labels) {
		add("Kubernetes.Labels", got.Kubernetes.Labels, want.Kubernetes.Labels)
	}
	if !mapsEqualNil(got.Kubernetes.Annotations, want.Kubernetes.Annotations) {
		add("Kubernetes.Annotations", got.Kubernetes.Annotations, want.Kubernetes.Annotations)
	}
	if !mapsEqualNil(got.Kubernetes.NamespaceLabels, want.Kubernetes.NamespaceLabels) {
		add("Kubernetes.NamespaceLabels", got.Kubernetes.NamespaceLabels, want.Kubernetes.NamespaceLabels)
	}
	if !attrsEqual(got.Attributes, want.Attributes) {
		add("Attributes", got.Attributes, want.Attributes)
	}
	if got.Source != want.Source {
		add("Source", got.Source, want.Source)
	}
	if !mapsEqualNil(got.Unknown, want.Unknown) {
		add("Unknown", got.Unknown, want.Unknown)
	}
	return strings.Join(diffs, "\n")
}

func mapsEqualNil[V comparable](a, b map[string]V) bool {
	return (a == nil) == (b == nil) && maps.Equal(a, b)
}

func attrsEqual(a, b map[string]any) bool {
	if (a == nil) != (b == nil) || len(a) != len(b) {
		return false
	}
	for k, av := range a {
		bv, ok := b[k]
		if !ok {
			return false
		}
		if !valueEqual(av, bv) {
			return false
		}
	}
	return true
}

// valueEqual compares attribute values as attrsEqual does; arrays item by
// item, a nil slice differing from an empty one.
func valueEqual(a, b any) bool {
	al, aok := a.([]any)
	bl, bok := b.([]any)
	if aok || bok {
		return aok && bok && (al == nil) == (bl == nil) && slices.EqualFunc(al, bl, valueEqual)
	}
	af, aok := a.(float64)
	bf, bok := b.(float64)
	if aok || bok {
		return aok && bok && math.Float64bits(af) == math.Float64bits(bf)
	}
	return a == b
}

func mustEqualRecords(t testing.TB, got, want Record) {
	t.Helper()
	if d := diffRecords(got, want); d != "" {
		t.Fatalf("records differ:\n%s", d)
	}
}

// toNative builds goavro's native form of r under the current schema; it is
// the reference the hand-written encoder is pinned to.
func toNative(r *Record) map[string]any {
	strMap := func(m map[string]string) map[string]any {
		out := make(map[string]any, len(m))
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	native := func(s scalar) any {
		switch s.kind {
		case kindBool:
			return goavro.Union("boolean", s.b)
		case kindLong:
			return goavro.Union("long", s.i)
		case kindDouble:
			return goavro.Union("double", s.f)
		case kindString:
			return goavro.Union("string", s.s)
		}
		return nil
	}
	attrs := make(map[string]any, len(r.Attributes))
	for k, v := range r.Attributes {
		s, err := toScalar(k, v)
		if err != nil {
			panic(err)
		}
		if s.kind != kindArray {
			attrs[k] = native(s)
			continue
		}
		items := make([]any, s.arrayLen())
		for i := range items {
			it, err := s.item(k, i)
			if err != nil {
				panic(err)
			}
			items[i] = native(it)
		}
		attrs[k] = goavro.Union("array", items)
	}
	return map[string]any{
		"id":                 r.ID,
		"timestamp":          timeToNanos(r.Timestamp),
		"observed_timestamp": timeToNanos(r.ObservedTimestamp),
		"tenant":             r.Tenant,
		"stream":             r.Stream,
		"log":                r.Log,
		"truncated":          r.Truncated,
		"original_size":      r.OriginalSize,
		"invalid_utf8":       r.InvalidUTF8,
		"partial":            r.Partial,
		"metadata":           r.Metadata,
		"kubernetes": map[string]any{
			"namespace_name": r.Kubernetes.NamespaceName,
			"pod_name":       r.Kubernetes.PodName,
			"pod_id":         r.Kubernetes.PodID,
			"container_name": r.Kubernetes.ContainerName,
			"docker_id":      r.Kubernetes.DockerID,
			"host":           r.Kubernetes.Host,
			"labels":         strMap(r.Kubernetes.Labels),
			"annotations":    strMap(r.Kubernetes.Annotations),

			"namespace_labels": strMap(r.Kubernetes.NamespaceLabels),
			"container_image":  r.Kubernetes.ContainerImage,
			"workload": map[string]any{
				"kind": r.Kubernetes.Workload.Kind,
				"name": r.Kubernetes.Workload.Name,
			},
		},
		"attributes": attrs,
		"source": map[string]any{
			"path":    r.Source.Path,
			"offset":  r.Source.Offset,
			"format":  r.Source.Format,
			"shipper": r.Source.Shipper,
		},
	}
}

// olderBody encodes r with goavro under the older schema version v, which
// lacks some of Record's fields (goavro ignores the extra keys): what
// shippers older than the current version write. Its maps are in Go's
// random order; readers do not care.
func olderBody(t testing.TB, v int, r *Record) []byte {
	t.Helper()
	if v < 4 {
		old := withoutArrays(*r)
		r = &old
	}
	b, err := versions[v-1].codec.BinaryFromNative(nil, toNative(r))
	if err != nil {
		t.Fatalf("goavro encode v%d: %v", v, err)
	}
	return b
}

// olderSingleObject is olderBody in single-object encoding.
func olderSingleObject(t testing.TB, v int, r *Record) []byte {
	t.Helper()
	h := singleObjectHeader(versions[v-1].info.Fingerprint)
	return append(h[:], olderBody(t, v, r)...)
}

// olderVersions are the embedded versions before the current one, which
// decoders still read on the fast path.
func olderVersions() []int {
	var vs []int
	for v := 1; v < len(versions); v++ {
		vs = append(vs, v)
	}
	return vs
}

// goavroBody encodes r with goavro under the current schema, then sorts its
// map entries (goavro writes them in Go's random map order) so it can be
// compared byte for byte with AppendAvro.
func goavroBody(t testing.TB, r *Record) []byte {
	t.Helper()
	s := currentSchema()
	b, err := s.codec.BinaryFromNative(nil, toNative(r))
	if err != nil {
		t.Fatalf("goavro encode: %v", err)
	}
	sorted, rest, err := sortAvroMaps(s.tree, b)
	if err != nil || len(rest) != 0 {
		t.Fatalf("sort goavro output: %v (%d bytes left)", err, len(rest))
	}
	return sorted
}

// sortAvroMaps rewrites one datum of type t at the start of b with each map's
// entries sorted by key in a single block, and returns it with the bytes
// after the datum. Everything else is copied unchanged.
func sortAvroMaps(t *avroType, b []byte) (out, rest []byte, err error) {
	return rewriteAvroMaps(t, b, func(entries []avroEntry) []byte {
		slices.SortFunc(entries, func(a, b avroEntry) int { return cmp.Compare(a.key, b.key) })
		var blocks []byte
		if len(entries) > 0 {
			blocks = appendAvroLong(blocks, int64(len(entries)))
			for _, e := range entries {
				blocks = append(blocks, e.enc...)
			}
		}
		return blocks
	})
}

// avroEntry is one map entry as encoded: key and value.
type avroEntry struct {
	key string
	enc []byte
}

// rewriteAvroMaps copies one datum of type t at the start of b, writing
// each map (nested ones first) as blocks returns for its entries, and
// returns it with the bytes after the datum.
func rewriteAvroMaps(t *avroType, b []byte, blocks func([]avroEntry) []byte) (out, rest []byte, err error) {
	switch t.kind {
	case avroRecord:
		for _, f := range t.fields {
			var o []byte
			if o, b, err = rewriteAvroMaps(f, b, blocks); err != nil {
				return nil, nil, err
			}
			out = append(out, o...)
		}
		return out, b, nil
	case avroUnion:
		c := avroChecker{b: b}
		i, err := c.index(len(t.branches), "union")
		if err != nil {
			return nil, nil, err
		}
		out = append(out, b[:len(b)-len(c.b)]...)
		o, rest, err := rewriteAvroMaps(t.branches[i], c.b, blocks)
		return append(out, o...), rest, err
	case avroMap:
		var entries []avroEntry
		c := avroChecker{b: b}
		err := eachAvroItem(&c, func() error {
			start := c.b
			kl, err := c.varint()
			if err != nil || kl < 0 || kl > int64(len(c.b)) {
				return fmt.Errorf("bad map key (%v)", err)
			}
			key := string(c.b[:kl])
			c.b = c.b[kl:]
			v, rest, err := rewriteAvroMaps(t.items, c.b, blocks)
			if err != nil {
				return err
			}
			enc := append([]byte(nil), start[:len(start)-len(c.b)]...)
			entries = append(entries, avroEntry{key, append(enc, v...)})
			c.b = rest
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
		return append(append(out, blocks(entries)...), 0), c.b, nil
	case avroArray:
		// Items keep their order: they are written again as one block.
		var items []byte
		count := int64(0)
		c := avroChecker{b: b}
		err := eachAvroItem(&c, func() error {
			v, rest, err := rewriteAvroMaps(t.items, c.b, blocks)
			if err != nil {
				return err
			}
			items, c.b, count = append(items, v...), rest, count+1
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
		if count > 0 {
			out = append(appendAvroLong(out, count), items...)
		}
		return append(out, 0), c.b, nil
	default:
		c := avroChecker{b: b, budget: len(b)}
		if err := c.check(t, 0); err != nil {
			return nil, nil, err
		}
		return append(out, b[:len(b)-len(c.b)]...), c.b, nil
	}
}

// eachAvroItem reads the blocks of an Avro map or array from c, calling
// item for each entry, which reads it.
func eachAvroItem(c *avroChecker, item func() error) error {
	for {
		n, err := c.varint()
		if err != nil || n == 0 {
			return err
		}
		if n < 0 {
			n = -n
			if _, err := c.varint(); err != nil {
				return err
			}
		}
		for ; n > 0; n-- {
			if err := item(); err != nil {
				return err
			}
		}
	}
}

// randomRecord returns a record exercising the whole value space: empty and
// multi-entry maps, every attribute kind, unicode, extreme integers and
// times. With validUTF8 false, strings may hold invalid UTF-8.
func randomRecord(rng *rand.Rand, validUTF8 bool) Record {
	str := func() string { return randomString(rng, validUTF8) }
	strMap := func() map[string]string {
		switch rng.IntN(4) {
		case 0:
			return nil
		case 1:
			return map[string]string{}
		}
		m := make(map[string]string)
		for range rng.IntN(6) + 1 {
			m[str()] = str()
		}
		return m
	}
	r := Record{
		ID:                str(),
		Timestamp:         randomTime(rng),
		ObservedTimestamp: randomTime(rng),
		Tenant:            str(),
		Stream:            []string{"", "stdout", "stderr"}[rng.IntN(3)],
		Log:               str(),
		Truncated:         rng.IntN(2) == 0,
		OriginalSize:      randomInt64(rng),
		InvalidUTF8:       rng.IntN(2) == 0,
		Partial:           rng.IntN(2) == 0,
		Metadata:          []string{"", "", MetadataPartial, str()}[rng.IntN(4)],
		Kubernetes: Kubernetes{
			NamespaceName: str(), PodName: str(), PodID: str(),
			ContainerName: str(), DockerID: str(), Host: str(),
			Labels: strMap(), Annotations: strMap(),
			NamespaceLabels: strMap(), ContainerImage: str(),
		},
		Source: Source{Path: str(), Offset: randomInt64(rng), Format: str(), Shipper: str()},
	}
	switch rng.IntN(3) {
	case 0:
	case 1:
		r.Kubernetes.Workload = Workload{Kind: "Deployment", Name: str()}
	default:
		r.Kubernetes.Workload = Workload{Kind: str(), Name: str()}
	}
	switch rng.IntN(4) {
	case 0:
	case 1:
		r.Attributes = map[string]any{}
	default:
		r.Attributes = make(map[string]any)
		for range rng.IntN(8) + 1 {
			r.Attributes[str()] = randomAttr(rng, validUTF8)
		}
	}
	return r
}

func randomAttr(rng *rand.Rand, validUTF8 bool) any {
	switch rng.IntN(9) {
	case 7:
		items := make([]any, rng.IntN(4))
		for i := range items {
			items[i] = randomScalar(rng, validUTF8)
		}
		return items
	case 8:
		return []string{randomString(rng, validUTF8)}
	}
	return randomScalar(rng, validUTF8)
}

func randomScalar(rng *rand.Rand, validUTF8 bool) any {
	switch rng.IntN(7) {
	case 0:
		return nil
	case 1:
		return rng.IntN(2) == 0
	case 2:
		return randomInt64(rng)
	case 3:
		return []float64{0, math.Copysign(0, -1), 1, -1.5, 1e21, 1e-7, math.MaxFloat64, math.SmallestNonzeroFloat64, 12.7}[rng.IntN(9)]
	case 4:
		return rng.NormFloat64() * math.Pow(10, float64(rng.IntN(40)-20))
	case 5:
		return int(rng.Int32()) // widened to int64
	default:
		return randomString(rng, validUTF8)
	}
}

func randomInt64(rng *rand.Rand) int64 {
	switch rng.IntN(4) {
	case 0:
		return []int64{0, 1, -1, 63, 64, -64, -65, math.MaxInt64, math.MinInt64}[rng.IntN(9)]
	case 1:
		return int64(rng.Uint64())
	default:
		return rng.Int64N(1 << 40)
	}
}

func randomTime(rng *rand.Rand) time.Time {
	switch rng.IntN(6) {
	case 0:
		return time.Time{}
	case 1:
		return time.Unix(0, int64(rng.Uint64())).UTC()
	case 2:
		return time.Unix(0, randomInt64(rng)).In(time.FixedZone("X", 3600*(rng.IntN(25)-12)))
	default:
		return time.Unix(1_700_000_000+rng.Int64N(1e8), rng.Int64N(1e9)).UTC()
	}
}

var stringAlphabet = []string{
	"a", "Z", "0", " ", "-", ".", "/", ":", "\"", "\\", "\n", "\t", "\x00", "\x1f", "<", "&",
	"é", "ß", "日本", "🚀", "\u2028", "\u2029", "\ufffd", "\u007f",
}

func randomString(rng *rand.Rand, validUTF8 bool) string {
	if rng.IntN(8) == 0 {
		return ""
	}
	var sb strings.Builder
	for range rng.IntN(24) {
		if !validUTF8 && rng.IntN(10) == 0 {
			sb.WriteByte(byte(0x80 + rng.IntN(0x80)))
			continue
		}
		sb.WriteString(stringAlphabet[rng.IntN(len(stringAlphabet))])
	}
	return sb.String()
}

// testRegistry starts an srfake registry, closed at cleanup.
func testRegistry(tb testing.TB) (*srfake.Registry, *sr.Client) {
	tb.Helper()
	reg := srfake.New()
	tb.Cleanup(reg.Close)
	cl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		tb.Fatal(err)
	}
	return reg, cl
}

// requireSentinel fails unless err wraps one of the package's sentinels.
func requireSentinel(t testing.TB, err error) {
	t.Helper()
	if Reason(err) == "other" {
		t.Fatalf("error wraps no sentinel: %v", err)
	}
}

func mustEncode(t testing.TB, enc Encoder, topic string, r *Record) []byte {
	t.Helper()
	b, err := enc.AppendEncode(context.Background(), nil, topic, r)
	if err != nil {
		t.Fatalf("encode %s: %v", enc.Format(), err)
	}
	return b
}

// hasNonFinite reports whether r has a NaN or infinite attribute, which JSON
// cannot carry.
func hasNonFinite(r *Record) bool {
	for _, v := range r.Attributes {
		if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
			return true
		}
	}
	return false
}
