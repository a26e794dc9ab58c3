package eslite

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// template is a composable index template.
type template struct {
	name     string
	body     json.RawMessage
	patterns []string
	priority int64
	settings map[string]string
	mappings json.RawMessage
}

var templateKeys = map[string]bool{"index_patterns": true, "priority": true, "version": true, "_meta": true, "template": true,
	"composed_of": true, "data_stream": true, "allow_auto_create": true, "ignore_missing_component_templates": true, "deprecated": true}

// parseTemplate reads the body of PUT /_index_template/{name}.
func parseTemplate(name string, body []byte) (*template, *esError) {
	var root map[string]any
	if err := decodeJSON(body, &root); err != nil || root == nil {
		return nil, newErr(http.StatusBadRequest, "x_content_parse_exception", "[index_template] failed to parse the body: %v", err)
	}
	t := &template{name: name, body: slices.Clone(body)}
	for _, k := range sortedKeys(root) {
		if !templateKeys[k] {
			return nil, newErr(http.StatusBadRequest, "x_content_parse_exception", "[index_template] unknown field [%s]", k)
		}
	}
	switch p := root["index_patterns"].(type) {
	case string:
		t.patterns = []string{p}
	case []any:
		for _, x := range p {
			t.patterns = append(t.patterns, fmt.Sprint(x))
		}
	}
	if len(t.patterns) == 0 {
		return nil, newErr(http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: index patterns are missing;")
	}
	if p, ok := root["priority"].(json.Number); ok {
		n, err := p.Int64()
		if err != nil || n < 0 {
			return nil, newErr(http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: index template priority must be >= 0;")
		}
		t.priority = n
	}
	if c, _ := root["composed_of"].([]any); len(c) > 0 {
		return nil, newErr(http.StatusBadRequest, "invalid_index_template_exception",
			"index_template [%s] invalid, cause [index template [%s] specifies component templates %v that do not exist]", name, name, c)
	}
	if inner, ok := root["template"].(map[string]any); ok {
		t.settings = flattenSettings(inner["settings"])
		if m, ok := inner["mappings"].(map[string]any); ok {
			t.mappings, _ = json.Marshal(m)
		}
	}
	if _, e := newMapping(&fieldTable{}, t.settings, []json.RawMessage{t.mappings}); e != nil {
		return nil, e
	}
	return t, nil
}

// flattenSettings flattens settings into dotted keys without the "index."
// prefix, values as strings, as Elasticsearch keeps them.
func flattenSettings(v any) map[string]string {
	out := map[string]string{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				walk(joinPath(prefix, k), e)
			}
		case []any:
			parts := make([]string, len(x))
			for i, e := range x {
				parts[i] = fmt.Sprint(e)
			}
			out[strings.TrimPrefix(prefix, "index.")] = strings.Join(parts, ",")
		case nil:
		default:
			out[strings.TrimPrefix(prefix, "index.")] = fmt.Sprint(x)
		}
	}
	walk("", v)
	return out
}

// globsIntersect reports whether some name matches both '*' patterns.
func globsIntersect(p, q string) bool {
	memo := map[[2]int]bool{}
	var rec func(i, j int) bool
	rec = func(i, j int) bool {
		key := [2]int{i, j}
		if v, ok := memo[key]; ok {
			return v
		}
		var r bool
		switch {
		case i == len(p) && j == len(q):
			r = true
		case i < len(p) && p[i] == '*':
			r = rec(i+1, j) || j < len(q) && rec(i, j+1)
		case j < len(q) && q[j] == '*':
			r = rec(i, j+1) || i < len(p) && rec(i+1, j)
		case i < len(p) && j < len(q):
			r = p[i] == q[j] && rec(i+1, j+1)
		}
		memo[key] = r
		return r
	}
	return rec(0, 0)
}

