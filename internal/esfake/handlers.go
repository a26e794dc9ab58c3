package esfake

import (
	"net/http"
	"sort"
	"strings"
	"time"
)

// luceneVersions maps Elasticsearch minor versions to their Lucene version.
var luceneVersions = map[string]string{
	"8.0": "9.0.0", "8.1": "9.0.0", "8.2": "9.1.0", "8.3": "9.2.0", "8.4": "9.3.0", "8.5": "9.4.1",
	"8.6": "9.4.2", "8.7": "9.5.0", "8.8": "9.6.0", "8.9": "9.7.0", "8.10": "9.7.0", "8.11": "9.8.0",
	"8.12": "9.9.2", "8.13": "9.10.0", "8.14": "9.10.0", "8.15": "9.11.1", "8.16": "9.12.0",
	"8.17": "9.12.0", "8.18": "9.12.1", "8.19": "9.12.2",
}

const (
	nodeName    = "esfake"
	clusterName = "esfake"
)

// info answers GET / and HEAD /.
func (s *Server) info(rs *responder) {
	parts := strings.SplitN(s.version, ".", 3)
	lucene := "9.11.1"
	if len(parts) >= 2 {
		if v, ok := luceneVersions[parts[0]+"."+parts[1]]; ok {
			lucene = v
		}
	}
	rs.json(http.StatusOK, obj{
		{"name", nodeName},
		{"cluster_name", clusterName},
		{"cluster_uuid", s.clusterUUID},
		{"version", obj{
			{"number", s.version},
			{"build_flavor", "default"},
			{"build_type", "docker"},
			{"build_hash", "1a77947f34deddb41af25e6f0ddb8e830159c179"},
			{"build_date", "2024-08-05T10:05:34.233336849Z"},
			{"build_snapshot", false},
			{"lucene_version", lucene},
			{"minimum_wire_compatibility_version", "7.17.0"},
			{"minimum_index_compatibility_version", "7.0.0"},
		}},
		{"tagline", "You Know, for Search"},
	})
}

func (s *Server) health(rs *responder, indexExpr string) {
	s.mu.Lock()
	shards := len(s.indices)
	if indexExpr != "" {
		names, err := s.resolveLocked(indexExpr, false)
		if err != nil {
			s.mu.Unlock()
			rs.error(err)
			return
		}
		shards = len(names)
	}
	s.mu.Unlock()
	rs.json(http.StatusOK, obj{
		{"cluster_name", clusterName},
		{"status", "green"},
		{"timed_out", false},
		{"number_of_nodes", 1},
		{"number_of_data_nodes", 1},
		{"active_primary_shards", shards},
		{"active_shards", shards},
		{"relocating_shards", 0},
		{"initializing_shards", 0},
		{"unassigned_shards", 0},
		{"unassigned_primary_shards", 0},
		{"delayed_unassigned_shards", 0},
		{"number_of_pending_tasks", 0},
		{"number_of_in_flight_fetch", 0},
		{"task_max_waiting_in_queue_millis", 0},
		{"active_shards_percent_as_number", 100.0},
	})
}

// invalidFilenameChars is how Elasticsearch prints the characters an index
// name must not hold.
const invalidFilenameChars = `[ , ", *, \, <, |, ,, >, /, ?]`

// validateIndexName checks an index name as Elasticsearch does on creation.
func validateIndexName(name string) *Error {
	bad := func(why string) *Error {
		return &Error{Status: http.StatusBadRequest, Type: "invalid_index_name_exception",
			Reason: "Invalid index name [" + name + "], " + why, IndexUUID: "_na_", Index: name}
	}
	switch {
	case strings.ContainsAny(name, `\/*?"<>| ,`):
		return bad("must not contain the following characters " + invalidFilenameChars)
	case name == "":
		return bad("must not be empty")
	case strings.Contains(name, "#"):
		return bad("must not contain '#'")
	case strings.Contains(name, ":"):
		return bad("must not contain ':'")
	case name[0] == '_' || name[0] == '-' || name[0] == '+':
		return bad("must not start with '_', '-', or '+'")
	case len(name) > 255:
		return bad("index name is too long, (" + itoa(len(name)) + " > 255)")
	case name == "." || name == "..":
		return bad("must not be '.' or '..'")
	case strings.ToLower(name) != name:
		return bad("must be lowercase")
	}
	return nil
}

