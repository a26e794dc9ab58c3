package router

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sluicelogs/sluice/internal/jsonstr"
)

// maxJSONNesting bounds the nesting of skipped JSON values (kept as text);
// encoding/json uses the same limit.
const maxJSONNesting = 10000

// flattenJSON parses s, which must hold one JSON object, and calls set for
// every leaf with its flattened dotted key (prefix + path). An array of at
// most MaxArrayItems scalars is passed as a []any; objects nested deeper
// than depth levels, and other arrays (holding objects or arrays, or
// longer), are passed as their JSON text as written (invalid UTF-8
// replaced). Integral numbers that fit are int64,
// other numbers float64, and numbers out of float64 range their text.
// Strings with invalid UTF-8 get U+FFFD per bad byte, like encoding/json.
// On error set may have been called for some keys; callers buffer.
//
// It is a single-pass scanner rather than encoding/json into a
// map[string]any: it allocates only for keys under a prefix, escaped
// strings and boxed values, which makes the json step several times faster.
func flattenJSON(s, prefix string, depth int, set func(k string, v any)) error {
	sc := jsonScanner{s: s, set: set, depth: depth}
	sc.ws()
	if sc.i >= len(s) || s[sc.i] != '{' {
		return errors.New("decode json: not an object")
	}
	if err := sc.object(prefix, 1); err != nil {
		return err
	}
	sc.ws()
	if sc.i != len(s) {
		return errors.New("decode json: data after the object")
	}
	return nil
}

type jsonScanner struct {
	s     string
	i     int
	set   func(string, any)
	depth int
}

func (sc *jsonScanner) errorf(format string, args ...any) error {
	return fmt.Errorf("decode json: offset %d: %s", sc.i, fmt.Sprintf(format, args...))
}

func (sc *jsonScanner) ws() {
	for sc.i < len(sc.s) {
		switch sc.s[sc.i] {
		case ' ', '\t', '\n', '\r':
			sc.i++
		default:
			return
		}
	}
}

// object flattens the object at sc.i (which is '{') at nesting level.
// colon consumes the ':' after an object key, with white space around it.
func (sc *jsonScanner) colon() error {
	sc.ws()
	if sc.i >= len(sc.s) || sc.s[sc.i] != ':' {
		return sc.errorf("want ':'")
	}
	sc.i++
	sc.ws()
	return nil
}

func (sc *jsonScanner) object(prefix string, level int) error {
	sc.i++ // '{'
	sc.ws()
	if sc.i < len(sc.s) && sc.s[sc.i] == '}' {
		sc.i++
		return nil
	}
	for {
		sc.ws()
		if sc.i >= len(sc.s) || sc.s[sc.i] != '"' {
			return sc.errorf("want an object key")
		}
		k, err := sc.str()
		if err != nil {
			return err
		}
		if prefix != "" {
			k = prefix + k
		}
		if err := sc.colon(); err != nil {
			return err
		}
		if sc.i >= len(sc.s) {
			return sc.errorf("unexpected end")
		}
		switch c := sc.s[sc.i]; {
		case c == '{' && level < sc.depth:
			if err := sc.object(k+".", level+1); err != nil {
				return err
			}
		case c == '[':
			v, err := sc.array()
			if err != nil {
				return err
			}
			sc.set(k, v)
		case c == '{':
			raw, err := sc.raw()
			if err != nil {
				return err
			}
			sc.set(k, raw)
		default:
			v, err := sc.scalar()
			if err != nil {
				return err
			}
			sc.set(k, v)
		}
		sc.ws()
		if sc.i >= len(sc.s) {
			return sc.errorf("unexpected end in object")
		}
		switch sc.s[sc.i] {
		case ',':
			sc.i++
		case '}':
			sc.i++
			return nil
		default:
			return sc.errorf("want ',' or '}'")
		}
	}
}

// raw skips the object or array at sc.i and returns its text as written
// (invalid UTF-8 replaced).
func (sc *jsonScanner) raw() (string, error) {
	start := sc.i
	if err := sc.skip(0); err != nil {
		return "", err
	}
	raw := sc.s[start:sc.i]
	if !utf8.ValidString(raw) {
		raw = strings.ToValidUTF8(raw, "\uFFFD")
	}
	return raw, nil
}

