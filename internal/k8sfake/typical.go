package k8sfake

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TypicalPod is a Deployment's pod as an API server returns it, for
// benchmarks that must pay what a real cluster makes a client pay: a
// dozen labels, a few annotations (a large last-applied-configuration
// among them), managed fields, containers with arguments and environment,
// and status. Its ReplicaSet is replicaSet, named <deployment>-<hash> as a
// Deployment names it, and its pods carry the hash as pod-template-hash.
func TypicalPod(namespace, name, uid, node, replicaSet string, containers ...string) *corev1.Pod {
	yes := true
	app, hash := replicaSet, ""
	if i := strings.LastIndexByte(replicaSet, '-'); i > 0 {
		app, hash = replicaSet[:i], replicaSet[i+1:]
	}
	labels := map[string]string{
		"app.kubernetes.io/name": app, "app.kubernetes.io/instance": "prod",
		"app.kubernetes.io/version": "1.2.3", "app.kubernetes.io/component": "api",
		"app.kubernetes.io/part-of": "shop", "app.kubernetes.io/managed-by": "helm",
		"pod-template-hash": hash, "team": "checkout", "tier": "backend",
		"release": "stable", "environment": "production", "cost-center": "cc-1234",
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: namespace, Name: name, UID: types.UID(uid), Labels: labels,
			Annotations: map[string]string{
				"kubectl.kubernetes.io/last-applied-configuration": strings.Repeat(" ", 2048),
				"sluice.io/parser":     "json",
				"prometheus.io/scrape": "true",
				"prometheus.io/port":   "9090",
				"checksum/config":      "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
			},
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: replicaSet, Controller: &yes, APIVersion: "apps/v1", UID: types.UID(replicaSet)}},
			ManagedFields: []metav1.ManagedFieldsEntry{
				{Manager: "kube-controller-manager", Operation: "Update", FieldsV1: fieldsV1("f:metadata", 1500)},
				{Manager: "kubelet", Operation: "Update", Subresource: "status", FieldsV1: fieldsV1("f:status", 1500)},
			},
		},
		Spec: corev1.PodSpec{NodeName: node},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.1.2.3", Conditions: []corev1.PodCondition{
			{Type: corev1.PodReady, Status: corev1.ConditionTrue}, {Type: corev1.PodScheduled, Status: corev1.ConditionTrue}}},
	}
	for _, n := range containers {
		c := corev1.Container{Name: n, Image: "registry.example/shop/" + n + ":1.2.3",
			Args: []string{"--listen=:8080", "--log-format=json"}}
		for i := range 10 {
			c.Env = append(c.Env, corev1.EnvVar{Name: fmt.Sprintf("SETTING_%d", i), Value: "some-value-of-a-setting"})
		}
		p.Spec.Containers = append(p.Spec.Containers, c)
	}
	return p
}

// fieldsV1 is managed-fields JSON of about size bytes.
func fieldsV1(key string, size int) *metav1.FieldsV1 {
	return &metav1.FieldsV1{Raw: fmt.Appendf(nil, `{%q:{"f:x":%q}}`, key, strings.Repeat("x", size))}
}
