// Package lineinput reads the lines people and scripts send Sluice outside
// its shippers: a line of text or a JSON object per line, as `sluice
// produce` sends them from stdin, the gateway takes them on /v1/lines and
// `sluice pipeline test` reads them. Decode turns one into a Record with the
// rules the router applies to a raw topic's value that is not Avro, so a
// line means the same whichever way it came.
package lineinput

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/sluicelogs/sluice/schemas"
)

// MaxLine bounds one input line: the router's output limit is 900 KiB, and
// Kafka's default message limit 1 MiB.
const MaxLine = 900 << 10

// NewScanner returns a scanner of r's lines of at most max bytes (MaxLine
// when max is 0 or more than MaxLine). A longer line stops it with
// bufio.ErrTooLong; TooLong explains that error.
func NewScanner(r io.Reader, max int) *bufio.Scanner {
	if max <= 0 || max > MaxLine {
		max = MaxLine
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, min(64<<10, max)), max)
	return sc
}

// TooLong returns err, or when it is bufio.ErrTooLong an error saying which
// bound the line passed.
func TooLong(err error, max int) error {
	if errors.Is(err, bufio.ErrTooLong) {
		return fmt.Errorf("a line is longer than %d bytes", max)
	}
	return err
}

// Decode turns one line into a Record:
//
//   - a JSON object with a "log" key fills the record's fields (the JSON
//     form of schemas.Record); one whose fields have the wrong types is an
//     error wrapping schemas.ErrMalformed;
//   - any other JSON object is an application's log line and becomes Log
//     whole, so nothing in it is lost and a pipeline's json step parses it
//     like any other line;
//   - anything else is a line of text (see Text).
//
// The Record does not retain line.
func Decode(line []byte) (schemas.Record, error) {
	if schemas.Sniff(line) == schemas.FormatJSON {
		rec, err := schemas.DecodeJSON(line)
		switch {
		case err == nil && (rec.Log != "" || HasLogKey(line)):
			return rec, nil
		case err != nil && !errors.Is(err, schemas.ErrUnknownFormat):
			return rec, err
		}
	}
	return Text(line), nil
}

// Text is the Record of a line of text: Log is the line without its
// trailing CR and LF, invalid UTF-8 replaced with U+FFFD and flagged
// InvalidUTF8.
func Text(line []byte) schemas.Record {
	s := strings.TrimRight(string(line), "\r\n")
	rec := schemas.Record{Log: s}
	if !utf8.ValidString(s) {
		rec.Log, rec.InvalidUTF8 = strings.ToValidUTF8(s, "\uFFFD"), true
	}
	return rec
}

// HasLogKey reports whether b is a JSON object with a top-level "log" key.
func HasLogKey(b []byte) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return false
	}
	_, ok := m["log"]
	return ok
}
