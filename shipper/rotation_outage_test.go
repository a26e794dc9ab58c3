package shipper

import (
	"strings"
	"testing"
	"time"

	"github.com/sluicelogs/sluice/internal/nodelog"
)

// TestRotationsDuringOutage: while Kafka is away and the shipper's buffer
// is full, a container's log is rotated several times, faster than the
// shipper reads; once Kafka is back every line of every rotation arrives,
// once, in order per container.
func TestRotationsDuringOutage(t *testing.T) {
	startBroker := restartableBroker(t)
	broker := startBroker()
	brokers := broker.ListenAddrs()
	node := &nodelog.Node{Root: t.TempDir()}
	cfg := testConfig(t, node, brokers, map[string]string{
		"SLUICE_SHIPPER_MAX_LINE_BYTES":     "4096",
		"SLUICE_SHIPPER_MAX_BUFFERED_BYTES": "65536",
	})
	c, err := node.AddContainer("shop", "p0", "app", nodelog.CRI)
	if err != nil {
		t.Fatal(err)
	}
	startShipper(t, cfg, Options{})

	written := 0
	write := func(k int) {
		for range k {
			if err := c.Write(time.Now(), "stdout", message("p0", written, 200)); err != nil {
				t.Fatal(err)
			}
			written++
		}
	}
	write(50)
	cons := newConsumer(t, brokers, "logs.raw.shop")
	cons.waitFor(20*time.Second, "lines before the outage", atLeast(50))
	cons.cl.Close()

	broker.Close()
	// Each segment is far more than the buffer holds: the reader is stuck
	// in the first one while the others are rotated away behind it.
	for range 4 {
		write(1000)
		if _, err := c.Rotate(); err != nil {
			t.Fatal(err)
		}
	}
	write(100)
	time.Sleep(time.Second)

	broker = startBroker()
	defer broker.Close()
	cons = newConsumer(t, brokers, "logs.raw.shop")
	got := cons.waitFor(60*time.Second, "every line after the outage", func(l []line) bool {
		seen := map[string]bool{}
		for _, x := range l {
			seen[x.rec.Log[:strings.IndexByte(x.rec.Log, ' ')]] = true
		}
		return len(seen) == written
	})
	next := 0
	for _, x := range got {
		_, n, ok := seqOf(x.rec.Log)
		if !ok {
			t.Fatalf("record without a sequence: %.60q", x.rec.Log)
		}
		if n < next-1 {
			t.Errorf("p0#%d after p0#%d: out of order or repeated", n, next-1)
		}
		next = max(next, n+1)
	}
	if len(got) != written {
		t.Errorf("%d records for %d lines", len(got), written)
	}
	t.Logf("%d lines over 5 files", written)
}
