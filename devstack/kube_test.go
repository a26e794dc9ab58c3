package devstack

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/sluicelogs/sluice/internal/demo"
	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/internal/kafkatest"
	"github.com/sluicelogs/sluice/internal/nodelog"
	"github.com/sluicelogs/sluice/internal/testwait"
)

// TestDevKubeServesFile: the manifests of a pods file are served to
// client-go as an API server would, with the dev defaults filled in (node,
// uid of the dev tree's log paths, namespace); an edit adds, changes and
// deletes; a namespace of the node tree is served without being declared;
// a tenant label makes the tenant's topics; a broken edit leaves what was
// served as it was.
func TestDevKubeServesFile(t *testing.T) {
	cl := kafkatest.Client(t, kafkatest.Cluster(t))
	ctx := t.Context()
	dir := t.TempDir()
	path := filepath.Join(dir, podsFileName)
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(demo.PodsYAML)
	tree := &nodelog.Node{Root: filepath.Join(dir, "node")}
	topics := kafka.Topics{Prefix: "logs"}
	tenants := newTenantMaker(kadm.NewClient(cl), topics, slog.New(slog.DiscardHandler))
	k, err := startDevKube(ctx, path, "dev-node", "sluice.io/tenant", tree, tenants, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer k.close()
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: k.url})
	if err != nil {
		t.Fatal(err)
	}
	pods := func() map[string]corev1.Pod {
		t.Helper()
		l, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=dev-node"})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]corev1.Pod{}
		for _, p := range l.Items {
			out[p.Namespace+"/"+p.Name] = p
		}
		return out
	}
	namespaces := func() map[string]corev1.Namespace {
		t.Helper()
		l, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]corev1.Namespace{}
		for _, n := range l.Items {
			out[n.Name] = n
		}
		return out
	}

	got := pods()
	if len(got) != 4 {
		t.Fatalf("%d pods served, want the demo's 4", len(got))
	}
	cart := got["shop/cart-5d8f7b9c4-x2x9z"]
	if string(cart.UID) != nodelog.PodUID("shop", "cart-5d8f7b9c4-x2x9z") || cart.Labels["app"] != "cart" ||
		cart.Spec.Containers[0].Image != "registry.example.com/shop/cart:1.4.2" {
		t.Errorf("cart: uid %s, labels %v, containers %+v", cart.UID, cart.Labels, cart.Spec.Containers)
	}
	// web is not declared, but its pod is.
	if ns := namespaces(); len(ns) != 3 || ns["shop"].Labels["team"] != "storefront" || ns["web"].Name != "web" {
		t.Errorf("namespaces %v", ns)
	}

	// An edit: cart relabelled, checkout gone, a pod in a namespace whose
	// tenant label names payments, with no node, uid or container image.
	edited := strings.Replace(demo.PodsYAML, `version: "1.4.2"`, `version: "1.5.0"`, 1)
	edited = edited[:strings.Index(edited, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: checkout")] +
		edited[strings.Index(edited, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: payments"):] + `---
apiVersion: v1
kind: Namespace
metadata: {name: billing, labels: {sluice.io/tenant: invoices}}
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: invoicer-0, namespace: billing, labels: {app: invoicer}}
  spec: {containers: [{name: app}]}
`
	write(edited)
	// A container of a namespace nobody declared, in the node tree.
	c, err := tree.AddContainer("ops", "probe-1", "probe", nodelog.CRI)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	k.stamp = fileStamp{} // the test does not wait for the clock to move
	if err := k.reload(ctx); err != nil {
		t.Fatal(err)
	}
	got = pods()
	if _, ok := got["shop/checkout-7c6d5f8b9-q8w7e"]; ok || len(got) != 4 {
		t.Errorf("pods after the edit: %d, checkout still served: %v", len(got), ok)
	}
	if v := got["shop/cart-5d8f7b9c4-x2x9z"].Labels["version"]; v != "1.5.0" {
		t.Errorf("cart's version label %q after the edit", v)
	}
	inv := got["billing/invoicer-0"]
	if string(inv.UID) != nodelog.PodUID("billing", "invoicer-0") || inv.Spec.NodeName != "dev-node" {
		t.Errorf("invoicer: uid %s, node %q", inv.UID, inv.Spec.NodeName)
	}
	ns := namespaces()
	if ns["billing"].Labels["sluice.io/tenant"] != "invoices" || ns["ops"].Name != "ops" {
		t.Errorf("namespaces after the edit: %v", ns)
	}
	tps, err := kadm.NewClient(cl).ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !tps.Has(topics.Raw("invoices")) {
		t.Errorf("the tenant a namespace label names has no raw topic; topics %v", tps.Names())
	}

	// A broken edit changes nothing.
	for _, bad := range []string{
		"apiVersion: v1\nkind: Service\nmetadata: {name: x}\n",
		"apiVersion: v1\nkind: Pod\nmetadata: {name: x, lables: {a: b}}\n",
		"apiVersion: v1\nkind: Pod\nmetadata: {namespace: shop}\n",
		"kind: Pod\nmetadata: {name: a}\n---\nkind: Pod\nmetadata: {name: a}\n",
		"{not yaml: [",
	} {
		write(bad)
		k.stamp = fileStamp{}
		if err := k.reload(ctx); err == nil {
			t.Errorf("%q: no error", bad)
		}
		if n := len(pods()); n != 4 {
			t.Errorf("%q: %d pods served after a broken edit, want 4", bad, n)
		}
	}
}

// TestParseManifestsErrors: a manifest the stand-in cannot serve is an
// error that says which document and why.
func TestParseManifestsErrors(t *testing.T) {
	for src, want := range map[string]string{
		"apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\nkind: Deployment\nmetadata: {name: d}\n": "document 2: kind Deployment is not served",
		"metadata: {name: a}\n": "document 1: no kind",
		"kind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c, imag: x}]}\n": `unknown field "imag"`,
		"kind: List\nitems: [{kind: Namespace, metadata: {}}]\n":                     "item 1: Namespace: metadata.name is missing",
	} {
		_, err := parseManifests([]byte(src))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", src, err, want)
		}
	}
	objs, err := parseManifests([]byte("# only a comment\n---\n"))
	if err != nil || len(objs) != 0 {
		t.Errorf("comments only: %v, %v", objs, err)
	}
}

// TestPodMetadata: with the demo, the dev stack serves the demo's pods,
// and its documents carry their labels, image and Deployment, which a
// query string can filter on; an edit of pods.yaml while the stack runs
// reaches the next documents, and a namespace labelled with a tenant sends
// its lines to that tenant's indices and to no other.
func TestPodMetadata(t *testing.T) {
	cfg := Config{Dir: t.TempDir(), KafkaAddr: "127.0.0.1:0", ESAddr: "127.0.0.1:0",
		Telemetry: Telemetry{LogFormat: "text", LogLevel: "warn"}}
	ep, out := startStack(t, cfg, Options{Demo: true, DemoRate: 100})
	ctx := t.Context()
	if ep.PodsFile != filepath.Join(cfg.Dir, podsFileName) || !strings.Contains(out.String(), "Pod metadata") {
		t.Fatalf("pods file %q; banner:\n%s", ep.PodsFile, out.String())
	}
	// search returns the documents of tenant matching a query string, as
	// sluice search finds them (in the tenant's dedicated indices).
	search := func(tenant, query string) []map[string]any {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"size": 10000, "query": map[string]any{"bool": map[string]any{
			"must":   []any{map[string]any{"query_string": map[string]any{"query": query, "default_operator": "AND"}}},
			"filter": []any{map[string]any{"term": map[string]any{"tenant": tenant}}},
		}}})
		url := fmt.Sprintf("%s/sluice-%s-*,sluice-%s.*/_search?ignore_unavailable=true&allow_no_indices=true", ep.ESURL, tenant, tenant)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("search %s: %v", query, err)
		}
		defer res.Body.Close()
		var r struct {
			Hits struct {
				Hits []struct {
					Source map[string]any `json:"_source"`
				} `json:"hits"`
			} `json:"hits"`
		}
		if b, _ := io.ReadAll(res.Body); res.StatusCode != http.StatusOK || json.Unmarshal(b, &r) != nil {
			t.Fatalf("search %s: %s\n%s", query, res.Status, b)
		}
		var docs []map[string]any
		for _, h := range r.Hits.Hits {
			docs = append(docs, h.Source)
		}
		return docs
	}
	kube := func(d map[string]any) map[string]any { k, _ := d["kubernetes"].(map[string]any); return k }

	testwait.For(t, 90*time.Second, "documents of cart's Deployment", func() (bool, string) {
		return len(search("shop", "kubernetes.labels.app:cart AND kubernetes.workload.name:cart")) > 0, ""
	})
	for _, d := range search("shop", "kubernetes.labels.app:cart") {
		k := kube(d)
		labels, _ := k["labels"].(map[string]any)
		wl, _ := k["workload"].(map[string]any)
		if k["pod_name"] != "cart-5d8f7b9c4-x2x9z" || labels["version"] != "1.4.2" || k["container_image"] != "registry.example.com/shop/cart:1.4.2" ||
			wl["kind"] != "Deployment" || k["annotations"] != nil {
			t.Fatalf("a document of cart: %v", k)
		}
	}
	// Labels tell pods apart: no checkout document is cart's.
	if n := len(search("shop", "kubernetes.labels.app:cart AND kubernetes.pod_name:checkout*")); n != 0 {
		t.Errorf("%d checkout documents labelled app=cart", n)
	}

	// Edit while running: cart's version moves on; a billing namespace,
	// labelled for tenant payments, gets a pod.
	edited := strings.Replace(demo.PodsYAML, `version: "1.4.2"`, `version: "1.5.0"`, 1) + `---
apiVersion: v1
kind: Namespace
metadata: {name: billing, labels: {sluice.io/tenant: payments}}
---
apiVersion: v1
kind: Pod
metadata: {name: invoicer-0, namespace: billing, labels: {app: invoicer}}
spec: {containers: [{name: app, image: registry.example.com/billing/invoicer:3.1}]}
`
	if err := os.WriteFile(ep.PodsFile, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 60*time.Second, "documents of cart with the edited label", func() (bool, string) {
		return len(search("shop", "kubernetes.labels.version:1.5.0 AND kubernetes.labels.app:cart")) > 0, ""
	})
	// The metadata is served within a second; give the informer that long
	// before the first line, as a pod starts after it is scheduled.
	time.Sleep(2 * time.Second)
	c, err := (&nodelog.Node{Root: ep.NodeDir}).AddContainer("billing", "invoicer-0", "app", nodelog.CRI)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const invoices = 40
	for i := range invoices {
		// payments' pipeline: LEVEL action detail.
		if err := c.Write(time.Now(), "stdout", fmt.Sprintf("INFO invoice_sent id=inv-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	testwait.For(t, 60*time.Second, "billing's lines in payments' indices", func() (bool, string) {
		n := len(search("payments", "kubernetes.namespace_name:billing"))
		return n == invoices, fmt.Sprintf("%d of %d documents", n, invoices)
	})
	for _, d := range search("payments", "kubernetes.namespace_name:billing") {
		k := kube(d)
		labels, _ := k["labels"].(map[string]any)
		if d["tenant"] != "payments" || d["action"] != "invoice_sent" || labels["app"] != "invoicer" ||
			k["container_image"] != "registry.example.com/billing/invoicer:3.1" {
			t.Fatalf("a billing document: %v", d)
		}
	}
	if n := len(search("billing", "*")); n != 0 {
		t.Errorf("%d documents in the namespace's own tenant; its label names payments", n)
	}
}
