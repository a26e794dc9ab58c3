package shipper

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sluicelogs/sluice/internal/k8sfake"
	"github.com/sluicelogs/sluice/internal/nodelog"
	"github.com/sluicelogs/sluice/schemas"
)

// benchPod is a pod as an API server returns it (k8sfake.TypicalPod).
func benchPod(ns, name, uid, node string) *corev1.Pod {
	return k8sfake.TypicalPod(ns, name, uid, node, "shop-api-5d9c8b7f6", "api", "sidecar")
}

// benchCluster is a fake API server with 5,000 pods over 50 nodes: 110 on
// node-a, 4,890 elsewhere; and 50 namespaces.
func benchCluster() (*fake.Clientset, []PathMeta) {
	var objs []k8sruntime.Object
	var local []PathMeta
	for i := range 50 {
		objs = append(objs, namespace(fmt.Sprintf("ns-%d", i), map[string]string{"sluice.io/tenant": fmt.Sprintf("t-%d", i%10), "env": "prod"}))
	}
	for i := range 5000 {
		node := fmt.Sprintf("node-%d", i%46)
		if i < 110 {
			node = "node-a"
		}
		ns, name, uid := fmt.Sprintf("ns-%d", i%50), fmt.Sprintf("shop-api-5d9c8b7f6-%05d", i), fmt.Sprintf("uid-%05d", i)
		objs = append(objs, benchPod(ns, name, uid, node))
		if node == "node-a" {
			local = append(local, PathMeta{Namespace: ns, Pod: name, PodUID: uid, Container: "api"})
		}
	}
	cs := fake.NewClientset(objs...)
	nodeSelected(cs)
	return cs, local
}

// nodeSelected makes a fake clientset's pod lists and watches honour a
// spec.nodeName field selector, as an API server does.
func nodeSelected(cs *fake.Clientset) {
	gvr := corev1.SchemeGroupVersion.WithResource("pods")
	match := func(sel fields.Selector, obj k8sruntime.Object) bool {
		p, ok := obj.(*corev1.Pod)
		return !ok || sel == nil || sel.Matches(fields.Set{"spec.nodeName": p.Spec.NodeName})
	}
	cs.PrependReactor("list", "pods", func(a k8stesting.Action) (bool, k8sruntime.Object, error) {
		r := a.(k8stesting.ListAction).GetListRestrictions()
		obj, err := cs.Tracker().List(gvr, corev1.SchemeGroupVersion.WithKind("Pod"), a.GetNamespace())
		if err != nil {
			return true, nil, err
		}
		list := obj.(*corev1.PodList)
		kept := list.Items[:0]
		for i := range list.Items {
			if match(r.Fields, &list.Items[i]) {
				kept = append(kept, list.Items[i])
			}
		}
		list.Items = kept
		return true, list, nil
	})
	cs.PrependWatchReactor("pods", func(a k8stesting.Action) (bool, watch.Interface, error) {
		r := a.(k8stesting.WatchAction).GetWatchRestrictions()
		w, err := cs.Tracker().Watch(gvr, a.GetNamespace(), metav1.ListOptions{ResourceVersion: r.ResourceVersion})
		if err != nil {
			return true, nil, err
		}
		return true, watch.Filter(w, func(e watch.Event) (watch.Event, bool) { return e, match(r.Fields, e.Object) }), nil
	})
}

func heapInUse() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkKubeLookup measures a follower's look-up of its pod in a cache
// filled from a cluster of 5,000 pods of which 110 run on this node (the
// field selector keeps the others out: the fake API server ignores field
// selectors, the cache drops other nodes' pods all the same), and reports
// the cache's memory: the heap after filling it less the heap before.
func BenchmarkKubeLookup(b *testing.B) {
	cs, local := benchCluster()
	cfg := kubeTestConfig()
	before := heapInUse()
	k, m := startTestKube(b, cs, cfg)
	deadline := time.Now().Add(10 * time.Second)
	for k.gaugePods(m) < 110 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	after := heapInUse()
	runtime.KeepAlive(cs)
	pods := k.gaugePods(m)
	b.ResetTimer()
	hits := 0
	for i := range b.N {
		if p, _, ok := k.lookup(local[i%len(local)]); ok && p != nil {
			hits++
		}
	}
	b.StopTimer()
	if hits != b.N {
		b.Fatalf("%d hits of %d", hits, b.N)
	}
	b.ReportMetric(pods, "cached-pods")
	b.ReportMetric(float64(after-before)/1024, "cache-KiB")
	b.ReportMetric(float64(after-before)/pods, "B/cached-pod")
}

