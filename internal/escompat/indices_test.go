package escompat_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluicelogs/sluice/internal/escompat"
)

func TestResolveIndices(t *testing.T) {
	indices := map[string]bool{"logs-a": true, "logs-b": true, "logs-old": true, "metrics": true}
	all := escompat.IndicesOptions{AllowNoIndices: true}
	cases := []struct {
		expr    string
		opts    escompat.IndicesOptions
		want    []string
		errType string
		errOn   string
	}{
		{expr: "logs-a", opts: all, want: []string{"logs-a"}},
		{expr: "logs-*", opts: all, want: []string{"logs-a", "logs-b", "logs-old"}},
		{expr: "logs-*,-logs-old", opts: all, want: []string{"logs-a", "logs-b"}},
		{expr: "metrics,logs-b,metrics", opts: all, want: []string{"logs-b", "metrics"}},
		{expr: "_all", opts: all, want: []string{"logs-a", "logs-b", "logs-old", "metrics"}},
		{expr: "", opts: all, want: []string{"logs-a", "logs-b", "logs-old", "metrics"}},
		{expr: "*", opts: all, want: []string{"logs-a", "logs-b", "logs-old", "metrics"}},
		{expr: "nope-*", opts: all, want: []string{}},
		{expr: "nope-*", errType: "index_not_found_exception", errOn: "nope-*"},
		{expr: "logs-a,nope", opts: all, errType: "index_not_found_exception", errOn: "nope"},
		{expr: "logs-a,nope", opts: escompat.IndicesOptions{IgnoreUnavailable: true, AllowNoIndices: true}, want: []string{"logs-a"}},
		{expr: "nope", opts: escompat.IndicesOptions{IgnoreUnavailable: true}, errType: "index_not_found_exception", errOn: "nope"},
		{expr: "nope", opts: escompat.IndicesOptions{IgnoreUnavailable: true, AllowNoIndices: true}, want: []string{}},
	}
	for _, tc := range cases {
		got, err := escompat.ResolveIndices(tc.expr, indices, tc.opts)
		if tc.errType != "" {
			if err == nil || err.Type != tc.errType || err.Index != tc.errOn || err.Status != http.StatusNotFound {
				t.Errorf("%q %+v: got %v, %v; want %s on %s", tc.expr, tc.opts, got, err, tc.errType, tc.errOn)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q %+v: got %v, %v; want %v", tc.expr, tc.opts, got, err, tc.want)
		}
	}
}

func TestValidateIndexName(t *testing.T) {
	for name, reason := range map[string]string{
		"logs-2024.05.01":        "",
		"Logs":                   "must be lowercase",
		"_hidden":                "must not start with '_', '-', or '+'",
		"a/b":                    `must not contain the following characters [ , ", *, \, <, |, ,, >, /, ?]`,
		"a:b":                    "must not contain ':'",
		"..":                     "must not be '.' or '..'",
		strings.Repeat("a", 256): "index name is too long, (256 > 255)",
	} {
		err := escompat.ValidateIndexName(name)
		switch {
		case reason == "" && err != nil:
			t.Errorf("%q: %v", name, err)
		case reason != "" && (err == nil || err.Reason != "Invalid index name ["+name+"], "+reason):
			t.Errorf("%q: got %v, want reason %q", name, err, reason)
		}
	}
}

func TestParseCreateIndexAndSettings(t *testing.T) {
	s, m, err := escompat.ParseCreateIndex([]byte(`{"settings":{"index":{"number_of_shards":1}},"mappings":{"properties":{"a":{"type":"keyword"}}},"aliases":{}}`))
	if err != nil || string(s) != `{"index":{"number_of_shards":1}}` || string(m) != `{"properties":{"a":{"type":"keyword"}}}` {
		t.Errorf("got %s %s %v", s, m, err)
	}
	if s, m, err := escompat.ParseCreateIndex([]byte("  ")); s != nil || m != nil || err != nil {
		t.Errorf("empty body: %s %s %v", s, m, err)
	}
	if _, _, err := escompat.ParseCreateIndex([]byte(`{"mapping":{}}`)); err == nil || err.Reason != "unknown key [mapping] for create index" {
		t.Errorf("unknown key: %v", err)
	}
	if _, _, err := escompat.ParseCreateIndex([]byte(`{"settings":`)); err == nil || err.Type != "x_content_parse_exception" {
		t.Errorf("truncated: %v", err)
	}
	merged := escompat.MergeSettings(json.RawMessage(`{"index":{"mapping.total_fields.limit":5,"number_of_shards":2}}`),
		json.RawMessage(`{"number_of_shards":"3"}`))
	if string(merged) != `{"index.mapping.total_fields.limit":"5","index.number_of_shards":"3"}` {
		t.Errorf("merged settings %s", merged)
	}
	if got := escompat.FlattenSettings(merged); !reflect.DeepEqual(got, map[string]string{"mapping.total_fields.limit": "5", "number_of_shards": "3"}) {
		t.Errorf("flattened %v", got)
	}
}

func TestTemplateOverlap(t *testing.T) {
	parse := func(name, body string) *escompat.IndexTemplate {
		t.Helper()
		tp, err := escompat.ParseIndexTemplate(name, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		return tp
	}
	a := parse("a", `{"index_patterns":["logs-*"],"priority":10}`)
	b := parse("b", `{"index_patterns":["logs-shop-*"],"priority":10}`)
	c := parse("c", `{"index_patterns":["logs-shop-*"],"priority":20}`)
	if err := b.CheckOverlap([]*escompat.IndexTemplate{a}); err == nil || err.Type != "illegal_argument_exception" {
		t.Errorf("overlap not refused: %v", err)
	}
	if err := c.CheckOverlap([]*escompat.IndexTemplate{a}); err != nil {
		t.Errorf("different priorities refused: %v", err)
	}
	if err := a.CheckOverlap([]*escompat.IndexTemplate{a}); err != nil {
		t.Errorf("replacing itself refused: %v", err)
	}
	all := []*escompat.IndexTemplate{c, a}
	if got := escompat.SelectTemplate(all, "logs-shop-1"); got != c {
		t.Errorf("selected %v, want c", got.Name)
	}
	if got := escompat.MatchTemplates(all, "a,x*"); len(got) != 1 || got[0] != a {
		t.Errorf("matched %v", got)
	}
	body := escompat.Encode(escompat.TemplatesResponse([]*escompat.IndexTemplate{a}), nil)
	if string(body) != `{"index_templates":[{"name":"a","index_template":{"index_patterns":["logs-*"],"priority":10,"composed_of":[]}}]}` {
		t.Errorf("templates response %s", body)
	}
}

func TestFieldInfos(t *testing.T) {
	m, err := escompat.NewMapping(nil, json.RawMessage(`{"properties":{
		"msg":{"type":"keyword","ignore_above":256,"fields":{"text":{"type":"text"}}},
		"at":{"type":"date","format":"epoch_second"},
		"raw":{"type":"object","enabled":false},
		"hidden":{"type":"long","index":false}}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]escompat.FieldInfo{
		"msg":      {Type: "keyword", IgnoreAbove: 256, Index: true, Enabled: true},
		"msg.text": {Type: "text", Index: true, Enabled: true, MultiOf: "msg"},
		"at":       {Type: "date", Format: "epoch_second", Index: true, Enabled: true},
		"raw":      {Type: "object", Index: true},
		"hidden":   {Type: "long", Enabled: true},
	}
	if got := m.FieldInfos(); !reflect.DeepEqual(got, want) {
		t.Errorf("FieldInfos:\n%+v\nwant\n%+v", got, want)
	}
	if fi, ok := m.Field("msg"); !ok || fi.IgnoreAbove != 256 {
		t.Errorf("Field(msg) = %+v, %v", fi, ok)
	}
	if _, ok := m.Field("nope"); ok {
		t.Error("Field(nope) found")
	}
	if _, err := escompat.NewMapping(nil, json.RawMessage(`{"properties":{"k":{"type":"keyword","ignore_above":-1}}}`)); err == nil ||
		err.Reason != "Failed to parse mapping: [ignore_above] must be positive, got [-1]" {
		t.Errorf("negative ignore_above: %v", err)
	}
}

func TestResponderAndRouter(t *testing.T) {
	serve := func(method, target, accept string, h func(rs *escompat.Responder, r *http.Request)) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest(method, target, nil)
		if accept != "" {
			r.Header.Set("Accept", accept)
		}
		h(escompat.NewResponder(rec, r), r)
		return rec
	}
	rec := serve("GET", "/x?filter_path=a.b", "", func(rs *escompat.Responder, _ *http.Request) {
		rs.FilteredJSON(200, []byte(`{"a":{"b":1,"c":2},"d":3}`))
	})
	if rec.Body.String() != `{"a":{"b":1}}` || rec.Header().Get("X-Elastic-Product") != "Elasticsearch" || rec.Header().Get("Content-Type") != "application/json" {
		t.Errorf("filtered: %s %v", rec.Body, rec.Header())
	}
	rec = serve("GET", "/x?filter_path=a", escompat.CompatMediaType, func(rs *escompat.Responder, _ *http.Request) {
		rs.Error(escompat.IllegalArgument("bad %s", "thing"))
	})
	if rec.Code != 400 || rec.Header().Get("Content-Type") != escompat.CompatMediaType ||
		rec.Body.String() != `{"error":{"root_cause":[{"type":"illegal_argument_exception","reason":"bad thing"}],"type":"illegal_argument_exception","reason":"bad thing"},"status":400}` {
		t.Errorf("error: %d %s %v", rec.Code, rec.Body, rec.Header())
	}
	rec = serve("HEAD", "/x", "", func(rs *escompat.Responder, _ *http.Request) { rs.JSON(200, escompat.Acknowledged()) })
	if rec.Body.Len() != 0 || rec.Header().Get("Content-Length") != "21" {
		t.Errorf("HEAD: %q %v", rec.Body, rec.Header())
	}

	served := ""
	route := func(method string) *httptest.ResponseRecorder {
		return serve(method, "/things", "", func(rs *escompat.Responder, r *http.Request) {
			var rt escompat.Router
			rt.Handle(func() { served = "get" }, http.MethodGet, http.MethodHead)
			rt.Handle(func() { served = "put" }, http.MethodPut)
			rt.Serve(rs, r)
		})
	}
	if route("PUT"); served != "put" {
		t.Errorf("served %q", served)
	}
	rec = route("DELETE")
	if rec.Code != 405 || rec.Header().Get("Allow") != "GET,HEAD,PUT" ||
		rec.Body.String() != `{"error":"Incorrect HTTP method for uri [/things] and method [DELETE], allowed: [GET, HEAD, PUT]","status":405}` {
		t.Errorf("405: %d %s %v", rec.Code, rec.Body, rec.Header())
	}
	rec = serve("GET", "/nothing", "", func(rs *escompat.Responder, r *http.Request) {
		var rt escompat.Router
		if !rt.Empty() {
			t.Error("new router not empty")
		}
		rt.Serve(rs, r)
	})
	if rec.Code != 400 || rec.Body.String() != `{"error":"no handler found for uri [/nothing] and method [GET]"}` {
		t.Errorf("no handler: %d %s", rec.Code, rec.Body)
	}
}

func TestReadBodyAndSplitPath(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(`{"a":1}`))
	zw.Close()
	r := httptest.NewRequest("POST", "/", &gz)
	r.Header.Set("Content-Encoding", "gzip")
	if b, err := escompat.ReadBody(r); err != nil || string(b) != `{"a":1}` {
		t.Errorf("gzip body: %q %v", b, err)
	}
	r = httptest.NewRequest("POST", "/", strings.NewReader("not gzip"))
	r.Header.Set("Content-Encoding", "gzip")
	if _, err := escompat.ReadBody(r); err == nil || err.Type != "not_x_content_exception" {
		t.Errorf("bad gzip: %v", err)
	}
	u, _ := url.Parse("/idx/_doc/a%2Fb")
	if segs, ok := escompat.SplitPath(u); !ok || !reflect.DeepEqual(segs, []string{"idx", "_doc", "a/b"}) {
		t.Errorf("SplitPath = %q, %v", segs, ok)
	}
}

func TestCatIndices(t *testing.T) {
	created := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	rows := []escompat.CatIndex{
		{Name: "b", UUID: "u2", DocsCount: 10, Created: created, StoreBytes: 4608},
		{Name: "a", UUID: "u1", DocsCount: 2, Created: created, StoreBytes: 225},
	}
	cat := func(query string) string {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/_cat/indices?"+query, nil)
		q, _ := url.ParseQuery(query)
		escompat.CatIndices(escompat.NewResponder(rec, r), q, append([]escompat.CatIndex(nil), rows...))
		return rec.Body.String()
	}
	if got, want := cat("v&h=i,dc,ss"), "index docs.count store.size\na              2       225b\nb             10      4.5kb\n"; got != want {
		t.Errorf("text:\n%s\nwant\n%s", got, want)
	}
	if got, want := cat("format=json&h=index,cds&s=docs.count:desc"),
		`[{"index":"b","creation.date.string":"2026-11-21T10:00:00.000Z"},{"index":"a","creation.date.string":"2026-11-21T10:00:00.000Z"}]`; got != want {
		t.Errorf("json: %s", got)
	}
	if got := cat("s=nope"); !strings.Contains(got, "Unable to sort by unknown sort key `nope`") {
		t.Errorf("bad sort: %s", got)
	}
}
