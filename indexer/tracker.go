package indexer

import (
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// tracker follows every consumed record from poll to stored (or
// dead-lettered), per partition, and knows each partition's commit point:
// the offset below which every consumed record is done. Safe for concurrent
// use: the poll loop registers records, bulk workers mark them done, the
// committer and the rebalance callbacks read commit points.
//
// A partition's state lives from its first record after an assignment to
// its revocation (or loss). Records registered against a state that has
// since been dropped complete harmlessly: their marks change nothing, and
// the partition's new state (after a new assignment) starts from what was
// committed.
type tracker struct {
	mu    sync.Mutex
	parts map[topicPartition]*partition
}

type topicPartition struct {
	topic     string
	partition int32
}

// partition is one partition's window of records in flight.
type partition struct {
	tp     topicPartition
	tenant string

	// Guarded by tracker.mu.
	slots     []slot // records in poll order; slots[start:] are in flight or done out of order
	start     int
	base      int64           // sequence number of slots[start]
	commit    kgo.EpochOffset // commit point: every record below Offset is done (Offset -1: nothing yet)
	committed int64           // last commit point known committed
	hw        int64           // last stable offset as of the last fetch
	polled    int64           // offset of the last record registered
	open      int             // records registered and not done
	held      int             // of those, records not yet handed to a worker
	parked    int             // of those, records parked with their index (see parking)
	gone      bool
}

type slot struct {
	offset int64
	epoch  int32
	done   bool
	at     int64 // unix nanoseconds of the poll
}

// ticket identifies a registered record, to mark it done.
type ticket struct {
	p   *partition
	seq int64
}

func newTracker() *tracker { return &tracker{parts: make(map[topicPartition]*partition)} }

// register adds the records of one poll, in order, and returns a ticket per
// record in tickets (reused). tenantOf names a topic's tenant. It must be
// called while rebalances are blocked (kgo.BlockRebalanceOnPoll), so that
// every record belongs to a partition currently assigned.
func (t *tracker) register(fetches kgo.Fetches, tickets []ticket, tenantOf func(string) string, now time.Time) []ticket {
	tickets = tickets[:0]
	at := now.UnixNano()
	t.mu.Lock()
	defer t.mu.Unlock()
	fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
		// Reading read_committed, the end a consumer can reach is the last
		// stable offset (the high watermark counts a transaction marker
		// that is never returned).
		end := fp.LastStableOffset
		if end <= 0 {
			end = fp.HighWatermark
		}
		if len(fp.Records) == 0 {
			if p := t.parts[topicPartition{fp.Topic, fp.Partition}]; p != nil && end > 0 {
				p.hw = end
			}
			return
		}
		tp := topicPartition{fp.Topic, fp.Partition}
		p := t.parts[tp]
		if p == nil {
			p = &partition{tp: tp, tenant: tenantOf(tp.topic), commit: kgo.EpochOffset{Epoch: -1, Offset: -1}, committed: -1}
			t.parts[tp] = p
		}
		p.hw = end
		for _, r := range fp.Records {
			if len(p.slots) == cap(p.slots) && p.start > len(p.slots)/2 {
				n := copy(p.slots, p.slots[p.start:])
				p.slots, p.start = p.slots[:n], 0
			}
			p.slots = append(p.slots, slot{offset: r.Offset, epoch: r.LeaderEpoch, at: at})
			tickets = append(tickets, ticket{p: p, seq: p.base + int64(len(p.slots)-p.start-1)})
			p.polled = r.Offset
			p.open++
			p.held++
		}
	})
	return tickets
}

// done marks records done and advances their partitions' commit points.
func (t *tracker) done(tickets []ticket) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tk := range tickets {
		p := tk.p
		if p.gone {
			continue
		}
		i := p.start + int(tk.seq-p.base)
		if i < p.start || i >= len(p.slots) || p.slots[i].done {
			continue // cannot happen: a ticket is marked once
		}
		p.slots[i].done = true
		p.open--
		for p.start < len(p.slots) && p.slots[p.start].done {
			s := p.slots[p.start]
			if s.offset+1 > p.commit.Offset {
				p.commit = kgo.EpochOffset{Epoch: s.epoch, Offset: s.offset + 1}
			}
			p.start++
			p.base++
		}
		if p.start == len(p.slots) {
			p.slots, p.start = p.slots[:0], 0
		}
	}
}

// commitPoints returns the commit points that moved since they were last
// committed, of the given partitions (nil: all).
func (t *tracker) commitPoints(only map[string][]int32) map[string]map[int32]kgo.EpochOffset {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]map[int32]kgo.EpochOffset{}
	add := func(p *partition) {
		if p == nil || p.gone || p.commit.Offset <= p.committed {
			return
		}
		if out[p.tp.topic] == nil {
			out[p.tp.topic] = map[int32]kgo.EpochOffset{}
		}
		out[p.tp.topic][p.tp.partition] = p.commit
	}
	if only == nil {
		for _, p := range t.parts {
			add(p)
		}
	} else {
		for topic, ps := range only {
			for _, n := range ps {
				add(t.parts[topicPartition{topic, n}])
			}
		}
	}
	return out
}

// committed records that offsets were committed.
func (t *tracker) committed(offsets map[string]map[int32]kgo.EpochOffset) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for topic, ps := range offsets {
		for n, eo := range ps {
			if p := t.parts[topicPartition{topic, n}]; p != nil && eo.Offset > p.committed {
				p.committed = eo.Offset
			}
		}
	}
}

// parked records that a record joined (delta 1) or left (-1) the parking.
func (t *tracker) parked(tk ticket, delta int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !tk.p.gone {
		tk.p.parked += delta
	}
}

// dispatched records that the records of tickets were handed to a worker.
func (t *tracker) dispatched(items []item) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range items {
		if p := items[i].tk.p; p != nil && p.held > 0 {
			p.held--
		}
	}
}

// inFlight returns how many records of the given partitions were handed to
// workers and are not done yet. Parked records do not count: a revocation
// does not wait for an index that refuses them.
func (t *tracker) inFlight(parts map[string][]int32) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for topic, ps := range parts {
		for _, i := range ps {
			if p := t.parts[topicPartition{topic, i}]; p != nil {
				n += p.open - p.held - p.parked
			}
		}
	}
	return n
}

// drop forgets partitions that were revoked or lost: marks of their records
// in flight change nothing from now on.
func (t *tracker) drop(parts map[string][]int32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for topic, ps := range parts {
		for _, i := range ps {
			tp := topicPartition{topic, i}
			if p := t.parts[tp]; p != nil {
				p.gone = true
				delete(t.parts, tp)
			}
		}
	}
}

// isGone reports whether a record's partition was revoked or lost since it
// was registered: retrying it is pointless, the new owner indexes it.
func (t *tracker) isGone(tk ticket) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return tk.p.gone
}

type tenantStat struct {
	lag     int64
	pending int
	age     time.Duration
}

func (t *tracker) tenantStats(now time.Time) map[string]tenantStat {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]tenantStat{}
	for _, p := range t.parts {
		s := out[p.tenant]
		if lag := p.hw - p.polled - 1; lag > 0 {
			s.lag += lag
		}
		if p.open > 0 {
			s.pending += p.open
			if age := now.Sub(time.Unix(0, p.slots[p.start].at)); age > s.age {
				s.age = age
			}
		}
		out[p.tenant] = s
	}
	return out
}
