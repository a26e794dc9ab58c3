package router

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/internal/kafka"
)

// How a transaction keeps tenants apart
//
// Each poll of raw records is split into units, one per partition, and the
// units into one piece of work per tenant. Every tenant's work runs in its
// own goroutine (so a router uses all its cores, and the Go scheduler
// shares them between tenants). A transaction waits for the tenants'
// work at most SLUICE_ROUTER_BATCH_MAX_TIME; what is done by then is
// produced and committed.
//
// A unit is all or nothing in a transaction: the group session commits a
// partition's offsets to the last record polled, so a partition can only be
// left out of a transaction whole, by rewinding it to its first polled
// record (which is also its committed offset). Three things leave a unit
// out:
//   - its tenant is not done in time: the tenant's units are rewound and
//     their partitions paused, and its goroutine goes on in the background,
//     on at most half the cores (bgSlots), until its units are done. Their
//     outputs are kept; when the partitions are polled again from the same
//     offsets, the kept outputs are used and only newer records are
//     processed. A slow tenant so makes progress at its own pace, and
//     never holds a transaction of the others. A poll that reaches less
//     far than the kept outputs cannot use them: its unit is left out, and
//     the partition polled again (see split);
//   - a multiline record at its end is still open and young (its last line
//     came less than max_wait ago): the unit is rewound and its partition
//     paused until max_wait has passed, once per first offset; the next
//     time the open records are finished whatever their age. Joined
//     records so never span transactions, and a tenant's wait for
//     continuation lines never holds another tenant's records;
//   - its tenant's parsed or dead-letter topic is missing: the tenant is
//     paused with doubling waits (pauser).
//
// A record that would make Kafka refuse the transaction is dead-lettered
// instead of produced: larger than its topic's max.message.bytes
// (too_large) or routed to a dataset topic that does not exist
// (topic_missing). So one tenant's output never aborts the others'
// transaction; if a produce fails all the same, the transaction is aborted
// and that tenant paused, and the next one goes through without it.

// partKey names a partition.
type partKey struct {
	topic     string
	partition int32
}

// unit is one partition's records of one poll.
type unit struct {
	key     partKey
	recs    []*kgo.Record
	mayHold bool // a young open multiline record may hold the unit back

	// Written by the tenant's goroutine; read by the loop once the work is
	// reported (the channel send orders the accesses).
	outs      []*kgo.Record
	skipTo    int64     // records before this offset have their outputs in outs already
	holdUntil time.Time // non-zero: held back for continuation lines until then
	done      bool      // every record processed (a held unit is not)
}

func (u *unit) first() kgo.EpochOffset {
	return kgo.EpochOffset{Epoch: u.recs[0].LeaderEpoch, Offset: u.recs[0].Offset}
}

func (u *unit) last() int64 { return u.recs[len(u.recs)-1].Offset }

// tenantWork is one tenant's units of one poll, processed in order by one
// goroutine.
type tenantWork struct {
	tenant string
	units  []*unit
	txn    uint64      // the transaction it was started in
	cut    atomic.Bool // set when the transaction stopped waiting for it
	// missing is set when the tenant's parsed or dead-letter topic does not
	// exist: none of its units may be committed.
	missing error
	elapsed time.Duration
}

// loop is Run's state across transactions. Only Run's goroutine uses it,
// apart from what the tenants' goroutines write into their work.
type loop struct {
	rt      *Router
	base    []kgo.Opt // the Kafka client options every client of the router starts from
	sess    *kgo.GroupTransactSession
	pauser  *pauser
	outputs *topicCache

	txn     uint64
	reports chan *tenantWork // tenants' goroutines report here when done
	bgSlots chan struct{}    // background work in progress, at most half the cores

	parts map[partKey]*partState
	bombs []*kgo.ErrDecompressTooLarge // refused batches to dead-letter and skip
}

// partState is what the loop remembers of a partition between
// transactions.
type partState struct {
	bg        *unit     // background work on the partition
	bgDone    bool      // bg is done: its outputs are kept for the next poll
	bgSince   time.Time // when bg was cut out of its transaction
	heldFrom  int64     // first offset of the unit last held back for multiline
	resumeAt  time.Time // a held partition is resumed then (zero: not held)
	pausedBg  bool      // paused until bg is done
	short     int       // polls in a row that reached less far than bg's kept outputs
	throttled bool
}

