package eslite

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Store is the Elasticsearch stand-in: its indices, templates and roles,
// in memory, and with Open also in a directory. It is safe for concurrent
// use, its accessors included while requests are served.
type Store struct {
	dir        string // "" in memory
	log        *slog.Logger
	openSearch bool
	auth       string
	version    string
	discard    bool
	seed       uint64
	uuid       string
	unlock     func() error

	ts        *httptest.Server
	closing   chan struct{}
	closeOnce sync.Once

	rndMu   sync.Mutex
	rnd     *rand.Rand
	faults  atomic.Pointer[Faults]
	ifMu    sync.RWMutex
	ifaults map[string]IndexFault
	idSeq   atomic.Uint64
	fields  fieldTable

	mu        sync.RWMutex // guards the maps below and closed
	indices   map[string]*index
	templates map[string]*template
	roles     map[string]json.RawMessage
	closed    bool

	stats struct {
		items, created, conflicts, itemRejected, itemInvalid, requestsFaulted atomic.Int64
	}
}

// index is one index: its documents in the order they were first written.
type index struct {
	name, uuid string
	created    time.Time
	settings   map[string]string // flattened, without the "index." prefix
	mappings   []json.RawMessage // as created: the template's, then the request's

	mu      sync.RWMutex // guards what follows
	m       *mapping
	docs    []*doc
	ids     map[string]int32 // _id -> position in docs
	seq     int64
	bytes   int64
	deleted bool
	dir     string   // on disk: its directory
	log     *os.File // on disk: its operation log
	pending []byte   // log entries applied but not yet written
	broken  error    // a write of the log failed: writes are refused until the store is reopened
	docSlab []doc    // where new documents are allocated
	valSlab []val    // where their values are
	intern  map[string]string
}

// doc is one stored document: its source and the values it is searched by.
type doc struct {
	id           string
	src          []byte
	vals         []val
	version, seq int64
}

// Option configures a Store.
type Option func(*Store)

// Seed seeds the fault decisions, so that a test sees the same faults on
// every run unless requests race (default 1).
func Seed(seed int64) Option { return func(s *Store) { s.seed = uint64(seed) } }

// WithFaults sets the initial faults (see SetFaults).
func WithFaults(f Faults) Option { return func(s *Store) { s.SetFaults(f) } }

// RequireAuth makes the store answer 401 to every request whose
// Authorization header is not exactly header, e.g. "Basic " +
// base64("elastic:changeme").
func RequireAuth(header string) Option { return func(s *Store) { s.auth = header } }

// OpenSearch makes the store answer as an OpenSearch 2.17.1 node: no
// X-Elastic-Product header (go-elasticsearch v8 refuses the store unless
// the client adds it, as SLUICE_ELASTICSEARCH_FLAVOR=opensearch does),
// OpenSearch's GET / body, JSON typed application/json; charset=UTF-8, the
// security plugin's text 401, and document errors typed
// mapper_parsing_exception without a [line:column].
func OpenSearch() Option { return func(s *Store) { s.openSearch = true } }

// Discard makes the store a sink for benchmarks: bulk items are answered
// 201 created and counted in Stats, but neither parsed nor stored. Item
// faults still apply.
func Discard() Option { return func(s *Store) { s.discard = true } }

// WithLogger sets the logger of lifecycle events and of what a reopened
// directory needed repairing (default: none).
func WithLogger(l *slog.Logger) Option { return func(s *Store) { s.log = l } }

// New returns a store that keeps everything in memory. Serve it with
// Handler or Serve; Close it when done.
func New(opts ...Option) *Store {
	s := &Store{
		log: slog.New(slog.DiscardHandler), seed: 1, closing: make(chan struct{}),
		indices: map[string]*index{}, templates: map[string]*template{}, roles: map[string]json.RawMessage{},
	}
	for _, o := range opts {
		o(s)
	}
	s.version = "8.15.0"
	if s.openSearch {
		s.version = "2.17.1"
	}
	s.rnd = rand.New(rand.NewPCG(s.seed, s.seed^0x9e3779b97f4a7c15))
	s.uuid = s.randomID(22)
	return s
}

