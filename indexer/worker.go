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
	reason string // bounded: decode, rejected, pipeline, or a failure class given up on
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
// recognised as a duplicate, handed over as a dead letter, or parked with
// its index (see parking), and marks them done as they are. It retries
// only what fails for every tenant alike: whole requests (Elasticsearch
// unreachable, overloaded), and item 429s and 5xx for a few rounds.
type worker struct {
	ix   *Indexer
	es   *elasticsearch.Client
	dead *deadLetters

	w        docWriter
	body     []byte
	resp     bytes.Buffer
	todo     []*item
	next     []*item
	failed   []*item
	parkList []parkEntry
	tickets  []ticket
	round    int // of the current batch: transient failures are retried inline for inlineRounds

	rescuedAny bool           // in the current round
	elapsed    time.Duration  // of the last request
	perTenant  map[string]int // scratch: bytes per tenant of a request
}

// observe records the last request's duration and size, and per tenant
// its share in counters.
func (wk *worker) observe(b *batch, chunk []*item) {
	if wk.perTenant == nil {
		wk.perTenant = map[string]int{}
	}
	total := 0
	for _, it := range chunk {
		n := len(it.bytes(b))
		wk.perTenant[it.tk.p.tenant] += n
		total += n
	}
	m := wk.ix.m
	m.bulkDuration.Observe(wk.elapsed.Seconds())
	m.bulkBytes.Observe(float64(total))
	for tenant, n := range wk.perTenant {
		m.tenantBulkSeconds.WithLabelValues(tenant).Add(wk.elapsed.Seconds())
		m.tenantBulkRequests.WithLabelValues(tenant).Inc()
		m.tenantBulkBytes.WithLabelValues(tenant).Add(float64(n))
	}
	clear(wk.perTenant)
}

// process handles a batch. It returns early only when ctx ends (shutdown
// timeout): the items not finished stay uncommitted.
func (wk *worker) process(ctx context.Context, b *batch) {
	ix := wk.ix
	wk.todo, wk.failed, wk.tickets = wk.todo[:0], wk.failed[:0], wk.tickets[:0]
	for i := range b.items {
		it := &b.items[i]
		if it.fail != nil {
			wk.failed = append(wk.failed, it)
			continue
		}
		wk.todo = append(wk.todo, it)
	}
	// b.buf holds exactly the items of todo, in order, until one leaves
	// or is rescued.
	contiguous := true
	if n := len(wk.todo); n > 0 {
		if wk.todo = ix.park.divert(b, wk.todo); len(wk.todo) != n {
			contiguous = false
		}
	}
	// Requests carry at most limit items: a request Elasticsearch refuses
	// whole as too large or malformed (413, 400) is split, down to the one
	// document at fault, which is dead-lettered.
	limit := len(wk.todo)
	bo := newBackoff(ix.cfg.RetryMax)
	for attempt := 0; len(wk.todo) > 0; attempt++ {
		if attempt > 0 {
			if !sleep(ctx, bo.NextBackOff()) {
				break
			}
			kept := ix.park.divert(b, wk.dropGone(wk.todo))
			if len(kept) != len(wk.todo) {
				contiguous = false
			}
			wk.todo = kept
			if len(kept) == 0 {
				break
			}
		}
		wk.round = attempt
		wk.next, wk.rescuedAny, wk.parkList = wk.next[:0], false, wk.parkList[:0]
		progress := false
		size := limit // send may lower limit for the next round
		for start := 0; start < len(wk.todo); start += size {
			chunk := wk.todo[start:min(start+size, len(wk.todo))]
			progress = wk.send(ctx, b, chunk, contiguous && len(chunk) == len(wk.todo), &limit) || progress
			if ctx.Err() != nil {
				break
			}
		}
		if len(wk.parkList) > 0 {
			ix.park.add(b, wk.parkList)
			clear(wk.parkList)
		}
		if len(wk.next) != len(wk.todo) || wk.rescuedAny {
			contiguous = false
		}
		wk.todo, wk.next = wk.next, wk.todo
		ix.tracker.done(wk.tickets)
		wk.tickets = wk.tickets[:0]
		// The wait grows while Elasticsearch stores nothing (whole requests
		// refused, every item answered 429 or 5xx) and starts over once it
		// stores documents, even if it refused some: the rest go again
		// after the shortest wait. Growing it on every partial refusal made
		// a steady fraction of item 429s stall indexing (a load test with
		// 30% of items refused fell to a few hundred documents a second).
		if progress {
			bo.Reset()
		}
		if ctx.Err() != nil {
			break
		}
	}
	if len(wk.failed) > 0 {
		wk.dead.add(wk.failed)
	}
}

