package indexer

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicelogs/sluice/internal/eslite"
	"github.com/sluicelogs/sluice/schemas"
)

var update = flag.Bool("update-indexer", false, "rewrite indexer/testdata golden files")

var t0 = time.Date(2026, 11, 21, 10, 30, 0, 123456789, time.UTC)

// goldenRecords are the records of the document golden tests, by name.
func goldenRecords() map[string]schemas.Record {
	return map[string]schemas.Record{
		// A shipper record a pipeline parsed: the fluent-bit kubernetes
		// filter's shape, labels de-dotted, attributes at the top level.
		"kubernetes": {
			ID: "5f1d7c0e9a8b4c3d", Timestamp: t0, ObservedTimestamp: t0.Add(40 * time.Millisecond),
			Tenant: "ignored-the-topic-decides", Stream: "stdout",
			Log: `{"level":"info","msg":"GET /cart 200","http":{"status":200,"method":"GET"},"duration":0.0123}`,
			Kubernetes: schemas.Kubernetes{
				NamespaceName: "shop", PodName: "cart-7d9f8b-x2x9z", PodID: "8a4c0f5e-1111-2222-3333-444455556666",
				ContainerName: "cart", DockerID: "3b2a1c0d9e8f", Host: "node-1",
				Labels:      map[string]string{"app": "cart", "app.kubernetes.io/name": "cart", "pod-template-hash": "7d9f8b"},
				Annotations: map[string]string{"prometheus.io/scrape": "true"},
			},
			Attributes: map[string]any{"level": "info", "msg": "GET /cart 200", "http.status": int64(200),
				"http.method": "GET", "duration": 0.0123, "cached": false, "user": nil},
			Source: schemas.Source{Path: "/var/log/containers/cart-7d9f8b-x2x9z_shop_cart-3b2a1c0d9e8f.log", Offset: 4096, Format: "cri", Shipper: "v0.3.0"},
		},
		// A shipper record with the pod metadata of record schema v3:
		// namespace labels de-dotted like labels (two that de-dot to one
		// name: the dotted one is rescued), the image and the owning
		// workload.
		"pod-metadata": {
			ID: "p1", Timestamp: t0, Stream: "stdout", Log: "GET /cart 200",
			Kubernetes: schemas.Kubernetes{
				NamespaceName: "shop", PodName: "cart-7d9f8b-x2x9z", ContainerName: "cart",
				Labels: map[string]string{"app.kubernetes.io/name": "cart"},
				NamespaceLabels: map[string]string{"team": "shop", "kubernetes.io/metadata.name": "shop",
					"kubernetes_io/metadata_name": "plain"},
				ContainerImage: "registry.example.com/shop/cart:1.4.2",
				Workload:       schemas.Workload{Kind: "Deployment", Name: "cart"},
			},
		},
		// A line the shipper sent before it had the pod's metadata: what
		// the log file's path says, and sluice.metadata partial.
		"path-only": {
			ID: "p2", Timestamp: t0, Log: "early line", Metadata: schemas.MetadataPartial,
			Kubernetes: schemas.Kubernetes{NamespaceName: "shop", PodName: "cart-7d9f8b-x2x9z", ContainerName: "cart",
				DockerID: "3b2a1c0d9e8f"},
		},
		// A workload whose name is all there is (a kind only is written
		// the same way, without name).
		"workload-name-only": {
			ID: "p3", Timestamp: t0, Log: "x", Kubernetes: schemas.Kubernetes{Workload: schemas.Workload{Name: "cart"}},
		},
		// A line an external producer sent: no Kubernetes metadata, no
		// source.
		"external": {ID: "ext-1", Timestamp: t0, Log: "plain text line"},
		// Attributes named like Sluice's own fields or Elasticsearch
		// metadata go under attributes.
		"reserved": {
			ID: "r1", Timestamp: t0, Log: "x",
			Attributes: map[string]any{"log": "shadow", "kubernetes.pod_name": "fake", "_id": "nope",
				"attributes": int64(1), "tenant": "other", "sluice.rescued": "no", "@timestamp": "2020-01-01"},
		},
		// What Elasticsearch could not take goes to sluice.rescued: names
		// with empty elements, a value where other attributes nest, two
		// labels that de-dot to one name, an empty label key.
		"rescued": {
			ID: "c1", Timestamp: t0, Log: "x",
			Kubernetes: schemas.Kubernetes{Labels: map[string]string{"app.kubernetes": "dotted", "app_kubernetes": "plain", "": "empty"}},
			Attributes: map[string]any{"a": int64(1), "a.b": int64(2), "a-c": "sorts between", "": "empty",
				".lead": "x", "trail.": "x", "dou..ble": "x", "nan": math.NaN(), "inf": math.Inf(-1)},
		},
		// Truncated, repaired and partial lines keep their flags.
		"flags": {
			ID: "f1", Timestamp: t0, Stream: "stderr", Log: "head of a long line \ufffd", Truncated: true, OriginalSize: 300000,
			InvalidUTF8: true, Partial: true, Attributes: map[string]any{"quote\"key": "tab\there"},
		},
		// Array attributes: one type of item is written as it is, integers
		// with fractions as fractions, any other mix as strings, so each
		// array indexes under one mapping.
		"arrays": {
			ID: "a1", Timestamp: t0, Log: "x",
			Attributes: map[string]any{"tags": []any{"eu", "blue"}, "codes": []any{int64(1), 2.5, nil},
				"ports": []any{int64(80), int64(443)}, "mixed": []any{int64(1), "a", true, nil, 0.5},
				"names": []string{"a", "b\"c"}, "empty": []any{}},
		},
		// A record written with a schema version newer than the indexer's:
		// the fields it does not know, as JSON text under sluice.unknown.
		"unknown": {
			ID: "u1", Timestamp: t0, Log: "from a newer router",
			Unknown: map[string]string{"severity": `"warn"`, "sequence": "42", "kubernetes.node_pool": `"pool-a"`,
				"trace": `{"id":"t1","sampled":true}`, "tags": `["a","b"]`},
		},
	}
}

