package schemas

import (
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// Time representation, shared by every format so that a record converted
// between formats keeps its timestamps: a timestamp is int64 Unix nanoseconds
// and 0 means "unset".
//
//   - the zero time.Time encodes as 0 (JSON: null), and 0 decodes as the zero
//     time.Time. A genuine 1970-01-01T00:00:00Z therefore reads back as unset.
//   - times outside what int64 nanoseconds can hold (before 1677-09-21, after
//     2262-04-11) are clamped to the nearest representable instant.
//   - decoded times are in UTC.
var (
	minNanosTime = time.Unix(0, math.MinInt64)
	maxNanosTime = time.Unix(0, math.MaxInt64)
)

// timeToNanos converts t to the wire representation described above.
func timeToNanos(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.Before(minNanosTime):
		return math.MinInt64
	case t.After(maxNanosTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// nanosToTime is the inverse of timeToNanos.
func nanosToTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// normalizeTime maps t to the instant it reads back as after a round trip
// through any format.
func normalizeTime(t time.Time) time.Time { return nanosToTime(timeToNanos(t)) }

// validString returns s with each run of invalid UTF-8 replaced by U+FFFD,
// and whether it had to change anything. Valid strings are returned as they
// are, without allocating.
func validString(s string) (string, bool) {
	if utf8.ValidString(s) {
		return s, false
	}
	return strings.ToValidUTF8(s, "\uFFFD"), true
}

// scalarKind is the type of an attribute value, in the order of the
// attribute union of the schema: ["null","boolean","long","double","string",
// array]. An array's items are of the first five kinds.
type scalarKind uint8

const (
	kindNull scalarKind = iota
	kindBool
	kindLong
	kindDouble
	kindString
	kindArray
)

// scalar is an attribute value normalised to one of the kinds; an array
// keeps the caller's slice (a []any or []string) in list, its items
// normalised one by one with item.
type scalar struct {
	kind scalarKind
	b    bool
	i    int64
	f    float64
	s    string
	list any
}

// toScalar normalises an attribute value. Record documents the values as
// nil, bool, int64, float64, string or []any of those; the other Go integer
// and float types are accepted too and widened (they read back as int64 or
// float64), and so is []string (it reads back as []any). Any other type, an
// array item that is not a scalar, and unsigned values above math.MaxInt64
// are an ErrInvalidRecord.
//
// An array's items are normalised one by one as they are written (item):
// an encoder meeting a bad item fails, and returns its buffer unchanged,
// as for any bad value.
func toScalar(key string, v any) (scalar, error) {
	switch v := v.(type) {
	case []any, []string:
		return scalar{kind: kindArray, list: v}, nil
	}
	return toItem(key, v)
}

// arrayLen is the number of items of an array scalar.
func (s scalar) arrayLen() int {
	if l, ok := s.list.([]string); ok {
		return len(l)
	}
	return len(s.list.([]any))
}

// item returns the i-th item of an array scalar of attribute key,
// normalised.
func (s scalar) item(key string, i int) (scalar, error) {
	if l, ok := s.list.([]string); ok {
		return scalar{kind: kindString, s: l[i]}, nil
	}
	return toItem(key, s.list.([]any)[i])
}

// toItem normalises a scalar: an attribute value or an array item.
func toItem(key string, v any) (scalar, error) {
	switch v := v.(type) {
	case nil:
		return scalar{kind: kindNull}, nil
	case bool:
		return scalar{kind: kindBool, b: v}, nil
	case int64:
		return scalar{kind: kindLong, i: v}, nil
	case float64:
		return scalar{kind: kindDouble, f: v}, nil
	case string:
		return scalar{kind: kindString, s: v}, nil
	case int:
		return scalar{kind: kindLong, i: int64(v)}, nil
	case int32:
		return scalar{kind: kindLong, i: int64(v)}, nil
	case int16:
		return scalar{kind: kindLong, i: int64(v)}, nil
	case int8:
		return scalar{kind: kindLong, i: int64(v)}, nil
	case uint32:
		return scalar{kind: kindLong, i: int64(v)}, nil
	case uint16:
		return scalar{kind: kindLong, i: int64(v)}, nil
	case uint8:
		return scalar{kind: kindLong, i: int64(v)}, nil
	case uint:
		if uint64(v) > math.MaxInt64 {
			return scalar{}, fmt.Errorf("attribute %q: uint %d overflows int64: %w", key, v, ErrInvalidRecord)
		}
		return scalar{kind: kindLong, i: int64(v)}, nil
	case uint64:
		if v > math.MaxInt64 {
			return scalar{}, fmt.Errorf("attribute %q: uint64 %d overflows int64: %w", key, v, ErrInvalidRecord)
		}
		return scalar{kind: kindLong, i: int64(v)}, nil
	case float32:
		return scalar{kind: kindDouble, f: float64(v)}, nil
	default:
		return scalar{}, fmt.Errorf("attribute %q: unsupported value type %T (want nil, bool, int64, float64, string, or an array of those): %w", key, v, ErrInvalidRecord)
	}
}
