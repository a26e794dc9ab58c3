package esfake_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/elastic/go-elasticsearch/v8/esutil"

	"github.com/sluicelogs/sluice/internal/escompat/estest"
	"github.com/sluicelogs/sluice/internal/esfake"
	"github.com/sluicelogs/sluice/internal/testwait"
)

// client returns a go-elasticsearch client for es without retries, so each
// call is exactly one request.
func client(t *testing.T, es *esfake.Server, edit ...func(*elasticsearch.Config)) *elasticsearch.Client {
	t.Helper()
	return estest.Client(t, es.URL(), edit...)
}

func TestInfo(t *testing.T) {
	es := esfake.Start(t)
	c := client(t, es)
	r := estest.Do(t, c, esapi.InfoRequest{})
	if r.Status != 200 {
		t.Fatalf("status %d", r.Status)
	}
	if got := r.Header.Get("X-Elastic-Product"); got != "Elasticsearch" {
		t.Errorf("X-Elastic-Product = %q", got)
	}
	if got := r.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	estest.WantValue(t, r, "version.number", "8.15.0")
	estest.WantValue(t, r, "version.build_flavor", "default")
	estest.WantValue(t, r, "version.lucene_version", "9.11.1")
	estest.WantValue(t, r, "version.minimum_wire_compatibility_version", "7.17.0")
	estest.WantValue(t, r, "version.minimum_index_compatibility_version", "7.0.0")
	estest.WantValue(t, r, "tagline", "You Know, for Search")
	for _, k := range []string{"name", "cluster_name", "cluster_uuid"} {
		if s, _ := estest.At(r.Body, k).(string); s == "" {
			t.Errorf("%s missing", k)
		}
	}

	ping := estest.Do(t, c, esapi.PingRequest{})
	if ping.Status != 200 || ping.Raw != "" {
		t.Errorf("HEAD / = %d %q", ping.Status, ping.Raw)
	}

	es2 := esfake.Start(t, esfake.Version("8.19.2"))
	estest.WantValue(t, estest.Do(t, client(t, es2), esapi.InfoRequest{}), "version.number", "8.19.2")
}

func TestCompatibilityMode(t *testing.T) {
	es := esfake.Start(t)
	c := client(t, es, func(cfg *elasticsearch.Config) { cfg.EnableCompatibilityMode = true })
	r := estest.Do(t, c, esapi.BulkRequest{Body: estest.NDJSON(`{"create":{"_index":"a","_id":"1"}}`, `{"x":1}`)})
	if r.Status != 200 {
		t.Fatalf("status %d: %s", r.Status, r.Raw)
	}
	if got := r.Header.Get("Content-Type"); got != "application/vnd.elasticsearch+json;compatible-with=8" {
		t.Errorf("Content-Type = %q", got)
	}
	estest.WantValue(t, r, "errors", false)
}

const logsTemplate = `{
  "index_patterns": ["logs-*"],
  "priority": 200,
  "template": {
    "settings": {"index": {"mapping": {"total_fields": {"limit": 20}}}},
    "mappings": {
      "dynamic_templates": [
        {"labels": {"path_match": "labels.*", "mapping": {"type": "keyword"}}},
        {"strings": {"match_mapping_type": "string", "mapping": {"type": "keyword", "ignore_above": 1024}}}
      ],
      "properties": {
        "@timestamp": {"type": "date"},
        "message": {"type": "text"},
        "http": {"properties": {"status": {"type": "long"}}},
        "raw": {"type": "object", "enabled": false}
      }
    }
  }
}`

func TestIndexTemplateLifecycle(t *testing.T) {
	es := esfake.Start(t)
	c := client(t, es)

	r := estest.Do(t, c, esapi.IndicesPutIndexTemplateRequest{Name: "logs", Body: strings.NewReader(logsTemplate)})
	if r.Status != 200 {
		t.Fatalf("put: %d %s", r.Status, r.Raw)
	}
	estest.WantValue(t, r, "acknowledged", true)
	if body, ok := es.Template("logs"); !ok || !bytes.Equal(body, []byte(logsTemplate)) {
		t.Errorf("Template(logs) = %s, %v", body, ok)
	}

	r = estest.Do(t, c, esapi.IndicesGetIndexTemplateRequest{Name: "logs"})
	estest.WantValue(t, r, "index_templates.0.name", "logs")
	estest.WantValue(t, r, "index_templates.0.index_template.index_patterns", []any{"logs-*"})
	estest.WantValue(t, r, "index_templates.0.index_template.priority", float64(200))
	estest.WantValue(t, r, "index_templates.0.index_template.composed_of", []any{})
	estest.WantValue(t, r, "index_templates.0.index_template.template.mappings.properties.http.properties.status.type", "long")

	if r := estest.Do(t, c, esapi.IndicesExistsIndexTemplateRequest{Name: "logs"}); r.Status != 200 {
		t.Errorf("exists = %d", r.Status)
	}
	estest.WantValue(t, estest.Do(t, c, esapi.IndicesDeleteIndexTemplateRequest{Name: "logs"}), "acknowledged", true)
	if _, ok := es.Template("logs"); ok {
		t.Error("template still stored after delete")
	}
	estest.WantError(t, estest.Do(t, c, esapi.IndicesGetIndexTemplateRequest{Name: "logs"}), 404,
		"resource_not_found_exception", "index template matching [logs] not found")
	estest.WantError(t, estest.Do(t, c, esapi.IndicesDeleteIndexTemplateRequest{Name: "logs"}), 404,
		"resource_not_found_exception", "index_template [logs] missing")
	if r := estest.Do(t, c, esapi.IndicesExistsIndexTemplateRequest{Name: "logs"}); r.Status != 404 {
		t.Errorf("exists after delete = %d", r.Status)
	}
}

