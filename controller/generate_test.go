package controller

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the generated deepcopy code and the chart's CRDs")

// crdDir is where the Helm chart keeps the CRDs (Helm installs a chart's
// crds/ before its templates).
const crdDir = "../deploy/helm/sluice/crds"

// TestGeneratedUpToDate runs controller-gen (pinned in go.mod as a tool)
// over the API types and fails when the committed deepcopy code or the
// chart's CRDs differ from what it writes: the types are the source, and
// the two cannot drift. go test ./controller -run TestGeneratedUpToDate
// -update rewrites them.
func TestGeneratedUpToDate(t *testing.T) {
	out := t.TempDir()
	cmd := exec.Command("go", "tool", "controller-gen", "object:headerFile=hack/boilerplate.go.txt", "crd",
		"paths=./v1alpha1/...", "output:object:dir="+filepath.Join(out, "obj"), "output:crd:dir="+filepath.Join(out, "crd"))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("controller-gen: %v\n%s", err, b)
	}
	compare := func(generated, committed string) {
		t.Helper()
		want, err := os.ReadFile(generated)
		if err != nil {
			t.Fatal(err)
		}
		if *update {
			if err := os.WriteFile(committed, want, 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		got, err := os.ReadFile(committed)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is not what controller-gen writes from the types (%v): run go test ./controller -run TestGeneratedUpToDate -update", committed, err)
		}
	}
	compare(filepath.Join(out, "obj", "zz_generated.deepcopy.go"), filepath.Join("v1alpha1", "zz_generated.deepcopy.go"))
	crds, _ := filepath.Glob(filepath.Join(out, "crd", "*.yaml"))
	if len(crds) != 2 {
		t.Fatalf("controller-gen wrote %d CRDs, want 2", len(crds))
	}
	committed, _ := filepath.Glob(filepath.Join(crdDir, "*.yaml"))
	if len(committed) != len(crds) && !*update {
		t.Errorf("%s holds %d CRDs, controller-gen writes %d", crdDir, len(committed), len(crds))
	}
	for _, c := range crds {
		compare(c, filepath.Join(crdDir, filepath.Base(c)))
	}
}
