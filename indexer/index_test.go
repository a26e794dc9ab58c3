package indexer

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sluicelogs/sluice/internal/kafka"
)

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestIndexName(t *testing.T) {
	late := time.Date(2026, 11, 21, 23, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		tenant, dataset, tz string
		at                  time.Time
		want                string
	}{
		{"shop", "", "UTC", late, "sluice-shop-2026.11.21"},
		{"shop", "audit", "UTC", late, "sluice-shop.audit-2026.11.21"},
		{"shop-web", "", "UTC", late, "sluice-shop-web-2026.11.21"},
		// 23:30 UTC is the next day in Paris (UTC+1 in November) and
		// still the same day in New York (UTC-5).
		{"shop", "", "Europe/Paris", late, "sluice-shop-2026.11.22"},
		{"shop", "", "America/New_York", late, "sluice-shop-2026.11.21"},
		{"shop", "", "America/New_York", time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC), "sluice-shop-2026.11.21"},
		// A time given in another zone is converted, not read as local.
		{"shop", "", "UTC", time.Date(2026, 11, 22, 0, 30, 0, 0, time.FixedZone("+01", 3600)), "sluice-shop-2026.11.21"},
	} {
		got := IndexName("sluice", tc.tenant, tc.dataset, tc.at, mustLoc(t, tc.tz))
		if got != tc.want {
			t.Errorf("%s/%s in %s at %s: %s, want %s", tc.tenant, tc.dataset, tc.tz, tc.at, got, tc.want)
		}
		tenant, dataset, day, ok := ParseIndexName("sluice", got)
		if !ok || tenant != tc.tenant || dataset != tc.dataset || day.Format(dayLayout) != got[len(got)-10:] {
			t.Errorf("ParseIndexName(%s) = %q %q %v %v", got, tenant, dataset, day, ok)
		}
	}
}

// TestIndexNamesKeepTenantsApart: tenant shop with dataset web and tenant
// shop-web never share an index, and a tenant's index patterns never match
// another tenant's indices.
func TestIndexNamesKeepTenantsApart(t *testing.T) {
	at := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	a := IndexName("sluice", "shop", "web", at, time.UTC)
	b := IndexName("sluice", "shop-web", "", at, time.UTC)
	if a == b {
		t.Fatalf("same index %s", a)
	}
	// The role pattern the README gives tenant shop matches its indices
	// and no other tenant's.
	re := regexp.MustCompile(`^(?:sluice-shop(\.[a-z0-9-]+)?-[0-9]{4}\.[0-9]{2}\.[0-9]{2})$`)
	for name, want := range map[string]bool{
		a: true, IndexName("sluice", "shop", "", at, time.UTC): true,
		b: false, IndexName("sluice", "shop-2fa", "", at, time.UTC): false, IndexName("sluice", "shop-2fa", "x", at, time.UTC): false,
		IndexName("sluice", "shopping", "", at, time.UTC): false,
	} {
		if got := re.MatchString(name); got != want {
			t.Errorf("role pattern of tenant shop matches %s: %v, want %v", name, got, want)
		}
	}
}

// TestSharedIndexName: the shared indices' names parse, with SharedName
// for the tenant, and no tenant's dedicated index can have one: a tenant
// id never starts with '_'.
func TestSharedIndexName(t *testing.T) {
	at := time.Date(2026, 11, 21, 23, 30, 0, 0, time.UTC)
	for dataset, want := range map[string]string{"": "sluice-_shared-2026.11.21", "audit": "sluice-_shared.audit-2026.11.21"} {
		got := SharedIndexName("sluice", dataset, at, time.UTC)
		if got != want {
			t.Errorf("SharedIndexName(%q) = %s, want %s", dataset, got, want)
		}
		tenant, s, day, ok := ParseIndexName("sluice", got)
		if !ok || tenant != SharedName || s != dataset || day.Format(dayLayout) != "2026.11.21" {
			t.Errorf("ParseIndexName(%s) = %q %q %v %v", got, tenant, s, day, ok)
		}
	}
	if got := SharedIndexName("sluice", "", at, mustLoc(t, "Europe/Paris")); got != "sluice-_shared-2026.11.22" {
		t.Errorf("in Paris: %s", got)
	}
	if kafka.ValidateTenant(SharedName) == nil || kafka.ValidateTenant(strings.TrimPrefix(SharedName, "_")) != nil {
		t.Error("SharedName must be invalid as a tenant id, and only by its underscore")
	}
}

