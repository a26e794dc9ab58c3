package devstack

import (
	"context"
	"net/url"
	"strings"
	"testing"
)

// TestQueryString checks Lucene query string syntax cases against the test corpus.
func TestQueryString(t *testing.T) {
	c := getCorpus(t)
	tg := c.target()
	all := "d01 d02 d03 d04 d05 d06 d07 d08 d09 d10 d11 d12"
	tests := []struct {
		query string
		opts  string // extra query_string options, JSON
		want  string
	}{
		// Fields and exact keywords.
		{`kubernetes.pod_name:cart-7d9f8b-x2x9z`, ``, "d01 d02 d09 d12"},
		{`kubernetes.pod_name:"cart-7d9f8b-x2x9z"`, ``, "d01 d02 d09 d12"},
		{`kubernetes.pod_name: cart-7d9f8b-x2x9z`, ``, "d01 d02 d09 d12"},
		{`kubernetes.labels.app:billing\-cron`, ``, "d08"},
		{`sluice.source.path:"/var/log/containers/cart-7d9f8b-x2x9z_shop_cart-3b2a.log"`, ``, "d01"},
		{`sluice.source.path:\/var\/log\/containers\/cart*`, ``, "d01"},
		{`kubernetes.*:cart`, ``, "d01 d02 d09 d10 d12"},
		{`cached:true`, ``, "d03 d10"},
		{`http.status:200`, ``, "d01 d03 d06 d12"},
		{`http.status:abc`, ``, ""},
		{`@timestamp:"2026-11-21T10:30:00.500Z"`, ``, "d03"},

		// Boolean operators and default_operator.
		{`tenant:billing AND level:warn`, ``, "d07"},
		{`tenant:billing && level:warn`, ``, "d07"},
		{`tenant:billing level:warn`, ``, "d06 d07 d08 d10"},
		{`tenant:billing level:warn`, `"default_operator":"AND"`, "d07"},
		{`tenant:billing OR level:error`, ``, "d02 d05 d06 d07 d08"},
		{`tenant:billing || level:error`, ``, "d02 d05 d06 d07 d08"},
		{`tenant:billing -level:info`, ``, "d07"},
		{`+tenant:shop -stream:stdout`, ``, "d02 d05"},
		{`+tenant:shop level:error`, ``, "d01 d02 d03 d04 d05 d09 d10 d11 d12"},
		{`NOT tenant:shop`, ``, "d06 d07 d08"},
		{`tenant:shop AND NOT level:info`, ``, "d02 d05 d09 d10 d12"},
		{`!level:info AND tenant:shop`, ``, "d02 d05 d09 d10 d12"},
		{`(level:error OR level:warn) AND tenant:shop`, ``, "d02 d05 d10"},
		{`level:(error OR warn)`, ``, "d02 d05 d07 d10"},
		{`level:(error warn)`, ``, "d02 d05 d07 d10"},
		{`level:info AND NOT (tenant:billing OR stream:stderr)`, ``, "d01 d03 d04 d11"},
		{`tenant:billing and`, ``, "d06 d07 d08"},
		{`tenant:shop AND level:info^2`, ``, "d01 d03 d04 d11"},

		// Ranges and comparisons.
		{`http.status:[400 TO 504]`, ``, "d02 d07 d10"},
		{`http.status:[400 TO 504}`, ``, "d02 d10"},
		{`http.status:{404 TO *]`, ``, "d02 d07"},
		{`http.status:>=500`, ``, "d02 d07"},
		{`http.status:<201`, ``, "d01 d03 d06 d12"},
		{`duration:>1`, ``, "d02 d07"},
		{`duration:<=0.01`, ``, "d10 d12"},
		{`@timestamp:>now-1h`, ``, "d05 d06 d07 d09 d12"},
		{`@timestamp:>=now-1h`, ``, "d04 d05 d06 d07 d09 d12"},
		{`@timestamp:[now/d TO *]`, ``, "d01 d02 d03 d04 d05 d06 d07 d09 d10 d12"},
		{`@timestamp:["2026-11-21T10:00:00Z" TO "2026-11-21T10:30:00Z"]`, ``, "d01 d02"},
		{`@timestamp:[2026-11-20 TO 2026-11-21}`, ``, "d08"},
		{`kubernetes.pod_name:[billing TO c}`, ``, "d06 d07 d08"},

		// Wildcards, regexps, fuzzy, phrases.
		{`kubernetes.pod_name:cart*`, ``, "d01 d02 d09 d10 d12"},
		{`kubernetes.pod_name:*-abcde`, ``, "d03 d05"},
		{`kubernetes.pod_name:billing-?`, ``, "d06 d07"},
		{`log:tim*`, ``, "d07"},
		{`log:Tim*`, ``, "d07"},
		{`log:/tim.*/`, ``, "d07"},
		{`kubernetes.host:/node-[13]/`, ``, "d01 d02 d06 d07 d08 d09 d10 d12"},
		{`log:tmeout~1`, ``, "d07"},
		{`log:"new york city"`, ``, "d09"},
		{`log:"york new"`, ``, ""},
		{`log:"new york"~2`, ``, "d09"},
		{`"user@example.com"`, ``, "d11"},

		// Default fields.
		{`cart`, ``, "d01 d02 d09 d10 d12"},
		{`timeout`, ``, "d07"},
		{`200`, ``, "d01 d03 d06 d12"},
		{`user@example.com`, ``, "d04 d11"},
		{`Cart`, `"default_field":"log"`, "d01 d10 d12"},
		{`cart billing`, `"fields":["kubernetes.labels.app","tenant"]`, "d01 d02 d06 d07 d08 d09 d10 d12"},
		{`node-3`, `"fields":["kubernetes.h*"]`, "d08 d10"},

		// Existence and match-all forms.
		{`_exists_:msg`, ``, "d01"},
		{`msg:*`, ``, "d01"},
		{`http:*`, ``, "d01 d02 d03 d04 d06 d07 d10 d12"},
		{`*`, ``, all},
		{`*:*`, ``, all},
		{`_id:d05`, ``, "d05"},
		{``, ``, ""},
	}
	for _, tt := range tests {
		q := `{"query_string":{"query":` + jsonString(tt.query)
		if tt.opts != "" {
			q += "," + tt.opts
		}
		q += "}}"
		m := doSearch(t, tg, `{"size":100,"query":`+q+`}`, "")
		if got := strings.Join(sortedIDs(m), " "); got != tt.want {
			t.Errorf("query_string %s %s\n got %q\nwant %q", tt.query, tt.opts, got, tt.want)
		}
	}
}

