package schemas

import "errors"

// Sentinel errors. Every error returned by a decoder or encoder in this
// package wraps exactly one of them, so callers classify with errors.Is and
// label metrics with Reason.
var (
	// ErrUnknownFormat: the bytes are not any encoding this package knows
	// (not single-object Avro, not Confluent framing, not a JSON object).
	// The router treats such a value as a plain-text line.
	ErrUnknownFormat = errors.New("unknown format")

	// ErrUnknownSchema: the framing is recognised but the schema it names is
	// not: a single-object fingerprint of no embedded version that the
	// schema source (if any) does not have either, a Confluent schema id the
	// registry does not have, or a schema that is non-Avro or otherwise
	// unusable, including one no LogRecord can be resolved from. Permanent
	// for that record.
	ErrUnknownSchema = errors.New("unknown schema")

	// ErrMalformed: the framing and schema are known but the body does not
	// decode (truncated, bad lengths, wrong JSON field types, trailing bytes).
	// Permanent for that record.
	ErrMalformed = errors.New("malformed record")

	// ErrNoRegistry: a Confluent-framed value reached a Decoder built without
	// a schema registry. Permanent until the configuration changes.
	ErrNoRegistry = errors.New("no schema registry configured")

	// ErrRegistry: the schema registry, or the schema source of
	// WithSchemaSource, could not be asked (network, 5xx, cancelled
	// context). Retryable.
	ErrRegistry = errors.New("schema registry unavailable")

	// ErrInvalidRecord: an encoder was given a Record it cannot represent,
	// such as an attribute value of an unsupported Go type, or a NaN or
	// infinite float for JSON.
	ErrInvalidRecord = errors.New("invalid record")
)

// Reason returns a short, bounded label for err, for the reason label of the
// stage metrics: "unknown_format", "unknown_schema", "malformed",
// "no_registry", "registry", "invalid_record", or "other" for an error that
// wraps none of this package's sentinels (including nil).
func Reason(err error) string {
	switch {
	case errors.Is(err, ErrUnknownFormat):
		return "unknown_format"
	case errors.Is(err, ErrUnknownSchema):
		return "unknown_schema"
	case errors.Is(err, ErrMalformed):
		return "malformed"
	case errors.Is(err, ErrNoRegistry):
		return "no_registry"
	case errors.Is(err, ErrRegistry):
		return "registry"
	case errors.Is(err, ErrInvalidRecord):
		return "invalid_record"
	default:
		return "other"
	}
}
