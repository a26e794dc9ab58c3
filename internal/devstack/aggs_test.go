package devstack

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func aggsOf(t *testing.T, m map[string]any) map[string]any {
	t.Helper()
	a, ok := m["aggregations"].(map[string]any)
	if !ok {
		t.Fatalf("no aggregations in %v", m)
	}
	return a
}

// bucketSummary renders buckets as "key:count" pairs.
func bucketSummary(agg any) string {
	var parts []string
	for _, b := range agg.(map[string]any)["buckets"].([]any) {
		bm := b.(map[string]any)
		key := bm["key"]
		if ks, ok := bm["key_as_string"]; ok {
			key = ks
		}
		kb, _ := json.Marshal(key)
		parts = append(parts, strings.Trim(string(kb), `"`)+":"+itoa(int(bm["doc_count"].(float64))))
	}
	return strings.Join(parts, " ")
}

func TestAggTerms(t *testing.T) {
	c := getCorpus(t)
	tg := c.target()
	tests := []struct {
		name, body string
		want       string
		other      float64
	}{
		{"default order", `{"terms":{"field":"kubernetes.pod_name","size":2}}`, "cart-7d9f8b-x2x9z:4 auth-1:2", 6},
		{"all", `{"terms":{"field":"kubernetes.pod_name"}}`, "cart-7d9f8b-x2x9z:4 auth-1:2 billing-0:2 checkout-5c6d7e-abcde:2 billing-cron-28371:1 cart-7d9f8b-ab12c:1", 0},
		{"order by key desc", `{"terms":{"field":"kubernetes.host","order":{"_key":"desc"}}}`, "node-3:2 node-2:4 node-1:6", 0},
		{"order by count asc", `{"terms":{"field":"kubernetes.host","order":{"_count":"asc"}}}`, "node-3:2 node-2:4 node-1:6", 0},
		{"array values", `{"terms":{"field":"tags"}}`, "web:3 cart:1", 0},
		{"long keys", `{"terms":{"field":"http.status"}}`, "200:4 201:1 404:1 502:1 504:1", 0},
		{"boolean keys", `{"terms":{"field":"cached"}}`, "false:4 true:2", 0},
		{"missing", `{"terms":{"field":"http.method","missing":"n/a"}}`, "GET:4 n/a:4 POST:3 PUT:1", 0},
		{"min_doc_count", `{"terms":{"field":"kubernetes.host","min_doc_count":3}}`, "node-1:6 node-2:4", 0},
		{"unmapped field", `{"terms":{"field":"nope"}}`, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := doSearch(t, tg, `{"size":0,"aggs":{"a":`+tt.body+`}}`, "")
			a := aggsOf(t, m)["a"]
			if got := bucketSummary(a); got != tt.want {
				t.Fatalf("buckets %q, want %q", got, tt.want)
			}
			am := a.(map[string]any)
			if am["sum_other_doc_count"] != tt.other || am["doc_count_error_upper_bound"] != 0.0 {
				t.Errorf("sum_other_doc_count %v doc_count_error_upper_bound %v", am["sum_other_doc_count"], am["doc_count_error_upper_bound"])
			}
		})
	}
	// Typed numeric keys.
	m := doSearch(t, tg, `{"size":0,"aggs":{"s":{"terms":{"field":"http.status","size":1}},"b":{"terms":{"field":"cached","size":1}}}}`, "")
	s := aggsOf(t, m)["s"].(map[string]any)["buckets"].([]any)[0].(map[string]any)
	if s["key"] != 200.0 {
		t.Errorf("long key = %v", s["key"])
	}
	b := aggsOf(t, m)["b"].(map[string]any)["buckets"].([]any)[0].(map[string]any)
	if b["key"] != 0.0 || b["key_as_string"] != "false" {
		t.Errorf("boolean bucket = %v", b)
	}
}

