package schemas

import (
	"context"
	"fmt"
)

// Format is a wire format of a Record.
type Format uint8

const (
	// FormatUnknown is what Decode reports for bytes it does not recognise.
	FormatUnknown Format = iota
	// FormatSingleObject is Avro single-object encoding: C3 01, the 8-byte
	// little-endian Rabin fingerprint of the writer schema, the Avro body.
	// The default: no registry needed.
	FormatSingleObject
	// FormatConfluent is the Confluent wire format: 00, the 4-byte
	// big-endian schema registry id, the Avro body.
	FormatConfluent
	// FormatJSON is a JSON object with the Record's field names.
	FormatJSON
)

var formatNames = [...]string{"unknown", "avro", "confluent", "json"}

// String returns the name ParseFormat accepts: "avro", "confluent" or
// "json" ("unknown" for FormatUnknown).
func (f Format) String() string {
	if int(f) < len(formatNames) {
		return formatNames[f]
	}
	return fmt.Sprintf("Format(%d)", uint8(f))
}

// ParseFormat parses a format name as written by Format.String, for
// configuration.
func ParseFormat(s string) (Format, error) {
	for f := FormatSingleObject; int(f) < len(formatNames); f++ {
		if s == formatNames[f] {
			return f, nil
		}
	}
	return FormatUnknown, fmt.Errorf("parse format %q: want avro, confluent or json", s)
}

// Encoder appends Records in one wire format. The implementations are
// SingleObjectEncoder, *ConfluentEncoder and JSONEncoder; all are safe for
// concurrent use.
type Encoder interface {
	// Format reports the wire format written.
	Format() Format
	// AppendEncode appends the encoding of r to dst and returns the extended
	// buffer; on error dst is returned unchanged. topic is the Kafka topic
	// the value is for; only the Confluent format uses it (the schema is
	// registered under "<topic>-value"), and only it may block, on the
	// registry, bounded by ctx. r is only read during the call.
	AppendEncode(ctx context.Context, dst []byte, topic string, r *Record) ([]byte, error)
}

// SingleObjectEncoder writes Avro single-object encoding with the current
// schema version (see AppendSingleObject). It never blocks.
type SingleObjectEncoder struct{}

// Format returns FormatSingleObject.
func (SingleObjectEncoder) Format() Format { return FormatSingleObject }

// AppendEncode calls AppendSingleObject; ctx and topic are unused.
func (SingleObjectEncoder) AppendEncode(_ context.Context, dst []byte, _ string, r *Record) ([]byte, error) {
	return AppendSingleObject(dst, r)
}

// JSONEncoder writes the JSON form (see AppendJSON). It never blocks.
type JSONEncoder struct{}

// Format returns FormatJSON.
func (JSONEncoder) Format() Format { return FormatJSON }

// AppendEncode calls AppendJSON; ctx and topic are unused.
func (JSONEncoder) AppendEncode(_ context.Context, dst []byte, _ string, r *Record) ([]byte, error) {
	return AppendJSON(dst, r)
}

var (
	_ Encoder = SingleObjectEncoder{}
	_ Encoder = JSONEncoder{}
	_ Encoder = (*ConfluentEncoder)(nil)
)
