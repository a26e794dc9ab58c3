package indexer

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/internal/eslite"
	"github.com/sluicelogs/sluice/internal/kafkatest"
	"github.com/sluicelogs/sluice/schemas"
)

// TestIndexerIntoDevstack runs the indexer against the embedded
// Elasticsearch-compatible store, on disk as sluice dev runs it: the template
// applies, every record is one document in its daily index, and a keyword
// query on a pod name matches exactly that pod's documents.
func TestIndexerIntoDevstack(t *testing.T) {
	c := testCluster(t, "logs.parsed.shop", "logs.dlq.shop")
	st, err := eslite.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(st.Handler())
	t.Cleanup(func() { srv.Close(); _ = st.Close() })
	cl := kafkatest.Client(t, c)

	// Pods cart-1 and cart-10: a keyword field matches one, not both.
	var recs []*kgo.Record
	for i := range 300 {
		pod := []string{"cart-1", "cart-10", "pay-7"}[i%3]
		r := schemas.Record{ID: fmt.Sprintf("r%d", i), Timestamp: eventDay, ObservedTimestamp: eventDay, Stream: "stdout",
			Log:        fmt.Sprintf("GET /cart/%d served", i),
			Kubernetes: schemas.Kubernetes{NamespaceName: "shop", PodName: pod, Labels: map[string]string{"app.kubernetes.io/name": "cart"}},
			Attributes: map[string]any{"http.status": int64(200 + i%2), "level": "info"}}
		v, err := schemas.AppendSingleObject(nil, &r)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: "logs.parsed.shop", Value: v})
	}
	kafkatest.Produce(t, cl, recs...)
	_, _, stop := runIndexer(t, testConfig(t, c.ListenAddrs(), srv.URL, nil))
	waitCommitted(t, 60*time.Second, "every offset committed", cl, "sluice-indexer", "logs.parsed.shop")
	stop()

	index := IndexName("sluice", "shop", "", eventDay, time.UTC)
	count := func(query string) int {
		t.Helper()
		res, err := srv.Client().Post(srv.URL+"/sluice-shop-*/_count", "application/json", strings.NewReader(query))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		var out struct {
			Count int `json:"count"`
		}
		if err := json.Unmarshal(body, &out); err != nil || res.StatusCode != 200 {
			t.Fatalf("%s: %s %s", query, res.Status, body)
		}
		return out.Count
	}
	for query, want := range map[string]int{
		`{"query":{"match_all":{}}}`:                                                                               300,
		`{"query":{"term":{"kubernetes.pod_name":"cart-1"}}}`:                                                      100,
		`{"query":{"query_string":{"query":"kubernetes.pod_name:cart-1"}}}`:                                        100,
		`{"query":{"query_string":{"query":"kubernetes.labels.app_kubernetes_io/name:cart AND http.status:201"}}}`: 150,
		`{"query":{"match":{"log":"served"}}}`:                                                                     300,
		`{"query":{"range":{"@timestamp":{"gte":"now-2d"}}}}`:                                                      300,
	} {
		if got := count(query); got != want {
			t.Errorf("%s: %d documents, want %d", query, got, want)
		}
	}
	res, err := srv.Client().Get(srv.URL + "/_cat/indices?format=json&h=index,docs.count")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(body), `"index":"`+index+`"`) || !strings.Contains(string(body), `"docs.count":"300"`) {
		t.Errorf("_cat/indices: %s", body)
	}
}
