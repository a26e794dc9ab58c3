package schemas

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
)

// decodeSingleObject is DecodeSingleObject with the decoder's versions and,
// for other fingerprints, its schema source.
func (d *Decoder) decodeSingleObject(ctx context.Context, b []byte) (Record, error) {
	if len(b) < singleObjectHeaderLen || b[0] != singleObjectMagic[0] || b[1] != singleObjectMagic[1] {
		return Record{}, fmt.Errorf("decode single-object: %w: %d-byte value has no C3 01 + fingerprint header", ErrMalformed, len(b))
	}
	fp := binary.LittleEndian.Uint64(b[2:singleObjectHeaderLen])
	s, ok := d.known[fp]
	if !ok {
		var err error
		if s, err = d.schemaByFingerprint(ctx, fp); err != nil {
			return Record{}, fmt.Errorf("decode single-object: %w", err)
		}
	}
	r, err := decodeAvroBody(s, b[singleObjectHeaderLen:])
	if err != nil {
		if s.info.Version == 0 {
			return Record{}, fmt.Errorf("decode single-object (schema %016x): %w", fp, err)
		}
		return Record{}, fmt.Errorf("decode single-object (schema v%d): %w", s.info.Version, err)
	}
	return r, nil
}

// schemaByFingerprint returns the schema of a fingerprint no known version
// has, from the cache or the schema source.
func (d *Decoder) schemaByFingerprint(ctx context.Context, fp uint64) (*avroSchema, error) {
	if d.source == nil {
		return nil, fmt.Errorf("fingerprint %016x: %w", fp, ErrUnknownSchema)
	}
	d.mu.RLock()
	s, ok := d.byFP[fp]
	failed, isMissing := d.missFP[fp]
	d.mu.RUnlock()
	if ok {
		if s == nil {
			return nil, fmt.Errorf("fingerprint %016x: not a schema this version can read: %w", fp, ErrUnknownSchema)
		}
		return s, nil
	}
	if isMissing && d.now().Sub(failed) < missingIDTTL {
		return nil, fmt.Errorf("fingerprint %016x not found in the schema source (cached): %w", fp, ErrUnknownSchema)
	}

	// As for registry ids, concurrent misses each ask the source.
	text, err := d.source(ctx, fp)
	if err != nil {
		if errors.Is(err, ErrUnknownSchema) {
			d.mu.Lock()
			if len(d.missFP) >= maxMissing {
				clear(d.missFP)
			}
			d.missFP[fp] = d.now()
			d.mu.Unlock()
			return nil, fmt.Errorf("fingerprint %016x not found in the schema source: %w", fp, ErrUnknownSchema)
		}
		return nil, fmt.Errorf("look up fingerprint %016x: %w: %w", fp, ErrRegistry, err)
	}
	s, err = d.schemaFromText(text)
	if err == nil && s.info.Fingerprint != fp {
		// A source must not be able to make one schema's records decode
		// with another.
		s, err = nil, fmt.Errorf("the source's schema has fingerprint %016x", s.info.Fingerprint)
	}

	d.mu.Lock()
	d.byFP[fp] = s // nil for an unusable schema: that does not change either
	delete(d.missFP, fp)
	d.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("fingerprint %016x: %w: %v", fp, ErrUnknownSchema, err)
	}
	return s, nil
}

// schemaFromText returns a known version when text is one (by canonical
// form), else text's schema with its resolution onto the reader version.
// An error means records written with text cannot be read.
func (d *Decoder) schemaFromText(text string) (*avroSchema, error) {
	s, err := newAvroSchema(text)
	if err != nil {
		return nil, err
	}
	if known, ok := d.known[s.info.Fingerprint]; ok {
		return known, nil
	}
	if s.res, err = newResolution(s, d.reader); err != nil {
		return nil, err
	}
	return s, nil
}
