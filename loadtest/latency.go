package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"sync"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
)

// latencySampler measures end-to-end latency: from a sampled line being
// written to a search finding its document. It searches for the pending
// markers twice a second, so a latency is known to within about half a
// second (plus the search's own time).
type latencySampler struct {
	es *elasticsearch.Client

	mu      sync.Mutex
	pending map[string]time.Time // marker → written at
	found   []latencyPoint
}

type latencyPoint struct {
	written time.Time
	latency time.Duration
}

const (
	latencyPoll  = 500 * time.Millisecond
	latencyBatch = 500
)

func newLatencySampler(es *elasticsearch.Client) *latencySampler {
	return &latencySampler{es: es, pending: map[string]time.Time{}}
}

func (l *latencySampler) add(marker string, written time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending[marker] = written
}

func (l *latencySampler) run(ctx context.Context) {
	tick := time.NewTicker(latencyPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		l.poll(ctx)
	}
}

// poll searches for the oldest pending markers.
func (l *latencySampler) poll(ctx context.Context) {
	l.mu.Lock()
	markers := make([]string, 0, len(l.pending))
	for m := range l.pending {
		markers = append(markers, m)
	}
	slices.SortFunc(markers, func(a, b string) int { return l.pending[a].Compare(l.pending[b]) })
	markers = markers[:min(len(markers), latencyBatch)]
	l.mu.Unlock()
	if len(markers) == 0 {
		return
	}
	body, _ := json.Marshal(map[string]any{
		"size":    len(markers),
		"_source": []string{"log"},
		"query":   map[string]any{"match": map[string]any{"log": strings.Join(markers, " ")}},
	})
	hits, err := search(ctx, l.es, "/"+indexPrefix+"-*/_search", body)
	now := time.Now()
	if err != nil {
		return // the store refused (faults) or is busy: next time
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, h := range hits {
		FindMarkers(h.Source, func(node, seq int) {
			m := Marker(node, seq)
			if at, ok := l.pending[m]; ok {
				l.found = append(l.found, latencyPoint{written: at, latency: now.Sub(at)})
				delete(l.pending, m)
			}
		})
	}
}

type hit struct {
	Index  string          `json:"_index"`
	ID     string          `json:"_id"`
	Source json.RawMessage `json:"_source"`
	Sort   []any           `json:"sort"`
}

// search posts a search body to path and returns its hits.
func search(ctx context.Context, es *elasticsearch.Client, path string, body []byte) ([]hit, error) {
	var r struct {
		Hits struct {
			Hits []hit `json:"hits"`
		} `json:"hits"`
	}
	return r.Hits.Hits, esDo(ctx, es, http.MethodPost, path, body, &r)
}

// esDo sends a request through the Elasticsearch client (its nodes,
// credentials and TLS) and decodes a 200 answer into out.
func esDo(ctx context.Context, es *elasticsearch.Client, method, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := es.Perform(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return nil
}

// latencies returns what was measured, in the order lines were written.
func (l *latencySampler) latencies() (points []latencyPoint, unfound int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	points = slices.Clone(l.found)
	slices.SortFunc(points, func(a, b latencyPoint) int { return a.written.Compare(b.written) })
	return points, len(l.pending)
}
