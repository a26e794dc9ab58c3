package elastic

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"

	"github.com/sluicelogs/sluice/internal/eslite"
)

// headerLog records the request headers a server received.
type headerLog struct {
	mu   sync.Mutex
	seen []http.Header
}

// serve starts h behind prefix (e.g. "/os", or "") on a loopback server
// that records request headers, and returns the URL to configure.
func (l *headerLog) serve(t *testing.T, prefix string, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.seen = append(l.seen, r.Header.Clone())
		l.mu.Unlock()
		http.StripPrefix(prefix, h).ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + prefix
}

// elasticOnly returns the Elastic-only headers and media types among those
// received.
func (l *headerLog) elasticOnly() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, h := range l.seen {
		for k, vs := range h {
			for _, v := range vs {
				if strings.Contains(strings.ToLower(v), "vnd.elasticsearch") || strings.HasPrefix(strings.ToLower(k), "x-elastic") ||
					strings.EqualFold(k, "Elastic-Api-Version") {
					out = append(out, k+": "+v)
				}
			}
		}
	}
	return out
}

func (l *headerLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.seen)
}

// exercise runs every kind of request Sluice sends through es, checking
// each answer, and returns the fake's documents of the index written.
func exercise(t *testing.T, es *elasticsearch.Client, fake *eslite.Store) {
	t.Helper()
	check := func(what string, res interface {
		IsError() bool
		String() string
	}, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if res.IsError() {
			t.Fatalf("%s: %s", what, res)
		}
	}
	info, err := es.Info()
	check("info", info, err)
	var root struct {
		Version struct{ Number string } `json:"version"`
	}
	if err := json.NewDecoder(info.Body).Decode(&root); err != nil || root.Version.Number == "" {
		t.Errorf("info body: %v %+v", err, root)
	}
	info.Body.Close()

	tmpl := `{"index_patterns":["logs-*"],"priority":500,"template":{"mappings":{"properties":{"log":{"type":"text"}}}}}`
	res, err := es.Indices.PutIndexTemplate("logs", strings.NewReader(tmpl))
	check("put index template", res, err)
	res, err = es.Indices.GetIndexTemplate(es.Indices.GetIndexTemplate.WithName("logs"))
	check("get index template", res, err)
	if _, ok := fake.Template("logs"); !ok {
		t.Error("the template is not stored")
	}

	body := "{\"create\":{\"_index\":\"logs-a\",\"_id\":\"1\"}}\n{\"log\":\"one\"}\n{\"create\":{\"_index\":\"logs-a\",\"_id\":\"2\"}}\n{\"log\":\"two\"}\n"
	res, err = es.Bulk(strings.NewReader(body), es.Bulk.WithFilterPath("errors", "items.*.status", "items.*.error"))
	check("bulk", res, err)
	var bulk struct {
		Errors bool `json:"errors"`
		Items  []map[string]struct {
			Status int `json:"status"`
		} `json:"items"`
	}
	if err := json.NewDecoder(res.Body).Decode(&bulk); err != nil || bulk.Errors || len(bulk.Items) != 2 || bulk.Items[0]["create"].Status != 201 {
		t.Errorf("bulk response: %v %+v", err, bulk)
	}
	res.Body.Close()
	if docs := fake.Docs("logs-a"); len(docs) != 2 {
		t.Errorf("stored %d documents, want 2", len(docs))
	}

	res, err = es.Cat.Indices(es.Cat.Indices.WithIndex("logs-*"), es.Cat.Indices.WithFormat("json"), es.Cat.Indices.WithH("index"))
	check("cat indices", res, err)
	data, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(data) != `[{"index":"logs-a"}]` {
		t.Errorf("cat indices = %s", data)
	}
	res, err = es.Cluster.Health()
	check("cluster health", res, err)
	res, err = es.Indices.Delete([]string{"logs-a", "logs-gone"}, es.Indices.Delete.WithIgnoreUnavailable(true))
	check("delete indices", res, err)
	if fake.Docs("logs-a") != nil {
		t.Error("the index was not deleted")
	}
}

func TestOpenSearchFlavor(t *testing.T) {
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+secret))
	for _, tc := range []struct {
		name   string
		compat bool // go-elasticsearch's compatibility mode turned on
	}{{"plain", false}, {"compatibility mode", true}} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.compat {
				t.Setenv("ELASTIC_CLIENT_APIVERSIONING", "true")
			}
			fake := eslite.New(eslite.OpenSearch(), eslite.RequireAuth(auth))
			var log headerLog
			url := log.serve(t, "", fake.Handler())
			es := newClient(t, Config{URLs: []string{url}, RequestTimeout: 10 * time.Second, Flavor: "opensearch",
				Username: "admin", Password: secret},
				func(cfg *elasticsearch.Config) { cfg.EnableCompatibilityMode = tc.compat })
			exercise(t, es, fake)
			if got := log.elasticOnly(); len(got) > 0 {
				t.Errorf("Elastic-only headers sent to OpenSearch: %q", got)
			}
		})
	}
}

