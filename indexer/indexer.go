package indexer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/internal/telemetry"
	"github.com/sluicelogs/sluice/schemas"
)

// Options are the indexer's collaborators, set by the command.
// Those left nil get telemetry.StageDefaults: a logger that discards, a
// registry of the indexer's own, a Ready that does nothing.
type Options struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Ready, when set, is called with true once the index template is in
	// place and the indexer consumes, and with false when it stops.
	Ready func(bool)
}

// Indexer consumes <prefix>.parsed.<tenant>[.<dataset>] topics in a consumer
// group and bulk-writes the records to Elasticsearch daily indices.
type Indexer struct {
	cfg       Config
	log       *slog.Logger
	reg       prometheus.Registerer
	m         *metrics
	topics    kafka.Topics
	id        string
	ready     func(bool)
	limiter   *telemetry.Limiter
	dec       *schemas.Decoder
	namer     namer
	retention retention
	settings  *tenantSettings // the tenants' records in <prefix>.tenants
	// settingsWait bounds the wait for them at start (tenantSettingsWait).
	settingsWait time.Duration
	tracker      *tracker
	park         *parking // set by Run
	commitMu     sync.Mutex
}

// New checks cfg and prepares an indexer. It starts nothing.
func New(cfg Config, o Options) (*Indexer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("indexer config: %w", err)
	}
	o.Logger, o.Registerer, o.Ready = telemetry.StageDefaults(o.Logger, o.Registerer, o.Ready)
	loc, _ := time.LoadLocation(cfg.Timezone) // checked by Validate
	overrides, _ := ParseRetentionOverrides(cfg.RetentionOverrides)
	t := newTracker()
	o.Registerer.MustRegister(newTrackerCollector(t))
	// Records of schema versions newer than this binary's (from upgraded
	// routers) are resolved through <prefix>.schemas.
	source := kafka.NewSchemaSource(cfg.Kafka.Topics(), func() ([]kgo.Opt, error) {
		opts, err := cfg.Kafka.Options()
		return append(opts, kgo.WithLogger(kafka.NewLogger(o.Logger))), err
	})
	settings := newTenantSettings()
	return &Indexer{
		cfg:          cfg,
		log:          o.Logger,
		reg:          o.Registerer,
		m:            newMetrics(o.Registerer),
		topics:       kafka.Topics{Prefix: cfg.Kafka.TopicPrefix},
		id:           cfg.id(),
		ready:        o.Ready,
		limiter:      telemetry.NewLimiter(30 * time.Second),
		dec:          schemas.NewDecoder(schemas.WithSchemaSource(source.Lookup)),
		namer:        namer{prefix: cfg.IndexPrefix, loc: loc, past: cfg.WindowPast, ahead: cfg.WindowAhead, routes: routes{settings: settings}},
		retention:    retention{prefix: cfg.IndexPrefix, loc: loc, days: cfg.RetentionDays, overrides: overrides, settings: settings},
		settings:     settings,
		settingsWait: tenantSettingsWait,
		tracker:      t,
	}, nil
}

