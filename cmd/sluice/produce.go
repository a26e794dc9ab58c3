package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/internal/kafka"
)

// maxProduceLine bounds one input line of sluice produce: the router's
// output limit is 900 KiB, and Kafka's default message limit 1 MiB.
const maxProduceLine = 900 << 10

// runProduce sends lines or JSON objects from stdin to a tenant's raw topic:
// how a team sends logs from outside the cluster.
func runProduce(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("produce", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tenant := fs.String("tenant", "", "the tenant whose raw topic receives the lines (required)")
	timeout := kafkaFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: sluice produce --tenant NAME < lines\n\nSends each line of stdin to <prefix>.raw.<tenant>: a line of text, or a JSON object (with the\nrecord's fields such as log, timestamp, kubernetes, or any application log object). The tenant's\npipeline processes them like the lines of its pods. Reports how many Kafka acknowledged.\n\nFlags:\n")
		fs.PrintDefaults()
		fmt.Fprintf(stderr, "\nSettings (environment variables): the SLUICE_KAFKA_* and SLUICE_TOPIC_PREFIX of 'sluice pipeline --help';\nuse the tenant's own credentials.\n")
	}
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if err := kafka.ValidateTenant(*tenant); err != nil {
		return fmt.Errorf("produce: --tenant: %w", err)
	}
	// The timeout bounds waiting for Kafka, not reading stdin: it applies
	// from the end of input.
	return connectKafka(ctx, 0, "sluice-produce", nil, func(ctx context.Context, cl *kgo.Client, topics kafka.Topics) error {
		topic := topics.Raw(*tenant)
		var (
			sent, acked atomic.Int64
			mu          sync.Mutex
			firstErr    error
		)
		promise := func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				return
			}
			acked.Add(1)
		}
		sc := bufio.NewScanner(stdin)
		sc.Buffer(make([]byte, 64<<10), maxProduceLine)
		for sc.Scan() {
			line := sc.Bytes()
			if len(line) == 0 {
				continue
			}
			sent.Add(1)
			cl.Produce(ctx, &kgo.Record{Topic: topic, Value: append([]byte(nil), line...)}, promise)
		}
		readErr := sc.Err()
		if errors.Is(readErr, bufio.ErrTooLong) {
			readErr = fmt.Errorf("a line is longer than %d bytes", maxProduceLine)
		}
		flushCtx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		flushErr := cl.Flush(flushCtx)
		fmt.Fprintf(stderr, "%d lines sent to %s, %d acknowledged\n", sent.Load(), topic, acked.Load())
		mu.Lock()
		defer mu.Unlock()
		switch {
		case readErr != nil:
			return fmt.Errorf("produce: read stdin: %w", readErr)
		case firstErr != nil:
			return fmt.Errorf("produce: %w", firstErr)
		case flushErr != nil:
			return fmt.Errorf("produce: waiting for Kafka: %w", flushErr)
		}
		return nil
	})
}
