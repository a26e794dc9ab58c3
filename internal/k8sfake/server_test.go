package k8sfake_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"

	"github.com/sluicelogs/sluice/internal/k8sfake"
)

// get sends a GET with the bearer token and decodes the JSON answer.
func get(t *testing.T, api *k8sfake.Server, path string, into any) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, api.URL()+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if into != nil {
		if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
			t.Fatalf("GET %s: %d, body not JSON: %v", path, resp.StatusCode, err)
		}
	}
	return resp
}

// wantStatus checks an error answer: its HTTP status and Status reason.
func wantStatus(t *testing.T, api *k8sfake.Server, path string, code int, reason metav1.StatusReason, msg string) {
	t.Helper()
	var st metav1.Status
	resp := get(t, api, path, &st)
	if resp.StatusCode != code || st.Code != int32(code) || st.Reason != reason || st.Kind != "Status" || !strings.Contains(st.Message, msg) {
		t.Errorf("GET %s = %d %+v, want %d %s %q", path, resp.StatusCode, st, code, reason, msg)
	}
}

// watchEvent is an event of a watch stream as sent.
type watchEvent struct {
	Type   string          `json:"type"`
	Object json.RawMessage `json:"object"`
}

// openWatch starts a watch and returns a function that reads its next
// event (ok false at the end of the stream).
func openWatch(t *testing.T, api *k8sfake.Server, path string) func() (ev watchEvent, meta metav1.PartialObjectMetadata, ok bool) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, api.URL()+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("watch %s: %d", path, resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	return func() (watchEvent, metav1.PartialObjectMetadata, bool) {
		t.Helper()
		var ev watchEvent
		var m metav1.PartialObjectMetadata
		if !sc.Scan() {
			return ev, m, false
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("event %q: %v", sc.Text(), err)
		}
		if err := json.Unmarshal(ev.Object, &m); err != nil {
			t.Fatalf("event object %s: %v", ev.Object, err)
		}
		return ev, m, true
	}
}

func TestDiscovery(t *testing.T) {
	api := k8sfake.Start(t, k8sfake.RequireToken(token))
	dc, err := discovery.NewDiscoveryClientForConfig(&rest.Config{Host: api.URL(), BearerToken: token})
	if err != nil {
		t.Fatal(err)
	}
	v, err := dc.ServerVersion()
	if err != nil || v.GitVersion != "v1.37.2" {
		t.Fatalf("version %v, %v", v, err)
	}
	_, lists, err := dc.ServerGroupsAndResources()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, l := range lists {
		for _, r := range l.APIResources {
			got[l.GroupVersion+" "+r.Name+" "+r.Kind] = r.Namespaced
		}
	}
	want := map[string]bool{"v1 pods Pod": true, "v1 namespaces Namespace": false,
		"apps/v1 replicasets ReplicaSet": true, "batch/v1 jobs Job": true}
	if len(got) != len(want) {
		t.Errorf("resources %v, want %v", got, want)
	}
	for k, ns := range want {
		if g, ok := got[k]; !ok || g != ns {
			t.Errorf("resource %q: served %v namespaced %v, want namespaced %v", k, ok, g, ns)
		}
	}
	if n := api.Requests()[k8sfake.Request{Verb: "get", Resource: "/apis"}]; n == 0 {
		t.Errorf("discovery not counted: %v", api.Requests())
	}
}

func TestErrors(t *testing.T) {
	api := k8sfake.Start(t, k8sfake.RequireToken(token))
	api.AddPod(pod("shop", "web-1", "node-a", nil))

	resp, err := http.Get(api.URL() + "/api/v1/pods")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", resp.StatusCode)
	}
	wantStatus(t, api, "/api/v1/namespaces/shop/pods/web-9", 404, metav1.StatusReasonNotFound, `pods "web-9" not found`)
	wantStatus(t, api, "/api/v1/services", 404, metav1.StatusReasonNotFound, "could not find the requested resource")
	wantStatus(t, api, "/api/v1/namespaces/shop/namespaces", 404, metav1.StatusReasonNotFound, "could not find")
	wantStatus(t, api, "/api/v1/pods?fieldSelector=spec.nodeNam%3Dx", 400, metav1.StatusReasonBadRequest, "field label not supported: spec.nodeNam")
	wantStatus(t, api, "/api/v1/pods?labelSelector=a%20in", 400, metav1.StatusReasonBadRequest, "unable to parse requirement")
	wantStatus(t, api, "/api/v1/pods?resourceVersion=99", 504, metav1.StatusReasonTimeout, "Too large resource version")
	wantStatus(t, api, "/api/v1/pods?resourceVersion=0&resourceVersionMatch=Exact", 410, metav1.StatusReasonExpired, "too old resource version")
	wantStatus(t, api, "/api/v1/pods?watch=true&sendInitialEvents=true&allowWatchBookmarks=true", 422, metav1.StatusReasonInvalid, "requires setting resourceVersionMatch")

	req, _ := http.NewRequest(http.MethodDelete, api.URL()+"/api/v1/namespaces/shop/pods/web-1", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("DELETE: %d, want 405 (the fake is read-only over HTTP)", resp.StatusCode)
	}

	api.SetDown(true)
	wantStatus(t, api, "/api/v1/pods", 503, metav1.StatusReasonServiceUnavailable, "unable to handle the request")
	api.SetDown(false)
	var l corev1.PodList
	if resp := get(t, api, "/api/v1/pods", &l); resp.StatusCode != 200 || len(l.Items) != 1 {
		t.Errorf("back up: %d %v", resp.StatusCode, l.Items)
	}

	reqs := api.Requests()
	if n := reqs[k8sfake.Request{Verb: "list", Resource: "pods"}]; n != 7 {
		t.Errorf("%d pod lists counted, want 7 (401, 400s, 504, 410, 503, 200): %v", n, reqs)
	}
	if n := reqs[k8sfake.Request{Verb: "get", Resource: "pods"}]; n != 2 {
		t.Errorf("%d pod gets counted, want 2: %v", n, reqs)
	}
}

