package indexer

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
)

// retention decides which daily indices are old enough to delete.
type retention struct {
	prefix    string
	loc       *time.Location
	days      int            // default; 0 keeps forever
	overrides map[string]int // per tenant; 0 keeps forever
}

func (r retention) enabled() bool {
	if r.days > 0 {
		return true
	}
	for _, d := range r.overrides {
		if d > 0 {
			return true
		}
	}
	return false
}

// expired returns, sorted, the names among indices that Sluice made and
// whose day is more than their tenant's retention before today (in r.loc;
// the shared indices, <prefix>-_shared[.<stream>]-..., go by the default
// retention: Validate refuses an override for a tenant in the shared
// layout):
// with 7 days, on 2026.11.21 the indices of 2026.11.13 and before go, those
// of 2026.11.14 to today stay. Any other name is left alone.
func (r retention) expired(indices []string, now time.Time) []string {
	today := now.In(r.loc)
	var out []string
	for _, name := range indices {
		tenant, _, day, ok := ParseIndexName(r.prefix, name)
		if !ok {
			continue
		}
		days, set := r.overrides[tenant]
		if !set {
			days = r.days
		}
		if days <= 0 {
			continue
		}
		// Compare calendar dates as their fixed-width text.
		cutoff := today.AddDate(0, 0, -days).Format(dayLayout)
		if day.Format(dayLayout) < cutoff {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// retentionLoop deletes expired indices every
// SLUICE_INDEXER_RETENTION_INTERVAL, starting right away.
func (ix *Indexer) retentionLoop(ctx context.Context, es *elasticsearch.Client) {
	t := time.NewTicker(ix.cfg.RetentionInterval)
	defer t.Stop()
	for {
		deleted, err := ix.retention.run(ctx, es, time.Now())
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			ix.m.retentionErrs.Inc()
			ix.logLimited("retention", "deleting old indices failed; trying again at the next pass", "err", err)
		case len(deleted) > 0:
			ix.m.retentionDels.Add(float64(len(deleted)))
			ix.log.Info("old indices deleted", "indices", deleted)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// run deletes the expired indices and returns their names. Every replica
// runs it: an index deleted by another meanwhile is ignored
// (ignore_unavailable).
func (r retention) run(ctx context.Context, es *elasticsearch.Client, now time.Time) ([]string, error) {
	res, err := es.Cat.Indices(es.Cat.Indices.WithContext(ctx), es.Cat.Indices.WithIndex(r.prefix+"-*"),
		es.Cat.Indices.WithFormat("json"), es.Cat.Indices.WithH("index"))
	if err != nil {
		return nil, fmt.Errorf("list indices: %w", err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.IsError() {
		return nil, fmt.Errorf("list indices: %s: %s", res.Status(), errorText(body))
	}
	var rows []struct {
		Index string `json:"index"`
	}
	if err := json.Unmarshal(body, &rows); err != nil {
		return nil, fmt.Errorf("list indices: %w", err)
	}
	names := make([]string, len(rows))
	for i, row := range rows {
		names[i] = row.Index
	}
	expired := r.expired(names, now)
	// A few names per request keeps URLs short.
	var deleted []string
	for chunk := range slices.Chunk(expired, 25) {
		res, err := es.Indices.Delete(chunk, es.Indices.Delete.WithContext(ctx), es.Indices.Delete.WithIgnoreUnavailable(true))
		if err != nil {
			return deleted, fmt.Errorf("delete indices: %w", err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.IsError() {
			return deleted, fmt.Errorf("delete indices %v: %s: %s", chunk, res.Status(), errorText(body))
		}
		deleted = append(deleted, chunk...)
	}
	return deleted, nil
}
