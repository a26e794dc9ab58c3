package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/internal/config"
	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/internal/resources"
	"github.com/sluicelogs/sluice/router"
	"github.com/sluicelogs/sluice/schemas"
)

// stdin is where `sluice pipeline test` reads records; tests replace it.
var stdin io.Reader = os.Stdin

// maxTestLine bounds one input line of `sluice pipeline test`.
const maxTestLine = 16 << 20

// pipelineConfig is the settings of `sluice pipeline`: the Kafka connection
// and the topic prefix.
type pipelineConfig struct {
	Kafka kafka.Config
}

type pipelineCommand struct {
	name, args, summary string
	run                 func(ctx context.Context, fs *flag.FlagSet, args []string, stdout, stderr io.Writer) error
}

func pipelineCommands() []pipelineCommand {
	return []pipelineCommand{
		{"validate", "-f FILE", "decode and compile the pipeline and run its tests: offline, exit 0 when valid", pipelineValidate},
		{"test", "-f FILE", "run JSON lines from stdin through the pipeline and print each outcome as a JSON line: offline", pipelineTest},
		{"apply", "-f FILE", "validate, make (or check) the stream topics it routes to, then store the pipeline in the tenant's config topic; its version must be greater than the stored one", pipelineApply},
		{"get", "TENANT", "print the stored pipeline, its version and what each router applies, its errors and pauses (as YAML comments)", pipelineGet},
		{"list", "", "list tenants with the versions routers apply, errors and pauses (operators: reads <prefix>.status)", pipelineList},
		{"delete", "TENANT", "delete the tenant's pipeline: routers put it back on pass-through", pipelineDelete},
	}
}

func pipelineUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: sluice pipeline <subcommand> [flags]\n\n")
	fmt.Fprintf(w, "Manages per-tenant pipelines. A tenant's pipeline is stored in its own compacted topic\n")
	fmt.Fprintf(w, "<prefix>.config.<tenant>, which only the tenant (and administrators) can write; routers publish\n")
	fmt.Fprintf(w, "their status of the tenant to <prefix>.status.<tenant>, which the tenant can read. apply, get\n")
	fmt.Fprintf(w, "and delete work with the tenant's own credentials (from sluice tenant create); list reads the\n")
	fmt.Fprintf(w, "routers' <prefix>.status and needs an operator's.\n\nSubcommands:\n")
	for _, c := range pipelineCommands() {
		fmt.Fprintf(w, "  %-24s %s\n", c.name+" "+c.args, c.summary)
	}
	fmt.Fprintf(w, "\nvalidate and test need no Kafka; test prints {\"topic\": ..., \"record\": ...}, {\"dropped\": true}\n")
	fmt.Fprintf(w, "or {\"dlq\": {...}} per input line. Input lines are records in JSON form, partial ones\n")
	fmt.Fprintf(w, "such as {\"log\": \"...\"}, or plain text (which becomes log). pseudonym() uses the public\n")
	fmt.Fprintf(w, "test key %q there, as in a pipeline's tests, never the tenant's key: routers\n", router.TestPseudonymKeyText)
	fmt.Fprintf(w, "give other values.\n")
	fmt.Fprintf(w, "\nRun 'sluice pipeline <subcommand> --help' for its flags.\n")
	fmt.Fprintf(w, "\nSettings (environment variables):\n")
	config.WriteUsage(w, &pipelineConfig{})
}

