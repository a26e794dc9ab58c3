package shipper

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/schemas"
)

// sink is where records go: Kafka, or stdout for people debugging a node.
type sink interface {
	name() string
	// produce hands rec over; done is called exactly once, in produce order
	// per key, when rec is delivered or failed. produce may block (bounded)
	// and does not keep rec after it returns.
	produce(ctx context.Context, topic string, key []byte, rec *schemas.Record, done func(error))
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

func newKafkaSink(cfg Config, log *slog.Logger) (*kafkaSink, error) {
	opts, err := cfg.Kafka.Options()
	if err != nil {
		return nil, fmt.Errorf("kafka settings: %w", err)
	}
	if cfg.Kafka.ClientID == "" {
		opts = append(opts, kgo.ClientID("sluice-shipper"))
	}
	opts = append(opts,
		kgo.WithLogger(kafka.NewLogger(log)),
		kgo.RequiredAcks(kgo.AllISRAcks()),                                       // the default with idempotence; stated because delivery depends on it
		kgo.ProducerBatchCompression(kgo.ZstdCompression(), kgo.NoCompression()), // zstd: Kafka >= 2.1
		// The shipper's own byte budget bounds what is buffered; kgo's
		// limits sit above it so they never decide.
		kgo.MaxBufferedBytes(int(cfg.MaxBufferedBytes)*2),
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

// produce never blocks for long: the shipper's budget keeps kgo's buffer
// limits out of reach. The record is not tied to ctx, because kgo fails
// buffered records whose context ends, and on shutdown what was read must
// still be delivered.
func (k *kafkaSink) produce(_ context.Context, topic string, key []byte, rec *schemas.Record, done func(error)) {
	v, err := schemas.AppendSingleObject(make([]byte, 0, len(rec.Log)+384), rec)
	if err != nil { // only attributes of a type Avro cannot carry; the shipper sets none
		done(fmt.Errorf("encode record: %w", err))
		return
	}
	r := &kgo.Record{Topic: topic, Key: key, Value: v, Headers: []kgo.RecordHeader{contentType}}
	k.cl.Produce(context.Background(), r, func(_ *kgo.Record, err error) { done(err) })
}

func (k *kafkaSink) sync() error { return nil }

func (k *kafkaSink) flush(ctx context.Context) error { return k.cl.Flush(ctx) }

func (k *kafkaSink) close() { k.cl.Close() }

// stdoutSink writes each record as one JSON object per line, with the field
// names of the Avro schema. A record counts as delivered once written to
// the buffer; sync flushes the buffer before a checkpoint is saved.
type stdoutSink struct {
	mu  sync.Mutex
	w   *bufio.Writer
	enc *json.Encoder
	err error
}

func newStdoutSink(w io.Writer) *stdoutSink {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	return &stdoutSink{w: bw, enc: enc}
}

func (s *stdoutSink) name() string { return "stdout" }

func (s *stdoutSink) produce(_ context.Context, _ string, _ []byte, rec *schemas.Record, done func(error)) {
	s.mu.Lock()
	if s.err == nil {
		s.err = s.enc.Encode(rec)
	}
	err := s.err
	s.mu.Unlock()
	done(err)
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