func TestParseIndexNameRejects(t *testing.T) {
	for _, name := range []string{
		"sluice-_shared_x-2026.11.21", "sluice-_Shared-2026.11.21", "sluice-_shared.-2026.11.21", "sluice-__shared-2026.11.21",
		"sluice-shop-2026.13.01", "sluice-shop-2026.11.21x", "sluice-2026.11.21", "other-shop-2026.11.21",
		"sluice-Shop-2026.11.21", "sluice-shop..web-2026.11.21", "sluice-shop.web.x-2026.11.21",
		"sluice-shop_2026.11.21", "sluice-", ".sluice-shop-2026.11.21", "sluice-shop-2026-11-21",
	} {
		if tenant, dataset, _, ok := ParseIndexName("sluice", name); ok {
			t.Errorf("ParseIndexName(%q) accepted: %q %q", name, tenant, dataset)
		}
	}
}

func TestIndexTime(t *testing.T) {
	n := namer{prefix: "sluice", loc: time.UTC, past: 7 * 24 * time.Hour, ahead: 24 * time.Hour}
	produced := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	observed := produced.Add(-2 * time.Second)
	for _, tc := range []struct {
		name                      string
		event, observed, produced time.Time
		want                      time.Time
		clamped                   bool
	}{
		{"in window", produced.Add(-time.Hour), observed, produced, produced.Add(-time.Hour), false},
		{"six days old", produced.Add(-6 * 24 * time.Hour), observed, produced, produced.Add(-6 * 24 * time.Hour), false},
		{"eight days old", produced.Add(-8 * 24 * time.Hour), observed, produced, observed, true},
		{"two days ahead", produced.Add(48 * time.Hour), observed, produced, observed, true},
		{"year 1970", time.Unix(0, 0), observed, produced, observed, true},
		{"no event time", time.Time{}, observed, produced, observed, true},
		// An observed time that is itself junk gives way to the Kafka
		// timestamp.
		{"junk observed", produced.Add(-time.Hour), time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC), produced, produced.Add(-time.Hour), false},
		{"no observed", produced.Add(-time.Hour), time.Time{}, produced, produced.Add(-time.Hour), false},
		// A backlog: the record is indexed days after it was produced; its
		// window is around its own ingest time, not the clock, so a replay
		// picks the same day.
		{"backlog", time.Date(2026, 10, 1, 8, 0, 0, 0, time.UTC), time.Date(2026, 10, 1, 8, 0, 1, 0, time.UTC), time.Date(2026, 10, 1, 8, 0, 2, 0, time.UTC), time.Date(2026, 10, 1, 8, 0, 0, 0, time.UTC), false},
	} {
		got, clamped := n.indexTime(tc.event, tc.observed, tc.produced)
		if !got.Equal(tc.want) || clamped != tc.clamped {
			t.Errorf("%s: %v clamped=%v, want %v clamped=%v", tc.name, got, clamped, tc.want, tc.clamped)
		}
	}
}