func TestListSelectorsAndNamespaces(t *testing.T) {
	api := k8sfake.Start(t)
	api.AddNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}})
	api.AddPod(pod("shop", "web-1", "node-a", map[string]string{"app": "web", "tier": "front"}))
	api.AddPod(pod("shop", "db-1", "node-a", map[string]string{"app": "db"}))
	last := api.AddPod(pod("billing", "web-2", "node-a", map[string]string{"app": "web"}))
	api.AddPod(pod("shop", "web-3", "node-b", map[string]string{"app": "web"}))

	for _, tc := range []struct {
		path string
		want []string
	}{
		{"/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-a", []string{"billing/web-2", "shop/db-1", "shop/web-1"}},
		{"/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-a&labelSelector=app%3Dweb", []string{"billing/web-2", "shop/web-1"}},
		{"/api/v1/pods?labelSelector=app%20in%20(db),!tier", []string{"shop/db-1"}},
		{"/api/v1/namespaces/shop/pods?fieldSelector=spec.nodeName!%3Dnode-a", []string{"shop/web-3"}},
		{"/api/v1/pods?fieldSelector=metadata.namespace%3Dbilling,status.phase%3DRunning", []string{"billing/web-2"}},
	} {
		var l corev1.PodList
		get(t, api, tc.path, &l)
		var got []string
		for _, p := range l.Items {
			got = append(got, p.Namespace+"/"+p.Name)
		}
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("%s: %v, want %v", tc.path, got, tc.want)
		}
		if l.ResourceVersion != "5" || l.Kind != "PodList" || l.APIVersion != "v1" {
			t.Errorf("%s: list %s %s at resourceVersion %q, want PodList v1 at 5", tc.path, l.Kind, l.APIVersion, l.ResourceVersion)
		}
	}
	if last.ResourceVersion != "4" || last.UID == "" || last.CreationTimestamp.IsZero() {
		t.Errorf("stored pod: resourceVersion %q, uid %q, created %v", last.ResourceVersion, last.UID, last.CreationTimestamp)
	}
	var p corev1.Pod
	get(t, api, "/api/v1/namespaces/billing/pods/web-2", &p)
	if p.Kind != "Pod" || p.APIVersion != "v1" || p.UID != last.UID || p.ResourceVersion != "4" {
		t.Errorf("get: %s %s uid %q rv %q", p.Kind, p.APIVersion, p.UID, p.ResourceVersion)
	}
	var ns corev1.Namespace
	get(t, api, "/api/v1/namespaces/shop", &ns)
	if ns.Name != "shop" || ns.Kind != "Namespace" {
		t.Errorf("get namespace: %+v", ns)
	}
}

// TestWatchSelectorTransitions: a watch with selectors sees an object that
// starts matching as ADDED and one that stops matching as DELETED, as the
// API server's watch does; a watch from a resource version resumes after
// it.
func TestWatchSelectorTransitions(t *testing.T) {
	api := k8sfake.Start(t)
	api.AddPod(pod("shop", "web-1", "node-a", map[string]string{"app": "web"}))
	rv := api.ResourceVersion()
	next := openWatch(t, api, "/api/v1/pods?watch=true&allowWatchBookmarks=true&resourceVersion="+rv+
		"&fieldSelector=spec.nodeName%3Dnode-a&labelSelector=app%3Dweb")
	resumed := openWatch(t, api, "/api/v1/pods?watch=true&resourceVersion=0&fieldSelector=spec.nodeName%3Dnode-a")

	api.UpdatePod(pod("shop", "web-1", "node-a", map[string]string{"app": "api"})) // stops matching
	api.UpdatePod(pod("shop", "web-1", "node-a", map[string]string{"app": "web"})) // matches again
	api.AddPod(pod("shop", "web-2", "node-b", map[string]string{"app": "web"}))    // another node
	api.DeletePod("shop", "web-1")

	want := []string{"DELETED web-1 2", "ADDED web-1 3", "DELETED web-1 5"}
	for i, w := range want {
		ev, m, ok := next()
		if got := ev.Type + " " + m.Name + " " + m.ResourceVersion; !ok || got != w {
			t.Fatalf("event %d: %q, want %q", i, got, w)
		}
	}
	// resourceVersion 0: the objects as they were, then every change.
	want = []string{"ADDED web-1 1", "MODIFIED web-1 2", "MODIFIED web-1 3", "DELETED web-1 5"}
	for i, w := range want {
		ev, m, ok := resumed()
		if got := ev.Type + " " + m.Name + " " + m.ResourceVersion; !ok || got != w {
			t.Fatalf("resumed event %d: %q, want %q", i, got, w)
		}
	}

	// A clean end sends a bookmark at the last resource version first.
	api.EndWatches()
	if ev, m, ok := next(); !ok || ev.Type != "BOOKMARK" || m.ResourceVersion != "5" || m.Kind != "Pod" {
		t.Errorf("end of watch: %s %+v %v, want a BOOKMARK at 5", ev.Type, m, ok)
	}
	if _, _, ok := next(); ok {
		t.Error("watch goes on after EndWatches")
	}
	if _, _, ok := resumed(); ok {
		t.Error("watch without bookmarks goes on after EndWatches")
	}
}

