package loadtest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicelogs/sluice/internal/nodelog"
)

func testScenario() *Scenario {
	return &Scenario{
		Name: "generator-test", Duration: Duration(time.Minute), Rate: 1000, Nodes: 1,
		Containers: 7, Tenants: []string{"shop", "payments", "web"},
		Mix:         Mix{JSON: 0.4, StackTrace: 0.2, Large: 0.02, Malformed: 0.05, Docker: 0.3},
		RotateBytes: 64 << 10, RouterReplicas: 1, IndexerReplicas: 1,
		DrainTimeout: Duration(time.Minute), LatencySampleEvery: 10,
	}
}

// message is one message read back from a container's files: its partial
// lines joined.
type message struct {
	text   string
	stream string
	time   time.Time
	parts  int
	file   string
}

// readContainer reads back every message of a container, from its rotated
// files (gzipped or not) oldest first, then its live file, and returns them
// with the number of rotated files and the raw bytes of all the files.
func readContainer(t *testing.T, c *nodelog.Container) (msgs []message, rotated int, raw []byte) {
	t.Helper()
	files, err := filepath.Glob(c.FilePath() + ".*")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files) // 0.log.<timestamp>-<n>[.gz]: rotation order within the test's seconds
	if !slices.Equal(c.Rotated(), slices.DeleteFunc(slices.Clone(files), func(p string) bool { return strings.HasSuffix(p, ".gz") })) {
		t.Errorf("%s: Rotated() = %v, glob %v", c.Pod, c.Rotated(), files)
	}
	rotated = len(files)
	files = append(files, c.FilePath())
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(path, ".gz") {
			zr, err := gzip.NewReader(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if b, err = io.ReadAll(zr); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
		}
		raw = append(raw, b...)
		var pending *message // partial lines not yet ended
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			content, stream, ts, partial := decodePhysical(t, c.Format, sc.Text())
			if pending == nil {
				pending = &message{stream: stream, time: ts, file: path}
			} else if stream != pending.stream {
				t.Fatalf("%s: partial line of %s followed by %s", path, pending.stream, stream)
			}
			pending.text += content
			pending.parts++
			if !partial {
				msgs = append(msgs, *pending)
				pending = nil
			}
		}
		if err := sc.Err(); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if pending != nil {
			t.Errorf("%s: ends in a partial line", path)
		}
	}
	return msgs, rotated, raw
}

// decodePhysical decodes one physical line of a CRI or docker json-file log.
func decodePhysical(t *testing.T, f nodelog.Format, line string) (content, stream string, ts time.Time, partial bool) {
	t.Helper()
	var tstr string
	switch f {
	case nodelog.Docker:
		var d struct{ Log, Stream, Time string }
		if err := json.Unmarshal([]byte(line), &d); err != nil {
			t.Fatalf("docker line %.80q: %v", line, err)
		}
		content, partial = strings.CutSuffix(d.Log, "\n")
		partial = !partial
		stream, tstr = d.Stream, d.Time
	default:
		fields := strings.SplitN(line, " ", 4)
		if len(fields) != 4 || fields[2] != "P" && fields[2] != "F" {
			t.Fatalf("CRI line %.80q", line)
		}
		tstr, stream, partial, content = fields[0], fields[1], fields[2] == "P", fields[3]
	}
	ts, err := time.Parse(time.RFC3339Nano, tstr)
	if err != nil {
		t.Fatalf("line %.80q: %v", line, err)
	}
	if stream != "stdout" && stream != "stderr" {
		t.Fatalf("line %.80q: stream %q", line, stream)
	}
	return content, stream, ts, partial
}

// kindOf tells a message's kind by its look.
func kindOf(text string) lineKind {
	switch {
	case strings.HasPrefix(text, "#"):
		return kindMalformed
	case len(text) > splitAt:
		return kindLarge
	case strings.HasPrefix(text, "{"):
		return kindJSON
	case strings.HasPrefix(text, "ERROR request failed: "), strings.HasPrefix(text, "\tat "), strings.HasPrefix(text, "Caused by: "):
		return kindStack
	}
	return kindText
}

