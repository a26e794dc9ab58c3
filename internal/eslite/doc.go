// Package eslite is the Elasticsearch stand-in of Sluice's development
// stack, load test and tests: one small server speaking the subset of the
// Elasticsearch 8 REST API that the indexer, the controller, `sluice
// search` and the load test use, with Elasticsearch's request and response
// shapes and error wording. It is never a server for production: one node,
// one shard, no scoring, searches that scan every document, and everything
// held in memory. Production runs Elasticsearch 8 (or OpenSearch 2).
//
//	es := eslite.Start(t)                         // in memory, on httptest, closed by t.Cleanup
//	st, err := eslite.Open(dir)                   // on disk: sluice dev, the load test
//	defer st.Serve(ln).Close()                    // or st.Handler() in a server of one's own
//
// go-elasticsearch v8 accepts it: responses carry X-Elastic-Product and,
// when asked, the compatible-with=8 media type. Request bodies may be
// gzip-compressed.
//
// # What it serves
//
//   - GET|HEAD /; GET /_cluster/health (green).
//   - /_index_template/{name}: PUT|POST (create=true refuses an existing
//     one; equal priorities with overlapping patterns are refused), GET
//     (also /_index_template, '*' patterns), DELETE. Templates are
//     kept as put; a new index takes the settings and mappings of the
//     highest-priority match.
//   - /{index}: PUT (settings, mappings), HEAD, GET, DELETE over index
//     expressions (commas, '*', _all, -exclusions, ignore_unavailable,
//     allow_no_indices); GET /_cat/indices[/{pattern}] (text with v, or
//     format=json; h= among health, status, index, uuid, pri, rep,
//     docs.count, docs.deleted, store.size, pri.store.size).
//   - POST /_bulk, /{index}/_bulk: create (409 for an _id the index holds)
//     and index (overwrites); update and delete are answered per item as
//     unsupported. refresh is accepted: writes are visible at once.
//   - GET|POST /_search, /_count, /{index}/_search, /{index}/_count: query,
//     size, from (from + size <= 10000), sort (fields, _doc; asc or desc;
//     arrays by their least or greatest value; missing values last),
//     search_after, _source (a boolean, patterns, includes/excludes),
//     track_total_hits. Queries: match_all, bool (must, filter,
//     should, must_not, minimum_should_match), term, terms, match (operator),
//     match_phrase, prefix, wildcard, exists, range (numbers, strings, dates
//     with date math such as now-1h or now/d, UTC only) and query_string (a
//     Lucene syntax subset, see querystring.go). Every hit scores 1.0;
//     without a sort, hits come in index order.
//   - PUT|POST|GET|DELETE /_security/role/{name}: roles are checked (names
//     and privileges) and kept; nothing enforces them.
//
// Anything else is answered as Elasticsearch answers an unknown endpoint,
// query or search key, naming it: aggregations, the endpoints of scroll,
// point in time, documents, aliases, data streams and ingest pipelines,
// fuzzy and regular expression queries. filter_path is ignored: a response holds what
// was asked for and more, which a client that decodes what it reads (the
// indexer) reads the same.
//
// # Mappings
//
// A document is checked against its index's mapping as a shard checks it,
// and a document that fails changes nothing: keyword, text, the numeric
// types (range checked; strings coerced), date (strict_date_optional_time
// or epoch_millis), boolean, ip, object and nested (as object); enabled,
// dynamic (true, false, strict), index, ignore_above (longer values are
// kept in _source only), dynamic_templates (match_mapping_type, match,
// unmatch, path_match, path_unmatch), date_detection, numeric_detection
// and index.mapping.total_fields.limit. Type conflicts, objects given for
// values and values for objects, strict objects and the fields limit are
// answered per item with Elasticsearch's error types and reasons (the
// preview of a value is its JSON). Unlike Elasticsearch, a new string field
// is a keyword rather than text with a keyword sub-field; multi-fields are
// accepted and not indexed.
//
// # Storage and durability
//
// New and Start keep everything in memory. Open keeps a directory (locked:
// one process at a time) holding store.json (cluster UUID, templates,
// roles, replaced atomically on every change) and indices/<name>/ with
// index.json (UUID, creation, settings and mappings as created) and ops.log,
// the index's writes in order, each entry its length, a CRC-32C, the _id and
// the source. A bulk request is answered once its entries are written and
// the log fsynced, so an acknowledged write survives a crash; a log write
// that fails answers 500 and refuses the index's writes until the store is
// reopened, so that no document held in memory only is acknowledged, not
// even by a 409. Open replays
// every log through the mapping, which so comes back as it was; a torn or
// damaged entry ends the log, which is cut there. An index is created in a
// temporary directory renamed into place and deleted by a rename before its
// removal, so a crash leaves a whole index or a directory Open removes. The
// log is never compacted: an overwritten document stays in it until its
// index is deleted.
//
// Documents are held in memory in either mode, with their values as
// numbers, strings and dates: about 1.4 KB per 500-byte indexer document
// (a heap of 715 MB for 500,000), plus the bulk bodies they were sent in.
// Reopening replays about 60,000 documents a second (500,000 in 8 s; 28 s
// with the machine busy with other work).
//
// # Faults
//
// SetFaults (and Config, SLUICE_DEV_ES_* for sluice dev) injects
// whole-request 429 or 503 answers to a fraction of requests (never GET /),
// per-item 429 rejections, latency, and a cluster that is down; decisions
// come from a generator seeded by Seed. SetIndexFault makes the writes to
// the indices of a pattern fail as an index does when write-blocked, over
// the flood stage, closed, not auto-created, over the shard limit, or with
// a failing or missing default pipeline. RequireAuth answers 401 to any
// other Authorization; OpenSearch answers as OpenSearch 2.17.1 does.
//
// # Concurrency and performance
//
// The Store is safe for concurrent use. Writes to one index are serialised
// under its lock; searches read indices in parallel with each other. A
// search evaluates its query on every document of its indices in turn: no
// inverted index, a linear scan, which is fine for development data.
// Measured on the 2-vCPU development machine (AMD EPYC, shared: the
// figures in parentheses were taken with a load average of 8) with
//
//	go test -run '^$' -bench . -benchmem ./internal/eslite/
//
// BenchmarkBulk (go-elasticsearch's BulkIndexer, 5 MB requests of the
// indexer's ~500-byte documents under its template, client and store in one
// process): 45,000 to 63,000 documents a second in memory (24,000 to
// 34,000), 41,000 to 57,000 on disk (15,000 to 25,000), 37 allocations and
// 8.4 KB a document, the client's included. BenchmarkSearch over 1,000,000
// such documents of one day, through go-elasticsearch: a keyword term
// sorted by @timestamp, size 20, 48 ms (83 ms); the query sluice search
// sends (query_string, tenant term, one-hour range, sorted) 57 ms (60 ms);
// a count over an hour's range 45 ms (63 ms); match_all sorted by
// @timestamp 169 ms (285 ms); a text match of a word no document holds
// 126 ms (185 ms; one found early stops the scan: 4 ms). Building those
// documents takes 1.5 GB of memory.
package eslite
