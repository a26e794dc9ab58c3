package shipper

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sethvargo/go-envconfig"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/internal/config"
	"github.com/sluicelogs/sluice/internal/kafkatest"
	"github.com/sluicelogs/sluice/internal/nodelog"
	"github.com/sluicelogs/sluice/internal/testwait"
	"github.com/sluicelogs/sluice/schemas"
)

// newCluster starts an in-process Kafka with the given topics.
func newCluster(t testing.TB, topics ...string) *kfake.Cluster {
	t.Helper()
	return kafkatest.Cluster(t, kafkatest.Topics(3, topics...))
}

// testConfig is the default configuration (as loaded from an empty
// environment) pointed at a node tree and brokers, with fast timers.
func testConfig(t testing.TB, node *nodelog.Node, brokers []string, env map[string]string) Config {
	t.Helper()
	vars := map[string]string{
		"SLUICE_SHIPPER_PATHS":               node.ContainersGlob(),
		"SLUICE_SHIPPER_CHECKPOINT_DIR":      filepath.Join(node.Root, "checkpoints"),
		"SLUICE_NODE_NAME":                   "node-a",
		"SLUICE_SHIPPER_RESCAN_INTERVAL":     "100ms",
		"SLUICE_SHIPPER_POLL_INTERVAL":       "20ms",
		"SLUICE_SHIPPER_CHECKPOINT_INTERVAL": "100ms",
		"SLUICE_SHIPPER_SHUTDOWN_TIMEOUT":    "10s",
		"SLUICE_SHIPPER_TENANT_RETRY_MAX":    "500ms",
	}
	if brokers != nil {
		vars["SLUICE_KAFKA_BROKERS"] = strings.Join(brokers, ",")
	}
	for k, v := range env {
		vars[k] = v
	}
	var cfg Config
	if err := config.LoadFrom(context.Background(), &cfg, envconfig.MapLookuper(vars)); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// defaultConfig is the shipper's configuration at its defaults, set only
// for where it reads, writes and saves.
func defaultConfig(t testing.TB, node *nodelog.Node, brokers []string) Config {
	t.Helper()
	var cfg Config
	vars := map[string]string{
		"SLUICE_SHIPPER_PATHS":          node.ContainersGlob(),
		"SLUICE_SHIPPER_CHECKPOINT_DIR": filepath.Join(node.Root, "checkpoints"),
		"SLUICE_NODE_NAME":              "node-a",
		"SLUICE_KAFKA_BROKERS":          strings.Join(brokers, ","),
	}
	if err := config.LoadFrom(context.Background(), &cfg, envconfig.MapLookuper(vars)); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// running is a shipper running in the background of a test.
type running struct {
	sh     *Shipper
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

func startShipper(t testing.TB, cfg Config, o Options) *running {
	t.Helper()
	reg := prometheus.NewRegistry()
	o.Registerer = reg
	ready := make(chan struct{})
	var readyOnce sync.Once
	o.Ready = func(ok bool) {
		if ok {
			readyOnce.Do(func() { close(ready) })
		}
	}
	if o.Logger == nil && testing.Verbose() {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	sh, err := New(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{sh: sh, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- sh.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	if !o.Once {
		// Wait for the first scan, so that what a test writes next is new.
		select {
		case <-ready:
		case <-time.After(10 * time.Second):
			t.Fatal("shipper not ready within 10s")
		}
	}
	return r
}

// stop cancels the shipper and waits for Run to return (once).
func (r *running) stop(t testing.TB) {
	t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("shipper did not stop within 30s")
	}
}

// line is one delivered record, as the tests check it.
type line struct {
	topic string
	key   string
	rec   schemas.Record
}

// consumer reads topics from the start and collects decoded records.
type consumer struct {
	t   testing.TB
	cl  *kgo.Client
	dec *schemas.Decoder

	mu    sync.Mutex
	lines []line
}

func newConsumer(t testing.TB, brokers []string, topics ...string) *consumer {
	t.Helper()
	return &consumer{t: t, cl: rawConsumer(t, brokers, topics...), dec: schemas.NewDecoder()}
}

// rawConsumer is a client that reads topics from their start, closed at
// the end of the test.
func rawConsumer(t testing.TB, brokers []string, topics ...string) *kgo.Client {
	t.Helper()
	return kafkatest.ClientAt(t, brokers, kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(50*time.Millisecond))
}

// waitFor polls until cond holds for the lines collected so far, and
// returns them; on timeout it reports a test error and returns what came.
func (c *consumer) waitFor(timeout time.Duration, what string, cond func([]line) bool) []line {
	c.t.Helper()
	var got []line
	testwait.Eventually(c.t, timeout, what, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		fs := c.cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			rec, _, err := c.dec.Decode(context.Background(), r.Value)
			if err != nil {
				c.t.Errorf("decode record at %s/%d@%d: %v", r.Topic, r.Partition, r.Offset, err)
				return
			}
			c.mu.Lock()
			c.lines = append(c.lines, line{r.Topic, string(r.Key), rec})
			c.mu.Unlock()
		})
		c.mu.Lock()
		got = append([]line(nil), c.lines...)
		c.mu.Unlock()
		return cond(got), fmt.Sprintf("have %d records", len(got))
	})
	return got
}

func atLeast(n int) func([]line) bool { return func(l []line) bool { return len(l) >= n } }

// seqOf extracts the sequence number the test writers put at the start of
// every message: "<container>#<n> ...".
func seqOf(msg string) (string, int, bool) {
	head, _, _ := strings.Cut(msg, " ")
	name, n, ok := strings.Cut(head, "#")
	if !ok {
		return "", 0, false
	}
	var i int
	if _, err := fmt.Sscanf(n, "%d", &i); err != nil {
		return "", 0, false
	}
	return name, i, true
}

func message(name string, seq, size int) string {
	m := fmt.Sprintf("%s#%d ", name, seq)
	if size > len(m) {
		m += strings.Repeat(string(rune('a'+seq%26)), size-len(m))
	}
	return m
}

// TestShipsEveryLine writes many containers' logs with partial lines, long
// lines and kubelet-style rotation while the shipper runs, and checks that
// every message arrives once, whole, in its tenant's topic, with its
// metadata.
func TestShipsEveryLine(t *testing.T) {
	cluster := newCluster(t, "logs.raw.shop", "logs.raw.pay", "logs.raw.web")
	brokers := cluster.ListenAddrs()
	node := &nodelog.Node{Root: t.TempDir()}
	cfg := testConfig(t, node, brokers, map[string]string{
		"SLUICE_SHIPPER_TENANT_MAP":         "payments-*=pay",
		"SLUICE_SHIPPER_EXCLUDE":            "kube-system/*",
		"SLUICE_SHIPPER_MAX_LINE_BYTES":     "4096",
		"SLUICE_SHIPPER_MAX_BUFFERED_BYTES": "65536",
	})

	type spec struct {
		ns, pod, name, tenant string
		format                nodelog.Format
	}
	specs := []spec{
		{"shop", "cart-1", "app", "shop", nodelog.CRI},
		{"shop", "cart-2", "app", "shop", nodelog.CRI},
		{"shop", "cart-2", "sidecar", "shop", nodelog.Docker},
		{"payments-eu", "ledger-0", "ledger", "pay", nodelog.CRI},
		{"payments-us", "ledger-0", "ledger", "pay", nodelog.Docker},
		{"web", "front-1", "nginx", "web", nodelog.CRI},
		{"kube-system", "coredns-1", "coredns", "", nodelog.CRI},
	}
	const perContainer = 400
	containers := make([]*nodelog.Container, len(specs))
	for i, s := range specs {
		c, err := node.AddContainer(s.ns, s.pod, s.name, s.format)
		if err != nil {
			t.Fatal(err)
		}
		c.SplitAt = 300 // many messages become partial lines
		containers[i] = c
	}
	startShipper(t, cfg, Options{})

	var wg sync.WaitGroup
	for i, c := range containers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 1))
			for n := range perContainer {
				size := 20 + rng.IntN(200)
				switch {
				case n%50 == 7:
					size = 5000 // over the 4096 cap: truncated
				case n%10 == 3:
					size = 700 + rng.IntN(600) // several partial lines
				}
				stream := "stdout"
				if n%4 == 1 {
					stream = "stderr"
				}
				if err := c.Write(time.Now(), stream, message(c.Pod+"/"+c.Name, n, size)); err != nil {
					t.Error(err)
					return
				}
				if n%97 == 96 {
					if _, err := c.Rotate(); err != nil {
						t.Error(err)
						return
					}
				}
				if n%20 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		})
	}
	wg.Wait()

	want := perContainer * (len(specs) - 1) // kube-system is excluded
	cons := newConsumer(t, brokers, "logs.raw.shop", "logs.raw.pay", "logs.raw.web")
	// Completeness, not speed, is asserted here: the wait is long. A run
	// that needs more than a few seconds is logged, as a stall to look at.
	start := time.Now()
	got := cons.waitFor(90*time.Second, "every message", atLeast(want))
	if d := time.Since(start); d > 10*time.Second {
		t.Logf("every message arrived only after %v", d.Round(time.Second))
	}
	time.Sleep(300 * time.Millisecond) // anything extra (a duplicate) would show up now
	got = cons.waitFor(time.Second, "", func([]line) bool { return true })
	if len(got) != want {
		t.Errorf("got %d records, want exactly %d", len(got), want)
	}

	seen := make(map[string]map[int]bool)
	for _, l := range got {
		r := l.rec
		name, n, ok := seqOf(r.Log)
		if !ok {
			t.Errorf("record without a sequence: %.80q", r.Log)
			continue
		}
		var s spec
		var c *nodelog.Container
		for i, sp := range specs {
			if sp.pod+"/"+sp.name == name && containers[i].Namespace == r.Kubernetes.NamespaceName {
				s, c = sp, containers[i]
			}
		}
		if c == nil {
			t.Errorf("record from unknown container %q/%q", r.Kubernetes.NamespaceName, name)
			continue
		}
		if l.topic != "logs.raw."+s.tenant || r.Tenant != s.tenant {
			t.Errorf("%s#%d: topic %s tenant %s, want tenant %s", name, n, l.topic, r.Tenant, s.tenant)
		}
		if l.key != c.ID {
			t.Errorf("%s#%d: key %q, want container id %q", name, n, l.key, c.ID)
		}
		k := r.Kubernetes
		if k.PodName != c.Pod || k.ContainerName != c.Name || k.DockerID != c.ID || k.PodID != c.PodUID || k.Host != "node-a" {
			t.Errorf("%s#%d: metadata %+v", name, n, k)
		}
		if wantStream := map[bool]string{true: "stderr", false: "stdout"}[n%4 == 1]; r.Stream != wantStream {
			t.Errorf("%s#%d: stream %q, want %q", name, n, r.Stream, wantStream)
		}
		wantLen := len(message(name, n, 0))
		switch {
		case n%50 == 7:
			if !r.Truncated || r.OriginalSize != 5000 || len(r.Log) != 4096 {
				t.Errorf("%s#%d: truncated=%v original_size=%d len=%d, want true 5000 4096", name, n, r.Truncated, r.OriginalSize, len(r.Log))
			}
		default:
			if r.Truncated || len(r.Log) < wantLen || strings.ContainsAny(r.Log[wantLen:], "\n ") {
				t.Errorf("%s#%d: message not whole: truncated=%v %.60q", name, n, r.Truncated, r.Log)
			}
		}
		if len(r.ID) != 32 {
			t.Errorf("%s#%d: id %q", name, n, r.ID)
		}
		full := c.Namespace + "/" + name
		if seen[full] == nil {
			seen[full] = make(map[int]bool)
		}
		if seen[full][n] {
			t.Errorf("%s#%d delivered twice", full, n)
		}
		seen[full][n] = true
	}
	for _, s := range specs[:len(specs)-1] {
		name := s.ns + "/" + s.pod + "/" + s.name
		for n := range perContainer {
			if !seen[name][n] {
				t.Errorf("%s#%d missing", name, n)
			}
		}
	}
}

