package escompat

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// IndexTemplate is a composable index template, as stored by
// PUT /_index_template/{name}. Only the parts that shape a new index are
// interpreted: index_patterns, priority, template.settings and
// template.mappings. Component templates (composed_of) are not supported.
type IndexTemplate struct {
	Name          string
	IndexPatterns []string
	Priority      int64
	Settings      json.RawMessage // template.settings; nil when absent
	Mappings      json.RawMessage // template.mappings; nil when absent
	Body          json.RawMessage // the request body as given
}

var templateKeys = map[string]bool{
	"index_patterns": true, "template": true, "composed_of": true, "priority": true, "version": true,
	"_meta": true, "data_stream": true, "allow_auto_create": true, "ignore_missing_component_templates": true,
	"deprecated": true,
}

var templateTemplateKeys = map[string]bool{
	"settings": true, "mappings": true, "aliases": true, "lifecycle": true, "data_stream_options": true,
}

// ParseIndexTemplate parses and validates the body of
// PUT /_index_template/{name}, answering errors as Elasticsearch does:
// x_content_parse_exception for malformed JSON or unknown fields,
// action_request_validation_exception without index_patterns, and
// mapper_parsing_exception for mappings Elasticsearch would refuse.
func ParseIndexTemplate(name string, body []byte) (*IndexTemplate, *Error) {
	p := &jsonParser{src: body}
	root, serr := p.value()
	if serr != nil {
		return nil, serr.xcontent(body)
	}
	if p.skipSpace(); p.pos != len(body) {
		return nil, (&syntaxError{off: p.pos, msg: "Unexpected content after the template body"}).xcontent(body)
	}
	if root.kind != kindObject {
		return nil, &Error{Status: http.StatusBadRequest, Type: "x_content_parse_exception",
			Reason: locate(body, root.off).String() + " [index_template] Expected START_OBJECT but was: " + root.tokenName()}
	}
	t := &IndexTemplate{Name: name, Body: append(json.RawMessage(nil), body...)}
	var problems []string
	for i, k := range root.keys {
		v := root.vals[i]
		if !templateKeys[k] {
			return nil, &Error{Status: http.StatusBadRequest, Type: "x_content_parse_exception",
				Reason: locate(body, root.koff[i]).String() + " [index_template] unknown field [" + k + "]"}
		}
		switch k {
		case "index_patterns":
			pats, ok := stringList(v)
			if !ok {
				return nil, &Error{Status: http.StatusBadRequest, Type: "x_content_parse_exception",
					Reason: locate(body, v.off).String() + " [index_template] failed to parse field [index_patterns]"}
			}
			t.IndexPatterns = pats
		case "priority":
			n, err := strconv.ParseInt(v.text, 10, 64)
			if v.kind != kindNumber || err != nil {
				return nil, &Error{Status: http.StatusBadRequest, Type: "x_content_parse_exception",
					Reason: locate(body, v.off).String() + " [index_template] failed to parse field [priority]"}
			}
			if n < 0 {
				problems = append(problems, "index template priority must be >= 0")
			}
			t.Priority = n
		case "composed_of":
			if names, _ := stringList(v); len(names) > 0 {
				return nil, &Error{Status: http.StatusBadRequest, Type: "invalid_index_template_exception",
					Reason: fmt.Sprintf("index_template [%s] invalid, cause [index template [%s] specifies component templates [%s] that do not exist]",
						name, name, strings.Join(names, ", "))}
			}
		case "template":
			if v.kind != kindObject {
				return nil, &Error{Status: http.StatusBadRequest, Type: "x_content_parse_exception",
					Reason: locate(body, v.off).String() + " [index_template] template doesn't support values of type: " + v.tokenName()}
			}
			for j, tk := range v.keys {
				if !templateTemplateKeys[tk] {
					return nil, &Error{Status: http.StatusBadRequest, Type: "x_content_parse_exception",
						Reason: locate(body, v.koff[j]).String() + " [template] unknown field [" + tk + "]"}
				}
			}
			if s := v.member("settings"); s != nil && s.kind == kindObject {
				t.Settings = json.RawMessage(Encode(s, nil))
			}
			if m := v.member("mappings"); m != nil && m.kind == kindObject {
				t.Mappings = json.RawMessage(Encode(m, nil))
			}
		}
	}
	if len(t.IndexPatterns) == 0 {
		problems = append(problems, "index patterns are missing")
	}
	for _, pat := range t.IndexPatterns {
		if pat == "" || strings.ContainsAny(pat, ` "\<>|,/?`) {
			problems = append(problems, "index_pattern ["+pat+"] must not contain a space, comma, or any of the characters [\\, /, ?, \", <, >, |]")
		}
	}
	if len(problems) > 0 {
		return nil, validationFailed(problems)
	}
	if _, err := NewMapping(t.Settings, t.Mappings); err != nil {
		return nil, err
	}
	return t, nil
}

// stringList reads a string or an array of strings.
func stringList(n *node) ([]string, bool) {
	switch n.kind {
	case kindString:
		return []string{n.text}, true
	case kindArray:
		out := make([]string, 0, len(n.vals))
		for _, e := range n.vals {
			if e.kind != kindString {
				return nil, false
			}
			out = append(out, e.text)
		}
		return out, true
	}
	return nil, false
}

