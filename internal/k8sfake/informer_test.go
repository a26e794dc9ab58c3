package k8sfake_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/sluicelogs/sluice/internal/k8sfake"
	"github.com/sluicelogs/sluice/internal/testwait"
)

const token = "shipper-token"

// clientset returns a real client-go clientset for the fake, as the
// shipper makes one from its settings.
func clientset(t *testing.T, api *k8sfake.Server) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(&rest.Config{Host: api.URL(), BearerToken: token, QPS: -1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func pod(ns, name, node string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}
}

// podRecorder keeps what a pod informer's handlers were told.
type podRecorder struct {
	mu     sync.Mutex
	events []string // "add ns/name", "update ns/name", "delete ns/name"
}

func (r *podRecorder) handler() cache.ResourceEventHandler {
	rec := func(op string) func(any) {
		return func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			p := obj.(*corev1.Pod)
			r.mu.Lock()
			r.events = append(r.events, op+" "+p.Namespace+"/"+p.Name)
			r.mu.Unlock()
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    rec("add"),
		UpdateFunc: func(_, n any) { rec("update")(n) },
		DeleteFunc: rec("delete"),
	}
}

func (r *podRecorder) seen(ev string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.events, ev)
}

// nodeInformer starts a pod informer for one node, as the shipper's is: a
// field selector spec.nodeName=node. It is stopped with t.Cleanup.
func nodeInformer(t *testing.T, api *k8sfake.Server, node string) (cache.SharedIndexInformer, *podRecorder) {
	t.Helper()
	f := informers.NewSharedInformerFactoryWithOptions(clientset(t, api), 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.FieldSelector = "spec.nodeName=" + node }))
	inf := f.Core().V1().Pods().Informer()
	rec := &podRecorder{}
	if _, err := inf.AddEventHandler(rec.handler()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.Start(ctx.Done())
	t.Cleanup(func() { cancel(); f.Shutdown() })
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		t.Fatal("pod informer did not sync")
	}
	return inf, rec
}

// cached lists the keys in an informer's store, sorted.
func cached(inf cache.SharedIndexInformer) []string {
	keys := inf.GetStore().ListKeys()
	sort.Strings(keys)
	return keys
}

func podLabel(inf cache.SharedIndexInformer, key, label string) string {
	obj, ok, _ := inf.GetStore().GetByKey(key)
	if !ok {
		return ""
	}
	return obj.(*corev1.Pod).Labels[label]
}

func TestPodInformerOneNode(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []k8sfake.Option
		// lists is the number of pod lists the informer needs: none with
		// a streaming list (a watch brings the initial state), one where
		// the server has no WatchList.
		lists int64
	}{
		{"watchlist", nil, 0},
		{"list", []k8sfake.Option{k8sfake.WithoutWatchList()}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := k8sfake.Start(t, append(tc.opts, k8sfake.RequireToken(token))...)
			api.AddPod(pod("shop", "web-1", "node-a", map[string]string{"app": "web"}))
			api.AddPod(pod("shop", "web-2", "node-b", map[string]string{"app": "web"}))
			api.AddPod(pod("kube-system", "dns-1", "node-a", nil))

			inf, rec := nodeInformer(t, api, "node-a")
			if got, want := cached(inf), []string{"kube-system/dns-1", "shop/web-1"}; !slices.Equal(got, want) {
				t.Fatalf("synced with %v, want %v (node-a's only)", got, want)
			}
			if n := api.Requests()[k8sfake.Request{Verb: "list", Resource: "pods"}]; n != tc.lists {
				t.Errorf("%d pod lists, want %d: %v", n, tc.lists, api.Requests())
			}
			testwait.For(t, 10*time.Second, "an open watch", func() (bool, string) { n := api.OpenWatches(); return n == 1, fmt.Sprintf("%d open", n) })

			// A pod of another node stays out; one scheduled later onto
			// node-a comes in (it starts matching the selector).
			api.AddPod(pod("shop", "web-3", "node-b", nil))
			pending := api.AddPod(pod("shop", "batch-1", "", nil))
			pending.Spec.NodeName = "node-a"
			api.UpdatePod(pending)
			testwait.For(t, 10*time.Second, "the pod scheduled onto node-a", func() (bool, string) { return rec.seen("add shop/batch-1"), "" })

			// An update is seen with its new labels, a delete removes it.
			p := pod("shop", "web-1", "node-a", map[string]string{"app": "web", "version": "2"})
			api.UpdatePod(p)
			testwait.For(t, 10*time.Second, "the update", func() (bool, string) { return podLabel(inf, "shop/web-1", "version") == "2", "" })
			api.DeletePod("kube-system", "dns-1")
			testwait.For(t, 10*time.Second, "the delete", func() (bool, string) { return rec.seen("delete kube-system/dns-1"), "" })

			if got, want := cached(inf), []string{"shop/batch-1", "shop/web-1"}; !slices.Equal(got, want) {
				t.Errorf("cache %v, want %v", got, want)
			}
			if rec.seen("add shop/web-2") || rec.seen("add shop/web-3") {
				t.Errorf("pods of node-b reached node-a's informer: %v", rec.events)
			}
		})
	}
}

