package escompat

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Ordered is a JSON object that keeps its members in order, the way
// Elasticsearch orders the fields of its responses. Packages serving the API
// declare their own small slice type implementing it, so that responses read
// as literals:
//
//	type obj []kv
//	type kv struct{ k string; v any }
//	func (o obj) Len() int                  { return len(o) }
//	func (o obj) Member(i int) (string, any) { return o[i].k, o[i].v }
type Ordered interface {
	Len() int
	Member(i int) (key string, value any)
}

// obj is this package's Ordered.
type obj []kv

type kv struct {
	k string
	v any
}

func (o obj) Len() int                   { return len(o) }
func (o obj) Member(i int) (string, any) { return o[i].k, o[i].v }

// Values Encode understands: nil, bool, int, int64, float64, string,
// Ordered, []any, []string, json.RawMessage, *Document and *node; anything
// else goes through encoding/json.

// FilterPath is a parsed filter_path parameter: a list of dotted patterns,
// each split into segments. A segment may hold '*' wildcards; a segment "**"
// matches any number of levels. A nil FilterPath filters nothing.
type FilterPath [][]string

// ParseFilterPath parses the filter_path query parameter; "" gives nil.
func ParseFilterPath(param string) FilterPath {
	var fp FilterPath
	for _, p := range strings.Split(param, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		fp = append(fp, strings.Split(p, "."))
	}
	return fp
}

// descend returns the filters that apply below key, and whether key is
// included whole.
func (fp FilterPath) descend(key string) (next FilterPath, whole bool) {
	for _, f := range fp {
		if f[0] == "**" {
			next = append(next, f)
			if len(f) == 1 {
				return nil, true
			}
			sub, w := FilterPath{f[1:]}.descend(key)
			if w {
				return nil, true
			}
			next = append(next, sub...)
			continue
		}
		if GlobMatch(f[0], key) {
			if len(f) == 1 {
				return nil, true
			}
			next = append(next, f[1:])
		}
	}
	return next, false
}

// Encode renders v as compact JSON. With a non-nil filter only the matching
// parts are written, the way Elasticsearch applies filter_path: objects and
// array elements left empty by the filter are dropped, and a response left
// empty is {}.
func Encode(v any, fp FilterPath) []byte {
	var buf bytes.Buffer
	if fp == nil {
		writeValue(&buf, v)
		return buf.Bytes()
	}
	if !writeFiltered(&buf, v, fp) {
		return []byte("{}")
	}
	return buf.Bytes()
}

func writeFiltered(buf *bytes.Buffer, v any, fp FilterPath) bool {
	switch t := v.(type) {
	case Ordered:
		start := buf.Len()
		buf.WriteByte('{')
		n := 0
		for i := 0; i < t.Len(); i++ {
			k, v := t.Member(i)
			next, whole := fp.descend(k)
			if !whole && len(next) == 0 {
				continue
			}
			mark := buf.Len()
			if n > 0 {
				buf.WriteByte(',')
			}
			writeString(buf, k)
			buf.WriteByte(':')
			if whole {
				writeValue(buf, v)
			} else if !writeFiltered(buf, v, next) {
				buf.Truncate(mark)
				continue
			}
			n++
		}
		if n == 0 {
			buf.Truncate(start)
			return false
		}
		buf.WriteByte('}')
		return true
	case []any:
		return writeFilteredArray(buf, len(t), func(i int) any { return t[i] }, fp)
	case json.RawMessage:
		doc, err := ParseDocument(t)
		if err != nil {
			return false
		}
		return writeFiltered(buf, doc.root, fp)
	case *Document:
		return writeFiltered(buf, t.root, fp)
	case *node:
		switch t.kind {
		case kindObject:
			o := make(obj, len(t.keys))
			for i, k := range t.keys {
				o[i] = kv{k, t.vals[i]}
			}
			return writeFiltered(buf, o, fp)
		case kindArray:
			return writeFilteredArray(buf, len(t.vals), func(i int) any { return t.vals[i] }, fp)
		}
	}
	return false // a scalar where the filter wants to go deeper
}