// Run installs the index template, then consumes and indexes until ctx is
// cancelled. Elasticsearch being unreachable is not an error: the indexer
// waits, retrying with backoff, and consumption pauses meanwhile.
//
// On cancellation it stops consuming, sends what it has batched, waits up
// to SLUICE_INDEXER_SHUTDOWN_TIMEOUT for bulk requests in flight, commits
// the offsets of everything stored, leaves the group and returns nil.
// Records not stored by then are consumed again by the next owner of their
// partition (Elasticsearch answers 409 for those it already holds).
func (ix *Indexer) Run(ctx context.Context) error {
	es, err := ix.cfg.Elasticsearch.NewClient()
	if err != nil {
		return fmt.Errorf("elasticsearch settings: %w", err)
	}
	defer func() { _ = es.Close(context.WithoutCancel(ctx)) }() // idle connections
	base, err := ix.cfg.Kafka.Options()
	if err != nil {
		return fmt.Errorf("kafka settings: %w", err)
	}
	// Clipped: every client below appends its own options to base.
	base = slices.Clip(base)
	clientID := ix.cfg.Kafka.ClientID
	if clientID == "" {
		clientID = "sluice-indexer"
	}
	// The tenants' settings are read from now on, while the templates are
	// installed, and followed until Run returns.
	settingsStart := time.Now()
	settingsCtx, stopSettings := context.WithCancel(ctx)
	var settingsDone sync.WaitGroup
	defer settingsDone.Wait()
	defer stopSettings()
	follower := ix.newTenantFollower()
	settingsDone.Go(func() {
		follower.run(settingsCtx, append(base, kgo.ClientID(clientID+"-tenants"), kgo.WithLogger(kafka.NewLogger(ix.log))))
	})

	templates := indexTemplates(&ix.cfg)
	bo := newBackoff(ix.cfg.RetryMax)
	for {
		installed, err := installTemplates(ctx, es, templates)
		if err == nil {
			ix.log.Info("index templates in place", "templates", []string{templates[0].name, templates[1].name}, "version", templateVersion, "installed", installed)
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		ix.logLimited("template", "installing the index template failed; retrying", "err", err)
		if !sleep(ctx, bo.NextBackOff()) {
			return nil
		}
	}

	ix.awaitTenantSettings(ctx, settingsStart)

	// When the consumer leaves the group (at shutdown), kgo calls
	// OnPartitionsRevoked with everything; stopped tells it not to wait for
	// workers that are gone.
	stopped := make(chan struct{})
	cl, err := kafka.NewClient(append(append(base, kafka.Membership(ix.cfg.ID)...),
		kgo.ClientID(clientID),
		kgo.WithLogger(kafka.NewLogger(ix.log)),
		kgo.WithHooks(kafka.NewMetrics(ix.reg)),
		kgo.ConsumerGroup(ix.cfg.Group),
		kgo.ConsumeRegex(),
		kgo.ConsumeTopics(ix.topics.Pattern(kafka.KindParsed)),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.RebalanceTimeout(ix.cfg.RevokeTimeout+40*time.Second),
		kgo.FetchMaxBytes(int32(min(max(4*ix.cfg.FlushBytes, 4<<20), 64<<20))),
		kgo.MetadataMaxAge(ix.cfg.RescanInterval),
		kgo.MetadataMinAge(min(ix.cfg.RescanInterval, 5*time.Second)),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
			ix.revoked(ctx, cl, revoked, stopped)
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
			ix.log.Warn("partitions lost (the group moved on without this indexer); their records in flight will be indexed again by their new owner", "partitions", countPartitions(lost))
			ix.letGo(lost)
		}),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
			if n := countPartitions(assigned); n > 0 {
				ix.log.Info("partitions assigned", "partitions", n)
			}
		}),
		// Dead letters.
		kgo.ProducerBatchCompression(kgo.ZstdCompression().WithLevel(int(zstd.SpeedFastest)), kgo.NoCompression()),
		kgo.UnknownTopicRetries(2),
	)...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()

	// Workers run on their own context: on shutdown they get
	// SLUICE_INDEXER_SHUTDOWN_TIMEOUT to finish what is in flight.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stopAfter := context.AfterFunc(ctx, func() { time.AfterFunc(ix.cfg.ShutdownTimeout, cancelWork) })
	defer stopAfter()

	batches := make(chan *batch)
	free := make(chan *batch, ix.cfg.Workers+1)
	for range ix.cfg.Workers + 1 {
		free <- &batch{}
	}
	pauses := newPauser(cl, func(reason string, delta int) { ix.m.paused.WithLabelValues(reason).Add(float64(delta)) })
	dead := newDeadLetters(ix, cl, pauses)
	var deadDone sync.WaitGroup
	deadDone.Go(func() { dead.run(workCtx) })
	ix.park = newParking(ix, dead, pauses)
	parkCtx, stopParking := context.WithCancel(workCtx)
	defer stopParking()
	var parkDone sync.WaitGroup
	parkDone.Go(func() { ix.park.run(parkCtx, &worker{ix: ix, es: es, dead: dead}) })
	var workers sync.WaitGroup
	for range ix.cfg.Workers {
		w := &worker{ix: ix, es: es, dead: dead}
		workers.Go(func() {
			for b := range batches {
				w.process(workCtx, b)
				b.reset()
				free <- b
			}
		})
	}
	var background sync.WaitGroup
	bgCtx, stopBackground := context.WithCancel(ctx)
	defer stopBackground()
	background.Go(func() { ix.commitLoop(bgCtx, cl) })
	// Always: a tenant's record may set a retention while the indexer's
	// settings set none.
	background.Go(func() { ix.retentionLoop(bgCtx, es) })
	if ix.namer.routes.init(&ix.cfg); ix.namer.routes.fams != nil {
		p := newPrecreator(es, &ix.namer, ix.namer.routes.fams, ix.cfg.PrecreateWindow, ix.log, newPrecreateMetrics(ix.reg, ix.namer.routes.fams))
		p.warn = ix.logLimited
		background.Go(func() { p.run(bgCtx) })
	}

	ix.ready(true)
	defer ix.ready(false)
	ix.log.Info("indexer consuming", "group", ix.cfg.Group, "id", ix.id, "pattern", ix.topics.Pattern(kafka.KindParsed),
		"workers", ix.cfg.Workers, "flush_bytes", ix.cfg.FlushBytes)

	ix.pollLoop(ctx, cl, batches, free)

	close(batches)
	workers.Wait()
	stopParking() // parked documents stay uncommitted: their next owner indexes them
	parkDone.Wait()
	dead.wait(workCtx)
	cancelWork()
	deadDone.Wait()
	close(stopped)
	stopBackground()
	background.Wait()
	commitCtx, cancelCommit := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancelCommit()
	ix.commit(commitCtx, cl, nil)
	ix.log.Info("indexer stopped")
	return nil
}

