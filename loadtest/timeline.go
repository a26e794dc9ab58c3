package loadtest

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"
)

// The stage counters the harness follows (summed over processes, across
// restarts).
const (
	mShipped    = "sluice_shipper_records_produced_total"
	mRouterIn   = "sluice_router_records_in_total"
	mRouted     = "sluice_router_records_out_total"
	mRouterDLQ  = "sluice_router_dlq_total"
	mIndexed    = "sluice_indexer_docs_stored_total"
	mDuplicates = "sluice_indexer_docs_duplicate_total"
	mIndexerDLQ = "sluice_indexer_dead_lettered_total"
	mLag        = "sluice_indexer_consumer_lag_records"
)

// timeline scrapes every process each second: totals per stage and
// tenant, and throughput over time.
type timeline struct {
	r *run
	c *counters

	mu      sync.Mutex
	series  map[string][]Point // per-second rates, and lag
	prev    map[string]float64
	prevAt  time.Duration
	lag     float64
	errs    []error
	written int
}

// The series of the throughput chart, in order.
var throughputSeries = []string{"written", "shipped", "routed", "indexed", "dead-lettered"}

func newTimeline(r *run) *timeline {
	return &timeline{r: r, c: newCounters(), series: map[string][]Point{}, prev: map[string]float64{}}
}

func (t *timeline) fail(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.errs = append(t.errs, err)
}

func (t *timeline) run(ctx context.Context, progress io.Writer, every time.Duration) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastProgress := time.Now()
	for {
		select {
		case <-ctx.Done():
			t.sample(context.Background()) // the last numbers
			return
		case <-tick.C:
		}
		t.sample(ctx)
		if progress != nil && time.Since(lastProgress) >= every {
			lastProgress = time.Now()
			fmt.Fprintln(progress, t.progressLine())
		}
	}
}

// sample scrapes every process once. A process being restarted is skipped
// this time; its counters are picked up at the next scrape.
func (t *timeline) sample(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var lag float64
	type scraped struct {
		p *process
		s sample
	}
	var got []scraped
	for _, p := range t.r.all() {
		p.SamplePeak()
		if s, err := scrape(ctx, p.MetricsAddr()); err == nil {
			got = append(got, scraped{p, s})
		}
	}
	written := 0
	for _, w := range t.r.writers {
		written += w.Lines()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, g := range got {
		switch g.p.stage {
		case "shipper":
			t.c.add(g.p.Name(), g.s, mShipped)
		case "router":
			t.c.add(g.p.Name(), g.s, mRouterIn, mRouted, mRouterDLQ)
		case "indexer":
			t.c.add(g.p.Name(), g.s, mIndexed, mDuplicates, mIndexerDLQ)
			lag += sum(g.s[mLag])
		}
	}
	t.lag, t.written = lag, written
	at := time.Since(t.r.start)
	totals := map[string]float64{
		"written":       float64(written),
		"shipped":       t.c.sum(mShipped),
		"routed":        t.c.sum(mRouted),
		"indexed":       t.c.sum(mIndexed),
		"dead-lettered": t.c.sum(mRouterDLQ) + t.c.sum(mIndexerDLQ),
	}
	if dt := (at - t.prevAt).Seconds(); dt > 0 {
		for _, name := range throughputSeries {
			t.series[name] = append(t.series[name], Point{T: at, V: (totals[name] - t.prev[name]) / dt})
		}
	}
	t.series["indexer lag"] = append(t.series["indexer lag"], Point{T: at, V: lag})
	t.prev, t.prevAt = totals, at
}

func (t *timeline) progressLine() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	rate := func(name string) float64 {
		if s := t.series[name]; len(s) > 0 {
			return s[len(s)-1].V
		}
		return 0
	}
	return fmt.Sprintf("%6.0fs  written %d (%.0f/s)  shipped %.0f (%.0f/s)  routed %.0f (%.0f/s)  indexed %.0f (%.0f/s)  dead-lettered %.0f  lag %.0f",
		time.Since(t.r.start).Seconds(), t.written, rate("written"), t.c.sum(mShipped), rate("shipped"),
		t.c.sum(mRouted), rate("routed"), t.c.sum(mIndexed), rate("indexed"), t.prev["dead-lettered"], t.lag)
}
