package shipper

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sluicelogs/sluice/internal/jsonstr"
)

// Formats of a decoded line, stored in Line.Format.
const (
	FormatCRI    = "cri"
	FormatDocker = "docker"
	FormatRaw    = "raw"
)

// Stream names. Decoders return these constants, never a copy, so that a
// decoded Line costs no allocation for its stream.
const (
	streamStdout = "stdout"
	streamStderr = "stderr"
)

// Sentinel errors of the decoders; the returned errors wrap them with the
// reason, so test with errors.Is.
var (
	ErrNotCRI    = errors.New("not a cri log line")
	ErrNotDocker = errors.New("not a docker json-file log line")
)

// Line is one decoded physical line of a container log file.
type Line struct {
	Time    time.Time // event time; zero when the line carried none (raw)
	Stream  string    // "stdout", "stderr", or "" for raw lines
	Partial bool      // more fragments of the same message follow (CRI "P" tag; docker "log" without trailing "\n")
	Content []byte    // the message fragment without the line terminator; for CRI it aliases the input, for docker it may
	Format  string
}

// DecodeCRI decodes one line of a CRI (containerd, CRI-O) log file:
//
//	<timestamp> <stdout|stderr> <P|F>[:<tag>...] <content>
//
// b is one line without its trailing '\n'; one trailing '\r' is tolerated and
// is not part of Content. The timestamp is RFC 3339 with 0 to 9 (or more,
// truncated) fractional digits and a "Z" or "±hh:mm" offset, or anything else
// time.Parse(time.RFC3339Nano) takes (such as a ',' before the fraction);
// Time is returned in UTC. The first tag decides Partial ("P") or not ("F"); further tags are
// ignored. The content may be empty, with or without the space before it.
// Content bytes are passed through unchanged, valid UTF-8 or not.
//
// Content aliases b: the caller must neither modify b while it uses Content
// nor modify Content. On the common path DecodeCRI allocates nothing.
//
// An error wraps ErrNotCRI; any input is safe.
func DecodeCRI(b []byte) (Line, error) {
	l, reason := decodeCRI(b)
	if reason != "" {
		return Line{}, fmt.Errorf("%w: %s", ErrNotCRI, reason)
	}
	return l, nil
}

// decodeCRI is DecodeCRI without the error allocation: a non-empty reason
// means b is not a CRI line. DecodeLine uses it to try formats cheaply.
func decodeCRI(b []byte) (Line, string) {
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}

	// Timestamp.
	sp := bytes.IndexByte(b, ' ')
	if sp < 0 {
		return Line{}, "no field separator"
	}
	ts, ok := parseLogTime(b[:sp])
	if !ok {
		return Line{}, "bad timestamp"
	}
	rest := b[sp+1:]

	// Stream. Compared on fixed lengths so that the common path does no search.
	var stream string
	switch {
	case len(rest) > 6 && rest[6] == ' ' && string(rest[:6]) == streamStdout:
		stream = streamStdout
	case len(rest) > 6 && rest[6] == ' ' && string(rest[:6]) == streamStderr:
		stream = streamStderr
	default:
		return Line{}, "stream is not stdout or stderr"
	}
	rest = rest[7:]

	// Tags: "P" or "F", optionally followed by ":"-separated extra tags.
	if len(rest) == 0 || (rest[0] != 'P' && rest[0] != 'F') {
		return Line{}, "first tag is not P or F"
	}
	partial := rest[0] == 'P'
	i := 1
	if i < len(rest) && rest[i] == ':' {
		for i < len(rest) && rest[i] != ' ' {
			i++
		}
	}
	var content []byte
	switch {
	case i == len(rest): // "F" with no space and no content
		content = rest[i:]
	case rest[i] == ' ':
		content = rest[i+1:]
	default:
		return Line{}, "first tag is not P or F"
	}
	return Line{Time: ts, Stream: stream, Partial: partial, Content: content, Format: FormatCRI}, ""
}

// DecodeDocker decodes one line of a docker json-file log:
//
//	{"log":"hello\n","stream":"stdout","time":"2019-01-01T11:11:11.111111111Z"}
//
// Keys may come in any order and other keys (such as "attrs") are allowed;
// "log" must be a string, "stream" "stdout" or "stderr", and "time" an RFC 3339
// timestamp (Time is returned in UTC), or the line is not a docker line.
// Space around the object is allowed. Keys match exactly (case sensitive,
// after unescaping); a repeated key's last value wins.
//
// A "log" ending in "\n" is a complete message: Partial is false and the "\n"
// is stripped (with a '\r' before it, as DecodeCRI tolerates one). Without the
// "\n", Partial is true: docker splits messages over 16 KiB into several
// entries and only the last one ends in "\n". JSON escapes are decoded; raw
// bytes inside the string, valid UTF-8 or not, are passed through unchanged,
// and a lone surrogate escape becomes U+FFFD as in encoding/json.
//
// Content may alias b (when "log" holds no escape but its final "\n"), so the
// caller must neither modify b while it uses Content nor modify Content.
//
// An error wraps ErrNotDocker; any input is safe.
func DecodeDocker(b []byte) (Line, error) {
	l, reason := decodeDocker(b)
	if reason != "" {
		return Line{}, fmt.Errorf("%w: %s", ErrNotDocker, reason)
	}
	return l, nil
}