// pollLoop consumes, shapes documents into batches and hands full (or
// old enough) batches to the workers, until ctx ends. Handing a batch over
// blocks while every worker is busy: consumption pauses, memory stays
// bounded.
func (ix *Indexer) pollLoop(ctx context.Context, cl *kgo.Client, batches chan<- *batch, free <-chan *batch) {
	var (
		w        docWriter
		tickets  []ticket
		infos    = map[string]topicInfo{}
		settings = ix.settings.load() // the snapshot the routes in infos follow
		cur      = <-free
	)
	send := func(sendCtx context.Context) bool {
		ix.tracker.dispatched(cur.items)
		select {
		case batches <- cur:
		case <-sendCtx.Done():
			return false
		}
		select {
		case cur = <-free:
			return true
		case <-sendCtx.Done():
			cur = nil
			return false
		}
	}
	tenantOf := func(topic string) string { return ix.topicInfo(infos, topic).tenant }
	for {
		pollCtx, cancel := ctx, context.CancelFunc(func() {})
		if len(cur.items) > 0 {
			pollCtx, cancel = context.WithDeadline(ctx, cur.first.Add(ix.cfg.FlushInterval))
		}
		fetches := cl.PollRecords(pollCtx, 10_000)
		cancel()
		if fetches.IsClientClosed() {
			return
		}
		// A new snapshot of the tenants' settings may move a tenant to the
		// other layout: the routes of the records polled from now on are
		// worked out again.
		if s := ix.settings.load(); s != settings {
			settings = s
			clear(infos)
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return
			}
			ix.logLimited("fetch:"+topic, "fetch failed", "topic", topic, "partition", partition, "err", err)
		})
		now := time.Now()
		tickets = ix.tracker.register(fetches, tickets, tenantOf, now)
		// Every polled record is registered: rebalances may run now (a
		// revocation waits for the registered records in flight).
		cl.AllowRebalance()
		i := 0
		fetches.EachRecord(func(r *kgo.Record) {
			if cur == nil {
				return // shutting down: left uncommitted, consumed again later
			}
			if len(cur.items) == 0 {
				cur.first = now
			}
			ix.add(ctx, cur, &w, r, tickets[i], ix.topicInfo(infos, r.Topic))
			i++
			if len(cur.buf) >= ix.cfg.FlushBytes {
				send(ctx)
			}
		})
		if ctx.Err() != nil {
			break
		}
		if cur != nil && len(cur.items) > 0 && time.Since(cur.first) >= ix.cfg.FlushInterval {
			send(ctx)
		}
	}
	// Shutting down: what is batched still goes out, if a worker frees up
	// within the shutdown timeout.
	if cur != nil && len(cur.items) > 0 {
		sendCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ix.cfg.ShutdownTimeout)
		defer cancel()
		send(sendCtx)
	}
}

