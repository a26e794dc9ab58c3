package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/internal/apptest"
	"github.com/sluicelogs/sluice/internal/shipbench"
	"github.com/sluicelogs/sluice/schemas"
)

// The shipper benchmarks measure the real binary, at its default
// settings, on the standard node workload (internal/shipbench): 40
// containers of CRI logs in the kubelet layout, about 380 bytes a line, JSON
// and plain text, 0.05 % of messages longer than 16 KiB. The Kafka broker
// (kfake, logs.raw.bench with 10 partitions) runs in a process of its own:
// this test binary started again as a broker. Only the shipper process is
// measured: its CPU time (user plus system) and its peak resident set
// (VmHWM, sampled from /proc while it runs; the rusage's maxrss is no good,
// because for a child started with vfork+exec Linux folds the parent's
// high-water mark into it). After the run the topic is read back and every
// message must be there exactly once (a copy with the same record id is
// allowed), long messages whole.
//
//	go test -run '^$' -bench Shipper -benchtime 1x ./cmd/sluice/    (make bench-shipper)
//
// Settings of the benchmarks themselves:
//
//	SLUICE_BENCH_LINES         messages in the drain (default 2,000,000)
//	SLUICE_BENCH_LIVE_SECONDS  how long the live case writes (default 60)
//	SLUICE_BENCH_DIR           write the drain's workload there and keep it
//	                           (its var/log must not exist yet)
//	SLUICE_BENCH_GCTRACE=1     run the shipper with GODEBUG=gctrace=1 and
//	                           report its collections and the bytes it
//	                           allocates per line (off by default: the trace
//	                           costs the shipper some 40 small writes per
//	                           collection, well under 1 % of its CPU time)
//
// MB are 10^6 bytes.

const (
	benchTopic      = "logs.raw.bench"
	benchPartitions = 10
	// benchBrokerEnv, set in a test binary's environment, makes it a Kafka
	// broker for the benchmarks instead of running tests:
	// "<partitions>:<topic>".
	benchBrokerEnv = "SLUICE_BENCH_BROKER"
)

// runBenchBroker serves as a benchmark's broker and exits when this process
// was started as one (see benchBrokerEnv); otherwise it returns at once.
// The broker stops when its standard input closes (the benchmark is done
// or gone) or on SIGTERM.
func runBenchBroker() {
	spec, ok := os.LookupEnv(benchBrokerEnv)
	if !ok {
		return
	}
	ps, topic, _ := strings.Cut(spec, ":")
	partitions, err := strconv.Atoi(ps)
	if err != nil || partitions < 1 || topic == "" {
		fmt.Fprintf(os.Stderr, "%s=%q: want <partitions>:<topic>\n", benchBrokerEnv, spec)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop()
	}()
	if err := shipbench.RunBroker(ctx, os.Stdout, partitions, topic); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// benchBroker is the broker process of one benchmark run.
type benchBroker struct {
	addr   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr bytes.Buffer
	done   chan error
}

func startBenchBroker(b *testing.B) *benchBroker {
	b.Helper()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	br := &benchBroker{done: make(chan error, 1)}
	br.cmd = exec.Command(exe, "-test.run=^$")
	br.cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d:%s", benchBrokerEnv, benchPartitions, benchTopic))
	br.cmd.Stderr = &br.stderr
	if br.stdin, err = br.cmd.StdinPipe(); err != nil {
		b.Fatal(err)
	}
	stdout, err := br.cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := br.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = br.cmd.Process.Kill()
		_ = br.cmd.Wait()
		b.Fatalf("broker did not start: %v\n%s", err, br.stderr.String())
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), shipbench.BrokerPrefix)
	if !ok {
		b.Fatalf("broker said %q", line)
	}
	br.addr = addr
	go func() { br.done <- br.cmd.Wait() }()
	b.Cleanup(br.stop)
	return br
}

// stop ends the broker: its standard input closes, SIGKILL after 10s.
func (br *benchBroker) stop() {
	if br.stdin == nil {
		return
	}
	_ = br.stdin.Close()
	br.stdin = nil
	select {
	case <-br.done:
	case <-time.After(10 * time.Second):
		_ = br.cmd.Process.Kill()
		<-br.done
	}
}

// benchShipperEnv is the whole environment of a benchmarked shipper: this
// process's, less every SLUICE_ setting and the Go runtime's tuning
// variables, plus only what the benchmark must set, so that it runs at its
// defaults whatever the caller's environment holds.
func benchShipperEnv(glob, checkpoints, brokers string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "SLUICE_"), k == "GOMEMLIMIT", k == "GOGC", k == "GODEBUG", k == "GOMAXPROCS":
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"SLUICE_KAFKA_BROKERS="+brokers,
		"SLUICE_SHIPPER_PATHS="+glob,
		"SLUICE_SHIPPER_CHECKPOINT_DIR="+checkpoints,
		"SLUICE_SHIPPER_TENANT_MAP=*=bench",
		"SLUICE_NODE_NAME=bench",
		"SLUICE_TELEMETRY_ADDR=",
	)
	if os.Getenv("SLUICE_BENCH_GCTRACE") == "1" {
		env = append(env, "GODEBUG=gctrace=1")
	}
	return env
}

