package loadtest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sluicelogs/sluice/internal/apptest"
)

func TestDocTenant(t *testing.T) {
	for doc, want := range map[string]string{
		`{"@timestamp":"2026-11-21T10:00:00.000000000Z","tenant":"shop","stream":"stdout","a":{"tenant":"x"}}`: "shop",
		`{"@timestamp":"2026-11-21T10:00:00.000000000Z","log":"x"}`:                                            "",
		`{"tenant":"pay`: "",
	} {
		if got := docTenant([]byte(doc)); got != want {
			t.Errorf("docTenant(%s) = %q, want %q", doc, got, want)
		}
	}
}

// TestShortScenarioLayouts runs the short scenario with tenant shop in the
// shared layout and payments kept dedicated: every line is accounted for,
// each tenant's documents counted by their tenant field, in the shared
// index and in payments' own.
func TestShortScenarioLayouts(t *testing.T) {
	t.Setenv("SLUICE_INDEXER_LAYOUT", "shared")
	t.Setenv("SLUICE_INDEXER_LAYOUT_OVERRIDES", "payments=dedicated")
	s, err := ReadScenario("scenarios/short.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	rep, err := Run(ctx, s, Options{Bin: apptest.Binary(t), Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	a := rep.Accounting
	if !rep.OK || !a.OK() {
		t.Fatalf("the run failed its accounting: %+v", a)
	}
	var shared, payments, shop int
	for _, idx := range a.Indices {
		switch {
		case strings.HasPrefix(idx, "sluice-_shared-"):
			shared++
		case strings.HasPrefix(idx, "sluice-payments-"):
			payments++
		case strings.HasPrefix(idx, "sluice-shop"):
			shop++
		}
	}
	if shared == 0 || payments == 0 || shop != 0 {
		t.Errorf("indices %v: want shop's in the shared index, payments' in its own", a.Indices)
	}
	for _, tenant := range s.Tenants {
		pt := a.PerTenant[tenant]
		if pt.Indexed == 0 || pt.Documents == 0 || pt.Documents > pt.Indexed || pt.Misplaced != 0 {
			t.Errorf("tenant %s: %+v: want its documents found by tenant, none misplaced", tenant, pt)
		}
	}
}
