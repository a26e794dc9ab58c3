package shipper

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"

	"github.com/sluicelogs/sluice/internal/nodelog"
	"github.com/sluicelogs/sluice/internal/testwait"
	"github.com/sluicelogs/sluice/schemas"
)

// recordSink is an output that keeps every record it is given, with its
// topic.
type recordSink struct {
	mu   sync.Mutex
	recs []sent
}

type sent struct {
	topic string
	rec   schemas.Record
}

func (s *recordSink) name() string                                         { return "records" }
func (s *recordSink) sync() error                                          { return nil }
func (s *recordSink) flush(context.Context) error                          { return nil }
func (s *recordSink) close()                                               {}
func (s *recordSink) topicMaxMessage(context.Context, string) (int, error) { return 0, nil }
func (s *recordSink) resetTopic(string)                                    {}
func (s *recordSink) produce(topic string, _ []byte, rec *schemas.Record, t ticket) {
	r := *rec // the metadata maps are the cache's, never changed
	r.ID, r.Log = strings.Clone(rec.ID), strings.Clone(rec.Log)
	s.mu.Lock()
	s.recs = append(s.recs, sent{topic, r})
	s.mu.Unlock()
	t.done(nil)
}

// byLog returns the last record of each message.
func (s *recordSink) byLog() map[string]sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]sent, len(s.recs))
	for _, r := range s.recs {
		out[r.rec.Log] = r
	}
	return out
}

// waitRecord waits for the record of msg and returns it.
func (s *recordSink) waitRecord(t *testing.T, msg string) sent {
	t.Helper()
	var r sent
	testwait.For(t, 10*time.Second, fmt.Sprintf("record %q to be shipped", msg), func() (bool, string) {
		var ok bool
		r, ok = s.byLog()[msg]
		return ok, ""
	})
	return r
}

// startKubeShipper runs a shipper with the metadata cache over cs and a
// recording output.
func startKubeShipper(t *testing.T, node *nodelog.Node, cs *fake.Clientset, env map[string]string) (*running, *recordSink) {
	t.Helper()
	vars := map[string]string{
		"SLUICE_SHIPPER_KUBERNETES_METADATA":      "on",
		"SLUICE_SHIPPER_ANNOTATION_PREFIXES":      "sluice.io/",
		"SLUICE_SHIPPER_NAMESPACE_LABEL_PREFIXES": "env",
		"SLUICE_SHIPPER_METADATA_WAIT":            "300ms",
	}
	for k, v := range env {
		vars[k] = v
	}
	cfg := testConfig(t, node, nil, vars)
	sink := &recordSink{}
	r := startShipperWith(t, cfg, Options{}, func(sh *Shipper) { sh.sink, sh.kcs = sink, clientsetAPI{cs} })
	return r, sink
}