// awaitTenantSettings waits, at start, until the tenants' settings are
// read up to where the topic ended when reading began at since, or
// ix.settingsWait after since: long enough that a tenant's records apply
// to its first documents, short enough that a slow topic does not hold
// indexing up.
func (ix *Indexer) awaitTenantSettings(ctx context.Context, since time.Time) {
	timer := time.NewTimer(time.Until(since.Add(ix.settingsWait)))
	defer timer.Stop()
	select {
	case <-ix.settings.caughtUp():
	case <-ctx.Done():
	case <-timer.C:
		ix.log.Warn("the tenants' settings are not read yet: indexing starts, with the indexer's own settings for the tenants whose records come later; retention waits for them",
			"topic", ix.topics.Tenants(), "waited", ix.settingsWait)
	}
}

// topicInfo is what a topic name says: the tenant and dataset, and so the
// indices its documents go to.
type topicInfo struct {
	tenant, dataset string
	ok              bool
	route           *route // how its documents are indexed (set when ok)
}

func (ix *Indexer) topicInfo(cache map[string]topicInfo, topic string) topicInfo {
	if ti, ok := cache[topic]; ok {
		return ti
	}
	tenant, kind, dataset, ok := ix.topics.TenantOf(topic)
	ti := topicInfo{tenant: tenant, dataset: dataset, ok: ok && kind == kafka.KindParsed}
	if ti.ok {
		ti.route = ix.namer.routes.route(&ix.cfg, ti)
	}
	if len(cache) > 100_000 {
		clear(cache)
	}
	cache[topic] = ti
	return ti
}

// add shapes one record into b: its bulk action and document, or, for a
// record that does not decode, a dead letter to be.
func (ix *Indexer) add(ctx context.Context, b *batch, w *docWriter, r *kgo.Record, tk ticket, ti topicInfo) {
	tm := ix.m.tenant(ti.tenant)
	tm.received.Inc()
	it := item{rec: r, tk: tk}
	rec, _, err := ix.dec.Decode(ctx, r.Value)
	if err != nil || !ti.ok {
		if err == nil {
			err = fmt.Errorf("topic %s is not a parsed topic", r.Topic)
		}
		it.fail = &failure{reason: "decode", err: err.Error()}
		b.items = append(b.items, it)
		return
	}
	t, clamped := ix.namer.indexTime(rec.Timestamp, rec.ObservedTimestamp, r.Timestamp)
	if clamped {
		tm.clamped.Inc()
	}
	if rec.Timestamp.IsZero() {
		rec.Timestamp = t
	}
	rt := ti.route
	ix.namer.routes.note(rt)
	it.start = len(b.buf)
	b.buf = append(b.buf, `{"create":{"_index":"`...)
	b.buf = ix.namer.appendIndex(b.buf, rt.fam.name, rt.fam.dataset, t)
	if rt.shared {
		b.buf = append(b.buf, `","routing":"`...)
		b.buf = append(b.buf, rt.tenant...) // a tenant id needs no escaping
	}
	b.buf = append(b.buf, `","_id":`...)
	b.buf = schemas.AppendJSONString(b.buf, docID(rec.ID, r.Topic, r.Partition, r.Offset))
	b.buf = append(b.buf, "}}\n"...)
	it.mid = len(b.buf)
	var st docStats
	b.buf, st = w.appendDoc(b.buf, &rec, ti.tenant, nil)
	b.buf = append(b.buf, '\n')
	it.end = len(b.buf)
	b.items = append(b.items, it)
	if st.names > 0 {
		ix.m.fieldsMoved.WithLabelValues(ti.tenant, "name").Add(float64(st.names))
	}
	if st.collisions > 0 {
		ix.m.fieldsMoved.WithLabelValues(ti.tenant, "collision").Add(float64(st.collisions))
	}
}

