//go:build !nodev

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/sluicelogs/sluice/internal/cli"
	"github.com/sluicelogs/sluice/internal/config"
	"github.com/sluicelogs/sluice/internal/elastic"
	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/loadtest"
)

func loadtestCommand() *cli.Command {
	return &cli.Command{
		Name:    "loadtest",
		Summary: "run a load test scenario end to end with loss accounting (loadtest/scenarios)",
		Args:    "SCENARIO.yaml", MinArgs: 1, MaxArgs: 1,
		Description: `Runs a load test scenario (loadtest/scenarios/*.yaml) against the real pipeline: an embedded Kafka and
Elasticsearch-compatible store (or the servers SLUICE_KAFKA_* and SLUICE_ELASTICSEARCH_* name), a shipper
process per simulated node, and router and indexer processes (this binary, as separate processes), with
the scenario's faults. At the end every line written must be
found exactly once in Elasticsearch or in a dead-letter topic; it prints a summary table and writes
summary.json and charts (SVG) into the run directory. It exits 1 when the accounting fails.`,
		Examples: []string{
			"sluice loadtest loadtest/scenarios/steady-20k.yaml",
			"sluice loadtest --out /tmp/run --quiet loadtest/scenarios/chaos-kill9.yaml",
		},
		Flags: func(fs *flag.FlagSet) cli.Action {
			out := fs.String("out", "", "directory of the run: data, process logs, summary.json and charts (default loadtest/results/<scenario>-<time>)")
			quiet := fs.Bool("quiet", false, "no progress line")
			return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
				s, err := loadtest.ReadScenario(args[0])
				if err != nil {
					return fmt.Errorf("loadtest: %s: %w", args[0], err)
				}
				bin, err := os.Executable()
				if err != nil {
					return fmt.Errorf("loadtest: the sluice binary: %w", err)
				}
				dir := *out
				if dir == "" {
					dir = filepath.Join("loadtest", "results", s.Name+"-"+time.Now().Format("20060102-150405"))
				}
				o := loadtest.Options{Bin: bin, Dir: dir}
				// Real servers, when the usual settings name them.
				if os.Getenv("SLUICE_KAFKA_BROKERS") != "" {
					var kc kafka.Config
					if err := config.Load(ctx, &kc); err != nil {
						return err
					}
					if err := kc.Validate(); err != nil {
						return fmt.Errorf("loadtest: Kafka settings:\n%w", err)
					}
					o.Kafka = &kc
				}
				if os.Getenv("SLUICE_ELASTICSEARCH_URLS") != "" {
					var ec elastic.Config
					if err := config.Load(ctx, &ec); err != nil {
						return err
					}
					o.Elasticsearch = &ec
				}
				if !*quiet {
					o.Progress = stderr
				}
				rep, err := loadtest.Run(ctx, s, o)
				if err != nil {
					return fmt.Errorf("loadtest %s: %w (process logs in %s)", s.Name, err, filepath.Join(dir, "logs"))
				}
				rep.Print(stdout)
				fmt.Fprintf(stdout, "report: %s (summary.json, throughput.svg, latency.svg, lag.svg; process logs in logs/)\n", dir)
				if !rep.OK {
					return errors.New("loadtest: lines are missing, duplicated or misplaced, or a process failed")
				}
				return nil
			}
		},
	}
}
