// Package schemas is the record contract of Sluice: the Record type every
// stage exchanges, its Avro schema, and the codecs that put it on and take it
// off Kafka. How the stages pass it along is in docs/architecture.md.
//
// # Wire formats
//
// A Kafka value holds one Record in one of three formats, recognised by its
// first bytes (Sniff, Decoder.Decode):
//
//   - Avro single-object encoding, the default (FormatSingleObject, "avro"):
//     C3 01, the 8-byte little-endian Rabin fingerprint (CRC-64-AVRO) of the
//     writer schema's Parsing Canonical Form, then the Avro binary body. No
//     registry is needed; the fingerprint names an embedded schema version.
//     Written by AppendSingleObject / SingleObjectEncoder.
//   - Confluent wire format (FormatConfluent, "confluent"), when a schema
//     registry is configured: 00, the 4-byte big-endian schema id, then the
//     same Avro body. The schema is registered under "<topic>-value".
//     Written by ConfluentEncoder; decoding needs a Decoder built
//     WithRegistry.
//   - JSON (FormatJSON, "json"): an object with the Record's json field
//     names, as external producers may send. Written by AppendJSON /
//     JSONEncoder; see json.go for the exact mapping.
//
// Anything else is ErrUnknownFormat, which the router treats as a plain-text
// line.
//
// # Schema versions
//
// The Avro schema lives in avro/logrecord.vN.avsc, one file per version,
// all embedded with go:embed. logrecord.avsc is a copy of the newest one at
// a fixed path, schemas/logrecord.avsc, for tools and readers (a test keeps the two
// identical). Encoders always write the newest version. Every version ever
// released stays, unedited, because records written with it may still be in
// Kafka and goavro cannot resolve a writer schema into a reader schema: the
// decoders keep fingerprint -> codec for every version (and registry id ->
// codec for the Confluent format), decode with the writer's exact schema,
// then map the result onto Record by field name. A field the writer's version
// lacks is left zero. A schema fetched from the registry that matches an
// embedded version by canonical form uses that version.
//
// Any other writer schema (a version newer than this binary, an external
// producer's schema) is decoded as written and resolved onto the newest
// embedded version by this package (resolve.go), with Avro's resolution
// rules: fields by name, the promotions int -> long -> float -> double and
// string <-> bytes, unions on either side, the reader's defaults for fields
// the writer lacks. Fields the reader does not know are not dropped: they
// are kept in Record.Unknown as JSON text, which the JSON encoder writes
// and the indexer stores under sluice.unknown (the Avro encoders cannot, and
// count what they leave out in UnknownFieldsDropped). A writer schema that
// no LogRecord can be read from (a field both have, of types that do not
// resolve) is ErrUnknownSchema when first seen.
//
// Single-object values name their writer schema by fingerprint only, so a
// Decoder built WithSchemaSource looks fingerprints it does not embed up: in
// Sluice, in the compacted Kafka topic <prefix>.schemas, where routers and
// shippers publish every version they embed at start (internal/kafka
// PublishSchemas and SchemaSource; the same idea as Confluent's registry
// keeping its schemas in the _schemas topic). Confluent-framed values
// always carry a registry id, so the registry serves that purpose for them.
//
// Upgrades: readers first is still the recommended order (indexers, then
// routers, then shippers), because a reader that meets a newer version can
// keep its new fields only as Unknown, and a router re-encoding such a
// record in Avro drops them. A reader that does meet a newer version (a
// rolling upgrade in the other order, a rollback) decodes it through
// <prefix>.schemas instead of dead-lettering it, and the indexer keeps the
// unknown fields under sluice.unknown.
//
// To add a version N+1:
//
//  1. Add the field to Record; its json tag is the Avro field name.
//  2. Write avro/logrecord.v(N+1).avsc, starting from a copy of vN. Never edit
//     a released file (TestSchemaFingerprints pins their fingerprints). Give
//     new fields a "default", so the registry's BACKWARD compatibility check
//     accepts the new version and Avro readers that resolve schemas can
//     still read old data.
//  3. Copy it over logrecord.avsc.
//  4. Update AppendAvro to write the new version and set fastEncoderVersion;
//     the package refuses to initialise until they agree, and
//     TestAppendAvroMatchesGoavro checks the output against goavro.
//     Likewise update decodeFastBody (avro_fastdecode.go) to read it and set
//     fastDecoderVersion and fastDecoderFingerprint; until then the new
//     version decodes through goavro, and TestFastDecoderVersion fails.
//     Keep the previous versions on the fast path too (decodeFastBody reads
//     every version, by fastDecoderFingerprints): consumers are rolled out
//     first (step 7), so for a while most of what they read is still
//     written with them.
//  5. Read the new field in recordFromNative, AppendJSON and jsonRecord.
//  6. Pin the new fingerprint in pinnedFingerprints and write its golden
//     file with go test ./schemas -run TestGolden -update.
//  7. Roll out consumers before producers: indexers, then routers (which
//     write the parsed topics indexers read), then shippers. A decoder
//     built before version N+1 existed finds the new fingerprint in
//     <prefix>.schemas (WithSchemaSource) and keeps the new field in
//     Record.Unknown, but a router re-encoding the record cannot carry it
//     on; without a schema source it rejects the record with
//     ErrUnknownSchema. Confluent-framed records are resolved the same way
//     from the schema the registry returns.
//
// The versions so far: v1; v2 adds partial; v3 adds metadata (how complete
// the Kubernetes metadata is: "" or "partial") and, in kubernetes,
// namespace_labels (map<string>), container_image (string) and workload (a
// record {kind, name}), all with empty defaults; v4 adds an array branch to
// the attribute union (an array of the scalar union), so that lists (tags,
// a JSON array of strings) stay lists through Kafka into Elasticsearch. A
// record read from an older version has the fields it lacks zero. v4 adds
// no field, so a reader of v3 resolves v4 records that hold no array as
// they are, and fails those that do with ErrMalformed (the router dead-
// letters them): one more reason to roll out consumers first.
//
// # What survives a round trip
//
// Decoders return normalised records, and encoding then decoding any Record
// gives its normalised form, in every format:
//
//   - Timestamps are int64 Unix nanoseconds on the wire, 0 meaning unset
//     (JSON: null). The zero time.Time round-trips; an instant exactly at
//     the Unix epoch reads back as the zero time; instants outside
//     1677-09-21..2262-04-11 are clamped to that range; all come back in UTC.
//   - Strings, bools and int64 values come back exactly, including the int64
//     limits. float64 attributes come back bit for bit in Avro (NaN, ±Inf
//     and -0 included); JSON has no NaN or infinity and refuses them with
//     ErrInvalidRecord.
//   - nil and empty maps both come back as nil: Avro cannot tell them apart,
//     and JSON writes both as {} (or, for kubernetes.namespace_labels,
//     leaves both out).
//   - Attribute values of other Go integer and float types (int, uint32,
//     float32, ...) come back as int64 or float64; arrays ([]any of
//     scalars, or []string) come back as []any, in order, an empty one as
//     an empty, non-nil slice; other types, and arrays holding arrays or
//     maps, are ErrInvalidRecord.
//   - Encoders write strings as they are; decoders replace invalid UTF-8
//     with U+FFFD (and set InvalidUTF8 when Log needed it), so a decoded
//     Record is valid UTF-8 throughout.
//
// # Robustness
//
// Decoding never panics, whatever the bytes. goavro would: worse, a few
// bytes claiming a map of 2^31 entries make it reserve tens of gigabytes
// before reading any, so every Avro body is first walked against its schema
// by checkAvro, which bounds lengths, counts and nesting by the input size;
// see avrocheck.go. Each decoder has a fuzz test.
//
// # Errors
//
// Every error wraps one sentinel: ErrUnknownFormat, ErrUnknownSchema,
// ErrMalformed (all permanent for the record), ErrNoRegistry (permanent for
// the configuration), ErrRegistry (retryable) or ErrInvalidRecord (from
// encoders). Reason maps an error to a bounded label for metrics; this
// package exports no metrics of its own.
//
// # Concurrency, blocking and buffers
//
// Encoders and Decoder are safe for concurrent use. Only the Confluent
// format and the schema source block, on the registry or the source, the
// first time a topic (encoder), schema id or unknown fingerprint (decoder)
// is seen; schemas are then cached for the life of the value, ids and
// fingerprints found missing for a minute.
// Append functions append to the caller's buffer and return it extended; on
// error they return it unchanged. The Avro encoders allocate nothing in
// steady state (AppendAvro is hand-written for the shipper's hot path and
// pinned to goavro by tests). Decoded Records never alias the input.
package schemas
