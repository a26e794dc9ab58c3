package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/sluicelogs/sluice/indexer"
	"github.com/sluicelogs/sluice/internal/config"
	"github.com/sluicelogs/sluice/internal/elastic"
	"github.com/sluicelogs/sluice/internal/kafka"
)

// searchConfig is the settings of `sluice search`.
type searchConfig struct {
	Elasticsearch elastic.Config
	IndexPrefix   string `env:"INDEXER_INDEX_PREFIX, default=sluice" help:"Index prefix of the indexers."`
}

// runSearch runs a Lucene query string against a tenant's indices, newest
// first.
func runSearch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("search", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tenant := fs.String("tenant", "", "the tenant whose indices to search (required)")
	since := fs.Duration("since", time.Hour, "how far back to search (0: all time)")
	size := fs.Int("size", 20, "most documents to print (1 to 10000)")
	asJSON := fs.Bool("json", false, "print each document's _source as one JSON object per line")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: sluice search --tenant NAME [flags] QUERY\n\nSearches the tenant's documents, in its own indices (<prefix>-<tenant>-* and its route streams) and in\nthe shared ones (<prefix>-_shared-*, routed and filtered by tenant), with a Lucene query\nstring (e.g. 'kubernetes.pod_name:cart-1 AND level:error'; '*' for everything), newest first.\n\nFlags:\n")
		fs.PrintDefaults()
		fmt.Fprintf(stderr, "\nSettings (environment variables):\n")
		config.WriteUsage(stderr, &searchConfig{})
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := kafka.ValidateTenant(*tenant); err != nil {
		return fmt.Errorf("search: --tenant: %w", err)
	}
	if *size < 1 || *size > 10_000 {
		return fmt.Errorf("search: --size must be 1 to 10000, got %d", *size)
	}
	query := strings.Join(fs.Args(), " ")
	if strings.TrimSpace(query) == "" {
		query = "*"
	}
	var cfg searchConfig
	if err := config.Load(ctx, &cfg); err != nil {
		return err
	}
	es, err := cfg.Elasticsearch.NewClient()
	if err != nil {
		return fmt.Errorf("elasticsearch settings:\n%w", err)
	}
	// The tenant field comes from the topic a record arrived on: filtering
	// on it keeps out a tenant whose id extends this one's (shop-web's
	// indices also match sluice-shop-*).
	filters := []any{map[string]any{"term": map[string]any{"tenant": *tenant}}}
	if *since > 0 {
		filters = append(filters, map[string]any{"range": map[string]any{"@timestamp": map[string]any{"gte": fmt.Sprintf("now-%ds", int64(since.Seconds()))}}})
	}
	body, _ := json.Marshal(map[string]any{
		"size": *size,
		"sort": []any{map[string]any{"@timestamp": map[string]any{"order": "desc", "unmapped_type": "date"}}},
		"query": map[string]any{"bool": map[string]any{
			"must":   []any{map[string]any{"query_string": map[string]any{"query": query, "default_operator": "AND"}}},
			"filter": filters,
		}},
	})
	// A tenant's documents are in its own indices (the dedicated layout)
	// or in the shared ones (the shared layout), or in both after its
	// layout changed: both are searched, the shared ones routed by tenant
	// (one shard, where the indexer put its documents), and the hits
	// merged newest first.
	var out searchResult
	for _, q := range []struct {
		indices []string
		routing string
	}{
		{[]string{cfg.IndexPrefix + "-" + *tenant + "-*", cfg.IndexPrefix + "-" + *tenant + ".*"}, ""},
		{[]string{cfg.IndexPrefix + "-" + indexer.SharedName + "-*", cfg.IndexPrefix + "-" + indexer.SharedName + ".*"}, *tenant},
	} {
		opts := []func(*esapi.SearchRequest){es.Search.WithContext(ctx), es.Search.WithIndex(q.indices...), es.Search.WithBody(bytes.NewReader(body)),
			es.Search.WithIgnoreUnavailable(true), es.Search.WithAllowNoIndices(true)}
		if q.routing != "" {
			opts = append(opts, es.Search.WithRouting(q.routing))
		}
		res, err := es.Search(opts...)
		if err != nil {
			return fmt.Errorf("search: %w", err)
		}
		data, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			return fmt.Errorf("search: %w", err)
		}
		if res.IsError() {
			return fmt.Errorf("search %s: %s: %s", strings.Join(q.indices, ","), res.Status(), oneLine(clip(string(data), 2000)))
		}
		var part searchResult
		if err := json.Unmarshal(data, &part); err != nil {
			return fmt.Errorf("search: unexpected response: %w", err)
		}
		out.merge(&part, *size)
	}
	// Oldest first on screen, like a log: the newest end up at the bottom.
	for i := len(out.Hits.Hits) - 1; i >= 0; i-- {
		h := out.Hits.Hits[i]
		if *asJSON {
			fmt.Fprintf(stdout, "%s\n", h.Source)
			continue
		}
		var doc struct {
			Timestamp  string `json:"@timestamp"`
			Log        string `json:"log"`
			Kubernetes struct {
				Namespace string `json:"namespace_name"`
				Pod       string `json:"pod_name"`
				Container string `json:"container_name"`
			} `json:"kubernetes"`
		}
		_ = json.Unmarshal(h.Source, &doc) // a field that does not fit stays empty
		source := doc.Kubernetes.Namespace + "/" + doc.Kubernetes.Pod + "/" + doc.Kubernetes.Container
		if source == "//" {
			source = "-"
		}
		fmt.Fprintf(stdout, "%s  %s  %s\n", doc.Timestamp, source, oneLine(doc.Log))
	}
	more := ""
	if out.Hits.Total.Relation == "gte" {
		more = " or more"
	}
	fmt.Fprintf(stderr, "%d of %d%s documents matching %q in the last %s\n", len(out.Hits.Hits), out.Hits.Total.Value, more, query, sinceText(*since))
	return nil
}

