package indexer

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Parking. A bulk request mixes every tenant's documents. When
// Elasticsearch refuses some of them for a reason of their index rather
// than theirs (a write block, a closed or missing index, a failing default
// pipeline, a red shard, see classifyItem), retrying them inside the
// request would hold the worker, and once every worker held such a batch,
// consumption would stop for every tenant. Instead they leave the batch
// and are parked with their index: the worker goes on, the other tenants'
// documents are stored and their offsets committed.
//
// A parked index is retried by the parker alone, with its own backoff,
// in requests of its own documents; documents the workers meet later for
// a parked index join it without being sent (so a tenant's failing index
// costs one request per backoff, not one per batch). Once Elasticsearch
// stores them, the index is unparked. Each failure class has a time limit
// (SLUICE_INDEXER_GIVE_UP): past it, the index's documents are
// dead-lettered with the class as reason, and until one of its documents
// is stored again, documents that fail the same way are dead-lettered at
// once instead of waiting out another period.
//
// Transient classes (429, 5xx) are first retried inline for a few rounds:
// a full write queue is usually cluster-wide and brief.
//
// Parked documents stay uncommitted: a commit point never passes a record
// that is neither stored nor dead-lettered. Their memory is bounded: a
// partition with SLUICE_INDEXER_FLUSH_BYTES parked, or any partition with
// documents parked once the total reaches SLUICE_INDEXER_PARK_MAX_BYTES,
// is no longer fetched until its parked documents are done (records of a
// fetch already under way still arrive: one fetch more at most). A revoked
// partition's parked documents are dropped (its new owner indexes them);
// a revocation does not wait for them.
type parking struct {
	ix       *Indexer
	dead     *deadLetters
	pauses   *pauser
	giveUp   map[string]time.Duration
	partMax  int64
	totalMax int64

	mu      sync.Mutex
	indices map[string]*parkedIndex
	byPart  map[topicPartition]int64
	held    map[topicPartition]bool // paused for parked documents
	bytes   int64
	docs    int
	active  atomic.Bool // len(indices) > 0: read by workers without the lock
	wake    chan struct{}
}

// inlineRounds is how many rounds a worker retries transient failures
// before it parks them.
const inlineRounds = 3

// forgetGivenUp is how long an index the indexer gave up on, and that
// receives no documents, is remembered.
const forgetGivenUp = 24 * time.Hour

type parkedIndex struct {
	name   string
	class  string // of the last failure
	status int
	err    string
	since  time.Time // parked (for this class) since
	next   time.Time // next attempt
	bo     *backoff.ExponentialBackOff
	items  []*item // owned copies, oldest first
	busy   bool    // the parker is sending some of them
	limit  int     // most documents per request (0: no limit), lowered when Elasticsearch refuses a request whole as too large
	// givenUp: the indexer gave up on the index; documents that fail with
	// the same class are dead-lettered at once.
	givenUp bool
	idle    time.Time // when it last became empty
}

// parkEntry is an item to park, with its failure (class "" for an item
// that joins its parked index without having been sent).
type parkEntry struct {
	it     *item
	class  string
	status int
	err    string
}

func newParking(ix *Indexer, dead *deadLetters, pauses *pauser) *parking {
	giveUp, _ := parseGiveUp(ix.cfg.GiveUp) // checked by Validate
	return &parking{
		ix: ix, dead: dead, pauses: pauses, giveUp: giveUp,
		partMax:  int64(ix.cfg.FlushBytes),
		totalMax: int64(ix.cfg.ParkMaxBytes),
		indices:  map[string]*parkedIndex{},
		byPart:   map[topicPartition]int64{},
		held:     map[topicPartition]bool{},
		wake:     make(chan struct{}, 1),
	}
}

// owned returns a copy of it that owns its bytes (batches are reused).
func owned(b *batch, it *item) *item {
	c := *it
	if c.own == nil {
		c.own = append([]byte(nil), b.buf[it.start:it.end]...)
		c.ownMid = it.mid - it.start
	}
	return &c
}

