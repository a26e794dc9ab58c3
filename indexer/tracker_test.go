package indexer

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func fetchOf(topic string, partition int32, hw int64, offsets ...int64) kgo.Fetches {
	fp := kgo.FetchPartition{Partition: partition, HighWatermark: hw}
	for _, o := range offsets {
		fp.Records = append(fp.Records, &kgo.Record{Topic: topic, Partition: partition, Offset: o, LeaderEpoch: 3})
	}
	return kgo.Fetches{{Topics: []kgo.FetchTopic{{Topic: topic, Partitions: []kgo.FetchPartition{fp}}}}}
}

func tenantOfTest(string) string { return "shop" }

// TestTrackerCommitPoint: the commit point covers exactly the records
// below the first one not done, whatever order they finish in.
func TestTrackerCommitPoint(t *testing.T) {
	tr := newTracker()
	now := time.Now()
	// Offsets with a gap (a transaction marker) between 11 and 13.
	tk := tr.register(fetchOf("logs.parsed.shop", 0, 20, 10, 11, 13, 14), nil, tenantOfTest, now)
	if len(tk) != 4 {
		t.Fatalf("%d tickets", len(tk))
	}
	parts := map[string][]int32{"logs.parsed.shop": {0}}
	// Only records handed to a worker count as in flight.
	if n := tr.inFlight(parts); n != 0 {
		t.Fatalf("in flight %d before dispatch", n)
	}
	tr.dispatched([]item{{tk: tk[0]}, {tk: tk[1]}, {tk: tk[2]}, {tk: tk[3]}})
	point := func() int64 {
		cp := tr.commitPoints(nil)
		if eo, ok := cp["logs.parsed.shop"][0]; ok {
			return eo.Offset
		}
		return -1
	}
	tr.done([]ticket{tk[1], tk[3]})
	if got := point(); got != -1 {
		t.Fatalf("commit point %d before the first record is done", got)
	}
	tr.done([]ticket{tk[0]})
	if got := point(); got != 12 {
		t.Fatalf("commit point %d, want 12 (after 11)", got)
	}
	// More records while some are in flight.
	tk2 := tr.register(fetchOf("logs.parsed.shop", 0, 20, 15, 16), nil, tenantOfTest, now)
	tr.dispatched([]item{{tk: tk2[0]}, {tk: tk2[1]}})
	stats := tr.tenantStats(now.Add(time.Second))
	if s := stats["shop"]; s.pending != 3 || s.lag != 3 || s.age != time.Second {
		t.Fatalf("stats %+v", s)
	}
	tr.done([]ticket{tk[2], tk2[0]})
	if got := point(); got != 16 {
		t.Fatalf("commit point %d, want 16", got)
	}
	cp := tr.commitPoints(nil)
	if cp["logs.parsed.shop"][0].Epoch != 3 {
		t.Fatalf("epoch %d", cp["logs.parsed.shop"][0].Epoch)
	}
	tr.committed(cp)
	if len(tr.commitPoints(nil)) != 0 {
		t.Fatal("committed point offered again")
	}
	// Revoked: later marks change nothing, the partition is forgotten.
	if n := tr.inFlight(parts); n != 1 {
		t.Fatalf("in flight %d", n)
	}
	tr.drop(parts)
	if !tr.isGone(tk2[1]) {
		t.Fatal("not gone")
	}
	tr.done([]ticket{tk2[1]})
	if len(tr.commitPoints(nil)) != 0 || tr.inFlight(parts) != 0 {
		t.Fatal("a dropped partition is still tracked")
	}
	// A new assignment starts a new state.
	tk3 := tr.register(fetchOf("logs.parsed.shop", 0, 20, 16), nil, tenantOfTest, now)
	tr.done(tk3)
	if got := point(); got != 17 {
		t.Fatalf("after reassignment: %d", got)
	}
}

// TestTrackerWindowReuse: a long stream of records through a small window
// keeps its memory bounded and its commit point exact.
func TestTrackerWindowReuse(t *testing.T) {
	tr := newTracker()
	var inFlight []ticket
	next := int64(0)
	for round := 0; round < 1000; round++ {
		offs := []int64{next, next + 1, next + 2}
		next += 3
		inFlight = append(inFlight, tr.register(fetchOf("t", 1, next, offs...), nil, tenantOfTest, time.Now())...)
		// Finish all but the newest 5, newest first.
		if len(inFlight) > 5 {
			old := inFlight[:len(inFlight)-5]
			for i := len(old) - 1; i >= 0; i-- {
				tr.done(old[i : i+1])
			}
			inFlight = append([]ticket(nil), inFlight[len(inFlight)-5:]...)
		}
	}
	p := tr.parts[topicPartition{"t", 1}]
	if got := p.commit.Offset; got != next-5 {
		t.Fatalf("commit point %d, want %d", got, next-5)
	}
	if cap(p.slots) > 64 {
		t.Fatalf("window grew to %d slots", cap(p.slots))
	}
}
