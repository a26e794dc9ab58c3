package escompat

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sync"
)

// Templates is the set of composable index templates of a stand-in, and
// the endpoints of /_index_template that read and change it. It is safe
// for concurrent use.
type Templates struct {
	mu   sync.RWMutex
	m    map[string]*IndexTemplate
	opts TemplatesOptions
}

// TemplatesOptions configure a Templates.
type TemplatesOptions struct {
	// Save, when set, persists the whole set after each change, with the
	// set locked; a change it fails is undone and answered 500 (see
	// InternalError).
	Save func(all []*IndexTemplate) error
	// LenientCreate reads the create parameter of PUT as true only when it
	// is exactly "true", and never refuses it, as esfake always has;
	// otherwise it is read as Elasticsearch reads a boolean (ParseBool).
	LenientCreate bool
}

// NewTemplates returns a set holding initial, e.g. as a stand-in read them
// from disk.
func NewTemplates(initial []*IndexTemplate, opts TemplatesOptions) *Templates {
	ts := &Templates{m: make(map[string]*IndexTemplate, len(initial)), opts: opts}
	for _, t := range initial {
		ts.m[t.Name] = t
	}
	return ts
}

// Len is the number of templates.
func (ts *Templates) Len() int {
	ts.mu.RLock()
	defer ts.mu.RUnlock()
	return len(ts.m)
}

// Get returns the template name, or nil.
func (ts *Templates) Get(name string) *IndexTemplate {
	ts.mu.RLock()
	defer ts.mu.RUnlock()
	return ts.m[name]
}

// Select returns the template a new index of this name is created from
// (see SelectTemplate), or nil.
func (ts *Templates) Select(index string) *IndexTemplate {
	ts.mu.RLock()
	defer ts.mu.RUnlock()
	return SelectTemplate(ts.listLocked(), index)
}

// NewIndex returns the settings and the mapping of a new index of this
// name: those of the template it is created from (see Select), overlaid
// with the settings and mappings of its create-index request (either may
// be nil).
func (ts *Templates) NewIndex(name string, settings, mappings json.RawMessage) (json.RawMessage, *Mapping, *Error) {
	var tSettings, tMappings json.RawMessage
	if t := ts.Select(name); t != nil {
		tSettings, tMappings = t.Settings, t.Mappings
	}
	merged := MergeSettings(tSettings, settings)
	m, err := NewMapping(merged, tMappings, mappings)
	if err != nil {
		return nil, nil, err
	}
	return merged, m, nil
}

func (ts *Templates) listLocked() []*IndexTemplate {
	all := make([]*IndexTemplate, 0, len(ts.m))
	for _, t := range ts.m {
		all = append(all, t)
	}
	return all
}

func (ts *Templates) match(expr string) []*IndexTemplate {
	ts.mu.RLock()
	defer ts.mu.RUnlock()
	return MatchTemplates(ts.listLocked(), expr)
}

// Register registers on rt the endpoints of /_index_template (name "":
// GET lists every template) or of /_index_template/{name} (GET, HEAD,
// PUT or POST, DELETE; name may be a comma-separated list of patterns
// where Elasticsearch allows one).
func (ts *Templates) Register(rt *Router, rs *Responder, r *http.Request, name string) {
	if name == "" {
		rt.Handle(func() { ts.get(rs, "*", false) }, http.MethodGet)
		return
	}
	rt.Handle(func() { ts.get(rs, name, true) }, http.MethodGet)
	rt.Handle(func() { ts.head(rs, name) }, http.MethodHead)
	rt.Handle(func() { ts.put(rs, r, name) }, http.MethodPut, http.MethodPost)
	rt.Handle(func() { ts.delete(rs, name) }, http.MethodDelete)
}

func (ts *Templates) put(rs *Responder, r *http.Request, name string) {
	body, err := ReadBody(r)
	if err != nil {
		rs.Error(err)
		return
	}
	t, err := ParseIndexTemplate(name, body)
	if err != nil {
		rs.Error(err)
		return
	}
	create, err := ts.createParam(r.URL.Query())
	if err != nil {
		rs.Error(err)
		return
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	prev := ts.m[name]
	if create && prev != nil {
		rs.Error(IllegalArgument("index template [%s] already exists", name))
		return
	}
	if err := t.CheckOverlap(ts.listLocked()); err != nil {
		rs.Error(err)
		return
	}
	ts.m[name] = t
	if serr := ts.saveLocked(); serr != nil {
		if prev != nil {
			ts.m[name] = prev
		} else {
			delete(ts.m, name)
		}
		rs.Error(InternalError(serr))
		return
	}
	rs.JSON(http.StatusOK, Acknowledged())
}

// createParam reads the create parameter of PUT (see
// TemplatesOptions.LenientCreate).
func (ts *Templates) createParam(q url.Values) (bool, *Error) {
	if ts.opts.LenientCreate {
		return q.Get("create") == "true", nil
	}
	return ParseBool(q, "create", false)
}

func (ts *Templates) saveLocked() error {
	if ts.opts.Save == nil {
		return nil
	}
	return ts.opts.Save(ts.listLocked())
}

func (ts *Templates) get(rs *Responder, expr string, named bool) {
	found := ts.match(expr)
	if named && len(found) == 0 {
		rs.Error(TemplateNotFound(expr))
		return
	}
	rs.JSON(http.StatusOK, TemplatesResponse(found))
}

func (ts *Templates) head(rs *Responder, expr string) {
	if len(ts.match(expr)) == 0 {
		rs.Status(http.StatusNotFound)
		return
	}
	rs.Status(http.StatusOK)
}

func (ts *Templates) delete(rs *Responder, expr string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	found := MatchTemplates(ts.listLocked(), expr)
	if len(found) == 0 {
		rs.Error(TemplateMissing(expr))
		return
	}
	for _, t := range found {
		delete(ts.m, t.Name)
	}
	if err := ts.saveLocked(); err != nil {
		for _, t := range found {
			ts.m[t.Name] = t
		}
		rs.Error(InternalError(err))
		return
	}
	rs.JSON(http.StatusOK, Acknowledged())
}
