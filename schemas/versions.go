package schemas

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/linkedin/goavro/v2"
)

// avroFS holds every version of the LogRecord schema ever released. Files are
// never edited or removed once released: records written with them may still
// sit in Kafka, and goavro cannot resolve a writer schema into a reader
// schema, so decoding needs the exact writer schema. Versions newer than
// this binary are found at run time (WithSchemaSource) and resolved onto
// the newest embedded one by this package (resolve.go).
// TestSchemaFingerprints pins each file's fingerprint.
//
//go:embed avro/logrecord.v*.avsc
var avroFS embed.FS

// SchemaVersion describes one embedded version of the LogRecord schema.
type SchemaVersion struct {
	// Version is the N of avro/logrecord.vN.avsc.
	Version int
	// Text is the schema as embedded (the .avsc file, docs included).
	Text string
	// Fingerprint is the Rabin fingerprint (CRC-64-AVRO) of the schema's
	// Parsing Canonical Form, as carried by single-object encoding.
	Fingerprint uint64
}

// avroSchema is a schema ready to decode with: the embedded versions, and
// schemas fetched from a registry or a schema source that match none of
// them.
type avroSchema struct {
	info  SchemaVersion // Version is 0 for a schema not embedded
	codec *goavro.Codec
	tree  *avroType // for checkAvro, built from the canonical form
	// fast is the version decodeFastBody reads this schema as (0: decode
	// through goavro). Set only for embedded versions, by loadVersions.
	fast int
	// res maps a schema that is not one of the reader's versions onto
	// the reader's newest version (nil for the reader's own versions).
	res *resolution
}

var (
	// versions lists the embedded versions, oldest first; the last one is
	// the current version, the one encoders write.
	versions []*avroSchema
	// byFingerprint indexes versions for single-object decoding. Read-only
	// after init.
	byFingerprint map[uint64]*avroSchema
)

func init() {
	var err error
	versions, byFingerprint, err = loadVersions(avroFS)
	if err != nil {
		// The schemas are compiled into the binary; a broken one is a
		// programming error that every test run reports.
		panic("schemas: " + err.Error())
	}
	if cur := versions[len(versions)-1].info.Version; cur != fastEncoderVersion {
		panic(fmt.Sprintf("schemas: current schema is v%d but AppendAvro writes v%d; update avro_encode.go", cur, fastEncoderVersion))
	}
	currentSingleObjectHeader = singleObjectHeader(currentSchema().info.Fingerprint)
}

// loadVersions parses avro/logrecord.vN.avsc from fsys. Versions must be
// numbered 1..N without gaps and have distinct fingerprints.
func loadVersions(fsys fs.FS) ([]*avroSchema, map[uint64]*avroSchema, error) {
	paths, err := fs.Glob(fsys, "avro/logrecord.v*.avsc")
	if err != nil {
		return nil, nil, err
	}
	var vs []*avroSchema
	for _, p := range paths {
		num := strings.TrimSuffix(strings.TrimPrefix(path.Base(p), "logrecord.v"), ".avsc")
		n, err := strconv.Atoi(num)
		if err != nil || n < 1 || strconv.Itoa(n) != num {
			return nil, nil, fmt.Errorf("schema file %s: want avro/logrecord.vN.avsc with N a positive integer", p)
		}
		text, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil, nil, err
		}
		s, err := newAvroSchema(string(text))
		if err != nil {
			return nil, nil, fmt.Errorf("schema file %s: %w", p, err)
		}
		s.info.Version = n
		s.fast = fastDecoderFingerprints[s.info.Fingerprint]
		vs = append(vs, s)
	}
	if len(vs) == 0 {
		return nil, nil, fmt.Errorf("no schema files under avro/")
	}
	slices.SortFunc(vs, func(a, b *avroSchema) int { return a.info.Version - b.info.Version })
	byFP := make(map[uint64]*avroSchema, len(vs))
	for i, s := range vs {
		if s.info.Version != i+1 {
			return nil, nil, fmt.Errorf("schema versions must be 1..%d without gaps; v%d is missing", len(vs), i+1)
		}
		if prev, dup := byFP[s.info.Fingerprint]; dup {
			return nil, nil, fmt.Errorf("schema v%d has the same canonical form as v%d", s.info.Version, prev.info.Version)
		}
		byFP[s.info.Fingerprint] = s
	}
	return vs, byFP, nil
}

// newAvroSchema builds a codec and a checker tree for a LogRecord-like schema:
// any Avro schema whose top level is a record.
func newAvroSchema(text string) (*avroSchema, error) {
	codec, err := goavro.NewCodec(text)
	if err != nil {
		return nil, fmt.Errorf("parse avro schema: %w", err)
	}
	tree, err := parseCanonical(codec.CanonicalSchema())
	if err != nil {
		return nil, fmt.Errorf("parse canonical form: %w", err)
	}
	if tree.kind != avroRecord {
		return nil, fmt.Errorf("top-level type is %s, want a record", tree.kind)
	}
	return &avroSchema{
		info:  SchemaVersion{Text: text, Fingerprint: codec.Rabin},
		codec: codec,
		tree:  tree,
	}, nil
}

// SchemaVersions returns every embedded version of the LogRecord schema,
// oldest first.
func SchemaVersions() []SchemaVersion {
	out := make([]SchemaVersion, len(versions))
	for i, v := range versions {
		out[i] = v.info
	}
	return out
}

// CurrentSchema returns the version encoders write: the highest embedded
// version.
func CurrentSchema() SchemaVersion { return currentSchema().info }

func currentSchema() *avroSchema { return versions[len(versions)-1] }