// array reads the array at sc.i (which is '['): an array of at most
// MaxArrayItems scalars is a []any, any other its text (raw).
func (sc *jsonScanner) array() (any, error) {
	start := sc.i
	sc.i++ // '['
	sc.ws()
	items := []any{}
	if sc.i < len(sc.s) && sc.s[sc.i] == ']' {
		sc.i++
		return items, nil
	}
	for {
		sc.ws()
		if sc.i >= len(sc.s) {
			return nil, sc.errorf("unexpected end in array")
		}
		if c := sc.s[sc.i]; c == '{' || c == '[' || len(items) == MaxArrayItems {
			sc.i = start
			return sc.raw()
		}
		v, err := sc.scalar()
		if err != nil {
			return nil, err
		}
		items = append(items, v)
		sc.ws()
		if sc.i >= len(sc.s) {
			return nil, sc.errorf("unexpected end in array")
		}
		switch sc.s[sc.i] {
		case ',':
			sc.i++
		case ']':
			sc.i++
			return items, nil
		default:
			return nil, sc.errorf("want ',' or ']'")
		}
	}
}

// scalar reads a string, number, true, false or null.
func (sc *jsonScanner) scalar() (any, error) {
	switch c := sc.s[sc.i]; {
	case c == '"':
		return sc.str()
	case c == 't':
		return true, sc.lit("true")
	case c == 'f':
		return false, sc.lit("false")
	case c == 'n':
		return nil, sc.lit("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return sc.num()
	}
	return nil, sc.errorf("unexpected %q", sc.s[sc.i])
}

func (sc *jsonScanner) lit(w string) error {
	if !strings.HasPrefix(sc.s[sc.i:], w) {
		return sc.errorf("bad literal")
	}
	sc.i += len(w)
	return nil
}

func (sc *jsonScanner) digits() int {
	n := 0
	for sc.i < len(sc.s) && sc.s[sc.i] >= '0' && sc.s[sc.i] <= '9' {
		sc.i++
		n++
	}
	return n
}

// num reads a JSON number (strict grammar).
func (sc *jsonScanner) num() (any, error) {
	start := sc.i
	if sc.s[sc.i] == '-' {
		sc.i++
	}
	if sc.i < len(sc.s) && sc.s[sc.i] == '0' {
		sc.i++
	} else if sc.digits() == 0 {
		return nil, sc.errorf("bad number")
	}
	integral := true
	if sc.i < len(sc.s) && sc.s[sc.i] == '.' {
		integral = false
		sc.i++
		if sc.digits() == 0 {
			return nil, sc.errorf("bad number")
		}
	}
	if sc.i < len(sc.s) && (sc.s[sc.i] == 'e' || sc.s[sc.i] == 'E') {
		integral = false
		sc.i++
		if sc.i < len(sc.s) && (sc.s[sc.i] == '+' || sc.s[sc.i] == '-') {
			sc.i++
		}
		if sc.digits() == 0 {
			return nil, sc.errorf("bad number")
		}
	}
	text := sc.s[start:sc.i]
	if integral {
		if n, err := strconv.ParseInt(text, 10, 64); err == nil {
			return n, nil
		}
	}
	if f, err := strconv.ParseFloat(text, 64); err == nil {
		return f, nil
	}
	return text, nil
}

// str reads a string at sc.i (which is '"'), invalid UTF-8 replaced as
// encoding/json does. Without escapes or invalid UTF-8 it returns a
// substring of the input, without allocating.
func (sc *jsonScanner) str() (string, error) {
	v, end, err := jsonstr.Unquote(sc.s, sc.i)
	if err != nil {
		return "", fmt.Errorf("decode json: offset %d: %w", err.Offset, err)
	}
	sc.i = end
	return v, nil
}

// skip validates and skips any value at sc.i.
func (sc *jsonScanner) skip(nest int) error {
	if nest > maxJSONNesting {
		return sc.errorf("nesting deeper than %d", maxJSONNesting)
	}
	switch sc.s[sc.i] {
	case '{', '[':
		open, close := sc.s[sc.i], byte('}')
		if open == '[' {
			close = ']'
		}
		sc.i++
		sc.ws()
		if sc.i < len(sc.s) && sc.s[sc.i] == close {
			sc.i++
			return nil
		}
		for {
			sc.ws()
			if open == '{' {
				if sc.i >= len(sc.s) || sc.s[sc.i] != '"' {
					return sc.errorf("want an object key")
				}
				if _, err := sc.str(); err != nil {
					return err
				}
				if err := sc.colon(); err != nil {
					return err
				}
			}
			if sc.i >= len(sc.s) {
				return sc.errorf("unexpected end")
			}
			if err := sc.skip(nest + 1); err != nil {
				return err
			}
			sc.ws()
			if sc.i >= len(sc.s) {
				return sc.errorf("unexpected end")
			}
			if sc.s[sc.i] == close {
				sc.i++
				return nil
			}
			if sc.s[sc.i] != ',' {
				return sc.errorf("want ',' or %q", close)
			}
			sc.i++
		}
	}
	_, err := sc.scalar()
	return err
}
