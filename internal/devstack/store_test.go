package devstack_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/elastic/go-elasticsearch/v8/esutil"

	"github.com/sluicelogs/sluice/internal/devstack"
	"github.com/sluicelogs/sluice/internal/escompat"
	"github.com/sluicelogs/sluice/internal/escompat/estest"
)

const sluiceIndex = "sluice-shop-2026.11.21"

// TestClientAPIs drives every endpoint through go-elasticsearch's typed
// esapi requests, as the indexer and the search command do.
func TestClientAPIs(t *testing.T) {
	ts := openStore(t, "")
	c := ts.c

	r := estest.Do(t, c, esapi.InfoRequest{})
	estest.WantStatus(t, r, http.StatusOK)
	if v, _ := estest.At(r.Body, "version.number").(string); !strings.HasPrefix(v, "8.") {
		t.Errorf("version.number = %q, want 8.x", v)
	}
	if r.Header.Get("X-Elastic-Product") != "Elasticsearch" {
		t.Errorf("X-Elastic-Product = %q", r.Header.Get("X-Elastic-Product"))
	}

	putTemplate(t, c, "sluice", readFile(t, "../../indexer/testdata/template.json"))
	r = estest.Do(t, c, esapi.IndicesExistsIndexTemplateRequest{Name: "sluice"})
	estest.WantStatus(t, r, http.StatusOK)
	r = estest.Do(t, c, esapi.IndicesGetIndexTemplateRequest{Name: "sluice"})
	estest.WantValue(t, r, "index_templates.0.index_template.priority", float64(500))

	// The indexer's document: created, with the template's mapping and the
	// dynamic templates for what it does not name.
	doc := readFile(t, "../../indexer/testdata/documents/kubernetes.json")
	r = bulk(t, c, sluiceIndex, "", `{"create":{"_id":"k1"}}`, string(bytes.TrimSpace(doc)))
	estest.WantValue(t, r, "errors", false)
	estest.WantValue(t, r, "items.0.create.status", float64(201))

	r = estest.Do(t, c, esapi.IndicesGetMappingRequest{Index: []string{sluiceIndex}})
	props := estest.AtKeys(r.Body, sluiceIndex, "mappings", "properties")
	for _, tc := range []struct {
		path []string
		typ  string
	}{
		{[]string{"@timestamp"}, "date"},
		{[]string{"log"}, "text"},
		{[]string{"kubernetes", "properties", "pod_name"}, "keyword"},
		{[]string{"kubernetes", "properties", "labels", "properties", "app_kubernetes_io/name"}, "keyword"},
		{[]string{"duration"}, "double"},
		{[]string{"http", "properties", "method"}, "keyword"}, // a dotted key is an object path
		{[]string{"sluice", "properties", "source", "properties", "offset"}, "long"},
	} {
		if got := estest.AtKeys(props, append(tc.path, "type")...); got != tc.typ {
			t.Errorf("type of %v = %v, want %s", tc.path, got, tc.typ)
		}
	}
	if got := estest.AtKeys(props, "kubernetes", "properties", "labels", "properties", "app", "ignore_above"); got != float64(1024) {
		t.Errorf("ignore_above of kubernetes.labels.app = %v", got)
	}

	r = estest.Do(t, c, esapi.GetRequest{Index: sluiceIndex, DocumentID: "k1"})
	estest.WantValue(t, r, "found", true)
	estest.WantValue(t, r, "_source.kubernetes.pod_name", "cart-7d9f8b-x2x9z")

	// Searches see the document at once; keyword fields match exactly,
	// text fields are analysed.
	for _, q := range []string{
		`{"query":{"term":{"kubernetes.pod_name":"cart-7d9f8b-x2x9z"}}}`,
		`{"query":{"match":{"log":"cart"}}}`,
		`{"query":{"query_string":{"query":"tenant:shop AND kubernetes.labels.app:cart"}}}`,
		`{"query":{"range":{"@timestamp":{"gte":"2026-11-21T10:00:00Z","lt":"2026-11-21T11:00:00Z"}}}}`,
	} {
		r = estest.Do(t, c, esapi.SearchRequest{Index: []string{"sluice-shop-*"}, Body: strings.NewReader(q)})
		estest.WantStatus(t, r, http.StatusOK)
		estest.WantValue(t, r, "hits.total.value", float64(1))
		estest.WantValue(t, r, "hits.hits.0._id", "k1")
	}
	r = estest.Do(t, c, esapi.SearchRequest{Index: []string{"sluice-shop-*"}, Body: strings.NewReader(`{"query":{"term":{"kubernetes.pod_name":"cart"}}}`)})
	estest.WantValue(t, r, "hits.total.value", float64(0))
	r = estest.Do(t, c, esapi.CountRequest{Index: []string{sluiceIndex}, Query: "stream:stdout"})
	estest.WantValue(t, r, "count", float64(1))
	r = estest.Do(t, c, esapi.SearchRequest{Index: []string{"sluice-other"}})
	estest.WantError(t, r, http.StatusNotFound, "index_not_found_exception", "no such index [sluice-other]")
	r = estest.Do(t, c, esapi.SearchRequest{Index: []string{"sluice-other"}, IgnoreUnavailable: esapi.BoolPtr(true)})
	estest.WantValue(t, r, "hits.total.value", float64(0))

	// A type conflict is a per-item error; the rest of the bulk is indexed.
	r = bulk(t, c, sluiceIndex, "wait_for",
		`{"create":{"_id":"bad"}}`, `{"@timestamp":"not a date","tenant":"shop"}`,
		`{"create":{"_id":"k2"}}`, `{"@timestamp":"2026-11-21T10:31:00Z","tenant":"shop"}`,
		`{"create":{"_id":"k1"}}`, `{"tenant":"shop"}`)
	estest.WantValue(t, r, "errors", true)
	estest.WantValue(t, r, "items.0.create.status", float64(400))
	estest.WantValue(t, r, "items.0.create.error.type", "document_parsing_exception")
	estest.WantValue(t, r, "items.1.create.status", float64(201))
	estest.WantValue(t, r, "items.2.create.status", float64(409))
	estest.WantValue(t, r, "items.2.create.error.type", "version_conflict_engine_exception")

	r = estest.Do(t, c, esapi.IndicesRefreshRequest{Index: []string{"sluice-*"}})
	estest.WantValue(t, r, "_shards.successful", float64(1))
	r = estest.Do(t, c, esapi.CatIndicesRequest{Format: "json", H: []string{"index", "docs.count", "health"}})
	estest.WantValue(t, r, "0.index", sluiceIndex)
	if got := estest.AtKeys(r.Body, "0", "docs.count"); got != "2" {
		t.Errorf("docs.count = %v (%s)", got, r.Raw)
	}
	r = estest.Do(t, c, esapi.CatIndicesRequest{V: esapi.BoolPtr(true), H: []string{"index", "docs.count"}})
	if want := "index                  docs.count\n" + sluiceIndex + "          2\n"; r.Raw != want {
		t.Errorf("cat indices:\n%s\nwant\n%s", r.Raw, want)
	}
	r = estest.Do(t, c, esapi.ClusterHealthRequest{})
	estest.WantValue(t, r, "status", "green")

	r = estest.Do(t, c, esapi.IndicesCreateRequest{Index: "manual", Body: strings.NewReader(`{"mappings":{"properties":{"n":{"type":"long"}}}}`)})
	estest.WantValue(t, r, "acknowledged", true)
	r = estest.Do(t, c, esapi.IndicesExistsRequest{Index: []string{"manual"}})
	estest.WantStatus(t, r, http.StatusOK)
	r = estest.Do(t, c, esapi.IndicesGetRequest{Index: []string{"manual"}})
	estest.WantValue(t, r, "manual.mappings.properties.n.type", "long")
	r = estest.Do(t, c, esapi.IndicesDeleteRequest{Index: []string{"manual", "sluice-*"}})
	estest.WantValue(t, r, "acknowledged", true)
	r = estest.Do(t, c, esapi.IndicesExistsRequest{Index: []string{sluiceIndex}})
	estest.WantStatus(t, r, http.StatusNotFound)
	if entries, err := os.ReadDir(filepath.Join(ts.dir, "indices")); err != nil || len(entries) != 0 {
		t.Errorf("indices left on disk after delete: %v %v", entries, err)
	}

	r = estest.Do(t, c, esapi.IndicesDeleteIndexTemplateRequest{Name: "sluice"})
	estest.WantValue(t, r, "acknowledged", true)
}

