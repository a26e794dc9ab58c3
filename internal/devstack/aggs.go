package devstack

// Aggregations, computed from doc values while bleve collects the matching documents: a
// search.MakeDocumentMatchHandler placed in the search context sees every match of every index
// searched (before the top-N collector) and feeds it to the aggregation tree. Each index gets its
// own tree; the trees are merged when each index finishes. This is exact (one shard per index:
// doc_count_error_upper_bound is always 0) and supports any interval and nesting.
//
// Supported: terms, date_histogram, histogram (bucket aggregations, nested in each other to any
// depth), min, max, avg, sum, value_count, cardinality, stats (metrics). Others answer an error.

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/blevesearch/bleve/v2/numeric"
	"github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/collector"
	index "github.com/blevesearch/bleve_index_api"
)

// maxAggBuckets is Elasticsearch's search.max_buckets default.
const maxAggBuckets = 65536

// aggSpec is one parsed aggregation.
type aggSpec struct {
	name  string
	typ   string
	field string
	info  fieldInfo
	kind  fieldKind
	slot  int // index of field in the per-document values
	subs  []*aggSpec

	// terms
	size        int
	minDocCount int64
	orderKey    bool // order by key instead of count
	orderCount  bool // an explicit order by _count
	orderAsc    bool
	missing     any

	// date_histogram / histogram
	fixed    int64 // fixed interval in ms (date) ...
	interval float64
	calendar byte // m h d w M q y
	offset   int64
	loc      *time.Location
	format   string
	keyed    bool
	bounds   *[2]float64 // extended_bounds (ms for dates)
}

func isBucketAgg(typ string) bool {
	return typ == "terms" || typ == "date_histogram" || typ == "histogram"
}

var knownAggTypes = map[string]bool{
	"adjacency_matrix": true, "auto_date_histogram": true, "boxplot": true, "categorize_text": true,
	"children": true, "composite": true, "date_range": true, "diversified_sampler": true,
	"extended_stats": true, "filter": true, "filters": true, "frequent_item_sets": true,
	"geo_bounds": true, "geo_centroid": true, "geo_distance": true, "geohash_grid": true,
	"geotile_grid": true, "global": true, "ip_prefix": true, "ip_range": true, "matrix_stats": true,
	"median_absolute_deviation": true, "missing": true, "multi_terms": true, "nested": true,
	"parent": true, "percentile_ranks": true, "percentiles": true, "random_sampler": true,
	"range": true, "rare_terms": true, "reverse_nested": true, "sampler": true,
	"scripted_metric": true, "significant_terms": true, "significant_text": true,
	"string_stats": true, "t_test": true, "top_hits": true, "top_metrics": true,
	"variable_width_histogram": true, "weighted_avg": true, "avg_bucket": true,
	"bucket_script": true, "bucket_selector": true, "bucket_sort": true, "cumulative_sum": true,
	"derivative": true, "max_bucket": true, "min_bucket": true, "moving_fn": true,
	"serial_diff": true, "stats_bucket": true, "sum_bucket": true, "rate": true,
}

// aggParser parses an aggregations object.
type aggParser struct {
	c      *queryCompiler
	fields []string // every field the tree reads, by slot
	kinds  []fieldKind
}

func (p *aggParser) slotOf(field string, kind fieldKind) int {
	if kind == kindInteger || kind == kindFloat || kind == kindDate {
		field = sortValueField(field)
	}
	for i, f := range p.fields {
		if f == field {
			return i
		}
	}
	p.fields = append(p.fields, field)
	p.kinds = append(p.kinds, kind)
	return len(p.fields) - 1
}

func (p *aggParser) parseAggs(v any) ([]*aggSpec, *searchError) {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, newParsingError("Expected [START_OBJECT] under [aggregations], but got a different token")
	}
	var out []*aggSpec
	for _, name := range sortedKeys(obj) {
		spec, err := p.parseAgg(name, obj[name])
		if err != nil {
			return nil, err
		}
		out = append(out, spec)
	}
	return out, nil
}

