package devstack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/sluicelogs/sluice/internal/devstack"
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
	ts.c, err = elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{ts.srv.URL}, DisableRetry: true})
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// close stops the server and closes the store, as a process exit would.
func (ts *testStore) close() {
	ts.srv.Close()
	if err := ts.Store.Close(); err != nil {
		panic(err)
	}
}

// result is a decoded response.
type result struct {
	status int
	header http.Header
	raw    string
	body   any
}

// do runs an esapi request and decodes its JSON body.
func do(t testing.TB, c *elasticsearch.Client, req esapi.Request) result {
	t.Helper()
	res, err := req.Do(context.Background(), c)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := result{status: res.StatusCode, header: res.Header, raw: string(b)}
	if len(b) > 0 && strings.Contains(res.Header.Get("Content-Type"), "json") {
		if err := json.Unmarshal(b, &r.body); err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
	}
	return r
}

// raw sends a plain HTTP request to the store.
func (ts *testStore) raw(t testing.TB, method, path, contentType, body string) result {
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
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := result{status: res.StatusCode, header: res.Header, raw: string(b)}
	if len(b) > 0 && strings.Contains(res.Header.Get("Content-Type"), "json") {
		if err := json.Unmarshal(b, &r.body); err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
	}
	return r
}

// at walks a decoded body by dotted path (array elements by index).
func at(v any, path string) any {
	for _, p := range strings.Split(path, ".") {
		switch t := v.(type) {
		case map[string]any:
			v = t[p]
		case []any:
			var i int
			if _, err := fmt.Sscan(p, &i); err != nil || i >= len(t) {
				return nil
			}
			v = t[i]
		default:
			return nil
		}
	}
	return v
}

// atKeys walks a decoded body by keys that may hold dots.
func atKeys(v any, keys ...string) any {
	for _, k := range keys {
		switch t := v.(type) {
		case map[string]any:
			v = t[k]
		case []any:
			var i int
			if _, err := fmt.Sscan(k, &i); err != nil || i >= len(t) {
				return nil
			}
			v = t[i]
		default:
			return nil
		}
	}
	return v
}

func wantValue(t testing.TB, r result, path string, want any) {
	t.Helper()
	if got := at(r.body, path); !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v (body %s)", path, got, want, r.raw)
	}
}

func wantStatus(t testing.TB, r result, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d (body %s)", r.status, status, r.raw)
	}
}

// wantError checks a whole-request Elasticsearch error response.
func wantError(t testing.TB, r result, status int, typ, reason string) {
	t.Helper()
	if r.status != status {
		t.Errorf("status = %d, want %d (body %s)", r.status, status, r.raw)
	}
	wantValue(t, r, "status", float64(status))
	wantValue(t, r, "error.type", typ)
	wantValue(t, r, "error.root_cause.0.type", typ)
	if reason != "" {
		wantValue(t, r, "error.reason", reason)
	}
}

func ndjson(lines ...string) *strings.Reader {
	return strings.NewReader(strings.Join(lines, "\n") + "\n")
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
	r := do(t, c, esapi.IndicesPutIndexTemplateRequest{Name: name, Body: bytes.NewReader(body)})
	wantStatus(t, r, http.StatusOK)
}

// bulk sends a bulk request and fails the test unless it is answered 200.
func bulk(t testing.TB, c *elasticsearch.Client, index, refresh string, lines ...string) result {
	t.Helper()
	r := do(t, c, esapi.BulkRequest{Index: index, Refresh: refresh, Body: ndjson(lines...)})
	wantStatus(t, r, http.StatusOK)
	return r
}