// TestOnceStdout ships the sample node tree to a buffer and checks what a
// person debugging a node sees; a second run with the same checkpoints
// prints nothing.
func TestOnceStdout(t *testing.T) {
	src, err := filepath.Abs("testdata/node")
	if err != nil {
		t.Fatal(err)
	}
	node := &nodelog.Node{Root: src}
	env := map[string]string{
		"SLUICE_SHIPPER_CHECKPOINT_DIR": t.TempDir(),
		"SLUICE_SHIPPER_EXCLUDE":        "kube-system",
	}
	var out bytes.Buffer
	r := startShipper(t, testConfig(t, node, nil, env), Options{Stdout: &out, Once: true})
	select {
	case err := <-r.done:
		r.cancel = nil
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("once mode did not finish")
	}

	var recs []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("output line is not JSON: %v: %s", err, l)
		}
		recs = append(recs, m)
	}
	byLog := func(prefix string) map[string]any {
		for _, m := range recs {
			if strings.HasPrefix(m["log"].(string), prefix) {
				return m
			}
		}
		t.Errorf("no record starting with %q", prefix)
		return map[string]any{}
	}
	if len(recs) != 14 {
		t.Errorf("got %d records, want 14:\n%s", len(recs), out.String())
	}
	big := byLog(`{"level":"info","msg":"big payload"`)
	if l, _ := big["log"].(string); len(l) != len(`{"level":"info","msg":"big payload","data":"`)+180+2 {
		t.Errorf("CRI partial lines not joined: %q", l)
	}
	settle := byLog(`{"event":"settlement"`)
	if l, _ := settle["log"].(string); !strings.HasSuffix(l, `bbb"}`) || len(l) != len(`{"event":"settlement","batch":"`)+16384+100+2 {
		t.Errorf("docker split line not joined (len %d)", len(l))
	}
	if m := byLog("caf"); m["invalid_utf8"] != true || m["log"] != "caf\uFFFD au lait" {
		t.Errorf("invalid UTF-8 not replaced and flagged: %v", m)
	}
	if m := byLog("plain text"); m["source"].(map[string]any)["format"] != "raw" {
		t.Errorf("raw line: %v", m)
	}
	k := byLog(`{"level": "warn"`)["kubernetes"].(map[string]any)
	if k["namespace_name"] != "shop" || k["pod_name"] != "checkout-7c9f8d6b5-x2x9k" || k["container_name"] != "checkout" ||
		k["pod_id"] != "0b6f7f8e-2c1a-4f57-9d2e-5a3c1e2f4b6d" || k["host"] != "node-a" {
		t.Errorf("kubernetes metadata: %v", k)
	}
	for _, m := range recs {
		if m["kubernetes"].(map[string]any)["namespace_name"] == "kube-system" {
			t.Errorf("excluded namespace shipped: %v", m["log"])
		}
	}

	// Again, from the saved checkpoints: nothing new.
	out.Reset()
	r = startShipper(t, testConfig(t, node, nil, env), Options{Stdout: &out, Once: true})
	if err := <-r.done; err != nil {
		t.Fatal(err)
	}
	r.cancel = nil
	if out.Len() != 0 {
		t.Errorf("second run re-shipped:\n%s", out.String())
	}
}

