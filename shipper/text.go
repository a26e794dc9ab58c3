package shipper

import (
	"unicode/utf8"
	"unsafe"
)

// appendCapped appends src to dst without letting dst grow past limit bytes.
// It reports whether anything was cut. The cut may leave an incomplete UTF-8
// sequence at the end of dst; finishText repairs that. dst is a buffer from
// getBuf (or nil): it grows through the pools.
func appendCapped(dst, src []byte, limit int) ([]byte, bool) {
	room := limit - len(dst)
	if room >= len(src) {
		return appendPooled(dst, src), false
	}
	if room > 0 {
		dst = appendPooled(dst, src[:room])
	}
	return dst, true
}

// trimIncompleteRune drops a UTF-8 sequence cut short at the end of b, so a
// truncation never splits a character.
func trimIncompleteRune(b []byte) []byte {
	// Look back at most utf8.UTFMax-1 bytes for the start of the last rune.
	for i := 1; i < utf8.UTFMax && i <= len(b); i++ {
		c := b[len(b)-i]
		if c < utf8.RuneSelf { // ASCII: nothing is cut
			return b
		}
		if utf8.RuneStart(c) {
			if r, size := utf8.DecodeRune(b[len(b)-i:]); r == utf8.RuneError && size <= 1 && !utf8.FullRune(b[len(b)-i:]) {
				return b[:len(b)-i]
			}
			return b
		}
	}
	return b
}

// cleanText turns b into the record's log text: valid UTF-8, with each run
// of invalid bytes replaced by U+FFFD. It reports whether anything was
// replaced. truncated says b was cut at a byte limit, so a rune cut short at
// its very end is dropped rather than replaced.
//
// When b needs no repair the string shares b's memory (no copy on the hot
// path): it is valid only while b is unchanged.
func cleanText(b []byte, truncated bool) (string, bool) {
	if truncated {
		b = trimIncompleteRune(b)
	}
	if utf8.Valid(b) {
		if len(b) == 0 {
			return "", false
		}
		return unsafe.String(&b[0], len(b)), false
	}
	out := make([]byte, 0, len(b)+8)
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size <= 1 {
			out = append(out, "\uFFFD"...)
			// Collapse a run of invalid bytes into one replacement.
			for b = b[size:]; len(b) > 0; {
				if r, s := utf8.DecodeRune(b); r == utf8.RuneError && s <= 1 {
					b = b[s:]
					continue
				}
				break
			}
			continue
		}
		out = append(out, b[:size]...)
		b = b[size:]
	}
	return string(out), true
}