// startShipperWith is startShipper with a hook on the shipper before it
// runs (to set its output).
func startShipperWith(t *testing.T, cfg Config, o Options, hook func(*Shipper)) *running {
	t.Helper()
	o.Logger = testLogger(t)
	ready := make(chan struct{})
	var once sync.Once
	o.Ready = func(ok bool) {
		if ok {
			once.Do(func() { close(ready) })
		}
	}
	sh, err := New(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	hook(sh)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{sh: sh, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- sh.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("shipper not ready within 10s")
	}
	return r
}

func writeLine(t *testing.T, c *nodelog.Container, msg string) {
	t.Helper()
	if err := c.Write(time.Now(), "stdout", msg); err != nil {
		t.Fatal(err)
	}
}

// TestShipperKubernetesMetadata: records carry the pod's labels, the
// allow-listed annotations and namespace labels, the container's image and
// the workload; the tenant is the namespace's label.
func TestShipperKubernetesMetadata(t *testing.T) {
	node := &nodelog.Node{Root: t.TempDir()}
	web, _ := node.AddContainer("shop", "web-5d9c8b7f6-abcde", "c", nodelog.CRI)
	db, _ := node.AddContainer("shop", "db-0", "c", nodelog.CRI)
	cron, _ := node.AddContainer("shop", "backup-29000000-q", "c", nodelog.CRI)
	cs := fake.NewClientset(
		namespace("shop", map[string]string{"env": "prod", "sluice.io/tenant": "team-a", "secret": "x"}),
		pod("shop", web.Pod, web.PodUID, "node-a", "ReplicaSet", "web-5d9c8b7f6", map[string]string{"app": "web", "pod-template-hash": "5d9c8b7f6"}),
		pod("shop", db.Pod, db.PodUID, "node-a", "StatefulSet", "db", map[string]string{"app": "db"}),
		pod("shop", cron.Pod, cron.PodUID, "node-a", "Job", "backup-29000000", nil),
		cronJobJob("shop", "backup-29000000", "backup"),
	)
	writeLine(t, web, "web-1")
	writeLine(t, db, "db-1")
	writeLine(t, cron, "cron-1")
	_, sink := startKubeShipper(t, node, cs, nil)

	r := sink.waitRecord(t, "web-1")
	k := r.rec.Kubernetes
	if r.rec.Metadata != "" || r.rec.Tenant != "team-a" || r.topic != "logs.raw.team-a" {
		t.Errorf("metadata %q, tenant %q, topic %q; want full, team-a, sluice.raw.team-a", r.rec.Metadata, r.rec.Tenant, r.topic)
	}
	if k.Labels["app"] != "web" || k.Annotations["sluice.io/team"] != "checkout" || len(k.Annotations) != 1 {
		t.Errorf("labels %v, annotations %v", k.Labels, k.Annotations)
	}
	if len(k.NamespaceLabels) != 1 || k.NamespaceLabels["env"] != "prod" {
		t.Errorf("namespace labels %v, want env only", k.NamespaceLabels)
	}
	if k.ContainerImage != "registry.example/app:1.2" || k.Workload != (schemas.Workload{Kind: "Deployment", Name: "web"}) || k.Host != "node-a" {
		t.Errorf("image %q, workload %+v, host %q", k.ContainerImage, k.Workload, k.Host)
	}
	if w := sink.waitRecord(t, "db-1").rec.Kubernetes.Workload; w != (schemas.Workload{Kind: "StatefulSet", Name: "db"}) {
		t.Errorf("db workload %+v", w)
	}
	if w := sink.waitRecord(t, "cron-1").rec.Kubernetes.Workload; w != (schemas.Workload{Kind: "CronJob", Name: "backup"}) {
		t.Errorf("cron workload %+v", w)
	}
}

// TestShipperPodAfterFirstLine: a container whose pod is not known waits
// SLUICE_SHIPPER_METADATA_WAIT, then ships flagged partial; once the pod
// is known, its next lines carry the full metadata.
func TestShipperPodAfterFirstLine(t *testing.T) {
	node := &nodelog.Node{Root: t.TempDir()}
	cs := fake.NewClientset(namespace("shop", nil))
	r, sink := startKubeShipper(t, node, cs, nil)
	c, _ := node.AddContainer("shop", "late", "c", nodelog.CRI)
	writeLine(t, c, "first")
	first := sink.waitRecord(t, "first")
	if first.rec.Metadata != schemas.MetadataPartial || first.rec.Kubernetes.PodName != "late" || first.rec.Kubernetes.Labels != nil {
		t.Errorf("first line: metadata %q, kubernetes %+v; want partial, from the path", first.rec.Metadata, first.rec.Kubernetes)
	}
	if _, err := cs.CoreV1().Pods("shop").Create(context.Background(),
		pod("shop", "late", c.PodUID, "node-a", "StatefulSet", "late", map[string]string{"app": "late"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	i := 0
	testwait.For(t, 10*time.Second, "a line after the pod came to carry its metadata", func() (bool, string) {
		msg := "next-" + string(rune('a'+i%26))
		i++
		writeLine(t, c, msg)
		rec := sink.waitRecord(t, msg).rec
		return rec.Metadata == "" && rec.Kubernetes.Labels["app"] == "late" && rec.Kubernetes.Workload.Name == "late", fmt.Sprintf("%+v", rec)
	})
	if n := testutil.ToFloat64(r.sh.m.metadataLookups.WithLabelValues("partial")); n != 1 {
		t.Errorf("partial look-ups %v, want 1", n)
	}
}

// TestShipperPodWaitedFor: a pod that arrives within the wait is there for
// the container's first line.
func TestShipperPodWaitedFor(t *testing.T) {
	node := &nodelog.Node{Root: t.TempDir()}
	cs := fake.NewClientset(namespace("shop", nil))
	_, sink := startKubeShipper(t, node, cs, map[string]string{"SLUICE_SHIPPER_METADATA_WAIT": "10s"})
	c, _ := node.AddContainer("shop", "soon", "c", nodelog.CRI)
	writeLine(t, c, "first")
	time.Sleep(50 * time.Millisecond) // the follower starts, and waits
	if _, err := cs.CoreV1().Pods("shop").Create(context.Background(),
		pod("shop", "soon", c.PodUID, "node-a", "DaemonSet", "agent", map[string]string{"app": "soon"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rec := sink.waitRecord(t, "first").rec
	if rec.Metadata != "" || rec.Kubernetes.Labels["app"] != "soon" {
		t.Errorf("first line: metadata %q, labels %v; want the pod's", rec.Metadata, rec.Kubernetes.Labels)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shipped %s after the pod came: the cache should wake the follower", d)
	}
}

// TestShipperDeletedPodLateLines: lines written after the pod was deleted
// (a finished Job's last lines, read late) keep its metadata within the
// retention.
func TestShipperDeletedPodLateLines(t *testing.T) {
	node := &nodelog.Node{Root: t.TempDir()}
	c, _ := node.AddContainer("shop", "job-x", "c", nodelog.CRI)
	cs := fake.NewClientset(namespace("shop", nil),
		pod("shop", "job-x", c.PodUID, "node-a", "Job", "once", map[string]string{"app": "job"}))
	r, sink := startKubeShipper(t, node, cs, nil)
	writeLine(t, c, "before")
	if l := sink.waitRecord(t, "before").rec.Kubernetes.Labels; l["app"] != "job" {
		t.Fatalf("labels %v", l)
	}
	if err := cs.CoreV1().Pods("shop").Delete(context.Background(), "job-x", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 20*time.Second, "the pod's deletion seen", func() (bool, string) {
		p, _, _ := r.sh.kube.lookup(PathMeta{Namespace: "shop", PodUID: c.PodUID})
		return p != nil && !p.deleted.IsZero(), ""
	})
	writeLine(t, c, "after")
	rec := sink.waitRecord(t, "after").rec
	if rec.Metadata != "" || rec.Kubernetes.Labels["app"] != "job" || rec.Kubernetes.Workload.Name != "once" {
		t.Errorf("late line: metadata %q, kubernetes %+v; want the deleted pod's", rec.Metadata, rec.Kubernetes)
	}
}

// TestShipperNamespaceRelabelled: a namespace's tenant label decides the
// topic, before SLUICE_SHIPPER_TENANT_MAP; relabelled, the next lines go to
// the new tenant, and no line is lost or sent twice.
func TestShipperNamespaceRelabelled(t *testing.T) {
	node := &nodelog.Node{Root: t.TempDir()}
	c, _ := node.AddContainer("shop", "web", "c", nodelog.CRI)
	other, _ := node.AddContainer("plain", "p", "c", nodelog.CRI)
	cs := fake.NewClientset(
		namespace("shop", map[string]string{"sluice.io/tenant": "team-a"}),
		namespace("plain", nil),
		pod("shop", "web", c.PodUID, "node-a", "", "", nil),
		pod("plain", "p", other.PodUID, "node-a", "", "", nil))
	_, sink := startKubeShipper(t, node, cs, map[string]string{"SLUICE_SHIPPER_TENANT_MAP": "shop=mapped,plain=mapped-plain"})
	writeLine(t, other, "plain-1")
	if r := sink.waitRecord(t, "plain-1"); r.topic != "logs.raw.mapped-plain" {
		t.Errorf("unlabelled namespace: topic %s, want the tenant map's", r.topic)
	}
	writeLine(t, c, "a-0")
	if r := sink.waitRecord(t, "a-0"); r.topic != "logs.raw.team-a" || r.rec.Tenant != "team-a" {
		t.Fatalf("labelled namespace: topic %s, tenant %s; want team-a's", r.topic, r.rec.Tenant)
	}
	// Lines keep coming while the label changes.
	stop := make(chan struct{})
	written := make(chan int)
	go func() {
		n := 1
		defer func() { written <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := c.Write(time.Now(), "stdout", "a-"+itoa(n)); err != nil {
				return
			}
			n++
			time.Sleep(time.Millisecond)
		}
	}()
	time.Sleep(50 * time.Millisecond)
	if _, err := cs.CoreV1().Namespaces().Update(context.Background(),
		namespace("shop", map[string]string{"sluice.io/tenant": "team-b"}), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	var last sent
	testwait.Eventually(t, 10*time.Second, "lines to team-b", func() (bool, string) {
		for _, r := range sink.byLog() {
			if r.topic == "logs.raw.team-b" {
				last = r
				return true, ""
			}
		}
		return false, ""
	})
	close(stop)
	n := <-written
	sink.waitRecord(t, "a-"+itoa(n-1))
	if last.rec.Tenant != "team-b" {
		t.Errorf("record on team-b's topic says tenant %q", last.rec.Tenant)
	}
	// Every line once, team-a's before team-b's.
	sink.mu.Lock()
	defer sink.mu.Unlock()
	seen := map[string]int{}
	switched := false
	for _, r := range sink.recs {
		if !strings.HasPrefix(r.rec.Log, "a-") {
			continue
		}
		seen[r.rec.Log]++
		switch r.topic {
		case "logs.raw.team-b":
			switched = true
		case "logs.raw.team-a":
			if switched {
				t.Errorf("%s went to team-a after lines went to team-b", r.rec.Log)
			}
		default:
			t.Errorf("%s went to %s", r.rec.Log, r.topic)
		}
	}
	for i := range n {
		if seen["a-"+itoa(i)] != 1 {
			t.Errorf("a-%d shipped %d times", i, seen["a-"+itoa(i)])
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestShipperAPIDown: an API server that does not answer holds nothing
// back: lines are shipped flagged partial, and the errors counted.
func TestShipperAPIDown(t *testing.T) {
	node := &nodelog.Node{Root: t.TempDir()}
	c, _ := node.AddContainer("shop", "web", "c", nodelog.CRI)
	writeLine(t, c, "one")
	cs := fake.NewClientset()
	cs.PrependReactor("list", "*", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("connection refused")
	})
	start := time.Now()
	r, sink := startKubeShipper(t, node, cs, nil)
	rec := sink.waitRecord(t, "one").rec
	if rec.Metadata != schemas.MetadataPartial || rec.Tenant != "shop" || rec.Kubernetes.PodName != "web" {
		t.Errorf("metadata %q, tenant %q, kubernetes %+v; want partial, the namespace, the path's", rec.Metadata, rec.Tenant, rec.Kubernetes)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("first line shipped after %s", d)
	}
	writeLine(t, c, "two")
	if rec := sink.waitRecord(t, "two").rec; rec.Metadata != schemas.MetadataPartial {
		t.Errorf("second line metadata %q", rec.Metadata)
	}
	if testutil.ToFloat64(r.sh.m.kubeAPIErrors) == 0 {
		t.Error("API errors not counted")
	}
}

// TestKubeConfigValidation: the metadata settings are checked, each
// problem naming its variable; auto is on inside a cluster only.
func TestKubeConfigValidation(t *testing.T) {
	node := &nodelog.Node{Root: t.TempDir()}
	for _, tt := range []struct{ name, value string }{
		{"SLUICE_SHIPPER_KUBERNETES_METADATA", "yes"},
		{"SLUICE_SHIPPER_KUBERNETES_API", "localhost:6443"},
		{"SLUICE_SHIPPER_TENANT_LABEL", "not a label"},
		{"SLUICE_SHIPPER_METADATA_WAIT", "-1s"},
		{"SLUICE_SHIPPER_METADATA_RETENTION", "-1m"},
		{"SLUICE_SHIPPER_KUBERNETES_TOKEN_FILE", "/token"}, // without an API URL
	} {
		cfg := testConfig(t, node, nil, map[string]string{tt.name: tt.value})
		want := tt.name
		if tt.name == "SLUICE_SHIPPER_KUBERNETES_TOKEN_FILE" {
			want = "SLUICE_SHIPPER_KUBERNETES_API"
		}
		if err := cfg.Validate(); err == nil || len(problemLines(t, err, want)) != 1 {
			t.Errorf("%s=%q: Validate() = %v, want one problem naming %s", tt.name, tt.value, err, want)
		}
	}
	cfg := testConfig(t, node, nil, map[string]string{
		"SLUICE_SHIPPER_KUBERNETES_API":        "https://10.0.0.1:6443",
		"SLUICE_SHIPPER_KUBERNETES_TOKEN_FILE": "/token",
		"SLUICE_SHIPPER_TENANT_LABEL":          "example.com/tenant",
	})
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate() = %v", err)
	}

	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	auto := testConfig(t, node, nil, nil)
	if auto.KubernetesMetadata != "auto" || auto.kubernetesEnabled(false) {
		t.Errorf("metadata %q on outside a cluster", auto.KubernetesMetadata)
	}
	if !auto.kubernetesEnabled(true) || !cfg.kubernetesEnabled(false) {
		t.Error("auto is off with a client or an API URL given")
	}
	t.Setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
	if !auto.kubernetesEnabled(false) {
		t.Error("auto is off inside a cluster")
	}
	off := testConfig(t, node, nil, map[string]string{"SLUICE_SHIPPER_KUBERNETES_METADATA": "off"})
	if off.kubernetesEnabled(true) {
		t.Error("off is on")
	}
}

// TestKubeClientFromURL: a client built from SLUICE_SHIPPER_KUBERNETES_API
// and a token file reaches that server with the token: the pods of the
// node, and a Job.
func TestKubeClientFromURL(t *testing.T) {
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Method + " " + r.URL.String() + " " + r.Header.Get("Authorization")
		w.Header().Set("Content-Type", "application/json")
		if strings.Contains(r.URL.Path, "/jobs/") {
			_, _ = w.Write([]byte(`{"kind":"Job","apiVersion":"batch/v1","metadata":{"name":"backup-1","namespace":"ops",` +
				`"ownerReferences":[{"apiVersion":"batch/v1","kind":"CronJob","name":"backup","uid":"u","controller":true}]}}`))
			return
		}
		_, _ = w.Write([]byte(`{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[]}`))
	}))
	defer srv.Close()
	cfg := &Config{KubernetesAPI: srv.URL, KubernetesTokenFile: token}
	api, err := kubeClient(cfg, "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cache.ToListerWatcherWithContext(api.Pods("node-a")).ListWithContext(context.Background(), metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if req := <-got; req != "GET /api/v1/pods?fieldSelector=spec.nodeName%3Dnode-a Bearer s3cret" {
		t.Errorf("request %q", req)
	}
	job, err := api.Job(context.Background(), "ops", "backup-1")
	if err != nil {
		t.Fatal(err)
	}
	if ref := metav1.GetControllerOf(job); ref == nil || ref.Name != "backup" {
		t.Errorf("job %+v", job)
	}
	if req := <-got; req != "GET /apis/batch/v1/namespaces/ops/jobs/backup-1 Bearer s3cret" {
		t.Errorf("request %q", req)
	}
}