// maxShortPolls is how many polls in a row that reach less far than a
// partition's kept outputs leave its unit out before the outputs are given
// up.
const maxShortPolls = 3

func newLoop(rt *Router, base []kgo.Opt, sess *kgo.GroupTransactSession, p *pauser, outputs *topicCache) *loop {
	return &loop{
		rt: rt, base: base, sess: sess, pauser: p, outputs: outputs,
		reports: make(chan *tenantWork, 1024),
		bgSlots: make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2)),
		parts:   map[partKey]*partState{},
	}
}

func (l *loop) part(k partKey) *partState {
	ps := l.parts[k]
	if ps == nil {
		ps = &partState{heldFrom: -1}
		l.parts[k] = ps
	}
	return ps
}

// idle handles what arrived while no transaction was open: background
// work that finished, holds that are over. It returns when the next poll
// must wake up at the latest (zero: no need).
func (l *loop) idle() time.Time {
	for {
		select {
		case tw := <-l.reports:
			l.finishedInBackground(tw)
			continue
		default:
		}
		break
	}
	now := time.Now()
	var wake time.Time
	soonest := func(t time.Time) {
		if wake.IsZero() || t.Before(wake) {
			wake = t
		}
	}
	var resume map[string][]int32
	for k, ps := range l.parts {
		switch {
		case !ps.resumeAt.IsZero() && !now.Before(ps.resumeAt):
			ps.resumeAt = time.Time{}
			if !ps.pausedBg {
				resume = addPart(resume, k)
			}
		case !ps.resumeAt.IsZero():
			soonest(ps.resumeAt)
		}
		if ps.bg != nil && !ps.bgDone {
			soonest(now.Add(100 * time.Millisecond)) // look for its report soon
		}
		// Kept outputs nobody came back for (the partition moved to
		// another router) are forgotten after a while.
		if ps.bg != nil && ps.bgDone && now.Sub(ps.bgSince) > 10*time.Minute {
			ps.bg, ps.bgDone = nil, false
		}
		if ps.bg == nil && ps.resumeAt.IsZero() && ps.heldFrom < 0 && !ps.pausedBg {
			delete(l.parts, k)
		}
	}
	if len(resume) > 0 {
		l.sess.Client().ResumeFetchPartitions(resume)
	}
	return wake
}

func addPart(m map[string][]int32, k partKey) map[string][]int32 {
	if m == nil {
		m = map[string][]int32{}
	}
	m[k.topic] = append(m[k.topic], k.partition)
	return m
}

// split groups a poll's records into per-tenant work, taking kept
// background outputs into account. It returns apart the units to leave out
// of the transaction (the caller rewinds them): those whose partition still
// has background work in progress, or kept outputs that this poll does not
// reach.
func (l *loop) split(fetches kgo.Fetches) (works []*tenantWork, rewind []*unit) {
	type polled struct {
		u      *unit
		tenant string
	}
	var order []polled
	units := map[partKey]*unit{}
	fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
		if len(fp.Records) == 0 {
			return
		}
		tenant, kind, _, ok := l.rt.topics.TenantOf(fp.Topic)
		if !ok || kind != kafka.KindRaw {
			return // the pattern only matches raw topics; nothing else is ours
		}
		key := partKey{fp.Topic, fp.Partition}
		if u := units[key]; u != nil {
			u.recs = append(u.recs, fp.Records...) // the same partition twice in one poll
			return
		}
		u := &unit{key: key, recs: fp.Records, skipTo: -1}
		units[key] = u
		order = append(order, polled{u, tenant})
	})
	byTenant := map[string]*tenantWork{}
	for _, p := range order {
		u := p.u
		if ps := l.parts[u.key]; ps != nil {
			switch {
			case ps.bg != nil && !ps.bgDone:
				rewind = append(rewind, u) // still being worked on in the background
				continue
			case ps.bg != nil && ps.bg.first() == u.first() && u.last() >= ps.bg.last():
				// Only when this poll reaches as far: outputs are not kept
				// per record (a joined record's belong to its last line),
				// so they are used whole or not at all.
				u.outs = ps.bg.outs
				u.skipTo = ps.bg.last() + 1
				ps.bg, ps.bgDone, ps.short = nil, false, 0
			case ps.bg != nil && ps.bg.first() == u.first() && ps.short < maxShortPolls:
				// A shorter poll from the same offset: a fetch shares its
				// bytes with the other partitions in it, in an order the
				// broker rotates. Processing the records again would throw
				// away the background work, and a tenant slow enough to be
				// cut out again would keep outputs for this reach, which
				// the next poll may miss in turn: with the order
				// alternating, for ever. The unit is left out instead, and
				// the partition polled again. A few polls that all fall
				// short (the kept unit had the partition twice in its
				// poll) give the outputs up.
				ps.short++
				rewind = append(rewind, u)
				continue
			case ps.bg != nil:
				ps.bg, ps.bgDone, ps.short = nil, false, 0 // from other offsets, or never reached again: of no use
			}
			u.mayHold = ps.heldFrom != u.first().Offset
		} else {
			u.mayHold = true
		}
		tw := byTenant[p.tenant]
		if tw == nil {
			tw = &tenantWork{tenant: p.tenant, txn: l.txn}
			byTenant[p.tenant] = tw
			works = append(works, tw)
		}
		tw.units = append(tw.units, u)
	}
	return works, rewind
}

