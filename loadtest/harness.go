package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/devstack"
	"github.com/sluicelogs/sluice/internal/elastic"
	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/router"
)

// Options say where and how a scenario runs.
type Options struct {
	// Bin is the sluice binary the stages run as.
	Bin string
	// Dir holds the run: node log trees, Kafka's and the store's data, the
	// processes' logs, and the report.
	Dir string
	// Progress receives a progress line every ProgressEvery; nil: none.
	Progress      io.Writer
	ProgressEvery time.Duration
	// Kafka, when set, is the Kafka to use instead of the embedded one,
	// and Elasticsearch likewise (the SLUICE_KAFKA_* and
	// SLUICE_ELASTICSEARCH_* settings: the stages read them from the
	// environment too). Kafka outages and store faults need the embedded
	// servers.
	Kafka         *kafka.Config
	Elasticsearch *elastic.Config
}

// topicPrefix and indexPrefix are the stages' defaults.
const (
	topicPrefix = "logs"
	indexPrefix = "sluice"
)

// pipeline is every tenant's pipeline: stack traces joined, lines starting
// with '#' (the generator's malformed lines) dead-lettered by a regex that
// does not match them, JSON lines parsed.
const pipeline = `tenant: %s
version: 1
steps:
  - multiline: {continuation: '^(\s+at |Caused by: )', max_wait: 500ms}
  - regex: {field: log, pattern: '^(?P<lead>[^#])'}
  - json: {field: log, on_error: skip}
`

// run is the state of one scenario run.
type run struct {
	s      *Scenario
	o      Options
	topics kafka.Topics

	kafka   *devstack.Kafka // the embedded Kafka, nil with o.Kafka
	brokers string
	kopts   []kgo.Opt       // the harness's own clients
	store   *devstack.Store // the embedded store, nil with o.Elasticsearch
	es      *elasticsearch.Client

	writers  []*NodeWriter
	shippers []*process
	routers  []*process
	indexers []*process

	start   time.Time
	metrics *timeline
	// harnessCPU and harnessRSS are this process's: the writers, the
	// embedded Kafka and store, the measuring.
	harnessCPU time.Duration
	harnessRSS int64
	latency    *latencySampler
	events     []Mark
	eventMu    sync.Mutex
}

// Run runs a scenario and returns its report. The report says whether every
// line was accounted for; err is for runs that could not be carried out.
func Run(ctx context.Context, s *Scenario, o Options) (*Report, error) {
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = 2 * time.Second
	}
	if o.Kafka != nil && s.Faults.KafkaOutage != nil {
		return nil, errors.New("faults.kafka_outage needs the embedded Kafka (unset SLUICE_KAFKA_BROKERS)")
	}
	if o.Elasticsearch != nil && s.Faults.Elasticsearch != nil {
		return nil, errors.New("faults.elasticsearch needs the embedded store (unset SLUICE_ELASTICSEARCH_URLS)")
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	r := &run{s: s, o: o, topics: kafka.Topics{Prefix: topicPrefix}}
	defer r.close()
	if err := r.startServers(); err != nil {
		return nil, err
	}
	if err := r.setup(ctx); err != nil {
		return nil, err
	}
	if err := r.startStages(ctx); err != nil {
		return nil, err
	}
	r.start = time.Now()
	cpu0, _ := selfUsage()
	r.metrics = newTimeline(r)
	r.latency = newLatencySampler(r.es)
	for _, w := range r.writers {
		// Dead-lettered lines are never searchable: only the others are
		// sampled.
		w.Sample = func(marker string, written time.Time) {
			FindMarkers([]byte(marker), func(_, seq int) {
				if w.Expect(seq) == Indexed {
					r.latency.add(marker, written)
				}
			})
		}
	}

	// Measure and sample until the accounting starts.
	measureCtx, stopMeasuring := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { r.metrics.run(measureCtx, o.Progress, o.ProgressEvery) })
	wg.Go(func() { r.latency.run(measureCtx) })

	faultCtx, stopFaults := context.WithCancel(ctx)
	var faults sync.WaitGroup
	r.startFaults(faultCtx, &faults)
	writeErr := r.write(ctx)
	stopFaults()
	faults.Wait()
	r.endFaults()
	writeEnd := time.Since(r.start)

	drained, drainErr := r.drain(ctx)
	drainEnd := time.Since(r.start)
	cpu1, rss := selfUsage()
	r.harnessCPU, r.harnessRSS = cpu1-cpu0, rss
	stopMeasuring()
	wg.Wait()
	for _, p := range r.all() {
		_ = p.Stop(30 * time.Second)
	}
	if err := errors.Join(writeErr, ctx.Err()); err != nil {
		return nil, err
	}
	acc, err := r.account(ctx)
	if err != nil {
		return nil, fmt.Errorf("accounting: %w", err)
	}
	rep := r.report(acc, writeEnd, drainEnd, drained, drainErr)
	return rep, rep.write(o.Dir, r)
}

