// Package shipper is Sluice's node agent: it tails the container log files
// of one Kubernetes node and produces every line, as a schemas.Record, to
// the Kafka topic <prefix>.raw.<tenant>. It runs as a DaemonSet, one per
// node, and never calls the Kubernetes API server: pod, namespace, container
// and container id come from the file name, the pod uid from the
// /var/log/pods directory the file links to.
//
// # Lifecycle
//
// New checks the configuration and starts nothing. Run blocks: it loads the
// checkpoints, matches the globs (again every SLUICE_SHIPPER_RESCAN_INTERVAL),
// and reads each container's file in its own goroutine. When ctx is
// cancelled it stops reading, waits up to SLUICE_SHIPPER_SHUTDOWN_TIMEOUT for
// Kafka to acknowledge what was read, saves the checkpoints and returns nil.
//
// # Delivery
//
// At least once, from disk to Kafka: the producer is idempotent with
// acks=all, and a file position is checkpointed only once Kafka acknowledged
// every line before it (a contiguous watermark per container). A partial
// message still being joined holds the checkpoint at its first fragment.
// When a record fails, the container's reader waits for what is in flight,
// rewinds to its checkpoint and reads again, so lines are never skipped; a
// line sent twice carries the same id both times (a hash of node, inode,
// first-line fingerprint and byte offset), which makes the copy harmless
// downstream. Checkpoints are written atomically (temporary file, fsync,
// rename, directory fsync) and name files by inode and first-line
// fingerprint, not by path, so they survive rotation and inode reuse.
//
// # Rotation
//
// Kubelet renames a full 0.log to 0.log.<timestamp> and reopens 0.log. The
// reader keeps the renamed file open, drains it to its end, then follows the
// new file; a message split into partial lines across the rotation is still
// joined. After a restart, a checkpoint that names a rotated file is found
// among the uncompressed rotations next to the current file; files rotated
// and compressed while the shipper was down cannot be read (counted in
// sluice_shipper_checkpoint_misses_total). A file truncated in place
// (copytruncate) is read again from its start; lines written between the
// last read and the truncation are lost with it, which is why kubelet does
// not rotate that way. The runtime may write to a file for a moment after
// kubelet renamed it; the reader waits min(SLUICE_SHIPPER_POLL_INTERVAL,
// 200ms) before its last read of a rotated file.
//
// # Memory, backpressure and fairness
//
// Bytes read but not yet acknowledged are bounded by
// SLUICE_SHIPPER_MAX_BUFFERED_BYTES. When Kafka is slow or down, readers
// block on that budget and stop reading: the log files are the buffer.
// The budget is handed out first come, first served, one record at a time,
// so a very chatty container cannot starve the quiet ones. A tenant whose
// topic is missing or denied is paused (with doubling waits up to
// SLUICE_SHIPPER_TENANT_RETRY_MAX) without slowing the others.
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
// # Metrics
//
// Namespace sluice, subsystem shipper:
//
//	lines_read_total{tenant}               physical lines read
//	read_bytes_total{tenant}               bytes read
//	records_produced_total{tenant}         records acknowledged by the output
//	produce_errors_total{tenant,reason}    failed deliveries (retried); reason: topic_missing, denied, message_too_large, shutdown, other
//	partial_joins_total                    messages joined from partial lines
//	truncations_total                      messages truncated at the cap
//	invalid_utf8_total                     messages with invalid UTF-8 replaced
//	rotations_total{kind}                  rotations seen: rename, truncate
//	files_skipped_total{reason}            matched files not shipped: layout, tenant, excluded
//	checkpoint_errors_total{reason}        corrupt checkpoint files, failed saves
//	checkpoint_misses_total                checkpointed files gone on restart
//	files_tracked                          files being tailed
//	unshipped_bytes                        file bytes after the checkpoints (alert when it grows)
//	buffered_bytes                         bytes read and not yet acknowledged
//	checkpoint_age_seconds                 time since the last successful checkpoint save
//	checkpoint_saved_timestamp_seconds     time of the last successful checkpoint save
//	tenants_paused                         tenants paused for a missing or denied topic
//
// The Kafka client's own metrics (connections, bytes and errors per broker,
// produce bytes per topic, buffered records) are exported as sluice_kafka_*
// with a client_id label.
package shipper
