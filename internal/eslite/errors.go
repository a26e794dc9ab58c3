package eslite

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"time"
)

// esError is an Elasticsearch error: the "error" object of a failed request
// or of a bulk item, worded as Elasticsearch 8 words it.
type esError struct {
	Type      string         `json:"type"`
	Reason    string         `json:"reason"`
	IndexUUID string         `json:"index_uuid,omitempty"`
	Shard     string         `json:"shard,omitempty"`
	Index     string         `json:"index,omitempty"`
	ResType   string         `json:"resource.type,omitempty"`
	ResID     string         `json:"resource.id,omitempty"`
	Header    map[string]any `json:"header,omitempty"`
	CausedBy  *esError       `json:"caused_by,omitempty"`
	Status    int            `json:"-"`
}

func (e *esError) Error() string {
	if e.CausedBy != nil {
		return e.Type + ": " + e.Reason + " (caused by " + e.CausedBy.Error() + ")"
	}
	return e.Type + ": " + e.Reason
}

// response is the body of a request that failed with e.
func (e *esError) response() any {
	root := *e
	root.CausedBy = nil
	type full struct {
		RootCause []*esError `json:"root_cause"`
		*esError
	}
	return struct {
		Error  full `json:"error"`
		Status int  `json:"status"`
	}{full{[]*esError{&root}, e}, e.Status}
}

func newErr(status int, typ, format string, args ...any) *esError {
	return &esError{Status: status, Type: typ, Reason: fmt.Sprintf(format, args...)}
}

func illegalArg(format string, args ...any) *esError {
	return newErr(http.StatusBadRequest, "illegal_argument_exception", format, args...)
}

func parsingErr(format string, args ...any) *esError {
	return newErr(http.StatusBadRequest, "parsing_exception", format, args...)
}

func internalErr(err error) *esError {
	return newErr(http.StatusInternalServerError, "exception", "%v", err)
}

func indexNotFound(name string) *esError {
	return &esError{Status: http.StatusNotFound, Type: "index_not_found_exception", Reason: "no such index [" + name + "]",
		IndexUUID: "_na_", Index: name, ResType: "index_or_alias", ResID: name}
}

func indexExists(name, uuid string) *esError {
	return &esError{Status: http.StatusBadRequest, Type: "resource_already_exists_exception",
		Reason: "index [" + name + "/" + uuid + "] already exists", IndexUUID: uuid, Index: name}
}

func versionConflict(index, uuid, id string, version int64) *esError {
	return &esError{Status: http.StatusConflict, Type: "version_conflict_engine_exception",
		Reason:    "[" + id + "]: version conflict, document already exists (current version [" + strconv.FormatInt(version, 10) + "])",
		IndexUUID: uuid, Shard: "0", Index: index}
}

// docErr is a document_parsing_exception located at byte off of src, as
// Elasticsearch locates it: [line:column].
func docErr(src []byte, off int, format string, args ...any) *esError {
	line, start := 1, 0
	for i := 0; i < off && i < len(src); i++ {
		if src[i] == '\n' {
			line, start = line+1, i+1
		}
	}
	return newErr(http.StatusBadRequest, "document_parsing_exception", "[%d:%d] %s", line, off-start+1, fmt.Sprintf(format, args...))
}

// location is the [line:column] Elasticsearch 8 puts before the reason of
// a document's errors, which OpenSearch does not.
var location = regexp.MustCompile(`^\[\d+:\d+\] `)

// openSearchItemError is e as OpenSearch 2.x words it.
func openSearchItemError(e *esError) *esError {
	if e == nil {
		return nil
	}
	o := *e
	if o.Type == "document_parsing_exception" {
		o.Type = "mapper_parsing_exception"
	}
	o.Reason = location.ReplaceAllString(o.Reason, "")
	o.CausedBy = openSearchItemError(e.CausedBy)
	return &o
}

// Faults are failures the store injects, for tests of clients' retries and
// backpressure. The zero value injects none.
type Faults struct {
	// RequestStatus is the status of faulted whole requests: 429
	// (es_rejected_execution_exception) or 503, the default
	// (unavailable_shards_exception).
	RequestStatus int
	// RequestFraction is the fraction of requests, on every endpoint but
	// GET / and HEAD /, answered with RequestStatus.
	RequestFraction float64
	// ItemFraction is the fraction of bulk items answered with a per-item
	// 429 es_rejected_execution_exception.
	ItemFraction float64
	// Latency is added before answering each request.
	Latency time.Duration
	// Down answers every request, GET / included, 503
	// cluster_block_exception, as a cluster without a master does.
	Down bool
}

func requestFault(status int, r *http.Request) *esError {
	if status == http.StatusTooManyRequests {
		return newErr(status, "es_rejected_execution_exception",
			"rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, coordinating_operation_bytes=%d, max_coordinating_and_primary_bytes=107374182]",
			max(r.ContentLength, 0))
	}
	return newErr(http.StatusServiceUnavailable, "unavailable_shards_exception",
		"[_na_][0] primary shard is not active Timeout: [1m], request: [%s %s]", r.Method, r.URL.Path)
}

func itemRejected(size int) *esError {
	return newErr(http.StatusTooManyRequests, "es_rejected_execution_exception",
		"rejected execution of primary operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, primary_operation_bytes=%d, max_coordinating_and_primary_bytes=107374182]", size)
}

// IndexFault is a failure of every write to an index, as Elasticsearch
// answers it per bulk item when the index's state refuses documents.
type IndexFault int

// The index faults. NoAutoCreate and ShardLimit refuse only to create an
// index: one that exists is written.
const (
	NoIndexFault    IndexFault = iota // writes normally
	WriteBlock                        // index.blocks.write: 403 cluster_block_exception
	FloodStage                        // over the flood-stage disk watermark: 429 cluster_block_exception
	Closed                            // a closed index: 400 index_closed_exception
	NoAutoCreate                      // action.auto_create_index refuses: 404 index_not_found_exception
	ShardLimit                        // over cluster.max_shards_per_node: 400 validation_exception
	PipelineFails                     // the default pipeline's fail processor: 500 fail_processor_exception
	PipelineMissing                   // the default pipeline does not exist: 400 illegal_argument_exception
)

// error is the per-item error of a write to index under f, or nil.
func (f IndexFault) error(index string, exists bool) *esError {
	switch f {
	case WriteBlock:
		return newErr(http.StatusForbidden, "cluster_block_exception", "index [%s] blocked by: [FORBIDDEN/8/index write (api)];", index)
	case FloodStage:
		return newErr(http.StatusTooManyRequests, "cluster_block_exception",
			"index [%s] blocked by: [TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage watermark, index has read-only-allow-delete block];", index)
	case Closed:
		return &esError{Status: http.StatusBadRequest, Type: "index_closed_exception", Reason: "closed", IndexUUID: "_na_", Index: index}
	case NoAutoCreate:
		if !exists {
			return indexNotFound(index)
		}
	case ShardLimit:
		if !exists {
			return newErr(http.StatusBadRequest, "validation_exception",
				"Validation Failed: 1: this action would add [2] shards, but this cluster currently has [1000]/[1000] maximum normal shards open;")
		}
	case PipelineFails:
		e := newErr(http.StatusInternalServerError, "fail_processor_exception", "pipeline refuses the document")
		e.Header = map[string]any{"processor_type": "fail", "pipeline_origin": []string{"logs-broken"}}
		return e
	case PipelineMissing:
		return illegalArg("pipeline with id [logs-broken] does not exist")
	}
	return nil
}
