package devstack

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/document"
	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/numeric"
	"github.com/blevesearch/bleve/v2/search/query"
	index "github.com/blevesearch/bleve_index_api"
)

func TestPrefixTermIsBleves(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	values := []int64{0, 1, -1, math.MaxInt64, math.MinInt64, numeric.Float64ToInt64(200), numeric.Float64ToInt64(-0.5)}
	for range 200 {
		values = append(values, int64(r.Uint64()))
	}
	for _, v := range values {
		for shift := uint(0); shift < 64; shift += 4 {
			want := numeric.MustNewPrefixCodedInt64(v, shift)
			if got := prefixTerm(nil, sortable(v)>>shift, shift); !bytes.Equal(got, want) {
				t.Fatalf("prefixTerm(%d, %d) = %x, want %x", v, shift, got, want)
			}
		}
	}
}

// TestSplitRange checks that the pieces of a range tile it exactly, in at most two pieces per
// level below the top.
func TestSplitRange(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	edges := []uint64{0, 1, 1<<24 - 1, 1 << 24, 1<<32 + 5, 1<<63 - 1, 1 << 63, math.MaxUint64 - 1, math.MaxUint64}
	var cases [][2]uint64
	for _, a := range edges {
		for _, b := range edges {
			cases = append(cases, [2]uint64{a, b})
		}
	}
	for range 5000 {
		a := r.Uint64() >> r.IntN(64)
		b := a + r.Uint64()>>r.IntN(64)
		if b < a {
			b = math.MaxUint64
		}
		cases = append(cases, [2]uint64{a, b})
	}
	for _, c := range cases {
		lo, hi := c[0], c[1]
		if lo > hi {
			continue
		}
		pieces := splitRange(lo, hi)
		perLevel := make([]int, len(rangeShifts))
		type span struct{ lo, hi uint64 }
		var spans []span
		for _, p := range pieces {
			perLevel[p.level]++
			if p.lo > p.hi {
				t.Fatalf("[%d, %d]: empty piece %+v", lo, hi, p)
			}
			s := rangeShifts[p.level]
			spans = append(spans, span{p.lo << s, p.hi<<s | (1<<s - 1)})
		}
		for level, n := range perLevel[:len(perLevel)-1] {
			if n > 2 {
				t.Fatalf("[%d, %d]: %d pieces at level %d: %+v", lo, hi, n, level, pieces)
			}
		}
		sort.Slice(spans, func(i, j int) bool { return spans[i].lo < spans[j].lo })
		if spans[0].lo != lo || spans[len(spans)-1].hi != hi {
			t.Fatalf("[%d, %d]: pieces span [%d, %d]: %+v", lo, hi, spans[0].lo, spans[len(spans)-1].hi, pieces)
		}
		for i := 1; i < len(spans); i++ {
			if spans[i].lo != spans[i-1].hi+1 {
				t.Fatalf("[%d, %d]: gap or overlap between %+v and %+v: %+v", lo, hi, spans[i-1], spans[i], pieces)
			}
		}
	}
}

// rangeTestDoc is a document of TestValueRangeQueries: a number and a date, or nothing.
type rangeTestDoc struct {
	id     string
	n      *float64
	d      *time.Time
	legacy bool // indexed as the previous model did: bleve's 16-term fields
}

// TestValueRangeQueries compares range queries on numbers and dates with a brute force
// evaluation, over values clustered so that ranges cut through every level, documents without
// values, and documents indexed the way the previous model did (bleve's 16-term numeric and
// date fields), which an index written before must keep answering.
func TestValueRangeQueries(t *testing.T) {
	for _, kind := range testIndexKinds {
		t.Run(kind, func(t *testing.T) { testValueRangeQueries(t, newTestIndex(t, kind)) })
	}
}

// testIndexKinds are the bleve indexes the model is tested on: the store's (scorch, whose
// searches optimise unscored disjunctions into bitmaps) and the in-memory one of the search
// tests (upsidedown, which does not).
var testIndexKinds = []string{"scorch", "upsidedown"}

// newTestIndex opens an empty index of the kind, closed when the test ends.
func newTestIndex(t *testing.T, kind string) bleve.Index {
	t.Helper()
	var idx bleve.Index
	var err error
	if kind == "scorch" {
		idx, err = bleve.NewUsing(filepath.Join(t.TempDir(), "bleve"), newIndexMapping(), scorch.Name, scorch.Name, nil)
	} else {
		idx, err = bleve.NewMemOnly(newIndexMapping())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = idx.Close() })
	return idx
}

