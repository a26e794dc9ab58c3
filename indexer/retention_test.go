package indexer

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluicelogs/sluice/internal/elastic"
	"github.com/sluicelogs/sluice/internal/eslite"
)

func testES(t *testing.T, url string) *elastic.Config {
	t.Helper()
	return &elastic.Config{URLs: []string{url}, RequestTimeout: 10 * time.Second}
}

// TestRetentionRun deletes old indices of Sluice's own naming through the
// Elasticsearch API, and only those; running it twice is harmless.
func TestRetentionRun(t *testing.T) {
	es := eslite.Start(t)
	for _, name := range []string{
		"sluice-shop-2026.11.21", "sluice-shop-2026.11.10", "sluice-shop.audit-2026.11.01",
		"sluice-audit-2025.01.01", "sluice-notes", "other-shop-2020.01.01",
	} {
		es.CreateIndex(name)
	}
	client, err := testES(t, es.URL()).NewClient()
	if err != nil {
		t.Fatal(err)
	}
	r := retention{prefix: "sluice", loc: time.UTC, days: 7, overrides: map[string]int{"audit": 0}}
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	deleted, err := r.run(context.Background(), client, now)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(deleted, ",") != "sluice-shop-2026.11.10,sluice-shop.audit-2026.11.01" {
		t.Fatalf("deleted %v", deleted)
	}
	want := "other-shop-2020.01.01,sluice-audit-2025.01.01,sluice-notes,sluice-shop-2026.11.21"
	if got := strings.Join(es.Indices(), ","); got != want {
		t.Fatalf("left %s, want %s", got, want)
	}
	if deleted, err := r.run(context.Background(), client, now); err != nil || len(deleted) != 0 {
		t.Fatalf("second run: %v %v", deleted, err)
	}
	es.SetFaults(eslite.Faults{Down: true})
	if _, err := r.run(context.Background(), client, now); err == nil {
		t.Fatal("no error from a cluster that is down")
	}
}

// TestInstallTemplate: the template is installed, left alone when it is as
// wanted, reconciled (managed keys set back, an operator's settings and
// aliases kept), and never replaced when it is of a newer version.
func TestInstallTemplate(t *testing.T) {
	es := eslite.Start(t)
	client, err := testES(t, es.URL()).NewClient()
	if err != nil {
		t.Fatal(err)
	}
	body := templateBody(templateSettings{prefix: "sluice", shards: 1, replicas: 0, totalFields: 1000, ignoreAbove: 256})
	for i, want := range []bool{true, false} { // installed, then already as wanted
		if installed, err := installTemplate(context.Background(), client, "sluice", body); err != nil || installed != want {
			t.Fatalf("install %d: %v %v, want installed %v", i, installed, err, want)
		}
	}
	// An operator's own settings survive; the managed keys are set back.
	var edited map[string]any
	if err := json.Unmarshal(body, &edited); err != nil {
		t.Fatal(err)
	}
	index := edited["template"].(map[string]any)["settings"].(map[string]any)["index"].(map[string]any)
	index["refresh_interval"] = "30s"
	index["lifecycle"] = map[string]any{"name": "logs-30d"}
	index["number_of_replicas"] = 2
	edited["template"].(map[string]any)["aliases"] = map[string]any{"all-logs": map[string]any{}}
	editedBody, _ := json.Marshal(edited)
	putTemplate(t, es.URL(), "sluice", string(editedBody))
	if installed, err := installTemplate(context.Background(), client, "sluice", body); err != nil || !installed {
		t.Fatalf("reconcile: %v %v", installed, err)
	}
	got, _ := es.Template("sluice")
	var kept map[string]any
	if err := json.Unmarshal(got, &kept); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]any{
		"template.settings.index.refresh_interval":   "30s",
		"template.settings.index.lifecycle.name":     "logs-30d",
		"template.settings.index.number_of_replicas": "0",
		"template.settings.index.number_of_shards":   "1",
	} {
		v, ok := lookupPath(kept, strings.Split(path, "."))
		if !ok || !sameJSON(v, want) {
			t.Errorf("after reconciling, %s = %v, want %v", path, v, want)
		}
	}
	if _, ok := lookupPath(kept, []string{"template", "aliases", "all-logs"}); !ok {
		t.Error("the operator's alias was dropped")
	}
	got, ok := es.Template("sluice")
	if !ok {
		t.Fatal("no template")
	}
	var tmpl map[string]any
	if err := json.Unmarshal(got, &tmpl); err != nil || tmpl["priority"] != float64(templatePriority) {
		t.Fatalf("stored template %s: %v", got, err)
	}
	newer := strings.Replace(string(body), fmt.Sprintf(`"version": %d`, templateVersion), `"version": 99`, 1)
	if newer == string(body) {
		t.Fatal("template body has no version to raise")
	}
	putTemplate(t, es.URL(), "sluice", newer)
	if installed, err := installTemplate(context.Background(), client, "sluice", body); err != nil || installed {
		t.Fatalf("replaced a newer template: %v %v", installed, err)
	}
	// The mappings apply to the daily indices: a label is a keyword, a
	// number attribute a long, log is text.
	esBulk(t, es.URL(), `{"create":{"_index":"sluice-shop-2026.11.21","_id":"1"}}`+"\n"+
		`{"@timestamp":"2026-11-21T10:00:00.000000000Z","log":"hello","kubernetes":{"labels":{"app":"x"}},"n":1,"s":"word"}`+"\n")
	m := es.Mapping("sluice-shop-2026.11.21")
	for field, typ := range map[string]string{"@timestamp": "date", "log": "text", "kubernetes.labels.app": "keyword", "n": "long", "s": "keyword"} {
		if m[field] != typ {
			t.Errorf("%s mapped as %q, want %q (%v)", field, m[field], typ, m)
		}
	}
}
