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
	outcomeRetry            // 429, 5xx and statuses that say nothing about the document: send again later
	outcomeRejected         // 400 and other client errors about the document: rescue once, then dead-letter
)

// classify maps an item status to an outcome and, for retries, the
// reason label.
func classify(status int) (outcome int, reason string) {
	switch {
	case status == 200 || status == 201:
		return outcomeStored, ""
	case status == 409:
		return outcomeDuplicate, ""
	case status == 429:
		return outcomeRetry, "too_many_requests"
	case status >= 500:
		return outcomeRetry, "server_error"
	case status == 401 || status == 403:
		// Credentials or privileges: an operator fixes them; the document
		// is not at fault.
		return outcomeRetry, "auth"
	case status == 404:
		// An index that cannot be created (action.auto_create_index off,
		// or deleted while writing): not the document's fault either.
		return outcomeRetry, "not_found"
	case status == 408 || status < 400:
		return outcomeRetry, "other"
	}
	return outcomeRejected, ""
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
	const key = `"_index":"`
	i := bytes.Index(action, []byte(key))
	if i < 0 {
		return ""
	}
	rest := action[i+len(key):]
	if j := bytes.IndexByte(rest, '"'); j >= 0 {
		return string(rest[:j])
	}
	return ""
}