func testValueRangeQueries(t *testing.T, idx bleve.Index) {
	fields := map[string]fieldInfo{"n": {Type: "double"}, "d": {Type: "date"}, "k": {Type: "keyword"}}
	field := func(p string) (fieldInfo, bool) { fi, ok := fields[p]; return fi, ok }
	r := rand.New(rand.NewPCG(5, 6))
	base := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	numbers := []float64{0, math.Copysign(0, -1), 1, -1, 200, 404, 500, 503, 0.001, 1e300, -1e300, math.MaxFloat64, -math.SmallestNonzeroFloat64}
	var docs []rangeTestDoc
	batch := idx.NewBatch()
	for i := range 3000 {
		d := rangeTestDoc{id: "d" + strconv.Itoa(i), legacy: i%7 == 0}
		if i%13 != 0 {
			var n float64
			switch r.IntN(3) {
			case 0:
				n = numbers[r.IntN(len(numbers))]
			case 1:
				n = float64(r.IntN(2000) - 1000)
			default:
				n = r.NormFloat64() * 1000
			}
			d.n = &n
		}
		if i%11 != 0 {
			// Clustered within seconds, minutes, days and years of base.
			span := []time.Duration{time.Second, time.Minute, 24 * time.Hour, 3 * 365 * 24 * time.Hour}[r.IntN(4)]
			ts := base.Add(time.Duration(r.Int64N(int64(2*span))) - span).Truncate(time.Millisecond)
			d.d = &ts
		}
		var doc *document.Document
		if d.legacy {
			doc = document.NewDocument(d.id)
			if d.n != nil {
				doc.AddField(document.NewNumericFieldWithIndexingOptions("n", nil, *d.n, index.IndexField))
				doc.AddField(document.NewTextFieldCustom(sortValueField("n"), nil, numeric.MustNewPrefixCodedInt64(numeric.Float64ToInt64(*d.n), 0), sortValueOptions, nil))
			}
			if d.d != nil {
				f, err := document.NewDateTimeFieldWithIndexingOptions("d", nil, *d.d, time.RFC3339Nano, index.IndexField)
				if err != nil {
					t.Fatal(err)
				}
				doc.AddField(f)
				doc.AddField(document.NewTextFieldCustom(sortValueField("d"), nil, numeric.MustNewPrefixCodedInt64(d.d.UnixNano(), 0), sortValueOptions, nil))
			}
		} else {
			src := `{"k":"x"`
			if d.n != nil {
				src += `,"n":` + strconv.FormatFloat(*d.n, 'g', -1, 64)
			}
			if d.d != nil {
				src += `,"d":"` + d.d.Format(time.RFC3339Nano) + `"`
			}
			var err error
			if doc, err = buildDocument(d.id, []byte(src+"}"), field); err != nil {
				t.Fatal(err)
			}
		}
		if err := batch.IndexAdvanced(doc); err != nil {
			t.Fatal(err)
		}
		docs = append(docs, d)
		if batch.Size() == 500 {
			if err := idx.Batch(batch); err != nil {
				t.Fatal(err)
			}
			batch = idx.NewBatch()
		}
	}
	if err := idx.Batch(batch); err != nil {
		t.Fatal(err)
	}

	run := func(t *testing.T, q query.Query) []string {
		req := bleve.NewSearchRequestOptions(q, len(docs), 0, false)
		res, err := idx.SearchInContext(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, h := range res.Hits {
			ids = append(ids, h.ID)
			if h.Score != 1 {
				t.Fatalf("score %v, want the constant 1", h.Score)
			}
		}
		sort.Strings(ids)
		return ids
	}
	check := func(t *testing.T, name string, q query.Query, match func(rangeTestDoc) bool) {
		t.Helper()
		var want []string
		for _, d := range docs {
			if match(d) {
				want = append(want, d.id)
			}
		}
		sort.Strings(want)
		if got := run(t, q); !slices.Equal(got, want) {
			t.Fatalf("%s: %d hits, want %d", name, len(got), len(want))
		}
	}
	pick := func() float64 {
		switch r.IntN(4) {
		case 0:
			return numbers[r.IntN(len(numbers))]
		case 1:
			return float64(r.IntN(2400) - 1200)
		case 2:
			if d := docs[r.IntN(len(docs))]; d.n != nil {
				return *d.n
			}
		}
		return r.NormFloat64() * 1200
	}
	for i := range 300 {
		lo, hi := pick(), pick()
		li, ui := r.IntN(2) == 0, r.IntN(2) == 0
		var plo, phi *float64
		if r.IntN(8) > 0 {
			plo = &lo
		}
		if r.IntN(8) > 0 {
			phi = &hi
		}
		name := fmt.Sprintf("numbers %d: %v %v %v %v", i, lo, li, hi, ui)
		check(t, name, numberRange("n", plo, phi, li, ui), func(d rangeTestDoc) bool {
			if d.n == nil {
				return false
			}
			v := numeric.Float64ToInt64(*d.n) // bleve's order: -0 before +0
			if plo != nil && (v < numeric.Float64ToInt64(lo) || !li && v == numeric.Float64ToInt64(lo)) {
				return false
			}
			return phi == nil || v < numeric.Float64ToInt64(hi) || ui && v == numeric.Float64ToInt64(hi)
		})
	}
	pickTime := func() time.Time {
		if d := docs[r.IntN(len(docs))]; d.d != nil && r.IntN(3) > 0 {
			return d.d.Add(time.Duration(r.IntN(3)-1) * time.Millisecond)
		}
		span := []time.Duration{time.Second, time.Minute, 24 * time.Hour, 4 * 365 * 24 * time.Hour}[r.IntN(4)]
		return base.Add(time.Duration(r.Int64N(int64(2*span))) - span)
	}
	for i := range 300 {
		lo, hi := pickTime(), pickTime()
		if r.IntN(8) == 0 {
			lo = time.Time{}
		}
		if r.IntN(8) == 0 {
			hi = time.Time{}
		}
		li, ui := r.IntN(2) == 0, r.IntN(2) == 0
		name := fmt.Sprintf("dates %d: %v %v %v %v", i, lo, li, hi, ui)
		check(t, name, dateRange("d", lo, hi, li, ui), func(d rangeTestDoc) bool {
			if d.d == nil {
				return false
			}
			if !lo.IsZero() && (d.d.Before(lo) || !li && d.d.Equal(lo)) {
				return false
			}
			return hi.IsZero() || d.d.Before(hi) || ui && d.d.Equal(hi)
		})
	}
	// Bounds beyond what a date holds.
	check(t, "dates from the year 3000", dateRange("d", time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), time.Time{}, true, true), func(rangeTestDoc) bool { return false })
	check(t, "dates up to the year 3000", dateRange("d", time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), true, true), func(d rangeTestDoc) bool { return d.d != nil })
	// Exact values (term queries on numbers and dates).
	for _, d := range docs[:100] {
		if d.n != nil {
			v := *d.n
			check(t, fmt.Sprintf("number %v", v), numberRange("n", &v, &v, true, true), func(o rangeTestDoc) bool {
				return o.n != nil && numeric.Float64ToInt64(*o.n) == numeric.Float64ToInt64(v)
			})
		}
		if d.d != nil {
			v := *d.d
			check(t, fmt.Sprintf("date %v", v), dateRange("d", v, v, true, true), func(o rangeTestDoc) bool {
				return o.d != nil && o.d.Equal(v)
			})
		}
	}
}