// TestTenantIsolation: one tenant's topic is missing. Its files pause; the
// other tenants keep flowing; once the topic exists everything arrives.
func TestTenantIsolation(t *testing.T) {
	cluster := newCluster(t, "logs.raw.good")
	brokers := cluster.ListenAddrs()
	node := &nodelog.Node{Root: t.TempDir()}
	good, _ := node.AddContainer("good", "p", "c", nodelog.CRI)
	bad, _ := node.AddContainer("bad", "p", "c", nodelog.CRI)
	r := startShipper(t, testConfig(t, node, brokers, nil), Options{})

	cons := newConsumer(t, brokers, "logs.raw.good", "logs.raw.bad")
	for n := range 50 {
		_ = bad.Write(time.Now(), "stdout", message("bad", n, 50))
		_ = good.Write(time.Now(), "stdout", message("good", n, 50))
	}
	cons.waitFor(20*time.Second, "the good tenant's lines", atLeast(50))
	// While the bad tenant is paused, the good one still flows.
	for n := 50; n < 100; n++ {
		_ = good.Write(time.Now(), "stdout", message("good", n, 50))
	}
	cons.waitFor(20*time.Second, "more of the good tenant's lines", atLeast(100))
	testwait.For(t, 20*time.Second, "a produce error counted for the missing topic", func() (bool, string) {
		return testutil.ToFloat64(r.sh.m.produceErrors.WithLabelValues("bad", reasonTopicMissing)) > 0, ""
	})
	if got := cons.waitFor(time.Second, "", func([]line) bool { return true }); len(got) != 100 {
		t.Errorf("got %d records while the bad tenant's topic was missing, want the good tenant's 100", len(got))
	}

	kafkatest.CreateTopics(t, cons.cl, 1, "logs.raw.bad")
	got := cons.waitFor(30*time.Second, "the bad tenant's lines after its topic appeared", func(l []line) bool {
		n := 0
		for _, x := range l {
			if x.topic == "logs.raw.bad" {
				n++
			}
		}
		return n >= 50
	})
	seen := map[string]bool{}
	for _, l := range got {
		seen[l.rec.Log[:strings.IndexByte(l.rec.Log, ' ')]] = true
	}
	for n := range 50 {
		if !seen[fmt.Sprintf("bad#%d", n)] {
			t.Errorf("bad#%d missing", n)
		}
	}
}

