package shipper

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelogs/sluice/internal/config"
	"github.com/sluicelogs/sluice/internal/nodelog"
	"github.com/sluicelogs/sluice/internal/testwait"
	"github.com/sluicelogs/sluice/schemas"
)

// Tests of the shipper's settings and failure handling, each against real
// components: kfake through franz-go, real files written by nodelog.

// drain lets a short while pass, then polls for about a second more and
// returns everything collected: an extra copy of a record, or a record
// that should not be there, shows up.
func (c *consumer) drain() []line {
	time.Sleep(300 * time.Millisecond)
	deadline := time.Now().Add(time.Second)
	var got []line
	c.waitFor(2*time.Second, "", func(l []line) bool {
		got = l
		return time.Now().After(deadline)
	})
	return got
}

// countSeqs counts the records per "<name>#<n>" head.
func countSeqs(lines []line) map[string]int {
	out := map[string]int{}
	for _, l := range lines {
		head, _, _ := strings.Cut(l.rec.Log, " ")
		out[head]++
	}
	return out
}

// checkCounts compares the records delivered per head with want; a head
// delivered but not wanted is reported with why it should not have been.
func checkCounts(t *testing.T, got, want map[string]int, why string) {
	t.Helper()
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if got[k] != want[k] {
			t.Errorf("%s delivered %d times, want %d", k, got[k], want[k])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if want[k] == 0 {
			t.Errorf("%s delivered %d times, want none: %s", k, got[k], why)
		}
	}
}

// waitOpen waits until the shipper holds n log files open: a follower that
// starts at the end of its file takes that end when it opens the file.
func waitOpen(t *testing.T, r *running, n int) {
	t.Helper()
	testwait.For(t, 20*time.Second, fmt.Sprintf("%d log files open", n), func() (bool, string) {
		return testutil.ToFloat64(r.sh.m.filesOpen) >= float64(n), ""
	})
}

// TestReadFromTail: with SLUICE_SHIPPER_READ_FROM=tail, a node's first run
// skips the lines already in the files and ships those written afterwards;
// a container that appears later is read from its start. With head, the
// default, the existing lines are shipped too.
func TestReadFromTail(t *testing.T) {
	for _, mode := range []string{"tail", "head"} {
		t.Run(mode, func(t *testing.T) {
			cluster := newCluster(t, "logs.raw.shop")
			brokers := cluster.ListenAddrs()
			node := &nodelog.Node{Root: t.TempDir()}
			old, _ := node.AddContainer("shop", "old", "app", nodelog.CRI)
			for n := range 10 {
				_ = old.Write(time.Now(), "stdout", message("old", n, 60))
			}
			env := map[string]string{}
			if mode == "tail" {
				env["SLUICE_SHIPPER_READ_FROM"] = "tail"
			}
			r := startShipper(t, testConfig(t, node, brokers, env), Options{})
			// Ready comes after the scan, but the follower takes the end of
			// the file when it opens it, in its own goroutine, possibly
			// after Ready: a line written in between would be skipped.
			waitOpen(t, r, 1)
			for n := 10; n < 15; n++ {
				_ = old.Write(time.Now(), "stdout", message("old", n, 60))
			}

			// A container that appears later, its lines already written
			// when the shipper finds it: the symlink comes last.
			late, err := node.AddContainer("shop", "late", "app", nodelog.CRI)
			if err != nil {
				t.Fatal(err)
			}
			target, err := os.Readlink(late.LinkPath())
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(late.LinkPath()); err != nil {
				t.Fatal(err)
			}
			for n := range 5 {
				_ = late.Write(time.Now(), "stdout", message("late", n, 60))
			}
			if err := os.Symlink(target, late.LinkPath()); err != nil {
				t.Fatal(err)
			}

			want := map[string]int{}
			from := 10
			if mode == "head" {
				from = 0
			}
			for n := from; n < 15; n++ {
				want[fmt.Sprintf("old#%d", n)] = 1
			}
			for n := range 5 {
				want[fmt.Sprintf("late#%d", n)] = 1
			}
			cons := newConsumer(t, brokers, "logs.raw.shop")
			cons.waitFor(20*time.Second, "the expected lines", atLeast(len(want)))
			checkCounts(t, countSeqs(cons.drain()), want, "read_from="+mode+" skips lines written before the first run")
		})
	}
}

