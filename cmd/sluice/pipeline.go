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

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluicelogs/sluice/internal/cli"
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

// pipelineCommand is `sluice pipeline` and its subcommands.
func pipelineCommand() *cli.Command {
	var desc strings.Builder
	fmt.Fprintf(&desc, `Manages per-tenant pipelines. A tenant's pipeline is stored in its own compacted topic
<prefix>.config.<tenant>, which only the tenant (and administrators) can write; routers publish
their status of the tenant to <prefix>.status.<tenant>, which the tenant can read. apply, get
and delete work with the tenant's own credentials (from sluice tenant create); list reads the
routers' <prefix>.status and needs an operator's.

validate and test need no Kafka; test prints {"topic": ..., "record": ...}, {"dropped": true}
or {"dlq": {...}} per input line. Input lines are records in JSON form, partial ones
such as {"log": "..."}, or plain text (which becomes log). pseudonym() uses the public
test key %q there, as in a pipeline's tests, never the tenant's key: routers
give other values.`, router.TestPseudonymKeyText)
	settings := func(w io.Writer) {
		fmt.Fprintf(w, "Settings (environment variables):\n")
		config.WriteUsage(w, &pipelineConfig{})
	}
	seeSettings := func(w io.Writer) {
		fmt.Fprintf(w, "Settings (environment variables): see 'sluice pipeline --help'.\n")
	}
	fileArgs := func(c *cli.Command) *cli.Command {
		c.Usage, c.Args, c.MaxArgs = "[flags] FILE | -f FILE", "FILE", 1
		return c
	}
	tenantArg := func(c *cli.Command) *cli.Command {
		c.Args, c.MinArgs, c.MaxArgs = "TENANT", 1, 1
		return c
	}
	return &cli.Command{
		Name:        "pipeline",
		Summary:     "validate, test, apply, get, list and delete per-tenant pipelines",
		Description: desc.String(),
		Examples: []string{
			"sluice pipeline validate shop.yaml                 # schema, compile, its tests; offline",
			"sluice pipeline test shop.yaml < lines.jsonl       # what the pipeline makes of sample records",
			"sluice pipeline apply shop.yaml                    # show the diff, make its dataset topics, store it",
			"sluice pipeline get shop                           # stored version, what each router applies",
		},
		Epilog: settings,
		Subcommands: []*cli.Command{
			fileArgs(&cli.Command{
				Name:        "validate",
				Summary:     "decode and compile the pipeline and run its tests: offline, exit 0 when valid",
				Description: "Decodes and compiles the pipeline and runs its tests, offline; exits 0 when it is valid, else\nprints every problem with its line and column.",
				Examples: []string{
					"sluice pipeline validate shop.yaml",
					"sluice pipeline validate -f - < shop.yaml",
				},
				Epilog: seeSettings,
				Flags: func(fs *flag.FlagSet) cli.Action {
					file := fileFlag(fs)
					return func(_ context.Context, args []string, stdout, stderr io.Writer) error {
						return pipelineValidate(*file, args, stdout, stderr)
					}
				},
			}),
			fileArgs(&cli.Command{
				Name:    "test",
				Summary: "run JSON lines from stdin through the pipeline and print each outcome as a JSON line: offline",
				Description: "Runs each line of stdin through the pipeline, offline, and prints its outcome as a JSON line:\n" +
					"{\"topic\": ..., \"record\": ...}, {\"dropped\": true} or {\"dlq\": {...}}.",
				Examples: []string{
					"sluice pipeline test shop.yaml < lines.jsonl",
					"echo 'GET /cart 500' | sluice pipeline test -f shop.yaml   # plain text becomes log",
				},
				Epilog: settings,
				Flags: func(fs *flag.FlagSet) cli.Action {
					file := fileFlag(fs)
					return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
						return pipelineTest(ctx, *file, args, stdout, stderr)
					}
				},
			}),
			fileArgs(&cli.Command{
				Name:    "apply",
				Summary: "show what changes, make the topics of the datasets it routes to, then store the pipeline in the tenant's config topic",
				Description: `Validates the pipeline, prints a unified diff of it against the version stored in the tenant's
config topic, makes (or checks) the topics of the datasets it routes to, then stores it. Its version must be
greater than the stored one. A version that removes steps of the stored one is stored only once
confirmed: on a terminal apply asks (y/N); elsewhere it needs --yes.`,
				Examples: []string{
					"sluice pipeline apply shop.yaml                      # diff, ask if it removes steps, store",
					"sluice pipeline apply -f shop.yaml --yes             # in scripts: no question asked",
					"sluice pipeline apply shop.yaml --output yaml        # the Pipeline resource, for sluice-controller",
				},
				Epilog: seeSettings,
				Flags: func(fs *flag.FlagSet) cli.Action {
					var o applyOptions
					o.file = fileFlag(fs)
					o.timeout = kafkaTimeoutFlag(fs)
					o.yes = fs.Bool("yes", false, "store a version that removes steps of the stored one without asking")
					o.allowMissing = fs.Bool("allow-missing-datasets", false, "store the pipeline even when the topics of datasets it routes to are missing and cannot be made (the router pauses the tenant until they exist)")
					cli.DeprecatedAlias(fs, "allow-missing-streams", "allow-missing-datasets")
					o.output = fs.String("output", "", "yaml: validate, then print the Pipeline resource (sluice.io/v1alpha1) holding the document, in the namespace of the tenant's name, and do nothing else (for sluice-controller)")
					return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
						return pipelineApply(ctx, o, args, stdout, stderr)
					}
				},
			}),
			tenantArg(&cli.Command{
				Name:        "get",
				Summary:     "print the stored pipeline, its version and what each router applies, its errors and pauses (as YAML comments)",
				Description: "Prints the tenant's stored pipeline, with its version and what each router applies, its errors\nand pauses as YAML comments: the output can be edited and applied again.",
				Examples: []string{
					"sluice pipeline get shop",
					"sluice pipeline get shop > shop.yaml     # edit, raise version:, then apply",
				},
				Epilog: seeSettings,
				Flags: func(fs *flag.FlagSet) cli.Action {
					timeout := kafkaTimeoutFlag(fs)
					return func(ctx context.Context, args []string, stdout, _ io.Writer) error {
						return pipelineGet(ctx, *timeout, args[0], stdout)
					}
				},
			}),
			{
				Name:        "list",
				Summary:     "list tenants with the versions routers apply, errors and pauses (operators: reads <prefix>.status)",
				Description: "Lists tenants with the versions routers apply, their errors and pauses. It reads the routers'\n<prefix>.status: operators' credentials.",
				Examples:    []string{"sluice pipeline list"},
				Epilog:      seeSettings,
				Flags: func(fs *flag.FlagSet) cli.Action {
					timeout := kafkaTimeoutFlag(fs)
					return func(ctx context.Context, _ []string, stdout, _ io.Writer) error {
						return pipelineList(ctx, *timeout, stdout)
					}
				},
			},
			tenantArg(&cli.Command{
				Name:        "delete",
				Summary:     "delete the tenant's pipeline: routers put it back on pass-through",
				Description: "Deletes the tenant's pipeline: routers put the tenant back on pass-through.",
				Examples:    []string{"sluice pipeline delete shop"},
				Epilog:      seeSettings,
				Flags: func(fs *flag.FlagSet) cli.Action {
					timeout := kafkaTimeoutFlag(fs)
					return func(ctx context.Context, args []string, stdout, _ io.Writer) error {
						return pipelineDelete(ctx, *timeout, args[0], stdout)
					}
				},
			}),
		},
	}
}

