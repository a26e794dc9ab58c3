package esfake

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicelogs/sluice/internal/escompat"
)

// Server is an in-memory fake of the Elasticsearch 8 REST API subset the
// Sluice indexer uses. All methods are safe for concurrent use, including
// while requests are being served.
type Server struct {
	discard     bool
	product     escompat.Product
	auth        string
	version     string
	seed        uint64
	clusterUUID string

	ts        *httptest.Server
	closed    chan struct{}
	closeOnce sync.Once

	gate  escompat.Gate // injects the faults
	rng   *escompat.Rand
	idSeq atomic.Uint64

	templates   *escompat.Templates
	indexFaults indexFaults

	mu      sync.Mutex // guards indices and roles
	indices map[string]*index
	roles   map[string]json.RawMessage

	stats struct {
		requests, bulkRequests, items, created, conflicts, itemRejected, itemInvalid, requestsFaulted atomic.Int64
	}
}

// index is one index of the fake.
type index struct {
	name, uuid string
	created    time.Time
	mapping    *escompat.Mapping
	settings   json.RawMessage
	docs       map[string]*storedDoc
	seqNo      int64
	bytes      int64
}

type storedDoc struct {
	source         []byte
	version, seqNo int64
}

// Option configures a Server.
type Option func(*Server)

// Discard makes the server a fast sink for benchmarks: bulk items are
// answered 201 created without being stored or mapped (no index is created
// and no document is parsed), but they are counted in Stats. Item faults
// still apply.
func Discard() Option { return func(s *Server) { s.discard = true } }

// RequireAuth makes the server answer 401 security_exception to every
// request whose Authorization header is not exactly header, e.g.
// "Basic " + base64("elastic:changeme") or "ApiKey ...".
func RequireAuth(header string) Option { return func(s *Server) { s.auth = header } }

// Version sets the version.number reported by GET / (default "8.15.0", or
// "2.17.1" with OpenSearch).
func Version(v string) Option { return func(s *Server) { s.version = v } }

// Seed seeds the server's randomness: fault decisions, generated _ids and
// UUIDs. The default seed is 1, so runs are reproducible unless requests
// race.
func Seed(seed int64) Option { return func(s *Server) { s.seed = uint64(seed) } }

// WithFaults sets the initial faults (see SetFaults).
func WithFaults(f Faults) Option { return func(s *Server) { s.SetFaults(f) } }

// Faults are failures the server injects (see escompat.Faults). The zero
// value injects none.
type Faults = escompat.Faults

// Stats counts what the server has seen since it started.
type Stats struct {
	Requests        int64 // every HTTP request
	BulkRequests    int64 // bulk requests answered 200
	Items           int64 // operations in bulk requests that parsed
	Created         int64 // items answered 201 created
	Conflicts       int64 // items answered 409 version conflict
	ItemRejected    int64 // items answered 429 (injected item faults)
	ItemInvalid     int64 // items answered 400 (mapping, parsing, index name)
	RequestsFaulted int64 // requests answered by an injected fault or Down
}

// New returns an unstarted fake; serve it with Handler, e.g. inside another
// test server. Start is the usual way to get one.
func New(opts ...Option) *Server {
	s := &Server{
		seed:      1,
		closed:    make(chan struct{}),
		indices:   make(map[string]*index),
		roles:     make(map[string]json.RawMessage),
		templates: escompat.NewTemplates(nil, escompat.TemplatesOptions{LenientCreate: true}),
	}
	for _, o := range opts {
		o(s)
	}
	switch {
	case s.version != "":
	case s.product == escompat.OpenSearch:
		s.version = "2.17.1"
	default:
		s.version = "8.15.0"
	}
	s.rng = escompat.NewRand(s.seed)
	s.gate.Rand = s.rng
	s.gate.Closing = s.closed
	if s.product == escompat.Elasticsearch {
		s.gate.Check = s.checkAuth // OpenSearch's is in serveHTTP
	}
	s.gate.Faulted = func() { s.stats.requestsFaulted.Add(1) }
	s.clusterUUID = s.rng.ID(22)
	return s
}

// Start starts a fake on a loopback httptest server and closes it with
// tb.Cleanup.
func Start(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s := New(opts...)
	s.ts = httptest.NewServer(s.Handler())
	tb.Cleanup(s.Close)
	return s
}

