package devstack

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/index/scorch"
	index_api "github.com/blevesearch/bleve_index_api"

	"github.com/sluicelogs/sluice/internal/escompat"
)

// Stored fields the store adds to every bleve document, beside those of
// buildDocument. Their names are Elasticsearch metadata field names, which
// no document or mapping may use.
const (
	versionField = "_version"
	seqNoField   = "_seq_no"
)

// seqNoKey is the bleve internal key holding an index's last sequence
// number; it is written in the same batch as the documents.
var seqNoKey = []byte("devstack_seq_no")

// indexMeta is what index.json holds beside the bleve index.
type indexMeta struct {
	UUID     string          `json:"uuid"`
	Created  int64           `json:"creation_date"` // Unix milliseconds
	Settings json.RawMessage `json:"settings,omitempty"`
	Mappings json.RawMessage `json:"mappings,omitempty"` // as GET _mapping shows it
}

// esIndex is one Elasticsearch index: a bleve index and its mapping.
type esIndex struct {
	name     string
	uuid     string
	created  time.Time
	dir      string
	settings json.RawMessage
	log      *slog.Logger
	bi       bleve.Index

	// life is read-held by every use of bi and write-held to close it, so
	// a deleted index is closed once the requests using it are done.
	life   sync.RWMutex
	closed bool // guarded by life

	// mu serialises writes: the mapping, the ids, the sequence number and
	// the application of batches.
	mu      sync.Mutex
	mapping *escompat.Mapping
	ids     map[string]int64 // _id -> _version; 0 when only bleve knows it (after Open)
	seqNo   int64            // the next _seq_no
	// inflight maps the _ids of the batches being applied to the last
	// batch touching each.
	inflight map[string]*ticket

	fields atomic.Pointer[fieldSet] // the mapping as buildDocument and searches see it
}

// fieldSet is an immutable snapshot of an index's mapping: replaced, never
// modified, when the mapping gains fields.
type fieldSet struct {
	infos   map[string]fieldInfo
	entries map[string]*fieldEntry // infos as buildDocument reads them
	leaves  []string               // indexed leaf paths, sorted

	names  *sharedTerms // the shared maps of _field_names (see shared.go)
	budget atomic.Int64 // of shared maps
}

func newFieldSet(m *escompat.Mapping) *fieldSet {
	all := m.FieldInfos()
	infos := make(map[string]fieldInfo, len(all))
	for path, fi := range all {
		if !fi.Enabled || !fi.Index || fi.MultiOf != "" || !indexableDateFormat(fi) {
			// Not indexed: disabled, "index": false, runtime fields,
			// multi-fields, which buildDocument does not build, and dates in
			// formats it does not parse. Their values stay in _source.
			continue
		}
		infos[path] = fieldInfo{Type: fi.Type, IgnoreAbove: fi.IgnoreAbove}
	}
	return fieldSetOf(infos)
}

// fieldSetOf is the field set of the indexed fields infos.
func fieldSetOf(infos map[string]fieldInfo) *fieldSet {
	fs := &fieldSet{infos: infos, entries: make(map[string]*fieldEntry, len(infos))}
	fs.budget.Store(maxSharedPerSet)
	fs.names = newSharedTerms(&fs.budget)
	for path, fi := range infos {
		e := newFieldEntry(path, fi)
		switch e.kind {
		case kindKeyword, kindBoolean:
			e.shared = newSharedTerms(&fs.budget)
		}
		fs.entries[path] = e
		if kindOf(fi.Type) != kindObject {
			fs.leaves = append(fs.leaves, path)
		}
	}
	sort.Strings(fs.leaves)
	return fs
}

func (fs *fieldSet) sharedNames() *sharedTerms { return fs.names }

// lookup is the fieldLookup buildDocument uses; it allocates nothing.
func (fs *fieldSet) lookup(path []byte) (*fieldEntry, bool) {
	e, ok := fs.entries[string(path)]
	return e, ok
}

// isoDateFormats are the date formats whose values buildDocument parses:
// ISO 8601 dates and times, and epoch milliseconds.
var isoDateFormats = map[string]bool{
	"strict_date_optional_time": true, "date_optional_time": true, "strict_date_optional_time_nanos": true,
	"strict_date_time": true, "date_time": true, "strict_date_time_no_millis": true, "date_time_no_millis": true,
	"strict_date": true, "date": true, "yyyy-MM-dd": true, "iso8601": true, "epoch_millis": true,
}

// indexableDateFormat reports whether the values of a field can be indexed
// as buildDocument parses dates: true for fields other than dates, and for
// dates whose format ("||"-separated) only names isoDateFormats.
func indexableDateFormat(fi escompat.FieldInfo) bool {
	if fi.Type != "date" && fi.Type != "date_nanos" || fi.Format == "" {
		return true
	}
	for _, f := range strings.Split(fi.Format, "||") {
		if !isoDateFormats[strings.TrimSpace(f)] {
			return false
		}
	}
	return true
}

// field is the lookup buildDocument and searches use.
func (fs *fieldSet) field(path string) (fieldInfo, bool) {
	fi, ok := fs.infos[path]
	return fi, ok
}