func runPipeline(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		pipelineUsage(stderr)
		if len(args) == 0 {
			return errors.New("pipeline: no subcommand given")
		}
		return flag.ErrHelp
	}
	for _, c := range pipelineCommands() {
		if c.name != args[0] {
			continue
		}
		fs := flag.NewFlagSet("pipeline "+c.name, flag.ContinueOnError)
		fs.SetOutput(stderr)
		fs.Usage = func() {
			fmt.Fprintf(stderr, "Usage: sluice pipeline %s [flags] %s\n\n%s.\n", c.name, c.args, upperFirst(c.summary))
			if hasFlags(fs) {
				fmt.Fprintf(stderr, "\nFlags:\n")
				fs.PrintDefaults()
			}
			fmt.Fprintf(stderr, "\nSettings (environment variables): see 'sluice pipeline --help'.\n")
		}
		return c.run(ctx, fs, args[1:], stdout, stderr)
	}
	pipelineUsage(stderr)
	return fmt.Errorf("pipeline: unknown subcommand %q", args[0])
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// parseFileFlag parses a subcommand taking -f FILE and no arguments, and
// returns the file's content.
func parseFileFlag(fs *flag.FlagSet, args []string) (string, []byte, error) {
	file := fs.String("f", "", "pipeline YAML file (- for stdin)")
	if err := fs.Parse(args); err != nil {
		return "", nil, err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return "", nil, fmt.Errorf("pipeline %s: unexpected arguments %q", fs.Name(), fs.Args())
	}
	if *file == "" {
		fs.Usage()
		return "", nil, fmt.Errorf("%s: -f FILE is required", fs.Name())
	}
	var src []byte
	var err error
	if *file == "-" {
		src, err = io.ReadAll(io.LimitReader(stdin, router.MaxSpecBytes+1))
	} else {
		src, err = os.ReadFile(*file)
	}
	if err != nil {
		return "", nil, fmt.Errorf("%s: read pipeline: %w", fs.Name(), err)
	}
	return *file, src, nil
}

// parseTenantArg parses a subcommand taking one TENANT argument.
func parseTenantArg(fs *flag.FlagSet, args []string) (string, error) {
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return "", fmt.Errorf("%s: want one TENANT argument, got %d", fs.Name(), fs.NArg())
	}
	tenant := fs.Arg(0)
	if err := kafka.ValidateTenant(tenant); err != nil {
		return "", fmt.Errorf("%s: %w", fs.Name(), err)
	}
	return tenant, nil
}

// specProblems formats a Load or Parse error as one problem per line,
// prefixed with file (SpecErrors already name their line and column). The
// result wraps err, so errors.Is and errors.As see the SpecErrors.
func specProblems(file string, err error) error {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d problem(s):", len(errs))
	for _, e := range errs {
		first, rest, _ := strings.Cut(e.Error(), "\n")
		fmt.Fprintf(&b, "\n  %s: %s", file, first)
		for _, l := range strings.Split(rest, "\n") {
			if l != "" {
				fmt.Fprintf(&b, "\n    %s", l)
			}
		}
	}
	return &problemsError{msg: b.String(), err: err}
}

type problemsError struct {
	msg string
	err error
}

func (e *problemsError) Error() string { return e.msg }
func (e *problemsError) Unwrap() error { return e.err }

func pipelineValidate(_ context.Context, fs *flag.FlagSet, args []string, stdout, _ io.Writer) error {
	file, src, err := parseFileFlag(fs, args)
	if err != nil {
		return err
	}
	p, err := router.Load(src)
	if err != nil {
		return fmt.Errorf("validate %s: %w", file, specProblems(file, err))
	}
	_, err = fmt.Fprintf(stdout, "valid: tenant %s version %d, %d tests passed\n", p.Tenant, p.Version, len(p.Spec().Tests))
	return err
}

// testOutcome is one output line of `sluice pipeline test`.
type testOutcome struct {
	Topic   string          `json:"topic,omitempty"`
	Copies  []string        `json:"copies,omitempty"` // topics that also get the record
	Lines   int             `json:"lines,omitempty"`  // with a multiline step: the input lines joined into it
	Record  json.RawMessage `json:"record,omitempty"`
	Dropped bool            `json:"dropped,omitempty"`
	DLQ     *testDLQ        `json:"dlq,omitempty"`
}

type testDLQ struct {
	Reason   string `json:"reason"`
	Step     int    `json:"step"`
	StepType string `json:"step_type,omitempty"`
	Error    string `json:"error"`
}

