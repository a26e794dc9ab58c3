package indexer

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelogs/sluice/internal/eslite"
	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/internal/kafkatest"
	"github.com/sluicelogs/sluice/internal/testwait"
)

func settingsRecord(tenant, value string) *kgo.Record {
	return &kgo.Record{Topic: "logs.tenants", Key: []byte(tenant), Value: []byte(value)}
}

func tombstone(tenant string) *kgo.Record {
	return &kgo.Record{Topic: "logs.tenants", Key: []byte(tenant)}
}

func retentionDays(n int) *int { return &n }

// TestTenantSettingsApply: records are applied in order into a new
// snapshot, the old one untouched; the indexer's overrides win over the
// records, and saying so is logged once per change of the record; a bad
// record (or key) is counted and ignored, its tenant keeps what it had; a
// tombstone takes the tenant back to the defaults.
func TestTenantSettingsApply(t *testing.T) {
	cfg := testConfig(t, []string{"127.0.0.1:9092"}, "http://127.0.0.1:9200", map[string]string{
		"SLUICE_INDEXER_LAYOUT_OVERRIDES": "pinned=dedicated", "SLUICE_INDEXER_RETENTION_DAYS": "7",
		"SLUICE_INDEXER_RETENTION_OVERRIDES": "pinned=30"})
	logs := new(logBuffer)
	reg := prometheus.NewRegistry()
	ix, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ix.namer.routes.init(&cfg)
	layouts := ix.namer.routes.layouts
	f := ix.newTenantFollower()
	f.caught = true
	count := func(s string) int { return strings.Count(logs.String(), s) }
	const layoutOverridden, retentionOverridden = "overridden by SLUICE_INDEXER_LAYOUT_OVERRIDES", "overridden by SLUICE_INDEXER_RETENTION_OVERRIDES"

	if layouts.of("a") != LayoutDedicated || !ix.retention.enabled() || ix.retention.daysOf("b", ix.settings.load()) != 7 {
		t.Fatal("defaults before any record")
	}
	f.apply([]*kgo.Record{
		settingsRecord("a", `{"v":1,"layout":"shared","retentionDays":null}`),
		settingsRecord("b", `{"v":1,"layout":"dedicated","retentionDays":3}`),
		settingsRecord("pinned", `{"v":1,"layout":"shared","retentionDays":1}`),
	})
	first := ix.settings.load()
	snap := first
	for tenant, want := range map[string]struct {
		layout Layout
		days   int
	}{"a": {LayoutShared, 7}, "b": {LayoutDedicated, 3}, "pinned": {LayoutDedicated, 30}, "other": {LayoutDedicated, 7}} {
		if got := layouts.of(tenant); got != want.layout {
			t.Errorf("%s: layout %s, want %s", tenant, got, want.layout)
		}
		if got := ix.retention.daysOf(tenant, snap); got != want.days {
			t.Errorf("%s: retention %d days, want %d", tenant, got, want.days)
		}
	}
	if ix.retention.daysOf(SharedName, snap) != 7 {
		t.Error("the shared indices do not go by the default retention")
	}
	if count(layoutOverridden) != 1 || count(retentionOverridden) != 1 {
		t.Errorf("overrides logged %d and %d times, want once each:\n%s", count(layoutOverridden), count(retentionOverridden), logs)
	}
	if got := metricValue(t, reg, "sluice_indexer_tenant_settings_tenants", nil); got != 3 {
		t.Errorf("%v tenants with settings, want 3", got)
	}

	// A record that does not decode, a key that is no tenant id, a
	// tombstone, and the pinned tenant's record again, unchanged.
	f.apply([]*kgo.Record{
		settingsRecord("a", `{"v":1,"layout":"pooled"}`),
		settingsRecord("Not_A_Tenant", `{"v":1,"layout":"shared"}`),
		tombstone("b"),
		settingsRecord("pinned", `{"v":1,"layout":"shared","retentionDays":1}`),
		tombstone("never-had-one"),
	})
	snap = ix.settings.load()
	if layouts.of("a") != LayoutShared {
		t.Error("a bad record changed the tenant's layout")
	}
	if _, ok := snap.get("b"); ok || ix.retention.daysOf("b", snap) != 7 || layouts.of("b") != LayoutDedicated {
		t.Error("b's settings outlived its tombstone")
	}
	if _, ok := snap.get("not_a_tenant"); ok || snap.len() != 2 {
		t.Errorf("%d records: %v", snap.len(), snap.records)
	}
	if d := ix.retention.daysOf("b", first); d != 3 {
		t.Errorf("the first snapshot changed: b keeps %d days", d)
	}
	if got := metricValue(t, reg, "sluice_indexer_tenant_settings_errors_total", nil); got != 2 {
		t.Errorf("%v errors counted, want 2", got)
	}
	for _, want := range []string{`keeps="layout=shared retentionDays=default"`, `layout \"pooled\"`, "not a tenant id", "tenant=b layout=dedicated retention_days=7"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs do not say %s:\n%s", want, logs)
		}
	}
	if count(layoutOverridden) != 1 || count(retentionOverridden) != 1 {
		t.Errorf("an unchanged record logged its overrides again:\n%s", logs)
	}

	// Nothing changes: no new snapshot.
	f.apply([]*kgo.Record{settingsRecord("a", `{"v":1,"layout":"shared","retentionDays":null}`), tombstone("b")})
	if ix.settings.load() != snap {
		t.Error("a new snapshot without a change")
	}
	// A retention for a tenant in the shared layout: said once.
	f.apply([]*kgo.Record{settingsRecord("a", `{"v":1,"layout":"shared","retentionDays":2}`)})
	f.apply([]*kgo.Record{settingsRecord("a", `{"v":1,"layout":"shared","retentionDays":2}`)})
	if n := count("its record's retentionDays applies to its dedicated indices only"); n != 1 {
		t.Errorf("the shared tenant's retention noted %d times, want once:\n%s", n, logs)
	}
	if ix.retention.daysOf("a", ix.settings.load()) != 2 || ix.retention.daysOf(SharedName, ix.settings.load()) != 7 {
		t.Error("a's record's retention applies to other indices than its own")
	}
}