// URL is the base URL of a started server, e.g. "http://127.0.0.1:41234";
// "" for a server made with New.
func (s *Server) URL() string {
	if s.ts == nil {
		return ""
	}
	return s.ts.URL
}

// Handler serves the fake's REST API.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// Close stops a started server, cutting short any injected latency, and
// waits for outstanding requests. It is safe to call more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closed)
		if s.ts != nil {
			s.ts.Close()
		}
	})
}

// SetFaults replaces the injected faults. It is safe at any time, from any
// goroutine; requests already past their fault decision are not affected.
func (s *Server) SetFaults(f Faults) { s.gate.SetFaults(f) }

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	return Stats{
		Requests:        s.stats.requests.Load(),
		BulkRequests:    s.stats.bulkRequests.Load(),
		Items:           s.stats.items.Load(),
		Created:         s.stats.created.Load(),
		Conflicts:       s.stats.conflicts.Load(),
		ItemRejected:    s.stats.itemRejected.Load(),
		ItemInvalid:     s.stats.itemInvalid.Load(),
		RequestsFaulted: s.stats.requestsFaulted.Load(),
	}
}

// Docs returns a copy of the documents stored in index, by _id; nil when the
// index does not exist.
func (s *Server) Docs(index string) map[string]json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	idx := s.indices[index]
	if idx == nil {
		return nil
	}
	out := make(map[string]json.RawMessage, len(idx.docs))
	for id, d := range idx.docs {
		out[id] = append(json.RawMessage(nil), d.source...)
	}
	return out
}

// Indices returns the names of the existing indices, sorted.
func (s *Server) Indices() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.indices))
	for n := range s.indices {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// IDs maps every stored _id to the sorted names of the indices holding it,
// for "stored exactly once" checks.
func (s *Server) IDs() map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]string)
	for name, idx := range s.indices {
		for id := range idx.docs {
			out[id] = append(out[id], name)
		}
	}
	for _, names := range out {
		sort.Strings(names)
	}
	return out
}

// Template returns the body of the stored index template name as it was
// given to PUT /_index_template/{name}.
func (s *Server) Template(name string) (json.RawMessage, bool) {
	t := s.templates.Get(name)
	if t == nil {
		return nil, false
	}
	return append(json.RawMessage(nil), t.Body...), true
}

