package shipper

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluicelogs/sluice/internal/nodelog"
)

// BenchmarkShipInProcess ships b.N pre-written ~300-byte CRI lines from 8
// containers into an in-process Kafka with Once. The CPU figures include
// the broker's; cmd/sluice's BenchmarkShipperDrain measures the shipper
// process alone. Useful with -cpuprofile and -memprofile.
func BenchmarkShipInProcess(b *testing.B) {
	cluster := newCluster(b, "logs.raw.bench")
	node := &nodelog.Node{Root: b.TempDir()}
	var total int64
	for i := range 8 {
		c, err := node.AddContainer("bench", fmt.Sprintf("app-%d", i), "app", nodelog.CRI)
		if err != nil {
			b.Fatal(err)
		}
		buf := make([]byte, 0, 1<<20)
		for n := i; n < b.N; n += 8 {
			buf = append(buf, c.Encode(time.Now(), "stdout", fmt.Sprintf(`{"level":"info","msg":"request served","method":"GET","path":"/api/v1/orders/%d","status":200,"duration_ms":12.5,"bytes":5321,"user_agent":"Mozilla/5.0 (X11; Linux x86_64)","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","pod":"%s"}`, n, c.Pod))...)
			if len(buf) > 1<<20-1024 || n+8 >= b.N {
				total += int64(len(buf))
				if err := c.WriteRaw(buf); err != nil {
					b.Fatal(err)
				}
				buf = buf[:0]
			}
		}
	}
	cfg := testConfig(b, node, cluster.ListenAddrs(), nil)
	b.SetBytes(total / int64(max(b.N, 1)))
	b.ReportAllocs()
	b.ResetTimer()
	r := startShipper(b, cfg, Options{Once: true})
	if err := <-r.done; err != nil {
		b.Fatal(err)
	}
	r.cancel = nil
	b.StopTimer()
	if got := int(testutilCounter(r, "bench")); got != b.N {
		b.Fatalf("produced %d, want %d", got, b.N)
	}
}
