package escompat_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluicelogs/sluice/internal/escompat"
)

func TestResponderAsOpenSearch(t *testing.T) {
	// Unmarked requests are answered as Elasticsearch, as before.
	rec := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/", nil)
	rs := escompat.NewResponder(rec, r)
	if rs.Product() != escompat.Elasticsearch || escompat.CheckContentType(rs, r) {
		t.Fatalf("unmarked request: product %v", rs.Product())
	}
	rs.JSON(200, escompat.Acknowledged())
	if rec.Header().Get("X-Elastic-Product") != "Elasticsearch" || rec.Header().Get("Content-Type") != "application/json" {
		t.Errorf("Elasticsearch headers: %v", rec.Header())
	}

	rec = httptest.NewRecorder()
	r = escompat.WithProduct(httptest.NewRequest("GET", "/?pretty", nil), escompat.OpenSearch)
	r.Header.Set("Accept", escompat.CompatMediaType)
	rs = escompat.NewResponder(rec, r)
	rs.JSON(200, escompat.Acknowledged())
	if _, ok := rec.Header()["X-Elastic-Product"]; ok || rec.Header().Get("Content-Type") != escompat.OpenSearchContentType ||
		rec.Body.String() != "{\n  \"acknowledged\": true\n}\n" {
		t.Errorf("OpenSearch response: %v %q", rec.Header(), rec.Body)
	}

	for _, tc := range []struct {
		contentType []string
		refused     string // the error, "" when accepted
	}{
		{[]string{"application/json"}, ""},
		{[]string{"application/json; charset=UTF-8"}, ""},
		{[]string{"Application/X-NDJSON"}, ""},
		{[]string{"application/vnd.elasticsearch+json;compatible-with=8"}, "Content-Type header [application/vnd.elasticsearch+json;compatible-with=8] is not supported"},
		{[]string{"text/plain"}, "Content-Type header [text/plain] is not supported"},
		{[]string{"application/json", "application/json"}, "Content-Type header [application/json,application/json] is not supported"},
		{nil, "Content-Type header is missing"},
	} {
		rec := httptest.NewRecorder()
		r := escompat.WithProduct(httptest.NewRequest("PUT", "/a", strings.NewReader("{}")), escompat.OpenSearch)
		for _, v := range tc.contentType {
			r.Header.Add("Content-Type", v)
		}
		answered := escompat.CheckContentType(escompat.NewResponder(rec, r), r)
		if answered != (tc.refused != "") {
			t.Errorf("%q: answered %v", tc.contentType, answered)
			continue
		}
		if want := `{"error":"` + tc.refused + `","status":406}`; answered && (rec.Code != http.StatusNotAcceptable || rec.Body.String() != want) {
			t.Errorf("%q: %d %s, want 406 %s", tc.contentType, rec.Code, rec.Body, want)
		}
	}
}
