package deploy

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// The annotations of a Secret that Reflector fills with the data of
// another: the source's namespace/name, and the version copied, which an
// apply resets so that Reflector copies again.
const (
	reflects         = "reflector.v1.k8s.emberstack.com/reflects"
	reflectedVersion = "reflector.v1.k8s.emberstack.com/reflected-version"
)

// checkKafkaCA checks kafka.tls.caSecret.reflectFrom: with it, the chart
// renders the Secret that every workload mounts as the Kafka CA, in the
// release's namespace, empty and annotated for Reflector to fill from the
// Secret named (its reflected version reset); without it, no such Secret.
// Every other Secret is the webhook's, checkControllerWebhook's.
func checkKafkaCA(t *testing.T, objs []object, cfg chartConfig, pods map[string]corev1.PodTemplateSpec) {
	t.Helper()
	var mirrors []*corev1.Secret
	for _, sec := range all[*corev1.Secret](objs) {
		if sec.Annotations[reflects] != "" || sec.Name == cfg.Kafka.TLS.CASecret.Name {
			mirrors = append(mirrors, sec)
		}
	}
	ca := cfg.Kafka.TLS.CASecret
	if ca.ReflectFrom == "" {
		for _, sec := range mirrors {
			t.Errorf("Secret %s rendered without kafka.tls.caSecret.reflectFrom", sec.Name)
		}
		return
	}
	if len(mirrors) != 1 {
		t.Fatalf("kafka.tls.caSecret.reflectFrom %s: %d Secrets to fill, want 1", ca.ReflectFrom, len(mirrors))
	}
	sec := mirrors[0]
	if sec.Name != ca.Name || sec.Namespace != releaseNamespace || sec.Type != corev1.SecretTypeOpaque {
		t.Errorf("Secret %s/%s of type %s; want %s/%s, Opaque", sec.Namespace, sec.Name, sec.Type, releaseNamespace, ca.Name)
	}
	if got := sec.Annotations[reflects]; got != ca.ReflectFrom {
		t.Errorf("Secret %s reflects %q, want %q", sec.Name, got, ca.ReflectFrom)
	}
	if v, ok := sec.Annotations[reflectedVersion]; !ok || v != "" {
		t.Errorf("Secret %s: %s %q (set %v): want it reset to \"\" at every apply", sec.Name, reflectedVersion, v, ok)
	}
	if len(sec.Data)+len(sec.StringData) > 0 {
		t.Errorf("Secret %s has data of the chart's; it is Reflector's to fill (an upgrade would overwrite it)", sec.Name)
	}
	for stage, pod := range pods {
		mounted := false
		for _, v := range pod.Spec.Volumes {
			if v.Name == "kafka-ca" && v.Secret != nil && v.Secret.SecretName == sec.Name {
				mounted = true
			}
		}
		if !mounted {
			t.Errorf("%s: the Kafka CA volume is not the reflected Secret %s", stage, sec.Name)
		}
	}
}