// searchResult is the part of a search response sluice search reads.
type searchResult struct {
	Hits struct {
		Total struct {
			Value    int    `json:"value"`
			Relation string `json:"relation"`
		} `json:"total"`
		Hits []searchHit `json:"hits"`
	} `json:"hits"`
}

type searchHit struct {
	Index  string          `json:"_index"`
	Source json.RawMessage `json:"_source"`
	Sort   []any           `json:"sort"`
}

// merge adds other's hits to r's, keeping the size newest (both are
// sorted newest first), and adds up the totals.
func (r *searchResult) merge(other *searchResult, size int) {
	r.Hits.Total.Value += other.Hits.Total.Value
	if other.Hits.Total.Relation == "gte" {
		r.Hits.Total.Relation = "gte"
	}
	hits := append(r.Hits.Hits, other.Hits.Hits...)
	slices.SortStableFunc(hits, func(a, b searchHit) int { return cmp.Compare(b.millis(), a.millis()) })
	r.Hits.Hits = hits[:min(len(hits), size)]
}

// millis is the hit's @timestamp in milliseconds (its sort value), or
// the smallest number for a hit without one: last, as Elasticsearch sorts
// missing values.
func (h searchHit) millis() float64 {
	if len(h.Sort) > 0 {
		if v, ok := h.Sort[0].(float64); ok {
			return v
		}
	}
	var doc struct {
		Timestamp string `json:"@timestamp"`
	}
	if json.Unmarshal(h.Source, &doc) == nil {
		if t, err := time.Parse(time.RFC3339Nano, doc.Timestamp); err == nil {
			return float64(t.UnixMilli())
		}
	}
	return math.Inf(-1)
}

func sinceText(d time.Duration) string {
	if d <= 0 {
		return "all time"
	}
	return d.String()
}