func (p *aggParser) parseAgg(name string, v any) (*aggSpec, *searchError) {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, newParsingError("Expected [START_OBJECT] under [%s], but got a different token", name)
	}
	spec := &aggSpec{name: name}
	var body map[string]any
	for k, val := range obj {
		switch k {
		case "aggs", "aggregations":
			continue
		case "meta":
			continue
		}
		if spec.typ != "" {
			return nil, newParsingError("Found two aggregation type definitions in [%s]: [%s] and [%s]", name, spec.typ, k)
		}
		spec.typ = k
		b, ok := val.(map[string]any)
		if !ok {
			return nil, newParsingError("Expected [START_OBJECT] under [%s], but got a different token", k)
		}
		body = b
	}
	if spec.typ == "" {
		return nil, newParsingError("Missing definition for aggregation [%s]", name)
	}
	switch spec.typ {
	case "terms", "date_histogram", "histogram", "min", "max", "avg", "sum", "value_count", "cardinality", "stats":
	default:
		if knownAggTypes[spec.typ] {
			return nil, newIllegalArgument("aggregation [%s] of type [%s] is not supported by the Sluice devstack store", name, spec.typ)
		}
		return nil, newParsingError("Unknown aggregation type [%s] did you mean [terms]?", spec.typ)
	}
	fv, ok := body["field"]
	if !ok {
		if _, script := body["script"]; script {
			return nil, newIllegalArgument("scripts are not supported by the Sluice devstack store")
		}
		return nil, newIllegalArgument("Required one of fields [field, script], but none were specified.")
	}
	spec.field = scalarText(fv)
	fi, mapped := p.c.mapped(spec.field)
	spec.info = fi
	spec.kind = kindOf(fi.Type)
	if !mapped {
		spec.kind = kindUnsupported
	}
	if mapped && spec.kind == kindText {
		return nil, newIllegalArgument("Text fields are not optimised for operations that require per-document field data like aggregations and sorting, so these operations are disabled by default. Please use a keyword field instead. Alternatively, set fielddata=true on [%s] in order to load field data by uninverting the inverted index. Note that this can use significant memory.", spec.field)
	}
	if mapped && spec.kind == kindObject {
		return nil, newIllegalArgument("Field [%s] of type [%s] is not supported for aggregation [%s]", spec.field, fi.Type, spec.typ)
	}
	if err := p.parseOptions(spec, body); err != nil {
		return nil, err
	}
	if mapped {
		spec.slot = p.slotOf(spec.field, spec.kind)
	} else {
		spec.slot = -1
	}
	if subs, ok := obj["aggs"]; ok {
		if !isBucketAgg(spec.typ) {
			return nil, newIllegalArgument("Aggregator [%s] of type [%s] cannot accept sub-aggregations", name, spec.typ)
		}
		var err *searchError
		if spec.subs, err = p.parseAggs(subs); err != nil {
			return nil, err
		}
	} else if subs, ok := obj["aggregations"]; ok {
		if !isBucketAgg(spec.typ) {
			return nil, newIllegalArgument("Aggregator [%s] of type [%s] cannot accept sub-aggregations", name, spec.typ)
		}
		var err *searchError
		if spec.subs, err = p.parseAggs(subs); err != nil {
			return nil, err
		}
	}
	return spec, nil
}

func intOption(typ, key string, v any) (int, *searchError) {
	f, err := numberValue(v)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > math.MaxInt32 {
		return 0, newParsingError("[%s] failed to parse field [%s]", typ, key)
	}
	return int(f), nil
}

