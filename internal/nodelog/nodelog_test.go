package nodelog

import (
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// readLog returns a log file's content, decompressed when it is a .gz.
func readLog(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		r = zr
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return string(b)
}

// TestRotateKubeletLayout rotates faster than once a second and checks,
// after every rotation, the files kubelet would leave: 0.log, the newest
// rotation plain, the older ones compressed, at most maxFiles in all, the
// oldest deleted first, and every generation's lines in its own file.
func TestRotateKubeletLayout(t *testing.T) {
	const maxFiles = 5
	node := &Node{Root: t.TempDir()}
	c, err := node.AddContainer("ns", "pod", "app", CRI)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	gen := func(g int) string { return fmt.Sprintf("generation %d\n", g) }
	var names []string // rotated path of every generation, in order
	for g := range 8 {
		if err := c.WriteRaw([]byte(gen(g))); err != nil {
			t.Fatal(err)
		}
		rotated, err := c.RotateKubelet(maxFiles)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Dir(rotated) != filepath.Dir(c.FilePath()) || !strings.HasPrefix(filepath.Base(rotated), "0.log.") {
			t.Fatalf("rotated to %s", rotated)
		}
		stamp := strings.TrimPrefix(filepath.Base(rotated), "0.log.")
		if _, err := time.Parse("20060102-150405", stamp); err != nil {
			t.Fatalf("rotated name %s: timestamp %q is not kubelet's: %v", rotated, stamp, err)
		}
		if len(names) > 0 && rotated <= names[len(names)-1] {
			t.Fatalf("rotation %d named %s, not after %s", g, rotated, names[len(names)-1])
		}
		names = append(names, rotated)

		// What should exist: the newest maxFiles-1 generations, the last
		// plain, the others compressed.
		keep := names[max(len(names)-(maxFiles-1), 0):]
		want := make([]string, len(keep))
		for i, n := range keep {
			want[i] = n
			if i < len(keep)-1 {
				want[i] += ".gz"
			}
		}
		if got := c.Rotations(); !slices.Equal(got, want) {
			t.Fatalf("after rotation %d: Rotations() = %v, want %v", g, got, want)
		}
		if got := c.Rotated(); !slices.Equal(got, want[len(want)-1:]) {
			t.Fatalf("after rotation %d: Rotated() = %v, want only the plain %v", g, got, want[len(want)-1:])
		}
		entries, err := os.ReadDir(filepath.Dir(c.FilePath()))
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != len(want)+1 || len(entries) > maxFiles {
			t.Fatalf("after rotation %d: %d files, want %d (at most %d): %v", g, len(entries), len(want)+1, maxFiles, entries)
		}
		for i, p := range want {
			if got, wantText := readLog(t, p), gen(g-len(want)+1+i); got != wantText {
				t.Fatalf("%s holds %q, want %q", p, got, wantText)
			}
		}
		if got := readLog(t, c.FilePath()); got != "" {
			t.Fatalf("0.log after rotation %d holds %q, want it empty", g, got)
		}
		if target, err := filepath.EvalSymlinks(c.LinkPath()); err != nil || target != c.FilePath() {
			t.Fatalf("link resolves to %q (%v), want %s", target, err, c.FilePath())
		}
	}
	if err := c.WriteRaw([]byte("current\n")); err != nil {
		t.Fatal(err)
	}
	if got := readLog(t, c.FilePath()); got != "current\n" {
		t.Fatalf("0.log holds %q", got)
	}
}

// TestRotateKubeletCleansLeftovers: a compression interrupted before the
// plain file was removed, or before the rename, leaves files the next
// rotation removes, as kubelet's cleanup does.
func TestRotateKubeletCleansLeftovers(t *testing.T) {
	node := &Node{Root: t.TempDir()}
	c, err := node.AddContainer("ns", "pod", "app", CRI)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	first, err := c.RotateKubelet(5)
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.RotateKubelet(5) // compresses first
	if err != nil {
		t.Fatal(err)
	}
	// first is compressed but its plain file is back; second has a
	// half-written temporary file.
	for _, p := range []string{first, second + ".tmp"} {
		if err := os.WriteFile(p, []byte("leftover\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	third, err := c.RotateKubelet(5)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{first + ".gz", second + ".gz", third}
	if got := c.Rotations(); !slices.Equal(got, want) {
		t.Fatalf("Rotations() = %v, want %v", got, want)
	}
	for _, p := range []string{first, second + ".tmp"} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still exists (%v)", p, err)
		}
	}
}

// TestRotateKubeletTwoFiles: with containerLogMaxFiles 2 nothing is ever
// compressed; the previous rotation is deleted.
func TestRotateKubeletTwoFiles(t *testing.T) {
	node := &Node{Root: t.TempDir()}
	c, err := node.AddContainer("ns", "pod", "app", CRI)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var last string
	for range 3 {
		if last, err = c.RotateKubelet(2); err != nil {
			t.Fatal(err)
		}
	}
	if got := c.Rotations(); !slices.Equal(got, []string{last}) {
		t.Fatalf("Rotations() = %v, want [%s]", got, last)
	}
}

// TestRotateKubeletIfFull rotates only a file that reached the size, once
// however many callers find it full.
func TestRotateKubeletIfFull(t *testing.T) {
	node := &Node{Root: t.TempDir()}
	c, err := node.AddContainer("ns", "pod", "app", CRI)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WriteRaw([]byte(strings.Repeat("x", 99) + "\n")); err != nil {
		t.Fatal(err)
	}
	if p, err := c.RotateKubeletIfFull(101, 5); p != "" || err != nil {
		t.Fatalf("a 100-byte file rotated at 101: %q, %v", p, err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var rotated []string
	for range 4 {
		wg.Go(func() {
			p, err := c.RotateKubeletIfFull(100, 5)
			if err != nil {
				t.Error(err)
			}
			if p != "" {
				mu.Lock()
				rotated = append(rotated, p)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(rotated) != 1 {
		t.Fatalf("a full file was rotated %d times by concurrent callers: %v", len(rotated), rotated)
	}
	if got := readLog(t, rotated[0]); len(got) != 100 {
		t.Fatalf("rotated file holds %d bytes, want 100", len(got))
	}
}
