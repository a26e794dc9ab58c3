package eslite

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// corpus is a store with the indexer's template and seven documents, d1
// to d7, written at these ages.
func corpus(t *testing.T) *served {
	t.Helper()
	ts := memStore(t)
	ts.must(t, 200, "PUT", "/_index_template/sluice", readFile(t, "../../indexer/testdata/template.json"))
	now := time.Now().UTC()
	var lines []string
	for i, d := range []struct {
		age                    time.Duration
		tenant, level, log, ns string
		pod, labels, workload  string
		status                 int
		extra                  string
	}{
		{5 * time.Minute, "shop", "error", "payment failed for cart", "shop", "cart-1", `"app":"cart","app_kubernetes_io/name":"cart","version":"1.5.0"`, "cart", 500, ``},
		{10 * time.Minute, "shop", "info", "checkout ok", "shop", "cart-10", `"app":"cart","version":"1.4.2"`, "cart", 201, ``},
		{2 * time.Hour, "shop", "debug", "cache warm", "shop", "checkout-7", `"app":"checkout"`, "checkout", 200, ``},
		{3 * 24 * time.Hour, "shop", "error", "disk full", "shop", "cart-1", `"app":"cart","app_kubernetes_io/name":"cart"`, "cart", 201, ``},
		{20 * 24 * time.Hour, "shop", "", "started", "billing", "api-1", `"app":"api"`, "api", 200, ``},
		{time.Minute, "shop", "warn", "Timeout talking to user@example.com", "shop", "cart-1", `"app":"cart"`, "cart", 504, `,"n":"25"`},
		{30 * time.Second, "web", "error", "GET /cart/7 served", "web", "web-1", `"app":"web"`, "web", 500, `,"n":"7"`},
	} {
		index := "sluice-" + d.tenant + "-2026.11.21"
		level := ""
		if d.level != "" {
			level = fmt.Sprintf(`,"level":%q`, d.level)
		}
		lines = append(lines, fmt.Sprintf(`{"create":{"_index":%q,"_id":"d%d"}}`, index, i+1),
			fmt.Sprintf(`{"@timestamp":%q,"tenant":%q,"log":%q%s,"kubernetes":{"pod_name":%q,"namespace_name":%q,"labels":{%s},"workload":{"name":%q}},"http.status":%d%s}`,
				now.Add(-d.age).Format(time.RFC3339Nano), d.tenant, d.log, level, d.pod, d.ns, d.labels, d.workload, d.status, d.extra))
	}
	for _, it := range ts.bulk(t, lines...) {
		if it["status"].(float64) != 201 {
			t.Fatalf("corpus: %v", it)
		}
	}
	return ts
}

// matching returns the sorted ids of the documents a query matches.
func matching(t *testing.T, ts *served, query string) string {
	t.Helper()
	ids := strings.Fields(ts.hitIDs(t, "sluice-*", `{"size":100,"query":`+query+`}`))
	slices.Sort(ids)
	return strings.Join(ids, " ")
}

func qs(query string, and bool) string {
	q, _ := json.Marshal(query)
	return fmt.Sprintf(`{"query_string":{"query":%s,"default_operator":%q}}`, q, map[bool]string{true: "AND", false: "OR"}[and])
}

