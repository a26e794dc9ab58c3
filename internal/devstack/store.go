package devstack

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/index/scorch"

	"github.com/sluicelogs/sluice/internal/escompat"
)

// Layout of the data directory.
const (
	lockFile      = ".lock"
	templatesFile = "templates.json"
	indicesDir    = "indices"
	indexMetaFile = "index.json" // in indices/<name>/, written last on creation
	bleveDir      = "bleve"      // in indices/<name>/
	deletedPrefix = ".deleted-"  // indices/.deleted-<name>-<uuid>: being removed
)

// Store is an Elasticsearch-compatible store over bleve in a data
// directory. It is safe for concurrent use; Close it when done.
type Store struct {
	dir         string
	log         *slog.Logger
	version     string
	seed        uint64
	clusterUUID string
	unlock      func() error

	gate  escompat.Gate  // injects the faults
	rng   *escompat.Rand // fault decisions
	idSeq atomic.Uint64

	closing chan struct{} // closed by Close: cuts injected latency short

	templates *escompat.Templates // kept in templates.json

	mu      sync.RWMutex // guards indices and closed
	indices map[string]*esIndex
	closed  bool

	emptyOnce sync.Once
	empty     bleve.Index // searched when an expression resolves to no index
	emptyErr  error
}

// Option configures a Store.
type Option func(*Store)

// WithLogger sets the logger of lifecycle events (open, close, index
// created or deleted) and of errors bleve reports in the background. The
// default discards them.
func WithLogger(l *slog.Logger) Option { return func(s *Store) { s.log = l } }

// Version sets the version.number GET / reports (default "8.15.0").
func Version(v string) Option { return func(s *Store) { s.version = v } }

// Seed seeds the fault decisions, so that a test sees the same faults on
// every run (default 1). Generated _ids and UUIDs are random.
func Seed(seed int64) Option { return func(s *Store) { s.seed = uint64(seed) } }

// WithFaults sets the initial injected faults (see SetFaults).
func WithFaults(f escompat.Faults) Option { return func(s *Store) { s.gate.SetFaults(f) } }

// Open opens the store in dir, creating dir if needed, and loads the
// templates and indices a previous Open left there. Only one Store may have
// a directory open at a time: Open fails if another process holds it.
func Open(dir string, opts ...Option) (*Store, error) {
	s := &Store{
		dir:     dir,
		log:     slog.New(slog.DiscardHandler),
		version: "8.15.0",
		seed:    1,
		closing: make(chan struct{}),
		indices: make(map[string]*esIndex),
	}
	for _, o := range opts {
		o(s)
	}
	s.rng = escompat.NewRand(s.seed)
	s.gate.Rand = s.rng
	s.gate.Closing = s.closing
	if err := os.MkdirAll(filepath.Join(dir, indicesDir), 0o755); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	unlock, err := lockDir(filepath.Join(dir, lockFile))
	if err != nil {
		return nil, err
	}
	s.unlock = unlock
	if err := s.load(); err != nil {
		s.closeIndices()
		_ = unlock()
		return nil, err
	}
	s.clusterUUID = s.loadClusterUUID()
	s.log.Info("devstack store opened", "dir", dir, "indices", len(s.indices), "templates", s.templates.Len())
	return s, nil
}

// loadClusterUUID reads the cluster UUID kept in the directory, making one
// on first use, so GET / reports the same UUID across restarts.
func (s *Store) loadClusterUUID() string {
	p := filepath.Join(s.dir, "cluster_uuid")
	if b, err := os.ReadFile(p); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b))
	}
	id := escompat.RandomID(22)
	if err := writeFileAtomic(p, []byte(id+"\n")); err != nil {
		s.log.Warn("devstack: cannot keep the cluster UUID", "err", err)
	}
	return id
}

// SetFaults replaces the injected faults; safe at any time. Requests
// already past their fault decision are not affected.
func (s *Store) SetFaults(f escompat.Faults) { s.gate.SetFaults(f) }

