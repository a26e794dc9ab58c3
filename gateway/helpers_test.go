package gateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sethvargo/go-envconfig"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	common "go.opentelemetry.io/proto/otlp/common/v1"
	logs "go.opentelemetry.io/proto/otlp/logs/v1"
	resource "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/proto"

	"github.com/sluicelogs/sluice/internal/config"
	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/internal/kafkatest"
	"github.com/sluicelogs/sluice/schemas"
)

// testTenants are the tenants every test cluster has, each with the
// password tenant + "-secret".
var testTenants = []string{"shop", "web"}

// testEnv is a kfake cluster with SASL SCRAM and ACLs enforced, the
// tenants provisioned as sluice tenant create does, and a gateway in front.
type testEnv struct {
	c     *kfake.Cluster
	admin *kgo.Client
	g     *Gateway
	url   string
	reg   *prometheus.Registry
}

// startEnv starts a test environment; env are extra settings
// (SLUICE_GATEWAY_*).
func startEnv(t testing.TB, env map[string]string) *testEnv {
	t.Helper()
	c, admin := startCluster(t)
	vars := map[string]string{
		"SLUICE_KAFKA_BROKERS":        strings.Join(c.ListenAddrs(), ","),
		"SLUICE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
		"SLUICE_TELEMETRY_ADDR":       "",
		"SLUICE_GATEWAY_ADDR":         "127.0.0.1:0",
		"SLUICE_GATEWAY_KAFKA_LINGER": "1ms",
	}
	for k, v := range env {
		vars[k] = v
	}
	var cfg Config
	if err := config.LoadFrom(context.Background(), &cfg, envconfig.MapLookuper(vars)); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	g, err := New(cfg, Options{Registerer: reg, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Listen(); err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(rctx) }()
	t.Cleanup(func() {
		// A connection the client opened but sent nothing on would hold
		// the server's shutdown for 5 s (net/http's rule for new ones).
		http.DefaultClient.CloseIdleConnections()
		stop()
		if err := <-done; err != nil {
			t.Errorf("gateway: %v", err)
		}
	})
	return &testEnv{c: c, admin: admin, g: g, url: "http://" + g.Addr(), reg: reg}
}

// throttleProduce makes the cluster answer every produce request as
// handled, with a throttle of ms milliseconds: Kafka's quota throttling.
func (e *testEnv) throttleProduce(ms int32) {
	e.c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		pr := req.(*kmsg.ProduceRequest)
		resp := pr.ResponseKind().(*kmsg.ProduceResponse)
		resp.ThrottleMillis = ms
		for _, rt := range pr.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.BaseOffset = 1000
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
}

// startCluster starts a kfake cluster with SASL SCRAM and ACLs enforced,
// and the test tenants provisioned as sluice tenant create does; it
// returns it and its superuser's client.
func startCluster(t testing.TB) (*kfake.Cluster, *kgo.Client) {
	t.Helper()
	c := kafkatest.Cluster(t, kafkatest.Superuser("admin", "admin-secret"), kafkatest.ACLs())
	admin := kafkatest.Client(t, c, kafkatest.SCRAM("admin", "admin-secret"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tenant := range testTenants {
		spec := kafka.TenantSpec{Partitions: 1, ReplicationFactor: -1, Password: tenant + "-secret"}
		if _, err := kafka.ProvisionTenant(ctx, kadm.NewClient(admin), kafka.Topics{Prefix: "logs"}, tenant, spec); err != nil {
			t.Fatalf("provision %s: %v", tenant, err)
		}
	}
	return c, admin
}

// basic is the Authorization header of user and password.
func basic(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// response is an answer read whole.
type response struct {
	status int
	header http.Header
	body   []byte
}

// post sends body to path with the headers (pairs of name and value).
func (e *testEnv) post(t testing.TB, path string, body []byte, headers ...string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// postOTLP sends req in protobuf as tenant (its password).
func (e *testEnv) postOTLP(t testing.TB, tenant string, req *collogs.ExportLogsServiceRequest, headers ...string) response {
	t.Helper()
	b, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return e.post(t, "/v1/logs", b, append([]string{"Content-Type", "application/x-protobuf", "Authorization", basic(tenant, tenant+"-secret")}, headers...)...)
}

// readRaw returns the records of tenant's raw topic, read as the admin
// and decoded as the router decodes them.
func (e *testEnv) readRaw(t testing.TB, tenant string) []schemas.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	topic := "logs.raw." + tenant
	adm := kadm.NewClient(e.admin)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	ends.Each(func(o kadm.ListedOffset) { want += o.Offset })
	if want == 0 {
		return nil
	}
	cl := kafkatest.Client(t, e.c, kafkatest.SCRAM("admin", "admin-secret"), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	dec := schemas.NewDecoder()
	var out []schemas.Record
	for int64(len(out)) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records of %s", len(out), want, topic)
		}
		for _, r := range fs.Records() {
			rec, f, err := dec.Decode(ctx, r.Value)
			if err != nil || f != schemas.FormatSingleObject {
				t.Fatalf("record %d of %s: format %v: %v", len(out), topic, f, err)
			}
			if h := r.Headers; len(h) != 1 || h[0].Key != "content-type" {
				t.Errorf("record headers %v", h)
			}
			out = append(out, rec)
		}
	}
	return out
}

// ids returns the ids of recs, sorted.
func ids(recs []schemas.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	slices.Sort(out)
	return out
}

// str, kv and otlpRequest build OTLP messages.
func str(s string) *common.AnyValue {
	return &common.AnyValue{Value: &common.AnyValue_StringValue{StringValue: s}}
}

func kv(k string, v *common.AnyValue) *common.KeyValue { return &common.KeyValue{Key: k, Value: v} }

// otlpRequest is a request of one resource (attrs) with the records.
func otlpRequest(attrs []*common.KeyValue, recs ...*logs.LogRecord) *collogs.ExportLogsServiceRequest {
	return &collogs.ExportLogsServiceRequest{ResourceLogs: []*logs.ResourceLogs{{
		Resource:  &resource.Resource{Attributes: attrs},
		ScopeLogs: []*logs.ScopeLogs{{Scope: &common.InstrumentationScope{Name: "test"}, LogRecords: recs}},
	}}}
}

// lines returns n OTLP records "line 0" ... with a time each.
func otlpLines(n int, prefix string) []*logs.LogRecord {
	out := make([]*logs.LogRecord, n)
	for i := range out {
		out[i] = &logs.LogRecord{
			TimeUnixNano: uint64(time.Date(2025, 3, 1, 12, 0, 0, i, time.UTC).UnixNano()),
			Body:         str(prefix + " " + strings.Repeat("x", i%7)),
			SeverityText: "INFO", SeverityNumber: logs.SeverityNumber_SEVERITY_NUMBER_INFO,
			Attributes: []*common.KeyValue{kv("i", &common.AnyValue{Value: &common.AnyValue_IntValue{IntValue: int64(i)}})},
		}
	}
	return out
}

// decodeExportResponse decodes an OTLP protobuf answer.
func decodeExportResponse(t testing.TB, r response) *collogs.ExportLogsServiceResponse {
	t.Helper()
	var resp collogs.ExportLogsServiceResponse
	if err := proto.Unmarshal(r.body, &resp); err != nil {
		t.Fatalf("answer %d is not an ExportLogsServiceResponse: %v (%q)", r.status, err, r.body)
	}
	return &resp
}

var errStop = errors.New("stop")

// metricValue returns the value of the series named like
// name{label="value",...} (labels in sorted order), 0 if absent.
func metricValue(t testing.TB, reg *prometheus.Registry, series string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+strconv.Quote(l.GetValue()))
			}
			name := mf.GetName()
			if len(ls) > 0 {
				name += "{" + strings.Join(ls, ",") + "}"
			}
			if name != series {
				continue
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return 0
}

// testutilCount fails the test unless the series has the value want.
func testutilCount(t testing.TB, e *testEnv, series string, want float64) {
	t.Helper()
	if got := metricValue(t, e.reg, series); got != want {
		t.Errorf("%s = %v, want %v", series, got, want)
	}
}

// writeTokens writes a tokens file and returns its path.
func writeTokens(t testing.TB, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// kafkaConfig is a valid gateway Kafka configuration.
func kafkaConfig() kafka.Config {
	return kafka.Config{Brokers: []string{"127.0.0.1:9092"}, SASLMechanism: "SCRAM-SHA-512", TopicPrefix: "logs", Compression: "snappy"}
}