// TestCompatibilityMode checks go-elasticsearch's compatibility mode, which
// sends the vendor media type, is answered in kind.
func TestCompatibilityMode(t *testing.T) {
	ts := openStore(t, "")
	c, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{ts.srv.URL}, EnableCompatibilityMode: true})
	if err != nil {
		t.Fatal(err)
	}
	r := estest.Do(t, c, esapi.BulkRequest{Index: "compat", Body: estest.NDJSON(`{"index":{"_id":"1"}}`, `{"a":"b"}`)})
	estest.WantStatus(t, r, http.StatusOK)
	if ct := r.Header.Get("Content-Type"); ct != escompat.CompatMediaType {
		t.Errorf("Content-Type = %q, want %q", ct, escompat.CompatMediaType)
	}
	r = estest.Do(t, c, esapi.SearchRequest{Index: []string{"compat"}})
	estest.WantValue(t, r, "hits.total.value", float64(1))
	r = ts.raw(t, http.MethodPost, "/compat/_bulk?pretty", "application/x-ndjson", `{"index":{"_id":"2"}}`+"\n"+`{"a":"c"}`+"\n")
	estest.WantStatus(t, r, http.StatusOK)
	if !strings.Contains(r.Raw, "\n  \"errors\" : false") && !strings.Contains(r.Raw, "\n  \"errors\": false") {
		t.Errorf("pretty output not indented: %s", r.Raw)
	}
}