// procSample is the shipper's usage at a moment, counted from its start.
type procSample struct {
	at time.Duration
	apptest.ProcStat
}

// sampleProc reads the usage of process pid every interval until stop is
// closed, and then sends the samples on the returned channel.
func sampleProc(pid int, start time.Time, interval time.Duration, stop <-chan struct{}) <-chan []procSample {
	out := make(chan []procSample, 1)
	go func() {
		var samples []procSample
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			if u, err := apptest.ReadProc(pid); err == nil {
				samples = append(samples, procSample{time.Since(start), u})
			}
			select {
			case <-stop:
				out <- samples
				return
			case <-t.C:
			}
		}
	}()
	return out
}

func peakHWM(samples []procSample) int64 {
	var peak int64
	for _, s := range samples {
		peak = max(peak, s.HWM)
	}
	return peak
}

// envInt reads a positive integer benchmark setting.
func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(strings.ReplaceAll(v, "_", ""))
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// readBack reads the topic from its start to the end offsets it has now,
// decodes every record and accounts for it in check, and passes it to each
// (unless nil).
func readBack(b *testing.B, brokers string, check *shipbench.Check, each func(*schemas.Record)) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.ConsumeTopics(benchTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(64<<20), kgo.FetchMaxPartitionBytes(16<<20))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, benchTopic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		b.Fatalf("end offsets: %v", err)
	}
	remaining := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			remaining[o.Partition] = o.Offset
		}
	})
	dec := schemas.NewDecoder()
	var undecodable int
	var firstErr error
	for len(remaining) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			b.Fatalf("%s not read to its end: %d partitions left", benchTopic, len(remaining))
		}
		fs.EachError(func(_ string, p int32, err error) { b.Fatalf("fetch partition %d: %v", p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := remaining[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			if r.Offset == end-1 {
				delete(remaining, r.Partition)
			}
			rec, _, err := dec.Decode(ctx, r.Value)
			if err != nil {
				undecodable++
				firstErr = cmp.Or(firstErr, err)
				return
			}
			check.Add(rec.ID, rec.Log)
			if each != nil {
				each(&rec)
			}
		})
	}
	if undecodable > 0 {
		b.Fatalf("%d records could not be decoded, the first: %v", undecodable, firstErr)
	}
}

