package shipper

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluicelogs/sluice/internal/kafka"
)

// tenant is what the followers of one tenant on this node share: the topic
// and what Kafka allows on it, a share of the byte budget, a gate that holds
// them all back while the topic is missing or denied, and the metrics.
type tenant struct {
	sh    *Shipper
	name  string
	topic string
	dlq   string
	share *share
	gate  backoffGate
	c     tenantCounters

	ready   chan struct{} // closed once the topic's limits are known (or given up on)
	readyOK atomic.Bool

	// maxRecord is the largest record value the topic takes, from its
	// max.message.bytes; it halves when Kafka refuses a record as too
	// large anyway (down to minRecord).
	maxRecord atomic.Int64

	mu       sync.Mutex
	lastE    error
	batchMax int64     // the producer's batch size for the topic
	lastCut  time.Time // last halving by tooLarge
}

// tenantCounters are one tenant's counters, looked up once.
type tenantCounters struct {
	lines, bytes, produced prometheus.Counter
}

const (
	// defaultMaxMessage is what a topic takes when its max.message.bytes
	// cannot be read: Kafka's default (1 MiB and 12 bytes of batch
	// overhead).
	defaultMaxMessage = kafka.DefaultMaxMessageBytes
	// recordMargin is left of max.message.bytes for the batch and record
	// framing, key and headers.
	recordMargin = 1024
	// minRecord is the smallest record cap a too-large refusal can push a
	// tenant to; a refusal at that size is permanent.
	minRecord = 4096
	// maxBatch bounds a producer batch whatever the topic allows;
	// minBatch is the smallest a too-large refusal can push it to.
	maxBatch = 1 << 20
	minBatch = 16 << 10
)

// tenant returns the tenant named name, creating it (and starting the
// look-up of its topic's limits) on first use.
func (sh *Shipper) tenant(name string) *tenant {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if t, ok := sh.tenants[name]; ok {
		return t
	}
	t := &tenant{
		sh:    sh,
		name:  name,
		topic: sh.topics.Raw(name),
		dlq:   sh.topics.DLQ(name),
		share: sh.budget.newShare(),
		gate:  backoffGate{max: sh.cfg.TenantRetryMax},
		c: tenantCounters{
			lines:    sh.m.linesRead.WithLabelValues(name),
			bytes:    sh.m.bytesRead.WithLabelValues(name),
			produced: sh.m.recordsProduced.WithLabelValues(name),
		},
		ready: make(chan struct{}),
	}
	t.maxRecord.Store(defaultMaxMessage - recordMargin)
	t.batchMax = defaultBatchMax
	sh.m.forTenant(name)
	sh.tenants[name] = t
	go t.lookUpLimits(sh.readCtx)
	return t
}

// lookUpLimits reads the topic's max.message.bytes before anything is
// produced to it: the producer sizes its batches for a topic when it first
// sees the topic's partitions. When the topic does not exist yet it keeps
// looking (every backoff of the gate) until it does.
func (t *tenant) lookUpLimits(ctx context.Context) {
	defer t.markReady()
	for {
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		n, err := t.sh.sink.topicMaxMessage(lctx, t.topic)
		cancel()
		switch {
		case err == nil:
			t.setLimit(n)
			return
		case errors.Is(err, errTopicMissing):
			// The tenant is held back at once, as a record refused for the
			// missing topic would hold it back: its lines wait for the
			// gate's probe. Waiting for the producer to refuse a record
			// is not bounded by the gate: the producer gives up on a
			// missing topic's records only after several metadata
			// refreshes, and when its first look at the topic coincides
			// with another topic's first records (the schema publication
			// at start) it paces them by its metadata min age, 5s each,
			// 20s in all. The limits are looked up again until the topic
			// exists.
			if !t.isReady() {
				t.failed(errTopicMissing)
				t.gate.pause()
				t.sh.logLimited("topic-missing:"+t.name, "the tenant's topic does not exist; its lines are held back until it does", "tenant", t.name, "topic", t.topic)
			}
			t.markReady()
			select {
			case <-ctx.Done():
				return
			case <-time.After(max(t.sh.cfg.TenantRetryMax/4, time.Second)):
			}
		default:
			t.sh.logLimited("limits:"+t.name, "cannot read the topic's max.message.bytes; assuming Kafka's default", "topic", t.topic, "err", err)
			return
		}
	}
}

func (t *tenant) setLimit(maxMessage int) {
	if maxMessage <= 0 { // no limit (stdout)
		maxMessage = defaultMaxMessage * 64
	}
	t.maxRecord.Store(max(int64(maxMessage-recordMargin), minRecord))
	t.mu.Lock()
	t.batchMax = int64(min(maxMessage, maxBatch))
	t.mu.Unlock()
	t.sh.setBatchMax(t.topic, int32(min(maxMessage, maxBatch)))
}

func (t *tenant) markReady() {
	if t.readyOK.CompareAndSwap(false, true) {
		close(t.ready)
	}
}

func (t *tenant) isReady() bool { return t.readyOK.Load() }

// whenReady wakes s once the tenant is ready.
func (t *tenant) whenReady(s *follower) {
	go func() {
		select {
		case <-t.ready:
			s.wake()
		case <-t.sh.readCtx.Done():
		}
	}()
}

// maxContent is the longest message text a record of a follower with the
// given metadata overhead may carry on this tenant's topic.
func (t *tenant) maxContent(overhead int64) int {
	return int(max(t.maxRecord.Load()-overhead, 1024))
}

// tooLarge handles a record Kafka refused as too large although it was
// within the topic's limit as read (the limit could not be read, or
// changed). Whether the record or the producer's batch was too large
// cannot be told, so both are cut to a quarter: records are cut shorter,
// and the producer forgets the topic's partitions so that it sizes their
// batches anew (from 1 MB, three cuts reach the smallest). Several followers
// of the tenant report the same refusal: one cut per two seconds.
func (t *tenant) tooLarge(err error) {
	t.mu.Lock()
	if time.Since(t.lastCut) < 2*time.Second {
		t.mu.Unlock()
		return
	}
	t.lastCut = time.Now()
	rec := max(t.maxRecord.Load()/4, minRecord)
	t.maxRecord.Store(rec)
	batch := max(t.batchMax/4, minBatch)
	t.batchMax = batch
	t.mu.Unlock()
	t.sh.setBatchMax(t.topic, int32(batch))
	t.sh.sink.resetTopic(t.topic)
	t.sh.m.capReductions.WithLabelValues(t.name).Inc()
	t.sh.log.Warn("Kafka refused records as too large; this tenant's records and batches are cut shorter",
		"tenant", t.name, "topic", t.topic, "max_record_bytes", rec, "max_batch_bytes", batch, "err", err)
}

// atFloor reports whether records and batches cannot be cut any shorter.
func (t *tenant) atFloor() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.maxRecord.Load() <= minRecord && t.batchMax <= minBatch
}

// failed records the error that tripped the gate, for the once-mode report.
func (t *tenant) failed(err error) {
	t.mu.Lock()
	t.lastE = err
	t.mu.Unlock()
}

func (t *tenant) lastErr() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.lastE == nil {
		return errors.New("not delivered")
	}
	return t.lastE
}
