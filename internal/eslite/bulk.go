package eslite

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// bulkItem is one operation of a bulk request, and its outcome.
type bulkItem struct {
	action, index, id string
	src               []byte // aliases the request body (or, replaying, the log)
	err               *esError
	status            int
	result            string
	version, seq      int64
}

var bulkParams = map[string]bool{"_index": true, "_id": true, "routing": true, "op_type": true, "version": true, "version_type": true,
	"if_seq_no": true, "if_primary_term": true, "retry_on_conflict": true, "pipeline": true, "require_alias": true,
	"require_data_stream": true, "list_executed_pipelines": true, "_source": true, "dynamic_templates": true}

// parseBulk reads an NDJSON bulk body; defIndex is the {index} of
// /{index}/_bulk.
func parseBulk(body []byte, defIndex string) ([]bulkItem, *esError) {
	items := make([]bulkItem, 0, bytes.Count(body, []byte{'\n'})/2+1)
	for line := 1; len(body) > 0; line++ {
		nl := bytes.IndexByte(body, '\n')
		if nl < 0 {
			return nil, illegalArg(`The bulk request must be terminated by a newline [\n]`)
		}
		text := body[:nl]
		body = body[nl+1:]
		if len(bytes.TrimSpace(text)) == 0 {
			continue
		}
		it, e := parseAction(text, line, defIndex)
		if e != nil {
			return nil, e
		}
		if it.action != "delete" {
			if nl = bytes.IndexByte(body, '\n'); nl < 0 {
				break // Elasticsearch drops a last action without its document
			}
			it.src = bytes.TrimSuffix(body[:nl], []byte{'\r'})
			body = body[nl+1:]
			line++
		}
		if it.index == "" {
			return nil, newErr(http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: index is missing;")
		}
		items = append(items, it)
	}
	if len(items) == 0 {
		return nil, newErr(http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: no requests added;")
	}
	return items, nil
}

// parseAction reads an action line: {"create":{"_index":...,"_id":...}}.
func parseAction(text []byte, line int, defIndex string) (bulkItem, *esError) {
	it := bulkItem{index: defIndex}
	bad := func(format string, args ...any) (bulkItem, *esError) {
		return it, illegalArg("Malformed action/metadata line [%d], "+format, append([]any{line}, args...)...)
	}
	w := &walker{src: text}
	if e := w.expect('{', "START_OBJECT"); e != nil {
		return bad("expected START_OBJECT")
	}
	if w.ws(); w.pos >= len(text) || text[w.pos] != '"' {
		return bad("expected FIELD_NAME")
	}
	action, e := w.str()
	if e != nil {
		return it, e
	}
	switch action {
	case "create", "index", "update", "delete":
		it.action = action
	default:
		return bad("expected field [create], [delete], [index] or [update] but found [%s]", action)
	}
	if w.expect(':', "") != nil || w.expect('{', "") != nil {
		return bad("expected START_OBJECT")
	}
	if w.ws(); w.pos < len(text) && text[w.pos] == '}' {
		return it, nil
	}
	for {
		if w.ws(); w.pos >= len(text) || text[w.pos] != '"' {
			return bad("expected FIELD_NAME")
		}
		key, e := w.str()
		if e != nil {
			return it, e
		}
		if e := w.expect(':', ""); e != nil {
			return bad("expected a value for [%s]", key)
		}
		if !bulkParams[key] {
			return it, illegalArg("Action/metadata line [%d] contains an unknown parameter [%s]", line, key)
		}
		if w.ws(); w.pos < len(text) && (text[w.pos] == '{' || text[w.pos] == '[' || text[w.pos] == 'n') {
			if e := w.skip(); e != nil {
				return it, e
			}
		} else {
			sc, e := w.scalar()
			if e != nil {
				return it, e
			}
			switch key {
			case "_index":
				it.index = sc.text
			case "_id":
				it.id = sc.text
			case "op_type":
				if it.action == "index" && sc.text == "create" {
					it.action = "create"
				}
			}
		}
		if w.ws(); w.pos < len(text) && text[w.pos] == '}' {
			return it, nil
		}
		if w.expect(',', "") != nil {
			return bad("expected FIELD_NAME")
		}
	}
}

// bulk serves POST /_bulk and /{index}/_bulk.
func (s *Store) bulk(rs *resp, defIndex string) {
	start := time.Now()
	switch r := rs.r.URL.Query().Get("refresh"); r {
	case "", "true", "false", "wait_for":
	default:
		rs.err(illegalArg("Unknown value for refresh: [%s].", r))
		return
	}
	body, e := readBody(rs.r)
	if e != nil {
		rs.err(e)
		return
	}
	items, e := parseBulk(body, defIndex)
	if e != nil {
		rs.err(e)
		return
	}
	s.stats.items.Add(int64(len(items)))
	itemFaults := s.faultsNow().ItemFraction
	touched := map[*index]bool{}
	for i := range items {
		it := &items[i]
		if it.id == "" && (it.action == "create" || it.action == "index") {
			it.id = s.newID()
		}
		switch {
		case s.chance(itemFaults):
			it.err = itemRejected(len(it.src))
			s.stats.itemRejected.Add(1)
		case it.action == "update" || it.action == "delete":
			it.err = illegalArg("eslite does not support the bulk action [%s]", it.action)
			s.stats.itemInvalid.Add(1)
		case s.discard:
			it.status, it.result, it.version = http.StatusCreated, "created", 1
			s.stats.created.Add(1)
		default:
			// A 409 says the document is stored: it waits for the log too.
			if idx := s.write(it); idx != nil && idx.log != nil && (it.err == nil || it.err.Status == http.StatusConflict) {
				touched[idx] = true
			}
		}
	}
	for idx := range touched {
		if err := idx.flush(); err != nil {
			rs.err(internalErr(err))
			return
		}
	}
	out := make([]byte, 0, 64+len(items)*160)
	out = append(out, `{"took":`...)
	out = strconv.AppendInt(out, time.Since(start).Milliseconds(), 10)
	out = append(out, `,"errors":`...)
	errors := false
	for i := range items {
		errors = errors || items[i].err != nil
	}
	out = strconv.AppendBool(out, errors)
	out = append(out, `,"items":[`...)
	for i := range items {
		if i > 0 {
			out = append(out, ',')
		}
		out = s.appendItem(out, &items[i])
	}
	out = append(out, "]}"...)
	rs.raw(http.StatusOK, rs.ctype, out)
}

// write performs an index or create: the index's faults, then the index
// (created on first write), then the document. It returns the index
// written.
func (s *Store) write(it *bulkItem) *index {
	for {
		idx := s.lookup(it.index)
		if e := s.indexFault(it.index).error(it.index, idx != nil); e != nil {
			it.err = e
			s.stats.itemRejected.Add(1)
			return nil
		}
		if idx == nil {
			var e *esError
			if idx, e = s.createIndex(it.index, nil, nil, false); e != nil {
				it.err = e
				s.stats.itemInvalid.Add(1)
				return nil
			}
		}
		idx.mu.Lock()
		if idx.deleted { // deleted meanwhile: created again
			idx.mu.Unlock()
			continue
		}
		s.put(idx, it, false)
		idx.mu.Unlock()
		return idx
	}
}

// put stores a document in idx, whose lock is held: a create of an _id the
// index holds is a conflict; the source must fit the mapping, which it may
// extend. Unless replaying the log, the write is logged.
func (s *Store) put(idx *index, it *bulkItem, replay bool) {
	if idx.broken != nil { // its documents may be in memory and not on disk: none is acknowledged
		it.err = internalErr(fmt.Errorf("index [%s] cannot be written: %w", idx.name, idx.broken))
		return
	}
	pos, exists := idx.ids[it.id]
	if exists && it.action == "create" {
		it.err = versionConflict(idx.name, idx.uuid, it.id, idx.docs[pos].version)
		s.stats.conflicts.Add(1)
		return
	}
	if idx.intern == nil {
		idx.intern = map[string]string{}
	}
	w, e := walkDocument(&s.fields, idx.m, it.id, it.src, idx.intern)
	if e != nil {
		it.err = e
		if !replay {
			s.stats.itemInvalid.Add(1)
		}
		return
	}
	w.apply()
	// Documents and their values are allocated in chunks, so that a scan
	// reads memory in order.
	if len(idx.docSlab) == cap(idx.docSlab) {
		idx.docSlab = make([]doc, 0, 4096)
	}
	if n := len(w.vals); cap(idx.valSlab)-len(idx.valSlab) < n {
		idx.valSlab = make([]val, 0, max(n, 65536))
	}
	vals := append(idx.valSlab, w.vals...)
	idx.valSlab = vals[:len(vals):cap(vals)]
	idx.docSlab = append(idx.docSlab, doc{id: it.id, src: it.src, vals: vals[len(vals)-len(w.vals):], version: 1, seq: idx.seq})
	d := &idx.docSlab[len(idx.docSlab)-1]
	idx.seq++
	it.status, it.result = http.StatusCreated, "created"
	if exists {
		prev := idx.docs[pos]
		d.version = prev.version + 1
		idx.bytes -= int64(len(prev.src))
		idx.docs[pos] = d
		it.status, it.result = http.StatusOK, "updated"
	} else {
		idx.ids[it.id] = int32(len(idx.docs))
		idx.docs = append(idx.docs, d)
		if !replay {
			s.stats.created.Add(1)
		}
	}
	idx.bytes += int64(len(it.src))
	it.version, it.seq = d.version, d.seq
	if !replay && idx.log != nil {
		idx.pending = appendEntry(idx.pending, it.id, it.src)
	}
}

// appendItem appends the response entry of a bulk item.
func (s *Store) appendItem(b []byte, it *bulkItem) []byte {
	b = append(b, `{"`...)
	b = append(b, it.action...)
	b = append(b, `":{"_index":`...)
	b = appendString(b, it.index)
	b = append(b, `,"_id":`...)
	b = appendString(b, it.id)
	if e := it.err; e != nil {
		if s.openSearch {
			e = openSearchItemError(e)
		}
		body, _ := json.Marshal(e)
		b = append(b, `,"status":`...)
		b = strconv.AppendInt(b, int64(e.Status), 10)
		b = append(b, `,"error":`...)
		b = append(b, body...)
		return append(b, "}}"...)
	}
	b = append(b, `,"_version":`...)
	b = strconv.AppendInt(b, it.version, 10)
	b = append(b, `,"result":"`...)
	b = append(b, it.result...)
	b = append(b, `","_shards":{"total":2,"successful":1,"failed":0},"_seq_no":`...)
	b = strconv.AppendInt(b, it.seq, 10)
	b = append(b, `,"_primary_term":1,"status":`...)
	b = strconv.AppendInt(b, int64(it.status), 10)
	return append(b, "}}"...)
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
