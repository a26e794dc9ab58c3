package archtest

import (
	"bufio"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/sluicelogs/sluice"

// Kinds of package, by where they live in the module.
const (
	stage  = "stage"  // shipper/, router/, indexer/, gateway/: a pipeline stage, deployed on its own
	shared = "shared" // internal/..., schemas/: what the stages share
	tool   = "tool"   // cmd/, loadtest/, devstack/: built on the stages, never under them
	// docs/examples/...: programs a user would write (the README runs
	// them), so they import only public libraries, nothing of Sluice.
	example = "example"
)

// kinds classifies a package by the first element of its path in the
// module. A new top-level directory of Go code must be added here, which
// makes whoever adds it decide what it may import.
var kinds = map[string]string{
	"shipper":  stage,
	"router":   stage,
	"indexer":  stage,
	"gateway":  stage,
	"internal": shared,
	"schemas":  shared,
	"cmd":      tool,
	"loadtest": tool,
	"devstack": tool,
	"docs":     example,
}

// otherModules are the repository's other modules. They build on this one
// (through a replace directive); this one never imports them, so that the
// pipeline's binary links none of their dependencies (Helm, controller-runtime).
var otherModules = []string{"controller", "deploy"}

// violation returns why the package at dir (relative to the module root,
// slash-separated) must not import path, or "" if it may.
func violation(dir, path string) string {
	rel, ok := strings.CutPrefix(path, module+"/")
	if !ok {
		return "" // the standard library or another module's package
	}
	top, _, _ := strings.Cut(rel, "/")
	if slices.Contains(otherModules, top) {
		return fmt.Sprintf("%s/ is a module of its own, built on this one, never under it", top)
	}
	from, _, _ := strings.Cut(dir, "/")
	switch kinds[from] {
	case stage:
		switch {
		case kinds[top] == stage && top != from:
			return "a stage never imports another stage: what both need belongs in internal/ or schemas/"
		case kinds[top] == tool:
			return "a stage never imports a tool (cmd/, loadtest/, devstack/)"
		}
	case shared:
		switch kinds[top] {
		case stage:
			return "internal/ and schemas/ never import a stage: the stages import them"
		case tool:
			return "internal/ and schemas/ never import a tool (cmd/, loadtest/, devstack/)"
		}
	case example:
		return "an example in docs/ is what a user would write: it imports public libraries only"
	case tool:
		switch {
		case from == "loadtest" && top == "cmd":
			return "loadtest/ runs the sluice binary; it never imports cmd/"
		case from == "devstack" && kinds[top] == tool && top != from:
			return "devstack/ is what cmd/ and loadtest/ build on; it never imports them"
		}
	}
	return ""
}

// TestImportRule checks every Go file of the module, test files and files
// of every build tag included, against violation.
func TestImportRule(t *testing.T) {
	root := moduleRoot(t)
	fset := token.NewFileSet()
	seen := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			name := d.Name()
			if path != root && (name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			if path != root {
				if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
					return filepath.SkipDir // another module
				}
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") {
			return nil
		}
		dir := filepath.ToSlash(filepath.Dir(rel))
		top, _, _ := strings.Cut(dir, "/")
		if _, ok := kinds[top]; !ok {
			t.Errorf("%s: the top-level directory %s/ has no kind: add it to kinds in this test", rel, top)
			return nil
		}
		seen[dir] = true
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				return err
			}
			if why := violation(dir, p); why != "" {
				t.Errorf("%s:%d: imports %s: %s", rel, fset.Position(imp.Pos()).Line, p, why)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Guard against a walk that checked nothing.
	for _, dir := range []string{"shipper", "router", "indexer", "schemas", "internal/kafka", "cmd/sluice", "loadtest", "devstack"} {
		if !seen[dir] {
			t.Errorf("no Go file found in %s/: the walk from %s missed the module", dir, root)
		}
	}
}

// TestViolation checks the rule itself on imports that break it and on
// imports that do not.
func TestViolation(t *testing.T) {
	for _, tc := range []struct {
		dir, path string
		bad       bool
	}{
		{"router", module + "/shipper", true},
		{"indexer/sub", module + "/router/x", true},
		{"shipper", module + "/loadtest", true},
		{"router", module + "/cmd/sluice", true},
		{"internal/kafka", module + "/router", true},
		{"schemas", module + "/indexer", true},
		{"internal/eslite", module + "/loadtest", true},
		{"loadtest", module + "/cmd/sluice", true},
		{"cmd/sluice", module + "/controller/v1alpha1", true},
		{"shipper", module + "/devstack", true},
		{"indexer/sub", module + "/devstack", true},
		{"internal/demo", module + "/devstack", true},
		{"internal/apptest", module + "/devstack", true},
		{"schemas", module + "/devstack", true},
		{"devstack", module + "/cmd/sluice", true},
		{"devstack", module + "/loadtest", true},
		{"router", module + "/internal/kafka", false},
		{"router", module + "/router/sub", false},
		{"shipper", module + "/schemas", false},
		{"internal/kafka", module + "/schemas", false},
		{"internal/eslite", module + "/internal/jsonstr", false},
		{"loadtest", module + "/router", false},
		{"cmd/sluice", module + "/indexer", false},
		{"cmd/sluice", module + "/devstack", false},
		{"loadtest", module + "/devstack", false},
		{"devstack", module + "/router", false},
		{"devstack", module + "/internal/eslite", false},
		{"router", "github.com/sluicelogs/sluicex/shipper", false},
		{"router", "encoding/json", false},
	} {
		if why := violation(tc.dir, tc.path); (why != "") != tc.bad {
			t.Errorf("%s importing %s: violation %q, want one: %v", tc.dir, tc.path, why, tc.bad)
		}
	}
}

// moduleRoot returns the directory of this module's go.mod, above the
// test's working directory (its package's directory).
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if f, err := os.Open(filepath.Join(dir, "go.mod")); err == nil {
			sc := bufio.NewScanner(f)
			sc.Scan()
			f.Close()
			if strings.TrimSpace(sc.Text()) == "module "+module {
				return dir
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no go.mod of %s above the working directory", module)
		}
		dir = parent
	}
}
