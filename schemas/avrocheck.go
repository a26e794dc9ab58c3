package schemas

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// goavro decodes untrusted bytes without bounding what it allocates: a map or
// array block count is used as an allocation hint before any item is read, so
// five bytes claiming 2^31-1 map entries make it reserve tens of gigabytes and
// the process dies of OOM (not a recoverable panic). Deeply nested recursive
// data can likewise exhaust the stack. checkAvro therefore walks every body
// against its schema before goavro sees it, without allocating, and rejects:
//
//   - lengths, counts and union or enum indexes that are negative, out of
//     range, or larger than the bytes left;
//   - varints longer than 10 bytes or overflowing int64 (int: int32);
//   - booleans other than 0 and 1;
//   - more array and map items in total than the body has bytes, which only
//     degenerate arrays of zero-width items (null, fixed(0)) can reach;
//   - nesting deeper than maxAvroDepth;
//   - trailing bytes after the datum.
//
// After it passes, goavro allocates at most a small multiple of the input.

// maxAvroDepth bounds how deeply types may nest in a datum. LogRecord needs 4.
const maxAvroDepth = 64

type avroKind uint8

const (
	avroNull avroKind = iota
	avroBoolean
	avroInt
	avroLong
	avroFloat
	avroDouble
	avroBytes
	avroString
	avroRecord
	avroEnum
	avroArray
	avroMap
	avroUnion
	avroFixed
)

var avroKindNames = [...]string{"null", "boolean", "int", "long", "float", "double", "bytes", "string", "record", "enum", "array", "map", "union", "fixed"}

func (k avroKind) String() string {
	if int(k) < len(avroKindNames) {
		return avroKindNames[k]
	}
	return fmt.Sprintf("avroKind(%d)", k)
}

var primitiveKinds = map[string]avroKind{
	"null": avroNull, "boolean": avroBoolean, "int": avroInt, "long": avroLong,
	"float": avroFloat, "double": avroDouble, "bytes": avroBytes, "string": avroString,
}

// avroType is a schema node, just detailed enough to walk binary data.
// Named types referenced more than once share one node; recursive schemas
// make cycles.
type avroType struct {
	kind     avroKind
	name     string      // full name of records, enums and fixed
	fields   []*avroType // record: field types in order
	names    []string    // record: field names, parallel to fields
	items    *avroType   // array items, map values
	branches []*avroType // union members
	size     int         // enum: symbol count; fixed: byte size
}

// parseCanonical builds the tree for a schema in Parsing Canonical Form,
// where every name is a full name and references are plain strings, so no
// namespace resolution is needed.
func parseCanonical(canonical string) (*avroType, error) {
	var v any
	if err := json.Unmarshal([]byte(canonical), &v); err != nil {
		return nil, err
	}
	return buildAvroType(v, map[string]*avroType{})
}

func buildAvroType(v any, named map[string]*avroType) (*avroType, error) {
	switch v := v.(type) {
	case string:
		if k, ok := primitiveKinds[v]; ok {
			return &avroType{kind: k}, nil
		}
		if t, ok := named[v]; ok {
			return t, nil
		}
		return nil, fmt.Errorf("unknown type name %q", v)
	case []any:
		t := &avroType{kind: avroUnion, branches: make([]*avroType, len(v))}
		for i, b := range v {
			bt, err := buildAvroType(b, named)
			if err != nil {
				return nil, err
			}
			t.branches[i] = bt
		}
		return t, nil
	case map[string]any:
		typ, _ := v["type"].(string)
		name, _ := v["name"].(string)
		switch typ {
		case "record":
			t := &avroType{kind: avroRecord, name: name}
			named[name] = t // before the fields: they may refer to it
			fields, _ := v["fields"].([]any)
			for _, f := range fields {
				fm, ok := f.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("record %s: field is %T, want an object", name, f)
				}
				ft, err := buildAvroType(fm["type"], named)
				if err != nil {
					return nil, fmt.Errorf("record %s field %v: %w", name, fm["name"], err)
				}
				fname, _ := fm["name"].(string)
				t.fields = append(t.fields, ft)
				t.names = append(t.names, fname)
			}
			return t, nil
		case "enum":
			symbols, _ := v["symbols"].([]any)
			t := &avroType{kind: avroEnum, name: name, size: len(symbols)}
			named[name] = t
			return t, nil
		case "fixed":
			size, _ := v["size"].(float64)
			if size < 0 || size > math.MaxInt32 || size != math.Trunc(size) {
				return nil, fmt.Errorf("fixed %s: bad size %v", name, v["size"])
			}
			t := &avroType{kind: avroFixed, name: name, size: int(size)}
			named[name] = t
			return t, nil
		case "array", "map":
			key := "items"
			kind := avroArray
			if typ == "map" {
				key, kind = "values", avroMap
			}
			it, err := buildAvroType(v[key], named)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", typ, key, err)
			}
			return &avroType{kind: kind, items: it}, nil
		default:
			if k, ok := primitiveKinds[typ]; ok {
				return &avroType{kind: k}, nil
			}
			return nil, fmt.Errorf("unknown type %q", typ)
		}
	default:
		return nil, fmt.Errorf("unexpected schema element %T", v)
	}
}

