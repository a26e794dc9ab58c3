package esfake

import (
	"net/http"
	"time"

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
	nodeName    = "esfake"
	clusterName = "esfake"
)

// info answers GET / and HEAD /.
func (s *Server) info(rs *escompat.Responder) {
	if s.product == escompat.OpenSearch {
		rs.JSON(http.StatusOK, escompat.OpenSearchClusterInfo(nodeName, clusterName, s.clusterUUID, s.version))
		return
	}
	rs.JSON(http.StatusOK, escompat.ClusterInfo(nodeName, clusterName, s.clusterUUID, s.version))
}

func (s *Server) health(rs *escompat.Responder, indexExpr string) {
	s.mu.Lock()
	shards := len(s.indices)
	if indexExpr != "" {
		names, err := escompat.ResolveIndices(indexExpr, s.indices, escompat.DefaultIndices)
		if err != nil {
			s.mu.Unlock()
			rs.Error(err)
			return
		}
		shards = len(names)
	}
	s.mu.Unlock()
	rs.JSON(http.StatusOK, escompat.ClusterHealth(clusterName, shards))
}

func (s *Server) createIndex(rs *escompat.Responder, r *http.Request, name string) {
	settings, mappings, perr := escompat.ReadCreateIndex(r, name)
	if perr != nil {
		rs.Error(perr)
		return
	}
	s.mu.Lock()
	if idx := s.indices[name]; idx != nil {
		uuid := idx.uuid
		s.mu.Unlock()
		rs.Error(escompat.IndexExists(name, uuid))
		return
	}
	_, err := s.createIndexLocked(name, settings, mappings)
	s.mu.Unlock()
	if err != nil {
		rs.Error(err)
		return
	}
	rs.JSON(http.StatusOK, escompat.IndexCreated(name))
}

func (s *Server) headIndex(rs *escompat.Responder, expr string) {
	s.mu.Lock()
	names, err := escompat.ResolveIndices(expr, s.indices, escompat.DefaultIndices)
	s.mu.Unlock()
	if err != nil || len(names) == 0 {
		rs.Status(http.StatusNotFound)
		return
	}
	rs.Status(http.StatusOK)
}

func (s *Server) deleteIndex(rs *escompat.Responder, r *http.Request, expr string) {
	opts := escompat.DefaultIndices
	opts.IgnoreUnavailable = r.URL.Query().Get("ignore_unavailable") == "true"
	s.mu.Lock()
	names, err := escompat.ResolveIndices(expr, s.indices, opts)
	if err == nil {
		for _, n := range names {
			delete(s.indices, n)
		}
	}
	s.mu.Unlock()
	if err != nil {
		rs.Error(err)
		return
	}
	rs.JSON(http.StatusOK, escompat.Acknowledged())
}

func (s *Server) getIndex(rs *escompat.Responder, expr string) {
	s.perIndex(rs, expr, func(idx *index) any {
		return escompat.IndexDescription(idx.name, idx.uuid, idx.created, idx.settings, idx.mapping)
	})
}

func (s *Server) getMapping(rs *escompat.Responder, expr string) {
	s.perIndex(rs, expr, func(idx *index) any { return obj{{"mappings", idx.mapping.Describe()}} })
}

// perIndex answers a GET over an index expression with an object of one
// member per index, by name: what describe says of it, with s.mu held.
func (s *Server) perIndex(rs *escompat.Responder, expr string, describe func(*index) any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	names, err := escompat.ResolveIndices(expr, s.indices, escompat.DefaultIndices)
	if err != nil {
		rs.Error(err)
		return
	}
	out := make(obj, 0, len(names))
	for _, n := range names {
		out = append(out, kv{n, describe(s.indices[n])})
	}
	rs.JSON(http.StatusOK, out)
}

func (s *Server) refresh(rs *escompat.Responder, expr string) {
	s.mu.Lock()
	names, err := escompat.ResolveIndices(expr, s.indices, escompat.DefaultIndices)
	s.mu.Unlock()
	if err != nil {
		rs.Error(err)
		return
	}
	rs.JSON(http.StatusOK, escompat.Refreshed(len(names)))
}

func (s *Server) getDoc(rs *escompat.Responder, name, id string) {
	s.mu.Lock()
	idx := s.indices[name]
	var d *storedDoc
	if idx != nil {
		d = idx.docs[id]
	}
	s.mu.Unlock()
	switch {
	case idx == nil:
		rs.Error(escompat.IndexNotFound(name))
	case d == nil:
		rs.JSON(http.StatusNotFound, escompat.DocNotFound(name, id))
	default:
		rs.JSON(http.StatusOK, escompat.DocFound(name, id, d.version, d.seqNo, d.source))
	}
}

