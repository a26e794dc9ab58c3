package esfake_test

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/sluicelogs/sluice/internal/escompat/estest"
	"github.com/sluicelogs/sluice/internal/esfake"
)

// send sends one plain HTTP request, headers given as name, value pairs.
func send(t *testing.T, method, url, body string, header ...string) estest.Result {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == "" {
		req.Body = http.NoBody
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return estest.Read(t, res)
}

const openSearchJSON = "application/json; charset=UTF-8"

func TestOpenSearchInfo(t *testing.T) {
	es := esfake.Start(t, esfake.OpenSearch())
	r := send(t, http.MethodGet, es.URL()+"/", "")
	estest.WantStatus(t, r, 200)
	if got, ok := r.Header["X-Elastic-Product"]; ok {
		t.Errorf("X-Elastic-Product = %q, want none", got)
	}
	if got := r.Header.Get("Content-Type"); got != openSearchJSON {
		t.Errorf("Content-Type = %q", got)
	}
	estest.WantValue(t, r, "version.distribution", "opensearch")
	estest.WantValue(t, r, "version.number", "2.17.1")
	estest.WantValue(t, r, "version.lucene_version", "9.11.1")
	estest.WantValue(t, r, "version.minimum_wire_compatibility_version", "7.10.0")
	estest.WantValue(t, r, "version.minimum_index_compatibility_version", "7.0.0")
	estest.WantValue(t, r, "version.build_snapshot", false)
	estest.WantValue(t, r, "version.build_flavor", nil)
	estest.WantValue(t, r, "tagline", "The OpenSearch Project: https://opensearch.org/")
	for _, k := range []string{"name", "cluster_name", "cluster_uuid", "version.build_type", "version.build_hash", "version.build_date"} {
		if s, _ := estest.At(r.Body, k).(string); s == "" {
			t.Errorf("%s missing", k)
		}
	}

	es2 := esfake.Start(t, esfake.Version("2.11.0"), esfake.OpenSearch())
	estest.WantValue(t, send(t, http.MethodGet, es2.URL()+"/", ""), "version.number", "2.11.0")

	// go-elasticsearch v8 refuses it as it refuses OpenSearch: no product
	// header on a 2xx.
	_, err := client(t, es).Info()
	if err == nil || !strings.Contains(err.Error(), "not Elasticsearch") {
		t.Errorf("go-elasticsearch Info: err = %v, want its product check to fail", err)
	}
}

func TestOpenSearchMediaTypes(t *testing.T) {
	es := esfake.Start(t, esfake.OpenSearch())
	const compat = "application/vnd.elasticsearch+json; compatible-with=8"

	// A body of Elastic's compatibility media type is refused, the header
	// echoed as sent; nothing is created.
	r := send(t, http.MethodPut, es.URL()+"/_index_template/logs", logsTemplate, "Content-Type", compat)
	if r.Status != 406 || r.Raw != `{"error":"Content-Type header [`+compat+`] is not supported","status":406}` {
		t.Errorf("compatible-with=8 body: %d %s", r.Status, r.Raw)
	}
	if _, ok := es.Template("logs"); ok {
		t.Error("a refused request stored the template")
	}
	r = send(t, http.MethodPost, es.URL()+"/_bulk", "{\"create\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{}\n")
	if r.Status != 406 || r.Raw != `{"error":"Content-Type header is missing","status":406}` {
		t.Errorf("body without Content-Type: %d %s", r.Status, r.Raw)
	}
	if len(es.Indices()) != 0 {
		t.Error("a refused bulk request created an index")
	}

	// The media types OpenSearch reads are accepted; an Accept it does not
	// know gets JSON.
	r = send(t, http.MethodPut, es.URL()+"/_index_template/logs", logsTemplate, "Content-Type", "application/json")
	estest.WantStatus(t, r, 200)
	r = send(t, http.MethodPost, es.URL()+"/_bulk", "{\"create\":{\"_index\":\"logs-a\",\"_id\":\"1\"}}\n{\"message\":\"hi\"}\n",
		"Content-Type", "application/x-ndjson", "Accept", compat)
	estest.WantStatus(t, r, 200)
	estest.WantValue(t, r, "errors", false)
	if got := r.Header.Get("Content-Type"); got != openSearchJSON {
		t.Errorf("Content-Type with Accept compatible-with=8 = %q", got)
	}
	if docs := es.Docs("logs-a"); len(docs) != 1 {
		t.Errorf("stored %d documents, want 1", len(docs))
	}

	// A GET without a body is never refused for its (absent) Content-Type.
	r = send(t, http.MethodGet, es.URL()+"/_cat/indices?format=json&h=index", "", "Accept", compat)
	estest.WantStatus(t, r, 200)
	estest.WantValue(t, r, "0.index", "logs-a")
}

func TestOpenSearchRequireAuth(t *testing.T) {
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:s3cret"))
	es := esfake.Start(t, esfake.OpenSearch(), esfake.RequireAuth(auth))
	for _, h := range []string{"", "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:nope"))} {
		r := send(t, http.MethodPut, es.URL()+"/a", "", "Authorization", h)
		if r.Status != 401 || r.Raw != "Unauthorized" || r.Header.Get("WWW-Authenticate") != `Basic realm="OpenSearch Security"` {
			t.Errorf("Authorization %q: %d %q %v", h, r.Status, r.Raw, r.Header)
		}
	}
	if len(es.Indices()) != 0 {
		t.Error("an unauthenticated request created an index")
	}
	estest.WantStatus(t, send(t, http.MethodGet, es.URL()+"/", "", "Authorization", auth), 200)
}