// startServers starts the embedded Kafka and Elasticsearch-compatible
// store, unless real ones are given.
func (r *run) startServers() error {
	if r.o.Kafka != nil {
		opts, err := r.o.Kafka.Options()
		if err != nil {
			return err
		}
		r.kopts, r.brokers = opts, strings.Join(r.o.Kafka.Brokers, ",")
	} else {
		k, err := devstack.StartKafka("127.0.0.1:0", filepath.Join(r.o.Dir, "kafka"))
		if err != nil {
			return err
		}
		r.kafka, r.brokers = k, strings.Join(k.Brokers(), ",")
		r.kopts = []kgo.Opt{kgo.SeedBrokers(k.Brokers()...)}
	}
	esCfg := r.o.Elasticsearch
	if esCfg == nil {
		var faults devstack.Faults
		if f := r.s.Faults.Elasticsearch; f != nil {
			faults = devstack.Faults{Status: f.Status, Requests: f.Requests, Items: f.Items}
		}
		st, err := devstack.StartStore("127.0.0.1:0", filepath.Join(r.o.Dir, "elasticsearch"), nil, faults)
		if err != nil {
			return err
		}
		r.store = st
		esCfg = &elastic.Config{URLs: []string{st.URL()}, RequestTimeout: time.Minute}
	}
	es, err := esCfg.NewClient()
	if err != nil {
		return err
	}
	r.es = es
	return nil
}

// client is a new Kafka client of the harness's own.
func (r *run) client(opts ...kgo.Opt) (*kgo.Client, error) {
	return kafka.NewClient(append(append([]kgo.Opt{}, r.kopts...), opts...)...)
}

// setup makes the tenants (topics with enough partitions for every
// replica), the config topic and the tenants' pipelines, and the nodes.
func (r *run) setup(ctx context.Context) error {
	cl, err := r.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	partitions := int32(max(3, r.s.RouterReplicas, r.s.IndexerReplicas))
	for _, t := range r.s.Tenants {
		if _, err := kafka.ProvisionTenant(ctx, adm, r.topics, t, kafka.TenantSpec{Partitions: partitions, ReplicationFactor: -1}); err != nil {
			return fmt.Errorf("tenant %s: %w", t, err)
		}
	}
	for _, t := range r.s.Tenants {
		if _, err := router.ApplyPipeline(ctx, cl, r.topics, fmt.Appendf(nil, pipeline, t)); err != nil {
			return fmt.Errorf("pipeline of %s: %w", t, err)
		}
	}
	for i := range r.s.Nodes {
		w, err := NewNodeWriter(filepath.Join(r.o.Dir, "nodes", strconv.Itoa(i)), i, r.s, uint64(i)+1)
		if err != nil {
			return err
		}
		r.writers = append(r.writers, w)
	}
	return nil
}