// template serves /_index_template/{name}.
func (s *Store) template(rs *resp, name string) {
	switch rs.r.Method {
	case http.MethodGet:
		s.getTemplates(rs, name, true)
	case http.MethodDelete:
		s.mu.Lock()
		defer s.mu.Unlock()
		found := s.matchTemplates(name)
		if len(found) == 0 {
			rs.err(newErr(http.StatusNotFound, "resource_not_found_exception", "index_template [%s] missing", name))
			return
		}
		for _, t := range found {
			delete(s.templates, t.name)
		}
		if err := s.saveMeta(); err != nil {
			rs.err(internalErr(err))
			return
		}
		rs.json(http.StatusOK, map[string]bool{"acknowledged": true})
	default:
		body, e := readBody(rs.r)
		if e != nil {
			rs.err(e)
			return
		}
		t, e := parseTemplate(name, body)
		if e != nil {
			rs.err(e)
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if queryBool(rs.r.URL.Query(), "create") && s.templates[name] != nil {
			rs.err(illegalArg("index template [%s] already exists", name))
			return
		}
		for _, o := range s.templates {
			if o.name == name || o.priority != t.priority {
				continue
			}
			for _, p := range t.patterns {
				for _, q := range o.patterns {
					if globsIntersect(p, q) {
						rs.err(illegalArg("index template [%s] has index patterns %v matching patterns from existing templates [%s] with patterns (%s => %v) that have the same priority [%d], multiple index templates may not match during index creation, please use a different priority",
							name, t.patterns, o.name, o.name, o.patterns, t.priority))
						return
					}
				}
			}
		}
		prev := s.templates[name]
		s.templates[name] = t
		if err := s.saveMeta(); err != nil {
			if s.templates[name] = prev; prev == nil {
				delete(s.templates, name)
			}
			rs.err(internalErr(err))
			return
		}
		rs.json(http.StatusOK, map[string]bool{"acknowledged": true})
	}
}

// matchTemplates returns the templates whose names match a comma-separated
// list of '*' patterns, sorted by name; s.mu is held.
func (s *Store) matchTemplates(expr string) []*template {
	var out []*template
	for _, name := range sortedKeys(s.templates) {
		for _, p := range strings.Split(expr, ",") {
			if glob(p, name, false) {
				out = append(out, s.templates[name])
				break
			}
		}
	}
	return out
}

func (s *Store) getTemplates(rs *resp, expr string, named bool) {
	s.mu.RLock()
	found := s.matchTemplates(expr)
	s.mu.RUnlock()
	if named && len(found) == 0 {
		rs.err(newErr(http.StatusNotFound, "resource_not_found_exception", "index template matching [%s] not found", expr))
		return
	}
	list := []any{}
	for _, t := range found {
		var body map[string]any
		_ = decodeJSON(t.body, &body)
		if body["composed_of"] == nil {
			body["composed_of"] = []string{}
		}
		list = append(list, map[string]any{"name": t.name, "index_template": body})
	}
	rs.json(http.StatusOK, map[string]any{"index_templates": list})
}

// validateIndexName checks a new index's name as Elasticsearch does.
func validateIndexName(name string) *esError {
	why := ""
	switch {
	case name == "":
		why = "must not be empty"
	case strings.ContainsAny(name, `\/*?"<>| ,#:`):
		why = `must not contain the following characters [ , ", *, \, <, |, ,, >, /, ?, #, :]`
	case name[0] == '_' || name[0] == '-' || name[0] == '+':
		why = "must not start with '_', '-', or '+'"
	case len(name) > 255:
		why = "index name is too long, (" + itoa(len(name)) + " > 255)"
	case name == "." || name == "..":
		why = "must not be '.' or '..'"
	case strings.ToLower(name) != name:
		why = "must be lowercase"
	default:
		return nil
	}
	return &esError{Status: http.StatusBadRequest, Type: "invalid_index_name_exception", Reason: "Invalid index name [" + name + "], " + why,
		IndexUUID: "_na_", Index: name}
}

// newIndex makes an index (not yet registered) of the given settings and
// mappings.
func (s *Store) newIndex(name, uuid string, created time.Time, settings map[string]string, mappings []json.RawMessage) (*index, *esError) {
	m, e := newMapping(&s.fields, settings, mappings)
	if e != nil {
		return nil, e
	}
	return &index{name: name, uuid: uuid, created: created, settings: settings, mappings: mappings, m: m, ids: map[string]int32{}}, nil
}

// createIndex creates an index from the highest-priority matching
// template, overlaid with the settings and mappings of a create request.
// An existing index is returned, or refused when mustBeNew.
func (s *Store) createIndex(name string, settings map[string]string, mappings json.RawMessage, mustBeNew bool) (*index, *esError) {
	if e := validateIndexName(name); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, newErr(http.StatusServiceUnavailable, "node_closed_exception", "the store is closed")
	}
	if idx := s.indices[name]; idx != nil {
		if mustBeNew {
			return nil, indexExists(name, idx.uuid)
		}
		return idx, nil
	}
	var best *template
	for _, t := range s.templates {
		for _, p := range t.patterns {
			if glob(p, name, false) && (best == nil || t.priority > best.priority || t.priority == best.priority && t.name < best.name) {
				best = t
			}
		}
	}
	merged := map[string]string{}
	var raws []json.RawMessage
	if best != nil {
		for k, v := range best.settings {
			merged[k] = v
		}
		if best.mappings != nil {
			raws = append(raws, best.mappings)
		}
	}
	for k, v := range settings {
		merged[k] = v
	}
	if mappings != nil {
		raws = append(raws, mappings)
	}
	idx, e := s.newIndex(name, s.randomID(22), time.Now(), merged, raws)
	if e != nil {
		return nil, e
	}
	if s.dir != "" {
		if err := s.createIndexDir(idx); err != nil {
			return nil, internalErr(fmt.Errorf("create index [%s]: %w", name, err))
		}
	}
	s.indices[name] = idx
	return idx, nil
}