// rewind makes units' partitions start again at their first record, so
// that this transaction commits nothing of them.
func (l *loop) rewind(units []*unit) {
	if len(units) == 0 {
		return
	}
	set := map[string]map[int32]kgo.EpochOffset{}
	for _, u := range units {
		if set[u.key.topic] == nil {
			set[u.key.topic] = map[int32]kgo.EpochOffset{}
		}
		set[u.key.topic][u.key.partition] = u.first()
	}
	l.sess.Client().SetOffsets(set)
}

// pauseParts pauses units' partitions.
func (l *loop) pauseParts(units []*unit) {
	var m map[string][]int32
	for _, u := range units {
		m = addPart(m, u.key)
	}
	if m != nil {
		l.sess.Client().PauseFetchPartitions(m)
	}
}

// work processes a tenant's units in order, then reports. Run in its own
// goroutine; once cut out of its transaction it takes a background slot
// (between records) and goes on.
func (l *loop) work(ctx context.Context, tw *tenantWork) {
	rt := l.rt
	start := time.Now()
	inBackground := false
	defer func() {
		if v := recover(); v != nil {
			// Process recovers a pipeline's panics; anything else is the
			// router's own bug, and must not take every tenant down.
			tw.missing = fmt.Errorf("processing panicked: %v", v)
			rt.log.Error("processing a tenant's records panicked", "tenant", tw.tenant, "panic", v)
		}
		tw.elapsed = time.Since(start)
		if inBackground {
			<-l.bgSlots
		}
		rt.m.tenantSeconds.WithLabelValues(tw.tenant).Add(tw.elapsed.Seconds())
		l.reports <- tw
	}()
	if !rt.pipes.loadedOnce(tw.tenant) {
		if err := l.loadTenant(ctx, tw.tenant); err != nil {
			tw.missing = err
			return
		}
	}
	if err := l.outputs.required(ctx, rt.topics, tw.tenant); err != nil {
		tw.missing = err
		return
	}
	o := newOutputsFor(ctx, l.outputs)
	for _, u := range tw.units {
		var j joiner
		for _, r := range u.recs {
			if r.Offset < u.skipTo {
				continue
			}
			if !inBackground && tw.cut.Load() {
				l.bgSlots <- struct{}{}
				inBackground = true
			}
			u.outs = append(u.outs, rt.handle(ctx, tw.tenant, r, &j, o)...)
		}
		if young := j.youngUntil(time.Now()); !young.IsZero() && u.mayHold && !tw.cut.Load() {
			u.holdUntil = young
			u.outs = nil
			continue
		}
		for _, g := range j.all() {
			u.outs = append(u.outs, g.run(rt, o)...)
		}
		u.done = true
	}
}

