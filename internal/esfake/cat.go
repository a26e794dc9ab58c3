package esfake

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// catColumn is one column of GET /_cat/indices.
type catColumn struct {
	name    string
	aliases []string
	numeric bool // right-aligned in text output, compared as numbers by s=
	dflt    bool // shown without h=
	value   func(idx *index, bytes string) string
}

var catIndexColumns = []catColumn{
	{name: "health", aliases: []string{"h"}, dflt: true, value: func(*index, string) string { return "green" }},
	{name: "status", aliases: []string{"s"}, dflt: true, value: func(*index, string) string { return "open" }},
	{name: "index", aliases: []string{"i", "idx"}, dflt: true, value: func(x *index, _ string) string { return x.name }},
	{name: "uuid", aliases: []string{"id"}, dflt: true, value: func(x *index, _ string) string { return x.uuid }},
	{name: "pri", aliases: []string{"p", "shards.primary", "shardsPrimary"}, numeric: true, dflt: true, value: func(*index, string) string { return "1" }},
	{name: "rep", aliases: []string{"r", "shards.replica", "shardsReplica"}, numeric: true, dflt: true, value: func(*index, string) string { return "0" }},
	{name: "docs.count", aliases: []string{"dc", "docsCount"}, numeric: true, dflt: true, value: func(x *index, _ string) string { return strconv.Itoa(len(x.docs)) }},
	{name: "docs.deleted", aliases: []string{"dd", "docsDeleted"}, numeric: true, dflt: true, value: func(*index, string) string { return "0" }},
	{name: "creation.date", aliases: []string{"cd"}, numeric: true, value: func(x *index, _ string) string { return itoa64(x.created.UnixMilli()) }},
	{name: "creation.date.string", aliases: []string{"cds"}, value: func(x *index, _ string) string {
		return x.created.UTC().Format("2006-01-02T15:04:05.000Z")
	}},
	{name: "store.size", aliases: []string{"ss", "storeSize"}, numeric: true, dflt: true, value: func(x *index, unit string) string { return byteSize(x.bytes, unit) }},
	{name: "pri.store.size", numeric: true, dflt: true, value: func(x *index, unit string) string { return byteSize(x.bytes, unit) }},
	{name: "dataset.size", numeric: true, dflt: true, value: func(x *index, unit string) string { return byteSize(x.bytes, unit) }},
}

// byteSize renders a size as Elasticsearch's ByteSizeValue does ("225b",
// "4.5kb"), or as a plain number in the unit of the bytes= parameter.
func byteSize(n int64, unit string) string {
	units := []string{"b", "kb", "mb", "gb", "tb", "pb"}
	if unit != "" {
		for i, u := range units {
			if u == unit {
				div := int64(1) << (10 * i)
				return itoa64(n / div)
			}
		}
	}
	f := float64(n)
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	s := strconv.FormatFloat(f, 'f', 1, 64)
	s = strings.TrimSuffix(s, ".0")
	return s + units[i]
}

func (c *catColumn) matches(pattern string) bool {
	if globMatch(pattern, c.name) {
		return true
	}
	for _, a := range c.aliases {
		if a == pattern {
			return true
		}
	}
	return false
}

// catIndices answers GET /_cat/indices and /_cat/indices/{pattern}, in text
// (optionally with a header, v) or format=json, with h= column selection,
// s= sorting and bytes= units.
func (s *Server) catIndices(rs *responder, r *http.Request, pattern string) {
	q := r.URL.Query()
	var cols []*catColumn
	if h := q.Get("h"); h != "" {
		for _, p := range strings.Split(h, ",") {
			matched := false
			for i := range catIndexColumns {
				if catIndexColumns[i].matches(p) {
					cols = append(cols, &catIndexColumns[i])
					matched = true
				}
			}
			if !matched {
				rs.error(illegalArgument("header [%s] is not valid", p))
				return
			}
		}
	} else {
		for i := range catIndexColumns {
			if catIndexColumns[i].dflt {
				cols = append(cols, &catIndexColumns[i])
			}
		}
	}
	if pattern == "" {
		pattern = "*"
	}
	unit := q.Get("bytes")
	s.mu.Lock()
	names, err := s.resolveLocked(pattern, false)
	var rows [][]string
	if err == nil {
		for _, n := range names {
			idx := s.indices[n]
			row := make([]string, len(catIndexColumns))
			for i := range catIndexColumns {
				row[i] = catIndexColumns[i].value(idx, unit)
			}
			rows = append(rows, row)
		}
	}
	s.mu.Unlock()
	if err != nil {
		rs.error(err)
		return
	}
	if sortBy := q.Get("s"); sortBy != "" {
		if err := sortCatRows(rows, sortBy); err != nil {
			rs.error(err)
			return
		}
	}
	colIndex := func(c *catColumn) int {
		for i := range catIndexColumns {
			if &catIndexColumns[i] == c {
				return i
			}
		}
		return 0
	}
	if q.Get("format") == "json" {
		list := make([]any, 0, len(rows))
		for _, row := range rows {
			o := make(obj, 0, len(cols))
			for _, c := range cols {
				o = append(o, kv{c.name, row[colIndex(c)]})
			}
			list = append(list, o)
		}
		rs.json(http.StatusOK, list)
		return
	}
	table := [][]string{}
	if q.Has("v") && q.Get("v") != "false" {
		head := make([]string, len(cols))
		for i, c := range cols {
			head[i] = c.name
		}
		table = append(table, head)
	}
	for _, row := range rows {
		line := make([]string, len(cols))
		for i, c := range cols {
			line[i] = row[colIndex(c)]
		}
		table = append(table, line)
	}
	widths := make([]int, len(cols))
	for _, line := range table {
		for i, cell := range line {
			widths[i] = max(widths[i], len(cell))
		}
	}
	var b strings.Builder
	for _, line := range table {
		var cells []string
		for i, cell := range line {
			pad := strings.Repeat(" ", widths[i]-len(cell))
			if cols[i].numeric {
				cells = append(cells, pad+cell)
			} else {
				cells = append(cells, cell+pad)
			}
		}
		b.WriteString(strings.TrimRight(strings.Join(cells, " "), " "))
		b.WriteByte('\n')
	}
	rs.text(http.StatusOK, b.String())
}

// sortCatRows sorts rows by the s= parameter: columns with optional :asc or
// :desc.
func sortCatRows(rows [][]string, spec string) *Error {
	type key struct {
		col  int
		desc bool
	}
	var keys []key
	for _, part := range strings.Split(spec, ",") {
		name, dir, _ := strings.Cut(part, ":")
		col := -1
		for i := range catIndexColumns {
			if catIndexColumns[i].name == name || contains(catIndexColumns[i].aliases, name) {
				col = i
			}
		}
		if col < 0 {
			return illegalArgument("Unable to sort by unknown sort key `%s`", name)
		}
		keys = append(keys, key{col, dir == "desc"})
	}
	sort.SliceStable(rows, func(a, b int) bool {
		for _, k := range keys {
			x, y := rows[a][k.col], rows[b][k.col]
			if x == y {
				continue
			}
			less := x < y
			if catIndexColumns[k.col].numeric {
				fx, ex := strconv.ParseFloat(strings.TrimRight(x, "bkmgtp"), 64)
				fy, ey := strconv.ParseFloat(strings.TrimRight(y, "bkmgtp"), 64)
				if ex == nil && ey == nil {
					less = fx < fy
				}
			}
			return less != k.desc
		}
		return false
	})
	return nil
}