// TestBulkIndexer indexes concurrently through esutil.BulkIndexer, with
// small requests so that the batches of several requests are in flight at
// once, and checks that every document is stored exactly once.
func TestBulkIndexer(t *testing.T) {
	ts := openStore(t, "")
	putTemplate(t, ts.c, "sluice", readFile(t, "../../indexer/testdata/template.json"))
	const n = 600
	bi, err := esutil.NewBulkIndexer(esutil.BulkIndexerConfig{Client: ts.c, NumWorkers: 4, FlushBytes: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	var created, failed atomic.Int64
	for i := range n {
		index := fmt.Sprintf("sluice-shop-2026.11.%02d", 20+i%3)
		err := bi.Add(context.Background(), esutil.BulkIndexerItem{
			Action: "create", Index: index, DocumentID: fmt.Sprintf("d%d", i%(n-60)), // 60 re-sent ids
			Body: bytes.NewReader(logDocument(i)),
			OnSuccess: func(context.Context, esutil.BulkIndexerItem, esutil.BulkIndexerResponseItem) {
				created.Add(1)
			},
			OnFailure: func(_ context.Context, _ esutil.BulkIndexerItem, res esutil.BulkIndexerResponseItem, err error) {
				if res.Status != http.StatusConflict {
					t.Errorf("item failed: %d %v %v", res.Status, res.Error, err)
				}
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
	if st := bi.Stats(); st.NumFlushed+st.NumFailed != n || st.NumRequests < 4 {
		t.Errorf("stats %+v", st)
	}
	// Document i and i-540 go to the same index with the same id: the
	// later one is a conflict.
	r := estest.Do(t, ts.c, esapi.CountRequest{Index: []string{"sluice-shop-*"}})
	estest.WantValue(t, r, "count", float64(n-60))
	if created.Load() != n-60 || failed.Load() != 60 {
		t.Errorf("created %d, failed %d", created.Load(), failed.Load())
	}
	seen := 0
	for _, day := range []string{"20", "21", "22"} {
		r := estest.Do(t, ts.c, esapi.CountRequest{Index: []string{"sluice-shop-2026.11." + day}})
		seen += int(estest.At(r.Body, "count").(float64))
	}
	if seen != int(created.Load()) {
		t.Errorf("per-index counts add to %d, want %d", seen, created.Load())
	}
}

// TestRestart checks that templates, mappings, documents and the ids
// survive closing and opening the directory again.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	ts := openStore(t, dir)
	putTemplate(t, ts.c, "sluice", readFile(t, "../../indexer/testdata/template.json"))
	lines := []string{}
	for i := range 50 {
		lines = append(lines, fmt.Sprintf(`{"create":{"_id":"d%d"}}`, i), string(logDocument(i)))
	}
	r := bulk(t, ts.c, sluiceIndex, "", lines...)
	estest.WantValue(t, r, "errors", false)
	r = bulk(t, ts.c, sluiceIndex, "", `{"index":{"_id":"d0"}}`, string(logDocument(1000)))
	estest.WantValue(t, r, "items.0.index._version", float64(2))
	r = bulk(t, ts.c, "", "", `{"index":{"_index":"other","_id":"x"}}`, `{"n":1}`, `{"delete":{"_index":"other","_id":"x"}}`)
	estest.WantValue(t, r, "items.1.delete.result", "deleted")
	r = estest.Do(t, ts.c, esapi.IndicesGetMappingRequest{Index: []string{sluiceIndex}})
	mappingBefore := r.Raw
	info := estest.Do(t, ts.c, esapi.InfoRequest{})
	catBefore := estest.Do(t, ts.c, esapi.CatIndicesRequest{H: []string{"index", "uuid", "docs.count", "creation.date"}, S: []string{"index"}})
	ts.close()

	// A second store may not share the directory while one has it open.
	ts2 := openStore(t, dir)
	if _, err := devstack.Open(dir); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second Open of a directory in use: %v", err)
	}
	r = estest.Do(t, ts2.c, esapi.IndicesGetIndexTemplateRequest{Name: "sluice"})
	estest.WantValue(t, r, "index_templates.0.name", "sluice")
	r = estest.Do(t, ts2.c, esapi.IndicesGetMappingRequest{Index: []string{sluiceIndex}})
	if r.Raw != mappingBefore {
		t.Errorf("mapping after restart:\n%s\nbefore:\n%s", r.Raw, mappingBefore)
	}
	if got := estest.Do(t, ts2.c, esapi.InfoRequest{}); estest.At(got.Body, "cluster_uuid") != estest.At(info.Body, "cluster_uuid") {
		t.Errorf("cluster_uuid changed across restarts")
	}
	if got := estest.Do(t, ts2.c, esapi.CatIndicesRequest{H: []string{"index", "uuid", "docs.count", "creation.date"}, S: []string{"index"}}); got.Raw != catBefore.Raw {
		t.Errorf("cat indices after restart:\n%s\nbefore:\n%s", got.Raw, catBefore.Raw)
	}
	r = estest.Do(t, ts2.c, esapi.CountRequest{Index: []string{sluiceIndex}, Query: "tenant:shop"})
	estest.WantValue(t, r, "count", float64(50))
	r = estest.Do(t, ts2.c, esapi.GetRequest{Index: sluiceIndex, DocumentID: "d0"})
	estest.WantValue(t, r, "_version", float64(2))
	estest.WantValue(t, r, "_source.sluice.source.offset", float64(4096+1000*512))

	// A re-sent id is still a conflict; an overwrite continues the versions
	// and the sequence numbers.
	r = bulk(t, ts2.c, sluiceIndex, "",
		`{"create":{"_id":"d7"}}`, string(logDocument(7)),
		`{"index":{"_id":"d0"}}`, string(logDocument(0)),
		`{"create":{"_id":"new"}}`, string(logDocument(51)))
	estest.WantValue(t, r, "items.0.create.status", float64(409))
	estest.WantValue(t, r, "items.0.create.error.type", "version_conflict_engine_exception")
	estest.WantValue(t, r, "items.0.create.error.reason", "[d7]: version conflict, document already exists (current version [1])")
	estest.WantValue(t, r, "items.1.index._version", float64(3))
	estest.WantValue(t, r, "items.1.index._seq_no", float64(51))
	estest.WantValue(t, r, "items.2.create.status", float64(201))
	r = estest.Do(t, ts2.c, esapi.GetRequest{Index: "other", DocumentID: "x"})
	estest.WantValue(t, r, "found", false)

	// Deleting is kept too; so is a template deletion.
	estest.WantStatus(t, estest.Do(t, ts2.c, esapi.IndicesDeleteRequest{Index: []string{"other"}}), http.StatusOK)
	estest.WantStatus(t, estest.Do(t, ts2.c, esapi.IndicesDeleteIndexTemplateRequest{Name: "sluice"}), http.StatusOK)
	ts2.close()

	// What an interrupted creation or deletion left is discarded.
	if err := os.MkdirAll(filepath.Join(dir, "indices", "half-created", "bleve"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "indices", ".deleted-gone-abc"), 0o755); err != nil {
		t.Fatal(err)
	}
	ts3 := openStore(t, dir)
	r = estest.Do(t, ts3.c, esapi.CatIndicesRequest{H: []string{"index"}})
	if r.Raw != sluiceIndex+"\n" {
		t.Errorf("indices after restart: %q", r.Raw)
	}
	estest.WantStatus(t, estest.Do(t, ts3.c, esapi.IndicesGetIndexTemplateRequest{Name: "sluice"}), http.StatusNotFound)
	entries, _ := os.ReadDir(filepath.Join(dir, "indices"))
	if len(entries) != 1 {
		t.Errorf("leftovers not removed: %v", entries)
	}
}

// TestFaults injects whole-request and per-item failures and latency.
func TestFaults(t *testing.T) {
	ts := openStore(t, "", devstack.Seed(7), devstack.WithFaults(escompat.Faults{RequestFraction: 1, RequestStatus: http.StatusTooManyRequests}))
	r := estest.Do(t, ts.c, esapi.BulkRequest{Index: "f", Body: estest.NDJSON(`{"index":{}}`, `{}`)})
	estest.WantError(t, r, http.StatusTooManyRequests, "es_rejected_execution_exception", "")
	estest.WantStatus(t, estest.Do(t, ts.c, esapi.InfoRequest{}), http.StatusOK) // GET / is never faulted

	ts.SetFaults(escompat.Faults{RequestFraction: 1})
	r = estest.Do(t, ts.c, esapi.SearchRequest{})
	estest.WantError(t, r, http.StatusServiceUnavailable, "unavailable_shards_exception", "")

	ts.SetFaults(escompat.Faults{Down: true})
	r = estest.Do(t, ts.c, esapi.InfoRequest{})
	estest.WantError(t, r, http.StatusServiceUnavailable, "cluster_block_exception", "blocked by: [SERVICE_UNAVAILABLE/2/no master];")

	ts.SetFaults(escompat.Faults{ItemFraction: 1})
	r = bulk(t, ts.c, "f", "", `{"create":{"_id":"1"}}`, `{"a":1}`)
	estest.WantValue(t, r, "errors", true)
	estest.WantValue(t, r, "items.0.create.status", float64(429))
	estest.WantValue(t, r, "items.0.create.error.type", "es_rejected_execution_exception")
	estest.WantStatus(t, estest.Do(t, ts.c, esapi.IndicesExistsRequest{Index: []string{"f"}}), http.StatusNotFound) // nothing written

	// Half the items, reproducibly for a seed: the rejected ones are not
	// stored and succeed when sent again.
	ts.SetFaults(escompat.Faults{ItemFraction: 0.5})
	var lines []string
	for i := range 40 {
		lines = append(lines, fmt.Sprintf(`{"create":{"_id":"%d"}}`, i), `{"a":1}`)
	}
	r = bulk(t, ts.c, "f", "", lines...)
	rejected := 0
	for i := range 40 {
		if estest.At(r.Body, fmt.Sprintf("items.%d.create.status", i)) == float64(429) {
			rejected++
		}
	}
	if rejected < 8 || rejected > 32 {
		t.Errorf("%d of 40 items rejected at fraction 0.5", rejected)
	}
	ts.SetFaults(escompat.Faults{})
	r = bulk(t, ts.c, "f", "", lines...)
	estest.WantValue(t, r, "errors", true)
	created := 0
	for i := range 40 {
		if estest.At(r.Body, fmt.Sprintf("items.%d.create.status", i)) == float64(201) {
			created++
		}
	}
	if created != rejected {
		t.Errorf("re-sent: %d created, want the %d rejected", created, rejected)
	}

	ts.SetFaults(escompat.Faults{Latency: 50 * time.Millisecond})
	start := time.Now()
	estest.WantStatus(t, estest.Do(t, ts.c, esapi.InfoRequest{}), http.StatusOK)
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("answered in %v despite 50ms latency", d)
	}
}

// TestConcurrentWritesAndDeletes races writers, searches and index
// deletions; run with -race.
func TestConcurrentWritesAndDeletes(t *testing.T) {
	ts := openStore(t, "")
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for i := range 10 {
				r := estest.Do(t, ts.c, esapi.BulkRequest{Index: "race", Body: estest.NDJSON(
					fmt.Sprintf(`{"index":{"_id":"%d"}}`, i), fmt.Sprintf(`{"w":%d,"msg":"m%d"}`, w, i),
					fmt.Sprintf(`{"create":{"_id":"w%d-%d"}}`, w, i), `{"msg":"x"}`)})
				if r.Status != http.StatusOK {
					t.Errorf("bulk: %d %s", r.Status, r.Raw)
				}
			}
		})
	}
	wg.Go(func() {
		for range 10 {
			r := estest.Do(t, ts.c, esapi.SearchRequest{Index: []string{"race*"}, Body: strings.NewReader(`{"query":{"match_all":{}}}`)})
			if r.Status != http.StatusOK {
				t.Errorf("search: %d %s", r.Status, r.Raw)
			}
		}
	})
	wg.Go(func() {
		for range 3 {
			time.Sleep(5 * time.Millisecond)
			r := estest.Do(t, ts.c, esapi.IndicesDeleteRequest{Index: []string{"race"}, IgnoreUnavailable: esapi.BoolPtr(true)})
			if r.Status != http.StatusOK {
				t.Errorf("delete: %d %s", r.Status, r.Raw)
			}
		}
	})
	wg.Wait()
	// Whatever survived the deletions is consistent: each id once, and the
	// last index of each overwritten id is the stored one.
	r := estest.Do(t, ts.c, esapi.SearchRequest{Index: []string{"race"}, Size: esapi.IntPtr(100), IgnoreUnavailable: esapi.BoolPtr(true)})
	estest.WantStatus(t, r, http.StatusOK)
	var ids []string
	hits, _ := estest.At(r.Body, "hits.hits").([]any)
	for _, h := range hits {
		ids = append(ids, estest.At(h, "_id").(string))
	}
	slices.Sort(ids)
	if len(slices.Compact(slices.Clone(ids))) != len(ids) {
		t.Errorf("duplicate ids: %v", ids)
	}
}