func TestAggDateHistogram(t *testing.T) {
	c := getCorpus(t)
	tg := c.target()
	tests := []struct {
		name, query, body, want string
	}{
		{"fixed 1h fills gaps", `{"term":{"tenant":"shop"}}`, `{"date_histogram":{"field":"@timestamp","fixed_interval":"1h"}}`,
			"2026-11-21T08:00:00.000Z:1 2026-11-21T09:00:00.000Z:0 2026-11-21T10:00:00.000Z:3 2026-11-21T11:00:00.000Z:4"},
		{"fixed 30m min_doc_count 1", `{"term":{"tenant":"shop"}}`, `{"date_histogram":{"field":"@timestamp","fixed_interval":"30m","min_doc_count":1}}`,
			"2026-11-21T08:00:00.000Z:1 2026-11-21T10:00:00.000Z:2 2026-11-21T10:30:00.000Z:1 2026-11-21T11:00:00.000Z:2 2026-11-21T11:30:00.000Z:2"},
		{"calendar day", `{"match_all":{}}`, `{"date_histogram":{"field":"@timestamp","calendar_interval":"day"}}`,
			"2026-11-20T00:00:00.000Z:1 2026-11-21T00:00:00.000Z:10"},
		{"calendar day in a time zone with a format", `{"match_all":{}}`, `{"date_histogram":{"field":"@timestamp","calendar_interval":"1d","time_zone":"+01:00","format":"yyyy-MM-dd"}}`,
			"2026-11-21:11"},
		{"calendar week", `{"match_all":{}}`, `{"date_histogram":{"field":"@timestamp","calendar_interval":"week"}}`,
			"2026-11-16T00:00:00.000Z:11"},
		{"calendar month", `{"match_all":{}}`, `{"date_histogram":{"field":"@timestamp","calendar_interval":"month","format":"yyyy-MM"}}`,
			"2026-11:11"},
		{"calendar minute order desc", `{"term":{"tenant":"billing"}}`, `{"date_histogram":{"field":"@timestamp","calendar_interval":"minute","min_doc_count":1,"order":{"_key":"desc"}}}`,
			"2026-11-21T11:50:00.000Z:1 2026-11-21T11:45:00.000Z:1 2026-11-20T23:59:00.000Z:1"},
		{"extended bounds", `{"term":{"tenant":"billing"}}`, `{"date_histogram":{"field":"@timestamp","fixed_interval":"12h","extended_bounds":{"min":"2026-11-20T00:00:00Z","max":"2026-11-21T23:00:00Z"}}}`,
			"2026-11-20T00:00:00.000Z:0 2026-11-20T12:00:00.000Z:1 2026-11-21T00:00:00.000Z:2 2026-11-21T12:00:00.000Z:0"},
		{"offset", `{"term":{"tenant":"billing"}}`, `{"date_histogram":{"field":"@timestamp","fixed_interval":"1d","offset":"+12h","min_doc_count":1}}`,
			"2026-11-20T12:00:00.000Z:3"},
		{"epoch format", `{"ids":{"values":["d01"]}}`, `{"date_histogram":{"field":"@timestamp","fixed_interval":"1h","format":"epoch_millis"}}`,
			"1795255200000:1"},
		{"no documents", `{"match_none":{}}`, `{"date_histogram":{"field":"@timestamp","fixed_interval":"1h"}}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := doSearch(t, tg, `{"size":0,"query":`+tt.query+`,"aggs":{"h":`+tt.body+`}}`, "")
			if got := bucketSummary(aggsOf(t, m)["h"]); got != tt.want {
				t.Fatalf("buckets\n got %q\nwant %q", got, tt.want)
			}
		})
	}
	// Keys are epoch milliseconds.
	m := doSearch(t, tg, `{"size":0,"query":{"ids":{"values":["d03"]}},"aggs":{"h":{"date_histogram":{"field":"@timestamp","fixed_interval":"1m"}}}}`, "")
	b := aggsOf(t, m)["h"].(map[string]any)["buckets"].([]any)[0].(map[string]any)
	if want := float64(time.Date(2026, 11, 21, 10, 30, 0, 0, time.UTC).UnixMilli()); b["key"] != want {
		t.Errorf("key = %v, want %v", b["key"], want)
	}
	// keyed
	m = doSearch(t, tg, `{"size":0,"query":{"ids":{"values":["d03"]}},"aggs":{"h":{"date_histogram":{"field":"@timestamp","fixed_interval":"1h","keyed":true}}}}`, "")
	if _, ok := aggsOf(t, m)["h"].(map[string]any)["buckets"].(map[string]any)["2026-11-21T10:00:00.000Z"]; !ok {
		t.Errorf("keyed buckets: %v", aggsOf(t, m)["h"])
	}
}

func TestAggNestedAndMetrics(t *testing.T) {
	c := getCorpus(t)
	tg := c.target()
	m := doSearch(t, tg, `{"size":0,"aggs":{
		"hosts":{"terms":{"field":"kubernetes.host"},"aggs":{"levels":{"terms":{"field":"level"}},"slowest":{"max":{"field":"duration"}}}},
		"per_day":{"date_histogram":{"field":"@timestamp","calendar_interval":"day"},"aggs":{"tenants":{"terms":{"field":"tenant"}}}},
		"avg_duration":{"avg":{"field":"duration"}},
		"status":{"stats":{"field":"http.status"}},
		"pods":{"cardinality":{"field":"kubernetes.pod_name"}},
		"first":{"min":{"field":"@timestamp"}},
		"with_status":{"value_count":{"field":"http.status"}},
		"total_duration":{"sum":{"field":"duration"}}}}`, "")
	a := aggsOf(t, m)
	hosts := a["hosts"].(map[string]any)["buckets"].([]any)
	node1 := hosts[0].(map[string]any)
	if node1["key"] != "node-1" || bucketSummary(node1["levels"]) != "info:2 INFO:1 debug:1 error:1 warn:1" {
		t.Errorf("node-1 levels: %v", node1)
	}
	if v := node1["slowest"].(map[string]any)["value"]; v != 30.0 {
		t.Errorf("node-1 slowest = %v", v)
	}
	days := a["per_day"].(map[string]any)["buckets"].([]any)
	if got := bucketSummary(days[1].(map[string]any)["tenants"]); got != "shop:8 billing:2" {
		t.Errorf("day 2 tenants = %q", got)
	}
	avg := a["avg_duration"].(map[string]any)["value"].(float64)
	if want := (0.012 + 1.5 + 0.2 + 0.05 + 0.3 + 30 + 0.004 + 0.01) / 8; avg < want-1e-9 || avg > want+1e-9 {
		t.Errorf("avg = %v, want %v", avg, want)
	}
	wantStats := map[string]any{"count": 8.0, "min": 200.0, "max": 504.0, "avg": 2411.0 / 8, "sum": 2411.0}
	if !reflect.DeepEqual(a["status"], wantStats) {
		t.Errorf("stats = %v, want %v", a["status"], wantStats)
	}
	if v := a["pods"].(map[string]any)["value"]; v != 6.0 {
		t.Errorf("cardinality = %v", v)
	}
	if s := a["first"].(map[string]any)["value_as_string"]; s != "2026-11-20T23:59:59.999Z" {
		t.Errorf("min date = %v", a["first"])
	}
	if v := a["with_status"].(map[string]any)["value"]; v != 8.0 {
		t.Errorf("value_count = %v", v)
	}
	// typed_keys prefixes names with the aggregation type.
	m = doSearch(t, tg, `{"size":0,"aggs":{"t":{"terms":{"field":"tenant"}},"h":{"date_histogram":{"field":"@timestamp","calendar_interval":"day"}}}}`, "typed_keys=true")
	a = aggsOf(t, m)
	if _, ok := a["sterms#t"]; !ok {
		t.Errorf("typed keys: %v", a)
	}
	if _, ok := a["date_histogram#h"]; !ok {
		t.Errorf("typed keys: %v", a)
	}
}

// TestAggAcrossIndices: the per-index trees merge into one answer.
func TestAggAcrossIndices(t *testing.T) {
	c := getCorpus(t)
	m := doSearch(t, c.target("sluice-billing-2026.11.20", "sluice-billing-2026.11.21", "sluice-shop-2026.11.21"), `{"size":0,"aggs":{"t":{"terms":{"field":"kubernetes.namespace_name"}}}}`, "")
	if got := bucketSummary(aggsOf(t, m)["t"]); got != "shop:9 billing:3" {
		t.Errorf("got %q", got)
	}
}

func TestAggErrors(t *testing.T) {
	c := getCorpus(t)
	tg := c.target()
	for _, tt := range []struct{ aggs, typ, reason string }{
		{`{"a":{"terms":{"field":"log"}}}`, "illegal_argument_exception", "Text fields are not optimised"},
		{`{"a":{"terms":{}}}`, "illegal_argument_exception", "Required one of fields [field, script]"},
		{`{"a":{"terms":{"field":"tenant","size":0}}}`, "illegal_argument_exception", "[size] must be greater than 0"},
		{`{"a":{"terms":{"field":"tenant","order":{"avg_x":"desc"}}}}`, "illegal_argument_exception", "ordering by [avg_x] is not supported"},
		{`{"a":{"date_histogram":{"field":"@timestamp"}}}`, "illegal_argument_exception", "Invalid interval specified"},
		{`{"a":{"date_histogram":{"field":"@timestamp","calendar_interval":"2d"}}}`, "illegal_argument_exception", "The supplied interval [2d] could not be parsed as a calendar interval."},
		{`{"a":{"date_histogram":{"field":"@timestamp","fixed_interval":"1M"}}}`, "illegal_argument_exception", "failed to parse setting [date_histogram.fixedInterval] with value [1M]"},
		{`{"a":{"date_histogram":{"field":"@timestamp","interval":"1h"}}}`, "illegal_argument_exception", "[interval] on [date_histogram] is no longer supported"},
		{`{"a":{"date_histogram":{"field":"tenant","fixed_interval":"1h"}}}`, "illegal_argument_exception", "Field [tenant] of type [keyword] is not supported for aggregation [date_histogram]"},
		{`{"a":{"avg":{"field":"duration"},"aggs":{"b":{"max":{"field":"duration"}}}}}`, "illegal_argument_exception", "cannot accept sub-aggregations"},
		{`{"a":{"terms":{"field":"tenant"},"max":{"field":"duration"}}}`, "parsing_exception", "Found two aggregation type definitions in [a]"},
		{`{"a":{"top_hits":{"size":1}}}`, "illegal_argument_exception", "aggregation [a] of type [top_hits] is not supported"},
		{`{"a":{"date_histogram":{"field":"@timestamp","fixed_interval":"1ms","extended_bounds":{"min":"2026-01-01","max":"2026-12-31"}}}}`, "too_many_buckets_exception", "Trying to create too many buckets"},
		{`{"a":{"terms":{"field":"tenant","bogus":1}}}`, "parsing_exception", "[terms] unknown field [bogus]"},
	} {
		e := searchErr(t, tg, `{"size":0,"aggs":`+tt.aggs+`}`, "")
		if e.Status != 400 || e.Type != tt.typ || !strings.Contains(e.Reason, tt.reason) {
			t.Errorf("%s:\n got %d %s %q\nwant 400 %s %q", tt.aggs, e.Status, e.Type, e.Reason, tt.typ, tt.reason)
		}
	}
}