func TestIndexTemplateValidation(t *testing.T) {
	es := esfake.Start(t)
	c := client(t, es)
	put := func(name, body string) estest.Result {
		return estest.Do(t, c, esapi.IndicesPutIndexTemplateRequest{Name: name, Body: strings.NewReader(body)})
	}
	estest.WantError(t, put("a", `{"template":{}}`), 400, "action_request_validation_exception",
		"Validation Failed: 1: index patterns are missing;")
	estest.WantError(t, put("a", `{"index_patterns":["x-*"],"bogus":1}`), 400, "x_content_parse_exception",
		"[1:27] [index_template] unknown field [bogus]")
	estest.WantError(t, put("a", `{"index_patterns":["x-*"],"template":{"mappings":{"properties":{"f":{"type":"strang"}}}}}`),
		400, "mapper_parsing_exception", "No handler for type [strang] declared on field [f]")
	estest.WantError(t, put("a", `{"index_patterns":`), 400, "x_content_parse_exception", "")

	if r := put("a", `{"index_patterns":["logs-*"]}`); r.Status != 200 {
		t.Fatalf("put a: %s", r.Raw)
	}
	estest.WantError(t, put("b", `{"index_patterns":["logs-acme-*"]}`), 400, "illegal_argument_exception",
		"index template [b] has index patterns [logs-acme-*] matching patterns from existing templates [a] with patterns (a => [logs-*]) that have the same priority [0], multiple index templates may not match during index creation, please use a different priority")
	if r := put("b", `{"index_patterns":["logs-acme-*"],"priority":5}`); r.Status != 200 {
		t.Errorf("put b with priority: %s", r.Raw)
	}
	if r := put("c", `{"index_patterns":["metrics-*"]}`); r.Status != 200 {
		t.Errorf("put c with disjoint patterns: %s", r.Raw)
	}
	r := estest.Do(t, c, esapi.IndicesGetIndexTemplateRequest{})
	var names []string
	for _, it := range estest.At(r.Body, "index_templates").([]any) {
		names = append(names, it.(map[string]any)["name"].(string))
	}
	if !reflect.DeepEqual(names, []string{"a", "b", "c"}) {
		t.Errorf("templates = %v", names)
	}
}

func TestIndexLifecycle(t *testing.T) {
	es := esfake.Start(t)
	c := client(t, es)

	r := estest.Do(t, c, esapi.IndicesCreateRequest{Index: "logs-a"})
	estest.WantValue(t, r, "acknowledged", true)
	estest.WantValue(t, r, "index", "logs-a")
	r = estest.Do(t, c, esapi.IndicesCreateRequest{Index: "logs-a"})
	estest.WantError(t, r, 400, "resource_already_exists_exception", "")
	if reason, _ := estest.At(r.Body, "error.reason").(string); !strings.HasPrefix(reason, "index [logs-a/") || !strings.HasSuffix(reason, "] already exists") {
		t.Errorf("reason = %q", reason)
	}
	estest.WantValue(t, r, "error.index", "logs-a")

	estest.WantError(t, estest.Do(t, c, esapi.IndicesCreateRequest{Index: "Logs"}), 400, "invalid_index_name_exception",
		"Invalid index name [Logs], must be lowercase")
	estest.WantError(t, estest.Do(t, c, esapi.IndicesCreateRequest{Index: "_x"}), 400, "invalid_index_name_exception",
		"Invalid index name [_x], must not start with '_', '-', or '+'")

	for name, want := range map[string]int{"logs-a": 200, "logs-b": 404} {
		if r := estest.Do(t, c, esapi.IndicesExistsRequest{Index: []string{name}}); r.Status != want {
			t.Errorf("exists %s = %d, want %d", name, r.Status, want)
		}
	}

	es.CreateIndex("logs-b")
	es.CreateIndex("logs-b") // no-op
	es.CreateIndex("other")
	if got := es.Indices(); !reflect.DeepEqual(got, []string{"logs-a", "logs-b", "other"}) {
		t.Fatalf("Indices = %v", got)
	}

	estest.WantError(t, estest.Do(t, c, esapi.IndicesDeleteRequest{Index: []string{"logs-a", "nope"}}), 404,
		"index_not_found_exception", "no such index [nope]")
	if got := es.Indices(); len(got) != 3 {
		t.Fatalf("a failed delete removed indices: %v", got)
	}
	yes := true
	r = estest.Do(t, c, esapi.IndicesDeleteRequest{Index: []string{"logs-a", "nope"}, IgnoreUnavailable: &yes})
	estest.WantValue(t, r, "acknowledged", true)
	estest.WantValue(t, estest.Do(t, c, esapi.IndicesDeleteRequest{Index: []string{"logs-*"}}), "acknowledged", true)
	estest.WantValue(t, estest.Do(t, c, esapi.IndicesDeleteRequest{Index: []string{"nothing-*"}}), "acknowledged", true)
	if got := es.Indices(); !reflect.DeepEqual(got, []string{"other"}) {
		t.Errorf("Indices after deletes = %v", got)
	}

	r = estest.Do(t, c, esapi.IndicesCreateRequest{Index: "typed", Body: strings.NewReader(
		`{"settings":{"index.mapping.total_fields.limit":2},"mappings":{"properties":{"n":{"type":"integer"}}}}`)})
	estest.WantValue(t, r, "acknowledged", true)
	if got := es.Mapping("typed"); !reflect.DeepEqual(got, map[string]string{"n": "integer"}) {
		t.Errorf("Mapping(typed) = %v", got)
	}
	r = estest.Do(t, c, esapi.IndicesGetMappingRequest{Index: []string{"typed"}})
	estest.WantValue(t, r, "typed.mappings.properties.n.type", "integer")
	r = estest.Do(t, c, esapi.IndicesGetRequest{Index: []string{"typed"}})
	estest.WantValue(t, r, "typed.settings.index.mapping.total_fields.limit", "2")
	estest.WantValue(t, r, "typed.settings.index.provided_name", "typed")
	if es.Mapping("missing") != nil || es.Docs("missing") != nil {
		t.Error("accessors of a missing index should return nil")
	}
}

