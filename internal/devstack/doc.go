// Package devstack holds the embedded stand-ins `sluice dev` and tests run
// instead of real servers. This part is a small Elasticsearch-compatible
// store over bleve (github.com/blevesearch/bleve/v2): it speaks the subset of
// the Elasticsearch 8 REST API that the Sluice indexer and a person exploring
// logs use, and keeps its data in a directory so that it survives restarts.
//
// It is a development and test stand-in, never a server for production: one
// node, one shard per index, no replicas, no security, no snapshots, no
// cluster, scores from bleve's tf-idf rather than BM25, and throughput and
// durability far below Elasticsearch's (see Durability and Performance).
// Production runs Elasticsearch 8.
//
//	st, err := devstack.Open(dir)
//	if err != nil { ... }
//	defer st.Close()
//	srv := &http.Server{Addr: "127.0.0.1:9200", Handler: st.Handler()}
//
// go-elasticsearch v8 accepts it: every response carries X-Elastic-Product:
// Elasticsearch; request bodies may be application/json,
// application/x-ndjson or application/vnd.elasticsearch+json;
// compatible-with=8 (answered in the same media type), and gzip-compressed.
//
// # Endpoints
//
//   - GET|HEAD /: cluster info, version.number 8.x (the Version option).
//   - PUT|POST|GET|HEAD|DELETE /_index_template/{name}, GET /_index_template:
//     composable index templates (index_patterns, priority,
//     template.settings, template.mappings); overlapping patterns of equal
//     priority are refused as Elasticsearch refuses them.
//   - PUT|HEAD|GET|DELETE /{index}: create (with settings and mappings,
//     over the highest-priority matching template), exists, describe,
//     delete (comma lists, '*' wildcards, _all, ignore_unavailable).
//   - GET /{index}/_mapping, GET /_mapping.
//   - POST|PUT /_bulk, /{index}/_bulk: index, create (409
//     version_conflict_engine_exception for an _id the index holds) and
//     delete; update is answered per item as unsupported. refresh is
//     accepted (see Visibility).
//   - PUT|POST /{index}/_doc/{id}, POST /{index}/_doc, PUT|POST
//     /{index}/_create/{id}, GET|HEAD|DELETE /{index}/_doc/{id}.
//   - GET|POST /{index}/_search and /{index}/_count over index expressions
//     (comma lists, wildcards, _all, -exclusions; ignore_unavailable and
//     allow_no_indices as Elasticsearch defaults them): the query DSL,
//     sorting, paging, _source filtering and aggregations of search.go.
//   - POST|GET /{index}/_refresh and /_refresh, GET /_cluster/health[/{index}]
//     (always green), GET /_cat/indices[/{pattern}] (text or format=json, h=,
//     s=, v, bytes=).
//
// Every JSON response honours filter_path and pretty; error bodies have
// Elasticsearch's shape ({"error":{"root_cause":[...],"type","reason"},
// "status"}). A request no endpoint serves is answered 400
// unsupported_operation_exception naming the API, e.g. _update or _msearch;
// a served path with the wrong method 405.
//
// # Mappings
//
// An index is created by PUT /{index} or on its first write, its mapping
// from the matching template and the request. Documents are checked and
// mapped with escompat.Mapping: Elasticsearch's types, coercions,
// dynamic_templates, ignore_above, the total fields and depth limits, and
// its per-item error wording (a document that fails changes nothing). One
// difference: a new string field is mapped as keyword, not as text with a
// keyword sub-field. Multi-fields are kept in the mapping but not indexed.
//
// # Visibility
//
// Each index's operations in a bulk request are applied as bleve batches
// (one, or one per core for a large request) before the response is sent,
// and bleve makes a batch searchable as soon as it is applied: every
// acknowledged write is visible to the next search, as if every request
// said refresh=true. POST /_refresh therefore has nothing to do.
//
// # Storage and durability
//
// The data directory holds templates.json, one directory per index,
// indices/<name>/, with index.json (UUID, creation date, settings and the
// current mapping) beside bleve/, a scorch index, and a lock file: one
// Store per directory. A mapping change is written (atomically) before the
// batch that relies on it is applied. Index creation writes index.json
// last and deletion renames the directory before removing it, so Open
// discards what an interrupted creation or deletion leaves. At Open the set
// of _ids of each index is rebuilt from bleve, so that create keeps
// answering 409 for documents indexed before a restart.
//
// A batch is acknowledged once bleve has written and synced it, so an
// acknowledged write survives a crash. (scorch's unsafe_batch, which
// acknowledges before the write, gains BenchmarkBulk a few percent at most,
// so durability wins.)
//
// # Faults
//
// WithFaults and SetFaults inject, with escompat.Faults semantics: a
// fraction of whole requests answered 429 es_rejected_execution_exception
// or 503 unavailable_shards_exception, a fraction of bulk items answered
// 429, added latency, and a cluster that is down.
//
// # Concurrency and performance
//
// The Store is safe for concurrent use. Requests to different indices run
// in parallel; on one index, checking documents against the mapping and
// their _ids is serialised, while documents are parsed and built on every
// core and batches are applied in parallel: those of concurrent requests,
// and the parts of a large request, one per core, each building its
// segment (a batch touching an _id another batch in flight carries waits
// for it, so the last write wins). A deleted index is closed once the
// requests using it are done.
//
// Bulk indexing is bound by the work per document: bleve building
// segments (40% of the CPU time), the mapping check (escompat, 12%), the
// garbage collector (15 to 20%), building the documents (15%) and merging
// segments in the background (7%). The model keeps the terms, fields and
// allocations those grow with few: a number or a date is 5 terms, not
// bleve's 17; _field_names is one field, of keyword, text and boolean
// paths only; documents are built analysed, from arenas, sharing the term
// maps of repeated values (see model.go, valuerange.go, shared.go).
// BenchmarkBulk measures go-elasticsearch's BulkIndexer (two workers, 5 MB
// requests) with the Sluice index template and documents shaped like the
// indexer's, client and store in one process, on the 2-vCPU machine the
// project is developed on: about 15,000 documents of 500 bytes per second
// over 100,000 documents (5,700 before this model), 480 allocations and
// 42 KB per document (1,250 and 85 KB). The garbage collector's share
// depends on GOGC, a process-wide setting the store leaves alone: GOGC=200
// gives about 17,500 documents per second, GOGC=400 18,500.
//
// Over the 1,000,000 documents of BenchmarkSearchKeyword (one day), a
// keyword term query sorted by @timestamp answers in 13 ms, the same with a
// range on @timestamp over the whole day in 20 ms, over one hour in 6 ms; a
// day's range alone, sorted, takes 0.7 s, all of it sorting a million hits
// (as match_all does).
package devstack
