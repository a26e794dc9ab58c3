package shipper

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluicelogs/sluice/internal/kafkatest"
	"github.com/sluicelogs/sluice/internal/nodelog"
	"github.com/sluicelogs/sluice/internal/testwait"
	"github.com/sluicelogs/sluice/schemas"
)

// gzipRotation compresses a rotated file as kubelet does: write
// <path>.gz.tmp, rename it to <path>.gz, remove the plain file.
func gzipRotation(t *testing.T, path string) {
	t.Helper()
	plain, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".gz.tmp", buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".gz.tmp", path+".gz"); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

// runOnceStdout runs the shipper in once mode with stdout output and
// returns the records.
func runOnceStdout(t *testing.T, cfg Config) []schemas.Record {
	t.Helper()
	var out bytes.Buffer
	r := startShipper(t, cfg, Options{Stdout: &out, Once: true})
	if err := <-r.done; err != nil {
		t.Fatal(err)
	}
	r.cancel = nil
	var recs []schemas.Record
	for _, l := range bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var rec schemas.Record
		if err := json.Unmarshal(l, &rec); err != nil {
			t.Fatalf("bad output line %q: %v", l, err)
		}
		recs = append(recs, rec)
	}
	return recs
}

// notFirstRun saves an empty checkpoint, so the shipper does not take its
// run for the node's very first one (which reads current files only).
func notFirstRun(t *testing.T, cfg Config) {
	t.Helper()
	if err := (checkpointStore{dir: cfg.CheckpointDir}).save(cfg.nodeName(), nil); err != nil {
		t.Fatal(err)
	}
}

func heads(recs []schemas.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i], _, _ = strings.Cut(r.Log, " ")
	}
	return out
}

// numbered writes numbered 60-byte messages, "c#<n> ...", to a container.
type numbered struct {
	c *nodelog.Container
	n int // messages written
}

func (w *numbered) write(k int) {
	for range k {
		_ = w.c.Write(time.Now(), "stdout", message("c", w.n, 60))
		w.n++
	}
}

// oneContainer is a node with one CRI container of namespace ns, the
// shipper's configuration for it (no Kafka) and a numbered-line writer.
func oneContainer(t *testing.T, ns string) (Config, *nodelog.Container, *numbered) {
	t.Helper()
	node := &nodelog.Node{Root: t.TempDir()}
	c, err := node.AddContainer(ns, "p", "c", nodelog.CRI)
	if err != nil {
		t.Fatal(err)
	}
	return testConfig(t, node, nil, nil), c, &numbered{c: c}
}

