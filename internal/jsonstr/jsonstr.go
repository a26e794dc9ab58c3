// Package jsonstr reads JSON string literals (RFC 8259): it finds where one
// ends, checks its syntax, and decodes its escapes. It is the one string
// scanner of Sluice's hand-written JSON readers: the router's json step, the
// shipper's docker decoder, the document reader of the Elasticsearch
// stand-in (eslite), and the string fields of the JSON record codec
// (schemas).
//
// The readers differ in what they do with invalid UTF-8 (the router and the
// record codec replace it as encoding/json does, the shipper passes it on,
// the Elasticsearch emulation refuses it) and in how they word errors, so
// both are left to them: Scan reports whether a string holds any byte >=
// 0x80 and returns errors as a Kind and an offset, Append copies such bytes
// unchanged, and Unquote and ReplaceInvalid replace them as encoding/json
// does. Everything else (which escapes exist, a lone surrogate becoming
// U+FFFD) is encoding/json's behaviour, which FuzzUnquote checks.
package jsonstr

import (
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// Text is the input of the functions of this package: a string or a byte
// slice, so that no caller converts (and copies) its input.
type Text interface{ ~string | ~[]byte }

// Flags describe the content of a string literal, as Scan found it.
type Flags uint8

const (
	// Escaped is set when the content holds a backslash escape: its value
	// differs from its bytes and must be decoded (Append).
	Escaped Flags = 1 << iota
	// NonASCII is set when the content holds a byte >= 0x80 outside
	// escapes: it may be invalid UTF-8.
	NonASCII
)

// Kind is the reason a string literal is malformed.
type Kind uint8

const (
	// Unterminated: the input ends before the closing quote. Offset is the
	// length of the input.
	Unterminated Kind = iota + 1
	// EndInEscape: the input ends right after a backslash. Offset is the
	// length of the input.
	EndInEscape
	// Control: a byte below 0x20, which JSON requires to be escaped. Offset
	// is that byte's.
	Control
	// BadEscape: a backslash followed by a byte that begins no escape.
	// Offset is that byte's.
	BadEscape
	// BadHex: \u not followed by four hex digits. Offset is the 'u''s.
	BadHex
)

// Error is a malformed string literal: what is wrong, and where, as an
// offset into the input. Callers word it their own way (the Elasticsearch
// emulation as Jackson does); Error's own text is for the others.
type Error struct {
	Kind   Kind
	Offset int
	// Byte is the offending byte, for Control and BadEscape.
	Byte byte
}

func (e *Error) Error() string {
	switch e.Kind {
	case Unterminated, EndInEscape:
		return "unterminated string"
	case Control:
		return fmt.Sprintf("control character %#02x in string", e.Byte)
	case BadEscape:
		return fmt.Sprintf("bad escape \\%c", e.Byte)
	case BadHex:
		return `bad \u escape`
	}
	return "malformed string"
}

// plain[c] is true for the bytes that may stand for themselves inside a
// string: not the quote, not the backslash, not a control byte.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// Scan checks the string literal whose opening quote is s[i] and returns
// the offset just past its closing quote, and what its content holds. The
// content is s[i+1 : end-1]. Bytes >= 0x80 are not checked: whether invalid
// UTF-8 is an error, replaced or kept is the caller's choice (see NonASCII).
//
// It allocates nothing, unless it fails.
func Scan[T Text](s T, i int) (end int, f Flags, err *Error) {
	var high byte // the OR of the plain bytes: >= 0x80 if any is
	for i++; i < len(s); {
		c := s[i]
		if plain[c] {
			high |= c
			i++
			continue
		}
		switch {
		case c == '"':
			if high >= utf8.RuneSelf {
				f |= NonASCII
			}
			return i + 1, f, nil
		case c == '\\':
			f |= Escaped
			if i+1 >= len(s) {
				return 0, 0, &Error{Kind: EndInEscape, Offset: len(s)}
			}
			switch e := s[i+1]; e {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if _, ok := hex4(s, i+2); !ok {
					return 0, 0, &Error{Kind: BadHex, Offset: i + 1}
				}
				i += 6
			default:
				return 0, 0, &Error{Kind: BadEscape, Offset: i + 1, Byte: e}
			}
		default:
			return 0, 0, &Error{Kind: Control, Offset: i, Byte: c}
		}
	}
	return 0, 0, &Error{Kind: Unterminated, Offset: len(s)}
}

// Append appends the value of raw, the content of a string literal (between
// its quotes), to dst: escapes are decoded and every other byte is copied
// unchanged, invalid UTF-8 too. A \u escape of a surrogate that is not the
// first of a pair followed by its second becomes U+FFFD, as in
// encoding/json.
//
// raw should be content Scan accepted; anything else is decoded as well as
// it goes (a malformed escape is copied as written) and never panics.
func Append[T Text](dst []byte, raw T) []byte {
	for i := 0; i < len(raw); {
		// Copy the run of bytes up to the next escape at once.
		j := i
		for j < len(raw) && raw[j] != '\\' {
			j++
		}
		dst = append(dst, raw[i:j]...)
		if j+1 >= len(raw) {
			if j < len(raw) { // a trailing lone backslash
				dst = append(dst, '\\')
			}
			break
		}
		i = j + 2
		switch e := raw[j+1]; e {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(raw, i)
			if !ok {
				dst = append(dst, '\\', 'u')
				continue
			}
			i += 4
			if utf16.IsSurrogate(r) {
				r2, ok := rune(0), false
				if i+1 < len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					r2, ok = hex4(raw, i+2)
				}
				if d := utf16.DecodeRune(r, r2); ok && d != utf8.RuneError {
					r = d
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
		default: // '"', '\\', '/', or anything Scan would refuse
			dst = append(dst, e)
		}
	}
	return dst
}

// Unquote reads the string literal whose opening quote is s[i] as
// encoding/json does: escapes decoded, each byte of invalid UTF-8 replaced
// by U+FFFD. It returns the value and the offset just past the closing
// quote.
//
// A string input without escapes or invalid UTF-8 (the common case) costs
// no allocation: the value is a substring of s. Otherwise the value costs
// one (and a second for invalid UTF-8).
func Unquote[T Text](s T, i int) (string, int, *Error) {
	end, f, err := Scan(s, i)
	if err != nil {
		return "", 0, err
	}
	raw := s[i+1 : end-1]
	if f&Escaped == 0 {
		v := string(raw) // no copy when T is a string
		if f&NonASCII != 0 {
			v = ReplaceInvalid(v)
		}
		return v, end, nil
	}
	// Escapes only shorten the content, so len(raw) is room enough and the
	// buffer is allocated once.
	b := Append(make([]byte, 0, len(raw)), raw)
	if f&NonASCII != 0 && !utf8.Valid(b) {
		return ReplaceInvalid(string(b)), end, nil
	}
	// b is not written again nor kept elsewhere: the string may own it,
	// as strings.Builder does, instead of a copy.
	return unsafe.String(unsafe.SliceData(b), len(b)), end, nil
}

// ReplaceInvalid returns s with each byte that is not part of valid UTF-8
// replaced by U+FFFD, as encoding/json does when it decodes a string (and
// unlike strings.ToValidUTF8, which replaces a run of them with one).
// Applied to the value Append decoded, it gives encoding/json's value: an
// escape decodes to whole characters, which can neither complete nor break
// the bytes around it. It returns s itself when s is valid.
func ReplaceInvalid(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	b := make([]byte, 0, len(s)+2*utf8.UTFMax)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, "\uFFFD"...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// hex4 parses the four hex digits at s[i:].
func hex4[T Text](s T, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte{s[i], s[i+1], s[i+2], s[i+3]} {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
