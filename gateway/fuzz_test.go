package gateway

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	common "go.opentelemetry.io/proto/otlp/common/v1"
	logs "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/sluicelogs/sluice/schemas"
)

// checkRecords maps every record of a decoded request as the gateway does
// and checks that each encodes, and decodes back as the router would read
// it: whatever a request holds, what the gateway writes is a valid record.
func checkRecords(t *testing.T, body []byte, asJSON bool) {
	req, err := decodeOTLP(body, asJSON)
	if err != nil {
		if msg := err.Error(); !strings.Contains(msg, "OTLP") && !strings.Contains(msg, "log record") {
			t.Fatalf("error %q does not say what was expected", msg)
		}
		return
	}
	m := mapper{tenant: "shop", received: time.Unix(1700000000, 0).UTC(), maxLogBytes: 4096, version: "fuzz"}
	dec := schemas.NewDecoder()
	m.each(req, func(i int, rec *schemas.Record, err error) {
		if err != nil {
			return
		}
		if len(rec.Log) > 4096 || !utf8.ValidString(rec.Log) {
			t.Fatalf("record %d: log of %d bytes, valid UTF-8 %v", i, len(rec.Log), utf8.ValidString(rec.Log))
		}
		rec.ID = "x"
		v, err := schemas.AppendSingleObject(nil, rec)
		if err != nil {
			t.Fatalf("record %d does not encode: %v", i, err)
		}
		back, _, err := dec.Decode(context.Background(), v)
		if err != nil || back.Log != rec.Log || back.Tenant != "shop" {
			t.Fatalf("record %d does not decode back: %v", i, err)
		}
	})
}

// otlpSeeds are requests to start fuzzing from.
func otlpSeeds() [][]byte {
	full := otlpRequest([]*common.KeyValue{
		kv("k8s.namespace.name", str("ns")), kv("k8s.pod.label.app", str("cart")), kv("k8s.job.name", str("j")),
		kv("k8s.deployment.name", str("d")), kv("container.image.tag", str("1")),
		kv("nested", &common.AnyValue{Value: &common.AnyValue_KvlistValue{KvlistValue: &common.KeyValueList{Values: []*common.KeyValue{
			kv("a", &common.AnyValue{Value: &common.AnyValue_ArrayValue{ArrayValue: &common.ArrayValue{Values: []*common.AnyValue{str("x"), {}}}}}),
			kv("b", &common.AnyValue{Value: &common.AnyValue_BytesValue{BytesValue: []byte{0, 1}}}),
		}}}}),
	}, otlpLines(3, "seed")...)
	full.ResourceLogs[0].ScopeLogs[0].LogRecords[0].TraceId = bytes.Repeat([]byte{7}, 16)
	full.ResourceLogs[0].ScopeLogs[0].LogRecords[1].Body = &common.AnyValue{Value: &common.AnyValue_ArrayValue{ArrayValue: &common.ArrayValue{
		Values: []*common.AnyValue{{Value: &common.AnyValue_DoubleValue{DoubleValue: 1.5}}, {Value: &common.AnyValue_KvlistValue{KvlistValue: &common.KeyValueList{}}}}}}}
	full.ResourceLogs[0].ScopeLogs[0].LogRecords[2].Flags = 1
	full.ResourceLogs[0].ScopeLogs[0].LogRecords[2].EventName = "e"
	b, _ := proto.Marshal(full)
	j, _ := protojson.Marshal(full)
	empty, _ := proto.Marshal(otlpRequest(nil, &logs.LogRecord{}))
	return [][]byte{b, j, empty, nil, []byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","body":{"stringValue":"x"}}]}]}]}`)}
}

// FuzzOTLPProtobuf: the protobuf decoder and the mapping never panic,
// refuse what is not a request with an error saying so, and turn every
// request they take into records that encode and decode back.
func FuzzOTLPProtobuf(f *testing.F) {
	for _, s := range otlpSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkRecords(t, body, false) })
}

// FuzzOTLPJSON is FuzzOTLPProtobuf for OTLP's JSON encoding.
func FuzzOTLPJSON(f *testing.F) {
	for _, s := range otlpSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkRecords(t, body, true) })
}

// FuzzLines: /v1/lines' decoder never panics; an NDJSON line that is no
// object, or a record of the wrong types, is an error naming the problem;
// every line it takes, in NDJSON or text, becomes a record that encodes.
func FuzzLines(f *testing.F) {
	for _, s := range []string{
		"plain text\n", `{"log":"x","kubernetes":{"pod_name":"p"},"attributes":{"a":[1,"b",null]}}`, `{"log":5}`,
		`{"level":"info"}`, "\xff\xfe\n\n{", `{"timestamp":"2024-05-01T12:00:00Z","log":"t"}`, `[1,2]`,
	} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	g := &Gateway{cfg: Config{MaxLogBytes: 1024}, version: "fuzz"}
	f.Fuzz(func(t *testing.T, body []byte, ndjson bool) {
		for line := range bytes.Lines(body) {
			rec, err := decodeLine(line, ndjson)
			if err != nil {
				if err.Error() == "" {
					t.Fatal("an error without a message")
				}
				continue
			}
			g.fillLine(&rec, "shop", time.Unix(1700000000, 0), ndjson)
			if rec.Tenant != "shop" || len(rec.Log) > 1024 {
				t.Fatalf("record tenant %q, log of %d bytes", rec.Tenant, len(rec.Log))
			}
			if _, err := schemas.AppendSingleObject(nil, &rec); err != nil {
				t.Fatalf("line %q: record does not encode: %v", line, err)
			}
		}
	})
}
