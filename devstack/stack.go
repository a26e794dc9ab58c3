package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sethvargo/go-envconfig"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/gateway"
	"github.com/sluicelogs/sluice/indexer"
	"github.com/sluicelogs/sluice/internal/config"
	"github.com/sluicelogs/sluice/internal/demo"
	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/internal/nodelog"
	"github.com/sluicelogs/sluice/internal/telemetry"
	"github.com/sluicelogs/sluice/router"
	"github.com/sluicelogs/sluice/shipper"
)

// Options are what the command line (or a test) chooses.
type Options struct {
	// Demo runs the demo workload (internal/demo) and makes its tenants;
	// DemoRate is its lines per second.
	Demo     bool
	DemoRate int
	// StatusEvery is how often a line of what flowed is printed to
	// Stdout; 0: never.
	StatusEvery time.Duration
	// Env holds the variables the user set (envconfig.OsLookuper() in the
	// command); the dev defaults go underneath them. nil: none.
	Env envconfig.Lookuper
	// Stdout receives the banner and the status lines, Stderr the logs;
	// nil: discarded.
	Stdout, Stderr io.Writer
	// Version is the shipper's, for its records.
	Version string
}

// Endpoints say where the dev stack serves.
type Endpoints struct {
	Brokers  []string
	ESURL    string
	Gateway  string // host:port of the ingest gateway (/v1/logs, /v1/lines); "" when disabled
	Metrics  string // host:port of /metrics, /healthz and /readyz; "" when disabled
	NodeDir  string // the node tree root: <dir>/node
	PodsFile string // the pod metadata served, "" when none is
	Dir      string // the dev directory, absolute
}

// Stack is a running dev stack.
type Stack struct {
	ep   Endpoints
	log  *slog.Logger
	ctx  context.Context // ends when the stack stops
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu   sync.Mutex
	errs []error

	closers []func() // in the order of starting; run in reverse

	waitOnce sync.Once
	waitErr  error
}

// Run runs the dev stack until ctx ends or a part of it fails.
func Run(ctx context.Context, cfg Config, opts Options) error {
	s, err := Start(ctx, cfg, opts)
	if err != nil {
		return err
	}
	return s.Wait()
}

