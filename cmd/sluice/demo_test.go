package main

import (
	"strings"
	"testing"

	"github.com/sluicelogs/sluice/internal/demo"
	"github.com/sluicelogs/sluice/router"
)

// TestDemoPipelines: every pipeline of the dev stack's demo loads, without
// a warning, and passes its own tests.
func TestDemoPipelines(t *testing.T) {
	for tenant, src := range demo.Pipelines {
		p, err := router.Load([]byte(src))
		if err != nil {
			t.Errorf("%s: %v", tenant, err)
			continue
		}
		if w := p.Warnings(); len(w) > 0 {
			t.Errorf("%s: warnings %v", tenant, w)
		}
		if p.Tenant != tenant {
			t.Errorf("pipeline of %s names tenant %s", tenant, p.Tenant)
		}
		if want := map[string]string{"payments": "audit"}[tenant]; strings.Join(p.Datasets(), ",") != want {
			t.Errorf("%s routes to %v, want %q", tenant, p.Datasets(), want)
		}
	}
}
