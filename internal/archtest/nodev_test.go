package archtest

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// devOnly is what the production build (-tags nodev: the image, make
// build-prod) must not link: development and test code, and the libraries
// only they use. An entry matches an import path and every path under it.
// The demo workload (internal/demo, internal/nodelog) is not here: sluice
// demo is a production command, run from the image by docker compose.
var devOnly = []string{
	module + "/devstack",         // sluice dev's wiring
	module + "/loadtest",         // sluice loadtest
	module + "/internal/eslite",  // the embedded Elasticsearch-compatible store
	module + "/internal/k8sfake", // the dev stack's stand-in for the Kubernetes API
	module + "/internal/apptest",
	module + "/internal/kafkatest",
	module + "/internal/testwait",
	module + "/internal/shipbench",
	"github.com/twmb/franz-go/pkg/kfake", // the embedded Kafka
	"gonum.org/v1/plot",                  // the load test's charts
	// gRPC's library: the tests' OTLP/gRPC client. The gateway serves
	// OTLP/gRPC without it; linked, it costs every process ~4 MB at start.
	"google.golang.org/grpc",
	"go.opentelemetry.io/proto/otlp/collector", // its gRPC service links the library
	"testing",
}

// TestProductionBuild lists what `go build -tags nodev ./cmd/sluice` links
// and fails for every development package in it, with the chain of
// imports that brings it in. The build without the tag links them, which
// shows the list means something.
func TestProductionBuild(t *testing.T) {
	root := moduleRoot(t)
	prod := listDeps(t, root, "-tags", "nodev")
	linked := map[string][]string{} // entry of devOnly -> the packages it matches
	for p := range prod {
		if e := devOnlyEntry(p); e != "" {
			linked[e] = append(linked[e], p)
		}
	}
	for _, e := range devOnly {
		if ps := linked[e]; len(ps) > 0 {
			slices.Sort(ps)
			t.Errorf("the production build links %s (%d packages): %s", e, len(ps), strings.Join(importChain(prod, module+"/cmd/sluice", ps[0]), " -> "))
		}
	}
	for _, p := range []string{module + "/shipper", module + "/router", module + "/indexer", module + "/internal/demo"} {
		if _, ok := prod[p]; !ok {
			t.Errorf("the production build does not link %s: is the list of its packages right?", p)
		}
	}
	dev := listDeps(t, root)
	for _, p := range []string{module + "/devstack", module + "/loadtest", "github.com/twmb/franz-go/pkg/kfake", "gonum.org/v1/plot/vg"} {
		if _, ok := dev[p]; !ok {
			t.Errorf("the development build does not link %s: the check of the production build proves nothing about it", p)
		}
	}
}

// devOnlyEntry returns the entry of devOnly that path matches, or "".
func devOnlyEntry(path string) string {
	for _, e := range devOnly {
		if path == e || strings.HasPrefix(path, e+"/") {
			return e
		}
	}
	return ""
}

// TestDevOnlyEntry checks the matching.
func TestDevOnlyEntry(t *testing.T) {
	for path, want := range map[string]string{
		module + "/devstack":                 module + "/devstack",
		module + "/devstackx":                "",
		module + "/internal/eslite/x":        module + "/internal/eslite",
		"github.com/twmb/franz-go/pkg/kfake": "github.com/twmb/franz-go/pkg/kfake",
		"github.com/twmb/franz-go/pkg/kgo":   "",
		"testing":                            "testing",
		"testing/fstest":                     "testing",
		module + "/internal/demo":            "",
		"gonum.org/v1/plot/vg":               "gonum.org/v1/plot",
	} {
		if got := devOnlyEntry(path); got != want {
			t.Errorf("%s matches %q, want %q", path, got, want)
		}
	}
}

// listDeps returns every package ./cmd/sluice links, built with flags, and
// the packages each imports.
func listDeps(t *testing.T, root string, flags ...string) map[string][]string {
	t.Helper()
	args := append(append([]string{"list", "-deps"}, flags...), "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./cmd/sluice")
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	deps := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		deps[f[0]] = f[1:]
	}
	return deps
}

// importChain returns the shortest chain of imports from one package to
// another in deps.
func importChain(deps map[string][]string, from, to string) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p == to {
			var chain []string
			for ; p != ""; p = prev[p] {
				chain = append(chain, p)
			}
			slices.Reverse(chain)
			return chain
		}
		for _, q := range deps[p] {
			if _, seen := prev[q]; !seen {
				prev[q] = p
				queue = append(queue, q)
			}
		}
	}
	return []string{from, "...", to}
}