// catIndices answers GET /_cat/indices[/{pattern}].
func (s *Server) catIndices(rs *escompat.Responder, r *http.Request, pattern string) {
	s.mu.Lock()
	names, err := escompat.ResolveIndices(pattern, s.indices, escompat.DefaultIndices)
	rows := make([]escompat.CatIndex, 0, len(names))
	for _, n := range names {
		idx := s.indices[n]
		rows = append(rows, escompat.CatIndex{Name: n, UUID: idx.uuid, DocsCount: int64(len(idx.docs)),
			Created: idx.created, StoreBytes: idx.bytes})
	}
	s.mu.Unlock()
	if err != nil {
		rs.Error(err)
		return
	}
	escompat.CatIndices(rs, r.URL.Query(), rows)
}

// bulk answers POST|PUT /_bulk and /{index}/_bulk.
func (s *Server) bulk(rs *escompat.Responder, r *http.Request, defaultIndex string) {
	start := time.Now()
	items, err := escompat.ReadBulk(r, defaultIndex)
	if err != nil {
		rs.Error(err)
		return
	}
	s.stats.bulkRequests.Add(1)
	s.stats.items.Add(int64(len(items)))
	ops := escompat.NewBulkOps(items, s.gate.Faults().ItemFraction, s.rng, s.generateID)
	for i := range ops {
		if ops[i].Rejected {
			s.stats.itemRejected.Add(1)
		}
	}
	if s.discard {
		for i := range ops {
			if !ops[i].Rejected {
				ops[i].Result = escompat.ItemResult{Version: 1, Result: "created", Status: http.StatusCreated}
				s.stats.created.Add(1)
			}
		}
	} else {
		// Parse documents outside the lock; apply them in order under it.
		docs := make([]*escompat.Document, len(ops))
		derrs := make([]*escompat.Error, len(ops))
		for i := range ops {
			if ops[i].Writes() {
				docs[i], derrs[i] = escompat.ParseDocument(ops[i].Item.Source)
			}
		}
		s.mu.Lock()
		for i := range ops {
			if !ops[i].Rejected {
				ops[i].Result = s.applyItemLocked(ops[i].Item, docs[i], derrs[i])
			}
		}
		s.mu.Unlock()
	}
	if s.product == escompat.OpenSearch {
		for i := range ops {
			ops[i].Result.Err = openSearchItemError(ops[i].Result.Err)
		}
	}
	rs.JSON(http.StatusOK, escompat.BulkResponse(time.Since(start), ops))
}

// applyItemLocked performs one bulk operation; s.mu is held.
func (s *Server) applyItemLocked(it escompat.BulkItem, doc *escompat.Document, derr *escompat.Error) escompat.ItemResult {
	invalid := func(e *escompat.Error) escompat.ItemResult {
		s.stats.itemInvalid.Add(1)
		return escompat.ItemResult{Err: e}
	}
	if err := escompat.ValidateIndexName(it.Index); err != nil {
		return invalid(err)
	}
	idx := s.indices[it.Index]
	if it.Action != "delete" {
		if err := s.indexFaultError(it.Index, idx != nil); err != nil {
			return escompat.ItemResult{Err: err}
		}
	}
	switch it.Action {
	case "update":
		return invalid(escompat.IllegalArgument("esfake does not support the bulk action [update]"))
	case "delete":
		if idx == nil {
			return escompat.ItemResult{Err: escompat.IndexNotFound(it.Index)}
		}
		d := idx.docs[it.ID]
		idx.seqNo++
		if d == nil {
			return escompat.ItemResult{Version: 1, SeqNo: idx.seqNo - 1, Result: "not_found", Status: http.StatusNotFound}
		}
		delete(idx.docs, it.ID)
		idx.bytes -= int64(len(d.source))
		return escompat.ItemResult{Version: d.version + 1, SeqNo: idx.seqNo - 1, Result: "deleted", Status: http.StatusOK}
	}
	if idx == nil {
		var err *escompat.Error
		if idx, err = s.createIndexLocked(it.Index, nil, nil); err != nil {
			return invalid(err)
		}
	}
	if derr != nil {
		return invalid(derr)
	}
	upd, err := idx.mapping.Check(it.ID, doc)
	if err != nil {
		return invalid(err)
	}
	idx.mapping.Apply(upd)
	prev := idx.docs[it.ID]
	if prev != nil && it.Action == "create" {
		s.stats.conflicts.Add(1)
		return escompat.ItemResult{Err: escompat.VersionConflict(idx.name, idx.uuid, it.ID, prev.version)}
	}
	res := escompat.ItemResult{Version: 1, Result: "created", Status: http.StatusCreated}
	if prev != nil {
		res.Version, res.Result, res.Status = prev.version+1, "updated", http.StatusOK
		idx.bytes -= int64(len(prev.source))
	} else {
		s.stats.created.Add(1)
	}
	res.SeqNo = idx.seqNo
	idx.seqNo++
	idx.docs[it.ID] = &storedDoc{source: append([]byte(nil), it.Source...), version: res.Version, seqNo: res.SeqNo}
	idx.bytes += int64(len(it.Source))
	return res
}
