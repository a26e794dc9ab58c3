package eslite

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
)

// served is a store on a loopback server with a go-elasticsearch client
// that does not retry, so that each call is one request.
type served struct {
	*Store
	url string
	c   *elasticsearch.Client
}

// serve serves st until the test ends (or close is called).
func serve(t testing.TB, st *Store) (*served, func()) {
	t.Helper()
	srv := httptest.NewServer(st.Handler())
	closed := false
	closeAll := func() {
		if !closed {
			closed = true
			srv.Close()
			if err := st.Close(); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(closeAll)
	c, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{srv.URL}, DisableRetry: true})
	if err != nil {
		t.Fatal(err)
	}
	return &served{st, srv.URL, c}, closeAll
}

// memStore is an in-memory store, served.
func memStore(t testing.TB, opts ...Option) *served {
	ts, _ := serve(t, New(opts...))
	return ts
}

// call sends a request with a body (a Content-Type is set for one) and
// returns the status and the body.
func (ts *served) call(t testing.TB, method, path, body string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, ts.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// must sends a request that must be answered status, and decodes the
// answer.
func (ts *served) must(t testing.TB, status int, method, path, body string) map[string]any {
	t.Helper()
	got, out := ts.call(t, method, path, body)
	if got != status {
		t.Fatalf("%s %s: %d %s, want %d", method, path, got, out, status)
	}
	var m map[string]any
	if out != "" && out[0] == '{' {
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, out)
		}
	}
	return m
}

// bulk sends NDJSON lines to /_bulk and returns the items.
func (ts *served) bulk(t testing.TB, lines ...string) []map[string]any {
	t.Helper()
	out := ts.must(t, 200, "POST", "/_bulk", strings.Join(lines, "\n")+"\n")
	var items []map[string]any
	for _, it := range out["items"].([]any) {
		for _, v := range it.(map[string]any) {
			items = append(items, v.(map[string]any))
		}
	}
	return items
}

// count counts the documents of an index expression matching a query.
func (ts *served) count(t testing.TB, index, query string) int {
	t.Helper()
	out := ts.must(t, 200, "POST", "/"+index+"/_count", `{"query":`+query+`}`)
	return int(out["count"].(float64))
}

// hitIDs returns the _ids of the hits of a search, in order.
func (ts *served) hitIDs(t testing.TB, index, body string) string {
	t.Helper()
	out := ts.must(t, 200, "POST", "/"+index+"/_search", body)
	var ids []string
	for _, h := range out["hits"].(map[string]any)["hits"].([]any) {
		ids = append(ids, h.(map[string]any)["_id"].(string))
	}
	return strings.Join(ids, " ")
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// logDocument renders the i-th document shaped like the indexer's
// (indexer/testdata/documents/kubernetes.json): about 500 bytes, a text
// log line, keyword Kubernetes metadata, labels the template's dynamic
// templates map, lifted fields and dates, one millisecond apart.
func logDocument(i int) []byte {
	pod := fmt.Sprintf("cart-7d9f8b-%05d", i%97)
	ts := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Millisecond)
	status := []int{200, 200, 200, 201, 404, 500}[i%6]
	method := []string{"GET", "POST", "PUT"}[i%3]
	level := []string{"info", "info", "warn", "error"}[i%4]
	msg := fmt.Sprintf("%s /cart/%d %d", method, i%1000, status)
	return fmt.Appendf(nil, `{"@timestamp":%q,"tenant":"shop","stream":"stdout","log":"{\"level\":\"%s\",\"msg\":\"%s\",\"status\":%d}","kubernetes":{"pod_name":%q,"namespace_name":"shop","labels":{"app":"cart","pod-template-hash":"7d9f8b"},"host":"node-%d","container_name":"cart"},"duration":0.0%d,"http.method":%q,"http.status":%d,"level":%q,"msg":%q,"user":null,"sluice":{"observed_timestamp":%q,"source":{"path":"/var/log/containers/%s_shop_cart.log","offset":%d,"format":"cri"}}}`,
		ts.Format(time.RFC3339Nano), level, msg, status, pod, i%3, 100+i%900,
		method, status, level, msg, ts.Add(40*time.Millisecond).Format(time.RFC3339Nano), pod, 4096+i*512)
}
