package eslite

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/sethvargo/go-envconfig"
	"github.com/sluicelogs/sluice/internal/config"
)

// TestClientAccepts: go-elasticsearch v8 accepts the store (its product
// check), in plain and compatibility mode, and reads GET /.
func TestClientAccepts(t *testing.T) {
	ts := memStore(t)
	for _, compat := range []bool{false, true} {
		c, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{ts.url}, EnableCompatibilityMode: compat})
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.Info()
		if err != nil {
			t.Fatal(err)
		}
		var info struct{ Version struct{ Number string } }
		_ = json.NewDecoder(res.Body).Decode(&info)
		res.Body.Close()
		if info.Version.Number != "8.15.0" || res.Header.Get("X-Elastic-Product") != "Elasticsearch" {
			t.Errorf("compat %v: %s %+v", compat, res.Header, info)
		}
		if ct := res.Header.Get("Content-Type"); compat != strings.Contains(ct, "compatible-with=8") {
			t.Errorf("compat %v: Content-Type %s", compat, ct)
		}
	}
}

// TestBulk: create, index (an update), 409 for an existing _id, generated
// _ids, per-item errors worded as Elasticsearch words them, a gzip body,
// and the whole-request errors of a malformed body.
func TestBulk(t *testing.T) {
	ts := memStore(t)
	items := ts.bulk(t,
		`{"create":{"_index":"logs-a","_id":"1"}}`, `{"n":1,"s":"x"}`,
		`{"create":{"_index":"logs-a","_id":"1"}}`, `{"n":1,"s":"x"}`,
		`{"index":{"_index":"logs-a","_id":"1"}}`, `{"n":2}`,
		`{"index":{"_index":"logs-a"}}`, `{"n":3}`,
		`{"create":{"_index":"logs-a","_id":"2"}}`, `{"n":"oops"}`,
		`{"create":{"_index":"logs-a","_id":"3"}}`, `{"s":{"inner":1}}`,
		`{"create":{"_index":"logs-a","_id":"4"}}`, `{"s":"x","o":{"a":1},"p":[{"a":1},2]}`,
		`{"create":{"_index":"logs-a","_id":"5"}}`, `{"_id":"x"}`,
		`{"create":{"_index":"logs-a","_id":"6"}}`, `{"a":1`,
		`{"create":{"_index":"Logs-B","_id":"7"}}`, `{}`,
		`{"delete":{"_index":"logs-a","_id":"1"}}`,
	)
	want := []string{
		"201 created", "409 version_conflict_engine_exception: [1]: version conflict, document already exists (current version [1])",
		"200 updated", "201 created",
		"400 document_parsing_exception: [1:6] failed to parse field [n] of type [long] in document with id '2'. Preview of field's value: 'oops'",
		"400 document_parsing_exception: [1:16] failed to parse field [s] of type [keyword] in document with id '3'. Preview of field's value: '{\"inner\":1}'",
		"400 document_parsing_exception: [1:35] object mapping for [p] tried to parse field [p] as object, but found a concrete value",
		"400 document_parsing_exception: [1:2] Field [_id] is a metadata field and cannot be added inside a document. Use the index API request parameters.",
		"400 document_parsing_exception: [1:7] failed to parse: Unexpected end-of-input: expected a comma to separate Object entries",
		"400 invalid_index_name_exception: Invalid index name [Logs-B], must be lowercase",
		"400 illegal_argument_exception: eslite does not support the bulk action [delete]",
	}
	for i, it := range items {
		got := ""
		if e, ok := it["error"].(map[string]any); ok {
			got = e["type"].(string) + ": " + e["reason"].(string)
		} else {
			got = it["result"].(string)
		}
		got = jsonNum(it["status"]) + " " + got
		if i >= len(want) || got != want[i] {
			t.Errorf("item %d: %s", i, got)
		}
	}
	if items[3]["_id"].(string) == "" || len(items[3]["_id"].(string)) != 20 {
		t.Errorf("generated _id %v", items[3]["_id"])
	}
	// The failed "n":"oops" names its cause as Elasticsearch does.
	b, _ := json.Marshal(items[4]["error"])
	if !strings.Contains(string(b), `"caused_by":{"reason":"For input string: \"oops\"","type":"illegal_argument_exception"}`) {
		t.Errorf("cause: %s", b)
	}
	if docs := ts.Docs("logs-a"); len(docs) != 2 || string(docs["1"]) != `{"n":2}` {
		t.Errorf("documents %v", docs)
	}
	if st := ts.Stats(); st.Conflicts != 1 || st.Created != 2 || st.ItemInvalid != 7 || st.Items != 11 {
		t.Errorf("stats %+v", st)
	}

	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	io.WriteString(zw, "{\"create\":{\"_id\":\"z\"}}\n{\"n\":5}\n")
	zw.Close()
	res, err := ts.c.Bulk(&zipped, ts.c.Bulk.WithIndex("logs-a"), func(r *esapi.BulkRequest) {
		r.Header = http.Header{"Content-Encoding": {"gzip"}}
	})
	if err != nil || res.IsError() {
		t.Fatalf("gzip bulk: %v %v", err, res)
	}
	if ts.Docs("logs-a")["z"] == nil {
		t.Error("the gzip bulk stored nothing")
	}

	for body, want := range map[string]string{
		`{"create":{"_index":"a"}}`:                     `The bulk request must be terminated by a newline [\\n]`,
		"{\"create\":{}}\n{}\n":                         "Validation Failed: 1: index is missing;",
		"{\"upsert\":{\"_index\":\"a\"}}\n{}\n":         "Malformed action/metadata line [1], expected field [create], [delete], [index] or [update] but found [upsert]",
		"{\"create\":{\"_index\":\"a\",\"x\":1}}\n{}\n": "Action/metadata line [1] contains an unknown parameter [x]",
		"\n": "Validation Failed: 1: no requests added;",
	} {
		if status, out := ts.call(t, "POST", "/_bulk", body); status != 400 || !strings.Contains(out, want) {
			t.Errorf("bulk %q: %d %s", body, status, out)
		}
	}
}