func (p *aggParser) parseOptions(spec *aggSpec, body map[string]any) *searchError {
	typ := spec.typ
	spec.size = 10
	spec.loc = time.UTC
	switch typ {
	case "terms":
		spec.minDocCount = 1
	case "date_histogram", "histogram":
		spec.minDocCount = 0
	}
	for k, v := range body {
		var err *searchError
		switch {
		case k == "field":
		case k == "format":
			spec.format = scalarText(v)
		case k == "missing":
			spec.missing = v
		case typ == "terms" && k == "size":
			spec.size, err = intOption(typ, k, v)
			if err == nil && spec.size < 1 {
				err = newIllegalArgument("[size] must be greater than 0. Found [%d] in [%s]", spec.size, spec.name)
			}
		case (typ == "terms" || typ == "date_histogram" || typ == "histogram") && k == "min_doc_count":
			var n int
			n, err = intOption(typ, k, v)
			spec.minDocCount = int64(n)
		case typ == "terms" && (k == "shard_size" || k == "show_term_doc_count_error" || k == "execution_hint" || k == "collect_mode" || k == "shard_min_doc_count"):
		case (typ == "terms" || typ == "date_histogram" || typ == "histogram") && k == "order":
			err = parseAggOrder(spec, v)
		case typ == "date_histogram" && k == "fixed_interval":
			ms, ok := parseFixedInterval(scalarText(v))
			if !ok {
				err = newIllegalArgument("failed to parse setting [date_histogram.fixedInterval] with value [%s] as a time value: unit is missing or unrecognized", scalarText(v))
			}
			spec.fixed = ms
		case typ == "date_histogram" && k == "calendar_interval":
			unit, ok := parseCalendarInterval(scalarText(v))
			if !ok {
				err = newIllegalArgument("The supplied interval [%s] could not be parsed as a calendar interval.", scalarText(v))
			}
			spec.calendar = unit
		case typ == "date_histogram" && k == "interval":
			err = newIllegalArgument("[interval] on [date_histogram] is no longer supported: use [fixed_interval] or [calendar_interval]")
		case typ == "histogram" && k == "interval":
			spec.interval, _ = numberValue(v)
			if !(spec.interval > 0) {
				err = newIllegalArgument("[interval] must be >0 for histogram aggregation [%s]", spec.name)
			}
		case typ == "date_histogram" && k == "time_zone":
			spec.loc, err = parseTimeZone(scalarText(v))
		case typ == "date_histogram" && k == "offset":
			spec.offset, err = parseOffset(scalarText(v))
		case typ == "histogram" && k == "offset":
			f, _ := numberValue(v)
			spec.offset = int64(f)
		case (typ == "date_histogram" || typ == "histogram") && k == "keyed":
			spec.keyed = v == true
		case (typ == "date_histogram" || typ == "histogram") && (k == "extended_bounds" || k == "hard_bounds"):
			err = p.parseBounds(spec, v)
		default:
			err = newParsingError("[%s] unknown field [%s]", typ, k)
		}
		if err != nil {
			return err
		}
	}
	if typ == "date_histogram" {
		if spec.fixed == 0 && spec.calendar == 0 {
			return newIllegalArgument("Invalid interval specified, must be non-null and non-empty")
		}
		if spec.fixed != 0 && spec.calendar != 0 {
			return newIllegalArgument("Cannot use [fixed_interval] with [calendar_interval] configuration option.")
		}
		if spec.kind != kindDate && spec.kind != kindUnsupported {
			return newIllegalArgument("Field [%s] of type [%s] is not supported for aggregation [date_histogram]", spec.field, spec.info.Type)
		}
	}
	if typ == "histogram" {
		if spec.interval == 0 {
			return newIllegalArgument("[interval] must be >0 for histogram aggregation [%s]", spec.name)
		}
		if spec.kind != kindInteger && spec.kind != kindFloat && spec.kind != kindDate && spec.kind != kindUnsupported {
			return newIllegalArgument("Field [%s] of type [%s] is not supported for aggregation [histogram]", spec.field, spec.info.Type)
		}
	}
	switch typ {
	case "min", "max", "avg", "sum", "stats":
		if spec.kind == kindKeyword || spec.kind == kindBoolean && typ != "min" && typ != "max" {
			return newIllegalArgument("Field [%s] of type [%s] is not supported for aggregation [%s]", spec.field, spec.info.Type, typ)
		}
	}
	return nil
}

func (p *aggParser) parseBounds(spec *aggSpec, v any) *searchError {
	obj, ok := v.(map[string]any)
	if !ok {
		return newParsingError("[%s] bounds must be an object", spec.typ)
	}
	b := [2]float64{math.Inf(1), math.Inf(-1)}
	for i, k := range []string{"min", "max"} {
		bv, ok := obj[k]
		if !ok {
			continue
		}
		if spec.typ == "date_histogram" {
			t, err := p.c.dateBound(scalarText(bv), spec.format, spec.loc, false)
			if err != nil {
				return err
			}
			b[i] = float64(t.UnixMilli())
		} else {
			f, err := numberValue(bv)
			if err != nil {
				return newParsingError("[%s] failed to parse bound [%s]", spec.typ, k)
			}
			b[i] = f
		}
	}
	spec.bounds = &b
	return nil
}

func parseAggOrder(spec *aggSpec, v any) *searchError {
	obj, ok := v.(map[string]any)
	if !ok {
		if arr, ok := v.([]any); ok && len(arr) > 0 {
			return parseAggOrder(spec, arr[0])
		}
		return newParsingError("[%s] order must be an object", spec.typ)
	}
	for k, dir := range obj {
		asc := strings.EqualFold(scalarText(dir), "asc")
		if !asc && !strings.EqualFold(scalarText(dir), "desc") {
			return newParsingError("Unknown order direction [%s]", scalarText(dir))
		}
		switch k {
		case "_count":
			spec.orderKey, spec.orderCount, spec.orderAsc = false, true, asc
		case "_key", "_term":
			spec.orderKey, spec.orderAsc = true, asc
		default:
			return newIllegalArgument("ordering by [%s] is not supported by the Sluice devstack store: use _count or _key", k)
		}
	}
	return nil
}

// parseFixedInterval parses 500ms, 30s, 5m, 1h, 1d (fixed units) into milliseconds.
func parseFixedInterval(s string) (int64, bool) {
	units := []struct {
		suffix string
		ms     int64
	}{{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}}
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			n, err := strconv.ParseInt(strings.TrimSuffix(s, u.suffix), 10, 64)
			if err != nil || n <= 0 || n > math.MaxInt64/u.ms {
				return 0, false
			}
			return n * u.ms, true
		}
	}
	return 0, false
}