// Open returns a store that keeps its data in dir, creating dir if needed,
// with what a previous Open left there. One Store at a time may have a
// directory open: Open fails if another process holds it.
func Open(dir string, opts ...Option) (*Store, error) {
	s := New(opts...)
	s.dir = dir
	if err := s.load(); err != nil {
		s.Close()
		return nil, err
	}
	s.log.Info("eslite store opened", "dir", dir, "indices", len(s.indices), "templates", len(s.templates))
	return s, nil
}

// TB is the part of testing.TB that Start uses.
type TB interface {
	Helper()
	Cleanup(func())
}

// Start starts an in-memory store on a loopback httptest server that
// tb.Cleanup closes; URL is its address.
func Start(tb TB, opts ...Option) *Store {
	tb.Helper()
	s := New(opts...)
	s.ts = httptest.NewServer(s.Handler())
	tb.Cleanup(func() { s.Close() })
	return s
}

// URL is the base URL of a store made by Start, e.g.
// "http://127.0.0.1:41234"; "" otherwise.
func (s *Store) URL() string {
	if s.ts == nil {
		return ""
	}
	return s.ts.URL
}

// Handler serves the store's REST API.
func (s *Store) Handler() http.Handler { return http.HandlerFunc(s.serve) }

// Serve serves the store's REST API on ln in the background; close the
// returned server to stop.
func (s *Store) Serve(ln net.Listener) *http.Server {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return srv
}

// Close stops a started server, cuts injected latency short, closes the
// indices' files and releases the directory. Requests served after Close
// are answered 503. It is safe to call more than once.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.closing)
		if s.ts != nil {
			s.ts.Close()
		}
		s.mu.Lock()
		s.closed = true
		for _, idx := range s.indices {
			idx.mu.Lock()
			if idx.log != nil {
				err = errors.Join(err, idx.log.Close())
			}
			idx.mu.Unlock()
		}
		s.mu.Unlock()
		if s.unlock != nil {
			err = errors.Join(err, s.unlock())
		}
		if s.dir != "" {
			s.log.Info("eslite store closed", "dir", s.dir, "err", err)
		}
	})
	return err
}

func (s *Store) isClosed() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.closed
}

// SetFaults replaces the injected faults; safe at any time. Requests past
// their fault decision are not affected.
func (s *Store) SetFaults(f Faults) {
	if f.RequestStatus == 0 {
		f.RequestStatus = http.StatusServiceUnavailable
	}
	s.faults.Store(&f)
}

func (s *Store) faultsNow() Faults {
	if f := s.faults.Load(); f != nil {
		return *f
	}
	return Faults{}
}

// SetIndexFault makes bulk writes to the indices matching pattern (path.Match
// syntax) fail as f does, until it is set to NoIndexFault. Of several
// matching patterns the longest wins.
func (s *Store) SetIndexFault(pattern string, f IndexFault) {
	s.ifMu.Lock()
	defer s.ifMu.Unlock()
	if s.ifaults == nil {
		s.ifaults = map[string]IndexFault{}
	}
	if f == NoIndexFault {
		delete(s.ifaults, pattern)
	} else {
		s.ifaults[pattern] = f
	}
}

func (s *Store) indexFault(name string) IndexFault {
	s.ifMu.RLock()
	defer s.ifMu.RUnlock()
	best, bestLen := NoIndexFault, -1
	for p, f := range s.ifaults {
		if ok, _ := path.Match(p, name); ok && len(p) > bestLen {
			best, bestLen = f, len(p)
		}
	}
	return best
}

func (s *Store) chance(p float64) bool {
	if p <= 0 {
		return false
	}
	s.rndMu.Lock()
	defer s.rndMu.Unlock()
	return s.rnd.Float64() < p
}

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func (s *Store) randomID(n int) string {
	s.rndMu.Lock()
	defer s.rndMu.Unlock()
	b := make([]byte, n)
	for i := range b {
		b[i] = idAlphabet[s.rnd.IntN(len(idAlphabet))]
	}
	return string(b)
}

