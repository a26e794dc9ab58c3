package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

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
		fmt.Fprintf(stderr, "Usage: sluice search --tenant NAME [flags] QUERY\n\nSearches the tenant's indices (<prefix>-<tenant>-* and its route streams) with a Lucene query\nstring (e.g. 'kubernetes.pod_name:cart-1 AND level:error'; '*' for everything), newest first.\n\nFlags:\n")
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
	indices := []string{cfg.IndexPrefix + "-" + *tenant + "-*", cfg.IndexPrefix + "-" + *tenant + ".*"}
	res, err := es.Search(es.Search.WithContext(ctx), es.Search.WithIndex(indices...), es.Search.WithBody(bytes.NewReader(body)),
		es.Search.WithIgnoreUnavailable(true), es.Search.WithAllowNoIndices(true))
	if err != nil {
		return fmt.Errorf("search: %w", err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return fmt.Errorf("search: %w", err)
	}
	if res.IsError() {
		return fmt.Errorf("search: %s: %s", res.Status(), oneLine(clip(string(data), 2000)))
	}
	var out struct {
		Hits struct {
			Total struct {
				Value    int    `json:"value"`
				Relation string `json:"relation"`
			} `json:"total"`
			Hits []struct {
				Index  string          `json:"_index"`
				Source json.RawMessage `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return fmt.Errorf("search: unexpected response: %w", err)
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

func sinceText(d time.Duration) string {
	if d <= 0 {
		return "all time"
	}
	return d.String()
}
