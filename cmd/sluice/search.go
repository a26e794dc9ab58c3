package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/sluicelogs/sluice/indexer"
	"github.com/sluicelogs/sluice/internal/cli"
	"github.com/sluicelogs/sluice/internal/config"
	"github.com/sluicelogs/sluice/internal/elastic"
	"github.com/sluicelogs/sluice/internal/kafka"
)

// searchConfig is the settings of `sluice search`.
type searchConfig struct {
	Elasticsearch elastic.Config
	IndexPrefix   string `env:"INDEXER_INDEX_PREFIX, default=sluice" help:"Index prefix of the indexers."`
}

// searchCommand runs a Lucene query string against a tenant's indices and
// prints the newest matching documents, oldest first (the newest last, as in
// a log).
func searchCommand() *cli.Command {
	return &cli.Command{
		Name:    "search",
		Summary: "search a tenant's indices with a Lucene query string; prints the newest matches, newest last",
		Usage:   "--tenant NAME [flags] [--] QUERY...",
		Args:    "QUERY...", MaxArgs: -1,
		Description: `Searches the tenant's documents, in its own indices (<prefix>-<tenant>-* and its datasets', <prefix>-<tenant>.<dataset>-*) and in
the shared ones (<prefix>-_shared-*, routed and filtered by tenant), with a Lucene query string
(e.g. 'kubernetes.pod_name:cart-1 AND level:error'; '*' or nothing for everything). It prints the
--size newest matching documents in time order, oldest first: the newest last, as in a log, just
above the summary line (on stderr). When none matches within --since, it says how many older
documents match. Flags may come before or after the query; a query that starts with a dash goes
after --.`,
		Examples: []string{
			"sluice search --tenant shop level:error                     # the last hour",
			"sluice search --tenant shop 'kubernetes.pod_name:cart-1' --since 7d --size 100",
			"sluice search --tenant shop --since all --json '*'           # every document, as JSON lines",
			"sluice search --tenant shop -- -level:debug                   # a query that starts with a dash",
		},
		Epilog: settingsEpilog(&searchConfig{}),
		Flags: func(fs *flag.FlagSet) cli.Action {
			var o searchOptions
			o.since = sinceFlag{d: time.Hour, text: "1h"}
			fs.StringVar(&o.tenant, "tenant", "", "the tenant (`NAME`) whose indices to search (required)")
			fs.Var(&o.since, "since", "how far back to search: a `DURATION` such as 30m, 12h, 7d or 2w; 0 or all: no time bound")
			fs.IntVar(&o.size, "size", 20, "print the `N` newest matching documents (1 to 10000)")
			fs.BoolVar(&o.asJSON, "json", false, "print each document's _source as one JSON object per line")
			o.timeout = timeoutFlag(fs, "give up when Elasticsearch has not answered within this long")
			return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
				return runSearch(ctx, o, args, stdout, stderr)
			}
		},
	}
}

// searchOptions are the flags of sluice search.
type searchOptions struct {
	tenant  string
	since   sinceFlag
	size    int
	asJSON  bool
	timeout *time.Duration
}

// sinceFlag is --since: a Go duration, or days (7d) and weeks (2w), which
// are how far back people look through logs; 0 or all for no bound.
type sinceFlag struct {
	d    time.Duration // 0: no time bound
	text string        // as given, for the summary
}

func (s *sinceFlag) String() string { return s.text }

func (s *sinceFlag) Set(v string) error {
	v = strings.TrimSpace(v)
	if v == "0" || strings.EqualFold(v, "all") {
		s.d, s.text = 0, "all"
		return nil
	}
	d, err := parseSince(v)
	if err != nil || d < 0 {
		return errors.New("want a duration such as 30m, 12h, 7d or 2w, or all (no time bound)")
	}
	s.d, s.text = d, v
	if d == 0 {
		s.text = "all"
	}
	return nil
}

// parseSince parses a Go duration, or a whole number of days (d) or weeks
// (w).
func parseSince(v string) (time.Duration, error) {
	if n := len(v); n > 1 && (v[n-1] == 'd' || v[n-1] == 'w') {
		count, err := strconv.ParseInt(v[:n-1], 10, 32)
		if err != nil {
			return 0, err
		}
		unit := 24 * time.Hour
		if v[n-1] == 'w' {
			unit *= 7
		}
		return time.Duration(count) * unit, nil
	}
	return time.ParseDuration(v)
}

// window says what --since searched: "in the last 7d", "at any time".
func (s sinceFlag) window() string {
	if s.d <= 0 {
		return "at any time"
	}
	return "in the last " + s.text
}

