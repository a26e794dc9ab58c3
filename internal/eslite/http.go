package eslite

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

const (
	compatMediaType = "application/vnd.elasticsearch+json;compatible-with=8"
	osMediaType     = "application/json; charset=UTF-8"
	// maxContentLength is Elasticsearch's default http.max_content_length.
	maxContentLength = 100 << 20
)

// resp writes the responses to one request.
type resp struct {
	w     http.ResponseWriter
	r     *http.Request
	ctype string
}

func (rs *resp) raw(status int, ctype string, body []byte) {
	h := rs.w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Length", itoa(len(body)))
	rs.w.WriteHeader(status)
	if rs.r.Method != http.MethodHead {
		_, _ = rs.w.Write(body)
	}
}

// json answers v encoded as JSON, HTML characters unescaped as
// Elasticsearch writes them.
func (rs *resp) json(status int, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status, b = http.StatusInternalServerError, *bytes.NewBufferString(`{"error":"encoding the response failed","status":500}` + "\n")
	}
	rs.raw(status, rs.ctype, b.Bytes()[:b.Len()-1]) // without Encode's newline
}

func (rs *resp) err(e *esError) { rs.json(e.Status, e.response()) }

// status answers a response without a body, as to HEAD.
func (rs *resp) status(status int) { rs.raw(status, rs.ctype, nil) }

func (s *Store) serve(w http.ResponseWriter, r *http.Request) {
	f := s.faultsNow()
	if f.Latency > 0 {
		t := time.NewTimer(f.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		case <-s.closing:
			t.Stop()
		}
	}
	rs := &resp{w: w, r: r, ctype: "application/json"}
	if s.openSearch {
		rs.ctype = osMediaType
	} else {
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		if strings.Contains(r.Header.Get("Accept"), "compatible-with=8") {
			rs.ctype = compatMediaType
		}
	}
	if f.Down {
		s.stats.requestsFaulted.Add(1)
		rs.err(newErr(http.StatusServiceUnavailable, "cluster_block_exception", "blocked by: [SERVICE_UNAVAILABLE/2/no master];"))
		return
	}
	if s.refuseAuth(rs) {
		return
	}
	var path []string
	for _, seg := range strings.Split(strings.Trim(r.URL.EscapedPath(), "/"), "/") {
		p, err := url.PathUnescape(seg)
		if err != nil {
			rs.err(illegalArg("unable to decode the path [%s]", r.URL.EscapedPath()))
			return
		}
		if p != "" {
			path = append(path, p)
		}
	}
	if len(path) > 0 && s.chance(f.RequestFraction) {
		s.stats.requestsFaulted.Add(1)
		rs.err(requestFault(f.RequestStatus, r))
		return
	}
	if s.isClosed() {
		rs.err(newErr(http.StatusServiceUnavailable, "node_closed_exception", "the store is closed"))
		return
	}
	s.route(rs, path)
}

// refuseAuth answers a request without the Authorization RequireAuth asks
// for: 401, as Elasticsearch's security does, or as OpenSearch's security
// plugin does.
func (s *Store) refuseAuth(rs *resp) bool {
	got := rs.r.Header.Get("Authorization")
	if s.auth == "" || got == s.auth {
		return false
	}
	if s.openSearch {
		rs.w.Header().Set("WWW-Authenticate", `Basic realm="OpenSearch Security"`)
		rs.raw(http.StatusUnauthorized, "text/plain; charset=UTF-8", []byte("Unauthorized"))
		return true
	}
	challenge := `Basic realm="security", charset="UTF-8"`
	rs.w.Header().Set("WWW-Authenticate", challenge)
	e := newErr(http.StatusUnauthorized, "security_exception", "unable to authenticate with provided credentials and anonymous access is not allowed for this request")
	if user, _, ok := rs.r.BasicAuth(); ok {
		e.Reason = "unable to authenticate user [" + user + "] for REST request [" + rs.r.URL.Path + "]"
	} else if got == "" {
		e.Reason = "missing authentication credentials for REST request [" + rs.r.URL.Path + "]"
	}
	e.Header = map[string]any{"WWW-Authenticate": []string{challenge, "ApiKey"}}
	rs.err(e)
	return true
}

