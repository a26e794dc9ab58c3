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
//     exclusions, ignore_unavailable, allow_no_indices) and index names
//     (ValidateIndexName).
//   - Responses: Error and its body; ordered JSON (Ordered, Encode) with
//     filter_path (FilterPath); the Responder, which sets
//     X-Elastic-Product and the compatible-with=8 media type; the bodies of
//     GET /, cluster health, _cat/indices, bulk items, index templates and
//     indices; and Router, which answers 400 or 405 as Elasticsearch does.
//   - Fault injection (Faults) and the errors injected faults answer with.
//
// Everything here is safe for concurrent use except Mapping (see its
// documentation) and Responder (one per request).
package escompat
