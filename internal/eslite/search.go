package eslite

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"
)

// maxResultWindow is index.max_result_window: from + size at most.
const maxResultWindow = 10000

// searchRequest is a parsed _search or _count body.
type searchRequest struct {
	q        query
	size     int
	from     int
	sort     []sortField
	after    []sortKey
	track    int // total hits counted exactly up to; -1: none reported
	source   bool
	includes []string
	excludes []string
}

type sortField struct {
	field string // "_doc" for index order
	sel   fieldSel
	desc  bool
}

// sortKey is one sort value of a hit: a number or a string, or missing
// (sorted last whatever the order).
type sortKey struct {
	num     float64
	str     string
	isStr   bool
	missing bool
}

type hit struct {
	idx  *index
	d    *doc
	ord  int // the document's position: the tie-breaker
	keys []sortKey
}

// search serves _search and _count over an index expression.
func (s *Store) search(rs *resp, expr string, count bool) {
	start := time.Now()
	q := rs.r.URL.Query()
	body, e := readJSON(rs.r)
	if e != nil {
		rs.err(e)
		return
	}
	req, e := s.parseSearch(body, count)
	if e != nil {
		rs.err(e)
		return
	}
	idxs, e := s.resolve(expr, queryBool(q, "ignore_unavailable"), q.Get("allow_no_indices") != "false")
	if e != nil {
		rs.err(e)
		return
	}
	shards := map[string]int{"total": len(idxs), "successful": len(idxs), "skipped": 0, "failed": 0}
	want := req.from + req.size
	var (
		hits        []hit
		keys, worst []sortKey // the keys of a document; of the last hit kept
	)
	total := 0
	// Without a sort, the scan ends once the hits are found and the total
	// is as high as it is counted.
	enough := func() bool {
		return len(req.sort) == 0 && len(hits) >= want && total >= req.track && req.track < math.MaxInt
	}
	for _, idx := range idxs {
		idx.mu.RLock()
		for pos, d := range idx.docs {
			if !req.q.match(d) {
				continue
			}
			total++
			if count || want == 0 || len(req.sort) == 0 && len(hits) >= want {
				if !count && enough() {
					break
				}
				continue
			}
			h := hit{idx: idx, d: d, ord: pos}
			if len(req.sort) > 0 {
				keys = req.sortKeys(d, pos, keys[:0])
				if req.after != nil && compareKeys(keys, req.after, req.sort) <= 0 ||
					worst != nil && compareKeys(keys, worst, req.sort) >= 0 { // later documents lose ties
					continue
				}
				h.keys = slices.Clone(keys)
			}
			if hits = append(hits, h); len(hits) >= 2*want+64 {
				hits = req.top(hits, want)
				worst = hits[len(hits)-1].keys
			}
		}
		idx.mu.RUnlock()
		if !count && enough() {
			break
		}
	}
	if count {
		rs.json(http.StatusOK, map[string]any{"count": total, "_shards": shards})
		return
	}
	hits = req.top(hits, want)
	type hitJSON struct {
		Index  string          `json:"_index"`
		ID     string          `json:"_id"`
		Score  *float64        `json:"_score"`
		Source json.RawMessage `json:"_source,omitempty"`
		Sort   []any           `json:"sort,omitempty"`
	}
	one := 1.0
	score := &one
	if len(req.sort) > 0 {
		score = nil
	}
	out := make([]hitJSON, 0, len(hits))
	for _, h := range hits[min(req.from, len(hits)):] {
		hj := hitJSON{Index: h.idx.name, ID: h.d.id, Score: score}
		if req.source {
			hj.Source = filterSource(h.d.src, req.includes, req.excludes)
		}
		for _, k := range h.keys {
			switch {
			case k.missing:
				hj.Sort = append(hj.Sort, nil)
			case k.isStr:
				hj.Sort = append(hj.Sort, k.str)
			case k.num == math.Trunc(k.num) && math.Abs(k.num) < 1<<63:
				hj.Sort = append(hj.Sort, int64(k.num))
			default:
				hj.Sort = append(hj.Sort, k.num)
			}
		}
		out = append(out, hj)
	}
	hitsJSON := map[string]any{"max_score": score, "hits": out}
	if total == 0 {
		hitsJSON["max_score"] = nil
	}
	if req.track >= 0 {
		rel := "eq"
		if total > req.track {
			total, rel = req.track, "gte"
		}
		hitsJSON["total"] = map[string]any{"value": total, "relation": rel}
	}
	rs.json(http.StatusOK, map[string]any{"took": time.Since(start).Milliseconds(), "timed_out": false, "_shards": shards, "hits": hitsJSON})
}

