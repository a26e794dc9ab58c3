package devstack

import (
	"net/http"
	"slices"
	"sort"
	"time"

	"github.com/blevesearch/bleve/v2"

	"github.com/sluicelogs/sluice/internal/escompat"
)

// search answers GET|POST /{index}/_search and /{index}/_count over an
// index expression (comma-separated names, wildcards, _all). The indices
// are held open for the duration: a concurrent delete waits for it.
func (s *Store) search(rs *escompat.Responder, r *http.Request, expr string, count bool) {
	opts, err := indicesOptions(r, escompat.DefaultIndices)
	if err != nil {
		rs.Error(err)
		return
	}
	body, err := escompat.ReadBody(r)
	if err != nil {
		rs.Error(err)
		return
	}
	idxs, err := s.resolve(expr, opts)
	if err != nil {
		rs.Error(err)
		return
	}
	held := make([]*esIndex, 0, len(idxs))
	defer func() {
		for _, idx := range held {
			idx.release()
		}
	}()
	for _, idx := range idxs { // sorted by name: a fixed locking order
		if idx.acquire() {
			held = append(held, idx)
		}
	}
	t, terr := s.searchTarget(held)
	if terr != nil {
		rs.Error(escompat.InternalError(terr))
		return
	}
	run := executeSearch
	if count {
		run = executeCount
	}
	out, serr := run(r.Context(), t, body, r.URL.Query(), time.Now())
	if serr != nil {
		rs.Error(&escompat.Error{Status: serr.Status, Type: serr.Type, Reason: serr.Reason})
		return
	}
	rs.FilteredJSON(http.StatusOK, out)
}

// searchTarget builds what executeSearch searches: the bleve index of one
// index, an alias over several, or an empty index for none; with the
// merged mapping of the indices, the first (by name) mapping a path
// deciding its type.
func (s *Store) searchTarget(idxs []*esIndex) (searchTarget, error) {
	t := searchTarget{Names: make([]string, len(idxs))}
	sets := make([]*fieldSet, len(idxs))
	for i, idx := range idxs {
		t.Names[i] = idx.name
		sets[i] = idx.fields.Load()
	}
	switch len(idxs) {
	case 0:
		empty, err := s.emptyIndex()
		if err != nil {
			return t, err
		}
		t.Index = empty
	case 1:
		t.Index = idxs[0].bi
	default:
		bis := make([]bleve.Index, len(idxs))
		for i, idx := range idxs {
			bis[i] = idx.bi
		}
		t.Index = bleve.NewIndexAlias(bis...)
	}
	if len(sets) == 1 {
		fs := sets[0]
		t.Field = fs.field
		t.Fields = func() []string { return slices.Clone(fs.leaves) }
		return t, nil
	}
	t.Field = func(path string) (fieldInfo, bool) {
		for _, fs := range sets {
			if fi, ok := fs.infos[path]; ok {
				return fi, true
			}
		}
		return fieldInfo{}, false
	}
	t.Fields = func() []string {
		seen := make(map[string]bool)
		var out []string
		for _, fs := range sets {
			for _, p := range fs.leaves {
				if !seen[p] {
					seen[p] = true
					out = append(out, p)
				}
			}
		}
		sort.Strings(out)
		return out
	}
	return t, nil
}