// resolve expands an index expression over the indices: comma-separated
// names, '*' patterns, _all, and -pattern exclusions. A missing concrete
// name fails unless ignoreUnavailable; an expression that resolves to
// nothing fails unless allowNoIndices.
func (s *Store) resolve(expr string, ignoreUnavailable, allowNoIndices bool) ([]*index, *esError) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if expr == "" {
		expr = "_all"
	}
	seen := map[string]bool{}
	for i, part := range strings.Split(expr, ",") {
		switch {
		case part == "":
		case i > 0 && len(part) > 1 && part[0] == '-':
			for n := range seen {
				if glob(part[1:], n, false) {
					delete(seen, n)
				}
			}
		case part == "_all" || strings.Contains(part, "*"):
			n := 0
			for name := range s.indices {
				if part == "_all" || glob(part, name, false) {
					seen[name] = true
					n++
				}
			}
			if n == 0 && !allowNoIndices {
				return nil, indexNotFound(part)
			}
		case s.indices[part] != nil:
			seen[part] = true
		case !ignoreUnavailable:
			return nil, indexNotFound(part)
		}
	}
	out := make([]*index, 0, len(seen))
	for _, name := range sortedKeys(seen) {
		out = append(out, s.indices[name])
	}
	if len(out) == 0 && !allowNoIndices {
		return nil, indexNotFound(expr)
	}
	return out, nil
}

