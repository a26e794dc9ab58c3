package deploy

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	sigsyaml "sigs.k8s.io/yaml"
)

// checkEnvOnce checks that a container's env names each variable once:
// server-side apply refuses a list with a name twice (env is a map keyed by
// name there), and a plain apply keeps only one of them.
func checkEnvOnce(t *testing.T, stage string, env []corev1.EnvVar) {
	t.Helper()
	seen := map[string]int{}
	for _, e := range env {
		seen[e.Name]++
	}
	for name, n := range seen {
		if n > 1 {
			t.Errorf("%s: env %s is rendered %d times", stage, name, n)
		}
	}
}

// checkUserEnv checks that every variable of <stage>.env has the value the
// values give it, whatever the chart sets by itself.
func checkUserEnv(t *testing.T, stage string, env []corev1.EnvVar, values stageValues) {
	t.Helper()
	for name, v := range values.Env {
		want := envValue(v)
		i := slices.IndexFunc(env, func(e corev1.EnvVar) bool { return e.Name == name })
		if i < 0 || env[i].ValueFrom != nil || env[i].Value != want {
			t.Errorf("%s: %s.env sets %s=%q, the container has %+v", stage, stage, name, want, env[max(i, 0)])
		}
	}
}

// envValue is the text of a value of <stage>.env, as a YAML number, boolean
// or string reads.
func envValue(v any) string {
	if f, ok := v.(float64); ok {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

// workloadPods returns the pod templates of the rendered workloads, by
// stage.
func workloadPods(t *testing.T, objs []object) map[string]corev1.PodTemplateSpec {
	t.Helper()
	pods := map[string]corev1.PodTemplateSpec{}
	for _, ds := range all[*appsv1.DaemonSet](objs) {
		pods[stageOf(t, ds.Spec.Template)] = ds.Spec.Template
	}
	for _, d := range all[*appsv1.Deployment](objs) {
		pods[stageOf(t, d.Spec.Template)] = d.Spec.Template
	}
	return pods
}

// renderPods renders the chart with the values files and returns the
// workloads' pod templates, by stage.
func renderPods(t *testing.T, files ...string) map[string]corev1.PodTemplateSpec {
	t.Helper()
	ms, err := render(files...)
	if err != nil {
		t.Fatal(err)
	}
	return workloadPods(t, decodeAll(t, contents(ms)))
}

// envOverrideBase renders every workload with the most the chart sets by
// itself: the controller in the Strimzi mode with its webhook and
// Elasticsearch roles, Elasticsearch credentials and CA, Kafka TLS with a
// server name, compression, the router's pseudonym keys; and without the
// stages' env (a null value takes a key out of the values), so that every
// variable rendered is the chart's.
func envOverrideBase(t *testing.T) []string {
	noEnv := writeValues(t, t.TempDir(), "no-env", "shipper: {env: null}\nrouter: {env: null}\nindexer: {env: null}\ngateway: {env: null}\ncontroller: {env: null}\n")
	return []string{"testdata/values-all.yaml", "testdata/values-strimzi.yaml", noEnv}
}

// envNames returns the names of the pods' variables, by stage.
func envNames(pods map[string]corev1.PodTemplateSpec) map[string][]string {
	names := map[string][]string{}
	for stage, pod := range pods {
		for _, e := range pod.Spec.Containers[0].Env {
			names[stage] = append(names[stage], e.Name)
		}
	}
	return names
}

// TestEnvOverrides gives, through <stage>.env, a value of its own to every
// variable the chart sets by itself in each workload (GOMEMLIMIT from the
// memory limit, the Kafka connection, the stage's own settings), and checks
// that each is then rendered once, with the value given; then the same
// through <stage>.extraEnv, each from a ConfigMap.
func TestEnvOverrides(t *testing.T) {
	base := envOverrideBase(t)
	names := envNames(renderPods(t, base...))
	for _, stage := range workloadNames {
		want := []string{"GOMEMLIMIT", "SLUICE_KAFKA_BROKERS", "SLUICE_LOG_LEVEL"}
		want = append(want, map[string]string{
			"shipper":    "SLUICE_NODE_NAME",
			"router":     "SLUICE_ROUTER_PSEUDONYM_KEYS_DIR",
			"indexer":    "SLUICE_ELASTICSEARCH_API_KEY_FILE",
			"gateway":    "SLUICE_GATEWAY_TLS_CLIENT_CA_FILE",
			"controller": "SLUICE_CONTROLLER_WEBHOOK_PORT",
		}[stage])
		for _, name := range want {
			if !slices.Contains(names[stage], name) {
				t.Fatalf("%s: the chart does not set %s itself (it sets %v): the test's values no longer render what it overrides", stage, name, names[stage])
			}
		}
	}

	overrides := map[string]map[string]map[string]string{}
	for stage, ns := range names {
		overrides[stage] = map[string]map[string]string{"env": {}}
		for _, name := range ns {
			overrides[stage]["env"][name] = "override-" + stage + "-" + name
		}
	}
	b, err := sigsyaml.Marshal(overrides)
	if err != nil {
		t.Fatal(err)
	}
	f := writeValues(t, t.TempDir(), "env-overrides", string(b))
	pods := renderPods(t, append(base, f)...)
	for _, stage := range slices.Sorted(maps.Keys(names)) {
		env := pods[stage].Spec.Containers[0].Env
		checkEnvOnce(t, stage, env)
		for _, name := range names[stage] {
			i := slices.IndexFunc(env, func(e corev1.EnvVar) bool { return e.Name == name })
			if want := overrides[stage]["env"][name]; i < 0 || env[i].ValueFrom != nil || env[i].Value != want {
				t.Errorf("%s: %s.env sets %s=%q, the container has %+v", stage, stage, name, want, env[max(i, 0)])
			}
		}
	}

	extra := map[string]map[string][]corev1.EnvVar{}
	for stage, ns := range names {
		extra[stage] = map[string][]corev1.EnvVar{}
		for _, name := range ns {
			extra[stage]["extraEnv"] = append(extra[stage]["extraEnv"], corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{
				ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "overrides"}, Key: stage + "." + name},
			}})
		}
	}
	b, err = sigsyaml.Marshal(extra)
	if err != nil {
		t.Fatal(err)
	}
	f = writeValues(t, t.TempDir(), "extra-env-overrides", string(b))
	pods = renderPods(t, append(base, f)...)
	for _, stage := range slices.Sorted(maps.Keys(names)) {
		env := pods[stage].Spec.Containers[0].Env
		checkEnvOnce(t, stage, env)
		if !slices.EqualFunc(env, extra[stage]["extraEnv"], func(a, b corev1.EnvVar) bool { return reflect.DeepEqual(a, b) }) {
			t.Errorf("%s: extraEnv gives every variable the chart sets, yet the env is %+v", stage, env)
		}
	}
}