func parseCalendarInterval(s string) (byte, bool) {
	switch s {
	case "minute", "1m":
		return 'm', true
	case "hour", "1h":
		return 'h', true
	case "day", "1d":
		return 'd', true
	case "week", "1w":
		return 'w', true
	case "month", "1M":
		return 'M', true
	case "quarter", "1q":
		return 'q', true
	case "year", "1y":
		return 'y', true
	}
	return 0, false
}

// parseOffset parses a date_histogram offset such as +6h or -30m (fixed units).
func parseOffset(s string) (int64, *searchError) {
	sign := int64(1)
	t := s
	if strings.HasPrefix(t, "-") {
		sign, t = -1, t[1:]
	} else {
		t = strings.TrimPrefix(t, "+")
	}
	ms, ok := parseFixedInterval(t)
	if !ok {
		return 0, newIllegalArgument("failed to parse setting [date_histogram.offset] with value [%s] as a time value", s)
	}
	return sign * ms, nil
}

// docValues holds one document's values of every field the aggregation tree reads.
type docValues struct {
	strs [][]string  // keyword and boolean ("T"/"F") values, by slot
	nums [][]float64 // numeric values
	ms   [][]int64   // date values in epoch milliseconds
}

func (d *docValues) reset() {
	for i := range d.strs {
		d.strs[i] = d.strs[i][:0]
		d.nums[i] = d.nums[i][:0]
		d.ms[i] = d.ms[i][:0]
	}
}

// bucketKey is a terms or histogram bucket key.
type bucketKey struct {
	s string
	f float64
}

type aggBucket struct {
	count int64
	subs  []aggState
}

// aggState accumulates one aggregation over documents.
type aggState interface {
	collect(d *docValues)
	merge(other aggState)
}

func newAggStates(specs []*aggSpec) []aggState {
	out := make([]aggState, len(specs))
	for i, s := range specs {
		if isBucketAgg(s.typ) {
			out[i] = &bucketState{spec: s, buckets: map[bucketKey]*aggBucket{}}
		} else {
			out[i] = &metricState{spec: s, min: math.Inf(1), max: math.Inf(-1)}
		}
	}
	return out
}

type bucketState struct {
	spec    *aggSpec
	buckets map[bucketKey]*aggBucket
	// min/max of collected keys (histograms fill the gaps between them)
	tooMany bool
}

func (b *bucketState) add(k bucketKey, d *docValues) {
	bk := b.buckets[k]
	if bk == nil {
		if len(b.buckets) >= maxAggBuckets {
			b.tooMany = true
			return
		}
		bk = &aggBucket{subs: newAggStates(b.spec.subs)}
		b.buckets[k] = bk
	}
	bk.count++
	for _, s := range bk.subs {
		s.collect(d)
	}
}

func (b *bucketState) collect(d *docValues) {
	s := b.spec
	if s.slot < 0 {
		if s.missing != nil && s.typ == "terms" {
			b.add(bucketKey{s: scalarText(s.missing)}, d)
		}
		return
	}
	n := 0
	switch s.typ {
	case "terms":
		switch s.kind {
		case kindKeyword, kindBoolean:
			for _, v := range d.strs[s.slot] {
				b.add(bucketKey{s: v}, d)
				n++
			}
		case kindInteger, kindFloat:
			for _, v := range d.nums[s.slot] {
				b.add(bucketKey{f: v}, d)
				n++
			}
		case kindDate:
			for _, v := range d.ms[s.slot] {
				b.add(bucketKey{f: float64(v)}, d)
				n++
			}
		}
		if n == 0 && s.missing != nil {
			key := bucketKey{s: scalarText(s.missing)}
			if s.kind != kindKeyword && s.kind != kindBoolean {
				f, _ := numberValue(s.missing)
				key = bucketKey{f: f}
			}
			b.add(key, d)
		}
	case "date_histogram":
		// Doc values are sorted, so equal bucket keys of one document are adjacent: one count
		// per bucket per document.
		var last int64
		for i, v := range d.ms[s.slot] {
			k := dateBucketKey(s, v)
			if i > 0 && k == last {
				continue
			}
			last = k
			b.add(bucketKey{f: float64(k)}, d)
		}
	case "histogram":
		vals := d.nums[s.slot]
		if s.kind == kindDate {
			vals = vals[:0:0]
			for _, v := range d.ms[s.slot] {
				vals = append(vals, float64(v))
			}
		}
		var last float64
		for i, v := range vals {
			k := math.Floor((v-float64(s.offset))/s.interval)*s.interval + float64(s.offset)
			if i > 0 && k == last {
				continue
			}
			last = k
			b.add(bucketKey{f: k}, d)
		}
	}
}

