package k8sfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
)

// selector is a request's label and field selectors.
type selector struct {
	labels labels.Selector
	fields fields.Selector
}

func (sel *selector) matches(res *resource, o object) bool {
	return sel.labels.Matches(labels.Set(o.GetLabels())) && sel.fields.Matches(res.fields(o))
}

// parseSelector reads labelSelector and fieldSelector; the error is the
// API server's 400 answer.
func parseSelector(res *resource, q url.Values) (*selector, *metav1.Status) {
	ls, err := labels.Parse(q.Get("labelSelector"))
	if err != nil {
		return nil, status(http.StatusBadRequest, metav1.StatusReasonBadRequest, "unable to parse requirement: "+err.Error(), nil)
	}
	fs, err := fields.ParseSelector(q.Get("fieldSelector"))
	if err != nil {
		return nil, status(http.StatusBadRequest, metav1.StatusReasonBadRequest, err.Error(), nil)
	}
	for _, req := range fs.Requirements() {
		if !res.supportsField(req.Field) {
			return nil, status(http.StatusBadRequest, metav1.StatusReasonBadRequest,
				fmt.Sprintf("field label not supported: %s", req.Field), nil)
		}
	}
	return &selector{labels: ls, fields: fs}, nil
}

// serveResource answers get, list and watch of a resource.
func (s *Server) serveResource(w http.ResponseWriter, r *http.Request, rt routed) {
	switch rt.verb {
	case "get":
		s.get(w, rt)
	case "list":
		s.list(w, r, rt)
	case "watch":
		s.watch(w, r, rt)
	}
}

func (s *Server) get(w http.ResponseWriter, rt routed) {
	k := rt.name
	if rt.res.namespaced {
		k = rt.ns + "/" + rt.name
	}
	s.mu.Lock()
	o := s.objects[rt.res][k]
	s.mu.Unlock()
	if o == nil {
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound,
			fmt.Sprintf("%s %q not found", qualified(rt.res), rt.name),
			&metav1.StatusDetails{Name: rt.name, Group: rt.res.group, Kind: rt.res.name})
		return
	}
	writeJSON(w, http.StatusOK, typed(rt.res, o))
}

// qualified is a resource's name as the API server's messages spell it:
// "pods", "replicasets.apps".
func qualified(res *resource) string {
	if res.group == "" {
		return res.name
	}
	return res.name + "." + res.group
}

// typed returns a copy of o with its kind and apiVersion set, as the API
// server sends a single object or one in a watch event.
func typed(res *resource, o object) runtime.Object {
	c := o.DeepCopyObject()
	c.GetObjectKind().SetGroupVersionKind(gvk(res, res.kind))
	return c
}

// parseRV reads a resourceVersion parameter; "" and "0" are 0.
func parseRV(v string) (int64, *metav1.Status) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, status(http.StatusBadRequest, metav1.StatusReasonBadRequest,
			fmt.Sprintf("invalid resource version: %s", v), nil)
	}
	return n, nil
}

// tooLarge is the API server's answer to a resource version it has not
// reached (client-go then lists afresh).
func tooLarge(rv, current int64) *metav1.Status {
	return status(http.StatusGatewayTimeout, metav1.StatusReasonTimeout,
		fmt.Sprintf("Too large resource version: %d, current: %d", rv, current),
		&metav1.StatusDetails{
			Causes:            []metav1.StatusCause{{Type: metav1.CauseTypeResourceVersionTooLarge, Message: "Too large resource version"}},
			RetryAfterSeconds: 1,
		})
}

// tooOld is the API server's 410 answer to a resource version older than
// its history.
func tooOld(rv, oldest int64) *metav1.Status {
	return status(http.StatusGone, metav1.StatusReasonExpired,
		fmt.Sprintf("too old resource version: %d (%d)", rv, oldest), nil)
}