// TestRetentionEnabledByRecord: an indexer whose settings keep indices
// forever has retention work once a record sets a number of days, and
// none again when it is gone.
func TestRetentionEnabledByRecord(t *testing.T) {
	cfg := testConfig(t, []string{"127.0.0.1:9092"}, "http://127.0.0.1:9200", nil) // SLUICE_INDEXER_RETENTION_DAYS=0
	ix, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := ix.newTenantFollower()
	for _, step := range []struct {
		rec  *kgo.Record
		want bool
	}{
		{nil, false},
		{settingsRecord("a", `{"v":1,"retentionDays":0}`), false},
		{settingsRecord("a", `{"v":1,"retentionDays":3}`), true},
		{tombstone("a"), false},
	} {
		if step.rec != nil {
			f.apply([]*kgo.Record{step.rec})
		}
		if got := ix.retention.enabled(); got != step.want {
			t.Errorf("after %v: retention enabled %v, want %v", step.rec, got, step.want)
		}
	}
}

// docsByIndex counts the documents of es by index and tenant.
func docsByIndex(t *testing.T, es *eslite.Store) map[string]map[string]int {
	t.Helper()
	out := map[string]map[string]int{}
	for _, idx := range es.Indices() {
		out[idx] = map[string]int{}
		for _, doc := range es.Docs(idx) {
			var d struct {
				Tenant string `json:"tenant"`
			}
			if err := json.Unmarshal(doc, &d); err != nil {
				t.Fatal(err)
			}
			out[idx][d.Tenant]++
		}
	}
	return out
}

