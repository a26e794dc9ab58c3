package esfake

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Server is an in-memory fake of the Elasticsearch 8 REST API subset the
// Sluice indexer uses. All methods are safe for concurrent use, including
// while requests are being served.
type Server struct {
	discard     bool
	auth        string
	version     string
	seed        uint64
	clusterUUID string

	ts        *httptest.Server
	closed    chan struct{}
	closeOnce sync.Once

	faults atomic.Pointer[Faults]

	rngMu sync.Mutex
	rng   *rand.Rand
	idSeq atomic.Uint64

	mu        sync.Mutex // guards indices and templates
	indices   map[string]*index
	templates map[string]*IndexTemplate

	stats struct {
		requests, bulkRequests, items, created, conflicts, itemRejected, itemInvalid, requestsFaulted atomic.Int64
	}
}

// index is one index of the fake.
type index struct {
	name, uuid string
	created    time.Time
	mapping    *Mapping
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

// Version sets the version.number reported by GET / (default "8.15.0").
func Version(v string) Option { return func(s *Server) { s.version = v } }

// Seed seeds the server's randomness: fault decisions, generated _ids and
// UUIDs. The default seed is 1, so runs are reproducible unless requests
// race.
func Seed(seed int64) Option { return func(s *Server) { s.seed = uint64(seed) } }

// WithFaults sets the initial faults (see SetFaults).
func WithFaults(f Faults) Option { return func(s *Server) { s.SetFaults(f) } }

// Faults are failures the server injects. The zero value injects none.
type Faults struct {
	// RequestStatus is the status of faulted whole requests: 429 (answered
	// es_rejected_execution_exception) or 503 (unavailable_shards_exception).
	// 0 means 503; any other status gets the 503 body.
	RequestStatus int
	// RequestFraction is the fraction of requests, on every endpoint but
	// GET / and HEAD /, answered with RequestStatus and an error body.
	RequestFraction float64
	// ItemFraction is the fraction of bulk items answered with a per-item 429
	// es_rejected_execution_exception (the response then has errors:true).
	ItemFraction float64
	// Latency is added before answering each request.
	Latency time.Duration
	// Down answers every request, GET / included, 503 with a
	// cluster_block_exception, as a cluster without a master does.
	Down bool
}

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
		version:   "8.15.0",
		seed:      1,
		closed:    make(chan struct{}),
		indices:   make(map[string]*index),
		templates: make(map[string]*IndexTemplate),
	}
	s.faults.Store(&Faults{})
	for _, o := range opts {
		o(s)
	}
	s.rng = rand.New(rand.NewPCG(s.seed, s.seed^0x9e3779b97f4a7c15))
	s.clusterUUID = s.randomID(22)
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
func (s *Server) SetFaults(f Faults) {
	if f.RequestFraction > 0 && f.RequestStatus == 0 {
		f.RequestStatus = http.StatusServiceUnavailable
	}
	s.faults.Store(&f)
}

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
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.templates[name]
	if t == nil {
		return nil, false
	}
	return append(json.RawMessage(nil), t.Body...), true
}

