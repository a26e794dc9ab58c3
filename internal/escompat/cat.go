package escompat

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// CatIndex is one row of GET /_cat/indices: an open, green index of one
// primary shard and no replica.
type CatIndex struct {
	Name, UUID  string
	DocsCount   int64
	DocsDeleted int64
	Created     time.Time
	StoreBytes  int64 // store.size, pri.store.size and dataset.size
}

// catColumn is one column of GET /_cat/indices.
type catColumn struct {
	name    string
	aliases []string
	numeric bool // right-aligned in text output, compared as numbers by s=
	dflt    bool // shown without h=
	value   func(x *CatIndex, bytes string) string
}

var catIndexColumns = []catColumn{
	{name: "health", aliases: []string{"h"}, dflt: true, value: func(*CatIndex, string) string { return "green" }},
	{name: "status", aliases: []string{"s"}, dflt: true, value: func(*CatIndex, string) string { return "open" }},
	{name: "index", aliases: []string{"i", "idx"}, dflt: true, value: func(x *CatIndex, _ string) string { return x.Name }},
	{name: "uuid", aliases: []string{"id"}, dflt: true, value: func(x *CatIndex, _ string) string { return x.UUID }},
	{name: "pri", aliases: []string{"p", "shards.primary", "shardsPrimary"}, numeric: true, dflt: true, value: func(*CatIndex, string) string { return "1" }},
	{name: "rep", aliases: []string{"r", "shards.replica", "shardsReplica"}, numeric: true, dflt: true, value: func(*CatIndex, string) string { return "0" }},
	{name: "docs.count", aliases: []string{"dc", "docsCount"}, numeric: true, dflt: true, value: func(x *CatIndex, _ string) string { return itoa64(x.DocsCount) }},
	{name: "docs.deleted", aliases: []string{"dd", "docsDeleted"}, numeric: true, dflt: true, value: func(x *CatIndex, _ string) string { return itoa64(x.DocsDeleted) }},
	{name: "creation.date", aliases: []string{"cd"}, numeric: true, value: func(x *CatIndex, _ string) string { return itoa64(x.Created.UnixMilli()) }},
	{name: "creation.date.string", aliases: []string{"cds"}, value: func(x *CatIndex, _ string) string {
		return x.Created.UTC().Format("2006-01-02T15:04:05.000Z")
	}},
	{name: "store.size", aliases: []string{"ss", "storeSize"}, numeric: true, dflt: true, value: func(x *CatIndex, unit string) string { return byteSize(x.StoreBytes, unit) }},
	{name: "pri.store.size", numeric: true, dflt: true, value: func(x *CatIndex, unit string) string { return byteSize(x.StoreBytes, unit) }},
	{name: "dataset.size", numeric: true, dflt: true, value: func(x *CatIndex, unit string) string { return byteSize(x.StoreBytes, unit) }},
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
	if GlobMatch(pattern, c.name) {
		return true
	}
	for _, a := range c.aliases {
		if a == pattern {
			return true
		}
	}
	return false
}

// CatIndices answers GET /_cat/indices over rows (in any order), in text
// (with a header when v is set) or format=json, with h= column selection,
// s= sorting (by index name without it) and bytes= units.
func CatIndices(rs *Responder, q url.Values, indices []CatIndex) {
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
				rs.Error(IllegalArgument("header [%s] is not valid", p))
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
	sort.Slice(indices, func(i, j int) bool { return indices[i].Name < indices[j].Name })
	unit := q.Get("bytes")
	rows := make([][]string, 0, len(indices))
	for i := range indices {
		row := make([]string, len(catIndexColumns))
		for c := range catIndexColumns {
			row[c] = catIndexColumns[c].value(&indices[i], unit)
		}
		rows = append(rows, row)
	}
	if sortBy := q.Get("s"); sortBy != "" {
		if err := sortCatRows(rows, sortBy); err != nil {
			rs.Error(err)
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
		rs.JSON(http.StatusOK, list)
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
	rs.Text(http.StatusOK, b.String())
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
			return IllegalArgument("Unable to sort by unknown sort key `%s`", name)
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