// top sorts hits and keeps the first n.
func (req *searchRequest) top(hits []hit, n int) []hit {
	if len(req.sort) > 0 {
		slices.SortFunc(hits, func(a, b hit) int {
			if c := compareKeys(a.keys, b.keys, req.sort); c != 0 {
				return c
			}
			if c := strings.Compare(a.idx.name, b.idx.name); c != 0 {
				return c
			}
			return a.ord - b.ord
		})
	}
	return hits[:min(n, len(hits))]
}

// sortKeys are a document's values for the sort: of an array, the
// smallest ascending and the largest descending, as Elasticsearch's
// default sort mode does.
func (req *searchRequest) sortKeys(d *doc, pos int, keys []sortKey) []sortKey {
	keys = append(keys, make([]sortKey, len(req.sort))...)
	for i, sf := range req.sort {
		if sf.field == "_doc" {
			keys[i] = sortKey{num: float64(pos)}
			continue
		}
		k := sortKey{missing: true}
		for j := range d.vals {
			v := &d.vals[j]
			if !sf.sel.has(v.f) {
				continue
			}
			c := sortKey{num: v.num}
			if v.k == vKeyword || v.k == vText || v.k == vBool {
				c = sortKey{str: v.s, isStr: true}
			}
			if k.missing || (compareKey(c, k) < 0) != sf.desc {
				k = c
			}
		}
		keys[i] = k
	}
	return keys
}

func compareKey(a, b sortKey) int {
	switch {
	case a.missing || b.missing:
		return 0
	case a.isStr != b.isStr: // numbers first
		if a.isStr {
			return 1
		}
		return -1
	case a.isStr:
		return strings.Compare(a.str, b.str)
	case a.num < b.num:
		return -1
	case a.num > b.num:
		return 1
	}
	return 0
}