// TestIndexerTenantSettings runs an indexer while the tenants' settings
// change under it. The topic does not exist at start (not an error: every
// tenant gets the defaults); then tenant a is made shared, then dedicated;
// a garbage record for a beside a good one making b shared leaves a as it
// was and makes b shared, and is counted; a's tombstone takes it back to
// the default. Tenant c's record says shared but
// SLUICE_INDEXER_LAYOUT_OVERRIDES keeps it dedicated. After each change,
// every document produced after it is in its tenant's new layout's index,
// and every earlier one where it was.
func TestIndexerTenantSettings(t *testing.T) {
	topics := []string{"logs.parsed.a", "logs.parsed.b", "logs.parsed.c", "logs.dlq.a", "logs.dlq.b", "logs.dlq.c"}
	c := testCluster(t, topics...)
	es := eslite.Start(t)
	cl := kafkatest.Client(t, c, kgo.MetadataMinAge(50*time.Millisecond))
	ctx := context.Background()
	tp := kafka.Topics{Prefix: "logs"}
	logs := new(logBuffer)
	ix, reg, stop := runIndexerWith(t, testConfig(t, c.ListenAddrs(), es.URL(), map[string]string{"SLUICE_INDEXER_LAYOUT_OVERRIDES": "c=dedicated"}),
		Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})

	var s sent
	want := map[string]map[string]int{}
	shared := SharedIndexName("sluice", "", eventDay, time.UTC)
	// phase waits until the indexer has applied a change, produces 20
	// records for each tenant and checks, once they are committed, where
	// every document is.
	phase := func(name string, applied func(*tenantSnapshot) bool, sharedTenants ...string) {
		t.Helper()
		testwait.For(t, 30*time.Second, name+": the settings applied", func() (bool, string) { return applied(ix.settings.load()), "" })
		for _, tenant := range []string{"a", "b", "c"} {
			s.produce(t, cl, "logs.parsed."+tenant, 20, 0, nil)
			idx := IndexName("sluice", tenant, "", eventDay, time.UTC)
			if slices.Contains(sharedTenants, tenant) {
				idx = shared
			}
			if want[idx] == nil {
				want[idx] = map[string]int{}
			}
			want[idx][tenant] += 20
		}
		waitCommitted(t, 60*time.Second, name+": every offset committed", cl, "sluice-indexer", topics[:3]...)
		got := docsByIndex(t, es)
		for _, idx := range slices.Sorted(maps.Keys(want)) {
			if !maps.Equal(got[idx], want[idx]) {
				t.Errorf("%s: index %s holds %v, want %v", name, idx, got[idx], want[idx])
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s: indices %v, want %v", name, slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
		}
	}
	publish := func(tenant, layout string) {
		t.Helper()
		if err := kafka.PublishTenantSettings(ctx, cl, tp, tenant, kafka.TenantSettings{Layout: layout}); err != nil {
			t.Fatal(err)
		}
	}
	has := func(tenant, layout string) func(*tenantSnapshot) bool {
		return func(snap *tenantSnapshot) bool { r, ok := snap.get(tenant); return ok && r.Layout == layout }
	}

	phase("no topic", func(*tenantSnapshot) bool { return true })
	publish("c", kafka.TenantLayoutShared)
	publish("a", kafka.TenantLayoutShared) // the topic is made now, and found by the indexer
	phase("a shared", func(snap *tenantSnapshot) bool { return has("a", "shared")(snap) && has("c", "shared")(snap) }, "a")
	publish("a", kafka.TenantLayoutDedicated)
	phase("a dedicated", has("a", "dedicated"))
	publish("a", kafka.TenantLayoutShared)
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: tp.Tenants(), Key: []byte("a"), Value: []byte(`{"v":1,"layout":"pooled"}`)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	publish("b", kafka.TenantLayoutShared)
	phase("garbage for a, b shared", func(snap *tenantSnapshot) bool {
		// One partition, in order: b's record comes after a's garbage.
		return has("a", "shared")(snap) && has("b", "shared")(snap)
	}, "a", "b")
	if got := metricValue(t, reg, "sluice_indexer_tenant_settings_errors_total", nil); got != 1 {
		t.Errorf("%v errors counted, want 1", got)
	}
	if err := kafka.DeleteTenantSettings(ctx, cl, tp, "a"); err != nil {
		t.Fatal(err)
	}
	phase("a deleted", func(snap *tenantSnapshot) bool { _, ok := snap.get("a"); return !ok }, "b")
	stop()

	if stored, dlq := s.accountFor(t, es, nil); stored != 5*60 || dlq != 0 {
		t.Errorf("%d stored, %d dead-lettered, want %d stored", stored, dlq, 5*60)
	}
	for msg, n := range map[string]int{
		"the tenant settings topic does not exist":                           1,
		"the tenant settings topic exists now":                               1,
		"a tenant's settings record is ignored":                              1,
		"overridden by SLUICE_INDEXER_LAYOUT_OVERRIDES":                      1,
		"tenant settings deleted: the tenant has the indexer's own settings": 1,
	} {
		if got := strings.Count(logs.String(), msg); got != n {
			t.Errorf("logged %q %d times, want %d:\n%s", msg, got, n, logs)
		}
	}
}

