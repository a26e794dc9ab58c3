package shipper

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/sluicelogs/sluice/internal/testwait"
	"github.com/sluicelogs/sluice/schemas"
)

// kubeTestConfig is the metadata part of the configuration for unit tests.
func kubeTestConfig() *Config {
	return &Config{
		AnnotationPrefixes:     []string{"sluice.io/", "team"},
		NamespaceLabelPrefixes: []string{"env"},
		TenantLabel:            "sluice.io/tenant",
		MetadataWait:           time.Second,
		MetadataRetention:      time.Minute,
	}
}

func namespace(name string, labels map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("ns-" + name), Labels: labels}}
}

// pod is a pod of node on which the owner (kind/name, or none) is
// controller, with a container c of image img, and some noise the cache
// must drop.
func pod(ns, name, uid, node, ownerKind, ownerName string, labels map[string]string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: name, UID: types.UID(uid), Labels: labels,
			Annotations: map[string]string{
				"sluice.io/team":          "checkout",
				"team-owner":              "alice",
				"secret.example/password": "hunter2",
			},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: "Update"}},
		},
		Spec: corev1.PodSpec{
			NodeName:       node,
			Containers:     []corev1.Container{{Name: "c", Image: "registry.example/app:1.2", Env: []corev1.EnvVar{{Name: "TOKEN", Value: "x"}}}},
			InitContainers: []corev1.Container{{Name: "init", Image: "busybox:1"}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1"},
	}
	if ownerKind != "" {
		yes := true
		p.OwnerReferences = []metav1.OwnerReference{{Kind: ownerKind, Name: ownerName, Controller: &yes, APIVersion: "apps/v1", UID: "owner"}}
	}
	return p
}

func cronJobJob(ns, name, cronJob string) *batchv1.Job {
	yes := true
	return &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("job-" + name),
		OwnerReferences: []metav1.OwnerReference{{Kind: "CronJob", Name: cronJob, Controller: &yes, APIVersion: "batch/v1"}}}}
}

// startTestKube runs a metadata cache over cs for node-a until the test
// ends, and waits for its first lists.
func startTestKube(t testing.TB, cs *fake.Clientset, cfg *Config) (*kubeMeta, *metrics) {
	t.Helper()
	m := newMetrics(prometheus.NewRegistry())
	k := newKubeMeta(clientsetAPI{cs}, cfg, testLogger(t), m, "node-a")
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	k.run(ctx)
	if !k.waitSynced(ctx, 10*time.Second) {
		t.Fatal("metadata cache did not sync within 10s")
	}
	return k, m
}

// waitLookup polls the cache until cond holds for the pod with uid.
func waitLookup(t *testing.T, k *kubeMeta, ns, uid, what string, cond func(*podMeta, *nsMeta, bool) bool) *podMeta {
	t.Helper()
	var pm *podMeta
	testwait.For(t, 10*time.Second, what, func() (bool, string) {
		p, n, ready := k.lookup(PathMeta{Namespace: ns, PodUID: uid})
		pm = p
		return cond(p, n, ready), fmt.Sprintf("pod %+v", p)
	})
	return pm
}

func found(p *podMeta, _ *nsMeta, ready bool) bool { return p != nil && ready }