// CreateIndex creates an empty index, its mapping seeded from the matching
// template, as PUT /{index} does; it does nothing if the index exists. It
// panics on a name Elasticsearch refuses.
func (s *Server) CreateIndex(name string) {
	if err := escompat.ValidateIndexName(name); err != nil {
		panic("esfake: CreateIndex: " + err.Reason)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.indices[name] == nil {
		if _, err := s.createIndexLocked(name, nil, nil); err != nil {
			panic("esfake: CreateIndex: " + err.Reason)
		}
	}
}

// Mapping returns the mapped fields of index: path -> type ("keyword",
// "long", "object", ...); nil when the index does not exist.
func (s *Server) Mapping(index string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	idx := s.indices[index]
	if idx == nil {
		return nil
	}
	return idx.mapping.Fields()
}

// createIndexLocked creates an index from the matching template and the
// optional settings and mappings of a create-index request. s.mu is held.
func (s *Server) createIndexLocked(name string, settings, mappings json.RawMessage) (*index, *escompat.Error) {
	merged, m, err := s.templates.NewIndex(name, settings, mappings)
	if err != nil {
		return nil, err
	}
	idx := &index{
		name:     name,
		uuid:     s.rng.ID(22),
		created:  time.Now(),
		mapping:  m,
		settings: merged,
		docs:     make(map[string]*storedDoc),
	}
	s.indices[name] = idx
	return idx, nil
}

// generateID makes a 20-character URL-safe _id, unique per server, like
// Elasticsearch's auto-generated ids.
func (s *Server) generateID() string {
	var b [15]byte
	// 7 bytes of sequence number, then 8 random bytes.
	binary.BigEndian.PutUint64(b[:8], s.idSeq.Add(1)<<8)
	binary.BigEndian.PutUint64(b[7:], s.rng.Uint64())
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.stats.requests.Add(1)
	if s.product == escompat.OpenSearch {
		s.serveOpenSearch(w, r)
		return
	}
	if rs, path, ok := s.gate.Admit(w, r); ok {
		s.route(rs, r, path)
	}
}

// checkAuth answers 401 security_exception, as Elasticsearch does, a
// request without the Authorization RequireAuth asks for.
func (s *Server) checkAuth(rs *escompat.Responder, r *http.Request) *escompat.Error {
	if s.auth == "" || r.Header.Get("Authorization") == s.auth {
		return nil
	}
	rs.Header().Set("WWW-Authenticate", `Basic realm="security", charset="UTF-8"`)
	header := obj{{"header", obj{{"WWW-Authenticate", []string{`Basic realm="security", charset="UTF-8"`, `ApiKey`}}}}}
	path := r.URL.Path
	got := r.Header.Get("Authorization")
	if got == "" {
		return &escompat.Error{Status: http.StatusUnauthorized, Type: "security_exception",
			Reason: "missing authentication credentials for REST request [" + path + "]", Extra: header}
	}
	if user, _, ok := r.BasicAuth(); ok {
		return &escompat.Error{Status: http.StatusUnauthorized, Type: "security_exception",
			Reason: "unable to authenticate user [" + user + "] for REST request [" + path + "]", Extra: header}
	}
	return &escompat.Error{Status: http.StatusUnauthorized, Type: "security_exception",
		Reason: "unable to authenticate with provided credentials and anonymous access is not allowed for this request", Extra: header}
}

// route dispatches a request to its endpoint.
func (s *Server) route(rs *escompat.Responder, r *http.Request, path escompat.Path) {
	var rt escompat.Router
	n, seg := len(path), path.At
	switch {
	case n == 0:
		rt.Handle(func() { s.info(rs) }, http.MethodGet, http.MethodHead)
	case n == 1 && seg(0) == "_bulk":
		rt.Handle(func() { s.bulk(rs, r, "") }, http.MethodPost, http.MethodPut)
	case seg(0) == "_index_template" && n <= 2:
		s.templates.Register(&rt, rs, r, seg(1))
	case seg(0) == "_cluster" && seg(1) == "health" && n <= 3:
		rt.Handle(func() { s.health(rs, seg(2)) }, http.MethodGet)
	case seg(0) == "_cat" && seg(1) == "indices" && n <= 3:
		rt.Handle(func() { s.catIndices(rs, r, seg(2)) }, http.MethodGet)
	case n == 1 && seg(0) == "_refresh":
		rt.Handle(func() { s.refresh(rs, "_all") }, http.MethodPost, http.MethodGet)
	case n == 3 && seg(0) == "_security" && seg(1) == "role":
		rt.Handle(func() { s.putRole(rs, r, seg(2)) }, http.MethodPut, http.MethodPost)
		rt.Handle(func() { s.getRole(rs, seg(2)) }, http.MethodGet)
		rt.Handle(func() { s.deleteRole(rs, seg(2)) }, http.MethodDelete)
	case strings.HasPrefix(seg(0), "_") && n > 1:
		// no such endpoint
	case n == 1:
		rt.Handle(func() { s.getIndex(rs, seg(0)) }, http.MethodGet)
		rt.Handle(func() { s.headIndex(rs, seg(0)) }, http.MethodHead)
		rt.Handle(func() { s.createIndex(rs, r, seg(0)) }, http.MethodPut)
		rt.Handle(func() { s.deleteIndex(rs, r, seg(0)) }, http.MethodDelete)
	case n == 2 && seg(1) == "_bulk":
		rt.Handle(func() { s.bulk(rs, r, seg(0)) }, http.MethodPost, http.MethodPut)
	case n == 2 && seg(1) == "_refresh":
		rt.Handle(func() { s.refresh(rs, seg(0)) }, http.MethodPost, http.MethodGet)
	case n == 2 && seg(1) == "_mapping":
		rt.Handle(func() { s.getMapping(rs, seg(0)) }, http.MethodGet)
	case n == 3 && seg(1) == "_doc":
		rt.Handle(func() { s.getDoc(rs, seg(0), seg(2)) }, http.MethodGet, http.MethodHead)
	}
	rt.Serve(rs, r)
}
