// Package esfake is an in-memory fake of the Elasticsearch 8 REST API subset
// the Sluice indexer uses, for tests and benchmarks. It is a test stand-in,
// never a server for production: it keeps everything in memory, has one
// shard per index, no search, no security beyond one Authorization value,
// and no persistence.
//
// Start serves it on a loopback httptest server closed with t.Cleanup;
// New plus Handler embeds it in another server. go-elasticsearch v8 accepts
// it: every response carries X-Elastic-Product: Elasticsearch and
// Content-Type application/json, or the compatible-with=8 media type when
// the request's Accept asked for it.
//
// With the OpenSearch option it answers as an OpenSearch 2.x node (2.17.1)
// instead: no X-Elastic-Product (go-elasticsearch v8 refuses it unless the
// client adds the header, as SLUICE_ELASTICSEARCH_FLAVOR=opensearch does),
// OpenSearch's GET / body (version.distribution "opensearch"), 406 for a
// request body typed compatible-with=8, the security plugin's 401 and
// OpenSearch's wording of document errors; see OpenSearch for the list.
//
//	es := esfake.Start(t)
//	client, _ := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{es.URL()}})
//	... index through client ...
//	docs := es.Docs("logs-acme-2024.05.01")
//
// # Endpoints
//
//   - GET|HEAD /: cluster info (version.number from the Version option;
//     OpenSearch's body with the OpenSearch option).
//   - PUT|POST|GET|HEAD|DELETE /_index_template/{name}, GET /_index_template:
//     composable templates; overlapping patterns of equal priority are
//     refused as Elasticsearch refuses them.
//   - PUT|HEAD|GET|DELETE /{index}: create (with "settings" and "mappings"),
//     exists, describe, delete (comma lists, '*' wildcards, _all,
//     ignore_unavailable=true).
//   - POST|PUT /_bulk, /{index}/_bulk: create, index and delete actions
//     (update is answered with a per-item error); refresh is accepted and
//     ignored, as data is visible at once.
//   - PUT|POST|GET|DELETE /_security/role/{name}: roles, kept as they are
//     given once their indices entries are checked (names and privileges
//     required); Role returns one. Nothing enforces them.
//   - GET|HEAD /{index}/_doc/{id}, GET /{index}/_mapping,
//     POST|GET /{index}/_refresh and /_refresh, GET /_cluster/health (always
//     green), GET /_cat/indices[/{pattern}] (text or format=json, h=, s=, v,
//     bytes=).
//   - Anything else: 400 "no handler found for uri [...] and method [...]";
//     a known path with the wrong method: 405.
//
// Every JSON response honours filter_path (comma-separated dotted paths, '*'
// within a segment, "**" for any depth) and pretty; error responses are not
// filtered, as in Elasticsearch. Request bodies may be gzip-compressed.
//
// # Indexing and mappings
//
// An index is created on its first write, or by PUT /{index} or CreateIndex,
// with its mapping seeded from the highest-priority matching template. Every
// document is checked against the index mapping with Elasticsearch's rules
// and error wording (see escompat.Mapping): a document that fails is
// answered with a per-item 400 and changes nothing. create of an existing _id is answered 409
// version_conflict_engine_exception; index overwrites.
//
// # Faults
//
// SetFaults injects whole-request 429 or 503 answers, per-item 429
// rejections, latency, or a cluster that is down. Random decisions come from
// a generator seeded by the Seed option (default 1). SetIndexFault makes
// every write to the indices of a pattern fail as an index in that state
// does in Elasticsearch: a write block (403 cluster_block_exception), the
// flood-stage block (429 cluster_block_exception), closed (400
// index_closed_exception), auto-creation refused (404), the shard limit
// (400 validation_exception), a failing or missing default pipeline.
//
// # Shared code
//
// The parsers, the mapping engine, index templates and their endpoints,
// fault injection, bulk responses and response shapes are package
// escompat's, shared with the bleve-backed store of internal/devstack;
// errors are *escompat.Error values.
//
// The Server, its accessors and SetFaults are safe for concurrent use; bulk
// requests run in parallel up to one mutex that serialises index changes.
package esfake