var errShort = errors.New("unexpected end of data")

// avroChecker walks binary Avro data; see the comment at the top of the file.
type avroChecker struct {
	b      []byte
	budget int // array and map items still allowed
}

// checkAvro reports whether body is exactly one datum of t, safe to hand to
// goavro.
func checkAvro(t *avroType, body []byte) error {
	c := avroChecker{b: body, budget: len(body)}
	if err := c.check(t, 0); err != nil {
		return err
	}
	if len(c.b) != 0 {
		return fmt.Errorf("%d trailing bytes after the record", len(c.b))
	}
	return nil
}

func (c *avroChecker) varint() (int64, error) {
	var u uint64
	for i := 0; i < 10; i++ {
		if i >= len(c.b) {
			return 0, errShort
		}
		b := c.b[i]
		if i == 9 && b > 1 {
			return 0, errors.New("varint overflows 64 bits")
		}
		u |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			c.b = c.b[i+1:]
			return int64(u>>1) ^ -int64(u&1), nil
		}
	}
	return 0, errors.New("varint longer than 10 bytes")
}

func (c *avroChecker) skip(n int64, what string) error {
	if n < 0 {
		return fmt.Errorf("negative %s length %d", what, n)
	}
	if n > int64(len(c.b)) {
		return fmt.Errorf("%s length %d exceeds the %d bytes left", what, n, len(c.b))
	}
	c.b = c.b[n:]
	return nil
}

// index reads a union or enum index and checks it against n.
func (c *avroChecker) index(n int, what string) (int, error) {
	i, err := c.varint()
	if err != nil {
		return 0, err
	}
	if i < 0 || i >= int64(n) {
		return 0, fmt.Errorf("%s index %d out of range [0,%d)", what, i, n)
	}
	return int(i), nil
}

func (c *avroChecker) check(t *avroType, depth int) error {
	if depth > maxAvroDepth {
		return fmt.Errorf("data nested deeper than %d", maxAvroDepth)
	}
	switch t.kind {
	case avroNull:
		return nil
	case avroBoolean:
		if len(c.b) == 0 {
			return errShort
		}
		if c.b[0] > 1 {
			return fmt.Errorf("boolean byte %#x", c.b[0])
		}
		c.b = c.b[1:]
		return nil
	case avroInt:
		v, err := c.varint()
		if err != nil {
			return err
		}
		if v < math.MinInt32 || v > math.MaxInt32 {
			return fmt.Errorf("int %d overflows 32 bits", v)
		}
		return nil
	case avroLong:
		_, err := c.varint()
		return err
	case avroFloat:
		return c.skip(4, "float")
	case avroDouble:
		return c.skip(8, "double")
	case avroBytes, avroString:
		n, err := c.varint()
		if err != nil {
			return err
		}
		return c.skip(n, t.kind.String())
	case avroFixed:
		return c.skip(int64(t.size), "fixed")
	case avroEnum:
		_, err := c.index(t.size, "enum")
		return err
	case avroUnion:
		i, err := c.index(len(t.branches), "union")
		if err != nil {
			return err
		}
		return c.check(t.branches[i], depth+1)
	case avroRecord:
		for _, f := range t.fields {
			if err := c.check(f, depth+1); err != nil {
				return err
			}
		}
		return nil
	case avroArray, avroMap:
		for {
			n, err := c.varint()
			if err != nil {
				return err
			}
			if n == 0 {
				return nil
			}
			if n < 0 {
				// A negative count is followed by the block's byte size.
				if n == math.MinInt64 {
					return fmt.Errorf("%s block count %d", t.kind, n)
				}
				n = -n
				if _, err := c.varint(); err != nil {
					return err
				}
			}
			if n > int64(c.budget) {
				return fmt.Errorf("%s block of %d items exceeds the %d left for this body", t.kind, n, c.budget)
			}
			c.budget -= int(n)
			for ; n > 0; n-- {
				if t.kind == avroMap {
					k, err := c.varint()
					if err != nil {
						return err
					}
					if err := c.skip(k, "map key"); err != nil {
						return err
					}
				}
				if err := c.check(t.items, depth+1); err != nil {
					return err
				}
			}
		}
	default:
		return fmt.Errorf("unsupported type %s", t.kind)
	}
}