func jsonNum(v any) string { b, _ := json.Marshal(v); return string(b) }

// TestMapping: the checks the indexer relies on, under its template:
// dynamic templates, ignore_above, the total fields limit, disabled
// objects, dates, and strict objects.
func TestMapping(t *testing.T) {
	ts := memStore(t)
	ts.must(t, 200, "PUT", "/_index_template/sluice", readFile(t, "../../indexer/testdata/template.json"))
	items := ts.bulk(t, `{"create":{"_index":"sluice-shop-2026.11.21","_id":"1"}}`, string(logDocument(1)),
		`{"create":{"_index":"sluice-shop-2026.11.21","_id":"2"}}`, `{"kubernetes":{"labels":{"a.b":"x"}},"codes":[1.5,2],"tags":["a",1],"sluice":{"unknown":{"any":[1,{"x":"y"}]}},"big":"`+strings.Repeat("x", 2000)+`"}`)
	for _, it := range items {
		if it["status"].(float64) != 201 {
			t.Fatalf("item %v", it)
		}
	}
	m := ts.Mapping("sluice-shop-2026.11.21")
	for field, typ := range map[string]string{"@timestamp": "date", "log": "text", "kubernetes.labels.app": "keyword", "kubernetes.labels.a.b": "keyword",
		"http.status": "long", "duration": "double", "codes": "double", "tags": "keyword", "sluice.source.offset": "long", "sluice.unknown": "object", "kubernetes": "object"} {
		if m[field] != typ {
			t.Errorf("%s mapped %q, want %q", field, m[field], typ)
		}
	}
	if _, ok := m["sluice.unknown.any"]; ok {
		t.Error("a field of a disabled object was mapped")
	}
	// ignore_above: kept in _source, not searchable.
	if n := ts.count(t, "sluice-*", `{"exists":{"field":"big"}}`); n != 0 {
		t.Errorf("a value over ignore_above is searchable: %d", n)
	}
	ts.must(t, 200, "PUT", "/_index_template/small", `{"index_patterns":["small-*"],"template":{"settings":{"index.mapping.total_fields.limit":5},
		"mappings":{"properties":{"when":{"type":"date"},"strict":{"type":"object","dynamic":"strict","properties":{"a":{"type":"keyword"}}}}}}}`)
	items = ts.bulk(t,
		`{"create":{"_index":"small-1","_id":"1"}}`, `{"when":"2026-11-21T10:00:00+01:00","x":1}`,
		`{"create":{"_index":"small-1","_id":"2"}}`, `{"y":1,"z":2}`,
		`{"create":{"_index":"small-1","_id":"3"}}`, `{"when":"yesterday"}`,
		`{"create":{"_index":"small-1","_id":"4"}}`, `{"strict":{"b":1}}`,
		`{"create":{"_index":"small-1","_id":"5"}}`, `{"when":1795251600000,"strict":{"a":"ok"}}`,
		`{"create":{"_index":"small-1","_id":"6"}}`, `{"x":{"y":1}}`,
		`{"create":{"_index":"small-1","_id":"7"}}`, `{"x.y":1}`,
	)
	for i, want := range []string{"", "Limit of total fields [5] has been exceeded while adding new fields [2]",
		"failed to parse date field [yesterday] with format [strict_date_optional_time||epoch_millis]",
		"mapping set to strict, dynamic introduction of [b] within [strict] is not allowed", "",
		"failed to parse field [x] of type [long] in document with id '6'. Preview of field's value: '{\"y\":1}'",
		"Could not dynamically add mapping for field [x.y]. Existing mapping for [x] must be of type object but found [long]."} {
		e, _ := items[i]["error"].(map[string]any)
		got := ""
		if e != nil {
			got, _ = e["reason"].(string)
			if c, ok := e["caused_by"].(map[string]any); ok {
				got += " / " + c["reason"].(string)
			}
		}
		if want == "" && got != "" || want != "" && !strings.Contains(got, want) {
			t.Errorf("item %d: %q, want %q", i+1, got, want)
		}
	}
	if n := ts.count(t, "small-1", `{"range":{"when":{"gte":"2026-11-21T09:00:00Z","lte":"2026-11-21T09:00:00Z"}}}`); n != 2 {
		t.Errorf("dates with an offset and epoch millis: %d matches, want 2", n)
	}
}

