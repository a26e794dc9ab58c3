package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/internal/config"
	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/internal/kafkatest"
	"github.com/sluicelogs/sluice/router"
	"github.com/sluicelogs/sluice/schemas"
)

const goodPipeline = `tenant: acme
version: 3
steps:
  - json:
      field: log
  - route:
      if: 'attributes.level == "error"'
      dataset: errors
  - drop:
      if: 'attributes.level == "debug"'
tests:
  - name: routes errors
    line: '{"level":"error","msg":"x"}'
    expect:
      dataset: errors
  - name: drops debug
    line: '{"level":"debug"}'
    expect:
      dropped: true
`

// writePipeline writes doc to a temporary file and returns its path.
func writePipeline(t *testing.T, doc string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// runPipelineCmd runs `sluice pipeline args...` and returns stdout, stderr
// and the error.
func runPipelineCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, append([]string{"pipeline"}, args...), &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

// setStdin makes s the stdin of `sluice pipeline test` for the test.
func setStdin(t *testing.T, s string) {
	t.Helper()
	old := stdin
	stdin = strings.NewReader(s)
	t.Cleanup(func() { stdin = old })
}

func TestPipelineHelp(t *testing.T) {
	stdout, stderr, err := runPipelineCmd(t, "--help")
	if err != nil || stderr != "" {
		t.Fatalf("pipeline --help: %v, stderr %q", err, stderr)
	}
	for _, want := range []string{"validate", "test", "apply", "get", "list", "delete", "SLUICE_KAFKA_BROKERS", "SLUICE_TOPIC_PREFIX"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("pipeline --help does not mention %s", want)
		}
	}
	for _, args := range [][]string{nil, {"nope"}, {"validate"}, {"validate", "-f", "x", "extra"}, {"get"}, {"get", "Not_A_Tenant"}, {"list", "extra"}} {
		if _, _, err := runPipelineCmd(t, args...); err == nil {
			t.Errorf("pipeline %q succeeded", args)
		}
	}
}

