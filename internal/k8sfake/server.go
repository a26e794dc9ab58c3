package k8sfake

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/version"
)

// Server is a fake Kubernetes API server. All methods are safe for
// concurrent use, including while requests are being served.
type Server struct {
	token        string
	watchList    bool
	watchTimeout time.Duration
	historyLimit int

	ts        *httptest.Server
	closeOnce sync.Once

	mu        sync.Mutex // guards everything below
	rv        int64      // resource version of the last change
	compacted int64      // the history holds every change after this
	objects   map[*resource]map[string]object
	history   []change
	changed   chan struct{} // closed and replaced at every change
	down      bool
	closed    bool
	watches   map[*watcher]struct{}
	requests  map[Request]int64
}

// watcher is one open watch; stop tells it to end and how, done is closed
// when it has.
type watcher struct {
	stop chan stopReason // buffered: the first reason wins
	done chan struct{}
}

type stopReason int

const (
	stopEnd    stopReason = iota // end the response cleanly, as at the watch's timeout
	stopExpire                   // send a 410 Expired ERROR event, then end
	stopAbort                    // drop the connection, as a server that goes away does
)

// Request is a kind of request counted by Requests: the Kubernetes verb
// (get, list, watch) and the resource (pods, namespaces, replicasets,
// jobs). A request for a path that is no resource (discovery, /version,
// /healthz) is counted as verb "get" and its path as the resource, e.g.
// {"get", "/api/v1"}.
type Request struct {
	Verb, Resource string
}

// Option configures a Server.
type Option func(*Server)

// RequireToken makes the server answer 401 Unauthorized to every request
// without the header "Authorization: Bearer " + token, as the API server
// does a service account's request whose token it does not know.
func RequireToken(token string) Option { return func(s *Server) { s.token = token } }

// WithoutWatchList makes the server refuse streaming lists (watches with
// sendInitialEvents), as an API server without the WatchList feature does,
// with 422 Invalid. client-go's reflector then falls back to a list and a
// watch from the list's resource version.
func WithoutWatchList() Option { return func(s *Server) { s.watchList = false } }

// WatchTimeout ends every watch cleanly after d at most (the API server's
// watch timeout, which clients ask for with timeoutSeconds), so that
// clients have to watch again. Without it a watch lasts as long as its
// timeoutSeconds asks, or until the client leaves.
func WatchTimeout(d time.Duration) Option { return func(s *Server) { s.watchTimeout = d } }

// HistoryLimit sets how many changes the server remembers for watches that
// resume from a resource version (default 10000). When more changes are
// made, the older half is forgotten as by Compact.
func HistoryLimit(n int) Option {
	return func(s *Server) {
		if n < 2 {
			n = 2
		}
		s.historyLimit = n
	}
}

// New returns an unstarted fake; serve it with Handler, e.g. inside another
// test server. Start is the usual way to get one.
func New(opts ...Option) *Server {
	s := &Server{
		watchList:    true,
		historyLimit: 10000,
		objects:      make(map[*resource]map[string]object),
		changed:      make(chan struct{}),
		watches:      make(map[*watcher]struct{}),
		requests:     make(map[Request]int64),
	}
	for _, r := range allResources {
		s.objects[r] = make(map[string]object)
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Start starts a fake on a loopback httptest server and closes it with
// tb.Cleanup.
func Start(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s := New(opts...)
	s.ts = httptest.NewServer(s.Handler())
	tb.Cleanup(s.Close)
	return s
}

// URL is the base URL of a started server, e.g. "http://127.0.0.1:41234",
// for rest.Config's Host; "" for a server made with New.
func (s *Server) URL() string {
	if s.ts == nil {
		return ""
	}
	return s.ts.URL
}

// Handler serves the fake's API.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// Close ends the open watches and stops a started server. It is safe to
// call more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.stopWatches(stopEnd)
		if s.ts != nil {
			s.ts.CloseClientConnections()
			s.ts.Close()
		}
	})
}

// SetDown takes the API server away (true) or brings it back (false).
// While it is down every request is answered 503 Service Unavailable and
// the open watches are cut off without the end of their responses, as when
// the API server's process or its load balancer goes away (SetDown returns
// when they are); objects may
// still be changed with the Add, Update and Delete methods, and clients see
// the changes once the server is back.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
	if down {
		s.stopWatches(stopAbort)
	}
}

// EndWatches ends every open watch cleanly, as the API server does when a
// watch's timeout is reached: a BOOKMARK with the current resource version
// when the watch allows bookmarks, then the end of the response. Clients
// watch again from the last resource version they saw. It returns when the
// watches have ended.
func (s *Server) EndWatches() { s.stopWatches(stopEnd) }

// ExpireWatches forgets the event history (see Compact) and ends every
// open watch with a 410 Gone ERROR event (reason Expired, "too old resource
// version"), as clients see when the API server's watch cache is
// re-initialised: they must list again.
func (s *Server) ExpireWatches() {
	s.Compact()
	s.stopWatches(stopExpire)
}

// stopWatches tells every open watch to stop and waits until they have.
func (s *Server) stopWatches(why stopReason) {
	s.mu.Lock()
	var stopped []*watcher
	for w := range s.watches {
		select {
		case w.stop <- why:
		default:
		}
		stopped = append(stopped, w)
	}
	s.mu.Unlock()
	for _, w := range stopped {
		<-w.done
	}
}

// OpenWatches is the number of watches being served.
func (s *Server) OpenWatches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.watches)
}

