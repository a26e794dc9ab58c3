package escompat

import (
	"fmt"
	"net/http"
	"strings"
)

// Error is an Elasticsearch error as it appears in a response: the "error"
// object of a whole-request failure, or the "error" of a bulk item. Type and
// Reason are worded as Elasticsearch 8 words them; Status is the HTTP status
// (or bulk item status) the error answers with.
//
// ParseBulk, ParseDocument, NewMapping and Mapping.Check return *Error so a
// caller serving the Elasticsearch API can answer with it unchanged.
type Error struct {
	Status   int    // HTTP or bulk item status, e.g. 400
	Type     string // e.g. "document_parsing_exception"
	Reason   string // human-readable, with the field in square brackets
	CausedBy *Error // the underlying cause, if Elasticsearch reports one

	// Index, IndexUUID and Shard are set for errors Elasticsearch raises on a
	// shard (version conflicts) or about an index (index_not_found_exception).
	Index     string
	IndexUUID string
	Shard     string

	// Extra holds further fields of the error object, written after the
	// ones above, e.g. "resource.id" or "header"; nil when there are none.
	Extra Ordered
}

// Error implements error.
func (e *Error) Error() string {
	if e.CausedBy != nil {
		return fmt.Sprintf("%s: %s (caused by %s)", e.Type, e.Reason, e.CausedBy.Error())
	}
	return e.Type + ": " + e.Reason
}

// Body renders the error object (type, reason, metadata, caused_by), as it
// appears in a bulk item or under "error" of a response.
func (e *Error) Body(withCause bool) Ordered { return e.body(withCause) }

func (e *Error) body(withCause bool) obj {
	o := obj{{"type", e.Type}, {"reason", e.Reason}}
	if e.IndexUUID != "" {
		o = append(o, kv{"index_uuid", e.IndexUUID})
	}
	if e.Shard != "" {
		o = append(o, kv{"shard", e.Shard})
	}
	if e.Index != "" {
		o = append(o, kv{"index", e.Index})
	}
	if e.Extra != nil {
		for i := 0; i < e.Extra.Len(); i++ {
			k, v := e.Extra.Member(i)
			o = append(o, kv{k, v})
		}
	}
	if withCause && e.CausedBy != nil {
		o = append(o, kv{"caused_by", e.CausedBy.body(true)})
	}
	return o
}

// Response renders a whole-request error body:
// {"error":{"root_cause":[...],...},"status":N}.
func (e *Error) Response() Ordered {
	root := e.body(false)
	full := append(obj{{"root_cause", []any{root}}}, e.body(true)...)
	return obj{{"error", full}, {"status", e.Status}}
}

// NewError returns an error of the given status and type, its reason
// formatted with fmt.Sprintf.
func NewError(status int, typ, format string, args ...any) *Error {
	return &Error{Status: status, Type: typ, Reason: fmt.Sprintf(format, args...)}
}

// IllegalArgument returns a 400 illegal_argument_exception.
func IllegalArgument(format string, args ...any) *Error {
	return NewError(http.StatusBadRequest, "illegal_argument_exception", format, args...)
}

func validationFailed(problems []string) *Error {
	var b strings.Builder
	b.WriteString("Validation Failed: ")
	for i, p := range problems {
		fmt.Fprintf(&b, "%d: %s;", i+1, p)
	}
	return &Error{Status: http.StatusBadRequest, Type: "action_request_validation_exception", Reason: b.String()}
}

// IndexNotFound is the 404 index_not_found_exception for an index name or
// expression that names no index.
func IndexNotFound(name string) *Error {
	return &Error{
		Status: http.StatusNotFound, Type: "index_not_found_exception",
		Reason: "no such index [" + name + "]", IndexUUID: "_na_", Index: name,
		Extra: obj{{"resource.type", "index_or_alias"}, {"resource.id", name}},
	}
}

// documentParsing builds a document_parsing_exception located at a position
// of the document source.
func documentParsing(loc location, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Type: "document_parsing_exception",
		Reason: loc.String() + " " + fmt.Sprintf(format, args...)}
}

// location is a Jackson-style [line:column] position, both 1-based.
type location struct{ line, col int }

func (l location) String() string { return fmt.Sprintf("[%d:%d]", l.line, l.col) }

// locate converts a byte offset of src into a location.
func locate(src []byte, off int) location {
	if off > len(src) {
		off = len(src)
	}
	if off < 0 {
		off = 0
	}
	line, start := 1, 0
	for i := 0; i < off; i++ {
		if src[i] == '\n' {
			line++
			start = i + 1
		}
	}
	return location{line, off - start + 1}
}

// InternalError is the 500 of a failure of the stand-in itself, e.g. of
// its disk.
func InternalError(err error) *Error {
	return NewError(http.StatusInternalServerError, "exception", "%v", err)
}