func TestWatchList(t *testing.T) {
	api := k8sfake.Start(t)
	api.AddNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "b"}})
	api.AddNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a"}})
	next := openWatch(t, api, "/api/v1/namespaces?watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan")
	api.UpdateNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a", Labels: map[string]string{"team": "x"}}})
	var got []string
	for range 4 {
		ev, m, ok := next()
		if !ok {
			break
		}
		got = append(got, ev.Type+" "+m.Name+" "+m.ResourceVersion+" "+m.Annotations[metav1.InitialEventsAnnotationKey]+m.Labels["team"])
	}
	want := []string{"ADDED a 2 ", "ADDED b 1 ", "BOOKMARK  2 true", "MODIFIED a 3 x"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("streaming list: %q, want %q", got, want)
	}

	off := k8sfake.Start(t, k8sfake.WithoutWatchList())
	wantStatus(t, off, "/api/v1/namespaces?watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan",
		422, metav1.StatusReasonInvalid, "WatchList feature gate")
}

func TestWatchGone(t *testing.T) {
	api := k8sfake.Start(t, k8sfake.HistoryLimit(4))
	for _, n := range []string{"a", "b", "c", "d", "e", "f"} {
		api.AddNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}})
	}
	// Six changes with room for four: the fifth makes the history forget
	// the first three, and a watch from before them is answered 410 in the
	// stream.
	next := openWatch(t, api, "/api/v1/namespaces?watch=true&resourceVersion=1")
	ev, _, ok := next()
	var st metav1.Status
	if ok {
		_ = json.Unmarshal(ev.Object, &st)
	}
	if ev.Type != "ERROR" || st.Code != 410 || st.Reason != metav1.StatusReasonExpired {
		t.Errorf("watch from a forgotten version: %s %+v", ev.Type, st)
	}
	next = openWatch(t, api, "/api/v1/namespaces?watch=true&resourceVersion=4")
	if ev, m, _ := next(); ev.Type != "ADDED" || m.Name != "e" {
		t.Errorf("watch from a remembered version: %s %s, want ADDED e", ev.Type, m.Name)
	}

	// ExpireWatches ends the open watches with 410.
	api.ExpireWatches()
	ev, _, _ = next()
	if ev.Type == "ADDED" { // f, sent before the expiry
		ev, _, _ = next()
	}
	st = metav1.Status{}
	_ = json.Unmarshal(ev.Object, &st)
	if ev.Type != "ERROR" || st.Code != 410 {
		t.Errorf("open watch at ExpireWatches: %s %+v", ev.Type, st)
	}
	if api.OpenWatches() != 0 {
		t.Errorf("%d watches open after ExpireWatches", api.OpenWatches())
	}
}

func TestWatchTimeout(t *testing.T) {
	api := k8sfake.Start(t, k8sfake.WatchTimeout(50*time.Millisecond))
	start := time.Now()
	next := openWatch(t, api, "/api/v1/pods?watch=true&timeoutSeconds=300")
	for {
		if _, _, ok := next(); !ok {
			break
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("watch lasted %v with WatchTimeout 50ms", d)
	}
	watches := api.Requests()[k8sfake.Request{Verb: "watch", Resource: "pods"}]
	if watches != 1 {
		t.Errorf("%d watches counted, want 1", watches)
	}
}

func TestMisusePanics(t *testing.T) {
	api := k8sfake.Start(t)
	api.AddPod(pod("shop", "web-1", "node-a", nil))
	for name, f := range map[string]func(){
		"add existing":     func() { api.AddPod(pod("shop", "web-1", "node-a", nil)) },
		"update missing":   func() { api.UpdatePod(pod("shop", "web-9", "node-a", nil)) },
		"delete missing":   func() { api.DeletePod("shop", "web-9") },
		"pod no namespace": func() { api.AddPod(pod("", "web-2", "node-a", nil)) },
		"namespace with a namespace": func() {
			api.AddNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: "y"}})
		},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}
