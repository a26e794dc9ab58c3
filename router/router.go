package router

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/internal/lineinput"
	"github.com/sluicelogs/sluice/internal/telemetry"
	"github.com/sluicelogs/sluice/schemas"
)

// Options are the router's collaborators, set by the command.
// Those left nil get telemetry.StageDefaults: a logger that discards, a
// registry of the router's own, a Ready that does nothing.
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
	keys  *keyStore // the tenants' pseudonym keys
}

// New checks cfg and prepares a router. It starts nothing.
func New(cfg Config, o Options) (*Router, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("router config: %w", err)
	}
	o.Logger, o.Registerer, o.Ready = telemetry.StageDefaults(o.Logger, o.Registerer, o.Ready)
	m := newMetrics(o.Registerer)
	// Records of schema versions newer than this binary's (from upgraded
	// shippers) are resolved through <prefix>.schemas.
	source := kafka.NewSchemaSource(cfg.Kafka.Topics(), func() ([]kgo.Opt, error) {
		opts, err := cfg.Kafka.Options()
		return append(opts, kgo.WithLogger(kafka.NewLogger(o.Logger))), err
	})
	return &Router{
		cfg:     cfg,
		log:     o.Logger,
		reg:     o.Registerer,
		m:       m,
		topics:  kafka.Topics{Prefix: cfg.Kafka.TopicPrefix},
		id:      cfg.id(),
		ready:   o.Ready,
		limiter: telemetry.NewLimiter(30 * time.Second),
		dec:     schemas.NewDecoder(schemas.WithSchemaSource(source.Lookup)),
		pipes:   newRegistry(m),
		keys:    newKeyStore(cfg.PseudonymKeysDir, o.Logger, m),
	}, nil
}