// startStages starts the routers and indexers, waits until they are ready,
// then starts a shipper per node.
func (r *run) startStages(ctx context.Context) error {
	logs := filepath.Join(r.o.Dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return err
	}
	// Settings given in the environment (credentials of real servers)
	// reach the stages as they are; these come after them and win.
	common := []string{"SLUICE_KAFKA_BROKERS=" + r.brokers, "SLUICE_TOPIC_PREFIX=" + topicPrefix}
	add := func(list *[]*process, stage string, i int, env ...string) error {
		name := fmt.Sprintf("%s-%d", stage, i)
		p, err := newProcess(name, stage, r.o.Bin, filepath.Join(logs, name+".log"), append(append([]string{}, common...), env...))
		if err != nil {
			return err
		}
		*list = append(*list, p)
		return p.Start()
	}
	for i := range r.s.RouterReplicas {
		if err := add(&r.routers, "router", i, "SLUICE_ROUTER_ID=router-"+strconv.Itoa(i)); err != nil {
			return err
		}
	}
	for i := range r.s.IndexerReplicas {
		env := []string{"SLUICE_INDEXER_ID=indexer-" + strconv.Itoa(i), "SLUICE_INDEXER_INDEX_PREFIX=" + indexPrefix}
		if r.store != nil {
			env = append(env, "SLUICE_ELASTICSEARCH_URLS="+r.store.URL(), "SLUICE_INDEXER_REPLICAS=0")
		}
		if err := add(&r.indexers, "indexer", i, env...); err != nil {
			return err
		}
	}
	for _, p := range append(append([]*process{}, r.routers...), r.indexers...) {
		if err := p.WaitReady(ctx, time.Minute); err != nil {
			return err
		}
	}
	for i, w := range r.writers {
		dir := filepath.Join(r.o.Dir, "nodes", strconv.Itoa(i))
		if err := add(&r.shippers, "shipper", i, "SLUICE_NODE_NAME=node-"+strconv.Itoa(i),
			"SLUICE_SHIPPER_PATHS="+w.Node().ContainersGlob(),
			"SLUICE_SHIPPER_CHECKPOINT_DIR="+filepath.Join(dir, "checkpoint"),
			"SLUICE_SHIPPER_RESCAN_INTERVAL=1s"); err != nil {
			return err
		}
	}
	for _, p := range r.shippers {
		if err := p.WaitReady(ctx, time.Minute); err != nil {
			return err
		}
	}
	return nil
}

func (r *run) all() []*process {
	return append(append(append([]*process{}, r.shippers...), r.routers...), r.indexers...)
}

// write writes lines at the scenario's rate (bursts included) for its
// duration, spread evenly over the nodes.
func (r *run) write(ctx context.Context) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var due float64 // lines owed since the start
	last := time.Now()
	written := 0
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case now := <-tick.C:
			at := now.Sub(r.start)
			if at >= r.s.Duration.D() {
				return nil
			}
			due += float64(r.s.RateAt(at)) * now.Sub(last).Seconds()
			last = now
			n := int(due) - written
			if n <= 0 {
				continue
			}
			per, extra := n/len(r.writers), n%len(r.writers)
			for i, w := range r.writers {
				k := per
				if i < extra {
					k++
				}
				if k == 0 {
					continue
				}
				before := w.Lines()
				if err := w.Write(k, now); err != nil {
					return err
				}
				written += w.Lines() - before
			}
		}
	}
}

// mark records a fault on the charts.
func (r *run) mark(label string, at, d time.Duration) {
	r.eventMu.Lock()
	defer r.eventMu.Unlock()
	r.events = append(r.events, Mark{Label: label, At: at, For: d})
}

