package indexer

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/internal/eslite"
	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/internal/kafkatest"
	"github.com/sluicelogs/sluice/schemas"
)

// Sizes of TestScaleSharedLayout: every tenant is its own parsed topic (a
// tenant is its topic), of one partition.
const (
	scaleTenants       = 2000
	scaleRecords       = 3 // per tenant
	scaleDedicated     = 5 // tenants kept in the dedicated layout
	scaleDedicatedName = "big"
)

// TestScaleSharedLayout runs one indexer over 2,000 tenants' parsed topics
// into the embedded store, in the shared layout with a few tenants kept
// dedicated: every record is stored once, each tenant's documents are
// found by its tenant field, and there are 1 + 5 indices where the
// dedicated layout makes 2,000. It logs the time taken and the memory of
// the test process (the in-process Kafka and store included).
func TestScaleSharedLayout(t *testing.T) {
	start := time.Now()
	tenants := make([]string, scaleTenants)
	topics := make([]string, scaleTenants)
	var overrides []string
	for i := range tenants {
		tenants[i] = fmt.Sprintf("t%04d", i)
		if i < scaleDedicated {
			tenants[i] = fmt.Sprintf("%s-%d", scaleDedicatedName, i)
			overrides = append(overrides, tenants[i]+"=dedicated")
		}
		topics[i] = "logs.parsed." + tenants[i]
	}
	c := kafkatest.Cluster(t, kafkatest.Topics(1, topics...))
	st := eslite.New()
	srv := httptest.NewServer(st.Handler())
	t.Cleanup(func() { srv.Close(); _ = st.Close() })

	cl := kafkatest.Client(t, c, kgo.MaxBufferedRecords(scaleTenants*scaleRecords))
	recs := make([]*kgo.Record, 0, scaleTenants*scaleRecords)
	for i, topic := range topics {
		for j := range scaleRecords {
			r := schemas.Record{ID: fmt.Sprintf("%s-%d", tenants[i], j), Timestamp: eventDay, ObservedTimestamp: eventDay, Stream: "stdout",
				Log: fmt.Sprintf("line %d of %s", j, tenants[i]), Kubernetes: schemas.Kubernetes{PodName: "p", NamespaceName: tenants[i]}}
			v, err := schemas.AppendSingleObject(nil, &r)
			if err != nil {
				t.Fatal(err)
			}
			recs = append(recs, &kgo.Record{Topic: topic, Value: v})
		}
	}
	kafkatest.Produce(t, cl, recs...)
	produced := time.Since(start)

	cfg := testConfig(t, c.ListenAddrs(), srv.URL, map[string]string{
		"SLUICE_INDEXER_LAYOUT": "shared", "SLUICE_INDEXER_LAYOUT_OVERRIDES": strings.Join(overrides, ","),
		"SLUICE_INDEXER_FLUSH_BYTES": "1048576", "SLUICE_INDEXER_FLUSH_INTERVAL": "200ms", "SLUICE_INDEXER_RESCAN_INTERVAL": "1s",
		"SLUICE_INDEXER_COMMIT_INTERVAL": "200ms",
	})
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	indexStart := time.Now()
	ix, _, stop := runIndexer(t, cfg)
	var peakHeap uint64
	deadline := time.Now().Add(90 * time.Second)
	for {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peakHeap = max(peakHeap, ms.HeapInuse)
		ok, err := kafka.CaughtUp(context.Background(), cl, cfg.Group, topics...)
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not every offset committed within 90s (%v)", err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	indexed := time.Since(indexStart)
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	fams := ix.namer.routes.fams.count()
	stop()

	// Every record is stored once: as many documents as records, and each
	// tenant's three found by its tenant field.
	if got := scaleCount(t, srv.URL, "sluice-*", `{"query":{"match_all":{}}}`); got != scaleTenants*scaleRecords {
		t.Errorf("%d documents, want %d", got, scaleTenants*scaleRecords)
	}
	for _, tenant := range tenants {
		if got := scaleCount(t, srv.URL, "sluice-*", fmt.Sprintf(`{"query":{"term":{"tenant":%q}}}`, tenant)); got != scaleRecords {
			t.Errorf("tenant %s: %d documents, want %d", tenant, got, scaleRecords)
		}
	}
	// One shared index for the day, one per dedicated tenant.
	res, err := srv.Client().Get(srv.URL + "/_cat/indices/sluice-*?format=json&h=index,docs.count")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var indices []struct {
		Index string `json:"index"`
		Docs  string `json:"docs.count"`
	}
	if err := json.Unmarshal(body, &indices); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{SharedIndexName("sluice", "", eventDay, time.UTC): (scaleTenants - scaleDedicated) * scaleRecords}
	for i := range scaleDedicated {
		want[IndexName("sluice", tenants[i], "", eventDay, time.UTC)] = scaleRecords
	}
	if len(indices) != len(want) {
		t.Errorf("%d indices, want %d: %s", len(indices), len(want), body)
	}
	for _, idx := range indices {
		if n, _ := strconv.Atoi(idx.Docs); n != want[idx.Index] {
			t.Errorf("index %s holds %s documents, want %d", idx.Index, idx.Docs, want[idx.Index])
		}
	}
	if fams != 1+scaleDedicated {
		t.Errorf("%d index families noted for precreation, want %d", fams, 1+scaleDedicated)
	}
	t.Logf("%d tenants x %d records: produced in %s, indexed and committed in %s (whole test %s); %d indices (dedicated layout: %d); heap in use %.1f MiB before the indexer, peak %.1f MiB, %.1f MiB after; process peak RSS (VmHWM, Kafka and store included) %s",
		scaleTenants, scaleRecords, produced.Round(time.Millisecond), indexed.Round(time.Millisecond), time.Since(start).Round(time.Millisecond),
		len(indices), scaleTenants, mib(before.HeapInuse), mib(peakHeap), mib(after.HeapInuse), vmHWM())
}

// TestDedicatedLayoutIndexCount counts, without a store, the indices the
// bulk actions of 2,000 tenants name in each layout: 2,000 in the
// dedicated layout, 1 in the shared one, 1 + 5 with five tenants kept
// dedicated.
func TestDedicatedLayoutIndexCount(t *testing.T) {
	rec := benchRecords(t, 1)[0]
	for _, tc := range []struct {
		env  map[string]string
		want int
	}{
		{nil, scaleTenants},
		{map[string]string{"SLUICE_INDEXER_LAYOUT": "shared"}, 1},
		{map[string]string{"SLUICE_INDEXER_LAYOUT": "shared", "SLUICE_INDEXER_LAYOUT_OVERRIDES": "t0000=dedicated,t0001=dedicated,t0002=dedicated,t0003=dedicated,t0004=dedicated"}, 1 + 5},
	} {
		ix, err := New(testConfig(t, []string{"127.0.0.1:9092"}, "http://127.0.0.1:9200", tc.env), Options{})
		if err != nil {
			t.Fatal(err)
		}
		var (
			w       docWriter
			b       batch
			infos   = map[string]topicInfo{}
			indices = map[string]bool{}
		)
		for i := range scaleTenants {
			r := *rec
			r.Topic = fmt.Sprintf("logs.parsed.t%04d", i)
			b.reset()
			ix.add(context.Background(), &b, &w, &r, ticket{}, ix.topicInfo(infos, r.Topic))
			var action struct {
				Create struct {
					Index string `json:"_index"`
				} `json:"create"`
			}
			if err := json.Unmarshal(b.buf[b.items[0].start:b.items[0].mid], &action); err != nil {
				t.Fatal(err)
			}
			indices[action.Create.Index] = true
		}
		if len(indices) != tc.want {
			t.Errorf("%v: %d indices, want %d", tc.env, len(indices), tc.want)
		}
	}
}

func scaleCount(t *testing.T, url, index, query string) int {
	t.Helper()
	res, err := httpPost(url+"/"+index+"/_count", query)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Count int `json:"count"`
	}
	if err := json.Unmarshal(res, &out); err != nil {
		t.Fatalf("count: %v: %s", err, res)
	}
	return out.Count
}

func httpPost(url, body string) ([]byte, error) {
	res, err := http.DefaultClient.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	return io.ReadAll(res.Body)
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// vmHWM is the process's peak resident set size, from /proc.
func vmHWM() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
