package router

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/internal/telemetry"
	"github.com/sluicelogs/sluice/schemas"
)

// Options are the router's collaborators, set by the command.
type Options struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Ready, when set, is called with true once the pipelines are loaded
	// and the router consumes, and with false when it stops.
	Ready func(bool)
}

// Router consumes <prefix>.raw.<tenant> topics in a consumer group, applies
// each tenant's pipeline and produces to the tenant's parsed topics or its
// dead-letter topic, inside Kafka transactions.
type Router struct {
	cfg     Config
	log     *slog.Logger
	reg     prometheus.Registerer
	m       *metrics
	topics  kafka.Topics
	id      string
	ready   func(bool)
	limiter *telemetry.Limiter
	dec     *schemas.Decoder

	pipes *registry
}

// New checks cfg and prepares a router. It starts nothing.
func New(cfg Config, o Options) (*Router, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("router config: %w", err)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	if o.Ready == nil {
		o.Ready = func(bool) {}
	}
	m := newMetrics(o.Registerer)
	return &Router{
		cfg:     cfg,
		log:     o.Logger,
		reg:     o.Registerer,
		m:       m,
		topics:  kafka.Topics{Prefix: cfg.Kafka.TopicPrefix},
		id:      cfg.id(),
		ready:   o.Ready,
		limiter: telemetry.NewLimiter(30 * time.Second),
		dec:     schemas.NewDecoder(),
		pipes:   newRegistry(m),
	}, nil
}