// TestRotationWhileStopped: the shipper stops, the file is rotated twice
// and written to, and the shipper comes back: every line arrives, none
// twice.
func TestRotationWhileStopped(t *testing.T) {
	cluster := newCluster(t, "logs.raw.shop")
	brokers := cluster.ListenAddrs()
	node := &nodelog.Node{Root: t.TempDir()}
	c, _ := node.AddContainer("shop", "p", "c", nodelog.CRI)
	cfg := testConfig(t, node, brokers, nil)
	cons := newConsumer(t, brokers, "logs.raw.shop")

	n := 0
	write := func(k int) {
		for range k {
			_ = c.Write(time.Now(), "stdout", message("c", n, 80))
			n++
		}
	}
	write(30)
	r := startShipper(t, cfg, Options{})
	cons.waitFor(20*time.Second, "first lines", atLeast(30))
	r.stop(t)

	write(10)
	rotate(t, c)
	write(10)
	rotate(t, c)
	// A partial message across a rotation: P lines in the old file, the F
	// line in the new one.
	c.SplitAt = 60
	enc := c.Encode(time.Now(), "stdout", message("c", n, 150))
	n++
	cut := bytes.LastIndexByte(enc[:len(enc)-1], '\n') + 1
	_ = c.WriteRaw(enc[:cut])
	rotate(t, c)
	_ = c.WriteRaw(enc[cut:])
	write(10)

	startShipper(t, cfg, Options{})
	got := cons.waitFor(20*time.Second, "every line", atLeast(n))
	time.Sleep(200 * time.Millisecond)
	got = cons.waitFor(time.Second, "", func([]line) bool { return true })
	seen := map[int]int{}
	for _, l := range got {
		_, k, _ := seqOf(l.rec.Log)
		seen[k]++
	}
	for k := range n {
		if seen[k] != 1 {
			t.Errorf("c#%d delivered %d times", k, seen[k])
		}
	}
}

