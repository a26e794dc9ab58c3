package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/sluicelogs/sluice/internal/config"
	"github.com/sluicelogs/sluice/router"
)

func runRouter(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("router", flag.ContinueOnError)
	fs.SetOutput(stderr)
	validate := fs.Bool("validate", false, "check the settings, print them (secrets redacted) and exit: 0 when they are valid")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: sluice router [--validate]\n\n")
		fmt.Fprintf(stderr, "Consumes <prefix>.raw.<tenant>, applies each tenant's pipeline from <prefix>.config and produces to\n<prefix>.parsed.<tenant>[.<stream>] or <prefix>.dlq.<tenant>, in Kafka transactions.\n\nFlags:\n")
		fs.PrintDefaults()
		fmt.Fprintf(stderr, "\nSettings (environment variables):\n")
		config.WriteUsage(stderr, &router.Config{})
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("router: unexpected arguments %q", fs.Args())
	}
	var cfg router.Config
	if err := config.Load(ctx, &cfg); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("router settings:\n%w", err)
	}
	if *validate {
		return printSettings(stdout, "router", &cfg)
	}
	return runStage(ctx, cfg.Telemetry, stderr, func(st stage) error {
		r, err := router.New(cfg, router.Options{Logger: st.log, Registerer: st.reg, Ready: st.ready})
		if err != nil {
			return err
		}
		return r.Run(ctx)
	})
}
