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
// tenants whose index names overlap (shop and shop-web), with documents in
// their own indices and in the shared ones (a layout change from dedicated
// to shared): a tenant's are found in both, merged newest first.
func TestSearch(t *testing.T) {
	st, err := devstack.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(st.Handler())
	t.Cleanup(func() { srv.Close(); _ = st.Close() })
	t.Setenv("SLUICE_ELASTICSEARCH_URLS", srv.URL)

	// The indexer's templates: log is text, the rest keyword.
	for name, file := range map[string]string{"sluice": "template.json", "sluice-shared": "template-shared.json"} {
		tmpl, err := os.ReadFile("../../indexer/testdata/" + file)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPut, srv.URL+"/_index_template/"+name, bytes.NewReader(tmpl))
		req.Header.Set("Content-Type", "application/json")
		if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 200 {
			t.Fatalf("template: %v %v", err, res)
		}
	}
	now := time.Now().UTC()
	var bulk strings.Builder
	for i, d := range []struct {
		tenant, pod, log string
		age              time.Duration
		shared           bool
	}{
		{"shop", "cart-1", "checkout ok", 5 * time.Minute, false},
		{"shop", "cart-10", "checkout ok", 4 * time.Minute, false},
		{"shop", "cart-1", "payment failed", 3 * time.Minute, false},
		{"shop-web", "cart-1", "checkout ok", time.Minute, false},
		{"shop", "cart-1", "old line", 3 * time.Hour, false},
		// Since shop moved to the shared layout:
		{"shop", "cart-1", "checkout ok shared", 2 * time.Minute, true},
		{"shop", "cart-10", "checkout ok shared", time.Minute, true},
		{"shop-web", "cart-1", "checkout ok", time.Minute, true},
		{"other", "cart-1", "checkout ok", 30 * time.Second, true},
	} {
		at := now.Add(-d.age)
		index, routing := indexer.IndexName("sluice", d.tenant, "", at, time.UTC), ""
		if d.shared {
			index, routing = indexer.SharedIndexName("sluice", "", at, time.UTC), fmt.Sprintf(`,"routing":%q`, d.tenant)
		}
		fmt.Fprintf(&bulk, `{"create":{"_index":%q%s,"_id":"d%d"}}`+"\n", index, routing, i)
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
	if len(lines) != 3 || !strings.HasSuffix(lines[0], "shop/cart-1/app  checkout ok") || !strings.Contains(lines[1], "payment failed") ||
		!strings.HasSuffix(lines[2], "checkout ok shared") {
		t.Fatalf("search:\n%s", out)
	}
	if !strings.Contains(summary, "3 of 3 documents") {
		t.Errorf("summary %q", summary)
	}
	if out, _ := search("--since", "24h", "--json", "old"); strings.Count(out, "\n") != 1 || !strings.Contains(out, `"old line"`) {
		t.Errorf("search --since 24h --json:\n%s", out)
	}
	// Newest first across both layouts, oldest at the top; shop-web's and
	// other's must not show.
	out, summary = search("checkout")
	lines = strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasSuffix(lines[1], "shop/cart-10/app  checkout ok") || !strings.HasSuffix(lines[3], "shop/cart-10/app  checkout ok shared") {
		t.Errorf("search checkout:\n%s", out)
	}
	// --size keeps the newest of both.
	out, summary = search("--size", "2", "checkout")
	lines = strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasSuffix(lines[0], "checkout ok shared") || !strings.HasSuffix(lines[1], "checkout ok shared") || !strings.Contains(summary, "2 of 4 documents") {
		t.Errorf("search --size 2 checkout:\n%s%s", out, summary)
	}
}