// TestCopyTruncate: a file truncated in place is read again from its start.
func TestCopyTruncate(t *testing.T) {
	cluster := newCluster(t, "logs.raw.shop")
	brokers := cluster.ListenAddrs()
	node := &nodelog.Node{Root: t.TempDir()}
	c, _ := node.AddContainer("shop", "p", "c", nodelog.CRI)
	startShipper(t, testConfig(t, node, brokers, nil), Options{})
	cons := newConsumer(t, brokers, "logs.raw.shop")
	for n := range 20 {
		_ = c.Write(time.Now(), "stdout", message("c", n, 80))
	}
	cons.waitFor(20*time.Second, "lines before truncation", atLeast(20))
	if err := os.Truncate(c.FilePath(), 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	for n := 20; n < 25; n++ {
		_ = c.Write(time.Now(), "stdout", message("c", n, 10))
	}
	got := cons.waitFor(20*time.Second, "lines after truncation", atLeast(25))
	ids := map[string]bool{}
	for _, l := range got {
		if ids[l.rec.ID] {
			t.Errorf("id %s reused after truncation", l.rec.ID)
		}
		ids[l.rec.ID] = true
	}
}

// freePort returns a loopback port nothing listens on right now.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestKafkaOutage: the broker goes away under load. The shipper stops
// reading once its buffer budget is spent (memory stays under the bound),
// and after the broker returns every line is delivered.
// restartableBroker returns a function that starts a one-broker cluster
// with topic logs.raw.shop, on the same port and data directory each time:
// the same broker, back after an outage.
func restartableBroker(t *testing.T) func() *kfake.Cluster {
	t.Helper()
	port := freePort(t)
	dataDir := t.TempDir()
	return func() *kfake.Cluster {
		return kafkatest.Cluster(t, kafkatest.With(kfake.Ports(port), kfake.DataDir(dataDir)), kafkatest.Topics(1, "logs.raw.shop"))
	}
}

func TestKafkaOutage(t *testing.T) {
	startBroker := restartableBroker(t)
	broker := startBroker()
	brokers := broker.ListenAddrs()
	node := &nodelog.Node{Root: t.TempDir()}
	const budget = 64 << 10
	cfg := testConfig(t, node, brokers, map[string]string{
		"SLUICE_SHIPPER_MAX_LINE_BYTES":     "4096",
		"SLUICE_SHIPPER_MAX_BUFFERED_BYTES": fmt.Sprint(budget),
	})
	var containers []*nodelog.Container
	for i := range 3 {
		c, err := node.AddContainer("shop", fmt.Sprintf("p%d", i), "app", nodelog.CRI)
		if err != nil {
			t.Fatal(err)
		}
		containers = append(containers, c)
	}
	r := startShipper(t, cfg, Options{})

	// Sample the buffered bytes the whole time.
	var maxBuffered float64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(2 * time.Millisecond):
			}
			maxBuffered = max(maxBuffered, float64(r.sh.budget.usedSeen.Load()))
		}
	}()

	written := 0
	write := func(k int) {
		for range k {
			for i, c := range containers {
				_ = c.Write(time.Now(), "stdout", message(fmt.Sprintf("p%d", i), written, 200))
			}
			written++
		}
	}
	write(200)
	cons := newConsumer(t, brokers, "logs.raw.shop")
	cons.waitFor(20*time.Second, "lines before the outage", atLeast(3*200))
	cons.cl.Close()

	broker.Close()
	write(2000) // ~1.4 MB while Kafka is down: far more than the budget
	time.Sleep(2 * time.Second)
	if u := testutil.ToFloat64(r.sh.m.unshippedBytes.WithLabelValues("shop")); u < 1<<20 {
		t.Errorf("unshipped bytes %.0f during the outage; want the backlog to show (> 1 MiB)", u)
	}

	broker = startBroker()
	defer broker.Close()
	write(200)
	cons = newConsumer(t, brokers, "logs.raw.shop")
	got := cons.waitFor(60*time.Second, "every line after the outage", func(l []line) bool {
		seen := map[string]bool{}
		for _, x := range l {
			seen[x.rec.Log[:strings.IndexByte(x.rec.Log, ' ')]] = true
		}
		return len(seen) == 3*written
	})
	close(stopSampling)
	<-sampled
	if maxBuffered > budget {
		t.Errorf("buffered bytes reached %.0f, over the %d bound", maxBuffered, budget)
	}
	// One tenant alone fills the budget but for the reserve kept for the
	// others (one tenant's share), no more.
	if most := budget - cfg.tenantMaxBuffered(); maxBuffered > float64(most) || maxBuffered < float64(most)/2 {
		t.Errorf("buffered bytes peaked at %.0f; want the budget less the reserve (%d) filled, not exceeded", maxBuffered, most)
	}
	t.Logf("%d lines written, %d records read, buffered bytes peaked at %.0f of %d", 3*written, len(got), maxBuffered, budget)
}