// checkNode reads back everything w wrote and checks every line against
// what w says of it. It returns the lines by kind, as read.
func checkNode(t *testing.T, w *NodeWriter, node int) (kinds [numKinds]int) {
	t.Helper()
	lines := w.Lines()
	seen := make([]int, lines)
	for _, c := range w.Containers() {
		msgs, _, raw := readContainer(t, c)
		for _, m := range msgs {
			var found []nodeSeq
			FindMarkers([]byte(m.text), func(n, seq int) { found = append(found, nodeSeq{n, seq}) })
			if len(found) != 1 {
				t.Errorf("%s: %d markers in %.100q", c.Pod, len(found), m.text)
				continue
			}
			f := found[0]
			if f.node != node || f.seq >= lines {
				t.Errorf("%s: marker %v, node %d wrote %d lines", c.Pod, f, node, lines)
				continue
			}
			seen[f.seq]++
			if tenant := w.Tenant(f.seq); tenant != c.Namespace {
				t.Errorf("seq %d: Tenant = %s, found in namespace %s", f.seq, tenant, c.Namespace)
			}
			k := kindOf(m.text)
			kinds[k]++
			if dead := w.Expect(f.seq) == DeadLettered; dead != (k == kindMalformed) {
				t.Errorf("seq %d: Expect = %v for %.60q", f.seq, w.Expect(f.seq), m.text)
			}
			// A marker is a word of its own: a space or a quote before
			// it, a space, a quote or the end after it.
			mk := Marker(f.node, f.seq)
			i := strings.Index(m.text, mk)
			if i > 0 && !strings.ContainsRune(` "`, rune(m.text[i-1])) ||
				i+len(mk) < len(m.text) && !strings.ContainsRune(` "`, rune(m.text[i+len(mk)])) {
				t.Errorf("marker %s glued to its neighbours in %.100q", mk, m.text)
			}
			if (k == kindLarge) != (m.parts > 1) {
				t.Errorf("seq %d: %d bytes in %d parts", f.seq, len(m.text), m.parts)
			}
			if k == kindLarge && (len(m.text) < largeMin || len(m.text) > largeMax || !strings.HasPrefix(m.text, mk+" ")) {
				t.Errorf("seq %d: large line of %d bytes starting %.40q", f.seq, len(m.text), m.text)
			}
			if k == kindStack && m.stream != "stderr" {
				t.Errorf("seq %d: stack trace line on %s", f.seq, m.stream)
			}
		}
		// The markers read the same in the raw files, escaped or not.
		var rawSeqs []int
		FindMarkers(raw, func(_, seq int) { rawSeqs = append(rawSeqs, seq) })
		if len(rawSeqs) != len(msgs) || !slices.IsSorted(rawSeqs) {
			t.Errorf("%s: %d markers in the raw files (sorted: %v), %d messages", c.Pod, len(rawSeqs), slices.IsSorted(rawSeqs), len(msgs))
		}
	}
	for seq, n := range seen {
		if n != 1 {
			t.Errorf("seq %d: found %d times", seq, n)
		}
	}
	return kinds
}

