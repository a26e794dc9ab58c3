package escompat

import (
	"encoding/json"
	"fmt"
	"net/http"
	"unicode/utf8"

	"github.com/sluicelogs/sluice/internal/jsonstr"
)

// Document is a parsed JSON document source: an object whose members keep
// their order and their positions in the source, so that mapping errors can
// name a [line:column] the way Elasticsearch does.
//
// A Document is immutable after ParseDocument and safe for concurrent reads.
type Document struct {
	src  []byte
	root *node
}

// ParseDocument parses the source of a document to be indexed. It fails, as
// Elasticsearch does, with a document_parsing_exception when src is empty,
// is not valid JSON (strict: duplicate keys are refused), or is not a JSON
// object. The Document keeps a reference to src; the caller must not modify
// src afterwards.
func ParseDocument(src []byte) (*Document, *Error) {
	p := &jsonParser{src: src}
	p.skipSpace()
	if p.pos == len(src) {
		return nil, &Error{Status: http.StatusBadRequest, Type: "document_parsing_exception",
			Reason: "failed to parse, document is empty"}
	}
	if src[p.pos] != '{' {
		start := p.pos
		if _, err := p.value(); err != nil {
			return nil, err.document(src)
		}
		return nil, documentParsing(locate(src, start), "failed to parse: Malformed content, must start with an object")
	}
	root, err := p.value()
	if err != nil {
		return nil, err.document(src)
	}
	p.skipSpace()
	if p.pos != len(src) {
		start := p.pos
		tok := "UNKNOWN"
		if v, err := p.value(); err == nil {
			tok = v.tokenName()
		}
		return nil, documentParsing(locate(src, start), "failed to parse: Malformed content, found extra data after parsing: %s", tok)
	}
	return &Document{src: src, root: root}, nil
}

// Source returns the bytes the document was parsed from.
func (d *Document) Source() []byte { return d.src }

// MarshalJSON returns the document source, compacted.
func (d *Document) MarshalJSON() ([]byte, error) {
	return Encode(d.root, nil), nil
}

// Keys returns the top-level keys of the document in source order.
func (d *Document) Keys() []string { return append([]string(nil), d.root.keys...) }

type nodeKind uint8

const (
	kindNull nodeKind = iota
	kindBool
	kindNumber
	kindString
	kindObject
	kindArray
)

// node is one JSON value with its position in the source.
type node struct {
	kind nodeKind
	off  int    // byte offset where the value starts
	end  int    // byte offset of the closing bracket of an object or array
	b    bool   // kindBool
	text string // kindString: the decoded string; kindNumber: the literal
	keys []string
	koff []int   // byte offsets of the keys (parallel to keys)
	vals []*node // object member values (parallel to keys) or array elements
}

// tokenName names the first token of n as Elasticsearch's XContent parser
// does.
func (n *node) tokenName() string {
	switch n.kind {
	case kindNull:
		return "VALUE_NULL"
	case kindBool:
		return "VALUE_BOOLEAN"
	case kindNumber:
		return "VALUE_NUMBER"
	case kindString:
		return "VALUE_STRING"
	case kindObject:
		return "START_OBJECT"
	default:
		return "START_ARRAY"
	}
}

// jacksonToken names the first token of n as Jackson does, for messages
// Elasticsearch passes through from Jackson.
func (n *node) jacksonToken() string {
	switch n.kind {
	case kindBool:
		if n.b {
			return "VALUE_TRUE"
		}
		return "VALUE_FALSE"
	case kindNumber:
		if isIntegerLiteral(n.text) {
			return "VALUE_NUMBER_INT"
		}
		return "VALUE_NUMBER_FLOAT"
	}
	return n.tokenName()
}

// value converts n to plain Go values (map[string]any, []any, string,
// json.Number, bool, nil).
func (n *node) value() any {
	switch n.kind {
	case kindBool:
		return n.b
	case kindNumber:
		return json.Number(n.text)
	case kindString:
		return n.text
	case kindObject:
		m := make(map[string]any, len(n.keys))
		for i, k := range n.keys {
			m[k] = n.vals[i].value()
		}
		return m
	case kindArray:
		a := make([]any, len(n.vals))
		for i, e := range n.vals {
			a[i] = e.value()
		}
		return a
	}
	return nil
}

// member returns the value of key in an object node, or nil.
func (n *node) member(key string) *node {
	if n == nil || n.kind != kindObject {
		return nil
	}
	for i, k := range n.keys {
		if k == key {
			return n.vals[i]
		}
	}
	return nil
}

// maxDepth is Jackson's default maximum nesting depth, which Elasticsearch
// keeps.
const maxDepth = 1000

type syntaxError struct {
	off int
	msg string
}

