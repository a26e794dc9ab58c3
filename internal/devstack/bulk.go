package devstack

import (
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/document"
	index_api "github.com/blevesearch/bleve_index_api"

	"github.com/sluicelogs/sluice/internal/escompat"
)

// op is one write operation (a bulk item, or a single-document request)
// on its way to an index.
type op struct {
	*escompat.BulkOp
	doc  *escompat.Document
	derr *escompat.Error

	// The bleve document, built before the index is locked with the field
	// set it was built with; rebuilt under the lock if the mapping gained
	// paths it has values at meanwhile.
	bdoc      *document.Document
	berr      error
	builtWith *fieldSet
	unmapped  bool // the source has values at paths builtWith does not map
}

// bulk answers POST|PUT /_bulk and /{index}/_bulk. Each index's operations
// are applied in request order (see esIndex.write), and are searchable when
// the response is sent, whatever refresh says.
func (s *Store) bulk(rs *escompat.Responder, r *http.Request, defaultIndex string) {
	start := time.Now()
	items, err := escompat.ReadBulk(r, defaultIndex)
	if err != nil {
		rs.Error(err)
		return
	}
	bops := escompat.NewBulkOps(items, s.gate.Faults().ItemFraction, s.rng, s.generateID)
	ops := make([]op, len(bops))
	var order []string
	groups := make(map[string][]*op)
	for i := range ops {
		o := &ops[i]
		o.BulkOp = &bops[i]
		if groups[o.Item.Index] == nil {
			order = append(order, o.Item.Index)
		}
		groups[o.Item.Index] = append(groups[o.Item.Index], o)
	}
	for _, name := range order {
		s.write(name, groups[name])
	}
	rs.JSON(http.StatusOK, escompat.BulkResponse(time.Since(start), bops))
}

// indexDoc answers the single-document APIs: PUT|POST /{index}/_doc[/{id}]
// (action index, or create with op_type=create), PUT|POST
// /{index}/_create/{id} and DELETE /{index}/_doc/{id}, as a bulk of one.
func (s *Store) indexDoc(rs *escompat.Responder, r *http.Request, name, id, action string) {
	q := r.URL.Query()
	if _, err := escompat.ParseRefresh(q); err != nil {
		rs.Error(err)
		return
	}
	switch opType := q.Get("op_type"); {
	case action == "index" && opType == "create":
		action = "create"
	case opType != "" && opType != "index" && opType != "create":
		rs.Error(escompat.IllegalArgument("opType must be 'create' or 'index', found: [%s]", opType))
		return
	}
	it := escompat.BulkItem{Action: action, Index: name, ID: id, Line: 1}
	if action != "delete" {
		body, err := escompat.ReadBody(r)
		if err != nil {
			rs.Error(err)
			return
		}
		it.Source = body
		if it.ID == "" {
			it.ID = s.generateID()
		}
	}
	o := &op{BulkOp: &escompat.BulkOp{Item: it}}
	s.write(name, []*op{o})
	res := o.Result
	if res.Err != nil {
		rs.Error(res.Err)
		return
	}
	rs.JSON(res.Status, obj{
		{"_index", name}, {"_id", it.ID}, {"_version", res.Version}, {"result", res.Result},
		{"_shards", obj{{"total", 2}, {"successful", 1}, {"failed", 0}}},
		{"_seq_no", res.SeqNo}, {"_primary_term", 1},
	})
}

// write applies the ops of one index, creating the index (from its
// template) when an op writes a document to an index that does not exist.
func (s *Store) write(name string, ops []*op) {
	if err := escompat.ValidateIndexName(name); err != nil {
		for _, o := range ops {
			if !o.Rejected {
				o.Fail(err)
			}
		}
		return
	}
	creates := false
	for _, o := range ops {
		creates = creates || o.Writes()
	}
	var idx *esIndex
	for {
		idx = s.lookup(name)
		if idx == nil && creates {
			var err *escompat.Error
			if idx, err = s.createIndex(name, nil, nil, true); err != nil {
				for _, o := range ops {
					if !o.Rejected {
						o.Fail(err)
					}
				}
				return
			}
		}
		if idx == nil {
			for _, o := range ops {
				if !o.Rejected {
					o.Fail(escompat.IndexNotFound(name))
				}
			}
			return
		}
		if idx.acquire() {
			break
		}
		// Deleted meanwhile: look again.
	}
	defer idx.release()
	idx.write(ops)
}

