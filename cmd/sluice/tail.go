package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/internal/cli"
	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/router"
	"github.com/sluicelogs/sluice/schemas"
)

// tailCommand follows a tenant's parsed topic (or its dead-letter topic)
// and prints each record, like kubectl logs -f.
func tailCommand() *cli.Command {
	return &cli.Command{
		Name:    "tail",
		Summary: "follow a tenant's parsed topic (or its errors) like kubectl logs -f",
		Usage:   "--tenant NAME [flags]",
		Description: `Follows a tenant's parsed topic (read_committed), or with --errors its dead-letter topic,
and prints one readable line per record: time, namespace/pod/container, message. It starts at the
end (new records only) unless --from-beginning, and runs until interrupted (Ctrl-C) or -n records
are printed. Before it follows, it checks within --timeout that Kafka answers, takes the
credentials, and has the topic: a missing tenant or dataset is an error that says how to make it.`,
		Examples: []string{
			"sluice tail --tenant shop                                      # new records, as they come",
			"sluice tail --tenant shop --from-beginning -n 20              # the 20 oldest records kept",
			"sluice tail --tenant shop --filter 'attributes[\"level\"] == \"error\"'",
			"sluice tail --tenant web --errors --from-beginning            # what web's pipeline could not handle, and why",
			"sluice tail --tenant payments --dataset audit --json          # a dataset a route sends to, as JSON lines",
		},
		Epilog: func(w io.Writer) {
			fmt.Fprintf(w, "Settings (environment variables): the SLUICE_KAFKA_* and SLUICE_TOPIC_PREFIX of 'sluice pipeline --help';\nuse the tenant's own credentials.\n")
		},
		Flags: func(fs *flag.FlagSet) cli.Action {
			var o tailOptions
			fs.StringVar(&o.tenant, "tenant", "", "the tenant (`NAME`) whose records to follow (required)")
			fs.StringVar(&o.dataset, "dataset", "", "follow the dataset (`NAME`) a route sends to, <prefix>.parsed.<tenant>.<dataset>, instead of the main parsed topic")
			cli.DeprecatedAlias(fs, "stream", "dataset")
			fs.BoolVar(&o.errorsOnly, "errors", false, "follow the tenant's dead-letter topic: records the router or the indexer could not handle, with the reason")
			fs.BoolVar(&o.fromStart, "from-beginning", false, "start at the oldest record kept rather than at new ones")
			fs.StringVar(&o.filter, "filter", "", "print only records matching this `CONDITION`, in the pipelines' expression language (e.g. pod == \"cart-1\" && attributes[\"level\"] == \"error\")")
			fs.BoolVar(&o.asJSON, "json", false, "print each record as one JSON object per line")
			fs.StringVar(&o.group, "group", "", "consume in this consumer `GROUP` (it must start with <tenant>.) and commit what was printed; default: no group, nothing committed")
			fs.IntVar(&o.limit, "n", 0, "stop after `N` records (0: follow until interrupted)")
			o.timeout = timeoutFlag(fs, "give up when Kafka has not answered, or the topic was not found, within this long (following has no limit)")
			return func(ctx context.Context, _ []string, stdout, stderr io.Writer) error {
				return runTail(ctx, o, stdout, stderr)
			}
		},
	}
}

type tailOptions struct {
	tenant, dataset, filter, group string
	errorsOnly, fromStart, asJSON  bool
	limit                          int
	timeout                        *time.Duration
}

func runTail(ctx context.Context, o tailOptions, stdout, stderr io.Writer) error {
	if o.tenant == "" {
		return cli.Usagef("--tenant is required")
	}
	if err := kafka.ValidateTenant(o.tenant); err != nil {
		return cli.Usagef("--tenant: %v", err)
	}
	if o.dataset != "" {
		if err := kafka.ValidateDataset(o.dataset); err != nil {
			return cli.Usagef("--dataset: %v", err)
		}
		if o.errorsOnly {
			return cli.Usagef("--dataset and --errors exclude each other")
		}
	}
	if o.group != "" && !strings.HasPrefix(o.group, o.tenant+".") {
		return cli.Usagef("--group must start with %q (the tenant's ACLs allow only those groups)", o.tenant+".")
	}
	if o.limit < 0 {
		return cli.Usagef("-n must be 0 or more, got %d", o.limit)
	}
	var match *router.Filter
	if o.filter != "" {
		if o.errorsOnly {
			return cli.Usagef("--filter applies to records, not to dead letters")
		}
		var err error
		if match, err = router.CompileFilter(o.filter); err != nil {
			return cli.Usagef("--filter: %v", err)
		}
	}
	// The topic is known before connecting: the consumer is the client,
	// and it starts consuming once the topic was checked.
	var topicOf func(kafka.Topics) string
	switch {
	case o.errorsOnly:
		topicOf = func(t kafka.Topics) string { return t.DLQ(o.tenant) }
	case o.dataset != "":
		topicOf = func(t kafka.Topics) string { return t.ParsedDataset(o.tenant, o.dataset) }
	default:
		topicOf = func(t kafka.Topics) string { return t.Parsed(o.tenant) }
	}
	start := kgo.NewOffset().AtEnd()
	if o.fromStart {
		start = kgo.NewOffset().AtStart()
	}
	extra := []kgo.Opt{kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(start)}
	if o.group != "" {
		// A group is joined from the start: the topic is checked while it
		// joins. Only what was looked at is committed.
		extra = append(extra, kgo.ConsumerGroup(o.group), kgo.AutoCommitMarks())
	}
	call := kafkaCall{clientID: "sluice-tail", timeout: *o.timeout, follow: true, extra: extra}
	return connectKafka(ctx, call, func(ctx context.Context, k *kafkaSession) error {
		topic := topicOf(k.topics)
		if err := k.tenantTopic(ctx, o.tenant, topic); err != nil {
			return fmt.Errorf("tail: %w", err)
		}
		if o.group != "" || o.fromStart {
			k.cl.AddConsumeTopics(topic)
		} else {
			// From the end as listed now, so that a record written after
			// the line below is printed.
			cctx, cancel := k.bound(ctx)
			var ends kadm.ListedOffsets
			err := k.wait(cctx, func(ctx context.Context) error {
				var err error
				ends, err = k.adm.ListCommittedOffsets(ctx, topic)
				if err == nil {
					err = ends.Error()
				}
				return err
			})
			cancel()
			if err != nil {
				return fmt.Errorf("tail: end of %s: %w", topic, err)
			}
			k.cl.AddConsumePartitions(ends.KOffsets())
		}
		if !o.fromStart {
			fmt.Fprintf(stderr, "waiting for records in %s… (Ctrl-C to stop)\n", topic)
		}
		return followTopic(ctx, k.cl, o, match, stdout)
	})
}

// followTopic prints the records the client consumes until ctx ends or
// o.limit are printed.
func followTopic(ctx context.Context, tc *kgo.Client, o tailOptions, match *router.Filter, stdout io.Writer) error {
	p := tailPrinter{w: stdout, json: o.asJSON, dec: schemas.NewDecoder(), tenant: o.tenant, match: match}
	printed := 0
	for o.limit == 0 || printed < o.limit {
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
		for it := fetches.RecordIter(); !it.Done() && (o.limit == 0 || printed < o.limit); {
			r := it.Next()
			ok, err := p.print(ctx, r, o.errorsOnly)
			if err != nil {
				return err
			}
			if ok {
				printed++
			}
			tc.MarkCommitRecords(r)
		}
	}
	if o.group != "" {
		if err := tc.CommitMarkedOffsets(context.WithoutCancel(ctx)); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
	}
	return nil
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