// decodeDocker is DecodeDocker with the reason as a string instead of an error.
func decodeDocker(b []byte) (Line, string) {
	// json.Valid checks the whole syntax (nesting, numbers, escapes) without
	// building values; the scan below may then assume well-formed JSON.
	if !json.Valid(b) {
		return Line{}, "invalid json"
	}
	i := jsonSkipSpace(b, 0)
	if b[i] != '{' {
		return Line{}, "not a json object"
	}
	i++
	var logRaw, streamRaw, timeRaw []byte
	var haveLog, haveStream, haveTime bool
	for {
		i = jsonSkipSpace(b, i)
		if b[i] == '}' {
			break
		}
		if b[i] == ',' {
			i = jsonSkipSpace(b, i+1)
		}
		// Key.
		kEnd := jsonStringEnd(b, i)
		key := b[i+1 : kEnd-1]
		i = jsonSkipSpace(b, kEnd)
		i = jsonSkipSpace(b, i+1) // ':'
		// Value.
		vStart := i
		i = jsonValueEnd(b, i)
		which := dockerKey(key)
		if which == dockerKeyOther {
			continue
		}
		if b[vStart] != '"' {
			return Line{}, dockerNotString[which]
		}
		raw := b[vStart+1 : i-1]
		switch which {
		case dockerKeyLog:
			logRaw, haveLog = raw, true
		case dockerKeyStream:
			streamRaw, haveStream = raw, true
		case dockerKeyTime:
			timeRaw, haveTime = raw, true
		}
	}
	if !haveLog {
		return Line{}, "no log field"
	}
	if !haveStream {
		return Line{}, "no stream field"
	}
	if !haveTime {
		return Line{}, "no time field"
	}

	if bytes.IndexByte(streamRaw, '\\') >= 0 {
		streamRaw = jsonUnescape(streamRaw)
	}
	var stream string
	switch string(streamRaw) {
	case streamStdout:
		stream = streamStdout
	case streamStderr:
		stream = streamStderr
	default:
		return Line{}, "stream is not stdout or stderr"
	}

	if bytes.IndexByte(timeRaw, '\\') >= 0 {
		timeRaw = jsonUnescape(timeRaw)
	}
	ts, ok := parseLogTime(timeRaw)
	if !ok {
		return Line{}, "bad time field"
	}

	// The common case is a log whose only escape is the final "\n": keep it
	// aliased. Otherwise decode the escapes into a fresh slice.
	var content []byte
	partial := true
	switch esc := bytes.IndexByte(logRaw, '\\'); {
	case esc < 0:
		content = logRaw
	case esc == len(logRaw)-2 && logRaw[esc+1] == 'n':
		content, partial = logRaw[:esc], false
	default:
		content = jsonUnescape(logRaw)
		if n := len(content); n > 0 && content[n-1] == '\n' {
			content, partial = content[:n-1], false
		}
	}
	if !partial {
		if n := len(content); n > 0 && content[n-1] == '\r' {
			content = content[:n-1]
		}
	}
	return Line{Time: ts, Stream: stream, Partial: partial, Content: content, Format: FormatDocker}, ""
}

// Keys of a docker json-file line that decodeDocker keeps.
const (
	dockerKeyOther = iota
	dockerKeyLog
	dockerKeyStream
	dockerKeyTime
)

// dockerNotString holds constant failure reasons, so that DecodeLine trying a
// JSON line that is not docker's allocates nothing for the reason.
var dockerNotString = [...]string{
	dockerKeyLog:    "log field is not a string",
	dockerKeyStream: "stream field is not a string",
	dockerKeyTime:   "time field is not a string",
}

// dockerKey classifies the raw (still escaped) bytes of a JSON object key.
func dockerKey(raw []byte) int {
	if bytes.IndexByte(raw, '\\') >= 0 {
		raw = jsonUnescape(raw)
	}
	switch string(raw) {
	case "log":
		return dockerKeyLog
	case "stream":
		return dockerKeyStream
	case "time":
		return dockerKeyTime
	}
	return dockerKeyOther
}

// jsonSkipSpace returns the index of the first non-whitespace byte of b at or
// after i. b must be valid JSON with a value after i.
func jsonSkipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// jsonStringEnd returns the index just past the closing quote of the JSON string
// that starts with the quote at b[i]. b must be valid JSON.
func jsonStringEnd(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// jsonValueEnd returns the index just past the JSON value starting at b[i]. b must
// be valid JSON, so brackets balance outside strings.
func jsonValueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return jsonStringEnd(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = jsonStringEnd(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return len(b)
	default: // number, true, false, null
		for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' &&
			b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
			i++
		}
		return i
	}
}