// rotate rotates c as kubelet does (rename and reopen) and returns the
// rotated file's path.
func rotate(t *testing.T, c *nodelog.Container) string {
	t.Helper()
	p, err := c.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// rotateWhileHeldBack waits until the shipper holds tenant "late" back for
// its missing topic, then rotates c three times, writing 20 lines after
// each, and returns the rotated files' paths.
func rotateWhileHeldBack(t *testing.T, r *running, c *nodelog.Container, w *numbered) []string {
	t.Helper()
	testwait.For(t, 20*time.Second, "the tenant to be held back", func() (bool, string) {
		return testutil.ToFloat64(r.sh.m.produceErrors.WithLabelValues("late", reasonTopicMissing)) > 0, ""
	})
	var rotated []string
	for range 3 {
		rotated = append(rotated, rotate(t, c))
		w.write(20)
		time.Sleep(100 * time.Millisecond) // the watcher opens each rotation
	}
	return rotated
}

func seqNames(name string, from, to int) []string {
	var out []string
	for k := from; k < to; k++ {
		out = append(out, fmt.Sprintf("%s#%d", name, k))
	}
	return out
}

// TestCompressedRotationsAreRead: while the shipper was down its file was
// rotated three times and kubelet compressed the older rotations (the
// plain files are gone). The unread lines are read from the compressed
// copies, in order, none twice.
func TestCompressedRotationsAreRead(t *testing.T) {
	cfg, c, w := oneContainer(t, "shop")
	write := w.write
	write(10)
	first := runOnceStdout(t, cfg)
	if got := heads(first); strings.Join(got, ",") != strings.Join(seqNames("c", 0, 10), ",") {
		t.Fatalf("first run shipped %v", got)
	}
	firstIDs := map[string]string{}
	for _, r := range first {
		firstIDs[r.Log] = r.ID
	}

	write(5) // unread when the file is rotated and compressed
	a := rotate(t, c)
	write(10)
	b := rotate(t, c)
	gzipRotation(t, a)
	write(10)
	rotate(t, c)
	gzipRotation(t, b)
	write(10)

	got := runOnceStdout(t, cfg)
	if want := seqNames("c", 10, w.n); strings.Join(heads(got), ",") != strings.Join(want, ",") {
		t.Errorf("shipped %v\nwant     %v", heads(got), want)
	}
	fromGz := 0
	for _, r := range got {
		if strings.HasSuffix(r.Source.Path, ".gz") {
			fromGz++
		}
	}
	if fromGz != 15 {
		t.Errorf("%d records read from compressed rotations, want 15 (5 unread of the first file, 10 of the second)", fromGz)
	}
	// A third run finds nothing new.
	if again := runOnceStdout(t, cfg); len(again) != 0 {
		t.Errorf("third run shipped %d records again: %v", len(again), heads(again))
	}
}

// TestCompressedRotationKeepsRecordIDs: lines read from a plain rotation
// and, after a crash, again from its compressed copy carry the same ids, so
// the copies are harmless downstream.
func TestCompressedRotationKeepsRecordIDs(t *testing.T) {
	node := &nodelog.Node{Root: t.TempDir()}
	c, _ := node.AddContainer("shop", "p", "c", nodelog.CRI)
	cfg := testConfig(t, node, nil, nil)
	for k := range 20 {
		_ = c.Write(time.Now(), "stdout", message("c", k, 60))
	}
	a := rotate(t, c)
	for k := 20; k < 25; k++ {
		_ = c.Write(time.Now(), "stdout", message("c", k, 60))
	}
	// A run that reads the rotation as a plain file, without saving its
	// checkpoint afterwards (as a crash would).
	cfgA := cfg
	cfgA.CheckpointDir = t.TempDir()
	notFirstRun(t, cfgA)
	plainRun := runOnceStdout(t, cfgA)
	ids := map[string]string{}
	for _, r := range plainRun {
		ids[r.Log] = r.ID
	}
	if len(ids) != 25 {
		t.Fatalf("plain run shipped %d distinct lines, want 25", len(ids))
	}
	gzipRotation(t, a)
	cfgB := cfg
	cfgB.CheckpointDir = t.TempDir()
	if first := runOnceStdout(t, cfgB); len(first) != 5 {
		// A node's very first run reads current files only.
		t.Errorf("first run on a new node shipped %d records, want the current file's 5", len(first))
	}
	// Read the compressed copy for real: a follower without a checkpoint on a
	// node that has run before reads every rotation.
	cfgC := cfg
	cfgC.CheckpointDir = t.TempDir()
	notFirstRun(t, cfgC)
	all := runOnceStdout(t, cfgC)
	if len(all) != 25 {
		t.Fatalf("compressed run shipped %d records, want 25: %v", len(all), heads(all))
	}
	for _, r := range all {
		if ids[r.Log] != r.ID {
			t.Errorf("%s: id %s from %s, %s when read plain", heads([]schemas.Record{r})[0], r.ID, r.Source.Path, ids[r.Log])
		}
	}
}

// TestHeldFilesPolicy: a tenant's topic is missing, so its reader is held
// back while kubelet rotates three times. With a compressed copy of each
// rotation on disk, releasing the held plain files loses nothing; without
// one, the lines of the released files are counted lost (by reason
// released) and everything else is delivered once the topic exists.
func TestHeldFilesPolicy(t *testing.T) {
	for _, compressed := range []bool{true, false} {
		t.Run(fmt.Sprintf("compressed=%v", compressed), func(t *testing.T) {
			cluster := newCluster(t)
			brokers := cluster.ListenAddrs()
			node := &nodelog.Node{Root: t.TempDir()}
			c, _ := node.AddContainer("late", "p", "c", nodelog.CRI)
			w := &numbered{c: c}
			write := w.write
			write(20)
			r := startShipper(t, testConfig(t, node, brokers, map[string]string{
				"SLUICE_SHIPPER_HELD_FILES_MAX_BYTES": "1",
			}), Options{})
			rotated := rotateWhileHeldBack(t, r, c, w)
			// Kubelet compresses (or, past its file limit, deletes) the
			// first two rotations; the reader is still at the first.
			for _, p := range rotated[:2] {
				if compressed {
					gzipRotation(t, p)
				} else if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
			}
			lostLines := r.sh.m.lostLines.WithLabelValues("late", "released")
			if compressed {
				testwait.For(t, 20*time.Second, "the held files to be swapped for their compressed copies", func() (bool, string) {
					gz := 0
					for _, st := range r.sh.followerList() {
						st.mu.Lock()
						for _, f := range st.files {
							if f.gz != nil {
								gz++
							}
						}
						st.mu.Unlock()
					}
					return gz == 2, ""
				})
			} else {
				testwait.For(t, 20*time.Second, "the released lines to be counted", func() (bool, string) { return testutil.ToFloat64(lostLines) >= 40, "" })
			}
			cons := newConsumer(t, brokers, "logs.raw.late")
			kafkatest.CreateTopics(t, cons.cl, 1, "logs.raw.late")
			// The first file and the two rotations after it hold 60 lines;
			// 20 of them are in the file the reader had open (held too).
			want := w.n
			if !compressed {
				want = w.n - int(testutil.ToFloat64(lostLines))
			}
			got := cons.waitFor(30*time.Second, "the lines not lost", func(l []line) bool {
				seen := map[string]bool{}
				for _, x := range l {
					seen[x.rec.Log] = true
				}
				return len(seen) >= want
			})
			seen := map[string]bool{}
			for _, x := range got {
				seen[x.rec.Log] = true
			}
			lost := int(testutil.ToFloat64(lostLines))
			if len(seen)+lost != w.n {
				t.Errorf("%d lines written, %d delivered, %d counted lost: some went unaccounted", w.n, len(seen), lost)
			}
			if compressed && lost != 0 {
				t.Errorf("%d lines counted lost although every rotation had a compressed copy", lost)
			}
			if !compressed && lost < 40 {
				t.Errorf("%d lines counted lost; the two deleted rotations held 40", lost)
			}
			t.Logf("%d lines written, %d delivered, %d lost (released)", w.n, len(seen), lost)
		})
	}
}

// TestUnterminatedMessagesFlushed: messages whose end never comes (a CRI
// writer that crashed after a P line, a CRI progress bar, a docker prompt
// without its newline, a docker progress bar, a file whose last line has no
// newline) are shipped, flagged partial, once their file has been quiet for
// the flush timeout; the checkpoint moves past them, so a restart ships
// none of them again and loses nothing after them.
func TestUnterminatedMessagesFlushed(t *testing.T) {
	cluster := newCluster(t, "logs.raw.shop")
	brokers := cluster.ListenAddrs()
	node := &nodelog.Node{Root: t.TempDir()}
	cfg := testConfig(t, node, brokers, map[string]string{"SLUICE_SHIPPER_PARTIAL_FLUSH_TIMEOUT": "500ms"})
	ts := "2026-11-21T10:00:00.000000000Z"
	add := func(pod string, f nodelog.Format) *nodelog.Container {
		c, err := node.AddContainer("shop", pod, "c", f)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	crashed, bar, prompt, dbar, raw := add("crashed", nodelog.CRI), add("bar", nodelog.CRI), add("prompt", nodelog.Docker), add("dbar", nodelog.Docker), add("raw", nodelog.CRI)
	write := func(c *nodelog.Container, s string) {
		if err := c.WriteRaw([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	write(crashed, ts+" stdout F crashed#0 before\n"+ts+" stdout P crashed#1 half a message\n")
	write(bar, ts+" stdout F bar#0 start\n"+ts+" stdout P bar#1 10%"+"\n"+ts+" stdout P  20%\n"+ts+" stdout P  30%\n")
	write(prompt, `{"log":"prompt#0 hello\n","stream":"stdout","time":"`+ts+`"}`+"\n"+`{"log":"prompt#1 password: ","stream":"stdout","time":"`+ts+`"}`+"\n")
	write(dbar, `{"log":"dbar#1 [===","stream":"stderr","time":"`+ts+`"}`+"\n"+`{"log":"===","stream":"stderr","time":"`+ts+`"}`+"\n")
	write(raw, ts+" stdout F raw#0 whole\n"+ts+" stdout F raw#1 no newline yet")

	r := startShipper(t, cfg, Options{})
	cons := newConsumer(t, brokers, "logs.raw.shop")
	want := map[string]bool{ // message head -> partial
		"crashed#0": false, "crashed#1": true, "bar#0": false, "bar#1": true,
		"prompt#0": false, "prompt#1": true, "dbar#1": true, "raw#0": false, "raw#1": true,
	}
	count := func(l []line) map[string]int {
		n := map[string]int{}
		for _, x := range l {
			head, _, _ := strings.Cut(x.rec.Log, " ")
			n[head]++
		}
		return n
	}
	got := cons.waitFor(15*time.Second, "every message, the unterminated ones flushed", func(l []line) bool { return len(count(l)) >= len(want) })
	for _, x := range got {
		head, _, _ := strings.Cut(x.rec.Log, " ")
		partial, ok := want[head]
		if !ok {
			t.Errorf("unexpected record %q", x.rec.Log)
			continue
		}
		if x.rec.Partial != partial {
			t.Errorf("%q: partial=%v, want %v", x.rec.Log, x.rec.Partial, partial)
		}
	}
	for _, x := range got {
		switch head, _, _ := strings.Cut(x.rec.Log, " "); head {
		case "bar#1":
			if x.rec.Log != "bar#1 10% 20% 30%" {
				t.Errorf("progress bar shipped as %q, want its parts joined", x.rec.Log)
			}
		case "dbar#1":
			if x.rec.Log != "dbar#1 [======" || x.rec.Stream != "stderr" {
				t.Errorf("docker progress bar shipped as %q on %s", x.rec.Log, x.rec.Stream)
			}
		}
	}
	if f := testutil.ToFloat64(r.sh.m.partialFlushes.WithLabelValues("shop")); f < 4 {
		t.Errorf("partial_flushes_total = %v, want at least 4", f)
	}

	// Restart: nothing shipped again; the ends that come now are messages
	// of their own.
	r.stop(t)
	write(crashed, ts+" stdout F crashed#2 after the restart\n")
	write(bar, ts+" stdout F bar#2 done\n")
	write(prompt, `{"log":"prompt#2 ok\n","stream":"stdout","time":"`+ts+`"}`+"\n")
	write(raw, "\n"+ts+" stdout F raw#2 next\n")
	r2 := startShipper(t, cfg, Options{})
	defer r2.stop(t)
	for _, h := range []string{"crashed#2", "bar#2", "prompt#2", "raw#2"} {
		want[h] = false
	}
	got = cons.waitFor(15*time.Second, "the lines written after the restart", func(l []line) bool { return len(count(l)) >= len(want) })
	for head, n := range count(got) {
		if n != 1 {
			t.Errorf("%s shipped %d times, want once", head, n)
		}
	}
}

// TestDamagedAndDeletedRotations: of the files a follower had not read when
// the shipper came back, one was deleted and one compressed rotation is cut
// short. What can be read is shipped, the rest is counted lost (bytes: the
// lines cannot be counted), and nothing stops the follower.
func TestDamagedAndDeletedRotations(t *testing.T) {
	cfg, c, w := oneContainer(t, "shop")
	write := w.write
	write(10)
	if got := runOnceStdout(t, cfg); len(got) != 10 {
		t.Fatalf("first run shipped %d lines, want 10", len(got))
	}
	// Deleted unread: the checkpointed file, with 5 lines after the
	// checkpoint.
	write(5)
	gone := rotate(t, c)
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	// Damaged: a rotation whose compressed copy is cut in the middle.
	write(200)
	damaged := rotate(t, c)
	gzipRotation(t, damaged)
	gz, err := os.ReadFile(damaged + ".gz")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(damaged+".gz", gz[:len(gz)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	write(10) // the current file

	var out bytes.Buffer
	r := startShipper(t, cfg, Options{Stdout: &out, Once: true})
	if err := <-r.done; err != nil {
		t.Fatal(err)
	}
	r.cancel = nil
	lines := strings.Count(out.String(), "\n")
	if lines < 10+1 || lines >= 10+200 {
		t.Errorf("shipped %d records; want the current file's 10 and the readable head of the damaged rotation", lines)
	}
	if !strings.Contains(out.String(), fmt.Sprintf(`"c#%d `, w.n-1)) {
		t.Error("the current file's last line was not shipped")
	}
	// The deleted file had no unread bytes when the checkpoint last saw it
	// (the 5 lines came after): nothing can be counted for it but the miss.
	if d := testutil.ToFloat64(r.sh.m.damagedFiles.WithLabelValues("shop")); d != 1 {
		t.Errorf("damaged_files_total = %v, want 1", d)
	}
	if m := testutil.ToFloat64(r.sh.m.checkpointMisses.WithLabelValues("shop")); m != 1 {
		t.Errorf("checkpoint_misses_total = %v, want 1", m)
	}
}

// TestOldestUnshippedAge: the age gauge stays near zero for a tenant whose
// container writes all the time and is delivered, and grows for a tenant
// whose topic is missing, so that an alert on it finds the stalled tenant
// and not the busy one.
func TestOldestUnshippedAge(t *testing.T) {
	cluster := newCluster(t, "logs.raw.busy")
	node := &nodelog.Node{Root: t.TempDir()}
	busy, _ := node.AddContainer("busy", "p", "c", nodelog.CRI)
	stalled, _ := node.AddContainer("stalled", "p", "c", nodelog.CRI)
	_ = stalled.Write(time.Now(), "stdout", "waiting for a topic")
	r := startShipper(t, testConfig(t, node, cluster.ListenAddrs(), map[string]string{"SLUICE_SHIPPER_SHUTDOWN_TIMEOUT": "1s"}), Options{})
	for n := range 300 { // 3 s of 100 lines/s
		_ = busy.Write(time.Now(), "stdout", message("c", n, 100))
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // a checkpoint round updates the gauges
	busyAge := testutil.ToFloat64(r.sh.m.unshippedAge.WithLabelValues("busy"))
	stalledAge := testutil.ToFloat64(r.sh.m.unshippedAge.WithLabelValues("stalled"))
	// Loose bounds for a loaded machine: the busy tenant is acknowledged
	// within milliseconds, the stalled one has waited 3s.
	if busyAge > 1.5 {
		t.Errorf("oldest unshipped age of the busy, delivered tenant = %.1fs, want under 1.5s", busyAge)
	}
	if stalledAge < 2.5 {
		t.Errorf("oldest unshipped age of the stalled tenant = %.1fs, want at least 2.5s", stalledAge)
	}
}

// TestDescriptorsWithABrokenTenant: descriptors are short (room for 16
// files on a node of 60 containers), and the tenant with most containers
// has no topic. Its followers, held back, give their descriptors back, so the
// healthy tenant's containers still get theirs and every healthy line is
// delivered.
func TestDescriptorsWithABrokenTenant(t *testing.T) {
	cluster := newCluster(t, "logs.raw.good")
	brokers := cluster.ListenAddrs()
	node := &nodelog.Node{Root: t.TempDir()}
	var lost, good []*nodelog.Container
	for i := range 40 {
		c, _ := node.AddContainer("lost", fmt.Sprintf("lost-%d", i), "c", nodelog.CRI)
		_ = c.Write(time.Now(), "stdout", message(c.Pod, 0, 60))
		lost = append(lost, c)
	}
	for i := range 20 {
		c, _ := node.AddContainer("good", fmt.Sprintf("good-%d", i), "c", nodelog.CRI)
		good = append(good, c)
	}
	cfg := testConfig(t, node, brokers, map[string]string{"SLUICE_SHIPPER_SHUTDOWN_TIMEOUT": "1s"})
	sh, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	sh.fdLimit = 16
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sh.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	cons := newConsumer(t, brokers, "logs.raw.good")
	const rounds = 5
	for r := range rounds {
		for _, c := range append(good, lost[:5]...) {
			_ = c.Write(time.Now(), "stdout", message(c.Pod, r+1, 60))
		}
		time.Sleep(200 * time.Millisecond)
	}
	want := len(good) * rounds
	got := cons.waitFor(30*time.Second, "every healthy line", func(l []line) bool {
		seen := map[string]bool{}
		for _, x := range l {
			seen[x.rec.Log] = true
		}
		return len(seen) >= want
	})
	if open := sh.fdsOpen.Load(); open > sh.fdLimit {
		t.Errorf("%d files open, over the bound of %d", open, sh.fdLimit)
	}
	t.Logf("%d healthy lines delivered in %d records; fd_limit waits %v", want, len(got),
		testutil.ToFloat64(sh.m.openErrors.WithLabelValues("fd_limit")))
}

// TestIdleFollowersHoldNoGoroutine: once 300 containers have been read and
// delivered, the shipper runs no goroutine for any of them.
func TestIdleFollowersHoldNoGoroutine(t *testing.T) {
	cluster := newCluster(t, "logs.raw.shop")
	node := &nodelog.Node{Root: t.TempDir()}
	for i := range 300 {
		c, _ := node.AddContainer("shop", fmt.Sprintf("p-%d", i), "c", nodelog.CRI)
		_ = c.Write(time.Now(), "stdout", message(c.Pod, 0, 60))
	}
	before := runtime.NumGoroutine()
	r := startShipper(t, testConfig(t, node, cluster.ListenAddrs(), nil), Options{})
	testwait.For(t, 20*time.Second, "every line delivered", func() (bool, string) {
		return testutil.ToFloat64(r.sh.m.recordsProduced.WithLabelValues("shop")) >= 300, ""
	})
	// The shipper's own: loops, watcher, Kafka client; none per follower.
	testwait.Eventually(t, 10*time.Second, "fewer than 50 goroutines more than before the shipper started, for 300 idle containers", func() (bool, string) {
		n := runtime.NumGoroutine() - before
		return n < 50, fmt.Sprintf("%d more", n)
	})
}
