package esfake

import (
	"path"
	"sync"

	"github.com/sluicelogs/sluice/internal/escompat"
)

// IndexFault is a failure of every write to an index (see
// escompat.IndexFault): a write block, the flood-stage block, a closed
// index, auto-creation refused, the shard limit, a failing or missing
// default pipeline.
type IndexFault = escompat.IndexFault

// The index faults.
const (
	NoIndexFault    = escompat.NoIndexFault
	WriteBlock      = escompat.WriteBlock
	FloodStage      = escompat.FloodStage
	Closed          = escompat.Closed
	NoAutoCreate    = escompat.NoAutoCreate
	ShardLimit      = escompat.ShardLimit
	PipelineFails   = escompat.PipelineFails
	PipelineMissing = escompat.PipelineMissing
)

// indexFaults holds the index faults by index name pattern.
type indexFaults struct {
	mu       sync.RWMutex
	patterns map[string]IndexFault
}

// SetIndexFault makes bulk writes to the indices matching pattern (a
// path.Match pattern: '*' wildcards) fail as f does, until it is set to
// NoIndexFault. Faults of several matching patterns: the one set last
// for the longest pattern wins. Safe at any time.
func (s *Server) SetIndexFault(pattern string, f IndexFault) {
	s.indexFaults.mu.Lock()
	defer s.indexFaults.mu.Unlock()
	if s.indexFaults.patterns == nil {
		s.indexFaults.patterns = map[string]IndexFault{}
	}
	if f == NoIndexFault {
		delete(s.indexFaults.patterns, pattern)
		return
	}
	s.indexFaults.patterns[pattern] = f
}

// indexFaultError is the error a bulk write to index gets from the index
// faults, or nil.
func (s *Server) indexFaultError(index string, exists bool) *escompat.Error {
	s.indexFaults.mu.RLock()
	defer s.indexFaults.mu.RUnlock()
	best, bestLen := NoIndexFault, -1
	for p, f := range s.indexFaults.patterns {
		if ok, _ := path.Match(p, index); ok && len(p) > bestLen {
			best, bestLen = f, len(p)
		}
	}
	if best == NoIndexFault {
		return nil
	}
	if e := escompat.IndexFaultError(best, index, exists); e != nil {
		s.stats.itemRejected.Add(1)
		return e
	}
	return nil
}