// jsonUnescape decodes the JSON escapes of s, the bytes between the quotes of a
// string that json.Valid accepted, into a new slice. Other bytes are copied
// unchanged, so invalid UTF-8 survives; a lone surrogate becomes U+FFFD.
func jsonUnescape(s []byte) []byte {
	return jsonstr.Append(make([]byte, 0, len(s)), s)
}

// DecodeLine decodes b as a CRI line, else as a docker json-file line, else
// returns it as a raw line (Format FormatRaw, Content b, zero Time, empty
// Stream, Partial false). It never fails and never panics. Content may alias b,
// with the ownership rules of DecodeCRI and DecodeDocker. Lines that are
// neither CRI nor docker cost no allocation in the common case (a first word
// that looks like a timestamp but is not one may cost time.Parse's), and JSON
// lines without a "log" key are told apart from docker's without a full JSON
// scan.
func DecodeLine(b []byte) Line {
	if l, reason := decodeCRI(b); reason == "" {
		return l
	}
	if mayBeDocker(b) {
		if l, reason := decodeDocker(b); reason == "" {
			return l
		}
	}
	return Line{Content: b, Format: FormatRaw}
}

// mayBeDocker is a cheap exact pre-check for DecodeLine, so that JSON lines
// of a raw file (an application's own JSON logs) skip the full JSON scan: a
// docker line is an object with a "log" key, spelled either literally or
// with a \u escape, since JSON has no short escape for a letter.
func mayBeDocker(b []byte) bool {
	i := jsonSkipSpace(b, 0)
	return i < len(b) && b[i] == '{' &&
		(bytes.Contains(b, []byte(`"log"`)) || bytes.Contains(b, []byte(`\u`)))
}

// parseLogTime parses an RFC 3339 timestamp and returns it in UTC. The fast
// path takes "2006-01-02T15:04:05[.fraction](Z|±hh:mm)" with any number of
// fractional digits (beyond nine truncated), exactly the shapes and ranges
// that time.Parse(time.RFC3339Nano) takes on its own fast path, and allocates
// nothing. Anything else goes to time.Parse.
func parseLogTime(b []byte) (time.Time, bool) {
	if t, ok := parseLogTimeFast(b); ok {
		return t, true
	}
	// Cheap reject of what time.Parse would reject too (its shortest RFC 3339
	// input has a one-digit hour), to spare raw lines its allocations.
	if len(b) < len("2006-01-02T1:04:05Z") || b[4] != '-' {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

func parseLogTimeFast(b []byte) (time.Time, bool) {
	if len(b) < len("2006-01-02T15:04:05Z") ||
		b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return time.Time{}, false
	}
	year, ok1 := parseDigits(b[0:4])
	month, ok2 := parseDigits(b[5:7])
	day, ok3 := parseDigits(b[8:10])
	hour, ok4 := parseDigits(b[11:13])
	minute, ok5 := parseDigits(b[14:16])
	sec, ok6 := parseDigits(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) ||
		month < 1 || month > 12 || day < 1 || day > daysInMonth(month, year) ||
		hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	b = b[19:]

	var nsec int
	if len(b) >= 2 && b[0] == '.' && isASCIIDigit(b[1]) {
		n := 1
		scale := 100000000
		for ; n < len(b) && isASCIIDigit(b[n]); n++ {
			nsec += int(b[n]-'0') * scale
			scale /= 10
		}
		b = b[n:]
	}

	var offset int // seconds east of UTC
	switch {
	case len(b) == 1 && b[0] == 'Z':
	case len(b) == 6 && (b[0] == '+' || b[0] == '-') && b[3] == ':':
		oh, okh := parseDigits(b[1:3])
		om, okm := parseDigits(b[4:6])
		if !okh || !okm || oh > 23 || om > 59 {
			return time.Time{}, false
		}
		offset = (oh*60 + om) * 60
		if b[0] == '-' {
			offset = -offset
		}
	default:
		return time.Time{}, false
	}

	secs := daysFromCivil(year, month, day)*86400 + int64(hour*3600+minute*60+sec) - int64(offset)
	return time.Unix(secs, int64(nsec)).UTC(), true
}

// parseDigits parses b, all ASCII digits, as a decimal number.
func parseDigits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if !isASCIIDigit(c) {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func isASCIIDigit(c byte) bool { return '0' <= c && c <= '9' }

func isLeapYear(year int) bool { return year%4 == 0 && (year%100 != 0 || year%400 == 0) }

// daysInMonth returns the number of days in month (1-12) of year.
func daysInMonth(month, year int) int {
	switch month {
	case 2:
		if isLeapYear(year) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil returns the days since 1970-01-01 of a proleptic Gregorian
// date, year >= 0 (Howard Hinnant's days_from_civil).
func daysFromCivil(year, month, day int) int64 {
	if month <= 2 {
		year--
	}
	era := year
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := year - era*400 // [0, 399]
	mp := (month + 9) % 12
	doy := (153*mp+2)/5 + day - 1          // [0, 365]
	doe := yoe*365 + yoe/4 - yoe/100 + doy // [0, 146096]
	return int64(era)*146097 + int64(doe) - 719468
}
