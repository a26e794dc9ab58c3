package indexer

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/schemas"
)

// deadLetters writes dead letters to the tenants' dead-letter topics in the
// background. A worker hands them over and goes on: a dead letter Kafka
// does not take (the tenant's dead-letter topic is missing, or writing to
// it is denied) holds back only the partition its record came from, whose
// fetching is paused until the dead letter is written, never a worker or
// another tenant. The record counts as done (its offset may be committed)
// once Kafka acknowledged its dead letter.
type deadLetters struct {
	ix *Indexer
	cl *kgo.Client

	mu      sync.Mutex
	queue   []deadLetter
	paused  map[topicPartition]bool
	wake    chan struct{}
	waiting sync.WaitGroup // dead letters handed over and not yet written or abandoned
}

type deadLetter struct {
	rec    *kgo.Record // to produce
	tk     ticket
	reason string
}

func newDeadLetters(ix *Indexer, cl *kgo.Client) *deadLetters {
	return &deadLetters{ix: ix, cl: cl, paused: map[topicPartition]bool{}, wake: make(chan struct{}, 1)}
}

// add queues the dead letters of items. It does not block.
func (d *deadLetters) add(items []*item) {
	ix := d.ix
	d.mu.Lock()
	for _, it := range items {
		r := it.rec
		dl := schemas.DeadLetter{
			Reason: it.fail.reason, Error: it.fail.err, Stage: "indexer", Instance: ix.id, Step: -1,
			Index: it.fail.index, Status: it.fail.status,
			Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp.UTC(),
		}
		dl.SetPayload(r.Value)
		if it.fail.doc != nil {
			dl.SetDocument(it.fail.doc)
		}
		d.queue = append(d.queue, deadLetter{
			rec:    &kgo.Record{Topic: ix.topics.DLQ(it.tk.p.tenant), Key: r.Key, Value: dl.Marshal(), Headers: jsonHeaders},
			tk:     it.tk,
			reason: it.fail.reason,
		})
		d.waiting.Add(1)
	}
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// run writes queued dead letters until ctx ends, retrying with backoff
// (new arrivals wait for the retry).
func (d *deadLetters) run(ctx context.Context) {
	bo := newBackoff(d.ix.cfg.RetryMax)
	for {
		d.mu.Lock()
		batch := d.queue
		d.queue = nil
		d.mu.Unlock()
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-d.wake:
			}
			continue
		}
		failed := d.write(ctx, batch)
		if ctx.Err() != nil {
			return
		}
		if len(failed) == 0 {
			bo.Reset()
			continue
		}
		d.mu.Lock()
		d.queue = append(failed, d.queue...)
		d.mu.Unlock()
		if !sleep(ctx, bo.NextBackOff()) {
			return
		}
	}
}

// write produces batch and returns what failed. Dead letters of partitions
// this indexer no longer owns are dropped (their new owner writes its own).
func (d *deadLetters) write(ctx context.Context, batch []deadLetter) (failed []deadLetter) {
	ix := d.ix
	var live []deadLetter
	for _, dl := range batch {
		if ix.tracker.isGone(dl.tk) {
			d.waiting.Done()
			continue
		}
		live = append(live, dl)
	}
	if len(live) == 0 {
		d.resume(nil)
		return nil
	}
	// A consumer of topics by pattern cannot tell a missing topic from
	// one its metadata has not caught up with, and would wait for it:
	// missing topics are looked up first and fail at once.
	missing := d.missingTopics(ctx, live)
	recs := make([]*kgo.Record, 0, len(live))
	byRec := make(map[*kgo.Record]error, len(live))
	for _, dl := range live {
		if err := missing[dl.rec.Topic]; err != nil {
			byRec[dl.rec] = err
			continue
		}
		recs = append(recs, dl.rec)
	}
	if len(recs) > 0 {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		for _, r := range d.cl.ProduceSync(pctx, recs...) {
			byRec[r.Record] = r.Err
		}
		cancel()
	}
	var done []ticket
	stuck := map[topicPartition]bool{}
	for _, dl := range live {
		if err := byRec[dl.rec]; err != nil {
			if ctx.Err() != nil {
				return append(failed, dl)
			}
			failed = append(failed, dl)
			stuck[dl.tk.p.tp] = true
			ix.m.dlqErrors.WithLabelValues(dl.tk.p.tenant).Inc()
			ix.logLimited("dlq:"+dl.tk.p.tenant, "writing a dead letter failed; retrying, with its partition paused",
				"topic", dl.rec.Topic, "source", dl.tk.p.tp.topic, "partition", dl.tk.p.tp.partition, "err", err)
			continue
		}
		ix.m.deadLetters.WithLabelValues(dl.tk.p.tenant, dl.reason).Inc()
		done = append(done, dl.tk)
		d.waiting.Done()
	}
	ix.tracker.done(done)
	d.pause(stuck)
	d.resume(stuck)
	return failed
}

// missingTopics returns the dead-letter topics of batch that do not exist
// (or cannot be described), with the reason.
func (d *deadLetters) missingTopics(ctx context.Context, batch []deadLetter) map[string]error {
	var topics []string
	seen := map[string]bool{}
	for _, dl := range batch {
		if !seen[dl.rec.Topic] {
			seen[dl.rec.Topic] = true
			topics = append(topics, dl.rec.Topic)
		}
	}
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	details, err := kadm.NewClient(d.cl).ListTopics(lctx, topics...)
	missing := map[string]error{}
	for _, topic := range topics {
		switch td, ok := details[topic]; {
		case err != nil:
			missing[topic] = err
		case !ok:
			missing[topic] = fmt.Errorf("dead-letter topic %s: %w", topic, kerr.UnknownTopicOrPartition)
		case td.Err != nil:
			missing[topic] = fmt.Errorf("dead-letter topic %s: %w", topic, td.Err)
		}
	}
	return missing
}

// pause stops fetching the partitions whose dead letters cannot be written,
// so that their records do not pile up behind them.
func (d *deadLetters) pause(stuck map[topicPartition]bool) {
	toPause := map[string][]int32{}
	d.mu.Lock()
	for tp := range stuck {
		if !d.paused[tp] {
			d.paused[tp] = true
			toPause[tp.topic] = append(toPause[tp.topic], tp.partition)
		}
	}
	d.mu.Unlock()
	if len(toPause) > 0 {
		d.cl.PauseFetchPartitions(toPause)
	}
}

// resume resumes the paused partitions that are no longer stuck.
func (d *deadLetters) resume(stuck map[topicPartition]bool) {
	toResume := map[string][]int32{}
	d.mu.Lock()
	for tp := range d.paused {
		if !stuck[tp] {
			delete(d.paused, tp)
			toResume[tp.topic] = append(toResume[tp.topic], tp.partition)
		}
	}
	d.mu.Unlock()
	if len(toResume) > 0 {
		d.cl.ResumeFetchPartitions(toResume)
	}
}

// wait waits until every dead letter handed over is written or abandoned,
// or ctx ends.
func (d *deadLetters) wait(ctx context.Context) {
	done := make(chan struct{})
	go func() { d.waiting.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}
