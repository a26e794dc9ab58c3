package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/internal/cli"
	"github.com/sluicelogs/sluice/internal/config"
	"github.com/sluicelogs/sluice/internal/demo"
	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/internal/nodelog"
	"github.com/sluicelogs/sluice/internal/telemetry"
	"github.com/sluicelogs/sluice/router"
)

// demoConfig is the settings of `sluice demo`: the Kafka connection for
// its setup, and its telemetry server, whose /readyz answers 200 once the
// setup is done (docker compose starts the stages then).
type demoConfig struct {
	Kafka     kafka.Config
	Telemetry telemetry.Config
}

func (c *demoConfig) Validate() error {
	var p config.Problems
	p.Merge(c.Kafka.Validate())
	p.Merge(c.Telemetry.Validate())
	return p.Err()
}

// demoOptions are what the command line (and tests) choose.
type demoOptions struct {
	root         string
	rate         int
	node         string
	setup        bool
	setupTimeout time.Duration
	limit        int // messages, then stop; 0: until ctx ends (tests only)
}

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:    "demo",
		Summary: "write the demo workload's container logs for a shipper, after making its tenants (docker compose)",
		Description: `Runs the demo workload of 'sluice dev' against real servers, for docker compose or for trying Sluice
on a cluster. Unless --no-setup, it first makes the demo tenants in Kafka (shop, payments, web: their
topics, no user; ACLs only where Kafka has an authorizer), applies their pipelines to the config
topic (a stored version as high is kept) and creates their dataset topics, retrying until
Kafka answers or --setup-timeout passes. Then it writes the pods' container logs, kubelet-style
(CRI lines, partial lines, rotation), under --root until SIGTERM. The symlinks in
<root>/var/log/containers are relative, so a shipper may mount the tree at any path. /readyz
answers 200 once the setup is done.`,
		Examples: []string{
			"sluice demo --root /var/lib/sluice/node               # as docker compose runs it",
			"sluice demo --root ./node --rate 100 --no-setup       # only the logs, 100 lines/s",
		},
		Epilog: settingsEpilog(&demoConfig{}),
		Flags: func(fs *flag.FlagSet) cli.Action {
			var opts demoOptions
			fs.StringVar(&opts.root, "root", "/var/lib/sluice/node", "root of the node log tree: logs go to <root>/var/log/pods, symlinks to <root>/var/log/containers (a shipper tails <root>/var/log/containers/*.log)")
			fs.IntVar(&opts.rate, "rate", 20, "demo messages per second, over all pods")
			fs.StringVar(&opts.node, "node", "", "name of the node whose shipper reads the tree, for the logs (default SLUICE_NODE_NAME, else the host name)")
			noSetup := fs.Bool("no-setup", false, "skip the Kafka setup: only write the logs")
			fs.DurationVar(&opts.setupTimeout, "setup-timeout", 2*time.Minute, "how long to keep retrying the Kafka setup while Kafka does not answer")
			return func(ctx context.Context, _ []string, _, stderr io.Writer) error {
				opts.setup = !*noSetup
				switch {
				case opts.root == "":
					return cli.Usagef("--root must not be empty")
				case opts.rate < 1 || opts.rate > 100_000:
					return cli.Usagef("--rate must be 1 to 100000, got %d", opts.rate)
				case opts.setupTimeout <= 0:
					return cli.Usagef("--setup-timeout must be positive, got %s", opts.setupTimeout)
				}
				if opts.node == "" {
					opts.node = os.Getenv("SLUICE_NODE_NAME")
				}
				if opts.node == "" {
					opts.node, _ = os.Hostname()
				}
				cfg := &demoConfig{}
				if err := config.Load(ctx, cfg); err != nil {
					return err
				}
				if err := cfg.Validate(); err != nil {
					return fmt.Errorf("demo settings:\n%w", err)
				}
				return runStage(ctx, cfg.Telemetry, stderr, func(st stage) error {
					return runDemoWith(ctx, *cfg, opts, st)
				})
			}
		},
	}
}

// runDemoWith makes the demo's tenants (unless opts.setup is false), then
// writes the demo workload under opts.root until ctx ends.
func runDemoWith(ctx context.Context, cfg demoConfig, opts demoOptions, st stage) error {
	root, err := filepath.Abs(opts.root)
	if err != nil {
		return fmt.Errorf("demo: --root: %w", err)
	}
	node := &nodelog.Node{Root: root}
	links := filepath.Dir(node.ContainersGlob())
	for _, dir := range []string{links, filepath.Join(root, "var", "log", "pods")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("demo: node log tree: %w", err)
		}
	}
	if opts.setup {
		if err := demoSetup(ctx, cfg.Kafka, opts.setupTimeout, st.log); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
	st.ready(true)
	defer st.ready(false)
	st.log.Info("demo writing container logs", "tenants", strings.Join(slices.Sorted(maps.Keys(demo.Pipelines)), ","),
		"rate", opts.rate, "node", opts.node, "glob", node.ContainersGlob())

	// The links in var/log/containers are relative (nodelog), so the tree
	// works wherever a shipper's container mounts it.
	err = (&demo.Workload{Node: node, Rate: opts.rate, Limit: opts.limit}).Run(ctx)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	st.log.Info("demo stopped")
	return nil
}