func TestValidateIndexPrefix(t *testing.T) {
	for _, ok := range []string{"sluice", "k8s-logs", "team_a", "a"} {
		if err := ValidateIndexPrefix(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "Sluice", "-x", "_x", "a.b", "a*", "logs", "logs-k8s", "metrics", strings.Repeat("a", maxIndexPrefix+1)} {
		if err := ValidateIndexPrefix(bad); !errors.Is(err, ErrInvalidIndexPrefix) {
			t.Errorf("%q accepted (%v)", bad, err)
		}
	}
}

func TestTemplateGolden(t *testing.T) {
	body := templateBody(templateSettings{prefix: "sluice", shards: 1, replicas: 1, totalFields: 2000, ignoreAbove: 1024})
	golden(t, filepath.Join("testdata", "template.json"), append(body, '\n'))
	var tmpl struct {
		IndexPatterns []string `json:"index_patterns"`
		Priority      int      `json:"priority"`
	}
	if err := json.Unmarshal(body, &tmpl); err != nil {
		t.Fatal(err)
	}
	// Elastic's built-in templates use priority 100 (logs-*-*, ...).
	if tmpl.Priority <= 200 || len(tmpl.IndexPatterns) != 1 || tmpl.IndexPatterns[0] != "sluice-*" {
		t.Fatalf("template %+v", tmpl)
	}
}

// TestSharedTemplateGolden: the shared indices' template is the main one
// but for its patterns (the shared indices only), a higher priority and
// its own shard count.
func TestSharedTemplateGolden(t *testing.T) {
	cfg := Config{IndexPrefix: "sluice", Shards: 1, Replicas: 1, SharedShards: 3, TotalFieldsLimit: 2000, IgnoreAbove: 1024}
	templates := indexTemplates(&cfg)
	if len(templates) != 2 || templates[0].name != "sluice" || templates[1].name != "sluice-shared" {
		t.Fatalf("templates %v", templates)
	}
	golden(t, filepath.Join("testdata", "template.json"), append(templates[0].body, '\n'))
	golden(t, filepath.Join("testdata", "template-shared.json"), append(templates[1].body, '\n'))
	var main, shared map[string]any
	if err := json.Unmarshal(templates[0].body, &main); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(templates[1].body, &shared); err != nil {
		t.Fatal(err)
	}
	if shared["priority"].(float64) <= main["priority"].(float64) {
		t.Errorf("shared priority %v, main %v", shared["priority"], main["priority"])
	}
	if v, _ := lookupPath(shared, []string{"template", "settings", "index", "number_of_shards"}); v != float64(3) {
		t.Errorf("shared shards %v", v)
	}
	if !sameJSON(main["template"].(map[string]any)["mappings"], shared["template"].(map[string]any)["mappings"]) {
		t.Error("the shared template maps documents differently")
	}
	// The shared patterns match the shared indices and no tenant's; the
	// main pattern matches them too (hence the priority).
	at := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	patterns := shared["index_patterns"].([]any)
	matches := func(name string) bool {
		for _, p := range patterns {
			if ok, _ := filepath.Match(p.(string), name); ok {
				return true
			}
		}
		return false
	}
	for name, want := range map[string]bool{
		SharedIndexName("sluice", "", at, time.UTC): true, SharedIndexName("sluice", "audit", at, time.UTC): true,
		IndexName("sluice", "shop", "", at, time.UTC): false, IndexName("sluice", "shared", "", at, time.UTC): false,
		IndexName("sluice", "s", "hared", at, time.UTC): false,
	} {
		if got := matches(name); got != want {
			t.Errorf("shared patterns %v match %s: %v, want %v", patterns, name, got, want)
		}
		if ok, _ := filepath.Match("sluice-*", name); !ok {
			t.Errorf("main pattern does not match %s", name)
		}
	}
}

func TestRetentionExpired(t *testing.T) {
	now := time.Date(2026, 11, 21, 0, 30, 0, 0, time.UTC)
	r := retention{prefix: "sluice", loc: time.UTC, days: 7, overrides: map[string]int{"audit": 0, "scratch": 1}}
	indices := []string{
		"sluice-shop-2026.11.21", "sluice-shop-2026.11.14", "sluice-shop-2026.11.13", "sluice-shop.web-2026.11.01",
		"sluice-audit-2020.01.01", "sluice-scratch-2026.11.20", "sluice-scratch-2026.11.19",
		"sluice-shop-web-2026.11.13", "other-shop-2020.01.01", "sluice-custom", "sluice-shop-2026.11.13-restored",
		// Shared indices go by day with the default retention.
		"sluice-_shared-2026.11.14", "sluice-_shared-2026.11.13", "sluice-_shared.audit-2026.11.13", "sluice-_shared_x-2026.11.01",
	}
	got := r.expired(indices, now)
	want := []string{"sluice-_shared-2026.11.13", "sluice-_shared.audit-2026.11.13", "sluice-scratch-2026.11.19", "sluice-shop-2026.11.13", "sluice-shop-web-2026.11.13", "sluice-shop.web-2026.11.01"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("expired %v, want %v", got, want)
	}
	// In a zone ahead of UTC it is already the 21st at 23:30 UTC on the
	// 20th.
	r.loc = mustLoc(t, "Asia/Tokyo")
	got = r.expired([]string{"sluice-shop-2026.11.13"}, time.Date(2026, 11, 20, 23, 30, 0, 0, time.UTC))
	if len(got) != 1 {
		t.Fatalf("tokyo: %v", got)
	}
	if !(retention{days: 0, overrides: map[string]int{"a": 3}}).enabled() || (retention{overrides: map[string]int{"a": 0}}).enabled() {
		t.Fatal("enabled")
	}
}

func TestParseRetentionOverrides(t *testing.T) {
	got, err := ParseRetentionOverrides([]string{"audit=365", " scratch=0"})
	if err != nil || got["audit"] != 365 || got["scratch"] != 0 || len(got) != 2 {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range [][]string{{"audit"}, {"audit=x"}, {"audit=-1"}, {"Bad=1"}, {"a=1", "a=2"}} {
		if _, err := ParseRetentionOverrides(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
