package deploy

import (
	"reflect"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// checkExtensions checks where a stage's extension points land in its pod,
// and what holds with or without them: extraEnv's variables last, in their
// order, each once (a name the chart sets is then the values', as
// checkEnvOnce and checkUserEnv check); envFrom as given; extraVolumes and
// extraVolumeMounts after the chart's, every volume name and mount path
// once (the API server refuses a pod with one twice); podSecurityContext as
// the pod's securityContext; the router's, indexer's and controller's
// topologySpreadConstraints, each selecting the stage's own pods (the
// chart's selector labels where the values give no labelSelector), and
// their priorityClassName.
func checkExtensions(t *testing.T, stage string, pod corev1.PodTemplateSpec, values stageValues) {
	t.Helper()
	spec := pod.Spec
	c := spec.Containers[0]
	if n := len(values.ExtraEnv); n > len(c.Env) || !equalItems(c.Env[len(c.Env)-n:], values.ExtraEnv) {
		t.Errorf("%s: the env does not end with extraEnv %+v: %+v", stage, values.ExtraEnv, c.Env)
	}
	if !equalItems(c.EnvFrom, values.EnvFrom) {
		t.Errorf("%s: envFrom %+v, values %+v", stage, c.EnvFrom, values.EnvFrom)
	}
	if n := len(values.ExtraVolumes); n > len(spec.Volumes) || !equalItems(spec.Volumes[len(spec.Volumes)-n:], values.ExtraVolumes) {
		t.Errorf("%s: the volumes do not end with extraVolumes %+v: %+v", stage, values.ExtraVolumes, spec.Volumes)
	}
	if n := len(values.ExtraVolumeMounts); n > len(c.VolumeMounts) || !equalItems(c.VolumeMounts[len(c.VolumeMounts)-n:], values.ExtraVolumeMounts) {
		t.Errorf("%s: the mounts do not end with extraVolumeMounts %+v: %+v", stage, values.ExtraVolumeMounts, c.VolumeMounts)
	}
	once := func(what string, keys []string) {
		t.Helper()
		for i, k := range keys {
			if slices.Contains(keys[:i], k) {
				t.Errorf("%s: %s %s twice", stage, what, k)
			}
		}
	}
	var names, paths []string
	for _, v := range spec.Volumes {
		names = append(names, v.Name)
	}
	for _, m := range c.VolumeMounts {
		paths = append(paths, m.MountPath)
	}
	once("volume", names)
	once("mount path", paths)

	want := values.PodSecurityContext
	if want != nil && reflect.ValueOf(*want).IsZero() {
		want = nil
	}
	if !reflect.DeepEqual(spec.SecurityContext, want) {
		t.Errorf("%s: the pod's securityContext %+v, podSecurityContext %+v", stage, spec.SecurityContext, want)
	}
	if stage == "shipper" {
		if len(spec.TopologySpreadConstraints) > 0 {
			t.Errorf("shipper: topology spread constraints on a DaemonSet: %+v", spec.TopologySpreadConstraints)
		}
		return
	}
	if spec.PriorityClassName != values.PriorityClassName {
		t.Errorf("%s: priorityClassName %q, values %q", stage, spec.PriorityClassName, values.PriorityClassName)
	}
	got := spec.TopologySpreadConstraints
	if len(got) != len(values.TopologySpreadConstraints) {
		t.Fatalf("%s: topologySpreadConstraints %+v, values %+v", stage, got, values.TopologySpreadConstraints)
	}
	for i, w := range values.TopologySpreadConstraints {
		if w.LabelSelector == nil {
			sel := map[string]string{}
			for _, k := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component"} {
				sel[k] = pod.Labels[k]
			}
			w.LabelSelector = &metav1.LabelSelector{MatchLabels: sel}
		}
		if !reflect.DeepEqual(got[i], w) {
			t.Errorf("%s: topology spread constraint %d: %+v, want %+v", stage, i, got[i], w)
		}
		checkSelector(t, stage+": topology spread constraint", got[i].LabelSelector, pod.Labels)
	}
}

// equalItems compares lists, an empty list equal to none.
func equalItems[T any](got, want []T) bool {
	return len(got) == 0 && len(want) == 0 || reflect.DeepEqual(got, want)
}
