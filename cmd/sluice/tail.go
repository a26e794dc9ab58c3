package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/internal/config"
	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/router"
	"github.com/sluicelogs/sluice/schemas"
)

// runTail follows a tenant's parsed topic (or its dead-letter topic) and
// prints each record, like kubectl logs -f.
func runTail(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tail", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tenant := fs.String("tenant", "", "the tenant whose records to follow (required)")
	stream := fs.String("stream", "", "follow the route stream <prefix>.parsed.<tenant>.<stream> instead of the main parsed topic")
	errorsOnly := fs.Bool("errors", false, "follow the tenant's dead-letter topic: records the router or the indexer could not handle, with the reason")
	fromStart := fs.Bool("from-beginning", false, "start at the oldest record kept rather than at new ones")
	filter := fs.String("filter", "", "print only records matching this condition, in the pipelines' expression language (e.g. pod == \"cart-1\" && attributes[\"level\"] == \"error\")")
	asJSON := fs.Bool("json", false, "print each record as one JSON object per line")
	group := fs.String("group", "", "consume in this consumer group (it must start with <tenant>.) and commit what was printed; default: no group, nothing committed")
	limit := fs.Int("n", 0, "stop after this many records (0: follow until interrupted)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: sluice tail --tenant NAME [flags]\n\nFollows a tenant's parsed topic (read_committed), or with --errors its dead-letter topic,\nand prints one readable line per record: time, namespace/pod/container, message.\n\nFlags:\n")
		fs.PrintDefaults()
		fmt.Fprintf(stderr, "\nSettings (environment variables): the SLUICE_KAFKA_* and SLUICE_TOPIC_PREFIX of 'sluice pipeline --help';\nuse the tenant's own credentials.\n")
	}
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if err := kafka.ValidateTenant(*tenant); err != nil {
		return fmt.Errorf("tail: --tenant: %w", err)
	}
	if *stream != "" {
		if err := kafka.ValidateStream(*stream); err != nil {
			return fmt.Errorf("tail: --stream: %w", err)
		}
		if *errorsOnly {
			return errors.New("tail: --stream and --errors exclude each other")
		}
	}
	if *group != "" && !strings.HasPrefix(*group, *tenant+".") {
		return fmt.Errorf("tail: --group must start with %q (the tenant's ACLs allow only those groups)", *tenant+".")
	}
	var match *router.Filter
	if *filter != "" {
		if *errorsOnly {
			return errors.New("tail: --filter applies to records, not to dead letters")
		}
		var err error
		if match, err = router.CompileFilter(*filter); err != nil {
			return fmt.Errorf("tail: --filter: %w", err)
		}
	}
	// The topic is known before connecting: the consumer is the client.
	var topicOf func(kafka.Topics) string
	switch {
	case *errorsOnly:
		topicOf = func(t kafka.Topics) string { return t.DLQ(*tenant) }
	case *stream != "":
		topicOf = func(t kafka.Topics) string { return t.ParsedStream(*tenant, *stream) }
	default:
		topicOf = func(t kafka.Topics) string { return t.Parsed(*tenant) }
	}
	var prefix pipelineConfig
	if err := config.Load(ctx, &prefix); err != nil {
		return err
	}
	topic := topicOf(prefix.Kafka.Topics())
	start := kgo.NewOffset().AtEnd()
	if *fromStart {
		start = kgo.NewOffset().AtStart()
	}
	opts := []kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(start), kgo.FetchIsolationLevel(kgo.ReadCommitted())}
	if *group != "" {
		// Only what was looked at is committed.
		opts = append(opts, kgo.ConsumerGroup(*group), kgo.AutoCommitMarks())
	}
	return connectKafka(ctx, 0, "sluice-tail", opts, func(ctx context.Context, tc *kgo.Client, _ kafka.Topics) error {
		p := tailPrinter{w: stdout, json: *asJSON, dec: schemas.NewDecoder(), tenant: *tenant, match: match}
		printed := 0
		for *limit == 0 || printed < *limit {
			fetches := tc.PollFetches(ctx)
			if ctx.Err() != nil || fetches.IsClientClosed() {
				break
			}
			var fetchErr error
			fetches.EachError(func(t string, part int32, err error) {
				fetchErr = fmt.Errorf("read %s/%d: %w", t, part, err)
			})
			if fetchErr != nil {
				return fetchErr
			}
			for it := fetches.RecordIter(); !it.Done() && (*limit == 0 || printed < *limit); {
				r := it.Next()
				ok, err := p.print(ctx, r, *errorsOnly)
				if err != nil {
					return err
				}
				if ok {
					printed++
				}
				tc.MarkCommitRecords(r)
			}
		}
		if *group != "" {
			if err := tc.CommitMarkedOffsets(context.WithoutCancel(ctx)); err != nil {
				return fmt.Errorf("commit: %w", err)
			}
		}
		return nil
	})
}

// tailPrinter writes records the way sluice tail shows them.
type tailPrinter struct {
	w      io.Writer
	json   bool
	dec    *schemas.Decoder
	tenant string
	match  *router.Filter
}

// print writes r and reports whether it was printed (not filtered out).
func (p *tailPrinter) print(ctx context.Context, r *kgo.Record, deadLetter bool) (bool, error) {
	if deadLetter {
		var d schemas.DeadLetter
		if err := json.Unmarshal(r.Value, &d); err != nil {
			_, err = fmt.Fprintf(p.w, "%s  (not a dead letter: %v)\n", r.Timestamp.UTC().Format(time.RFC3339Nano), err)
			return err == nil, err
		}
		if p.json {
			_, err := fmt.Fprintf(p.w, "%s\n", r.Value)
			return err == nil, err
		}
		payload := d.Payload
		if d.PayloadEncoding == "base64" {
			if raw, err := base64.StdEncoding.DecodeString(d.Payload); err == nil {
				if rec, _, err := p.dec.Decode(ctx, raw); err == nil {
					payload = rec.Log
				}
			}
		}
		_, err := fmt.Fprintf(p.w, "%s  %s %s: %s  [%s/%d@%d]  %s\n", d.Timestamp.UTC().Format(time.RFC3339Nano),
			d.Stage, d.Reason, oneLine(d.Error), d.Topic, d.Partition, d.Offset, oneLine(clip(payload, 300)))
		return err == nil, err
	}
	rec, _, err := p.dec.Decode(ctx, r.Value)
	if err != nil {
		_, err = fmt.Fprintf(p.w, "%s  (undecodable record at offset %d: %v)\n", r.Timestamp.UTC().Format(time.RFC3339Nano), r.Offset, err)
		return err == nil, err
	}
	if p.match != nil {
		ok, err := p.match.Match(p.tenant, &rec)
		if err != nil || !ok {
			return false, nil // a record the condition cannot evaluate is not a match
		}
	}
	if p.json {
		b, err := schemas.AppendJSON(nil, &rec)
		if err != nil {
			return false, err
		}
		_, err = p.w.Write(append(b, '\n'))
		return err == nil, err
	}
	k := rec.Kubernetes
	source := k.NamespaceName + "/" + k.PodName + "/" + k.ContainerName
	if source == "//" {
		source = "-"
	}
	_, err = fmt.Fprintf(p.w, "%s  %s  %s\n", rec.Timestamp.UTC().Format("2006-01-02T15:04:05.000Z"), source, oneLine(rec.Log))
	return err == nil, err
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
