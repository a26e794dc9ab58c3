package indexer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/schemas"
)

// deadLetters writes dead letters to the tenants' dead-letter topics in the
// background. A worker hands them over and goes on. Each tenant has its
// own queue and its own backoff: a dead letter Kafka does not take (the
// tenant's dead-letter topic is missing, or writing to it is denied) holds
// back only its tenant's dead letters, and pauses the partitions their
// records came from until it is written, never a worker or another
// tenant. A tenant's queue is bounded the same way: past
// deadLetterTenantBytes, the partitions feeding it pause until it drains.
// The record counts as done (its offset may be committed) once Kafka
// acknowledged its dead letter.
type deadLetters struct {
	ix     *Indexer
	cl     *kgo.Client
	pauses *pauser

	mu      sync.Mutex
	tenants map[string]*deadTenant
	wake    chan struct{}
	waiting sync.WaitGroup // dead letters handed over and not yet written or abandoned
}

// deadLetterTenantBytes bounds a tenant's queue of dead letters waiting to
// be written (beyond it, its partitions pause).
const deadLetterTenantBytes = 8 << 20

// deadTenant is one tenant's dead letters.
type deadTenant struct {
	name    string
	queue   []deadLetter
	bytes   int
	writing bool      // a write of some of its letters is under way
	next    time.Time // no write before (backing off)
	bo      *backoff.ExponentialBackOff
	paused  map[topicPartition]bool // source partitions it holds paused
}

type deadLetter struct {
	rec    *kgo.Record // to produce
	tk     ticket
	reason string
}

func newDeadLetters(ix *Indexer, cl *kgo.Client, pauses *pauser) *deadLetters {
	return &deadLetters{ix: ix, cl: cl, pauses: pauses, tenants: map[string]*deadTenant{}, wake: make(chan struct{}, 1)}
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
		tenant := it.tk.p.tenant
		t := d.tenants[tenant]
		if t == nil {
			t = &deadTenant{name: tenant, bo: newBackoff(ix.cfg.RetryMax), paused: map[topicPartition]bool{}}
			d.tenants[tenant] = t
		}
		rec := &kgo.Record{Topic: ix.topics.DLQ(tenant), Key: r.Key, Value: dl.Marshal(), Headers: jsonHeaders}
		t.queue = append(t.queue, deadLetter{rec: rec, tk: it.tk, reason: it.fail.reason})
		t.bytes += len(rec.Value)
		if t.bytes > deadLetterTenantBytes {
			d.holdLocked(t, it.tk.p.tp)
		}
		d.waiting.Add(1)
	}
	d.mu.Unlock()
	d.signal()
}

func (d *deadLetters) signal() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// holdLocked pauses tp for t (again, if a rebalance made the pauser
// forget it).
func (d *deadLetters) holdLocked(t *deadTenant, tp topicPartition) {
	t.paused[tp] = true
	d.pauses.hold(tp, pauseDeadLetters)
}

// run writes queued dead letters until ctx ends: each tenant's as soon as
// its previous write is acknowledged and its backoff allows.
func (d *deadLetters) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var writes sync.WaitGroup
	defer writes.Wait()
	for {
		due, wait := d.due(time.Now())
		if len(due) == 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-d.wake:
			case <-timer.C:
			}
			continue
		}
		d.write(ctx, due, &writes)
	}
}

// dueWrite is one tenant's letters taken for a write.
type dueWrite struct {
	t       *deadTenant
	letters []deadLetter
}

// due takes the queues of the tenants that may write now, or says how long
// until one may.
func (d *deadLetters) due(now time.Time) ([]dueWrite, time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var due []dueWrite
	wait := time.Hour
	for name, t := range d.tenants {
		switch {
		case t.writing:
		case len(t.queue) == 0:
			if len(t.paused) == 0 {
				delete(d.tenants, name)
			}
		case t.next.After(now):
			wait = min(wait, t.next.Sub(now))
		default:
			due = append(due, dueWrite{t: t, letters: t.queue})
			t.queue, t.bytes, t.writing = nil, 0, true
		}
	}
	return due, wait
}