// Run loads every tenant's pipeline from the config topic, then consumes,
// transforms and produces until ctx is cancelled. On cancellation it ends
// the transaction in progress (committing it if it can) within
// SLUICE_ROUTER_SHUTDOWN_TIMEOUT and returns nil. It returns an error when it
// cannot start, or when the transactional producer fails beyond recovery
// (the process should restart; nothing is lost or duplicated).
func (rt *Router) Run(ctx context.Context) error {
	base, err := rt.cfg.Kafka.Options()
	if err != nil {
		return fmt.Errorf("kafka settings: %w", err)
	}
	clientID := rt.cfg.Kafka.ClientID
	if clientID == "" {
		clientID = "sluice-router"
	}
	base = append(base, kgo.WithLogger(kafka.NewLogger(rt.log)))

	// A plain client for the config topic and status records: the
	// transactional client can only produce inside transactions.
	admin, err := kgo.NewClient(append(base, kgo.ClientID(clientID+"-config"))...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer admin.Close()
	adm := kadm.NewClient(admin)
	configTopic := rt.topics.Config()
	if err := EnsureConfigTopic(ctx, adm, configTopic); err != nil {
		return fmt.Errorf("config topic %s: %w", configTopic, err)
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	followCtx, stopFollowing := context.WithCancel(ctx)
	defer stopFollowing()
	caughtUp := make(chan struct{})
	followErr := make(chan error, 1)
	var once sync.Once
	wg.Go(func() {
		err := FollowConfig(followCtx, append(base, kgo.ClientID(clientID+"-config-follower")), configTopic,
			rt.pipes.apply, func() { once.Do(func() { close(caughtUp) }) })
		if followCtx.Err() == nil {
			// Without the config topic the router cannot serve pipelines:
			// end, so the process restarts.
			followErr <- fmt.Errorf("following config topic %s stopped: %v", configTopic, err)
			stopFollowing()
		}
	})
	select {
	case <-caughtUp:
	case err := <-followErr:
		return err
	case <-ctx.Done():
		return nil
	}
	rt.log.Info("pipelines loaded", "tenants", rt.pipes.count(), "router", rt.id)
	wg.Go(func() { rt.publishStatus(followCtx, admin, configTopic) })
	outputs := &topicCache{adm: adm, maxAge: rt.cfg.RescanInterval}

	sess, err := kgo.NewGroupTransactSession(append(append(base, kafka.Membership(rt.cfg.ID)...),
		kgo.ClientID(clientID),
		kgo.WithHooks(kafka.NewMetrics(rt.reg)),
		kgo.ConsumerGroup(rt.cfg.Group),
		kgo.ConsumeRegex(),
		// Only names a tenant can have: anything else under the prefix is
		// not a tenant's raw topic and is left alone.
		kgo.ConsumeTopics(rt.topics.Pattern(kafka.KindRaw)),
		kgo.MetadataMaxAge(rt.cfg.RescanInterval),
		kgo.MetadataMinAge(min(rt.cfg.RescanInterval, 5*time.Second)),
		kgo.TransactionalID(rt.cfg.Group+"-"+rt.id),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.ProducerBatchCompression(kgo.ZstdCompression().WithLevel(int(zstd.SpeedFastest)), kgo.NoCompression()),
		kgo.UnknownTopicRetries(2), // a missing output topic pauses its tenant quickly
	)...)
	if err != nil {
		return fmt.Errorf("kafka transactional client: %w", err)
	}
	defer sess.Close()
	rt.ready(true)
	defer rt.ready(false)
	rt.log.Info("router consuming", "group", rt.cfg.Group, "transactional_id", rt.cfg.Group+"-"+rt.id, "pattern", "^"+rt.topics.Prefix+`\.raw\.`)

	// A transaction under way when ctx ends may still finish, within
	// SLUICE_ROUTER_SHUTDOWN_TIMEOUT; after that it is abandoned (and
	// aborted by the broker): nothing is lost, it is consumed again.
	txnCtx, cancelTxn := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelTxn()
	stopAfter := context.AfterFunc(ctx, func() { time.AfterFunc(rt.cfg.ShutdownTimeout, cancelTxn) })
	defer stopAfter()

	p := &pauser{sess: sess, max: rt.cfg.TenantRetryMax, m: rt.m}
	for {
		p.resumeDue()
		// While tenants are paused the poll wakes up in time to resume
		// them, even if nothing else arrives.
		pollCtx, cancelPoll := ctx, context.CancelFunc(func() {})
		if next, ok := p.nextResume(); ok {
			pollCtx, cancelPoll = context.WithDeadline(ctx, next)
		}
		fetches := sess.PollRecords(pollCtx, rt.cfg.BatchRecords)
		cancelPoll()
		if ctx.Err() != nil || fetches.IsClientClosed() {
			break
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return // the poll's own deadline
			}
			rt.logLimited("fetch:"+topic, "fetch failed", "topic", topic, "partition", partition, "err", err)
		})
		if fetches.NumRecords() == 0 {
			continue
		}
		if err := rt.transact(txnCtx, sess, fetches, p, outputs); err != nil {
			if txnCtx.Err() != nil {
				break
			}
			return err
		}
	}
	// A router that leaves cleanly takes its status records with it, so
	// sluice pipeline get does not list routers long gone.
	stopFollowing()
	wg.Wait()
	tombCtx, cancelTomb := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancelTomb()
	for _, st := range rt.pipes.statuses(rt.id) {
		_ = admin.ProduceSync(tombCtx, &kgo.Record{Topic: configTopic, Key: []byte(StatusKey(st.Tenant, rt.id))}).FirstErr()
	}
	rt.log.Info("router stopped")
	return nil
}

