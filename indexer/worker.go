package indexer

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/elastic/go-elasticsearch/v8"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/schemas"
)

// batch is one bulk request in the making: the NDJSON body and its items.
// The poll loop fills it, a worker sends it; batches are reused.
type batch struct {
	buf   []byte
	items []item
	first time.Time // when its first record was polled
}

func (b *batch) reset() {
	clear(b.items) // drop the records
	b.items, b.buf = b.items[:0], b.buf[:0]
}

// item is one record of a batch: its bulk action and document are
// buf[start:mid] and buf[mid:end] of its batch, or own after a rescue.
type item struct {
	rec             *kgo.Record
	tk              ticket
	start, mid, end int
	own             []byte
	ownMid          int
	rescued         bool
	fail            *failure // set: to be dead-lettered
}

// failure is why a record goes to the dead-letter topic.
type failure struct {
	reason string // bounded: decode, rejected
	err    string
	status int
	index  string
	doc    []byte
}

func (it *item) action(b *batch) []byte {
	if it.own != nil {
		return it.own[:it.ownMid]
	}
	return b.buf[it.start:it.mid]
}

func (it *item) doc(b *batch) []byte {
	if it.own != nil {
		return it.own[it.ownMid : len(it.own)-1]
	}
	return b.buf[it.mid : it.end-1]
}

func (it *item) bytes(b *batch) []byte {
	if it.own != nil {
		return it.own
	}
	return b.buf[it.start:it.end]
}

// worker sends batches to Elasticsearch until every item is stored,
// recognised as a duplicate, or dead-lettered, then marks them done.
type worker struct {
	ix *Indexer
	es *elasticsearch.Client
	cl *kgo.Client

	w       docWriter
	body    []byte
	resp    bytes.Buffer
	todo    []*item
	dead    []*item
	tickets []ticket
}

// process handles a batch. It returns early only when ctx ends (shutdown
// timeout): the items not finished stay uncommitted.
func (wk *worker) process(ctx context.Context, b *batch) {
	ix := wk.ix
	wk.todo, wk.dead, wk.tickets = wk.todo[:0], wk.dead[:0], wk.tickets[:0]
	contiguous := true // b.buf holds exactly the items of todo, in order
	for i := range b.items {
		it := &b.items[i]
		if it.fail != nil {
			wk.dead = append(wk.dead, it)
			continue
		}
		wk.todo = append(wk.todo, it)
	}
	bo := newBackoff(ix.cfg.RetryMax)
	for attempt := 0; len(wk.todo) > 0; attempt++ {
		if attempt > 0 {
			if !sleep(ctx, bo.NextBackOff()) {
				return
			}
			wk.todo = wk.dropGone(wk.todo)
			contiguous = false
			if len(wk.todo) == 0 {
				break
			}
		}
		body := b.buf
		if !contiguous {
			wk.body = wk.body[:0]
			for _, it := range wk.todo {
				wk.body = append(wk.body, it.bytes(b)...)
			}
			body = wk.body
		}
		allOK, results, reason, err := wk.send(ctx, body, len(wk.todo))
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			for _, it := range wk.todo {
				ix.m.retried.WithLabelValues(it.tk.p.tenant, reason).Inc()
			}
			ix.logLimited("bulk:"+reason, "bulk request failed; retrying with backoff (consumption pauses while every worker waits)",
				"reason", reason, "docs", len(wk.todo), "attempt", attempt+1, "err", err)
			continue
		}
		if allOK {
			for _, it := range wk.todo {
				ix.m.tenant(it.tk.p.tenant).stored.Inc()
				wk.tickets = append(wk.tickets, it.tk)
			}
			ix.m.requests.WithLabelValues("ok").Inc()
			wk.todo = wk.todo[:0]
			break
		}
		ix.m.requests.WithLabelValues("partial").Inc()
		next := wk.todo[:0]
		progress := false
		for i, it := range wk.todo {
			res := results[i]
			tenant := it.tk.p.tenant
			outcome, reason := classify(res.Status)
			switch outcome {
			case outcomeStored:
				ix.m.tenant(tenant).stored.Inc()
				wk.tickets = append(wk.tickets, it.tk)
				progress = true
			case outcomeDuplicate:
				ix.m.tenant(tenant).duplicates.Inc()
				wk.tickets = append(wk.tickets, it.tk)
				progress = true
			case outcomeRetry:
				ix.m.retried.WithLabelValues(tenant, reason).Inc()
				if reason != "too_many_requests" && reason != "server_error" {
					ix.logLimited("item:"+reason, "Elasticsearch refused documents for a reason that is not theirs; retrying",
						"reason", reason, "status", res.Status, "err", res.Error.Error())
				}
				next = append(next, it)
			case outcomeRejected:
				if !it.rescued && wk.rescue(ctx, b, it, res.Error) {
					ix.m.rescued.WithLabelValues(tenant).Inc()
					next = append(next, it)
					continue
				}
				it.fail = &failure{reason: "rejected", err: res.Error.Error(), status: res.Status,
					index: actionIndex(it.action(b)), doc: it.doc(b)}
				wk.dead = append(wk.dead, it)
			}
		}
		wk.todo = next
		contiguous = false
		// The wait grows while nothing goes through, and starts over once
		// something does.
		if progress {
			bo.Reset()
		}
		ix.tracker.done(wk.tickets)
		wk.tickets = wk.tickets[:0]
	}
	if len(wk.dead) > 0 && !wk.deadLetter(ctx, b) {
		ix.tracker.done(wk.tickets)
		return
	}
	ix.tracker.done(wk.tickets)
}