// TestIndexerTenantRetention: the records in <prefix>.tenants at start
// decide the first retention pass (a tenant whose record keeps 30 days
// loses nothing to the default of 4), a record's retentionDays deletes its
// tenant's dedicated indices by that, an override beats a record, the
// shared indices go by the default; a record set later, and a tombstone,
// apply from the next pass.
func TestIndexerTenantRetention(t *testing.T) {
	c := testCluster(t, "logs.parsed.a")
	es := eslite.Start(t)
	cl := kafkatest.Client(t, c, kgo.MetadataMinAge(50*time.Millisecond))
	ctx := context.Background()
	tp := kafka.Topics{Prefix: "logs"}
	for tenant, days := range map[string]int{"a": 2, "b": 30, "c": 1} {
		if err := kafka.PublishTenantSettings(ctx, cl, tp, tenant, kafka.TenantSettings{RetentionDays: retentionDays(days)}); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC()
	name := func(tenant string, ago int) string {
		if tenant == SharedName {
			return SharedIndexName("sluice", "", now.AddDate(0, 0, -ago), time.UTC)
		}
		return IndexName("sluice", tenant, "", now.AddDate(0, 0, -ago), time.UTC)
	}
	for _, tenant := range []string{"a", "b", "c", "e", SharedName} {
		for _, ago := range []int{0, 3, 10, 40} {
			es.CreateIndex(name(tenant, ago))
		}
	}
	left := func(keep map[string][]int) func() (bool, string) {
		var want []string
		for tenant, agos := range keep {
			for _, ago := range agos {
				want = append(want, name(tenant, ago))
			}
		}
		slices.Sort(want)
		return func() (bool, string) {
			got := es.Indices()
			return slices.Equal(got, want), fmt.Sprintf("indices %v", got)
		}
	}
	runIndexer(t, testConfig(t, c.ListenAddrs(), es.URL(), map[string]string{
		"SLUICE_INDEXER_RETENTION_DAYS": "4", "SLUICE_INDEXER_RETENTION_OVERRIDES": "c=5", "SLUICE_INDEXER_RETENTION_INTERVAL": "100ms"}))
	testwait.For(t, 30*time.Second, "old indices deleted by the records at start", left(map[string][]int{
		"a": {0}, "b": {0, 3, 10}, "c": {0, 3}, "e": {0, 3}, SharedName: {0, 3},
	}))
	if err := kafka.PublishTenantSettings(ctx, cl, tp, "e", kafka.TenantSettings{RetentionDays: retentionDays(1)}); err != nil {
		t.Fatal(err)
	}
	if err := kafka.DeleteTenantSettings(ctx, cl, tp, "b"); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 30*time.Second, "old indices deleted by the records changed", left(map[string][]int{
		"a": {0}, "b": {0, 3}, "c": {0, 3}, "e": {0}, SharedName: {0, 3},
	}))
}