// transact processes one batch in one transaction. Records of a tenant
// whose output topic turns out missing or denied abort the transaction
// (everything is consumed again) and pause that tenant, so the next
// transaction goes through without it.
func (rt *Router) transact(ctx context.Context, sess *kgo.GroupTransactSession, fetches kgo.Fetches, p *pauser, outputs *topicCache) error {
	start := time.Now()
	if err := sess.Begin(); err != nil {
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
	produce := func(outs []*kgo.Record) {
		for _, out := range outs {
			// The client would wait for a missing topic to appear rather
			// than fail the record: a tenant without its output topics is
			// found here, before producing.
			if !outputs.exists(ctx, out.Topic) {
				promise(out, fmt.Errorf("%w: %s", errTopicMissing, out.Topic))
				continue
			}
			sess.Produce(ctx, out, promise)
		}
	}
	var j joiner
	handle := func(r *kgo.Record) { produce(rt.handle(ctx, r, &j)) }
	fetches.EachRecord(handle)
	// Records being joined from continuation lines wait for more lines in
	// this transaction (never across transactions): poll on until those
	// open after the batch have waited their max_wait. Records opened
	// meanwhile are finished at the end, so a busy multiline tenant cannot
	// keep the transaction open.
	limit, waiting := j.latest()
	for waiting && ctx.Err() == nil {
		for _, g := range j.expired(time.Now()) {
			produce(g.run(rt))
		}
		next, ok := j.next()
		if !ok || !time.Now().Before(limit) {
			break
		}
		if limit.Before(next) {
			next = limit
		}
		pollCtx, cancel := context.WithDeadline(ctx, next)
		more := sess.PollRecords(pollCtx, rt.cfg.BatchRecords)
		cancel()
		more.EachRecord(handle)
	}
	for _, g := range j.all() {
		produce(g.run(rt))
	}
	// The produce errors are only all known once everything is flushed;
	// End flushes first, so: flush, look, then end.
	if err := sess.Client().Flush(ctx); err != nil {
		return err // ctx ended: the transaction is abandoned and aborted
	}
	mu.Lock()
	commit := kgo.TransactionEndTry(len(failed) == 0)
	for tenant, err := range failed {
		p.pause(rt.topics.Raw(tenant), err)
		rt.logLimited("produce:"+tenant, "output topic of a tenant is missing or denied; pausing the tenant and retrying without it",
			"tenant", tenant, "err", err)
	}
	mu.Unlock()
	committed, err := sess.End(ctx, commit)
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

// handle takes one raw record: decodes it, and either joins it with the
// records before it (when the tenant's pipeline starts with multiline),
// returning what that finished, or runs the pipeline on it.
func (rt *Router) handle(ctx context.Context, r *kgo.Record, j *joiner) []*kgo.Record {
	tenant, kind, _, ok := rt.topics.TenantOf(r.Topic)
	if !ok || kind != kafka.KindRaw {
		return nil // the pattern only matches raw topics; nothing else is ours
	}
	tm := rt.m.tenant(tenant)
	tm.in.Inc()
	tm.latency.Observe(time.Since(r.Timestamp).Seconds())
	rec, failure := rt.decode(ctx, tenant, r)
	if failure != nil {
		return []*kgo.Record{rt.dlq(tenant, 0, r, 0, failure)}
	}
	pipe := rt.pipes.get(tenant)
	if ml := pipe.Multiline(); ml != nil {
		if g := j.add(tenant, r, rec, ml, time.Now()); g != nil {
			return g.run(rt)
		}
		return nil
	}
	return rt.run(tenant, pipe, r, rec, 0)
}

// run applies the tenant's pipeline to a decoded record and returns what
// to produce: the transformed record, a dead-letter record, or nothing
// (dropped). raw is the record it came from; for lines joined by
// multiline, a copy of the first line's record holding every line's
// payload, and last is the offset of the last line (0 otherwise). pipe is
// the tenant's pipeline in force, if the caller has it (nil: look it up).
func (rt *Router) run(tenant string, pipe *Pipeline, raw *kgo.Record, rec schemas.Record, last int64) []*kgo.Record {
	var res Result
	var work schemas.Record
	// A version that is broken at run time (see registry.broken) is taken
	// out of service and the record is processed again, from a copy, by the
	// previous good version (at most twice: then pass-through is in force).
	for attempt := range 3 {
		work = rec
		work.Attributes = maps.Clone(rec.Attributes) // Process rewrites the map; a retry needs the original
		if pipe == nil || attempt > 0 {
			pipe = rt.pipes.get(tenant)
		}
		res = pipe.Process(&work)
		if pipe.Version == 0 || !rt.pipes.broken(tenant, res.DLQ) {
			break
		}
		rt.pipes.fail(tenant, pipe, res.DLQ)
	}
	switch {
	case res.Dropped:
		rt.m.dropped.WithLabelValues(tenant, "filter").Inc()
		return nil
	case res.DLQ != nil:
		rt.m.stepErrors.WithLabelValues(tenant, res.DLQ.StepType).Inc()
		return []*kgo.Record{rt.dlq(tenant, pipe.Version, raw, last, res.DLQ)}
	}
	topic := rt.topics.Parsed(tenant)
	if res.Stream != "" {
		topic = rt.topics.ParsedStream(tenant, res.Stream)
	}
	v, err := schemas.AppendSingleObject(make([]byte, 0, 2*len(work.Log)+512), &work) // room for parsed attributes
	if err != nil {
		return []*kgo.Record{rt.dlq(tenant, pipe.Version, raw, last, &Failure{Step: -1, Reason: "encode", Err: err})}
	}
	if len(v) > maxOutputBytes {
		// Kafka would refuse it, and the transaction with it, every time.
		return []*kgo.Record{rt.dlq(tenant, pipe.Version, raw, last, &Failure{Step: -1, Reason: "too_large",
			Err: fmt.Errorf("processed record is %d bytes encoded, more than %d", len(v), maxOutputBytes)})}
	}
	rt.m.tenant(tenant).out.Inc()
	return []*kgo.Record{{Topic: topic, Key: raw.Key, Value: v, Headers: avroHeaders}}
}

// maxOutputBytes bounds what the router produces, below the producer's
// default batch limit (and Kafka's default 1 MiB message limit).
const maxOutputBytes = 900 << 10

var avroHeaders = []kgo.RecordHeader{{Key: "content-type", Value: []byte("application/vnd.sluice.record+avro")}}

// decode reads a raw record (see DecodeInput). The tenant is the topic's,
// whatever the payload says; a missing id is derived from the record's
// place in the topic, missing times from its Kafka timestamp.
func (rt *Router) decode(ctx context.Context, tenant string, r *kgo.Record) (schemas.Record, *Failure) {
	rec, f := DecodeInput(ctx, rt.dec, r.Value)
	if f != nil {
		return rec, f
	}
	rec.Tenant = tenant
	if rec.ID == "" {
		var b [4 + 8]byte
		binary.BigEndian.PutUint32(b[:], uint32(r.Partition))
		binary.BigEndian.PutUint64(b[4:], uint64(r.Offset))
		sum := sha256.Sum256(append([]byte(r.Topic), b[:]...))
		rec.ID = hex.EncodeToString(sum[:16])
	}
	if rec.ObservedTimestamp.IsZero() {
		rec.ObservedTimestamp = r.Timestamp.UTC()
	}
	if rec.Timestamp.IsZero() {
		rec.Timestamp = rec.ObservedTimestamp
	}
	return rec, nil
}

// DecodeInput turns a raw topic's value into a record, as the router does
// (and sluice pipeline test): Avro in either wire format; a JSON object
// with a "log" key fills the record's fields; any other JSON object is an
// application's log line and becomes log whole, so nothing in it is lost
// and a json step parses it like any other line; anything else is a line of
// text (invalid UTF-8 replaced and flagged). A value that claims to be
// Avro or a record but is malformed is a Failure (reason "decode").
func DecodeInput(ctx context.Context, dec *schemas.Decoder, value []byte) (schemas.Record, *Failure) {
	rec, format, err := dec.Decode(ctx, value)
	if err == nil && format == schemas.FormatJSON && rec.Log == "" && !hasLogKey(value) {
		err = schemas.ErrUnknownFormat
	}
	switch {
	case errors.Is(err, schemas.ErrUnknownFormat):
		line := strings.TrimRight(string(value), "\r\n")
		rec = schemas.Record{Log: line}
		if !utf8.ValidString(line) {
			rec.Log, rec.InvalidUTF8 = strings.ToValidUTF8(line, "\uFFFD"), true
		}
	case err != nil:
		return rec, &Failure{Step: -1, Reason: "decode", Err: err}
	}
	return rec, nil
}

// hasLogKey reports whether a JSON object has a top-level "log" key.
func hasLogKey(b []byte) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return false
	}
	_, ok := m["log"]
	return ok
}

