package indexer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// bulkFilter asks Elasticsearch for only what the indexer reads in a bulk
// response: a fraction of the bytes to parse.
var bulkFilter = []string{"errors", "items.*.status", "items.*.error"}

// esError is an Elasticsearch error object.
type esError struct {
	Type     string   `json:"type"`
	Reason   string   `json:"reason"`
	CausedBy *esError `json:"caused_by,omitempty"`
	// Header is set on errors raised by an ingest processor.
	Header struct {
		ProcessorType  json.RawMessage `json:"processor_type"`
		PipelineOrigin json.RawMessage `json:"pipeline_origin"`
	} `json:"header"`
}

func (e *esError) Error() string {
	if e == nil {
		return "no error detail"
	}
	s := e.Type + ": " + e.Reason
	if e.CausedBy != nil && e.CausedBy.Reason != "" {
		s += " (caused by " + e.CausedBy.Type + ": " + e.CausedBy.Reason + ")"
	}
	return s
}

// itemResult is one item of a bulk response.
type itemResult struct {
	Status int      `json:"status"`
	Error  *esError `json:"error"`
}

// errBadResponse is returned (wrapped) by parseBulkResponse for a response
// that is not a bulk response for the request sent.
var errBadResponse = errors.New("unexpected bulk response")

// parseBulkResponse reads a bulk response to a request of n items. allOK
// is true when Elasticsearch reported no item error (results is then nil:
// the items are not parsed at all); otherwise results holds one result per
// item, in request order.
func parseBulkResponse(body []byte, n int) (allOK bool, results []itemResult, err error) {
	var head struct {
		Errors *bool           `json:"errors"`
		Items  json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(body, &head); err != nil {
		return false, nil, fmt.Errorf("%w: %v", errBadResponse, err)
	}
	if head.Errors == nil {
		return false, nil, fmt.Errorf("%w: no errors flag", errBadResponse)
	}
	if !*head.Errors {
		return true, nil, nil
	}
	var items []map[string]itemResult
	if err := json.Unmarshal(head.Items, &items); err != nil {
		return false, nil, fmt.Errorf("%w: items: %v", errBadResponse, err)
	}
	if len(items) != n {
		return false, nil, fmt.Errorf("%w: %d items for %d actions", errBadResponse, len(items), n)
	}
	results = make([]itemResult, n)
	for i, it := range items {
		if len(it) != 1 {
			return false, nil, fmt.Errorf("%w: item %d has %d actions", errBadResponse, i, len(it))
		}
		for _, r := range it {
			results[i] = r
		}
	}
	return false, results, nil
}

// parseErrorBody reads the error of a failed whole request, if it has the
// Elasticsearch shape ({"error": {...}, "status": n}).
func parseErrorBody(body []byte) *esError {
	var e struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || len(e.Error) == 0 {
		return nil
	}
	var ee esError
	if json.Unmarshal(e.Error, &ee) == nil && ee.Type != "" {
		return &ee
	}
	var s string
	if json.Unmarshal(e.Error, &s) == nil {
		return &esError{Type: "error", Reason: s}
	}
	return nil
}

// Item outcomes, by how the indexer handles them.
const (
	outcomeStored    = iota // 200, 201: stored
	outcomeDuplicate        // 409 on create: already stored
	outcomeRetry            // not the document's fault: send again later (inline, or parked with its index)
	outcomeRejected         // 400 and other client errors about the document: rescue once, then dead-letter
	outcomeRefused          // the index's ingest pipeline refused the document: dead-letter at once
)

// Failure classes: why Elasticsearch did not store a document, when it is
// not the document's fault, and so how it is retried (see giveUpDefaults).
// They are the reason label of the retry and dead-letter metrics and the
// reason of the dead letters written when the indexer gives up.
const (
	classThrottled   = "too_many_requests" // 429 without a block: the cluster is busy
	classServerError = "server_error"      // 5xx
	classBlocked     = "blocked"           // cluster_block_exception: a write block (ILM read-only, an operator), the flood-stage disk block
	classForbidden   = "forbidden"         // 401, 403: credentials or privileges
	classMissing     = "index_missing"     // 404: the index does not exist and may not be created (action.auto_create_index)
	classClosed      = "index_closed"      // index_closed_exception
	classIndexConfig = "index_config"      // the index cannot be created or written as configured: the shard limit, a missing default pipeline
	classOther       = "other"             // 408 and statuses that say nothing about the document
	classPipeline    = "pipeline"          // the ingest pipeline failed on this document (outcomeRefused)
	classRequest     = "request"           // the whole request failed (no response, or a status for all of it)
)

// inlineClasses are retried by the worker that holds the batch for a few
// rounds before they are parked: they are usually brief and cluster-wide
// (a full write queue), and most succeed on the next round.
func inlineClass(class string) bool {
	return class == classThrottled || class == classServerError || class == classOther
}

// classify maps a whole request's status to an outcome and, for retries,
// the class. Item results go through classifyItem, which also reads the
// error.
func classify(status int) (outcome int, class string) {
	return classifyItem(status, nil)
}

// classifyItem maps a bulk item's status and error to an outcome and, for
// retries and refusals, the failure class. The error type comes first: a
// block is answered 403 (index.blocks.write) or 429 (flood stage), a closed
// index 400, and each is the index's state, not the document's fault.
func classifyItem(status int, e *esError) (outcome int, class string) {
	switch {
	case status == 200 || status == 201:
		return outcomeStored, ""
	case status == 409:
		return outcomeDuplicate, ""
	}
	switch {
	case e.has("cluster_block_exception"):
		return outcomeRetry, classBlocked
	case e.has("index_closed_exception"):
		return outcomeRetry, classClosed
	case e.pipelineMissing():
		return outcomeRetry, classIndexConfig
	case e.fromPipeline():
		return outcomeRefused, classPipeline
	case status == 429:
		return outcomeRetry, classThrottled
	case status >= 500:
		return outcomeRetry, classServerError
	case status == 401 || status == 403:
		return outcomeRetry, classForbidden
	case status == 404:
		// An index that cannot be created (action.auto_create_index off,
		// or deleted while writing).
		return outcomeRetry, classMissing
	case e.has("validation_exception") && strings.Contains(e.Reason, "shards"):
		// "this action would add [2] shards, but this cluster currently
		// has [1000]/[1000] maximum normal shards open": creating the index
		// failed, every document for it would.
		return outcomeRetry, classIndexConfig
	case status == 408 || status < 400:
		return outcomeRetry, classOther
	}
	return outcomeRejected, ""
}

// has reports whether e or one of its causes is of type typ.
func (e *esError) has(typ string) bool {
	for ; e != nil; e = e.CausedBy {
		if e.Type == typ {
			return true
		}
	}
	return false
}

// fromPipeline reports whether an ingest processor raised e: Elasticsearch
// then names the processor (and the pipeline) in the error's header.
func (e *esError) fromPipeline() bool {
	for ; e != nil; e = e.CausedBy {
		if e.Header.ProcessorType != nil || e.Header.PipelineOrigin != nil || strings.HasSuffix(e.Type, "processor_exception") {
			return true
		}
	}
	return false
}

// pipelineMissing reports whether e says that the index's (default or
// final) pipeline does not exist: the index is misconfigured, every
// document for it fails alike.
func (e *esError) pipelineMissing() bool {
	for ; e != nil; e = e.CausedBy {
		if strings.HasPrefix(e.Reason, "pipeline with id [") && strings.HasSuffix(e.Reason, "] does not exist") {
			return true
		}
	}
	return false
}

// fieldRefRE finds the field paths an Elasticsearch mapping error names:
// "failed to parse field [a.b] of type [long]", "object mapping for [a]
// tried to parse field [a] as object", "Could not dynamically add mapping
// for field [a.b]. Existing mapping for [a] must be of type object",
// "mapper [a] cannot be changed from type [long] to [keyword]", "can't
// merge a non object mapping [a] with an object mapping". The word before
// the bracket tells a path from a type ("of type [long]") or a position
// ("[1:27]").
var fieldRefRE = regexp.MustCompile(`(?i)(?:field|for|mapping|mapper)\s+\[([^\]\[]+)\]`)

// offendingFields returns the field paths to move out of a rejected
// document: those the error (and its causes) names, or moveAll when it
// names none or the problem is the number of fields.
func offendingFields(e *esError) []string {
	var out []string
	for ; e != nil; e = e.CausedBy {
		if strings.Contains(e.Reason, "Limit of total fields") || strings.Contains(e.Reason, "Limit of mapping depth") {
			return []string{moveAll}
		}
		for _, m := range fieldRefRE.FindAllStringSubmatch(e.Reason, -1) {
			out = append(out, m[1])
		}
	}
	if len(out) == 0 {
		return []string{moveAll}
	}
	return out
}

// actionIndex returns the _index of a bulk action line made by appendAction.
func actionIndex(action []byte) string {
	return string(actionIndexBytes(action))
}

// actionIndexBytes is actionIndex without the copy: a part of action.
func actionIndexBytes(action []byte) []byte {
	const key = `"_index":"`
	i := bytes.Index(action, []byte(key))
	if i < 0 {
		return nil
	}
	rest := action[i+len(key):]
	if j := bytes.IndexByte(rest, '"'); j >= 0 {
		return rest[:j]
	}
	return nil
}
