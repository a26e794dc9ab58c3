// Package escompat holds what Elasticsearch 8 stand-ins share: the
// in-memory fake of tests (internal/esfake) and the bleve-backed store of
// `sluice dev` (internal/devstack). It has no server of its own.
//
//   - Request parsing, worded as Elasticsearch words its errors: the NDJSON
//     bulk body (ParseBulk, BulkItem), documents (ParseDocument: strict JSON
//     with [line:column] positions), index templates (ParseIndexTemplate,
//     SelectTemplate, MatchTemplates) and create-index bodies
//     (ParseCreateIndex).
//   - Mappings (NewMapping, Mapping.Check, Mapping.Apply): Elasticsearch's
//     field types and coercions, dynamic mapping and dynamic_templates,
//     ignore_above, and the total fields and depth limits, with the exact
//     per-document errors.
//   - Index expressions (ResolveIndices: names, wildcards, _all,
//     exclusions, ignore_unavailable, allow_no_indices; DefaultIndices)
//     and index names
//     (ValidateIndexName).
//   - Requests: ReadBody (gzip, http.max_content_length), SplitPath and
//     Path, ReadBulk and ReadCreateIndex (the whole reading of a bulk or
//     create-index request), ParseRefresh, ParseBool.
//   - Responses: Error and its body; ordered JSON (Ordered, Encode) with
//     filter_path (FilterPath); the Responder, which sets
//     X-Elastic-Product and the compatible-with=8 media type; the bodies of
//     GET /, cluster health, _cat/indices, documents, bulk responses
//     (BulkOp, ItemResult, BulkResponse), index templates and indices; and
//     Router, which answers 400 or 405 as Elasticsearch does.
//   - Index templates held and served (Templates: the /_index_template
//     endpoints, optionally persisted by the stand-in).
//   - Fault injection (Faults), applied to each request by a Gate before it
//     is routed and to bulk items by NewBulkOps, with seeded draws (Rand),
//     and the errors injected faults answer with.
//
// The stand-ins keep their own storage, locking and endpoint tables: what
// they serve differs (devstack searches and persists; esfake counts and can
// discard), and so does how strictly they read some parameters.
//
// Everything here is safe for concurrent use except Mapping (see its
// documentation), Responder and Router (one per request), and BulkOp (one
// per operation).
package escompat