// write produces the letters of due, without waiting for them: each
// tenant's write finishes (finish) when Kafka has answered for all its
// letters. Dead letters of partitions this indexer no longer owns are
// dropped (their new owner writes its own).
func (d *deadLetters) write(ctx context.Context, due []dueWrite, writes *sync.WaitGroup) {
	ix := d.ix
	var topics []string
	for i := range due {
		w := &due[i]
		live := w.letters[:0]
		for _, dl := range w.letters {
			if ix.tracker.isGone(dl.tk) {
				d.waiting.Done()
				continue
			}
			live = append(live, dl)
		}
		w.letters = live
		if len(live) > 0 {
			topics = append(topics, live[0].rec.Topic)
		}
	}
	// A consumer of topics by pattern cannot tell a missing topic from one
	// its metadata has not caught up with, and would wait for it: missing
	// topics are looked up first and fail at once.
	missing := d.missingTopics(ctx, topics)
	for _, w := range due {
		if len(w.letters) == 0 {
			d.finish(w.t, nil, nil)
			continue
		}
		if err := missing[w.letters[0].rec.Topic]; err != nil {
			errs := make([]error, len(w.letters))
			for i := range errs {
				errs[i] = err
			}
			d.finish(w.t, w.letters, errs)
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		errs := make([]error, len(w.letters))
		var left sync.WaitGroup
		left.Add(len(w.letters))
		writes.Add(1)
		go func() {
			defer writes.Done()
			left.Wait()
			cancel()
			d.finish(w.t, w.letters, errs)
		}()
		for i, dl := range w.letters {
			d.cl.Produce(pctx, dl.rec, func(_ *kgo.Record, err error) {
				errs[i] = err
				left.Done()
			})
		}
	}
}

// finish sorts the outcome of a tenant's write: letters written are done,
// the others go back in front of its queue, with the tenant's backoff and
// their partitions paused.
func (d *deadLetters) finish(t *deadTenant, letters []deadLetter, errs []error) {
	ix := d.ix
	var done []ticket
	var failed []deadLetter
	stuck := map[topicPartition]bool{}
	for i, dl := range letters {
		if err := errs[i]; err != nil {
			failed = append(failed, dl)
			stuck[dl.tk.p.tp] = true
			if errors.Is(err, context.Canceled) {
				continue // shutting down
			}
			ix.m.dlqErrors.WithLabelValues(t.name).Inc()
			ix.logLimited("dlq:"+t.name, "writing a dead letter failed; retrying, with its partition paused",
				"topic", dl.rec.Topic, "source", dl.tk.p.tp.topic, "partition", dl.tk.p.tp.partition, "err", err)
			continue
		}
		ix.m.deadLetters.WithLabelValues(t.name, dl.reason).Inc()
		done = append(done, dl.tk)
		d.waiting.Done()
	}
	ix.tracker.done(done)

	d.mu.Lock()
	t.writing = false
	now := time.Now()
	if len(failed) > 0 {
		t.next = now.Add(t.bo.NextBackOff())
		for _, dl := range failed {
			t.bytes += len(dl.rec.Value)
		}
		t.queue = append(failed, t.queue...)
		for tp := range stuck {
			d.holdLocked(t, tp)
		}
	} else {
		t.bo.Reset()
		t.next = now
	}
	// A partition stays paused while its tenant's letters fail or its
	// queue is over the bound.
	for tp := range t.paused {
		if !stuck[tp] && (len(failed) == 0 || !t.stillHas(tp)) && t.bytes <= deadLetterTenantBytes {
			delete(t.paused, tp)
			d.pauses.release(tp, pauseDeadLetters)
		}
	}
	d.mu.Unlock()
	d.signal()
}

// stillHas reports whether t's queue holds a letter of tp.
func (t *deadTenant) stillHas(tp topicPartition) bool {
	for _, dl := range t.queue {
		if dl.tk.p.tp == tp {
			return true
		}
	}
	return false
}

// missingTopics returns the dead-letter topics that do not exist (or
// cannot be described), with the reason.
func (d *deadLetters) missingTopics(ctx context.Context, topics []string) map[string]error {
	missing := map[string]error{}
	if len(topics) == 0 {
		return missing
	}
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	details, err := kadm.NewClient(d.cl).ListTopics(lctx, topics...)
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