// divert moves the items of todo whose index is parked into the parking
// and returns the others (todo's array is reused).
func (pk *parking) divert(b *batch, todo []*item) []*item {
	if !pk.active.Load() {
		return todo
	}
	kept := todo[:0]
	pk.mu.Lock()
	var touched []topicPartition
	for _, it := range todo {
		pi := pk.indices[string(actionIndexBytes(it.action(b)))]
		if pi == nil {
			kept = append(kept, it)
			continue
		}
		pk.addLocked(pi, owned(b, it))
		touched = append(touched, it.tk.p.tp)
	}
	pk.repauseLocked(touched)
	pk.mu.Unlock()
	if len(touched) > 0 {
		pk.signal()
	}
	return kept
}

// add parks the items of entries (items of b). Items whose index was given
// up on for the same class are dead-lettered at once.
func (pk *parking) add(b *batch, entries []parkEntry) {
	now := time.Now()
	var dead []*item
	var touched []topicPartition
	pk.mu.Lock()
	for _, e := range entries {
		it := owned(b, e.it)
		name := actionIndex(it.action(nil))
		pi := pk.indices[name]
		if pi == nil {
			pi = &parkedIndex{name: name, class: e.class, status: e.status, err: e.err, since: now, bo: newBackoff(pk.ix.cfg.RetryMax)}
			pi.next = now.Add(pi.bo.NextBackOff())
			pk.indices[name] = pi
			pk.active.Store(true)
			pk.ix.m.parkedIndices.Set(float64(len(pk.indices)))
			pk.ix.logLimited("park:"+e.class, "Elasticsearch refuses documents for a reason of their index; parking them with it, the other tenants go on",
				"index", name, "tenant", it.tk.p.tenant, "reason", e.class, "status", e.status, "err", e.err)
		}
		if e.class != "" {
			pk.ix.m.parked.WithLabelValues(it.tk.p.tenant, e.class).Inc()
			if pi.givenUp && e.class == pi.class {
				it.fail = &failure{reason: e.class, err: e.err, status: e.status, index: name, doc: it.doc(nil)}
				dead = append(dead, it)
				continue
			}
			pk.reclassLocked(pi, e.class, e.status, e.err, now)
		}
		pk.addLocked(pi, it)
		touched = append(touched, it.tk.p.tp)
	}
	pk.repauseLocked(touched)
	pk.mu.Unlock()
	if len(dead) > 0 {
		pk.dead.add(dead)
	}
	pk.signal()
}

// reclassLocked records a failure of class on pi: a new class starts a new
// period (and ends a give-up).
func (pk *parking) reclassLocked(pi *parkedIndex, class string, status int, err string, now time.Time) {
	if class != pi.class {
		pi.class, pi.since, pi.givenUp = class, now, false
	}
	pi.status, pi.err = status, err
}

func (pk *parking) addLocked(pi *parkedIndex, it *item) {
	pi.items = append(pi.items, it)
	n := int64(len(it.own))
	pk.bytes += n
	pk.byPart[it.tk.p.tp] += n
	pk.docs++
	pk.ix.tracker.parked(it.tk, 1)
	pk.ix.m.parkedDocs.Set(float64(pk.docs))
	pk.ix.m.parkedBytes.Set(float64(pk.bytes))
}

// releaseLocked forgets a parked item's memory (it was stored,
// dead-lettered or its partition is gone).
func (pk *parking) releaseLocked(it *item) {
	n := int64(len(it.own))
	pk.bytes -= n
	tp := it.tk.p.tp
	if pk.byPart[tp] -= n; pk.byPart[tp] <= 0 {
		delete(pk.byPart, tp)
	}
	pk.docs--
	pk.ix.tracker.parked(it.tk, -1)
	pk.ix.m.parkedDocs.Set(float64(pk.docs))
	pk.ix.m.parkedBytes.Set(float64(pk.bytes))
}

