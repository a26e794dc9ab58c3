package indexer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/prometheus/client_golang/prometheus"
)

// Without precreation, every daily index is created by the first bulk
// write after local midnight: all tenants' at once, every indexer replica
// asking, each creation a cluster-state update on the master. The
// precreator creates tomorrow's indices ahead, during the last
// SLUICE_INDEXER_PRECREATE_WINDOW before local midnight, for the index
// families this indexer wrote to today, one at a time, spread evenly over
// what is left of the window with jitter, in random order: replicas that
// wrote to the same families mostly find them created by another (an
// existence check, served by any node, comes first). An index that exists
// is a success; a failure is logged and counted, and tried again twice at
// most: the first bulk write after midnight still creates the index as
// before. A failure is also an early warning: an index Elasticsearch
// refuses to create before midnight (cluster.max_shards_per_node reached,
// say) would refuse the documents after.

// maxPrecreateAttempts is how often one index is tried in a window.
const maxPrecreateAttempts = 3

// precreateIdle is how long the precreator waits, in the window, when
// every family seen so far is done: new ones may come.
const precreateIdle = time.Minute

// precreator creates tomorrow's indices ahead of midnight.
type precreator struct {
	es     *elasticsearch.Client
	namer  *namer
	fams   *families
	window time.Duration
	log    *slog.Logger
	m      *precreateMetrics

	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) bool
	rand  *rand.Rand
	warn  func(key, msg string, args ...any)

	// The state of the current day.
	day      time.Time // local midnight that started it
	queue    []family  // to create for tomorrow
	taken    int       // families of fams queued so far
	attempts map[family]int
}

func newPrecreator(es *elasticsearch.Client, n *namer, fams *families, window time.Duration, log *slog.Logger, m *precreateMetrics) *precreator {
	return &precreator{
		es: es, namer: n, fams: fams, window: window, log: log, m: m,
		now: time.Now, sleep: sleep, rand: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
		warn: func(_, msg string, args ...any) { log.Warn(msg, args...) },
	}
}

// startOfDay returns the local midnight that starts t's day in loc.
func startOfDay(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, loc)
}

// run creates tomorrow's indices in the window before every local
// midnight, until ctx ends.
func (p *precreator) run(ctx context.Context) {
	for ctx.Err() == nil {
		p.step(ctx)
	}
}

// step does one thing: start a new day, wait for the window, or create
// one index.
func (p *precreator) step(ctx context.Context) {
	now := p.now()
	if today := startOfDay(now, p.namer.loc); !today.Equal(p.day) {
		p.day, p.queue, p.taken, p.attempts = today, nil, 0, map[family]int{}
		if dropped := p.fams.rotate(); dropped > 0 {
			p.warn("precreate:dropped", "more index families were written to than the precreator remembers; those it did not were created by their first write", "families", p.fams.limit, "not_remembered", dropped)
		}
	}
	midnight := startOfDay(p.day.Add(36*time.Hour), p.namer.loc) // tomorrow's start, whatever the day's length
	start := midnight.Add(-p.window)
	if now.Before(start) {
		p.sleep(ctx, start.Sub(now))
		return
	}
	fresh, n := p.fams.since(p.taken)
	p.queue, p.taken = append(p.queue, fresh...), n
	p.m.pending.Set(float64(len(p.queue)))
	left := midnight.Sub(now)
	if len(p.queue) == 0 {
		p.sleep(ctx, min(left, precreateIdle))
		return
	}
	// Even spread of what is queued over what is left, ±50% jitter.
	gap := left / time.Duration(len(p.queue)+1)
	if !p.sleep(ctx, time.Duration(float64(gap)*(0.5+p.rand.Float64()))) {
		return
	}
	if !p.now().Before(midnight) {
		return // too late: the first write creates them
	}
	i := p.rand.IntN(len(p.queue))
	f := p.queue[i]
	p.queue[i] = p.queue[len(p.queue)-1]
	p.queue = p.queue[:len(p.queue)-1]
	if f.name != SharedName && p.namer.routes.layouts.of(f.name) == LayoutShared {
		// Its tenant moved to the shared layout today (its record in
		// <prefix>.tenants changed): the family gets no more documents.
		return
	}
	name := string(p.namer.appendIndex(nil, f.name, f.dataset, midnight))
	result, err := p.create(ctx, name)
	if ctx.Err() != nil {
		return
	}
	p.m.results.WithLabelValues(result).Inc()
	if err != nil {
		p.attempts[f]++
		if p.attempts[f] < maxPrecreateAttempts {
			p.queue = append(p.queue, f)
		}
		p.warn("precreate", "creating tomorrow's index ahead of midnight failed; its first write will create it", "index", name, "attempt", p.attempts[f], "err", err)
		return
	}
	if result == "created" {
		p.log.Debug("index created ahead of midnight", "index", name)
	}
}

// create creates index name unless it exists; result is created, exists
// or failed.
func (p *precreator) create(ctx context.Context, name string) (result string, err error) {
	res, err := p.es.Indices.Exists([]string{name}, p.es.Indices.Exists.WithContext(ctx))
	if err != nil {
		return "failed", fmt.Errorf("check index %s: %w", name, err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	switch res.StatusCode {
	case http.StatusOK:
		return "exists", nil
	case http.StatusNotFound:
	default:
		return "failed", fmt.Errorf("check index %s: %s", name, res.Status())
	}
	res, err = p.es.Indices.Create(name, p.es.Indices.Create.WithContext(ctx))
	if err != nil {
		return "failed", fmt.Errorf("create index %s: %w", name, err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !res.IsError() {
		return "created", nil
	}
	var e struct {
		Error struct {
			Type string `json:"type"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error.Type == "resource_already_exists_exception" {
		return "exists", nil // another replica was quicker
	}
	return "failed", fmt.Errorf("create index %s: %s: %s", name, res.Status(), errorText(body))
}

// precreateMetrics are the precreator's metrics (namespace sluice,
// subsystem indexer), with no tenant label.
type precreateMetrics struct {
	results *prometheus.CounterVec
	pending prometheus.Gauge
}

func newPrecreateMetrics(reg prometheus.Registerer, fams *families) *precreateMetrics {
	m := &precreateMetrics{
		results: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: subsystem,
			Name: "precreated_indices_total",
			Help: "Tomorrow's indices handled ahead of midnight, by result: created, exists (already there), failed (its first write creates it)."}, []string{"result"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Subsystem: subsystem,
			Name: "precreate_pending_indices", Help: "Tomorrow's indices still to be created ahead of midnight, in the window."}),
	}
	families := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Subsystem: subsystem,
		Name: "index_families", Help: "Index families (a dedicated tenant's main or dataset indices, the shared indices of a dataset) written to since local midnight, whose next day's index is created ahead."},
		func() float64 { return float64(fams.count()) })
	m.results = register(reg, m.results)
	m.pending = register(reg, m.pending)
	register(reg, prometheus.Collector(families))
	for _, r := range []string{"created", "exists", "failed"} {
		m.results.WithLabelValues(r)
	}
	return m
}

// register registers c, or returns the collector already registered as
// it (an indexer run again in the same process).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}