func TestBulkCreateConflictAndOverwrite(t *testing.T) {
	es := esfake.Start(t)
	c := client(t, es)

	r := estest.Do(t, c, esapi.BulkRequest{Index: "logs-a", Body: estest.NDJSON(
		`{"create":{"_id":"1"}}`, `{"msg":"one"}`,
		`{"create":{"_index":"logs-b","_id":"2"}}`, `{"msg":"two"}`,
		`{"index":{}}`, `{"msg":"generated"}`,
	)})
	if r.Status != 200 {
		t.Fatalf("bulk: %d %s", r.Status, r.Raw)
	}
	estest.WantValue(t, r, "errors", false)
	estest.WantValue(t, r, "items.0.create", map[string]any{
		"_index": "logs-a", "_id": "1", "_version": float64(1), "result": "created",
		"_shards": map[string]any{"total": float64(2), "successful": float64(1), "failed": float64(0)},
		"_seq_no": float64(0), "_primary_term": float64(1), "status": float64(201),
	})
	estest.WantValue(t, r, "items.1.create._index", "logs-b")
	estest.WantValue(t, r, "items.2.index.status", float64(201))
	estest.WantValue(t, r, "items.2.index._seq_no", float64(1))
	genID, _ := estest.At(r.Body, "items.2.index._id").(string)
	if len(genID) != 20 {
		t.Errorf("generated _id %q, want 20 characters", genID)
	}
	if _, ok := estest.At(r.Body, "took").(float64); !ok {
		t.Errorf("took missing: %s", r.Raw)
	}

	r = estest.Do(t, c, esapi.BulkRequest{Body: estest.NDJSON(
		`{"create":{"_index":"logs-a","_id":"1"}}`, `{"msg":"again"}`,
		`{"index":{"_index":"logs-b","_id":"2"}}`, `{"msg":"two v2"}`,
		`{"delete":{"_index":"logs-a","_id":"nope"}}`,
	)})
	estest.WantValue(t, r, "errors", true)
	estest.WantValue(t, r, "items.0.create.status", float64(409))
	estest.WantValue(t, r, "items.0.create.error.type", "version_conflict_engine_exception")
	estest.WantValue(t, r, "items.0.create.error.reason", "[1]: version conflict, document already exists (current version [1])")
	estest.WantValue(t, r, "items.0.create.error.index", "logs-a")
	estest.WantValue(t, r, "items.0.create.error.shard", "0")
	if uuid, _ := estest.At(r.Body, "items.0.create.error.index_uuid").(string); uuid == "" {
		t.Error("conflict error lacks index_uuid")
	}
	estest.WantValue(t, r, "items.1.index.result", "updated")
	estest.WantValue(t, r, "items.1.index.status", float64(200))
	estest.WantValue(t, r, "items.1.index._version", float64(2))
	estest.WantValue(t, r, "items.2.delete.result", "not_found")
	estest.WantValue(t, r, "items.2.delete.status", float64(404))

	docs := es.Docs("logs-a")
	if string(docs["1"]) != `{"msg":"one"}` || string(docs[genID]) != `{"msg":"generated"}` || len(docs) != 2 {
		t.Errorf("Docs(logs-a) = %s", docs)
	}
	if got := string(es.Docs("logs-b")["2"]); got != `{"msg":"two v2"}` {
		t.Errorf("overwritten doc = %s", got)
	}
	wantIDs := map[string][]string{"1": {"logs-a"}, "2": {"logs-b"}, genID: {"logs-a"}}
	if got := es.IDs(); !reflect.DeepEqual(got, wantIDs) {
		t.Errorf("IDs = %v, want %v", got, wantIDs)
	}
	st := es.Stats()
	if st.BulkRequests != 2 || st.Items != 6 || st.Created != 3 || st.Conflicts != 1 || st.ItemInvalid != 0 {
		t.Errorf("Stats = %+v", st)
	}

	r = estest.Do(t, c, esapi.GetRequest{Index: "logs-b", DocumentID: "2"})
	estest.WantValue(t, r, "found", true)
	estest.WantValue(t, r, "_version", float64(2))
	estest.WantValue(t, r, "_source", map[string]any{"msg": "two v2"})
	r = estest.Do(t, c, esapi.GetRequest{Index: "logs-b", DocumentID: "9"})
	if r.Status != 404 {
		t.Errorf("missing doc status %d", r.Status)
	}
	estest.WantValue(t, r, "found", false)
	estest.WantError(t, estest.Do(t, c, esapi.GetRequest{Index: "nope", DocumentID: "1"}), 404, "index_not_found_exception", "no such index [nope]")

	r = estest.Do(t, c, esapi.IndicesRefreshRequest{Index: []string{"logs-a"}})
	estest.WantValue(t, r, "_shards.successful", float64(1))
	estest.WantError(t, estest.Do(t, c, esapi.IndicesRefreshRequest{Index: []string{"nope"}}), 404, "index_not_found_exception", "")

	r = estest.Do(t, c, esapi.BulkRequest{Refresh: "bogus", Body: estest.NDJSON(`{"create":{"_index":"a"}}`, `{}`)})
	estest.WantError(t, r, 400, "illegal_argument_exception", "Unknown value for refresh: [bogus].")
	if r := estest.Do(t, c, esapi.BulkRequest{Refresh: "wait_for", Body: estest.NDJSON(`{"create":{"_index":"a"}}`, `{}`)}); r.Status != 200 {
		t.Errorf("refresh=wait_for: %d", r.Status)
	}
}

