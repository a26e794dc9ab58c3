package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of a run, written as summary.json.
type Report struct {
	Scenario *Scenario `json:"scenario"`
	Started  time.Time `json:"started"`
	// WriteSeconds is how long lines were written; DrainSeconds how long
	// from the start until everything was through (or the drain timed out).
	WriteSeconds float64 `json:"write_seconds"`
	DrainSeconds float64 `json:"drain_seconds"`
	Drained      bool    `json:"drained"`
	DrainError   string  `json:"drain_error,omitempty"`

	Stages     []StageReport           `json:"stages"`
	Processes  []ProcessReport         `json:"processes"`
	Tenants    map[string]TenantReport `json:"tenants"`
	Latency    LatencyReport           `json:"latency"`
	Accounting *Accounting             `json:"accounting"`
	// Failures are unexpected process exits and faults that could not be
	// injected.
	Failures []string `json:"failures,omitempty"`
	OK       bool     `json:"ok"`
}

// StageReport is one stage over all its processes.
type StageReport struct {
	// Stage is shipper, router, indexer, or harness: this process, which
	// writes the lines and runs the embedded Kafka and store.
	Stage     string  `json:"stage"`
	Processes int     `json:"processes"`
	Records   float64 `json:"records"` // lines written, records produced / routed, documents stored
	// PerSecond is Records over the time until the stage's last busy
	// second; PeakPerSecond the highest one-second rate.
	PerSecond     float64 `json:"per_second"`
	PeakPerSecond float64 `json:"peak_per_second"`
	CPUSeconds    float64 `json:"cpu_seconds"`
	CPUPerMillion float64 `json:"cpu_seconds_per_million_lines"`
	PeakRSSBytes  int64   `json:"peak_rss_bytes"`
	Restarts      int     `json:"restarts"`
}

// ProcessReport is one stage process over all its lives.
type ProcessReport struct {
	Name         string  `json:"name"`
	CPUSeconds   float64 `json:"cpu_seconds"`
	PeakRSSBytes int64   `json:"peak_rss_bytes"`
	Starts       int     `json:"starts"`
	Kills        int     `json:"kills"`
}

// TenantReport is one tenant's counts from the stages' metrics.
type TenantReport struct {
	Written      int     `json:"written"`
	Shipped      float64 `json:"shipped"`
	Routed       float64 `json:"routed"`
	Indexed      float64 `json:"indexed"`
	DeadLettered float64 `json:"dead_lettered"`
}

// LatencyReport is the end-to-end latency of the sampled lines.
type LatencyReport struct {
	Samples int     `json:"samples"`
	Unfound int     `json:"unfound"` // sampled lines never found by the sampler
	P50     float64 `json:"p50_seconds"`
	P90     float64 `json:"p90_seconds"`
	P99     float64 `json:"p99_seconds"`
	Max     float64 `json:"max_seconds"`
}

func (r *run) report(acc *Accounting, writeEnd, drainEnd time.Duration, drained bool, drainErr error) *Report {
	t := r.metrics
	t.mu.Lock()
	defer t.mu.Unlock()
	rep := &Report{
		Scenario: r.s, Started: r.start, WriteSeconds: writeEnd.Seconds(), DrainSeconds: drainEnd.Seconds(),
		Drained: drained, Accounting: acc, Tenants: map[string]TenantReport{},
	}
	if drainErr != nil {
		rep.DrainError = drainErr.Error()
	}
	peak := func(series string) float64 {
		var m float64
		for _, p := range t.series[series] {
			m = max(m, p.V)
		}
		return m
	}
	written := float64(acc.Written)
	// A stage's rate is over the time it was busy: until its last
	// second with records.
	busy := func(series string) float64 {
		var until time.Duration
		for _, p := range t.series[series] {
			if p.V > 0 {
				until = p.T
			}
		}
		return max(until.Seconds(), 1)
	}
	stage := func(name, series string, records float64, procs []*process) StageReport {
		sr := StageReport{Stage: name, Processes: len(procs), Records: records, PeakPerSecond: peak(series),
			PerSecond: records / busy(series)}
		for _, p := range procs {
			u := p.Usage()
			sr.CPUSeconds += u.CPU().Seconds()
			sr.PeakRSSBytes = max(sr.PeakRSSBytes, u.MaxRSS)
			sr.Restarts += max(u.Starts-1, 0)
		}
		if written > 0 {
			sr.CPUPerMillion = sr.CPUSeconds / written * 1e6
		}
		return sr
	}
	harness := StageReport{Stage: "harness", Records: written, PerSecond: written / max(writeEnd.Seconds(), 1e-9), PeakPerSecond: peak("written"),
		CPUSeconds: r.harnessCPU.Seconds(), PeakRSSBytes: r.harnessRSS}
	if written > 0 {
		harness.CPUPerMillion = harness.CPUSeconds / written * 1e6
	}
	rep.Stages = []StageReport{
		harness,
		stage("shipper", "shipped", t.c.sum(mShipped), r.shippers),
		stage("router", "routed", t.c.sum(mRouted), r.routers),
		stage("indexer", "indexed", t.c.sum(mIndexed), r.indexers),
	}
	for _, p := range r.all() {
		u := p.Usage()
		rep.Processes = append(rep.Processes, ProcessReport{Name: p.Name(), CPUSeconds: u.CPU().Seconds(), PeakRSSBytes: u.MaxRSS, Starts: u.Starts, Kills: u.Kills})
	}
	for _, tenant := range r.s.Tenants {
		tr := TenantReport{
			Shipped: t.c.total[mShipped][tenant], Routed: t.c.total[mRouted][tenant], Indexed: t.c.total[mIndexed][tenant],
			DeadLettered: t.c.total[mRouterDLQ][tenant] + t.c.total[mIndexerDLQ][tenant],
		}
		if pt := acc.PerTenant[tenant]; pt != nil {
			tr.Written = pt.Written
		}
		rep.Tenants[tenant] = tr
	}
	points, unfound := r.latency.latencies()
	rep.Latency = latencyReport(points, unfound)
	for _, err := range t.errs {
		rep.Failures = append(rep.Failures, err.Error())
	}
	for _, p := range r.all() {
		for _, err := range p.Failures() {
			rep.Failures = append(rep.Failures, err.Error())
		}
	}
	rep.OK = acc.OK() && drained && len(rep.Failures) == 0
	return rep
}

func latencyReport(points []latencyPoint, unfound int) LatencyReport {
	lr := LatencyReport{Samples: len(points), Unfound: unfound}
	if len(points) == 0 {
		return lr
	}
	ds := make([]float64, len(points))
	for i, p := range points {
		ds[i] = p.latency.Seconds()
	}
	slices.Sort(ds)
	q := func(f float64) float64 { return ds[min(len(ds)-1, int(math.Ceil(f*float64(len(ds))))-1)] }
	lr.P50, lr.P90, lr.P99, lr.Max = q(0.50), q(0.90), q(0.99), ds[len(ds)-1]
	return lr
}

