package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicelogs/sluice/internal/cli"
	"github.com/sluicelogs/sluice/internal/config"
	"github.com/sluicelogs/sluice/internal/telemetry"
)

// stage is what every long-running subcommand hands its stage: a logger, a
// metrics registry served on /metrics, and a readiness switch for /readyz.
type stage struct {
	log   *slog.Logger
	reg   prometheus.Registerer
	ready func(bool)
}

// runStage sets up logging and the telemetry server, then runs fn. The
// server outlives fn so /metrics stays scrapable while the stage drains.
func runStage(ctx context.Context, cfg telemetry.Config, stderr io.Writer, fn func(stage) error) error {
	log, err := cfg.Logger(stderr)
	if err != nil {
		return err
	}
	reg := telemetry.NewRegistry()
	srv := telemetry.NewServer(cfg.Addr, reg, log)
	if err := srv.Listen(); err != nil {
		return fmt.Errorf("telemetry server (SLUICE_TELEMETRY_ADDR=%s): %w", cfg.Addr, err)
	}
	srvCtx, stopServer := context.WithCancel(context.WithoutCancel(ctx))
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Run(srvCtx) }()

	err = fn(stage{log: log, reg: reg, ready: srv.SetReady})
	stopServer()
	if serr := <-srvDone; serr != nil && err == nil {
		err = fmt.Errorf("telemetry server: %w", serr)
	}
	return err
}

// printSettings prints a stage's valid settings for --validate, secrets
// redacted.
func printSettings(w io.Writer, name string, cfg any) error {
	fmt.Fprintf(w, "%s settings are valid:\n", name)
	for _, st := range config.Describe(cfg) {
		fmt.Fprintf(w, "  %s=%s\n", st.Name, st.Value)
	}
	return nil
}

// settings is a stage's configuration struct, by pointer.
type settings[C any] interface {
	*C
	Validate() error
}

// serviceCommand is the command of a long-running stage whose only flag
// is --validate (router, indexer): it loads and checks the settings, then
// runs the stage built by start with telemetry until ctx ends.
func serviceCommand[C any, P settings[C]](name, summary, about string,
	telemetryOf func(*C) telemetry.Config, start func(ctx context.Context, cfg C, st stage) error) *cli.Command {
	return &cli.Command{
		Name: name, Summary: summary, Usage: "[--validate]",
		Description: about,
		Examples: []string{
			"sluice " + name + " --validate     # check the settings and print them, secrets redacted",
			"sluice " + name + "                # run until SIGINT or SIGTERM",
		},
		Epilog: settingsEpilog(P(new(C))),
		Flags: func(fs *flag.FlagSet) cli.Action {
			validate := fs.Bool("validate", false, "check the settings, print them (secrets redacted) and exit: 0 when they are valid")
			return func(ctx context.Context, _ []string, stdout, stderr io.Writer) error {
				cfg := P(new(C))
				if err := config.Load(ctx, cfg); err != nil {
					return err
				}
				if err := cfg.Validate(); err != nil {
					return fmt.Errorf("%s settings:\n%w", name, err)
				}
				if *validate {
					return printSettings(stdout, name, cfg)
				}
				return runStage(ctx, telemetryOf(cfg), stderr, func(st stage) error { return start(ctx, *cfg, st) })
			}
		},
	}
}

// settingsEpilog writes the environment variables of cfg, a settings
// struct, for a command's help.
func settingsEpilog(cfg any) func(io.Writer) {
	return func(w io.Writer) {
		fmt.Fprintf(w, "Settings (environment variables):\n")
		config.WriteUsage(w, cfg)
	}
}