func writeFilteredArray(buf *bytes.Buffer, n int, at func(int) any, fp FilterPath) bool {
	start := buf.Len()
	buf.WriteByte('[')
	written := 0
	for i := 0; i < n; i++ {
		mark := buf.Len()
		if written > 0 {
			buf.WriteByte(',')
		}
		if !writeFiltered(buf, at(i), fp) {
			buf.Truncate(mark)
			continue
		}
		written++
	}
	if written == 0 {
		buf.Truncate(start)
		return false
	}
	buf.WriteByte(']')
	return true
}

func writeValue(buf *bytes.Buffer, v any) {
	switch t := v.(type) {
	case nil:
		buf.WriteString("null")
	case bool:
		buf.WriteString(strconv.FormatBool(t))
	case int:
		buf.WriteString(strconv.Itoa(t))
	case int64:
		buf.WriteString(strconv.FormatInt(t, 10))
	case float64:
		if math.IsNaN(t) || math.IsInf(t, 0) {
			buf.WriteString("null")
			return
		}
		s := strconv.FormatFloat(t, 'f', -1, 64)
		if !strings.ContainsAny(s, ".e") {
			s += ".0"
		}
		buf.WriteString(s)
	case string:
		writeString(buf, t)
	case obj:
		buf.WriteByte('{')
		for i, m := range t {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeString(buf, m.k)
			buf.WriteByte(':')
			writeValue(buf, m.v)
		}
		buf.WriteByte('}')
	case Ordered:
		buf.WriteByte('{')
		for i := 0; i < t.Len(); i++ {
			if i > 0 {
				buf.WriteByte(',')
			}
			k, v := t.Member(i)
			writeString(buf, k)
			buf.WriteByte(':')
			writeValue(buf, v)
		}
		buf.WriteByte('}')
	case []any:
		buf.WriteByte('[')
		for i, e := range t {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeValue(buf, e)
		}
		buf.WriteByte(']')
	case []string:
		buf.WriteByte('[')
		for i, e := range t {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeString(buf, e)
		}
		buf.WriteByte(']')
	case json.RawMessage:
		if err := json.Compact(buf, t); err != nil {
			buf.WriteString("null")
		}
	case *Document:
		writeNode(buf, t.root)
	case *node:
		writeNode(buf, t)
	default:
		b, err := json.Marshal(t)
		if err != nil {
			buf.WriteString("null")
			return
		}
		buf.Write(b)
	}
}

func writeNode(buf *bytes.Buffer, n *node) {
	switch n.kind {
	case kindNull:
		buf.WriteString("null")
	case kindBool:
		buf.WriteString(strconv.FormatBool(n.b))
	case kindNumber:
		buf.WriteString(n.text)
	case kindString:
		writeString(buf, n.text)
	case kindObject:
		buf.WriteByte('{')
		for i, k := range n.keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeString(buf, k)
			buf.WriteByte(':')
			writeNode(buf, n.vals[i])
		}
		buf.WriteByte('}')
	case kindArray:
		buf.WriteByte('[')
		for i, e := range n.vals {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeNode(buf, e)
		}
		buf.WriteByte(']')
	}
}

const hexDigits = "0123456789abcdef"

// writeString writes s as a JSON string. Like Elasticsearch it does not
// escape '<', '>' or '&'; invalid UTF-8 becomes U+FFFD.
func writeString(buf *bytes.Buffer, s string) {
	buf.WriteByte('"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			buf.WriteString(s[start:i])
			switch c {
			case '"', '\\':
				buf.WriteByte('\\')
				buf.WriteByte(c)
			case '\n':
				buf.WriteString(`\n`)
			case '\r':
				buf.WriteString(`\r`)
			case '\t':
				buf.WriteString(`\t`)
			default:
				buf.WriteString(`\u00`)
				buf.WriteByte(hexDigits[c>>4])
				buf.WriteByte(hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf.WriteString(s[start:i])
			buf.WriteString(`\ufffd`)
			i += size
			start = i
			continue
		}
		i += size
	}
	buf.WriteString(s[start:])
	buf.WriteByte('"')
}

// GlobMatch reports whether s matches pattern, where '*' matches any run of
// characters (Elasticsearch's "simple match").
func GlobMatch(pattern, s string) bool {
	if !strings.Contains(pattern, "*") {
		return pattern == s
	}
	parts := strings.Split(pattern, "*")
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, last)
}

func itoa(i int) string     { return strconv.Itoa(i) }
func itoa64(i int64) string { return strconv.FormatInt(i, 10) }
