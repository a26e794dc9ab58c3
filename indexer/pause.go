package indexer

import (
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Reasons a partition's fetching is paused. A partition is paused while
// any holds it.
const (
	pauseDeadLetters = "dead_letters" // its dead letters cannot be written, or too many wait
	pauseParked      = "parked"       // its documents wait for their index (see parking)
)

// pauser pauses and resumes the fetching of partitions on behalf of
// several holders (the dead-letter writer, the parking), so that one does
// not resume a partition another still holds. Safe for concurrent use.
type pauser struct {
	cl      *kgo.Client // nil in tests: nothing is paused in Kafka
	onPause func(reason string, delta int)

	mu      sync.Mutex
	holders map[topicPartition]map[string]bool
}

func newPauser(cl *kgo.Client, onPause func(reason string, delta int)) *pauser {
	if onPause == nil {
		onPause = func(string, int) {}
	}
	return &pauser{cl: cl, onPause: onPause, holders: map[topicPartition]map[string]bool{}}
}

// hold pauses tp for reason (nothing happens if reason already holds it).
func (p *pauser) hold(tp topicPartition, reason string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	h := p.holders[tp]
	if h[reason] {
		return
	}
	if h == nil {
		h = map[string]bool{}
		p.holders[tp] = h
		if p.cl != nil {
			p.cl.PauseFetchPartitions(map[string][]int32{tp.topic: {tp.partition}})
		}
	}
	h[reason] = true
	p.onPause(reason, 1)
}

// release lets go of tp for reason; the partition resumes once nothing
// holds it.
func (p *pauser) release(tp topicPartition, reason string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	h := p.holders[tp]
	if !h[reason] {
		return
	}
	delete(h, reason)
	p.onPause(reason, -1)
	if len(h) == 0 {
		delete(p.holders, tp)
		if p.cl != nil {
			p.cl.ResumeFetchPartitions(map[string][]int32{tp.topic: {tp.partition}})
		}
	}
}

// held reports whether reason holds tp.
func (p *pauser) held(tp topicPartition, reason string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.holders[tp][reason]
}

// forget releases every hold on partitions that were revoked or lost: a
// client keeps a partition paused across rebalances, and a partition
// assigned again later must be fetched.
func (p *pauser) forget(parts map[string][]int32) {
	for topic, ps := range parts {
		for _, n := range ps {
			tp := topicPartition{topic, n}
			p.mu.Lock()
			reasons := make([]string, 0, len(p.holders[tp]))
			for r := range p.holders[tp] {
				reasons = append(reasons, r)
			}
			p.mu.Unlock()
			for _, r := range reasons {
				p.release(tp, r)
			}
		}
	}
}