// TestTemplatesAndIndices: templates are kept as put, the highest priority
// applies, overlapping ones of equal priority are refused; indices are
// created, described, listed and deleted by expressions.
func TestTemplatesAndIndices(t *testing.T) {
	ts := memStore(t)
	ts.must(t, 200, "PUT", "/_index_template/low", `{"index_patterns":["logs-*"],"priority":1,"template":{"settings":{"index":{"refresh_interval":"5s"}}}}`)
	ts.must(t, 200, "PUT", "/_index_template/high", `{"index_patterns":["logs-a*"],"priority":2,"template":{"settings":{"index.refresh_interval":"30s"}}}`)
	if status, out := ts.call(t, "PUT", "/_index_template/clash", `{"index_patterns":["*-a"],"priority":2}`); status != 400 || !strings.Contains(out, "same priority [2]") {
		t.Errorf("overlap: %d %s", status, out)
	}
	ts.must(t, 400, "PUT", "/_index_template/low?create=true", `{"index_patterns":["x-*"]}`)
	ts.must(t, 400, "PUT", "/_index_template/bad", `{"index_patterns":["x-*"],"template":{"mappings":{"properties":{"a":{"type":"nope"}}}}}`)
	if body, ok := ts.Template("low"); !ok || !strings.Contains(string(body), `"5s"`) {
		t.Errorf("template %s", body)
	}
	got := ts.must(t, 200, "GET", "/_index_template/l*", "")
	if list := got["index_templates"].([]any); len(list) != 1 || list[0].(map[string]any)["name"] != "low" {
		t.Errorf("GET templates: %v", got)
	}
	ts.must(t, 404, "GET", "/_index_template/none", "")

	ts.must(t, 200, "PUT", "/logs-a1", `{"mappings":{"properties":{"m":{"type":"keyword"}}}}`)
	ts.must(t, 400, "PUT", "/logs-a1", "")
	ts.CreateIndex("logs-b1")
	ts.CreateIndex("other")
	desc := ts.must(t, 200, "GET", "/logs-*", "")
	settings := func(name string) string {
		return desc[name].(map[string]any)["settings"].(map[string]any)["index"].(map[string]any)["refresh_interval"].(string)
	}
	if settings("logs-a1") != "30s" || settings("logs-b1") != "5s" || ts.Mapping("logs-a1")["m"] != "keyword" {
		t.Errorf("GET /logs-*: %v", desc)
	}
	ts.must(t, 200, "HEAD", "/logs-a1", "")
	ts.must(t, 404, "HEAD", "/logs-zz", "")
	if status, out := ts.call(t, "GET", "/_cat/indices/logs-*?v&h=index,docs.count", ""); status != 200 || out != "index   docs.count\nlogs-a1 0\nlogs-b1 0\n" {
		t.Errorf("cat indices: %d %q", status, out)
	}
	if _, out := ts.call(t, "GET", "/_cat/indices?format=json&h=index", ""); out != `[{"index":"logs-a1"},{"index":"logs-b1"},{"index":"other"}]` {
		t.Errorf("cat indices json: %s", out)
	}
	ts.must(t, 404, "DELETE", "/logs-a1,gone", "")
	ts.must(t, 200, "DELETE", "/logs-*,-logs-b1,gone?ignore_unavailable=true", "")
	if got := strings.Join(ts.Indices(), ","); got != "logs-b1,other" {
		t.Errorf("after delete: %s", got)
	}
	ts.must(t, 200, "DELETE", "/_index_template/low", "")
	ts.must(t, 404, "DELETE", "/_index_template/low", "")
	ts.must(t, 200, "GET", "/_all/_count", "")
	if status, out := ts.call(t, "GET", "/_bulk", ""); status != 405 || !strings.Contains(out, "allowed: [POST, PUT]") {
		t.Errorf("GET /_bulk: %d %s", status, out)
	}
	if status, out := ts.call(t, "POST", "/a/_update/1", "{}"); status != 400 || !strings.Contains(out, "no handler found for uri [/a/_update/1]") {
		t.Errorf("unknown endpoint: %d %s", status, out)
	}
}

