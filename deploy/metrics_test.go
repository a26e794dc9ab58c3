package deploy

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/sethvargo/go-envconfig"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/gateway"
	"github.com/sluicelogs/sluice/indexer"
	"github.com/sluicelogs/sluice/internal/config"
	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/internal/telemetry"
	"github.com/sluicelogs/sluice/router"
	"github.com/sluicelogs/sluice/shipper"
)

// notRegistered are the metric names the rules and dashboard may use that
// no Sluice code registers: up is recorded by Prometheus for every target.
var notRegistered = []string{"up"}

// recorder is a prometheus.Registerer that records the name of every metric
// a collector describes.
type recorder struct{ names map[string]bool }

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r *recorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			r.names[m[1]] = true
		}
	}
	return nil
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = r.Register(c)
	}
}

func (r *recorder) Unregister(prometheus.Collector) bool { return true }

// registeredMetrics returns the name of every metric the stages register:
// each stage built with its default settings, a Kafka client with the
// metrics hooks every stage's clients get, and the telemetry registry's Go
// and process collectors.
func registeredMetrics(t *testing.T) map[string]bool {
	t.Helper()
	rec := &recorder{names: map[string]bool{}}
	var sc shipper.Config
	var rc router.Config
	var ic indexer.Config
	for _, c := range []any{&sc, &rc, &ic} {
		if err := config.LoadFrom(context.Background(), c, envconfig.MapLookuper(nil)); err != nil {
			t.Fatal(err)
		}
	}
	sc.CheckpointDir = t.TempDir()
	if _, err := shipper.New(sc, shipper.Options{Registerer: rec}); err != nil {
		t.Fatal(err)
	}
	if _, err := router.New(rc, router.Options{Registerer: rec}); err != nil {
		t.Fatal(err)
	}
	if _, err := indexer.New(ic, indexer.Options{Registerer: rec}); err != nil {
		t.Fatal(err)
	}
	var gc gateway.Config
	if err := config.LoadFrom(context.Background(), &gc, envconfig.MapLookuper(map[string]string{"SLUICE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512"})); err != nil {
		t.Fatal(err)
	}
	if _, err := gateway.New(gc, gateway.Options{Registerer: rec}); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"), kgo.WithHooks(kafka.NewMetrics(rec)))
	if err != nil {
		t.Fatal(err)
	}
	cl.Close()
	families, err := telemetry.NewRegistry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		rec.names[f.GetName()] = true
	}
	for _, prefix := range []string{"sluice_shipper_", "sluice_router_", "sluice_indexer_", "sluice_gateway_", "sluice_kafka_", "process_", "go_"} {
		if !slices.ContainsFunc(slices.Collect(maps.Keys(rec.names)), func(n string) bool { return strings.HasPrefix(n, prefix) }) {
			t.Fatalf("no %s* metric registered: the recorder misses a collector", prefix)
		}
	}
	return rec.names
}

// known reports whether name is registered, directly or as a series of a
// registered histogram or summary.
func known(registered map[string]bool, name string) bool {
	if registered[name] || slices.Contains(notRegistered, name) {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && registered[base] {
			return true
		}
	}
	return false
}

// metricNames parses a PromQL expression and returns the metric name of
// every selector in it.
func metricNames(expr string) ([]string, error) {
	node, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var names []string
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		switch v := n.(type) {
		case *parser.VectorSelector:
			names = append(names, v.Name)
		case *parser.MatrixSelector:
			if vs, ok := v.VectorSelector.(*parser.VectorSelector); ok {
				names = append(names, vs.Name)
			}
		}
		return nil
	})
	return names, nil
}