func pipelineTest(ctx context.Context, fs *flag.FlagSet, args []string, stdout, _ io.Writer) error {
	file, src, err := parseFileFlag(fs, args)
	if err != nil {
		return err
	}
	if file == "-" {
		return errors.New("test: stdin carries the records; give the pipeline as a file")
	}
	var cfg pipelineConfig
	if err := config.Load(ctx, &cfg); err != nil {
		return err
	}
	if err := kafka.ValidatePrefix(cfg.Kafka.TopicPrefix); err != nil {
		return fmt.Errorf("test: %s: %w", config.Var("TOPIC_PREFIX"), err)
	}
	topics := cfg.Kafka.Topics()
	spec, err := router.Parse(src)
	if err != nil {
		return fmt.Errorf("test %s: %w", file, specProblems(file, err))
	}
	p, err := router.Compile(spec)
	if err != nil {
		return fmt.Errorf("test %s: %w", file, specProblems(file, err))
	}

	dec := schemas.NewDecoder()
	out := bufio.NewWriter(stdout)
	emit := func(o testOutcome) error {
		line, err := json.Marshal(o)
		if err != nil {
			return fmt.Errorf("test: %w", err)
		}
		out.Write(line)
		if err := out.WriteByte('\n'); err != nil {
			return fmt.Errorf("test: write: %w", err)
		}
		return nil
	}
	process := func(rec schemas.Record, lines int) error {
		o := testOutcome{Lines: lines}
		rec.Tenant = p.Tenant // the tenant comes from the topic, never the payload
		// Offline, and its output is for the pipeline's authors: the public
		// test key, as in the pipeline's tests, never the tenant's.
		res := p.ProcessWithKey(&rec, router.TestPseudonymKey)
		switch {
		case res.DLQ != nil:
			o.DLQ = &testDLQ{Reason: res.DLQ.Reason, Step: res.DLQ.Step, StepType: res.DLQ.StepType, Error: errString(res.DLQ.Err)}
		case res.Dropped:
			o.Dropped = true
		default:
			o.Topic = topics.Parsed(p.Tenant)
			if res.Stream != "" {
				o.Topic = topics.ParsedStream(p.Tenant, res.Stream)
			}
			for _, c := range res.Copies {
				o.Copies = append(o.Copies, topics.ParsedStream(p.Tenant, c))
			}
			b, err := schemas.AppendJSON(nil, &rec)
			if err != nil {
				// The router could not encode it either.
				o = testOutcome{Lines: lines, DLQ: &testDLQ{Reason: schemas.Reason(err), Step: -1, Error: err.Error()}}
			} else {
				o.Record = b
			}
		}
		return emit(o)
	}
	// A pipeline that joins lines sees the input as the lines of one
	// container: consecutive lines are joined as the router joins them,
	// and each outcome says how many lines it took.
	ml := p.Multiline()
	var group []schemas.Record
	flush := func() error {
		if len(group) == 0 {
			return nil
		}
		joined, n := ml.Join(group)[0], len(group)
		group = group[:0]
		return process(joined, n)
	}
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 64<<10), maxTestLine)
	for sc.Scan() {
		in := sc.Bytes()
		if len(strings.TrimSpace(string(in))) == 0 {
			continue
		}
		rec, f := router.DecodeInput(ctx, dec, in)
		if f != nil {
			// The router dead-letters such a value too.
			if err := flush(); err != nil {
				return err
			}
			if err := emit(testOutcome{DLQ: &testDLQ{Reason: f.Reason, Step: -1, Error: errString(f.Err)}}); err != nil {
				return err
			}
			continue
		}
		if ml == nil {
			if err := process(rec, 0); err != nil {
				return err
			}
			continue
		}
		if len(group) > 0 && len(ml.Join(append(group, rec))) > 1 {
			if err := flush(); err != nil {
				return err
			}
		}
		group = append(group, rec)
	}
	if err := flush(); err != nil {
		return err
	}
	if err := sc.Err(); err != nil {
		out.Flush()
		return fmt.Errorf("test: read stdin: %w", err)
	}
	if err := out.Flush(); err != nil {
		return fmt.Errorf("test: write: %w", err)
	}
	return nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// kafkaFlags adds the flags shared by the subcommands that talk to Kafka.
