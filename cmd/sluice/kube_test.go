package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/sluicelogs/sluice/internal/apptest"
	"github.com/sluicelogs/sluice/internal/k8sfake"
	"github.com/sluicelogs/sluice/internal/kafkatest"
	"github.com/sluicelogs/sluice/internal/nodelog"
	"github.com/sluicelogs/sluice/internal/testwait"
	"github.com/sluicelogs/sluice/schemas"
)

// TestShipperKubernetesMetadata runs the shipper binary against a fake
// API server over HTTP (real client-go informers in the process): its
// records carry the pod's labels, the allow-listed namespace labels, the
// container image and the Deployment that owns the pod, and go to the
// tenant the namespace's label names; once the namespace is relabelled,
// the next lines go to the new tenant, and every line is shipped once.
func TestShipperKubernetesMetadata(t *testing.T) {
	apptest.Binary(t)
	brokers := kafkatest.Cluster(t, kafkatest.Topics(1, "logs.raw.alpha", "logs.raw.beta", "logs.raw.shop")).ListenAddrs()

	api := k8sfake.Start(t, k8sfake.RequireToken("s3cret"))
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	api.AddNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop",
		Labels: map[string]string{"sluice.io/tenant": "alpha", "team": "carts", "internal": "not shipped"}}})
	// The kubelet names a pod's log directory after its uid.
	node := &nodelog.Node{Root: t.TempDir()}
	c, err := node.AddContainer("shop", "cart-5d8f7b9c4-x2x9z", "cart", nodelog.CRI)
	if err != nil {
		t.Fatal(err)
	}
	isController := true
	pod := func(name, uid, nodeName string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", UID: types.UID(uid),
				Labels: map[string]string{"app": "cart", "pod-template-hash": "5d8f7b9c4"},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet",
					Name: "cart-5d8f7b9c4", UID: types.UID("rs-uid"), Controller: &isController}}},
			Spec: corev1.PodSpec{NodeName: nodeName, Containers: []corev1.Container{{Name: "cart", Image: "registry.example/cart:1.2.3"}}},
		}
	}
	api.AddPod(pod("cart-5d8f7b9c4-x2x9z", c.PodUID, "test-node"))
	api.AddPod(pod("cart-5d8f7b9c4-other", "another-uid", "other-node"))

	env := append(shipperEnv(node, brokers, "info"),
		"SLUICE_SHIPPER_RESCAN_INTERVAL=200ms",
		"SLUICE_SHIPPER_POLL_INTERVAL=20ms",
		"SLUICE_SHIPPER_KUBERNETES_METADATA=on",
		"SLUICE_SHIPPER_KUBERNETES_API="+api.URL(),
		"SLUICE_SHIPPER_KUBERNETES_TOKEN_FILE="+tokenFile,
		"SLUICE_SHIPPER_NAMESPACE_LABEL_PREFIXES=team",
	)
	started := time.Now()
	sh := apptest.Sluice(t, env, "shipper")
	t.Cleanup(func() { sh.Terminate(t) })

	recs := consumeRecords(t, brokers, "logs.raw.alpha", "logs.raw.beta", "logs.raw.shop")
	write := func(from, to int) {
		for i := from; i < to; i++ {
			if err := c.Write(time.Now(), "stdout", fmt.Sprintf("line %d", i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(0, 50)
	recs.waitFor(t, 30*time.Second, 50)
	for _, r := range recs.of("logs.raw.alpha") {
		k := r.Kubernetes
		if r.Metadata != "" || k.Labels["app"] != "cart" || k.ContainerImage != "registry.example/cart:1.2.3" ||
			k.Workload != (schemas.Workload{Kind: "Deployment", Name: "cart"}) || k.PodID != c.PodUID ||
			len(k.NamespaceLabels) != 1 || k.NamespaceLabels["team"] != "carts" {
			t.Fatalf("record %q: metadata %q, kubernetes %+v", r.Log, r.Metadata, k)
		}
	}
	if n := len(recs.of("logs.raw.alpha")); n != 50 {
		t.Fatalf("%d of 50 lines in the label's tenant's topic", n)
	}

	// Relabelled: the next lines go to beta.
	api.UpdateNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop",
		Labels: map[string]string{"sluice.io/tenant": "beta", "team": "carts"}}})
	deadline := time.Now().Add(30 * time.Second)
	next := 50
	for len(recs.of("logs.raw.beta")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no line reached beta after the relabel")
		}
		write(next, next+10)
		next += 10
		time.Sleep(100 * time.Millisecond)
	}
	recs.waitFor(t, 30*time.Second, next)
	seen := map[string]int{}
	for _, topic := range []string{"logs.raw.alpha", "logs.raw.beta", "logs.raw.shop"} {
		for _, r := range recs.of(topic) {
			seen[r.Log]++
		}
	}
	for i := range next {
		if n := seen[fmt.Sprintf("line %d", i)]; n != 1 {
			t.Errorf("line %d shipped %d times", i, n)
		}
	}
	if n := len(recs.of("logs.raw.shop")); n != 0 {
		t.Errorf("%d lines went to the namespace's own name's topic", n)
	}
	reqs := api.Requests()
	t.Logf("API requests over %s: %v", time.Since(started).Round(time.Second), reqs)
	for r, n := range reqs {
		if r.Verb == "list" && n > 2 {
			t.Errorf("%d list requests of %s: the informers list once (and again after an outage)", n, r.Resource)
		}
	}
}

// records collects the records of topics as they arrive.
type records struct {
	mu      sync.Mutex
	byTopic map[string][]schemas.Record
}

func consumeRecords(t *testing.T, brokers []string, topics ...string) *records {
	t.Helper()
	rs := &records{byTopic: map[string][]schemas.Record{}}
	cl := kafkatest.ClientAt(t, brokers, kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done }) // before the client is closed
	go func() {
		defer close(done)
		dec := schemas.NewDecoder()
		for ctx.Err() == nil {
			cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
				rec, _, err := dec.Decode(context.Background(), r.Value)
				if err != nil {
					t.Errorf("decode: %v", err)
					return
				}
				rs.mu.Lock()
				rs.byTopic[r.Topic] = append(rs.byTopic[r.Topic], rec)
				rs.mu.Unlock()
			})
		}
	}()
	return rs
}

func (rs *records) of(topic string) []schemas.Record {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return append([]schemas.Record(nil), rs.byTopic[topic]...)
}

// waitFor waits until n records arrived, in all topics together.
func (rs *records) waitFor(t *testing.T, within time.Duration, n int) {
	t.Helper()
	testwait.For(t, within, fmt.Sprintf("%d records", n), func() (bool, string) {
		rs.mu.Lock()
		defer rs.mu.Unlock()
		got := 0
		for _, recs := range rs.byTopic {
			got += len(recs)
		}
		return got >= n, fmt.Sprintf("%d records", got)
	})
}
