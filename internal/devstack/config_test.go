package devstack

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/sluicelogs/sluice/internal/config"
)

func TestConfigFaults(t *testing.T) {
	var c Config
	err := config.LoadFrom(context.Background(), &c, envconfig.MapLookuper(map[string]string{
		"SLUICE_DEV_ES_FAULT_STATUS": "429", "SLUICE_DEV_ES_FAULT_REQUESTS": "1", "SLUICE_DEV_ES_LATENCY": "5ms",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	f := c.Faults()
	if f.RequestStatus != 429 || f.RequestFraction != 1 || f.ItemFraction != 0 || f.Latency != 5*time.Millisecond {
		t.Fatalf("faults %+v", f)
	}
	st, err := Open(t.TempDir(), WithFaults(f))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rec := httptest.NewRecorder()
	st.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/_cat/indices", nil))
	if rec.Code != 429 || rec.Header().Get("X-Elastic-Product") != "Elasticsearch" {
		t.Fatalf("status %d, headers %v", rec.Code, rec.Header())
	}

	bad := Config{FaultStatus: 500, FaultRequests: 2, FaultItems: -1, Latency: -time.Second}
	err = bad.Validate()
	for _, name := range []string{"SLUICE_DEV_ES_FAULT_STATUS", "SLUICE_DEV_ES_FAULT_REQUESTS", "SLUICE_DEV_ES_FAULT_ITEMS", "SLUICE_DEV_ES_LATENCY"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("problem with %s not reported: %v", name, err)
		}
	}
}
