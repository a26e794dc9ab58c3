package devstack

// Range queries over numbers and dates, and constant-score queries.
//
// bleve indexes a number or a date as 16 prefix-coded terms (precision step 4) and its numeric
// range searcher assumes them. Analysing, inverting and merging those terms was most of the cost
// of bulk indexing, so buildDocument writes fewer (see model.go):
//
//   - the value itself, full precision (shift 0), in the doc-values field sortValueField(path);
//   - coarse terms, the value with its low rangeShifts[i] bits dropped, in the field path.
//
// A range is answered as a trie range is: split into the fewest pieces each level covers, and,
// in each piece, the terms the index actually holds (read from its term dictionary), unioned
// into one bitmap (scorch's unadorned disjunction: nothing is scored). The levels are 8 bits
// apart above the lowest coarse one, so that a piece holds at most 255 terms of its level (only
// those present are read); below it, a full-precision piece spans less than 2^24 units: 16.7 ms
// of a date (nanoseconds; dates are in milliseconds), a relative 4e-9 of a double, one integer
// below 2^28 — a few values in practice. A day of @timestamp over a million documents
// (BenchmarkSearchKeyword) reads about 500 terms, in 9 ms. Fewer levels index faster (four
// coarse terms are a fifth of a log document's) but let a piece hold thousands of terms.
//
// The levels are multiples of bleve's precision step, so an index written by the previous model
// (16 terms in path) answers the same queries.
//
// Range and exact-value queries on numbers and dates score like Elasticsearch's: a constant, the
// boost, and so do exists and constant_score queries and bool filter clauses (0).

import (
	"context"
	"math"
	"time"

	"github.com/blevesearch/bleve/v2/document"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/numeric"
	"github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/query"
	"github.com/blevesearch/bleve/v2/search/searcher"
	"github.com/blevesearch/bleve/v2/size"
	index "github.com/blevesearch/bleve_index_api"
)

// rangeShifts are the precision levels of numbers and dates, lowest first: level 0 is the full
// value (in sortValueField), the others coarse terms in the field itself. Each must be a
// multiple of 4 (see above).
var rangeShifts = [...]uint{0, 24, 32, 40, 48}

// sortable maps the int64 bleve encodes (numeric.Float64ToInt64 of a number, UnixNano of a date)
// to an unsigned value in the same order: the space prefix-coded terms are built over.
func sortable(v int64) uint64 { return uint64(v) ^ (1 << 63) }

// prefixTermLen is the length of a prefix-coded term of level shift.
func prefixTermLen(shift uint) int { return int((63-shift)/7) + 2 }

// putPrefixTerm writes to dst, of prefixTermLen(shift) bytes, bleve's prefix-coded term of
// level shift whose value is u: a sortable value with its low shift bits dropped.
func putPrefixTerm(dst []byte, u uint64, shift uint) {
	dst[0] = numeric.ShiftStartInt64 + byte(shift)
	for i := len(dst) - 1; i > 0; i-- {
		dst[i] = byte(u & 0x7f)
		u >>= 7
	}
}

// prefixTerm appends the term of putPrefixTerm to buf.
func prefixTerm(buf []byte, u uint64, shift uint) []byte {
	n := len(buf)
	buf = append(buf, make([]byte, prefixTermLen(shift))...)
	putPrefixTerm(buf[n:], u, shift)
	return buf
}

// valueRangeQuery matches documents with a number or date of field within [lo, hi] (sortable
// values, inclusive; lo > hi matches nothing). It scores every hit with its boost.
type valueRangeQuery struct {
	field  string
	lo, hi uint64
	boost  float64
}

func (q *valueRangeQuery) SetBoost(b float64) { q.boost = b }