// Close closes every index, once the requests using it are done, and
// releases the directory. Requests served after Close are answered 503.
// It is safe to call more than once.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.closing)
	s.mu.Unlock()
	err := s.closeIndices()
	if s.empty != nil {
		err = errors.Join(err, s.empty.Close())
	}
	if s.unlock != nil {
		err = errors.Join(err, s.unlock())
	}
	s.log.Info("devstack store closed", "dir", s.dir, "err", err)
	return err
}

func (s *Store) closeIndices() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for name, idx := range s.indices {
		if err := idx.close(); err != nil {
			errs = append(errs, fmt.Errorf("close index %s: %w", name, err))
		}
		delete(s.indices, name) // the map never holds a closed index
	}
	return errors.Join(errs...)
}

// load reads the templates and opens the indices found in the directory,
// removing what an interrupted creation or deletion left behind.
func (s *Store) load() error {
	ts, err := readTemplates(filepath.Join(s.dir, templatesFile))
	if err != nil {
		return err
	}
	s.templates = escompat.NewTemplates(ts, escompat.TemplatesOptions{Save: s.saveTemplates})
	entries, err := os.ReadDir(filepath.Join(s.dir, indicesDir))
	if err != nil {
		return fmt.Errorf("read indices: %w", err)
	}
	for _, e := range entries {
		path := filepath.Join(s.dir, indicesDir, e.Name())
		if !e.IsDir() {
			continue
		}
		if strings.HasPrefix(e.Name(), deletedPrefix) {
			if err := os.RemoveAll(path); err != nil {
				return fmt.Errorf("remove deleted index %s: %w", path, err)
			}
			continue
		}
		if _, err := os.Stat(filepath.Join(path, indexMetaFile)); errors.Is(err, os.ErrNotExist) {
			s.log.Warn("devstack: removing an index whose creation did not complete", "path", path)
			if err := os.RemoveAll(path); err != nil {
				return fmt.Errorf("remove incomplete index %s: %w", path, err)
			}
			continue
		}
		idx, err := openIndex(path, e.Name(), s.log)
		if err != nil {
			return err
		}
		s.indices[idx.name] = idx
	}
	return nil
}

// templateRecord is how an index template is kept in templates.json.
type templateRecord struct {
	Name string          `json:"name"`
	Body json.RawMessage `json:"body"`
}

func readTemplates(path string) ([]*escompat.IndexTemplate, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read templates: %w", err)
	}
	var recs []templateRecord
	if err := json.Unmarshal(b, &recs); err != nil {
		return nil, fmt.Errorf("read templates %s: %w", path, err)
	}
	out := make([]*escompat.IndexTemplate, 0, len(recs))
	for _, r := range recs {
		t, perr := escompat.ParseIndexTemplate(r.Name, r.Body)
		if perr != nil {
			return nil, fmt.Errorf("read template %s from %s: %w", r.Name, path, perr)
		}
		out = append(out, t)
	}
	return out, nil
}

// saveTemplates rewrites templates.json with all the templates.
func (s *Store) saveTemplates(all []*escompat.IndexTemplate) error {
	recs := make([]templateRecord, 0, len(all))
	for _, t := range all {
		recs = append(recs, templateRecord{Name: t.Name, Body: t.Body})
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Name < recs[j].Name })
	b, err := json.MarshalIndent(recs, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(s.dir, templatesFile), b)
}

// lookup returns the open index name, or nil.
func (s *Store) lookup(name string) *esIndex {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.indices[name]
}

// createIndex creates an index from the highest-priority matching template
// and the settings and mappings of a create-index request (either may be
// nil). It fails with resource_already_exists_exception when the index
// exists, unless existingOK, when it returns the existing index.
func (s *Store) createIndex(name string, settings, mappings json.RawMessage, existingOK bool) (*esIndex, *escompat.Error) {
	if err := escompat.ValidateIndexName(name); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, storeClosed()
	}
	if idx := s.indices[name]; idx != nil {
		if existingOK {
			return idx, nil
		}
		return nil, escompat.IndexExists(name, idx.uuid)
	}
	merged, m, err := s.templates.NewIndex(name, settings, mappings)
	if err != nil {
		return nil, err
	}
	meta := indexMeta{UUID: escompat.RandomID(22), Created: time.Now().UnixMilli(), Settings: merged}
	idx, cerr := createIndexDir(filepath.Join(s.dir, indicesDir, name), name, meta, m, s.log)
	if cerr != nil {
		s.log.Error("devstack: create index", "index", name, "err", cerr)
		return nil, escompat.InternalError(fmt.Errorf("create index [%s]: %w", name, cerr))
	}
	s.indices[name] = idx
	s.log.Info("devstack index created", "index", name)
	return idx, nil
}

