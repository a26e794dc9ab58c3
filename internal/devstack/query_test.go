package devstack

import (
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestQueryDSL runs each query over the whole test corpus and checks the ids that match.
func TestQueryDSL(t *testing.T) {
	c := getCorpus(t)
	tg := c.target()
	at11 := strconv.FormatInt(time.Date(2026, 11, 21, 11, 0, 0, 0, time.UTC).UnixMilli(), 10)
	tests := []struct {
		name  string
		query string
		want  string // space-separated ids, any order
	}{
		{"match_all", `{"match_all":{}}`, "d01 d02 d03 d04 d05 d06 d07 d08 d09 d10 d11 d12"},
		{"empty object", `{}`, "d01 d02 d03 d04 d05 d06 d07 d08 d09 d10 d11 d12"},
		{"match_none", `{"match_none":{}}`, ""},

		{"term keyword", `{"term":{"tenant":"billing"}}`, "d06 d07 d08"},
		{"term keyword is one token", `{"term":{"kubernetes.pod_name":"cart-7d9f8b-x2x9z"}}`, "d01 d02 d09 d12"},
		{"term keyword part", `{"term":{"kubernetes.pod_name":"cart"}}`, ""},
		{"term keyword case sensitive", `{"term":{"level":"info"}}`, "d01 d03 d04 d06 d08 d11"},
		{"term case_insensitive", `{"term":{"level":{"value":"info","case_insensitive":true}}}`, "d01 d03 d04 d06 d08 d11 d12"},
		{"term on text matches a token", `{"term":{"log":"cart"}}`, "d01 d10 d12"},
		{"term on text is not analysed", `{"term":{"log":"GET"}}`, ""},
		{"term long", `{"term":{"http.status":200}}`, "d01 d03 d06 d12"},
		{"term long from string", `{"term":{"http.status":{"value":"200","boost":2}}}`, "d01 d03 d06 d12"},
		{"term dotted key document", `{"term":{"http.status":201}}`, "d04"},
		{"term boolean", `{"term":{"cached":true}}`, "d03 d10"},
		{"term boolean false (string coerced at index time)", `{"term":{"cached":"false"}}`, "d01 d02 d04 d12"},
		{"term date", `{"term":{"@timestamp":"2026-11-21T10:30:00.500Z"}}`, "d03"},
		{"term date with offset", `{"term":{"@timestamp":"2026-11-21T09:00:00+01:00"}}`, "d10"},
		{"term array value", `{"term":{"tags":"cart"}}`, "d01"},
		{"term unmapped field", `{"term":{"nope":"x"}}`, ""},
		{"term over ignore_above", `{"term":{"msg":"this message is longer than sixteen characters"}}`, ""},

		{"terms", `{"terms":{"http.status":[404,504]}}`, "d07 d10"},
		{"terms keyword", `{"terms":{"kubernetes.host":["node-3","node-9"]}}`, "d08 d10"},

		{"match text", `{"match":{"log":"Cart"}}`, "d01 d10 d12"},
		{"match text or", `{"match":{"log":"cart timeout"}}`, "d01 d07 d10 d12"},
		{"match text and", `{"match":{"log":{"query":"get cart","operator":"and"}}}`, "d01 d10 d12"},
		{"match minimum_should_match", `{"match":{"log":{"query":"get cart 200","minimum_should_match":"3"}}}`, "d01 d12"},
		{"match keyword exact", `{"match":{"kubernetes.pod_name":"cart-7d9f8b-x2x9z"}}`, "d01 d02 d09 d12"},
		{"match keyword not analysed", `{"match":{"kubernetes.pod_name":"cart"}}`, ""},
		{"match long", `{"match":{"http.status":"404"}}`, "d10"},
		{"match no terms", `{"match":{"log":"!!!"}}`, ""},
		{"match zero_terms_query all", `{"match":{"log":{"query":"!!!","zero_terms_query":"all"}}}`, "d01 d02 d03 d04 d05 d06 d07 d08 d09 d10 d11 d12"},
		{"match email analysed", `{"match":{"log":"user@example.com"}}`, "d04 d11"},

		{"match_phrase", `{"match_phrase":{"log":"new york city"}}`, "d09"},
		{"match_phrase wrong order", `{"match_phrase":{"log":"york new"}}`, ""},
		{"match_phrase punctuation", `{"match_phrase":{"log":"GET /cart 200"}}`, "d01 d12"},
		{"match_phrase object form", `{"match_phrase":{"log":{"query":"user@example.com"}}}`, "d11"},
		{"match_phrase keyword", `{"match_phrase":{"kubernetes.host":"node-3"}}`, "d08 d10"},

		{"multi_match", `{"multi_match":{"query":"cart","fields":["log","kubernetes.labels.app"]}}`, "d01 d02 d09 d10 d12"},
		{"multi_match wildcard fields", `{"multi_match":{"query":"billing","fields":["kubernetes.*"]}}`, "d06 d07 d08"},
		{"multi_match phrase", `{"multi_match":{"query":"big apple","type":"phrase","fields":["log^2","msg"]}}`, "d09"},

		{"range long", `{"range":{"http.status":{"gte":400,"lt":504}}}`, "d02 d10"},
		{"range double", `{"range":{"duration":{"gt":0.2}}}`, "d02 d06 d07"},
		{"range now-1h", `{"range":{"@timestamp":{"gte":"now-1h"}}}`, "d04 d05 d06 d07 d09 d12"},
		{"range now/d", `{"range":{"@timestamp":{"gte":"now/d"}}}`, "d01 d02 d03 d04 d05 d06 d07 d09 d10 d12"},
		{"range lt now/d", `{"range":{"@timestamp":{"lt":"now/d"}}}`, "d08"},
		{"range lte rounds up", `{"range":{"@timestamp":{"lte":"2026-11-20||/d"}}}`, "d08"},
		{"range gt rounds up", `{"range":{"@timestamp":{"gt":"2026-11-20||/d"}}}`, "d01 d02 d03 d04 d05 d06 d07 d09 d10 d12"},
		{"range anchored math", `{"range":{"@timestamp":{"gte":"2026-11-21||+10h","lt":"2026-11-21T10:30:00.500Z"}}}`, "d01 d02"},
		{"range format", `{"range":{"@timestamp":{"gte":"21/11/2026 11:00","format":"dd/MM/yyyy HH:mm"}}}`, "d04 d05 d06 d07 d09 d12"},
		{"range time_zone", `{"range":{"@timestamp":{"gte":"2026-11-21T12:00:00","time_zone":"+01:00"}}}`, "d04 d05 d06 d07 d09 d12"},
		{"range epoch millis", `{"range":{"@timestamp":{"gte":` + at11 + `}}}`, "d04 d05 d06 d07 d09 d12"},
		{"range keyword", `{"range":{"kubernetes.pod_name":{"gte":"billing","lt":"c"}}}`, "d06 d07 d08"},
		{"range legacy from/to", `{"range":{"http.status":{"from":404,"to":502,"include_upper":false}}}`, "d10"},

		{"bool must filter", `{"bool":{"must":{"term":{"tenant":"shop"}},"filter":[{"range":{"http.status":{"gte":400}}}]}}`, "d02 d10"},
		{"bool must_not", `{"bool":{"must_not":{"term":{"level":"info"}}}}`, "d02 d05 d07 d09 d10 d12"},
		{"bool should", `{"bool":{"should":[{"term":{"level":"error"}},{"term":{"level":"warn"}}]}}`, "d02 d05 d07 d10"},
		{"bool minimum_should_match", `{"bool":{"should":[{"term":{"tenant":"shop"}},{"term":{"level":"error"}},{"term":{"stream":"stderr"}}],"minimum_should_match":2}}`, "d02 d05"},
		{"bool minimum_should_match percent", `{"bool":{"should":[{"term":{"tenant":"shop"}},{"term":{"level":"error"}},{"term":{"stream":"stderr"}}],"minimum_should_match":"100%"}}`, "d02 d05"},
		{"bool filter with optional should", `{"bool":{"filter":{"term":{"tenant":"billing"}},"should":{"term":{"level":"warn"}}}}`, "d06 d07 d08"},
		{"bool nested", `{"bool":{"must":[{"bool":{"should":[{"term":{"kubernetes.host":"node-1"}},{"term":{"kubernetes.host":"node-3"}}]}}],"must_not":[{"exists":{"field":"http"}}]}}`, "d08 d09"},
		{"bool empty", `{"bool":{}}`, "d01 d02 d03 d04 d05 d06 d07 d08 d09 d10 d11 d12"},

		{"exists leaf", `{"exists":{"field":"msg"}}`, "d01"},
		{"exists object", `{"exists":{"field":"http"}}`, "d01 d02 d03 d04 d06 d07 d10 d12"},
		{"exists null value", `{"exists":{"field":"user"}}`, ""},
		{"exists pattern", `{"exists":{"field":"dur*"}}`, "d01 d02 d03 d04 d06 d07 d10 d12"},
		{"exists no timestamp", `{"bool":{"must_not":{"exists":{"field":"@timestamp"}}}}`, "d11"},

		{"ids", `{"ids":{"values":["d03","d99"]}}`, "d03"},
		{"prefix", `{"prefix":{"kubernetes.pod_name":"billing"}}`, "d06 d07 d08"},
		{"prefix object form", `{"prefix":{"kubernetes.pod_name":{"value":"checkout-"}}}`, "d03 d05"},
		{"wildcard", `{"wildcard":{"kubernetes.pod_name":"cart-*-ab12?"}}`, "d10"},
		{"wildcard object form", `{"wildcard":{"kubernetes.pod_name":{"value":"BILLING-*","case_insensitive":true}}}`, "d06 d07 d08"},
		{"regexp", `{"regexp":{"kubernetes.host":"node-[13]"}}`, "d01 d02 d06 d07 d08 d09 d10 d12"},
		{"constant_score", `{"constant_score":{"filter":{"term":{"stream":"stderr"}},"boost":1.2}}`, "d02 d05 d07"},
		{"query_string", `{"query_string":{"query":"kubernetes.pod_name:billing-0"}}`, "d06 d07"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := doSearch(t, tg, `{"size":100,"query":`+tt.query+`}`, "")
			got := strings.Join(sortedIDs(m), " ")
			if got != tt.want {
				t.Fatalf("query %s\n got %q\nwant %q", tt.query, got, tt.want)
			}
		})
	}
}