func TestKubeMetaPodMetadata(t *testing.T) {
	cs := fake.NewClientset(
		namespace("shop", map[string]string{"env": "prod", "sluice.io/tenant": "team-a", "other": "x"}),
		pod("shop", "web-5d9c8b7f6-abcde", "uid-web", "node-a", "ReplicaSet", "web-5d9c8b7f6", map[string]string{"app": "web", "pod-template-hash": "5d9c8b7f6"}),
		pod("shop", "rs-only-x1", "uid-rs", "node-a", "ReplicaSet", "rs-only", map[string]string{"app": "rs"}),
		pod("shop", "db-0", "uid-db", "node-a", "StatefulSet", "db", nil),
		pod("shop", "agent-x", "uid-ds", "node-a", "DaemonSet", "agent", nil),
		pod("shop", "backup-29000000-q", "uid-cron", "node-a", "Job", "backup-29000000", nil),
		pod("shop", "once-q", "uid-job", "node-a", "Job", "once", nil),
		pod("shop", "bare", "uid-bare", "node-a", "", "", nil),
		pod("shop", "elsewhere", "uid-other", "node-b", "", "", nil),
		cronJobJob("shop", "backup-29000000", "backup"),
		&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "once"}},
	)
	k, m := startTestKube(t, cs, kubeTestConfig())

	web := waitLookup(t, k, "shop", "uid-web", "deployment pod", found)
	if web.workload != (schemas.Workload{Kind: "Deployment", Name: "web"}) {
		t.Errorf("workload %+v, want Deployment web", web.workload)
	}
	if web.labels["app"] != "web" || len(web.labels) != 2 {
		t.Errorf("labels %v, want all the pod's labels", web.labels)
	}
	if len(web.annotations) != 2 || web.annotations["sluice.io/team"] != "checkout" || web.annotations["team-owner"] != "alice" {
		t.Errorf("annotations %v, want the allow-listed two only", web.annotations)
	}
	if web.images["c"] != "registry.example/app:1.2" || web.images["init"] != "busybox:1" {
		t.Errorf("images %v", web.images)
	}
	_, ns, _ := k.lookup(PathMeta{Namespace: "shop", PodUID: "uid-web"})
	if ns == nil || ns.tenant != "team-a" || len(ns.labels) != 1 || ns.labels["env"] != "prod" {
		t.Errorf("namespace %+v, want tenant team-a and the allow-listed label env only", ns)
	}
	for uid, want := range map[string]schemas.Workload{
		"uid-rs":   {Kind: "ReplicaSet", Name: "rs-only"},
		"uid-db":   {Kind: "StatefulSet", Name: "db"},
		"uid-ds":   {Kind: "DaemonSet", Name: "agent"},
		"uid-cron": {Kind: "CronJob", Name: "backup"},
		"uid-job":  {Kind: "Job", Name: "once"},
		"uid-bare": {},
	} {
		p := waitLookup(t, k, "shop", uid, uid, found)
		if p.workload != want {
			t.Errorf("%s: workload %+v, want %+v", uid, p.workload, want)
		}
	}
	if p, _, _ := k.lookup(PathMeta{Namespace: "shop", PodUID: "uid-other"}); p != nil {
		t.Errorf("a pod of another node is cached: %+v", p)
	}
	// By name, for paths without the pod uid.
	if p, _, ok := k.lookup(PathMeta{Namespace: "shop", Pod: "db-0"}); !ok || p.uid != "uid-db" {
		t.Errorf("lookup by name: %+v %v", p, ok)
	}

	// The pod list and watch are field-selected to the node; namespaces
	// are listed whole; Jobs are read one by one, once each.
	var podLists, jobGets int
	for _, a := range cs.Actions() {
		switch {
		case a.GetResource().Resource == "pods" && (a.GetVerb() == "list" || a.GetVerb() == "watch"):
			podLists++
			var sel string
			if l, ok := a.(k8stesting.ListAction); ok {
				sel = l.GetListRestrictions().Fields.String()
			}
			if w, ok := a.(k8stesting.WatchAction); ok {
				sel = w.GetWatchRestrictions().Fields.String()
			}
			if sel != "spec.nodeName=node-a" {
				t.Errorf("pods %s with field selector %q, want spec.nodeName=node-a", a.GetVerb(), sel)
			}
		case a.GetResource().Resource == "jobs":
			jobGets++
			if a.GetVerb() != "get" {
				t.Errorf("jobs %s, want get only", a.GetVerb())
			}
		case a.GetResource().Resource == "replicasets":
			t.Errorf("replicasets %s: Deployments are read from the ReplicaSet's name", a.GetVerb())
		}
	}
	if podLists == 0 || jobGets != 2 {
		t.Errorf("%d pod lists/watches, %d job gets; want some, and 2", podLists, jobGets)
	}
	if n := testutil.ToFloat64(m.kubeCached.WithLabelValues("pod")); n != 7 {
		t.Errorf("cached pods gauge %v, want 7 (node-a's)", n)
	}
}

// TestKubeMetaTransformStrips: what the informer stores of a pod is its
// name, namespace, uid, labels, allow-listed annotations, controller,
// node and containers' names and images (the rest of the spec, and the
// status, are not even decoded).
func TestKubeMetaTransformStrips(t *testing.T) {
	k := newKubeMeta(nil, kubeTestConfig(), testLogger(t), newMetrics(prometheus.NewRegistry()), "node-a")
	in := pod("shop", "p", "uid", "node-a", "StatefulSet", "db", map[string]string{"a": "b"})
	in.OwnerReferences = append(in.OwnerReferences, metav1.OwnerReference{Kind: "ConfigMap", Name: "not-a-controller"})
	out, err := k.transformPod(asKube(in))
	if err != nil {
		t.Fatal(err)
	}
	p := out.(*kubePod)
	if len(p.ManagedFields) != 0 || len(p.OwnerReferences) != 1 || p.OwnerReferences[0].Name != "db" {
		t.Errorf("not stripped: %+v", p)
	}
	if p.Labels["a"] != "b" || p.Spec.NodeName != "node-a" || p.Spec.Containers[0].Image != "registry.example/app:1.2" ||
		p.Spec.InitContainers[0].Name != "init" || len(p.Annotations) != 2 {
		t.Errorf("lost what records carry: %+v", p)
	}
	if _, ok := p.Annotations["secret.example/password"]; ok {
		t.Error("an annotation outside the allow-list is kept")
	}
}