// numberRange is the query of the numbers of field between lo and hi (nil: open).
func numberRange(field string, lo, hi *float64, loInclusive, hiInclusive bool) query.Query {
	q := &valueRangeQuery{field: field, lo: 0, hi: math.MaxUint64, boost: 1}
	if lo != nil {
		i := numeric.Float64ToInt64(*lo)
		if !loInclusive {
			if i == math.MaxInt64 {
				return query.NewMatchNoneQuery()
			}
			i++
		}
		q.lo = sortable(i)
	}
	if hi != nil {
		i := numeric.Float64ToInt64(*hi)
		if !hiInclusive {
			if i == math.MinInt64 {
				return query.NewMatchNoneQuery()
			}
			i--
		}
		q.hi = sortable(i)
	}
	return q
}

// dateRange is the query of the dates of field between lo and hi (zero: open).
func dateRange(field string, lo, hi time.Time, loInclusive, hiInclusive bool) query.Query {
	q := &valueRangeQuery{field: field, lo: 0, hi: math.MaxUint64, boost: 1}
	if !lo.IsZero() {
		switch {
		case lo.After(document.MaxTimeRepresentable):
			return query.NewMatchNoneQuery()
		case !lo.Before(document.MinTimeRepresentable):
			i := lo.UnixNano()
			if !loInclusive {
				if i == math.MaxInt64 {
					return query.NewMatchNoneQuery()
				}
				i++
			}
			q.lo = sortable(i)
		}
	}
	if !hi.IsZero() {
		switch {
		case hi.Before(document.MinTimeRepresentable):
			return query.NewMatchNoneQuery()
		case !hi.After(document.MaxTimeRepresentable):
			i := hi.UnixNano()
			if !hiInclusive {
				if i == math.MinInt64 {
					return query.NewMatchNoneQuery()
				}
				i--
			}
			q.hi = sortable(i)
		}
	}
	return q
}

// rangePiece is a run [lo, hi] of terms of one level (values already shifted).
type rangePiece struct {
	level  int
	lo, hi uint64
}

// splitRange splits [lo, hi] (sortable, inclusive) into pieces of the rangeShifts levels: at
// each level, the partial groups of the next level at both ends, then the whole groups one
// level up.
func splitRange(lo, hi uint64) []rangePiece {
	var out []rangePiece
	for level := 0; ; level++ {
		if level == len(rangeShifts)-1 {
			return append(out, rangePiece{level, lo, hi})
		}
		step := rangeShifts[level+1] - rangeShifts[level]
		mask := uint64(1)<<step - 1
		// The whole groups of the next level in [lo, hi] are [first, end); step > 0, so
		// neither overflows.
		first := lo >> step
		if lo&mask != 0 {
			first++
		}
		end := hi >> step
		if hi&mask == mask {
			end++
		}
		if first >= end {
			return append(out, rangePiece{level, lo, hi})
		}
		if lo&mask != 0 {
			out = append(out, rangePiece{level, lo, first<<step - 1})
		}
		if hi&mask != mask {
			out = append(out, rangePiece{level, end << step, hi})
		}
		lo, hi = first, end-1
	}
}