func TestDocumentGolden(t *testing.T) {
	for name, rec := range goldenRecords() {
		t.Run(name, func(t *testing.T) {
			var w docWriter
			doc, _ := w.appendDoc(nil, &rec, "shop", nil)
			if !json.Valid(doc) {
				t.Fatalf("invalid JSON: %s", doc)
			}
			checkNoDuplicateKeys(t, doc)
			golden(t, filepath.Join("testdata", "documents", name+".json"), append(doc, '\n'))
			// The same record always gives the same bytes (map order).
			for range 5 {
				again, _ := w.appendDoc(nil, &rec, "shop", nil)
				if !bytes.Equal(again, doc) {
					t.Fatalf("not deterministic:\n%s\n%s", doc, again)
				}
			}
		})
	}
}

// TestDocumentStats checks what appendDoc reports it moved.
func TestDocumentStats(t *testing.T) {
	rec := goldenRecords()["rescued"]
	var w docWriter
	doc, st := w.appendDoc(nil, &rec, "shop", nil)
	// names: "", ".lead", "trail.", "dou..ble", the empty label key;
	// collisions: a (beside a.b), app.kubernetes (beside app_kubernetes).
	if st != (docStats{names: 5, collisions: 2}) {
		t.Fatalf("stats %+v", st)
	}
	var d struct {
		Sluice struct {
			Rescued string `json:"rescued"`
		} `json:"sluice"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	var moved map[string]any
	if err := json.Unmarshal([]byte(d.Sluice.Rescued), &moved); err != nil {
		t.Fatalf("rescued is not a JSON object: %q", d.Sluice.Rescued)
	}
	for _, k := range []string{"", ".lead", "trail.", "dou..ble", "a", "kubernetes.labels.app.kubernetes", "kubernetes.labels."} {
		if _, ok := moved[k]; !ok {
			t.Errorf("%q not in sluice.rescued %v", k, moved)
		}
	}
}

func TestDocumentMoved(t *testing.T) {
	rec := goldenRecords()["kubernetes"]
	for _, tc := range []struct {
		moved []string
		want  []string // attributes expected in sluice.rescued
	}{
		{[]string{"http.status"}, []string{"http.status"}},
		{[]string{"http"}, []string{"http.method", "http.status"}}, // the object path above them
		{[]string{"duration.ms"}, []string{"duration"}},            // a path under a value
		{[]string{"nope", "level"}, []string{"level"}},             // names that match nothing are ignored
		{[]string{moveAll}, []string{"cached", "duration", "http.method", "http.status", "level", "msg", "user",
			"kubernetes.labels.app", "kubernetes.labels.app.kubernetes.io/name", "kubernetes.labels.pod-template-hash",
			"kubernetes.annotations.prometheus.io/scrape"}},
		// A label named by its de-dotted path.
		{[]string{"kubernetes.labels.app_kubernetes_io/name"}, []string{"kubernetes.labels.app.kubernetes.io/name"}},
	} {
		var w docWriter
		doc, st := w.appendDoc(nil, &rec, "shop", tc.moved)
		if st.moved != len(tc.want) {
			t.Errorf("%v: moved %d, want %d", tc.moved, st.moved, len(tc.want))
		}
		var d map[string]any
		if err := json.Unmarshal(doc, &d); err != nil {
			t.Fatal(err)
		}
		var rescued map[string]any
		if err := json.Unmarshal([]byte(d["sluice"].(map[string]any)["rescued"].(string)), &rescued); err != nil {
			t.Fatal(err)
		}
		for _, k := range tc.want {
			if _, ok := rescued[k]; !ok {
				t.Errorf("%v: %s not rescued (%v)", tc.moved, k, rescued)
			}
			if _, ok := d[k]; ok {
				t.Errorf("%v: %s still at the top level", tc.moved, k)
			}
		}
	}
}

func TestDocID(t *testing.T) {
	if got := docID("abc", "t", 0, 1); got != "abc" {
		t.Errorf("id kept: %q", got)
	}
	a, b := docID("", "logs.parsed.shop", 1, 42), docID("", "logs.parsed.shop", 1, 43)
	if a == b || len(a) != 32 || a != docID("", "logs.parsed.shop", 1, 42) {
		t.Errorf("derived ids %q %q", a, b)
	}
	long := strings.Repeat("x", maxIDBytes+1)
	if got := docID(long, "t", 0, 0); len(got) != 64 || got != docID(long, "t", 9, 9) {
		t.Errorf("long id %q", got)
	}
}

func TestAppendAction(t *testing.T) {
	got := appendAction(nil, []byte("sluice-shop-2026.11.21"), `id"1`)
	want := `{"create":{"_index":"sluice-shop-2026.11.21","_id":"id\"1"}}` + "\n"
	if string(got) != want {
		t.Fatalf("got %s", got)
	}
	if actionIndex(got) != "sluice-shop-2026.11.21" {
		t.Fatalf("actionIndex %q", actionIndex(got))
	}
}

// checkNoDuplicateKeys fails when an object in doc repeats a key
// (Elasticsearch rejects such documents).
func checkNoDuplicateKeys(t *testing.T, doc []byte) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(doc))
	var walk func() error
	walk = func() error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return err
				}
				if seen[k.(string)] {
					t.Errorf("duplicate key %q in %s", k, doc)
				}
				seen[k.(string)] = true
				if err := walk(); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		case json.Delim('['):
			for dec.More() {
				if err := walk(); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		}
		return nil
	}
	if err := walk(); err != nil {
		t.Fatal(err)
	}
}