// repauseLocked pauses the partitions of touched that are over their
// share, and re-examines every partition with parked documents (the total
// may have crossed a bound).
func (pk *parking) repauseLocked(touched []topicPartition) {
	for _, tp := range touched {
		pk.pauseLocked(tp)
	}
}

// pauseLocked pauses tp when it is over its share, and resumes it once it
// has no document parked, or is well under both bounds.
func (pk *parking) pauseLocked(tp topicPartition) {
	b := pk.byPart[tp]
	switch {
	case b >= pk.partMax || (b > 0 && pk.bytes >= pk.totalMax):
		if !pk.held[tp] {
			pk.held[tp] = true
			pk.pauses.hold(tp, pauseParked)
		}
	case b == 0 || (b < pk.partMax/2 && pk.bytes < pk.totalMax/2):
		if pk.held[tp] {
			delete(pk.held, tp)
			pk.pauses.release(tp, pauseParked)
		}
	}
}

// resumeLocked releases the partitions no longer over their share after
// documents left the parking.
func (pk *parking) resumeLocked(left map[topicPartition]bool) {
	for tp := range left {
		pk.pauseLocked(tp)
	}
	if pk.bytes < pk.totalMax/2 {
		for tp := range pk.held {
			pk.pauseLocked(tp)
		}
	}
}

func (pk *parking) signal() {
	select {
	case pk.wake <- struct{}{}:
	default:
	}
}

// drop forgets the parked documents of revoked or lost partitions: their
// new owner indexes them.
func (pk *parking) drop(parts map[string][]int32) {
	gone := map[topicPartition]bool{}
	for topic, ps := range parts {
		for _, n := range ps {
			gone[topicPartition{topic, n}] = true
		}
	}
	pk.mu.Lock()
	defer pk.mu.Unlock()
	for _, pi := range pk.indices {
		kept := pi.items[:0]
		for _, it := range pi.items {
			if gone[it.tk.p.tp] {
				pk.releaseLocked(it)
				continue
			}
			kept = append(kept, it)
		}
		clear(pi.items[len(kept):])
		pi.items = kept
	}
	for tp := range gone {
		delete(pk.held, tp) // the pauser forgets them too
	}
	pk.resumeLocked(gone)
}

// run retries parked indices until ctx ends. wk is the parker's own worker
// (its scratch space), never one of the pool.
func (pk *parking) run(ctx context.Context, wk *worker) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		pi, wait := pk.due(time.Now())
		if pi == nil {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-pk.wake:
			case <-timer.C:
			}
			continue
		}
		pk.retry(ctx, wk, pi)
		if ctx.Err() != nil {
			return
		}
	}
}

// due returns the parked index to retry now (the one waiting longest), or
// how long until one is due. It gives up on indices past their class's
// limit, and forgets given-up indices idle for long.
func (pk *parking) due(now time.Time) (*parkedIndex, time.Duration) {
	pk.mu.Lock()
	var due *parkedIndex
	wait := time.Hour
	var dead []*item
	for name, pi := range pk.indices {
		if pi.busy {
			continue
		}
		if len(pi.items) == 0 {
			if !pi.givenUp || now.Sub(pi.idle) > forgetGivenUp {
				delete(pk.indices, name)
			}
			continue
		}
		if limit := pk.giveUp[pi.class]; !pi.givenUp && limit > 0 && now.Sub(pi.since) >= limit {
			pi.givenUp, pi.idle = true, now
			pk.ix.log.Warn("gave up on an index that refuses documents; dead-lettering them, and those that fail the same way from now on until it takes documents again",
				"index", pi.name, "reason", pi.class, "parked_for", now.Sub(pi.since).Round(time.Second), "documents", len(pi.items), "err", pi.err)
			left := map[topicPartition]bool{}
			for _, it := range pi.items {
				it.fail = &failure{reason: pi.class, err: pi.err, status: pi.status, index: pi.name, doc: it.doc(nil)}
				pk.releaseLocked(it)
				left[it.tk.p.tp] = true
				dead = append(dead, it)
			}
			pi.items = nil
			pk.resumeLocked(left)
			continue
		}
		if d := pi.next.Sub(now); d > 0 {
			wait = min(wait, d)
			continue
		}
		if due == nil || pi.next.Before(due.next) {
			due = pi
		}
	}
	if due != nil {
		due.busy = true
	}
	pk.active.Store(len(pk.indices) > 0)
	pk.ix.m.parkedIndices.Set(float64(len(pk.indices)))
	pk.mu.Unlock()
	if len(dead) > 0 {
		pk.dead.add(dead)
	}
	return due, wait
}

