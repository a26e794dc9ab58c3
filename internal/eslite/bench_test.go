package eslite

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/elastic/go-elasticsearch/v8/esutil"
)

// BenchmarkBulk measures bulk indexing through go-elasticsearch's
// BulkIndexer (defaults: a worker per CPU, 5 MB requests) of documents
// shaped like the indexer's, about 500 bytes, under its template, client
// and store in one process; one op is one document.
func BenchmarkBulk(b *testing.B) {
	for _, disk := range []bool{false, true} {
		b.Run(map[bool]string{false: "memory", true: "disk"}[disk], func(b *testing.B) {
			st := New()
			if disk {
				var err error
				if st, err = Open(b.TempDir()); err != nil {
					b.Fatal(err)
				}
			}
			ts, _ := serve(b, st)
			ts.must(b, 200, "PUT", "/_index_template/sluice", readFile(b, "../../indexer/testdata/template.json"))
			docs := make([][]byte, 4096)
			for i := range docs {
				docs[i] = logDocument(i)
			}
			b.SetBytes(int64(len(docs[0])))
			b.ReportAllocs()
			b.ResetTimer()
			bi, err := esutil.NewBulkIndexer(esutil.BulkIndexerConfig{Client: ts.c, Index: "sluice-shop-2026.11.21"})
			if err != nil {
				b.Fatal(err)
			}
			var failed atomic.Int64
			for i := range b.N {
				err := bi.Add(context.Background(), esutil.BulkIndexerItem{
					Action: "create", DocumentID: strconv.Itoa(i), Body: bytes.NewReader(docs[i%len(docs)]),
					OnFailure: func(context.Context, esutil.BulkIndexerItem, esutil.BulkIndexerResponseItem, error) { failed.Add(1) },
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			if err := bi.Close(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if n := failed.Load(); n > 0 || bi.Stats().NumFlushed != uint64(b.N) {
				b.Fatalf("%d failed, %d flushed of %d", n, bi.Stats().NumFlushed, b.N)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "docs/s")
		})
	}
}

// BenchmarkSearch measures searches over one index of
// ESLITE_BENCH_DOCS documents (default 1,000,000: about 1.5 GB of memory)
// shaped like the indexer's, one day of them; one op is one request
// through go-elasticsearch.
func BenchmarkSearch(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("ESLITE_BENCH_DOCS")); err == nil {
		n = v
	}
	ts := memStore(b)
	ts.must(b, 200, "PUT", "/_index_template/sluice", readFile(b, "../../indexer/testdata/template.json"))
	for i := range n {
		it := bulkItem{action: "create", index: "sluice-shop-2026.11.21", id: strconv.Itoa(i), src: logDocument(i * 86_400_000 / n)}
		if ts.write(&it); it.err != nil {
			b.Fatal(it.err)
		}
	}
	sorted := `"size":20,"sort":[{"@timestamp":{"order":"desc","unmapped_type":"date"}}],`
	for _, bm := range []struct{ name, body string }{
		{"term-sorted", `{` + sorted + `"query":{"term":{"kubernetes.pod_name":"cart-7d9f8b-00042"}}}`},
		{"cli-query-string", `{` + sorted + `"query":{"bool":{"must":[{"query_string":{"query":"level:error AND kubernetes.pod_name:cart-7d9f8b-00042","default_operator":"AND"}}],` +
			`"filter":[{"term":{"tenant":"shop"}},{"range":{"@timestamp":{"gte":"2026-11-21T12:00:00Z||-1h"}}}]}}}`},
		{"match-text", `{"size":20,"query":{"match":{"log":"cart"}}}`},
		{"match-text-rare", `{"size":20,"query":{"match":{"log":"nowhere"}}}`},
		{"all-sorted", `{` + sorted + `"query":{"match_all":{}}}`},
		{"count-range", `{"query":{"range":{"@timestamp":{"gte":"2026-11-21T06:00:00Z","lt":"2026-11-21T07:00:00Z"}}}}`},
	} {
		b.Run(bm.name, func(b *testing.B) {
			path := "/sluice-*/_search"
			if strings.HasPrefix(bm.name, "count") {
				path = "/sluice-*/_count"
			}
			for b.Loop() {
				res, err := ts.c.Perform(mustRequest(b, path, bm.body))
				if err != nil {
					b.Fatal(err)
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					b.Fatalf("%d %s", res.StatusCode, body)
				}
			}
		})
	}
}

func mustRequest(b *testing.B, path, body string) *http.Request {
	req, err := http.NewRequest("POST", path, strings.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return req
}