// newID makes a 20-character _id like Elasticsearch's generated ones: the
// time in milliseconds, a sequence number and random bits, unique across
// restarts.
func (s *Store) newID() string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:], uint64(time.Now().UnixMilli())<<12|s.idSeq.Add(1)&0xfff)
	s.rndMu.Lock()
	binary.BigEndian.PutUint64(b[8:], s.rnd.Uint64())
	s.rndMu.Unlock()
	return base64.RawURLEncoding.EncodeToString(b[1:])
}

// Stats counts what the store has seen since it started.
type Stats struct {
	Items           int64 // operations of the bulk requests that parsed
	Created         int64 // items answered 201 created
	Conflicts       int64 // items answered 409
	ItemRejected    int64 // items refused by an injected fault (item or index)
	ItemInvalid     int64 // items answered 400 for their document or index name
	RequestsFaulted int64 // requests answered by an injected fault or Down
}

// Stats returns a snapshot of the counters.
func (s *Store) Stats() Stats {
	c := &s.stats
	return Stats{c.items.Load(), c.created.Load(), c.conflicts.Load(), c.itemRejected.Load(), c.itemInvalid.Load(), c.requestsFaulted.Load()}
}

func (s *Store) lookup(name string) *index {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.indices[name]
}

// Indices returns the names of the indices, sorted.
func (s *Store) Indices() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	names := make([]string, 0, len(s.indices))
	for n := range s.indices {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Docs returns a copy of the documents of an index by _id; nil when the
// index does not exist.
func (s *Store) Docs(name string) map[string]json.RawMessage {
	idx := s.lookup(name)
	if idx == nil {
		return nil
	}
	idx.mu.RLock()
	defer idx.mu.RUnlock()
	out := make(map[string]json.RawMessage, len(idx.docs))
	for _, d := range idx.docs {
		out[d.id] = slices.Clone(d.src)
	}
	return out
}

// IDs maps every stored _id to the sorted names of the indices holding it.
func (s *Store) IDs() map[string][]string {
	out := map[string][]string{}
	for _, name := range s.Indices() {
		if idx := s.lookup(name); idx != nil {
			idx.mu.RLock()
			for id := range idx.ids {
				out[id] = append(out[id], name)
			}
			idx.mu.RUnlock()
		}
	}
	return out
}

// Mapping returns the mapped fields of an index, objects included: path ->
// type ("keyword", "long", "object", ...); nil when the index does not
// exist.
func (s *Store) Mapping(name string) map[string]string {
	idx := s.lookup(name)
	if idx == nil {
		return nil
	}
	idx.mu.RLock()
	defer idx.mu.RUnlock()
	out := make(map[string]string, len(idx.m.fields))
	for p, fd := range idx.m.fields {
		out[p] = fd.typ
	}
	return out
}

// Template returns the body of an index template as it was put.
func (s *Store) Template(name string) (json.RawMessage, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if t := s.templates[name]; t != nil {
		return slices.Clone(t.body), true
	}
	return nil, false
}

// Role returns the body of a role put through /_security/role.
func (s *Store) Role(name string) (json.RawMessage, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.roles[name]
	return slices.Clone(r), ok
}

// CreateIndex creates an empty index from the matching template, as PUT
// /{index} does, unless it exists. It panics on a name Elasticsearch
// refuses.
func (s *Store) CreateIndex(name string) {
	if _, err := s.createIndex(name, nil, nil, false); err != nil {
		panic(fmt.Sprintf("eslite: CreateIndex: %v", err))
	}
}

// fieldTable numbers the field paths of every index, so that a document's
// values name their field by a number.
type fieldTable struct {
	mu    sync.RWMutex
	ids   map[string]uint32
	names []string
}

func (t *fieldTable) id(name string) uint32 {
	t.mu.RLock()
	id, ok := t.ids[name]
	t.mu.RUnlock()
	if ok {
		return id
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if id, ok := t.ids[name]; ok {
		return id
	}
	if t.ids == nil {
		t.ids = map[string]uint32{}
	}
	id = uint32(len(t.names))
	t.ids[name] = id
	t.names = append(t.names, name)
	return id
}

// match returns the ids of the paths keep accepts.
func (t *fieldTable) match(keep func(name string) bool) []uint32 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []uint32
	for id, name := range t.names {
		if keep(name) {
			out = append(out, uint32(id))
		}
	}
	return out
}
