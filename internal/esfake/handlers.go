package esfake

import (
	"encoding/json"
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

// allIndices resolves an expression as most APIs do by default: a missing
// concrete name fails, wildcards may match nothing.
var allIndices = escompat.IndicesOptions{AllowNoIndices: true}

// info answers GET / and HEAD /.
func (s *Server) info(rs *escompat.Responder) {
	rs.JSON(http.StatusOK, escompat.ClusterInfo(nodeName, clusterName, s.clusterUUID, s.version))
}

func (s *Server) health(rs *escompat.Responder, indexExpr string) {
	s.mu.Lock()
	shards := len(s.indices)
	if indexExpr != "" {
		names, err := escompat.ResolveIndices(indexExpr, s.indices, allIndices)
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
	if err := escompat.ValidateIndexName(name); err != nil {
		rs.Error(err)
		return
	}
	body, rerr := escompat.ReadBody(r)
	if rerr != nil {
		rs.Error(rerr)
		return
	}
	settings, mappings, perr := escompat.ParseCreateIndex(body)
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
	names, err := escompat.ResolveIndices(expr, s.indices, allIndices)
	s.mu.Unlock()
	if err != nil || len(names) == 0 {
		rs.Status(http.StatusNotFound)
		return
	}
	rs.Status(http.StatusOK)
}

func (s *Server) deleteIndex(rs *escompat.Responder, r *http.Request, expr string) {
	opts := allIndices
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
	s.mu.Lock()
	defer s.mu.Unlock()
	names, err := escompat.ResolveIndices(expr, s.indices, allIndices)
	if err != nil {
		rs.Error(err)
		return
	}
	out := obj{}
	for _, n := range names {
		idx := s.indices[n]
		out = append(out, kv{n, escompat.IndexDescription(n, idx.uuid, idx.created, idx.settings, idx.mapping)})
	}
	rs.JSON(http.StatusOK, out)
}

func (s *Server) getMapping(rs *escompat.Responder, expr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	names, err := escompat.ResolveIndices(expr, s.indices, allIndices)
	if err != nil {
		rs.Error(err)
		return
	}
	out := obj{}
	for _, n := range names {
		out = append(out, kv{n, obj{{"mappings", s.indices[n].mapping.Describe()}}})
	}
	rs.JSON(http.StatusOK, out)
}

func (s *Server) refresh(rs *escompat.Responder, expr string) {
	s.mu.Lock()
	names, err := escompat.ResolveIndices(expr, s.indices, allIndices)
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
		rs.JSON(http.StatusNotFound, obj{{"_index", name}, {"_id", id}, {"found", false}})
	default:
		rs.JSON(http.StatusOK, obj{
			{"_index", name}, {"_id", id}, {"_version", d.version}, {"_seq_no", d.seqNo},
			{"_primary_term", 1}, {"found", true}, {"_source", json.RawMessage(d.source)},
		})
	}
}

// catIndices answers GET /_cat/indices[/{pattern}].
func (s *Server) catIndices(rs *escompat.Responder, r *http.Request, pattern string) {
	s.mu.Lock()
	names, err := escompat.ResolveIndices(pattern, s.indices, allIndices)
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

func (s *Server) putTemplate(rs *escompat.Responder, r *http.Request, name string) {
	body, rerr := escompat.ReadBody(r)
	if rerr != nil {
		rs.Error(rerr)
		return
	}
	t, err := escompat.ParseIndexTemplate(name, body)
	if err != nil {
		rs.Error(err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.URL.Query().Get("create") == "true" && s.templates[name] != nil {
		rs.Error(escompat.IllegalArgument("index template [%s] already exists", name))
		return
	}
	if err := t.CheckOverlap(s.templateListLocked()); err != nil {
		rs.Error(err)
		return
	}
	s.templates[name] = t
	rs.JSON(http.StatusOK, escompat.Acknowledged())
}

func (s *Server) templateListLocked() []*escompat.IndexTemplate {
	all := make([]*escompat.IndexTemplate, 0, len(s.templates))
	for _, t := range s.templates {
		all = append(all, t)
	}
	return all
}

func (s *Server) getTemplates(rs *escompat.Responder, expr string, named bool) {
	s.mu.Lock()
	ts := escompat.MatchTemplates(s.templateListLocked(), expr)
	s.mu.Unlock()
	if named && len(ts) == 0 {
		rs.Error(escompat.TemplateNotFound(expr))
		return
	}
	rs.JSON(http.StatusOK, escompat.TemplatesResponse(ts))
}

func (s *Server) headTemplate(rs *escompat.Responder, expr string) {
	s.mu.Lock()
	n := len(escompat.MatchTemplates(s.templateListLocked(), expr))
	s.mu.Unlock()
	if n == 0 {
		rs.Status(http.StatusNotFound)
		return
	}
	rs.Status(http.StatusOK)
}

func (s *Server) deleteTemplate(rs *escompat.Responder, expr string) {
	s.mu.Lock()
	ts := escompat.MatchTemplates(s.templateListLocked(), expr)
	for _, t := range ts {
		delete(s.templates, t.Name)
	}
	s.mu.Unlock()
	if len(ts) == 0 {
		rs.Error(escompat.TemplateMissing(expr))
		return
	}
	rs.JSON(http.StatusOK, escompat.Acknowledged())
}

// bulk answers POST|PUT /_bulk and /{index}/_bulk.
func (s *Server) bulk(rs *escompat.Responder, r *http.Request, defaultIndex string) {
	start := time.Now()
	if _, err := escompat.ParseRefresh(r.URL.Query()); err != nil {
		rs.Error(err)
		return
	}
	body, rerr := escompat.ReadBody(r)
	if rerr != nil {
		rs.Error(rerr)
		return
	}
	items, perr := escompat.ParseBulk(body, defaultIndex)
	if perr != nil {
		rs.Error(perr)
		return
	}
	s.stats.bulkRequests.Add(1)
	s.stats.items.Add(int64(len(items)))
	itemFraction := s.faults.Load().ItemFraction
	rejected := make([]bool, len(items))
	for i := range items {
		rejected[i] = s.chance(itemFraction)
	}
	out := make([]any, len(items))
	hasErrors := false
	if s.discard {
		for i, it := range items {
			if it.ID == "" {
				it.ID = s.generateID()
			}
			if rejected[i] {
				out[i] = s.rejectedItem(it)
				hasErrors = true
				continue
			}
			out[i] = escompat.OKItem(it, 1, 0, "created", http.StatusCreated)
			s.stats.created.Add(1)
		}
	} else {
		// Parse documents outside the lock; apply them in order under it.
		docs := make([]*escompat.Document, len(items))
		derrs := make([]*escompat.Error, len(items))
		for i, it := range items {
			if it.ID == "" && (it.Action == "create" || it.Action == "index") {
				items[i].ID = s.generateID()
			}
			if !rejected[i] && (it.Action == "create" || it.Action == "index") {
				docs[i], derrs[i] = escompat.ParseDocument(it.Source)
			}
		}
		s.mu.Lock()
		for i, it := range items {
			var failed bool
			if rejected[i] {
				out[i], failed = s.rejectedItem(it), true
			} else {
				out[i], failed = s.applyItemLocked(it, docs[i], derrs[i])
			}
			hasErrors = hasErrors || failed
		}
		s.mu.Unlock()
	}
	rs.JSON(http.StatusOK, escompat.BulkResponse(time.Since(start).Milliseconds(), hasErrors, out))
}

func (s *Server) rejectedItem(it escompat.BulkItem) escompat.Ordered {
	s.stats.itemRejected.Add(1)
	return escompat.ErrorItem(it, escompat.ItemRejected(it))
}

// applyItemLocked performs one bulk operation; s.mu is held. failed reports
// an item carrying an error.
func (s *Server) applyItemLocked(it escompat.BulkItem, doc *escompat.Document, derr *escompat.Error) (item escompat.Ordered, failed bool) {
	invalid := func(e *escompat.Error) (escompat.Ordered, bool) {
		s.stats.itemInvalid.Add(1)
		return escompat.ErrorItem(it, e), true
	}
	if err := escompat.ValidateIndexName(it.Index); err != nil {
		return invalid(err)
	}
	idx := s.indices[it.Index]
	switch it.Action {
	case "update":
		return invalid(escompat.IllegalArgument("esfake does not support the bulk action [update]"))
	case "delete":
		if idx == nil {
			return escompat.ErrorItem(it, escompat.IndexNotFound(it.Index)), true
		}
		d := idx.docs[it.ID]
		idx.seqNo++
		if d == nil {
			return escompat.OKItem(it, 1, idx.seqNo-1, "not_found", http.StatusNotFound), false
		}
		delete(idx.docs, it.ID)
		idx.bytes -= int64(len(d.source))
		return escompat.OKItem(it, d.version+1, idx.seqNo-1, "deleted", http.StatusOK), false
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
		return escompat.ErrorItem(it, escompat.VersionConflict(idx.name, idx.uuid, it.ID, prev.version)), true
	}
	version, result, status := int64(1), "created", http.StatusCreated
	if prev != nil {
		version, result, status = prev.version+1, "updated", http.StatusOK
		idx.bytes -= int64(len(prev.source))
	} else {
		s.stats.created.Add(1)
	}
	idx.seqNo++
	idx.docs[it.ID] = &storedDoc{source: append([]byte(nil), it.Source...), version: version, seqNo: idx.seqNo - 1}
	idx.bytes += int64(len(it.Source))
	return escompat.OKItem(it, version, idx.seqNo-1, result, status), false
}