// loadTenant reads a tenant's config topic the first time its records are
// seen, when FollowConfig has not yet delivered it: a tenant made, given a
// pipeline and sending records within a metadata refresh must not have
// its first records passed through unparsed. FollowConfig, which finds the
// topic later and replays it, then changes nothing (see registry.apply).
func (l *loop) loadTenant(ctx context.Context, tenant string) error {
	cl, err := kafka.NewClient(append(slices.Clip(l.base), kgo.ClientID("sluice-router-config-reader"))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	sp, err := ReadPipeline(rctx, cl, l.rt.topics, tenant)
	switch {
	case errors.Is(err, ErrNoConfigTopic) || err == nil && sp == nil:
		l.rt.pipes.markLoaded(tenant) // pass-through, or the legacy topic's pipeline
		return nil
	case err != nil:
		return fmt.Errorf("reading the tenant's config topic: %w", err)
	}
	l.rt.pipes.apply(tenant, sp.Source, false)
	return nil
}

// transact processes one poll in one transaction; see the comment at the
// top of this file.
func (l *loop) transact(ctx context.Context, fetches kgo.Fetches) error {
	rt := l.rt
	start := time.Now()
	l.txn++
	if err := l.sess.Begin(); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	var mu sync.Mutex
	failed := map[string]error{} // tenant -> produce error
	promise := func(r *kgo.Record, err error) {
		if err == nil {
			return
		}
		tenant, _, _, _ := rt.topics.TenantOf(r.Topic)
		mu.Lock()
		failed[tenant] = err
		mu.Unlock()
	}
	l.deadLetterBombs(ctx, promise)

	works, rewind := l.split(fetches)
	l.rewind(rewind)
	for _, tw := range works {
		go l.work(ctx, tw)
	}
	timer := time.NewTimer(rt.cfg.BatchMaxTime)
	defer timer.Stop()
	reported := make(map[*tenantWork]bool, len(works))
	for len(reported) < len(works) {
		select {
		case tw := <-l.reports:
			if tw.txn != l.txn || tw.cut.Load() {
				l.finishedInBackground(tw)
				continue
			}
			reported[tw] = true
			l.finish(ctx, tw, promise)
		case <-timer.C:
			for _, tw := range works {
				if !reported[tw] {
					l.cutOut(tw)
					reported[tw] = true
				}
			}
		}
	}
	// The produce errors are only all known once everything is flushed;
	// End flushes first, so: flush, look, then end.
	if err := l.sess.Client().Flush(ctx); err != nil {
		return err // ctx ended: the transaction is abandoned and aborted
	}
	mu.Lock()
	commit := kgo.TransactionEndTry(len(failed) == 0)
	for tenant, err := range failed {
		l.pauser.pause(rt.topics.Raw(tenant), err)
		rt.logLimited("produce:"+tenant, "producing a tenant's records failed; pausing the tenant and retrying without it",
			"tenant", tenant, "err", err)
	}
	mu.Unlock()
	committed, err := l.sess.End(ctx, commit)
	rt.m.batchDuration.Observe(time.Since(start).Seconds())
	if committed {
		rt.m.transactions.WithLabelValues("commit").Inc()
	} else {
		rt.m.transactions.WithLabelValues("abort").Inc()
	}
	if err != nil {
		return fmt.Errorf("end transaction: %w", err)
	}
	return nil
}

// finish takes a tenant's work done within its transaction: produce its
// units, or leave out those that must wait.
func (l *loop) finish(ctx context.Context, tw *tenantWork, promise func(*kgo.Record, error)) {
	rt := l.rt
	if tw.missing != nil {
		l.rewind(tw.units)
		l.pauser.pause(rt.topics.Raw(tw.tenant), tw.missing)
		rt.logLimited("missing:"+tw.tenant, "a tenant's output topic is missing or cannot be used; pausing the tenant",
			"tenant", tw.tenant, "err", tw.missing)
		return
	}
	var held []*unit
	for _, u := range tw.units {
		ps := l.part(u.key)
		if !u.holdUntil.IsZero() {
			held = append(held, u)
			ps.heldFrom, ps.resumeAt = u.first().Offset, u.holdUntil
			continue
		}
		ps.heldFrom = -1
		for _, out := range u.outs {
			l.sess.Produce(ctx, out, promise)
		}
	}
	if len(held) > 0 {
		rt.m.multilineHolds.WithLabelValues(tw.tenant).Add(float64(len(held)))
		l.rewind(held)
		l.pauseParts(held)
	}
}

// cutOut leaves a tenant that is not done out of the transaction: its
// units are rewound and their partitions paused until its goroutine,
// going on in the background, is done.
func (l *loop) cutOut(tw *tenantWork) {
	rt := l.rt
	tw.cut.Store(true)
	now := time.Now()
	for _, u := range tw.units {
		ps := l.part(u.key)
		ps.bg, ps.bgDone, ps.bgSince, ps.pausedBg, ps.short = u, false, now, true, 0
	}
	l.rewind(tw.units)
	l.pauseParts(tw.units)
	rt.m.throttled.WithLabelValues(tw.tenant).Inc()
	rt.pipes.setPaused(tw.tenant, fmt.Sprintf("processing took longer than %s: the tenant's records are finished in the background and committed later", rt.cfg.BatchMaxTime), time.Time{})
	rt.logLimited("slow:"+tw.tenant, "a tenant's processing took longer than a transaction may wait; finishing it in the background",
		"tenant", tw.tenant, "limit", rt.cfg.BatchMaxTime)
}

// finishedInBackground takes the report of a tenant cut out of its
// transaction: its outputs are kept for when its partitions are polled
// again, and the partitions resumed.
func (l *loop) finishedInBackground(tw *tenantWork) {
	var resume map[string][]int32
	for _, u := range tw.units {
		ps := l.parts[u.key]
		if ps == nil || ps.bg != u {
			continue
		}
		if tw.missing != nil || !u.done {
			ps.bg = nil // nothing to keep: it is processed again
		} else {
			ps.bgDone = true
		}
		ps.pausedBg = false
		if ps.resumeAt.IsZero() {
			resume = addPart(resume, u.key)
		}
	}
	if resume != nil {
		l.sess.Client().ResumeFetchPartitions(resume)
	}
	l.rt.pipes.setResumed(tw.tenant)
}

// deadLetterBombs writes a dead letter for each batch refused because it
// would decompress to too much, and skips the batch. The partition's
// offset is committed with its next records: should the router restart
// before, the batch is refused and dead-lettered again.
func (l *loop) deadLetterBombs(ctx context.Context, promise func(*kgo.Record, error)) {
	rt := l.rt
	set := map[string]map[int32]kgo.EpochOffset{}
	for _, b := range l.bombs {
		tenant, kind, _, ok := rt.topics.TenantOf(b.Topic)
		if ok && kind == kafka.KindRaw {
			raw := &kgo.Record{Topic: b.Topic, Partition: b.Partition, Offset: b.Offset, Timestamp: time.Now()}
			f := &Failure{Step: -1, Reason: ReasonTooLarge, Err: fmt.Errorf(
				"the record batch at offsets %d to %d decompresses to more than the router takes (SLUICE_ROUTER_MAX_BATCH_BYTES %d, and at most 64 times its compressed size); it was not decoded",
				b.Offset, b.NextOffset-1, rt.cfg.MaxBatchBytes)}
			l.sess.Produce(ctx, rt.dlq(tenant, 0, raw, b.NextOffset-1, f), promise)
		}
		if set[b.Topic] == nil {
			set[b.Topic] = map[int32]kgo.EpochOffset{}
		}
		set[b.Topic][b.Partition] = kgo.EpochOffset{Epoch: b.Epoch, Offset: b.NextOffset}
	}
	l.bombs = nil
	if len(set) > 0 {
		l.sess.Client().SetOffsets(set)
	}
}

// fetchError takes a poll's error for a partition.
func (l *loop) fetchError(topic string, partition int32, err error) {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return // the poll's own deadline
	}
	if b, ok := errors.AsType[*kgo.ErrDecompressTooLarge](err); ok {
		l.bombs = append(l.bombs, b)
		l.rt.logLimited("bomb:"+topic, "a record batch decompresses to too much; dead-lettering and skipping it",
			"topic", topic, "partition", partition, "offset", b.Offset, "next_offset", b.NextOffset)
		return
	}
	l.rt.logLimited("fetch:"+topic, "fetch failed", "topic", topic, "partition", partition, "err", err)
}
