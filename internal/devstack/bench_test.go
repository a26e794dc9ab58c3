package devstack_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esutil"

	"github.com/sluicelogs/sluice/internal/devstack"
)

// logDocument renders the i-th test document, shaped like the Sluice
// indexer's (indexer/testdata/documents/kubernetes.json): about 500 bytes,
// with a text log line, keyword Kubernetes metadata, labels mapped by the
// template's dynamic templates, lifted JSON fields and a date.
func logDocument(i int) []byte {
	pod := fmt.Sprintf("cart-7d9f8b-%05d", i%97)
	ts := time.Date(2026, 11, 21, 10, 30, 0, 0, time.UTC).Add(time.Duration(i) * time.Millisecond)
	status := []int{200, 200, 200, 201, 404, 500}[i%6]
	method := []string{"GET", "POST", "PUT"}[i%3]
	level := []string{"info", "info", "warn", "error"}[i%4]
	msg := fmt.Sprintf("%s /cart/%d %d", method, i%1000, status)
	return fmt.Appendf(nil, `{"@timestamp":%q,"tenant":"shop","stream":"stdout","log":"{\"level\":\"%s\",\"msg\":\"%s\",\"status\":%d}","kubernetes":{"pod_name":%q,"namespace_name":"shop","labels":{"app":"cart","pod-template-hash":"7d9f8b"},"host":"node-%d","container_name":"cart"},"duration":0.0%d,"http.method":%q,"http.status":%d,"level":%q,"msg":%q,"user":null,"sluice":{"observed_timestamp":%q,"source":{"path":"/var/log/containers/%s_shop_cart.log","offset":%d,"format":"cri"}}}`,
		ts.Format(time.RFC3339Nano), level, msg, status, pod, i%3, 100+i%900,
		method, status, level, msg, ts.Add(40*time.Millisecond).Format(time.RFC3339Nano), pod, 4096+i*512)
}

// BenchmarkBulk measures bulk indexing through go-elasticsearch's
// BulkIndexer (defaults: one worker per CPU, 5 MB requests) into a store on
// disk with the Sluice index template installed; one op is one document.
func BenchmarkBulk(b *testing.B) {
	if n := len(logDocument(12345)); n < 450 || n > 650 {
		b.Fatalf("document of %d bytes, want about 500", n)
	}
	st, err := devstack.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	srv := httptest.NewServer(st.Handler())
	defer srv.Close()
	c, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{srv.URL}})
	if err != nil {
		b.Fatal(err)
	}
	putTemplate(b, c, "sluice", readFile(b, "../../indexer/testdata/template.json"))
	docs := make([][]byte, 4096)
	for i := range docs {
		docs[i] = logDocument(i)
	}
	b.SetBytes(int64(len(docs[0])))
	b.ResetTimer()
	bi, err := esutil.NewBulkIndexer(esutil.BulkIndexerConfig{Client: c, Index: "sluice-shop-2026.11.21"})
	if err != nil {
		b.Fatal(err)
	}
	var failed atomic.Int64
	var first atomic.Value
	for i := range b.N {
		err := bi.Add(context.Background(), esutil.BulkIndexerItem{
			Action:     "create",
			DocumentID: fmt.Sprintf("%s-%d", b.Name(), i),
			Body:       bytes.NewReader(docs[i%len(docs)]),
			OnFailure: func(_ context.Context, _ esutil.BulkIndexerItem, res esutil.BulkIndexerResponseItem, err error) {
				failed.Add(1)
				first.CompareAndSwap(nil, fmt.Sprint(res.Status, res.Error, err))
			},
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	if err := bi.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d documents failed, first: %v", n, first.Load())
	}
	if st := bi.Stats(); st.NumFlushed != uint64(b.N) {
		b.Fatalf("flushed %d of %d", st.NumFlushed, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "docs/s")
}
