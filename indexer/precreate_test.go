package indexer

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicelogs/sluice/internal/esfake"
)

// fakeClock is a clock whose sleeps return at once, moving it on.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }
func (c *fakeClock) sleep(ctx context.Context, d time.Duration) bool {
	if ctx.Err() != nil {
		return false
	}
	c.t = c.t.Add(d)
	return true
}

// TestPrecreate runs the precreator on a fake clock against the fake
// Elasticsearch (in Paris time): tomorrow's index of every family written
// today is created within the window before local midnight, spread over
// it, an existing one counted as such; a family first written in the
// window is created too; at midnight the families are forgotten. On a day
// Elasticsearch is down, every index is tried three times, counted as
// failed, and the precreator carries on.
func TestPrecreate(t *testing.T) {
	es := esfake.Start(t)
	client, err := testES(t, es.URL()).NewClient()
	if err != nil {
		t.Fatal(err)
	}
	paris := mustLoc(t, "Europe/Paris")
	n := &namer{prefix: "sluice", loc: paris}
	fams := newFamilies(1000)
	reg := prometheus.NewRegistry()
	clock := &fakeClock{t: time.Date(2026, 11, 21, 9, 0, 0, 0, paris)}
	p := newPrecreator(client, n, fams, 2*time.Hour, slog.New(slog.DiscardHandler), newPrecreateMetrics(reg, fams))
	p.now, p.sleep, p.rand = clock.now, clock.sleep, rand.New(rand.NewPCG(1, 2))
	ctx := context.Background()

	p.step(ctx) // the day starts: whatever was noted before is forgotten
	var want []string
	for i := range 60 {
		f := family{name: fmt.Sprintf("tenant-%02d", i)}
		switch i {
		case 0:
			f = family{name: SharedName}
		case 1:
			f = family{name: SharedName, dataset: "audit"}
		case 2:
			f.dataset = "audit"
		}
		fams.note(f)
		fams.note(f) // noted twice, created once
		want = append(want, IndexName("sluice", f.name, f.dataset, time.Date(2026, 11, 22, 12, 0, 0, 0, paris), paris))
	}
	es.CreateIndex(want[5]) // another replica was quicker
	windowStart := time.Date(2026, 11, 21, 22, 0, 0, 0, paris)
	midnight := time.Date(2026, 11, 22, 0, 0, 0, 0, paris)
	late := IndexName("sluice", "late-comer", "", midnight, paris)
	want = append(want, late)
	created := map[string]time.Time{}
	for step := 0; clock.t.Before(midnight.Add(30 * time.Minute)); step++ {
		if step > 10_000 {
			t.Fatal("the precreator does not get past midnight")
		}
		if clock.t.After(windowStart.Add(time.Hour)) && fams.count() == 60 {
			fams.note(family{name: "late-comer"})
		}
		p.step(ctx)
		for _, idx := range es.Indices() {
			if _, ok := created[idx]; !ok && idx != want[5] {
				created[idx] = clock.t
			}
		}
	}
	if got := slices.Sorted(func(yield func(string) bool) {
		for idx := range created {
			if !yield(idx) {
				return
			}
		}
	}); len(got) != len(want)-1 {
		t.Fatalf("created %d indices, want %d: %v", len(got), len(want)-1, got)
	}
	for _, idx := range want {
		if _, ok := created[idx]; !ok && idx != want[5] {
			t.Errorf("%s not created", idx)
		}
	}
	// Within the window, and spread: each quarter of it sees a share.
	var quarters [4]int
	for idx, at := range created {
		if at.Before(windowStart) || !at.Before(midnight) {
			t.Errorf("%s created at %s, outside the window", idx, at)
			continue
		}
		quarters[at.Sub(windowStart)/(30*time.Minute)]++
	}
	t.Logf("creations by quarter of the window: %v", quarters)
	for i, q := range quarters {
		if q < 5 || q > 30 {
			t.Errorf("quarter %d of the window saw %d creations (%v): not spread", i, q, quarters)
		}
	}
	for result, want := range map[string]float64{"created": 60, "exists": 1, "failed": 0} {
		if got := metricValue(t, reg, "sluice_indexer_precreated_indices_total", map[string]string{"result": result}); got != want {
			t.Errorf("precreated %s: %v, want %v", result, got, want)
		}
	}
	if got := metricValue(t, reg, "sluice_indexer_index_families", nil); got != 0 {
		t.Errorf("%v families after midnight, want 0 (forgotten)", got)
	}

	// The next day Elasticsearch is down: three attempts per index, then
	// the first write is left to create it.
	fams.note(family{name: "tenant-00"})
	fams.note(family{name: SharedName})
	es.SetFaults(esfake.Faults{Down: true})
	for clock.t.Before(midnight.Add(24*time.Hour + time.Minute)) {
		p.step(ctx)
	}
	if got := metricValue(t, reg, "sluice_indexer_precreated_indices_total", map[string]string{"result": "failed"}); got != 6 {
		t.Errorf("%v failures, want 6", got)
	}
	es.SetFaults(esfake.Faults{})
	if got := len(es.Indices()); got != len(want) {
		t.Errorf("%d indices after a day Elasticsearch was down, want %d", got, len(want))
	}
	// Stopped, it returns.
	stopped, cancel := context.WithCancel(ctx)
	cancel()
	p.run(stopped)
}

// TestPrecreateOff: with no window the routes note no families and Run
// starts no precreator.
func TestPrecreateOff(t *testing.T) {
	cfg := testConfig(t, []string{"127.0.0.1:9092"}, "http://127.0.0.1:9200", map[string]string{"SLUICE_INDEXER_PRECREATE_WINDOW": "0"})
	var rs routes
	rs.init(&cfg)
	if rs.fams != nil {
		t.Fatal("families noted with precreation off")
	}
	r := rs.route(&cfg, topicInfo{tenant: "shop", ok: true})
	if r.shared || r.fam != (family{name: "shop"}) {
		t.Fatalf("route %+v", r)
	}
	rs.note(r) // nothing to note into, and no panic
}