// demoSetup makes the demo tenants, pipelines and dataset topics,
// retrying until it succeeds or timeout passes: under docker compose, Kafka
// may still be starting.
func demoSetup(ctx context.Context, kcfg kafka.Config, timeout time.Duration, log *slog.Logger) error {
	if kcfg.ClientID == "" {
		kcfg.ClientID = "sluice-demo"
	}
	kopts, err := kcfg.Options()
	if err != nil {
		return fmt.Errorf("kafka settings:\n%w", err)
	}
	cl, err := kafka.NewClient(kopts...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	warned := false // about a cluster without an authorizer, once
	deadline := time.Now().Add(timeout)
	wait := time.Second
	var last error
	for attempt := 1; ; attempt++ {
		if time.Until(deadline) <= 0 {
			return fmt.Errorf("demo setup: Kafka at %s did not answer within %s (--setup-timeout): %w",
				strings.Join(kcfg.Brokers, ","), timeout, last)
		}
		// One attempt is bounded too, so that failures are reported while
		// the client keeps retrying.
		actx, cancel := context.WithTimeout(ctx, min(time.Until(deadline), 30*time.Second))
		err := setupDemoTenants(actx, cl, kcfg.Topics(), log, &warned)
		cancel()
		switch {
		case err == nil:
			log.Info("demo tenants ready", "tenants", strings.Join(slices.Sorted(maps.Keys(demo.Pipelines)), ","),
				"config_topic", kcfg.Topics().Config())
			return nil
		case ctx.Err() != nil:
			return nil
		}
		last = err
		pause := min(wait, max(time.Until(deadline), 0))
		log.Warn("demo setup failed; retrying (Kafka may still be starting)", "attempt", attempt, "retry_in", pause.Round(time.Millisecond), "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pause):
		}
		wait = min(2*wait, 10*time.Second)
	}
}

// setupDemoTenants makes the compacted topics the stages follow (the
// routers' status, the tenants' settings) and the demo's tenants: their
// topics, dataset topics included (no user; ACLs where the cluster has
// an authorizer), then their pipelines, as sluice tenant create --no-user
// and sluice pipeline apply would. A stored pipeline version as high is
// left alone. The dev stack does the same with code of its own (package
// devstack), which the production image, where this command runs under
// docker compose, does not carry.
func setupDemoTenants(ctx context.Context, cl *kgo.Client, topics kafka.Topics, log *slog.Logger, warned *bool) error {
	adm := kadm.NewClient(cl)
	if err := router.EnsureCompactedTopic(ctx, adm, topics.Status()); err != nil {
		return fmt.Errorf("status topic: %w", err)
	}
	if err := router.EnsureCompactedTopic(ctx, adm, topics.Tenants()); err != nil {
		return fmt.Errorf("tenant settings topic: %w", err)
	}
	for _, tenant := range slices.Sorted(maps.Keys(demo.Pipelines)) {
		src := []byte(demo.Pipelines[tenant])
		p, err := router.Load(src)
		if err != nil {
			return fmt.Errorf("demo pipeline %s: %w", tenant, err)
		}
		// The dataset topics with the others, before the pipeline: no
		// routed record finds its topic missing.
		res, err := kafka.ProvisionTenant(ctx, adm, topics, tenant, kafka.TenantSpec{Partitions: 3, ReplicationFactor: -1, Datasets: p.Datasets()})
		if err != nil {
			return fmt.Errorf("tenant %s: %w", tenant, err)
		}
		if len(res.TopicsCreated) > 0 {
			log.Info("tenant created", "tenant", tenant, "topics", res.TopicsCreated)
		}
		if res.ACLsSkipped && !*warned {
			log.Warn("the Kafka cluster has no authorizer (SECURITY_DISABLED): no ACLs were set, so tenants' topics are not protected from other clients")
			*warned = true
		}
		if _, err := router.ApplyPipeline(ctx, cl, topics, src); err != nil && !errors.Is(err, router.ErrVersionNotIncreasing) {
			return fmt.Errorf("demo pipeline %s: %w", tenant, err)
		}
	}
	return nil
}
