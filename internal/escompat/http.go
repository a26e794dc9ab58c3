package escompat

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// CompatMediaType is the media type of a response to a client that asked
// for REST API compatibility with version 8, as go-elasticsearch v8 does.
const CompatMediaType = "application/vnd.elasticsearch+json;compatible-with=8"

// Responder writes Elasticsearch-style responses to one request: every
// response carries X-Elastic-Product: Elasticsearch (go-elasticsearch v8
// refuses a 2xx without it); JSON bodies honour filter_path and pretty and
// are typed application/json, or CompatMediaType when the request's Accept
// asked for compatible-with=8. A HEAD request gets the headers only. For a
// request marked with WithProduct(r, OpenSearch) it answers as OpenSearch
// 2.x: no X-Elastic-Product, and JSON bodies typed OpenSearchContentType
// whatever the Accept header.
//
// A Responder is used by the goroutine serving its request only.
type Responder struct {
	w       http.ResponseWriter
	r       *http.Request
	product Product
	compat  bool
	pretty  bool
	filter  FilterPath
}

// NewResponder reads the request's Accept header and its filter_path and
// pretty parameters, and sets X-Elastic-Product on w (unless the request is
// marked to be answered as OpenSearch, see WithProduct).
func NewResponder(w http.ResponseWriter, r *http.Request) *Responder {
	q := r.URL.Query()
	rs := &Responder{w: w, r: r, product: ProductOf(r)}
	if q.Has("pretty") && q.Get("pretty") != "false" {
		rs.pretty = true
	}
	if fp := q.Get("filter_path"); fp != "" {
		rs.filter = ParseFilterPath(fp)
	}
	if rs.product == OpenSearch {
		// No product header, and JSON whatever the Accept header asks for:
		// OpenSearch falls back to JSON for a media type it does not know.
		return rs
	}
	rs.compat = strings.Contains(r.Header.Get("Accept"), "compatible-with=8")
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	return rs
}

// Product is what the Responder answers as.
func (rs *Responder) Product() Product { return rs.product }

// Header is the header map of the response, for headers to add before
// writing.
func (rs *Responder) Header() http.Header { return rs.w.Header() }

// Filter is the request's filter_path, nil when it has none.
func (rs *Responder) Filter() FilterPath { return rs.filter }

func (rs *Responder) write(status int, contentType string, body []byte) {
	h := rs.w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	rs.w.WriteHeader(status)
	if rs.r.Method != http.MethodHead {
		_, _ = rs.w.Write(body)
	}
}

func (rs *Responder) contentType() string {
	if rs.product == OpenSearch {
		return OpenSearchContentType
	}
	if rs.compat {
		return CompatMediaType
	}
	return "application/json"
}

// JSON answers v (see Encode), filtered by filter_path.
func (rs *Responder) JSON(status int, v any) { rs.Raw(status, Encode(v, rs.filter)) }

// FilteredJSON answers a JSON body built elsewhere, filtered by
// filter_path.
func (rs *Responder) FilteredJSON(status int, body []byte) {
	if rs.filter != nil {
		body = Encode(json.RawMessage(body), rs.filter)
	}
	rs.Raw(status, body)
}

// Raw answers a JSON body as it is, indented when pretty was asked for.
func (rs *Responder) Raw(status int, body []byte) {
	if rs.pretty {
		var buf bytes.Buffer
		if json.Indent(&buf, body, "", "  ") == nil {
			buf.WriteByte('\n')
			body = buf.Bytes()
		}
	}
	rs.write(status, rs.contentType(), body)
}

// Error answers a whole-request error; like Elasticsearch, filter_path does
// not apply.
func (rs *Responder) Error(e *Error) { rs.Raw(e.Status, Encode(e.Response(), nil)) }

// Text answers a text/plain body, as the _cat APIs do.
func (rs *Responder) Text(status int, body string) {
	rs.write(status, "text/plain; charset=UTF-8", []byte(body))
}

// Status answers a body-less response, as HEAD requests get.
func (rs *Responder) Status(status int) { rs.write(status, rs.contentType(), nil) }

// MaxContentLength is Elasticsearch's default http.max_content_length.
const MaxContentLength = 100 << 20

// ReadBody reads a request body of at most MaxContentLength bytes,
// gunzipping it when Content-Encoding is gzip. It answers 413
// content_too_long_exception for a larger body.
func ReadBody(r *http.Request) ([]byte, *Error) {
	if r.Body == nil {
		return nil, nil
	}
	var rd io.Reader = http.MaxBytesReader(nil, r.Body, MaxContentLength)
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(rd)
		if err != nil {
			return nil, &Error{Status: http.StatusBadRequest, Type: "not_x_content_exception",
				Reason: "Compressor detection can only be called on some xcontent bytes or compressed xcontent bytes"}
		}
		defer zr.Close()
		rd = io.LimitReader(zr, MaxContentLength+1)
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 && r.ContentLength <= MaxContentLength {
		buf.Grow(int(r.ContentLength) + 1)
	}
	_, err := buf.ReadFrom(rd)
	body := buf.Bytes()
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) || len(body) > MaxContentLength {
		return nil, NewError(http.StatusRequestEntityTooLarge, "content_too_long_exception",
			"request body is too large: more than [%d] bytes", MaxContentLength)
	}
	if err != nil {
		return nil, NewError(http.StatusBadRequest, "parse_exception", "failed to read request body: %v", err)
	}
	return body, nil
}

