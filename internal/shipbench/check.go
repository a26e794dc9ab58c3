package shipbench

import (
	"fmt"
	"hash/maphash"
	"strconv"
	"strings"
)

// Check accounts for the records a shipper delivered from a workload of
// a known number of messages: each must arrive exactly once, as one record
// whose text holds one seq token, long messages whole. A message delivered
// twice is allowed only as the same record: both copies must carry the
// same record id (the shipper's at-least-once rule, which makes the copy
// harmless downstream). It is not safe for concurrent use.
type Check struct {
	ids  []uint64 // per seq: hash of the first copy's record id; 0 = not seen
	seed maphash.Seed
	res  Result
}

// Result is what Check found.
type Result struct {
	Lines   int   // messages written: seq 0 to Lines-1
	Records int64 // records read
	Bytes   int64 // bytes of their text
	Seen    int   // distinct messages delivered
	Missing int   // messages never delivered
	// Dups are copies of a message already delivered with the same record
	// id: allowed. DupIDs are copies with another id: a message shipped
	// twice as two records.
	Dups, DupIDs int
	NoSeq        int // records without a seq token (e.g. a piece of a long message shipped alone)
	Merged       int // records with more than one seq token (messages run together)
	OutOfRange   int // seq tokens not below Lines
	BigWhole     int // long messages delivered whole
	BigBroken    int // long messages cut, or their pieces out of order
	// Problems holds the first few problems found, for a failure message.
	Problems []string
}

// maxProblems bounds Result.Problems.
const maxProblems = 10

// NewCheck returns a Check of a workload of lines messages.
func NewCheck(lines int) *Check {
	return &Check{ids: make([]uint64, lines), seed: maphash.MakeSeed(), res: Result{Lines: lines}}
}

// Add accounts for one record: its id and its text (schemas.Record's ID
// and Log).
func (c *Check) Add(id, text string) {
	r := &c.res
	r.Records++
	r.Bytes += int64(len(text))
	seq, at, n := -1, -1, 0
	for i := 0; ; {
		j := strings.Index(text[i:], "seq=")
		if j < 0 {
			break
		}
		j += i
		i = j + len("seq=")
		if j > 0 && isWordByte(text[j-1]) {
			continue
		}
		v, w := leadingInt(text[i:])
		if w == 0 {
			continue
		}
		n++
		if seq < 0 {
			seq, at = v, j
		}
	}
	switch {
	case n == 0:
		r.NoSeq++
		c.problem("a record without a seq token: %.80q", text)
		return
	case n > 1:
		r.Merged++
		c.problem("seq=%d: a record with %d seq tokens", seq, n)
	}
	if seq >= len(c.ids) {
		r.OutOfRange++
		c.problem("seq=%d: beyond the %d messages written", seq, len(c.ids))
		return
	}
	h := maphash.String(c.seed, id) | 1 // never 0, which means unseen
	switch first := c.ids[seq]; {
	case first == 0:
		c.ids[seq] = h
		r.Seen++
	case first == h:
		r.Dups++
		return
	default:
		r.DupIDs++
		c.problem("seq=%d: delivered again with another record id (%s)", seq, id)
		return
	}
	if rest, ok := strings.CutPrefix(text[at:], "seq="+strconv.Itoa(seq)+" big=1 len="); ok {
		want, w := leadingInt(rest)
		if w > 0 && len(text)-at == want && strings.HasSuffix(text, " eob="+strconv.Itoa(seq)) {
			r.BigWhole++
		} else {
			r.BigBroken++
			c.problem("seq=%d: long message of %d bytes delivered as %d bytes (or its end marker lost)", seq, want, len(text)-at)
		}
	}
}

func (c *Check) problem(format string, args ...any) {
	if len(c.res.Problems) < maxProblems {
		c.res.Problems = append(c.res.Problems, fmt.Sprintf(format, args...))
	}
}

// Result counts the messages never delivered and returns what was found.
func (c *Check) Result() Result {
	r := c.res
	r.Missing = len(c.ids) - r.Seen
	shown := 0
	for seq, h := range c.ids {
		if h == 0 && shown < 3 && len(r.Problems) < maxProblems+3 {
			r.Problems = append(r.Problems, fmt.Sprintf("seq=%d: missing", seq))
			shown++
		}
	}
	r.Problems = append([]string(nil), r.Problems...)
	return r
}

// Err is nil when every message arrived exactly once (copies with the same
// record id aside) and every long message whole.
func (r Result) Err() error {
	if r.Missing == 0 && r.DupIDs == 0 && r.NoSeq == 0 && r.Merged == 0 && r.OutOfRange == 0 && r.BigBroken == 0 {
		return nil
	}
	return fmt.Errorf("%s; first problems:\n  %s", r, strings.Join(r.Problems, "\n  "))
}

func (r Result) String() string {
	return fmt.Sprintf("%d messages, %d records (%d bytes): %d delivered, %d missing, %d copies with the same id, "+
		"%d copies with another id, %d without seq, %d merged, %d out of range, long messages %d whole and %d broken",
		r.Lines, r.Records, r.Bytes, r.Seen, r.Missing, r.Dups, r.DupIDs, r.NoSeq, r.Merged, r.OutOfRange, r.BigWhole, r.BigBroken)
}

func isWordByte(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// leadingInt parses the decimal digits at the start of s (at most 18) and
// returns the value and the number of digits.
func leadingInt(s string) (v, n int) {
	for n < len(s) && n < 18 && '0' <= s[n] && s[n] <= '9' {
		v = v*10 + int(s[n]-'0')
		n++
	}
	return v, n
}
