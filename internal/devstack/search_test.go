package devstack

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/document"
)

var updateGolden = flag.Bool("update", false, "rewrite golden files under testdata/search")

// testNow is "now" for date math in the search tests.
var testNow = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// testCorpus is the documents of testdata/search indexed into in-memory bleve indexes, one per
// Elasticsearch index named in documents.ndjson.
type testCorpus struct {
	indexes map[string]bleve.Index
	fields  map[string]fieldInfo
}

var (
	corpusOnce sync.Once
	corpus     *testCorpus
	corpusErr  error
)

func loadTestFields(path string) (map[string]fieldInfo, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var raw map[string]struct {
		Type        string `json:"type"`
		IgnoreAbove int    `json:"ignore_above"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	out := make(map[string]fieldInfo, len(raw))
	for k, v := range raw {
		out[k] = fieldInfo{Type: v.Type, IgnoreAbove: v.IgnoreAbove}
	}
	return out, nil
}

func getCorpus(t testing.TB) *testCorpus {
	t.Helper()
	corpusOnce.Do(func() {
		fields, err := loadTestFields("testdata/search/mapping.json")
		if err != nil {
			corpusErr = err
			return
		}
		c := &testCorpus{indexes: map[string]bleve.Index{}, fields: fields}
		// One field set for every document, as an index has: documents share token maps.
		set := fieldSetOf(fields)
		f, err := os.Open("testdata/search/documents.ndjson")
		if err != nil {
			corpusErr = err
			return
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var line struct {
				ID     string          `json:"_id"`
				Index  string          `json:"_index"`
				Source json.RawMessage `json:"_source"`
			}
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				corpusErr = err
				return
			}
			idx := c.indexes[line.Index]
			if idx == nil {
				if idx, err = bleve.NewMemOnly(newIndexMapping()); err != nil {
					corpusErr = err
					return
				}
				idx.SetName(line.Index)
				c.indexes[line.Index] = idx
			}
			doc, err := buildDocumentWith(line.ID, line.Source, set, nil)
			if err != nil {
				corpusErr = err
				return
			}
			batch := idx.NewBatch()
			if err := batch.IndexAdvanced(doc); err != nil {
				corpusErr = err
				return
			}
			if err := idx.Batch(batch); err != nil {
				corpusErr = err
				return
			}
		}
		corpusErr = sc.Err()
		corpus = c
	})
	if corpusErr != nil {
		t.Fatalf("load test corpus: %v", corpusErr)
	}
	return corpus
}

func (c *testCorpus) field(path string) (fieldInfo, bool) {
	fi, ok := c.fields[path]
	return fi, ok
}

func (c *testCorpus) leaves() []string {
	var out []string
	for p, fi := range c.fields {
		if kindOf(fi.Type) != kindObject {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// target searches the named indices, or every index when none is named.
func (c *testCorpus) target(names ...string) searchTarget {
	if len(names) == 0 {
		for n := range c.indexes {
			names = append(names, n)
		}
		sort.Strings(names)
	}
	t := searchTarget{Names: names, Field: c.field, Fields: c.leaves}
	if len(names) == 1 {
		t.Index = c.indexes[names[0]]
		return t
	}
	var bis []bleve.Index
	for _, n := range names {
		bis = append(bis, c.indexes[n])
	}
	t.Index = bleve.NewIndexAlias(bis...)
	return t
}

// doSearch runs executeSearch and decodes the response.
func doSearch(t *testing.T, tg searchTarget, body, params string) map[string]any {
	t.Helper()
	v, err := url.ParseQuery(params)
	if err != nil {
		t.Fatal(err)
	}
	out, serr := executeSearch(context.Background(), tg, []byte(body), v, testNow)
	if serr != nil {
		t.Fatalf("search %s ?%s: %v", body, params, serr)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("decode response %s: %v", out, err)
	}
	return m
}

func searchErr(t *testing.T, tg searchTarget, body, params string) *searchError {
	t.Helper()
	v, _ := url.ParseQuery(params)
	out, serr := executeSearch(context.Background(), tg, []byte(body), v, testNow)
	if serr == nil {
		t.Fatalf("search %s ?%s: want an error, got %s", body, params, out)
	}
	return serr
}

func hits(m map[string]any) []map[string]any {
	hs := m["hits"].(map[string]any)["hits"].([]any)
	out := make([]map[string]any, len(hs))
	for i, h := range hs {
		out[i] = h.(map[string]any)
	}
	return out
}

func hitIDs(m map[string]any) []string {
	var ids []string
	for _, h := range hits(m) {
		ids = append(ids, h["_id"].(string))
	}
	return ids
}

func sortedIDs(m map[string]any) []string {
	ids := hitIDs(m)
	sort.Strings(ids)
	return ids
}

func totalOf(m map[string]any) map[string]any {
	return m["hits"].(map[string]any)["total"].(map[string]any)
}

func TestSearchSort(t *testing.T) {
	c := getCorpus(t)
	tg := c.target()
	tests := []struct {
		name, body, params string
		want               []string
		wantSort           [][]any
	}{
		{
			name: "timestamp desc object form",
			body: `{"query":{"term":{"tenant":"billing"}},"sort":[{"@timestamp":{"order":"desc"}}]}`,
			want: []string{"d07", "d06", "d08"},
			wantSort: [][]any{
				{float64(time.Date(2026, 11, 21, 11, 50, 0, 0, time.UTC).UnixMilli())},
				{float64(time.Date(2026, 11, 21, 11, 45, 0, 0, time.UTC).UnixMilli())},
				{float64(time.Date(2026, 11, 20, 23, 59, 59, 999e6, time.UTC).UnixMilli())},
			},
		},
		{
			name: "timestamp asc string form, missing last",
			body: `{"query":{"term":{"kubernetes.pod_name":"auth-1"}},"sort":"@timestamp"}`,
			want: []string{"d04", "d11"},
		},
		{
			name: "timestamp desc, missing last",
			body: `{"query":{"term":{"kubernetes.pod_name":"auth-1"}},"sort":{"@timestamp":"desc"}}`,
			want: []string{"d04", "d11"},
		},
		{
			name: "keyword then numeric",
			body: `{"query":{"exists":{"field":"http.status"}},"sort":[{"kubernetes.pod_name":"asc"},{"http.status":"desc"},"_doc"]}`,
			want: []string{"d04", "d07", "d06", "d10", "d02", "d01", "d12", "d03"},
		},
		{
			name:     "double desc",
			body:     `{"query":{"exists":{"field":"duration"}},"sort":[{"duration":"desc"}],"size":3}`,
			want:     []string{"d07", "d02", "d06"},
			wantSort: [][]any{{30.0}, {1.5}, {0.3}},
		},
		{
			name:   "url sort parameter",
			body:   `{"query":{"term":{"tenant":"billing"}}}`,
			params: "sort=@timestamp:asc",
			want:   []string{"d08", "d06", "d07"},
		},
		{
			name: "score desc",
			body: `{"query":{"match":{"log":"cart"}},"sort":["_score"]}`,
			want: []string{"d10", "d12", "d01"},
		},
		{
			name: "unmapped_type",
			body: `{"query":{"term":{"tenant":"billing"}},"sort":[{"nope":{"order":"asc","unmapped_type":"long"}},{"@timestamp":"asc"}]}`,
			want: []string{"d08", "d06", "d07"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := doSearch(t, tg, tt.body, tt.params)
			if got := hitIDs(m); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ids = %v, want %v", got, tt.want)
			}
			if tt.wantSort != nil {
				for i, h := range hits(m) {
					if !reflect.DeepEqual(h["sort"], tt.wantSort[i]) {
						t.Errorf("hit %d sort = %v, want %v", i, h["sort"], tt.wantSort[i])
					}
					if h["_score"] != nil {
						t.Errorf("hit %d _score = %v, want null when sorting by field", i, h["_score"])
					}
				}
			}
		})
	}
}

func TestSearchPaging(t *testing.T) {
	c := getCorpus(t)
	tg := c.target()
	all := hitIDs(doSearch(t, tg, `{"sort":[{"@timestamp":"asc"},{"_id":"asc"}],"size":100}`, ""))
	if len(all) != 12 {
		t.Fatalf("got %d hits, want 12", len(all))
	}
	for _, tc := range []struct{ from, size int }{{0, 5}, {5, 5}, {10, 5}, {12, 5}, {3, 0}} {
		body := `{"sort":[{"@timestamp":"asc"},{"_id":"asc"}],"from":` + itoa(tc.from) + `,"size":` + itoa(tc.size) + `}`
		m := doSearch(t, tg, body, "")
		end := min(tc.from+tc.size, len(all))
		want := all[min(tc.from, len(all)):end]
		if got := hitIDs(m); !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Errorf("from %d size %d: got %v, want %v", tc.from, tc.size, got, want)
		}
		if v := totalOf(m)["value"]; v != 12.0 {
			t.Errorf("total = %v, want 12", v)
		}
	}
	// URL parameters win over the body.
	m := doSearch(t, tg, `{"size":1,"sort":[{"@timestamp":"asc"},{"_id":"asc"}]}`, "size=3&from=1")
	if got := hitIDs(m); !reflect.DeepEqual(got, all[1:4]) {
		t.Errorf("url size/from: got %v, want %v", got, all[1:4])
	}
	// Default size is 10.
	if n := len(hitIDs(doSearch(t, tg, ``, ""))); n != 10 {
		t.Errorf("default size: %d hits", n)
	}
	// search_after continues a sorted listing.
	first := doSearch(t, tg, `{"sort":[{"@timestamp":"asc"},{"_id":"asc"}],"size":4}`, "")
	last := hits(first)[3]["sort"].([]any)
	after, _ := json.Marshal(last)
	next := doSearch(t, tg, `{"sort":[{"@timestamp":"asc"},{"_id":"asc"}],"size":4,"search_after":`+string(after)+`}`, "")
	if got := hitIDs(next); !reflect.DeepEqual(got, all[4:8]) {
		t.Errorf("search_after: got %v, want %v", got, all[4:8])
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestSearchResultWindow(t *testing.T) {
	c := getCorpus(t)
	e := searchErr(t, c.target(), `{"from":9995,"size":10}`, "")
	if e.Status != 400 || e.Type != "illegal_argument_exception" || !strings.Contains(e.Reason, "Result window is too large, from + size must be less than or equal to: [10000] but was [10005]") {
		t.Fatalf("got %+v", e)
	}
	doSearch(t, c.target(), `{"from":9990,"size":10}`, "")
}

func TestSearchSourceFiltering(t *testing.T) {
	c := getCorpus(t)
	tg := c.target("sluice-shop-2026.11.21")
	q := `"query":{"ids":{"values":["d01"]}}`
	tests := []struct {
		name, body, params string
		want               string // expected _source; "" for none
	}{
		{"false", `{` + q + `,"_source":false}`, "", ""},
		{"single pattern", `{` + q + `,"_source":"kubernetes.pod_name"}`, "", `{"kubernetes":{"pod_name":"cart-7d9f8b-x2x9z"}}`},
		{"list with wildcard", `{` + q + `,"_source":["http.*","tenant"]}`, "", `{"http":{"method":"GET","status":200},"tenant":"shop"}`},
		{"includes excludes", `{` + q + `,"_source":{"includes":["kubernetes.*"],"excludes":["kubernetes.labels*","*.host"]}}`, "", `{"kubernetes":{"container_name":"cart","namespace_name":"shop","pod_name":"cart-7d9f8b-x2x9z"}}`},
		{"object include keeps subtree", `{` + q + `,"_source":["sluice"]}`, "", `{"sluice":{"observed_timestamp":"2026-11-21T10:00:00.040Z","source":{"offset":4096,"path":"/var/log/containers/cart-7d9f8b-x2x9z_shop_cart-3b2a.log"}}}`},
		{"array values", `{` + q + `,"_source":["tags"]}`, "", `{"tags":["web","cart"]}`},
		{"url _source_includes", `{` + q + `}`, "_source_includes=level,stream", `{"level":"info","stream":"stdout"}`},
		{"url _source=false", `{` + q + `}`, "_source=false", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := doSearch(t, tg, tt.body, tt.params)
			h := hits(m)
			if len(h) != 1 {
				t.Fatalf("hits = %v", h)
			}
			src, ok := h[0]["_source"]
			if tt.want == "" {
				if ok {
					t.Fatalf("_source = %v, want none", src)
				}
				return
			}
			var want any
			if err := json.Unmarshal([]byte(tt.want), &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(src, want) {
				got, _ := json.Marshal(src)
				t.Fatalf("_source = %s, want %s", got, tt.want)
			}
		})
	}
	// No filter: the stored bytes come back exactly as indexed.
	out, serr := executeSearch(context.Background(), tg, []byte(`{`+q+`}`), nil, testNow)
	if serr != nil {
		t.Fatal(serr)
	}
	if !bytes.Contains(out, []byte(`"_source":{"@timestamp":"2026-11-21T10:00:00.000Z","tenant":"shop"`)) {
		t.Fatalf("raw _source not kept: %s", out)
	}
}

func TestSearchTrackTotalHits(t *testing.T) {
	c := getCorpus(t)
	tg := c.target()
	for _, tt := range []struct {
		body, params string
		want         any
	}{
		{`{}`, "", map[string]any{"value": 12.0, "relation": "eq"}},
		{`{"track_total_hits":true}`, "", map[string]any{"value": 12.0, "relation": "eq"}},
		{`{"track_total_hits":5}`, "", map[string]any{"value": 5.0, "relation": "gte"}},
		{`{"track_total_hits":12}`, "", map[string]any{"value": 12.0, "relation": "eq"}},
		{`{"track_total_hits":false}`, "", nil},
		{`{}`, "rest_total_hits_as_int=true", 12.0},
		{`{}`, "track_total_hits=3", map[string]any{"value": 3.0, "relation": "gte"}},
	} {
		m := doSearch(t, tg, tt.body, tt.params)
		if got := m["hits"].(map[string]any)["total"]; !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s ?%s: total = %v, want %v", tt.body, tt.params, got, tt.want)
		}
	}
}

func TestSearchResponseShape(t *testing.T) {
	c := getCorpus(t)
	m := doSearch(t, c.target(), `{"query":{"match":{"log":"timeout"}}}`, "")
	for _, k := range []string{"took", "timed_out", "_shards", "hits"} {
		if _, ok := m[k]; !ok {
			t.Errorf("response lacks %q: %v", k, m)
		}
	}
	if sh := m["_shards"].(map[string]any); sh["total"] != 3.0 || sh["successful"] != 3.0 || sh["failed"] != 0.0 {
		t.Errorf("_shards = %v", sh)
	}
	h := hits(m)
	if len(h) != 1 || h[0]["_index"] != "sluice-billing-2026.11.21" || h[0]["_id"] != "d07" {
		t.Fatalf("hits = %v", h)
	}
	if s, ok := h[0]["_score"].(float64); !ok || s <= 0 {
		t.Errorf("_score = %v", h[0]["_score"])
	}
	if ms := m["hits"].(map[string]any)["max_score"]; ms != h[0]["_score"] {
		t.Errorf("max_score = %v, want %v", ms, h[0]["_score"])
	}
	// Filter context scores 0, match_all 1, as in Elasticsearch.
	m = doSearch(t, c.target(), `{"query":{"bool":{"filter":[{"term":{"tenant":"billing"}}]}}}`, "")
	for _, h := range hits(m) {
		if h["_score"] != 0.0 {
			t.Errorf("filter _score = %v", h["_score"])
		}
	}
	m = doSearch(t, c.target(), `{"size":1}`, "")
	if h := hits(m); h[0]["_score"] != 1.0 {
		t.Errorf("match_all _score = %v", h[0]["_score"])
	}
	// No index at all (a pattern matching nothing): an empty answer.
	out, serr := executeSearch(context.Background(), searchTarget{}, []byte(`{"aggs":{"t":{"terms":{"field":"x"}}}}`), nil, testNow)
	if serr != nil {
		t.Fatal(serr)
	}
	if !bytes.Contains(out, []byte(`"hits":{"total":{"value":0,"relation":"eq"},"max_score":null,"hits":[]}`)) {
		t.Errorf("empty target: %s", out)
	}
}

func TestSearchIndexNameFromPath(t *testing.T) {
	tg := searchTarget{Names: []string{"sluice-a", "sluice-b"}}
	for in, want := range map[string]string{
		"sluice-b":                           "sluice-b",
		"/data/indices/sluice-a/bleve":       "sluice-a",
		"/data/indices/sluice-b":             "sluice-b",
		"/somewhere/else/entirely/bleve-dir": "/somewhere/else/entirely/bleve-dir",
	} {
		if got := tg.indexName(in); got != want {
			t.Errorf("indexName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCount(t *testing.T) {
	c := getCorpus(t)
	tg := c.target()
	for _, tt := range []struct {
		body, params string
		want         float64
	}{
		{``, "", 12},
		{`{"query":{"term":{"tenant":"billing"}}}`, "", 3},
		{``, "q=kubernetes.pod_name:billing-0", 2},
		{``, "q=log:cart&df=log", 3},
		{`{"query":{"range":{"@timestamp":{"gte":"now-1h"}}}}`, "", 6},
	} {
		v, _ := url.ParseQuery(tt.params)
		out, serr := executeCount(context.Background(), tg, []byte(tt.body), v, testNow)
		if serr != nil {
			t.Fatalf("%s: %v", tt.body, serr)
		}
		var m map[string]any
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatal(err)
		}
		if m["count"] != tt.want {
			t.Errorf("%s ?%s: count = %v, want %v", tt.body, tt.params, m["count"], tt.want)
		}
		if sh, ok := m["_shards"].(map[string]any); !ok || sh["total"] != 3.0 {
			t.Errorf("_shards = %v", m["_shards"])
		}
	}
	_, serr := executeCount(context.Background(), tg, []byte(`{"size":1}`), nil, testNow)
	if serr == nil || serr.Type != "parsing_exception" || serr.Reason != "request does not support [size]" {
		t.Errorf("count with size: %+v", serr)
	}
}

func TestSearchErrors(t *testing.T) {
	c := getCorpus(t)
	tg := c.target()
	tests := []struct {
		body, params string
		status       int
		typ, reason  string
	}{
		{`{"query":{"fuzzy_thing":{}}}`, "", 400, "parsing_exception", "unknown query [fuzzy_thing]"},
		{`{"query":{"simple_query_string":{"query":"x"}}}`, "", 400, "parsing_exception", "query [simple_query_string] is not supported by the Sluice devstack store"},
		{`{"query":{"term":{"tenant":"a"},"match":{"log":"b"}}}`, "", 400, "parsing_exception", "[match] malformed query, expected [END_OBJECT] but found [FIELD_NAME]"},
		{`{"query":{"bool":{"must":[{"term":{"tenant":"a"}}],"shoud":[]}}}`, "", 400, "parsing_exception", "[bool] query does not support [shoud]"},
		{`{"querry":{}}`, "", 400, "parsing_exception", "Unknown key for a START_OBJECT in [querry]."},
		{`{"size":"x"}`, "", 400, "illegal_argument_exception", "Failed to parse int parameter [size] with value [x]"},
		{`{"size":-1}`, "", 400, "illegal_argument_exception", "[size] parameter cannot be negative, found [-1]"},
		{`{"sort":[{"log":"asc"}]}`, "", 400, "illegal_argument_exception", "Text fields are not optimised"},
		{`{"sort":[{"nope":"asc"}]}`, "", 400, "query_shard_exception", "No mapping found for [nope] in order to sort on"},
		{`{"sort":[{"@timestamp":"up"}]}`, "", 400, "illegal_argument_exception", "Unknown SortOrder [up]"},
		{`{"query":{"range":{"@timestamp":{"gte":"yesterday"}}}}`, "", 400, "parse_exception", "failed to parse date field [yesterday]"},
		{`{"query":{"term":{"http.status":"abc"}}}`, "", 400, "query_shard_exception", `failed to create query: For input string: "abc"`},
		{`{"query":{"query_string":{"query":"tenant:(shop"}}}`, "", 400, "query_shard_exception", "Failed to parse query [tenant:(shop]"},
		{`{"post_filter":{"match_all":{}}}`, "", 400, "illegal_argument_exception", "[post_filter] is not supported by the Sluice devstack store"},
		{`{"aggs":{"x":{"percentiles":{"field":"duration"}}}}`, "", 400, "illegal_argument_exception", "aggregation [x] of type [percentiles] is not supported by the Sluice devstack store"},
		{`{"aggs":{"x":{"bogus":{"field":"duration"}}}}`, "", 400, "parsing_exception", "Unknown aggregation type [bogus]"},
		{`[1]`, "", 400, "parsing_exception", "Unknown key for a START_ARRAY in [_na]."},
		{`{"query":`, "", 400, "x_content_parse_exception", "failed to parse the request body"},
		{``, "q=http.status:abc&df=http.status", 400, "query_shard_exception", `For input string: "abc"`},
		{`{"search_after":[1],"from":2,"sort":["@timestamp"]}`, "", 400, "illegal_argument_exception", "[from] parameter must be set to 0 when [search_after] is used"},
	}
	for _, tt := range tests {
		e := searchErr(t, tg, tt.body, tt.params)
		if e.Status != tt.status || e.Type != tt.typ || !strings.Contains(e.Reason, tt.reason) {
			t.Errorf("%s ?%s:\n got %d %s %q\nwant %d %s %q", tt.body, tt.params, e.Status, e.Type, e.Reason, tt.status, tt.typ, tt.reason)
		}
	}
}

// TestSearchGolden replays the request/response pairs of testdata/search/*.request.json; run
// with -update to rewrite the responses. The requests are examples of the Elasticsearch reference
// (search API, query DSL, aggregations), their field names moved onto the log corpus.
func TestSearchGolden(t *testing.T) {
	c := getCorpus(t)
	files, err := filepath.Glob("testdata/search/*.request.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden requests: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".request.json")
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var req struct {
				Comment string          `json:"comment"`
				Indices []string        `json:"indices"`
				API     string          `json:"api"`
				Params  string          `json:"params"`
				Body    json.RawMessage `json:"body"`
			}
			if err := json.Unmarshal(b, &req); err != nil {
				t.Fatal(err)
			}
			params, _ := url.ParseQuery(req.Params)
			run := executeSearch
			if req.API == "_count" {
				run = executeCount
			}
			out, serr := run(context.Background(), c.target(req.Indices...), req.Body, params, testNow)
			var got any
			if serr != nil {
				got = map[string]any{"error": map[string]any{"type": serr.Type, "reason": serr.Reason}, "status": serr.Status}
			} else {
				if err := json.Unmarshal(out, &got); err != nil {
					t.Fatal(err)
				}
				delete(got.(map[string]any), "took")
			}
			pretty, _ := json.MarshalIndent(got, "", "  ")
			if err := json.Unmarshal(pretty, &got); err != nil { // normalise numbers
				t.Fatal(err)
			}
			golden := strings.TrimSuffix(f, ".request.json") + ".response.json"
			if *updateGolden {
				if err := os.WriteFile(golden, append(pretty, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			wantBytes, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			var want any
			if err := json.Unmarshal(wantBytes, &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("response differs from %s:\n%s", golden, pretty)
			}
		})
	}
}

// FuzzSearchBody: no request body may panic the search, and every answer is valid JSON or an
// Elasticsearch error.
func FuzzSearchBody(f *testing.F) {
	seeds := []string{
		``, `{}`, `{"query":{"match_all":{}}}`,
		`{"query":{"bool":{"must":[{"match":{"log":"cart"}}],"filter":{"range":{"@timestamp":{"gte":"now-1d/d"}}},"must_not":{"term":{"level":"debug"}},"should":[{"exists":{"field":"http"}}],"minimum_should_match":"50%"}}}`,
		`{"query":{"query_string":{"query":"kubernetes.pod_name:cart* AND NOT level:error","default_operator":"AND"}},"sort":[{"@timestamp":"desc"}],"size":3,"from":1,"_source":["kubernetes.*"]}`,
		`{"size":0,"aggs":{"pods":{"terms":{"field":"kubernetes.pod_name","size":2},"aggs":{"t":{"date_histogram":{"field":"@timestamp","fixed_interval":"30m"}}}}}}`,
		`{"aggs":{"h":{"date_histogram":{"field":"@timestamp","calendar_interval":"day","min_doc_count":1,"format":"yyyy-MM-dd"}}}}`,
		`{"query":{"terms":{"http.status":[200,"404"]}},"track_total_hits":false}`,
		`{"query":{"match_phrase":{"log":"new york city"}},"sort":["_score",{"_id":"desc"}]}`,
		`{"search_after":[null],"sort":[{"@timestamp":"asc"}]}`,
		`{"query":{"range":{"http.status":{"gt":"200","lte":504}}},"aggs":{"s":{"stats":{"field":"duration"}}}}`,
	}
	for _, s := range seeds {
		f.Add(s, "")
	}
	f.Add(``, "q=log:cart&sort=@timestamp:desc&size=2")
	c := getCorpus(f)
	tg := c.target()
	f.Fuzz(func(t *testing.T, body, params string) {
		v, _ := url.ParseQuery(params)
		out, serr := executeSearch(context.Background(), tg, []byte(body), v, testNow)
		if serr != nil {
			if serr.Status < 400 || serr.Type == "" {
				t.Fatalf("bad error %+v", serr)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid JSON: %s", out)
		}
		if _, serr := executeCount(context.Background(), tg, []byte(body), v, testNow); serr != nil && serr.Status < 400 {
			t.Fatalf("bad count error %+v", serr)
		}
	})
}

// benchIndexDocs is the size of the benchmark index.
const benchIndexDocs = 1_000_000

// benchPods is the number of distinct pods in the benchmark index (each has ~2,000 documents).
const benchPods = 500

// benchIndex opens the benchmark index, building it on first use in a directory under the
// system temp dir that later runs reuse (building a million documents takes minutes).
func benchIndex(b *testing.B) bleve.Index {
	b.Helper()
	dir := filepath.Join(os.TempDir(), "sluice-devstack-bench-search-v3")
	done := filepath.Join(dir, "complete")
	if _, err := os.Stat(done); err == nil {
		idx, err := bleve.Open(filepath.Join(dir, "index"))
		if err == nil {
			b.Logf("reusing the benchmark index in %s", dir)
			return idx
		}
		b.Logf("reopen %s: %v; rebuilding", dir, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		b.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	idx, err := bleve.New(filepath.Join(dir, "index"), newIndexMapping())
	if err != nil {
		b.Fatal(err)
	}
	fields := fieldSetOf(benchFieldInfos())
	start := time.Now()
	const batchSize = 2000
	type built struct {
		docs []*documentDocument
		err  error
	}
	work := make(chan int)
	results := make(chan built, 4)
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for first := range work {
				var out built
				for i := first; i < min(first+batchSize, benchIndexDocs); i++ {
					id, src := benchDocument(i)
					d, err := buildDocumentWith(id, src, fields, nil)
					if err != nil {
						out.err = err
						break
					}
					out.docs = append(out.docs, d)
				}
				results <- out
			}
		}()
	}
	go func() {
		for first := 0; first < benchIndexDocs; first += batchSize {
			work <- first
		}
		close(work)
		wg.Wait()
		close(results)
	}()
	for r := range results {
		if r.err != nil {
			b.Fatal(r.err)
		}
		batch := idx.NewBatch()
		for _, d := range r.docs {
			if err := batch.IndexAdvanced(d); err != nil {
				b.Fatal(err)
			}
		}
		if err := idx.Batch(batch); err != nil {
			b.Fatal(err)
		}
	}
	took := time.Since(start)
	b.Logf("built the benchmark index: %d documents in %v (%.0f docs/s)", benchIndexDocs, took.Round(time.Second), float64(benchIndexDocs)/took.Seconds())
	if err := os.WriteFile(done, []byte(took.String()+"\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	return idx
}

// documentDocument is bleve's document type (named here to keep the benchmark readable).
type documentDocument = document.Document

func benchFields() func(string) (fieldInfo, bool) {
	types := benchFieldInfos()
	return func(p string) (fieldInfo, bool) {
		fi, ok := types[p]
		return fi, ok
	}
}

// benchFieldInfos is the mapping of the benchmark documents.
func benchFieldInfos() map[string]fieldInfo {
	return map[string]fieldInfo{
		"@timestamp": {Type: "date"}, "tenant": {Type: "keyword"}, "stream": {Type: "keyword"},
		"log": {Type: "text"}, "level": {Type: "keyword", IgnoreAbove: 1024},
		"msg": {Type: "keyword", IgnoreAbove: 1024}, "http.status": {Type: "long"},
		"http.method": {Type: "keyword", IgnoreAbove: 1024}, "duration": {Type: "double"},
		"kubernetes.pod_name": {Type: "keyword"}, "kubernetes.namespace_name": {Type: "keyword"},
		"kubernetes.pod_id": {Type: "keyword"}, "kubernetes.container_name": {Type: "keyword"},
		"kubernetes.docker_id": {Type: "keyword"}, "kubernetes.host": {Type: "keyword"},
		"kubernetes.labels.app":               {Type: "keyword", IgnoreAbove: 1024},
		"kubernetes.labels.pod-template-hash": {Type: "keyword", IgnoreAbove: 1024},
		"sluice.observed_timestamp":           {Type: "date"}, "sluice.source.path": {Type: "keyword"},
		"sluice.source.offset": {Type: "long"}, "sluice.source.format": {Type: "keyword"},
		"sluice.source.shipper": {Type: "keyword"},
	}
}

var benchWords = strings.Fields("GET POST PUT /cart /checkout /api/v1/orders /healthz served request " +
	"user session token refused timeout connection payment invoice retry upstream backend " +
	"database query slow cache miss hit ok failed error warning started finished job")

// benchDocument is document i of the benchmark index: about 600 bytes, shaped like the Sluice
// indexer's documents.
func benchDocument(i int) (string, []byte) {
	r := uint64(i)*0x9E3779B97F4A7C15 + 1
	next := func(n int) int {
		r ^= r << 13
		r ^= r >> 7
		r ^= r << 17
		return int(r % uint64(n))
	}
	pod := i % benchPods
	app := "svc" + itoa(pod%60)
	ts := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * 86400 * time.Millisecond / benchIndexDocs * 1000)
	var msg strings.Builder
	for w := 0; w < 8+next(8); w++ {
		if w > 0 {
			msg.WriteByte(' ')
		}
		msg.WriteString(benchWords[next(len(benchWords))])
	}
	status := []int{200, 200, 200, 201, 204, 302, 404, 500, 503}[next(9)]
	level := []string{"info", "info", "info", "debug", "warn", "error"}[next(6)]
	doc := map[string]any{
		"@timestamp": ts.Format(time.RFC3339Nano),
		"tenant":     "tenant" + itoa(pod%5),
		"stream":     []string{"stdout", "stderr"}[next(2)],
		"log":        msg.String(),
		"level":      level,
		"msg":        msg.String(),
		"http":       map[string]any{"status": status, "method": []string{"GET", "POST"}[next(2)]},
		"duration":   float64(next(100000)) / 1000,
		"kubernetes": map[string]any{
			"pod_name":       benchPodName(pod),
			"namespace_name": "ns" + itoa(pod%20),
			"pod_id":         "8a4c0f5e-1111-2222-3333-" + itoa(100000000000+pod),
			"container_name": app,
			"docker_id":      "3b2a1c0d9e8f" + itoa(pod),
			"host":           "node-" + itoa(pod%50),
			"labels":         map[string]any{"app": app, "pod-template-hash": "7d9f8b" + itoa(pod%97)},
		},
		"sluice": map[string]any{
			"observed_timestamp": ts.Add(40 * time.Millisecond).Format(time.RFC3339Nano),
			"source": map[string]any{
				"path": "/var/log/containers/" + benchPodName(pod) + "_ns_" + app + ".log", "offset": i * 512,
				"format": "cri", "shipper": "v0.3.0",
			},
		},
	}
	src, _ := json.Marshal(doc)
	return "id-" + itoa(i), src
}

func benchPodName(pod int) string {
	return "svc" + itoa(pod%60) + "-7d9f8b-" + itoa(10000+pod)
}

// BenchmarkSearchKeyword: a keyword term query (kubernetes.pod_name:<pod>, ~2,000 matches)
// sorted by @timestamp desc, size 20, over 1,000,000 documents, alone and filtered by @timestamp
// ranges (the whole day the index spans, one hour), and a range alone (what Kibana's Discover
// asks with no query). Goal: under 100 ms per query.
func BenchmarkSearchKeyword(b *testing.B) {
	idx := benchIndex(b)
	defer idx.Close()
	fields := benchFields()
	tg := searchTarget{Index: idx, Names: []string{"sluice-bench"}, Field: fields, Fields: func() []string { return nil }}
	rangeAndPod := func(gte, lt string, pod int) string {
		return `{"query":{"bool":{"filter":[{"range":{"@timestamp":{"gte":"` + gte + `","lt":"` + lt + `"}}},` +
			`{"term":{"kubernetes.pod_name":"` + benchPodName(pod) + `"}}]}},"sort":[{"@timestamp":"desc"}],"size":20}`
	}
	for _, tc := range []struct{ name, body, want string }{
		{"query_string", `{"query":{"query_string":{"query":"kubernetes.pod_name:` + benchPodName(123) + `"}},"sort":[{"@timestamp":"desc"}],"size":20}`, `"value":2000,`},
		{"term", `{"query":{"term":{"kubernetes.pod_name":"` + benchPodName(321) + `"}},"sort":[{"@timestamp":"desc"}],"size":20}`, `"value":2000,`},
		{"absent_pod", `{"query":{"term":{"kubernetes.pod_name":"xyz"}},"sort":[{"@timestamp":"desc"}],"size":20}`, `"value":0,`},
		{"range_day_and_term", rangeAndPod("2026-11-21T00:00:00Z", "2026-11-22T00:00:00Z", 321), `"value":2000,`},
		{"range_hour_and_term", rangeAndPod("2026-11-21T10:00:00Z", "2026-11-21T11:00:00Z", 321), `"value":84,`},
		{"range_day", `{"query":{"range":{"@timestamp":{"gte":"2026-11-21T00:00:00Z","lt":"2026-11-22T00:00:00Z"}}},"sort":[{"@timestamp":"desc"}],"size":20}`, `"value":10000,`},
		{"range_15m", `{"query":{"range":{"@timestamp":{"gte":"2026-11-21T23:45:00Z","lt":"2026-11-22T00:00:00Z"}}},"sort":[{"@timestamp":"desc"}],"size":20}`, `"value":10000,`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			out, serr := executeSearch(context.Background(), tg, []byte(tc.body), nil, time.Now())
			if serr != nil {
				b.Fatal(serr)
			}
			if !bytes.Contains(out, []byte(tc.want)) {
				b.Fatalf("unexpected answer (want %s): %.300s", tc.want, out)
			}
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if _, serr := executeSearch(context.Background(), tg, []byte(tc.body), nil, time.Now()); serr != nil {
					b.Fatal(serr)
				}
			}
			b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/op")
		})
	}
}

// BenchmarkSearchAggregations: match_all over the 1,000,000-document benchmark index with a
// terms aggregation (500 pods) and a 1h date_histogram, and a match_all sorted by @timestamp.
func BenchmarkSearchAggregations(b *testing.B) {
	idx := benchIndex(b)
	defer idx.Close()
	tg := searchTarget{Index: idx, Names: []string{"sluice-bench"}, Field: benchFields(), Fields: func() []string { return nil }}
	for _, tc := range []struct{ name, body string }{
		{"terms_and_date_histogram", `{"size":0,"aggs":{"pods":{"terms":{"field":"kubernetes.pod_name"}},"per_hour":{"date_histogram":{"field":"@timestamp","fixed_interval":"1h"}}}}`},
		{"date_histogram_of_one_pod", `{"size":0,"query":{"term":{"kubernetes.pod_name":"` + benchPodName(7) + `"}},"aggs":{"per_5m":{"date_histogram":{"field":"@timestamp","fixed_interval":"5m"}}}}`},
		{"match_all_sorted", `{"sort":[{"@timestamp":"desc"}],"size":20}`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if _, serr := executeSearch(context.Background(), tg, []byte(tc.body), nil, time.Now()); serr != nil {
					b.Fatal(serr)
				}
			}
			b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/op")
		})
	}
}
