//go:build !nodev

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/sluicelogs/sluice/devstack"
	"github.com/sluicelogs/sluice/internal/cli"
	"github.com/sluicelogs/sluice/internal/config"
)

// devCommand runs the dev stack (package devstack): this is only its
// command line.
func devCommand() *cli.Command {
	return &cli.Command{
		Name:    "dev",
		Summary: "run the whole pipeline in one process with embedded Kafka and Elasticsearch (make run)",
		Description: `Runs the whole pipeline in one process for development and demos: an embedded Kafka and an embedded
Elasticsearch-compatible store (both keeping their data under the dev directory), the shipper
tailing <dir>/node/var/log/containers/*.log, the router and the indexer, and unless --no-demo a demo
workload of a few tenants. A namespace seen for the first time becomes a tenant with its topics (in
dev mode only). When <dir>/pods.yaml exists (the demo writes its pods there when it does not), its
Kubernetes manifests (Namespaces, Pods, ReplicaSets, Jobs) are served to the shipper by a built-in
stand-in for the Kubernetes API, followed live, so records carry pod labels, images and workloads
and namespace labels choose tenants. With SLUICE_KAFKA_BROKERS or SLUICE_ELASTICSEARCH_URLS set, those servers are used
instead of the embedded ones. Metrics are served on 127.0.0.1 only, unless SLUICE_TELEMETRY_ADDR
says otherwise. Never for production.`,
		Examples: []string{
			"sluice dev                                   # embedded Kafka and Elasticsearch, and the demo",
			"sluice dev --no-demo --dir /tmp/sluice       # only the logs you drop under /tmp/sluice/node",
			"sluice dev --kafka-addr 127.0.0.1:19092      # when port 9092 is taken",
		},
		Epilog: func(w io.Writer) {
			fmt.Fprintf(w, "Settings (environment variables), besides every stage's (see their --help):\n")
			config.WriteUsage(w, &devstack.Config{})
		},
		Flags: func(fs *flag.FlagSet) cli.Action {
			noDemo := fs.Bool("no-demo", false, "run no demo workload: only the log files put in the node tree flow")
			rate := fs.Int("demo-rate", 20, "demo log lines per second")
			kafkaAddr := fs.String("kafka-addr", "", "address of the embedded Kafka (default SLUICE_DEV_KAFKA_ADDR, 127.0.0.1:9092)")
			esAddr := fs.String("es-addr", "", "address of the embedded Elasticsearch-compatible store (default SLUICE_DEV_ES_ADDR, 127.0.0.1:9200)")
			dir := fs.String("dir", "", "dev directory (default SLUICE_DEV_DIR, .sluice)")
			return func(ctx context.Context, _ []string, stdout, stderr io.Writer) error {
				var cfg devstack.Config
				if err := config.Load(ctx, &cfg); err != nil {
					return err
				}
				for _, o := range []struct {
					flag    string
					setting *string
				}{{*kafkaAddr, &cfg.KafkaAddr}, {*esAddr, &cfg.ESAddr}, {*dir, &cfg.Dir}} {
					if o.flag != "" {
						*o.setting = o.flag
					}
				}
				if err := cfg.Validate(); err != nil {
					return fmt.Errorf("dev settings:\n%w", err)
				}
				// The embedded store's indexing is garbage-heavy; on a development
				// machine memory is the cheaper resource (about 20% faster indexing
				// at GOGC=400). An explicit GOGC wins.
				if os.Getenv("GOGC") == "" {
					debug.SetGCPercent(400)
				}
				return devstack.Run(ctx, cfg, devstack.Options{
					Demo: !*noDemo, DemoRate: *rate, StatusEvery: 5 * time.Second,
					Env: envconfig.OsLookuper(), Stdout: stdout, Stderr: stderr, Version: version,
				})
			}
		},
	}
}
