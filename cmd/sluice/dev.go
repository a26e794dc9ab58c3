//go:build !nodev

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sethvargo/go-envconfig"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/indexer"
	"github.com/sluicelogs/sluice/internal/cli"
	"github.com/sluicelogs/sluice/internal/config"
	"github.com/sluicelogs/sluice/internal/demo"
	"github.com/sluicelogs/sluice/internal/devstack"
	"github.com/sluicelogs/sluice/internal/eslite"
	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/internal/nodelog"
	"github.com/sluicelogs/sluice/internal/telemetry"
	"github.com/sluicelogs/sluice/router"
	"github.com/sluicelogs/sluice/shipper"
)

// devConfig is the settings of `sluice dev` itself; the stages read their
// own (SLUICE_SHIPPER_*, ...) with dev defaults underneath.
type devConfig struct {
	Dir       string `env:"DEV_DIR, default=.sluice" help:"Directory of the dev stack: the node log tree (node/var/log/...), Kafka's and the store's data, checkpoints. Kept across runs."`
	KafkaAddr string `env:"DEV_KAFKA_ADDR, default=127.0.0.1:9092" help:"Address of the embedded Kafka (ignored when SLUICE_KAFKA_BROKERS is set)."`
	ESAddr    string `env:"DEV_ES_ADDR, default=127.0.0.1:9200" help:"Address of the embedded Elasticsearch-compatible store (ignored when SLUICE_ELASTICSEARCH_URLS is set)."`
	Store     eslite.Config
	Telemetry devTelemetry
}

// devTelemetry is telemetry.Config with a loopback default address: the
// dev stack runs on a workstation, often on a shared network, and its
// metrics (tenants, pods and topics by name) are nobody else's to read.
// The stages' own commands keep telemetry.DefaultAddr, where Prometheus
// scrapes them in their pods.
type devTelemetry struct {
	Addr      string `env:"TELEMETRY_ADDR, default=127.0.0.1:9464" help:"Listen address of the dev stack's /metrics, /healthz and /readyz server, host:port: loopback only unless set (e.g. :9464 for every interface). Empty disables the server."`
	LogFormat string `env:"LOG_FORMAT, default=text" help:"Log format: text or json."`
	LogLevel  string `env:"LOG_LEVEL, default=info" help:"Lowest level logged: debug, info, warn or error."`
}

// config is t as the telemetry package takes it.
func (t devTelemetry) config() telemetry.Config { return telemetry.Config(t) }

// devOptions are what the command line and tests choose.
type devOptions struct {
	demo       bool
	demoRate   int
	statusEach time.Duration
	started    func(devEndpoints) // tests learn the addresses; nil in the command
}

// devEndpoints say where the dev stack serves.
type devEndpoints struct {
	Brokers  []string
	ESURL    string
	Metrics  string
	NodeDir  string // the node tree root: <dir>/node
	PodsFile string // the pod metadata served, "" when none is
}

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
			config.WriteUsage(w, &devConfig{})
		},
		Flags: func(fs *flag.FlagSet) cli.Action {
			noDemo := fs.Bool("no-demo", false, "run no demo workload: only the log files put in the node tree flow")
			rate := fs.Int("demo-rate", 20, "demo log lines per second")
			kafkaAddr := fs.String("kafka-addr", "", "address of the embedded Kafka (default SLUICE_DEV_KAFKA_ADDR, 127.0.0.1:9092)")
			esAddr := fs.String("es-addr", "", "address of the embedded Elasticsearch-compatible store (default SLUICE_DEV_ES_ADDR, 127.0.0.1:9200)")
			dir := fs.String("dir", "", "dev directory (default SLUICE_DEV_DIR, .sluice)")
			return func(ctx context.Context, _ []string, stdout, stderr io.Writer) error {
				var cfg devConfig
				if err := config.Load(ctx, &cfg); err != nil {
					return err
				}
				for _, o := range []struct{ flag, v string }{{*kafkaAddr, "kafka"}, {*esAddr, "es"}, {*dir, "dir"}} {
					if o.flag == "" {
						continue
					}
					switch o.v {
					case "kafka":
						cfg.KafkaAddr = o.flag
					case "es":
						cfg.ESAddr = o.flag
					case "dir":
						cfg.Dir = o.flag
					}
				}
				if err := cfg.Store.Validate(); err != nil {
					return fmt.Errorf("dev settings:\n%w", err)
				}
				// The embedded store's indexing is garbage-heavy; on a development
				// machine memory is the cheaper resource (about 20% faster indexing
				// at GOGC=400). An explicit GOGC wins.
				if os.Getenv("GOGC") == "" {
					debug.SetGCPercent(400)
				}
				return runDevStack(ctx, cfg, devOptions{demo: !*noDemo, demoRate: *rate, statusEach: 5 * time.Second}, envconfig.OsLookuper(), stdout, stderr)
			}
		},
	}
}