// TestQueriesOfTheProject: every query string the README, the CLI's help
// and the tests of cmd/sluice show, with default_operator AND as sluice
// search sends them, and more of the syntax.
func TestQueriesOfTheProject(t *testing.T) {
	ts := corpus(t)
	all := "d1 d2 d3 d4 d5 d6 d7"
	for _, tt := range []struct{ query, want string }{
		{`level:error AND http.status:500`, "d1 d7"},
		{`level:error`, "d1 d4 d7"},
		{`kubernetes.labels.app:cart`, "d1 d2 d4 d6"},
		{`kubernetes.pod_name:cart-1 AND level:error`, "d1 d4"},
		{`kubernetes.pod_name:cart-1`, "d1 d4 d6"},
		{`*`, all},
		{`-level:debug`, "d1 d2 d4 d5 d6 d7"},
		{`checkout`, "d2 d3"},
		{`level:*`, "d1 d2 d3 d4 d6 d7"},
		{`-level:error -level:debug`, "d2 d5 d6"},
		{`level:warn`, "d6"},
		{`n:[0 TO 9999]`, "d6 d7"},
		{`kubernetes.labels.app_kubernetes_io/name:cart AND http.status:201`, "d4"},
		{`kubernetes.labels.app:cart AND kubernetes.workload.name:cart`, "d1 d2 d4 d6"},
		{`kubernetes.labels.app:cart AND kubernetes.pod_name:checkout*`, ""},
		{`kubernetes.labels.version:1.5.0 AND kubernetes.labels.app:cart`, "d1"},
		{`kubernetes.namespace_name:billing`, "d5"},
		// More of the syntax.
		{`level:(error OR warn)`, "d1 d4 d6 d7"},
		{`level:(error warn)`, ""}, // AND between them
		{`level:error OR level:warn`, "d1 d4 d6 d7"},
		{`level:error || level:warn`, "d1 d4 d6 d7"},
		{`log:"checkout ok"`, "d2"},
		{`log:"ok checkout"`, ""},
		{`http.status:>=500`, "d1 d6 d7"},
		{`http.status:<201`, "d3 d5"},
		{`http.status:[200 TO 201}`, "d3 d5"},
		{`http.status:{200 TO *]`, "d1 d2 d4 d6 d7"},
		{`+tenant:shop -level:error`, "d2 d3 d5 d6"},
		{`NOT tenant:shop`, "d7"},
		{`!tenant:shop`, "d7"},
		{`tenant:shop AND NOT (level:error OR level:debug)`, "d2 d5 d6"},
		{`kubernetes.pod_name:cart-?`, "d1 d4 d6"},
		{`kubernetes.pod_name:cart\-1`, "d1 d4 d6"},
		{`log:tim*`, "d6"},
		{`log:Timeout`, "d6"},
		{`user@example.com`, "d6"},
		{`@timestamp:>now-1h`, "d1 d2 d6 d7"},
		{`@timestamp:[now-1d TO now]`, "d1 d2 d3 d6 d7"},
		{`_exists_:n`, "d6 d7"},
		{`kubernetes.*:cart`, "d1 d2 d4 d6"},
		{`kubernetes.labels:*`, all},
		{`*:*`, all},
		{`500`, "d1 d7"},
		{`level:error^2`, "d1 d4 d7"},
		{``, ""},
	} {
		if got := matching(t, ts, qs(tt.query, true)); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.query, got, tt.want)
		}
	}
	// default_operator OR, fields and default_field.
	for _, tt := range []struct{ query, want string }{
		{`level:warn level:debug`, "d3 d6"},
		{`level:warn AND tenant:shop level:debug`, "d6"}, // +level:warn +tenant:shop level:debug
		{`+level:error http.status:500`, "d1 d4 d7"},
		{`tenant:web OR level:warn AND http.status:504`, "d6"}, // tenant:web +level:warn +http.status:504
	} {
		if got := matching(t, ts, qs(tt.query, false)); got != tt.want {
			t.Errorf("OR: %s: %q, want %q", tt.query, got, tt.want)
		}
	}
	for q, want := range map[string]string{
		`{"query_string":{"query":"cart","default_field":"log"}}`:                                    "d1 d7",
		`{"query_string":{"query":"cart","fields":["kubernetes.labels.app","kubernetes.pod_name"]}}`: "d1 d2 d4 d6",
		`{"query_string":{"query":"*","fields":["n"]}}`:                                              "d6 d7",
	} {
		if got := matching(t, ts, q); got != want {
			t.Errorf("%s: %q, want %q", q, got, want)
		}
	}
}