func TestNodeWriter(t *testing.T) {
	s := testScenario()
	dir := t.TempDir()
	const node = 3
	w, err := NewNodeWriter(dir, node, s, 42)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	sampled := map[string]time.Time{}
	w.Sample = func(marker string, written time.Time) {
		mu.Lock()
		defer mu.Unlock()
		if _, dup := sampled[marker]; dup {
			t.Errorf("%s sampled twice", marker)
		}
		sampled[marker] = written
	}

	// Readers while it writes (the harness's timeline reads Lines).
	done := make(chan struct{})
	var readers sync.WaitGroup
	readers.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			if n := w.Lines(); n > 0 {
				_ = w.Tenant(n - 1)
				_ = w.Expect(n / 2)
			}
		}
	})

	const total = 20000
	t0 := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	writeTimes := map[int]time.Time{} // first seq of each Write → its time
	for i := 0; w.Lines() < total; i++ {
		n := 1 + i%400 // small writes (fewer lines than containers) and large ones
		before := w.Lines()
		now := t0.Add(time.Duration(i) * time.Millisecond)
		if err := w.Write(n, now); err != nil {
			t.Fatal(err)
		}
		wrote := w.Lines() - before
		if wrote < n || wrote >= n+int(stackFramesMax+causeFramesMax+2) {
			t.Fatalf("Write(%d) wrote %d lines", n, wrote)
		}
		writeTimes[before] = now
	}
	close(done)
	readers.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	lines := w.Lines()

	// The tree: one symlink per container, in the shipper's glob.
	links, err := filepath.Glob(w.Node().ContainersGlob())
	if err != nil || len(links) != s.Containers {
		t.Fatalf("%d links in %s (%v), want %d", len(links), w.Node().ContainersGlob(), err, s.Containers)
	}

	// The containers: tenants in turn, a fraction docker, all rotated.
	docker := 0
	for i, c := range w.Containers() {
		if want := s.Tenants[i%len(s.Tenants)]; c.Namespace != want || !strings.HasPrefix(c.Pod, want+"-app-") || c.Name != "app" {
			t.Errorf("container %d: %s/%s/%s, want tenant %s", i, c.Namespace, c.Pod, c.Name, want)
		}
		if c.SplitAt != 16384 {
			t.Errorf("container %d: SplitAt %d", i, c.SplitAt)
		}
		if c.Format == nodelog.Docker {
			docker++
		}
		_, rotated, _ := readContainer(t, c)
		if rotated < 3 {
			t.Errorf("container %d: rotated %d times", i, rotated)
		}
		for _, p := range c.Rotated() {
			if fi, err := os.Stat(p); err != nil || fi.Size() < s.RotateBytes {
				t.Errorf("%s: rotated before %d bytes (%v)", p, s.RotateBytes, err)
			}
		}
		if fi, err := os.Stat(c.FilePath()); err != nil || fi.Size() >= s.RotateBytes {
			t.Errorf("%s: live file not rotated at %d bytes (%v)", c.FilePath(), s.RotateBytes, err)
		}
	}
	if want := int(math.Round(s.Mix.Docker * float64(s.Containers))); docker != want {
		t.Errorf("%d docker containers, want %d", docker, want)
	}

	// Every line, exactly once, as w says.
	kinds := checkNode(t, w, node)
	got := w.Kinds()
	for k, n := range kinds {
		if got[kindNames[k]] != n {
			t.Errorf("Kinds()[%s] = %d, read %d", kindNames[k], got[kindNames[k]], n)
		}
	}
	m := s.Mix
	want := [numKinds]float64{m.JSON, m.StackTrace, m.Large, m.Malformed, 1 - m.JSON - m.StackTrace - m.Large - m.Malformed}
	for k, n := range kinds {
		frac := float64(n) / float64(lines)
		t.Logf("%-11s %5d lines, %.3f (mix %.3f)", kindNames[k], n, frac, want[k])
		if math.Abs(frac-want[k]) > 0.03 {
			t.Errorf("%s: %.3f of the lines, mix says %.3f", kindNames[k], frac, want[k])
		}
	}

	// Sampled: exactly the multiples of LatencySampleEvery, with the time
	// of the Write that wrote them.
	var firsts []int
	for seq := range writeTimes {
		firsts = append(firsts, seq)
	}
	slices.Sort(firsts)
	for seq := 0; seq < lines; seq++ {
		at, ok := sampled[Marker(node, seq)]
		if ok != (seq%s.LatencySampleEvery == 0) {
			t.Errorf("seq %d: sampled %v", seq, ok)
			continue
		}
		if i, _ := slices.BinarySearch(firsts, seq+1); ok && !at.Equal(writeTimes[firsts[i-1]]) {
			t.Errorf("seq %d: sampled at %v, written at %v", seq, at, writeTimes[firsts[i-1]])
		}
	}
	if len(sampled) != (lines+s.LatencySampleEvery-1)/s.LatencySampleEvery {
		t.Errorf("%d samples for %d lines", len(sampled), lines)
	}
	if err := w.Write(1, t0); err == nil {
		t.Error("Write after Close: no error")
	}
}