type alertRule struct {
	Alert       string            `json:"alert"`
	Record      string            `json:"record"`
	Expr        string            `json:"expr"`
	For         string            `json:"for"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

func TestAlertRules(t *testing.T) {
	registered := registeredMetrics(t)
	var file struct {
		Groups []struct {
			Name  string      `json:"name"`
			Rules []alertRule `json:"rules"`
		} `json:"groups"`
	}
	readYAML(t, filepath.Join(chartDir, "files/alerts.yaml"), &file)
	runbook, err := os.ReadFile("RUNBOOK.md")
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, l := range strings.Split(string(runbook), "\n") {
		if h, ok := strings.CutPrefix(l, "### "); ok {
			anchors[githubAnchor(h)] = true
		}
	}
	seen := map[string]bool{}
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s: a rule without an alert name (recording rules live elsewhere)", g.Name)
				continue
			}
			if seen[r.Alert] {
				t.Errorf("alert %s defined twice", r.Alert)
			}
			seen[r.Alert] = true
			names, err := metricNames(r.Expr)
			if err != nil {
				t.Errorf("alert %s: %v", r.Alert, err)
			}
			for _, n := range names {
				if !known(registered, n) {
					t.Errorf("alert %s uses %s, which no Sluice code registers", r.Alert, n)
				}
			}
			if !slices.Contains([]string{"warning", "critical"}, r.Labels["severity"]) {
				t.Errorf("alert %s: severity %q, want warning or critical", r.Alert, r.Labels["severity"])
			}
			if r.For == "" {
				t.Errorf("alert %s has no for: it would fire on one bad scrape", r.Alert)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s: want summary and description annotations", r.Alert)
			}
			url := r.Annotations["runbook_url"]
			_, anchor, _ := strings.Cut(url, "/deploy/RUNBOOK.md#")
			if anchor == "" || !anchors[anchor] {
				t.Errorf("alert %s: runbook_url %q names no heading of deploy/RUNBOOK.md", r.Alert, url)
			}
		}
	}
	if len(seen) < 10 {
		t.Errorf("%d alerts; the issue lists at least 10 conditions", len(seen))
	}
}

// githubAnchor is the anchor GitHub gives a Markdown heading.
func githubAnchor(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(h)) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteRune('-')
		}
	}
	return b.String()
}

var grafanaVar = regexp.MustCompile(`\$__(rate_interval|interval|range)|\$\{[A-Za-z0-9_]+(:[a-z]+)?\}|\$[A-Za-z_][A-Za-z0-9_]*`)

// grafanaQuery replaces Grafana's variables in a query with values, so
// that the query parses as PromQL.
func grafanaQuery(q string) string {
	return grafanaVar.ReplaceAllStringFunc(q, func(v string) string {
		if strings.HasPrefix(v, "$__") {
			return "5m"
		}
		return "x"
	})
}

var labelValues = regexp.MustCompile(`^\s*label_values\(\s*(.*?)\s*,\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$`)

func TestDashboard(t *testing.T) {
	registered := registeredMetrics(t)
	b, err := os.ReadFile(filepath.Join(chartDir, "files/dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID        string            `json:"uid"`
		Title      string            `json:"title"`
		Panels     []json.RawMessage `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	if dash.UID == "" || dash.Title == "" || len(dash.Panels) == 0 {
		t.Fatalf("dashboard: want a uid, a title and panels")
	}
	var queries []string
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(string)
		if m, ok := v.Query.(map[string]any); ok {
			q, _ = m["query"].(string)
		}
		if m := labelValues.FindStringSubmatch(q); m != nil {
			queries = append(queries, m[1])
		} else if q != "" {
			t.Errorf("variable %s: query %q is not label_values(<selector>, <label>)", v.Name, q)
		}
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "expr" {
					queries = append(queries, s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	for _, p := range dash.Panels {
		var v any
		if err := json.Unmarshal(p, &v); err != nil {
			t.Fatal(err)
		}
		walk(v)
	}
	if len(queries) < 10 {
		t.Fatalf("dashboard: %d queries found", len(queries))
	}
	stages := map[string]bool{}
	for _, q := range queries {
		names, err := metricNames(grafanaQuery(q))
		if err != nil {
			t.Errorf("query %q: %v", q, err)
		}
		for _, n := range names {
			if !known(registered, n) {
				t.Errorf("query %q uses %s, which no Sluice code registers", q, n)
			}
			for _, s := range stageNames {
				if strings.HasPrefix(n, "sluice_"+s+"_") {
					stages[s] = true
				}
			}
		}
	}
	if len(stages) != len(stageNames) {
		t.Errorf("dashboard shows metrics of stages %v, want all of %v", stages, stageNames)
	}
}