// TestSingleDocumentAPIs covers index, create and delete of one document
// and their errors.
func TestSingleDocumentAPIs(t *testing.T) {
	ts := openStore(t, "")
	r := estest.Do(t, ts.c, esapi.IndexRequest{Index: "one", DocumentID: "1", Body: strings.NewReader(`{"a":"x"}`), Refresh: "true"})
	estest.WantStatus(t, r, http.StatusCreated)
	estest.WantValue(t, r, "result", "created")
	r = estest.Do(t, ts.c, esapi.IndexRequest{Index: "one", DocumentID: "1", Body: strings.NewReader(`{"a":"y"}`)})
	estest.WantStatus(t, r, http.StatusOK)
	estest.WantValue(t, r, "result", "updated")
	estest.WantValue(t, r, "_version", float64(2))
	r = estest.Do(t, ts.c, esapi.IndexRequest{Index: "one", DocumentID: "1", OpType: "create", Body: strings.NewReader(`{"a":"z"}`)})
	estest.WantError(t, r, http.StatusConflict, "version_conflict_engine_exception", "[1]: version conflict, document already exists (current version [2])")
	r = estest.Do(t, ts.c, esapi.CreateRequest{Index: "one", DocumentID: "2", Body: strings.NewReader(`{"a":1}`)})
	estest.WantStatus(t, r, http.StatusCreated)
	r = estest.Do(t, ts.c, esapi.IndexRequest{Index: "one", Body: strings.NewReader(`{"a":{"b":1}}`)})
	estest.WantError(t, r, http.StatusBadRequest, "document_parsing_exception", "")
	r = estest.Do(t, ts.c, esapi.IndexRequest{Index: "one", Body: strings.NewReader(`not json`)})
	estest.WantError(t, r, http.StatusBadRequest, "document_parsing_exception", "")
	r = estest.Do(t, ts.c, esapi.DeleteRequest{Index: "one", DocumentID: "1"})
	estest.WantStatus(t, r, http.StatusOK)
	estest.WantValue(t, r, "result", "deleted")
	r = estest.Do(t, ts.c, esapi.DeleteRequest{Index: "one", DocumentID: "1"})
	estest.WantStatus(t, r, http.StatusNotFound)
	estest.WantValue(t, r, "result", "not_found")
	r = estest.Do(t, ts.c, esapi.DeleteRequest{Index: "none", DocumentID: "1"})
	estest.WantError(t, r, http.StatusNotFound, "index_not_found_exception", "no such index [none]")
	r = estest.Do(t, ts.c, esapi.CountRequest{Index: []string{"one"}})
	estest.WantValue(t, r, "count", float64(1))
}

