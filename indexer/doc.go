// Package indexer consumes the parsed topics of every tenant and bulk-writes
// their records to Elasticsearch daily indices. It depends on nothing but
// Kafka and Elasticsearch; replicas in one consumer group share the
// partitions, so it scales by adding replicas, and a second group (another
// cluster) gets every record independently.
//
// # Lifecycle
//
// New checks the configuration and starts nothing. Run installs the index
// template (retrying until Elasticsearch answers), joins the group
// SLUICE_INDEXER_GROUP reading <prefix>.parsed.<tenant>[.<dataset>]
// (read_committed, so aborted router transactions are never indexed), and
// indexes until its context ends; then it stops consuming, sends what it has
// batched, waits up to SLUICE_INDEXER_SHUTDOWN_TIMEOUT for requests in
// flight, commits and leaves the group.
//
// # Delivery: exactly once in effect
//
// Every document is sent with the bulk create action and _id = the record
// id, which the shipper derives from the line's place in its file: a record
// indexed twice (after a crash, a rebalance, a re-shipped line) is answered
// 409, which counts as stored. Two cases escape this: a line re-shipped by
// the shipper whose event time was outside the window (its index day comes
// from its read time, which differs between the copies), and a record
// without an id (its _id comes from its place in the parsed topic, which a
// re-shipped copy does not share). Per item:
//   - 200/201 stored; 409 a duplicate, stored;
//   - 429 and 5xx: sent again, only those items, after a jittered
//     exponential backoff (100ms doubling up to SLUICE_INDEXER_RETRY_MAX
//     while no document of the batch is stored, back to 100ms once some
//     are), for three rounds; then parked with their index (below);
//   - failures of the index, not the document (a block, 401, 403, 404, a
//     closed index, the shard limit, a missing default pipeline, see
//     classifyItem): parked with their index at once (see park.go): the
//     worker goes on, the index is retried apart with its own backoff, and
//     past the failure class's time in SLUICE_INDEXER_GIVE_UP its
//     documents are dead-lettered with the class as reason;
//   - a document the index's ingest pipeline fails on: dead-lettered at
//     once, reason "pipeline";
//   - 400 and other client errors (a mapping conflict, say): sent once more
//     with the fields the error names (or, when it names none of the
//     document's attributes and labels, every attribute, label and
//     annotation) moved into sluice.rescued, a
//     text field holding them as one JSON object; if Elasticsearch still
//     refuses it, the record goes to <prefix>.dlq.<tenant> as a
//     schemas.DeadLetter with reason "rejected", the status, the
//     Elasticsearch error, the index, the rejected document and the
//     original record.
//
// A request refused whole as too large or malformed (413, 400) is split, down
// to the one document at fault, which is dead-lettered. A record that is not
// a record (it does not decode) goes to the dead-letter topic with reason
// "decode". Dead letters are written in the background, per tenant with
// its own backoff: one that Kafka does not take (the tenant's dead-letter
// topic is missing or denied) pauses the fetching of its source partition
// until it is written, and holds back no worker, no other partition and no
// other tenant's dead letters. Dead letters are at least once: Kafka cannot
// recognise a copy the way Elasticsearch does, so one written just before a
// crash may be written again after the restart. A whole request that fails (unreachable
// cluster, 429, 503, a timeout) is retried the same way; meanwhile the
// worker holding it is busy, and when every worker is, the poll loop blocks
// handing over its next batch: consumption pauses and memory stays bounded
// at about (SLUICE_INDEXER_WORKERS + 1) x SLUICE_INDEXER_FLUSH_BYTES plus the
// Kafka fetch buffers.
//
// Offsets are committed per partition, every SLUICE_INDEXER_COMMIT_INTERVAL,
// up to the first record that is neither stored nor dead-lettered: a crash
// at any moment loses nothing, and what is indexed again is recognised as
// duplicates. When partitions move to another replica, the indexer waits up
// to SLUICE_INDEXER_REVOKE_TIMEOUT for their records in flight, commits and
// lets go; records of a partition it no longer owns are not retried.
//
// # Documents
//
// The document keeps the shape of the fluent-bit kubernetes filter, so
// existing Kibana views keep working:
//
//	@timestamp       event time (date)
//	tenant           the tenant of the topic the record came from (never a field of the record)
//	stream           stdout or stderr
//	log              the message (text)
//	kubernetes       pod_name, namespace_name, pod_id, labels.*, annotations.*,
//	                 namespace_labels.*, host, container_name, container_image,
//	                 docker_id, workload {kind, name} (keyword)
//	<attribute>      each parsed attribute at its dotted path, at the top level
//	sluice           observed_timestamp, truncated, original_size, invalid_utf8,
//	                 partial, metadata ("partial" when the shipper had only what
//	                 the log file's path says of the pod; keyword),
//	                 source {path, offset, format, shipper}, rescued
//
// An attribute whose first path element is one of the top-level names above
// or an Elasticsearch metadata field (_id, _source, ...) is written under
// attributes. (attributes.log, attributes._id). Label, annotation and
// namespace label keys are de-dotted: every '.' becomes '_' (app.kubernetes.io/name is
// app_kubernetes_io/name), so that app and app.kubernetes.io/name can never
// collide as a value versus an object. What cannot be written where it
// belongs goes into sluice.rescued, never away: a key with an empty path
// element, a value at a path other attributes nest under (a beside a.b), a
// label whose de-dotted key another label already has (the key that had no
// dots keeps the name).
//
// # Indices
//
// Documents go to <prefix>-<tenant>-YYYY.MM.DD, or <prefix>-<tenant>.<dataset>-YYYY.MM.DD
// for a route's dataset topic (the dedicated layout; see index.go for why a
// dot separates the dataset), or, for tenants in the shared layout
// (SLUICE_INDEXER_LAYOUT, SLUICE_INDEXER_LAYOUT_OVERRIDES, the tenant's
// record in <prefix>.tenants), to
// <prefix>-_shared[.<dataset>]-YYYY.MM.DD with "routing": <tenant> in the
// action (see layout.go). Tomorrow's indices are created ahead of
// midnight (precreate.go). The day is the event time's in SLUICE_INDEXER_TIMEZONE, unless the
// event time lies outside [ingest - SLUICE_INDEXER_WINDOW_PAST, ingest +
// SLUICE_INDEXER_WINDOW_AHEAD]; then the ingest time (when the line was
// read) picks the day, and @timestamp keeps the event time. At start the
// indexer installs the composable index template <prefix> for <prefix>-*
// (see templateBody); retention deletes indices older than
// SLUICE_INDEXER_RETENTION_DAYS (per tenant: SLUICE_INDEXER_RETENTION_OVERRIDES,
// else the tenant's record in <prefix>.tenants)
// every SLUICE_INDEXER_RETENTION_INTERVAL; any replica may, deleting twice
// is harmless.
//
// # Tenants' settings
//
// Each indexer follows the compacted topic <prefix>.tenants, where
// sluice-controller publishes every tenant's index layout and retention
// (kafka.TenantSettings), and applies changes as they come, without a
// restart: the indexer's own overrides win, then a tenant's record, then
// the defaults. A record that does not decode is logged, counted and
// ignored; a missing topic is not an error. See tenantsettings.go.
//
// # Metrics
//
// Namespace sluice, subsystem indexer:
//
//	records_received_total{tenant}              records consumed
//	docs_stored_total{tenant}                   201s
//	docs_duplicate_total{tenant}                409s: indexed before
//	docs_retried_total{tenant,reason}           documents not stored, not by their fault: too_many_requests, server_error, blocked, forbidden, index_missing, index_closed, index_config, other, request
//	docs_parked_total{tenant,reason}            documents parked with their index (same reasons)
//	parked_documents, parked_bytes              documents parked now, and their memory
//	parked_indices                              indices with parked documents or given up on
//	paused_partitions{reason}                   partitions not fetched: dead_letters, parked
//	docs_rescued_total{tenant}                  400s sent again with fields moved to sluice.rescued
//	dead_lettered_total{tenant,reason}          records written to the dead-letter topic: decode, rejected, pipeline, or a class given up on
//	dead_letter_errors_total{tenant}            dead letters Kafka refused (retried; their partition pauses)
//	fields_moved_total{tenant,reason}           fields placed in sluice.rescued before sending: name, collision
//	index_time_clamped_total{tenant}            documents indexed by ingest time (event time out of the window)
//	bulk_requests_total{result}                 ok, partial, failed
//	tenant_bulk_seconds_total{tenant}           summed duration of the bulk requests carrying the tenant's documents
//	tenant_bulk_requests_total{tenant}          bulk requests carrying the tenant's documents
//	tenant_bulk_bytes_total{tenant}             the tenant's bytes sent in bulk requests
//	bulk_duration_seconds                       bulk request duration (histogram)
//	bulk_size_bytes                             bytes of one bulk request (histogram)
//	bulk_docs                                   documents in one bulk request (histogram)
//	commits_total{result}                       offset commits: ok, error
//	precreated_indices_total{result}            indices created ahead of midnight: created, exists, failed
//	precreate_pending_indices                   of tomorrow's indices, those still to create
//	index_families                              index families written to today
//	consumer_lag_records{tenant}                records not yet consumed
//	commit_watermark_age_seconds{tenant}        age of the oldest record not yet stored
//	pending_records{tenant}                     records consumed, not yet stored
//	retention_deleted_indices_total, retention_errors_total
//	tenant_settings_errors_total                records of <prefix>.tenants ignored (not decoding, or not keyed by a tenant id)
//	tenant_settings_tenants                     tenants with a record in <prefix>.tenants
//
// plus the Kafka client's sluice_kafka_* metrics.
package indexer
