package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/internal/cli"
	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/internal/lineinput"
)

// produceCommand sends lines or JSON objects from stdin to a tenant's raw
// topic: how a team sends logs from outside the cluster.
func produceCommand() *cli.Command {
	return &cli.Command{
		Name:    "produce",
		Summary: "send lines or JSON objects from stdin to a tenant's raw topic",
		Usage:   "--tenant NAME [flags] < lines",
		Description: `Sends each line of stdin to <prefix>.raw.<tenant>: a line of text, or a JSON object (with the
record's fields such as log, timestamp, kubernetes, or any application log object). The tenant's
pipeline processes them like the lines of its pods. Reports how many Kafka acknowledged.
Before reading stdin, it checks within --timeout that Kafka answers, takes the credentials and
has the tenant's raw topic; after the last line it waits as long for the acknowledgements.`,
		Examples: []string{
			"echo '{\"level\":\"info\",\"msg\":\"hello\"}' | sluice produce --tenant shop",
			"sluice produce --tenant shop < app.log                 # one record per line",
			"kubectl logs deploy/cart | sluice produce --tenant shop --timeout 30s",
		},
		Epilog: func(w io.Writer) {
			fmt.Fprintf(w, "Settings (environment variables): the SLUICE_KAFKA_* and SLUICE_TOPIC_PREFIX of 'sluice pipeline --help';\nuse the tenant's own credentials.\n")
		},
		Flags: func(fs *flag.FlagSet) cli.Action {
			tenant := fs.String("tenant", "", "the tenant (`NAME`) whose raw topic receives the lines (required)")
			timeout := timeoutFlag(fs, "give up when Kafka has not answered within this long, before reading stdin and for the acknowledgements after it")
			return func(ctx context.Context, _ []string, _, stderr io.Writer) error {
				return runProduce(ctx, *tenant, *timeout, stderr)
			}
		},
	}
}

func runProduce(ctx context.Context, tenant string, timeout time.Duration, stderr io.Writer) error {
	if tenant == "" {
		return cli.Usagef("--tenant is required")
	}
	if err := kafka.ValidateTenant(tenant); err != nil {
		return cli.Usagef("--tenant: %v", err)
	}
	call := kafkaCall{clientID: "sluice-produce", timeout: timeout, follow: true}
	return connectKafka(ctx, call, func(ctx context.Context, k *kafkaSession) error {
		topic := k.topics.Raw(tenant)
		if err := k.tenantTopic(ctx, tenant, topic); err != nil {
			return fmt.Errorf("produce: %w", err)
		}
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
		sc := lineinput.NewScanner(stdin, lineinput.MaxLine)
		for sc.Scan() {
			line := sc.Bytes()
			if len(line) == 0 {
				continue
			}
			sent.Add(1)
			k.cl.Produce(ctx, &kgo.Record{Topic: topic, Value: append([]byte(nil), line...)}, promise)
		}
		readErr := lineinput.TooLong(sc.Err(), lineinput.MaxLine)
		// The timeout bounds waiting for Kafka, not reading stdin: it
		// applies from the end of input.
		flushCtx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		flushErr := k.cl.Flush(flushCtx)
		fmt.Fprintf(stderr, "%d lines sent to %s, %d acknowledged\n", sent.Load(), topic, acked.Load())
		mu.Lock()
		defer mu.Unlock()
		switch {
		case readErr != nil:
			return fmt.Errorf("produce: read stdin: %w", readErr)
		case firstErr != nil:
			return fmt.Errorf("produce: %w", k.explain(firstErr, timeout))
		case flushErr != nil && ctx.Err() == nil:
			return fmt.Errorf("produce: Kafka did not acknowledge %d of %d lines within %s (--timeout)", sent.Load()-acked.Load(), sent.Load(), timeout)
		}
		return nil
	})
}