// write applies ops to the index in order as one bleve batch, or, when
// there are many, as one batch per core, each _id's ops in one of them; the
// index is acquired. Documents are parsed and built before the index is
// locked, on every core; under the lock, each is checked against the
// mapping (which it may extend), its _id against the ids, and added to its
// batch. A mapping that changed is persisted before the batches are
// applied. They are applied without the lock, in parallel, so that the
// segments of a request and of concurrent requests are built on several
// cores. If applying a batch fails, the ids of its ops are restored and
// they fail with 500.
func (idx *esIndex) write(ops []*op) {
	build := make([]*op, 0, len(ops))
	for _, o := range ops {
		if o.Writes() {
			build = append(build, o)
		}
	}
	buildAll(build, idx.fields.Load())

	idx.mu.Lock()
	locked := true
	defer func() {
		if locked {
			idx.mu.Unlock()
		}
	}()
	fs := idx.fields.Load()
	// Large batches are applied as several, one per core, each building its segment: all
	// operations on one _id go to the same part, in order.
	parts := make([]*bleve.Batch, batchParts(len(ops)))
	for i := range parts {
		parts[i] = idx.bi.NewBatch()
	}
	partOf := func(id string) int {
		if len(parts) == 1 {
			return 0
		}
		h := uint32(2166136261) // FNV-1a
		for i := 0; i < len(id); i++ {
			h = (h ^ uint32(id[i])) * 16777619
		}
		return int(h % uint32(len(parts)))
	}
	type prior struct {
		version int64 // before this call
		existed bool
		set     int64 // by this call; 0 for a delete
	}
	priors := make(map[string]*prior) // each touched _id
	touch := func(id string) *prior {
		p := priors[id]
		if p == nil {
			v, ok := idx.ids[id]
			p = &prior{version: v, existed: ok}
			priors[id] = p
		}
		return p
	}
	var applied []*op
	mappingChanged := false
	for _, o := range ops {
		if o.Rejected {
			continue
		}
		id := o.Item.ID
		switch o.Item.Action {
		case "update":
			o.Fail(escompat.IllegalArgument("devstack does not support the bulk action [update]"))
		case "delete":
			v, ok := idx.ids[id]
			seq := idx.seqNo
			idx.seqNo++
			if !ok {
				o.Result = escompat.ItemResult{Version: 1, SeqNo: seq, Result: "not_found", Status: http.StatusNotFound}
				continue
			}
			if v == 0 {
				v = idx.storedVersion(id)
			}
			touch(id).set = 0
			delete(idx.ids, id)
			parts[partOf(id)].Delete(id)
			o.Result = escompat.ItemResult{Version: v + 1, SeqNo: seq, Result: "deleted", Status: http.StatusOK}
			applied = append(applied, o)
		default:
			if o.derr != nil {
				o.Fail(o.derr)
				continue
			}
			upd, err := idx.mapping.Check(id, o.doc)
			if err != nil {
				o.Fail(err)
				continue
			}
			v, exists := idx.ids[id]
			if exists && v == 0 {
				v = idx.storedVersion(id)
				idx.ids[id] = v
			}
			if upd.Len() > 0 {
				idx.mapping.Apply(upd)
				mappingChanged = true
				fs = newFieldSet(idx.mapping)
				idx.fields.Store(fs)
			}
			if exists && o.Item.Action == "create" {
				o.Fail(escompat.VersionConflict(idx.name, idx.uuid, id, v))
				continue
			}
			if o.builtWith != fs && o.unmapped {
				a := &docArena{}
				o.bdoc, o.berr = buildValidDocument(id, o.Item.Source, fs, a)
				o.builtWith, o.unmapped = fs, a.unmapped
			}
			if o.berr != nil {
				o.Fail(buildError(o.berr))
				continue
			}
			out := escompat.ItemResult{Version: 1, SeqNo: idx.seqNo, Result: "created", Status: http.StatusCreated}
			if exists {
				out.Version, out.Result, out.Status = v+1, "updated", http.StatusOK
			}
			idx.seqNo++
			o.bdoc.AddField(document.NewNumericFieldWithIndexingOptions(versionField, nil, float64(out.Version), index_api.StoreField))
			o.bdoc.AddField(document.NewNumericFieldWithIndexingOptions(seqNoField, nil, float64(out.SeqNo), index_api.StoreField))
			if err := parts[partOf(id)].IndexAdvanced(o.bdoc); err != nil {
				o.Fail(escompat.InternalError(err))
				continue
			}
			touch(id).set = out.Version
			idx.ids[id] = out.Version
			o.Result = out
			applied = append(applied, o)
		}
	}
	var err error
	if mappingChanged {
		if err = idx.saveMeta(); err != nil {
			err = fmt.Errorf("persist the mapping of [%s]: %w", idx.name, err)
		}
	}
	errs := make([]error, len(parts)) // of each part
	if err == nil && len(applied) > 0 {
		// Batches of concurrent requests are built in parallel; one that
		// touches an _id an earlier batch still carries waits for it, so
		// that the last write of an _id wins.
		t := &ticket{done: make(chan struct{})}
		var waits []*ticket
		for id := range priors {
			if prev := idx.inflight[id]; prev != nil && !slices.Contains(waits, prev) {
				waits = append(waits, prev)
			}
			idx.inflight[id] = t
		}
		seqNo := []byte(strconv.FormatInt(idx.seqNo, 10))
		for _, b := range parts {
			if b.Size() > 0 {
				b.SetInternal(seqNoKey, seqNo)
				break
			}
		}
		idx.mu.Unlock()
		locked = false
		for _, w := range waits {
			<-w.done
		}
		var wg sync.WaitGroup
		for i, b := range parts {
			if b.Size() == 0 {
				continue
			}
			wg.Go(func() {
				if err := idx.bi.Batch(b); err != nil {
					errs[i] = fmt.Errorf("index into [%s]: %w", idx.name, err)
				}
			})
		}
		wg.Wait()
		idx.mu.Lock()
		locked = true
		for id := range priors {
			if idx.inflight[id] == t {
				delete(idx.inflight, id)
			}
		}
		close(t.done)
	}
	if err != nil {
		for i := range errs {
			errs[i] = err // nothing was applied
		}
	} else {
		err = errors.Join(errs...)
	}
	if err != nil {
		idx.log.Error("devstack: write failed", "index", idx.name, "err", err)
		for id, p := range priors {
			if errs[partOf(id)] == nil {
				continue
			}
			if v, ok := idx.ids[id]; v != p.set || ok != (p.set != 0) {
				continue // written again since, by a later request
			}
			if p.existed {
				idx.ids[id] = p.version
			} else {
				delete(idx.ids, id)
			}
		}
		for _, o := range applied {
			if err := errs[partOf(o.Item.ID)]; err != nil {
				o.Fail(escompat.InternalError(err))
			}
		}
	}
}