// Searcher reads the terms of each piece from the term dictionary and unions their postings;
// the union is one bitmap when scorch can build it (it can when nothing is scored).
func (q *valueRangeQuery) Searcher(ctx context.Context, r index.IndexReader, _ mapping.IndexMapping, options search.SearcherOptions) (search.Searcher, error) {
	if q.lo > q.hi {
		return searcher.NewMatchNoneSearcher(r)
	}
	var terms [][]byte
	var fields []string
	var buf []byte
	for _, p := range splitRange(q.lo, q.hi) {
		shift := rangeShifts[p.level]
		field := q.field
		if p.level == 0 {
			field = sortValueField(q.field)
		}
		buf = prefixTerm(buf[:0], p.lo, shift)
		start := append([]byte(nil), buf...)
		buf = prefixTerm(buf[:0], p.hi, shift)
		end := append(buf, 0) // FieldDictRange's end is exclusive
		d, err := r.FieldDictRange(field, start, end)
		if err != nil {
			return nil, err
		}
		for {
			e, err := d.Next()
			if err != nil {
				_ = d.Close()
				return nil, err
			}
			if e == nil {
				break
			}
			terms = append(terms, []byte(e.Term))
			fields = append(fields, field)
		}
		if err := d.Close(); err != nil {
			return nil, err
		}
	}
	unscored := search.SearcherOptions{Score: "none"}
	var inner search.Searcher
	switch len(terms) {
	case 0:
		return searcher.NewMatchNoneSearcher(r)
	case 1:
		s, err := searcher.NewTermSearcherBytes(ctx, r, terms[0], fields[0], 1, unscored)
		if err != nil {
			return nil, err
		}
		inner = s
	default:
		ss := make([]search.Searcher, 0, len(terms))
		for i, t := range terms {
			s, err := searcher.NewTermSearcherBytes(ctx, r, t, fields[i], 1, unscored)
			if err != nil {
				for _, s := range ss {
					_ = s.Close()
				}
				return nil, err
			}
			ss = append(ss, s)
		}
		d, err := searcher.NewDisjunctionSearcher(ctx, r, ss, 0, unscored)
		if _, optimized := d.(*searcher.TermSearcher); err != nil || optimized {
			// Optimised into one bitmap, the term searchers are done with (as bleve's own
			// multi-term searcher closes them).
			for _, s := range ss {
				_ = s.Close()
			}
		}
		if err != nil {
			return nil, err
		}
		inner = d
	}
	return newConstScoreSearcher(inner, q.boost, options), nil
}

// constScoreQuery matches what its query matches, every hit scored boost (0 for a filter).
type constScoreQuery struct {
	q     query.Query
	boost float64
}

func (q *constScoreQuery) SetBoost(b float64) { q.boost = b }

func (q *constScoreQuery) Searcher(ctx context.Context, r index.IndexReader, m mapping.IndexMapping, options search.SearcherOptions) (search.Searcher, error) {
	s, err := q.q.Searcher(ctx, r, m, search.SearcherOptions{Score: "none"})
	if err != nil {
		return nil, err
	}
	if _, ok := s.(*searcher.MatchNoneSearcher); ok {
		return s, nil
	}
	return newConstScoreSearcher(s, q.boost, options), nil
}

// constScoreSearcher gives every match of its child the same score. Its weight is 0: it
// takes no part in the query norm of the others, so that in a bool query it adds exactly its
// score, as Elasticsearch's constant-score queries do.
type constScoreSearcher struct {
	child   search.Searcher
	score   float64
	explain bool
}

func newConstScoreSearcher(child search.Searcher, score float64, options search.SearcherOptions) *constScoreSearcher {
	return &constScoreSearcher{child: child, score: score, explain: options.Explain}
}

func (s *constScoreSearcher) set(d *search.DocumentMatch) *search.DocumentMatch {
	if d != nil {
		d.Score = s.score
		if s.explain {
			d.Expl = &search.Explanation{Value: s.score, Message: "constant score"}
		}
	}
	return d
}

func (s *constScoreSearcher) Next(ctx *search.SearchContext) (*search.DocumentMatch, error) {
	d, err := s.child.Next(ctx)
	return s.set(d), err
}

func (s *constScoreSearcher) Advance(ctx *search.SearchContext, id index.IndexInternalID) (*search.DocumentMatch, error) {
	d, err := s.child.Advance(ctx, id)
	return s.set(d), err
}

func (s *constScoreSearcher) Close() error               { return s.child.Close() }
func (s *constScoreSearcher) Weight() float64            { return 0 }
func (s *constScoreSearcher) SetQueryNorm(float64)       {}
func (s *constScoreSearcher) Count() uint64              { return s.child.Count() }
func (s *constScoreSearcher) Min() int                   { return s.child.Min() }
func (s *constScoreSearcher) Size() int                  { return size.SizeOfPtr + 16 + s.child.Size() }
func (s *constScoreSearcher) DocumentMatchPoolSize() int { return s.child.DocumentMatchPoolSize() }