// TestIgnoreOlder: a file without a checkpoint that was not written for
// longer than SLUICE_SHIPPER_IGNORE_OLDER is read from its end (counted in
// files_skipped_total{reason="older"}); its new lines are shipped. A recent
// file is read whole.
func TestIgnoreOlder(t *testing.T) {
	cluster := newCluster(t, "logs.raw.shop")
	brokers := cluster.ListenAddrs()
	node := &nodelog.Node{Root: t.TempDir()}
	stale, _ := node.AddContainer("shop", "stale", "app", nodelog.CRI)
	fresh, _ := node.AddContainer("shop", "fresh", "app", nodelog.CRI)
	for n := range 10 {
		_ = stale.Write(time.Now().Add(-2*time.Hour), "stdout", message("stale", n, 60))
		_ = fresh.Write(time.Now(), "stdout", message("fresh", n, 60))
	}
	longAgo := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(stale.FilePath(), longAgo, longAgo); err != nil {
		t.Fatal(err)
	}
	r := startShipper(t, testConfig(t, node, brokers, map[string]string{
		"SLUICE_SHIPPER_IGNORE_OLDER": "1h",
	}), Options{})
	waitOpen(t, r, 2)
	for n := 10; n < 15; n++ {
		_ = stale.Write(time.Now(), "stdout", message("stale", n, 60))
	}

	want := map[string]int{}
	for n := range 10 {
		want[fmt.Sprintf("fresh#%d", n)] = 1
	}
	for n := 10; n < 15; n++ {
		want[fmt.Sprintf("stale#%d", n)] = 1
	}
	cons := newConsumer(t, brokers, "logs.raw.shop")
	cons.waitFor(20*time.Second, "the recent file and the old file's new lines", atLeast(len(want)))
	checkCounts(t, countSeqs(cons.drain()), want, "it was in a file older than SLUICE_SHIPPER_IGNORE_OLDER")
	if n := testutil.ToFloat64(r.sh.m.filesSkipped.WithLabelValues("older")); n != 1 {
		t.Errorf(`files_skipped_total{reason="older"} = %v, want 1 (the old file only)`, n)
	}
}

// checkpointState is what tells one save of the checkpoint file from the
// next.
type checkpointState struct {
	savedAt time.Time
	mtime   time.Time
	offsets map[string]int64
}

func readCheckpointState(t *testing.T, dir string) checkpointState {
	t.Helper()
	path := filepath.Join(dir, checkpointFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc checkpoints
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("checkpoint file: %v", err)
	}
	st := checkpointState{savedAt: doc.SavedAt, mtime: fi.ModTime(), offsets: map[string]int64{}}
	for _, p := range doc.Followers {
		st.offsets[p.Key] = p.Offset
	}
	return st
}

// TestCheckpointSavedOnlyOnChange: with nothing new, the checkpoint file is
// not rewritten every SLUICE_SHIPPER_CHECKPOINT_INTERVAL; once a new line
// is delivered, it is.
func TestCheckpointSavedOnlyOnChange(t *testing.T) {
	cluster := newCluster(t, "logs.raw.shop")
	brokers := cluster.ListenAddrs()
	node := &nodelog.Node{Root: t.TempDir()}
	c, _ := node.AddContainer("shop", "p", "c", nodelog.CRI)
	for n := range 5 {
		_ = c.Write(time.Now(), "stdout", message("c", n, 60))
	}
	const interval = 100 * time.Millisecond
	cfg := testConfig(t, node, brokers, map[string]string{"SLUICE_SHIPPER_CHECKPOINT_INTERVAL": interval.String()})
	startShipper(t, cfg, Options{})
	cons := newConsumer(t, brokers, "logs.raw.shop")
	cons.waitFor(20*time.Second, "the first lines", atLeast(5))
	var before checkpointState
	testwait.Eventually(t, 20*time.Second, "the checkpoint at the end of the file", func() (bool, string) {
		before = readCheckpointState(t, cfg.CheckpointDir)
		return before.offsets[c.LinkPath()] == c.Size(), ""
	})

	// Idle for ten intervals: nothing changed, nothing is written.
	time.Sleep(10 * interval)
	idle := readCheckpointState(t, cfg.CheckpointDir)
	if !idle.savedAt.Equal(before.savedAt) || !idle.mtime.Equal(before.mtime) {
		t.Errorf("checkpoint rewritten while idle: saved_at %v -> %v, mtime %v -> %v",
			before.savedAt, idle.savedAt, before.mtime, idle.mtime)
	}

	// A new line: saved once it is delivered.
	_ = c.Write(time.Now(), "stdout", message("c", 5, 60))
	cons.waitFor(20*time.Second, "the new line", atLeast(6))
	var after checkpointState
	testwait.Eventually(t, 20*time.Second, "the checkpoint to move to the new end of the file", func() (bool, string) {
		after = readCheckpointState(t, cfg.CheckpointDir)
		return after.offsets[c.LinkPath()] == c.Size(), ""
	})
	if !after.savedAt.After(before.savedAt) || after.mtime.Equal(before.mtime) {
		t.Errorf("checkpoint not rewritten after a delivery: saved_at %v -> %v, mtime %v -> %v",
			before.savedAt, after.savedAt, before.mtime, after.mtime)
	}
}

