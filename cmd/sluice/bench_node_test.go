package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/internal/apptest"
	"github.com/sluicelogs/sluice/internal/kafkatest"
	"github.com/sluicelogs/sluice/internal/nodelog"
	"github.com/sluicelogs/sluice/internal/testwait"
	"github.com/sluicelogs/sluice/loadtest"
)

// BenchmarkShipperBusyNode runs the real shipper binary on a node with
// 5,000 containers in 50 namespaces (each its own tenant and topic), most of
// them idle, and reports what the node pays for it: resident memory (peak
// and at the end), CPU while every container is idle, CPU while 50 of them
// write 1,000 lines/s in all, open descriptors and goroutines. It runs once
// whatever b.N; use -benchtime 1x. Kafka runs in the benchmark process, so
// its work is not counted.
func BenchmarkShipperBusyNode(b *testing.B) {
	const (
		namespaces = 50
		perNS      = 100
		busy       = 50
		busyRate   = 1000 // lines/s over the busy containers
		phase      = 20 * time.Second
	)
	apptest.Binary(b)
	var topics []string
	for i := range namespaces {
		topics = append(topics, fmt.Sprintf("logs.raw.ns-%02d", i))
	}
	brokers := kafkatest.Cluster(b, kafkatest.Topics(1, topics...)).ListenAddrs()

	node := &nodelog.Node{Root: b.TempDir()}
	var containers []*nodelog.Container
	for i := range namespaces * perNS {
		c, err := node.AddContainer(fmt.Sprintf("ns-%02d", i%namespaces), fmt.Sprintf("pod-%04d", i), "app", nodelog.CRI)
		if err != nil {
			b.Fatal(err)
		}
		for k := range 3 {
			if err := c.Write(time.Now(), "stdout", fmt.Sprintf("%s#%d starting up", c.Pod, k)); err != nil {
				b.Fatal(err)
			}
		}
		containers = append(containers, c)
	}
	port := freeTCPPort(b)
	env := append(shipperEnv(node, brokers, "warn"), fmt.Sprintf("SLUICE_TELEMETRY_ADDR=127.0.0.1:%d", port))
	b.ResetTimer()
	p := apptest.Sluice(b, env, "shipper")
	defer p.Terminate(b)
	pid := p.Pid()
	stopPeak := make(chan struct{})
	peak := sampleProc(pid, time.Now(), 100*time.Millisecond, stopPeak)

	started := time.Now()
	want := int64(len(containers) * 3)
	for producedAll(b, brokers, topics) < want {
		if time.Since(started) > 3*time.Minute {
			b.Fatalf("only %d of %d startup lines shipped after 3m", producedAll(b, brokers, topics), want)
		}
		time.Sleep(200 * time.Millisecond)
	}
	startup := time.Since(started)
	time.Sleep(5 * time.Second) // let the first checkpoints and the startup work settle

	idleCPU := cpuOver(b, pid, phase, nil)

	var wg sync.WaitGroup
	stopWriting := make(chan struct{})
	written := 0
	busyCPU := cpuOver(b, pid, phase, func() {
		wg.Go(func() {
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for n := 0; ; n++ {
				select {
				case <-stopWriting:
					written = n * busyRate / 100
					return
				case <-tick.C:
				}
				for k := range busyRate / 100 {
					c := containers[(n*busyRate/100+k)%busy]
					_ = c.Write(time.Now(), "stdout", `{"level":"info","msg":"request served","path":"/api/v1/orders/`+strconv.Itoa(n)+`","status":200}`)
				}
			}
		})
	})
	close(stopWriting)
	wg.Wait()
	testwait.For(b, time.Until(started.Add(6*time.Minute)), "the busy lines to be shipped", func() (bool, string) {
		n := producedAll(b, brokers, topics)
		return n >= want+int64(written), fmt.Sprintf("%d of %d lines", n, want+int64(written))
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	sc, err := loadtest.Scrape(ctx, fmt.Sprintf("127.0.0.1:%d", port))
	cancel()
	if err != nil {
		b.Fatal(err)
	}
	m := func(name string) float64 { return sc[name][""] }
	close(stopPeak)
	b.StopTimer()

	b.ReportMetric(startup.Seconds(), "startup-s")
	b.ReportMetric(idleCPU*100, "idle-cpu-%core")
	b.ReportMetric(busyCPU*100, "busy-cpu-%core")
	b.ReportMetric(float64(peakHWM(<-peak))/(1<<20), "peak-rss-MiB")
	b.ReportMetric(m("process_resident_memory_bytes")/(1<<20), "rss-MiB")
	b.ReportMetric(m("go_memstats_heap_inuse_bytes")/(1<<20), "heap-inuse-MiB")
	b.ReportMetric(m("process_open_fds"), "fds")
	b.ReportMetric(m("go_goroutines"), "goroutines")
	b.ReportMetric(m("sluice_shipper_files_polled"), "polled")
}

// producedAll sums the end offsets of topics.
func producedAll(b *testing.B, brokers []string, topics []string) int64 {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), topics...)
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

// cpuOver measures a process's CPU over d, as a fraction of one core;
// during (when not nil) runs at the start.
func cpuOver(b *testing.B, pid int, d time.Duration, during func()) float64 {
	u0, err := apptest.ReadProc(pid)
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	if during != nil {
		during()
	}
	time.Sleep(d)
	u1, err := apptest.ReadProc(pid)
	if err != nil {
		b.Fatal(err)
	}
	return (u1.CPU - u0.CPU).Seconds() / time.Since(t0).Seconds()
}

// freeTCPPort returns a loopback port that was free a moment ago.
func freeTCPPort(b *testing.B) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