// deleteIndices deletes the named indices: each is closed once the requests
// using it are done, then its directory is removed.
func (s *Store) deleteIndices(names []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, name := range names {
		idx := s.indices[name]
		if idx == nil {
			continue
		}
		delete(s.indices, name)
		if err := idx.close(); err != nil {
			errs = append(errs, fmt.Errorf("close index %s: %w", name, err))
		}
		// Rename first, so that a crash during removal leaves a directory
		// Open discards rather than a damaged index.
		gone := filepath.Join(s.dir, indicesDir, deletedPrefix+name+"-"+idx.uuid)
		if err := os.Rename(idx.dir, gone); err != nil {
			errs = append(errs, fmt.Errorf("delete index %s: %w", name, err))
			continue
		}
		if err := os.RemoveAll(gone); err != nil {
			errs = append(errs, fmt.Errorf("delete index %s: %w", name, err))
		}
		s.log.Info("devstack index deleted", "index", name)
	}
	return errors.Join(errs...)
}

// emptyIndex is an in-memory index with no document, searched when an
// expression resolves to no index, so that the response has the shape a
// search of nothing has.
func (s *Store) emptyIndex() (bleve.Index, error) {
	s.emptyOnce.Do(func() { s.empty, s.emptyErr = bleve.NewMemOnly(newIndexMapping()) })
	return s.empty, s.emptyErr
}

// generateID makes a 20-character URL-safe _id, like Elasticsearch's
// auto-generated ones: a time-ordered prefix (so ids stay unique across
// restarts) and random bytes.
func (s *Store) generateID() string {
	var b [15]byte
	now := uint64(time.Now().UnixMilli())
	seq := s.idSeq.Add(1)
	for i := 5; i >= 0; i-- { // 6 bytes of milliseconds
		b[i] = byte(now)
		now >>= 8
	}
	b[6], b[7], b[8] = byte(seq>>16), byte(seq>>8), byte(seq)
	r := rand.Uint64()
	for i := 9; i < 15; i++ {
		b[i] = byte(r)
		r >>= 8
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// writeFileAtomic replaces path with data: written to a temporary file,
// synced, renamed over path, and the directory synced.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// scorchConfig is the bleve (scorch) configuration of every index; see the
// package documentation for the reasons.
func scorchConfig() map[string]interface{} {
	return map[string]interface{}{
		// Each batch returns once written and synced: measured with
		// BenchmarkBulk, skipping that wait (unsafe_batch) gained nothing
		// worth losing acknowledged writes in a crash.
		"unsafe_batch":           false,
		"asyncErrorCallbackName": asyncErrorCallback,
	}
}

// asyncErrorCallback names, in scorch's registry, the callback through
// which bleve reports the errors of its background persister and merger;
// it logs them with the logger of the index's store.
const asyncErrorCallback = "sluice-devstack"

// asyncLoggers maps the path of each open bleve index to its logger.
var asyncLoggers sync.Map

func init() {
	// The registry is read when an index opens: it is written here only.
	scorch.RegistryAsyncErrorCallbacks[asyncErrorCallback] = func(err error, path string) {
		for p := path; p != "." && p != string(filepath.Separator); p = filepath.Dir(p) {
			if l, ok := asyncLoggers.Load(p); ok {
				l.(*slog.Logger).Error("devstack: bleve background error", "path", path, "err", err)
				return
			}
		}
		slog.Error("devstack: bleve background error", "path", path, "err", err)
	}
}