func TestPodInformerRecoversFromDown(t *testing.T) {
	api := k8sfake.Start(t, k8sfake.RequireToken(token))
	api.AddPod(pod("shop", "web-1", "node-a", nil))
	api.AddPod(pod("shop", "web-2", "node-a", nil))
	inf, rec := nodeInformer(t, api, "node-a")
	testwait.For(t, 10*time.Second, "an open watch", func() (bool, string) { n := api.OpenWatches(); return n == 1, fmt.Sprintf("%d open", n) })
	before := api.Requests()

	// The API server goes away; meanwhile pods change, and the history is
	// compacted, so the informer cannot resume its watch and must list
	// again: the deletion is seen only through that list.
	api.SetDown(true)
	if n := api.OpenWatches(); n != 0 {
		t.Fatalf("%d watches open while down", n)
	}
	api.DeletePod("shop", "web-2")
	api.AddPod(pod("shop", "web-3", "node-a", nil))
	api.UpdatePod(pod("shop", "web-1", "node-a", map[string]string{"version": "2"}))
	api.Compact()
	testwait.For(t, 10*time.Second, "the informer to try while down", func() (bool, string) {
		return api.Requests()[k8sfake.Request{Verb: "watch", Resource: "pods"}] > before[k8sfake.Request{Verb: "watch", Resource: "pods"}], ""
	})
	if got := cached(inf); !slices.Equal(got, []string{"shop/web-1", "shop/web-2"}) {
		t.Fatalf("cache changed while down: %v", got)
	}
	api.SetDown(false)

	testwait.For(t, 10*time.Second, "the re-list", func() (bool, string) {
		return slices.Equal(cached(inf), []string{"shop/web-1", "shop/web-3"}) &&
			podLabel(inf, "shop/web-1", "version") == "2", ""
	})
	if !rec.seen("delete shop/web-2") {
		t.Errorf("the pod deleted while down was not reported deleted: %v", rec.events)
	}
	testwait.For(t, 10*time.Second, "a watch again", func() (bool, string) { n := api.OpenWatches(); return n == 1, fmt.Sprintf("%d open", n) })
	api.AddPod(pod("shop", "web-4", "node-a", nil))
	testwait.For(t, 10*time.Second, "a pod added after the recovery", func() (bool, string) { return rec.seen("add shop/web-4"), "" })
}

func TestPodInformerRelistsAfterGone(t *testing.T) {
	api := k8sfake.Start(t, k8sfake.RequireToken(token), k8sfake.WithoutWatchList())
	api.AddPod(pod("shop", "web-1", "node-a", nil))
	inf, rec := nodeInformer(t, api, "node-a")
	testwait.For(t, 10*time.Second, "an open watch", func() (bool, string) { n := api.OpenWatches(); return n == 1, fmt.Sprintf("%d open", n) })
	list := k8sfake.Request{Verb: "list", Resource: "pods"}
	lists := api.Requests()[list]

	// A watch that ends is resumed from its resource version, without a
	// list.
	api.EndWatches()
	api.AddPod(pod("shop", "web-2", "node-a", nil))
	testwait.For(t, 10*time.Second, "the pod added after the watch ended", func() (bool, string) { return rec.seen("add shop/web-2"), "" })
	if n := api.Requests()[list]; n != lists {
		t.Errorf("%d lists after a watch ended, want none", n-lists)
	}

	// 410 Gone makes it list again.
	api.ExpireWatches()
	testwait.For(t, 10*time.Second, "a list after 410 Gone", func() (bool, string) { return api.Requests()[list] > lists, "" })
	testwait.For(t, 10*time.Second, "a watch again", func() (bool, string) { n := api.OpenWatches(); return n == 1, fmt.Sprintf("%d open", n) })
	api.AddPod(pod("shop", "web-3", "node-a", nil))
	testwait.For(t, 10*time.Second, "the pod added after the re-list", func() (bool, string) { return rec.seen("add shop/web-3"), "" })
	if got := cached(inf); !slices.Equal(got, []string{"shop/web-1", "shop/web-2", "shop/web-3"}) {
		t.Errorf("cache %v", got)
	}
}

