package escompat

import (
	"net/http"
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