// TestKubeMetaLatePodAndRetention: a pod created after the cache synced
// arrives through the watch; a deleted pod stays for the retention, then
// is forgotten; a status update does not move the generation.
func TestKubeMetaLatePodAndRetention(t *testing.T) {
	cs := fake.NewClientset(namespace("shop", nil))
	cfg := kubeTestConfig()
	cfg.MetadataRetention = 50 * time.Millisecond
	k, _ := startTestKube(t, cs, cfg)
	ctx := context.Background()
	p := pod("shop", "late", "uid-late", "node-a", "StatefulSet", "late", map[string]string{"v": "1"})
	if _, err := cs.CoreV1().Pods("shop").Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitLookup(t, k, "shop", "uid-late", "late pod", found)
	gen := k.gen.Load()
	p.Status.Phase = corev1.PodSucceeded
	p.ResourceVersion = ""
	if _, err := cs.CoreV1().Pods("shop").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	p.Labels = map[string]string{"v": "2"}
	if _, err := cs.CoreV1().Pods("shop").Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitLookup(t, k, "shop", "uid-late", "relabelled pod", func(p *podMeta, _ *nsMeta, _ bool) bool { return p != nil && p.labels["v"] == "2" })
	if d := k.gen.Load() - gen; d != 1 {
		t.Errorf("generation moved %d times for a status update and a label change, want 1", d)
	}
	if err := cs.CoreV1().Pods("shop").Delete(ctx, "late", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deleted := waitLookup(t, k, "shop", "uid-late", "deleted pod kept", func(p *podMeta, _ *nsMeta, _ bool) bool { return p != nil && !p.deleted.IsZero() })
	if deleted.labels["v"] != "2" {
		t.Errorf("deleted pod lost its labels: %+v", deleted)
	}
	k.purge()
	if p, _, _ := k.lookup(PathMeta{Namespace: "shop", PodUID: "uid-late"}); p == nil && time.Since(deleted.deleted) < cfg.MetadataRetention {
		t.Error("deleted pod purged within the retention")
	}
	time.Sleep(cfg.MetadataRetention)
	k.purge()
	if p, _, _ := k.lookup(PathMeta{Namespace: "shop", PodUID: "uid-late"}); p != nil {
		t.Errorf("deleted pod kept past the retention: %+v", p)
	}
}

// TestKubeMetaJobsForbidden: without the RBAC for jobs, a Job's pods carry
// the Job, and Jobs are not asked for again.
func TestKubeMetaJobsForbidden(t *testing.T) {
	cs := fake.NewClientset(namespace("shop", nil),
		pod("shop", "a", "uid-a", "node-a", "Job", "backup-1", nil),
		cronJobJob("shop", "backup-1", "backup"))
	cs.PrependReactor("get", "jobs", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "batch", Resource: "jobs"}, "backup-1", errors.New("no RBAC"))
	})
	k, m := startTestKube(t, cs, kubeTestConfig())
	p := waitLookup(t, k, "shop", "uid-a", "job pod", found)
	if p.workload != (schemas.Workload{Kind: "Job", Name: "backup-1"}) {
		t.Errorf("workload %+v, want the Job", p.workload)
	}
	if !k.jobsDenied.Load() || testutil.ToFloat64(m.kubeAPIErrors) != 1 {
		t.Errorf("jobs denied %v, api errors %v", k.jobsDenied.Load(), testutil.ToFloat64(m.kubeAPIErrors))
	}
	if _, err := cs.CoreV1().Pods("shop").Create(context.Background(), pod("shop", "b", "uid-b", "node-a", "Job", "backup-2", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitLookup(t, k, "shop", "uid-b", "second job pod", found)
	gets := 0
	for _, a := range cs.Actions() {
		if a.GetResource().Resource == "jobs" {
			gets++
		}
	}
	if gets != 1 {
		t.Errorf("%d job gets, want 1 (none after the first was denied)", gets)
	}
}

// TestKubeMetaAPIDown: an API server that fails every list leaves the
// cache unsynced, counts the errors, and stops new followers from waiting
// once the first wait passed.
func TestKubeMetaAPIDown(t *testing.T) {
	cs := fake.NewClientset()
	cs.PrependReactor("list", "*", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("connection refused")
	})
	cfg := kubeTestConfig()
	cfg.MetadataWait = 100 * time.Millisecond
	m := newMetrics(prometheus.NewRegistry())
	k := newKubeMeta(clientsetAPI{cs}, cfg, testLogger(t), m, "node-a")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	k.run(ctx)
	if k.waitSynced(ctx, cfg.MetadataWait) {
		t.Fatal("synced against an API server that fails")
	}
	testwait.For(t, 10*time.Second, "two API errors counted", func() (bool, string) {
		n := testutil.ToFloat64(m.kubeAPIErrors)
		return n >= 2, fmt.Sprintf("%v counted", n)
	})
	if k.waitable() {
		t.Error("followers still wait for a cache that never synced, past the wait")
	}
}

// testLogger logs to stderr with -v, else nowhere.
func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}