// createIndexDir creates the bleve index of a new index in dir, then its
// index.json, which marks the creation complete.
func createIndexDir(dir, name string, meta indexMeta, m *escompat.Mapping, log *slog.Logger) (*esIndex, error) {
	if err := os.RemoveAll(dir); err != nil { // a leftover of an interrupted creation
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	asyncLoggers.Store(filepath.Join(dir, bleveDir), log)
	bi, err := bleve.NewUsing(filepath.Join(dir, bleveDir), newIndexMapping(), scorch.Name, scorch.Name, scorchConfig())
	if err != nil {
		asyncLoggers.Delete(filepath.Join(dir, bleveDir))
		_ = os.RemoveAll(dir)
		return nil, err
	}
	idx := &esIndex{
		name: name, uuid: meta.UUID, created: time.UnixMilli(meta.Created), dir: dir,
		settings: meta.Settings, log: log, bi: bi, mapping: m, ids: make(map[string]int64),
		inflight: make(map[string]*ticket),
	}
	idx.fields.Store(newFieldSet(m))
	if err := idx.saveMeta(); err != nil {
		_ = bi.Close()
		asyncLoggers.Delete(filepath.Join(dir, bleveDir))
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return idx, nil
}

// openIndex opens an index a previous Store left in dir.
func openIndex(dir, name string, log *slog.Logger) (*esIndex, error) {
	b, err := os.ReadFile(filepath.Join(dir, indexMetaFile))
	if err != nil {
		return nil, fmt.Errorf("open index %s: %w", name, err)
	}
	var meta indexMeta
	if err := json.Unmarshal(b, &meta); err != nil {
		return nil, fmt.Errorf("open index %s: read %s: %w", name, indexMetaFile, err)
	}
	m, merr := escompat.NewMapping(meta.Settings, meta.Mappings)
	if merr != nil {
		return nil, fmt.Errorf("open index %s: mapping: %w", name, merr)
	}
	asyncLoggers.Store(filepath.Join(dir, bleveDir), log)
	bi, err := bleve.OpenUsing(filepath.Join(dir, bleveDir), scorchConfig())
	if err != nil {
		asyncLoggers.Delete(filepath.Join(dir, bleveDir))
		return nil, fmt.Errorf("open index %s: %w", name, err)
	}
	idx := &esIndex{
		name: name, uuid: meta.UUID, created: time.UnixMilli(meta.Created), dir: dir,
		settings: meta.Settings, log: log, bi: bi, mapping: m, inflight: make(map[string]*ticket),
	}
	idx.fields.Store(newFieldSet(m))
	if err := idx.loadIDs(); err != nil {
		_ = bi.Close()
		asyncLoggers.Delete(filepath.Join(dir, bleveDir))
		return nil, fmt.Errorf("open index %s: %w", name, err)
	}
	return idx, nil
}

// loadIDs rebuilds the set of _ids from the bleve index, and the sequence
// number from its internal key.
func (idx *esIndex) loadIDs() error {
	adv, err := idx.bi.Advanced()
	if err != nil {
		return err
	}
	r, err := adv.Reader()
	if err != nil {
		return err
	}
	defer r.Close()
	n, err := r.DocCount()
	if err != nil {
		return err
	}
	idx.ids = make(map[string]int64, n)
	dr, err := r.DocIDReaderAll()
	if err != nil {
		return err
	}
	defer dr.Close()
	for {
		iid, err := dr.Next()
		if err != nil {
			return err
		}
		if iid == nil {
			break
		}
		id, err := r.ExternalID(iid)
		if err != nil {
			return err
		}
		idx.ids[id] = 0
	}
	if v, err := r.GetInternal(seqNoKey); err == nil && len(v) > 0 {
		if n, perr := strconv.ParseInt(string(v), 10, 64); perr == nil {
			idx.seqNo = n
		}
	}
	return nil
}

// saveMeta rewrites index.json with the current mapping; idx.mu is held or
// the index is not yet shared.
func (idx *esIndex) saveMeta() error {
	mappings, err := idx.mapping.MarshalJSON()
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(indexMeta{
		UUID: idx.uuid, Created: idx.created.UnixMilli(), Settings: idx.settings, Mappings: mappings,
	}, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(idx.dir, indexMetaFile), b)
}

// acquire read-locks the index for one use of its bleve index; false when
// the index has been closed (deleted) meanwhile.
func (idx *esIndex) acquire() bool {
	idx.life.RLock()
	if idx.closed {
		idx.life.RUnlock()
		return false
	}
	return true
}

func (idx *esIndex) release() { idx.life.RUnlock() }

// close waits for the requests using the index, records its last sequence
// number and closes the bleve index.
func (idx *esIndex) close() error {
	idx.life.Lock()
	defer idx.life.Unlock()
	if idx.closed {
		return nil
	}
	idx.closed = true
	// No write is under way (each holds life), but the batches of
	// concurrent writes may have recorded their sequence numbers out of
	// order.
	err := idx.bi.SetInternal(seqNoKey, []byte(strconv.FormatInt(idx.seqNo, 10)))
	err = errors.Join(err, idx.bi.Close())
	asyncLoggers.Delete(filepath.Join(idx.dir, bleveDir))
	return err
}

// document reads a stored document: its _source, _version and _seq_no.
// found is false when the index has no document of that _id.
func (idx *esIndex) document(id string) (source []byte, version, seqNo int64, found bool, err error) {
	d, err := idx.bi.Document(id)
	if err != nil || d == nil {
		return nil, 0, 0, false, err
	}
	d.VisitFields(func(f index_api.Field) {
		switch f.Name() {
		case sourceField:
			source = append([]byte(nil), f.Value()...)
		case versionField, seqNoField:
			if nf, ok := f.(index_api.NumericField); ok {
				if v, err := nf.Number(); err == nil {
					if f.Name() == versionField {
						version = int64(v)
					} else {
						seqNo = int64(v)
					}
				}
			}
		}
	})
	if version == 0 {
		version = 1
	}
	return source, version, seqNo, true, nil
}

// storeBytes is the size of the index's files.
func (idx *esIndex) storeBytes() int64 {
	var n int64
	_ = filepath.WalkDir(idx.dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// docCount is the number of documents bleve holds.
func (idx *esIndex) docCount() int64 {
	n, err := idx.bi.DocCount()
	if err != nil {
		return 0
	}
	return int64(n)
}