func TestBulkItemErrors(t *testing.T) {
	es := esfake.Start(t)
	c := client(t, es)
	if r := estest.Do(t, c, esapi.IndicesPutIndexTemplateRequest{Name: "logs", Body: strings.NewReader(logsTemplate)}); r.Status != 200 {
		t.Fatal(r.Raw)
	}
	r := estest.Do(t, c, esapi.BulkRequest{Index: "logs-acme", Body: estest.NDJSON(
		`{"create":{"_id":"ok"}}`, `{"@timestamp":"2024-05-01T10:00:00.123456789+02:00","http.status":200,"labels":{"team":7},"user":"ann","raw":{"a":[1,{"b":2}]}}`,
		`{"create":{"_id":"bad-long"}}`, `{"http":{"status":"oops"}}`,
		`{"create":{"_id":"bad-obj"}}`, `{"http":5}`,
		`{"create":{"_id":"bad-json"}}`, `{"a":}`,
		`{"create":{"_index":"Logs-Upper","_id":"x"}}`, `{}`,
		`{"update":{"_id":"ok"}}`, `{"doc":{}}`,
	)})
	estest.WantValue(t, r, "errors", true)
	estest.WantValue(t, r, "items.0.create.status", float64(201))
	estest.WantValue(t, r, "items.1.create.status", float64(400))
	estest.WantValue(t, r, "items.1.create.error.type", "document_parsing_exception")
	estest.WantValue(t, r, "items.1.create.error.reason", "[1:19] failed to parse field [http.status] of type [long] in document with id 'bad-long'. Preview of field's value: 'oops'")
	estest.WantValue(t, r, "items.1.create.error.caused_by.reason", `For input string: "oops"`)
	estest.WantValue(t, r, "items.2.create.error.reason", "[1:9] object mapping for [http] tried to parse field [http] as object, but found a concrete value")
	estest.WantValue(t, r, "items.3.create.error.type", "document_parsing_exception")
	estest.WantValue(t, r, "items.4.create.error.type", "invalid_index_name_exception")
	estest.WantValue(t, r, "items.4.create.error.reason", "Invalid index name [Logs-Upper], must be lowercase")
	estest.WantValue(t, r, "items.5.update.status", float64(400))

	want := map[string]string{
		"@timestamp": "date", "message": "text", "http": "object", "http.status": "long", "raw": "object",
		"labels": "object", "labels.team": "keyword", "user": "keyword",
	}
	if got := es.Mapping("logs-acme"); !reflect.DeepEqual(got, want) {
		t.Errorf("Mapping = %v, want %v", got, want)
	}
	if docs := es.Docs("logs-acme"); len(docs) != 1 {
		t.Errorf("stored %d docs, want 1", len(docs))
	}
	if st := es.Stats(); st.ItemInvalid != 5 || st.Created != 1 {
		t.Errorf("Stats = %+v", st)
	}
	if got := es.Indices(); !reflect.DeepEqual(got, []string{"logs-acme"}) {
		t.Errorf("Indices = %v", got)
	}

	// The template's limit of 20 fields: 8 are mapped, 13 more are refused.
	var b strings.Builder
	for i := range 13 {
		fmt.Fprintf(&b, `,"f%d":1`, i)
	}
	r = estest.Do(t, c, esapi.BulkRequest{Body: estest.NDJSON(`{"index":{"_index":"logs-acme","_id":"wide"}}`, `{"x":0`+b.String()+`}`)})
	estest.WantValue(t, r, "items.0.index.error.type", "illegal_argument_exception")
	estest.WantValue(t, r, "items.0.index.error.reason", "Limit of total fields [20] has been exceeded while adding new fields [14]")
	if got := len(es.Mapping("logs-acme")); got != 8 {
		t.Errorf("a refused document changed the mapping: %d fields", got)
	}
}

func TestBulkMalformed(t *testing.T) {
	es := esfake.Start(t)
	c := client(t, es)
	cases := []struct {
		name, body, typ, reason string
	}{
		{"not json", "xyz\n{}\n", "x_content_parse_exception",
			"[1:1] Unrecognized token 'xyz': was expecting (JSON String, Number, Array, Object or token 'null', 'true' or 'false')"},
		{"not an object", "\"create\"\n{}\n", "illegal_argument_exception",
			"Malformed action/metadata line [1], expected START_OBJECT but found [VALUE_STRING]"},
		{"unknown action", "{\"insert\":{}}\n{}\n", "illegal_argument_exception",
			"Malformed action/metadata line [1], expected field [create], [delete], [index] or [update] but found [insert]"},
		{"unknown parameter", "{\"create\":{\"_index\":\"a\",\"colour\":\"red\"}}\n{}\n", "illegal_argument_exception",
			"Action/metadata line [1] contains an unknown parameter [colour]"},
		{"array parameter", "{\"create\":{\"_index\":[\"a\"]}}\n{}\n", "illegal_argument_exception",
			"Malformed action/metadata line [1], expected a simple value for field [_index] but found [START_ARRAY]"},
		{"action not an object", "{\"create\":1}\n{}\n", "illegal_argument_exception",
			"Malformed action/metadata line [1], expected START_OBJECT or END_OBJECT but found [VALUE_NUMBER]"},
		{"second action bad", "{\"create\":{\"_index\":\"a\"}}\n{}\n[]\n", "illegal_argument_exception",
			"Malformed action/metadata line [3], expected START_OBJECT but found [START_ARRAY]"},
		{"no final newline", "{\"create\":{\"_index\":\"a\"}}\n{}", "illegal_argument_exception",
			`The bulk request must be terminated by a newline [\n]`},
		{"no index", "{\"create\":{}}\n{}\n", "action_request_validation_exception",
			"Validation Failed: 1: index is missing;"},
		{"empty", "\n\n", "action_request_validation_exception", "Validation Failed: 1: no requests added;"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := estest.Do(t, c, esapi.BulkRequest{Body: strings.NewReader(tc.body)})
			estest.WantError(t, r, 400, tc.typ, tc.reason)
		})
	}
	if got := es.Indices(); len(got) != 0 {
		t.Errorf("a refused bulk request created indices %v", got)
	}
}

