package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluicelogs/sluice/internal/k8sfake"
	"github.com/sluicelogs/sluice/internal/shipbench"
	"github.com/sluicelogs/sluice/schemas"
)

// BenchmarkShipperDrainMetadata: what Kubernetes metadata costs the shipper
// on the drain of the standard workload, at its defaults otherwise. Each
// iteration drains the workload twice, interleaved: with metadata off (as
// outside a cluster) and on, from a fake API server over HTTP in this
// process (not counted) holding a cluster of 5,000 pods on 46 nodes in 60
// namespaces, this node's pods among them (the workload's: 40 containers),
// each as an API server returns it (k8sfake.TypicalPod: a dozen labels,
// annotations, managed fields, environment). Every record of the second
// drain must carry its pod's labels and Deployment. Reported: CPU seconds
// per million lines and peak RSS of each, the median over the pairs of
// what metadata adds to the CPU, in percent, and the requests the shipper
// made of the API server. The machine's noise is larger than the
// difference: run many pairs (-benchtime 8x).
//
//	go test -run '^$' -bench ShipperDrainMetadata -benchtime 8x -v ./cmd/sluice/
func BenchmarkShipperDrainMetadata(b *testing.B) {
	g, w, _ := drainWorkload(b)
	api := k8sfake.Start(b)
	local := benchKubeCluster(api, g, "bench", 5000, 60)
	b.Logf("cluster: 5000 pods, %d on this node, 60 namespaces", local)

	var off, on drainResult
	var share []float64 // per pair: the metadata's CPU over the drain's without, in percent
	enriched := 0
	check := func(rec *schemas.Record) {
		k := &rec.Kubernetes
		if k.Labels["app.kubernetes.io/name"] == "" || k.Workload.Kind != "Deployment" || k.ContainerImage == "" || rec.Metadata != "" {
			b.Fatalf("a record without its pod's metadata: %+v, metadata %q", *k, rec.Metadata)
		}
		enriched++
	}
	b.ResetTimer()
	for i := range b.N {
		// The order alternates, so that whatever the first drain of a pair
		// pays (or the second) falls on both alike.
		var o, m drainResult
		if i%2 == 0 {
			o = drainOnce(b, g, w, nil, "SLUICE_SHIPPER_KUBERNETES_METADATA=off")
			m = drainOnce(b, g, w, check, "SLUICE_SHIPPER_KUBERNETES_API="+api.URL())
		} else {
			m = drainOnce(b, g, w, check, "SLUICE_SHIPPER_KUBERNETES_API="+api.URL())
			o = drainOnce(b, g, w, nil, "SLUICE_SHIPPER_KUBERNETES_METADATA=off")
		}
		off.add(o)
		on.add(m)
		share = append(share, 100*(m.cpu.Seconds()-o.cpu.Seconds())/o.cpu.Seconds())
		b.Logf("pair %d: off %.2f CPU-s, peak %.0f MB; on %.2f CPU-s, peak %.0f MB", i+1,
			o.cpu.Seconds(), float64(o.peak)/1e6, m.cpu.Seconds(), float64(m.peak)/1e6)
	}
	if enriched < w.Lines*b.N {
		b.Fatalf("%d records enriched, want %d", enriched, w.Lines*b.N)
	}
	mlines := float64(w.Lines) * float64(b.N) / 1e6
	b.ReportMetric(off.cpu.Seconds()/mlines, "off-cpu-s/Mlines")
	b.ReportMetric(on.cpu.Seconds()/mlines, "on-cpu-s/Mlines")
	slices.Sort(share)
	b.ReportMetric(share[len(share)/2], "metadata-cpu-%-median")
	b.ReportMetric(float64(off.peak)/1e6, "off-peak-RSS-MB")
	b.ReportMetric(float64(on.peak)/1e6, "on-peak-RSS-MB")
	var reqs []string
	var total int64
	for r, n := range api.Requests() {
		reqs = append(reqs, fmt.Sprintf("%v: %d", r, n))
		total += n
	}
	slices.Sort(reqs)
	b.Logf("API requests of %d drains with metadata: %s", b.N, strings.Join(reqs, ", "))
	b.ReportMetric(float64(total)/float64(b.N), "api-requests/drain")
}

// benchKubeCluster fills api with a cluster of pods pods in namespaces
// namespaces: the pods of g's containers on node (the shipbench names are
// a Deployment's pods', <app>-<hash>-<suffix>), the others spread over 45
// other nodes. It returns the number of pods on node.
func benchKubeCluster(api *k8sfake.Server, g *shipbench.Generator, node string, pods, namespaces int) int {
	local := map[string]*corev1.Pod{}
	nss := map[string]bool{}
	for _, c := range g.Containers() {
		key := c.Namespace + "/" + c.Pod
		p := local[key]
		if p == nil {
			rs := c.Pod[:strings.LastIndexByte(c.Pod, '-')]
			p = k8sfake.TypicalPod(c.Namespace, c.Pod, c.PodUID, node, rs)
			local[key] = p
			nss[c.Namespace] = true
		}
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c.Name, Image: "registry.example/" + c.Name + ":1.2.3"})
	}
	for i := 0; len(nss) < namespaces; i++ {
		nss[fmt.Sprintf("team-%02d", i)] = true
	}
	names := slices.Sorted(maps.Keys(nss))
	for _, ns := range names {
		api.AddNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{
			"kubernetes.io/metadata.name": ns, "team": ns, "environment": "production"}}})
	}
	for _, p := range local {
		api.AddPod(p)
	}
	for i := len(local); i < pods; i++ {
		ns := names[i%len(names)]
		api.AddPod(k8sfake.TypicalPod(ns, fmt.Sprintf("api-5d9c8b7f6-%05d", i), fmt.Sprintf("uid-%05d", i),
			fmt.Sprintf("node-%02d", i%45), "api-5d9c8b7f6", "api", "sidecar"))
	}
	return len(local)
}
