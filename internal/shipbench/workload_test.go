package shipbench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// message is one message read back from a node's files, its CRI pieces
// joined.
type message struct {
	container int
	stream    string
	text      string
	pieces    []int // content length of each physical line
}

// readNode reads every container's file through its /var/log/containers
// link, joins partial lines per stream and returns the messages and the
// number of physical lines and bytes.
func readNode(t *testing.T, g *Generator) (msgs []message, lines, size int64) {
	t.Helper()
	for i, c := range g.Containers() {
		target, err := filepath.EvalSymlinks(c.LinkPath())
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := filepath.EvalSymlinks(c.FilePath()); target != want {
			t.Fatalf("%s links to %s, want %s", c.LinkPath(), target, want)
		}
		f, err := os.Open(c.LinkPath())
		if err != nil {
			t.Fatal(err)
		}
		open := map[string]*message{}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 64<<10)
		for sc.Scan() {
			line := sc.Text()
			lines++
			size += int64(len(line)) + 1
			ts, rest, _ := strings.Cut(line, " ")
			stream, rest, _ := strings.Cut(rest, " ")
			tag, content, ok := strings.Cut(rest, " ")
			if _, err := time.Parse(time.RFC3339Nano, ts); err != nil || !ok || (tag != "P" && tag != "F") ||
				(stream != "stdout" && stream != "stderr") || len(ts) != 30 {
				t.Fatalf("%s: not a CRI line: %.120q", c.FilePath(), line)
			}
			m := open[stream]
			if m == nil {
				m = &message{container: i, stream: stream}
				open[stream] = m
			}
			m.text += content
			m.pieces = append(m.pieces, len(content))
			if tag == "F" {
				msgs = append(msgs, *m)
				delete(open, stream)
			}
		}
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if len(open) > 0 {
			t.Errorf("%s ends with a partial message", c.FilePath())
		}
	}
	return msgs, lines, size
}

func generate(t *testing.T, w Workload) *Generator {
	t.Helper()
	g, err := New(t.TempDir(), w)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.WriteAll(); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	return g
}

// TestStandardShape writes 20,000 messages of the standard workload and
// checks its shape: sizes, the mix, stderr, the containers' skew, and that
// every message is there once.
func TestStandardShape(t *testing.T) {
	w := Standard()
	w.Lines = 20_000
	g := generate(t, w)
	msgs, lines, size := readNode(t, g)
	st := g.Stats()
	if int64(len(msgs)) != st.Lines || st.Lines != int64(w.Lines) || lines != st.CRILines || size != st.Bytes {
		t.Fatalf("read %d messages, %d lines, %d bytes; stats say %+v", len(msgs), lines, size, st)
	}
	if len(g.Containers()) != 40 {
		t.Fatalf("%d containers", len(g.Containers()))
	}
	pods := map[string]bool{}
	for _, c := range g.Containers() {
		pods[filepath.Dir(filepath.Dir(c.FilePath()))] = true
	}
	if len(pods) >= 40 || len(pods) <= 20 {
		t.Errorf("%d pod directories for 40 containers, want one or two containers a pod", len(pods))
	}

	check := NewCheck(w.Lines)
	var plain []int
	var json, stderr int
	perContainer := make([]int, 40)
	for i, m := range msgs {
		check.Add(strconv.Itoa(i), m.text)
		perContainer[m.container]++
		if m.stream == "stderr" {
			stderr++
		}
		if strings.HasPrefix(m.text, "{") {
			json++
		} else if !strings.Contains(m.text, " big=1 ") {
			plain = append(plain, len(m.text))
		}
	}
	if err := check.Result().Err(); err != nil {
		t.Fatal(err)
	}
	meanLine := float64(st.Bytes) / float64(st.CRILines)
	t.Logf("mean CRI line %.1f bytes, mean message %.1f, %d long, %.3f JSON, %.3f stderr",
		meanLine, float64(st.ContentBytes)/float64(st.Lines), st.BigLines, float64(json)/float64(len(msgs)), float64(stderr)/float64(len(msgs)))
	if meanLine < 360 || meanLine > 400 {
		t.Errorf("mean CRI line %.1f bytes, want about 380", meanLine)
	}
	if f := float64(json) / float64(len(msgs)); f < 0.42 || f > 0.48 {
		t.Errorf("JSON fraction %.3f, want 0.45", f)
	}
	if f := float64(stderr) / float64(len(msgs)); f < 0.09 || f > 0.11 {
		t.Errorf("stderr fraction %.3f, want 0.10", f)
	}
	// Plain text messages follow the lognormal closely: median 250 (mean
	// 300), 10th and 90th percentiles near 116 and 540.
	slices.Sort(plain)
	p10, p50, p90 := plain[len(plain)/10], plain[len(plain)/2], plain[len(plain)*9/10]
	if p10 < 90 || p10 > 145 || p50 < 220 || p50 > 280 || p90 < 470 || p90 > 610 || plain[0] < minBytes {
		t.Errorf("plain text sizes: min %d, p10 %d, median %d, p90 %d; want about 60, 116, 250, 540", plain[0], p10, p50, p90)
	}
	// Container i gets 1/(i+1) of the weight: the first about 23 %, the
	// last about 40 times less.
	if f := float64(perContainer[0]) / float64(len(msgs)); f < 0.21 || f > 0.26 {
		t.Errorf("busiest container has %.3f of the messages, want 0.234", f)
	}
	if r := float64(perContainer[0]) / float64(perContainer[39]); r < 25 || r > 60 {
		t.Errorf("busiest container writes %.1f times the quietest, want 40", r)
	}
	for i, n := range st.PerContainer {
		if int(n) != perContainer[i] {
			t.Errorf("container %d: stats say %d messages, files hold %d", i, n, perContainer[i])
		}
	}
}