// TestQueryDSL: the queries of the query DSL the project sends.
func TestQueryDSL(t *testing.T) {
	ts := corpus(t)
	for q, want := range map[string]string{
		`{"match_all":{}}`:                                         "d1 d2 d3 d4 d5 d6 d7",
		`{"term":{"kubernetes.pod_name":"cart-1"}}`:                "d1 d4 d6",
		`{"term":{"kubernetes.pod_name":{"value":"cart-10"}}}`:     "d2",
		`{"term":{"http.status":500}}`:                             "d1 d7",
		`{"term":{"log":"cache"}}`:                                 "d3",
		`{"term":{"log":"Cache"}}`:                                 "",
		`{"terms":{"level":["warn","debug"]}}`:                     "d3 d6",
		`{"match":{"log":"disk cache"}}`:                           "d3 d4",
		`{"match":{"log":{"query":"disk full","operator":"and"}}}`: "d4",
		`{"match":{"kubernetes.pod_name":"cart-1"}}`:               "d1 d4 d6",
		`{"match_phrase":{"log":"failed for"}}`:                    "d1",
		`{"prefix":{"log":"paym"}}`:                                "d1",
		`{"prefix":{"kubernetes.pod_name":"cart"}}`:                "d1 d2 d4 d6",
		`{"wildcard":{"kubernetes.pod_name":"*-1?"}}`:              "d2",
		`{"exists":{"field":"level"}}`:                             "d1 d2 d3 d4 d6 d7",
		`{"exists":{"field":"kubernetes.workload"}}`:               "d1 d2 d3 d4 d5 d6 d7",
		`{"range":{"@timestamp":{"gte":"now-1h/h"}}}`:              "d1 d2 d6 d7",
		`{"range":{"@timestamp":{"lt":"now-1d"}}}`:                 "d4 d5",
		`{"range":{"http.status":{"gt":200,"lte":500}}}`:           "d1 d2 d4 d7",
		`{"bool":{"must":{"term":{"tenant":"shop"}},"must_not":[{"term":{"level":"error"}}],"should":[{"term":{"level":"nope"}}]}}`:                   "d2 d3 d5 d6",
		`{"bool":{"should":[{"term":{"level":"warn"}},{"term":{"level":"debug"}}]}}`:                                                                  "d3 d6",
		`{"bool":{"filter":[{"term":{"tenant":"shop"}}],"should":[{"term":{"level":"warn"}},{"term":{"http.status":200}}],"minimum_should_match":1}}`: "d3 d5 d6",
	} {
		if got := matching(t, ts, q); got != want {
			t.Errorf("%s: %q, want %q", q, got, want)
		}
	}
	for body, want := range map[string]string{
		`{"aggs":{"t":{"terms":{"field":"tenant"}}}}`: "Unknown key [aggs] in the search body",
		`{"query":{"multi_match":{"query":"x"}}}`:     "unknown query [multi_match]",
		`{"query":{"term":{"a":1,"b":2}}}`:            "[term] query malformed",
		`{"query":{"query_string":{"query":"a:(b"}}}`: `"type":"query_shard_exception","reason":"Failed to parse query [a:(b]"`,
		`{"size":10001}`: "Result window is too large",
		`{"query":{"match":{"log":{"fuzziness":2}}}}`: "[match] query does not support [fuzziness]",
	} {
		if status, out := ts.call(t, "POST", "/_search", body); status != 400 || !strings.Contains(out, want) {
			t.Errorf("%s: %d %s", body, status, out)
		}
	}
}

// TestSearchAsTheCLI: the requests sluice search sends, and what it reads
// of the answers: the newest hits first with their @timestamp as sort
// value, the total and its relation, counts, the window, index patterns
// that match nothing.
func TestSearchAsTheCLI(t *testing.T) {
	ts := corpus(t)
	body := func(size int, query string, since time.Duration, track string) string {
		filters := `{"term":{"tenant":"shop"}}`
		if since > 0 {
			filters += fmt.Sprintf(`,{"range":{"@timestamp":{"gte":"now-%ds"}}}`, int64(since.Seconds()))
		}
		return fmt.Sprintf(`{"size":%d,%s"sort":[{"@timestamp":{"order":"desc","unmapped_type":"date"}}],"query":{"bool":{"must":[%s],"filter":[%s]}}}`,
			size, track, qs(query, true), filters)
	}
	const target = "/sluice-shop-*,sluice-shop.*/_search?ignore_unavailable=true&allow_no_indices=true"
	var res struct {
		Hits struct {
			Total struct {
				Value    int
				Relation string
			}
			Hits []struct {
				ID     string         `json:"_id"`
				Source map[string]any `json:"_source"`
				Sort   []any
			}
		}
	}
	search := func(b string) string {
		t.Helper()
		status, out := ts.call(t, "POST", target, b)
		if status != 200 {
			t.Fatalf("%s: %d %s", b, status, out)
		}
		res.Hits.Hits = nil
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, h := range res.Hits.Hits {
			ids = append(ids, h.ID)
		}
		return strings.Join(ids, " ")
	}
	if got := search(body(3, "*", time.Hour, "")); got != "d6 d1 d2" || res.Hits.Total.Value != 3 || res.Hits.Total.Relation != "eq" {
		t.Errorf("last hour: %s %+v", got, res.Hits.Total)
	}
	ts6, _ := time.Parse(time.RFC3339Nano, res.Hits.Hits[0].Source["@timestamp"].(string))
	if ms, ok := res.Hits.Hits[0].Sort[0].(float64); !ok || int64(ms) != ts6.UnixMilli() {
		t.Errorf("sort value %v, want %d", res.Hits.Hits[0].Sort, ts6.UnixMilli())
	}
	if got := search(body(2, "*", 0, `"track_total_hits":4,`)); got != "d6 d1" || res.Hits.Total.Value != 4 || res.Hits.Total.Relation != "gte" {
		t.Errorf("size 2 of 6: %s %+v", got, res.Hits.Total)
	}
	if got := search(body(20, "level:error", 24*time.Hour, "")); got != "d1" {
		t.Errorf("errors of the day: %s", got)
	}
	if got := search(body(20, "level:error", 0, "")); got != "d1 d4" {
		t.Errorf("errors: %s", got)
	}
	out := ts.must(t, 200, "POST", "/sluice-shop-*,sluice-shop.*/_count?ignore_unavailable=true&allow_no_indices=true",
		`{"query":{"bool":{"must":[`+qs("level:error", true)+`],"filter":[{"term":{"tenant":"shop"}}]}}}`)
	if out["count"].(float64) != 2 {
		t.Errorf("count: %v", out)
	}
	// Paging, search_after, _source filtering, sorting by a keyword.
	if got := ts.hitIDs(t, "sluice-*", `{"from":1,"size":2,"sort":[{"@timestamp":"desc"}]}`); got != "d6 d1" {
		t.Errorf("from 1: %s", got)
	}
	search(`{"size":2,"sort":[{"@timestamp":"desc"}]}`)
	if got := ts.hitIDs(t, "sluice-*", fmt.Sprintf(`{"size":2,"sort":[{"@timestamp":"desc"}],"search_after":[%v]}`, jsonNum(res.Hits.Hits[1].Sort[0]))); got != "d2 d3" {
		t.Errorf("search_after: %s", got)
	}
	if got := ts.hitIDs(t, "sluice-*", `{"size":10,"sort":[{"level":"asc"},{"http.status":"desc"}]}`); got != "d3 d1 d7 d4 d2 d6 d5" {
		t.Errorf("by level then status, missing last: %s", got)
	}
	out = ts.must(t, 200, "POST", "/sluice-shop-*/_search", `{"size":1,"_source":["log","kubernetes.pod*"],"sort":["_doc"]}`)
	src, _ := json.Marshal(out["hits"].(map[string]any)["hits"].([]any)[0].(map[string]any)["_source"])
	if string(src) != `{"kubernetes":{"pod_name":"cart-1"},"log":"payment failed for cart"}` {
		t.Errorf("_source filtered: %s", src)
	}
	// Patterns that match nothing, allowed; a missing name, refused.
	if out := ts.must(t, 200, "POST", "/nothing-*,gone/_search?ignore_unavailable=true", `{}`); out["hits"].(map[string]any)["total"].(map[string]any)["value"] != 0.0 {
		t.Errorf("no index: %v", out)
	}
	ts.must(t, 404, "POST", "/gone/_search", `{}`)
	ts.must(t, 404, "POST", "/nothing-*/_search?allow_no_indices=false", `{}`)
}