// problemLines returns the lines of a Validate error whose variable is
// name, and checks that every line is a *config.Problem.
func problemLines(t *testing.T, err error, name string) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if strings.HasPrefix(l, name+": ") {
			out = append(out, l)
		}
	}
	var p *config.Problem
	if !errors.As(err, &p) {
		t.Errorf("error is not a *config.Problem: %v", err)
	}
	return out
}

// TestConfigValidation: inside Kubernetes (KUBERNETES_SERVICE_HOST set) the
// node name must be set; the new settings' problems name their variable.
func TestConfigValidation(t *testing.T) {
	node := &nodelog.Node{Root: t.TempDir()}

	t.Run("node name in kubernetes", func(t *testing.T) {
		t.Setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
		cfg := testConfig(t, node, nil, map[string]string{"SLUICE_NODE_NAME": ""})
		err := cfg.Validate()
		if err == nil {
			t.Fatal("Validate() = nil inside Kubernetes without SLUICE_NODE_NAME, want a problem naming it")
		}
		if got := problemLines(t, err, "SLUICE_NODE_NAME"); len(got) != 1 {
			t.Errorf("Validate():\n%v\nwant one problem naming SLUICE_NODE_NAME", err)
		}
		if _, err := New(cfg, Options{}); err == nil || !strings.Contains(err.Error(), "SLUICE_NODE_NAME") {
			t.Errorf("New() = %v, want an error naming SLUICE_NODE_NAME", err)
		}
		cfg = testConfig(t, node, nil, map[string]string{"SLUICE_NODE_NAME": "node-a"})
		if err := cfg.Validate(); err != nil {
			t.Errorf("Validate() with SLUICE_NODE_NAME set = %v, want nil", err)
		}
	})

	t.Run("node name outside kubernetes", func(t *testing.T) {
		t.Setenv("KUBERNETES_SERVICE_HOST", "")
		cfg := testConfig(t, node, nil, map[string]string{"SLUICE_NODE_NAME": ""})
		if err := cfg.Validate(); err != nil {
			t.Errorf("Validate() outside Kubernetes without SLUICE_NODE_NAME = %v, want nil (the host name is used)", err)
		}
	})

	for _, tt := range []struct {
		env  map[string]string
		name string
	}{
		{map[string]string{"SLUICE_SHIPPER_READ_FROM": "middle"}, "SLUICE_SHIPPER_READ_FROM"},
		{map[string]string{"SLUICE_SHIPPER_TENANT_MAX_BUFFERED_BYTES": "1000"}, "SLUICE_SHIPPER_TENANT_MAX_BUFFERED_BYTES"},
		{map[string]string{"SLUICE_SHIPPER_TENANT_MAX_BUFFERED_BYTES": "8388608"}, "SLUICE_SHIPPER_TENANT_MAX_BUFFERED_BYTES"}, // over the whole budget
		{map[string]string{"SLUICE_SHIPPER_IGNORE_OLDER": "-1s"}, "SLUICE_SHIPPER_IGNORE_OLDER"},
		{map[string]string{"SLUICE_SHIPPER_CLOSE_INACTIVE": "0s"}, "SLUICE_SHIPPER_CLOSE_INACTIVE"},
		{map[string]string{"SLUICE_SHIPPER_HELD_FILES_MAX_BYTES": "-1"}, "SLUICE_SHIPPER_HELD_FILES_MAX_BYTES"},
		{map[string]string{"SLUICE_SHIPPER_DELIVERY_TIMEOUT": "0s"}, "SLUICE_SHIPPER_DELIVERY_TIMEOUT"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("KUBERNETES_SERVICE_HOST", "")
			cfg := testConfig(t, node, nil, tt.env)
			err := cfg.Validate()
			if err == nil {
				t.Fatalf("Validate() with %v = nil, want a problem naming %s", tt.env, tt.name)
			}
			got := problemLines(t, err, tt.name)
			if all := strings.Split(err.Error(), "\n"); len(got) != 1 || len(all) != 1 {
				t.Errorf("Validate() with %v:\n%v\nwant exactly one problem, naming %s", tt.env, err, tt.name)
			}
		})
	}
	// The valid values of the new settings pass.
	for _, env := range []map[string]string{
		{"SLUICE_SHIPPER_READ_FROM": "tail"},
		{"SLUICE_SHIPPER_READ_FROM": "head"},
		{"SLUICE_SHIPPER_TENANT_MAX_BUFFERED_BYTES": "1048576"},
		{"SLUICE_SHIPPER_IGNORE_OLDER": "24h"},
	} {
		t.Setenv("KUBERNETES_SERVICE_HOST", "")
		cfg := testConfig(t, node, nil, env)
		if err := cfg.Validate(); err != nil {
			t.Errorf("Validate() with %v = %v, want nil", env, err)
		}
	}
}

