package devstack

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/indexer"
	"github.com/sluicelogs/sluice/internal/config"
	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/internal/kafkatest"
	"github.com/sluicelogs/sluice/internal/nodelog"
	"github.com/sluicelogs/sluice/internal/telemetry"
	"github.com/sluicelogs/sluice/internal/testwait"
	"github.com/sluicelogs/sluice/router"
	"github.com/sluicelogs/sluice/schemas"
	"github.com/sluicelogs/sluice/shipper"
)

// TestDevStackEndToEnd starts the dev stack on free ports, writes CRI logs
// for two namespaces into its node tree (a message long enough to be split
// into partial lines, a rotation), and checks that every message becomes
// exactly one document in its tenant's daily index, that a keyword query on
// a pod name matches exactly, and that a record its pipeline cannot parse
// is in its tenant's dead-letter topic, with the step that failed.
func TestDevStackEndToEnd(t *testing.T) {
	cfg := Config{Dir: t.TempDir(), KafkaAddr: "127.0.0.1:0", ESAddr: "127.0.0.1:0",
		Store: StoreConfig{FaultStatus: 503}, Telemetry: Telemetry{LogFormat: "text", LogLevel: "warn"}}
	ep, out := startStack(t, cfg, Options{StatusEvery: time.Second})
	ctx := t.Context()

	// beta parses its lines with a regex (a line that does not match goes
	// to its dead-letter topic) and routes some to a dataset.
	cl := kafkatest.ClientAt(t, ep.Brokers)
	// An operator makes tenant beta, then beta applies its pipeline.
	topics := kafka.Topics{Prefix: "logs"}
	if _, err := kafka.ProvisionTenant(ctx, kadm.NewClient(cl), topics, "beta", kafka.TenantSpec{Partitions: 3, ReplicationFactor: -1}); err != nil {
		t.Fatal(err)
	}
	// As sluice pipeline apply does: the dataset topics first, then the
	// pipeline.
	// Its records get an array attribute, which must arrive as a keyword
	// array.
	beta := []byte("tenant: beta\nversion: 1\nsteps:\n  - regex: {pattern: '^beta (?P<n>[0-9]+)'}\n" +
		"  - set: {field: tags, expr: 'split(\"eu,blue\", \",\")'}\n" +
		"  - route: {if: 'int(attributes[\"n\"]) >= 25', dataset: late}\n")
	if _, err := kafka.EnsureDatasetTopics(ctx, kadm.NewClient(cl), topics, "beta", []string{"late"}); err != nil {
		t.Fatal(err)
	}
	if _, err := router.ApplyPipeline(ctx, cl, topics, beta); err != nil {
		t.Fatal(err)
	}

	node := &nodelog.Node{Root: ep.NodeDir}
	now := time.Now().UTC()
	write := func(ns, pod string, n int, rotateAt int, msg func(i int) string) {
		c, err := node.AddContainer(ns, pod, "app", nodelog.CRI)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for i := range n {
			if i == rotateAt {
				if _, err := c.Rotate(); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.Write(now.Add(time.Duration(i)*time.Millisecond), "stdout", msg(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("alpha", "api-1", 60, 30, func(i int) string {
		if i == 10 {
			return "alpha long " + strings.Repeat("x", 40_000) // three partial lines
		}
		return fmt.Sprintf("alpha line %d", i)
	})
	write("alpha", "api-10", 20, -1, func(i int) string { return fmt.Sprintf("alpha other %d", i) })
	write("beta", "worker-1", 30, 15, func(i int) string { return fmt.Sprintf("beta %d done", i) })

	index := func(tenant string) string { return indexer.IndexName("sluice", tenant, "", now, time.UTC) }
	late := indexer.IndexName("sluice", "beta", "late", now, time.UTC)
	count := func(target, query string) int {
		res, err := http.Post(ep.ESURL+"/"+target+"/_count", "application/json", strings.NewReader(query))
		if err != nil {
			return -1
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		var c struct {
			Count int `json:"count"`
		}
		if res.StatusCode != 200 || json.Unmarshal(body, &c) != nil {
			return -1
		}
		return c.Count
	}
	testwait.For(t, 90*time.Second, "every document indexed", func() (bool, string) {
		alpha, beta, betaLate := count(index("alpha"), `{}`), count(index("beta"), `{}`), count(late, `{}`)
		return alpha == 80 && beta == 25 && betaLate == 5, fmt.Sprintf("documents: alpha %d of 80, beta %d of 25, beta.late %d of 5", alpha, beta, betaLate)
	})
	// The failing record, written once the pipeline has surely been loaded.
	write("beta", "worker-2", 1, -1, func(int) string { return "not a beta line" })

	for query, want := range map[string]int{
		`{"query":{"term":{"kubernetes.pod_name":"api-1"}}}`:       60,
		`{"query":{"term":{"kubernetes.pod_name":"api-10"}}}`:      20,
		`{"query":{"match_phrase":{"log":"alpha line 7"}}}`:        1,
		`{"query":{"prefix":{"log":"alpha"}}}`:                     80,
		`{"query":{"query_string":{"query":"n:[0 TO 9999]"}}}`:     25,
		`{"query":{"bool":{"must":{"match":{"log":"long"}}}}}`:     1,
		`{"query":{"term":{"kubernetes.namespace_name":"alpha"}}}`: 80,
		`{"query":{"term":{"tags":"blue"}}}`:                       25,
	} {
		target := index("alpha")
		if strings.Contains(query, `"n:`) || strings.Contains(query, `"tags"`) {
			target = index("beta")
		}
		if got := count(target, query); got != want {
			t.Errorf("%s: %d documents, want %d", query, got, want)
		}
	}
	// The long message is one document, whole.
	res, err := http.Post(ep.ESURL+"/"+index("alpha")+"/_search", "application/json", strings.NewReader(`{"query":{"match":{"log":"long"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !bytes.Contains(body, []byte(strings.Repeat("x", 40_000))) {
		t.Error("the long message is not one whole document")
	}

	dlq := kafkatest.ClientAt(t, ep.Brokers, kgo.ConsumeTopics(topics.DLQ("beta")), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	testwait.For(t, 60*time.Second, "the dead letter of the line beta's pipeline cannot parse", func() (bool, string) {
		fctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		var seen []string
		for _, r := range dlq.PollFetches(fctx).Records() {
			var d schemas.DeadLetter
			if err := json.Unmarshal(r.Value, &d); err != nil {
				t.Fatalf("dead letter %q: %v", r.Value, err)
			}
			payload, _ := base64.StdEncoding.DecodeString(d.Payload)
			if d.PayloadEncoding != "base64" {
				payload = []byte(d.Payload)
			}
			if bytes.Contains(payload, []byte("not a beta line")) && d.Stage == "router" && d.StepType == "regex" {
				return true, ""
			}
			seen = append(seen, fmt.Sprintf("%s %s step %s: %s", d.Stage, d.Reason, d.StepType, d.Error))
		}
		return false, fmt.Sprintf("dead letters %q", seen)
	})
	if !strings.Contains(out.String(), "Sluice dev stack") {
		t.Errorf("no banner:\n%s", out.String())
	}
}

// startStack runs the dev stack until the test ends, and returns its
// endpoints and its standard output; its logs are shown if the test fails.
func startStack(t *testing.T, cfg Config, opts Options) (Endpoints, *syncWriter) {
	t.Helper()
	out, logs := &syncWriter{}, &syncWriter{}
	opts.Stdout, opts.Stderr = out, logs
	s, err := Start(context.Background(), cfg, opts)
	if err != nil {
		t.Fatalf("dev stack: %v\nlogs:\n%s", err, logs.String())
	}
	t.Cleanup(func() {
		done := make(chan error, 1)
		go func() { done <- s.Close() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("dev stack: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Error("dev stack did not stop")
		}
		if t.Failed() {
			t.Logf("output:\n%s\nlogs:\n%s", out.String(), logs.String())
		}
	})
	return s.Endpoints(), out
}

// syncWriter is a buffer written by several goroutines.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestTelemetryLoopback: the dev stack serves its metrics on 127.0.0.1
// unless SLUICE_TELEMETRY_ADDR says otherwise; the stages' own commands
// keep listening on every interface, where Prometheus scrapes their pods.
func TestTelemetryLoopback(t *testing.T) {
	for env, want := range map[string]string{"": "127.0.0.1:9464", ":9464": ":9464", "0.0.0.0:9999": "0.0.0.0:9999"} {
		vars := map[string]string{}
		if env != "" {
			vars["SLUICE_TELEMETRY_ADDR"] = env
		}
		var cfg Config
		if err := config.LoadFrom(t.Context(), &cfg, envconfig.MapLookuper(vars)); err != nil {
			t.Fatal(err)
		}
		if got := cfg.Telemetry.Config().Addr; got != want {
			t.Errorf("SLUICE_TELEMETRY_ADDR=%q: dev listens on %q, want %q", env, got, want)
		}
	}
	var sh shipper.Config
	if err := config.LoadFrom(t.Context(), &sh, envconfig.MapLookuper(nil)); err != nil {
		t.Fatal(err)
	}
	if sh.Telemetry.Addr != telemetry.DefaultAddr {
		t.Errorf("the shipper listens on %q, want %q", sh.Telemetry.Addr, telemetry.DefaultAddr)
	}
}

// TestStartAddressTaken: an address in use is an error that says how to
// change it, and what was started before is released.
func TestStartAddressTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Dir: dir, KafkaAddr: ln.Addr().String(), ESAddr: "127.0.0.1:0"}, "--kafka-addr or SLUICE_DEV_KAFKA_ADDR"},
		{Config{Dir: dir, KafkaAddr: "127.0.0.1:0", ESAddr: ln.Addr().String()}, "is not free (change it with --es-addr or SLUICE_DEV_ES_ADDR)"},
		{Config{Dir: dir, KafkaAddr: "127.0.0.1:0", ESAddr: "127.0.0.1:0", GatewayAddr: ln.Addr().String()}, "change it with SLUICE_DEV_GATEWAY_ADDR"},
	} {
		_, err := Start(t.Context(), tc.cfg, Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
	// The store of the second start was never opened, the Kafka of the
	// first released: both start again on the same directory.
	s, err := Start(t.Context(), Config{Dir: dir, KafkaAddr: "127.0.0.1:0", ESAddr: "127.0.0.1:0"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close() // stopped while starting: a stage may report the cancelled start
}

// TestDevGateway: the dev stack runs the ingest gateway against its
// embedded Kafka, where the basic-auth user name is the tenant and no
// password is checked; lines sent to /v1/lines are indexed in the tenant's
// index, and the endpoints and the banner name the gateway.
func TestDevGateway(t *testing.T) {
	cfg := Config{Dir: t.TempDir(), KafkaAddr: "127.0.0.1:0", ESAddr: "127.0.0.1:0", GatewayAddr: "127.0.0.1:0",
		Telemetry: Telemetry{LogFormat: "text", LogLevel: "warn"}}
	ep, out := startStack(t, cfg, Options{})
	if ep.Gateway == "" || !strings.Contains(out.String(), ep.Gateway+"/v1/lines") {
		t.Fatalf("gateway %q not in the banner:\n%s", ep.Gateway, out.String())
	}
	cl := kafkatest.ClientAt(t, ep.Brokers)
	if _, err := kafka.ProvisionTenant(t.Context(), kadm.NewClient(cl), kafka.Topics{Prefix: "logs"}, "gamma", kafka.TenantSpec{Partitions: 3, ReplicationFactor: -1}); err != nil {
		t.Fatal(err)
	}
	checkDevGateway(t, ep, "")
	// A tenant without topics has nowhere to send.
	if code, body := sendLines(t, ep, "nobody", "", "text/plain", "lost\n"); code != http.StatusNotFound {
		t.Errorf("tenant without a raw topic: %d %s, want 404", code, body)
	}
}

// TestDevGatewaySASL: with SLUICE_KAFKA_* naming a Kafka with SASL SCRAM
// and ACLs, the dev stack's stages use the given user, and the gateway
// authenticates each request as its tenant's own Kafka user, as in
// production: the tenant's password passes, a wrong one or an unknown
// user is the same 401, and what passed is indexed.
func TestDevGatewaySASL(t *testing.T) {
	c := kafkatest.Cluster(t, kafkatest.Superuser("admin", "admin-secret"), kafkatest.ACLs())
	admin := kafkatest.Client(t, c, kafkatest.SCRAM("admin", "admin-secret"))
	if _, err := kafka.ProvisionTenant(t.Context(), kadm.NewClient(admin), kafka.Topics{Prefix: "logs"}, "gamma",
		kafka.TenantSpec{Partitions: 3, ReplicationFactor: -1, Password: "gamma-secret"}); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Dir: t.TempDir(), ESAddr: "127.0.0.1:0", GatewayAddr: "127.0.0.1:0",
		Telemetry: Telemetry{LogFormat: "text", LogLevel: "warn"}}
	ep, _ := startStack(t, cfg, Options{Env: envconfig.MapLookuper(map[string]string{
		"SLUICE_KAFKA_BROKERS":        strings.Join(c.ListenAddrs(), ","),
		"SLUICE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
		"SLUICE_KAFKA_SASL_USERNAME":  "admin",
		"SLUICE_KAFKA_SASL_PASSWORD":  "admin-secret",
	})})
	code1, body1 := sendLines(t, ep, "gamma", "wrong", "text/plain", "refused\n")
	code2, body2 := sendLines(t, ep, "nobody", "x", "text/plain", "refused\n")
	if code1 != http.StatusUnauthorized || code2 != code1 || body1 != body2 {
		t.Fatalf("wrong password: %d %s; unknown user: %d %s", code1, body1, code2, body2)
	}
	checkDevGateway(t, ep, "gamma-secret")
}

// sendLines posts body to the dev gateway's /v1/lines as user.
func sendLines(t *testing.T, ep Endpoints, user, password, contentType, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+ep.Gateway+"/v1/lines", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(user, password)
	req.Header.Set("Content-Type", contentType)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// checkDevGateway sends three lines as tenant gamma (with password) and
// waits for them in gamma's index.
func checkDevGateway(t *testing.T, ep Endpoints, password string) {
	t.Helper()
	if code, body := sendLines(t, ep, "gamma", password, "text/plain", "gateway one\ngateway two\n"); code != 200 || !strings.Contains(body, `"accepted":2`) {
		t.Fatalf("text lines: %d %s", code, body)
	}
	if code, body := sendLines(t, ep, "gamma", password, "application/x-ndjson", `{"msg":"gateway three","level":"info"}`+"\n"); code != 200 || !strings.Contains(body, `"accepted":1`) {
		t.Fatalf("NDJSON line: %d %s", code, body)
	}
	index := indexer.IndexName("sluice", "gamma", "", time.Now().UTC(), time.UTC)
	testwait.For(t, 60*time.Second, "the gateway's lines indexed", func() (bool, string) {
		res, err := http.Post(ep.ESURL+"/"+index+"/_count", "application/json", strings.NewReader(`{"query":{"prefix":{"log":"gateway"}}}`))
		if err != nil {
			return false, err.Error()
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		var c struct {
			Count int `json:"count"`
		}
		_ = json.Unmarshal(b, &c)
		return res.StatusCode == 200 && c.Count == 3, fmt.Sprintf("%d: %s", res.StatusCode, b)
	})
}