// TestDates: the date forms and the date math of range queries.
func TestDates(t *testing.T) {
	for s, want := range map[string]string{
		"2026-11-21T10:30:00.123456789Z": "2026-11-21T10:30:00.123Z", "2026-11-21T10:00:00+01:00": "2026-11-21T09:00:00Z",
		"2026-11-21T10:30:00,5Z": "2026-11-21T10:30:00.5Z", "2026-11-21T10:30": "2026-11-21T10:30:00Z", "2026-11-21": "2026-11-21T00:00:00Z",
		"2026-11": "2026-11-01T00:00:00Z", "2026-11-21T10:00:00+0100": "2026-11-21T09:00:00Z", "2026-02-30": "", "21/11/2026": "", "2026-11-21 10:30": "",
	} {
		ms, ok := parseDate(s)
		if got := time.UnixMilli(int64(ms)).UTC().Format("2006-01-02T15:04:05.999Z07:00"); ok != (want != "") || ok && got != want {
			t.Errorf("%s: %s %v, want %q", s, got, ok, want)
		}
	}
	now := time.Date(2026, 11, 21, 10, 30, 15, 0, time.UTC)
	for _, tt := range []struct {
		expr string
		up   bool
		want string
	}{
		{"now-1h", false, "2026-11-21T09:30:15Z"}, {"now/d", false, "2026-11-21T00:00:00Z"}, {"now/d", true, "2026-11-21T23:59:59.999Z"},
		{"now-3600s", false, "2026-11-21T09:30:15Z"}, {"now+1M/M", false, "2026-12-01T00:00:00Z"}, {"now/w", false, "2026-11-16T00:00:00Z"},
		{"2026-11-21||+1d", false, "2026-11-22T00:00:00Z"}, {"1795251600000", false, "2026-11-21T09:00:00Z"}, {"now-1x", false, ""},
	} {
		ms, ok := dateMath(tt.expr, now, tt.up)
		if got := time.UnixMilli(int64(ms)).UTC().Format("2006-01-02T15:04:05.999Z07:00"); ok != (tt.want != "") || ok && got != tt.want {
			t.Errorf("%s (up %v): %s %v, want %q", tt.expr, tt.up, got, ok, tt.want)
		}
	}
}
