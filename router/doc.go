// Package router is Sluice's router stage, where each tenant's own parse and
// rewrite rules run, isolated from every other tenant's: it consumes every <prefix>.raw.<tenant> topic in a consumer group, applies
// each tenant's pipeline and produces to <prefix>.parsed.<tenant>[.<dataset>]
// or <prefix>.dlq.<tenant>, inside Kafka transactions. The pipeline engine
// (pipeline documents, steps, expressions) is described first; the stage
// (Router, the config topic) after it. Pipeline authors have their own
// reference, docs/pipelines.md, whose examples are run as tests; the
// router's place between the other stages is in docs/architecture.md.
//
// # Pipeline documents
//
// One YAML document per tenant:
//
//	tenant: shop             # a tenant id (kafka.ValidateTenant)
//	version: 3               # integer >= 1, increases with every apply
//	steps:                   # applied in order, at most MaxSteps
//	  - json: {field: log, depth: 5}
//	  - rename: {from: msg, to: message}
//	  - drop: {if: 'attributes["level"] == "debug"'}
//	  - route: {if: 'attributes["audit"] == true', dataset: audit}
//	tests:                   # run by Load; at most MaxTests
//	  - name: parses json
//	    input: {log: '{"level":"info","msg":"hi"}', stream: stdout}
//	    expect: {dataset: "", attributes: {level: info, message: hi}}
//
// Decoding is strict: unknown keys and step types are errors, and so are
// YAML anchors and aliases and more than one document. Parse reports every
// problem at once as *SpecError values (line, column, message) joined with
// errors.Join. Lines of YAML syntax errors are those yaml.v3 reports, which
// can be one line early. What is accepted but should change (a deprecated
// key) is a Warning, in Spec.Warnings: sluice pipeline validate, test and
// apply print them, and sluice-controller reports them.
//
// # Field references
//
// Keys named field, from, to and fields take a field reference:
//
//   - log, stream and timestamp are the record's fields;
//   - attributes.K is the attribute with key K (for keys such as "log");
//   - any other name is the attribute with exactly that key; keys are
//     flattened and dotted, so user.id is the attribute "user.id".
//
// Reading a missing attribute, or an empty log or stream or a zero
// timestamp, finds nothing. Writing log or stream stores the value's
// string form; writing timestamp needs a time or an RFC 3339 string.
// Removing a record field empties it. Parse steps always write
// attributes, under the keys they produce.
//
// # Steps
//
// Every step but multiline takes if and on_error. if (an expression) runs
// the step only when it is true; on drop, keep and route it is the step's
// own condition instead. on_error says what a failing step does to the
// record: dead_letter (the default; dlq is the same) sends it to the
// dead-letter topic, skip lets it go on, and keep_going lets it go on with
// the error added to its _errors attribute (ErrorsKey), one line per
// error: "step <n> (<type>): <error>". A failing step has changed nothing,
// and an if that fails to evaluate is the step's failure. A record over
// its cost bounds is dead-lettered whatever on_error says.
//
// Parse steps take field (default log). A parse step changes nothing
// unless it succeeds.
//
//   - json {field, depth, prefix}: the field holds one JSON object; its
//     leaves become attributes with dotted keys, under prefix when given
//     (prefix: body puts "error" at body.error).
//     Objects deeper than depth (default DefaultJSONDepth, at most
//     MaxJSONDepth) are kept as their JSON text, and so are arrays holding
//     objects or arrays, or more than MaxArrayItems items; other arrays are
//     array attributes ([]any of scalars). Integral numbers that fit are
//     int64, others float64. With duplicate keys, the later value of a
//     flattened key wins.
//   - logfmt {field, prefix}: key=value pairs (under prefix, as json's),
//     values as strings, quoted
//     values unquoted, a bare key is true. A line without any key=value
//     pair is an error.
//   - regex {field, pattern}: an RE2 pattern (linear time) of at most
//     MaxPatternLen bytes with at least one named group; each named group
//     that matched becomes a string attribute. No match is an error. The
//     compiled pattern has at most MaxRegexInsts instructions (counted
//     repetition such as {1,1000} multiplies it).
//   - csv {field, columns | header, delimiter, types}: one delimited line
//     (RFC 4180 quoting; delimiter "," by default, '\t' for TSV) into the
//     attributes columns (or the header line) name; fewer values leave the
//     last columns out, more are an error.
//   - grok {field, pattern}: a grok pattern, or a list tried in order
//     (the first that matches sets its captures): RE2 with named parts,
//     %{NAME} (matched, not kept), %{NAME:field} (kept as the attribute
//     field, dots allowed) and %{NAME:field:type}, type one of string,
//     int, float, bool (true/false, yes/no, on/off, 1/0), ip (checked,
//     written in its canonical form), duration (1.5s, 120ms, 2h45m or a
//     number: seconds), bytes (512, 10KB, 1.5MiB: bytes) and timestamp
//     (ISO 8601, written as RFC 3339 in UTC). json, logfmt, regex and csv take
//     the same types as types: {attribute: type}. A typed value that is
//     empty, "-" or null is absent; one that does not convert fails the
//     step. Plain
//     (?P<name>...) groups are kept as in a regex step. NAME is one of
//     the built-in patterns (grok-patterns.txt: Logstash's core names,
//     such as IP, IPORHOST, HOSTNAME, NUMBER, INT, WORD, NOTSPACE, DATA,
//     GREEDYDATA, QS, UUID, URI, URIPATHPARAM, HTTPDATE,
//     TIMESTAMP_ISO8601, SYSLOGTIMESTAMP, LOGLEVEL, COMMONAPACHELOG,
//     COMBINEDAPACHELOG, SYSLOGBASE, and the ready parsers NGINX_ACCESS,
//     NGINX_INGRESS, APACHE_ACCESS, SYSLOG3164, SYSLOG5424 and
//     ENVOY_ACCESS, with fields named as the formats name them) or one of
//     the pipeline's own,
//     given at the top of the document as patterns: {NAME: pattern},
//     which may use the others and replace a built-in one of the same
//     name. Everything is expanded and compiled once, when the pipeline
//     is loaded, with a regex's bounds on the compiled program.
//   - klog {field, timezone}: the klog/glog header "Lmmdd hh:mm:ss.uuuuuu pid
//     file:line] msg" sets attributes severity (info, warning, error,
//     fatal), pid, file, line and message, and the record's timestamp (in
//     timezone, default UTC, as a timestamp step's;
//     the year is taken from the record's timestamp, else its observed
//     timestamp, else now, one year back if that puts it more than 7 days
//     ahead).
//     A structured message (klog's InfoS/ErrorS: "Pod updated" pod="a/b"
//     err="x") becomes message, unquoted, and one string attribute per
//     key="value" pair; a message of any other form is kept whole.
//   - timestamp {field, layout, timezone}: sets the record's timestamp
//     from the field. layout is one layout or a list tried in order: a Go
//     layout, a Go layout name (RFC3339, RFC3339Nano, DateTime, ...), a
//     strftime layout (%Y-%m-%d %H:%M:%S.%f %z; %f after a '.' or ','
//     takes any number of digits), ISO8601 (date and time with T or a
//     space, optional fraction, Z, +01:00, +0100, +01 or no zone) or an
//     epoch: unix, unix_ms, unix_us, unix_ns (integers, decimals or
//     numeric strings, converted exactly). A time written without a zone
//     is in timezone: an IANA name (Europe/Paris) or an offset (+01:00);
//     default UTC.
//
// Rewrite steps:
//
//   - set {field, value | expr}: a scalar value or a list of scalars, or
//     an expression's result (ints become int64, times RFC 3339 strings,
//     lists of scalars arrays, other lists and maps JSON).
//   - rename {from, to} and copy {from, to}: nothing happens when from is
//     missing.
//   - remove {fields}.
//   - lift {field}: moves attributes "field.x" to "x", overwriting.
//
// Filters and routes:
//
//   - drop {if} and keep {if}: drop the record when the condition is true
//     (drop) or false (keep).
//   - sample {one_in | rate, key}: keeps 1 record in one_in, or the
//     fraction rate (0 < rate <= 1), deterministically by a hash of key: an
//     expression (attributes.trace_id keeps or drops a trace's records
//     together), by default the record id (its log when the id is empty).
//   - route {if, dataset, copy}: the first route whose condition is true
//     (a route without if always is: put it last, as the default) sends
//     the record to its dataset, the topic
//     <prefix>.parsed.<tenant>.<dataset> (indexed into
//     <prefix>-<tenant>.<dataset>-YYYY.MM.DD); dataset may be a list, the
//     first getting the record and the others copies. A route with
//     copy: true sends copies to its datasets and leaves the record's
//     own way to the other routes. Later routes do not change where a
//     routed record goes, and other steps still run; with no match the
//     record goes to the main parsed topic. Each copy is a record of its
//     own, counted and produced in the same transaction; a copy whose
//     dataset topic is missing is dead-lettered alone. Dataset names
//     follow kafka.ValidateDataset. stream, the key's former name, is
//     still accepted with a Warning (it is also the name of the record's
//     stdout/stderr field, which it has nothing to do with); giving both
//     is an error.
//
// Joining lines:
//
//   - multiline {continuation, max_lines, max_bytes, max_wait}: must be the
//     first step. A record whose log matches the continuation regex (for
//     example '^(\s+at |Caused by: )') is appended, after a newline, to
//     the record before it from the same container (partition and record
//     key), up to max_lines lines (default DefaultMultilineLines) and
//     max_bytes bytes (default DefaultMultilineBytes); the joined record
//     keeps the first line's id and metadata, and is flagged invalid_utf8
//     or partial when any of its lines is. The router does the joining
//     before the other steps. When a fetch ends with a record still open
//     whose last line is younger than max_wait (default 1s, at most
//     MaxMultilineWait), that partition alone is held back (rewound and
//     paused) until max_wait has passed, once, and then read again with
//     whatever lines came meanwhile; other partitions and tenants go on.
//     Joined records never span transactions, so a crash replays them
//     whole. Process sees records already joined; a pipeline's tests:
//     give lines: (a list of one container's lines, joined as the router
//     joins them; expect: records: N checks how many records they make),
//     and sluice pipeline test joins consecutive input lines.
//
// # Errors
//
// A pipeline that does not compile is refused with every problem, each at
// its line and column: a problem with a pattern or an expression is shown
// at the part of it at fault (the bad part of a regex, the %{...} of a
// grok pattern, the name an expression does not know), also inside a |
// block.
//
// # Expressions
//
// if and expr use github.com/expr-lang/expr, compiled once per pipeline
// version against this environment: tenant, id, stream, log, namespace,
// pod, container (strings), timestamp (time.Time), attributes
// (map[string]any; attributes.level or attributes["user.id"]) and
// kubernetes, the record's Kubernetes metadata under its JSON field names
// (namespace_name, pod_name, pod_id, container_name, docker_id, host,
// container_image; the maps labels, annotations and namespace_labels, as in
// kubernetes.namespace_labels["team"], where a missing key reads as ""; and
// workload.kind and workload.name). A condition
// must be boolean (checked at compile time where types are known, and at
// run time). A missing attribute is data, not an error: comparisons (<,
// <=, >, >=), in, contains, startsWith, endsWith and matches with a nil
// operand are false, and == and != compare with nil.
//
// Functions: len, int, float, string, upper, lower, trim, trimPrefix,
// trimSuffix, indexOf, lastIndexOf, hasPrefix, hasSuffix, split,
// splitAfter, replace, repeat, join, toJSON, fromJSON, toBase64,
// fromBase64, keys, values, max, min, abs, ceil, floor, round, type,
// first, last, now; for redaction and shaping, replaceRegex(s, pattern,
// repl) (RE2; repl may use $1 or ${name}), sha256(s) and sha256(s, salt)
// (hex; the salt is in the pipeline, for its readers to see),
// pseudonym(s) (hex HMAC-SHA256 under the tenant's secret key; see
// Pseudonyms), mask(s) and mask(s, keep) (all characters but the last keep
// become *), truncate(s, n) (at most n bytes, whole characters),
// parseURL(s) (a map of scheme, user, host, port, path, fragment and
// query, the first value of each parameter) and parseUserAgent(s) (a map
// of a User-Agent header's browser, browser_version, os, device: desktop,
// mobile, tablet, tv or bot, and bot, a bool; "" for what it does not
// recognise; it reads the first MaxUserAgentLen bytes), as in
// parseUserAgent(attributes.agent).device == "mobile"; the loops all,
// none, any, one, filter, map, find, findIndex, findLast, findLastIndex,
// count, sum and reduce. Other expr builtins (concat, sort, groupBy, ...)
// are refused at compile time.
//
// Cost is bounded. At compile time: at most MaxExprLen bytes and
// MaxExprNodes syntax nodes, no nested loops (a predicate inside a
// predicate), regexes (regex steps and constant matches patterns) of at
// most MaxRegexInsts compiled instructions. At run time, every function
// and operator that can allocate or scan in proportion to its input is
// metered and charged before it allocates, whatever its operands' static
// types: each record has MaxRecordCost work units and ExprAllocBudget
// bytes for all its steps together. What counts: bytes read and written
// by functions and operators (+ on strings, comparisons, in, contains,
// computed keys a[k], ...), 4 units per call, a loop's elements × its
// body's nodes × 4 before it starts, len(input) × instructions for every
// regex (regex steps, matches), 4 per input byte for json steps,
// fromJSON and parseUserAgent, 1 for logfmt; bytes allocated by
// functions, and lists and maps stored by set (as JSON). The VM memory budget ExprMemoryBudget
// bounds ranges and literals per evaluation, and a record that has used a
// sixteenth of MaxRecordCost and is still in Process after MaxRecordTime
// stops before its next step (wall time alone does not stop a record: a
// paused or overloaded process must not dead-letter cheap records). A record over
// any of these goes to the DLQ with ReasonCostExceeded at the step that
// ran out; the pipeline stays in service.
//
// # Pseudonyms
//
// pseudonym(s) is the hex HMAC-SHA256 of s under the tenant's secret key,
// which the platform's operator gives each tenant and no pipeline holds:
// a salt in the pipeline (sha256(s, salt)) is seen by whoever reads the
// pipeline (its config topic, sluice pipeline get), who can then find a
// low-entropy value (an email, a user id) from its hash by trying
// candidates; without the key they cannot. Keys are files of the
// directory SLUICE_ROUTER_PSEUDONYM_KEYS_DIR, one per tenant, named by the
// tenant id, holding the key (trailing white space trimmed; at least
// MinPseudonymKeyLen bytes): the layout of a Kubernetes Secret mounted as
// a volume (Helm value router.pseudonymKeys.secretName). The router reads
// it at startup (and does not start if it cannot) and every 30s, so a
// key added, changed or removed in the Secret takes effect without a
// restart; names starting with a dot (..data and the kubelet's hidden
// directories) are skipped. A file that is too short, too long or not
// named by a tenant id is refused (logged once, counted in
// pseudonym_key_errors_total at every reading), and its tenant keeps the
// key it had; pseudonym_keys is the number in force. Keys never appear in
// logs, errors, metrics or status: PseudonymKey prints as [redacted].
//
// A tenant's key is its own: one value gets different pseudonyms in two
// tenants, and a rotated key changes every pseudonym from then on. The
// router passes the key in force to ProcessWithKey for each record; Process
// has none. Without a key, pseudonym fails with ReasonPseudonymKeyMissing
// (wrapping ErrNoPseudonymKey), which the step's on_error handles like any
// function error; it is the operator's setting, not the pipeline's fault,
// so it never retires a version (the version before might not pseudonymize
// at all). A pipeline's tests, sluice pipeline validate and sluice pipeline
// test use TestPseudonymKey ("sluice-test-key", public), never a tenant's
// key: their expected values are stable and tell nothing of a real key.
//
// # Processing
//
// Compile, Load and PassThrough return an immutable *Pipeline, safe for
// concurrent use. Process mutates the record in place and returns a
// Result: the dataset ("" = main topic), dropped, or a DLQ *Failure with a
// bounded Reason (ReasonParse, ReasonTimestamp, ReasonExpr, ReasonField,
// ReasonCostExceeded, ReasonPseudonymKeyMissing, ReasonPanic). Process
// never panics. After the steps, attributes beyond
// MaxAttributes (sorted by key, the first MaxAttributes-1 are kept) move
// into OverflowKey as one JSON object string, so that no record can carry
// an unbounded number of fields into Elasticsearch's mappings.
//
// # Tests
//
// A test gives input (a partial record with schemas.Record's JSON field
// names) or line (the log text), and expect: dataset ("" for the main
// parsed topic; stream, its former name, is accepted with a Warning),
// copies (the datasets that get copies), dropped, dlq, log, timestamp,
// attributes (a subset; numbers compare by value) and absent (attribute
// keys that must not exist). Its id defaults to the test name.
//
// # The stage
//
// New checks the configuration and starts nothing; Run blocks.
//
// Topics and ownership. Each tenant's pipeline lives in its own compacted,
// one-partition topic <prefix>.config.<tenant> (key "pipeline"; an empty
// value deletes it), which sluice tenant create makes and only that tenant
// (and administrators) may write, by Kafka ACL: Kafka cannot restrict by
// record key, so one topic per tenant is what lets tenants apply their own
// pipelines without reaching anyone else's. The tenant is the topic's,
// never the document's: a document naming another tenant is refused by
// sluice pipeline apply (it would be written to that tenant's topic, which
// the credentials cannot write) and ignored by routers, with the reason in
// status.
//
// Status. Routers write <prefix>.status (compacted; routers read and write
// it, operators read it, tenants cannot): status/<tenant>/<router> (a
// RouterStatus: versions seen and applied, last error, why and until when
// the tenant is paused), good/<tenant> (GoodPipeline) and retired/<tenant>
// (Retired). Tenants see their own status in <prefix>.status.<tenant>,
// which routers write with the same status records and the tenant may only
// read: a per-tenant topic rather than keys in the tenant's config topic,
// because the tenant could write any key there and so forge what routers
// report. Tenant A has no ACL on B's status topic. A router publishes a
// tenant's status when it changes (batched, at most once a second) and
// every SLUICE_ROUTER_STATUS_HEARTBEAT, asynchronously through one
// non-transactional client, and tombstones its own status keys when it
// stops cleanly: 10,000 tenants take a few produce requests.
//
// The legacy <prefix>.config (key = tenant) is still read, never written:
// a tenant's pipeline there is applied until the tenant's own config topic
// holds a pipeline record, after which the legacy record is ignored. To
// move a tenant, run sluice tenant create for it and apply its pipeline
// with sluice pipeline apply; the legacy record can then be tombstoned.
//
// Run makes sure <prefix>.status exists and is compacted, then follows
// every <prefix>.config.<tenant> (by regular expression; new ones are found
// within SLUICE_ROUTER_RESCAN_INTERVAL), the legacy topic and the good/ and
// retired/ keys of <prefix>.status from their start; it consumes once it
// has caught up. If following stops, Run returns an error so the process
// restarts. It then consumes with a GroupTransactSession (static membership
// when SLUICE_ROUTER_ID is set, so a restarted router takes its place back
// without a rebalance). Each poll (whole fetches: at most 1 MiB compressed
// per broker) is one transaction: produce, commit the consumed offsets
// with it, or abort and consume it all again. A router killed at any
// moment, or a rebalance, neither loses nor duplicates records for
// read_committed consumers. Transactions left open by routers of the group
// that are gone (a crashed Deployment pod never comes back under its name)
// are fenced after 15s, so they do not hold read_committed consumers until
// the transaction timeout.
//
// Each tenant's records of a poll are processed in a goroutine of their
// own, so a router uses all its cores; a transaction waits for them at
// most SLUICE_ROUTER_BATCH_MAX_TIME. A tenant not done by then is left out
// of it: its partitions are rewound and paused, its processing goes on in
// the background (on at most half the cores) and its outputs are kept,
// and used when its partitions are read again; the next transactions go on
// without waiting for it. A slow pipeline so delays only its own tenant
// (tenant_throttled_total counts it). Processing time per tenant is
// tenant_processing_seconds_total.
//
// Input. The tenant is the topic's, never the payload's. A value is Avro
// (single-object or Confluent), a JSON object, or a line of text. A JSON
// object with a "log" key fills the record's fields; any other JSON object
// is an application's log line and becomes log as a whole (nothing in it is
// lost; a json step parses it). Text becomes log, invalid UTF-8 replaced and
// flagged. A raw record larger than SLUICE_ROUTER_MAX_RECORD_BYTES is not
// decoded: it goes to the dead-letter topic (reason too_large, payload
// cut). Kafka's size limits count compressed bytes, so a record batch is
// decompressed with a bound (SLUICE_ROUTER_MAX_BATCH_BYTES, and at most 64
// times its compressed size): a batch over it is read with its large
// records cut to their first 64 KiB, which go to the dead-letter topic as
// too_large without being decoded (see internal/kafka's bounded
// decompressor). A batch that cannot be cut to fit (millions of tiny
// records) is dead-lettered whole and skipped.
//
// Record ids. The id becomes the Elasticsearch document id. A producer's
// id is hashed with the tenant and the record's content (log and the
// producer's timestamp): two different records sent with one id stay two
// documents, and a re-send of a record keeps its id. A record without an
// id gets one from its topic, partition and offset. Without times, the
// Kafka timestamp is used.
//
// Isolation. A pipeline version that fails to load (validation, compile,
// its own tests, even a panic) leaves the version in force alone. When
// nothing is in force yet (a router starting) the tenant's last good
// version, good/<tenant> in <prefix>.status, is applied instead of
// pass-through: every router records there each version it applies
// successfully. Data never retires a version: a record-level error (a
// line a parse step cannot read, an expression failing on this record's
// values, a cost limit) only dead-letters that record. A version is
// retired only when it panics, or when it fails with expression or field
// errors on every record for at least 1,000 records and one minute with no
// success. Retirement is published as retired/<tenant>, so every router
// following <prefix>.status retires the same version, also after a
// restart; the previous version, else the last good one, else
// pass-through takes over and the record is processed again. A newer
// version applied later is applied normally. Either way the error is
// counted and published
// as the tenant's status (sluice pipeline get shows it). A tenant whose
// output topic is missing is paused (its raw topics are not fetched, with
// doubling waits up to SLUICE_ROUTER_TENANT_RETRY_MAX); the transaction that
// found out is aborted and replayed without it (why, and when it is tried
// again, are in its status): for exactly-once, the other
// tenants' records in that batch are replayed too, so they wait one
// transaction. A record too large to produce once processed goes to the
// dead-letter topic, its payload cut to fit. Data errors (a line a parse step cannot parse,
// a timestamp that does not parse) send that record to the dead-letter
// topic as a JSON schemas.DeadLetter: reason, error, step, pipeline version, source
// topic/partition/offset and the payload (base64 when not UTF-8).
//
// # Metrics
//
// Namespace sluice, subsystem router: records_in_total, records_out_total,
// records_dropped_total{reason}, dlq_total{reason}, step_errors_total
// {step_type}, pipeline_load_errors_total, pipeline_fallbacks_total and the
// pipeline_version gauge (all per tenant), latency_seconds (a histogram
// of all tenants, from the raw record's append) and per tenant
// tenant_latency_seconds_total (its sum: with records_in_total, the
// tenant's mean), tenant_processing_seconds_total,
// tenant_throttled_total, multiline_holds_total (per tenant),
// transactions_total{result}, transaction_seconds, transactions_fenced_total,
// tenants_paused, pseudonym_keys and pseudonym_key_errors_total{reason};
// and the Kafka client's sluice_kafka_*.
package router
