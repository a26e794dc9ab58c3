package escompat

import (
	"net/http"
	"sync/atomic"
	"time"
)

// Faults are failures an Elasticsearch stand-in injects, for tests of
// clients' retries and backpressure. The zero value injects none.
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

// Normalized returns f with RequestStatus defaulted to 503 when requests
// are faulted.
func (f Faults) Normalized() Faults {
	if f.RequestFraction > 0 && f.RequestStatus == 0 {
		f.RequestStatus = http.StatusServiceUnavailable
	}
	return f
}

// RequestFault is the error a faulted request r is answered with:
// es_rejected_execution_exception for 429, unavailable_shards_exception
// otherwise.
func RequestFault(status int, r *http.Request) *Error {
	if status == http.StatusTooManyRequests {
		return NewError(status, "es_rejected_execution_exception",
			"rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, coordinating_operation_bytes=%d, max_coordinating_and_primary_bytes=107374182]",
			max(r.ContentLength, 0))
	}
	if status == 0 {
		status = http.StatusServiceUnavailable
	}
	return NewError(status, "unavailable_shards_exception",
		"[_na_][0] primary shard is not active Timeout: [1m], request: [%s %s]", r.Method, r.URL.Path)
}

// ClusterDown is the error of every request while Faults.Down is set.
func ClusterDown() *Error {
	return &Error{Status: http.StatusServiceUnavailable, Type: "cluster_block_exception",
		Reason: "blocked by: [SERVICE_UNAVAILABLE/2/no master];"}
}

// ItemRejected is the per-item 429 of a bulk operation rejected by an
// injected item fault.
func ItemRejected(it BulkItem) *Error {
	return &Error{Status: http.StatusTooManyRequests, Type: "es_rejected_execution_exception",
		Reason: "rejected execution of primary operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, primary_operation_bytes=" +
			itoa(len(it.Source)) + ", max_coordinating_and_primary_bytes=107374182]"}
}

// Gate is what every request to a stand-in passes before it is routed: the
// injected Faults (latency, a cluster that is down, whole-request faults),
// an optional check of the stand-in's own, and the request path. Set its
// exported fields before serving; SetFaults and Admit are safe for
// concurrent use. A Gate must not be copied once used.
type Gate struct {
	// Rand draws the fault decisions.
	Rand *Rand
	// Closing, once closed, cuts injected latency short: the stand-in is
	// closing and answers at once.
	Closing <-chan struct{}
	// Check, when set, runs after the Down fault and before the path is
	// read; a non-nil error it returns answers the request. It may set
	// headers through rs.
	Check func(rs *Responder, r *http.Request) *Error
	// Faulted, when set, is called for each request an injected fault (or
	// Down) answers.
	Faulted func()

	faults atomic.Pointer[Faults]
}

// SetFaults replaces the injected faults (normalized). Requests already
// past their fault decision are not affected.
func (g *Gate) SetFaults(f Faults) {
	f = f.Normalized()
	g.faults.Store(&f)
}

// Faults returns the faults in force; the zero Faults before any
// SetFaults.
func (g *Gate) Faults() Faults {
	if f := g.faults.Load(); f != nil {
		return *f
	}
	return Faults{}
}

// Admit waits out the injected latency, then answers the request itself
// when the cluster is Down, Check refuses it, its path holds a malformed
// escape, or a whole-request fault is drawn for it (never for GET / and
// HEAD /). Otherwise it returns the Responder and the path to route with,
// and ok. ok is false when the request was answered, or when the client
// went away during the latency: that request is not answered at all.
func (g *Gate) Admit(w http.ResponseWriter, r *http.Request) (rs *Responder, path Path, ok bool) {
	f := g.Faults()
	if f.Latency > 0 {
		t := time.NewTimer(f.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return nil, nil, false
		case <-g.Closing:
			t.Stop()
		}
	}
	rs = NewResponder(w, r)
	if f.Down {
		g.faulted()
		rs.Error(ClusterDown())
		return nil, nil, false
	}
	if g.Check != nil {
		if err := g.Check(rs, r); err != nil {
			rs.Error(err)
			return nil, nil, false
		}
	}
	segs, ok := SplitPath(r.URL)
	if !ok {
		rs.Error(InvalidEscape(r))
		return nil, nil, false
	}
	if len(segs) > 0 && g.Rand.Chance(f.RequestFraction) {
		g.faulted()
		rs.Error(RequestFault(f.RequestStatus, r))
		return nil, nil, false
	}
	return rs, segs, true
}

func (g *Gate) faulted() {
	if g.Faulted != nil {
		g.Faulted()
	}
}

// IndexFault is a failure of every write to one index, as Elasticsearch
// answers it per bulk item: the index's state refuses the document,
// whatever the document is.
type IndexFault int

const (
	// NoIndexFault writes normally.
	NoIndexFault IndexFault = iota
	// WriteBlock: index.blocks.write is set (an operator, or ILM's
	// read-only step): 403 cluster_block_exception.
	WriteBlock
	// FloodStage: the index has the read_only_allow_delete block a node
	// over the flood-stage disk watermark puts on it: 429
	// cluster_block_exception.
	FloodStage
	// Closed: the index is closed: 400 index_closed_exception.
	Closed
	// NoAutoCreate: the index does not exist and action.auto_create_index
	// does not allow creating it: 404 index_not_found_exception. An index
	// that exists is written normally.
	NoAutoCreate
	// ShardLimit: creating the index would exceed cluster.max_shards_per_node:
	// 400 validation_exception. An index that exists is written normally.
	ShardLimit
	// PipelineFails: the index's default_pipeline fails on every document,
	// as a fail processor does: 500, its error naming the processor.
	PipelineFails
	// PipelineMissing: the index's default_pipeline does not exist: 400
	// illegal_argument_exception.
	PipelineMissing
)

// IndexFaultError is the per-item error of a write to index under f, or
// nil when f lets it through. exists says whether the index exists.
func IndexFaultError(f IndexFault, index string, exists bool) *Error {
	switch f {
	case WriteBlock:
		return &Error{Status: http.StatusForbidden, Type: "cluster_block_exception",
			Reason: "index [" + index + "] blocked by: [FORBIDDEN/8/index write (api)];"}
	case FloodStage:
		return &Error{Status: http.StatusTooManyRequests, Type: "cluster_block_exception",
			Reason: "index [" + index + "] blocked by: [TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage watermark, index has read-only-allow-delete block];"}
	case Closed:
		return &Error{Status: http.StatusBadRequest, Type: "index_closed_exception", Reason: "closed",
			Index: index, IndexUUID: "_na_"}
	case NoAutoCreate:
		if exists {
			return nil
		}
		e := IndexNotFound(index)
		return e
	case ShardLimit:
		if exists {
			return nil
		}
		return &Error{Status: http.StatusBadRequest, Type: "validation_exception",
			Reason: "Validation Failed: 1: this action would add [2] shards, but this cluster currently has [1000]/[1000] maximum normal shards open;"}
	case PipelineFails:
		return &Error{Status: http.StatusInternalServerError, Type: "fail_processor_exception",
			Reason: "pipeline refuses the document",
			Extra:  obj{{"header", obj{{"processor_type", "fail"}, {"pipeline_origin", []string{"logs-broken"}}}}}}
	case PipelineMissing:
		return IllegalArgument("pipeline with id [logs-broken] does not exist")
	}
	return nil
}