// retry sends up to one request's worth of pi's documents, oldest first,
// and sorts the outcome: stored documents are done, rejected ones
// dead-lettered, the rest stay parked.
func (pk *parking) retry(ctx context.Context, wk *worker, pi *parkedIndex) {
	ix := pk.ix
	pk.mu.Lock()
	n, size := 0, 0
	for n < len(pi.items) && (n == 0 || size+len(pi.items[n].own) <= ix.cfg.FlushBytes) && (pi.limit == 0 || n < pi.limit) {
		size += len(pi.items[n].own)
		n++
	}
	// The chunk leaves pi.items while it is sent (drop must not see it);
	// what fails again goes back in front of documents parked meanwhile.
	chunk := append([]*item(nil), pi.items[:n]...)
	pi.items = append([]*item(nil), pi.items[n:]...)
	pk.mu.Unlock()

	live := wk.dropGone(append([]*item(nil), chunk...))
	wk.tickets, wk.next, wk.failed, wk.parkList = wk.tickets[:0], wk.next[:0], wk.failed[:0], wk.parkList[:0]
	wk.round = inlineRounds // park every retryable failure again
	limit := len(live)
	stored := false
	if len(live) > 0 {
		stored = wk.send(ctx, &batch{}, live, false, &limit)
	}
	if limit < len(live) {
		pi.limit = limit // only the parker touches it
	}

	now := time.Now()
	back := make(map[*item]bool, len(wk.next)+len(wk.parkList))
	for _, it := range wk.next { // the whole request failed: no news of the index
		back[it] = true
	}
	var dead []*item
	pk.mu.Lock()
	for _, e := range wk.parkList {
		if pi.givenUp && e.class == pi.class {
			e.it.fail = &failure{reason: e.class, err: e.err, status: e.status, index: pi.name, doc: e.it.doc(nil)}
			continue // dead-lettered below, with wk.failed
		}
		pk.reclassLocked(pi, e.class, e.status, e.err, now)
		back[e.it] = true
	}
	kept := make([]*item, 0, len(back)+len(pi.items))
	left := map[topicPartition]bool{}
	for _, it := range chunk {
		if back[it] {
			kept = append(kept, it)
			continue
		}
		pk.releaseLocked(it)
		left[it.tk.p.tp] = true
		if it.fail != nil {
			dead = append(dead, it)
		}
	}
	pi.items = append(kept, pi.items...)
	pi.busy = false
	if stored {
		pi.bo.Reset()
		pi.givenUp = false
		pi.next = now
	} else {
		pi.next = now.Add(pi.bo.NextBackOff())
	}
	if len(pi.items) == 0 {
		pi.idle = now
		if !pi.givenUp {
			delete(pk.indices, pi.name)
		}
	}
	pk.active.Store(len(pk.indices) > 0)
	ix.m.parkedIndices.Set(float64(len(pk.indices)))
	pk.resumeLocked(left)
	pk.mu.Unlock()

	ix.tracker.done(wk.tickets)
	if len(dead) > 0 {
		pk.dead.add(dead)
	}
}