// revoked runs when partitions move to another indexer (or at shutdown,
// when this one leaves the group): it waits, up to
// SLUICE_INDEXER_REVOKE_TIMEOUT, for their records the workers hold,
// commits what is stored and lets them go. Records still in the batch
// being filled are not waited for (the poll loop cannot send it while the
// rebalance blocks its poll): the new owner indexes them, as duplicates if
// this indexer sends them too.
func (ix *Indexer) revoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32, stopped <-chan struct{}) {
	deadline := time.Now().Add(ix.cfg.RevokeTimeout)
	for ix.tracker.inFlight(revoked) > 0 && time.Now().Before(deadline) {
		select {
		case <-stopped:
			deadline = time.Now() // nobody is left to finish them
		case <-time.After(20 * time.Millisecond):
		}
	}
	left := ix.tracker.inFlight(revoked)
	commitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ix.commit(commitCtx, cl, revoked)
	ix.letGo(revoked)
	ix.log.Info("partitions revoked", "partitions", countPartitions(revoked), "left_in_flight", left)
}

// letGo forgets partitions that were revoked or lost: their records in
// flight, parked or waiting for a dead letter, and their pauses.
func (ix *Indexer) letGo(parts map[string][]int32) {
	ix.tracker.drop(parts)
	if ix.park != nil {
		ix.park.drop(parts)
		ix.park.pauses.forget(parts)
	}
}

// commitLoop commits the offsets of stored records every
// SLUICE_INDEXER_COMMIT_INTERVAL.
func (ix *Indexer) commitLoop(ctx context.Context, cl *kgo.Client) {
	t := time.NewTicker(ix.cfg.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			ix.commit(ctx, cl, nil)
		}
	}
}

// commit commits the commit points that moved, of the given partitions
// (nil: every partition). A commit point only ever covers records that are
// stored or dead-lettered (see tracker).
func (ix *Indexer) commit(ctx context.Context, cl *kgo.Client, only map[string][]int32) {
	// One commit at a time, its commit points taken inside: a commit
	// loop's older snapshot must not land after a revocation's newer one.
	ix.commitMu.Lock()
	defer ix.commitMu.Unlock()
	offsets := ix.tracker.commitPoints(only)
	if len(offsets) == 0 {
		return
	}
	var failed error
	cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			failed = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					failed = err
					delete(offsets[t.Topic], p.Partition)
				}
			}
		}
	})
	if failed != nil {
		ix.m.commits.WithLabelValues("error").Inc()
		ix.logLimited("commit", "committing offsets failed; they are committed at the next attempt", "err", failed)
		return
	}
	ix.m.commits.WithLabelValues("ok").Inc()
	ix.tracker.committed(offsets)
}

func (ix *Indexer) logLimited(key, msg string, args ...any) {
	if suppressed, ok := ix.limiter.Allow(key); ok {
		if suppressed > 0 {
			args = append(args, "suppressed", suppressed)
		}
		ix.log.Warn(msg, args...)
	}
}

func countPartitions(m map[string][]int32) int {
	n := 0
	for _, ps := range m {
		n += len(ps)
	}
	return n
}
