package devstack

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/sluicelogs/sluice/internal/escompat"
)

// obj is a JSON object that keeps its members in order (escompat.Ordered).
type obj []kv

type kv struct {
	k string
	v any
}

func (o obj) Len() int                   { return len(o) }
func (o obj) Member(i int) (string, any) { return o[i].k, o[i].v }

const (
	nodeName    = "devstack"
	clusterName = "devstack"
)

// Handler serves the Elasticsearch REST API subset (see the package
// documentation). It may be served by several servers at once.
func (s *Store) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

func (s *Store) serveHTTP(w http.ResponseWriter, r *http.Request) {
	rs, path, ok := s.gate.Admit(w, r)
	if !ok {
		return
	}
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		rs.Error(storeClosed())
		return
	}
	s.route(rs, r, path)
}

// route dispatches a request to its endpoint; requests no endpoint serves
// are answered with unsupported.
func (s *Store) route(rs *escompat.Responder, r *http.Request, path escompat.Path) {
	var rt escompat.Router
	n, seg := len(path), path.At
	get, head, put, post, del := http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodDelete
	switch {
	case n == 0:
		rt.Handle(func() { s.info(rs) }, get, head)
	case n == 1 && seg(0) == "_bulk":
		rt.Handle(func() { s.bulk(rs, r, "") }, post, put)
	case seg(0) == "_index_template" && n <= 2:
		s.templates.Register(&rt, rs, r, seg(1))
	case seg(0) == "_cluster" && seg(1) == "health" && n <= 3:
		rt.Handle(func() { s.health(rs, seg(2)) }, get)
	case seg(0) == "_cat" && seg(1) == "indices" && n <= 3:
		rt.Handle(func() { s.catIndices(rs, r, seg(2)) }, get)
	case n == 1 && seg(0) == "_refresh":
		rt.Handle(func() { s.refresh(rs, r, "_all") }, post, get)
	case n == 1 && seg(0) == "_mapping":
		rt.Handle(func() { s.getMapping(rs, r, "_all") }, get)
	case n == 1 && (seg(0) == "_search" || seg(0) == "_count"):
		rt.Handle(func() { s.search(rs, r, "_all", seg(0) == "_count") }, get, post)
	case strings.HasPrefix(seg(0), "_"):
		// an API not served here
	case n == 1:
		rt.Handle(func() { s.getIndex(rs, r, seg(0)) }, get)
		rt.Handle(func() { s.headIndex(rs, r, seg(0)) }, head)
		rt.Handle(func() { s.putIndex(rs, r, seg(0)) }, put)
		rt.Handle(func() { s.deleteIndex(rs, r, seg(0)) }, del)
	case n == 2 && seg(1) == "_bulk":
		rt.Handle(func() { s.bulk(rs, r, seg(0)) }, post, put)
	case n == 2 && seg(1) == "_refresh":
		rt.Handle(func() { s.refresh(rs, r, seg(0)) }, post, get)
	case n == 2 && seg(1) == "_mapping":
		rt.Handle(func() { s.getMapping(rs, r, seg(0)) }, get)
	case n == 2 && (seg(1) == "_search" || seg(1) == "_count"):
		rt.Handle(func() { s.search(rs, r, seg(0), seg(1) == "_count") }, get, post)
	case n == 2 && seg(1) == "_doc":
		rt.Handle(func() { s.indexDoc(rs, r, seg(0), "", "index") }, post)
	case n == 3 && seg(1) == "_doc":
		rt.Handle(func() { s.getDoc(rs, seg(0), seg(2)) }, get, head)
		rt.Handle(func() { s.indexDoc(rs, r, seg(0), seg(2), "index") }, put, post)
		rt.Handle(func() { s.indexDoc(rs, r, seg(0), seg(2), "delete") }, del)
	case n == 3 && seg(1) == "_create":
		rt.Handle(func() { s.indexDoc(rs, r, seg(0), seg(2), "create") }, put, post)
	}
	if rt.Empty() {
		rs.Error(unsupported(r, path))
		return
	}
	rt.Serve(rs, r)
}

// unsupported is the error of a request no endpoint serves: it names the
// Elasticsearch API when the path shows one: the first segment starting
// with '_', with the segment after it for cluster-level APIs
// (_cat/shards, _search/scroll).
func unsupported(r *http.Request, segs []string) *escompat.Error {
	what := "this request"
	for i, sg := range segs {
		if !strings.HasPrefix(sg, "_") {
			continue
		}
		api := sg
		if i == 0 && len(segs) > 1 {
			api += "/" + segs[1]
		}
		what = "the [" + api + "] API"
		break
	}
	return escompat.NewError(http.StatusBadRequest, "unsupported_operation_exception",
		"devstack does not support %s: [%s %s]; it serves a subset of the Elasticsearch API: /, _bulk, _search, _count, _doc, _mapping, _refresh, _index_template, _cat/indices, _cluster/health and index create, exists, get and delete",
		what, r.Method, r.URL.Path)
}

func storeClosed() *escompat.Error {
	return escompat.NewError(http.StatusServiceUnavailable, "node_closed_exception", "devstack store is closed")
}

// indicesOptions reads ignore_unavailable and allow_no_indices over the
// defaults.
func indicesOptions(r *http.Request, dflt escompat.IndicesOptions) (escompat.IndicesOptions, *escompat.Error) {
	q := r.URL.Query()
	var err *escompat.Error
	if dflt.IgnoreUnavailable, err = escompat.ParseBool(q, "ignore_unavailable", dflt.IgnoreUnavailable); err != nil {
		return dflt, err
	}
	if dflt.AllowNoIndices, err = escompat.ParseBool(q, "allow_no_indices", dflt.AllowNoIndices); err != nil {
		return dflt, err
	}
	return dflt, nil
}