// dropGone removes items whose partition was revoked or lost: its new
// owner indexes them.
func (wk *worker) dropGone(items []*item) []*item {
	out := items[:0]
	for _, it := range items {
		if !wk.ix.tracker.isGone(it.tk) {
			out = append(out, it)
		}
	}
	return out
}

// send posts one bulk request of n items. On failure reason is the
// retried{reason} label.
func (wk *worker) send(ctx context.Context, body []byte, n int) (allOK bool, results []itemResult, reason string, err error) {
	m := wk.ix.m
	start := time.Now()
	m.bulkBytes.Observe(float64(len(body)))
	m.bulkDocs.Observe(float64(n))
	res, err := wk.es.Bulk(bytes.NewReader(body), wk.es.Bulk.WithContext(ctx), wk.es.Bulk.WithFilterPath(bulkFilter...))
	if err != nil {
		m.requests.WithLabelValues("failed").Inc()
		return false, nil, "request", err
	}
	wk.resp.Reset()
	_, err = io.Copy(&wk.resp, res.Body)
	res.Body.Close()
	m.bulkDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		m.requests.WithLabelValues("failed").Inc()
		return false, nil, "request", fmt.Errorf("read bulk response: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		m.requests.WithLabelValues("failed").Inc()
		_, reason := classify(res.StatusCode)
		if reason == "" {
			reason = "request"
		}
		return false, nil, reason, fmt.Errorf("bulk request: %s: %s", res.Status(), errorText(wk.resp.Bytes()))
	}
	allOK, results, err = parseBulkResponse(wk.resp.Bytes(), n)
	if err != nil {
		m.requests.WithLabelValues("failed").Inc()
		return false, nil, "request", err
	}
	return allOK, results, "", nil
}

// rescue rebuilds a rejected item's document with the fields the error
// names (or, when it names none of them, every attribute) moved into
// sluice.rescued. It reports false when there is nothing to move: the
// document cannot be helped.
func (wk *worker) rescue(ctx context.Context, b *batch, it *item, e *esError) bool {
	rec, _, err := wk.ix.dec.Decode(ctx, it.rec.Value)
	if err != nil {
		return false
	}
	tenant := it.tk.p.tenant
	if rec.Timestamp.IsZero() {
		// As add did: the index time is in the action line, kept as is.
		rec.Timestamp, _ = wk.ix.namer.indexTime(rec.Timestamp, rec.ObservedTimestamp, it.rec.Timestamp)
	}
	action := it.action(b)
	buf := append([]byte(nil), action...)
	moved := offendingFields(e)
	out, st := wk.w.appendDoc(buf, &rec, tenant, moved)
	if st.moved == 0 && moved[0] != moveAll {
		out, st = wk.w.appendDoc(buf, &rec, tenant, []string{moveAll})
	}
	if st.moved == 0 {
		return false
	}
	it.own, it.ownMid, it.rescued = append(out, '\n'), len(action), true
	return true
}

// deadLetter writes the dead items' records to their tenants' dead-letter
// topics, retrying until Kafka has them all or ctx ends (false). The items
// written are added to wk.tickets.
func (wk *worker) deadLetter(ctx context.Context, b *batch) bool {
	ix := wk.ix
	recs := make([]*kgo.Record, 0, len(wk.dead))
	for _, it := range wk.dead {
		r := it.rec
		d := schemas.DeadLetter{
			Reason: it.fail.reason, Error: it.fail.err, Stage: "indexer", Instance: ix.id, Step: -1,
			Index: it.fail.index, Status: it.fail.status,
			Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp.UTC(),
		}
		d.SetPayload(r.Value)
		if it.fail.doc != nil {
			d.SetDocument(it.fail.doc)
		}
		recs = append(recs, &kgo.Record{Topic: ix.topics.DLQ(it.tk.p.tenant), Key: r.Key, Value: d.Marshal(), Headers: jsonHeaders})
	}
	items := wk.dead
	bo := newBackoff(ix.cfg.RetryMax)
	for len(recs) > 0 {
		results := wk.cl.ProduceSync(ctx, recs...)
		nextRecs, nextItems := recs[:0], items[:0]
		for i, res := range results {
			it := items[i]
			if res.Err == nil {
				ix.m.deadLetters.WithLabelValues(it.tk.p.tenant, it.fail.reason).Inc()
				wk.tickets = append(wk.tickets, it.tk)
				continue
			}
			ix.logLimited("dlq:"+it.tk.p.tenant, "writing a dead letter failed; retrying (the partition's commit waits for it)",
				"topic", res.Record.Topic, "err", res.Err)
			nextRecs, nextItems = append(nextRecs, recs[i]), append(nextItems, it)
		}
		recs, items = nextRecs, nextItems
		if len(recs) > 0 && !sleep(ctx, bo.NextBackOff()) {
			return false
		}
	}
	return true
}

var jsonHeaders = []kgo.RecordHeader{{Key: "content-type", Value: []byte("application/json")}}

// newBackoff returns the retry waits of the indexer: from 100ms, doubling
// up to max, each randomised by ±50% so that replicas do not retry in step.
func newBackoff(max time.Duration) *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{InitialInterval: min(100*time.Millisecond, max), RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: max}
}

// sleep waits d, or less if ctx ends (false).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