// With more than 127 tenants a line's tenant takes two bytes.
func TestNodeWriterManyTenants(t *testing.T) {
	s := testScenario()
	s.Tenants = nil
	for i := range 300 {
		s.Tenants = append(s.Tenants, "t"+string(rune('a'+i%26))+"-"+string(rune('0'+i/26%10))+string(rune('a'+i/260)))
	}
	s.Containers = 300
	s.Mix.Malformed = 0.2
	w, err := NewNodeWriter(t.TempDir(), 0, s, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(3000, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.meta16 == nil {
		t.Fatal("one byte per line for 300 tenants")
	}
	checkNode(t, w, 0)
}

// The same seed writes the same files.
func TestNodeWriterDeterministic(t *testing.T) {
	s := testScenario()
	s.RotateBytes = 10 << 20
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	var trees [3][][]byte
	for i, seed := range []uint64{5, 5, 6} {
		w, err := NewNodeWriter(t.TempDir(), 1, s, seed)
		if err != nil {
			t.Fatal(err)
		}
		for j := range 10 {
			if err := w.Write(300, now.Add(time.Duration(j)*time.Second)); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range w.Containers() {
			b, err := os.ReadFile(c.FilePath())
			if err != nil {
				t.Fatal(err)
			}
			trees[i] = append(trees[i], []byte(c.Pod), b)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.EqualFunc(trees[0], trees[1], bytes.Equal) {
		t.Error("same seed, different files")
	}
	if slices.EqualFunc(trees[0], trees[2], bytes.Equal) {
		t.Error("different seeds, same files")
	}
}

func TestNodeWriterBadScenario(t *testing.T) {
	for name, change := range map[string]func(*Scenario){
		"no tenants":   func(s *Scenario) { s.Tenants = nil },
		"no rotation":  func(s *Scenario) { s.RotateBytes = 0 },
		"mix over one": func(s *Scenario) { s.Mix.JSON = 0.9 },
	} {
		s := testScenario()
		change(s)
		if _, err := NewNodeWriter(t.TempDir(), 0, s, 1); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := NewNodeWriter(t.TempDir(), MaxMarkerNode+1, testScenario(), 1); err == nil {
		t.Error("node out of range: no error")
	}
}

// BenchmarkNodeWriter writes lines of a realistic mix, as the harness does:
// a few hundred lines per Write over 8 containers, a quarter of them docker.
func BenchmarkNodeWriter(b *testing.B) {
	s := testScenario()
	s.Containers = 8
	s.Mix = Mix{JSON: 0.5, StackTrace: 0.1, Large: 0.01, Malformed: 0.01, Docker: 0.25}
	s.RotateBytes = 10 << 20
	w, err := NewNodeWriter(b.TempDir(), 0, s, 1)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	now := time.Now()
	var bytesWritten int64
	for b.Loop() {
		if err := w.Write(500, now); err != nil {
			b.Fatal(err)
		}
		// Keep the disk use bounded: drop rotated files.
		for _, c := range w.Containers() {
			for _, p := range c.Rotated() {
				if fi, err := os.Stat(p); err == nil {
					bytesWritten += fi.Size()
				}
				os.Remove(p)
			}
		}
	}
	b.StopTimer()
	for _, c := range w.Containers() {
		bytesWritten += c.Size()
	}
	b.ReportMetric(float64(w.Lines())/b.Elapsed().Seconds(), "lines/s")
	b.ReportMetric(float64(bytesWritten)/float64(max(w.Lines(), 1)), "B/line")
}
