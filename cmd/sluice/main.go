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

	"github.com/sluicelogs/sluice/internal/cli"
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

// program is the command table of the binary: dispatch, help, suggestions
// and shell completion all come from it.
func program() *cli.Command {
	return &cli.Command{
		Name: "sluice",
		Description: "Sluice: a Kafka-centric, multi-tenant log pipeline for Kubernetes. One binary runs every stage\n" +
			"(shipper, router, indexer), the development stack, and the commands tenants and operators use.",
		Examples: []string{
			"sluice dev                                    # the whole pipeline in one process, with a demo",
			"sluice tail --tenant shop                     # follow shop's parsed records",
			"sluice search --tenant shop level:error       # search shop's documents",
			"sluice pipeline apply shop.yaml               # store shop's pipeline, showing what changes",
			"sluice help tail                              # a command's flags and examples",
			"source <(sluice completion bash)              # Tab completion in bash",
		},
		Subcommands: commands(),
	}
}

func commands() []*cli.Command {
	return slices.Concat(devCommands()[:1], []*cli.Command{
		demoCommand(),
		shipperCommand(),
		pipelineCommand(),
		routerCommand(),
		indexerCommand(),
		gatewayCommand(),
		tenantCommand(),
		produceCommand(),
		tailCommand(),
		searchCommand(),
	}, devCommands()[1:], []*cli.Command{
		probeCommand(),
		{
			Name: "version", Summary: "print the version and commit",
			Description: "Prints the version and commit this binary was built from.",
			Examples:    []string{"sluice version"},
			Flags: func(*flag.FlagSet) cli.Action {
				return func(_ context.Context, _ []string, stdout, _ io.Writer) error {
					_, err := fmt.Fprintf(stdout, "sluice %s (commit %s)\n", version, buildCommit())
					return err
				}
			},
		},
		cli.CompletionCommand("sluice", program),
	})
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	interrupted := ctx.Err() != nil
	stop()
	if interrupted && errors.Is(err, context.Canceled) {
		// Ctrl-C while a command waited: what it waited for is no news.
		os.Exit(130)
	}
	os.Exit(cli.Report(os.Stderr, "sluice", err))
}

// run runs the command line args (without the program's name). Help goes
// to stdout; errors are returned for cli.Report.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return program().Run(ctx, args, stdout, stderr)
}