// TestFaults: whole-request faults (never on GET /), per-item 429s,
// latency, a cluster that is down, and each index fault.
func TestFaults(t *testing.T) {
	ts := memStore(t, Seed(3), WithFaults(Faults{RequestStatus: 429, RequestFraction: 1}))
	ts.must(t, 200, "GET", "/", "")
	if status, out := ts.call(t, "GET", "/_cat/indices", ""); status != 429 || !strings.Contains(out, "es_rejected_execution_exception") {
		t.Errorf("request fault: %d %s", status, out)
	}
	ts.SetFaults(Faults{RequestFraction: 1})
	if status, out := ts.call(t, "GET", "/_cat/indices", ""); status != 503 || !strings.Contains(out, "unavailable_shards_exception") {
		t.Errorf("503 fault: %d %s", status, out)
	}
	ts.SetFaults(Faults{ItemFraction: 0.5})
	var lines []string
	for range 200 {
		lines = append(lines, `{"create":{"_index":"a"}}`, `{}`)
	}
	rejected := 0
	for _, it := range ts.bulk(t, lines...) {
		if it["status"].(float64) == 429 {
			rejected++
		}
	}
	if rejected < 60 || rejected > 140 {
		t.Errorf("%d of 200 items rejected, want about half", rejected)
	}
	ts.SetFaults(Faults{Down: true, Latency: 30 * time.Millisecond})
	start := time.Now()
	if status, out := ts.call(t, "GET", "/", ""); status != 503 || !strings.Contains(out, "no master") || time.Since(start) < 30*time.Millisecond {
		t.Errorf("down: %d %s after %s", status, out, time.Since(start))
	}
	ts.SetFaults(Faults{})
	ts.CreateIndex("made-1")
	for fault, want := range map[IndexFault]string{
		WriteBlock: "403 cluster_block_exception", FloodStage: "429 cluster_block_exception", Closed: "400 index_closed_exception",
		NoAutoCreate: "404 index_not_found_exception", ShardLimit: "400 validation_exception", PipelineFails: "500 fail_processor_exception",
		PipelineMissing: "400 illegal_argument_exception",
	} {
		ts.SetIndexFault("new-*", fault)
		ts.SetIndexFault("made-*", fault)
		it := ts.bulk(t, `{"create":{"_index":"new-1"}}`, `{}`, `{"create":{"_index":"made-1"}}`, `{}`)
		if got := jsonNum(it[0]["status"]) + " " + it[0]["error"].(map[string]any)["type"].(string); got != want {
			t.Errorf("fault %d: %s, want %s", fault, got, want)
		}
		existing := fault == NoAutoCreate || fault == ShardLimit // an existing index is written
		if (it[1]["error"] == nil) != existing {
			t.Errorf("fault %d on an existing index: %v", fault, it[1])
		}
	}
	ts.SetIndexFault("new-*", NoIndexFault)
	if it := ts.bulk(t, `{"create":{"_index":"new-1"}}`, `{}`); it[0]["status"].(float64) != 201 {
		t.Errorf("fault lifted: %v", it[0])
	}
}

