package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sluicelogs/sluice/devstack"
	"github.com/sluicelogs/sluice/indexer"
	"github.com/sluicelogs/sluice/internal/esfake"
)

// searchStore starts the embedded store with the indexer's templates and
// points sluice search at it.
func searchStore(t *testing.T) string {
	t.Helper()
	st, err := devstack.StartStore("127.0.0.1:0", t.TempDir(), nil, devstack.Faults{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	t.Setenv("SLUICE_ELASTICSEARCH_URLS", st.URL())

	// The indexer's templates: log is text, the rest keyword.
	for name, file := range map[string]string{"sluice": "template.json", "sluice-shared": "template-shared.json"} {
		tmpl, err := os.ReadFile("../../indexer/testdata/" + file)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPut, st.URL()+"/_index_template/"+name, bytes.NewReader(tmpl))
		req.Header.Set("Content-Type", "application/json")
		if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 200 {
			t.Fatalf("template: %v %v", err, res)
		}
	}
	return st.URL()
}

// TestSearch runs sluice search against the embedded store holding two
// tenants whose index names overlap (shop and shop-web), with documents in
// their own indices and in the shared ones (a layout change from dedicated
// to shared): a tenant's are found in both, merged newest first.
func TestSearch(t *testing.T) {
	url := searchStore(t)
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
	res, err := http.Post(url+"/_bulk?refresh=true", "application/x-ndjson", strings.NewReader(bulk.String()))
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
	if summary != "3 of 3 documents matching \"kubernetes.pod_name:cart-1\" in the last 1h (newest last)\n" {
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

// TestSearchWindow: --since takes days, weeks and all; an empty window
// says how many older documents match; flags may follow the query and --
// lets a query start with a dash; a tenant without documents is an error.
func TestSearchWindow(t *testing.T) {
	url := searchStore(t)
	now := time.Now().UTC()
	var bulk strings.Builder
	for i, d := range []struct {
		tenant, level, log string
		age                time.Duration
	}{
		{"shop", "error", "disk full", 3 * time.Hour},
		{"shop", "error", "timeout", 3 * 24 * time.Hour},
		{"shop", "debug", "cache warm", 10 * 24 * time.Hour},
		{"shop", "info", "started", 20 * 24 * time.Hour},
	} {
		at := now.Add(-d.age)
		fmt.Fprintf(&bulk, `{"create":{"_index":%q,"_id":"w%d"}}`+"\n", indexer.IndexName("sluice", d.tenant, "", at, time.UTC), i)
		fmt.Fprintf(&bulk, `{"@timestamp":%q,"tenant":%q,"level":%q,"log":%q}`+"\n", at.Format(time.RFC3339Nano), d.tenant, d.level, d.log)
	}
	res, err := http.Post(url+"/_bulk?refresh=true", "application/x-ndjson", strings.NewReader(bulk.String()))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("bulk: %v %v", err, res.Status)
	}
	res.Body.Close()

	for _, tt := range []struct {
		args           []string
		stdout, stderr string
	}{
		// The default window holds none of them: the summary says how many
		// are older.
		{[]string{"level:error"}, "", "0 documents matching \"level:error\" in the last 1h; 2 older documents match: search further back with --since 7d, or --since all\n"},
		{[]string{"level:error", "--since", "1d"}, "disk full\n", "1 of 1 documents matching \"level:error\" in the last 1d (newest last)\n"},
		{[]string{"level:error", "--since", "1w"}, "timeout\ndisk full\n", "2 of 2 documents matching \"level:error\" in the last 1w (newest last)\n"},
		{[]string{"--since", "2w", "level:*"}, "cache warm\ntimeout\ndisk full\n", "3 of 3 documents matching \"level:*\" in the last 2w (newest last)\n"},
		// Newest last; --size keeps the newest.
		{[]string{"*", "--since", "all"}, "started\ncache warm\ntimeout\ndisk full\n", "4 of 4 documents matching \"*\" at any time (newest last)\n"},
		{[]string{"--since", "0", "--size", "2"}, "timeout\ndisk full\n", "2 of 4 documents matching \"*\" at any time (newest last)\n"},
		{[]string{"level:error", "--size", "1", "--since", "30d"}, "disk full\n", "1 of 2 documents matching \"level:error\" in the last 30d (newest last)\n"},
		{[]string{"--since", "all", "--", "-level:error", "-level:debug"}, "started\n", "1 of 1 documents matching \"-level:error -level:debug\" at any time (newest last)\n"},
		{[]string{"level:warn", "--since", "all"}, "", "0 documents matching \"level:warn\" at any time (tenant shop has 4 documents in all)\n"},
		{[]string{"level:warn"}, "", "0 documents matching \"level:warn\" in the last 1h (tenant shop has 4 documents in all)\n"},
	} {
		stdout, stderr, code := sluice(t, t.Context(), append([]string{"search", "--tenant", "shop"}, tt.args...)...)
		var logs []string
		for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
			if l != "" {
				logs = append(logs, l[strings.LastIndex(l, "  ")+2:])
			}
		}
		got := strings.Join(logs, "\n")
		if got != "" {
			got += "\n"
		}
		if code != 0 || got != tt.stdout || stderr != tt.stderr {
			t.Errorf("search %q: exit %d, stdout:\n%s\nstderr %q\nwant:\n%s%q", tt.args, code, stdout, stderr, tt.stdout, tt.stderr)
		}
	}
	_, stderr, code := sluice(t, t.Context(), "search", "--tenant", "shpo", "level:error")
	if code != 1 || stderr != "sluice: search: tenant shpo has no documents (in sluice-shpo-* nor in sluice-_shared-*); did you mean --tenant shop?; "+
		"check the tenant's name (sluice tenant list), and that an indexer consumes its parsed topic\n" {
		t.Errorf("unknown tenant: exit %d, stderr %q", code, stderr)
	}
}

// TestSearchHelpAndREADMEAgree: search prints the newest documents oldest
// first, and its help and the README both say newest last.
func TestSearchHelpAndREADMEAgree(t *testing.T) {
	help, _, _ := sluice(t, t.Context(), "search", "--help")
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	// The README's lines about sluice search.
	var about []string
	for _, l := range strings.Split(string(readme), "\n") {
		if strings.Contains(l, "sluice search") {
			about = append(about, l)
		}
	}
	for what, text := range map[string]string{"help": help, "README": strings.Join(about, "\n")} {
		if strings.Contains(text, "newest first") || !strings.Contains(text, "newest last") {
			t.Errorf("the %s does not say newest last (and only that):\n%s", what, text)
		}
	}
}

// TestSearchServerErrors: an unreachable Elasticsearch, one that refuses
// the credentials and one that does not answer are each reported as such,
// exit 1.
func TestSearchServerErrors(t *testing.T) {
	closed := "http://" + closedAddr(t)
	silent := "http://" + silentAddr(t)
	es := esfake.Start(t, esfake.RequireAuth("Basic c2x1aWNlOnJpZ2h0"))
	for _, tt := range []struct {
		url, user, want string
	}{
		{closed, "", "sluice: search: cannot reach Elasticsearch at " + closed + ": "},
		{silent, "", "sluice: search: Elasticsearch at " + silent + " did not answer within 200ms (--timeout)\n"},
		{es.URL(), "sluice", "sluice: search: Elasticsearch at " + es.URL() + " refused the credentials (401 Unauthorized): check SLUICE_ELASTICSEARCH_USERNAME and SLUICE_ELASTICSEARCH_PASSWORD, or SLUICE_ELASTICSEARCH_API_KEY\n"},
	} {
		t.Setenv("SLUICE_ELASTICSEARCH_URLS", tt.url)
		t.Setenv("SLUICE_ELASTICSEARCH_USERNAME", tt.user)
		t.Setenv("SLUICE_ELASTICSEARCH_PASSWORD", "wrong")
		if tt.user == "" {
			os.Unsetenv("SLUICE_ELASTICSEARCH_USERNAME")
			os.Unsetenv("SLUICE_ELASTICSEARCH_PASSWORD")
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		stdout, stderr, code := sluice(t, ctx, "search", "--tenant", "shop", "--timeout", "200ms", "level:error")
		cancel()
		if code != 1 || stdout != "" || !strings.HasPrefix(stderr, tt.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%s: exit %d, stderr %q, want %q", tt.url, code, stderr, tt.want)
		}
	}
}