// list answers a list. The whole result comes in one response at the
// current resource version, whatever limit asks (the API server may do so,
// as its watch cache does): resourceVersion "" and "0" and NotOlderThan
// are served at once, Exact only at the current resource version (410 Gone
// otherwise, as the fake keeps no older states), a version not reached yet
// with 504 "Too large resource version".
func (s *Server) list(w http.ResponseWriter, r *http.Request, rt routed) {
	q := r.URL.Query()
	sel, st := parseSelector(rt.res, q)
	if st == nil {
		var want int64
		want, st = parseRV(q.Get("resourceVersion"))
		if st == nil {
			s.mu.Lock()
			items, cur := s.snapshotLocked(rt.res, rt.ns, sel)
			compacted := s.compacted
			s.mu.Unlock()
			switch {
			case want > cur:
				st = tooLarge(want, cur)
			case q.Get("resourceVersionMatch") == string(metav1.ResourceVersionMatchExact) && want != cur:
				st = tooOld(want, max(compacted, cur))
			default:
				l := rt.res.list(strconv.FormatInt(cur, 10), items)
				l.GetObjectKind().SetGroupVersionKind(gvk(rt.res, rt.res.kind+"List"))
				writeJSON(w, http.StatusOK, l)
				return
			}
		}
	}
	writeJSON(w, int(st.Code), st)
}

// watch answers a watch: a chunked stream of JSON watch events
// ({"type":"ADDED","object":{...}}) until the client leaves, its
// timeoutSeconds (or WatchTimeout) ends it, or EndWatches, ExpireWatches,
// SetDown(true) or Close does.
//
// Where it starts:
//   - sendInitialEvents=true (a streaming list; resourceVersionMatch must
//     be NotOlderThan and allowWatchBookmarks true): ADDED events for the
//     objects as they are now, then a BOOKMARK annotated
//     k8s.io/initial-events-end, then the changes.
//   - resourceVersion "" or "0": ADDED events for the objects as they are
//     now (no bookmark), then the changes.
//   - resourceVersion N: the changes after N; an ERROR event 410 Expired
//     when the history no longer reaches back to N, 504 "Too large
//     resource version" when N is not reached yet.
func (s *Server) watch(w http.ResponseWriter, r *http.Request, rt routed) {
	q := r.URL.Query()
	sel, st := parseSelector(rt.res, q)
	if st != nil {
		writeJSON(w, int(st.Code), st)
		return
	}
	from, st := parseRV(q.Get("resourceVersion"))
	if st != nil {
		writeJSON(w, int(st.Code), st)
		return
	}
	initial := q.Get("resourceVersion") == "" || q.Get("resourceVersion") == "0"
	bookmarks := isTrue(q.Get("allowWatchBookmarks"))
	match := q.Get("resourceVersionMatch")
	sendInitial := q.Get("sendInitialEvents")
	if sendInitial != "" {
		var msg string
		switch {
		case !s.watchList:
			msg = "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled"
		case match != string(metav1.ResourceVersionMatchNotOlderThan):
			msg = "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"
		case isTrue(sendInitial) && !bookmarks:
			msg = "allowWatchBookmarks: Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true"
		}
		if msg != "" {
			writeStatus(w, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid, msg, nil)
			return
		}
		initial = isTrue(sendInitial)
	} else if match != "" {
		writeStatus(w, http.StatusUnprocessableEntity, metav1.StatusReasonInvalid,
			"resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided", nil)
		return
	}
	timeout := s.watchTimeout
	if ts := q.Get("timeoutSeconds"); ts != "" {
		if n, err := strconv.Atoi(ts); err == nil && n > 0 && (timeout == 0 || time.Duration(n)*time.Second < timeout) {
			timeout = time.Duration(n) * time.Second
		}
	}

	// Register and take the starting point under the lock, so that no
	// change falls between the initial events and the history.
	wt := &watcher{stop: make(chan stopReason, 1), done: make(chan struct{})}
	defer close(wt.done)
	s.mu.Lock()
	if s.closed || s.down { // SetDown(true) may have come after serveHTTP's check
		s.mu.Unlock()
		writeStatus(w, http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable,
			"the server is currently unable to handle the request", nil)
		return
	}
	var evs []event
	var errSt *metav1.Status
	cursor := from
	switch {
	case from > s.rv:
		errSt = tooLarge(from, s.rv)
	case initial:
		var items []object
		items, cursor = s.snapshotLocked(rt.res, rt.ns, sel)
		for _, o := range items {
			evs = append(evs, event{watch.Added, o})
		}
	case from < s.compacted:
		errSt = tooOld(from, s.compacted)
	}
	s.watches[wt] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.watches, wt)
		s.mu.Unlock()
	}()

	ew := newEventWriter(w, rt.res)
	if errSt != nil {
		ew.status(errSt)
		return
	}
	for _, e := range evs {
		ew.event(e)
	}
	if initial && isTrue(sendInitial) {
		ew.bookmark(cursor, true)
	}
	ew.flush()

	var expire <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expire = t.C
	}
	for {
		s.mu.Lock()
		evs, upTo, ok := s.eventsLocked(rt.res, rt.ns, sel, cursor)
		changed, compacted := s.changed, s.compacted
		s.mu.Unlock()
		if !ok {
			ew.status(tooOld(cursor, compacted))
			return
		}
		for _, e := range evs {
			ew.event(e)
		}
		if len(evs) > 0 {
			ew.flush()
		}
		cursor = upTo
		select {
		case <-changed:
		case <-r.Context().Done():
			return
		case <-expire:
			endWatch(ew, bookmarks, cursor)
			return
		case why := <-wt.stop:
			switch why {
			case stopEnd:
				endWatch(ew, bookmarks, cursor)
			case stopExpire:
				ew.status(tooOld(cursor, cursor+1))
			case stopAbort:
				// Cut the connection: the client reads an unexpected EOF.
				panic(http.ErrAbortHandler)
			}
			return
		}
	}
}