func TestOpenSearchBulkItemErrors(t *testing.T) {
	es := esfake.Start(t, esfake.OpenSearch())
	// go-elasticsearch with the product header OpenSearch lacks added, as
	// SLUICE_ELASTICSEARCH_FLAVOR=opensearch adds it.
	c := client(t, es, func(cfg *elasticsearch.Config) {
		cfg.Transport = roundTrip(func(req *http.Request) (*http.Response, error) {
			res, err := http.DefaultTransport.RoundTrip(req)
			if err == nil {
				res.Header.Set("X-Elastic-Product", "Elasticsearch")
			}
			return res, err
		})
	})
	if r := estest.Do(t, c, esapi.IndicesPutIndexTemplateRequest{Name: "logs", Body: strings.NewReader(logsTemplate)}); r.Status != 200 {
		t.Fatal(r.Raw)
	}
	r := estest.Do(t, c, esapi.BulkRequest{Index: "logs-acme", Body: estest.NDJSON(
		`{"create":{"_id":"ok"}}`, `{"http":{"status":200}}`,
		`{"create":{"_id":"bad-long"}}`, `{"http":{"status":"oops"}}`,
		`{"create":{"_id":"bad-json"}}`, `{"a":}`,
		`{"create":{"_id":"ok"}}`, `{"http":{"status":201}}`,
	)})
	estest.WantValue(t, r, "errors", true)
	estest.WantValue(t, r, "items.0.create.status", float64(201))
	estest.WantValue(t, r, "items.1.create.status", float64(400))
	estest.WantValue(t, r, "items.1.create.error.type", "mapper_parsing_exception")
	estest.WantValue(t, r, "items.1.create.error.reason", "failed to parse field [http.status] of type [long] in document with id 'bad-long'. Preview of field's value: 'oops'")
	estest.WantValue(t, r, "items.1.create.error.caused_by.reason", `For input string: "oops"`)
	estest.WantValue(t, r, "items.2.create.error.type", "mapper_parsing_exception")
	estest.WantValue(t, r, "items.3.create.status", float64(409))
	estest.WantValue(t, r, "items.3.create.error.type", "version_conflict_engine_exception")
	if st := es.Stats(); st.Created != 1 || st.Conflicts != 1 || st.ItemInvalid != 2 {
		t.Errorf("Stats = %+v", st)
	}
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }
