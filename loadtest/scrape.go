package loadtest

import (
	"context"
	"fmt"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

var httpClient = &http.Client{Timeout: 5 * time.Second}

// sample is one scrape of a process: metric name → label value of tenant
// (or "" without one) → value, summed over other labels.
type sample map[string]map[string]float64

// Scrape reads a process's /metrics at addr (host:port): metric name, then
// the value of its tenant label ("" for a metric without one), then the
// value summed over its other labels.
func Scrape(ctx context.Context, addr string) (map[string]map[string]float64, error) {
	return scrape(ctx, addr)
}

// scrape reads a process's /metrics.
func scrape(ctx context.Context, addr string) (sample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s/metrics: %s", addr, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s/metrics: %w", addr, err)
	}
	s := sample{}
	for name, f := range families {
		byTenant := map[string]float64{}
		for _, m := range f.GetMetric() {
			byTenant[labelValue(m, "tenant")] += value(m)
		}
		s[name] = byTenant
	}
	return s, nil
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return 0
}

// counters adds up counters of processes across their restarts: a value
// lower than the last one seen means the process started again from zero.
type counters struct {
	last  map[string]float64 // process/metric/tenant → last value
	total map[string]map[string]float64
}

func newCounters() *counters {
	return &counters{last: map[string]float64{}, total: map[string]map[string]float64{}}
}

// add takes a scrape of proc into the totals of the named counters.
func (c *counters) add(proc string, s sample, names ...string) {
	for _, name := range names {
		for tenant, v := range s[name] {
			key := proc + "/" + name + "/" + tenant
			last, seen := c.last[key]
			delta := v - last
			if !seen || v < last {
				delta = v // first scrape, or a restart reset it
			}
			c.last[key] = v
			if c.total[name] == nil {
				c.total[name] = map[string]float64{}
			}
			c.total[name][tenant] += delta
		}
	}
}

// sum is a counter's total over tenants.
func (c *counters) sum(name string) float64 { return sum(c.total[name]) }