// runDevStack runs the dev stack until ctx ends. env holds the variables
// the user set; dev defaults go underneath them.
func runDevStack(ctx context.Context, cfg devConfig, opts devOptions, env envconfig.Lookuper, stdout, stderr io.Writer) error {
	log, err := cfg.Telemetry.config().Logger(stderr)
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return err
	}
	node := &nodelog.Node{Root: filepath.Join(dir, "node")}
	if err := os.MkdirAll(filepath.Dir(node.ContainersGlob()), 0o755); err != nil {
		return fmt.Errorf("dev directory: %w", err)
	}

	// Kafka: the user's, or kfake keeping its log under the dev directory.
	defaults := map[string]string{}
	brokers := lookup(env, "SLUICE_KAFKA_BROKERS")
	if brokers == "" {
		cluster, err := devstack.StartKafka(cfg.KafkaAddr, filepath.Join(dir, "kafka"))
		if err != nil {
			return fmt.Errorf("%w (change it with --kafka-addr or SLUICE_DEV_KAFKA_ADDR)", err)
		}
		defer cluster.Close()
		brokers = strings.Join(cluster.ListenAddrs(), ",")
		defaults["SLUICE_KAFKA_BROKERS"] = brokers
	}
	// Elasticsearch: the user's, or the embedded store.
	esURL := lookup(env, "SLUICE_ELASTICSEARCH_URLS")
	if esURL == "" {
		ln, err := net.Listen("tcp", cfg.ESAddr)
		if err != nil {
			return fmt.Errorf("embedded Elasticsearch-compatible store: %s is not free (change it with --es-addr or SLUICE_DEV_ES_ADDR): %w", cfg.ESAddr, err)
		}
		store, err := eslite.Open(filepath.Join(dir, "elasticsearch"), eslite.WithLogger(log.With("component", "store")),
			eslite.WithFaults(cfg.Store.Faults()))
		if err != nil {
			ln.Close()
			return fmt.Errorf("embedded Elasticsearch-compatible store: %w", err)
		}
		defer store.Close()
		defer store.Serve(ln).Close()
		esURL = "http://" + ln.Addr().String()
		defaults["SLUICE_ELASTICSEARCH_URLS"] = esURL
	}
	for k, v := range map[string]string{
		"SLUICE_SHIPPER_PATHS":          node.ContainersGlob(),
		"SLUICE_SHIPPER_CHECKPOINT_DIR": filepath.Join(dir, "shipper"),
		"SLUICE_NODE_NAME":              "dev-node",
		"SLUICE_ROUTER_ID":              "dev",
		"SLUICE_INDEXER_ID":             "dev",
		"SLUICE_INDEXER_REPLICAS":       "0",
	} {
		defaults[k] = v
	}
	lookuper := envconfig.MultiLookuper(env, envconfig.MapLookuper(defaults))
	var (
		shipCfg shipper.Config
		rtCfg   router.Config
		ixCfg   indexer.Config
	)
	for _, c := range []any{&shipCfg, &rtCfg, &ixCfg} {
		if err := config.LoadFrom(ctx, c, lookuper); err != nil {
			return err
		}
	}
	topics := rtCfg.Kafka.Topics()

	// One /metrics for all stages: each registers under its own stage label.
	reg := telemetry.NewRegistry()
	srv := telemetry.NewServer(cfg.Telemetry.Addr, reg, log)
	if cfg.Telemetry.Addr != "" {
		if err := srv.Listen(); err != nil {
			return fmt.Errorf("telemetry server (SLUICE_TELEMETRY_ADDR=%s): %w", cfg.Telemetry.Addr, err)
		}
		srvCtx, stopServer := context.WithCancel(context.WithoutCancel(ctx))
		defer stopServer()
		go func() { _ = srv.Run(srvCtx) }()
	}
	stageReg := func(name string) prometheus.Registerer {
		return prometheus.WrapRegistererWith(prometheus.Labels{"stage": name}, reg)
	}

	// Tenants: the demo's pipelines, and a tenant for every namespace seen.
	kopts, err := rtCfg.Kafka.Options()
	if err != nil {
		return fmt.Errorf("kafka settings:\n%w", err)
	}
	admin, err := kafka.NewClient(append(kopts, kgo.ClientID("sluice-dev"))...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer admin.Close()
	tenants := newTenantMaker(kadm.NewClient(admin), topics, log)
	if err := tenants.setup(ctx, admin, opts.demo); err != nil {
		return err
	}

	// Pod metadata: the manifests of <dir>/pods.yaml (the demo's when there
	// is none), served to the shipper as a Kubernetes API server would.
	podsFile := filepath.Join(dir, devPodsFile)
	var kube *devKube
	if lookup(env, "SLUICE_SHIPPER_KUBERNETES_API") == "" && shipCfg.KubernetesMetadata != "off" {
		if _, err := os.Stat(podsFile); errors.Is(err, fs.ErrNotExist) && opts.demo {
			if err := os.WriteFile(podsFile, []byte(demo.PodsYAML), 0o644); err != nil {
				return fmt.Errorf("dev directory: %w", err)
			}
		}
		if _, err := os.Stat(podsFile); err == nil {
			kube, err = startDevKube(ctx, podsFile, shipCfg.NodeName, shipCfg.TenantLabel, node, tenants, log.With("component", "pods"))
			if err != nil {
				return err
			}
			defer kube.close()
			shipCfg.KubernetesAPI = kube.url
		}
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	errs := make(chan error, 4)
	ready := &devReady{set: srv.SetReady, n: 3}
	goRun := func(name string, run func(context.Context) error) {
		wg.Go(func() {
			if err := run(runCtx); err != nil {
				errs <- fmt.Errorf("%s: %w", name, err)
				stop()
			}
		})
	}
	sh, err := shipper.New(shipCfg, shipper.Options{Logger: log.With("stage", "shipper"), Registerer: stageReg("shipper"), Version: version, Ready: ready.stage("shipper")})
	if err != nil {
		return err
	}
	rt, err := router.New(rtCfg, router.Options{Logger: log.With("stage", "router"), Registerer: stageReg("router"), Ready: ready.stage("router")})
	if err != nil {
		return err
	}
	ix, err := indexer.New(ixCfg, indexer.Options{Logger: log.With("stage", "indexer"), Registerer: stageReg("indexer"), Ready: ready.stage("indexer")})
	if err != nil {
		return err
	}
	goRun("tenants", func(ctx context.Context) error { return tenants.watch(ctx, node) })
	goRun("routes", func(ctx context.Context) error {
		return tenants.followRoutes(ctx, append(kopts, kgo.ClientID("sluice-dev-routes")))
	})
	if kube != nil {
		goRun("pods", kube.follow)
	}
	goRun("shipper", sh.Run)
	goRun("router", rt.Run)
	goRun("indexer", ix.Run)
	if opts.demo {
		goRun("demo", (&demo.Workload{Node: node, Rate: opts.demoRate}).Run)
	}

	ep := devEndpoints{Brokers: strings.Split(brokers, ","), ESURL: esURL, Metrics: srv.Addr(), NodeDir: node.Root}
	if kube != nil {
		ep.PodsFile = podsFile
	}
	devBanner(stdout, ep, dir, opts.demo)
	if opts.started != nil {
		opts.started(ep)
	}
	status := &devStatus{reg: reg, w: stdout, start: time.Now()}
	tick := time.NewTicker(max(opts.statusEach, 100*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-runCtx.Done():
			stop()
			wg.Wait()
			close(errs)
			var all []error
			for err := range errs {
				all = append(all, err)
			}
			log.Info("dev stack stopped")
			return errors.Join(all...)
		case <-tick.C:
			if opts.statusEach > 0 {
				status.print()
			}
		}
	}
}

// lookup returns a variable's value from env, "" when unset.
func lookup(env envconfig.Lookuper, name string) string {
	v, _ := env.Lookup(name)
	return v
}

// portFree reports a clear error when addr cannot be listened on.
func devBanner(w io.Writer, ep devEndpoints, dir string, withDemo bool) {
	fmt.Fprintf(w, "\nSluice dev stack (one process; for development only)\n")
	fmt.Fprintf(w, "  Kafka          %s\n", strings.Join(ep.Brokers, ","))
	fmt.Fprintf(w, "  Elasticsearch  %s   (embedded store unless SLUICE_ELASTICSEARCH_URLS is set)\n", ep.ESURL)
	if ep.Metrics != "" {
		fmt.Fprintf(w, "  Metrics        http://%s/metrics\n", ep.Metrics)
	}
	fmt.Fprintf(w, "  Node log tree  %s   (drop CRI or docker log files under var/log/containers/)\n", ep.NodeDir)
	if ep.PodsFile != "" {
		fmt.Fprintf(w, "  Pod metadata   %s   (Kubernetes manifests served to the shipper; edits apply live)\n", ep.PodsFile)
	}
	fmt.Fprintf(w, "  Data           %s\n", dir)
	if withDemo {
		fmt.Fprintf(w, "  Demo tenants   shop (JSON, stack traces), payments (regex, audit stream), web (access logs, a failing line)\n")
	}
	fmt.Fprintf(w, "\nTry, in another terminal:\n")
	fmt.Fprintf(w, "  bin/sluice tail --tenant shop\n")
	fmt.Fprintf(w, "  bin/sluice search --tenant shop 'level:error'\n")
	if ep.PodsFile != "" {
		fmt.Fprintf(w, "  bin/sluice search --tenant shop 'kubernetes.labels.app:cart'\n")
	}
	fmt.Fprintf(w, "  bin/sluice tail --tenant web --errors --from-beginning\n")
	fmt.Fprintf(w, "  curl '%s/_cat/indices?v'\n\nCtrl-C stops everything.\n\n", ep.ESURL)
}

// devReady reports the stack ready when every stage is.
type devReady struct {
	set func(bool)
	n   int

	mu    sync.Mutex
	ready map[string]bool
}

func (r *devReady) stage(name string) func(bool) {
	return func(ok bool) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.ready == nil {
			r.ready = map[string]bool{}
		}
		r.ready[name] = ok
		n := 0
		for _, v := range r.ready {
			if v {
				n++
			}
		}
		r.set(n == r.n)
	}
}

