package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/internal/nodelog"
)

// The shipper benchmarks run the real binary against an in-process Kafka
// and report the child process's own CPU time (from its rusage) and peak
// resident memory, so the broker's work in the benchmark process is not
// counted. The peak comes from VmHWM in /proc/<pid>/status, sampled while
// the child runs: rusage's maxrss is no good here, because for a child
// started with vfork+exec Linux folds the parent's high-water mark into it.

const benchContainers = 8

// benchEnv builds a node with benchContainers containers and the settings
// for a shipper tailing it.
func benchEnv(b *testing.B, brokers []string) (*nodelog.Node, []*nodelog.Container, []string) {
	b.Helper()
	root := b.TempDir()
	node := &nodelog.Node{Root: root}
	var cs []*nodelog.Container
	for i := range benchContainers {
		c, err := node.AddContainer("bench", fmt.Sprintf("app-%d", i), "app", nodelog.CRI)
		if err != nil {
			b.Fatal(err)
		}
		cs = append(cs, c)
	}
	return node, cs, shipperEnv(node, brokers, "warn")
}

// benchLine is a realistic ~300-byte JSON application log line.
func benchLine(c *nodelog.Container, n int) string {
	return `{"level":"info","ts":"2026-11-21T10:15:00.123Z","logger":"http","msg":"request served","method":"GET","path":"/api/v1/orders/` +
		strconv.Itoa(n) + `","status":200,"duration_ms":12.5,"bytes":5321,"user_agent":"Mozilla/5.0 (X11; Linux x86_64)","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","pod":"` + c.Pod + `"}`
}

func producedCount(b *testing.B, brokers []string, topic string) int64 {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), topic)
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

// cpuTime is the user plus system time of an exited child.
func cpuTime(b *testing.B, ps *os.ProcessState) time.Duration {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok {
		b.Fatal("no rusage")
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSS samples a running process's VmHWM every 5ms until stop is
// closed, and returns the last value seen, in KiB.
func peakRSS(pid int, stop <-chan struct{}) <-chan int64 {
	out := make(chan int64, 1)
	go func() {
		var peak int64
		path := fmt.Sprintf("/proc/%d/status", pid)
		for {
			if b, err := os.ReadFile(path); err == nil {
				for _, l := range strings.Split(string(b), "\n") {
					if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
						n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
						peak = max(peak, n)
					}
				}
			}
			select {
			case <-stop:
				out <- peak
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return out
}

// BenchmarkShipperCRI ships b.N pre-written CRI lines (about 300 bytes)
// from 8 containers into Kafka with --once.
func BenchmarkShipperCRI(b *testing.B) {
	sluiceBinary(b)
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(8, "logs.raw.bench"))
	if err != nil {
		b.Fatal(err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	_, cs, env := benchEnv(b, brokers)

	var total int64
	bufs := make([][]byte, len(cs))
	for n := range b.N {
		c := cs[n%len(cs)]
		bufs[n%len(cs)] = append(bufs[n%len(cs)], c.Encode(time.Now(), "stdout", benchLine(c, n))...)
	}
	for i, c := range cs {
		total += int64(len(bufs[i]))
		if err := c.WriteRaw(bufs[i]); err != nil {
			b.Fatal(err)
		}
	}
	bufs = nil

	b.ResetTimer()
	start := time.Now()
	p := startProcess(b, env, "shipper", "--once")
	stop := make(chan struct{})
	peak := peakRSS(p.cmd.Process.Pid, stop)
	err = <-p.done
	elapsed := time.Since(start)
	b.StopTimer()
	close(stop)
	if err != nil {
		b.Fatalf("shipper: %v\n%s", err, p.logs)
	}
	if got := producedCount(b, brokers, "logs.raw.bench"); got != int64(b.N) {
		b.Fatalf("%d records in Kafka, want %d\n%s", got, b.N, p.logs)
	}
	cpu := cpuTime(b, p.cmd.ProcessState)
	b.SetBytes(total / int64(b.N))
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "lines/s")
	b.ReportMetric(float64(b.N)/cpu.Seconds(), "lines/cpu-s")
	b.ReportMetric(float64(total)/1e6/cpu.Seconds(), "MB/cpu-s")
	b.ReportMetric(float64(<-peak)/1024, "peak-rss-MiB")
}

// BenchmarkShipperSteady20k runs the shipper while 8 containers write
// 20,000 lines/s in total for 5 seconds, and reports its CPU use and peak
// resident memory at that rate. One iteration is the whole run.
func BenchmarkShipperSteady20k(b *testing.B) {
	sluiceBinary(b)
	const rate, seconds = 20000, 5
	for range b.N {
		cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(8, "logs.raw.bench"))
		if err != nil {
			b.Fatal(err)
		}
		brokers := cluster.ListenAddrs()
		_, cs, env := benchEnv(b, brokers)
		p := startProcess(b, env, "shipper")
		stop := make(chan struct{})
		peak := peakRSS(p.cmd.Process.Pid, stop)
		time.Sleep(200 * time.Millisecond)

		// Write in 10 ms ticks: rate/100 lines per tick.
		var bytes int64
		n := 0
		tick := time.NewTicker(10 * time.Millisecond)
		for range seconds * 100 {
			<-tick.C
			for range rate / 100 {
				c := cs[n%len(cs)]
				line := c.Encode(time.Now(), "stdout", benchLine(c, n))
				bytes += int64(len(line))
				if err := c.WriteRaw(line); err != nil {
					b.Fatal(err)
				}
				n++
			}
		}
		tick.Stop()
		for deadline := time.Now().Add(30 * time.Second); producedCount(b, brokers, "logs.raw.bench") < int64(n); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				b.Fatalf("not every line delivered within 30s:\n%s", p.logs)
			}
		}
		close(stop)
		rss := <-peak
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		if err := <-p.done; err != nil {
			b.Fatalf("shipper exit: %v\n%s", err, p.logs)
		}
		cluster.Close()
		cpu := cpuTime(b, p.cmd.ProcessState)
		b.ReportMetric(cpu.Seconds()/float64(seconds)*100, "cpu-%")
		b.ReportMetric(float64(rss)/1024, "peak-rss-MiB")
		b.ReportMetric(float64(n)/cpu.Seconds(), "lines/cpu-s")
	}
}