// compareKeys orders two hits' keys by the sort: missing values last.
func compareKeys(a, b []sortKey, sort []sortField) int {
	for i, sf := range sort {
		if i >= len(a) || i >= len(b) {
			return 0
		}
		if a[i].missing != b[i].missing {
			if a[i].missing {
				return 1
			}
			return -1
		}
		c := compareKey(a[i], b[i])
		if sf.desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

// parseSearch reads a search body (count: a count body, its query only).
func (s *Store) parseSearch(body map[string]any, count bool) (*searchRequest, *esError) {
	req := &searchRequest{q: matchAll{}, size: 10, track: maxResultWindow, source: true}
	for _, k := range sortedKeys(body) {
		v := body[k]
		var e *esError
		switch k {
		case "query":
			req.q, e = s.parseQuery(v)
		case "size", "from":
			n, ok := intValue(v)
			if !ok || n < 0 {
				return nil, parsingErr("[%s] must be a non-negative integer", k)
			}
			if k == "size" {
				req.size = n
			} else {
				req.from = n
			}
		case "sort":
			e = s.parseSort(req, v)
		case "search_after":
			list, ok := v.([]any)
			if !ok {
				return nil, parsingErr("[search_after] must be an array")
			}
			for _, x := range list {
				k := sortKey{missing: x == nil}
				if n, ok := x.(json.Number); ok {
					k.num, _ = n.Float64()
				} else if x != nil {
					k.str, k.isStr = fmt.Sprint(x), true
				}
				req.after = append(req.after, k)
			}
		case "track_total_hits":
			var ok bool
			if b, isBool := v.(bool); isBool {
				req.track, ok = map[bool]int{true: math.MaxInt, false: -1}[b], true
			} else if req.track, ok = intValue(v); !ok {
				return nil, parsingErr("[track_total_hits] must be a boolean or an integer")
			}
		case "_source":
			e = parseSourceFilter(req, v)
		case "timeout", "track_scores", "version", "seq_no_primary_term", "explain", "min_score", "terminate_after":
		default:
			return nil, parsingErr("Unknown key [%s] in the search body: eslite serves query, size, from, sort, search_after, _source and track_total_hits", k)
		}
		if e != nil {
			return nil, e
		}
		if count && k != "query" {
			return nil, parsingErr("request does not support [%s]", k)
		}
	}
	if req.from+req.size > maxResultWindow && !count {
		return nil, illegalArg("Result window is too large, from + size must be less than or equal to: [%d] but was [%d]. See the scroll api for a more efficient way to request large data sets.",
			maxResultWindow, req.from+req.size)
	}
	if req.after != nil && len(req.after) != len(req.sort) {
		return nil, illegalArg("search_after has %d value(s) but sort has %d.", len(req.after), len(req.sort))
	}
	return req, nil
}

func intValue(v any) (int, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	i, err := n.Int64()
	return int(i), err == nil && i <= math.MaxInt32
}

// parseSort reads "sort": a field, {field: order}, {field: {order,
// unmapped_type, ...}}, or a list of those.
func (s *Store) parseSort(req *searchRequest, v any) *esError {
	list, ok := v.([]any)
	if !ok {
		list = []any{v}
	}
	for _, x := range list {
		var sf sortField
		switch y := x.(type) {
		case string:
			sf.field = y
		case map[string]any:
			if len(y) != 1 {
				return parsingErr("[sort] expects one field per object")
			}
			for f, spec := range y {
				sf.field = f
				order := spec
				if m, ok := spec.(map[string]any); ok {
					order = m["order"]
				}
				switch order {
				case nil, "asc":
				case "desc":
					sf.desc = true
				default:
					return parsingErr("[sort] unknown order [%v]", order)
				}
			}
		default:
			return parsingErr("[sort] malformed")
		}
		switch sf.field {
		case "_score":
			continue // every hit scores 1
		case "_doc":
		default:
			sf.sel = s.selectFields(sf.field, false)
		}
		req.sort = append(req.sort, sf)
	}
	return nil
}

// parseSourceFilter reads "_source": a boolean, a pattern, a list of
// patterns, or {includes, excludes}.
func parseSourceFilter(req *searchRequest, v any) *esError {
	strs := func(v any) []string {
		switch x := v.(type) {
		case string:
			return []string{x}
		case []any:
			var out []string
			for _, e := range x {
				out = append(out, fmt.Sprint(e))
			}
			return out
		}
		return nil
	}
	switch x := v.(type) {
	case bool:
		req.source = x
	case map[string]any:
		req.includes, req.excludes = strs(x["includes"]), strs(x["excludes"])
	default:
		req.includes = strs(x)
	}
	return nil
}

// filterSource keeps the parts of a source its includes and excludes name
// (dotted paths, '*' wildcards), as _source filtering does.
func filterSource(src []byte, includes, excludes []string) json.RawMessage {
	if len(includes) == 0 && len(excludes) == 0 {
		return src
	}
	var doc map[string]any
	if decodeJSON(src, &doc) != nil {
		return src
	}
	matches := func(pats []string, path string, prefix bool) bool {
		for _, p := range pats {
			if glob(p, path, false) || prefix && strings.HasPrefix(p, path+".") || strings.HasPrefix(path, p+".") {
				return true
			}
		}
		return false
	}
	var filter func(prefix string, m map[string]any) map[string]any
	filter = func(prefix string, m map[string]any) map[string]any {
		out := map[string]any{}
		for k, v := range m {
			path := joinPath(prefix, k)
			if matches(excludes, path, false) || len(includes) > 0 && !matches(includes, path, true) {
				continue
			}
			if sub, ok := v.(map[string]any); ok && !matches(includes, path, false) {
				if sub = filter(path, sub); len(sub) == 0 {
					continue
				}
				v = sub
			}
			out[k] = v
		}
		return out
	}
	b, _ := json.Marshal(filter("", doc))
	return b
}