// TestOnceMissingTopicNamesTopic: --once against a tenant whose topic does
// not exist ends within a bounded time with an error naming the topic, and
// the checkpoint stays before the undelivered lines.
func TestOnceMissingTopicNamesTopic(t *testing.T) {
	cluster := newCluster(t)
	node := &nodelog.Node{Root: t.TempDir()}
	c, _ := node.AddContainer("nowhere", "p", "c", nodelog.CRI)
	for n := range 3 {
		_ = c.Write(time.Now(), "stdout", message("c", n, 40))
	}
	cfg := testConfig(t, node, cluster.ListenAddrs(), map[string]string{"SLUICE_SHIPPER_TENANT_RETRY_MAX": "500ms"})
	start := time.Now()
	r := startShipper(t, cfg, Options{Once: true})
	select {
	case err := <-r.done:
		r.cancel = nil
		switch {
		case err == nil:
			t.Error("once mode reported success although nothing was delivered")
		case !strings.Contains(err.Error(), "logs.raw.nowhere"):
			t.Errorf("once mode error does not name the topic logs.raw.nowhere: %v", err)
		default:
			t.Logf("ended after %v: %v", time.Since(start).Round(time.Millisecond), err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("once mode did not end within 15s (SLUICE_SHIPPER_TENANT_RETRY_MAX=500ms)")
	}
	saved, err := checkpointStore{dir: cfg.CheckpointDir}.load()
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := saved[c.LinkPath()]; ok && p.Offset != 0 {
		t.Errorf("checkpoint moved to %d past undelivered lines", p.Offset)
	}
}

// TestOnceMissingTopicProducerSlow: once mode gives up on a tenant whose
// topic is missing within SLUICE_SHIPPER_TENANT_RETRY_MAX of finding it
// missing, however long the producer would take to refuse records for it:
// here the broker never answers a metadata request that names the topic,
// so a record produced to it would wait for the delivery timeout.
func TestOnceMissingTopicProducerSlow(t *testing.T) {
	cluster := newCluster(t)
	unanswered := make(chan struct{})
	t.Cleanup(func() { close(unanswered) }) // before the cluster closes
	cluster.ControlKey(int16(kmsg.Metadata), func(req kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		for _, tp := range req.(*kmsg.MetadataRequest).Topics {
			if tp.Topic != nil && *tp.Topic == "logs.raw.nowhere" {
				cluster.SleepControl(func() { <-unanswered })
				break
			}
		}
		return nil, nil, false
	})
	node := &nodelog.Node{Root: t.TempDir()}
	c, _ := node.AddContainer("nowhere", "p", "c", nodelog.CRI)
	for n := range 3 {
		_ = c.Write(time.Now(), "stdout", message("c", n, 40))
	}
	cfg := testConfig(t, node, cluster.ListenAddrs(), map[string]string{"SLUICE_SHIPPER_TENANT_RETRY_MAX": "500ms"})
	r := startShipper(t, cfg, Options{Once: true})
	select {
	case err := <-r.done:
		r.cancel = nil
		if err == nil || !strings.Contains(err.Error(), "logs.raw.nowhere") {
			t.Errorf("once mode error %v, want one naming the topic logs.raw.nowhere", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("once mode did not end within 15s (SLUICE_SHIPPER_TENANT_RETRY_MAX=500ms)")
	}
}

// TestDanglingSymlinkShippedOnceTargetAppears: a /var/log/containers link
// whose target does not exist yet is retried; once the pods file appears,
// its lines are shipped, and the failed opens are counted.
func TestDanglingSymlinkShippedOnceTargetAppears(t *testing.T) {
	cluster := newCluster(t, "logs.raw.shop")
	brokers := cluster.ListenAddrs()
	node := &nodelog.Node{Root: t.TempDir()}
	c, err := node.AddContainer("shop", "p", "c", nodelog.CRI)
	if err != nil {
		t.Fatal(err)
	}
	// Take the link and the pods directory away; the writer keeps its
	// handle, so lines written now land in the file wherever it is.
	target, err := os.Readlink(c.LinkPath())
	if err != nil {
		t.Fatal(err)
	}
	podDir := filepath.Dir(filepath.Dir(c.FilePath()))
	staging := filepath.Join(node.Root, "staging")
	if err := os.Remove(c.LinkPath()); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(podDir, staging); err != nil {
		t.Fatal(err)
	}
	r := startShipper(t, testConfig(t, node, brokers, nil), Options{})
	for n := range 10 {
		_ = c.Write(time.Now(), "stdout", message("c", n, 60))
	}

	// The link first, dangling; the pods file a second later.
	if err := os.Symlink(target, c.LinkPath()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.LinkPath()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the link is not dangling: %v", err)
	}
	time.Sleep(time.Second)
	t.Logf("after a second of the dangling link: files_tracked %v, open_errors_total{reason=\"not_found\"} %v",
		testutil.ToFloat64(r.sh.m.filesTracked), testutil.ToFloat64(r.sh.m.openErrors.WithLabelValues("not_found")))
	if err := os.Rename(staging, podDir); err != nil {
		t.Fatal(err)
	}
	cons := newConsumer(t, brokers, "logs.raw.shop")
	cons.waitFor(20*time.Second, "the lines written before the target appeared", atLeast(10))
	for n := 10; n < 15; n++ {
		_ = c.Write(time.Now(), "stdout", message("c", n, 60))
	}
	cons.waitFor(20*time.Second, "the lines written after", atLeast(15))
	got := countSeqs(cons.drain())
	for n := range 15 {
		if k := fmt.Sprintf("c#%d", n); got[k] != 1 {
			t.Errorf("%s delivered %d times, want 1", k, got[k])
		}
	}
	if n := testutil.ToFloat64(r.sh.m.openErrors.WithLabelValues("not_found")); n == 0 {
		t.Errorf(`open_errors_total{reason="not_found"} = 0 after a second of a dangling link; want the failed opens counted (a link whose target is missing is not counted as an open error)`)
	}
}

// pollRaw polls cl until want records were received or d passed, and
// returns what it received.
func pollRaw(t *testing.T, cl *kgo.Client, d time.Duration, want int) []*kgo.Record {
	t.Helper()
	var out []*kgo.Record
	for deadline := time.Now().Add(d); len(out) < want && time.Now().Before(deadline); {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { out = append(out, r) })
		cancel()
	}
	return out
}

// batchContains reports whether a produce request carries marker in a
// record batch of the topic named name (or with id id: produce v13 names
// topics by id).
func batchContains(req kmsg.Request, name string, id [16]byte, marker []byte, dec kgo.Decompressor) bool {
	pr, ok := req.(*kmsg.ProduceRequest)
	if !ok {
		return false
	}
	for _, rt := range pr.Topics {
		if rt.Topic != name && (id == [16]byte{} || rt.TopicID != id) {
			continue
		}
		for _, rp := range rt.Partitions {
			var b kmsg.RecordBatch
			if err := b.ReadFrom(rp.Records); err != nil {
				continue
			}
			recs, err := dec.Decompress(b.Records, kgo.CompressionCodecType(b.Attributes&0x07))
			if err != nil {
				continue
			}
			if bytes.Contains(recs, marker) {
				return true
			}
		}
	}
	return false
}

// TestRejectedRecordDeadLettered: Kafka refuses one record for good
// (INVALID_RECORD, not retriable). It is not resent in a loop: it is
// counted lost and as a rejected produce error, a dead letter carrying it
// appears on the tenant's dead-letter topic, and the lines after it are
// delivered.
func TestRejectedRecordDeadLettered(t *testing.T) {
	const raw, dlq = "logs.raw.rej", "logs.dlq.rej"
	cluster := newCluster(t, raw, dlq)
	brokers := cluster.ListenAddrs()
	adm := kadm.NewClient(rawConsumer(t, brokers, raw))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	details, err := adm.ListTopics(ctx, raw)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	rawID := [16]byte(details[raw].ID)

	// Every produce request carrying the refused line in a batch of the
	// raw topic is answered INVALID_RECORD; Hits counts them.
	bad := message("c", 10, 60) + " REFUSED-BY-THE-BROKER"
	dec := kgo.DefaultDecompressor()
	refusals := cluster.Fault(kfake.Fault{
		Keys:  []kmsg.Key{kmsg.Produce},
		Topic: raw,
		Err:   kerr.InvalidRecord,
		Count: -1,
		When: func(req kmsg.Request) bool {
			return batchContains(req, raw, rawID, []byte("REFUSED-BY-THE-BROKER"), dec)
		},
	})

	node := &nodelog.Node{Root: t.TempDir()}
	c, _ := node.AddContainer("rej", "p", "c", nodelog.CRI)
	r := startShipper(t, testConfig(t, node, brokers, nil), Options{})
	cons := newConsumer(t, brokers, raw)
	for n := range 10 {
		_ = c.Write(time.Now(), "stdout", message("c", n, 60))
	}
	cons.waitFor(20*time.Second, "the lines before the refused one", atLeast(10))

	// The refused line alone in its batch, then more lines.
	_ = c.Write(time.Now(), "stdout", bad)
	lost := r.sh.m.lostLines.WithLabelValues("rej", reasonRejected)
	testwait.Eventually(t, 10*time.Second, `lost_lines_total{reason="rejected"}`, func() (bool, string) { return testutil.ToFloat64(lost) > 0, "" })
	for n := 11; n < 21; n++ {
		_ = c.Write(time.Now(), "stdout", message("c", n, 60))
	}
	cons.waitFor(10*time.Second, "the lines after the refused one", atLeast(20))
	got := cons.drain()
	seen := countSeqs(got)
	for n := range 21 {
		k := fmt.Sprintf("c#%d", n)
		want := 1
		if n == 10 {
			want = 0
		}
		if seen[k] != want {
			t.Errorf("%s delivered %d times to %s, want %d", k, seen[k], raw, want)
		}
	}

	if n := testutil.ToFloat64(lost); n != 1 {
		t.Errorf(`lost_lines_total{tenant="rej",reason="rejected"} = %v, want 1`, n)
	}
	if n := testutil.ToFloat64(r.sh.m.produceErrors.WithLabelValues("rej", reasonRejected)); n != 1 {
		t.Errorf(`produce_errors_total{tenant="rej",reason="rejected"} = %v, want 1`, n)
	}
	t.Logf("the refused line was in %d produce requests", refusals.Hits())
	if h := refusals.Hits(); h < 1 || h > 2 {
		t.Errorf("the refused line was sent in %d produce requests; want 1 (at most 2), not a resend loop", h)
	}
	for _, reason := range []string{reasonOther, reasonTimeout, reasonTooLarge} {
		if n := testutil.ToFloat64(r.sh.m.produceErrors.WithLabelValues("rej", reason)); n != 0 {
			t.Errorf("produce_errors_total{reason=%q} = %v, want 0", reason, n)
		}
	}

	// The dead letter.
	recs := pollRaw(t, rawConsumer(t, brokers, dlq), 10*time.Second, 1)
	if len(recs) != 1 {
		t.Fatalf("%d records on %s, want 1 dead letter", len(recs), dlq)
	}
	var d schemas.DeadLetter
	if err := json.Unmarshal(recs[0].Value, &d); err != nil {
		t.Fatalf("dead letter is not JSON: %v: %q", err, recs[0].Value)
	}
	if d.Stage != "shipper" || d.Reason != "rejected" || d.Topic != raw || !strings.Contains(d.Error, "INVALID_RECORD") {
		t.Errorf("dead letter stage %q reason %q topic %q error %q; want shipper, rejected, %s, INVALID_RECORD", d.Stage, d.Reason, d.Topic, d.Error, raw)
	}
	if string(recs[0].Key) != c.ID {
		t.Errorf("dead letter key %q, want the container id", recs[0].Key)
	}
	payload := []byte(d.Payload)
	if d.PayloadEncoding == "base64" {
		if payload, err = base64.StdEncoding.DecodeString(d.Payload); err != nil {
			t.Fatal(err)
		}
	}
	rec, _, err := schemas.NewDecoder().Decode(context.Background(), payload)
	if err != nil {
		t.Fatalf("dead letter payload is not the record: %v", err)
	}
	if rec.Log != bad || rec.Tenant != "rej" || rec.Kubernetes.ContainerName != "c" {
		t.Errorf("dead letter payload: log %q tenant %q container %q; want the refused line", rec.Log, rec.Tenant, rec.Kubernetes.ContainerName)
	}
	if n := testutil.ToFloat64(r.sh.m.deadLetters.WithLabelValues("rej", reasonRejected)); n != 1 {
		t.Errorf(`dead_letters_total{reason="rejected"} = %v, want 1`, n)
	}
}

// randomText is n characters of base64's alphabet: text compression cannot
// squeeze much, so that Kafka's size limit applies to about what was
// written.
func randomText(rng *rand.Rand, n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(b)
}

// TestBatchesFollowTopicMaxMessageBytes: the tenant's topic takes at most
// 20,000 bytes per record batch. A 100 KB message is truncated to fit, and
// many small lines are batched within the limit: all arrive, with no
// message_too_large loop and no cut in the record cap.
//
// kfake enforces max.message.bytes on produce (00_produce.go: a partition's
// record batch longer than the topic's max.message.bytes is answered
// MESSAGE_TOO_LARGE), on the batch as sent, compressed. The text is random
// so that compression does not hide an oversized batch.
func TestBatchesFollowTopicMaxMessageBytes(t *testing.T) {
	const topic, limit = "logs.raw.big", 20000
	cluster := newCluster(t)
	brokers := cluster.ListenAddrs()
	adm := kadm.NewClient(rawConsumer(t, brokers, topic))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	resp, err := adm.CreateTopic(ctx, 3, 1, map[string]*string{"max.message.bytes": kadm.StringPtr(fmt.Sprint(limit))}, topic)
	cancel()
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic: %v %v", err, resp.Err)
	}

	node := &nodelog.Node{Root: t.TempDir()}
	c, _ := node.AddContainer("big", "p", "c", nodelog.CRI)
	rng := rand.New(rand.NewPCG(1, 2))
	const small = 600
	written := 0
	writeSmall := func(k int) {
		for range k {
			_ = c.Write(time.Now(), "stdout", fmt.Sprintf("small#%d %s", written, randomText(rng, 200)))
			written++
		}
	}
	long := "long#0 " + randomText(rng, 100000-len("long#0 "))
	writeSmall(small / 2)
	_ = c.Write(time.Now(), "stdout", long)
	r := startShipper(t, testConfig(t, node, brokers, nil), Options{})
	writeSmall(small / 2)

	cl := rawConsumer(t, brokers, topic)
	recs := pollRaw(t, cl, 20*time.Second, small+1)
	recs = append(recs, pollRaw(t, cl, time.Second, 1<<30)...) // anything extra
	dec := schemas.NewDecoder()
	seen := map[string]int{}
	for _, kr := range recs {
		rec, _, err := dec.Decode(context.Background(), kr.Value)
		if err != nil {
			t.Errorf("undecodable record: %v", err)
			continue
		}
		head, _, _ := strings.Cut(rec.Log, " ")
		seen[head]++
		if size := len(kr.Key) + len(kr.Value); size > limit {
			t.Errorf("%s: record of %d bytes on a topic taking %d", head, size, limit)
		}
		if head != "long#0" {
			if rec.Truncated {
				t.Errorf("%s truncated", head)
			}
			continue
		}
		if !rec.Truncated || rec.OriginalSize != int64(len(long)) || len(rec.Log) >= limit || !strings.HasPrefix(long, rec.Log) {
			t.Errorf("long message: truncated=%v original_size=%d len=%d prefix=%v; want truncated, %d, under %d, a prefix of the message",
				rec.Truncated, rec.OriginalSize, len(rec.Log), strings.HasPrefix(long, rec.Log), len(long), limit)
		}
		t.Logf("long message: %d of %d bytes kept, record %d bytes", len(rec.Log), rec.OriginalSize, len(kr.Value))
	}
	if seen["long#0"] != 1 {
		t.Errorf("long message delivered %d times, want 1", seen["long#0"])
	}
	for n := range written {
		if k := fmt.Sprintf("small#%d", n); seen[k] != 1 {
			t.Errorf("%s delivered %d times, want 1", k, seen[k])
		}
	}
	if v, ok := r.sh.batchMax.Load(topic); !ok || v.(int32) != limit {
		t.Errorf("producer batch size for %s is %v, want the topic's max.message.bytes %d", topic, v, limit)
	}
	if n := testutil.ToFloat64(r.sh.m.produceErrors.WithLabelValues("big", reasonTooLarge)); n > 1 {
		t.Errorf(`produce_errors_total{reason="message_too_large"} = %v, want 0 (at most 1)`, n)
	}
	if n := testutil.ToFloat64(r.sh.m.capReductions.WithLabelValues("big")); n != 0 {
		t.Errorf("record_cap_reductions_total = %v, want 0: the topic's limit was known before the first record", n)
	}
	if n := testutil.ToFloat64(r.sh.m.truncations); n != 1 {
		t.Errorf("truncations_total = %v, want 1", n)
	}
}

// TestCloseInactive: with SLUICE_SHIPPER_CLOSE_INACTIVE set, an idle file
// is closed; a later write reopens it by identity and continues at its
// position: no line twice, none missing. Twice over.
func TestCloseInactive(t *testing.T) {
	cluster := newCluster(t, "logs.raw.shop")
	brokers := cluster.ListenAddrs()
	node := &nodelog.Node{Root: t.TempDir()}
	c, _ := node.AddContainer("shop", "p", "c", nodelog.CRI)
	r := startShipper(t, testConfig(t, node, brokers, map[string]string{
		"SLUICE_SHIPPER_CLOSE_INACTIVE": "300ms",
	}), Options{})
	cons := newConsumer(t, brokers, "logs.raw.shop")
	n := 0
	for round := range 3 {
		for range 10 {
			_ = c.Write(time.Now(), "stdout", message("c", n, 60))
			n++
		}
		cons.waitFor(20*time.Second, fmt.Sprintf("round %d's lines", round), atLeast(n))
		if round == 2 {
			break
		}
		if !testwait.Eventually(t, 10*time.Second, fmt.Sprintf("files_open to drop to 0 after idling (round %d)", round), func() (bool, string) {
			return testutil.ToFloat64(r.sh.m.filesOpen) == 0, ""
		}) {
			break
		}
	}
	got := countSeqs(cons.drain())
	for k := range n {
		if key := fmt.Sprintf("c#%d", k); got[key] != 1 {
			t.Errorf("%s delivered %d times, want 1", key, got[key])
		}
	}
	if len(got) != n {
		t.Errorf("%d distinct lines delivered, want %d", len(got), n)
	}
}

// TestBatchesShrinkWhenTopicLimitUnreadable: the shipper may not read the
// topic's max.message.bytes (DescribeConfigs refused), and the topic takes
// less than the producer's default batch. Kafka then refuses whole batches
// as too large; the shipper halves its batches (and records) until they
// fit, and every line is delivered, none counted lost.
func TestBatchesShrinkWhenTopicLimitUnreadable(t *testing.T) {
	const topic, limit = "logs.raw.tight", 20000
	cluster := newCluster(t)
	brokers := cluster.ListenAddrs()
	adm := kadm.NewClient(rawConsumer(t, brokers, topic))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	resp, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"max.message.bytes": kadm.StringPtr(fmt.Sprint(limit))}, topic)
	cancel()
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic: %v %v", err, resp.Err)
	}
	cluster.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.DescribeConfigs}, Err: kerr.TopicAuthorizationFailed, Count: -1})

	node := &nodelog.Node{Root: t.TempDir()}
	c, _ := node.AddContainer("tight", "p", "c", nodelog.CRI)
	rng := rand.New(rand.NewPCG(3, 4))
	const lines = 600
	for n := range lines {
		_ = c.Write(time.Now(), "stdout", fmt.Sprintf("small#%d %s", n, randomText(rng, 200)))
	}
	r := startShipper(t, testConfig(t, node, brokers, nil), Options{})
	cl := rawConsumer(t, brokers, topic)
	dec := schemas.NewDecoder()
	seen := map[string]bool{}
	records := 0
	testwait.Eventually(t, 30*time.Second, "every line delivered", func() (bool, string) {
		for _, kr := range pollRaw(t, cl, time.Second, 1<<30) {
			rec, _, err := dec.Decode(context.Background(), kr.Value)
			if err != nil {
				t.Fatal(err)
			}
			head, _, _ := strings.Cut(rec.Log, " ")
			seen[head] = true
			records++
		}
		return len(seen) >= lines, fmt.Sprintf("%d of %d lines", len(seen), lines)
	})
	if len(seen) != lines {
		t.Errorf("%d of %d lines delivered", len(seen), lines)
	}
	t.Logf("%d lines delivered in %d records, %v record and batch cuts", len(seen), records, testutil.ToFloat64(r.sh.m.capReductions.WithLabelValues("tight")))
	if n := testutil.ToFloat64(r.sh.m.lostLines.WithLabelValues("tight", reasonRejected)); n != 0 {
		t.Errorf("%v lines counted lost: batches too large for the topic were taken for records that cannot fit", n)
	}
	if n := testutil.ToFloat64(r.sh.m.capReductions.WithLabelValues("tight")); n == 0 {
		t.Error("record_cap_reductions_total = 0: the refusals were not seen (test did not test)")
	}
}