// resolveRequest resolves expr as resolve does, with the indices options
// of r over escompat.DefaultIndices.
func (s *Store) resolveRequest(r *http.Request, expr string) ([]*esIndex, *escompat.Error) {
	opts, err := indicesOptions(r, escompat.DefaultIndices)
	if err != nil {
		return nil, err
	}
	return s.resolve(expr, opts)
}

// resolve expands an index expression into the open indices it names,
// sorted by name.
func (s *Store) resolve(expr string, opts escompat.IndicesOptions) ([]*esIndex, *escompat.Error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	names, err := escompat.ResolveIndices(expr, s.indices, opts)
	if err != nil {
		return nil, err
	}
	out := make([]*esIndex, len(names))
	for i, n := range names {
		out[i] = s.indices[n]
	}
	return out, nil
}

func (s *Store) info(rs *escompat.Responder) {
	rs.JSON(http.StatusOK, escompat.ClusterInfo(nodeName, clusterName, s.clusterUUID, s.version))
}

func (s *Store) health(rs *escompat.Responder, expr string) {
	idxs, err := s.resolve(expr, escompat.DefaultIndices)
	if err != nil {
		rs.Error(err)
		return
	}
	rs.JSON(http.StatusOK, escompat.ClusterHealth(clusterName, len(idxs)))
}

func (s *Store) catIndices(rs *escompat.Responder, r *http.Request, pattern string) {
	idxs, err := s.resolve(pattern, escompat.DefaultIndices)
	if err != nil {
		rs.Error(err)
		return
	}
	rows := make([]escompat.CatIndex, 0, len(idxs))
	for _, idx := range idxs {
		if !idx.acquire() {
			continue
		}
		rows = append(rows, escompat.CatIndex{Name: idx.name, UUID: idx.uuid, DocsCount: idx.docCount(),
			Created: idx.created, StoreBytes: idx.storeBytes()})
		idx.release()
	}
	escompat.CatIndices(rs, r.URL.Query(), rows)
}

func (s *Store) putIndex(rs *escompat.Responder, r *http.Request, name string) {
	settings, mappings, err := escompat.ReadCreateIndex(r, name)
	if err != nil {
		rs.Error(err)
		return
	}
	if _, err := s.createIndex(name, settings, mappings, false); err != nil {
		rs.Error(err)
		return
	}
	rs.JSON(http.StatusOK, escompat.IndexCreated(name))
}

func (s *Store) headIndex(rs *escompat.Responder, r *http.Request, expr string) {
	opts, err := indicesOptions(r, escompat.DefaultIndices)
	if err != nil {
		rs.Status(http.StatusBadRequest)
		return
	}
	idxs, err := s.resolve(expr, opts)
	if err != nil || len(idxs) == 0 {
		rs.Status(http.StatusNotFound)
		return
	}
	rs.Status(http.StatusOK)
}

func (s *Store) deleteIndex(rs *escompat.Responder, r *http.Request, expr string) {
	idxs, err := s.resolveRequest(r, expr)
	if err != nil {
		rs.Error(err)
		return
	}
	names := make([]string, len(idxs))
	for i, idx := range idxs {
		names[i] = idx.name
	}
	if derr := s.deleteIndices(names); derr != nil {
		rs.Error(escompat.InternalError(derr))
		return
	}
	rs.JSON(http.StatusOK, escompat.Acknowledged())
}

func (s *Store) getIndex(rs *escompat.Responder, r *http.Request, expr string) {
	s.perIndex(rs, r, expr, func(idx *esIndex) any {
		return escompat.IndexDescription(idx.name, idx.uuid, idx.created, idx.settings, idx.mapping)
	})
}

func (s *Store) getMapping(rs *escompat.Responder, r *http.Request, expr string) {
	s.perIndex(rs, r, expr, func(idx *esIndex) any {
		// Render now: the mapping may change once the lock is released.
		return obj{{"mappings", json.RawMessage(escompat.Encode(idx.mapping.Describe(), nil))}}
	})
}

// perIndex answers a GET over an index expression with an object of one
// member per index, by name: what describe says of it, with the index's
// lock held.
func (s *Store) perIndex(rs *escompat.Responder, r *http.Request, expr string, describe func(*esIndex) any) {
	idxs, err := s.resolveRequest(r, expr)
	if err != nil {
		rs.Error(err)
		return
	}
	out := make(obj, 0, len(idxs))
	for _, idx := range idxs {
		idx.mu.Lock()
		d := describe(idx)
		idx.mu.Unlock()
		out = append(out, kv{idx.name, d})
	}
	rs.JSON(http.StatusOK, out)
}

// refresh answers POST /{index}/_refresh. Every write is searchable once
// its response is sent (see the package documentation), so there is
// nothing to do but check the expression.
func (s *Store) refresh(rs *escompat.Responder, r *http.Request, expr string) {
	idxs, err := s.resolveRequest(r, expr)
	if err != nil {
		rs.Error(err)
		return
	}
	rs.JSON(http.StatusOK, escompat.Refreshed(len(idxs)))
}

func (s *Store) getDoc(rs *escompat.Responder, name, id string) {
	idx := s.lookup(name)
	if idx == nil || !idx.acquire() {
		rs.Error(escompat.IndexNotFound(name))
		return
	}
	source, version, seqNo, found, err := idx.document(id)
	idx.release()
	switch {
	case err != nil:
		rs.Error(escompat.InternalError(err))
	case !found:
		rs.JSON(http.StatusNotFound, escompat.DocNotFound(name, id))
	default:
		rs.JSON(http.StatusOK, escompat.DocFound(name, id, version, seqNo, source))
	}
}