func TestQueryScoring(t *testing.T) {
	c := getCorpus(t)
	tg := c.target()
	// An optional should clause raises the score of the documents it matches.
	m := doSearch(t, tg, `{"query":{"bool":{"must":{"term":{"tenant":"billing"}},"should":{"term":{"level":"warn"}}}}}`, "")
	if ids := hitIDs(m); ids[0] != "d07" {
		t.Errorf("should did not rank d07 first: %v", ids)
	}
	// constant_score gives its boost.
	m = doSearch(t, tg, `{"query":{"constant_score":{"filter":{"term":{"stream":"stderr"}},"boost":1.5}}}`, "")
	for _, h := range hits(m) {
		if h["_score"] != 1.5 {
			t.Errorf("constant_score _score = %v", h["_score"])
		}
	}
	// A boost on one clause reorders hits.
	m = doSearch(t, tg, `{"query":{"bool":{"should":[{"term":{"level":{"value":"warn","boost":10}}},{"term":{"level":"error"}}]}}}`, "")
	ids := hitIDs(m)
	sort.Strings(ids[:2])
	if !reflect.DeepEqual(ids[:2], []string{"d07", "d10"}) {
		t.Errorf("boosted clause not first: %v", ids)
	}
}

func TestQueryErrors(t *testing.T) {
	c := getCorpus(t)
	tg := c.target()
	tests := []struct{ query, typ, reason string }{
		{`{"nope":{}}`, "parsing_exception", "unknown query [nope]"},
		{`{"more_like_this":{}}`, "parsing_exception", "query [more_like_this] is not supported"},
		{`[]`, "parsing_exception", "query malformed, must start with start_object"},
		{`{"term":"x"}`, "parsing_exception", "[term] query malformed, no start_object after query name"},
		{`{"term":{"a":1,"b":2}}`, "parsing_exception", "[term] query doesn't support multiple fields, found [a] and [b]"},
		{`{"term":{"tenant":{"value":"x","bogus":1}}}`, "parsing_exception", "[term] query does not support [bogus]"},
		{`{"match":{"log":{"operator":"xor","query":"a"}}}`, "illegal_argument_exception", "No enum constant for operator [xor]"},
		{`{"range":{"http.status":{"gte":"many"}}}`, "query_shard_exception", `failed to create query: For input string: "many"`},
		{`{"range":{"@timestamp":{"gte":"now-1x"}}}`, "parse_exception", "failed to parse date field [now-1x]"},
		{`{"range":{"@timestamp":{"gte":"now","time_zone":"Mars/Base"}}}`, "illegal_argument_exception", "Unknown time-zone ID: Mars/Base"},
		{`{"term":{"cached":"maybe"}}`, "query_shard_exception", "Can't parse boolean value [maybe]"},
		{`{"prefix":{"http.status":"2"}}`, "query_shard_exception", "Can only use prefix queries on keyword and text fields"},
		{`{"regexp":{"tenant":"(["}}`, "query_shard_exception", "invalid regular expression"},
		{`{"bool":{"must":"x"}}`, "parsing_exception", "[bool] query does not support [x]"},
		{`{"exists":{}}`, "parsing_exception", "[exists] must be provided with a [field]"},
		{`{"constant_score":{}}`, "parsing_exception", "[constant_score] requires a 'filter' element"},
		{`{"terms":{"tenant":{"index":"x","id":"1","path":"p"}}}`, "parsing_exception", "terms lookup"},
		{`{"match":{"log":{"query":"a","fuzziness":"AUTO"}}}`, "parsing_exception", "[match] option [fuzziness] is not supported"},
	}
	for _, tt := range tests {
		e := searchErr(t, tg, `{"query":`+tt.query+`}`, "")
		if e.Status != 400 || e.Type != tt.typ || !strings.Contains(e.Reason, tt.reason) {
			t.Errorf("%s:\n got %d %s %q\nwant 400 %s %q", tt.query, e.Status, e.Type, e.Reason, tt.typ, tt.reason)
		}
	}
}

