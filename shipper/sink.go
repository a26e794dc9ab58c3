package shipper

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/schemas"
)

// sink is where records go: Kafka, or stdout for people debugging a node.
type sink interface {
	name() string
	// produce hands rec over; t.done is called exactly once, in produce
	// order per key, when rec is delivered or failed. produce does not
	// block for long, and neither it nor the output keeps rec, or anything
	// rec points to, after it returns: the caller reuses them.
	produce(topic string, key []byte, rec *schemas.Record, t ticket)
	// topicMaxMessage returns the largest record batch the topic takes
	// (max.message.bytes), 0 for no limit, or an error wrapping
	// errTopicMissing.
	topicMaxMessage(ctx context.Context, topic string) (int, error)
	// resetTopic makes the output forget what it knows of a topic's
	// partitions (their batch size): records of the topic in flight fail
	// and are sent again.
	resetTopic(topic string)
	// sync makes everything acknowledged so far durable.
	sync() error
	// flush waits until every record handed over is acknowledged or failed.
	flush(ctx context.Context) error
	close()
}

// contentType is the header that says how a value is encoded: Avro
// single-object encoding, whose fingerprint names the schema version.
var contentType = kgo.RecordHeader{Key: "content-type", Value: []byte("application/vnd.sluice.record+avro")}

// errTopicMissing says a topic does not exist (yet).
var errTopicMissing = kafka.ErrTopicMissing

type kafkaSink struct {
	cl       *kgo.Client
	adm      *kadm.Client
	batchMax *sync.Map // topic -> int32, read by the producer when it first sees a topic's partitions
	log      *slog.Logger
	m        *metrics
	instance string
}

func newKafkaSink(cfg Config, log *slog.Logger, reg prometheus.Registerer, m *metrics, node string, batchMax *sync.Map) (*kafkaSink, error) {
	opts, err := cfg.Kafka.Options()
	if err != nil {
		return nil, fmt.Errorf("kafka settings: %w", err)
	}
	if cfg.Kafka.ClientID == "" {
		opts = append(opts, kgo.ClientID("sluice-shipper"))
	}
	opts = append(opts,
		kgo.WithLogger(kafka.NewLogger(log)),
		kgo.WithHooks(kafka.NewMetrics(reg)),
		kgo.RequiredAcks(kgo.AllISRAcks()), // the default with idempotence; stated because delivery depends on it
		// The shipper's byte budget bounds what is buffered, charging each
		// record at least recordOverhead bytes: kgo's own limits (bytes
		// unlimited by default, records set above any budget's reach)
		// never decide, so Produce never blocks.
		kgo.MaxBufferedRecords(1<<22),
		// A missing topic fails fast so its tenant can be held back.
		kgo.UnknownTopicRetries(3),
		// A record Kafka has not acknowledged within the delivery timeout
		// (a partition without enough replicas, an offline leader) fails;
		// its follower rewinds and retries with backoff, sending one record
		// at a time until the partition answers. Without it the producer
		// retries for ever and the tenant's share of the budget stays full.
		kgo.RecordDeliveryTimeout(cfg.DeliveryTimeout),
		// Batches follow each topic's max.message.bytes, read before the
		// first record goes to it (see tenant.lookUpLimits).
		kgo.ProducerBatchMaxBytesFn(func(topic string) int32 {
			if v, ok := batchMax.Load(topic); ok {
				return v.(int32)
			}
			return defaultBatchMax
		}),
	)
	cl, err := kafka.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return &kafkaSink{cl: cl, adm: kadm.NewClient(cl), batchMax: batchMax, log: log, m: m, instance: node}, nil
}

// defaultBatchMax is the producer's batch size for a topic whose
// max.message.bytes is not known: the producer's default, below Kafka's.
const defaultBatchMax = 1000012

func (k *kafkaSink) resetTopic(topic string) { k.cl.PurgeTopicsFromProducing(topic) }

func (k *kafkaSink) topicMaxMessage(ctx context.Context, topic string) (int, error) {
	return kafka.TopicMaxMessageBytes(ctx, k.adm, topic)
}

func (k *kafkaSink) name() string { return "kafka" }

// kafkaItem is one record on its way to Kafka, pooled with its value
// buffer. It is its kgo.Record's Context, which is how the one promise
// function finds it again: kgo reads a record's Context only to see whether
// it is done, and Background never is. That also keeps records independent
// of the shipper's read context, because kgo fails buffered records whose
// context ends, and on shutdown what was read must still be delivered.
type kafkaItem struct {
	context.Context
	rec kgo.Record
	t   ticket
}

var kafkaItems = sync.Pool{New: func() any { return &kafkaItem{Context: context.Background()} }}

var contentTypeHeaders = []kgo.RecordHeader{contentType} // read-only, shared by every record

