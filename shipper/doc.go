// Package shipper is Sluice's node agent: it tails the container log files
// of one Kubernetes node and produces every line, as a schemas.Record, to
// the Kafka topic <prefix>.raw.<tenant>. It runs as a DaemonSet, one per
// node. Pod, namespace, container and container id come from the file name,
// the pod uid from the /var/log/pods directory the file links to (directly,
// or on cri-dockerd nodes through a link into /var/lib/docker/containers).
//
// # Kubernetes metadata
//
// With SLUICE_SHIPPER_KUBERNETES_METADATA on (auto: inside a cluster), the
// rest comes from a node-local cache kept by client-go informers (kube.go,
// k8smeta.go): the pod's labels, its annotations and its namespace's labels
// that the allow-lists (SLUICE_SHIPPER_ANNOTATION_PREFIXES,
// SLUICE_SHIPPER_NAMESPACE_LABEL_PREFIXES) let through, the container's
// image, and the owning workload. The pod informer lists and watches the
// pods of this node only (field selector spec.nodeName); namespaces are
// watched whole. A Deployment is read from its ReplicaSet's name (the
// ReplicaSet is <deployment>-<pod-template-hash>, the hash a label of the
// pod), so replicasets need no RBAC and no request; a Job's CronJob cannot be
// told from names, so each Job seen on the node is read once (get jobs) and
// remembered while its pods are. Without that RBAC the Job is the workload.
// A transform strips objects to those fields before the informers store
// them, and gen moves only when one of them changed (not on status
// updates), so followers look again only then: one atomic load per batch.
//
// Shipping never waits on the API server. A follower whose pod is not cached
// waits SLUICE_SHIPPER_METADATA_WAIT (the cache wakes it when the pod comes),
// then ships with the path's metadata and Record.Metadata = partial, and
// carries the full metadata from the batch after the pod is known. An API
// server away at start (the first lists are waited for at most as long) or
// later leaves the cache as it was; informers retry with backoff. Deleted
// pods and namespaces are kept SLUICE_SHIPPER_METADATA_RETENTION for late
// lines.
//
// Tenants: the namespace's SLUICE_SHIPPER_TENANT_LABEL, else the first
// SLUICE_SHIPPER_TENANT_MAP rule, else the namespace. A follower holds its
// tenant (budget share, gate, topic); when the label changes it switches
// at a point where nothing read is left with the old tenant: no message
// being joined, nothing in flight, no failure to recover from (it stops
// reading until its last records are acknowledged). Records in flight
// release their budget to the tenant they were read for (their ticket names
// it). Lines read before the switch stay on the old tenant's topic; the
// checkpoint is per file, so no line is lost or sent twice. A fallback
// tenant for topics that do not exist is not offered: its lines would be
// visible to another tenant, and a missing topic already holds its lines
// back without loss.
//
// # Lifecycle
//
// New checks the configuration and starts nothing. Run blocks: it loads the
// checkpoints, matches the globs (at once when a file appears in a watched
// glob directory, and every SLUICE_SHIPPER_RESCAN_INTERVAL), and ships each
// container's file. When ctx is cancelled it stops reading, waits up to
// SLUICE_SHIPPER_SHUTDOWN_TIMEOUT for Kafka to acknowledge what was read,
// saves the checkpoints and returns nil.
//
// # Scheduling and idle cost
//
// A container's follower has no goroutine, timer or read buffer while it has
// nothing to do. The watcher (inotify, through fsnotify) wakes a follower when
// its directory sees a write, create or rename; a woken follower reads what
// there is with a buffer from a fixed pool of reader slots and goes idle
// again. A busy file is read in batches at most every
// min(SLUICE_SHIPPER_POLL_INTERVAL, 100ms), not once per write. Every idle
// follower is also checked every 10s in case an event was missed (inotify
// queue overflow wakes everything), and a directory that cannot be watched
// (the node's watch limit) is polled every SLUICE_SHIPPER_POLL_INTERVAL,
// backing off to 8x while idle. Files idle for SLUICE_SHIPPER_CLOSE_INACTIVE
// are closed, and so are the longest-idle ones when file descriptors run
// short (the bound is the process's limit less room for sockets); a closed
// file is reopened by identity when it changes. Checkpoints are written only
// when a position changed.
//
// # Delivery
//
// At least once, from disk to Kafka: the producer is idempotent with
// acks=all, and a file position is checkpointed only once Kafka acknowledged
// every line before it (a contiguous watermark per container). A partial
// message still being joined holds the checkpoint at its first fragment.
// When a record fails, the container's reader waits for what is in flight,
// rewinds to its checkpoint and reads again, so lines are never skipped; a
// line sent twice carries the same id both times (a hash of node, container,
// first-line fingerprint and byte offset), which makes the copy harmless
// downstream. Checkpoints are written atomically (temporary file, fsync,
// rename, directory fsync) and name files by inode and first-line
// fingerprint, not by path, so they survive rotation and inode reuse.
//
// A record Kafka refuses for good (an invalid record, a policy violation, or
// too large even at the smallest cap) is not sent again: it is counted in
// lost_lines_total{reason="rejected"} and written to the tenant's dead-letter
// topic <prefix>.dlq.<tenant> with the reason. Producer batches follow each
// topic's max.message.bytes (read before the first record goes to it), and
// messages are cut to fit it (flagged truncated).
//
// # Rotation
//
// Kubelet renames a full 0.log to 0.log.<timestamp>, reopens 0.log, and at
// the next rotation compresses the older rotation to 0.log.<timestamp>.gz
// (deleting rotations beyond containerLogMaxFiles). The reader opens each
// rotation as it appears and drains it to its end before following the new
// file; a message split into partial lines across the rotation is still
// joined. Positions are offsets in the uncompressed data, so when a file was
// compressed while it waited (the shipper was down, or its tenant held
// back), its unread lines are read from the .gz, found by the fingerprint of
// its decompressed first line; the record ids do not change. Docker's
// json-file rotations (<id>-json.log.1, .2.gz, ...) are followed the same
// way. A checkpointed file found neither plain nor compressed was deleted
// unread (checkpoint_misses_total, and lost_bytes_total{reason="deleted"}
// with at least the bytes it had when last seen); the remaining rotations
// are read again.
// A file truncated in place (copytruncate) is read again from its start;
// lines written between the last read and the truncation are lost with it,
// which is why kubelet does not rotate that way. The runtime may write to a
// file for a moment after kubelet renamed it; the reader waits 200ms before
// its last read of a rotated file.
//
// Deleted files held open (read later than kubelet deleted them) are bounded
// by SLUICE_SHIPPER_HELD_FILES_MAX_BYTES and _MAX_AGE; past them the oldest
// are given up: read from their compressed copy when there is one, else
// their unread lines are counted in lost_lines_total{reason="released"}.
//
// # Messages that never end
//
// A message whose end has not come (a CRI P line without its F, a docker
// log without its newline, an unterminated last line) is shipped as it is,
// flagged partial, once its file has been quiet for
// SLUICE_SHIPPER_PARTIAL_FLUSH_TIMEOUT; the checkpoint then moves past it,
// so nothing pins a checkpoint (or the rotations behind it) for ever.
//
// # Memory, backpressure and tenant isolation
//
// Bytes read but not yet acknowledged, partial messages being joined
// included, are bounded by SLUICE_SHIPPER_MAX_BUFFERED_BYTES. Each tenant
// is guaranteed SLUICE_SHIPPER_TENANT_MAX_BUFFERED_BYTES of it (a quarter by
// default) and may borrow more, but never that last share, the reserve for
// tenants within theirs: a tenant alone keeps Kafka busy, and one whose
// records Kafka does not acknowledge cannot hold the budget the others
// need (see budget.go). A line's budget is taken before it is
// read: a follower that must wait gives its reader slot and buffer back, and
// read buffers are bounded by the number of slots. When Kafka is slow or
// down, readers wait and stop reading: the log files are the buffer.
//
// A tenant whose topic is missing or denied is held back as a whole, and a
// follower whose records are not acknowledged within
// SLUICE_SHIPPER_DELIVERY_TIMEOUT (a partition without enough replicas, an
// offline leader) is held back on its own. While held back, nothing is sent
// until a backoff (doubling from 1s to SLUICE_SHIPPER_TENANT_RETRY_MAX) has
// passed; then one probe record goes, and its acknowledgement releases
// everyone waiting. So a broken tenant costs the others nothing but one
// record's budget between retries.
//
// # Line handling
//
// CRI lines ("<time> <stream> <P|F> <content>") and docker json-file lines
// are decoded per line; anything else is shipped as raw text, never
// dropped. Partial lines (CRI P, docker's 16 KiB splits) are joined per
// stream (stdout and stderr separately). A message longer than
// SLUICE_SHIPPER_MAX_LINE_BYTES is cut on a UTF-8 boundary and flagged
// (truncated, original_size); invalid UTF-8 is replaced with U+FFFD and
// flagged (invalid_utf8).
//
// # Starting
//
// On a node's very first run (no checkpoint file yet) the current files are
// read from their start, or with SLUICE_SHIPPER_READ_FROM=tail from their
// end; files that appear later are read from their start, rotations
// included. SLUICE_SHIPPER_IGNORE_OLDER reads files not written for longer
// from their end. Inside Kubernetes SLUICE_NODE_NAME must be set: the host
// name there is the pod's, and record ids would change with it.
//
// # Metrics
//
// Namespace sluice, subsystem shipper:
//
//	lines_read_total{tenant}                  physical lines read
//	read_bytes_total{tenant}                  bytes read
//	records_produced_total{tenant}            records acknowledged by the output
//	produce_errors_total{tenant,reason}       failed deliveries; reason: topic_missing, denied, message_too_large, timeout, rejected, shutdown, other (all but rejected are sent again)
//	lost_lines_total{tenant,reason}           lines that could not be shipped: released, rejected
//	lost_bytes_total{tenant,reason}           bytes that could not be shipped: released, rejected, deleted (a file deleted unread; at least), unreadable (compressed bytes of a damaged .gz)
//	dead_letters_total{tenant,reason}         records written to the tenant's dead-letter topic
//	dead_letter_errors_total{tenant}          dead letters that could not be written
//	partial_flushes_total{tenant}             messages shipped flagged partial after the flush timeout
//	record_cap_reductions_total{tenant}       records cut shorter after Kafka refused one as too large
//	partial_joins_total                       messages joined from partial lines
//	truncations_total                         messages truncated at the cap
//	invalid_utf8_total                        messages with invalid UTF-8 replaced
//	rotations_total{kind}                     rotations seen: rename, truncate
//	files_skipped_total{reason}               matched files not shipped: layout, tenant, excluded; older (read from their end)
//	open_errors_total{reason}                 failed opens, retried: fd_limit, not_found, permission, other
//	checkpoint_errors_total{reason}           corrupt checkpoint files, failed saves
//	checkpoint_misses_total{tenant}           checkpointed files deleted before they were read to their end
//	damaged_files_total{tenant}               compressed rotations that ended early (their lines past the damage are lost)
//	files_tracked                             container logs being followed
//	files_open                                log files held open
//	files_polled                              container logs polled because their directory cannot be watched
//	held_deleted_files, held_deleted_bytes    deleted files held open, and the disk they hold
//	unshipped_bytes{tenant}                   file bytes after the checkpoints (alert when it grows)
//	oldest_unshipped_age_seconds{tenant}      how long the tenant's longest-waiting container log has had bytes not yet delivered without Kafka acknowledging any of its records
//	buffered_bytes{tenant}                    bytes read and not yet acknowledged
//	checkpoint_age_seconds                    time since the checkpoints were last known saved
//	checkpoint_saved_timestamp_seconds        time of the last successful checkpoint save
//	tenants_paused                            tenants held back for a missing or denied topic
//	metadata_lookups_total{result}            look-ups of a container's pod in the metadata cache: hit, miss (waiting), partial (gave up waiting)
//	kubernetes_api_errors_total               failed lists, watches and Job reads
//	kubernetes_cached_objects{kind}           pods (this node's, deleted ones within retention), namespaces, jobs cached
//	kubernetes_synced                         1 once pods and namespaces were listed
//
// The Kafka client's own metrics (connections, bytes and errors per broker,
// produce bytes per topic, buffered records) are exported as sluice_kafka_*
// with a client_id label.
package shipper