func runSearch(ctx context.Context, o searchOptions, args []string, stdout, stderr io.Writer) error {
	if o.tenant == "" {
		return cli.Usagef("--tenant is required")
	}
	if err := kafka.ValidateTenant(o.tenant); err != nil {
		return cli.Usagef("--tenant: %v", err)
	}
	if o.size < 1 || o.size > 10_000 {
		return cli.Usagef("--size must be 1 to 10000, got %d", o.size)
	}
	if err := checkTimeout(*o.timeout); err != nil {
		return err
	}
	query := strings.Join(args, " ")
	if strings.TrimSpace(query) == "" {
		query = "*"
	}
	var cfg searchConfig
	if err := config.Load(ctx, &cfg); err != nil {
		return err
	}
	// The request timeout of the settings is for the indexer's bulk
	// requests; a person waits for no longer than --timeout.
	if cfg.Elasticsearch.RequestTimeout <= 0 || cfg.Elasticsearch.RequestTimeout > *o.timeout {
		cfg.Elasticsearch.RequestTimeout = *o.timeout
	}
	es, err := cfg.Elasticsearch.NewClient()
	if err != nil {
		return fmt.Errorf("elasticsearch settings:\n%w", err)
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, *o.timeout)
	defer cancel()
	s := searcher{es: es, cfg: cfg, tenant: o.tenant, parent: parent, timeout: *o.timeout}

	body, _ := json.Marshal(map[string]any{
		"size":  o.size,
		"sort":  []any{map[string]any{"@timestamp": map[string]any{"order": "desc", "unmapped_type": "date"}}},
		"query": s.query(query, o.since.d),
	})
	// A tenant's documents are in its own indices (the dedicated layout)
	// or in the shared ones (the shared layout), or in both after its
	// layout changed: both are searched, the shared ones routed by tenant
	// (one shard, where the indexer put its documents), and the hits
	// merged newest first.
	var out searchResult
	for _, t := range s.targets() {
		var part searchResult
		if err := s.do(ctx, t, "_search", body, &part); err != nil {
			return err
		}
		out.merge(&part, o.size)
	}
	// The newest documents, printed oldest first: the newest end up at the
	// bottom, next to the prompt, as in a log.
	for i := len(out.Hits.Hits) - 1; i >= 0; i-- {
		h := out.Hits.Hits[i]
		if o.asJSON {
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
	if len(out.Hits.Hits) > 0 {
		more := ""
		if out.Hits.Total.Relation == "gte" {
			more = " or more"
		}
		fmt.Fprintf(stderr, "%d of %d%s documents matching %q %s (newest last)\n", len(out.Hits.Hits), out.Hits.Total.Value, more, query, o.since.window())
		return nil
	}
	// Nothing in the window: say whether widening it would help, and
	// whether the tenant has any document at all.
	older := 0
	if o.since.d > 0 {
		if older, err = s.count(ctx, query); err != nil {
			return err
		}
	}
	if older > 0 {
		fmt.Fprintf(stderr, "0 documents matching %q %s; %d older documents match: search further back with --since 7d, or --since all\n",
			query, o.since.window(), older)
		return nil
	}
	if query != "*" || o.since.d > 0 {
		all, err := s.count(ctx, "*")
		if err != nil {
			return err
		}
		if all > 0 {
			fmt.Fprintf(stderr, "0 documents matching %q %s (tenant %s has %d documents in all)\n", query, o.since.window(), o.tenant, all)
			return nil
		}
	}
	return s.noDocuments(ctx)
}

// searcher searches one tenant's documents.
type searcher struct {
	es      *elasticsearch.Client
	cfg     searchConfig
	tenant  string
	parent  context.Context // ended only by an interrupt
	timeout time.Duration
}

// target is one set of indices to search, and the routing there.
type target struct {
	indices []string
	routing string
}

func (s searcher) targets() []target {
	p := s.cfg.IndexPrefix
	return []target{
		{[]string{p + "-" + s.tenant + "-*", p + "-" + s.tenant + ".*"}, ""},
		{[]string{p + "-" + indexer.SharedName + "-*", p + "-" + indexer.SharedName + ".*"}, s.tenant},
	}
}

// query is the query of the tenant's documents matching q within since
// (0: at any time).
func (s searcher) query(q string, since time.Duration) map[string]any {
	// The tenant field comes from the topic a record arrived on: filtering
	// on it keeps out a tenant whose id extends this one's (shop-web's
	// indices also match sluice-shop-*).
	filters := []any{map[string]any{"term": map[string]any{"tenant": s.tenant}}}
	if since > 0 {
		filters = append(filters, map[string]any{"range": map[string]any{"@timestamp": map[string]any{"gte": fmt.Sprintf("now-%ds", int64(since.Seconds()))}}})
	}
	return map[string]any{"bool": map[string]any{
		"must":   []any{map[string]any{"query_string": map[string]any{"query": q, "default_operator": "AND"}}},
		"filter": filters,
	}}
}

// count counts the tenant's documents matching q, at any time.
func (s searcher) count(ctx context.Context, q string) (int, error) {
	body, _ := json.Marshal(map[string]any{"query": s.query(q, 0)})
	total := 0
	for _, t := range s.targets() {
		var res struct {
			Count int `json:"count"`
		}
		if err := s.do(ctx, t, "_count", body, &res); err != nil {
			return 0, err
		}
		total += res.Count
	}
	return total, nil
}

// do sends a _search or _count request to the target and decodes the
// response into out; errors say what to fix.
func (s searcher) do(ctx context.Context, t target, api string, body []byte, out any) error {
	var res *esapi.Response
	var err error
	if api == "_count" {
		opts := []func(*esapi.CountRequest){s.es.Count.WithContext(ctx), s.es.Count.WithIndex(t.indices...), s.es.Count.WithBody(bytes.NewReader(body)),
			s.es.Count.WithIgnoreUnavailable(true), s.es.Count.WithAllowNoIndices(true)}
		if t.routing != "" {
			opts = append(opts, s.es.Count.WithRouting(t.routing))
		}
		res, err = s.es.Count(opts...)
	} else {
		opts := []func(*esapi.SearchRequest){s.es.Search.WithContext(ctx), s.es.Search.WithIndex(t.indices...), s.es.Search.WithBody(bytes.NewReader(body)),
			s.es.Search.WithIgnoreUnavailable(true), s.es.Search.WithAllowNoIndices(true)}
		if t.routing != "" {
			opts = append(opts, s.es.Search.WithRouting(t.routing))
		}
		res, err = s.es.Search(opts...)
	}
	if err != nil {
		return s.explain(ctx, err)
	}
	data, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return s.explain(ctx, err)
	}
	urls := strings.Join(s.cfg.Elasticsearch.URLs, ",")
	switch {
	case res.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("search: Elasticsearch at %s refused the credentials (%s): check %s and %s, or %s",
			urls, res.Status(), config.Var("ELASTICSEARCH_USERNAME"), config.Var("ELASTICSEARCH_PASSWORD"), config.Var("ELASTICSEARCH_API_KEY"))
	case res.StatusCode == http.StatusForbidden:
		return fmt.Errorf("search: Elasticsearch at %s: the user may not search %s (%s): use one with tenant %s's role %s (sluice tenant create prints it)",
			urls, strings.Join(t.indices, ","), res.Status(), s.tenant, indexer.RoleName(s.tenant))
	case res.IsError():
		return fmt.Errorf("search %s: %s: %s", strings.Join(t.indices, ","), res.Status(), oneLine(clip(string(data), 2000)))
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("search: unexpected response: %w", err)
	}
	return nil
}

// explain turns an error of reaching Elasticsearch into what to fix.
func (s searcher) explain(ctx context.Context, err error) error {
	urls := strings.Join(s.cfg.Elasticsearch.URLs, ",")
	var opErr *net.OpError
	switch {
	case s.parent.Err() != nil:
		return s.parent.Err() // interrupted
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("search: Elasticsearch at %s did not answer within %s (--timeout)", urls, s.timeout)
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return fmt.Errorf("search: cannot reach Elasticsearch at %s: %v (check %s; 'sluice dev' serves one on 127.0.0.1:9200)",
			urls, err, config.Var("ELASTICSEARCH_URLS"))
	}
	return fmt.Errorf("search: Elasticsearch at %s: %w", urls, err)
}

// noDocuments is the error for a tenant without a single document: a
// mistyped tenant, most likely, or one whose records were never indexed.
func (s searcher) noDocuments(ctx context.Context) error {
	p := s.cfg.IndexPrefix
	msg := fmt.Sprintf("search: tenant %s has no documents (in %s-%s-* nor in %s-%s-*)", s.tenant, p, s.tenant, p, indexer.SharedName)
	if names := s.tenantsIndexed(ctx); len(names) > 0 {
		if sug := cli.Suggest(s.tenant, names); sug != "" {
			msg += fmt.Sprintf("; did you mean --tenant %s?", sug)
		}
	}
	return errors.New(msg + "; check the tenant's name (sluice tenant list), and that an indexer consumes its parsed topic")
}

// tenantsIndexed lists the tenants with indices of their own, for a
// suggestion; nil when they cannot be listed (a tenant's user may not).
func (s searcher) tenantsIndexed(ctx context.Context) []string {
	p := s.cfg.IndexPrefix + "-"
	res, err := s.es.Cat.Indices(s.es.Cat.Indices.WithContext(ctx), s.es.Cat.Indices.WithIndex(p+"*"),
		s.es.Cat.Indices.WithFormat("json"), s.es.Cat.Indices.WithH("index"))
	if err != nil {
		return nil
	}
	defer res.Body.Close()
	var rows []struct {
		Index string `json:"index"`
	}
	if res.IsError() || json.NewDecoder(res.Body).Decode(&rows) != nil {
		return nil
	}
	var out []string
	for _, r := range rows {
		name := strings.TrimPrefix(r.Index, p)
		// <tenant>[.<dataset>]-YYYY.MM.DD
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			name = name[:i]
		}
		name, _, _ = strings.Cut(name, ".")
		if name != indexer.SharedName && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
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
