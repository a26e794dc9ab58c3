package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

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