// TestChattyContainerDoesNotStarveOthers: one container has a huge backlog;
// a quiet one's lines still go out while the backlog drains.
func TestChattyContainerDoesNotStarveOthers(t *testing.T) {
	cluster := newCluster(t, "logs.raw.shop")
	brokers := cluster.ListenAddrs()
	node := &nodelog.Node{Root: t.TempDir()}
	chatty, _ := node.AddContainer("shop", "chatty", "app", nodelog.CRI)
	quiet, _ := node.AddContainer("shop", "quiet", "app", nodelog.CRI)
	const backlog = 100000
	var buf []byte
	for n := range backlog {
		buf = append(buf, chatty.Encode(time.Now(), "stdout", message("chatty", n, 100))...)
	}
	if err := chatty.WriteRaw(buf); err != nil {
		t.Fatal(err)
	}
	r := startShipper(t, testConfig(t, node, brokers, map[string]string{
		"SLUICE_SHIPPER_MAX_LINE_BYTES":     "1024",
		"SLUICE_SHIPPER_MAX_BUFFERED_BYTES": "16384",
	}), Options{})
	for n := range 20 {
		_ = quiet.Write(time.Now(), "stdout", message("quiet", n, 100))
	}
	cons := newConsumer(t, brokers, "logs.raw.shop")
	cons.waitFor(60*time.Second, "the quiet container's lines", func(l []line) bool {
		n := 0
		for _, x := range l {
			if strings.HasPrefix(x.rec.Log, "quiet#") {
				n++
			}
		}
		return n == 20
	})
	produced := testutil.ToFloat64(r.sh.m.recordsProduced.WithLabelValues("shop"))
	if produced >= backlog {
		t.Errorf("the quiet container waited for the whole backlog (%v records produced first)", produced)
	}
	t.Logf("quiet container delivered after %v of %d backlog records", produced-20, backlog)
}

func testutilCounter(r *running, tenant string) float64 {
	return testutil.ToFloat64(r.sh.m.recordsProduced.WithLabelValues(tenant))
}

// TestDeletedContainerIsDrained: a pod is deleted (its symlink and log
// directory removed) while its tenant is paused with lines unshipped. The
// shipper still holds the file open: once the tenant's topic exists, every
// line is delivered and the follower is forgotten.
func TestDeletedContainerIsDrained(t *testing.T) {
	cluster := newCluster(t)
	brokers := cluster.ListenAddrs()
	node := &nodelog.Node{Root: t.TempDir()}
	c, _ := node.AddContainer("gone", "p", "c", nodelog.CRI)
	for n := range 100 {
		_ = c.Write(time.Now(), "stdout", message("c", n, 60))
	}
	r := startShipper(t, testConfig(t, node, brokers, nil), Options{})
	testwait.For(t, 20*time.Second, "a produce error for the missing topic", func() (bool, string) {
		return testutil.ToFloat64(r.sh.m.produceErrors.WithLabelValues("gone", reasonTopicMissing)) > 0, ""
	})
	if err := os.Remove(c.LinkPath()); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Dir(filepath.Dir(c.FilePath()))); err != nil {
		t.Fatal(err)
	}
	cons := newConsumer(t, brokers, "logs.raw.gone")
	kafkatest.CreateTopics(t, cons.cl, 1, "logs.raw.gone")
	got := cons.waitFor(30*time.Second, "the deleted container's lines", atLeast(100))
	seen := map[int]bool{}
	for _, l := range got {
		_, n, _ := seqOf(l.rec.Log)
		seen[n] = true
	}
	for n := range 100 {
		if !seen[n] {
			t.Errorf("c#%d missing", n)
		}
	}
	testwait.For(t, 20*time.Second, "the deleted file's follower to be forgotten", func() (bool, string) {
		return testutil.ToFloat64(r.sh.m.filesTracked) == 0, ""
	})
}

