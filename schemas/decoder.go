package schemas

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
)

// Decoder decodes Records in any format, telling them apart by their first
// bytes (see Decode). Its only state is the cache of schemas fetched from the
// registry and the schema source. Build it with NewDecoder; safe for
// concurrent use.
type Decoder struct {
	registry *sr.Client
	source   SchemaSource
	now      func() time.Time

	// known are the versions this decoder reads as they are (the embedded
	// ones; tests load fewer), by fingerprint; reader is the newest of
	// them, onto which every other schema is resolved.
	known  map[uint64]*avroSchema
	reader *avroSchema

	mu      sync.RWMutex
	byID    map[uint32]*avroSchema // nil value: the id's schema is unusable
	missing map[uint32]time.Time   // ids the registry did not have, and when
	byFP    map[uint64]*avroSchema // from the source; nil value: unusable
	missFP  map[uint64]time.Time   // fingerprints the source did not have, and when
}

// SchemaSource returns the text of the writer schema whose Rabin
// fingerprint (CRC-64-AVRO of its Parsing Canonical Form) is fingerprint,
// as single-object encoding names it. It returns an error wrapping
// ErrUnknownSchema when it has no such schema, and any other error when it
// could not be asked. It may block, bounded by ctx, and must be safe for
// concurrent use. internal/kafka's SchemaSource reads <prefix>.schemas,
// where writers publish the versions they embed.
type SchemaSource func(ctx context.Context, fingerprint uint64) (string, error)

// DecoderOption configures a Decoder.
type DecoderOption func(*Decoder)

// WithRegistry lets the Decoder decode the Confluent wire format by looking
// schema ids up through cl. Without it, Confluent-framed values fail with
// ErrNoRegistry.
func WithRegistry(cl *sr.Client) DecoderOption {
	return func(d *Decoder) { d.registry = cl }
}

// WithSchemaSource lets the Decoder read single-object values whose
// fingerprint names no embedded version, written by a newer Sluice during a
// rolling upgrade (or by any producer that publishes its schema there): the
// writer schema is looked up through src, and records are resolved onto
// the newest embedded version, fields this binary does not know kept in
// Record.Unknown. Lookups are cached like registry ids: a schema for the
// life of the Decoder, a fingerprint the source does not have for a minute
// (at most 1024 of them). Without it, such values fail with
// ErrUnknownSchema.
func WithSchemaSource(src SchemaSource) DecoderOption {
	return func(d *Decoder) { d.source = src }
}

// NewDecoder returns a Decoder. It contacts nothing; schemas are fetched
// lazily.
func NewDecoder(opts ...DecoderOption) *Decoder {
	d := &Decoder{
		now:     time.Now,
		known:   byFingerprint,
		reader:  currentSchema(),
		byID:    make(map[uint32]*avroSchema),
		missing: make(map[uint32]time.Time),
		byFP:    make(map[uint64]*avroSchema),
		missFP:  make(map[uint64]time.Time),
	}
	for _, o := range opts {
		o(d)
	}
	return d
}

// Decode decodes b, choosing the format by its first bytes:
//
//	C3 01                       Avro single-object (DecodeSingleObject, and
//	                            the schema source for other fingerprints)
//	00                          Confluent wire format (DecodeConfluent)
//	{ after optional whitespace JSON (DecodeJSON)
//
// Anything else, including an empty value and text that starts with "{" but
// is not JSON, fails with an error wrapping ErrUnknownFormat and
// FormatUnknown; callers such as the router then treat the value as a plain
// text line. Otherwise the format is reported even when decoding fails, for
// metrics. Errors wrap one of the package's sentinel errors (see Reason).
//
// Decode never panics, whatever b holds, and blocks only to fetch a schema
// from the registry or the schema source, bounded by ctx. The Record does
// not retain b.
func (d *Decoder) Decode(ctx context.Context, b []byte) (Record, Format, error) {
	f := Sniff(b)
	var (
		r   Record
		err error
	)
	switch f {
	case FormatSingleObject:
		r, err = d.decodeSingleObject(ctx, b)
	case FormatConfluent:
		r, err = d.DecodeConfluent(ctx, b)
	case FormatJSON:
		r, err = DecodeJSON(b)
		if errors.Is(err, ErrUnknownFormat) {
			f = FormatUnknown
		}
	default:
		return Record{}, FormatUnknown, fmt.Errorf("decode: %s: %w", describePrefix(b), ErrUnknownFormat)
	}
	return r, f, err
}

// Sniff returns the format b appears to be in from its first bytes, as
// Decode dispatches, without decoding it.
func Sniff(b []byte) Format {
	if len(b) == 0 {
		return FormatUnknown
	}
	switch {
	case b[0] == singleObjectMagic[0]:
		// C3 01 is not valid UTF-8, so no text line starts with it; C3
		// followed by anything else is an ordinary UTF-8 letter.
		if len(b) > 1 && b[1] == singleObjectMagic[1] {
			return FormatSingleObject
		}
		return FormatUnknown
	case b[0] == 0:
		return FormatConfluent
	}
	if i := skipJSONSpace(b); i < len(b) && b[i] == '{' {
		return FormatJSON
	}
	return FormatUnknown
}

// describePrefix names what an unknown value starts with, for error text.
func describePrefix(b []byte) string {
	if len(b) == 0 {
		return "empty value"
	}
	n := min(len(b), 4)
	return fmt.Sprintf("%d-byte value starting % x", len(b), b[:n])
}