func TestOpenSearchFlavorAgainstElasticsearch(t *testing.T) {
	fake := eslite.Start(t)
	es := newClient(t, Config{URLs: []string{fake.URL()}, RequestTimeout: 10 * time.Second, Flavor: "opensearch"})
	exercise(t, es, fake)
}

func TestElasticsearchFlavorAgainstOpenSearch(t *testing.T) {
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+secret))
	fake := eslite.New(eslite.OpenSearch(), eslite.RequireAuth(auth))
	var log headerLog
	url := log.serve(t, "/os", fake.Handler())
	for _, flavor := range []string{"", "elasticsearch"} {
		es := newClient(t, Config{URLs: []string{url}, RequestTimeout: 10 * time.Second, Flavor: flavor, Username: "admin", Password: secret})
		want := "the server at " + url + " is OpenSearch 2.17.1; set SLUICE_ELASTICSEARCH_FLAVOR=opensearch"
		_, err := es.Info()
		var pe *ProductError
		if !errors.As(err, &pe) || err.Error() != want || pe.Distribution != "opensearch" || pe.Version != "2.17.1" || pe.URL != url {
			t.Errorf("flavor %q: Info: err = %v (%#v), want %q", flavor, err, pe, want)
		}
		_, err = es.Indices.PutIndexTemplate("logs", strings.NewReader(`{"index_patterns":["logs-*"]}`))
		if err == nil || err.Error() != want {
			t.Errorf("flavor %q: put index template: err = %v, want %q", flavor, err, want)
		}
	}
	if log.count() != 8 { // each refused request, then GET / to explain it
		t.Errorf("%d requests, want 8", log.count())
	}
}

func TestProductErrorOtherServers(t *testing.T) {
	for _, tc := range []struct {
		name       string
		rootStatus int
		root       string
		want       string // the error, with URL for the server's
	}{
		{"Elasticsearch 7.10", 200, `{"name":"n","version":{"number":"7.10.2","build_flavor":"oss"},"tagline":"You Know, for Search"}`,
			"the server at URL says it is Elasticsearch 7.10.2 but does not answer X-Elastic-Product: Elasticsearch, which the client requires " +
				"(Elasticsearch before 7.14, or a proxy that drops the header); Sluice needs Elasticsearch 8, or OpenSearch 2 with SLUICE_ELASTICSEARCH_FLAVOR=opensearch"},
		{"another distribution", 200, `{"version":{"distribution":"Other","number":"1.0"}}`,
			"the server at URL is Other 1.0, not Elasticsearch; SLUICE_ELASTICSEARCH_FLAVOR supports elasticsearch (Elasticsearch 8) and opensearch (OpenSearch 2)"},
		{"root forbidden", 403, `{"error":"no permissions"}`,
			"the server at URL does not answer X-Elastic-Product: Elasticsearch, which the client requires with SLUICE_ELASTICSEARCH_FLAVOR=elasticsearch, " +
				"and GET / did not tell what it is (it answered 403 Forbidden); if it is OpenSearch, set SLUICE_ELASTICSEARCH_FLAVOR=opensearch"},
		{"not JSON", 200, `<html>proxy</html>`,
			"the server at URL does not answer X-Elastic-Product: Elasticsearch, which the client requires with SLUICE_ELASTICSEARCH_FLAVOR=elasticsearch, " +
				"and GET / did not tell what it is (its answer is not the JSON of a search engine: invalid character '<' looking for beginning of value); " +
				"if it is OpenSearch, set SLUICE_ELASTICSEARCH_FLAVOR=opensearch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/" {
					w.WriteHeader(tc.rootStatus)
					io.WriteString(w, tc.root)
					return
				}
				io.WriteString(w, `{"acknowledged":true}`)
			}))
			t.Cleanup(srv.Close)
			es := newClient(t, Config{URLs: []string{srv.URL}, RequestTimeout: 10 * time.Second})
			_, err := es.Indices.Create("a")
			if want := strings.ReplaceAll(tc.want, "URL", srv.URL); err == nil || err.Error() != want {
				t.Errorf("err = %v\nwant %s", err, want)
			}
		})
	}
}

// Once a response carried the product header, go-elasticsearch checks no
// other, and neither does the transport.
func TestProductCheckedUntilAccepted(t *testing.T) {
	var n int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		first := n == 1
		mu.Unlock()
		if first {
			w.Header().Set("X-Elastic-Product", "Elasticsearch")
		}
		io.WriteString(w, `{"version":{"number":"8.19.0"}}`)
	}))
	t.Cleanup(srv.Close)
	es := newClient(t, Config{URLs: []string{srv.URL}, RequestTimeout: 10 * time.Second})
	for i := range 3 {
		if _, err := info(t, es); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
}