func TestBulkIndexerConcurrent(t *testing.T) {
	es := esfake.Start(t)
	c := client(t, es)
	bi, err := esutil.NewBulkIndexer(esutil.BulkIndexerConfig{
		Client:     c,
		NumWorkers: 4,
		FlushBytes: 8 << 10,
		FilterPath: []string{"errors", "items.*.status", "items.*.error"},
	})
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	var failed atomic.Int64
	for i := range n {
		err := bi.Add(context.Background(), esutil.BulkIndexerItem{
			Action:     "create",
			Index:      fmt.Sprintf("logs-%d", i%3),
			DocumentID: fmt.Sprintf("id-%d", i),
			Body:       strings.NewReader(fmt.Sprintf(`{"n":%d,"msg":"m%d"}`, i, i)),
			OnFailure: func(context.Context, esutil.BulkIndexerItem, esutil.BulkIndexerResponseItem, error) {
				failed.Add(1)
			},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := bi.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	bs := bi.Stats()
	if bs.NumAdded != n || bs.NumFailed != 0 || failed.Load() != 0 {
		t.Errorf("indexer stats %+v, failures %d", bs, failed.Load())
	}
	ids := es.IDs()
	if len(ids) != n {
		t.Errorf("%d ids stored, want %d", len(ids), n)
	}
	for id, where := range ids {
		if len(where) != 1 {
			t.Errorf("%s stored in %v", id, where)
		}
	}
	if st := es.Stats(); st.Items != n || st.Created != n {
		t.Errorf("Stats = %+v", st)
	}
	if got := es.Mapping("logs-1"); !reflect.DeepEqual(got, map[string]string{"n": "long", "msg": "keyword"}) {
		t.Errorf("Mapping = %v", got)
	}
}

func TestFilterPath(t *testing.T) {
	es := esfake.Start(t)
	c := client(t, es)
	fp := []string{"errors", "items.*.status", "items.*.error"}
	r := estest.Do(t, c, esapi.BulkRequest{FilterPath: fp, Body: estest.NDJSON(
		`{"create":{"_index":"a","_id":"1"}}`, `{"x":1}`,
		`{"index":{"_index":"a","_id":"2"}}`, `{"x":2}`,
	)})
	if r.Raw != `{"errors":false,"items":[{"create":{"status":201}},{"index":{"status":201}}]}` {
		t.Errorf("success body = %s", r.Raw)
	}
	r = estest.Do(t, c, esapi.BulkRequest{FilterPath: fp, Body: estest.NDJSON(`{"create":{"_index":"a","_id":"1"}}`, `{"x":1}`)})
	estest.WantValue(t, r, "items.0.create.status", float64(409))
	estest.WantValue(t, r, "items.0.create.error.type", "version_conflict_engine_exception")
	if _, ok := estest.At(r.Body, "items.0.create").(map[string]any)["_id"]; ok {
		t.Errorf("filtered body kept _id: %s", r.Raw)
	}

	r = estest.Do(t, c, esapi.BulkRequest{FilterPath: []string{"items.*.error"}, Body: estest.NDJSON(`{"create":{"_index":"a","_id":"3"}}`, `{"x":1}`)})
	if r.Raw != `{}` {
		t.Errorf("nothing matched: body = %s", r.Raw)
	}
	r = estest.Do(t, c, esapi.InfoRequest{FilterPath: []string{"version.number", "tag*"}})
	if r.Raw != `{"version":{"number":"8.15.0"},"tagline":"You Know, for Search"}` {
		t.Errorf("info body = %s", r.Raw)
	}
	r = estest.Do(t, c, esapi.GetRequest{Index: "a", DocumentID: "1", FilterPath: []string{"_source.x", "**.found"}})
	if r.Raw != `{"found":true,"_source":{"x":1}}` {
		t.Errorf("doc body = %s", r.Raw)
	}
	// Errors are not filtered.
	r = estest.Do(t, c, esapi.GetRequest{Index: "nope", DocumentID: "1", FilterPath: []string{"found"}})
	estest.WantError(t, r, 404, "index_not_found_exception", "no such index [nope]")
}

func TestRequireAuth(t *testing.T) {
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("elastic:s3cret"))
	es := esfake.Start(t, esfake.RequireAuth(auth))

	r := estest.Do(t, client(t, es), esapi.InfoRequest{})
	estest.WantError(t, r, 401, "security_exception", "missing authentication credentials for REST request [/]")
	if got := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Basic") {
		t.Errorf("WWW-Authenticate = %q", got)
	}
	wrong := client(t, es, func(c *elasticsearch.Config) { c.Username, c.Password = "elastic", "nope" })
	estest.WantError(t, estest.Do(t, wrong, esapi.IndicesCreateRequest{Index: "a"}), 401, "security_exception",
		"unable to authenticate user [elastic] for REST request [/a]")
	if len(es.Indices()) != 0 {
		t.Error("an unauthenticated request created an index")
	}

	right := client(t, es, func(c *elasticsearch.Config) { c.Username, c.Password = "elastic", "s3cret" })
	if r := estest.Do(t, right, esapi.InfoRequest{}); r.Status != 200 {
		t.Errorf("authenticated info = %d %s", r.Status, r.Raw)
	}
	if r := estest.Do(t, right, esapi.BulkRequest{Body: estest.NDJSON(`{"create":{"_index":"a"}}`, `{}`)}); r.Status != 200 {
		t.Errorf("authenticated bulk = %d %s", r.Status, r.Raw)
	}
	if st := es.Stats(); st.Requests != 4 || st.Created != 1 {
		t.Errorf("Stats = %+v", st)
	}
}

func TestFaults(t *testing.T) {
	body := func() io.Reader { return estest.NDJSON(`{"create":{"_index":"a"}}`, `{"x":1}`) }

	t.Run("whole request 429", func(t *testing.T) {
		es := esfake.Start(t, esfake.WithFaults(esfake.Faults{RequestStatus: 429, RequestFraction: 1}))
		c := client(t, es)
		r := estest.Do(t, c, esapi.BulkRequest{Body: body()})
		estest.WantError(t, r, 429, "es_rejected_execution_exception", "")
		if reason, _ := estest.At(r.Body, "error.reason").(string); !strings.HasPrefix(reason, "rejected execution of coordinating operation") {
			t.Errorf("reason = %q", reason)
		}
		if r := estest.Do(t, c, esapi.InfoRequest{}); r.Status != 200 {
			t.Errorf("GET / faulted: %d", r.Status)
		}
		if st := es.Stats(); st.RequestsFaulted != 1 || st.BulkRequests != 0 || len(es.Indices()) != 0 {
			t.Errorf("Stats = %+v, indices %v", st, es.Indices())
		}
	})

	t.Run("whole request 503 by default", func(t *testing.T) {
		es := esfake.Start(t)
		es.SetFaults(esfake.Faults{RequestFraction: 1})
		c := client(t, es)
		estest.WantError(t, estest.Do(t, c, esapi.BulkRequest{Body: body()}), 503, "unavailable_shards_exception", "")
		estest.WantError(t, estest.Do(t, c, esapi.IndicesCreateRequest{Index: "x"}), 503, "unavailable_shards_exception", "")
		es.SetFaults(esfake.Faults{})
		if r := estest.Do(t, c, esapi.BulkRequest{Body: body()}); r.Status != 200 {
			t.Errorf("after clearing faults: %d", r.Status)
		}
	})

	t.Run("items", func(t *testing.T) {
		es := esfake.Start(t, esfake.WithFaults(esfake.Faults{ItemFraction: 1}))
		r := estest.Do(t, client(t, es), esapi.BulkRequest{Body: estest.NDJSON(
			`{"create":{"_index":"a","_id":"1"}}`, `{}`, `{"index":{"_index":"a","_id":"2"}}`, `{}`)})
		if r.Status != 200 {
			t.Fatalf("status %d", r.Status)
		}
		estest.WantValue(t, r, "errors", true)
		for i, action := range []string{"create", "index"} {
			p := fmt.Sprintf("items.%d.%s.", i, action)
			estest.WantValue(t, r, p+"status", float64(429))
			estest.WantValue(t, r, p+"error.type", "es_rejected_execution_exception")
		}
		if st := es.Stats(); st.ItemRejected != 2 || st.Created != 0 || len(es.IDs()) != 0 {
			t.Errorf("Stats = %+v", st)
		}
	})

	t.Run("down", func(t *testing.T) {
		es := esfake.Start(t, esfake.WithFaults(esfake.Faults{Down: true}))
		c := client(t, es)
		estest.WantError(t, estest.Do(t, c, esapi.InfoRequest{}), 503, "cluster_block_exception", "blocked by: [SERVICE_UNAVAILABLE/2/no master];")
		estest.WantError(t, estest.Do(t, c, esapi.BulkRequest{Body: body()}), 503, "cluster_block_exception", "")
		if st := es.Stats(); st.RequestsFaulted != 2 {
			t.Errorf("Stats = %+v", st)
		}
	})

	t.Run("latency", func(t *testing.T) {
		es := esfake.Start(t, esfake.WithFaults(esfake.Faults{Latency: 100 * time.Millisecond}))
		start := time.Now()
		if r := estest.Do(t, client(t, es), esapi.InfoRequest{}); r.Status != 200 {
			t.Fatal(r.Raw)
		}
		if d := time.Since(start); d < 100*time.Millisecond {
			t.Errorf("answered after %v", d)
		}
	})

	t.Run("fraction is seeded", func(t *testing.T) {
		pattern := func() string {
			es := esfake.Start(t, esfake.Seed(42), esfake.WithFaults(esfake.Faults{RequestFraction: 0.5, RequestStatus: 429}))
			c := client(t, es)
			var b strings.Builder
			for range 40 {
				r := estest.Do(t, c, esapi.ClusterHealthRequest{})
				b.WriteString(map[int]string{200: "o", 429: "x"}[r.Status])
			}
			return b.String()
		}
		p1, p2 := pattern(), pattern()
		if p1 != p2 {
			t.Errorf("same seed, different faults:\n%s\n%s", p1, p2)
		}
		if n := strings.Count(p1, "x"); n < 8 || n > 32 || strings.Count(p1, "o") != 40-n {
			t.Errorf("fault pattern %s", p1)
		}
	})
}

func TestDiscard(t *testing.T) {
	es := esfake.Start(t, esfake.Discard())
	var lines []string
	for i := range 500 {
		lines = append(lines, fmt.Sprintf(`{"create":{"_index":"bench","_id":"%d"}}`, i%7), `{"x":"anything","y":{"z":1}}`)
	}
	r := estest.Do(t, client(t, es), esapi.BulkRequest{Body: estest.NDJSON(lines...)})
	estest.WantValue(t, r, "errors", false)
	estest.WantValue(t, r, "items.499.create.status", float64(201))
	estest.WantValue(t, r, "items.499.create._id", "2")
	if st := es.Stats(); st.Items != 500 || st.Created != 500 || st.Conflicts != 0 {
		t.Errorf("Stats = %+v", st)
	}
	if len(es.Indices()) != 0 || es.Docs("bench") != nil {
		t.Error("Discard stored something")
	}
}

func TestCatIndicesAndHealth(t *testing.T) {
	es := esfake.Start(t)
	c := client(t, es)
	estest.Do(t, c, esapi.BulkRequest{Body: estest.NDJSON(
		`{"create":{"_index":"logs-b"}}`, `{"m":"1"}`,
		`{"create":{"_index":"logs-b"}}`, `{"m":"2"}`,
		`{"create":{"_index":"logs-a"}}`, `{"m":"3"}`,
	)})
	es.CreateIndex("other")

	r := estest.Do(t, c, esapi.CatIndicesRequest{Format: "json", H: []string{"index", "docs.count", "health", "status"}})
	var rows []map[string]string
	if err := json.Unmarshal([]byte(r.Raw), &rows); err != nil {
		t.Fatalf("%v: %s", err, r.Raw)
	}
	want := []map[string]string{
		{"index": "logs-a", "docs.count": "1", "health": "green", "status": "open"},
		{"index": "logs-b", "docs.count": "2", "health": "green", "status": "open"},
		{"index": "other", "docs.count": "0", "health": "green", "status": "open"},
	}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("cat json = %v", rows)
	}

	yes := true
	r = estest.Do(t, c, esapi.CatIndicesRequest{Index: []string{"logs-*"}, H: []string{"i", "dc"}, V: &yes, S: []string{"docs.count:desc"}})
	if want := "index  docs.count\nlogs-b          2\nlogs-a          1\n"; r.Raw != want {
		t.Errorf("cat text = %q, want %q", r.Raw, want)
	}
	if got := r.Header.Get("X-Elastic-Product"); got != "Elasticsearch" {
		t.Errorf("text response lacks X-Elastic-Product")
	}
	r = estest.Do(t, c, esapi.CatIndicesRequest{Index: []string{"nomatch-*"}, Format: "json"})
	if r.Raw != "[]" {
		t.Errorf("no match = %s", r.Raw)
	}
	estest.WantError(t, estest.Do(t, c, esapi.CatIndicesRequest{Index: []string{"nope"}}), 404, "index_not_found_exception", "no such index [nope]")

	r = estest.Do(t, c, esapi.CatIndicesRequest{Format: "json"})
	var all []map[string]string
	_ = json.Unmarshal([]byte(r.Raw), &all)
	if len(all) != 3 {
		t.Fatalf("default columns: %s", r.Raw)
	}
	var cols []string
	for k := range all[0] {
		cols = append(cols, k)
	}
	sort.Strings(cols)
	if want := []string{"dataset.size", "docs.count", "docs.deleted", "health", "index", "pri", "pri.store.size", "rep", "status", "store.size", "uuid"}; !reflect.DeepEqual(cols, want) {
		t.Errorf("default columns %v", cols)
	}

	r = estest.Do(t, c, esapi.ClusterHealthRequest{})
	estest.WantValue(t, r, "status", "green")
	estest.WantValue(t, r, "timed_out", false)
	estest.WantValue(t, r, "active_primary_shards", float64(3))
}