// TestAuthAndRoles: RequireAuth answers 401 as Elasticsearch's security
// does; roles are checked, kept and deleted.
func TestAuthAndRoles(t *testing.T) {
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("sluice:secret"))
	ts := memStore(t, RequireAuth(auth))
	for _, hdr := range [][]string{nil, {"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("sluice:wrong"))}} {
		status, out := ts.call(t, "GET", "/", "", hdr...)
		if status != 401 || !strings.Contains(out, "security_exception") {
			t.Errorf("%v: %d %s", hdr, status, out)
		}
	}
	c, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{ts.url}, Username: "sluice", Password: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Security.PutRole("sluice-shop", strings.NewReader(`{"indices":[{"names":["sluice-shop-*"],"privileges":["read"]}]}`))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("put role: %v %v", err, res)
	}
	if body, ok := ts.Role("sluice-shop"); !ok || !strings.Contains(string(body), "sluice-shop-*") {
		t.Errorf("role %s", body)
	}
	res, _ = c.Security.PutRole("bad", strings.NewReader(`{"indices":[{"names":[]}]}`))
	if res.StatusCode != 400 {
		t.Errorf("a role without names: %s", res)
	}
	for _, want := range []int{200, 404} {
		if res, _ = c.Security.DeleteRole("sluice-shop"); res.StatusCode != want {
			t.Errorf("delete role: %s, want %d", res, want)
		}
	}
}

// TestOpenSearch: answering as OpenSearch 2.x.
func TestOpenSearch(t *testing.T) {
	ts := memStore(t, OpenSearch(), RequireAuth("Basic eA=="))
	status, out := ts.call(t, "GET", "/", "")
	if status != 401 || out != "Unauthorized" {
		t.Errorf("401: %d %q", status, out)
	}
	req, _ := http.NewRequest("GET", ts.url+"/", nil)
	req.Header.Set("Authorization", "Basic eA==")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.Header.Get("X-Elastic-Product") != "" || !strings.Contains(string(body), `"distribution":"opensearch"`) || !strings.Contains(string(body), `"number":"2.17.1"`) {
		t.Errorf("GET /: %s %s", res.Header, body)
	}
	status, out = ts.call(t, "POST", "/_bulk", "{\"create\":{\"_index\":\"a\"}}\n{\"n\":1}\n{\"create\":{\"_index\":\"a\"}}\n{\"n\":\"x\"}\n",
		"Authorization", "Basic eA==", "Content-Type", "application/x-ndjson")
	if status != 200 || !strings.Contains(out, `"type":"mapper_parsing_exception","reason":"failed to parse field [n] of type [long]`) {
		t.Errorf("OpenSearch's item error: %d %s", status, out)
	}
}

// TestPersistence: a store on disk keeps templates, roles, indices and
// documents (create still answers 409 after a restart), cuts a torn last
// log entry, removes an interrupted creation, and locks its directory.
func TestPersistence(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ts, closeStore := serve(t, st)
	ts.must(t, 200, "PUT", "/_index_template/logs", `{"index_patterns":["logs-*"],"template":{"mappings":{"properties":{"n":{"type":"long"}}}}}`)
	ts.must(t, 200, "PUT", "/_security/role/r", `{"indices":[{"names":["a"],"privileges":["read"]}]}`)
	ts.bulk(t, `{"create":{"_index":"logs-a","_id":"1"}}`, `{"n":1,"s":"one"}`, `{"create":{"_index":"logs-a","_id":"2"}}`, `{"n":2}`)
	ts.bulk(t, `{"index":{"_index":"logs-a","_id":"2"}}`, `{"n":22}`, `{"create":{"_index":"logs-b","_id":"3"}}`, `{"n":3}`)
	ts.must(t, 200, "DELETE", "/logs-b", "")
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("a second Open: %v", err)
	}
	closeStore()

	// A crash while a write was logged, before it was acknowledged; and
	// one while an index was created.
	f, err := os.OpenFile(filepath.Join(dir, indicesDir, "logs-a", opsFile), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	entry := appendEntry(nil, "torn", []byte(`{"n":4}`))
	f.Write(entry[:len(entry)-3])
	f.Close()
	os.Mkdir(filepath.Join(dir, indicesDir, newPrefix+"x"), 0o755)

	st, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ts, _ = serve(t, st)
	if got := strings.Join(ts.Indices(), ","); got != "logs-a" {
		t.Errorf("indices %s", got)
	}
	docs := ts.Docs("logs-a")
	if len(docs) != 2 || string(docs["2"]) != `{"n":22}` {
		t.Errorf("documents %v", docs)
	}
	if _, ok := ts.Role("r"); !ok {
		t.Error("role lost")
	}
	if ts.Mapping("logs-a")["s"] != "keyword" {
		t.Errorf("mapping %v", ts.Mapping("logs-a"))
	}
	it := ts.bulk(t, `{"create":{"_index":"logs-a","_id":"1"}}`, `{"n":1}`, `{"create":{"_index":"logs-a","_id":"5"}}`, `{"n":"five"}`,
		`{"create":{"_index":"logs-a","_id":"6"}}`, `{"n":6}`)
	if it[0]["status"].(float64) != 409 || it[1]["status"].(float64) != 400 || it[2]["_version"].(float64) != 1 || it[2]["_seq_no"].(float64) != 3 {
		t.Errorf("after the restart: %v", it)
	}
	if n := ts.count(t, "logs-*", `{"range":{"n":{"gte":2}}}`); n != 2 {
		t.Errorf("%d documents with n >= 2, want 2", n)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, indicesDir)); len(entries) != 1 {
		t.Errorf("index directories: %v", entries)
	}
}