func kafkaFlags(fs *flag.FlagSet) *time.Duration {
	return fs.Duration("timeout", 30*time.Second, "give up talking to Kafka after this long")
}

// withKafka loads the Kafka settings, connects, and calls fn with the client
// and the topic names.
func withKafka(ctx context.Context, timeout time.Duration, fn func(ctx context.Context, cl *kgo.Client, topics kafka.Topics) error) error {
	return connectKafka(ctx, timeout, "sluice-pipeline", nil, fn)
}

// connectKafka loads the Kafka settings (SLUICE_KAFKA_*, SLUICE_TOPIC_PREFIX),
// connects as clientID (unless the settings name one) with the extra client
// options, and calls fn with the client and the topic names, within timeout
// (0: none).
func connectKafka(ctx context.Context, timeout time.Duration, clientID string, extra []kgo.Opt, fn func(ctx context.Context, cl *kgo.Client, topics kafka.Topics) error) error {
	var cfg pipelineConfig
	if err := config.Load(ctx, &cfg); err != nil {
		return err
	}
	if cfg.Kafka.ClientID == "" {
		cfg.Kafka.ClientID = clientID
	}
	opts, err := cfg.Kafka.Options()
	if err != nil {
		return fmt.Errorf("kafka settings:\n%w", err)
	}
	cl, err := kafka.NewClient(append(opts, extra...)...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	return fn(ctx, cl, cfg.Kafka.Topics())
}

// denied explains an authorization error on a tenant's topics: the
// credentials in use are not the tenant's.
func denied(err error, tenant string, topics kafka.Topics) error {
	if errors.Is(err, kerr.TopicAuthorizationFailed) {
		return fmt.Errorf("%w\nthe Kafka user in use may not touch tenant %s's pipeline (%s): use that tenant's credentials "+
			"(a tenant can only apply, get and delete its own pipeline; the document's tenant: names the tenant)", err, tenant, topics.TenantConfig(tenant))
	}
	return err
}

func pipelineApply(ctx context.Context, fs *flag.FlagSet, args []string, stdout, _ io.Writer) error {
	timeout := kafkaFlags(fs)
	allowMissing := fs.Bool("allow-missing-streams", false, "store the pipeline even when stream topics it routes to are missing and cannot be made (the router pauses the tenant until they exist)")
	output := fs.String("output", "", "yaml: validate, then print the Pipeline resource (sluice.io/v1alpha1) holding the document, in the namespace of the tenant's name, and do nothing else (for sluice-controller)")
	file, src, err := parseFileFlag(fs, args)
	if err != nil {
		return err
	}
	// Validate before connecting, so that a broken file is reported the same
	// way with or without Kafka.
	p, err := router.Load(src)
	if err != nil {
		return fmt.Errorf("apply %s: %w", file, specProblems(file, err))
	}
	switch *output {
	case "":
	case "yaml":
		b, err := resources.PipelineYAML(p.Tenant, src)
		if err != nil {
			return err
		}
		_, err = stdout.Write(b)
		return err
	default:
		return fmt.Errorf("apply: --output %q: want yaml", *output)
	}
	return withKafka(ctx, *timeout, func(ctx context.Context, cl *kgo.Client, topics kafka.Topics) error {
		// The tenant's config topic first: nothing is made for a tenant
		// that does not exist or whose pipeline these credentials may not
		// touch.
		if _, err := router.ReadPipeline(ctx, cl, topics, p.Tenant); err != nil {
			return fmt.Errorf("apply %s: %w", file, denied(err, p.Tenant, topics))
		}
		st, err := kafka.EnsureStreamTopics(ctx, kadm.NewClient(cl), topics, p.Tenant, p.Streams())
		if err != nil {
			return fmt.Errorf("apply %s: stream topics: %w", file, denied(err, p.Tenant, topics))
		}
		for _, topic := range st.Created {
			fmt.Fprintf(stdout, "created stream topic %s\n", topic)
		}
		if len(st.Missing) > 0 {
			var b strings.Builder
			var streams []string
			for _, topic := range slices.Sorted(maps.Keys(st.Missing)) {
				fmt.Fprintf(&b, "\n  %s: %v", topic, st.Missing[topic])
				_, _, stream, _ := topics.TenantOf(topic)
				streams = append(streams, stream)
			}
			msg := fmt.Sprintf("the pipeline routes to stream topics that do not exist and could not be made:%s\n"+
				"make them with administrator credentials: sluice tenant create --streams %s %s",
				b.String(), strings.Join(streams, ","), p.Tenant)
			if !*allowMissing {
				return fmt.Errorf("apply %s: %s\n(or apply with --allow-missing-streams: the router pauses the tenant until they exist)", file, msg)
			}
			fmt.Fprintf(stdout, "warning: %s\n", msg)
		}
		applied, err := router.ApplyPipeline(ctx, cl, topics, src)
		if err != nil {
			return fmt.Errorf("apply %s: %w", file, denied(err, p.Tenant, topics))
		}
		_, err = fmt.Fprintf(stdout, "applied: tenant %s version %d to %s\n", applied.Tenant, applied.Version, topics.TenantConfig(applied.Tenant))
		return err
	})
}

func pipelineGet(ctx context.Context, fs *flag.FlagSet, args []string, stdout, _ io.Writer) error {
	timeout := kafkaFlags(fs)
	tenant, err := parseTenantArg(fs, args)
	if err != nil {
		return err
	}
	return withKafka(ctx, *timeout, func(ctx context.Context, cl *kgo.Client, topics kafka.Topics) error {
		sp, err := router.ReadPipeline(ctx, cl, topics, tenant)
		legacy := false
		if errors.Is(err, router.ErrNoConfigTopic) {
			// A tenant made before per-tenant config topics: its pipeline
			// is in the legacy topic (operators only).
			snap, lerr := router.ReadConfig(ctx, cl, topics.Config())
			if lerr != nil {
				return fmt.Errorf("get %s: %w", tenant, errors.Join(err, lerr))
			}
			sp, err, legacy = snap.Pipelines[tenant], nil, true
		}
		if err != nil {
			return fmt.Errorf("get %s: %w", tenant, denied(err, tenant, topics))
		}
		snap, err := router.ReadStatus(ctx, cl, topics.TenantStatus(tenant), tenant)
		if err != nil {
			return fmt.Errorf("get %s: %w", tenant, denied(err, tenant, topics))
		}
		statuses := snap.Statuses[tenant]
		if len(statuses) == 0 {
			// Routers write <prefix>.status.<tenant> only for tenants with
			// their own config topic; operators can read every status.
			if all, err := router.ReadStatus(ctx, cl, topics.Status(), tenant); err == nil {
				statuses = all.Statuses[tenant]
			}
		}
		if sp == nil && len(statuses) == 0 {
			return fmt.Errorf("get %s: %w in %s", tenant, router.ErrNoPipeline, topics.TenantConfig(tenant))
		}
		// Everything but the document is a YAML comment, so the output can
		// be edited and applied again.
		w := bufio.NewWriter(stdout)
		fmt.Fprintf(w, "# tenant: %s\n", tenant)
		where := ""
		if legacy {
			where = " in the legacy " + topics.Config()
		}
		switch {
		case sp == nil:
			fmt.Fprintf(w, "# stored: none (pass-through)\n")
		case sp.Err != nil:
			fmt.Fprintf(w, "# stored%s: offset %d, written %s; does not parse:\n", where, sp.Offset, sp.Timestamp.UTC().Format(time.RFC3339))
			for _, l := range strings.Split(sp.Err.Error(), "\n") {
				fmt.Fprintf(w, "#   %s\n", l)
			}
		default:
			fmt.Fprintf(w, "# stored%s: version %d, offset %d, written %s\n", where, sp.Version, sp.Offset, sp.Timestamp.UTC().Format(time.RFC3339))
		}
		if len(statuses) == 0 {
			fmt.Fprintf(w, "# routers: none reported\n")
		}
		for _, st := range statuses {
			fmt.Fprintf(w, "# router %s: %s\n", st.Router, statusLine(st))
		}
		if sp != nil {
			w.Write(sp.Source)
			if len(sp.Source) > 0 && sp.Source[len(sp.Source)-1] != '\n' {
				w.WriteByte('\n')
			}
		}
		return w.Flush()
	})
}

// statusLine describes one router's status in one line.
func statusLine(st router.RouterStatus) string {
	var b strings.Builder
	if st.Applied == 0 {
		b.WriteString("applies pass-through")
	} else {
		fmt.Fprintf(&b, "applies version %d", st.Applied)
	}
	fmt.Fprintf(&b, ", has seen version %d", st.Stored)
	if !st.Since.IsZero() {
		fmt.Fprintf(&b, ", since %s", st.Since.UTC().Format(time.RFC3339))
	}
	if st.Paused != "" {
		fmt.Fprintf(&b, ", paused until %s: %s", st.PausedUntil.UTC().Format(time.RFC3339), oneLine(st.Paused))
	}
	if st.Error != "" {
		fmt.Fprintf(&b, ", error: %s", oneLine(st.Error))
	}
	return b.String()
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", "; ") }

func pipelineList(ctx context.Context, fs *flag.FlagSet, args []string, stdout, _ io.Writer) error {
	timeout := kafkaFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("list: unexpected arguments %q", fs.Args())
	}
	return withKafka(ctx, *timeout, func(ctx context.Context, cl *kgo.Client, topics kafka.Topics) error {
		snap, err := router.ReadStatus(ctx, cl, topics.Status(), "")
		if err != nil {
			return fmt.Errorf("list: %w", err)
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintf(w, "TENANT\tSTORED\tGOOD\tROUTERS\tERRORS\n")
		for _, tenant := range snap.Tenants() {
			var stored int64
			var errs, routers []string
			for _, st := range snap.Statuses[tenant] {
				stored = max(stored, st.Stored)
				routers = append(routers, fmt.Sprintf("%s=%d", st.Router, st.Applied))
				if st.Paused != "" {
					errs = append(errs, st.Router+": paused: "+oneLine(st.Paused))
				}
				if st.Error != "" {
					errs = append(errs, st.Router+": "+oneLine(st.Error))
				}
			}
			good := "-"
			if g := snap.Good[tenant]; g != nil {
				good = fmt.Sprint(g.Version)
			}
			if len(errs) == 0 {
				errs = []string{"-"}
			}
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\n", tenant, stored, good, strings.Join(routers, ","), strings.Join(errs, "; "))
		}
		return w.Flush()
	})
}

func pipelineDelete(ctx context.Context, fs *flag.FlagSet, args []string, stdout, _ io.Writer) error {
	timeout := kafkaFlags(fs)
	tenant, err := parseTenantArg(fs, args)
	if err != nil {
		return err
	}
	return withKafka(ctx, *timeout, func(ctx context.Context, cl *kgo.Client, topics kafka.Topics) error {
		if err := router.DeletePipeline(ctx, cl, topics, tenant); err != nil {
			return denied(err, tenant, topics)
		}
		_, err := fmt.Fprintf(stdout, "deleted: tenant %s now passes through\n", tenant)
		return err
	})
}
