package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sluicelogs/sluice/indexer"
	"github.com/sluicelogs/sluice/internal/devstack"
)

// TestSearch runs sluice search against the embedded store holding two
// tenants whose index names overlap (shop and shop-web).
func TestSearch(t *testing.T) {
	st, err := devstack.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(st.Handler())
	t.Cleanup(func() { srv.Close(); _ = st.Close() })
	t.Setenv("SLUICE_ELASTICSEARCH_URLS", srv.URL)

	// The indexer's template: log is text, the rest keyword.
	tmpl, err := os.ReadFile("../../indexer/testdata/template.json")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/_index_template/sluice", bytes.NewReader(tmpl))
	req.Header.Set("Content-Type", "application/json")
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 200 {
		t.Fatalf("template: %v %v", err, res)
	}
	now := time.Now().UTC()
	var bulk strings.Builder
	for i, d := range []struct {
		tenant, pod, log string
		age              time.Duration
	}{
		{"shop", "cart-1", "checkout ok", 3 * time.Minute},
		{"shop", "cart-10", "checkout ok", 2 * time.Minute},
		{"shop", "cart-1", "payment failed", time.Minute},
		{"shop-web", "cart-1", "checkout ok", time.Minute},
		{"shop", "cart-1", "old line", 3 * time.Hour},
	} {
		at := now.Add(-d.age)
		index := indexer.IndexName("sluice", d.tenant, "", at, time.UTC)
		fmt.Fprintf(&bulk, `{"create":{"_index":%q,"_id":"d%d"}}`+"\n", index, i)
		fmt.Fprintf(&bulk, `{"@timestamp":%q,"tenant":%q,"log":%q,"kubernetes":{"namespace_name":"shop","pod_name":%q,"container_name":"app"}}`+"\n",
			at.Format(time.RFC3339Nano), d.tenant, d.log, d.pod)
	}
	res, err := http.Post(srv.URL+"/_bulk?refresh=true", "application/x-ndjson", strings.NewReader(bulk.String()))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("bulk: %v %v", err, res.Status)
	}
	res.Body.Close()

	search := func(args ...string) (string, string) {
		t.Helper()
		var out, errOut bytes.Buffer
		if err := run(context.Background(), append([]string{"search", "--tenant", "shop"}, args...), &out, &errOut); err != nil {
			t.Fatalf("search %v: %v\n%s", args, err, errOut.String())
		}
		return out.String(), errOut.String()
	}
	out, summary := search("kubernetes.pod_name:cart-1")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "shop/cart-1/app  checkout ok") || !strings.Contains(lines[1], "payment failed") {
		t.Fatalf("search:\n%s", out)
	}
	if !strings.Contains(summary, "2 of 2 documents") {
		t.Errorf("summary %q", summary)
	}
	if out, _ := search("--since", "24h", "--json", "old"); strings.Count(out, "\n") != 1 || !strings.Contains(out, `"old line"`) {
		t.Errorf("search --since 24h --json:\n%s", out)
	}
	if out, _ := search("checkout"); strings.Count(out, "\n") != 2 {
		t.Errorf("search checkout (shop-web's must not show):\n%s", out)
	}
}
