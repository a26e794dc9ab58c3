package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/sluicelogs/sluice/internal/config"
	"github.com/sluicelogs/sluice/shipper"
)

func runShipper(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("shipper", flag.ContinueOnError)
	fs.SetOutput(stderr)
	output := fs.String("output", "kafka", "where records go: kafka, or stdout (one JSON object per line, for debugging a node)")
	once := fs.Bool("once", false, "read every matched file to its end, wait for every acknowledgement, save checkpoints and exit")
	validate := fs.Bool("validate", false, "check the settings, print them (secrets redacted) and exit: 0 when they are valid")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: sluice shipper [--output kafka|stdout] [--once] [--validate]\n\n")
		fmt.Fprintf(stderr, "Tails container log files on this node and produces every line to <prefix>.raw.<tenant>.\n\nFlags:\n")
		fs.PrintDefaults()
		fmt.Fprintf(stderr, "\nSettings (environment variables):\n")
		config.WriteUsage(stderr, &shipper.Config{})
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("shipper: unexpected arguments %q", fs.Args())
	}
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
		return fmt.Errorf("shipper: --output must be kafka or stdout, got %q", *output)
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