// TestClosedStore checks that requests after Close are refused, not
// crashed on.
func TestClosedStore(t *testing.T) {
	ts := openStore(t, "")
	bulk(t, ts.c, "x", "", `{"index":{}}`, `{}`)
	if err := ts.Store.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ts.Store.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	r := estest.Do(t, ts.c, esapi.SearchRequest{Index: []string{"x"}})
	estest.WantError(t, r, http.StatusServiceUnavailable, "node_closed_exception", "")
	st, err := devstack.Open(ts.dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestLargeBulk sends bulk requests large enough to be applied as several batches at once (one
// per core): the operations on one _id keep their order (the last write wins, a delete after an
// index removes), versions count every write, and all of it survives a restart.
func TestLargeBulk(t *testing.T) {
	dir := t.TempDir()
	ts := openStore(t, dir)
	const n = 5000
	var lines []string
	for i := range n {
		lines = append(lines, fmt.Sprintf(`{"index":{"_id":"d%d"}}`, i), fmt.Sprintf(`{"n":%d,"v":"first"}`, i))
	}
	for i := 0; i < n; i += 10 {
		lines = append(lines, fmt.Sprintf(`{"index":{"_id":"d%d"}}`, i), fmt.Sprintf(`{"n":%d,"v":"second"}`, i))
	}
	for i := 5; i < n; i += 10 {
		lines = append(lines, fmt.Sprintf(`{"delete":{"_id":"d%d"}}`, i))
	}
	r := estest.Do(t, ts.c, esapi.BulkRequest{Index: "large", Body: estest.NDJSON(lines...)})
	estest.WantStatus(t, r, http.StatusOK)
	estest.WantValue(t, r, "errors", false)
	items := estest.At(r.Body, "items").([]any)
	if len(items) != n+n/10+n/10 {
		t.Fatalf("%d items", len(items))
	}
	estest.WantValue(t, r, fmt.Sprintf("items.%d.index._version", n), 2.0)
	estest.WantValue(t, r, fmt.Sprintf("items.%d.index.result", n), "updated")
	estest.WantValue(t, r, fmt.Sprintf("items.%d.delete.result", n+n/10), "deleted")
	check := func(ts *testStore) {
		t.Helper()
		for q, want := range map[string]float64{
			`{"query":{"match_all":{}}}`:                       n - n/10,
			`{"query":{"term":{"v":"second"}}}`:                n / 10,
			`{"query":{"range":{"n":{"gte":1000,"lt":2000}}}}`: 900,
		} {
			r := estest.Do(t, ts.c, esapi.CountRequest{Index: []string{"large"}, Body: strings.NewReader(q)})
			estest.WantValue(t, r, "count", want)
		}
		r := estest.Do(t, ts.c, esapi.GetRequest{Index: "large", DocumentID: "d20"})
		estest.WantValue(t, r, "_version", 2.0)
		estest.WantValue(t, r, "_source.v", "second")
		r = estest.Do(t, ts.c, esapi.GetRequest{Index: "large", DocumentID: "d25"})
		estest.WantStatus(t, r, http.StatusNotFound)
	}
	check(ts)
	ts.close()
	check(openStore(t, dir))
}

// TestMappingGrowsWithinRequest: documents are built before the index is locked, with the
// mapping of then; those with values at paths a document before them in the request added to
// the mapping are built again, the others kept.
func TestMappingGrowsWithinRequest(t *testing.T) {
	ts := openStore(t, "")
	for _, lines := range [][]string{
		{`{"index":{"_id":"1"}}`, `{"a":"x"}`, `{"index":{"_id":"2"}}`, `{"b":"y","a":"z"}`, `{"index":{"_id":"3"}}`, `{"a":"w"}`},
		{`{"index":{"_id":"4"}}`, `{"a":"q"}`, `{"index":{"_id":"5"}}`, `{"c":7}`, `{"index":{"_id":"6"}}`, `{"a":"r","c":8,"b":"y"}`, `{"index":{"_id":"7"}}`, `{"a":"s"}`},
	} {
		r := estest.Do(t, ts.c, esapi.BulkRequest{Index: "grow", Body: estest.NDJSON(lines...)})
		estest.WantValue(t, r, "errors", false)
	}
	for q, want := range map[string]float64{
		`{"query":{"term":{"b":"y"}}}`:                                        2,
		`{"query":{"term":{"a":"w"}}}`:                                        1,
		`{"query":{"term":{"a":"s"}}}`:                                        1,
		`{"query":{"range":{"c":{"gte":8}}}}`:                                 1,
		`{"query":{"exists":{"field":"c"}}}`:                                  2,
		`{"query":{"exists":{"field":"a"}}}`:                                  6,
		`{"query":{"bool":{"filter":[{"term":{"a":"r"}},{"term":{"c":8}}]}}}`: 1,
	} {
		r := estest.Do(t, ts.c, esapi.CountRequest{Index: []string{"grow"}, Body: strings.NewReader(q)})
		estest.WantValue(t, r, "count", want)
	}
}