func (k *kubeMeta) gaugePods(*metrics) float64 {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return float64(len(k.pods))
}

// encodeSink encodes every record as the Kafka output does, and drops it.
type encodeSink struct {
	skip bool // counts records without encoding them
	mu   sync.Mutex
	buf  []byte
	n    atomic.Int64
}

func (s *encodeSink) name() string                                         { return "encode" }
func (s *encodeSink) sync() error                                          { return nil }
func (s *encodeSink) flush(context.Context) error                          { return nil }
func (s *encodeSink) close()                                               {}
func (s *encodeSink) topicMaxMessage(context.Context, string) (int, error) { return 0, nil }
func (s *encodeSink) resetTopic(string)                                    {}
func (s *encodeSink) produce(_ string, _ []byte, rec *schemas.Record, t ticket) {
	var err error
	if !s.skip {
		s.mu.Lock()
		s.buf, err = schemas.AppendSingleObject(s.buf[:0], rec)
		s.mu.Unlock()
	}
	s.n.Add(1)
	t.done(err)
}

// BenchmarkShipEnrichment drains b.N pre-written ~300-byte CRI lines of 16
// containers (of 110 pods on the node, in a cluster of 5,000) through the
// shipper with Once, with Kubernetes metadata off and on, and records
// encoded as for Kafka (Avro, as the schemas package has it) or not
// encoded at all (the shipper's own cost); cpu-ns/line is the process's
// CPU time (user and system) per line from the first scan.
func BenchmarkShipEnrichment(b *testing.B) {
	for _, bc := range []struct{ mode, out string }{{"off", "avro"}, {"on", "avro"}, {"off", "none"}, {"on", "none"}} {
		mode := bc.mode
		b.Run("metadata="+mode+"/encode="+bc.out, func(b *testing.B) {
			cs, local := benchCluster()
			node := &nodelog.Node{Root: b.TempDir()}
			var total int64
			const containers = 16
			for i := range containers {
				pm := local[i*7]
				c, err := node.AddContainer(pm.Namespace, pm.Pod, "api", nodelog.CRI)
				if err != nil {
					b.Fatal(err)
				}
				if err := cs.Tracker().Update(corev1.SchemeGroupVersion.WithResource("pods"), benchPod(pm.Namespace, pm.Pod, c.PodUID, "node-a"), pm.Namespace); err != nil {
					b.Fatal(err)
				}
				buf := make([]byte, 0, 1<<20)
				for n := i; n < b.N; n += containers {
					buf = append(buf, c.Encode(time.Now(), "stdout", fmt.Sprintf(`{"level":"info","msg":"request served","method":"GET","path":"/api/v1/orders/%d","status":200,"duration_ms":12.5,"bytes":5321,"user_agent":"Mozilla/5.0 (X11; Linux x86_64)","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}`, n))...)
					if len(buf) > 1<<20-1024 || n+containers >= b.N {
						total += int64(len(buf))
						if err := c.WriteRaw(buf); err != nil {
							b.Fatal(err)
						}
						buf = buf[:0]
					}
				}
			}
			cfg := testConfig(b, node, nil, map[string]string{
				"SLUICE_SHIPPER_KUBERNETES_METADATA": mode,
				"SLUICE_SHIPPER_ANNOTATION_PREFIXES": "sluice.io/,prometheus.io/",
				"SLUICE_SHIPPER_MAX_BUFFERED_BYTES":  "16777216",
			})
			sink := &encodeSink{skip: bc.out == "none"}
			sh, err := New(cfg, Options{Once: true})
			if err != nil {
				b.Fatal(err)
			}
			sh.sink, sh.kcs = sink, clientsetAPI{cs}
			b.SetBytes(total / int64(max(b.N, 1)))
			b.ReportAllocs()
			// CPU is counted from the first scan: the cache's first list
			// (5,000 pods deep-copied by the fake) is not the shipper's.
			var cpu0 atomic.Int64
			sh.ready = func(ok bool) {
				if ok {
					cpu0.Store(int64(cpuTime()))
				}
			}
			b.ResetTimer()
			if err := sh.Run(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64(int64(cpuTime())-cpu0.Load())/float64(b.N), "cpu-ns/line")
			if got := int(sink.n.Load()); got != b.N {
				b.Fatalf("shipped %d, want %d", got, b.N)
			}
			if hits := testutil.ToFloat64(sh.m.metadataLookups.WithLabelValues("hit")); mode == "on" && hits < containers {
				b.Fatalf("%v metadata hits, want one per container at least", hits)
			}
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