// golden compares got with the file at path, or rewrites it with
// -update-indexer.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./indexer -update-indexer to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n got: %s\nwant: %s", path, got, want)
	}
}

// TestAppendTime pins the fast time writer to time.AppendFormat.
func TestAppendTime(t *testing.T) {
	times := []time.Time{
		{}, time.Unix(0, 0), t0, time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 3, 29, 1, 30, 0, 5, mustLoc(t, "Europe/Paris")),
	}
	for i := range 1000 {
		times = append(times, time.Unix(int64(i)*7_919_993_111, int64(i)*999_983).In(time.FixedZone("x", (i%25-12)*3600)))
	}
	for _, at := range times {
		want := at.UTC().AppendFormat(nil, "2006-01-02T15:04:05.000000000Z")
		if got := appendTime(nil, at); string(got) != string(want) {
			t.Fatalf("appendTime(%v) = %s, want %s", at, got, want)
		}
		n := namer{prefix: "p", loc: time.UTC}
		if got, want := n.appendIndex(nil, "t", "", at), "p-t-"+at.UTC().Format(dayLayout); string(got) != want {
			t.Fatalf("appendIndex(%v) = %s, want %s", at, got, want)
		}
	}
}

// TestArrayAttributesMapping: the array attributes of the "arrays" golden
// record are all accepted by the store under the installed template, each
// array under one mapping: strings and mixes as keyword, integers as long,
// integers with fractions as double.
func TestArrayAttributesMapping(t *testing.T) {
	es := eslite.Start(t)
	client, err := testES(t, es.URL()).NewClient()
	if err != nil {
		t.Fatal(err)
	}
	body := templateBody(templateSettings{prefix: "sluice", shards: 1, replicas: 0, totalFields: 1000, ignoreAbove: 256})
	if _, err := installTemplate(context.Background(), client, "sluice", body); err != nil {
		t.Fatal(err)
	}
	rec := goldenRecords()["arrays"]
	var w docWriter
	doc, _ := w.appendDoc(nil, &rec, "shop", nil)
	esBulk(t, es.URL(), `{"create":{"_index":"sluice-shop-2026.11.21","_id":"1"}}`+"\n"+string(doc)+"\n")
	if n := len(es.Docs("sluice-shop-2026.11.21")); n != 1 {
		t.Fatalf("%d documents stored, want 1", n)
	}
	m := es.Mapping("sluice-shop-2026.11.21")
	for field, typ := range map[string]string{"tags": "keyword", "names": "keyword", "mixed": "keyword", "ports": "long", "codes": "double"} {
		if m[field] != typ {
			t.Errorf("%s mapped as %q, want %q (%v)", field, m[field], typ, m)
		}
	}
}