// Matches reports whether the template applies to a new index of this name.
func (t *IndexTemplate) Matches(index string) bool {
	for _, p := range t.IndexPatterns {
		if GlobMatch(p, index) {
			return true
		}
	}
	return false
}

// SelectTemplate returns the highest-priority template matching index, or
// nil. Elasticsearch refuses overlapping templates of equal priority, so the
// choice is unique; ties are broken by name for determinism.
func SelectTemplate(templates []*IndexTemplate, index string) *IndexTemplate {
	var best *IndexTemplate
	for _, t := range templates {
		if !t.Matches(index) {
			continue
		}
		if best == nil || t.Priority > best.Priority || t.Priority == best.Priority && t.Name < best.Name {
			best = t
		}
	}
	return best
}

// overlapping returns the templates among others that share t's priority
// and could match a common index name.
func (t *IndexTemplate) overlapping(others []*IndexTemplate) []*IndexTemplate {
	var out []*IndexTemplate
	for _, o := range others {
		if o.Name == t.Name || o.Priority != t.Priority {
			continue
		}
	search:
		for _, p := range t.IndexPatterns {
			for _, q := range o.IndexPatterns {
				if globsIntersect(p, q) {
					out = append(out, o)
					break search
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// CheckOverlap returns the illegal_argument_exception Elasticsearch answers
// when t, about to be stored, has the priority of an existing template among
// others whose patterns could match the same index; nil when there is none.
// A template of the same name in others is the one t replaces.
func (t *IndexTemplate) CheckOverlap(others []*IndexTemplate) *Error {
	clash := t.overlapping(others)
	if len(clash) == 0 {
		return nil
	}
	var names, pats []string
	for _, o := range clash {
		names = append(names, o.Name)
		pats = append(pats, o.Name+" => ["+strings.Join(o.IndexPatterns, ", ")+"]")
	}
	return IllegalArgument("index template [%s] has index patterns [%s] matching patterns from existing templates [%s] with patterns (%s) that have the same priority [%d], multiple index templates may not match during index creation, please use a different priority",
		t.Name, strings.Join(t.IndexPatterns, ", "), strings.Join(names, ","), strings.Join(pats, ","), t.Priority)
}

// MatchTemplates returns the templates whose names match a comma-separated
// list of names with '*' wildcards, sorted by name.
func MatchTemplates(templates []*IndexTemplate, expr string) []*IndexTemplate {
	var out []*IndexTemplate
	for _, t := range templates {
		for _, p := range strings.Split(expr, ",") {
			if GlobMatch(p, t.Name) {
				out = append(out, t)
				break
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// TemplatesResponse is the body of GET /_index_template[/{name}] listing ts.
func TemplatesResponse(ts []*IndexTemplate) Ordered {
	list := make([]any, 0, len(ts))
	for _, t := range ts {
		list = append(list, obj{{"name", t.Name}, {"index_template", t.json()}})
	}
	return obj{{"index_templates", list}}
}

// json renders a stored template as GET /_index_template shows it.
func (t *IndexTemplate) json() obj {
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

// TemplateNotFound is the 404 of GET /_index_template/{name} matching
// nothing.
func TemplateNotFound(expr string) *Error {
	return NewError(http.StatusNotFound, "resource_not_found_exception", "index template matching [%s] not found", expr)
}

// TemplateMissing is the 404 of DELETE /_index_template/{name} matching
// nothing.
func TemplateMissing(expr string) *Error {
	return NewError(http.StatusNotFound, "resource_not_found_exception", "index_template [%s] missing", expr)
}

// globsIntersect reports whether some string matches both '*'-patterns.
func globsIntersect(p, q string) bool {
	memo := make(map[[2]int]bool)
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
			r = rec(i+1, j) || (j < len(q) && rec(i, j+1))
		case j < len(q) && q[j] == '*':
			r = rec(i, j+1) || (i < len(p) && rec(i+1, j))
		case i < len(p) && j < len(q):
			r = p[i] == q[j] && rec(i+1, j+1)
		}
		memo[key] = r
		return r
	}
	return rec(0, 0)
}

// FlattenSettings flattens index settings into dotted keys with the
// "index." prefix removed, so {"index":{"mapping.total_fields.limit":5}},
// {"index.mapping.total_fields.limit":"5"} and
// {"mapping":{"total_fields":{"limit":5}}} all read
// "mapping.total_fields.limit" = "5".
func FlattenSettings(raw json.RawMessage) map[string]string {
	out := make(map[string]string)
	if len(raw) == 0 {
		return out
	}
	doc, err := ParseDocument(raw)
	if err != nil {
		return out
	}
	var walk func(prefix string, n *node)
	walk = func(prefix string, n *node) {
		switch n.kind {
		case kindObject:
			for i, k := range n.keys {
				key := k
				if prefix != "" {
					key = prefix + "." + k
				}
				walk(key, n.vals[i])
			}
		case kindArray:
			parts := make([]string, 0, len(n.vals))
			for _, e := range n.vals {
				parts = append(parts, scalarText(e))
			}
			out[strings.TrimPrefix(prefix, "index.")] = strings.Join(parts, ",")
		default:
			out[strings.TrimPrefix(prefix, "index.")] = scalarText(n)
		}
	}
	walk("", doc.root)
	return out
}