// resolveLocked expands a comma-separated index expression with '*'
// wildcards and _all into existing index names, sorted. A concrete name that
// does not exist fails with index_not_found_exception unless
// ignoreUnavailable. s.mu is held.
func (s *Server) resolveLocked(expr string, ignoreUnavailable bool) ([]string, *Error) {
	seen := make(map[string]bool)
	for _, part := range strings.Split(expr, ",") {
		if part == "" {
			continue
		}
		if part == "_all" || strings.Contains(part, "*") {
			if part == "_all" {
				part = "*"
			}
			for name := range s.indices {
				if globMatch(part, name) {
					seen[name] = true
				}
			}
			continue
		}
		if s.indices[part] == nil {
			if ignoreUnavailable {
				continue
			}
			return nil, indexNotFound(part)
		}
		seen[part] = true
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

func (s *Server) createIndex(rs *responder, r *http.Request, name string) {
	if err := validateIndexName(name); err != nil {
		rs.error(err)
		return
	}
	body, rerr := readBody(r)
	if rerr != nil {
		rs.error(rerr)
		return
	}
	var settings, mappings []byte
	if len(strings.TrimSpace(string(body))) > 0 {
		p := &jsonParser{src: body}
		root, serr := p.value()
		if serr != nil {
			rs.error(serr.xcontent(body))
			return
		}
		if root.kind != kindObject {
			rs.error(newError(http.StatusBadRequest, "parse_exception", "Failed to derive xcontent"))
			return
		}
		for i, k := range root.keys {
			v := root.vals[i]
			switch k {
			case "settings":
				settings = encode(v, nil)
			case "mappings":
				mappings = encode(v, nil)
			case "aliases":
			default:
				rs.error(newError(http.StatusBadRequest, "parse_exception", "unknown key [%s] for create index", k))
				return
			}
		}
	}
	s.mu.Lock()
	if idx := s.indices[name]; idx != nil {
		uuid := idx.uuid
		s.mu.Unlock()
		rs.error(&Error{Status: http.StatusBadRequest, Type: "resource_already_exists_exception",
			Reason: "index [" + name + "/" + uuid + "] already exists", IndexUUID: uuid, Index: name})
		return
	}
	_, err := s.createIndexLocked(name, settings, mappings)
	s.mu.Unlock()
	if err != nil {
		rs.error(err)
		return
	}
	rs.json(http.StatusOK, obj{{"acknowledged", true}, {"shards_acknowledged", true}, {"index", name}})
}

func (s *Server) headIndex(rs *responder, expr string) {
	s.mu.Lock()
	names, err := s.resolveLocked(expr, false)
	s.mu.Unlock()
	if err != nil || len(names) == 0 {
		rs.status(http.StatusNotFound)
		return
	}
	rs.status(http.StatusOK)
}

func (s *Server) deleteIndex(rs *responder, r *http.Request, expr string) {
	ignore := r.URL.Query().Get("ignore_unavailable") == "true"
	s.mu.Lock()
	names, err := s.resolveLocked(expr, ignore)
	if err == nil {
		for _, n := range names {
			delete(s.indices, n)
		}
	}
	s.mu.Unlock()
	if err != nil {
		rs.error(err)
		return
	}
	rs.json(http.StatusOK, obj{{"acknowledged", true}})
}

func (s *Server) getIndex(rs *responder, expr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	names, err := s.resolveLocked(expr, false)
	if err != nil {
		rs.error(err)
		return
	}
	out := obj{}
	for _, n := range names {
		idx := s.indices[n]
		settings := obj{
			{"creation_date", itoa64(idx.created.UnixMilli())},
			{"number_of_shards", "1"},
			{"number_of_replicas", "0"},
			{"uuid", idx.uuid},
			{"version", obj{{"created", "8512000"}}},
			{"provided_name", n},
		}
		flat := flattenSettings(idx.settings)
		delete(flat, "number_of_shards")
		delete(flat, "number_of_replicas")
		settings = append(settings, nestSettings(flat)...)
		out = append(out, kv{n, obj{
			{"aliases", obj{}},
			{"mappings", nonNil(idx.mapping.toJSON())},
			{"settings", obj{{"index", settings}}},
		}})
	}
	rs.json(http.StatusOK, out)
}

// nestSettings turns flattened settings back into nested objects, sorted
// by key.
func nestSettings(flat map[string]string) obj {
	keys := make([]string, 0, len(flat))
	for k := range flat {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out obj
	for _, k := range keys {
		parts := strings.Split(k, ".")
		cur := &out
		for _, p := range parts[:len(parts)-1] {
			var next *obj
			for i := range *cur {
				if (*cur)[i].k == p {
					if o, ok := (*cur)[i].v.(*obj); ok {
						next = o
					}
				}
			}
			if next == nil {
				next = &obj{}
				*cur = append(*cur, kv{p, next})
			}
			cur = next
		}
		*cur = append(*cur, kv{parts[len(parts)-1], flat[k]})
	}
	return derefSettings(out)
}

func derefSettings(o obj) obj {
	for i := range o {
		if p, ok := o[i].v.(*obj); ok {
			o[i].v = derefSettings(*p)
		}
	}
	return o
}

func nonNil(o obj) obj {
	if o == nil {
		return obj{}
	}
	return o
}

func (s *Server) getMapping(rs *responder, expr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	names, err := s.resolveLocked(expr, false)
	if err != nil {
		rs.error(err)
		return
	}
	out := obj{}
	for _, n := range names {
		out = append(out, kv{n, obj{{"mappings", nonNil(s.indices[n].mapping.toJSON())}}})
	}
	rs.json(http.StatusOK, out)
}

func (s *Server) refresh(rs *responder, expr string) {
	s.mu.Lock()
	names, err := s.resolveLocked(expr, false)
	s.mu.Unlock()
	if err != nil {
		rs.error(err)
		return
	}
	rs.json(http.StatusOK, obj{{"_shards", obj{{"total", 2 * len(names)}, {"successful", len(names)}, {"failed", 0}}}})
}

func (s *Server) getDoc(rs *responder, name, id string) {
	s.mu.Lock()
	idx := s.indices[name]
	var d *storedDoc
	if idx != nil {
		d = idx.docs[id]
	}
	s.mu.Unlock()
	switch {
	case idx == nil:
		rs.error(indexNotFound(name))
	case d == nil:
		rs.json(http.StatusNotFound, obj{{"_index", name}, {"_id", id}, {"found", false}})
	default:
		rs.json(http.StatusOK, obj{
			{"_index", name}, {"_id", id}, {"_version", d.version}, {"_seq_no", d.seqNo},
			{"_primary_term", 1}, {"found", true}, {"_source", jsonRaw(d.source)},
		})
	}
}

func (s *Server) putTemplate(rs *responder, r *http.Request, name string) {
	body, rerr := readBody(r)
	if rerr != nil {
		rs.error(rerr)
		return
	}
	t, err := ParseIndexTemplate(name, body)
	if err != nil {
		rs.error(err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.URL.Query().Get("create") == "true" && s.templates[name] != nil {
		rs.error(illegalArgument("index template [%s] already exists", name))
		return
	}
	others := make([]*IndexTemplate, 0, len(s.templates))
	for _, o := range s.templates {
		others = append(others, o)
	}
	if clash := t.overlapping(others); len(clash) > 0 {
		var names, pats []string
		for _, o := range clash {
			names = append(names, o.Name)
			pats = append(pats, o.Name+" => ["+strings.Join(o.IndexPatterns, ", ")+"]")
		}
		rs.error(illegalArgument("index template [%s] has index patterns [%s] matching patterns from existing templates [%s] with patterns (%s) that have the same priority [%d], multiple index templates may not match during index creation, please use a different priority",
			name, strings.Join(t.IndexPatterns, ", "), strings.Join(names, ","), strings.Join(pats, ","), t.Priority))
		return
	}
	s.templates[name] = t
	rs.json(http.StatusOK, obj{{"acknowledged", true}})
}

// matchTemplatesLocked returns the templates matching a comma-separated
// list of names with '*' wildcards, sorted by name.
func (s *Server) matchTemplatesLocked(expr string) []*IndexTemplate {
	var out []*IndexTemplate
	for _, t := range s.templates {
		for _, p := range strings.Split(expr, ",") {
			if globMatch(p, t.Name) {
				out = append(out, t)
				break
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (s *Server) getTemplates(rs *responder, expr string, named bool) {
	s.mu.Lock()
	ts := s.matchTemplatesLocked(expr)
	s.mu.Unlock()
	if named && len(ts) == 0 {
		rs.error(newError(http.StatusNotFound, "resource_not_found_exception", "index template matching [%s] not found", expr))
		return
	}
	list := make([]any, 0, len(ts))
	for _, t := range ts {
		list = append(list, obj{{"name", t.Name}, {"index_template", templateJSON(t)}})
	}
	rs.json(http.StatusOK, obj{{"index_templates", list}})
}

// templateJSON renders a stored template as GET /_index_template shows it.
func templateJSON(t *IndexTemplate) obj {
	o := obj{{"index_patterns", t.IndexPatterns}}
	doc, err := ParseDocument(t.Body)
	if err != nil {
		return o
	}
	composed := false
	for i, k := range doc.root.keys {
		switch k {
		case "index_patterns":
			continue
		case "composed_of":
			composed = true
		}
		o = append(o, kv{k, doc.root.vals[i]})
	}
	if !composed {
		o = append(o, kv{"composed_of", []string{}})
	}
	return o
}

func (s *Server) headTemplate(rs *responder, expr string) {
	s.mu.Lock()
	n := len(s.matchTemplatesLocked(expr))
	s.mu.Unlock()
	if n == 0 {
		rs.status(http.StatusNotFound)
		return
	}
	rs.status(http.StatusOK)
}

func (s *Server) deleteTemplate(rs *responder, expr string) {
	s.mu.Lock()
	ts := s.matchTemplatesLocked(expr)
	for _, t := range ts {
		delete(s.templates, t.Name)
	}
	s.mu.Unlock()
	if len(ts) == 0 {
		rs.error(newError(http.StatusNotFound, "resource_not_found_exception", "index_template [%s] missing", expr))
		return
	}
	rs.json(http.StatusOK, obj{{"acknowledged", true}})
}

// shardsOK is the _shards of a write: one primary, one unassigned replica.
var shardsOK = obj{{"total", 2}, {"successful", 1}, {"failed", 0}}

// bulk answers POST|PUT /_bulk and /{index}/_bulk.
func (s *Server) bulk(rs *responder, r *http.Request, defaultIndex string) {
	start := time.Now()
	switch v := r.URL.Query().Get("refresh"); v {
	case "", "true", "false", "wait_for":
	default:
		rs.error(illegalArgument("Unknown value for refresh: [%s].", v))
		return
	}
	body, rerr := readBody(r)
	if rerr != nil {
		rs.error(rerr)
		return
	}
	items, perr := ParseBulk(body, defaultIndex)
	if perr != nil {
		rs.error(perr)
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
			out[i] = obj{{it.Action, obj{
				{"_index", it.Index}, {"_id", it.ID}, {"_version", 1}, {"result", "created"},
				{"_shards", shardsOK}, {"_seq_no", 0}, {"_primary_term", 1}, {"status", http.StatusCreated},
			}}}
			s.stats.created.Add(1)
		}
	} else {
		// Parse documents outside the lock; apply them in order under it.
		docs := make([]*Document, len(items))
		derrs := make([]*Error, len(items))
		for i, it := range items {
			if it.ID == "" && (it.Action == "create" || it.Action == "index") {
				items[i].ID = s.generateID()
			}
			if !rejected[i] && (it.Action == "create" || it.Action == "index") {
				docs[i], derrs[i] = ParseDocument(it.Source)
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
	rs.json(http.StatusOK, obj{{"took", time.Since(start).Milliseconds()}, {"errors", hasErrors}, {"items", out}})
}

func (s *Server) rejectedItem(it BulkItem) obj {
	s.stats.itemRejected.Add(1)
	return errorItem(it, &Error{Status: http.StatusTooManyRequests, Type: "es_rejected_execution_exception",
		Reason: "rejected execution of primary operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, primary_operation_bytes=" +
			itoa(len(it.Source)) + ", max_coordinating_and_primary_bytes=107374182]"})
}

func errorItem(it BulkItem, e *Error) obj {
	return obj{{it.Action, obj{{"_index", it.Index}, {"_id", it.ID}, {"status", e.Status}, {"error", e.body(true)}}}}
}

// applyItemLocked performs one bulk operation; s.mu is held. failed reports
// an item carrying an error.
func (s *Server) applyItemLocked(it BulkItem, doc *Document, derr *Error) (item obj, failed bool) {
	invalid := func(e *Error) (obj, bool) {
		s.stats.itemInvalid.Add(1)
		return errorItem(it, e), true
	}
	if err := validateIndexName(it.Index); err != nil {
		return invalid(err)
	}
	idx := s.indices[it.Index]
	switch it.Action {
	case "update":
		return invalid(illegalArgument("esfake does not support the bulk action [update]"))
	case "delete":
		if idx == nil {
			e := indexNotFound(it.Index)
			return errorItem(it, e), true
		}
		d := idx.docs[it.ID]
		idx.seqNo++
		if d == nil {
			return okItem(it, idx, 1, "not_found", http.StatusNotFound), false
		}
		delete(idx.docs, it.ID)
		idx.bytes -= int64(len(d.source))
		return okItem(it, idx, d.version+1, "deleted", http.StatusOK), false
	}
	if idx == nil {
		var err *Error
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
		return errorItem(it, &Error{Status: http.StatusConflict, Type: "version_conflict_engine_exception",
			Reason:    "[" + it.ID + "]: version conflict, document already exists (current version [" + itoa64(prev.version) + "])",
			IndexUUID: idx.uuid, Shard: "0", Index: idx.name}), true
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
	return okItem(it, idx, version, result, status), false
}

func okItem(it BulkItem, idx *index, version int64, result string, status int) obj {
	return obj{{it.Action, obj{
		{"_index", it.Index}, {"_id", it.ID}, {"_version", version}, {"result", result},
		{"_shards", shardsOK}, {"_seq_no", idx.seqNo - 1}, {"_primary_term", 1}, {"status", status},
	}}}
}
