// Command sluice-controller keeps Kafka in line with the Tenant and Pipeline
// resources of the cluster it runs in; see package controller.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/sluicelogs/sluice/controller"
	"github.com/sluicelogs/sluice/internal/config"
	"github.com/sluicelogs/sluice/internal/telemetry"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "sluice-controller:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("sluice-controller", flag.ContinueOnError)
	validate := fs.Bool("validate", false, "check the settings, print them (secrets redacted) and exit: 0 when they are valid")
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "Usage: sluice-controller [--validate]\n\nReconciles Tenant and Pipeline resources (sluice.io/v1alpha1) into Kafka.\n\nFlags:\n")
		fs.PrintDefaults()
		fmt.Fprintf(os.Stderr, "\nSettings (environment variables):\n")
		config.WriteUsage(os.Stderr, new(controller.Config))
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	var cfg controller.Config
	if err := config.Load(ctx, &cfg); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if *validate {
		fmt.Println("sluice-controller settings are valid:")
		for _, st := range config.Describe(&cfg) {
			fmt.Printf("  %s=%s\n", st.Name, st.Value)
		}
		return nil
	}
	log, err := cfg.Telemetry.Logger(os.Stderr)
	if err != nil {
		return err
	}
	rc, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("kubernetes API (in-cluster, or KUBECONFIG): %w", err)
	}
	reg := telemetry.NewRegistry()
	srv := telemetry.NewServer(cfg.Telemetry.Addr, reg, log)
	if err := srv.Listen(); err != nil {
		return fmt.Errorf("telemetry server (SLUICE_TELEMETRY_ADDR=%s): %w", cfg.Telemetry.Addr, err)
	}
	srvCtx, stopServer := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServer()
	go func() { _ = srv.Run(srvCtx) }()
	return controller.Run(ctx, cfg, rc, log, reg, srv.SetReady)
}