func (b *bucketState) merge(other aggState) {
	o := other.(*bucketState)
	b.tooMany = b.tooMany || o.tooMany
	for k, ob := range o.buckets {
		bk := b.buckets[k]
		if bk == nil {
			b.buckets[k] = ob
			continue
		}
		bk.count += ob.count
		for i := range bk.subs {
			bk.subs[i].merge(ob.subs[i])
		}
	}
}

// dateBucketKey is the start (epoch ms) of the bucket holding ms.
func dateBucketKey(s *aggSpec, ms int64) int64 {
	if s.fixed > 0 && s.loc == time.UTC {
		return floorDiv(ms-s.offset, s.fixed)*s.fixed + s.offset
	}
	if s.fixed > 0 {
		t := time.UnixMilli(ms).In(s.loc)
		_, off := t.Zone()
		local := ms + int64(off)*1000 - s.offset
		k := floorDiv(local, s.fixed)*s.fixed + s.offset
		// Back to UTC with the offset in force at the bucket start.
		_, off2 := time.UnixMilli(k - int64(off)*1000).In(s.loc).Zone()
		return k - int64(off2)*1000
	}
	t := time.UnixMilli(ms - s.offset).In(s.loc)
	return calendarFloor(t, s.calendar).UnixMilli() + s.offset
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func calendarFloor(t time.Time, unit byte) time.Time {
	if unit == 'q' {
		y, m, _ := t.Date()
		return time.Date(y, m-(m-1)%3, 1, 0, 0, 0, 0, t.Location())
	}
	return roundDate(t, unit, false)
}

func calendarNext(t time.Time, unit byte) time.Time {
	switch unit {
	case 'm':
		return t.Add(time.Minute)
	case 'h':
		return t.Add(time.Hour)
	case 'd':
		return t.AddDate(0, 0, 1)
	case 'w':
		return t.AddDate(0, 0, 7)
	case 'M':
		return t.AddDate(0, 1, 0)
	case 'q':
		return t.AddDate(0, 3, 0)
	}
	return t.AddDate(1, 0, 0)
}

type metricState struct {
	spec     *aggSpec
	count    int64
	sum      float64
	min, max float64
	distinct map[bucketKey]struct{}
}

func (m *metricState) collect(d *docValues) {
	s := m.spec
	if s.slot < 0 {
		return
	}
	add := func(v float64) {
		m.count++
		m.sum += v
		m.min = math.Min(m.min, v)
		m.max = math.Max(m.max, v)
	}
	switch s.kind {
	case kindInteger, kindFloat:
		for _, v := range d.nums[s.slot] {
			add(v)
			if s.typ == "cardinality" {
				m.distinctAdd(bucketKey{f: v})
			}
		}
	case kindDate:
		for _, v := range d.ms[s.slot] {
			add(float64(v))
			if s.typ == "cardinality" {
				m.distinctAdd(bucketKey{f: float64(v)})
			}
		}
	case kindKeyword, kindBoolean:
		for _, v := range d.strs[s.slot] {
			m.count++
			if s.kind == kindBoolean {
				f := 0.0
				if v == "T" {
					f = 1
				}
				m.sum += f
				m.min, m.max = math.Min(m.min, f), math.Max(m.max, f)
			}
			if s.typ == "cardinality" {
				m.distinctAdd(bucketKey{s: v})
			}
		}
	}
}

func (m *metricState) distinctAdd(k bucketKey) {
	if m.distinct == nil {
		m.distinct = map[bucketKey]struct{}{}
	}
	m.distinct[k] = struct{}{}
}

func (m *metricState) merge(other aggState) {
	o := other.(*metricState)
	m.count += o.count
	m.sum += o.sum
	m.min = math.Min(m.min, o.min)
	m.max = math.Max(m.max, o.max)
	for k := range o.distinct {
		m.distinctAdd(k)
	}
}

// aggRun collects the aggregation tree over a search; install its handler maker in the context.
type aggRun struct {
	specs  []*aggSpec
	fields []string
	kinds  []fieldKind

	mu     sync.Mutex
	merged []aggState
	err    error
}

func newAggRun(specs []*aggSpec, p *aggParser) *aggRun {
	return &aggRun{specs: specs, fields: p.fields, kinds: p.kinds}
}

// makeHandler wraps bleve's top-N handler: every match is first fed to a per-index aggregation
// tree, which is merged into the run when that index's collection ends.
func (r *aggRun) makeHandler(sctx *search.SearchContext) (search.DocumentMatchHandler, bool, error) {
	next, loadID, err := collector.MakeTopNDocumentMatchHandler(sctx)
	if err != nil {
		return nil, false, err
	}
	states := newAggStates(r.specs)
	n := len(r.fields)
	dv := &docValues{strs: make([][]string, n), nums: make([][]float64, n), ms: make([][]int64, n)}
	var dvr index.DocValueReader
	if n > 0 {
		if dvr, err = sctx.IndexReader.DocValueReader(r.fields); err != nil {
			return nil, false, err
		}
	}
	slots := make(map[string]int, n)
	for i, f := range r.fields {
		slots[f] = i
	}
	// intern keeps one string per distinct keyword value: most documents repeat values (pod
	// names, levels), and a conversion per document would dominate the cost.
	intern := make(map[string]string)
	visit := func(field string, term []byte) {
		i, ok := slots[field]
		if !ok {
			return
		}
		switch r.kinds[i] {
		case kindKeyword, kindBoolean:
			v, ok := intern[string(term)]
			if !ok {
				v = string(term)
				if len(intern) < 100000 {
					intern[v] = v
				}
			}
			dv.strs[i] = append(dv.strs[i], v)
		case kindInteger, kindFloat:
			if valid, shift := numeric.ValidPrefixCodedTermBytes(term); valid && shift == 0 {
				if v, err := numeric.PrefixCoded(term).Int64(); err == nil {
					dv.nums[i] = append(dv.nums[i], numeric.Int64ToFloat64(v))
				}
			}
		case kindDate:
			if valid, shift := numeric.ValidPrefixCodedTermBytes(term); valid && shift == 0 {
				if v, err := numeric.PrefixCoded(term).Int64(); err == nil {
					dv.ms[i] = append(dv.ms[i], floorDiv(v, int64(time.Millisecond)))
				}
			}
		}
	}
	handler := func(d *search.DocumentMatch) error {
		if d == nil {
			r.mu.Lock()
			if r.merged == nil {
				r.merged = states
			} else {
				for i := range r.merged {
					r.merged[i].merge(states[i])
				}
			}
			r.mu.Unlock()
			return next(nil)
		}
		if dvr != nil {
			dv.reset()
			if err := dvr.VisitDocValues(d.IndexInternalID, visit); err != nil {
				return err
			}
		}
		for _, s := range states {
			s.collect(dv)
		}
		return next(d)
	}
	return handler, loadID, nil
}

// results renders the merged aggregations (empty ones when no index was searched).
func (r *aggRun) results(typedKeys bool) (map[string]any, *searchError) {
	states := r.merged
	if states == nil {
		states = newAggStates(r.specs)
	}
	return renderAggs(r.specs, states, typedKeys)
}

func renderAggs(specs []*aggSpec, states []aggState, typedKeys bool) (map[string]any, *searchError) {
	out := make(map[string]any, len(specs))
	for i, s := range specs {
		v, err := renderAgg(s, states[i], typedKeys)
		if err != nil {
			return nil, err
		}
		name := s.name
		if typedKeys {
			name = typedAggName(s) + "#" + s.name
		}
		out[name] = v
	}
	return out, nil
}

// typedAggName is the type prefix of typed_keys=true.
func typedAggName(s *aggSpec) string {
	switch s.typ {
	case "terms":
		switch s.kind {
		case kindInteger, kindDate, kindBoolean:
			return "lterms"
		case kindFloat:
			return "dterms"
		case kindUnsupported:
			return "sterms"
		}
		return "sterms"
	case "cardinality", "stats", "value_count":
		return s.typ
	}
	return s.typ
}

// orderedMap keeps bucket JSON keys in Elasticsearch's order.
type orderedMap struct {
	keys []string
	vals []any
}

func (m *orderedMap) set(k string, v any) {
	m.keys = append(m.keys, k)
	m.vals = append(m.vals, v)
}

func (m *orderedMap) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range m.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := jsonMarshal(k)
		b.Write(kb)
		b.WriteByte(':')
		vb, err := jsonMarshal(m.vals[i])
		if err != nil {
			return nil, err
		}
		b.Write(vb)
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}

