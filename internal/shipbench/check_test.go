package shipbench

import (
	"bufio"
	"context"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func bigText(seq, n int) string {
	head := "seq=" + strconv.Itoa(seq) + " big=1 len=" + strconv.Itoa(n) + " "
	tail := " eob=" + strconv.Itoa(seq)
	return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
}

func TestCheck(t *testing.T) {
	ok := func(c *Check) {
		c.Add("a", "I1121 10:00:00.000000 1 x.go:1] seq=0 hello")
		c.Add("b", `{"msg":"seq=1 hi"}`)
		c.Add("c", bigText(2, 20000))
	}
	for _, tc := range []struct {
		name  string
		lines int
		add   func(c *Check)
		ok    bool
		check func(r Result) bool
	}{
		{"all once", 3, func(c *Check) {}, true, func(r Result) bool { return r.Seen == 3 && r.BigWhole == 1 && r.Bytes > 20000 }},
		{"same copy twice", 3, func(c *Check) { c.Add("b", `{"msg":"seq=1 hi"}`) }, true, func(r Result) bool { return r.Dups == 1 && r.Records == 4 }},
		{"copy with another id", 3, func(c *Check) { c.Add("z", `{"msg":"seq=1 hi"}`) }, false, func(r Result) bool { return r.DupIDs == 1 }},
		{"no seq", 3, func(c *Check) { c.Add("d", "xseq=5 eob=2") }, false, func(r Result) bool { return r.NoSeq == 1 }},
		{"merged", 5, func(c *Check) { c.Add("d", "seq=3 seq=4") }, false, func(r Result) bool { return r.Merged == 1 && r.Seen == 4 && r.Missing == 1 }},
		{"out of range", 3, func(c *Check) { c.Add("d", "seq=99") }, false, func(r Result) bool { return r.OutOfRange == 1 }},
		{"missing", 4, func(c *Check) {}, false, func(r Result) bool { return r.Missing == 1 && strings.Contains(r.Err().Error(), "seq=3: missing") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCheck(tc.lines)
			ok(c)
			tc.add(c)
			r := c.Result()
			if (r.Err() == nil) != tc.ok || !tc.check(r) {
				t.Errorf("%+v: err %v", r, r.Err())
			}
		})
	}

	c := NewCheck(3)
	c.Add("a", "seq=0")
	c.Add("b", bigText(1, 20000)[:16384])       // the first piece alone
	c.Add("c", "seq=2 big=1 len=20000 x eob=2") // short
	if r := c.Result(); r.BigBroken != 2 || r.Err() == nil {
		t.Errorf("broken long messages: %+v", r)
	}
}

func TestRunBroker(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- RunBroker(ctx, pw, 3, "logs.raw.bench") }()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), BrokerPrefix)
	if !ok {
		t.Fatalf("first line %q", line)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("logs.raw.bench"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
	defer pcancel()
	if err := cl.ProduceSync(pctx, &kgo.Record{Value: []byte("seq=0"), Partition: 2}).FirstErr(); err != nil {
		t.Fatalf("produce to partition 2: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
