package loadtest

import (
	"bytes"
	"strconv"
)

// Every line a simulated container writes carries a marker, its unique id:
// "ltn<node>x<seq>", both numbers in decimal without leading zeros, as in
// "ltn0x123". Markers are lowercase letters and digits only, so that
// Elasticsearch's standard analyzer keeps one as one token and a term,
// keyword or regex query finds it, and they contain nothing JSON escapes,
// so they read the same in a container's log line, a Kafka record and a
// stored document. The generator writes a marker after a space or a quote
// and before a space, a quote or the end of the line, never next to a
// letter, digit or underscore.
const (
	markerPrefix = "ltn"
	// MaxMarkerNode and MaxMarkerSeq bound the numbers of a marker.
	MaxMarkerNode = 1<<16 - 1
	MaxMarkerSeq  = 1<<40 - 1
)

// Marker returns the marker of line seq of node.
func Marker(node, seq int) string {
	return string(appendMarker(make([]byte, 0, 24), node, seq))
}

// appendMarker appends Marker(node, seq) to b.
func appendMarker(b []byte, node, seq int) []byte {
	b = append(b, markerPrefix...)
	b = strconv.AppendUint(b, uint64(node), 10)
	b = append(b, 'x')
	return strconv.AppendUint(b, uint64(seq), 10)
}

// FindMarkers calls fn for every marker in b, in order: the bytes of a log
// line, a JSON document, a Kafka record value. A marker counts only as a
// whole word: the bytes either side of it must not be letters, digits or
// '_' ("altn0x1" and "ltn0x12a" hold none), its numbers have no leading
// zeros and are at most MaxMarkerNode and MaxMarkerSeq.
func FindMarkers(b []byte, fn func(node, seq int)) {
	for i := 0; ; {
		j := bytes.Index(b[i:], []byte(markerPrefix))
		if j < 0 {
			return
		}
		start := i + j
		i = start + 1 // the next candidate starts after this one's 'l' at least
		if start > 0 && wordByte(b[start-1]) {
			continue
		}
		p := start + len(markerPrefix)
		node, p, ok := markerNumber(b, p, MaxMarkerNode)
		if !ok || p >= len(b) || b[p] != 'x' {
			continue
		}
		seq, p, ok := markerNumber(b, p+1, MaxMarkerSeq)
		if !ok || (p < len(b) && wordByte(b[p])) {
			continue
		}
		fn(int(node), int(seq))
		i = p
	}
}

// markerNumber reads a decimal number without leading zeros at b[p:], at
// most max, and returns it and the index after it.
func markerNumber(b []byte, p int, max uint64) (n uint64, end int, ok bool) {
	start := p
	for ; p < len(b) && b[p] >= '0' && b[p] <= '9'; p++ {
		n = n*10 + uint64(b[p]-'0')
		if n > max {
			return 0, p, false
		}
	}
	switch {
	case p == start: // no digits
		return 0, p, false
	case b[start] == '0' && p-start > 1: // leading zero: not what Marker writes
		return 0, p, false
	}
	return n, p, true
}

// wordByte reports whether c continues a word for the standard analyzer
// (ASCII letters, digits and '_'). Bytes of multi-byte UTF-8 characters
// count as word bytes too: a marker glued to a letter such as 'é' is not
// one token.
func wordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c >= 0x80
}