// send posts the items of chunk (whole is true when they are exactly the
// batch's buffer) and sorts them: done (wk.tickets), to send again
// (wk.next) or dead (wk.failed). It reports whether any item was stored;
// it halves *limit when Elasticsearch refuses the request whole as too
// large or malformed.
func (wk *worker) send(ctx context.Context, b *batch, chunk []*item, whole bool, limit *int) (progress bool) {
	ix := wk.ix
	body := b.buf
	if !whole {
		wk.body = wk.body[:0]
		for _, it := range chunk {
			wk.body = append(wk.body, it.bytes(b)...)
		}
		body = wk.body
	}
	allOK, results, status, reason, err := wk.post(ctx, body, len(chunk))
	wk.observe(b, chunk)
	switch {
	case err != nil && (status == 413 || status == 400) && len(chunk) == 1:
		it := chunk[0]
		it.fail = &failure{reason: "rejected", err: err.Error(), status: status, index: actionIndex(it.action(b)), doc: it.doc(b)}
		wk.failed = append(wk.failed, it)
		return false
	case err != nil && (status == 413 || status == 400):
		*limit = max(1, len(chunk)/2)
		ix.logLimited("bulk:split", "Elasticsearch refused a bulk request whole; sending it in smaller requests",
			"status", status, "docs", len(chunk), "err", err)
		wk.next = append(wk.next, chunk...)
		return false
	case err != nil:
		if ctx.Err() == nil {
			for _, it := range chunk {
				ix.m.retried.WithLabelValues(it.tk.p.tenant, reason).Inc()
			}
			ix.logLimited("bulk:"+reason, "bulk request failed; retrying with backoff (consumption pauses while every worker waits)",
				"reason", reason, "docs", len(chunk), "err", err)
		}
		wk.next = append(wk.next, chunk...)
		return false
	case allOK:
		for _, it := range chunk {
			ix.m.tenant(it.tk.p.tenant).stored.Inc()
			wk.tickets = append(wk.tickets, it.tk)
		}
		return true
	}
	for i, it := range chunk {
		res := results[i]
		tenant := it.tk.p.tenant
		outcome, class := classifyItem(res.Status, res.Error)
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
			ix.m.retried.WithLabelValues(tenant, class).Inc()
			if inlineClass(class) && wk.round < inlineRounds {
				wk.next = append(wk.next, it)
				continue
			}
			wk.parkList = append(wk.parkList, parkEntry{it: it, class: class, status: res.Status, err: res.Error.Error()})
		case outcomeRefused:
			it.fail = &failure{reason: class, err: res.Error.Error(), status: res.Status,
				index: actionIndex(it.action(b)), doc: it.doc(b)}
			wk.failed = append(wk.failed, it)
		case outcomeRejected:
			if !it.rescued && wk.rescue(ctx, b, it, res.Error) {
				wk.rescuedAny = true
				ix.m.rescued.WithLabelValues(tenant).Inc()
				wk.next = append(wk.next, it)
				continue
			}
			it.fail = &failure{reason: "rejected", err: res.Error.Error(), status: res.Status,
				index: actionIndex(it.action(b)), doc: it.doc(b)}
			wk.failed = append(wk.failed, it)
		}
	}
	return progress
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

// post sends one bulk request of n items. On failure, status is the HTTP
// status (0: no response) and reason the retried{reason} label.
func (wk *worker) post(ctx context.Context, body []byte, n int) (allOK bool, results []itemResult, status int, reason string, err error) {
	m := wk.ix.m
	start := time.Now()
	m.bulkDocs.Observe(float64(n))
	res, err := wk.es.Bulk(bytes.NewReader(body), wk.es.Bulk.WithContext(ctx), wk.es.Bulk.WithFilterPath(bulkFilter...))
	if err != nil {
		m.requests.WithLabelValues("failed").Inc()
		return false, nil, 0, "request", err
	}
	wk.resp.Reset()
	_, err = io.Copy(&wk.resp, res.Body)
	res.Body.Close()
	wk.elapsed = time.Since(start)
	if err != nil {
		m.requests.WithLabelValues("failed").Inc()
		return false, nil, 0, "request", fmt.Errorf("read bulk response: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		m.requests.WithLabelValues("failed").Inc()
		_, reason := classify(res.StatusCode)
		if reason == "" {
			reason = "request"
		}
		return false, nil, res.StatusCode, reason, fmt.Errorf("bulk request: %s: %s", res.Status(), errorText(wk.resp.Bytes()))
	}
	allOK, results, err = parseBulkResponse(wk.resp.Bytes(), n)
	if err != nil {
		m.requests.WithLabelValues("failed").Inc()
		return false, nil, res.StatusCode, "request", err
	}
	if allOK {
		m.requests.WithLabelValues("ok").Inc()
	} else {
		m.requests.WithLabelValues("partial").Inc()
	}
	return allOK, results, res.StatusCode, "", nil
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