// write writes summary.json and the charts into dir.
func (rep *Report) write(dir string, r *run) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "summary.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	t := r.metrics
	t.mu.Lock()
	var throughput []Series
	for _, name := range throughputSeries {
		throughput = append(throughput, Series{Name: name, Points: slices.Clone(t.series[name])})
	}
	lag := []Series{{Name: "indexer consumer lag", Points: slices.Clone(t.series["indexer lag"])}}
	t.mu.Unlock()
	r.eventMu.Lock()
	marks := slices.Clone(r.events)
	r.eventMu.Unlock()
	points, _ := r.latency.latencies()
	charts := map[string]Chart{
		"throughput.svg": {Title: rep.Scenario.Name + ": throughput", YLabel: "lines/s", Series: throughput, Marks: marks},
		"lag.svg":        {Title: rep.Scenario.Name + ": indexer consumer lag", YLabel: "records", Series: lag, Marks: marks},
		"latency.svg":    {Title: rep.Scenario.Name + ": end-to-end latency (written to searchable)", YLabel: "seconds", Series: latencySeries(points, r.start), Marks: marks},
	}
	for name, c := range charts {
		if err := c.WriteSVG(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// latencySeries is p50, p99 and max of the latencies of lines written in
// each 5-second window.
func latencySeries(points []latencyPoint, start time.Time) []Series {
	const window = 5 * time.Second
	out := []Series{{Name: "p50"}, {Name: "p99"}, {Name: "max"}}
	for i := 0; i < len(points); {
		w := points[i].written.Sub(start).Truncate(window)
		j := i
		for j < len(points) && points[j].written.Sub(start).Truncate(window) == w {
			j++
		}
		lr := latencyReport(points[i:j], 0)
		at := w + window/2
		out[0].Points = append(out[0].Points, Point{T: at, V: lr.P50})
		out[1].Points = append(out[1].Points, Point{T: at, V: lr.P99})
		out[2].Points = append(out[2].Points, Point{T: at, V: lr.Max})
		i = j
	}
	return out
}

// Print writes the summary table.
func (rep *Report) Print(w io.Writer) {
	a := rep.Accounting
	fmt.Fprintf(w, "\nScenario %s: wrote for %.0fs, everything through after %.0fs (drained: %v)\n\n",
		rep.Scenario.Name, rep.WriteSeconds, rep.DrainSeconds, rep.Drained)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "stage\tprocesses\trecords\tper second\tpeak per second\tCPU seconds\tCPU s per 1M lines\tpeak RSS MiB\trestarts\t")
	for _, s := range rep.Stages {
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.0f\t%.0f\t%.1f\t%.1f\t%.1f\t%d\t\n", s.Stage, s.Processes, s.Records, s.PerSecond,
			s.PeakPerSecond, s.CPUSeconds, s.CPUPerMillion, float64(s.PeakRSSBytes)/(1<<20), s.Restarts)
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "tenant\twritten\tshipped\trouted\tindexed\tdead-lettered\tmissing\tduplicated\tmisplaced\t")
	tenants := make([]string, 0, len(rep.Tenants))
	for t := range rep.Tenants {
		tenants = append(tenants, t)
	}
	slices.Sort(tenants)
	for _, t := range tenants {
		tr, ta := rep.Tenants[t], a.PerTenant[t]
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.0f\t%.0f\t%.0f\t%d\t%d\t%d\t\n", t, tr.Written, tr.Shipped, tr.Routed, tr.Indexed,
			tr.DeadLettered, ta.Missing, ta.Duplicated, ta.Misplaced)
	}
	tw.Flush()
	l := rep.Latency
	fmt.Fprintf(w, "\nlatency, written to searchable (%d samples, ±0.5s): p50 %.2fs  p90 %.2fs  p99 %.2fs  max %.2fs\n", l.Samples, l.P50, l.P90, l.P99, l.Max)
	var reasons []string
	for r, n := range a.DeadLetterReasons {
		reasons = append(reasons, fmt.Sprintf("%s (%d)", r, n))
	}
	slices.Sort(reasons)
	fmt.Fprintf(w, "accounting: %d lines written; %d indexed once, %d dead-lettered once; missing %d, duplicated %d, misplaced %d, unknown %d\n",
		a.Written, a.Indexed, a.DeadLettered, a.Missing, a.Duplicated, a.Misplaced, a.Unknown)
	if len(reasons) > 0 {
		fmt.Fprintf(w, "dead-letter reasons: %s\n", strings.Join(reasons, "; "))
	}
	if a.DeadLetterRepeats > 0 {
		fmt.Fprintf(w, "dead letters repeated under the same record id (lines shipped again after a crash): %d\n", a.DeadLetterRepeats)
	}
	for _, l := range []struct {
		name string
		list []string
	}{{"missing", a.MissingList}, {"duplicated", a.DuplicatedList}, {"misplaced", a.MisplacedList}} {
		if len(l.list) > 0 {
			fmt.Fprintf(w, "%s (first %d): %s\n", l.name, len(l.list), strings.Join(l.list, " "))
		}
	}
	for _, f := range rep.Failures {
		fmt.Fprintf(w, "failure: %s\n", f)
	}
	verdict := "PASS"
	if !rep.OK {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "\n%s\n", verdict)
}