func jsonString(s string) string {
	b, _ := jsonMarshal(s)
	return string(b)
}

// TestQueryStringURL: the q= parameter of _search.
func TestQueryStringURL(t *testing.T) {
	c := getCorpus(t)
	tg := c.target()
	for _, tt := range []struct{ params, want string }{
		{"q=kubernetes.pod_name:billing-0", "d06 d07"},
		{"q=refused", "d02"},
		{"q=billing+warn&default_operator=AND", "d07"},
		{"q=cart&df=log", "d01 d10 d12"},
	} {
		m := doSearch(t, tg, ``, tt.params+"&size=100")
		if got := strings.Join(sortedIDs(m), " "); got != tt.want {
			t.Errorf("?%s: got %q, want %q", tt.params, got, tt.want)
		}
	}
}

func TestQueryStringErrors(t *testing.T) {
	c := getCorpus(t)
	tg := c.target()
	for _, q := range []string{
		`tenant:(shop`, `AND`, `tenant:`, `"unterminated`, `http.status:[400 TO`, `http.status:[400 500]`,
		`a ]`, `/unterminated`, `tenant:shop OR`, `()`,
	} {
		e := searchErr(t, tg, `{"query":{"query_string":{"query":`+jsonString(q)+`}}}`, "")
		if e.Status != 400 || e.Type != "query_shard_exception" || !strings.Contains(e.Reason, "Failed to parse query ["+q+"]") {
			t.Errorf("%q: got %+v", q, e)
		}
	}
	// An explicit non-lenient numeric field with a non-number is an error, as in Elasticsearch.
	e := searchErr(t, tg, `{"query":{"query_string":{"query":"abc","default_field":"http.status"}}}`, "")
	if e.Type != "query_shard_exception" || !strings.Contains(e.Reason, `For input string: "abc"`) {
		t.Errorf("got %+v", e)
	}
	if _, serr := executeSearch(context.Background(), tg, []byte(`{"query":{"query_string":{"query":"abc","default_field":"http.status","lenient":true}}}`), url.Values{}, testNow); serr != nil {
		t.Errorf("lenient: %v", serr)
	}
}