// endWatch ends a watch at its timeout: with a BOOKMARK at the resource
// version it has sent everything up to if the client allows bookmarks, as
// the API server's watch cache sends one shortly before a watch's
// deadline.
func endWatch(ew *eventWriter, bookmarks bool, rv int64) {
	if bookmarks {
		ew.bookmark(rv, false)
		ew.flush()
	}
}

func gvk(res *resource, kind string) schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: res.group, Version: res.version, Kind: kind}
}

// eventWriter writes watch events as the API server's JSON watch stream
// does: one metav1.WatchEvent per line, flushed as they come.
type eventWriter struct {
	w   http.ResponseWriter
	res *resource
	enc *json.Encoder
}

func newEventWriter(w http.ResponseWriter, res *resource) *eventWriter {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Transfer-Encoding", "chunked")
	w.WriteHeader(http.StatusOK)
	ew := &eventWriter{w: w, res: res, enc: json.NewEncoder(w)}
	ew.flush()
	return ew
}

func (ew *eventWriter) write(typ watch.EventType, obj any) {
	raw, err := json.Marshal(obj)
	if err != nil {
		panic("k8sfake: " + err.Error())
	}
	_ = ew.enc.Encode(metav1.WatchEvent{Type: string(typ), Object: runtime.RawExtension{Raw: raw}})
}

func (ew *eventWriter) event(e event) { ew.write(e.typ, typed(ew.res, e.obj)) }

// bookmark sends a BOOKMARK: an empty object of the resource's kind with
// only its resource version, and the k8s.io/initial-events-end annotation
// when it ends a streaming list's initial events.
func (ew *eventWriter) bookmark(rv int64, initialEnd bool) {
	o := ew.res.zero()
	o.SetResourceVersion(strconv.FormatInt(rv, 10))
	if initialEnd {
		o.SetAnnotations(map[string]string{metav1.InitialEventsAnnotationKey: "true"})
	}
	ew.write(watch.Bookmark, typed(ew.res, o))
}

// status sends an ERROR event and flushes it.
func (ew *eventWriter) status(st *metav1.Status) {
	ew.write(watch.Error, st)
	ew.flush()
}

func (ew *eventWriter) flush() {
	if f, ok := ew.w.(http.Flusher); ok {
		f.Flush()
	}
}