func TestUnknownEndpointAndMethod(t *testing.T) {
	es := esfake.Start(t)
	get := func(method, path string) (int, map[string]any, http.Header) {
		req, _ := http.NewRequest(method, es.URL()+path, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(res.Body).Decode(&body)
		return res.StatusCode, body, res.Header
	}
	status, body, h := get("GET", "/_search/everything?q=1")
	if status != 400 || body["error"] != "no handler found for uri [/_search/everything?q=1] and method [GET]" {
		t.Errorf("unknown endpoint: %d %v", status, body)
	}
	if h.Get("X-Elastic-Product") != "Elasticsearch" {
		t.Error("unknown endpoint lacks X-Elastic-Product")
	}
	status, body, h = get("GET", "/_bulk")
	if status != 405 || body["error"] != "Incorrect HTTP method for uri [/_bulk] and method [GET], allowed: [POST, PUT]" || h.Get("Allow") != "POST,PUT" {
		t.Errorf("wrong method: %d %v %v", status, body, h.Get("Allow"))
	}
}

func TestGzipRequestBody(t *testing.T) {
	es := esfake.Start(t)
	c := client(t, es, func(cfg *elasticsearch.Config) { cfg.CompressRequestBody = true })
	r := estest.Do(t, c, esapi.BulkRequest{Body: estest.NDJSON(`{"create":{"_index":"z","_id":"1"}}`, `{"k":"v"}`)})
	estest.WantValue(t, r, "items.0.create.status", float64(201))
	if got := string(es.Docs("z")["1"]); got != `{"k":"v"}` {
		t.Errorf("stored %s", got)
	}
}

func TestHandlerWithoutStart(t *testing.T) {
	es := esfake.New()
	if es.URL() != "" {
		t.Errorf("URL of an unstarted server = %q", es.URL())
	}
	mux := http.NewServeMux()
	mux.Handle("/", es.Handler())
	req, _ := http.NewRequest("PUT", "/embedded", nil)
	rec := &recorder{header: http.Header{}}
	mux.ServeHTTP(rec, req)
	if rec.status != 200 || !reflect.DeepEqual(es.Indices(), []string{"embedded"}) {
		t.Errorf("status %d, indices %v, body %s", rec.status, es.Indices(), rec.body.String())
	}
	es.Close()
	es.Close()
}

type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(s int)           { r.status = s }

func TestTemplatePriority(t *testing.T) {
	es := esfake.Start(t)
	c := client(t, es)
	for name, body := range map[string]string{
		"low":  `{"index_patterns":["logs-*"],"priority":1,"template":{"mappings":{"properties":{"f":{"type":"long"}}}}}`,
		"high": `{"index_patterns":["logs-acme-*"],"priority":2,"template":{"mappings":{"properties":{"f":{"type":"keyword"}}}}}`,
	} {
		if r := estest.Do(t, c, esapi.IndicesPutIndexTemplateRequest{Name: name, Body: strings.NewReader(body)}); r.Status != 200 {
			t.Fatalf("%s: %s", name, r.Raw)
		}
	}
	r := estest.Do(t, c, esapi.BulkRequest{Body: estest.NDJSON(
		`{"create":{"_index":"logs-acme-1"}}`, `{"f":"x"}`,
		`{"create":{"_index":"logs-other"}}`, `{"f":"x"}`,
		`{"create":{"_index":"unmatched"}}`, `{"f":"x"}`,
	)})
	estest.WantValue(t, r, "items.0.create.status", float64(201))
	estest.WantValue(t, r, "items.1.create.status", float64(400))
	estest.WantValue(t, r, "items.2.create.status", float64(201))
	for index, want := range map[string]string{"logs-acme-1": "keyword", "logs-other": "long", "unmatched": "keyword"} {
		if got := es.Mapping(index)["f"]; got != want {
			t.Errorf("%s: f is %q, want %q", index, got, want)
		}
	}
}

func TestCloseCutsLatencyShort(t *testing.T) {
	es := esfake.Start(t, esfake.WithFaults(esfake.Faults{Latency: time.Minute}))
	c := client(t, es)
	done := make(chan int, 1)
	go func() {
		res, err := esapi.InfoRequest{}.Do(context.Background(), c)
		if err != nil {
			done <- 0
			return
		}
		res.Body.Close()
		done <- res.StatusCode
	}()
	testwait.For(t, 5*time.Second, "the request to arrive", func() (bool, string) { return es.Stats().Requests != 0, "" })
	start := time.Now()
	es.Close()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v", d)
	}
	select {
	case status := <-done:
		if status != 200 {
			t.Errorf("in-flight request answered %d", status)
		}
	case <-time.After(5 * time.Second):
		t.Error("in-flight request not answered")
	}
}
