package esfake_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sluicelogs/sluice/internal/escompat/estest"
	"github.com/sluicelogs/sluice/internal/esfake"
)

// FuzzBulk feeds arbitrary bodies to the whole bulk endpoint (the parsers
// are fuzzed in escompat): it must not panic, and every answer must be JSON
// of the documented shapes.
func FuzzBulk(f *testing.F) {
	for _, s := range estest.BulkBodies {
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