// minBatchPart is the fewest operations worth a batch (a segment) of their own.
const minBatchPart = 1000

// batchParts is how many batches n operations are applied as: one per core, each of at least
// minBatchPart operations.
func batchParts(n int) int {
	return max(1, min(runtime.GOMAXPROCS(0), n/minBatchPart))
}

// ticket marks a batch being applied to an index.
type ticket struct{ done chan struct{} }

// buildAll parses the sources of ops for the mapping check and builds their
// bleve documents with fs, on up to GOMAXPROCS goroutines.
func buildAll(ops []*op, fs *fieldSet) {
	const perWorker = 64
	workers := min(runtime.GOMAXPROCS(0), (len(ops)+perWorker-1)/perWorker)
	buildOne := func(o *op, a *docArena) {
		if o.doc, o.derr = escompat.ParseDocument(o.Item.Source); o.derr != nil {
			return
		}
		o.bdoc, o.berr = buildValidDocument(o.Item.ID, o.Item.Source, fs, a)
		o.builtWith, o.unmapped = fs, a.unmapped
	}
	if workers <= 1 {
		a := &docArena{}
		for _, o := range ops {
			buildOne(o, a)
		}
		return
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			a := &docArena{}
			for i := w; i < len(ops); i += workers {
				buildOne(ops[i], a)
			}
		})
	}
	wg.Wait()
}

// buildError answers a document buildDocument refused though the mapping
// accepted it (e.g. a date in a custom format it does not parse).
func buildError(err error) *escompat.Error {
	e := &escompat.Error{Status: http.StatusBadRequest, Type: "document_parsing_exception", Reason: err.Error()}
	var fe *fieldValueError
	if errors.As(err, &fe) && fe.Err != nil {
		e.CausedBy = &escompat.Error{Type: "illegal_argument_exception", Reason: fe.Err.Error()}
	}
	return e
}

// storedVersion reads the _version of a document indexed before the store
// was opened; idx.mu is held.
func (idx *esIndex) storedVersion(id string) int64 {
	_, v, _, found, err := idx.document(id)
	if err != nil || !found {
		return 1
	}
	return v
}