// SplitPath splits the escaped path of u into unescaped segments, so an _id
// holding an escaped '/' stays one segment. ok is false for a malformed
// escape.
func SplitPath(u *url.URL) (segs []string, ok bool) {
	for _, raw := range strings.Split(u.EscapedPath(), "/") {
		if raw == "" {
			continue
		}
		seg, err := url.PathUnescape(raw)
		if err != nil {
			return nil, false
		}
		segs = append(segs, seg)
	}
	return segs, true
}

// Path is the unescaped segments of a request path, as SplitPath splits
// it.
type Path []string

// At returns segment i, or "" past the last one.
func (p Path) At(i int) string {
	if i < len(p) {
		return p[i]
	}
	return ""
}

// InvalidEscape is the error for a request URI SplitPath refuses.
func InvalidEscape(r *http.Request) *Error {
	return IllegalArgument("invalid escape sequence in URI [%s]", r.URL.RequestURI())
}

// Router picks the handler of one request among those registered for its
// path, by method. Serve answers as Elasticsearch does when none applies:
// 400 "no handler found for uri" when no handler is registered for the path,
// 405 with an Allow header when the method is wrong.
type Router struct {
	eps []endpoint
}

type endpoint struct {
	methods []string
	serve   func()
}

// Handle registers serve for the methods.
func (rt *Router) Handle(serve func(), methods ...string) {
	rt.eps = append(rt.eps, endpoint{methods, serve})
}

// Empty reports whether no handler is registered.
func (rt *Router) Empty() bool { return len(rt.eps) == 0 }

// Serve runs the handler for r's method, or answers 400 or 405.
func (rt *Router) Serve(rs *Responder, r *http.Request) {
	if len(rt.eps) == 0 {
		rs.Raw(http.StatusBadRequest, Encode(obj{
			{"error", fmt.Sprintf("no handler found for uri [%s] and method [%s]", r.URL.RequestURI(), r.Method)},
		}, nil))
		return
	}
	var allowed []string
	for _, ep := range rt.eps {
		for _, m := range ep.methods {
			if m == r.Method {
				ep.serve()
				return
			}
			allowed = append(allowed, m)
		}
	}
	sort.Strings(allowed)
	rs.Header().Set("Allow", strings.Join(allowed, ","))
	rs.Raw(http.StatusMethodNotAllowed, Encode(obj{
		{"error", fmt.Sprintf("Incorrect HTTP method for uri [%s] and method [%s], allowed: [%s]",
			r.URL.RequestURI(), r.Method, strings.Join(allowed, ", "))},
		{"status", http.StatusMethodNotAllowed},
	}, nil))
}

// Acknowledged is the body of an acknowledged change: {"acknowledged":true}.
func Acknowledged() Ordered { return obj{{"acknowledged", true}} }

// IndexCreated is the body of a successful PUT /{index}.
func IndexCreated(name string) Ordered {
	return obj{{"acknowledged", true}, {"shards_acknowledged", true}, {"index", name}}
}

// Refreshed is the body of POST /{index}/_refresh over n indices of one
// primary shard and one unassigned replica each.
func Refreshed(n int) Ordered {
	return obj{{"_shards", obj{{"total", 2 * n}, {"successful", n}, {"failed", 0}}}}
}

// DocFound is the body of GET /{index}/_doc/{id} finding the document,
// answered 200.
func DocFound(index, id string, version, seqNo int64, source []byte) Ordered {
	return obj{
		{"_index", index}, {"_id", id}, {"_version", version}, {"_seq_no", seqNo},
		{"_primary_term", 1}, {"found", true}, {"_source", json.RawMessage(source)},
	}
}

// DocNotFound is the body of GET /{index}/_doc/{id} for an _id the index
// does not hold, answered 404.
func DocNotFound(index, id string) Ordered {
	return obj{{"_index", index}, {"_id", id}, {"found", false}}
}

// ParseRefresh checks the refresh parameter of a write: "", "true",
// "false" or "wait_for".
func ParseRefresh(q url.Values) (string, *Error) {
	switch v := q.Get("refresh"); v {
	case "", "true", "false", "wait_for":
		return v, nil
	default:
		return "", IllegalArgument("Unknown value for refresh: [%s].", v)
	}
}

// ParseBool reads a boolean query parameter as Elasticsearch does: absent
// is dflt, "" and "true" are true, "false" is false, anything else fails.
func ParseBool(q url.Values, name string, dflt bool) (bool, *Error) {
	if !q.Has(name) {
		return dflt, nil
	}
	switch v := q.Get(name); v {
	case "", "true":
		return true, nil
	case "false":
		return false, nil
	default:
		return false, IllegalArgument("Failed to parse value [%s] as only [true] or [false] are allowed.", v)
	}
}
