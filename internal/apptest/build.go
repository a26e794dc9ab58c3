package apptest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Package is the import path of the sluice binary's main package.
const Package = "github.com/sluicelogs/sluice/cmd/sluice"

// Build builds the sluice binary to the file out as the production image
// does (-tags nodev: no development stack), so that what the process tests
// and benchmarks measure is what runs on the nodes. It runs the go command
// of PATH in the working directory, which must be inside the module (a
// test's is its package's directory). The go command reads GOFLAGS from
// the environment: GOFLAGS=-race builds a binary with the race detector;
// `go test -race` alone does not, as the race detector would multiply the
// memory and time the tests measure.
func Build(ctx context.Context, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "nodev", "-o", out, Package)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", Package, err, b)
	}
	return nil
}

// built is the binary of this test binary, built at the first call of
// Binary.
var built struct {
	once sync.Once
	dir  string // a temporary directory, removed by Main
	bin  string
	err  error
}

// Binary returns the sluice binary built once per test binary (with Build,
// at the first call: call it before a test starts its clock or its
// writers). Main removes it at the end.
func Binary(t testing.TB) string {
	t.Helper()
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "sluice-bin-")
		if built.err != nil {
			return
		}
		built.bin = filepath.Join(built.dir, "sluice")
		built.err = Build(context.Background(), built.bin)
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bin
}

// Main runs the tests and removes the binary Binary built; it returns the
// exit code:
//
//	func TestMain(m *testing.M) { os.Exit(apptest.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	return code
}
