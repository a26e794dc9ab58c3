package router

import (
	"os"
	"strings"
	"testing"
)

// TestDocsPipelines: every pipeline document in docs/pipelines.md loads,
// and its tests pass, so that the reference cannot drift from what the
// router does.
func TestDocsPipelines(t *testing.T) {
	src, err := os.ReadFile("../docs/pipelines.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i, block := range strings.Split(string(src), "```yaml\n")[1:] {
		doc, _, ok := strings.Cut(block, "```")
		if !ok {
			t.Fatalf("block %d is not closed", i+1)
		}
		if !strings.HasPrefix(doc, "tenant:") {
			continue
		}
		n++
		p, err := Load([]byte(doc))
		if err != nil {
			first, _, _ := strings.Cut(doc, "\n")
			t.Errorf("example %d (%s): %v", i+1, first, err)
			continue
		}
		if len(p.Spec().Tests) == 0 {
			t.Errorf("example %d (%s) has no tests", i+1, p.Tenant)
		}
	}
	if n < 10 {
		t.Errorf("%d examples found; the reference has more", n)
	}
}