func (e *syntaxError) document(src []byte) *Error {
	return documentParsing(locate(src, e.off), "failed to parse: %s", e.msg)
}

func (e *syntaxError) xcontent(src []byte) *Error {
	return &Error{Status: http.StatusBadRequest, Type: "x_content_parse_exception",
		Reason: locate(src, e.off).String() + " " + e.msg}
}

// jsonParser is a strict JSON parser that records positions. Its error
// messages follow Jackson's, which Elasticsearch passes through.
type jsonParser struct {
	src   []byte
	pos   int
	depth int
}

func (p *jsonParser) skipSpace() {
	for p.pos < len(p.src) {
		switch p.src[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *jsonParser) errorf(off int, format string, args ...any) *syntaxError {
	return &syntaxError{off: off, msg: fmt.Sprintf(format, args...)}
}

func describeChar(c byte) string {
	if c < 0x20 {
		return fmt.Sprintf("(CTRL-CHAR, code %d)", c)
	}
	if c >= utf8.RuneSelf {
		return fmt.Sprintf("(code %d / 0x%x)", c, c)
	}
	return fmt.Sprintf("('%c' (code %d))", c, c)
}

func (p *jsonParser) value() (*node, *syntaxError) {
	p.skipSpace()
	if p.pos >= len(p.src) {
		return nil, p.errorf(p.pos, "Unexpected end-of-input: expected a value")
	}
	start := p.pos
	switch c := p.src[p.pos]; {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		return &node{kind: kindString, off: start, text: s}, nil
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		end := p.pos
		for end < len(p.src) && (p.src[end] >= 'a' && p.src[end] <= 'z' || p.src[end] >= 'A' && p.src[end] <= 'Z' || p.src[end] >= '0' && p.src[end] <= '9' || p.src[end] == '_') {
			end++
		}
		word := string(p.src[p.pos:end])
		switch word {
		case "true", "false":
			p.pos = end
			return &node{kind: kindBool, off: start, b: word == "true"}, nil
		case "null":
			p.pos = end
			return &node{kind: kindNull, off: start}, nil
		}
		return nil, p.errorf(start, "Unrecognized token '%s': was expecting (JSON String, Number, Array, Object or token 'null', 'true' or 'false')", word)
	default:
		return nil, p.errorf(start, "Unexpected character %s: expected a valid value (JSON String, Number, Array, Object or token 'null', 'true' or 'false')", describeChar(c))
	}
}

func (p *jsonParser) enter() *syntaxError {
	p.depth++
	if p.depth > maxDepth {
		return p.errorf(p.pos, "Document nesting depth (%d) exceeds the maximum allowed (%d, from `StreamReadConstraints.getMaxNestingDepth()`)", p.depth, maxDepth)
	}
	return nil
}

func (p *jsonParser) object() (*node, *syntaxError) {
	n := &node{kind: kindObject, off: p.pos}
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	p.pos++ // '{'
	p.skipSpace()
	if p.pos < len(p.src) && p.src[p.pos] == '}' {
		n.end = p.pos
		p.pos++
		return n, nil
	}
	var seen map[string]struct{}
	for {
		p.skipSpace()
		if p.pos >= len(p.src) {
			return nil, p.errorf(p.pos, "Unexpected end-of-input: expected close marker for Object")
		}
		if p.src[p.pos] != '"' {
			return nil, p.errorf(p.pos, "Unexpected character %s: was expecting double-quote to start field name", describeChar(p.src[p.pos]))
		}
		keyOff := p.pos
		key, err := p.str()
		if err != nil {
			return nil, err
		}
		if len(n.keys) >= 8 {
			if seen == nil {
				seen = make(map[string]struct{}, 16)
				for _, k := range n.keys {
					seen[k] = struct{}{}
				}
			}
			if _, dup := seen[key]; dup {
				return nil, p.errorf(keyOff, "Duplicate field '%s'", key)
			}
			seen[key] = struct{}{}
		} else {
			for _, k := range n.keys {
				if k == key {
					return nil, p.errorf(keyOff, "Duplicate field '%s'", key)
				}
			}
		}
		p.skipSpace()
		if p.pos >= len(p.src) {
			return nil, p.errorf(p.pos, "Unexpected end-of-input: expected close marker for Object")
		}
		if p.src[p.pos] != ':' {
			return nil, p.errorf(p.pos, "Unexpected character %s: was expecting a colon to separate field name and value", describeChar(p.src[p.pos]))
		}
		p.pos++
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		n.keys = append(n.keys, key)
		n.koff = append(n.koff, keyOff)
		n.vals = append(n.vals, v)
		p.skipSpace()
		if p.pos >= len(p.src) {
			return nil, p.errorf(p.pos, "Unexpected end-of-input: expected close marker for Object")
		}
		switch p.src[p.pos] {
		case ',':
			p.pos++
		case '}':
			n.end = p.pos
			p.pos++
			return n, nil
		default:
			return nil, p.errorf(p.pos, "Unexpected character %s: was expecting comma to separate Object entries", describeChar(p.src[p.pos]))
		}
	}
}

func (p *jsonParser) array() (*node, *syntaxError) {
	n := &node{kind: kindArray, off: p.pos}
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	p.pos++ // '['
	p.skipSpace()
	if p.pos < len(p.src) && p.src[p.pos] == ']' {
		n.end = p.pos
		p.pos++
		return n, nil
	}
	for {
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		n.vals = append(n.vals, v)
		p.skipSpace()
		if p.pos >= len(p.src) {
			return nil, p.errorf(p.pos, "Unexpected end-of-input: expected close marker for Array")
		}
		switch p.src[p.pos] {
		case ',':
			p.pos++
		case ']':
			n.end = p.pos
			p.pos++
			return n, nil
		default:
			return nil, p.errorf(p.pos, "Unexpected character %s: was expecting comma to separate Array entries", describeChar(p.src[p.pos]))
		}
	}
}

func (p *jsonParser) number() (*node, *syntaxError) {
	start := p.pos
	i := p.pos
	if p.src[i] == '-' {
		i++
	}
	digits := func() int {
		s := i
		for i < len(p.src) && p.src[i] >= '0' && p.src[i] <= '9' {
			i++
		}
		return i - s
	}
	intStart := i
	nd := digits()
	if nd == 0 {
		if i < len(p.src) {
			return nil, p.errorf(i, "Unexpected character %s in numeric value: expected digit (0-9) to follow minus sign, for valid numeric value", describeChar(p.src[i]))
		}
		return nil, p.errorf(i, "Unexpected end-of-input in numeric value")
	}
	if nd > 1 && p.src[intStart] == '0' {
		return nil, p.errorf(start, "Invalid numeric value: Leading zeroes not allowed")
	}
	if i < len(p.src) && p.src[i] == '.' {
		i++
		if digits() == 0 {
			return nil, p.errorf(i, "Unexpected character in numeric value: Decimal point not followed by a digit")
		}
	}
	if i < len(p.src) && (p.src[i] == 'e' || p.src[i] == 'E') {
		i++
		if i < len(p.src) && (p.src[i] == '+' || p.src[i] == '-') {
			i++
		}
		if digits() == 0 {
			return nil, p.errorf(i, "Unexpected character in numeric value: Exponent indicator not followed by a digit")
		}
	}
	if i < len(p.src) {
		c := p.src[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' {
			return nil, p.errorf(i, "Unexpected character %s in numeric value", describeChar(c))
		}
	}
	p.pos = i
	return &node{kind: kindNumber, off: start, text: string(p.src[start:i])}, nil
}

// str parses a string starting at the opening quote. Unlike encoding/json,
// Elasticsearch refuses invalid UTF-8 rather than replace it.
func (p *jsonParser) str() (string, *syntaxError) {
	start := p.pos
	end, f, err := jsonstr.Scan(p.src, start)
	if err != nil {
		switch err.Kind {
		case jsonstr.Control:
			d := describeChar(err.Byte)
			return "", p.errorf(err.Offset, "Illegal unquoted character (%s): has to be escaped using backslash to be included in string value", d[1:len(d)-1])
		case jsonstr.EndInEscape:
			return "", p.errorf(err.Offset, "Unexpected end-of-input in character escape sequence")
		case jsonstr.BadHex:
			return "", p.errorf(err.Offset, "Unexpected character in character escape sequence: expected a hex-digit for character escape sequence")
		case jsonstr.BadEscape:
			return "", p.errorf(err.Offset, "Unrecognized character escape %s", describeChar(err.Byte))
		}
		return "", p.errorf(err.Offset, "Unexpected end-of-input: was expecting closing quote for a string value")
	}
	v := p.src[start+1 : end-1]
	if f&jsonstr.Escaped != 0 {
		v = jsonstr.Append(make([]byte, 0, len(v)), v)
	}
	if f&jsonstr.NonASCII != 0 && !utf8.Valid(v) {
		// Jackson's position of the bad byte is not emulated: the error
		// names the string's first byte, or its quote when it holds
		// escapes.
		at := start + 1
		if f&jsonstr.Escaped != 0 {
			at = start
		}
		return "", p.errorf(at, "Invalid UTF-8 middle byte in string value")
	}
	p.pos = end
	return string(v), nil
}

func isIntegerLiteral(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '.' || s[i] == 'e' || s[i] == 'E' {
			return false
		}
	}
	return true
}
