package apptest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Package is the import path of the sluice binary's main package.
const Package = "github.com/sluicelogs/sluice/cmd/sluice"

// Build builds the sluice binary to the file out with the build tags given:
// "nodev" for the production build (the image's: no development stack).
// It runs the go command of PATH in the working directory, which must be
// inside the module (a test's is its package's directory). The go command
// reads GOFLAGS from the environment: GOFLAGS=-race builds a binary with the
// race detector; `go test -race` alone does not, as the race detector would
// multiply the memory and time the tests measure.
func Build(ctx context.Context, out string, tags ...string) error {
	args := []string{"build", "-o", out}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	cmd := exec.CommandContext(ctx, "go", append(args, Package)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %v\n%s", strings.Join(cmd.Args[1:], " "), err, b)
	}
	return nil
}

// cached is a binary built once per test binary, at its first use.
type cached struct {
	tags []string
	once sync.Once
	dir  string // a temporary directory, removed by Main
	bin  string
	err  error
}

var (
	prodBuild = &cached{tags: []string{"nodev"}}
	devBuild  = &cached{}
)

func (c *cached) get(t testing.TB) string {
	t.Helper()
	c.once.Do(func() {
		c.dir, c.err = os.MkdirTemp("", "sluice-bin-")
		if c.err != nil {
			return
		}
		c.bin = filepath.Join(c.dir, "sluice")
		c.err = Build(context.Background(), c.bin, c.tags...)
	})
	if c.err != nil {
		t.Fatal(c.err)
	}
	return c.bin
}

// Binary returns the sluice binary as the production image builds it
// (-tags nodev), so that what the process tests and benchmarks measure is
// what runs on the nodes. It is built once per test binary, at the first
// call (call it before a test starts its clock or its writers); Main
// removes it at the end.
func Binary(t testing.TB) string {
	t.Helper()
	return prodBuild.get(t)
}

// DevBinary is Binary for the full build, with the development commands
// (sluice dev, sluice loadtest).
func DevBinary(t testing.TB) string {
	t.Helper()
	return devBuild.get(t)
}

// Main runs the tests and removes the binaries Binary and DevBinary built;
// it returns the exit code:
//
//	func TestMain(m *testing.M) { os.Exit(apptest.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	for _, c := range []*cached{prodBuild, devBuild} {
		if c.dir != "" {
			os.RemoveAll(c.dir)
		}
	}
	return code
}