func TestEvalDateMath(t *testing.T) {
	now := time.Date(2026, 11, 21, 10, 42, 13, 123e6, time.UTC) // a Saturday
	ms := func(s string) time.Time {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			panic(err)
		}
		return t
	}
	tests := []struct {
		expr, format, tz string
		roundUp          bool
		want             string
	}{
		{"now", "", "", false, "2026-11-21T10:42:13.123Z"},
		{"now-1h", "", "", false, "2026-11-21T09:42:13.123Z"},
		{"now+90m", "", "", false, "2026-11-21T12:12:13.123Z"},
		{"now/d", "", "", false, "2026-11-21T00:00:00Z"},
		{"now/d", "", "", true, "2026-11-21T23:59:59.999Z"},
		{"now-1d/d", "", "", false, "2026-11-20T00:00:00Z"},
		{"now/w", "", "", false, "2026-11-16T00:00:00Z"},
		{"now/M", "", "", false, "2026-11-01T00:00:00Z"},
		{"now/y", "", "", true, "2026-12-31T23:59:59.999Z"},
		{"now/h", "", "", false, "2026-11-21T10:00:00Z"},
		{"now-2M/M", "", "", false, "2026-09-01T00:00:00Z"},
		{"now-1y", "", "", false, "2025-11-21T10:42:13.123Z"},
		{"now/d", "", "+02:00", false, "2026-11-20T22:00:00Z"},
		{"2026-11-21||+1d", "", "", false, "2026-11-22T00:00:00Z"},
		{"2026-11-21T10:00:00Z||/h", "", "", true, "2026-11-21T10:59:59.999Z"},
		{"2026-11-21", "", "", false, "2026-11-21T00:00:00Z"},
		{"2026-11-21T10:00", "", "", false, "2026-11-21T10:00:00Z"},
		{"2026-11-21T10:00:00.123456789+05:30", "", "", false, "2026-11-21T04:30:00.123456789Z"},
		{"2026-11-21T10:00:00", "", "-01:00", false, "2026-11-21T11:00:00Z"},
		{"1795255200000", "", "", false, "2026-11-21T10:00:00Z"},
		{"1795255200", "epoch_second", "", false, "2026-11-21T10:00:00Z"},
		{"21/11/2026", "dd/MM/yyyy", "", false, "2026-11-21T00:00:00Z"},
		{"21/11/2026", "dd/MM/yyyy", "", true, "2026-11-21T23:59:59.999Z"},
		{"2026-11-21 10:00:00", "yyyy-MM-dd HH:mm:ss||epoch_millis", "", false, "2026-11-21T10:00:00Z"},
	}
	for _, tt := range tests {
		var loc *time.Location
		if tt.tz != "" {
			var err *searchError
			if loc, err = parseTimeZone(tt.tz); err != nil {
				t.Fatal(err)
			}
		}
		got, err := evalDateMath(tt.expr, tt.format, now, loc, tt.roundUp)
		if err != nil {
			t.Errorf("%s: %v", tt.expr, err)
			continue
		}
		if want := ms(tt.want); !got.Equal(want) {
			t.Errorf("%s (format %q tz %q up %v) = %s, want %s", tt.expr, tt.format, tt.tz, tt.roundUp, got.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
		}
	}
	for _, bad := range []string{"now-", "now-1q", "now/x", "now*2", "yesterday", "2026-13-01", "2026-11-21||+1", ""} {
		if _, err := evalDateMath(bad, "", now, nil, false); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

func TestGlobMatch(t *testing.T) {
	for _, tt := range []struct {
		pattern, name string
		want          bool
	}{
		{"*", "anything.at.all", true},
		{"kubernetes.*", "kubernetes.pod_name", true},
		{"kubernetes.*", "kubernetes", false},
		{"*.host", "kubernetes.host", true},
		{"k?bernetes.h*t", "kubernetes.host", true},
		{"a*b*c", "abxbc", true},
		{"a*b*c", "abxbd", false},
		{"", "", true},
	} {
		if got := globMatch(tt.pattern, tt.name); got != tt.want {
			t.Errorf("globMatch(%q, %q) = %v", tt.pattern, tt.name, got)
		}
	}
}
