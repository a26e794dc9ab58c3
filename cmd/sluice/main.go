// Command sluice is the one binary of the Sluice log pipeline. Each
// subcommand builds its stage from SLUICE_* environment variables and runs
// it until SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"syscall"
	_ "time/tzdata" // SLUICE_INDEXER_TIMEZONE works in images without a zoneinfo database
)

// version and commit are stamped at build time:
// -ldflags "-X main.version=v1.2.3 -X main.commit=1a2b3c4" (make build and
// the Dockerfile do).
var (
	version = "dev"
	commit  = ""
)

// buildCommit is the commit stamped with -X main.commit, else the one the
// go command recorded from the repository (vcs.revision, shortened, with
// "-dirty" for uncommitted changes), else "unknown".
func buildCommit() string {
	if commit != "" {
		return commit
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev == "" {
		return "unknown"
	}
	return rev[:min(len(rev), 7)] + dirty
}

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return slices.Concat(devCommands()[:1], []command{
		{"demo", "write the demo workload's container logs for a shipper, after making its tenants (docker compose)", runDemo},
		{"shipper", "tail container logs on this node and produce them to per-tenant Kafka topics", runShipper},
		{"pipeline", "validate, test, apply, get, list and delete per-tenant pipelines", runPipeline},
		{"router", "apply each tenant's pipeline between its raw and parsed topics, in Kafka transactions", runRouter},
		{"indexer", "bulk-write parsed topics to Elasticsearch daily indices (scale by adding replicas)", runIndexer},
		{"tenant", "create, list and delete tenants: topics, Kafka user, ACLs, quotas", runTenant},
		{"produce", "send lines or JSON objects from stdin to a tenant's raw topic", runProduce},
		{"tail", "follow a tenant's parsed topic (or its errors) like kubectl logs -f", runTail},
		{"search", "search a tenant's indices with a Lucene query string, newest first", runSearch},
	}, devCommands()[1:], []command{
		{"probe", "exit 0 when a stage's /readyz answers 2xx (health checks in images without a shell)", runProbe},
		{"version", "print the version and commit", func(_ context.Context, _ []string, stdout, _ io.Writer) error {
			_, err := fmt.Fprintf(stdout, "sluice %s (commit %s)\n", version, buildCommit())
			return err
		}},
	})
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
	default:
		fmt.Fprintf(os.Stderr, "sluice: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return errors.New("no command given")
		}
		return flag.ErrHelp
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	usage(stderr)
	return fmt.Errorf("unknown command %q", args[0])
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "Sluice: a Kafka-centric, multi-tenant log pipeline for Kubernetes.\n\nUsage: sluice <command> [flags]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'sluice <command> --help' for its flags and settings.\n")
}