// Run loads every tenant's pipeline from the config topic, then consumes,
// transforms and produces until ctx is cancelled. On cancellation it ends
// the transaction in progress (committing it if it can) within
// SLUICE_ROUTER_SHUTDOWN_TIMEOUT and returns nil. It returns an error when it
// cannot start, or when the transactional producer fails beyond recovery
// (the process should restart; nothing is lost or duplicated).
func (rt *Router) Run(ctx context.Context) error {
	// Before any record: a tenant's records must not be dead-lettered for
	// want of a key that is only not read yet.
	if err := rt.keys.load(); err != nil {
		return fmt.Errorf("pseudonym keys (SLUICE_ROUTER_PSEUDONYM_KEYS_DIR): %w", err)
	}
	base, err := rt.cfg.Kafka.Options()
	if err != nil {
		return fmt.Errorf("kafka settings: %w", err)
	}
	clientID := rt.cfg.Kafka.ClientID
	if clientID == "" {
		clientID = "sluice-router"
	}
	// Clipped: every client below appends its own options to base.
	base = slices.Clip(append(base, kgo.WithLogger(kafka.NewLogger(rt.log))))

	// A plain client for the status topics and metadata: the
	// transactional client can only produce inside transactions.
	// Its metadata (which output topics exist) is at most a rescan old.
	admin, err := kafka.NewClient(append(base, kgo.ClientID(clientID+"-status"),
		kgo.MetadataMinAge(min(rt.cfg.RescanInterval, 5*time.Second)),
		kgo.UnknownTopicRetries(2), // a tenant without its status topic does not hold status records up
	)...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer admin.Close()
	adm := kadm.NewClient(admin)
	if err := EnsureCompactedTopic(ctx, adm, rt.topics.Status()); err != nil {
		return fmt.Errorf("status topic %s: %w", rt.topics.Status(), err)
	}
	// Readers older than this binary (indexers during an upgrade) find the
	// schema versions it writes there. Never waited for.
	kafka.PublishSchemasInBackground(ctx, admin, rt.topics, rt.log)

	var wg sync.WaitGroup
	defer wg.Wait()
	followCtx, stopFollowing := context.WithCancel(ctx)
	defer stopFollowing()
	wg.Go(func() { rt.keys.run(followCtx) })
	caughtUp := make(chan struct{})
	followErr := make(chan error, 1)
	var once sync.Once
	wg.Go(func() {
		err := FollowConfig(followCtx, append(base, kgo.ClientID(clientID+"-config-follower"),
			kgo.MetadataMaxAge(rt.cfg.RescanInterval), // new tenants' config topics
			kgo.MetadataMinAge(min(rt.cfg.RescanInterval, 5*time.Second))),
			rt.topics, rt.pipes.event, func() { once.Do(func() { close(caughtUp) }) })
		if followCtx.Err() == nil {
			// Without the config topics the router cannot serve pipelines:
			// end, so the process restarts.
			followErr <- fmt.Errorf("following the config topics stopped: %v", err)
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
	status := newStatusPublisher(admin, rt.topics, rt.id, rt.pipes, rt.cfg.StatusHeartbeat, func(tenant string, err error) {
		rt.logLimited("status:"+tenant, "publishing pipeline status failed", "tenant", tenant, "err", err)
	})
	wg.Go(func() { status.run(followCtx) })
	// Transactions left open by routers that are gone (a Deployment's
	// crashed pod never comes back under its name) are aborted.
	fence := newFencer(adm, append(slices.Clip(base), kgo.ClientID(clientID+"-fence")),
		rt.cfg.Group, rt.id, fenceAge, rt.log, rt.m.fenced)
	wg.Go(func() { fence.run(followCtx, fenceInterval) })
	outputs := &topicCache{adm: adm, maxAge: rt.cfg.RescanInterval, producer: producerBatchMax}

	opts := append(append(base, kafka.Membership(rt.cfg.ID)...),
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
		kgo.TransactionTimeout(rt.cfg.TransactionTimeout),
		kgo.ProducerBatchMaxBytes(producerBatchMax),
	)
	// No tenant's record batch may decompress to more than the router can
	// hold (Kafka's size limits count compressed bytes): records over
	// SLUICE_ROUTER_MAX_RECORD_BYTES arrive cut, see handle.
	opts = append(opts, kafka.BoundedFetchOpts(rt.cfg.MaxBatchBytes, 0, rt.cfg.MaxRecordBytes)...)
	sess, err := kgo.NewGroupTransactSession(opts...)
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

	l := newLoop(rt, base, sess, &pauser{sess: sess, max: rt.cfg.TenantRetryMax, m: rt.m, topics: rt.topics, pipes: rt.pipes}, outputs)
	for {
		l.pauser.resumeDue()
		// While tenants or partitions are paused, or work goes on in the
		// background, the poll wakes up in time to resume them, even if
		// nothing else arrives.
		wake := l.idle()
		if next, ok := l.pauser.nextResume(); ok && (wake.IsZero() || next.Before(wake)) {
			wake = next
		}
		pollCtx, cancelPoll := ctx, context.CancelFunc(func() {})
		if !wake.IsZero() {
			pollCtx, cancelPoll = context.WithDeadline(ctx, wake)
		}
		// Whole fetches, never a count of records: a fetch ends at a
		// record batch, so the lines a producer sent together (a stack
		// trace) are in one transaction. Its size is bounded by the fetch
		// size (and the decompression bound), its processing time by
		// SLUICE_ROUTER_BATCH_MAX_TIME.
		fetches := sess.PollFetches(pollCtx)
		cancelPoll()
		if ctx.Err() != nil || fetches.IsClientClosed() {
			break
		}
		fetches.EachError(l.fetchError)
		if fetches.NumRecords() == 0 && len(l.bombs) == 0 {
			continue
		}
		if err := l.transact(txnCtx, fetches); err != nil {
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
	if err := status.stop(tombCtx); err != nil {
		rt.log.Warn("removing this router's status records failed", "err", err)
	}
	rt.log.Info("router stopped")
	return nil
}

// handle takes one raw record of tenant (the one its topic names, found
// once per partition by split): decodes it, and either joins it with the
// records before it (when the tenant's pipeline starts with multiline),
// returning what that finished, or runs the pipeline on it.
func (rt *Router) handle(ctx context.Context, tenant string, r *kgo.Record, j *joiner, o *outputsFor) []*kgo.Record {
	tm := rt.m.tenant(tenant)
	tm.in.Inc()
	lat := max(time.Since(r.Timestamp).Seconds(), 0) // a producer's clock may be ahead
	rt.m.latency.Observe(lat)
	tm.latency.Add(lat)
	if size, cut := kafka.CutSize(r); cut || len(r.Value) > rt.cfg.MaxRecordBytes {
		// Cut while its batch was decompressed (too large, or its batch
		// compressed far more than logs do), or larger than the router
		// decodes: dead-lettered with what is left of it, never decoded.
		err := fmt.Errorf("raw record of %d bytes was cut when its batch was read (a record over SLUICE_ROUTER_MAX_RECORD_BYTES, %d, or in a batch that compressed more than 64:1 is); it was not decoded", size, rt.cfg.MaxRecordBytes)
		if !cut {
			size = len(r.Value)
			err = fmt.Errorf("raw record is %d bytes, more than SLUICE_ROUTER_MAX_RECORD_BYTES (%d); it was not decoded", size, rt.cfg.MaxRecordBytes)
		}
		return []*kgo.Record{rt.dlqCut(tenant, r, size, &Failure{Step: -1, Reason: ReasonTooLarge, Err: err})}
	}
	rec, failure := rt.decode(ctx, tenant, r)
	if failure != nil {
		return []*kgo.Record{rt.dlq(tenant, 0, r, 0, failure)}
	}
	pipe := rt.pipes.get(tenant)
	if ml := pipe.Multiline(); ml != nil {
		if g := j.add(tenant, r, rec, ml); g != nil {
			return g.run(rt, o)
		}
		return nil
	}
	return rt.run(tenant, pipe, r, rec, 0, o)
}

// run applies the tenant's pipeline to a decoded record and returns what
// to produce: the transformed record, a dead-letter record, or nothing
// (dropped). raw is the record it came from; for lines joined by
// multiline, a copy of the first line's record holding every line's
// payload, and last is the offset of the last line (0 otherwise). pipe is
// the tenant's pipeline in force, if the caller has it (nil: look it up).
func (rt *Router) run(tenant string, pipe *Pipeline, raw *kgo.Record, rec schemas.Record, last int64, o *outputsFor) []*kgo.Record {
	var res Result
	var work schemas.Record
	key := rt.keys.get(tenant)
	// A version retired at run time (see registry.observe) is taken out of
	// service and the record is processed again, from a copy, by the
	// version now in force (at most twice: then pass-through is in force).
	for attempt := range 3 {
		if pipe == nil || attempt > 0 {
			pipe = rt.pipes.get(tenant)
		}
		work, res = processCopy(pipe, rec, key)
		if !rt.pipes.observe(tenant, pipe, res) {
			break
		}
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
	if res.Dataset != "" {
		topic = rt.topics.ParsedDataset(tenant, res.Dataset)
		// Kafka would refuse the record, and the transaction with it.
		if !o.exists(topic) {
			return []*kgo.Record{rt.dlq(tenant, pipe.Version, raw, last, &Failure{Step: -1, Reason: ReasonTopicMissing,
				Err: fmt.Errorf("the pipeline routes the record to dataset %q, but topic %s does not exist (sluice tenant create %s --datasets %s makes it)", res.Dataset, topic, tenant, res.Dataset)})}
		}
	}
	v, err := schemas.AppendSingleObject(make([]byte, 0, 2*len(work.Log)+512), &work) // room for parsed attributes
	if err != nil {
		return []*kgo.Record{rt.dlq(tenant, pipe.Version, raw, last, &Failure{Step: -1, Reason: "encode", Err: err})}
	}
	if limit := o.maxValue(topic); len(v) > limit {
		// Kafka would refuse it, and the transaction with it, every time.
		return []*kgo.Record{rt.dlq(tenant, pipe.Version, raw, last, &Failure{Step: -1, Reason: ReasonTooLarge,
			Err: fmt.Errorf("processed record is %d bytes encoded, more than %s takes (%d)", len(v), topic, limit)})}
	}
	rt.m.tenant(tenant).out.Inc()
	out := []*kgo.Record{{Topic: topic, Key: raw.Key, Value: v, Headers: avroHeaders}}
	// Copies: each is produced, and counted, as a record of its own; one
	// that cannot be (its topic missing, too large for it) is dead-lettered
	// alone, and the others go.
	for _, c := range res.Copies {
		ct := rt.topics.ParsedDataset(tenant, c)
		switch {
		case !o.exists(ct):
			out = append(out, rt.dlq(tenant, pipe.Version, raw, last, &Failure{Step: -1, Reason: ReasonTopicMissing,
				Err: fmt.Errorf("the pipeline copies the record to dataset %q, but topic %s does not exist (sluice tenant create %s --datasets %s makes it)", c, ct, tenant, c)}))
		case len(v) > o.maxValue(ct):
			out = append(out, rt.dlq(tenant, pipe.Version, raw, last, &Failure{Step: -1, Reason: ReasonTooLarge,
				Err: fmt.Errorf("processed record is %d bytes encoded, more than %s takes (%d)", len(v), ct, o.maxValue(ct))}))
		default:
			rt.m.tenant(tenant).out.Inc()
			out = append(out, &kgo.Record{Topic: ct, Key: raw.Key, Value: v, Headers: avroHeaders})
		}
	}
	return out
}

// producerBatchMax is the largest batch the router's producer sends:
// Kafka's default message limit.
const producerBatchMax = kafka.DefaultMaxMessageBytes

var avroHeaders = []kgo.RecordHeader{{Key: "content-type", Value: []byte("application/vnd.sluice.record+avro")}}

// processCopy runs p on a copy of rec with the tenant's pseudonym key:
// Process rewrites the record and its attributes, and a retry needs the
// original. A pipeline without steps only bounds the attributes; kept
// apart so that the record then stays off the heap.
func processCopy(p *Pipeline, rec schemas.Record, key PseudonymKey) (schemas.Record, Result) {
	rec.Attributes = maps.Clone(rec.Attributes)
	if len(p.steps) == 0 {
		boundAttributes(&rec)
		return rec, Result{}
	}
	w := rec
	res := p.ProcessWithKey(&w, key)
	return w, res
}

// decode reads a raw record (see DecodeInput). The tenant is the topic's,
// whatever the payload says; missing times come from its Kafka timestamp.
//
// The record id becomes the Elasticsearch document id, so it must be equal
// for re-sends of one record (they become one document) and different for
// different records. A producer's id is not trusted alone: two different
// lines sent with the same id must not collapse into one document, silently
// losing one. So the id is a hash of the tenant, the producer's id and the
// record's content (log and the producer's timestamp): a re-send, which
// carries the same id and content, keeps its id; the shipper's ids (node,
// container, file and offset) stay stable across its re-sends this way. A
// record without an id gets one from its place in the topic (topic,
// partition, offset), which a transaction replay keeps.
func (rt *Router) decode(ctx context.Context, tenant string, r *kgo.Record) (schemas.Record, *Failure) {
	rec, f := DecodeInput(ctx, rt.dec, r.Value)
	if f != nil {
		return rec, f
	}
	rec.Tenant = tenant
	rec.ID = recordID(tenant, r, &rec)
	if rec.ObservedTimestamp.IsZero() {
		rec.ObservedTimestamp = r.Timestamp.UTC()
	}
	if rec.Timestamp.IsZero() {
		rec.Timestamp = rec.ObservedTimestamp
	}
	return rec, nil
}

// recordID is the id of a decoded record; see decode.
func recordID(tenant string, r *kgo.Record, rec *schemas.Record) string {
	bp := idBuffers.Get().(*[]byte)
	defer idBuffers.Put(bp)
	b := (*bp)[:0]
	if rec.ID == "" {
		b = append(b, r.Topic...)
		b = binary.BigEndian.AppendUint32(b, uint32(r.Partition))
		b = binary.BigEndian.AppendUint64(b, uint64(r.Offset))
	} else {
		// Length-prefixed: no two field lists hash alike.
		b = binary.BigEndian.AppendUint64(b, uint64(len(tenant)))
		b = append(b, tenant...)
		b = binary.BigEndian.AppendUint64(b, uint64(len(rec.ID)))
		b = append(b, rec.ID...)
		b = binary.BigEndian.AppendUint64(b, uint64(len(rec.Log)))
		b = append(b, rec.Log...)
		var ts int64
		if !rec.Timestamp.IsZero() {
			ts = rec.Timestamp.UnixNano()
		}
		b = binary.BigEndian.AppendUint64(b, uint64(ts))
	}
	sum := sha256.Sum256(b)
	if cap(b) <= 64<<10 {
		*bp = b // keep the grown buffer, unless a huge line grew it
	}
	return hex.EncodeToString(sum[:16])
}

// idBuffers pools recordID's buffers.
var idBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// DecodeInput turns a raw topic's value into a record, as the router does
// (and sluice pipeline test): Avro in either wire format; a JSON object
// with a "log" key fills the record's fields; any other JSON object is an
// application's log line and becomes log whole, so nothing in it is lost
// and a json step parses it like any other line; anything else is a line of
// text (invalid UTF-8 replaced and flagged). A value that claims to be
// Avro or a record but is malformed is a Failure (reason "decode").
func DecodeInput(ctx context.Context, dec *schemas.Decoder, value []byte) (schemas.Record, *Failure) {
	var (
		rec schemas.Record
		err error
	)
	switch schemas.Sniff(value) {
	case schemas.FormatSingleObject, schemas.FormatConfluent:
		rec, _, err = dec.Decode(ctx, value)
		if errors.Is(err, schemas.ErrUnknownFormat) {
			rec, err = lineinput.Text(value), nil
		}
	default:
		rec, err = lineinput.Decode(value)
	}
	if err != nil {
		return rec, &Failure{Step: -1, Reason: "decode", Err: err}
	}
	return rec, nil
}

func (rt *Router) dlq(tenant string, version int64, r *kgo.Record, last int64, f *Failure) *kgo.Record {
	return rt.deadLetter(tenant, version, r, last, f, func(d *schemas.DeadLetter) { d.SetPayload(r.Value) })
}

// dlqCut is dlq for a record whose value is the first bytes of size.
func (rt *Router) dlqCut(tenant string, r *kgo.Record, size int, f *Failure) *kgo.Record {
	return rt.deadLetter(tenant, 0, r, 0, f, func(d *schemas.DeadLetter) { d.SetCutPayload(r.Value, size) })
}

func (rt *Router) deadLetter(tenant string, version int64, r *kgo.Record, last int64, f *Failure, payload func(*schemas.DeadLetter)) *kgo.Record {
	rt.m.dlq.WithLabelValues(tenant, f.Reason).Inc()
	d := schemas.DeadLetter{
		Reason: f.Reason, Error: f.Error(), Stage: "router", Instance: rt.id,
		Step: f.Step, StepType: f.StepType, PipelineVersion: version,
		Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp.UTC(),
	}
	if last > r.Offset {
		d.LastOffset = last
	}
	payload(&d)
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

var errTopicMissing = errors.New("output topic does not exist")

// topicCache knows which topics exist, from metadata at most maxAge old
// (refreshed when a topic is not found, at most every missingAge),
// and the largest record each output topic takes (its max.message.bytes,
// read once per limitAge). Safe for concurrent use by the tenants'
// goroutines.
type topicCache struct {
	adm      *kadm.Client
	maxAge   time.Duration
	producer int // the producer's own limit on a batch

	mu      sync.Mutex
	topics  map[string]bool
	fetched time.Time
	limits  map[string]topicLimit
	refresh sync.Mutex // one metadata request at a time
}

type topicLimit struct {
	bytes int
	at    time.Time
}

// missingAge is how old metadata may be to take a topic for missing: a
// dataset topic made just before its pipeline was applied must not be
// taken for missing from metadata read just before it was made. Topics
// that stay missing cost at most one metadata request per missingAge.
const missingAge = 100 * time.Millisecond

// limitAge is how long a topic's max.message.bytes is trusted.
const limitAge = 5 * time.Minute

// recordMargin is left of a topic's max.message.bytes for the batch and
// record framing, key and headers.
const recordMargin = 1024

func (c *topicCache) exists(ctx context.Context, topic string) bool {
	fresh := func() (known, ok bool) {
		c.mu.Lock()
		defer c.mu.Unlock()
		age := time.Since(c.fetched)
		known = c.topics[topic]
		return known, age <= c.maxAge && (known || age <= missingAge)
	}
	if known, ok := fresh(); ok {
		return known
	}
	c.refresh.Lock()
	defer c.refresh.Unlock()
	if known, ok := fresh(); ok {
		return known // refreshed meanwhile
	}
	details, err := c.adm.ListTopics(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fetched = time.Now() // also on failure: at most one attempt per missingAge
	if err != nil {
		return c.topics == nil || c.topics[topic] // no metadata at all: let the producer find out
	}
	c.topics = make(map[string]bool, len(details))
	for name, d := range details {
		c.topics[name] = d.Err == nil
	}
	return c.topics[topic]
}

// maxValue is the largest record value the router may produce to topic.
func (c *topicCache) maxValue(ctx context.Context, topic string) int {
	c.mu.Lock()
	l, ok := c.limits[topic]
	c.mu.Unlock()
	if !ok || time.Since(l.at) > limitAge {
		l = topicLimit{bytes: kafka.DefaultMaxMessageBytes, at: time.Now()}
		if n, err := kafka.TopicMaxMessageBytes(ctx, c.adm, topic); err == nil {
			l.bytes = n
		}
		c.mu.Lock()
		if c.limits == nil {
			c.limits = map[string]topicLimit{}
		}
		c.limits[topic] = l
		c.mu.Unlock()
	}
	return min(l.bytes, c.producer) - recordMargin
}

// required checks that a tenant's parsed and dead-letter topics exist:
// without them none of its records can be committed.
func (c *topicCache) required(ctx context.Context, t kafka.Topics, tenant string) error {
	for _, topic := range []string{t.Parsed(tenant), t.DLQ(tenant)} {
		if !c.exists(ctx, topic) {
			return fmt.Errorf("%w: %s", errTopicMissing, topic)
		}
	}
	return nil
}

// outputsFor is what one tenant's goroutine asks of the topic cache,
// remembered for the goroutine's work: the shared cache (and its lock) is
// asked once per topic, not once per record. A nil *outputsFor (the
// benchmarks', with no Kafka) takes every topic to exist with Kafka's
// default limit.
type outputsFor struct {
	cache   *topicCache
	ctx     context.Context
	present map[string]bool // topics found to exist
	limits  map[string]int  // topics' largest record values
}

func newOutputsFor(ctx context.Context, c *topicCache) *outputsFor {
	return &outputsFor{cache: c, ctx: ctx, present: map[string]bool{}, limits: map[string]int{}}
}

func (o *outputsFor) exists(topic string) bool {
	if o == nil || o.present[topic] {
		return true
	}
	ok := o.cache.exists(o.ctx, topic)
	if ok {
		o.present[topic] = true // a missing one is asked again: it may be made meanwhile
	}
	return ok
}

func (o *outputsFor) maxValue(topic string) int {
	if o == nil {
		return kafka.DefaultMaxMessageBytes - recordMargin
	}
	n, ok := o.limits[topic]
	if !ok {
		n = o.cache.maxValue(o.ctx, topic)
		o.limits[topic] = n
	}
	return n
}

// pauser pauses the raw topics of tenants whose output failed, with
// doubling waits, and resumes them when the wait is over.
type pauser struct {
	sess   *kgo.GroupTransactSession
	max    time.Duration
	m      *metrics
	topics kafka.Topics
	pipes  *registry // told why and until when a tenant is paused, for its status
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

func (p *pauser) pause(topic string, err error) {
	if p.paused == nil {
		p.paused = map[string]pausedTopic{}
	}
	pt := p.paused[topic]
	pt.backoff = min(max(2*pt.backoff, time.Second), p.max)
	pt.until = time.Now().Add(pt.backoff)
	p.paused[topic] = pt
	p.sess.Client().PauseFetchTopics(topic)
	if tenant, _, _, ok := p.topics.TenantOf(topic); ok && p.pipes != nil && err != nil {
		p.pipes.setPaused(tenant, err.Error(), pt.until)
	}
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
			if tenant, _, _, ok := p.topics.TenantOf(topic); ok && p.pipes != nil {
				p.pipes.setResumed(tenant)
			}
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
