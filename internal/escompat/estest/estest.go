// Package estest holds the helpers of tests that talk to an Elasticsearch
// stand-in (internal/esfake, internal/devstack) through go-elasticsearch or
// plain HTTP: a client that does not retry, decoded responses, lookups in
// a decoded body by path, and checks worded for Elasticsearch's bodies.
// Helpers fail the test they are given; all are safe for concurrent use.
package estest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
)

// Client returns a go-elasticsearch client of the server at url that does
// not retry, so that each call is exactly one request; edit, if any,
// changes its configuration first.
func Client(t testing.TB, url string, edit ...func(*elasticsearch.Config)) *elasticsearch.Client {
	t.Helper()
	cfg := elasticsearch.Config{Addresses: []string{url}, DisableRetry: true}
	for _, e := range edit {
		e(&cfg)
	}
	c, err := elasticsearch.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Result is a response, read whole.
type Result struct {
	Status int
	Header http.Header
	Raw    string // the body as sent
	Body   any    // the body decoded, when it is JSON; else nil
}

// Do runs an esapi request with c and reads its response.
func Do(t testing.TB, c *elasticsearch.Client, req esapi.Request) Result {
	t.Helper()
	res, err := req.Do(context.Background(), c)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	return read(t, res.StatusCode, res.Header, res.Body)
}

// Read reads a plain HTTP response and closes its body.
func Read(t testing.TB, res *http.Response) Result {
	t.Helper()
	return read(t, res.StatusCode, res.Header, res.Body)
}

func read(t testing.TB, status int, header http.Header, body io.ReadCloser) Result {
	t.Helper()
	defer body.Close()
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	r := Result{Status: status, Header: header, Raw: string(b)}
	if len(b) > 0 && strings.Contains(header.Get("Content-Type"), "json") {
		if err := json.Unmarshal(b, &r.Body); err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
	}
	return r
}

// At walks a decoded body by a dotted path, array elements by index; nil
// where the path leads nowhere.
func At(v any, path string) any { return AtKeys(v, strings.Split(path, ".")...) }

// AtKeys walks a decoded body by keys, which may hold dots.
func AtKeys(v any, keys ...string) any {
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

// WantValue checks the value at path (see At) in the body of r.
func WantValue(t testing.TB, r Result, path string, want any) {
	t.Helper()
	if got := At(r.Body, path); !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v (body %s)", path, got, want, r.Raw)
	}
}

// WantStatus stops the test unless r has the status.
func WantStatus(t testing.TB, r Result, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d, want %d (body %s)", r.Status, status, r.Raw)
	}
}

// WantError checks a whole-request Elasticsearch error response: its
// status, in the header and the body, its type and root cause type, and
// its reason unless reason is "".
func WantError(t testing.TB, r Result, status int, typ, reason string) {
	t.Helper()
	if r.Status != status {
		t.Errorf("status = %d, want %d (body %s)", r.Status, status, r.Raw)
	}
	WantValue(t, r, "status", float64(status))
	WantValue(t, r, "error.type", typ)
	WantValue(t, r, "error.root_cause.0.type", typ)
	if reason != "" {
		WantValue(t, r, "error.reason", reason)
	}
}

// NDJSON is a bulk body of lines, each ended by a newline.
func NDJSON(lines ...string) *strings.Reader {
	return strings.NewReader(strings.Join(lines, "\n") + "\n")
}

// BulkBodies are bulk request bodies to seed fuzz tests of bulk parsing
// with: every action, documents of every JSON type, mapping conflicts, an
// invalid index name, CRLF line ends, odd keys, and malformed bodies.
var BulkBodies = []string{
	"{\"create\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"x\":1,\"y.z\":\"s\",\"o\":{\"p\":[1,2,{\"q\":null}]}}\n",
	"{\"index\":{\"_index\":\"a\"}}\n{\"x\":\"text\"}\n{\"create\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"x\":{\"y\":1}}\n",
	"{\"delete\":{\"_index\":\"a\",\"_id\":\"1\"}}\n",
	"{\"create\":{\"_index\":\"logs-x\"}}\n{\"@timestamp\":\"2024-05-01T00:00:00Z\",\"http\":{\"status\":\"oops\"}}\n",
	"{\"create\":{\"_index\":\"A\"}}\n{}\n",
	"{\"index\":{}}\n{\"a\":\"\\ud83d\\ude00\",\"b\":-0.5e-7}\n",
	"\r\n{\"create\":{\"_index\":\"a\"}}\r\n{\"\":1}\r\n",
	"{\"create\":{\"_index\":\"a\"}}\n{\"a..b\":1,\".\":2}\n",
	"[]\n",
	"{\"create\":{\"_index\":\"a\"}",
}
