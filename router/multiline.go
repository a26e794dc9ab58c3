package router

import (
	"bytes"
	"fmt"
	"regexp"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/schemas"
)

// Bounds of a multiline step.
const (
	DefaultMultilineLines = 500
	MaxMultilineLines     = 10_000
	DefaultMultilineBytes = 64 << 10
	MaxMultilineBytes     = 512 << 10 // below Kafka's default 1 MiB message limit
	DefaultMultilineWait  = time.Second
	// MaxMultilineWait keeps a transaction short: a record waits for its
	// continuation lines in the transaction that read it.
	MaxMultilineWait = 5 * time.Second
)

// Multiline is a compiled multiline step: a record whose log matches
// Continuation is appended (after a newline) to the record before it from
// the same container, until the joined record has MaxLines lines or would
// pass MaxBytes (Join does the same to a list of records). The router does the joining, per partition and record key
// (one container), before the rest of the pipeline runs. Joining never
// reaches across transactions: a partition whose fetch ends with a record
// whose last line is younger than MaxWait is held back once (rewound and
// paused until MaxWait has passed, see batch.go), and every record still
// open at the end of a partition's records is finished with them. Process
// skips the step; a pipeline's tests: with lines: are joined first.
type Multiline struct {
	Continuation *regexp.Regexp
	cont         *sandboxRE
	MaxLines     int
	MaxBytes     int
	MaxWait      time.Duration
}

func compileMultiline(ss *StepSpec) (*Multiline, error) {
	if ss.Continuation == "" {
		return nil, fmt.Errorf("multiline: missing continuation (a regex matching continuation lines, for example '^\\s+at ')")
	}
	re, err := compileRegex(ss.Continuation)
	if err != nil {
		return nil, valueError("continuation", ss.Continuation, fmt.Errorf("multiline.continuation: %w", err))
	}
	ml := &Multiline{Continuation: re.re, cont: re, MaxLines: ss.MaxLines, MaxBytes: ss.MaxBytes, MaxWait: ss.MaxWait}
	switch {
	case ml.MaxLines == 0:
		ml.MaxLines = DefaultMultilineLines
	case ml.MaxLines < 2 || ml.MaxLines > MaxMultilineLines:
		return nil, fmt.Errorf("multiline.max_lines must be between 2 and %d, got %d", MaxMultilineLines, ml.MaxLines)
	}
	switch {
	case ml.MaxBytes == 0:
		ml.MaxBytes = DefaultMultilineBytes
	case ml.MaxBytes < 1024 || ml.MaxBytes > MaxMultilineBytes:
		return nil, fmt.Errorf("multiline.max_bytes must be between 1024 and %d, got %d", MaxMultilineBytes, ml.MaxBytes)
	}
	switch {
	case ml.MaxWait == 0:
		ml.MaxWait = DefaultMultilineWait
	case ml.MaxWait < 0 || ml.MaxWait > MaxMultilineWait:
		return nil, fmt.Errorf("multiline.max_wait must be between 0 and %s, got %s", MaxMultilineWait, ml.MaxWait)
	}
	return ml, nil
}

// apply does nothing: the router joins lines before Process.
func (*Multiline) apply(*schemas.Record, *state) *stepError { return nil }

// joins returns whether a record continues a joined record of lines lines
// and n bytes. A line is only matched when it fits the joined record and
// matching it costs at most MaxRecordCost (input length × the pattern's
// program size); a longer line starts a record of its own.
func (ml *Multiline) joins(log string, lines, n int) bool {
	return lines < ml.MaxLines && n+1+len(log) <= ml.MaxBytes &&
		(ml.cont == nil || ml.cont.cost(len(log)) <= MaxRecordCost) && ml.Continuation.MatchString(log)
}

// appendLine joins a continuation line to the record before it: the
// joined record keeps the first line's id and metadata, and is flagged
// when any of its lines is.
func appendLine(dst, line *schemas.Record) {
	dst.Log += "\n" + line.Log
	dst.InvalidUTF8 = dst.InvalidUTF8 || line.InvalidUTF8
	dst.Partial = dst.Partial || line.Partial
}

// Join joins consecutive records of one container as the router does,
// for a pipeline's tests: and sluice pipeline test.
func (ml *Multiline) Join(recs []schemas.Record) []schemas.Record {
	var out []schemas.Record
	lines := 0
	for i := range recs {
		if len(out) > 0 && ml.joins(recs[i].Log, lines, len(out[len(out)-1].Log)) {
			appendLine(&out[len(out)-1], &recs[i])
			lines++
			continue
		}
		out = append(out, recs[i])
		lines = 1
	}
	return out
}

// joiner holds the records being joined in one transaction, per
// container (topic, partition, key).
type joiner struct {
	open map[joinKey]*joined
}

type joinKey struct {
	topic     string
	partition int32
	key       string
}

type joined struct {
	tenant  string
	raw     *kgo.Record // the first line's record: its position names the joined record
	payload []byte      // every line's payload, newline-separated, for a dead letter
	last    int64       // offset of the last line
	rec     schemas.Record
	lines   int
	ml      *Multiline
	lastTS  time.Time // the last line's Kafka timestamp
}

// run finishes a joined record through the tenant's pipeline; a dead
// letter carries every line's payload.
func (g *joined) run(rt *Router, o *outputsFor) []*kgo.Record {
	raw := g.raw
	if g.lines > 1 {
		cp := *g.raw
		cp.Value = g.payload
		raw = &cp
	}
	return rt.run(g.tenant, nil, raw, g.rec, g.last, o)
}

// add takes a decoded record of a tenant whose pipeline joins lines. It
// returns the joined record it finished, if any (nil otherwise).
func (j *joiner) add(tenant string, raw *kgo.Record, rec schemas.Record, ml *Multiline) *joined {
	if j.open == nil {
		j.open = map[joinKey]*joined{}
	}
	k := joinKey{raw.Topic, raw.Partition, string(raw.Key)}
	g := j.open[k]
	if g != nil && g.ml == ml && ml.joins(rec.Log, g.lines, len(g.rec.Log)) {
		appendLine(&g.rec, &rec)
		g.payload = append(append(g.payload, '\n'), raw.Value...)
		g.last = raw.Offset
		g.lines++
		g.lastTS = raw.Timestamp
		return nil
	}
	j.open[k] = &joined{tenant: tenant, raw: raw, payload: bytes.Clone(raw.Value), last: raw.Offset, rec: rec, lines: 1, ml: ml, lastTS: raw.Timestamp}
	return g
}

// all removes and returns every joined record still open.
func (j *joiner) all() []*joined {
	out := make([]*joined, 0, len(j.open))
	for k, g := range j.open {
		out = append(out, g)
		delete(j.open, k)
	}
	return out
}

// youngUntil is when the youngest open joined record has waited its
// MaxWait for more lines, going by its last line's timestamp (not later
// than MaxWait from now, whatever a producer's clock says); zero when none
// is open or all are old enough to finish.
func (j *joiner) youngUntil(now time.Time) time.Time {
	var until time.Time
	for _, g := range j.open {
		last := g.lastTS
		if last.After(now) {
			last = now
		}
		e := last.Add(g.ml.MaxWait)
		if e.After(now) && e.After(until) {
			until = e
		}
	}
	return until
}
