package schemas

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
)

// confluentHeaderLen is the magic byte plus the 4-byte schema id.
const confluentHeaderLen = 5

// ConfluentEncoder writes the Confluent wire format: 00, the schema id the
// registry gave the current schema version under "<topic>-value" (4 bytes,
// big-endian), then the same Avro body AppendAvro writes.
//
// Ids are cached per topic for the life of the encoder: the first
// AppendEncode for a topic (or Register) blocks on the registry, later ones
// do not and allocate nothing. A subject deleted and re-created in the
// registry while the encoder runs keeps the old id until restart. Safe for
// concurrent use; concurrent first calls for one topic may register twice,
// which the registry answers with the same id.
type ConfluentEncoder struct {
	cl     *sr.Client
	schema sr.Schema

	mu  sync.RWMutex
	ids map[string]uint32 // topic -> schema id
}

// NewConfluentEncoder returns an encoder that registers schemas through cl.
// It does not contact the registry.
func NewConfluentEncoder(cl *sr.Client) *ConfluentEncoder {
	return &ConfluentEncoder{
		cl:     cl,
		schema: sr.Schema{Schema: currentSchema().info.Text, Type: sr.TypeAvro},
		ids:    make(map[string]uint32),
	}
}

// Format returns FormatConfluent.
func (e *ConfluentEncoder) Format() Format { return FormatConfluent }

// Register registers the current schema version under "<topic>-value" (or
// finds it already registered) and caches the id. Call it at startup to fail
// fast on a misconfigured registry. Errors wrap ErrRegistry.
func (e *ConfluentEncoder) Register(ctx context.Context, topic string) (int, error) {
	e.mu.RLock()
	id, ok := e.ids[topic]
	e.mu.RUnlock()
	if ok {
		return int(id), nil
	}
	subject := topic + "-value"
	got, err := e.cl.RegisterSchema(ctx, subject, e.schema, -1, -1)
	if err != nil {
		return 0, fmt.Errorf("register schema v%d under %s: %w: %w", currentSchema().info.Version, subject, ErrRegistry, err)
	}
	if got < 0 || got > math.MaxUint32 {
		return 0, fmt.Errorf("register schema under %s: registry returned id %d, not a uint32: %w", subject, got, ErrRegistry)
	}
	e.mu.Lock()
	e.ids[topic] = uint32(got)
	e.mu.Unlock()
	return got, nil
}

// AppendEncode appends r in the Confluent wire format for topic to dst and
// returns the extended buffer; on error dst is returned unchanged. Errors
// wrap ErrRegistry (registration failed) or ErrInvalidRecord.
func (e *ConfluentEncoder) AppendEncode(ctx context.Context, dst []byte, topic string, r *Record) ([]byte, error) {
	e.mu.RLock()
	id, ok := e.ids[topic]
	e.mu.RUnlock()
	if !ok {
		got, err := e.Register(ctx, topic)
		if err != nil {
			return dst, err
		}
		id = uint32(got)
	}
	n := len(dst)
	dst = append(dst, 0)
	dst = binary.BigEndian.AppendUint32(dst, id)
	out, err := AppendAvro(dst, r)
	if err != nil {
		return dst[:n], err
	}
	return out, nil
}

// How long a Decoder remembers that the registry does not know a schema id,
// and how many such ids it remembers. Without this, a topic full of values
// with a bogus id would cost one registry request per value.
const (
	missingIDTTL = time.Minute
	maxMissing   = 1024
)

// DecodeConfluent decodes a value in the Confluent wire format. The schema id
// is looked up in the registry the first time it is seen and cached for the
// life of the Decoder; a fetched schema whose canonical form matches an
// embedded version uses that version, any other Avro record schema (a newer
// Sluice's, an external producer's) is used as fetched and resolved onto
// the newest embedded version (resolve.go): fields Record lacks are kept in
// Record.Unknown.
//
// Errors: ErrNoRegistry without a registry; ErrUnknownSchema when the
// registry has no such id (remembered for a minute) or the schema is not a
// usable Avro record schema, or not one a LogRecord can be read from
// (remembered for the life of the Decoder);
// ErrRegistry when the registry could not be asked (retry later);
// ErrMalformed for a short header or a body that does not decode. It blocks
// only on a registry lookup, bounded by ctx. The Record does not retain b.
func (d *Decoder) DecodeConfluent(ctx context.Context, b []byte) (Record, error) {
	if len(b) < confluentHeaderLen || b[0] != 0 {
		return Record{}, fmt.Errorf("decode confluent: %w: %d-byte value has no 00 + schema id header", ErrMalformed, len(b))
	}
	id := binary.BigEndian.Uint32(b[1:confluentHeaderLen])
	if d.registry == nil {
		return Record{}, fmt.Errorf("decode confluent: schema id %d: %w", id, ErrNoRegistry)
	}
	s, err := d.schemaByID(ctx, id)
	if err != nil {
		return Record{}, fmt.Errorf("decode confluent: %w", err)
	}
	r, err := decodeAvroBody(s, b[confluentHeaderLen:])
	if err != nil {
		return Record{}, fmt.Errorf("decode confluent (schema id %d): %w", id, err)
	}
	return r, nil
}

// schemaByID returns the schema for a registry id, from the cache or the
// registry.
func (d *Decoder) schemaByID(ctx context.Context, id uint32) (*avroSchema, error) {
	d.mu.RLock()
	s, ok := d.byID[id]
	failed, isMissing := d.missing[id]
	d.mu.RUnlock()
	if ok {
		if s == nil {
			return nil, fmt.Errorf("schema id %d is not a usable avro record schema: %w", id, ErrUnknownSchema)
		}
		return s, nil
	}
	if isMissing && d.now().Sub(failed) < missingIDTTL {
		return nil, fmt.Errorf("schema id %d not found in registry (cached): %w", id, ErrUnknownSchema)
	}

	// Concurrent misses for one id each ask the registry; that happens once
	// per id and process, which does not justify a singleflight.
	fetched, err := d.registry.SchemaByID(ctx, int(id))
	if err != nil {
		if isNotFound(err) {
			d.mu.Lock()
			if len(d.missing) >= maxMissing {
				clear(d.missing)
			}
			d.missing[id] = d.now()
			d.mu.Unlock()
			return nil, fmt.Errorf("schema id %d not found in registry: %w", id, ErrUnknownSchema)
		}
		return nil, fmt.Errorf("fetch schema id %d: %w: %w", id, ErrRegistry, err)
	}
	s, err = d.schemaFromRegistry(fetched)

	d.mu.Lock()
	d.byID[id] = s // nil for an unusable schema: that does not change either
	delete(d.missing, id)
	d.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("schema id %d: %w: %v", id, ErrUnknownSchema, err)
	}
	return s, nil
}

// schemaFromRegistry maps a fetched schema to an embedded version when its
// canonical form matches one, else builds a codec for it and its resolution
// onto the newest embedded version (resolve.go).
func (d *Decoder) schemaFromRegistry(fetched sr.Schema) (*avroSchema, error) {
	if fetched.Type != sr.TypeAvro {
		return nil, fmt.Errorf("schema type is %s, want AVRO", fetched.Type)
	}
	if len(fetched.References) > 0 {
		return nil, errors.New("schema references are not supported")
	}
	return d.schemaFromText(fetched.Schema)
}

// isNotFound reports whether the registry answered that it has no such
// schema (as opposed to not answering).
func isNotFound(err error) bool {
	var re *sr.ResponseError
	if !errors.As(err, &re) {
		return false
	}
	return re.ErrorCode == sr.ErrSchemaNotFound.Code || re.StatusCode == http.StatusNotFound
}