func (rt *Router) dlq(tenant string, version int64, r *kgo.Record, last int64, f *Failure) *kgo.Record {
	rt.m.dlq.WithLabelValues(tenant, f.Reason).Inc()
	d := schemas.DeadLetter{
		Reason: f.Reason, Error: f.Error(), Stage: "router", Instance: rt.id,
		Step: f.Step, StepType: f.StepType, PipelineVersion: version,
		Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp.UTC(),
	}
	if last > r.Offset {
		d.LastOffset = last
	}
	d.SetPayload(r.Value)
	return &kgo.Record{Topic: rt.topics.DLQ(tenant), Key: r.Key, Value: d.Marshal(), Headers: jsonHeaders}
}

var jsonHeaders = []kgo.RecordHeader{{Key: "content-type", Value: []byte("application/json")}}

func (rt *Router) logLimited(key, msg string, args ...any) {
	if suppressed, ok := rt.limiter.Allow(key); ok {
		if suppressed > 0 {
			args = append(args, "suppressed", suppressed)
		}
		rt.log.Warn(msg, args...)
	}
}

// publishStatus writes, per tenant, which pipeline version this router
// applies and its last error: at every change and every
// SLUICE_ROUTER_STATUS_INTERVAL.
func (rt *Router) publishStatus(ctx context.Context, cl *kgo.Client, topic string) {
	t := time.NewTicker(rt.cfg.StatusInterval)
	defer t.Stop()
	for {
		for _, st := range rt.pipes.statuses(rt.id) {
			if err := PublishStatus(ctx, cl, topic, st); err != nil && ctx.Err() == nil {
				rt.logLimited("status", "publishing pipeline status failed", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-rt.pipes.changed:
		}
	}
}

var errTopicMissing = errors.New("output topic does not exist")

// topicCache knows which topics exist, from metadata at most maxAge old
// (refreshed at once when a topic is not found, at most once a second).
type topicCache struct {
	adm    *kadm.Client
	maxAge time.Duration

	topics  map[string]bool
	fetched time.Time
}

func (c *topicCache) exists(ctx context.Context, topic string) bool {
	age := time.Since(c.fetched)
	if age > c.maxAge || (!c.topics[topic] && age > time.Second) {
		details, err := c.adm.ListTopics(ctx)
		c.fetched = time.Now() // also on failure: at most one attempt a second
		if err == nil {
			c.topics = make(map[string]bool, len(details))
			for name, d := range details {
				c.topics[name] = d.Err == nil
			}
		} else if c.topics == nil {
			return true // no metadata at all: let the producer find out
		}
	}
	return c.topics[topic]
}

// pauser pauses the raw topics of tenants whose output failed, with
// doubling waits, and resumes them when the wait is over.
type pauser struct {
	sess   *kgo.GroupTransactSession
	max    time.Duration
	m      *metrics
	paused map[string]pausedTopic
}

type pausedTopic struct {
	until   time.Time
	backoff time.Duration
}

// nextResume is when the next paused topic is due to resume.
func (p *pauser) nextResume() (time.Time, bool) {
	var next time.Time
	for _, pt := range p.paused {
		if pt.until.After(time.Now()) && (next.IsZero() || pt.until.Before(next)) {
			next = pt.until
		}
	}
	return next, !next.IsZero()
}

func (p *pauser) pause(topic string, _ error) {
	if p.paused == nil {
		p.paused = map[string]pausedTopic{}
	}
	pt := p.paused[topic]
	pt.backoff = min(max(2*pt.backoff, time.Second), p.max)
	pt.until = time.Now().Add(pt.backoff)
	p.paused[topic] = pt
	p.sess.Client().PauseFetchTopics(topic)
	p.m.tenantsPaused.Set(float64(len(p.paused)))
}

// resumeDue resumes topics whose wait is over. A resumed topic that fails
// again is paused for twice as long; its backoff is forgotten after a
// quiet period of the longest wait.
func (p *pauser) resumeDue() {
	now := time.Now()
	for topic, pt := range p.paused {
		if now.After(pt.until) {
			p.sess.Client().ResumeFetchTopics(topic)
		}
		if now.After(pt.until.Add(p.max)) {
			delete(p.paused, topic)
		}
	}
	n := 0
	for _, pt := range p.paused {
		if now.Before(pt.until) {
			n++
		}
	}
	p.m.tenantsPaused.Set(float64(n))
}
