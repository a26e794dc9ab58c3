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
	days      int             // default; 0 keeps forever
	overrides map[string]int  // per tenant; 0 keeps forever
	settings  *tenantSettings // the tenants' records (nil: none)
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
	return r.settings.load().keepsDays()
}

// daysOf returns the retention of the indices named after tenant (or
// SharedName): its SLUICE_INDEXER_RETENTION_OVERRIDES entry (the indexer
// operator's word wins), else the retentionDays of its record in
// <prefix>.tenants, else SLUICE_INDEXER_RETENTION_DAYS. No override or
// record can name SharedName (it is no tenant id), so the shared indices
// always go by the default: they hold every shared tenant's documents of
// a day and are deleted whole.
func (r retention) daysOf(tenant string, snap *tenantSnapshot) int {
	if d, ok := r.overrides[tenant]; ok {
		return d
	}
	if s, ok := snap.get(tenant); ok && s.RetentionDays != nil {
		return *s.RetentionDays
	}
	return r.days
}

// expired returns, sorted, the names among indices that Sluice made and
// whose day is more than their tenant's retention before today (in r.loc;
// the shared indices, <prefix>-_shared[.<dataset>]-..., go by the default
// retention, see daysOf):
// with 7 days, on 2026.11.21 the indices of 2026.11.13 and before go, those
// of 2026.11.14 to today stay. Any other name is left alone. One snapshot
// of the tenants' records decides the whole pass.
func (r retention) expired(indices []string, now time.Time) []string {
	today := now.In(r.loc)
	snap := r.settings.load()
	var out []string
	for _, name := range indices {
		tenant, _, day, ok := ParseIndexName(r.prefix, name)
		if !ok {
			continue
		}
		days := r.daysOf(tenant, snap)
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
// SLUICE_INDEXER_RETENTION_INTERVAL, starting once the tenants' settings
// are read: a pass that took the default for a tenant whose record keeps
// its indices longer would delete what the record keeps. A pass is
// skipped while no retention is set anywhere (a record may set one
// later).
func (ix *Indexer) retentionLoop(ctx context.Context, es *elasticsearch.Client) {
	select {
	case <-ix.settings.caughtUp():
	case <-ctx.Done():
		return
	}
	t := time.NewTicker(ix.cfg.RetentionInterval)
	defer t.Stop()
	for {
		var (
			deleted []string
			err     error
		)
		if ix.retention.enabled() {
			deleted, err = ix.retention.run(ctx, es, time.Now())
		}
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