// TestSharedTokenMaps indexes documents whose keyword, boolean and _field_names maps are shared
// (shared.go), with names repeated in a document (arrays, a path both dotted and nested), whose
// first field scorch merges into, and checks what searches and aggregations count.
func TestSharedTokenMaps(t *testing.T) {
	for _, kind := range testIndexKinds {
		t.Run(kind, func(t *testing.T) { testSharedTokenMaps(t, newTestIndex(t, kind)) })
	}
}

func testSharedTokenMaps(t *testing.T, idx bleve.Index) {
	infos := map[string]fieldInfo{"k": {Type: "keyword"}, "b": {Type: "boolean"}, "a": {Type: "object"}, "a.k": {Type: "keyword"}}
	set := fieldSetOf(infos)
	docs := []string{
		`{"k":"x","b":true,"a":{"k":"y"}}`,
		`{"k":"x","b":true,"a":{"k":"y"}}`, // shares every map with the first
		`{"k":["x","x","z"],"b":[true,false]}`,
		`{"k":"x","a.k":"y","a":{"k":"z"}}`,
		`{"k":["z","x"],"b":false}`,
		`{"k":"x","b":true,"a":{"k":"y"}}`, // the maps are shared again, unchanged
	}
	a := &docArena{}
	for round := range 2 { // twice: the second round finds every map shared already
		batch := idx.NewBatch()
		for i, src := range docs {
			d, err := buildDocumentWith(fmt.Sprintf("r%dd%d", round, i), []byte(src), set, a)
			if err != nil {
				t.Fatal(err)
			}
			if err := batch.IndexAdvanced(d); err != nil {
				t.Fatal(err)
			}
		}
		if err := idx.Batch(batch); err != nil {
			t.Fatal(err)
		}
	}
	tg := searchTarget{Index: idx, Names: []string{"t"}, Field: set.field, Fields: func() []string { return set.leaves }}
	count := func(q string) int {
		m := doSearch(t, tg, `{"size":0,"track_total_hits":true,"query":`+q+`}`, "")
		return int(m["hits"].(map[string]any)["total"].(map[string]any)["value"].(float64))
	}
	for q, want := range map[string]int{
		`{"term":{"k":"x"}}`:                             12,
		`{"term":{"k":"z"}}`:                             4,
		`{"term":{"b":true}}`:                            8,
		`{"term":{"b":false}}`:                           4,
		`{"term":{"a.k":"y"}}`:                           8,
		`{"term":{"a.k":"z"}}`:                           2,
		`{"exists":{"field":"a"}}`:                       8,
		`{"exists":{"field":"b"}}`:                       10,
		`{"bool":{"must_not":{"exists":{"field":"b"}}}}`: 2,
	} {
		if got := count(q); got != want {
			t.Errorf("%s: %d hits, want %d", q, got, want)
		}
	}
	m := doSearch(t, tg, `{"size":0,"aggs":{"k":{"terms":{"field":"k"}},"b":{"terms":{"field":"b"}},"ak":{"terms":{"field":"a.k"}}}}`, "")
	aggs := aggsOf(t, m)
	for name, want := range map[string]string{"k": "x:12 z:4", "b": "true:8 false:4", "ak": "y:8 z:2"} {
		if got := bucketSummary(aggs[name]); got != want {
			t.Errorf("terms of %s: %s, want %s", name, got, want)
		}
	}
	// The shared maps are as first made: one term, frequency 1.
	for _, e := range set.entries {
		if e.shared == nil {
			continue
		}
		for key, tfs := range e.shared.m {
			if len(tfs) != 1 || tfs[key] == nil || tfs[key].Frequency() != 1 || len(tfs[key].Locations) != 0 {
				t.Errorf("%s: shared map of %q changed: %v", e.path, key, tfs)
			}
		}
	}
}

