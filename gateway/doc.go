// Package gateway is Sluice's ingest gateway, `sluice gateway`: a
// stateless HTTP server that takes logs from outside the cluster and
// produces them to <prefix>.raw.<tenant> as schemas.Records in Avro
// single-object encoding, the shipper's format, so that routers and
// indexers read them like any shipped line. It runs as a Deployment;
// replicas share nothing.
//
// # Endpoints
//
//   - POST /v1/logs: OTLP/HTTP logs, an ExportLogsServiceRequest in
//     protobuf (application/x-protobuf) or in OTLP's JSON encoding
//     (application/json: lowerCamelCase or proto field names, enums as
//     numbers, 64-bit integers as strings or numbers, trace and span ids as
//     hex, unknown fields ignored). The answer is an
//     ExportLogsServiceResponse in the request's encoding, with
//     partial_success (rejected_log_records and error_message) when some
//     records were refused alone; an error is a google.rpc.Status in the
//     request's encoding.
//   - POST /v1/lines: a record per line, as `sluice produce` sends them
//     (internal/lineinput): with Content-Type application/x-ndjson each
//     line must be a JSON object (a record's JSON form when it has a "log"
//     key, else an application's log object, kept whole as log); with
//     text/plain (or none) a line is text, or a JSON object as above. The
//     answer is {"accepted":N,"rejected":M,"errors":[...]}; 400 when no
//     line was accepted.
//   - OTLP/gRPC, LogsService.Export, on SLUICE_GATEWAY_GRPC_ADDR (off by
//     default), with the credentials in the authorization metadata.
//
// Bodies may be gzip-compressed (Content-Encoding: gzip; gRPC's gzip).
//
// OTLP/gRPC costs little: it is served by net/http's HTTP/2 server
// (grpc.go), not by gRPC's library. The OTLP protobuf definitions come
// from go.opentelemetry.io/proto/otlp, whose collector package holds the
// gRPC service next to ExportLogsServiceRequest and
// ExportLogsServiceResponse: importing it links google.golang.org/grpc,
// which cost every Sluice process, the shipper on each node included,
// 4 MB of memory at start and the binary 2.3 MB (measured with make
// build-prod's flags: sluice version's peak RSS 25.9 against 22.8 MB).
// So the gateway decodes a request as the logs package's LogsData, which
// is the same message on the wire (one field, repeated ResourceLogs
// resource_logs = 1, in protobuf and in JSON), and encodes the response's
// two fields itself (exportResponse, held to the collector package's type
// by a test). The gateway as a whole adds 0.9 MB to the binary and 1 MB
// to a process at start. gRPC's library remains the tests' client, and
// internal/archtest fails the production build if it links it.
//
// A gRPC call is read within the HTTP path's bounds: its message's
// length prefix against SLUICE_GATEWAY_MAX_BODY_BYTES, the message after
// gunzip against SLUICE_GATEWAY_MAX_DECOMPRESSED_BYTES, and at most 16
// calls in progress on one connection.
//
// # The record
//
// An OTLP log record becomes one Record:
//
//   - log: the body, a string as it is, any other value as JSON (a
//     key-value list as an object, bytes as base64); cut to
//     SLUICE_GATEWAY_MAX_LOG_BYTES on a UTF-8 boundary and flagged
//     truncated, as the shipper does.
//   - timestamp: time_unix_nano, else observed_time_unix_nano, else none:
//     the router then takes observed_timestamp, which is the observed time
//     or, without one, when the gateway received the request. Leaving the
//     time out rather than setting the receive time keeps a retried
//     request's record ids equal (the router's id hashes the time).
//   - kubernetes: from the resource attributes k8s.namespace.name,
//     k8s.pod.name, k8s.pod.uid, k8s.container.name, k8s.node.name (host),
//     container.id (docker_id), container.image.name and
//     container.image.tag (container_image, name:tag), the first of
//     k8s.deployment.name, k8s.statefulset.name, k8s.daemonset.name,
//     k8s.cronjob.name, k8s.job.name, k8s.replicaset.name (workload), and
//     k8s.pod.label(s).<key>, k8s.pod.annotation(s).<key>,
//     k8s.namespace.label(s).<key> (labels, annotations, namespace_labels).
//     Only string values fill fields; what fills one is no attribute.
//   - stream: log.iostream; source.path: log.file.path (record attribute,
//     else resource attribute); source.format "otlp"; source.shipper
//     "sluice-gateway <version>".
//   - attributes: every other attribute of the resource, the scope and the
//     record (the record's win, then the scope's), key-value lists
//     flattened into dotted keys, arrays of scalars as lists, other arrays
//     as JSON text, bytes as base64; severity_text, severity_number,
//     trace_id and span_id (hex), trace_flags, event_name,
//     otel.scope.name, otel.scope.version. At most 1000 per record, the
//     resource's and scope's included (more rejects the record: they are
//     copied into each record).
//   - tenant: the credentials' tenant, never anything the payload says.
//
// The Kafka key is the container's (pod uid and container name), as the
// shipper keys by container, so a container's records keep their order;
// records without a pod have none. Values carry the shipper's
// content-type header.
//
// # Authentication and tenancy
//
// A request authenticates as a tenant's Kafka user: HTTP basic
// authentication with the SCRAM user name and password `sluice tenant
// create` prints (the user name is the tenant id), or a bearer token that
// SLUICE_GATEWAY_TOKENS_FILE maps to such credentials. The gateway has no
// Kafka credentials of its own: it produces through a client authenticated
// as that user (SLUICE_KAFKA_SASL_MECHANISM and the TLS settings say how),
// so Kafka's ACLs (kafka.TenantACLRules: the tenant writes its raw topic
// only) and quotas apply to what it sends exactly as to the tenant's own
// producers, and the topic is <prefix>.raw.<user>, whatever the payload
// claims.
//
// Credentials are checked by the client's SASL handshake, with a metadata
// request for the tenant's raw topic, the first time they come; the client
// is then kept in a pool (pool.go) keyed by the user and an HMAC of the
// password under a key made at start, and used for SLUICE_GATEWAY_AUTH_TTL
// before the next request makes a new one (a new handshake: a changed
// password or a deleted user takes effect within the TTL). Refused
// credentials are refused from memory for SLUICE_GATEWAY_AUTH_FAILURE_TTL,
// and at most 8 handshakes run at once. Passwords appear in no log, metric
// or error. Every refusal (no credentials, a malformed header, a user
// name that is no tenant id, an unknown user, a wrong password, an
// unknown token) is the same 401 with the same body. Kafka brokers that
// close the connection on a failed SASL exchange (rather than answer it)
// are recognised after two such closes in a row. At most
// SLUICE_GATEWAY_MAX_CLIENTS clients exist; the least recently used idle
// one makes room, idle ones close after SLUICE_GATEWAY_CLIENT_IDLE_TIMEOUT.
//
// With SLUICE_GATEWAY_TLS_CERT_FILE the gateway serves HTTPS, and with
// SLUICE_GATEWAY_TLS_CLIENT_CA_FILE it also requires a client certificate
// signed by that CA (mutual TLS) besides the credentials. For a
// development Kafka without authentication, SLUICE_GATEWAY_INSECURE_TRUST_USERNAME
// takes the user name as the tenant and checks no password; the settings
// refuse it with a SASL mechanism, and refuse no mechanism without it.
//
// # Delivery and record ids
//
// A request is answered 200 only once Kafka acknowledged every record it
// took (acks=all, idempotent producer); records refused alone are counted
// in partial_success (or the lines' rejected) and named in its message:
// a record over SLUICE_GATEWAY_MAX_RECORD_BYTES encoded, over 1000
// attributes, or refused by Kafka for good (too large for the topic,
// invalid). Any other failure fails the request: 401 (the credentials no
// longer pass), 403 (the user may not write its raw topic), 404 (the
// tenant has no raw topic), 503 with Retry-After (Kafka did not acknowledge
// within SLUICE_GATEWAY_ACK_TIMEOUT, or is unreachable). Some records of a
// failed request may have been written; the client's retry writes them
// again with the same ids.
//
// Record ids are deterministic per request: the id of the record at index
// i is a hash of the tenant, the endpoint, the request's Idempotency-Key
// header (gRPC: idempotency-key metadata) or, without one, the SHA-256 of
// its decompressed body, and i. A retry of a request, as OTLP exporters
// retry on 429 and 503, gives its records the ids they had; the router
// hashes the id with the tenant, message and time into the document id,
// and the indexer's bulk create answers a copy 409 and stores it once. A
// line that has an id of its own (NDJSON) keeps it. Two requests with the
// same key and different records would collide on ids, and the router's
// hash keeps them apart only when their messages or times differ: a key
// names one request.
//
// # Bounds and isolation
//
// Every bound is taken without waiting, so nothing queues behind a
// flooding tenant:
//
//   - SLUICE_GATEWAY_MAX_BODY_BYTES (413, checked against Content-Length
//     first), SLUICE_GATEWAY_MAX_DECOMPRESSED_BYTES (413: a gzip bomb is
//     decompressed no further than the bound), and
//     SLUICE_GATEWAY_MAX_RECORDS_PER_REQUEST (413).
//   - In-flight bytes, per tenant (SLUICE_GATEWAY_TENANT_MAX_INFLIGHT_BYTES)
//     and in all (SLUICE_GATEWAY_MAX_INFLIGHT_BYTES): a body is charged
//     twice its decompressed size while it is read, in 64 KiB steps, so a
//     request that cannot fit is refused (429) while its body is read,
//     before work is spent on it; then its encoded records until Kafka
//     acknowledged them.
//   - Requests in progress, per tenant and in all (429), and connections
//     (SLUICE_GATEWAY_MAX_CONNECTIONS: further ones wait to be accepted).
//   - Kafka's quota throttling of a tenant's user (the client's throttle
//     hook) answers the tenant's next requests 429 with Kafka's delay as
//     Retry-After until it ends, instead of holding them.
//
// A tenant's bounds are below the gateway's, so what one tenant holds
// always leaves room for the others, and each tenant produces through its
// own client (connections, buffers, producer id). A refusal before the
// body was read closes the connection rather than reading the rest. 429
// and 503 answers carry Retry-After (SLUICE_GATEWAY_RETRY_AFTER, or
// Kafka's throttle delay).
//
// # Lifecycle
//
// Run listens, reports ready (/readyz of the telemetry server), closes
// idle clients periodically, and on cancellation reports not ready, stops
// taking connections, lets the requests in progress finish within
// SLUICE_GATEWAY_SHUTDOWN_TIMEOUT (their records acknowledged) and closes
// the clients. It logs its start (addresses, TLS, settings with secrets
// redacted) and stop; 5xx answers are logged as warnings.
//
// # Metrics
//
// Namespace sluice, subsystem gateway; tenant is a tenant whose
// credentials Kafka accepted, or "" for requests refused before:
//
//   - requests_total{tenant,endpoint,code}: answers, by endpoint
//     (otlp_http, otlp_grpc, lines) and HTTP status (gRPC answers counted
//     under the HTTP status their code maps to).
//   - records_total{tenant,outcome}: accepted (acknowledged) or rejected.
//   - received_bytes_total{tenant}: request bodies, decompressed.
//   - rejections_total{tenant,reason}: refused requests and records, by
//     reason (see metrics.go).
//   - ack_seconds{tenant}: from a request's arrival to the acknowledgement
//     of its last record, for 200 answers.
//   - auth_total{result}: cached, verified, denied, error.
//   - kafka_clients, inflight_bytes.
package gateway