// devStatus prints what flowed since the start.
type devStatus struct {
	reg   prometheus.Gatherer
	w     io.Writer
	start time.Time
	last  [4]float64
	at    time.Time
}

func (s *devStatus) print() {
	families, err := s.reg.Gather()
	if err != nil {
		return
	}
	sum := func(name string) float64 {
		total := 0.0
		for _, f := range families {
			if f.GetName() == name {
				for _, m := range f.GetMetric() {
					total += m.GetCounter().GetValue()
				}
			}
		}
		return total
	}
	now := [4]float64{
		sum("sluice_shipper_lines_read_total"),
		sum("sluice_router_records_out_total"),
		sum("sluice_indexer_docs_stored_total"),
		sum("sluice_router_dlq_total") + sum("sluice_indexer_dead_lettered_total"),
	}
	elapsed := time.Since(s.at).Seconds()
	if s.at.IsZero() {
		elapsed = time.Since(s.start).Seconds()
	}
	rate := func(i int) float64 { return (now[i] - s.last[i]) / max(elapsed, 0.001) }
	fmt.Fprintf(s.w, "%s  lines read %.0f (%.0f/s)  routed %.0f (%.0f/s)  indexed %.0f (%.0f/s)  dead letters %.0f\n",
		time.Now().Format("15:04:05"), now[0], rate(0), now[1], rate(1), now[2], rate(2), now[3])
	s.last, s.at = now, time.Now()
}