// TestLongMessages checks that long messages are written as 16 KiB P
// pieces and a last F, and read back whole.
func TestLongMessages(t *testing.T) {
	w := Standard()
	w.Lines, w.Containers, w.BigFrac = 4000, 4, 0.03
	g := generate(t, w)
	msgs, _, _ := readNode(t, g)
	check := NewCheck(w.Lines)
	big := 0
	for i, m := range msgs {
		check.Add(strconv.Itoa(i), m.text)
		if len(m.text) <= splitAt {
			if len(m.pieces) != 1 {
				t.Errorf("a message of %d bytes in %d pieces", len(m.text), len(m.pieces))
			}
			continue
		}
		big++
		if !strings.Contains(m.text, " big=1 len="+strconv.Itoa(len(m.text))+" ") || len(m.text) > w.BigMax {
			t.Errorf("long message of %d bytes: %.60q", len(m.text), m.text)
		}
		for j, n := range m.pieces {
			if last := j == len(m.pieces)-1; (!last && n != splitAt) || (last && (n == 0 || n > splitAt)) {
				t.Errorf("long message of %d bytes cut into %v", len(m.text), m.pieces)
				break
			}
		}
	}
	res := check.Result()
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	if big != int(g.Stats().BigLines) || res.BigWhole != big || big < 80 || big > 160 {
		t.Errorf("%d long messages read, %d whole, stats say %d; want about 120", big, res.BigWhole, g.Stats().BigLines)
	}
}

// TestDeterministic: the same workload writes the same files; another seed
// other ones.
func TestDeterministic(t *testing.T) {
	digest := func(w Workload) map[string][32]byte {
		g := generate(t, w)
		out := map[string][32]byte{}
		root := g.Node().Root
		err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			var b []byte
			if d.Type()&os.ModeSymlink != 0 {
				s, err := os.Readlink(p)
				b = []byte("link " + s)
				if err != nil {
					return err
				}
			} else if b, err = os.ReadFile(p); err != nil {
				return err
			}
			out[rel] = sha256.Sum256(b)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	w := Standard()
	w.Lines, w.BigFrac = 3000, 0.01
	a, b := digest(w), digest(w)
	if len(a) != 80 { // 40 files and their links
		t.Fatalf("%d files", len(a))
	}
	for p, h := range a {
		if b[p] != h {
			t.Errorf("%s differs between two runs with seed %d", p, w.Seed)
		}
	}
	w.Seed = 2
	c := digest(w)
	same := 0
	for p, h := range a {
		if c[p] == h {
			same++
		}
	}
	if same > 0 {
		t.Errorf("%d files alike with seeds 1 and 2", same)
	}
}

// TestLive appends at a rate with the wall clock's timestamps.
func TestLive(t *testing.T) {
	w := Standard()
	w.Containers = 5
	g, err := New(t.TempDir(), w)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range g.Containers() {
		if c.Size() != 0 {
			t.Fatalf("%s is not empty before writing", c.FilePath())
		}
	}
	start := time.Now()
	if err := g.Live(t.Context(), 5000, 1000, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if took < 150*time.Millisecond || took > 5*time.Second {
		t.Errorf("1000 lines at 5000/s took %s", took)
	}
	msgs, _, _ := readNode(t, g)
	if len(msgs) != 1000 || g.Stats().Lines != 1000 {
		t.Fatalf("%d messages written, stats say %d", len(msgs), g.Stats().Lines)
	}
	check := NewCheck(1000)
	for i, m := range msgs {
		check.Add(strconv.Itoa(i), m.text)
	}
	if err := check.Result().Err(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(g.Containers()[0].FilePath())
	ts, err := time.Parse(time.RFC3339Nano, string(b[:30]))
	if err != nil || ts.Before(start.Add(-time.Second)) || ts.After(time.Now()) {
		t.Errorf("first live timestamp %q (%v), started at %s", b[:30], err, start.UTC())
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := g.Live(ctx, 5000, 0, 10*time.Millisecond); err != context.Canceled {
		t.Errorf("Live after cancel = %v", err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestWorkloadValidate(t *testing.T) {
	for name, change := range map[string]func(*Workload){
		"no containers": func(w *Workload) { w.Containers = 0 },
		"tiny mean":     func(w *Workload) { w.MeanBytes = 10 },
		"short big":     func(w *Workload) { w.BigMax = 1000 },
		"bad fraction":  func(w *Workload) { w.StderrFrac = 1.5 },
	} {
		w := Standard()
		change(&w)
		if _, err := New(t.TempDir(), w); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestStamps(t *testing.T) {
	var s stamps
	ts := time.Date(2026, 11, 21, 10, 4, 5, 7_008_009, time.UTC)
	s.set(ts)
	if got := string(s.cri[:]); got != "2026-11-21T10:04:05.007008009Z" {
		t.Errorf("cri %q", got)
	}
	s.set(ts.Add(time.Second + 990*time.Millisecond))
	checks := map[string]string{
		"cri":  string(s.cri[:]),
		"iso":  string(s.appendFrac(bytes.Clone(s.iso), 3)),
		"klog": string(s.appendFrac(bytes.Clone(s.klog), 6)),
		"acc":  string(s.access),
		"java": string(s.appendFrac(bytes.Clone(s.java), 3)),
	}
	want := map[string]string{
		"cri":  "2026-11-21T10:04:06.997008009Z",
		"iso":  "2026-11-21T10:04:06.997",
		"klog": "1121 10:04:06.997008",
		"acc":  "21/Nov/2026:10:04:06 +0000",
		"java": "2026-11-21 10:04:06.997",
	}
	for k, v := range want {
		if checks[k] != v {
			t.Errorf("%s = %q, want %q", k, checks[k], v)
		}
	}
}