func TestLexQueryString(t *testing.T) {
	for _, tt := range []struct {
		in, skeleton string
		and          bool
	}{
		{`a b`, `qza OR qzb`, false},
		{`a b`, `qza AND qzb`, true},
		{`f:a`, `qza : qzb`, false},
		{`f:(a b)`, `qza : ( qzb OR qzc )`, false},
		{`+a -b`, `+ qza OR - qzb`, false},
		{`a AND NOT b`, `qza AND NOT qzb`, false},
		{`a NOT b`, `qza OR NOT qzb`, false},
		{`f:[a TO b}`, `qza : [ qzb TO qzc ]`, false},
		{`f:>=10`, `qza : >= qzb`, false},
		{`a^2 "b c"~3`, `qza ^2 OR qzb`, false},
		{`a~ b`, `qza ~ OR qzb`, false},
		{`@timestamp:>now-1h`, `qza : > qzb`, false},
		{`and or not`, `qza OR qzb OR qzc`, false},
	} {
		l, err := lexQueryString(tt.in, tt.and)
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if got := strings.Join(strings.Fields(l.skeleton), " "); got != strings.Join(strings.Fields(tt.skeleton), " ") {
			t.Errorf("%q: skeleton %q, want %q", tt.in, got, tt.skeleton)
		}
	}
	l, _ := lexQueryString(`f\:x:"a \"b\""`, false)
	if l.tokens[0].text != "f:x" || l.tokens[1].text != `a "b"` || l.tokens[1].kind != qsPhrase {
		t.Errorf("escapes: %+v", l.tokens)
	}
	for i := 0; i < 1000; i++ {
		if j, ok := placeholderIndex(placeholder(i)); !ok || j != i {
			t.Fatalf("placeholder %d round trip: %d %v", i, j, ok)
		}
	}
}

// FuzzQueryString: the query string lexer, parser and translator never panic, and they answer
// either a query or a 400 error.
func FuzzQueryString(f *testing.F) {
	for _, s := range []string{
		`kubernetes.pod_name:cart-7d9f8b-x2x9z`, `a AND (b OR NOT c)`, `+a -b c^2 d~1 "e f"~3`,
		`http.status:[400 TO 504}`, `@timestamp:>=now-1h/h`, `log:/ti.*t/`, `*`, `*:*`, `_exists_:x`,
		`f:(a b)`, `a && b || !c`, `k\:x:"y \"z\""`, `NOT NOT a`, `((a)`, `a:b:c`, `[* TO *]`,
		`f:>`, `~`, `^`, `\`, `"`, `/`, `f:{a TO b]^3`, `a) (b`, "\x00", `user@example.com`,
	} {
		f.Add(s, false)
	}
	c := getCorpus(f)
	comp := &queryCompiler{field: c.field, fields: c.leaves, now: testNow}
	f.Fuzz(func(t *testing.T, q string, and bool) {
		bq, err := comp.queryString(q, qsOptions{fields: []string{"*"}, defaultAnd: and, lenient: true})
		if err != nil {
			if err.Status != 400 {
				t.Fatalf("%q: status %d", q, err.Status)
			}
			return
		}
		if bq == nil {
			t.Fatalf("%q: nil query without error", q)
		}
	})
}