// route dispatches a request by its path segments and method.
func (s *Store) route(rs *resp, p []string) {
	seg := func(i int) string {
		if i >= 0 && i < len(p) {
			return p[i]
		}
		return ""
	}
	n, m := len(p), rs.r.Method
	var (
		allowed []string
		h       func()
	)
	switch {
	case n == 0:
		allowed, h = []string{"GET", "HEAD"}, func() { s.info(rs) }
	case n <= 2 && seg(n-1) == "_bulk" && (n == 1 || seg(0)[0] != '_'):
		allowed, h = []string{"POST", "PUT"}, func() { s.bulk(rs, seg(n-2)) }
	case n <= 2 && (seg(n-1) == "_search" || seg(n-1) == "_count") && (n == 1 || seg(0)[0] != '_' || seg(0) == "_all"):
		allowed, h = []string{"GET", "POST"}, func() { s.search(rs, seg(n-2), seg(n-1) == "_count") }
	case seg(0) == "_cat" && seg(1) == "indices" && n <= 3:
		allowed, h = []string{"GET"}, func() { s.catIndices(rs, seg(2)) }
	case seg(0) == "_cluster" && seg(1) == "health" && n <= 3:
		allowed, h = []string{"GET"}, func() { s.health(rs) }
	case seg(0) == "_index_template" && n == 1:
		allowed, h = []string{"GET"}, func() { s.getTemplates(rs, "*", false) }
	case seg(0) == "_index_template" && n == 2:
		allowed, h = []string{"GET", "PUT", "POST", "DELETE"}, func() { s.template(rs, seg(1)) }
	case seg(0) == "_security" && seg(1) == "role" && n == 3:
		allowed, h = []string{"GET", "PUT", "POST", "DELETE"}, func() { s.role(rs, seg(2)) }
	case n == 1 && seg(0)[0] != '_':
		allowed, h = []string{"GET", "HEAD", "PUT", "DELETE"}, func() { s.indexAPI(rs, seg(0)) }
	}
	switch {
	case h == nil:
		rs.json(http.StatusBadRequest, map[string]any{"error": "no handler found for uri [" + rs.r.URL.Path + "] and method [" + m + "]", "status": 400})
	case !slices.Contains(allowed, m):
		rs.json(http.StatusMethodNotAllowed, map[string]any{"error": "Incorrect HTTP method for uri [" + rs.r.URL.Path + "] and method [" + m +
			"], allowed: [" + strings.Join(allowed, ", ") + "]", "status": 405})
	default:
		h()
	}
}

// readBody reads a request body, gzip-compressed or not, up to
// http.max_content_length.
func readBody(r *http.Request) ([]byte, *esError) {
	if r.Body == nil {
		return nil, nil
	}
	var in io.Reader = r.Body
	if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, illegalArg("the gzip request body is invalid: %v", err)
		}
		defer zr.Close()
		in = zr
	}
	var b []byte
	var err error
	if n := r.ContentLength; n > 0 && n <= maxContentLength && in == r.Body {
		b = make([]byte, n) // exactly sized: stored documents keep referring to it
		_, err = io.ReadFull(in, b)
	} else {
		b, err = io.ReadAll(io.LimitReader(in, maxContentLength+1))
	}
	switch {
	case err != nil:
		return nil, illegalArg("reading the request body: %v", err)
	case len(b) > maxContentLength || r.ContentLength > maxContentLength:
		return nil, newErr(http.StatusRequestEntityTooLarge, "content_too_long_exception", "request body is too large")
	}
	return b, nil
}

// readJSON decodes a JSON request body into a generic value (numbers as
// json.Number); an empty body is nil.
func readJSON(r *http.Request) (map[string]any, *esError) {
	body, e := readBody(r)
	if e != nil || len(bytes.TrimSpace(body)) == 0 {
		return nil, e
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, newErr(http.StatusBadRequest, "x_content_parse_exception", "%v", err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, parsingErr("request body must be a JSON object")
	}
	return obj, nil
}

func queryBool(q url.Values, key string) bool {
	v, ok := q[key]
	return ok && (v[0] == "" || v[0] == "true")
}