// startFaults starts the scenario's kills and Kafka outage.
func (r *run) startFaults(ctx context.Context, wg *sync.WaitGroup) {
	for _, k := range r.s.Faults.Kill {
		procs := map[string][]*process{"shipper": r.shippers, "router": r.routers, "indexer": r.indexers}[k.Stage]
		wg.Go(func() {
			t := time.NewTicker(k.Every.D())
			defer t.Stop()
			for i := 0; ; i++ {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				p := procs[i%len(procs)]
				r.mark("kill "+p.Name(), time.Since(r.start), 0)
				if err := p.Restart(); err != nil {
					r.metrics.fail(err)
				}
			}
		})
	}
	if b := r.s.Faults.Burst; b != nil {
		r.mark(fmt.Sprintf("burst %d/s", b.Rate), b.At.D(), b.For.D())
	}
	if w := r.s.Faults.KafkaOutage; w != nil {
		wg.Go(func() {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(r.start.Add(w.At.D()))):
			}
			r.mark("Kafka down", time.Since(r.start), w.For.D())
			r.kafka.Stop()
			select {
			case <-ctx.Done():
			case <-time.After(w.For.D()):
			}
			if err := r.kafka.Restart(); err != nil {
				r.metrics.fail(err)
			}
		})
	}
}

// endFaults ends what faults outlast the writing: a Kafka outage and the
// store's errors, so that the pipeline can drain.
func (r *run) endFaults() {
	if r.kafka != nil {
		if err := r.kafka.Restart(); err != nil {
			r.metrics.fail(err)
		}
	}
	if r.store != nil {
		r.store.SetFaults(devstack.Faults{})
	}
}

// drain waits until every line written is through: every shipper has
// shipped its files, and the routers' and indexers' groups have committed
// to the end of their topics, twice in a row a second apart.
func (r *run) drain(ctx context.Context) (bool, error) {
	cl, err := r.client(kgo.MetadataMinAge(time.Second))
	if err != nil {
		return false, err
	}
	defer cl.Close()
	deadline := time.Now().Add(r.s.DrainTimeout.D())
	streak := 0
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(time.Second):
		}
		done, err := r.drained(ctx, cl)
		last = err
		if !done {
			streak = 0
			continue
		}
		if streak++; streak == 2 {
			return true, nil
		}
	}
	return false, fmt.Errorf("not drained after %s: %v", r.s.DrainTimeout.D(), last)
}

func (r *run) drained(ctx context.Context, cl *kgo.Client) (bool, error) {
	for _, p := range r.shippers {
		s, err := scrape(ctx, p.MetricsAddr())
		if err != nil {
			return false, err
		}
		if sum(s["sluice_shipper_unshipped_bytes"]) > 0 || sum(s["sluice_shipper_buffered_bytes"]) > 0 {
			return false, fmt.Errorf("%s has not shipped everything", p.Name())
		}
	}
	topics, err := kadm.NewClient(cl).ListTopics(ctx)
	if err != nil {
		return false, err
	}
	var raw, parsed []string
	for _, t := range topics.Names() {
		switch _, kind, _, ok := r.topics.TenantOf(t); {
		case ok && kind == kafka.KindRaw:
			raw = append(raw, t)
		case ok && kind == kafka.KindParsed:
			parsed = append(parsed, t)
		}
	}
	for _, g := range []struct {
		group  string
		topics []string
	}{{"sluice-router", raw}, {"sluice-indexer", parsed}} {
		ok, err := kafka.CaughtUp(ctx, cl, g.group, g.topics...)
		if err != nil || !ok {
			return false, fmt.Errorf("group %s not caught up: %v", g.group, err)
		}
	}
	return true, nil
}

func sum(m map[string]float64) float64 {
	var t float64
	for _, v := range m {
		t += v
	}
	return t
}

// close stops whatever still runs.
func (r *run) close() {
	for _, p := range r.all() {
		_ = p.Stop(5 * time.Second)
	}
	for _, w := range r.writers {
		_ = w.Close()
	}
	if r.store != nil {
		_ = r.store.Close()
	}
	if r.kafka != nil {
		r.kafka.Close()
	}
}

// selfUsage is this process's CPU time so far and its peak RSS.
func selfUsage() (time.Duration, int64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return tv(ru.Utime) + tv(ru.Stime), ru.Maxrss * 1024
}
