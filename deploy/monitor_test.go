package deploy

import (
	"slices"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// metricsLabel marks the Services of the workloads' telemetry ports, which
// the ServiceMonitor selects.
const metricsLabel = "sluice.io/metrics"

// checkServiceMonitor checks metrics.serviceMonitor: without a
// ServiceMonitor, no Service of a telemetry port; with one, it selects one
// Service per rendered workload, each headless and selecting that
// workload's pods only, on the container port telemetry; and it scrapes
// that port's /metrics, adding the labels of the PodMonitor.
func checkServiceMonitor(t *testing.T, objs []object, pods map[string]corev1.PodTemplateSpec) {
	t.Helper()
	var services []*corev1.Service
	for _, svc := range all[*corev1.Service](objs) {
		if svc.Labels[metricsLabel] != "" {
			services = append(services, svc)
		}
	}
	monitors := all[*monitoringv1.ServiceMonitor](objs)
	if len(monitors) == 0 {
		if len(services) > 0 {
			t.Errorf("no ServiceMonitor, yet %d Services of telemetry ports", len(services))
		}
		return
	}
	if len(monitors) != 1 || len(all[*monitoringv1.PodMonitor](objs)) > 0 {
		t.Fatalf("%d ServiceMonitors and %d PodMonitors: want one ServiceMonitor alone, or every pod is scraped twice", len(monitors), len(all[*monitoringv1.PodMonitor](objs)))
	}
	sm := monitors[0]
	sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	if err != nil || sel.Empty() {
		t.Fatalf("ServiceMonitor %s: selector %v (%v)", sm.Name, sm.Spec.Selector, err)
	}
	if ns := sm.Spec.NamespaceSelector; ns.Any || len(ns.MatchNames) > 0 && !slices.Equal(ns.MatchNames, []string{releaseNamespace}) {
		t.Errorf("ServiceMonitor %s looks beyond the release's namespace: %+v", sm.Name, ns)
	}
	scraped := map[string]int{}
	for _, svc := range all[*corev1.Service](objs) {
		if !sel.Matches(labels.Set(svc.Labels)) {
			continue
		}
		if svc.Labels[metricsLabel] == "" {
			t.Errorf("ServiceMonitor %s selects Service %s, which is not a telemetry port's", sm.Name, svc.Name)
			continue
		}
		if svc.Spec.ClusterIP != corev1.ClusterIPNone {
			t.Errorf("Service %s: clusterIP %q, want a headless Service (each pod its own target)", svc.Name, svc.Spec.ClusterIP)
		}
		if p := svc.Spec.Ports; len(p) != 1 || p[0].Name != "telemetry" || p[0].TargetPort.String() != "telemetry" {
			t.Errorf("Service %s: ports %+v, want one named telemetry to the container port telemetry", svc.Name, p)
		}
		podSel := labels.SelectorFromSet(svc.Spec.Selector)
		for stage, pod := range pods {
			if len(svc.Spec.Selector) > 0 && podSel.Matches(labels.Set(pod.Labels)) {
				scraped[stage]++
			}
		}
	}
	for stage := range pods {
		if scraped[stage] != 1 {
			t.Errorf("ServiceMonitor %s: the %s pods are behind %d of its Services, want 1", sm.Name, stage, scraped[stage])
		}
	}
	if len(services) != len(pods) {
		t.Errorf("%d Services of telemetry ports for %d workloads", len(services), len(pods))
	}
	if len(sm.Spec.Endpoints) != 1 {
		t.Fatalf("ServiceMonitor %s: want one endpoint", sm.Name)
	}
	ep := sm.Spec.Endpoints[0]
	if ep.Port != "telemetry" || ep.Path != "/metrics" {
		t.Errorf("ServiceMonitor %s scrapes port %q path %q, want telemetry /metrics", sm.Name, ep.Port, ep.Path)
	}
	checkRelabelings(t, "ServiceMonitor "+sm.Name, ep.RelabelConfigs)
}
