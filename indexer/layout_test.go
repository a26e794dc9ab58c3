package indexer

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicelogs/sluice/internal/esfake"
	"github.com/sluicelogs/sluice/internal/kafkatest"
)

func TestParseLayoutOverrides(t *testing.T) {
	got, err := ParseLayoutOverrides([]string{"big=dedicated", " small=shared"})
	if err != nil || got["big"] != LayoutDedicated || got["small"] != LayoutShared || len(got) != 2 {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range [][]string{{"big"}, {"big=own"}, {"Big=shared"}, {"a=shared", "a=dedicated"}, {"_shared=shared"}} {
		if _, err := ParseLayoutOverrides(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if l, err := ParseLayout("shared"); err != nil || l != LayoutShared || l.String() != "shared" || LayoutDedicated.String() != "dedicated" {
		t.Fatalf("ParseLayout: %v %v", l, err)
	}
}

// TestLayoutValidate: the layout settings are checked, and a tenant in the
// shared layout may not have a retention override (its indices are
// deleted by day for every shared tenant at once).
func TestLayoutValidate(t *testing.T) {
	base := map[string]string{"SLUICE_INDEXER_LAYOUT": "shared", "SLUICE_INDEXER_LAYOUT_OVERRIDES": "audit=dedicated",
		"SLUICE_INDEXER_RETENTION_OVERRIDES": "audit=365"}
	cfg := testConfig(t, []string{"127.0.0.1:9092"}, "http://127.0.0.1:9200", base)
	if err := cfg.Validate(); err != nil {
		t.Fatalf("valid settings: %v", err)
	}
	if cfg.SharedShards != 3 || cfg.PrecreateWindow != 2*time.Hour {
		t.Errorf("defaults: %d shared shards, window %s", cfg.SharedShards, cfg.PrecreateWindow)
	}
	for name, tc := range map[string]struct {
		env  map[string]string
		want []string
	}{
		"retention of a shared tenant": {map[string]string{"SLUICE_INDEXER_RETENTION_OVERRIDES": "audit=365,scratch=1"},
			[]string{"SLUICE_INDEXER_RETENTION_OVERRIDES", `"scratch" is in the shared layout`, "scratch=dedicated"}},
		"retention of a tenant made shared": {map[string]string{"SLUICE_INDEXER_LAYOUT": "dedicated", "SLUICE_INDEXER_LAYOUT_OVERRIDES": "audit=shared"},
			[]string{"SLUICE_INDEXER_RETENTION_OVERRIDES", `"audit" is in the shared layout`}},
		"layout":          {map[string]string{"SLUICE_INDEXER_LAYOUT": "pooled"}, []string{"SLUICE_INDEXER_LAYOUT:", "dedicated or shared"}},
		"overrides":       {map[string]string{"SLUICE_INDEXER_LAYOUT_OVERRIDES": "audit"}, []string{"SLUICE_INDEXER_LAYOUT_OVERRIDES", "tenant=layout"}},
		"shards":          {map[string]string{"SLUICE_INDEXER_SHARED_SHARDS": "0"}, []string{"SLUICE_INDEXER_SHARED_SHARDS"}},
		"window":          {map[string]string{"SLUICE_INDEXER_PRECREATE_WINDOW": "13h"}, []string{"SLUICE_INDEXER_PRECREATE_WINDOW"}},
		"negative window": {map[string]string{"SLUICE_INDEXER_PRECREATE_WINDOW": "-1s"}, []string{"SLUICE_INDEXER_PRECREATE_WINDOW"}},
	} {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		for k, v := range tc.env {
			env[k] = v
		}
		cfg := testConfig(t, []string{"127.0.0.1:9092"}, "http://127.0.0.1:9200", env)
		err := cfg.Validate()
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %v does not say %q", name, err, w)
			}
		}
	}
}

// TestAddShared: in the shared layout the bulk action names the shared
// index of the day and routes by tenant; a dedicated tenant's action is as
// it always was. Every family written is noted for precreation.
func TestAddShared(t *testing.T) {
	ix, err := New(testConfig(t, []string{"127.0.0.1:9092"}, "http://127.0.0.1:9200", map[string]string{
		"SLUICE_INDEXER_LAYOUT": "shared", "SLUICE_INDEXER_LAYOUT_OVERRIDES": "big=dedicated"}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	recs := benchRecords(t, 1)
	day := IndexName("", "", "", recs[0].Timestamp, time.UTC)[2:]
	var (
		w     docWriter
		b     batch
		infos = map[string]topicInfo{}
	)
	for topic, want := range map[string]string{
		"logs.parsed.shop":       `{"create":{"_index":"sluice-_shared-` + day + `","routing":"shop","_id":`,
		"logs.parsed.shop.audit": `{"create":{"_index":"sluice-_shared.audit-` + day + `","routing":"shop","_id":`,
		"logs.parsed.big":        `{"create":{"_index":"sluice-big-` + day + `","_id":`,
		"logs.parsed.big.audit":  `{"create":{"_index":"sluice-big.audit-` + day + `","_id":`,
	} {
		r := *recs[0]
		r.Topic = topic
		b.reset()
		ix.add(context.Background(), &b, &w, &r, ticket{}, ix.topicInfo(infos, topic))
		if len(b.items) != 1 || b.items[0].fail != nil {
			t.Fatalf("%s: items %+v", topic, b.items)
		}
		action := string(b.buf[b.items[0].start:b.items[0].mid])
		if !strings.HasPrefix(action, want) {
			t.Errorf("%s: action %s, want %s...", topic, action, want)
		}
		var a map[string]map[string]string
		if err := json.Unmarshal([]byte(action), &a); err != nil {
			t.Errorf("%s: action is not JSON: %v", topic, err)
		}
	}
	fams, _ := ix.namer.routes.fams.since(0)
	slices.SortFunc(fams, func(a, b family) int { return strings.Compare(a.name+"."+a.dataset, b.name+"."+b.dataset) })
	want := []family{{SharedName, ""}, {SharedName, "audit"}, {"big", ""}, {"big", "audit"}}
	if !slices.Equal(fams, want) {
		t.Errorf("families %v, want %v", fams, want)
	}
	// After a rotation (midnight) the families written are noted again.
	ix.namer.routes.fams.rotate()
	r := *recs[0]
	r.Topic = "logs.parsed.big"
	ix.add(context.Background(), &b, &w, &r, ticket{}, ix.topicInfo(infos, r.Topic))
	if fams, n := ix.namer.routes.fams.since(0); n != 1 || fams[0] != (family{"big", ""}) {
		t.Errorf("after rotation: %v", fams)
	}
}

// TestInstallTemplates: both templates are installed, then left alone, or
// reconciled keeping an operator's settings; a shared index is made by the
// shared template (an operator's setting there shows it), any other by the
// main one. (The fake is single-shard: the shard counts are in the golden
// files.)
func TestInstallTemplates(t *testing.T) {
	es := esfake.Start(t)
	client, err := testES(t, es.URL()).NewClient()
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{IndexPrefix: "sluice", Shards: 2, Replicas: 0, SharedShards: 5, TotalFieldsLimit: 1000, IgnoreAbove: 256}
	templates := indexTemplates(&cfg)
	if installed, err := installTemplates(context.Background(), client, templates); err != nil || strings.Join(installed, ",") != "sluice,sluice-shared" {
		t.Fatalf("install: %v %v", installed, err)
	}
	if installed, err := installTemplates(context.Background(), client, templates); err != nil || len(installed) != 0 {
		t.Fatalf("install again: %v %v", installed, err)
	}
	// An operator's setting in the shared template is kept when the
	// indexer sets the shard count back.
	raw, _ := es.Template("sluice-shared")
	var edited map[string]any
	if err := json.Unmarshal(raw, &edited); err != nil {
		t.Fatal(err)
	}
	setPath(edited, []string{"template", "settings", "index", "refresh_interval"}, "30s")
	setPath(edited, []string{"template", "settings", "index", "number_of_shards"}, 1)
	body, _ := json.Marshal(edited)
	putTemplate(t, es.URL(), "sluice-shared", string(body))
	if installed, err := installTemplates(context.Background(), client, templates); err != nil || strings.Join(installed, ",") != "sluice-shared" {
		t.Fatalf("reconcile: %v %v", installed, err)
	}
	at := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	for name, shared := range map[string]bool{
		IndexName("sluice", "shop", "", at, time.UTC): false, SharedIndexName("sluice", "", at, time.UTC): true,
		SharedIndexName("sluice", "audit", at, time.UTC): true, IndexName("sluice", "shared", "", at, time.UTC): false,
	} {
		esRequest(t, http.MethodPut, es.URL()+"/"+name, "application/json", "")
		var got map[string]struct {
			Settings struct {
				Index struct {
					Refresh string `json:"refresh_interval"`
				} `json:"index"`
			} `json:"settings"`
		}
		if err := json.Unmarshal([]byte(esRequest(t, http.MethodGet, es.URL()+"/"+name, "", "")), &got); err != nil {
			t.Fatal(err)
		}
		if s := got[name].Settings.Index; shared != (s.Refresh == "30s") {
			t.Errorf("%s: %+v, made by the shared template: %v", name, s, shared)
		}
	}
}

// TestIndexerSharedLayout runs the indexer with tenants in the shared
// layout and one kept dedicated: every record is stored once, the shared
// tenants' in the shared indices (their datasets' in the shared index
// of the dataset) with their tenant field, the dedicated tenant's in its
// own; a second consumer group indexing everything again gets 409 for
// every document (the same routing reaches the same shard).
func TestIndexerSharedLayout(t *testing.T) {
	topics := []string{"logs.parsed.shop", "logs.parsed.shop.audit", "logs.parsed.pay", "logs.parsed.big", "logs.dlq.shop", "logs.dlq.pay", "logs.dlq.big"}
	c := testCluster(t, topics...)
	es := esfake.Start(t)
	cl := kafkatest.Client(t, c)
	var s sent
	s.produce(t, cl, "logs.parsed.shop", 200, 0, nil)
	s.produce(t, cl, "logs.parsed.shop.audit", 50, 0, nil)
	s.produce(t, cl, "logs.parsed.pay", 100, 0, nil)
	s.produce(t, cl, "logs.parsed.big", 150, 0, nil)
	env := map[string]string{"SLUICE_INDEXER_LAYOUT": "shared", "SLUICE_INDEXER_LAYOUT_OVERRIDES": "big=dedicated", "SLUICE_INDEXER_SHARED_SHARDS": "4"}
	_, _, stop := runIndexer(t, testConfig(t, c.ListenAddrs(), es.URL(), env))
	waitCommitted(t, 60*time.Second, "every offset committed", cl, "sluice-indexer", topics[:4]...)
	stop()
	if stored, dlq := s.accountFor(t, es, nil); stored != 500 || dlq != 0 {
		t.Fatalf("%d stored, %d dead-lettered", stored, dlq)
	}
	shared, audit, big := SharedIndexName("sluice", "", eventDay, time.UTC), SharedIndexName("sluice", "audit", eventDay, time.UTC), IndexName("sluice", "big", "", eventDay, time.UTC)
	if got, want := strings.Join(es.Indices(), ","), strings.Join([]string{shared, audit, big}, ","); got != want {
		t.Fatalf("indices %s, want %s", got, want)
	}
	tenants := map[string]map[string]int{}
	for _, idx := range es.Indices() {
		tenants[idx] = map[string]int{}
		for _, doc := range es.Docs(idx) {
			var d struct {
				Tenant string `json:"tenant"`
			}
			_ = json.Unmarshal(doc, &d)
			tenants[idx][d.Tenant]++
		}
	}
	if tenants[shared]["shop"] != 200 || tenants[shared]["pay"] != 100 || tenants[audit]["shop"] != 50 || tenants[big]["big"] != 150 || len(tenants[shared]) != 2 {
		t.Errorf("documents by index and tenant: %v", tenants)
	}
	if _, ok := es.Template("sluice-shared"); !ok {
		t.Error("the shared indices' template is not installed")
	}

	cfg := testConfig(t, c.ListenAddrs(), es.URL(), env)
	cfg.Group = "again"
	_, reg, stop := runIndexer(t, cfg)
	waitCommitted(t, 60*time.Second, "every offset committed again", cl, "again", topics[:4]...)
	stop()
	for tenant, want := range map[string]float64{"shop": 250, "pay": 100, "big": 150} {
		if got := metricValue(t, reg, "sluice_indexer_docs_duplicate_total", map[string]string{"tenant": tenant}); got != want {
			t.Errorf("%s: %v duplicates, want %v", tenant, got, want)
		}
	}
	if stored, _ := s.accountFor(t, es, nil); stored != 500 {
		t.Errorf("%d stored after indexing again", stored)
	}
}

// BenchmarkRoute measures what the layouts add to each document in add:
// noting its route's family for precreation (an atomic load; the route
// itself is worked out once per topic).
func BenchmarkRoute(b *testing.B) {
	cfg := testConfig(b, []string{"127.0.0.1:9092"}, "http://127.0.0.1:9200", nil)
	var rs routes
	r := rs.route(&cfg, topicInfo{tenant: "shop", ok: true})
	for b.Loop() {
		rs.note(r)
	}
	if rs.fams.count() != 1 {
		b.Fatalf("%d families noted", rs.fams.count())
	}
}