func TestNamespaceInformerSeesLabelChange(t *testing.T) {
	api := k8sfake.Start(t, k8sfake.RequireToken(token))
	api.AddNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"team": "a"}}})
	f := informers.NewSharedInformerFactory(clientset(t, api), 0)
	inf := f.Core().V1().Namespaces().Informer()
	ctx, cancel := context.WithCancel(context.Background())
	f.Start(ctx.Done())
	t.Cleanup(func() { cancel(); f.Shutdown() })
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		t.Fatal("namespace informer did not sync")
	}
	lister := f.Core().V1().Namespaces().Lister()
	ns, err := lister.Get("shop")
	if err != nil || ns.Labels["team"] != "a" {
		t.Fatalf("namespace shop = %v, %v", ns, err)
	}

	api.UpdateNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop",
		Labels: map[string]string{"team": "b", "sluice.io/tenant": "acme"}}})
	testwait.For(t, 10*time.Second, "the namespace's new labels", func() (bool, string) {
		ns, err := lister.Get("shop")
		return err == nil && ns.Labels["team"] == "b" && ns.Labels["sluice.io/tenant"] == "acme", ""
	})
	api.AddNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "billing"}})
	testwait.For(t, 10*time.Second, "a new namespace", func() (bool, string) { _, err := lister.Get("billing"); return err == nil, "" })
}

// TestWorkloadOwners resolves a pod's owning Deployment and CronJob
// through ReplicaSet and Job informers and gets, as the shipper does.
func TestWorkloadOwners(t *testing.T) {
	api := k8sfake.Start(t, k8sfake.RequireToken(token))
	ctrl := true
	api.AddReplicaSet(&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-7d4b9",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: "d1", Controller: &ctrl}}}})
	api.AddJob(&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "report-29000000",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "CronJob", Name: "report", UID: "c1", Controller: &ctrl}}}})
	api.AddJob(&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "billing", Name: "once"}})

	c := clientset(t, api)
	f := informers.NewSharedInformerFactoryWithOptions(c, 0, informers.WithNamespace("shop"))
	rsInf, jobInf := f.Apps().V1().ReplicaSets().Informer(), f.Batch().V1().Jobs().Informer()
	ctx, cancel := context.WithCancel(context.Background())
	f.Start(ctx.Done())
	t.Cleanup(func() { cancel(); f.Shutdown() })
	if !cache.WaitForCacheSync(ctx.Done(), rsInf.HasSynced, jobInf.HasSynced) {
		t.Fatal("workload informers did not sync")
	}
	rs, err := f.Apps().V1().ReplicaSets().Lister().ReplicaSets("shop").Get("web-7d4b9")
	if err != nil || metav1.GetControllerOf(rs).Name != "web" {
		t.Fatalf("replicaset = %v, %v", rs, err)
	}
	if got := cached(jobInf); !slices.Equal(got, []string{"shop/report-29000000"}) {
		t.Errorf("jobs of shop = %v (the namespaced list must leave out billing's)", got)
	}

	api.AddReplicaSet(&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-8f5c1",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: "d1", Controller: &ctrl}}}})
	testwait.For(t, 10*time.Second, "a new replicaset", func() (bool, string) {
		_, ok, _ := rsInf.GetStore().GetByKey("shop/web-8f5c1")
		return ok, ""
	})

	// A direct get, as a lookup of an owner the cache has not seen yet.
	job, err := c.BatchV1().Jobs("shop").Get(ctx, "report-29000000", metav1.GetOptions{})
	if err != nil || metav1.GetControllerOf(job).Kind != "CronJob" {
		t.Fatalf("get job = %v, %v", job, err)
	}
	if _, err := c.AppsV1().ReplicaSets("shop").Get(ctx, "gone", metav1.GetOptions{}); err == nil || err.Error() != `replicasets.apps "gone" not found` {
		t.Errorf("get of a missing replicaset: %v", err)
	}
	if n := api.Requests()[k8sfake.Request{Verb: "get", Resource: "jobs"}]; n != 1 {
		t.Errorf("%d gets of jobs counted, want 1", n)
	}
}