func renderAgg(s *aggSpec, st aggState, typedKeys bool) (any, *searchError) {
	if bs, ok := st.(*bucketState); ok {
		if bs.tooMany {
			return nil, &searchError{Status: 400, Type: "too_many_buckets_exception", Reason: fmt.Sprintf("Trying to create too many buckets. Must be less than or equal to: [%d]. This limit can be set by changing the [search.max_buckets] cluster level setting.", maxAggBuckets)}
		}
		switch s.typ {
		case "terms":
			return renderTerms(s, bs, typedKeys)
		default:
			return renderHistogram(s, bs, typedKeys)
		}
	}
	return renderMetric(s, st.(*metricState)), nil
}

type keyedBucket struct {
	key bucketKey
	b   *aggBucket
}

func renderTerms(s *aggSpec, bs *bucketState, typedKeys bool) (any, *searchError) {
	list := make([]keyedBucket, 0, len(bs.buckets))
	for k, b := range bs.buckets {
		if b.count >= s.minDocCount {
			list = append(list, keyedBucket{k, b})
		}
	}
	keyLess := func(a, b bucketKey) bool {
		if a.s != b.s {
			return a.s < b.s
		}
		return a.f < b.f
	}
	sort.Slice(list, func(i, j int) bool {
		a, b := list[i], list[j]
		if s.orderKey {
			if s.orderAsc {
				return keyLess(a.key, b.key)
			}
			return keyLess(b.key, a.key)
		}
		if a.b.count != b.b.count {
			if s.orderAsc {
				return a.b.count < b.b.count
			}
			return a.b.count > b.b.count
		}
		return keyLess(a.key, b.key)
	})
	var other int64
	if len(list) > s.size {
		for _, kb := range list[s.size:] {
			other += kb.b.count
		}
		list = list[:s.size]
	}
	buckets := make([]any, 0, len(list))
	for _, kb := range list {
		m := &orderedMap{}
		switch s.kind {
		case kindKeyword, kindUnsupported:
			m.set("key", kb.key.s)
		case kindBoolean:
			if kb.key.s == "T" {
				m.set("key", 1)
				m.set("key_as_string", "true")
			} else {
				m.set("key", 0)
				m.set("key_as_string", "false")
			}
		case kindInteger:
			m.set("key", int64(kb.key.f))
		case kindFloat:
			m.set("key", kb.key.f)
		case kindDate:
			m.set("key", int64(kb.key.f))
			m.set("key_as_string", formatAggDate(s, int64(kb.key.f)))
		}
		m.set("doc_count", kb.b.count)
		if err := addSubAggs(m, s, kb.b, typedKeys); err != nil {
			return nil, err
		}
		buckets = append(buckets, m)
	}
	out := &orderedMap{}
	out.set("doc_count_error_upper_bound", 0)
	out.set("sum_other_doc_count", other)
	out.set("buckets", buckets)
	return out, nil
}