func TestPipelineValidate(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		wantOut string
		wantErr []string // substrings of the error
	}{
		{"good", goodPipeline, "valid: tenant acme version 3, 2 tests passed\n", nil},
		{"unknown step", "tenant: acme\nversion: 1\nsteps:\n  - nope: {}\n", "", []string{"1 problem(s)", "line 4, column 5", `unknown step type "nope"`}},
		{"bad expression and regex", "tenant: acme\nversion: 1\nsteps:\n  - drop:\n      if: 'attributes.x ==='\n  - regex:\n      field: log\n      pattern: '(?P<a'\n", "", []string{"2 problem(s)", "line 5", "line 8"}},
		{"failing test", strings.Replace(goodPipeline, "dataset: errors\n  - name", "dataset: other\n  - name", 1), "", []string{"line 12", `test "routes errors"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writePipeline(t, tt.doc)
			out, errOut, err := runPipelineCmd(t, "validate", "-f", path)
			if tt.wantErr == nil {
				if err != nil || out != tt.wantOut || errOut != "" {
					t.Fatalf("validate = %q, %q, %v; want %q", out, errOut, err, tt.wantOut)
				}
				return
			}
			if err == nil {
				t.Fatalf("validate succeeded: %q", out)
			}
			if !errors.Is(err, router.ErrInvalidSpec) && !errors.Is(err, router.ErrTestFailed) {
				t.Errorf("error %v wraps neither ErrInvalidSpec nor ErrTestFailed", err)
			}
			for _, want := range append(tt.wantErr, path+": line") {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not contain %q:\n%v", want, err)
				}
			}
		})
	}
	if _, _, err := runPipelineCmd(t, "validate", "-f", filepath.Join(t.TempDir(), "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// TestPipelineDeprecatedKeys: a document that still says stream for a
// route's dataset is valid, and validate and test say, on stderr, where it
// should say dataset.
func TestPipelineDeprecatedKeys(t *testing.T) {
	old := strings.ReplaceAll(goodPipeline, "dataset: errors", "stream: errors")
	path := writePipeline(t, old)
	want := "warning: " + path + ": line 8, column 7: route.stream is deprecated: write route.dataset (same meaning)\n" +
		"warning: " + path + ": line 15, column 7: expect.stream is deprecated: write expect.dataset (same meaning)\n"
	out, errOut, err := runPipelineCmd(t, "validate", path)
	if err != nil || out != "valid: tenant acme version 3, 2 tests passed\n" || errOut != want {
		t.Errorf("validate = %q, %q, %v; want the warnings\n%s", out, errOut, err, want)
	}
	setStdin(t, `{"log": "{\"level\":\"error\"}"}`+"\n")
	out, errOut, err = runPipelineCmd(t, "test", path)
	if err != nil || !strings.Contains(out, `"topic":"logs.parsed.acme.errors"`) || errOut != want {
		t.Errorf("test = %q, %q, %v; want the warnings\n%s", out, errOut, err, want)
	}
}

func TestPipelineTest(t *testing.T) {
	t.Setenv("SLUICE_TOPIC_PREFIX", "acme-logs")
	path := writePipeline(t, goodPipeline)
	setStdin(t, strings.Join([]string{
		`{"log": "{\"level\":\"error\",\"msg\":\"boom\"}", "tenant": "someone-else", "kubernetes": {"pod_name": "web-1"}}`,
		`{"log": "{\"level\":\"debug\"}"}`,
		`{"log": "{\"level\":\"info\"}"}`,
		``,
		`plain text, not json`,
		`{"log": 5}`,
	}, "\n")+"\n")
	out, _, err := runPipelineCmd(t, "test", "-f", path)
	if err != nil {
		t.Fatalf("test: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("got %d output lines, want 5 (blank input skipped):\n%s", len(lines), out)
	}
	type dlq struct {
		Reason   string `json:"reason"`
		Step     int    `json:"step"`
		StepType string `json:"step_type"`
		Error    string `json:"error"`
	}
	type outcome struct {
		Topic   string          `json:"topic"`
		Record  json.RawMessage `json:"record"`
		Dropped bool            `json:"dropped"`
		DLQ     *dlq            `json:"dlq"`
	}
	var got []outcome
	for _, l := range lines {
		var o outcome
		if err := json.Unmarshal([]byte(l), &o); err != nil {
			t.Fatalf("output line %q: %v", l, err)
		}
		got = append(got, o)
	}

	// Routed, with the tenant from the pipeline, not the payload.
	if got[0].Topic != "acme-logs.parsed.acme.errors" {
		t.Errorf("line 1 topic = %q", got[0].Topic)
	}
	rec, err := schemas.DecodeJSON(got[0].Record)
	if err != nil {
		t.Fatalf("line 1 record: %v", err)
	}
	if rec.Tenant != "acme" || rec.Kubernetes.PodName != "web-1" || rec.Attributes["msg"] != "boom" {
		t.Errorf("line 1 record = %+v", rec)
	}
	if !got[1].Dropped || got[1].Topic != "" || got[1].DLQ != nil {
		t.Errorf("line 2 = %s, want dropped", lines[1])
	}
	if got[2].Topic != "acme-logs.parsed.acme" || got[2].Record == nil {
		t.Errorf("line 3 = %s, want the main parsed topic", lines[2])
	}
	// Plain text becomes log, which the json step cannot parse.
	if d := got[3].DLQ; d == nil || d.Reason != router.ReasonParse || d.Step != 0 || d.StepType != "json" || d.Error == "" {
		t.Errorf("line 5 = %s, want a json parse failure at step 0", lines[3])
	}
	if d := got[4].DLQ; d == nil || d.Step != -1 || d.Reason == "" {
		t.Errorf("line 6 = %s, want a decode failure", lines[4])
	}

	// A pipeline that does not compile runs nothing.
	setStdin(t, "x\n")
	out, _, err = runPipelineCmd(t, "test", "-f", writePipeline(t, "tenant: acme\nversion: 1\nsteps:\n  - nope: {}\n"))
	if err == nil || out != "" {
		t.Errorf("test with a broken pipeline = %q, %v", out, err)
	}
}

// TestPipelineTestPseudonym: pseudonym() in sluice pipeline test and in
// validate uses the public test key, never a tenant's key, even where a
// router's keys directory is at hand.
func TestPipelineTestPseudonym(t *testing.T) {
	const realKey = "the-real-key-of-acme-0123"
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "acme"), []byte(realKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SLUICE_ROUTER_PSEUDONYM_KEYS_DIR", dir)
	mac := func(key string) string {
		h := hmac.New(sha256.New, []byte(key))
		h.Write([]byte("alice@example.com"))
		return hex.EncodeToString(h.Sum(nil))
	}
	want := mac(router.TestPseudonymKeyText)
	if router.TestPseudonymKeyText != "sluice-test-key" {
		t.Fatalf("the documented test key is sluice-test-key, not %q", router.TestPseudonymKeyText)
	}
	doc := "tenant: acme\nversion: 1\nsteps:\n  - json: {}\n  - set: {field: email, expr: 'pseudonym(attributes.email)'}\n" +
		"tests:\n  - name: pseudonym\n    line: '{\"email\":\"alice@example.com\"}'\n    expect: {attributes: {email: " + want + "}}\n"
	path := writePipeline(t, doc)
	if out, _, err := runPipelineCmd(t, "validate", "-f", path); err != nil {
		t.Fatalf("validate: %q, %v", out, err)
	}
	setStdin(t, `{"log": "{\"email\":\"alice@example.com\"}"}`+"\n")
	out, stderr, err := runPipelineCmd(t, "test", "-f", path)
	if err != nil {
		t.Fatalf("test: %v", err)
	}
	if !strings.Contains(out, `"email":"`+want+`"`) {
		t.Errorf("test output %s: want the test key's pseudonym %s", out, want)
	}
	for _, leak := range []string{realKey, mac(realKey)} {
		if strings.Contains(out+stderr, leak) {
			t.Errorf("the output shows %q, from the real key", leak)
		}
	}
}

// startKafka starts a kfake cluster, points SLUICE_KAFKA_BROKERS at it and
// returns a client of it.
func startKafka(t *testing.T) *kgo.Client {
	t.Helper()
	c := kafkatest.Cluster(t)
	t.Setenv(config.Var("KAFKA_BROKERS"), strings.Join(c.ListenAddrs(), ","))
	return kafkatest.Client(t, c)
}

func TestPipelineApplyGetListDelete(t *testing.T) {
	cl := startKafka(t)
	ctx := t.Context()
	topics := kafka.Topics{Prefix: "logs"}

	// Nothing stored yet: list is empty, get and delete fail, and apply
	// for a tenant that was not made says how to make it.
	out, _, err := runPipelineCmd(t, "list")
	if err != nil || strings.TrimSpace(out) != "TENANT  STORED  GOOD  ROUTERS  ERRORS" {
		t.Errorf("list on no topic = %q, %v", out, err)
	}
	if _, _, err := runPipelineCmd(t, "get", "acme"); !errors.Is(err, router.ErrNoPipeline) {
		t.Errorf("get before apply: %v", err)
	}
	good := writePipeline(t, goodPipeline)
	if _, _, err := runPipelineCmd(t, "apply", "-f", good); !errors.Is(err, router.ErrNoConfigTopic) || !strings.Contains(err.Error(), "sluice tenant create acme") {
		t.Errorf("apply for a tenant not made: %v", err)
	}
	for _, tenant := range []string{"acme", "beta"} {
		if _, err := kafka.ProvisionTenant(ctx, kadm.NewClient(cl), topics, tenant, kafka.TenantSpec{Partitions: 2, ReplicationFactor: -1}); err != nil {
			t.Fatal(err)
		}
	}

	// The pipeline routes to dataset errors: apply makes its topic.
	out, _, err = runPipelineCmd(t, "apply", "-f", good)
	if err != nil || !strings.HasPrefix(out, "--- logs.config.acme (nothing stored: pass-through)\n+++ "+good+" (version 3)\n@@ -0,0 +1,19 @@\n+tenant: acme\n") ||
		!strings.HasSuffix(out, "+      dropped: true\ncreated dataset topic logs.parsed.acme.errors\napplied: tenant acme version 3 to logs.config.acme\n") {
		t.Fatalf("apply = %q, %v", out, err)
	}
	if d, err := kadm.NewClient(cl).ListTopics(ctx, "logs.parsed.acme.errors"); err != nil || len(d["logs.parsed.acme.errors"].Partitions) != 2 {
		t.Errorf("dataset topic: %+v %v, want 2 partitions like logs.parsed.acme", d, err)
	}
	// Same version again: refused.
	if _, _, err := runPipelineCmd(t, "apply", "-f", good); !errors.Is(err, router.ErrVersionNotIncreasing) {
		t.Errorf("re-apply: %v", err)
	}
	// Invalid: refused before Kafka is touched.
	if _, _, err := runPipelineCmd(t, "apply", "-f", writePipeline(t, "tenant: beta\nversion: 1\nsteps:\n  - nope: {}\n")); err == nil || !strings.Contains(err.Error(), "line 4") {
		t.Errorf("apply invalid: %v", err)
	}
	beta := strings.NewReplacer("tenant: acme", "tenant: beta", "version: 3", "version: 1").Replace(goodPipeline)
	if _, _, err := runPipelineCmd(t, "apply", "-f", writePipeline(t, beta)); err != nil {
		t.Fatalf("apply beta: %v", err)
	}

	// What routers publish, in <prefix>.status and the tenant's own.
	if err := router.EnsureCompactedTopic(ctx, kadm.NewClient(cl), topics.Status()); err != nil {
		t.Fatal(err)
	}
	for _, st := range []router.RouterStatus{
		{Router: "router-a", Tenant: "acme", Stored: 3, Applied: 3, Since: time.Now()},
		{Router: "router-b", Tenant: "acme", Stored: 3, Applied: 0, Error: "load version 3: line 5: boom\nsecond line", Since: time.Now(),
			Paused: "output topic does not exist: logs.parsed.acme", PausedUntil: time.Now().Add(time.Minute)},
		{Router: "router-a", Tenant: "beta", Stored: 1, Applied: 1, Since: time.Now()},
	} {
		v, _ := json.Marshal(st)
		key := []byte(router.StatusKey(st.Tenant, st.Router))
		for _, topic := range []string{topics.Status(), topics.TenantStatus(st.Tenant)} {
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: key, Value: v}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}

	out, _, err = runPipelineCmd(t, "get", "acme")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	for _, want := range []string{
		"# stored: version 3",
		"# router router-a: applies version 3, has seen version 3",
		"# router router-b: applies pass-through, has seen version 3",
		"paused until ",
		": output topic does not exist: logs.parsed.acme",
		"error: load version 3: line 5: boom; second line",
		goodPipeline,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("get output lacks %q:\n%s", want, out)
		}
	}
	// The output of get validates as it is.
	if _, _, err := runPipelineCmd(t, "validate", "-f", writePipeline(t, out)); err != nil {
		t.Errorf("get output does not validate: %v", err)
	}

	out, _, err = runPipelineCmd(t, "list")
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("list = %q, want a header and two tenants", out)
	}
	for i, want := range [][]string{
		{"acme", "3", "router-a=3,router-b=0", "router-b: load version 3", "router-b: paused"},
		{"beta", "1", "router-a=1"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i+1], w) {
				t.Errorf("list line %q lacks %q", lines[i+1], w)
			}
		}
	}

	out, _, err = runPipelineCmd(t, "delete", "acme")
	if err != nil || !strings.Contains(out, "deleted: tenant acme") {
		t.Fatalf("delete = %q, %v", out, err)
	}
	if _, _, err := runPipelineCmd(t, "delete", "acme"); !errors.Is(err, router.ErrNoPipeline) {
		t.Errorf("delete again: %v", err)
	}
	out, _, err = runPipelineCmd(t, "get", "acme")
	if err != nil || !strings.Contains(out, "# stored: none (pass-through)") || strings.Contains(out, "steps:") {
		t.Errorf("get after delete (statuses remain) = %q, %v", out, err)
	}
}

func TestPipelineKafkaSettingsErrors(t *testing.T) {
	t.Setenv(config.Var("KAFKA_BROKERS"), "not-a-broker")
	_, _, err := runPipelineCmd(t, "list")
	if err == nil || !strings.Contains(err.Error(), "SLUICE_KAFKA_BROKERS") {
		t.Errorf("list with bad brokers: %v, want the variable named", err)
	}
}

// TestPipelineTestMultiline: with a multiline step, sluice pipeline test
// joins consecutive input lines as the router does, and says how many
// lines each record took.
func TestPipelineTestMultiline(t *testing.T) {
	path := writePipeline(t, `tenant: java
version: 1
steps:
  - multiline: {continuation: '^\s+at |^Caused by: '}
  - regex: {pattern: '^(?P<exception>[\w.]+Exception): (?P<reason>.*)'}
tests:
  - name: a stack trace is one record
    lines:
      - 'java.lang.IllegalStateException: cart locked'
      - '    at shop.Cart.update(Cart.java:10)'
      - 'Caused by: java.util.concurrent.TimeoutException: wait'
    expect: {records: 1, attributes: {exception: java.lang.IllegalStateException, reason: cart locked}}
  - name: two traces are two records
    lines: ['a.BException: one', '  at x', 'a.CException: two']
    expect: {records: 2, attributes: {exception: a.BException}}
`)
	setStdin(t, "a.BException: one\n  at x.y(Z.java:1)\n  at x.z(Z.java:2)\na.CException: two\nplain\n")
	out, _, err := runPipelineCmd(t, "test", "-f", path)
	if err != nil {
		t.Fatalf("test: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d outcomes, want 3:\n%s", len(lines), out)
	}
	for i, want := range []string{`"lines":3`, `"lines":1`, `"dlq"`} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("outcome %d: %s, want %s", i+1, lines[i], want)
		}
	}
	if !strings.Contains(lines[0], `at x.z(Z.java:2)`) {
		t.Errorf("the joined record lost a line: %s", lines[0])
	}
	// A test whose lines make another number of records fails, saying so.
	bad := writePipeline(t, "tenant: java\nversion: 1\nsteps:\n  - multiline: {continuation: '^\\s'}\ntests:\n  - name: n\n    lines: [a, ' b', c]\n    expect: {records: 1}\n")
	if _, _, err := runPipelineCmd(t, "validate", "-f", bad); err == nil || !strings.Contains(err.Error(), "the lines make 2 records, want 1") {
		t.Errorf("validate: %v", err)
	}
}
