package indexer

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/internal/eslite"
	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/internal/kafkatest"
	"github.com/sluicelogs/sluice/internal/testwait"
	"github.com/sluicelogs/sluice/schemas"
)

// TestIndexerReadsNewerSchemaVersion: during a rolling upgrade a router
// newer than the indexer writes records with a schema version the indexer
// does not embed. The router has published that version to
// <prefix>.schemas; the indexer looks it up there and stores the record,
// with the fields it does not know under sluice.unknown, instead of
// dead-lettering it.
func TestIndexerReadsNewerSchemaVersion(t *testing.T) {
	c := testCluster(t, "logs.parsed.shop", "logs.dlq.shop")
	es := eslite.Start(t)
	brokers := c.ListenAddrs()
	cl := kafkatest.Client(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topics := kafka.Topics{Prefix: "logs"}

	// The newer router's version: the current one with two new fields.
	cur := schemas.CurrentSchema()
	newer := strings.Replace(cur.Text, `"fields": [`,
		`"fields": [{"name": "severity", "type": "string", "default": ""}, {"name": "retries", "type": "int", "default": 0},`, 1)
	codec, err := goavro.NewCodec(newer)
	if err != nil {
		t.Fatal(err)
	}
	if err := kafka.PublishSchemas(ctx, cl, topics); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topics.Schemas(), Key: []byte(kafka.SchemaKey(codec.Rabin)), Value: []byte(newer)}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	now := time.Now().UTC()
	rec := schemas.Record{ID: "newer-1", Timestamp: now, Log: "written by a newer router", Partial: true,
		Attributes: map[string]any{"status": int64(503)}}
	body, err := schemas.AppendAvro(nil, &rec)
	if err != nil {
		t.Fatal(err)
	}
	// severity "warn", retries 3, then the fields of the current version.
	v := append([]byte{0xC3, 0x01}, binary.LittleEndian.AppendUint64(nil, codec.Rabin)...)
	v = append(append(v, 8, 'w', 'a', 'r', 'n', 6), body...)
	if _, _, err := codec.NativeFromBinary(v[10:]); err != nil {
		t.Fatalf("test record is not valid under the newer schema: %v", err)
	}
	plain := schemas.Record{ID: "current-1", Timestamp: now, Log: "written by this version"}
	pv, _ := schemas.AppendSingleObject(nil, &plain)
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "logs.parsed.shop", Value: v}, &kgo.Record{Topic: "logs.parsed.shop", Value: pv}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	_, _, stop := runIndexer(t, testConfig(t, brokers, es.URL(), nil))
	testwait.For(t, 20*time.Second, "both records stored", func() (bool, string) {
		ids := es.IDs()
		return len(ids["newer-1"]) == 1 && len(ids["current-1"]) == 1, ""
	})
	stop()

	index := es.IDs()["newer-1"][0]
	var doc struct {
		Log    string `json:"log"`
		Status int64  `json:"status"`
		Sluice struct {
			Partial bool              `json:"partial"`
			Unknown map[string]string `json:"unknown"`
		} `json:"sluice"`
	}
	if err := json.Unmarshal(es.Docs(index)["newer-1"], &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Log != rec.Log || doc.Status != 503 || !doc.Sluice.Partial ||
		len(doc.Sluice.Unknown) != 2 || doc.Sluice.Unknown["severity"] != `"warn"` || doc.Sluice.Unknown["retries"] != "3" {
		t.Fatalf("document: %s", es.Docs(index)["newer-1"])
	}
	if d := es.Docs(es.IDs()["current-1"][0])["current-1"]; strings.Contains(string(d), "unknown") {
		t.Fatalf("a current record has unknown fields: %s", d)
	}
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, "logs.dlq.shop")
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset != 0 {
			t.Errorf("dead letters in %s/%d: %d", o.Topic, o.Partition, o.Offset)
		}
	})
}