// produce never blocks for long: the shipper's budget keeps kgo's buffer
// limits out of reach.
func (k *kafkaSink) produce(topic string, key []byte, rec *schemas.Record, t ticket) {
	it := kafkaItems.Get().(*kafkaItem)
	buf := it.rec.Value[:0]
	if n := len(rec.Log) + 2048; n > pooledValueMax {
		buf = getBuf(n) // a long message: a buffer of its size class
	}
	v, err := schemas.AppendSingleObject(buf, rec)
	if err != nil { // only attributes of a type Avro cannot carry; the shipper sets none
		kafkaItems.Put(it)
		t.done(fmt.Errorf("encode record: %w", err))
		return
	}
	// The timestamp is set here so that the producer does not read the
	// clock again for every record.
	it.rec = kgo.Record{Topic: topic, Key: key, Value: v, Headers: contentTypeHeaders, Timestamp: rec.ObservedTimestamp, Context: it}
	it.t = t
	k.cl.Produce(context.Background(), &it.rec, k.promise)
}

// pooledValueMax is the largest value buffer kept with a pooled record.
// Most lines are a few hundred bytes; a buffer grown for one of the rare
// long ones would stay with its item for ever, and the pool holds as many
// items as were ever in flight at once (tens of megabytes of buffers that
// no budget counts).
const pooledValueMax = 4 << 10

// promise is called by kgo once per record, in order per partition; after
// it the record is ours again.
func (k *kafkaSink) promise(r *kgo.Record, err error) {
	it := r.Context.(*kafkaItem)
	t := it.t
	if t.done(err) {
		k.deadLetter(t.t, r, err)
	}
	v := r.Value[:0]
	if cap(v) > pooledValueMax {
		putBuf(v)
		v = nil
	}
	it.rec = kgo.Record{Value: v}
	it.t = ticket{}
	kafkaItems.Put(it)
}

// deadLetter writes a record Kafka refused for good to the tenant's
// dead-letter topic, with the reason, so the tenant sees what it lost.
func (k *kafkaSink) deadLetter(t *tenant, r *kgo.Record, cause error) {
	d := schemas.DeadLetter{
		Reason:    reasonRejected,
		Error:     cause.Error(),
		Stage:     "shipper",
		Instance:  k.instance,
		Step:      -1,
		Topic:     r.Topic,
		Partition: -1,
		Offset:    -1,
		Timestamp: time.Now().UTC(),
	}
	d.SetPayload(r.Value)
	b := d.Marshal()
	k.cl.Produce(context.Background(), &kgo.Record{Topic: t.dlq, Key: r.Key, Value: b, Headers: deadLetterHeaders}, func(_ *kgo.Record, err error) {
		if err != nil {
			k.m.deadLetterErrors.WithLabelValues(t.name).Inc()
			k.log.Warn("dead letter not written", "tenant", t.name, "topic", t.dlq, "err", err)
			return
		}
		k.m.deadLetters.WithLabelValues(t.name, reasonRejected).Inc()
	})
}

var deadLetterHeaders = []kgo.RecordHeader{{Key: "content-type", Value: []byte("application/json")}}

func (k *kafkaSink) sync() error { return nil }

func (k *kafkaSink) flush(ctx context.Context) error { return k.cl.Flush(ctx) }

func (k *kafkaSink) close() { k.cl.Close() }

// stdoutSink writes each record as one JSON object per line, in the
// schemas JSON form (the field names of the Avro schema; the same form the
// router accepts from external producers). A record counts as delivered once
// written to the buffer; sync flushes the buffer before a checkpoint is
// saved.
type stdoutSink struct {
	mu  sync.Mutex
	w   *bufio.Writer
	buf []byte
	err error
}

func newStdoutSink(w io.Writer) *stdoutSink {
	return &stdoutSink{w: bufio.NewWriterSize(w, 64<<10)}
}

func (s *stdoutSink) name() string { return "stdout" }

func (s *stdoutSink) topicMaxMessage(context.Context, string) (int, error) { return 0, nil }

func (s *stdoutSink) resetTopic(string) {}

func (s *stdoutSink) produce(_ string, _ []byte, rec *schemas.Record, t ticket) {
	s.mu.Lock()
	if s.err == nil {
		s.buf, s.err = schemas.AppendJSON(s.buf[:0], rec)
		if s.err == nil {
			s.buf = append(s.buf, '\n')
			_, s.err = s.w.Write(s.buf)
		}
	}
	err := s.err
	s.mu.Unlock()
	t.done(err) // a write error is retried (never dead-lettered)
}

func (s *stdoutSink) sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = s.w.Flush()
	}
	return s.err
}

func (s *stdoutSink) flush(context.Context) error { return s.sync() }

func (s *stdoutSink) close() { _ = s.sync() }
