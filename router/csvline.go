package router

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// splitCSV splits one CSV record, a log line, into its values, appending
// them to dst. It reads what encoding/csv reads with LazyQuotes and a
// variable number of fields (FuzzSplitCSV holds the two together), without
// encoding/csv's per-call reader and buffer, which cost more than the
// splitting itself:
//   - a value that starts with a quote is quoted: it ends at a quote
//     followed by the delimiter or the end of the line, and "" inside it is
//     one quote; a quote followed by anything else is kept as it is, and so
//     is everything up to the end when the closing quote is missing;
//   - in any other value, quotes are plain characters;
//   - one trailing newline (\n or \r\n) is not part of the last value.
//
// A newline inside a quoted value is kept. A newline outside one is an
// error: the step reads one record, and a log line holding several is not
// one CSV line (encoding/csv would read the first and drop the rest).
// Values that need no unquoting are substrings of line.
func splitCSV(dst []string, line string, comma rune) ([]string, error) {
	if strings.HasSuffix(line, "\n") {
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	}
	if line == "" {
		return dst, errEmptyCSV
	}
	commaLen := utf8.RuneLen(comma)
	for {
		if line == "" || line[0] != '"' {
			// An unquoted value.
			i := strings.IndexRune(line, comma)
			v := line
			if i >= 0 {
				v = line[:i]
			}
			if strings.IndexByte(v, '\n') >= 0 {
				return dst, errCSVLines
			}
			dst = append(dst, v)
			if i < 0 {
				return dst, nil
			}
			line = line[i+commaLen:]
			continue
		}
		// A quoted value.
		line = line[1:]
		var b strings.Builder
		plain := true // no "" or bare quote yet: v is a substring
		start := line
		for {
			i := strings.IndexByte(line, '"')
			if i < 0 {
				// No closing quote: the rest is the value.
				if plain {
					return append(dst, start), nil
				}
				b.WriteString(line)
				return append(dst, b.String()), nil
			}
			rest := line[i+1:]
			r, _ := utf8.DecodeRuneInString(rest)
			switch {
			case rest == "":
				// The closing quote at the end of the line.
				if plain {
					return append(dst, start[:len(start)-len(line)+i]), nil
				}
				b.WriteString(line[:i])
				return append(dst, b.String()), nil
			case r == '\n' || strings.HasPrefix(rest, "\r\n"):
				return dst, errCSVLines
			case r == comma:
				if plain {
					dst = append(dst, start[:len(start)-len(line)+i])
				} else {
					b.WriteString(line[:i])
					dst = append(dst, b.String())
				}
				line = rest[commaLen:]
			case r == '"':
				// "" is one quote.
				if plain {
					b.WriteString(start[:len(start)-len(line)])
					plain = false
				}
				b.WriteString(line[:i+1])
				line = rest[1:]
				continue
			default:
				// A bare quote is kept.
				if plain {
					b.WriteString(start[:len(start)-len(line)])
					plain = false
				}
				b.WriteString(line[:i+1])
				line = rest
				continue
			}
			break
		}
	}
}

var (
	errEmptyCSV = errors.New("csv: empty line")
	errCSVLines = errors.New("csv: a newline outside quotes: more than one line")
)