// TestInodeReuse: a checkpoint names an inode that now holds a different
// file (same inode, other first line). The new file is read from its
// start, not from the old offset.
func TestInodeReuse(t *testing.T) {
	node := &nodelog.Node{Root: t.TempDir()}
	c, _ := node.AddContainer("shop", "p", "c", nodelog.CRI)
	for n := range 10 {
		_ = c.Write(time.Now(), "stdout", message("c", n, 60))
	}
	fi, err := os.Stat(c.FilePath())
	if err != nil {
		t.Fatal(err)
	}
	_, ino, _ := statIdentity(fi)
	cfg := testConfig(t, node, nil, nil)
	// The saved position: same path and inode, another file's fingerprint,
	// an offset in the middle.
	store := checkpointStore{dir: cfg.CheckpointDir}
	stale := followerPosition{Key: c.LinkPath(), Path: c.FilePath(), fileIdentity: fileIdentity{Inode: ino, FPLen: 20, FP: 12345}, Offset: fi.Size() / 2}
	if err := store.save("node-a", []followerPosition{stale}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	r := startShipper(t, cfg, Options{Stdout: &out, Once: true})
	if err := <-r.done; err != nil {
		t.Fatal(err)
	}
	r.cancel = nil
	if n := bytes.Count(out.Bytes(), []byte("\n")); n != 10 {
		t.Errorf("shipped %d lines, want all 10 from the start of the reused inode", n)
	}
	// The same position with the right fingerprint resumes mid-file.
	fpLen, fp, err := readFingerprint(mustOpen(t, c.FilePath()), false)
	if err != nil {
		t.Fatal(err)
	}
	half := int64(bytes.Index(mustRead(t, c.FilePath()), []byte("c#5 ")))
	half = int64(bytes.LastIndexByte(mustRead(t, c.FilePath())[:half], '\n') + 1)
	good := followerPosition{Key: c.LinkPath(), Path: c.FilePath(), fileIdentity: fileIdentity{Inode: ino, FPLen: fpLen, FP: fp}, Offset: half}
	if err := store.save("node-a", []followerPosition{good}); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	r = startShipper(t, cfg, Options{Stdout: &out, Once: true})
	if err := <-r.done; err != nil {
		t.Fatal(err)
	}
	r.cancel = nil
	if n := bytes.Count(out.Bytes(), []byte("\n")); n != 5 || !bytes.Contains(out.Bytes(), []byte(`"log":"c#5 `)) {
		t.Errorf("resumed with %d lines, want c#5..c#9:\n%s", n, out.String())
	}
}

// TestPartialAcrossLiveRotation: a message split into partial lines is
// rotated in the middle while the shipper runs; it arrives whole, once.
func TestPartialAcrossLiveRotation(t *testing.T) {
	cluster := newCluster(t, "logs.raw.shop")
	brokers := cluster.ListenAddrs()
	node := &nodelog.Node{Root: t.TempDir()}
	c, _ := node.AddContainer("shop", "p", "c", nodelog.CRI)
	c.SplitAt = 50
	startShipper(t, testConfig(t, node, brokers, nil), Options{})
	cons := newConsumer(t, brokers, "logs.raw.shop")
	for n := range 20 {
		enc := c.Encode(time.Now(), "stdout", message("c", n, 180)) // four physical lines
		cut := bytes.IndexByte(enc, '\n') + 1
		_ = c.WriteRaw(enc[:cut])
		if n%3 == 0 {
			time.Sleep(30 * time.Millisecond) // let the shipper see the P line first
			rotate(t, c)
		}
		_ = c.WriteRaw(enc[cut:])
	}
	got := cons.waitFor(20*time.Second, "every joined message", atLeast(20))
	time.Sleep(200 * time.Millisecond)
	got = cons.waitFor(time.Second, "", func([]line) bool { return true })
	if len(got) != 20 {
		t.Errorf("got %d records, want 20", len(got))
	}
	for _, l := range got {
		if _, n, ok := seqOf(l.rec.Log); !ok || l.rec.Log != message("c", n, 180) {
			t.Errorf("message not joined: %q", l.rec.Log)
		}
	}
}

func mustOpen(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCheckpointedFileGone: while the shipper was down its file was
// rotated twice and the older rotation compressed away. The newer
// rotation and the current file are still shipped in full.
func TestCheckpointedFileGone(t *testing.T) {
	cfg, c, w := oneContainer(t, "shop")
	write := w.write
	runOnce := func() []string { return heads(runOnceStdout(t, cfg)) }
	write(10)
	if got := runOnce(); len(got) != 10 {
		t.Fatalf("first run shipped %d lines, want 10", len(got))
	}
	write(5) // unshipped lines in the file that will disappear
	first := rotate(t, c)
	write(10)
	rotate(t, c)
	write(10)
	if err := os.Remove(first); err != nil { // kubelet compressed it
		t.Fatal(err)
	}
	got := runOnce()
	want := []string{}
	for k := 15; k < 35; k++ {
		want = append(want, fmt.Sprintf("c#%d", k))
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("shipped %v\nwant     %v", got, want)
	}
}

// TestRotationsFollowedUnderBackpressure: the reader is held back (its
// tenant's topic is missing) while kubelet rotates three times and deletes
// two of the rotations (as it does once they are compressed). The shipper
// opened each rotation when it appeared, so nothing is lost.
func TestRotationsFollowedUnderBackpressure(t *testing.T) {
	cluster := newCluster(t)
	brokers := cluster.ListenAddrs()
	node := &nodelog.Node{Root: t.TempDir()}
	c, _ := node.AddContainer("late", "p", "c", nodelog.CRI)
	w := &numbered{c: c}
	write := w.write
	write(20)
	r := startShipper(t, testConfig(t, node, brokers, nil), Options{})
	rotated := rotateWhileHeldBack(t, r, c, w)
	for _, p := range rotated[1:] {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	cons := newConsumer(t, brokers, "logs.raw.late")
	kafkatest.CreateTopics(t, cons.cl, 1, "logs.raw.late")
	got := cons.waitFor(30*time.Second, "every line", func(l []line) bool {
		seen := map[string]bool{}
		for _, x := range l {
			seen[x.rec.Log] = true
		}
		return len(seen) == w.n
	})
	t.Logf("%d lines in 4 files, %d records", w.n, len(got))
}

// scriptSink is an output whose first delivery of chosen messages fails.
type scriptSink struct {
	mu       sync.Mutex
	failOnce map[string]bool
	got      []string
}

func (s *scriptSink) name() string                    { return "script" }
func (s *scriptSink) sync() error                     { return nil }
func (s *scriptSink) flush(ctx context.Context) error { return nil }
func (s *scriptSink) close()                          {}
func (s *scriptSink) topicMaxMessage(context.Context, string) (int, error) {
	return 0, nil
}
func (s *scriptSink) resetTopic(string) {}
func (s *scriptSink) produce(_ string, _ []byte, rec *schemas.Record, t ticket) {
	s.mu.Lock()
	s.got = append(s.got, strings.Clone(rec.Log)) // rec is only ours during the call
	fail := s.failOnce[rec.Log]
	delete(s.failOnce, rec.Log)
	s.mu.Unlock()
	if fail {
		t.done(errors.New("refused by the test"))
		return
	}
	t.done(nil)
}

func (s *scriptSink) records() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

// TestJoinedMessageHoldsCheckpoint: a message split over partial stdout
// lines is joined after a stderr line was delivered. Its delivery fails;
// the rewind must go back to its first fragment, not to after the stderr
// line, so the message is sent again whole (never as its tail alone).
func TestJoinedMessageHoldsCheckpoint(t *testing.T) {
	node := &nodelog.Node{Root: t.TempDir()}
	c, _ := node.AddContainer("shop", "p", "c", nodelog.CRI)
	ts := "2026-11-21T10:00:00.000000000Z"
	if err := c.WriteRaw([]byte(ts + " stdout P head-\n" + ts + " stderr F err1\n" + ts + " stdout F tail\n")); err != nil {
		t.Fatal(err)
	}
	sink := &scriptSink{failOnce: map[string]bool{"head-tail": true}}
	cfg := testConfig(t, node, nil, nil)
	sh, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	sh.sink = sink
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sh.Run(ctx) }()
	testwait.For(t, 20*time.Second, "the joined message delivered", func() (bool, string) {
		return strings.Count(strings.Join(sink.records(), ","), "head-tail") == 2, ""
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := sink.records()
	if want := "err1,head-tail,err1,head-tail"; strings.Join(got, ",") != want {
		t.Errorf("delivered %q, want %q", got, want)
	}
	saved, err := checkpointStore{dir: cfg.CheckpointDir}.load()
	if err != nil {
		t.Fatal(err)
	}
	if p := saved[c.LinkPath()]; p.Offset != c.Size() {
		t.Errorf("checkpoint at %d, want the end of the file (%d)", p.Offset, c.Size())
	}
}

// TestOnceReportsUndelivered: --once against a topic that does not exist
// ends with an error, not a silent success; the checkpoint stays put.
func TestOnceReportsUndelivered(t *testing.T) {
	cluster := newCluster(t)
	node := &nodelog.Node{Root: t.TempDir()}
	c, _ := node.AddContainer("nowhere", "p", "c", nodelog.CRI)
	_ = c.Write(time.Now(), "stdout", "a line with no topic to go to")
	cfg := testConfig(t, node, cluster.ListenAddrs(), nil)
	r := startShipper(t, cfg, Options{Once: true})
	select {
	case err := <-r.done:
		r.cancel = nil
		if err == nil {
			t.Fatal("once mode reported success although nothing was delivered")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("once mode did not end")
	}
	saved, _ := checkpointStore{dir: cfg.CheckpointDir}.load()
	if p := saved[c.LinkPath()]; p.Offset != 0 {
		t.Errorf("checkpoint moved to %d past an undelivered line", p.Offset)
	}
}