// TestSharedTermsBounds: a field shares at most maxSharedPerField maps, a field set
// maxSharedPerSet; past the bounds documents build their own, and the maps already shared stay.
func TestSharedTermsBounds(t *testing.T) {
	var budget atomic.Int64
	budget.Store(maxSharedPerField + 10)
	one := func(key []byte) func(func([]byte)) { return func(add func([]byte)) { add(key) } }
	s := newSharedTerms(&budget)
	for i := range maxSharedPerField {
		k := []byte(strconv.Itoa(i))
		if s.get(k, one(k)) == nil {
			t.Fatalf("value %d not shared", i)
		}
	}
	if k := []byte("past"); s.get(k, one(k)) != nil {
		t.Fatal("a field shares more than maxSharedPerField maps")
	}
	if tfs := s.get([]byte("7"), nil); tfs == nil || tfs["7"] == nil {
		t.Fatal("a shared map was dropped")
	}
	other := newSharedTerms(&budget)
	for i := range 20 {
		k := []byte(strconv.Itoa(i))
		if got := other.get(k, one(k)) != nil; got != (i < 10) {
			t.Fatalf("value %d of a second field shared: %v (set budget left: %d)", i, got, budget.Load())
		}
	}
	var none *sharedTerms
	if none.get([]byte("x"), nil) != nil {
		t.Fatal("a nil sharedTerms shares")
	}
}