// Start starts the dev stack: the embedded Kafka and store (unless
// SLUICE_KAFKA_BROKERS and SLUICE_ELASTICSEARCH_URLS in opts.Env name
// servers), the tenants, the pod metadata stand-in, the shipper, router and
// indexer, and with opts.Demo the demo workload; it prints the banner to
// opts.Stdout. It runs until ctx ends or a part fails: Wait returns then.
func Start(ctx context.Context, cfg Config, opts Options) (_ *Stack, err error) {
	if opts.Env == nil {
		opts.Env = envconfig.MapLookuper(nil)
	}
	if opts.Stdout == nil {
		opts.Stdout = io.Discard
	}
	if opts.Stderr == nil {
		opts.Stderr = io.Discard
	}
	log, err := cfg.Telemetry.Config().Logger(opts.Stderr)
	if err != nil {
		return nil, err
	}
	s := &Stack{log: log}
	defer func() {
		if err != nil {
			s.release()
		}
	}()
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	node := &nodelog.Node{Root: filepath.Join(dir, "node")}
	if err := os.MkdirAll(filepath.Dir(node.ContainersGlob()), 0o755); err != nil {
		return nil, fmt.Errorf("dev directory: %w", err)
	}

	// Kafka: the user's, or kfake keeping its log under the dev directory.
	defaults := map[string]string{}
	brokers := lookup(opts.Env, "SLUICE_KAFKA_BROKERS")
	if brokers == "" {
		k, err := StartKafka(cfg.KafkaAddr, filepath.Join(dir, "kafka"))
		if err != nil {
			return nil, fmt.Errorf("%w (change it with --kafka-addr or SLUICE_DEV_KAFKA_ADDR)", err)
		}
		s.closers = append(s.closers, k.Close)
		brokers = strings.Join(k.Brokers(), ",")
		defaults["SLUICE_KAFKA_BROKERS"] = brokers
	}
	// Elasticsearch: the user's, or the embedded store.
	esURL := lookup(opts.Env, "SLUICE_ELASTICSEARCH_URLS")
	if esURL == "" {
		st, err := StartStore(cfg.ESAddr, filepath.Join(dir, "elasticsearch"), log.With("component", "store"), storeFaults(cfg.Store))
		var busy *addrError
		if errors.As(err, &busy) {
			return nil, fmt.Errorf("embedded Elasticsearch-compatible store: %s is not free (change it with --es-addr or SLUICE_DEV_ES_ADDR): %w", busy.addr, busy.err)
		}
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, func() { _ = st.Close() })
		esURL = st.URL()
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
	lookuper := envconfig.MultiLookuper(opts.Env, envconfig.MapLookuper(defaults))
	var (
		shipCfg shipper.Config
		rtCfg   router.Config
		ixCfg   indexer.Config
	)
	for _, c := range []any{&shipCfg, &rtCfg, &ixCfg} {
		if err := config.LoadFrom(ctx, c, lookuper); err != nil {
			return nil, err
		}
	}
	topics := rtCfg.Kafka.Topics()

	// One /metrics for all stages: each registers under its own stage label.
	reg := telemetry.NewRegistry()
	srv := telemetry.NewServer(cfg.Telemetry.Addr, reg, log)
	if cfg.Telemetry.Addr != "" {
		if err := srv.Listen(); err != nil {
			return nil, fmt.Errorf("telemetry server (SLUICE_TELEMETRY_ADDR=%s): %w", cfg.Telemetry.Addr, err)
		}
		srvCtx, stopServer := context.WithCancel(context.WithoutCancel(ctx))
		s.closers = append(s.closers, stopServer)
		go func() { _ = srv.Run(srvCtx) }()
	}
	stageReg := func(name string) prometheus.Registerer {
		return prometheus.WrapRegistererWith(prometheus.Labels{"stage": name}, reg)
	}

	// The ingest gateway, listening before any Kafka client connects (a
	// port given free stays so): against a Kafka without authentication (the
	// embedded one), the basic-auth user name is the tenant and no password
	// is checked; against one with SASL (SLUICE_KAFKA_*), requests
	// authenticate as their tenant's Kafka user, as in production.
	ready := &devReady{set: srv.SetReady, n: 3}
	var (
		gw        *gateway.Gateway
		gwRunning bool
	)
	if cfg.GatewayAddr != "" {
		ready.n++
		gwDefaults := map[string]string{}
		if !rtCfg.Kafka.SASLEnabled() {
			gwDefaults["SLUICE_GATEWAY_INSECURE_TRUST_USERNAME"] = "true"
		}
		var gwCfg gateway.Config
		if err := config.LoadFrom(ctx, &gwCfg, envconfig.MultiLookuper(envconfig.MapLookuper(map[string]string{"SLUICE_GATEWAY_ADDR": cfg.GatewayAddr}), lookuper, envconfig.MapLookuper(gwDefaults))); err != nil {
			return nil, err
		}
		// The stages' Kafka user is not the gateway's: it produces as each
		// request's tenant.
		gwCfg.Kafka.SASLUsername, gwCfg.Kafka.SASLPassword, gwCfg.Kafka.SASLPasswordFile = "", "", ""
		gw, err = gateway.New(gwCfg, gateway.Options{Logger: log.With("stage", "gateway"), Registerer: stageReg("gateway"), Ready: ready.stage("gateway"), Version: opts.Version})
		if err != nil {
			return nil, err
		}
		if err := gw.Listen(); err != nil {
			return nil, fmt.Errorf("%w (change it with SLUICE_DEV_GATEWAY_ADDR; empty disables the gateway)", err)
		}
		// A start that fails before the gateway runs closes its listener:
		// Run with an ended context does that and nothing else.
		s.closers = append(s.closers, func() {
			if !gwRunning {
				ended, cancel := context.WithCancel(context.Background())
				cancel()
				_ = gw.Run(ended)
			}
		})
	}

	// Tenants: the demo's pipelines, and a tenant for every namespace seen.
	kopts, err := rtCfg.Kafka.Options()
	if err != nil {
		return nil, fmt.Errorf("kafka settings:\n%w", err)
	}
	admin, err := kafka.NewClient(append(kopts, kgo.ClientID("sluice-dev"))...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	s.closers = append(s.closers, admin.Close)
	tenants := newTenantMaker(kadm.NewClient(admin), topics, log)
	if err := tenants.setup(ctx, admin, opts.Demo); err != nil {
		return nil, err
	}

	// Pod metadata: the manifests of <dir>/pods.yaml (the demo's when there
	// is none), served to the shipper as a Kubernetes API server would.
	podsFile := filepath.Join(dir, podsFileName)
	var kube *devKube
	if lookup(opts.Env, "SLUICE_SHIPPER_KUBERNETES_API") == "" && shipCfg.KubernetesMetadata != "off" {
		if _, err := os.Stat(podsFile); errors.Is(err, fs.ErrNotExist) && opts.Demo {
			if err := os.WriteFile(podsFile, []byte(demo.PodsYAML), 0o644); err != nil {
				return nil, fmt.Errorf("dev directory: %w", err)
			}
		}
		if _, err := os.Stat(podsFile); err == nil {
			kube, err = startDevKube(ctx, podsFile, shipCfg.NodeName, shipCfg.TenantLabel, node, tenants, log.With("component", "pods"))
			if err != nil {
				return nil, err
			}
			s.closers = append(s.closers, kube.close)
			shipCfg.KubernetesAPI = kube.url
		}
	}

	sh, err := shipper.New(shipCfg, shipper.Options{Logger: log.With("stage", "shipper"), Registerer: stageReg("shipper"), Version: opts.Version, Ready: ready.stage("shipper")})
	if err != nil {
		return nil, err
	}
	rt, err := router.New(rtCfg, router.Options{Logger: log.With("stage", "router"), Registerer: stageReg("router"), Ready: ready.stage("router")})
	if err != nil {
		return nil, err
	}
	ix, err := indexer.New(ixCfg, indexer.Options{Logger: log.With("stage", "indexer"), Registerer: stageReg("indexer"), Ready: ready.stage("indexer")})
	if err != nil {
		return nil, err
	}

	runCtx, stop := context.WithCancel(ctx)
	s.ctx, s.stop = runCtx, stop
	goRun := func(name string, run func(context.Context) error) {
		s.wg.Go(func() {
			if err := run(runCtx); err != nil {
				s.mu.Lock()
				s.errs = append(s.errs, fmt.Errorf("%s: %w", name, err))
				s.mu.Unlock()
				stop()
			}
		})
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
	if gw != nil {
		gwRunning = true
		goRun("gateway", gw.Run)
	}
	if opts.Demo {
		goRun("demo", (&demo.Workload{Node: node, Rate: opts.DemoRate}).Run)
	}

	s.ep = Endpoints{Brokers: strings.Split(brokers, ","), ESURL: esURL, Metrics: srv.Addr(), NodeDir: node.Root, Dir: dir}
	if kube != nil {
		s.ep.PodsFile = podsFile
	}
	if gw != nil {
		s.ep.Gateway = gw.Addr()
	}
	banner(opts.Stdout, s.ep, opts.Demo)
	if opts.StatusEvery > 0 {
		status := &devStatus{reg: reg, w: opts.Stdout, start: time.Now()}
		s.wg.Go(func() { status.run(runCtx, opts.StatusEvery) })
	}
	return s, nil
}

// Endpoints says where the stack serves.
func (s *Stack) Endpoints() Endpoints { return s.ep }

// Wait waits until the stack's context ends or a part of it fails, stops
// every part, releases the servers, and returns the parts' errors.
func (s *Stack) Wait() error {
	s.waitOnce.Do(func() {
		<-s.ctx.Done()
		s.wg.Wait()
		s.log.Info("dev stack stopped")
		s.release()
		s.mu.Lock()
		s.waitErr = errors.Join(s.errs...)
		s.mu.Unlock()
	})
	return s.waitErr
}

// Close stops the stack and returns Wait's error.
func (s *Stack) Close() error {
	s.stop()
	return s.Wait()
}

// release closes what was started, the last first.
func (s *Stack) release() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}

// lookup returns a variable's value from env, "" when unset.
func lookup(env envconfig.Lookuper, name string) string {
	v, _ := env.Lookup(name)
	return v
}

// banner says where the stack serves and what to try.
func banner(w io.Writer, ep Endpoints, withDemo bool) {
	fmt.Fprintf(w, "\nSluice dev stack (one process; for development only)\n")
	fmt.Fprintf(w, "  Kafka          %s\n", strings.Join(ep.Brokers, ","))
	fmt.Fprintf(w, "  Elasticsearch  %s   (embedded store unless SLUICE_ELASTICSEARCH_URLS is set)\n", ep.ESURL)
	if ep.Gateway != "" {
		fmt.Fprintf(w, "  Gateway        http://%s   (OTLP/HTTP /v1/logs, lines /v1/lines; the basic-auth user is the tenant)\n", ep.Gateway)
	}
	if ep.Metrics != "" {
		fmt.Fprintf(w, "  Metrics        http://%s/metrics\n", ep.Metrics)
	}
	fmt.Fprintf(w, "  Node log tree  %s   (drop CRI or docker log files under var/log/containers/)\n", ep.NodeDir)
	if ep.PodsFile != "" {
		fmt.Fprintf(w, "  Pod metadata   %s   (Kubernetes manifests served to the shipper; edits apply live)\n", ep.PodsFile)
	}
	fmt.Fprintf(w, "  Data           %s\n", ep.Dir)
	if withDemo {
		fmt.Fprintf(w, "  Demo tenants   shop (JSON, stack traces), payments (regex, audit dataset), web (access logs, a failing line)\n")
	}
	fmt.Fprintf(w, "\nTry, in another terminal:\n")
	fmt.Fprintf(w, "  bin/sluice tail --tenant shop\n")
	fmt.Fprintf(w, "  bin/sluice search --tenant shop 'level:error'\n")
	if ep.PodsFile != "" {
		fmt.Fprintf(w, "  bin/sluice search --tenant shop 'kubernetes.labels.app:cart'\n")
	}
	fmt.Fprintf(w, "  bin/sluice tail --tenant web --errors --from-beginning\n")
	if ep.Gateway != "" {
		fmt.Fprintf(w, "  echo 'hello through the gateway' | curl -s -u shop: --data-binary @- %s/v1/lines\n", ep.Gateway)
	}
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

// run prints a status line every interval (at least 100ms) until ctx ends.
func (s *devStatus) run(ctx context.Context, every time.Duration) {
	tick := time.NewTicker(max(every, 100*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.print()
		}
	}
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