// CreateIndex creates an empty index, its mapping seeded from the matching
// template, as PUT /{index} does; it does nothing if the index exists. It
// panics on a name Elasticsearch refuses.
func (s *Server) CreateIndex(name string) {
	if err := validateIndexName(name); err != nil {
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
func (s *Server) createIndexLocked(name string, settings, mappings json.RawMessage) (*index, *Error) {
	all := make([]*IndexTemplate, 0, len(s.templates))
	for _, t := range s.templates {
		all = append(all, t)
	}
	var tSettings, tMappings json.RawMessage
	if t := SelectTemplate(all, name); t != nil {
		tSettings, tMappings = t.Settings, t.Mappings
	}
	m, err := NewMapping(mergeSettings(tSettings, settings), tMappings, mappings)
	if err != nil {
		return nil, err
	}
	idx := &index{
		name:     name,
		uuid:     s.randomID(22),
		created:  time.Now(),
		mapping:  m,
		settings: mergeSettings(tSettings, settings),
		docs:     make(map[string]*storedDoc),
	}
	s.indices[name] = idx
	return idx, nil
}

// mergeSettings overlays b's flattened settings on a's.
func mergeSettings(a, b json.RawMessage) json.RawMessage {
	if len(b) == 0 {
		return a
	}
	if len(a) == 0 {
		return b
	}
	fa, fb := flattenSettings(a), flattenSettings(b)
	for k, v := range fb {
		fa[k] = v
	}
	keys := make([]string, 0, len(fa))
	for k := range fa {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	o := make(obj, 0, len(keys))
	for _, k := range keys {
		o = append(o, kv{"index." + k, fa[k]})
	}
	return encode(o, nil)
}

// chance draws a fault decision.
func (s *Server) chance(p float64) bool {
	if p <= 0 {
		return false
	}
	if p >= 1 {
		return true
	}
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	return s.rng.Float64() < p
}

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func (s *Server) randomID(n int) string {
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	b := make([]byte, n)
	for i := range b {
		b[i] = idAlphabet[s.rng.IntN(len(idAlphabet))]
	}
	return string(b)
}

// generateID makes a 20-character URL-safe _id, unique per server, like
// Elasticsearch's auto-generated ids.
func (s *Server) generateID() string {
	var b [15]byte
	// 7 bytes of sequence number, then 8 random bytes.
	binary.BigEndian.PutUint64(b[:8], s.idSeq.Add(1)<<8)
	s.rngMu.Lock()
	r := s.rng.Uint64()
	s.rngMu.Unlock()
	binary.BigEndian.PutUint64(b[7:], r)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// responder writes Elasticsearch-style responses.
type responder struct {
	w      http.ResponseWriter
	r      *http.Request
	compat bool
	pretty bool
	filter filterPath
}

const compatMediaType = "application/vnd.elasticsearch+json;compatible-with=8"

func newResponder(w http.ResponseWriter, r *http.Request) *responder {
	q := r.URL.Query()
	rs := &responder{w: w, r: r, compat: strings.Contains(r.Header.Get("Accept"), "compatible-with=8")}
	if q.Has("pretty") && q.Get("pretty") != "false" {
		rs.pretty = true
	}
	if fp := q.Get("filter_path"); fp != "" {
		rs.filter = parseFilterPath(fp)
	}
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	return rs
}

func (rs *responder) write(status int, contentType string, body []byte) {
	h := rs.w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", fmt.Sprint(len(body)))
	rs.w.WriteHeader(status)
	if rs.r.Method != http.MethodHead {
		_, _ = rs.w.Write(body)
	}
}

func (rs *responder) contentType() string {
	if rs.compat {
		return compatMediaType
	}
	return "application/json"
}

// json answers v, filtered by filter_path.
func (rs *responder) json(status int, v any) { rs.raw(status, encode(v, rs.filter)) }

func (rs *responder) raw(status int, body []byte) {
	if rs.pretty {
		var buf bytes.Buffer
		if json.Indent(&buf, body, "", "  ") == nil {
			buf.WriteByte('\n')
			body = buf.Bytes()
		}
	}
	rs.write(status, rs.contentType(), body)
}

// error answers an error; like Elasticsearch, filter_path does not apply.
func (rs *responder) error(e *Error) { rs.raw(e.Status, encode(e.response(), nil)) }

func (rs *responder) text(status int, body string) {
	rs.write(status, "text/plain; charset=UTF-8", []byte(body))
}

// status answers a body-less HEAD-style response.
func (rs *responder) status(status int) { rs.write(status, rs.contentType(), nil) }

// maxContentLength is Elasticsearch's default http.max_content_length.
const maxContentLength = 100 << 20

func readBody(r *http.Request) ([]byte, *Error) {
	if r.Body == nil {
		return nil, nil
	}
	var rd io.Reader = http.MaxBytesReader(nil, r.Body, maxContentLength)
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(rd)
		if err != nil {
			return nil, &Error{Status: http.StatusBadRequest, Type: "not_x_content_exception",
				Reason: "Compressor detection can only be called on some xcontent bytes or compressed xcontent bytes"}
		}
		defer zr.Close()
		rd = io.LimitReader(zr, maxContentLength+1)
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 && r.ContentLength <= maxContentLength {
		buf.Grow(int(r.ContentLength) + 1)
	}
	_, err := buf.ReadFrom(rd)
	body := buf.Bytes()
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) || len(body) > maxContentLength {
		return nil, newError(http.StatusRequestEntityTooLarge, "content_too_long_exception",
			"request body is too large: more than [%d] bytes", maxContentLength)
	}
	if err != nil {
		return nil, newError(http.StatusBadRequest, "parse_exception", "failed to read request body: %v", err)
	}
	return body, nil
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.stats.requests.Add(1)
	f := *s.faults.Load()
	if f.Latency > 0 {
		t := time.NewTimer(f.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		case <-s.closed:
			t.Stop()
		}
	}
	rs := newResponder(w, r)
	if f.Down {
		s.stats.requestsFaulted.Add(1)
		rs.error(&Error{Status: http.StatusServiceUnavailable, Type: "cluster_block_exception",
			Reason: "blocked by: [SERVICE_UNAVAILABLE/2/no master];"})
		return
	}
	if s.auth != "" && r.Header.Get("Authorization") != s.auth {
		rs.w.Header().Set("WWW-Authenticate", `Basic realm="security", charset="UTF-8"`)
		rs.error(s.authError(r))
		return
	}
	segs, ok := splitPath(r.URL)
	if !ok {
		rs.error(illegalArgument("invalid escape sequence in URI [%s]", r.URL.RequestURI()))
		return
	}
	if len(segs) > 0 && s.chance(f.RequestFraction) {
		s.stats.requestsFaulted.Add(1)
		rs.error(requestFault(f.RequestStatus, r))
		return
	}
	s.route(rs, r, segs)
}

func (s *Server) authError(r *http.Request) *Error {
	header := obj{{"header", obj{{"WWW-Authenticate", []string{`Basic realm="security", charset="UTF-8"`, `ApiKey`}}}}}
	path := r.URL.Path
	got := r.Header.Get("Authorization")
	if got == "" {
		return &Error{Status: http.StatusUnauthorized, Type: "security_exception",
			Reason: "missing authentication credentials for REST request [" + path + "]", extra: header}
	}
	if user, _, ok := r.BasicAuth(); ok {
		return &Error{Status: http.StatusUnauthorized, Type: "security_exception",
			Reason: "unable to authenticate user [" + user + "] for REST request [" + path + "]", extra: header}
	}
	return &Error{Status: http.StatusUnauthorized, Type: "security_exception",
		Reason: "unable to authenticate with provided credentials and anonymous access is not allowed for this request", extra: header}
}

func requestFault(status int, r *http.Request) *Error {
	if status == http.StatusTooManyRequests {
		return newError(status, "es_rejected_execution_exception",
			"rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, coordinating_operation_bytes=%d, max_coordinating_and_primary_bytes=107374182]",
			max(r.ContentLength, 0))
	}
	if status == 0 {
		status = http.StatusServiceUnavailable
	}
	return newError(status, "unavailable_shards_exception",
		"[_na_][0] primary shard is not active Timeout: [1m], request: [%s %s]", r.Method, r.URL.Path)
}

// splitPath splits the escaped path into unescaped segments, so an _id
// holding an escaped '/' stays one segment.
func splitPath(u *url.URL) ([]string, bool) {
	var segs []string
	for _, raw := range strings.Split(u.EscapedPath(), "/") {
		if raw == "" {
			continue
		}
		seg, err := url.PathUnescape(raw)
		if err != nil {
			return nil, false
		}
		segs = append(segs, seg)
	}
	return segs, true
}

// route dispatches a request to its endpoint.
func (s *Server) route(rs *responder, r *http.Request, segs []string) {
	type endpoint struct {
		methods []string
		serve   func()
	}
	var eps []endpoint
	add := func(serve func(), methods ...string) { eps = append(eps, endpoint{methods, serve}) }
	n := len(segs)
	seg := func(i int) string {
		if i < n {
			return segs[i]
		}
		return ""
	}
	switch {
	case n == 0:
		add(func() { s.info(rs) }, http.MethodGet, http.MethodHead)
	case n == 1 && seg(0) == "_bulk":
		add(func() { s.bulk(rs, r, "") }, http.MethodPost, http.MethodPut)
	case seg(0) == "_index_template" && n == 1:
		add(func() { s.getTemplates(rs, "*", false) }, http.MethodGet)
	case seg(0) == "_index_template" && n == 2:
		add(func() { s.getTemplates(rs, seg(1), true) }, http.MethodGet)
		add(func() { s.headTemplate(rs, seg(1)) }, http.MethodHead)
		add(func() { s.putTemplate(rs, r, seg(1)) }, http.MethodPut, http.MethodPost)
		add(func() { s.deleteTemplate(rs, seg(1)) }, http.MethodDelete)
	case seg(0) == "_cluster" && seg(1) == "health" && n <= 3:
		add(func() { s.health(rs, seg(2)) }, http.MethodGet)
	case seg(0) == "_cat" && seg(1) == "indices" && n <= 3:
		add(func() { s.catIndices(rs, r, seg(2)) }, http.MethodGet)
	case n == 1 && seg(0) == "_refresh":
		add(func() { s.refresh(rs, "_all") }, http.MethodPost, http.MethodGet)
	case strings.HasPrefix(seg(0), "_") && n > 1:
		// no such endpoint
	case n == 1:
		add(func() { s.getIndex(rs, seg(0)) }, http.MethodGet)
		add(func() { s.headIndex(rs, seg(0)) }, http.MethodHead)
		add(func() { s.createIndex(rs, r, seg(0)) }, http.MethodPut)
		add(func() { s.deleteIndex(rs, r, seg(0)) }, http.MethodDelete)
	case n == 2 && seg(1) == "_bulk":
		add(func() { s.bulk(rs, r, seg(0)) }, http.MethodPost, http.MethodPut)
	case n == 2 && seg(1) == "_refresh":
		add(func() { s.refresh(rs, seg(0)) }, http.MethodPost, http.MethodGet)
	case n == 2 && seg(1) == "_mapping":
		add(func() { s.getMapping(rs, seg(0)) }, http.MethodGet)
	case n == 3 && seg(1) == "_doc":
		add(func() { s.getDoc(rs, seg(0), seg(2)) }, http.MethodGet, http.MethodHead)
	}
	if len(eps) == 0 {
		rs.raw(http.StatusBadRequest, encode(obj{
			{"error", fmt.Sprintf("no handler found for uri [%s] and method [%s]", r.URL.RequestURI(), r.Method)},
		}, nil))
		return
	}
	var allowed []string
	for _, ep := range eps {
		for _, m := range ep.methods {
			if m == r.Method {
				ep.serve()
				return
			}
			allowed = append(allowed, m)
		}
	}
	sort.Strings(allowed)
	rs.w.Header().Set("Allow", strings.Join(allowed, ","))
	rs.raw(http.StatusMethodNotAllowed, encode(obj{
		{"error", fmt.Sprintf("Incorrect HTTP method for uri [%s] and method [%s], allowed: [%s]",
			r.URL.RequestURI(), r.Method, strings.Join(allowed, ", "))},
		{"status", http.StatusMethodNotAllowed},
	}, nil))
}
