package router

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDocsPipelines: every pipeline document in docs/pipelines.md loads,
// and its tests pass, so that the reference cannot drift from what the
// router does. The pipelines the README and the other guides show must load
// too (their tests, where they have some, pass). None but the upgrade
// notes' uses a deprecated key.
func TestDocsPipelines(t *testing.T) {
	if n := docPipelines(t, "../docs/pipelines.md", true); n < 10 {
		t.Errorf("%d examples found; the reference has more", n)
	}
	others, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, path := range append(others, "../README.md") {
		if filepath.Base(path) != "pipelines.md" {
			n += docPipelines(t, path, false)
		}
	}
	if n == 0 {
		t.Error("no pipeline found in the README and the guides other than docs/pipelines.md")
	}
}

// docPipelines loads every pipeline document (a yaml block starting with
// tenant:) of the markdown file at path, and returns how many there are.
// withTests: each must have tests.
func docPipelines(t *testing.T, path string, withTests bool) int {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i, block := range strings.Split(string(src), "```yaml\n")[1:] {
		doc, _, ok := strings.Cut(block, "```")
		if !ok {
			t.Fatalf("%s: block %d is not closed", path, i+1)
		}
		if !strings.HasPrefix(doc, "tenant:") {
			continue
		}
		n++
		p, err := Load([]byte(doc))
		if err != nil {
			first, _, _ := strings.Cut(doc, "\n")
			t.Errorf("%s: example %d (%s): %v", path, i+1, first, err)
			continue
		}
		if withTests && len(p.Spec().Tests) == 0 {
			t.Errorf("%s: example %d (%s) has no tests", path, i+1, p.Tenant)
		}
		// The upgrade notes show the deprecated keys on purpose; nowhere
		// else teaches them.
		if w := p.Warnings(); len(w) > 0 && filepath.Base(path) != "migration.md" {
			t.Errorf("%s: example %d (%s): %v", path, i+1, p.Tenant, w)
		}
	}
	return n
}