// fileFlag adds -f FILE, the pipeline file of a subcommand that also takes
// it as its argument.
func fileFlag(fs *flag.FlagSet) *string {
	return fs.String("f", "", "pipeline YAML `FILE` (- for stdin); or give it as the argument")
}

// readPipelineFile returns the name and content of the pipeline file,
// given with -f or as the one argument.
func readPipelineFile(flagFile string, args []string) (string, []byte, error) {
	file := flagFile
	switch {
	case file != "" && len(args) > 0:
		return "", nil, cli.Usagef("give the pipeline file once: -f %s or %s", file, args[0])
	case len(args) > 0:
		file = args[0]
	case file == "":
		return "", nil, cli.Usagef("missing the pipeline file: give it as the argument, or -f FILE (- for stdin)")
	}
	var src []byte
	var err error
	if file == "-" {
		src, err = io.ReadAll(io.LimitReader(stdin, router.MaxSpecBytes+1))
	} else {
		src, err = os.ReadFile(file)
	}
	if err != nil {
		return "", nil, fmt.Errorf("read pipeline: %w", err)
	}
	return file, src, nil
}

// tenantArgument checks the TENANT argument of get and delete.
func tenantArgument(tenant string) error {
	if err := kafka.ValidateTenant(tenant); err != nil {
		return cli.Usagef("%v", err)
	}
	return nil
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

// specWarnings writes what the document at file says that should change (a
// deprecated key), one "warning:" line each with its line and column, as
// specProblems writes problems.
func specWarnings(w io.Writer, file string, warnings []router.Warning) {
	for _, wn := range warnings {
		fmt.Fprintf(w, "warning: %s: %s\n", file, wn)
	}
}

func pipelineValidate(flagFile string, args []string, stdout, stderr io.Writer) error {
	file, src, err := readPipelineFile(flagFile, args)
	if err != nil {
		return err
	}
	p, err := router.Load(src)
	if err != nil {
		return fmt.Errorf("validate %s: %w", file, specProblems(file, err))
	}
	specWarnings(stderr, file, p.Warnings())
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

func pipelineTest(ctx context.Context, flagFile string, args []string, stdout, stderr io.Writer) error {
	if flagFile == "-" || (len(args) > 0 && args[0] == "-") {
		return cli.Usagef("stdin carries the records; give the pipeline as a file")
	}
	file, src, err := readPipelineFile(flagFile, args)
	if err != nil {
		return err
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
	specWarnings(stderr, file, p.Warnings())

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
			if res.Dataset != "" {
				o.Topic = topics.ParsedDataset(p.Tenant, res.Dataset)
			}
			for _, c := range res.Copies {
				o.Copies = append(o.Copies, topics.ParsedDataset(p.Tenant, c))
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

// denied explains an authorization error on a tenant's topics: the
// credentials in use are not the tenant's.
func denied(err error, tenant string, topics kafka.Topics) error {
	if errors.Is(err, kerr.TopicAuthorizationFailed) {
		return fmt.Errorf("%w\nthe Kafka user in use may not touch tenant %s's pipeline (%s): use that tenant's credentials "+
			"(a tenant can only apply, get and delete its own pipeline; the document's tenant: names the tenant)", err, tenant, topics.TenantConfig(tenant))
	}
	return err
}

// applyOptions are the flags of pipeline apply.
type applyOptions struct {
	file, output      *string
	timeout           *time.Duration
	yes, allowMissing *bool
}

func pipelineApply(ctx context.Context, o applyOptions, args []string, stdout, stderr io.Writer) error {
	file, src, err := readPipelineFile(*o.file, args)
	if err != nil {
		return err
	}
	// Validate before connecting, so that a broken file is reported the same
	// way with or without Kafka.
	p, err := router.Load(src)
	if err != nil {
		return fmt.Errorf("apply %s: %w", file, specProblems(file, err))
	}
	specWarnings(stderr, file, p.Warnings())
	switch *o.output {
	case "":
	case "yaml":
		b, err := resources.PipelineYAML(p.Tenant, src)
		if err != nil {
			return err
		}
		_, err = stdout.Write(b)
		return err
	default:
		return cli.Usagef("--output %q: want yaml", *o.output)
	}
	// The timeout bounds each exchange with Kafka, not the user's answer
	// in between.
	call := kafkaCall{clientID: "sluice-pipeline", timeout: *o.timeout, follow: true}
	return connectKafka(ctx, call, func(ctx context.Context, k *kafkaSession) error {
		topics := k.topics
		// The tenant's config topic first: nothing is made for a tenant
		// that does not exist or whose pipeline these credentials may not
		// touch.
		var cur *router.StoredPipeline
		if err := k.bounded(ctx, func(ctx context.Context) error {
			var err error
			cur, err = router.ReadPipeline(ctx, k.cl, topics, p.Tenant)
			return err
		}); err != nil {
			return fmt.Errorf("apply %s: %w", file, denied(err, p.Tenant, topics))
		}
		if cur != nil && p.Version <= cur.Version {
			return fmt.Errorf("apply %s: %w: tenant %s: version %d is not greater than the stored version %d (raise version: in %s)",
				file, router.ErrVersionNotIncreasing, p.Tenant, p.Version, cur.Version, file)
		}
		from := topics.TenantConfig(p.Tenant) + " (nothing stored: pass-through)"
		var stored []byte
		if cur != nil {
			from = fmt.Sprintf("%s (stored: version %d)", topics.TenantConfig(p.Tenant), cur.Version)
			stored = cur.Source
		}
		fmt.Fprint(stdout, pipelineDiff(stored, src, from, fmt.Sprintf("%s (version %d)", file, p.Version)))
		if removed := removedSteps(documentSteps(stored), documentSteps(src)); len(removed) > 0 && !*o.yes {
			what := fmt.Sprintf("version %d removes %d step(s) of the stored version %d: %s", p.Version, len(removed), cur.Version, describeSteps(removed))
			if file == "-" || !isTerminal(stdin) {
				return cli.Usagef("%s; store it with --yes (stdin is not a terminal to ask on)", what)
			}
			if !confirm(stderr, stdin, upperFirst(what)+". Store it?") {
				return fmt.Errorf("apply %s: not stored", file)
			}
		}
		return k.bounded(ctx, func(ctx context.Context) error {
			st, err := kafka.EnsureDatasetTopics(ctx, k.adm, topics, p.Tenant, p.Datasets())
			if err != nil {
				return fmt.Errorf("apply %s: dataset topics: %w", file, denied(err, p.Tenant, topics))
			}
			for _, topic := range st.Created {
				fmt.Fprintf(stdout, "created dataset topic %s\n", topic)
			}
			if len(st.Missing) > 0 {
				var b strings.Builder
				var datasets []string
				for _, topic := range slices.Sorted(maps.Keys(st.Missing)) {
					fmt.Fprintf(&b, "\n  %s: %v", topic, st.Missing[topic])
					_, _, dataset, _ := topics.TenantOf(topic)
					datasets = append(datasets, dataset)
				}
				msg := fmt.Sprintf("the pipeline routes to datasets whose topics do not exist and could not be made:%s\n"+
					"make them with administrator credentials: sluice tenant create --datasets %s %s",
					b.String(), strings.Join(datasets, ","), p.Tenant)
				if !*o.allowMissing {
					return fmt.Errorf("apply %s: %s\n(or apply with --allow-missing-datasets: the router pauses the tenant until they exist)", file, msg)
				}
				fmt.Fprintf(stdout, "warning: %s\n", msg)
			}
			applied, err := router.ApplyPipeline(ctx, k.cl, topics, src)
			if err != nil {
				return fmt.Errorf("apply %s: %w", file, denied(err, p.Tenant, topics))
			}
			_, err = fmt.Fprintf(stdout, "applied: tenant %s version %d to %s\n", applied.Tenant, applied.Version, topics.TenantConfig(applied.Tenant))
			return err
		})
	})
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func pipelineGet(ctx context.Context, timeout time.Duration, tenant string, stdout io.Writer) error {
	if err := tenantArgument(tenant); err != nil {
		return err
	}
	return connectKafka(ctx, kafkaCall{clientID: "sluice-pipeline", timeout: timeout}, func(ctx context.Context, k *kafkaSession) error {
		cl, topics := k.cl, k.topics
		sp, err := router.ReadPipeline(ctx, cl, topics, tenant)
		legacy := false
		var noTopic error // the tenant has no config topic: perhaps no tenant at all
		if errors.Is(err, router.ErrNoConfigTopic) {
			noTopic = err
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
		switch {
		case sp == nil && len(statuses) == 0 && noTopic != nil:
			return fmt.Errorf("get %s: %w: %w", tenant, router.ErrNoPipeline, noTopic)
		case sp == nil && len(statuses) == 0:
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

func pipelineList(ctx context.Context, timeout time.Duration, stdout io.Writer) error {
	return connectKafka(ctx, kafkaCall{clientID: "sluice-pipeline", timeout: timeout}, func(ctx context.Context, k *kafkaSession) error {
		cl, topics := k.cl, k.topics
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

func pipelineDelete(ctx context.Context, timeout time.Duration, tenant string, stdout io.Writer) error {
	if err := tenantArgument(tenant); err != nil {
		return err
	}
	return connectKafka(ctx, kafkaCall{clientID: "sluice-pipeline", timeout: timeout}, func(ctx context.Context, k *kafkaSession) error {
		topics := k.topics
		if err := router.DeletePipeline(ctx, k.cl, topics, tenant); err != nil {
			return denied(err, tenant, topics)
		}
		_, err := fmt.Fprintf(stdout, "deleted: tenant %s now passes through\n", tenant)
		return err
	})
}
