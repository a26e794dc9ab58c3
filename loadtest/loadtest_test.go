package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicelogs/sluice/devstack"
	"github.com/sluicelogs/sluice/internal/apptest"
	"github.com/sluicelogs/sluice/internal/config"
	"github.com/sluicelogs/sluice/internal/elastic"
	"github.com/sluicelogs/sluice/internal/kafka"
)

// TestMain removes the sluice binary the tests' stages run as
// (apptest.Binary builds it once) when they are done.
func TestMain(m *testing.M) { os.Exit(apptest.Main(m)) }

// TestShortScenario runs loadtest/scenarios/short.yaml: two nodes, two
// indexers, a router killed with SIGKILL every 4 seconds, every kind of
// line. Every line must be accounted for, and the report must hold what it
// promises.
func TestShortScenario(t *testing.T) {
	s, err := ReadScenario("scenarios/short.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var progress bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	rep, err := Run(ctx, s, Options{Bin: apptest.Binary(t), Dir: dir, Progress: &progress, ProgressEvery: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	rep.Print(&table)
	t.Logf("progress:\n%s\nreport:\n%s", progress.String(), table.String())
	a := rep.Accounting
	if !rep.OK || !a.OK() || !rep.Drained {
		t.Fatalf("the run failed its accounting")
	}
	if a.Written < 2000 || a.DeadLettered == 0 || a.Indexed+a.DeadLettered != a.Written {
		t.Errorf("accounting %+v: want over 2000 lines written, some dead-lettered, every one placed", a)
	}
	if a.DeadLetterReasons["router: parse_error"] != a.DeadLettered {
		t.Errorf("dead-letter reasons %v, want every dead letter a router parse_error", a.DeadLetterReasons)
	}
	for _, st := range rep.Stages {
		if st.Stage == "harness" {
			continue
		}
		if st.CPUSeconds <= 0 || st.PeakRSSBytes <= 0 || st.Records <= 0 {
			t.Errorf("stage %s: %+v: want CPU time, peak RSS and records measured", st.Stage, st)
		}
		// The shipper's memory is bounded by its settings (4 MiB in flight
		// by default), never by load: far below this.
		if st.Stage == "shipper" && st.PeakRSSBytes > 256<<20 {
			t.Errorf("shipper peak RSS %d MiB", st.PeakRSSBytes>>20)
		}
		if st.Stage == "router" && st.Restarts < 1 {
			t.Errorf("the router was never killed: %+v", st)
		}
	}
	if rep.Latency.Samples == 0 || rep.Latency.P50 <= 0 || rep.Latency.P99 < rep.Latency.P50 || rep.Latency.Max < rep.Latency.P99 {
		t.Errorf("latency %+v", rep.Latency)
	}
	// The machine-readable summary and the charts are written.
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil || back.Accounting.Written != a.Written || !back.OK {
		t.Errorf("summary.json: %v, written %d", err, back.Accounting.Written)
	}
	for _, chart := range []string{"throughput.svg", "latency.svg", "lag.svg"} {
		if fi, err := os.Stat(filepath.Join(dir, chart)); err != nil || fi.Size() < 1000 {
			t.Errorf("chart %s: %v", chart, err)
		}
	}
	if !bytes.Contains(table.Bytes(), []byte("PASS")) {
		t.Errorf("the table does not say PASS")
	}
}

// TestExternalServers runs a small scenario against servers given as
// settings, as with real Kafka and Elasticsearch: here an in-process kfake
// and the embedded store that the harness does not start itself.
func TestExternalServers(t *testing.T) {
	s, err := ParseScenario([]byte(`name: external
duration: 3s
rate: 200
containers: 2
tenants: [ext]
mix: {json: 0.5, malformed: 0.05}
drain_timeout: 1m
latency_sample_every: 10
`))
	if err != nil {
		t.Fatal(err)
	}
	k, err := devstack.StartKafka("127.0.0.1:0", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	st, err := devstack.StartStore("127.0.0.1:0", t.TempDir(), nil, devstack.Faults{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// The servers are named by settings, as the command's users name them;
	// the stages read the same environment.
	t.Setenv("SLUICE_KAFKA_BROKERS", strings.Join(k.Brokers(), ","))
	t.Setenv("SLUICE_ELASTICSEARCH_URLS", st.URL())
	t.Setenv("SLUICE_INDEXER_REPLICAS", "0")
	var kc kafka.Config
	var ec elastic.Config
	for _, cfg := range []any{&kc, &ec} {
		if err := config.Load(t.Context(), cfg); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	rep, err := Run(t.Context(), s, Options{Bin: apptest.Binary(t), Dir: dir, Kafka: &kc, Elasticsearch: &ec})
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	rep.Print(&table)
	if !rep.OK || rep.Accounting.Written < 500 || rep.Accounting.DeadLettered == 0 {
		t.Fatalf("run against given servers:\n%s", table.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "kafka")); err == nil {
		t.Errorf("the harness started a Kafka of its own")
	}
	// Faults that need the embedded servers are refused.
	s.Faults.KafkaOutage = &Window{At: Duration(time.Second), For: Duration(time.Second)}
	if _, err := Run(t.Context(), s, Options{Bin: "unused", Dir: t.TempDir(), Kafka: &kc, Elasticsearch: &ec}); err == nil || !strings.Contains(err.Error(), "kafka_outage needs the embedded Kafka") {
		t.Errorf("a Kafka outage against given servers: %v", err)
	}
}
