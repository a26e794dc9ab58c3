package esfake_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sluicelogs/sluice/internal/esfake"
)

// FuzzBulk feeds arbitrary bodies to the whole bulk endpoint (the parsers
// are fuzzed in escompat): it must not panic, and every answer must be JSON
// of the documented shapes.
func FuzzBulk(f *testing.F) {
	seeds := []string{
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
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		es := esfake.New(esfake.WithFaults(esfake.Faults{ItemFraction: 0.1}))
		es.CreateIndex("fuzz")
		rec := httptest.NewRecorder()
		es.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/fuzz/_bulk?filter_path=errors,items.*.status,items.*.error", bytes.NewReader(body)))
		var resp map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
			t.Fatalf("status %d, body not JSON: %v: %s", rec.Code, err, rec.Body.Bytes())
		}
		switch rec.Code {
		case http.StatusOK:
			if _, ok := resp["errors"].(bool); !ok {
				t.Fatalf("200 without errors: %s", rec.Body.Bytes())
			}
		case http.StatusBadRequest:
			if _, ok := resp["error"].(map[string]any); !ok {
				t.Fatalf("400 without error: %s", rec.Body.Bytes())
			}
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body.Bytes())
		}
	})
}

// bulkBody builds a bulk request of n create operations.
func bulkBody(n int) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, "{\"create\":{\"_index\":\"logs-bench\",\"_id\":\"%d\"}}\n", i)
		fmt.Fprintf(&b, "{\"@timestamp\":\"2024-05-01T10:00:00.%03dZ\",\"message\":\"request %d served\",\"http\":{\"status\":200,\"method\":\"GET\"},\"labels\":{\"pod\":\"web-%d\"}}\n", i%1000, i, i%10)
	}
	return b.Bytes()
}

func BenchmarkBulk(b *testing.B) {
	body := bulkBody(500)
	for _, bc := range []struct {
		name string
		opts []esfake.Option
	}{
		{"discard", []esfake.Option{esfake.Discard()}},
		{"store", nil},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				es := esfake.New(bc.opts...)
				rec := httptest.NewRecorder()
				es.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/_bulk?filter_path=errors,items.*.status,items.*.error", bytes.NewReader(body)))
				if rec.Code != http.StatusOK || bytes.Contains(rec.Body.Bytes(), []byte(`"errors":true`)) {
					b.Fatalf("%d %s", rec.Code, rec.Body.Bytes())
				}
			}
		})
	}
}
