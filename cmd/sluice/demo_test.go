package main

import (
	"strings"
	"testing"

	"github.com/sluicelogs/sluice/internal/demo"
	"github.com/sluicelogs/sluice/router"
)

// TestDemoPipelines: every pipeline of the dev stack's demo loads and
// passes its own tests.
func TestDemoPipelines(t *testing.T) {
	for tenant, src := range demo.Pipelines {
		p, err := router.Load([]byte(src))
		if err != nil {
			t.Errorf("%s: %v", tenant, err)
			continue
		}
		if p.Tenant != tenant {
			t.Errorf("pipeline of %s names tenant %s", tenant, p.Tenant)
		}
		if want := map[string]string{"payments": "audit"}[tenant]; strings.Join(p.Streams(), ",") != want {
			t.Errorf("%s routes to %v, want %q", tenant, p.Streams(), want)
		}
	}
}
