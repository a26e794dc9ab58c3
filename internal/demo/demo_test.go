package demo

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicelogs/sluice/internal/nodelog"
)

// TestDemoWrites: the demo writes CRI lines for its pods, partial lines
// included, and rotates.
func TestDemoWrites(t *testing.T) {
	node := &nodelog.Node{Root: t.TempDir()}
	d := &Workload{Node: node, Rate: -1, Limit: 3000, RotateBytes: 64 << 10}
	if err := d.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	links, _ := filepath.Glob(node.ContainersGlob())
	if len(links) != 4 {
		t.Fatalf("%d containers: %v", len(links), links)
	}
	var all strings.Builder
	files, _ := filepath.Glob(filepath.Join(node.Root, "var", "log", "pods", "*", "*", "*"))
	rotated := 0
	for _, f := range files {
		if strings.Contains(filepath.Base(f), ".log.") {
			rotated++
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all.Write(b)
	}
	for _, want := range []string{" stdout F {\"level\"", " stderr F \tat shop.cart", " P {\"level\":\"warn\"", "AUDIT refund", "upstream timed out"} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("no line with %q", want)
		}
	}
	if rotated == 0 {
		t.Error("nothing rotated")
	}
}
