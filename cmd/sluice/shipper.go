package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/sluicelogs/sluice/internal/cli"
	"github.com/sluicelogs/sluice/internal/config"
	"github.com/sluicelogs/sluice/shipper"
)

func shipperCommand() *cli.Command {
	return &cli.Command{
		Name:        "shipper",
		Summary:     "tail container logs on this node and produce them to per-tenant Kafka topics",
		Usage:       "[--output kafka|stdout] [--once] [--validate]",
		Description: "Tails container log files on this node and produces every line to <prefix>.raw.<tenant>.",
		Examples: []string{
			"sluice shipper --validate                # check the settings and print them, secrets redacted",
			"sluice shipper --output stdout --once    # print this node's records as JSON lines, then exit",
			"sluice shipper                           # run until SIGINT or SIGTERM",
		},
		Epilog: settingsEpilog(&shipper.Config{}),
		Flags: func(fs *flag.FlagSet) cli.Action {
			output := fs.String("output", "kafka", "where records go: kafka, or stdout (one JSON object per line, for debugging a node)")
			once := fs.Bool("once", false, "read every matched file to its end, wait for every acknowledgement, save checkpoints and exit")
			validate := fs.Bool("validate", false, "check the settings, print them (secrets redacted) and exit: 0 when they are valid")
			return func(ctx context.Context, _ []string, stdout, stderr io.Writer) error {
				var cfg shipper.Config
				if err := config.Load(ctx, &cfg); err != nil {
					return err
				}
				if err := cfg.Validate(); err != nil {
					return fmt.Errorf("shipper settings:\n%w", err)
				}
				if *validate {
					return printSettings(stdout, "shipper", &cfg)
				}
				// No soft memory limit of its own: the heap is bounded by the byte
				// budget (what is read and not yet acknowledged) and the garbage
				// collector's default pacing (GOGC=100). A soft limit below the live
				// heap makes the collector run without pause (a limit tuned for a quiet
				// node thrashes on a busy one); in Kubernetes GOMEMLIMIT comes from the
				// container's memory limit (the Helm chart sets it) and is the backstop.
				opts := shipper.Options{Once: *once, Version: version}
				switch *output {
				case "kafka":
				case "stdout":
					opts.Stdout = stdout
				default:
					return cli.Usagef("--output must be kafka or stdout, got %q", *output)
				}
				return runStage(ctx, cfg.Telemetry, stderr, func(st stage) error {
					opts.Logger, opts.Registerer, opts.Ready = st.log, st.reg, st.ready
					s, err := shipper.New(cfg, opts)
					if err != nil {
						return err
					}
					return s.Run(ctx)
				})
			}
		},
	}
}
