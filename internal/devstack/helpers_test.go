package devstack_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/sluicelogs/sluice/internal/devstack"
	"github.com/sluicelogs/sluice/internal/escompat/estest"
)

// testStore is a store on a loopback server with a go-elasticsearch client
// that does not retry, so each call is exactly one request.
type testStore struct {
	*devstack.Store
	dir string
	srv *httptest.Server
	c   *elasticsearch.Client
}

// openStore opens a store in dir (a new temporary directory when "") and
// serves it; both are closed with t.Cleanup unless closed before.
func openStore(t testing.TB, dir string, opts ...devstack.Option) *testStore {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	st, err := devstack.Open(dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testStore{Store: st, dir: dir, srv: httptest.NewServer(st.Handler())}
	t.Cleanup(ts.close)
	ts.c = estest.Client(t, ts.srv.URL)
	return ts
}

// close stops the server and closes the store, as a process exit would.
func (ts *testStore) close() {
	ts.srv.Close()
	if err := ts.Store.Close(); err != nil {
		panic(err)
	}
}

// raw sends a plain HTTP request to the store.
func (ts *testStore) raw(t testing.TB, method, path, contentType, body string) estest.Result {
	t.Helper()
	req, err := http.NewRequest(method, ts.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return estest.Read(t, res)
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func putTemplate(t testing.TB, c *elasticsearch.Client, name string, body []byte) {
	t.Helper()
	r := estest.Do(t, c, esapi.IndicesPutIndexTemplateRequest{Name: name, Body: bytes.NewReader(body)})
	estest.WantStatus(t, r, http.StatusOK)
}

// bulk sends a bulk request and fails the test unless it is answered 200.
func bulk(t testing.TB, c *elasticsearch.Client, index, refresh string, lines ...string) estest.Result {
	t.Helper()
	r := estest.Do(t, c, esapi.BulkRequest{Index: index, Refresh: refresh, Body: estest.NDJSON(lines...)})
	estest.WantStatus(t, r, http.StatusOK)
	return r
}