// indexAPI serves PUT, HEAD, GET and DELETE /{index}.
func (s *Store) indexAPI(rs *resp, expr string) {
	q := rs.r.URL.Query()
	switch rs.r.Method {
	case http.MethodPut:
		body, e := readJSON(rs.r)
		if e != nil {
			rs.err(e)
			return
		}
		var mappings json.RawMessage
		for k, v := range body {
			switch k {
			case "mappings":
				mappings, _ = json.Marshal(v)
			case "settings", "aliases":
			default:
				rs.err(newErr(http.StatusBadRequest, "parse_exception", "unknown key [%s] for create index", k))
				return
			}
		}
		if _, e := s.createIndex(expr, flattenSettings(body["settings"]), mappings, true); e != nil {
			rs.err(e)
			return
		}
		rs.json(http.StatusOK, map[string]any{"acknowledged": true, "shards_acknowledged": true, "index": expr})
	case http.MethodHead:
		idxs, e := s.resolve(expr, false, false)
		rs.status(map[bool]int{true: http.StatusOK, false: http.StatusNotFound}[e == nil && len(idxs) > 0])
	case http.MethodGet:
		idxs, e := s.resolve(expr, queryBool(q, "ignore_unavailable"), q.Get("allow_no_indices") != "false")
		if e != nil {
			rs.err(e)
			return
		}
		out := map[string]any{}
		for _, idx := range idxs {
			settings := map[string]string{"creation_date": strconv.FormatInt(idx.created.UnixMilli(), 10), "number_of_shards": "1",
				"number_of_replicas": "0", "uuid": idx.uuid, "provided_name": idx.name, "version.created": "8512000"}
			for k, v := range idx.settings {
				if settings[k] == "" {
					settings[k] = v
				}
			}
			idx.mu.RLock()
			out[idx.name] = map[string]any{"aliases": map[string]any{}, "mappings": idx.m.describe(), "settings": map[string]any{"index": nest(settings)}}
			idx.mu.RUnlock()
		}
		rs.json(http.StatusOK, out)
	case http.MethodDelete:
		idxs, e := s.resolve(expr, queryBool(q, "ignore_unavailable"), q.Get("allow_no_indices") != "false")
		if e != nil {
			rs.err(e)
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, idx := range idxs {
			if s.indices[idx.name] != idx {
				continue // deleted meanwhile
			}
			delete(s.indices, idx.name)
			idx.mu.Lock()
			idx.deleted = true
			idx.mu.Unlock()
			if s.dir != "" {
				if err := s.removeIndexDir(idx); err != nil {
					rs.err(internalErr(fmt.Errorf("delete index [%s]: %w", idx.name, err)))
					return
				}
			}
		}
		rs.json(http.StatusOK, map[string]bool{"acknowledged": true})
	}
}

// nest turns dotted keys back into objects.
func nest(flat map[string]string) map[string]any {
	out := map[string]any{}
	for _, k := range sortedKeys(flat) {
		parts := strings.Split(k, ".")
		m := out
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		m[parts[len(parts)-1]] = flat[k]
	}
	return out
}

// role serves /_security/role/{name}. Roles are kept as given, once their
// indices entries are checked; nothing enforces them.
func (s *Store) role(rs *resp, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch rs.r.Method {
	case http.MethodGet:
		if body, ok := s.roles[name]; ok {
			rs.json(http.StatusOK, map[string]json.RawMessage{name: body})
		} else {
			rs.json(http.StatusNotFound, map[string]any{})
		}
	case http.MethodDelete:
		_, found := s.roles[name]
		delete(s.roles, name)
		if err := s.saveMeta(); err != nil {
			rs.err(internalErr(err))
			return
		}
		rs.json(map[bool]int{true: http.StatusOK, false: http.StatusNotFound}[found], map[string]bool{"found": found})
	default:
		body, e := readBody(rs.r)
		if e != nil {
			rs.err(e)
			return
		}
		var role struct {
			Indices []struct {
				Names      []string `json:"names"`
				Privileges []string `json:"privileges"`
			} `json:"indices"`
		}
		if err := json.Unmarshal(body, &role); err != nil {
			rs.err(newErr(http.StatusBadRequest, "parse_exception", "failed to parse role [%s]: %v", name, err))
			return
		}
		for _, ix := range role.Indices {
			if len(ix.Names) == 0 || len(ix.Privileges) == 0 {
				rs.err(newErr(http.StatusBadRequest, "action_request_validation_exception",
					"Validation Failed: 1: indices privileges must refer to at least one index name and one privilege;"))
				return
			}
		}
		_, existed := s.roles[name]
		s.roles[name] = slices.Clone(body)
		if err := s.saveMeta(); err != nil {
			rs.err(internalErr(err))
			return
		}
		rs.json(http.StatusOK, map[string]any{"role": map[string]bool{"created": !existed}})
	}
}

// info serves GET /.
func (s *Store) info(rs *resp) {
	v := map[string]any{"number": s.version, "build_flavor": "default", "build_type": "docker", "build_hash": "1a77947f34deddb41af25e6f0ddb8e830159c179",
		"build_date": "2024-08-05T10:05:34.233336849Z", "build_snapshot": false, "lucene_version": "9.11.1",
		"minimum_wire_compatibility_version": "7.17.0", "minimum_index_compatibility_version": "7.0.0"}
	tagline := "You Know, for Search"
	if s.openSearch {
		delete(v, "build_flavor")
		v["distribution"], v["build_type"], v["build_hash"] = "opensearch", "tar", "1893d20797e30110e5877170e44d42275ce5951e"
		v["build_date"], v["minimum_wire_compatibility_version"] = "2024-09-26T21:59:52.691008096Z", "7.10.0"
		tagline = "The OpenSearch Project: https://opensearch.org/"
	}
	rs.json(http.StatusOK, map[string]any{"name": "eslite", "cluster_name": "eslite", "cluster_uuid": s.uuid, "version": v, "tagline": tagline})
}

// health serves GET /_cluster/health: one node, always green.
func (s *Store) health(rs *resp) {
	s.mu.RLock()
	n := len(s.indices)
	s.mu.RUnlock()
	rs.json(http.StatusOK, map[string]any{"cluster_name": "eslite", "status": "green", "timed_out": false, "number_of_nodes": 1,
		"number_of_data_nodes": 1, "active_primary_shards": n, "active_shards": n, "relocating_shards": 0, "initializing_shards": 0,
		"unassigned_shards": 0, "number_of_pending_tasks": 0, "active_shards_percent_as_number": 100.0})
}

func itoa(n int) string { return strconv.Itoa(n) }
