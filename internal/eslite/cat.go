package eslite

import (
	"net/http"
	"strconv"
	"strings"
)

// catColumns are the columns of GET /_cat/indices, in their order; all
// are shown without h=.
var catColumns = []string{"health", "status", "index", "uuid", "pri", "rep", "docs.count", "docs.deleted", "store.size", "pri.store.size"}

// catIndices serves GET /_cat/indices[/{pattern}]: text (a header with v)
// or format=json, columns chosen with h=, sorted by index name.
func (s *Store) catIndices(rs *resp, pattern string) {
	q := rs.r.URL.Query()
	idxs, e := s.resolve(pattern, false, true)
	if e != nil {
		rs.err(e)
		return
	}
	cols := catColumns
	if h := q.Get("h"); h != "" {
		cols = strings.Split(h, ",")
		for _, c := range cols {
			if !containsStr(catColumns, c) {
				rs.err(illegalArg("header [%s] is not valid", c))
				return
			}
		}
	}
	rows := make([][]string, 0, len(idxs)+1)
	if q.Has("v") && q.Get("v") != "false" && q.Get("format") != "json" {
		rows = append(rows, cols)
	}
	for _, idx := range idxs {
		idx.mu.RLock()
		count, size := len(idx.docs), byteSize(idx.bytes)
		idx.mu.RUnlock()
		values := map[string]string{"health": "green", "status": "open", "index": idx.name, "uuid": idx.uuid, "pri": "1", "rep": "0",
			"docs.count": strconv.Itoa(count), "docs.deleted": "0", "store.size": size, "pri.store.size": size}
		row := make([]string, len(cols))
		for i, c := range cols {
			row[i] = values[c]
		}
		rows = append(rows, row)
	}
	if q.Get("format") == "json" {
		out := make([]map[string]string, len(rows))
		for i, row := range rows {
			out[i] = map[string]string{}
			for j, c := range cols {
				out[i][c] = row[j]
			}
		}
		rs.json(http.StatusOK, out)
		return
	}
	widths := make([]int, len(cols))
	for _, row := range rows {
		for i, cell := range row {
			widths[i] = max(widths[i], len(cell))
		}
	}
	var b strings.Builder
	for _, row := range rows {
		var line strings.Builder
		for i, cell := range row {
			line.WriteString(cell + strings.Repeat(" ", widths[i]-len(cell)+1))
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
	rs.raw(http.StatusOK, "text/plain; charset=UTF-8", []byte(b.String()))
}

// byteSize renders a size as Elasticsearch does: 225b, 4.5kb.
func byteSize(n int64) string {
	f, i := float64(n), 0
	for f >= 1024 && i < 4 {
		f /= 1024
		i++
	}
	return strings.TrimSuffix(strconv.FormatFloat(f, 'f', 1, 64), ".0") + []string{"b", "kb", "mb", "gb", "tb"}[i]
}
