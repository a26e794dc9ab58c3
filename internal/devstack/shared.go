package devstack

// Token frequencies shared by documents.
//
// bleve's documents hand scorch each field's terms as a map (index.TokenFrequencies), one map per
// field per document: for a keyword, a map of one term. Most keyword values repeat from document
// to document (a namespace, a level, a pod), and so does the set of fields a document has; the
// maps of those are built once and shared, which halves the allocations of building a document.
//
// Scorch only reads a field's map, with one exception: when a document has several fields of
// one name (an array, or a.b given both dotted and nested), it merges the others into the map of
// the first, changing it and its TokenFreqs (index.TokenFrequencies.MergeAll; it changes the
// others' term locations, which shared maps do not have). docBuilder therefore makes the first
// field of a repeated name private (docBuilder.single).

import (
	"bytes"
	"sync"
	"sync/atomic"

	index "github.com/blevesearch/bleve_index_api"
)

const (
	// maxSharedPerField is the most values of a field whose maps are shared: past it (a
	// field of unique values, a message or an id), documents build their own.
	maxSharedPerField = 256
	// maxSharedPerSet bounds the shared maps of a field set (an index's mapping), about 300
	// bytes each: 2.5 MB an index at most, held while the index is open.
	maxSharedPerSet = 8192
)

// sharedTerms holds the shared maps of one field's values (or of _field_names' sets of paths).
// It is safe for concurrent use.
type sharedTerms struct {
	budget *atomic.Int64 // of the field set
	full   atomic.Bool   // no more maps: documents build their own
	mu     sync.RWMutex
	m      map[string]index.TokenFrequencies
}

func newSharedTerms(budget *atomic.Int64) *sharedTerms {
	return &sharedTerms{budget: budget, m: make(map[string]index.TokenFrequencies)}
}

// get returns the shared map of key, making it with terms (each of frequency 1, no location)
// on first use; nil when s is nil or full. key and terms are only read during the call.
func (s *sharedTerms) get(key []byte, terms func(add func(term []byte))) index.TokenFrequencies {
	if s == nil {
		return nil
	}
	s.mu.RLock()
	tfs := s.m[string(key)]
	s.mu.RUnlock()
	if tfs != nil || s.full.Load() {
		return tfs
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if tfs := s.m[string(key)]; tfs != nil {
		return tfs
	}
	if len(s.m) >= maxSharedPerField || s.budget.Add(-1) < 0 {
		s.full.Store(true)
		return nil
	}
	tfs = make(index.TokenFrequencies)
	terms(func(term []byte) {
		t := bytes.Clone(term)
		tf := &index.TokenFreq{Term: t}
		tf.SetFrequency(1)
		tfs[string(t)] = tf
	})
	s.m[string(key)] = tfs
	return tfs
}