// TestPrecreateSkipsTenantsMadeShared: a dedicated family whose tenant
// moved to the shared layout during the day gets no index for tomorrow;
// the others do.
func TestPrecreateSkipsTenantsMadeShared(t *testing.T) {
	es := eslite.Start(t)
	client, err := testES(t, es.URL()).NewClient()
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, []string{"127.0.0.1:9092"}, "http://127.0.0.1:9200", nil)
	settings := newTenantSettings()
	n := &namer{prefix: "sluice", loc: time.UTC, routes: routes{settings: settings}}
	n.routes.init(&cfg)
	fams := n.routes.fams
	reg := prometheus.NewRegistry()
	clock := &fakeClock{t: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)}
	p := newPrecreator(client, n, fams, time.Hour, slog.New(slog.DiscardHandler), newPrecreateMetrics(reg, fams))
	p.now, p.sleep, p.rand = clock.now, clock.sleep, rand.New(rand.NewPCG(1, 2))
	ctx := context.Background()
	p.step(ctx) // the day starts
	for _, f := range []family{{"moved", ""}, {"moved", "audit"}, {"stays", ""}, {SharedName, ""}} {
		fams.note(f)
	}
	settings.cur.Store(&tenantSnapshot{records: map[string]kafka.TenantSettings{"moved": {Layout: kafka.TenantLayoutShared}}})
	for clock.t.Before(time.Date(2026, 11, 22, 0, 30, 0, 0, time.UTC)) {
		p.step(ctx)
	}
	tomorrow := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	want := []string{IndexName("sluice", "stays", "", tomorrow, time.UTC), SharedIndexName("sluice", "", tomorrow, time.UTC)}
	slices.Sort(want)
	if got := es.Indices(); !slices.Equal(got, want) {
		t.Errorf("created %v, want %v", got, want)
	}
}

// TestIndexerTenantSettingsUnread: while the tenants' settings cannot be
// read (their offsets cannot be listed), the indexer starts indexing after
// its bounded wait, with its own settings, and says so; retention waits
// (tenant b's record keeps what the default of 4 days would delete); once
// the settings are read, retention goes by them.
func TestIndexerTenantSettingsUnread(t *testing.T) {
	c := testCluster(t, "logs.parsed.e", "logs.dlq.e")
	es := eslite.Start(t)
	cl := kafkatest.Client(t, c, kgo.MetadataMinAge(50*time.Millisecond))
	ctx := context.Background()
	tp := kafka.Topics{Prefix: "logs"}
	if err := kafka.PublishTenantSettings(ctx, cl, tp, "b", kafka.TenantSettings{RetentionDays: retentionDays(30)}); err != nil {
		t.Fatal(err)
	}
	blocked := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.ListOffsets}, Topic: tp.Tenants(), Count: -1})
	now := time.Now().UTC()
	var all []string
	for _, idx := range []string{
		IndexName("sluice", "b", "", now, time.UTC), IndexName("sluice", "b", "", now.AddDate(0, 0, -10), time.UTC),
		IndexName("sluice", "e", "", now.AddDate(0, 0, -10), time.UTC),
	} {
		es.CreateIndex(idx)
		all = append(all, idx)
	}

	logs := new(logBuffer)
	ready := new(atomic.Bool)
	ix, err := New(testConfig(t, c.ListenAddrs(), es.URL(), map[string]string{
		"SLUICE_INDEXER_RETENTION_DAYS": "4", "SLUICE_INDEXER_RETENTION_INTERVAL": "100ms"}),
		Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})), Ready: ready.Store})
	if err != nil {
		t.Fatal(err)
	}
	ix.settingsWait = 100 * time.Millisecond
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- ix.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	testwait.For(t, 30*time.Second, "the indexer to be ready", func() (bool, string) { return ready.Load(), "" })
	var s sent
	s.produce(t, cl, "logs.parsed.e", 20, 0, nil)
	waitCommitted(t, 60*time.Second, "e's records committed", cl, "sluice-indexer", "logs.parsed.e")
	if !strings.Contains(logs.String(), "the tenants' settings are not read yet") {
		t.Errorf("the indexer did not say it started without the tenants' settings:\n%s", logs)
	}
	for _, idx := range all {
		if !slices.Contains(es.Indices(), idx) {
			t.Errorf("%s deleted before the tenants' settings were read", idx)
		}
	}

	blocked.Remove()
	yesterday := IndexName("sluice", "e", "", eventDay, time.UTC)
	want := []string{all[0], all[1], yesterday}
	slices.Sort(want)
	testwait.For(t, 30*time.Second, "e's old index deleted, b's kept by its record", func() (bool, string) {
		got := es.Indices()
		return slices.Equal(got, want), fmt.Sprintf("indices %v", got)
	})
}
