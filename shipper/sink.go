package shipper

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"
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
	// sync makes everything acknowledged so far durable.
	sync() error
	// flush waits until every record handed over is acknowledged or failed.
	flush(ctx context.Context) error
	close()
}

// contentType is the header that says how a value is encoded: Avro
// single-object encoding, whose fingerprint names the schema version.
var contentType = kgo.RecordHeader{Key: "content-type", Value: []byte("application/vnd.sluice.record+avro")}

type kafkaSink struct {
	cl *kgo.Client
}

func newKafkaSink(cfg Config, log *slog.Logger, reg prometheus.Registerer) (*kafkaSink, error) {
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
		// zstd (Kafka >= 2.1) at its fastest level: on a node, CPU is worth
		// more than the last few percent of compression ratio. It is a
		// quarter of the shipper's CPU at the default level.
		kgo.ProducerBatchCompression(kgo.ZstdCompression().WithLevel(int(zstd.SpeedFastest)), kgo.NoCompression()),
		// The shipper's byte budget bounds what is buffered, charging each
		// record at least recordOverhead bytes: kgo's own limits (bytes
		// unlimited by default, records set above any budget's reach)
		// never decide, so Produce never blocks.
		kgo.MaxBufferedRecords(1<<22),
		// Retry delivery as long as it takes (the default RecordRetries is
		// unlimited); a missing topic fails fast so its tenant can be paused.
		kgo.UnknownTopicRetries(3),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return &kafkaSink{cl: cl}, nil
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
	v, err := schemas.AppendSingleObject(it.rec.Value[:0], rec)
	if err != nil { // only attributes of a type Avro cannot carry; the shipper sets none
		kafkaItems.Put(it)
		t.done(fmt.Errorf("encode record: %w", err))
		return
	}
	it.rec = kgo.Record{Topic: topic, Key: key, Value: v, Headers: contentTypeHeaders, Context: it}
	it.t = t
	k.cl.Produce(context.Background(), &it.rec, promise)
}

// promise is called by kgo once per record, in order per partition; after
// it the record is ours again.
func promise(r *kgo.Record, err error) {
	it := r.Context.(*kafkaItem)
	t := it.t
	v := r.Value[:0]
	if cap(v) > 64<<10 { // do not pool the buffers of rare huge messages
		v = nil
	}
	it.rec = kgo.Record{Value: v}
	it.t = ticket{}
	kafkaItems.Put(it)
	t.done(err)
}

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
	t.done(err)
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