// Requests counts the requests received since the server started, by verb
// and resource, including those answered with an error (401, 404, 503 ...).
func (s *Server) Requests() map[Request]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.requests)
}

// serverVersion is the body of GET /version: the Kubernetes release whose
// API packages the fake serves.
var serverVersion = version.Info{
	Major: "1", Minor: "37", GitVersion: "v1.37.2", GoVersion: "go1.26", Platform: "linux/amd64",
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	rt := route(r)
	s.mu.Lock()
	s.requests[Request{rt.verb, rt.counted()}]++
	down, closed := s.down, s.closed
	s.mu.Unlock()

	switch {
	case down || closed:
		writeStatus(w, http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable,
			"the server is currently unable to handle the request", nil)
		return
	case s.token != "" && r.Header.Get("Authorization") != "Bearer "+s.token:
		writeStatus(w, http.StatusUnauthorized, metav1.StatusReasonUnauthorized, "Unauthorized", nil)
		return
	case !acceptsJSON(r.Header.Get("Accept")):
		writeStatus(w, http.StatusNotAcceptable, metav1.StatusReasonNotAcceptable,
			"only the following media types are accepted: application/json", nil)
		return
	case r.Method != http.MethodGet:
		writeStatus(w, http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed,
			fmt.Sprintf("the server does not allow this method on the requested resource (%s)", r.Method), nil)
		return
	}

	switch {
	case rt.res != nil:
		s.serveResource(w, r, rt)
	case rt.body != nil:
		writeJSON(w, http.StatusOK, rt.body)
	case rt.health:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("ok"))
	default:
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, "the server could not find the requested resource", nil)
	}
}

// routed is what a request's path asks for.
type routed struct {
	verb   string
	path   string
	res    *resource // a resource request
	ns     string    // its namespace ("" for all)
	name   string    // a get of one object
	body   any       // a discovery document or /version
	health bool      // /healthz, /livez, /readyz
}

func (rt routed) counted() string {
	if rt.res != nil {
		return rt.res.name
	}
	return rt.path
}

// route parses a request's path: /api, /api/v1, /apis, /apis/{g},
// /apis/{g}/{v}, /version, the health checks, and the resource paths
// /api/v1/[namespaces/{ns}/]{resource}[/{name}] and
// /apis/{g}/{v}/[namespaces/{ns}/]{resource}[/{name}].
func route(r *http.Request) routed {
	path := strings.TrimSuffix(r.URL.Path, "/")
	rt := routed{verb: "get", path: path}
	seg := strings.Split(strings.TrimPrefix(path, "/"), "/")
	var group, ver string
	var rest []string
	switch {
	case path == "/version":
		rt.body = serverVersion
		return rt
	case path == "/healthz" || path == "/livez" || path == "/readyz":
		rt.health = true
		return rt
	case path == "/api":
		rt.body = &metav1.APIVersions{
			TypeMeta: metav1.TypeMeta{Kind: "APIVersions"},
			Versions: []string{"v1"},
			ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{
				{ClientCIDR: "0.0.0.0/0", ServerAddress: r.Host},
			},
		}
		return rt
	case path == "/apis":
		rt.body = discoveryGroups()
		return rt
	case seg[0] == "api" && len(seg) >= 2:
		ver, rest = seg[1], seg[2:]
	case seg[0] == "apis" && len(seg) == 2:
		for _, g := range discoveryGroups().Groups {
			if g.Name == seg[1] {
				rt.body = &g
			}
		}
		return rt
	case seg[0] == "apis" && len(seg) >= 3:
		group, ver, rest = seg[1], seg[2], seg[3:]
	default:
		return rt
	}
	if len(rest) == 0 {
		if l := discoveryResources(group, ver); l != nil {
			rt.body = l
		}
		return rt
	}
	// namespaces/{ns}/{resource}[/{name}]; namespaces/{name} is a get of a
	// namespace.
	if rest[0] == "namespaces" && len(rest) >= 3 {
		rt.ns, rest = rest[1], rest[2:]
	}
	if len(rest) > 2 {
		return rt
	}
	res := lookupResource(group, ver, rest[0])
	if res == nil || (rt.ns != "" && !res.namespaced) {
		return rt
	}
	rt.res = res
	switch {
	case len(rest) == 2:
		rt.name, rt.verb = rest[1], "get"
	case isTrue(r.URL.Query().Get("watch")):
		rt.verb = "watch"
	default:
		rt.verb = "list"
	}
	return rt
}

func isTrue(v string) bool { return v == "true" || v == "1" }

// acceptsJSON tells whether an Accept header admits application/json.
// client-go asks for JSON, or for protobuf with JSON as a fallback.
func acceptsJSON(accept string) bool {
	if accept == "" {
		return true
	}
	for part := range strings.SplitSeq(accept, ",") {
		mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		switch strings.TrimSpace(mt) {
		case "application/json", "application/*", "*/*":
			return true
		}
	}
	return false
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic("k8sfake: " + err.Error())
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// status is a Status object of failure, as the API server answers errors.
func status(code int, reason metav1.StatusReason, msg string, details *metav1.StatusDetails) *metav1.Status {
	return &metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure,
		Message:  msg,
		Reason:   reason,
		Details:  details,
		Code:     int32(code),
	}
}

func writeStatus(w http.ResponseWriter, code int, reason metav1.StatusReason, msg string, details *metav1.StatusDetails) {
	writeJSON(w, code, status(code, reason, msg, details))
}