// FuzzBulk: a bulk body never panics the store; a document it accepts is
// JSON, and its values are found again.
func FuzzBulk(f *testing.F) {
	f.Add([]byte("{\"create\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"n\":1,\"s\":\"x\",\"o\":{\"p\":[1,2]},\"a.b\":true}\n"))
	f.Add([]byte("{\"index\":{\"_index\":\"a\"}}\n{\"n\":\"1\",\"d\":\"2026-11-21T10:00:00Z\",\"e\":\"\\u00e9\\n\"}\n"))
	f.Add(append([]byte("{\"create\":{\"_index\":\"a\"}}\n"), logDocument(7)...))
	st := New()
	f.Fuzz(func(t *testing.T, body []byte) {
		items, e := parseBulk(body, "x")
		if e != nil {
			return
		}
		for i := range items {
			if items[i].action != "create" && items[i].action != "index" {
				continue
			}
			if items[i].id == "" {
				items[i].id = "generated"
			}
			if idx := st.write(&items[i]); idx != nil && items[i].err == nil && !json.Valid(items[i].src) {
				t.Fatalf("accepted a document that is not JSON: %q", items[i].src)
			}
		}
	})
}

// TestConfig: SLUICE_DEV_ES_* load, validate and become faults.
func TestConfig(t *testing.T) {
	var c Config
	err := config.LoadFrom(context.Background(), &c, envconfig.MapLookuper(map[string]string{
		"SLUICE_DEV_ES_FAULT_STATUS": "429", "SLUICE_DEV_ES_FAULT_REQUESTS": "1", "SLUICE_DEV_ES_LATENCY": "5ms",
	}))
	if err == nil {
		err = c.Validate()
	}
	if f := c.Faults(); err != nil || f != (Faults{RequestStatus: 429, RequestFraction: 1, Latency: 5 * time.Millisecond}) {
		t.Fatalf("%v %+v", err, f)
	}
	ts := memStore(t, WithFaults(c.Faults()))
	if status, _ := ts.call(t, "GET", "/_cat/indices", ""); status != 429 {
		t.Errorf("status %d", status)
	}
	bad := Config{FaultStatus: 500, FaultRequests: 2, FaultItems: -1, Latency: -time.Second}
	err = bad.Validate()
	for _, name := range []string{"SLUICE_DEV_ES_FAULT_STATUS", "SLUICE_DEV_ES_FAULT_REQUESTS", "SLUICE_DEV_ES_FAULT_ITEMS", "SLUICE_DEV_ES_LATENCY"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("problem with %s not reported: %v", name, err)
		}
	}
}

// TestLogWriteFails: a write the disk refuses is not acknowledged, and
// neither is any later write to the index, a create included.
func TestLogWriteFails(t *testing.T) {
	st, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ts, _ := serve(t, st)
	ts.bulk(t, `{"create":{"_index":"a","_id":"1"}}`, `{}`)
	idx := st.lookup("a")
	if idx.log, err = os.Open(filepath.Join(idx.dir, opsFile)); err != nil { // read-only: as a disk that fails
		t.Fatal(err)
	}
	if status, _ := ts.call(t, "POST", "/_bulk", "{\"create\":{\"_index\":\"a\",\"_id\":\"2\"}}\n{}\n"); status != 500 {
		t.Errorf("status %d, want 500", status)
	}
	it := ts.bulk(t, `{"create":{"_index":"a","_id":"2"}}`, `{}`)
	if it[0]["status"].(float64) != 500 || !strings.Contains(jsonNum(it[0]["error"]), "index [a] cannot be written") {
		t.Errorf("retried: %v", it[0])
	}
}