func addSubAggs(m *orderedMap, s *aggSpec, b *aggBucket, typedKeys bool) *searchError {
	if len(s.subs) == 0 {
		return nil
	}
	subs, err := renderAggs(s.subs, b.subs, typedKeys)
	if err != nil {
		return err
	}
	for _, sub := range s.subs {
		name := sub.name
		if typedKeys {
			name = typedAggName(sub) + "#" + sub.name
		}
		m.set(name, subs[name])
	}
	return nil
}

func renderHistogram(s *aggSpec, bs *bucketState, typedKeys bool) (any, *searchError) {
	keys := make([]float64, 0, len(bs.buckets))
	for k := range bs.buckets {
		keys = append(keys, k.f)
	}
	sort.Float64s(keys)
	// Fill empty buckets between the first and last key (and the extended bounds) when
	// min_doc_count is 0, as Elasticsearch does.
	if s.minDocCount == 0 && (len(keys) > 0 || s.bounds != nil) {
		lo, hi := math.Inf(1), math.Inf(-1)
		if len(keys) > 0 {
			lo, hi = keys[0], keys[len(keys)-1]
		}
		if s.bounds != nil {
			if !math.IsInf(s.bounds[0], 0) {
				lo = math.Min(lo, s.histKey(s.bounds[0]))
			}
			if !math.IsInf(s.bounds[1], 0) {
				hi = math.Max(hi, s.histKey(s.bounds[1]))
			}
		}
		if !math.IsInf(lo, 0) && !math.IsInf(hi, 0) {
			filled := make([]float64, 0, len(keys))
			for k, n := lo, 0; k <= hi; k, n = s.histNext(k), n+1 {
				if n >= maxAggBuckets {
					return nil, &searchError{Status: 400, Type: "too_many_buckets_exception", Reason: fmt.Sprintf("Trying to create too many buckets. Must be less than or equal to: [%d]. This limit can be set by changing the [search.max_buckets] cluster level setting.", maxAggBuckets)}
				}
				filled = append(filled, k)
			}
			keys = filled
		}
	}
	if s.orderKey && !s.orderAsc {
		sort.Sort(sort.Reverse(sort.Float64Slice(keys)))
	}
	type row struct {
		key float64
		b   *aggBucket
	}
	rows := make([]row, 0, len(keys))
	for _, k := range keys {
		b := bs.buckets[bucketKey{f: k}]
		if b == nil {
			b = &aggBucket{subs: newAggStates(s.subs)}
		}
		if b.count < s.minDocCount {
			continue
		}
		rows = append(rows, row{k, b})
	}
	if !s.orderKey && s.orderSet() {
		sort.SliceStable(rows, func(i, j int) bool {
			if s.orderAsc {
				return rows[i].b.count < rows[j].b.count
			}
			return rows[i].b.count > rows[j].b.count
		})
	}
	buckets := make([]any, 0, len(rows))
	keyed := &orderedMap{}
	for _, r := range rows {
		m := &orderedMap{}
		var keyStr string
		if s.typ == "date_histogram" {
			keyStr = formatAggDate(s, int64(r.key))
			m.set("key_as_string", keyStr)
			m.set("key", int64(r.key))
		} else {
			keyStr = strconv.FormatFloat(r.key, 'f', -1, 64)
			m.set("key", r.key)
		}
		m.set("doc_count", r.b.count)
		if err := addSubAggs(m, s, r.b, typedKeys); err != nil {
			return nil, err
		}
		if s.keyed {
			keyed.set(keyStr, m)
		} else {
			buckets = append(buckets, m)
		}
	}
	out := &orderedMap{}
	if s.keyed {
		out.set("buckets", keyed)
	} else {
		out.set("buckets", buckets)
	}
	return out, nil
}