// delivered is the number of records in the topic now.
func delivered(ctx context.Context, adm *kadm.Client) (int64, error) {
	ends, err := adm.ListEndOffsets(ctx, benchTopic)
	if err == nil {
		err = ends.Error()
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n, err
}

// gcLine matches a GODEBUG=gctrace=1 line: "gc 12 @0.5s 3%: ..., 9->10->4 MB, ...".
var gcLine = regexp.MustCompile(`^gc (\d+) @.* (\d+)->(\d+)->(\d+) MB`)

// gcTrace reads the shipper's gctrace lines: the number of collections,
// and the heap allocated, in MB, as the sum over collections of the heap
// at the end of one minus the live heap after the one before. The trace
// counts whole MB, so each term is off by less than 1 MB, but the errors
// have no sign and mostly cancel over thousands of collections; the
// allocations after the last collection are not counted.
func gcTrace(logs []byte) (gcs int, allocMB float64) {
	prevLive := 0
	for line := range bytes.Lines(logs) {
		m := gcLine.FindSubmatch(line)
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(string(m[1]))
		end, _ := strconv.Atoi(string(m[3]))
		live, _ := strconv.Atoi(string(m[4]))
		gcs = max(gcs, n)
		allocMB += float64(end - prevLive)
		prevLive = live
	}
	return gcs, allocMB
}

// BenchmarkShipperDrain: the shipper with --once ships the standard
// workload, pre-written (2,000,000 messages, about 760 MB), and exits.
// Writing the workload is not timed. Reported: the shipper's CPU seconds
// per million lines, lines per second (wall clock, start to exit), input
// MB per second, peak resident set and, with SLUICE_BENCH_GCTRACE=1, from
// its GC trace the number of collections and the bytes allocated per line.
func BenchmarkShipperDrain(b *testing.B) {
	g, w, st := drainWorkload(b)
	var sum drainResult
	b.ResetTimer()
	for range b.N {
		sum.add(drainOnce(b, g, w, nil))
	}
	mlines := float64(w.Lines) * float64(b.N) / 1e6
	b.ReportMetric(sum.cpu.Seconds()/mlines, "cpu-s/Mlines")
	b.ReportMetric(mlines*1e6/sum.wall.Seconds(), "lines/s")
	b.ReportMetric(float64(st.Bytes)*float64(b.N)/1e6/sum.wall.Seconds(), "MB/s")
	b.ReportMetric(float64(sum.peak)/1e6, "peak-RSS-MB")
	if sum.gcs > 0 {
		b.ReportMetric(float64(sum.gcs)/float64(b.N), "gcs/op")
		b.ReportMetric(sum.allocMB/mlines, "alloc-B/line") // MB per million lines
	}
}

// drainWorkload writes the drain's workload (SLUICE_BENCH_LINES,
// SLUICE_BENCH_DIR), untimed, and syncs it to disk.
func drainWorkload(b *testing.B) (*shipbench.Generator, shipbench.Workload, shipbench.Stats) {
	apptest.Binary(b) // built before anything is timed
	w := shipbench.Standard()
	w.Lines = envInt(b, "SLUICE_BENCH_LINES", w.Lines)
	root := os.Getenv("SLUICE_BENCH_DIR")
	if root == "" {
		root = b.TempDir()
	} else if _, err := os.Stat(filepath.Join(root, "var", "log")); err == nil {
		b.Fatalf("SLUICE_BENCH_DIR: %s already exists; remove it or choose another directory", filepath.Join(root, "var", "log"))
	}
	began := time.Now()
	g, err := shipbench.New(root, w)
	if err != nil {
		b.Fatal(err)
	}
	if err := g.WriteAll(); err != nil {
		b.Fatal(err)
	}
	if err := g.Close(); err != nil {
		b.Fatal(err)
	}
	// Written back to disk before the shipper starts: the kernel's
	// writeback of 760 MB of dirty pages would otherwise run during the
	// drain and slow it down.
	syscall.Sync()
	st := g.Stats()
	b.Logf("workload: %d containers, %d messages, %d CRI lines, %d long, %d bytes (%.1f a line), written in %s to %s",
		w.Containers, st.Lines, st.CRILines, st.BigLines, st.Bytes, float64(st.Bytes)/float64(st.CRILines),
		time.Since(began).Round(time.Millisecond), root)
	return g, w, st
}

// drainResult is what one drain cost the shipper.
type drainResult struct {
	cpu, wall time.Duration
	peak      int64 // bytes
	gcs       int
	allocMB   float64
}

func (r *drainResult) add(o drainResult) {
	r.cpu += o.cpu
	r.wall += o.wall
	r.peak = max(r.peak, o.peak)
	r.gcs += o.gcs
	r.allocMB += o.allocMB
}

// drainOnce runs the shipper with --once on the workload, to a broker of
// its own, with the extra settings given, checks that every message was
// delivered (passing each record to each, unless nil), and returns what it
// cost. The timer runs only while the shipper does.
func drainOnce(b *testing.B, g *shipbench.Generator, w shipbench.Workload, each func(*schemas.Record), extraEnv ...string) drainResult {
	b.StopTimer()
	br := startBenchBroker(b)
	defer br.stop()
	env := append(benchShipperEnv(g.Node().ContainersGlob(), b.TempDir(), br.addr), extraEnv...)
	b.StartTimer()

	start := time.Now()
	p := apptest.Start(b, apptest.Config{Args: []string{"shipper", "--once"}, Env: env, OnlyEnv: true})
	stop := make(chan struct{})
	samples := sampleProc(p.Pid(), start, 5*time.Millisecond, stop)
	err := p.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(stop)
	if err != nil {
		b.Fatalf("shipper: %v\n%s", err, tail(p.Output(), 40))
	}
	u := p.Usage()
	r := drainResult{
		cpu:  u.CPU(),
		wall: elapsed,
		peak: peakHWM(<-samples),
	}
	r.gcs, r.allocMB = gcTrace([]byte(p.Output()))

	check := shipbench.NewCheck(w.Lines)
	readBack(b, br.addr, check, each)
	res := check.Result()
	if err := res.Err(); err != nil {
		b.Fatalf("%v\nshipper output:\n%s", err, tail(p.Output(), 20))
	}
	b.Logf("shipper: %s user, %s system, %s wall; delivered: %s", u.User.Round(time.Millisecond),
		u.System.Round(time.Millisecond), elapsed.Round(time.Millisecond), res)
	b.StartTimer()
	return r
}

// BenchmarkShipperLive20k: 40 containers of the standard workload write
// 20,000 lines/s in total for 60 s (SLUICE_BENCH_LIVE_SECONDS) to files
// that exist, empty, when the shipper starts; writing starts 3 s after it.
// Once every line is in Kafka the shipper gets SIGTERM. Reported: its CPU
// use in percent of one core and its mean resident set over the steady
// part of the run (from 10 s after writing starts to 5 s before it ends,
// for 60 s), its peak resident set, and its CPU seconds per million lines
// over the whole run.
func BenchmarkShipperLive20k(b *testing.B) {
	apptest.Binary(b)
	const rate = 20000
	seconds := envInt(b, "SLUICE_BENCH_LIVE_SECONDS", 60)
	lines := rate * seconds
	period := time.Duration(seconds) * time.Second
	var cpuPct, rssMB, peakMB, cpuPerM, allocMB float64
	var gcs int
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		w := shipbench.Standard()
		g, err := shipbench.New(b.TempDir(), w)
		if err != nil {
			b.Fatal(err)
		}
		br := startBenchBroker(b)
		cl, err := kgo.NewClient(kgo.SeedBrokers(br.addr))
		if err != nil {
			b.Fatal(err)
		}
		adm := kadm.NewClient(cl)
		env := benchShipperEnv(g.Node().ContainersGlob(), b.TempDir(), br.addr)
		b.StartTimer()

		start := time.Now()
		p := apptest.Start(b, apptest.Config{Args: []string{"shipper"}, Env: env, OnlyEnv: true})
		stop := make(chan struct{})
		samples := sampleProc(p.Pid(), start, 100*time.Millisecond, stop)
		select {
		case <-p.Done():
			b.Fatalf("shipper exited: %v\n%s", p.Wait(), tail(p.Output(), 40))
		case <-time.After(3 * time.Second):
		}
		writeFrom := time.Since(start)
		if err := g.Live(context.Background(), rate, lines, 10*time.Millisecond); err != nil {
			b.Fatal(err)
		}
		writeTo := time.Since(start)
		if err := g.Close(); err != nil {
			b.Fatal(err)
		}
		for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
			n, err := delivered(context.Background(), adm)
			if err == nil && n >= int64(lines) {
				break
			}
			if time.Now().After(deadline) {
				_ = p.Kill()
				b.Fatalf("%d of %d lines in Kafka 2 minutes after the last was written (%v)\n%s", n, lines, err, tail(p.Output(), 20))
			}
		}
		caughtUp := time.Since(start)
		close(stop)
		ss := <-samples
		if err := p.Stop(time.Minute); err != nil {
			b.Fatalf("shipper exit: %v\n%s", err, tail(p.Output(), 40))
		}
		b.StopTimer()
		cl.Close()

		check := shipbench.NewCheck(lines)
		readBack(b, br.addr, check, nil)
		res := check.Result()
		if err := res.Err(); err != nil {
			b.Fatalf("%v\nshipper output:\n%s", err, tail(p.Output(), 20))
		}
		br.stop()

		// The steady window: past the start-up, before the end.
		from, to := writeFrom+period/6, writeTo-period/12
		var first, last *procSample
		var rssSum float64
		var n int
		for i := range ss {
			if s := &ss[i]; s.at >= from && s.at <= to {
				if first == nil {
					first = s
				}
				last = s
				rssSum += float64(s.RSS)
				n++
			}
		}
		if n < 2 || last.at <= first.at {
			b.Fatalf("%d samples in the steady window %s-%s", n, from, to)
		}
		cpuPct += 100 * (last.CPU - first.CPU).Seconds() / (last.at - first.at).Seconds()
		rssMB += rssSum / float64(n) / 1e6
		peakMB = max(peakMB, float64(peakHWM(ss))/1e6)
		cpuPerM += p.Usage().CPU().Seconds() / (float64(lines) / 1e6)
		gn, mb := gcTrace([]byte(p.Output()))
		gcs += gn
		allocMB += mb
		b.Logf("%d lines written from %s to %s, all in Kafka at %s; steady window %s-%s (%d samples); delivered: %s",
			lines, writeFrom.Round(time.Millisecond), writeTo.Round(time.Millisecond), caughtUp.Round(time.Millisecond),
			from.Round(time.Millisecond), to.Round(time.Millisecond), n, res)
	}
	N := float64(b.N)
	b.ReportMetric(cpuPct/N, "cpu-%-core")
	b.ReportMetric(rssMB/N, "rss-MB")
	b.ReportMetric(peakMB, "peak-RSS-MB")
	b.ReportMetric(cpuPerM/N, "cpu-s/Mlines")
	if gcs > 0 {
		b.ReportMetric(float64(gcs)/N, "gcs/op")
		b.ReportMetric(allocMB/(float64(lines)*N/1e6), "alloc-B/line")
	}
}

// tail is the last n lines of a shipper's output, its GC trace left out.
func tail(s string, n int) string {
	var lines []string
	for l := range strings.Lines(s) {
		if !gcLine.MatchString(l) {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines[max(0, len(lines)-n):], "")
}