// orderSet reports an explicit order by _count on a histogram (default: by key ascending).
func (s *aggSpec) orderSet() bool { return !s.orderKey && s.orderCount }

func (s *aggSpec) histKey(v float64) float64 {
	if s.typ == "date_histogram" {
		return float64(dateBucketKey(s, int64(v)))
	}
	return math.Floor((v-float64(s.offset))/s.interval)*s.interval + float64(s.offset)
}

func (s *aggSpec) histNext(k float64) float64 {
	if s.typ != "date_histogram" {
		return k + s.interval
	}
	if s.fixed > 0 {
		// Step by the interval and re-round, so daylight saving changes stay aligned.
		return float64(dateBucketKey(s, int64(k)+s.fixed))
	}
	t := time.UnixMilli(int64(k) - s.offset).In(s.loc)
	return float64(calendarNext(t, s.calendar).UnixMilli() + s.offset)
}

// formatAggDate renders a bucket key or metric value (epoch ms) in the aggregation's format.
func formatAggDate(s *aggSpec, ms int64) string {
	loc := s.loc
	if loc == nil {
		loc = time.UTC
	}
	t := time.UnixMilli(ms).In(loc)
	switch s.format {
	case "", "strict_date_optional_time", "date_optional_time", "strict_date_time", "date_time",
		"strict_date_optional_time_nanos":
		if loc == time.UTC {
			return t.Format("2006-01-02T15:04:05.000Z")
		}
		return t.Format("2006-01-02T15:04:05.000Z07:00")
	case "epoch_millis":
		return strconv.FormatInt(ms, 10)
	case "epoch_second":
		return strconv.FormatInt(floorDiv(ms, 1000), 10)
	}
	f := s.format
	if i := strings.Index(f, "||"); i >= 0 {
		f = f[:i]
	}
	if layout, ok := javaDateLayout(f); ok {
		return t.Format(layout)
	}
	return t.Format("2006-01-02T15:04:05.000Z07:00")
}

func renderMetric(s *aggSpec, m *metricState) any {
	out := &orderedMap{}
	value := func(v float64, ok bool) {
		if !ok {
			out.set("value", nil)
			return
		}
		out.set("value", v)
		if s.kind == kindDate {
			out.set("value_as_string", formatAggDate(s, int64(v)))
		}
	}
	switch s.typ {
	case "min":
		value(m.min, m.count > 0)
	case "max":
		value(m.max, m.count > 0)
	case "sum":
		out.set("value", m.sum)
	case "avg":
		value(m.sum/float64(max(m.count, 1)), m.count > 0)
	case "value_count":
		out.set("value", m.count)
	case "cardinality":
		out.set("value", len(m.distinct))
	case "stats":
		out.set("count", m.count)
		if m.count == 0 {
			out.set("min", nil)
			out.set("max", nil)
			out.set("avg", nil)
			out.set("sum", 0.0)
		} else {
			out.set("min", m.min)
			out.set("max", m.max)
			out.set("avg", m.sum/float64(m.count))
			out.set("sum", m.sum)
			if s.kind == kindDate {
				out.set("min_as_string", formatAggDate(s, int64(m.min)))
				out.set("max_as_string", formatAggDate(s, int64(m.max)))
			}
		}
	}
	return out
}
