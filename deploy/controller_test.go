package deploy

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/sluicelogs/sluice/controller"
)

// controllerKafkaMode is the controller's SLUICE_CONTROLLER_KAFKA_MODE as
// the values ask for it: controller.kafkaMode, else strimzi with
// strimzi.enabled, else direct.
func controllerKafkaMode(cfg chartConfig) string {
	switch {
	case cfg.Controller.KafkaMode != "":
		return cfg.Controller.KafkaMode
	case cfg.Strimzi.Enabled:
		return controller.KafkaModeStrimzi
	}
	return controller.KafkaModeDirect
}

// podEnv returns the container's settings given as values (those from
// the downward API are left out).
func podEnv(pod corev1.PodTemplateSpec) map[string]string {
	env := map[string]string{}
	for _, e := range pod.Spec.Containers[0].Env {
		if e.ValueFrom == nil {
			env[e.Name] = e.Value
		}
	}
	return env
}

// setting returns the value of a setting as the stage loads it from env,
// its default included.
func setting(t *testing.T, stage string, env map[string]string, name string) string {
	t.Helper()
	st, err := loadStage(stage, env)
	if err != nil {
		t.Fatalf("%s: the settings do not load: %v", stage, err)
	}
	for _, s := range st.settings {
		if s.Name == name {
			return s.Value
		}
	}
	t.Fatalf("%s has no setting %s", stage, name)
	return ""
}

// secretFile returns the Secret and key that the pod's container finds at
// file: a read-only mount of the file's directory, whose volume is a Secret
// putting that key at the file's name.
func secretFile(pod corev1.PodTemplateSpec, file string) (secret, key string, err error) {
	c := pod.Spec.Containers[0]
	m := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == path.Dir(file) })
	if m < 0 || !c.VolumeMounts[m].ReadOnly {
		return "", "", fmt.Errorf("%s is not in a read-only mount", file)
	}
	v := slices.IndexFunc(pod.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == c.VolumeMounts[m].Name })
	if v < 0 || pod.Spec.Volumes[v].Secret == nil {
		return "", "", fmt.Errorf("%s: the volume %s is not a Secret", file, c.VolumeMounts[m].Name)
	}
	s := pod.Spec.Volumes[v].Secret
	i := slices.IndexFunc(s.Items, func(k corev1.KeyToPath) bool { return k.Path == path.Base(file) })
	if i < 0 {
		return "", "", fmt.Errorf("%s: the Secret %s puts no key at %s", file, s.SecretName, path.Base(file))
	}
	return s.SecretName, s.Items[i].Key, nil
}

// checkControllerSettings checks what the chart tells the controller besides
// the Kafka connection: its Kafka mode, and in the Strimzi mode the
// release's namespace (where the chart's Role lets it make Strimzi
// objects), the Strimzi cluster and API version of the values; the index
// prefix and default layout, which must be the indexers' for the roles to
// grant their indices; and with elasticsearchRoles, the indexers'
// Elasticsearch URLs, CA and timeout with the roles' own credential, read
// from the values' Secret. Without, no Elasticsearch setting or volume.
func checkControllerSettings(t *testing.T, pods map[string]corev1.PodTemplateSpec, cfg chartConfig) {
	t.Helper()
	pod, ok := pods["controller"]
	if !ok {
		return
	}
	env := podEnv(pod)
	mode := controllerKafkaMode(cfg)
	want := map[string]string{"SLUICE_CONTROLLER_KAFKA_MODE": mode}
	if mode == controller.KafkaModeStrimzi {
		want["SLUICE_CONTROLLER_STRIMZI_NAMESPACE"] = releaseNamespace
		want["SLUICE_CONTROLLER_STRIMZI_CLUSTER"] = cfg.Strimzi.Cluster
		want["SLUICE_CONTROLLER_STRIMZI_API_VERSION"] = cfg.Strimzi.APIVersion
	}
	for _, name := range []string{"SLUICE_CONTROLLER_KAFKA_MODE", "SLUICE_CONTROLLER_STRIMZI_NAMESPACE", "SLUICE_CONTROLLER_STRIMZI_CLUSTER", "SLUICE_CONTROLLER_STRIMZI_API_VERSION"} {
		if got, ok := env[name]; got != want[name] || ok != (want[name] != "") {
			t.Errorf("controller: %s=%q (set %v), want %q", name, got, ok, want[name])
		}
	}

	// The names the roles grant are the indexers': as the values say, and
	// as the rendered indexers load them.
	layout := "dedicated"
	if l, ok := cfg.Indexer.Env["SLUICE_INDEXER_LAYOUT"]; ok {
		layout = fmt.Sprint(l)
	}
	prefix := setting(t, "controller", env, "SLUICE_CONTROLLER_INDEX_PREFIX")
	gotLayout := setting(t, "controller", env, "SLUICE_CONTROLLER_INDEX_LAYOUT")
	if env["SLUICE_CONTROLLER_INDEX_PREFIX"] != cfg.Indexer.IndexPrefix || prefix != cfg.Indexer.IndexPrefix || gotLayout != layout {
		t.Errorf("controller: index prefix %q, layout %q; the indexer's values say %q, %q", prefix, gotLayout, cfg.Indexer.IndexPrefix, layout)
	}
	indexer, indexerOK := pods["indexer"]
	var indexerEnv map[string]string
	if indexerOK {
		indexerEnv = podEnv(indexer)
		ip := setting(t, "indexer", indexerEnv, "SLUICE_INDEXER_INDEX_PREFIX")
		il := setting(t, "indexer", indexerEnv, "SLUICE_INDEXER_LAYOUT")
		if ip != prefix || il != gotLayout {
			t.Errorf("controller: index prefix %q, layout %q; the indexers run with %q, %q", prefix, gotLayout, ip, il)
		}
	}

	var esEnv []string
	for name := range env {
		if strings.HasPrefix(name, "SLUICE_ELASTICSEARCH_") {
			esEnv = append(esEnv, name)
		}
	}
	var esVolumes []string
	for _, v := range pod.Spec.Volumes {
		if strings.HasPrefix(v.Name, "elasticsearch-") {
			esVolumes = append(esVolumes, v.Name)
		}
	}
	roles := cfg.Controller.ElasticsearchRoles
	if !roles.Enabled {
		if len(esEnv)+len(esVolumes) > 0 {
			t.Errorf("controller: Elasticsearch roles off, yet settings %v and volumes %v", esEnv, esVolumes)
		}
		return
	}
	es := cfg.Elasticsearch
	want = map[string]string{
		"SLUICE_ELASTICSEARCH_URLS":            strings.Join(es.URLs, ","),
		"SLUICE_ELASTICSEARCH_REQUEST_TIMEOUT": es.RequestTimeout,
	}
	if es.CASecret.Name != "" {
		want["SLUICE_ELASTICSEARCH_CA_FILE"] = env["SLUICE_ELASTICSEARCH_CA_FILE"]
		if secret, key, err := secretFile(pod, env["SLUICE_ELASTICSEARCH_CA_FILE"]); err != nil || secret != es.CASecret.Name || key != es.CASecret.Key {
			t.Errorf("controller: SLUICE_ELASTICSEARCH_CA_FILE is key %q of Secret %q (%v); values say %s/%s", key, secret, err, es.CASecret.Name, es.CASecret.Key)
		}
	}
	credential := map[string]string{
		"basic":  "SLUICE_ELASTICSEARCH_PASSWORD_FILE",
		"apiKey": "SLUICE_ELASTICSEARCH_API_KEY_FILE",
		"bearer": "SLUICE_ELASTICSEARCH_BEARER_TOKEN_FILE",
	}[roles.Auth.Type]
	if credential == "" {
		t.Fatalf("controller: elasticsearchRoles.auth.type %q rendered", roles.Auth.Type)
	}
	want[credential] = env[credential]
	if roles.Auth.Type == "basic" {
		want["SLUICE_ELASTICSEARCH_USERNAME"] = roles.Auth.Username
	}
	if secret, key, err := secretFile(pod, env[credential]); err != nil || secret != roles.Auth.SecretName || key != roles.Auth.SecretKey {
		t.Errorf("controller: %s is key %q of Secret %q (%v); values say %s/%s", credential, key, secret, err, roles.Auth.SecretName, roles.Auth.SecretKey)
	}
	slices.Sort(esEnv)
	wantNames := slices.Sorted(maps.Keys(want))
	if !slices.Equal(esEnv, wantNames) {
		t.Errorf("controller: Elasticsearch settings %v, want %v", esEnv, wantNames)
	}
	for name, v := range want {
		if env[name] != v || v == "" {
			t.Errorf("controller: %s=%q, want %q", name, env[name], v)
		}
	}
	// The same cluster as the indexers', through the same CA.
	if indexerOK {
		for _, name := range []string{"SLUICE_ELASTICSEARCH_URLS", "SLUICE_ELASTICSEARCH_REQUEST_TIMEOUT", "SLUICE_ELASTICSEARCH_CA_FILE"} {
			if env[name] != indexerEnv[name] {
				t.Errorf("controller: %s=%q, the indexers' %q", name, env[name], indexerEnv[name])
			}
		}
		if f := env["SLUICE_ELASTICSEARCH_CA_FILE"]; f != "" {
			cs, ck, _ := secretFile(pod, f)
			is, ik, _ := secretFile(indexer, f)
			if cs != is || ck != ik {
				t.Errorf("controller: the Elasticsearch CA is key %q of Secret %q, the indexers' %q of %q", ck, cs, ik, is)
			}
		}
	}
}

// strimziRules are the rules of the controller's Role in its Strimzi mode,
// what controller/strimzi.go does in the Strimzi namespace: KafkaTopics and
// KafkaUsers read, listed (a deleted tenant's topics are found by label),
// created, updated and deleted, and the Secrets of the tenants' passwords
// read, created, updated and deleted. Nothing is watched: the controller
// reads these objects without a cache.
var strimziRules = []string{
	"[kafka.strimzi.io] [kafkatopics kafkausers] [get list create update delete]",
	"[] [secrets] [get create update delete]",
}

// checkControllerStrimziRBAC checks the controller's rights on Strimzi
// objects and on Secrets beyond its ClusterRole's get and create: in the
// Strimzi mode, one Role of strimziRules in the release's namespace (the
// Strimzi namespace the controller is given), bound to its ServiceAccount;
// otherwise none, and never cluster-wide.
func checkControllerStrimziRBAC(t *testing.T, objs []object, cfg chartConfig, pod corev1.PodTemplateSpec) {
	t.Helper()
	strimziRule := func(r rbacv1.PolicyRule) bool {
		return slices.Contains(r.APIGroups, "kafka.strimzi.io") || slices.Contains(r.Resources, "secrets")
	}
	for _, r := range all[*rbacv1.ClusterRole](objs) {
		for _, rule := range r.Rules {
			if slices.Contains(rule.APIGroups, "kafka.strimzi.io") {
				t.Errorf("ClusterRole %s grants %v on Strimzi objects cluster-wide; a Role in the release's namespace is enough", r.Name, rule.Verbs)
			}
		}
	}
	var roles []*rbacv1.Role
	for _, r := range all[*rbacv1.Role](objs) {
		if slices.ContainsFunc(r.Rules, strimziRule) {
			roles = append(roles, r)
		}
	}
	if !cfg.Controller.Enabled || controllerKafkaMode(cfg) != controller.KafkaModeStrimzi {
		for _, r := range roles {
			t.Errorf("the controller is off or in the direct mode, yet Role %s grants Strimzi objects or Secrets", r.Name)
		}
		return
	}
	if len(roles) != 1 {
		t.Fatalf("strimzi mode: %d Roles on Strimzi objects and Secrets, want 1", len(roles))
	}
	role := roles[0]
	var got []string
	for _, r := range role.Rules {
		got = append(got, fmt.Sprint(r.APIGroups, r.Resources, r.Verbs))
		if len(r.ResourceNames) > 0 || len(r.NonResourceURLs) > 0 {
			t.Errorf("Role %s: rule %+v: want resources only", role.Name, r)
		}
	}
	if role.Namespace != releaseNamespace || !slices.Equal(got, strimziRules) {
		t.Errorf("Role %s/%s rules:\n%s\nwant in %s:\n%s", role.Namespace, role.Name, strings.Join(got, "\n"), releaseNamespace, strings.Join(strimziRules, "\n"))
	}
	subject := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: pod.Spec.ServiceAccountName, Namespace: releaseNamespace}
	bound := false
	for _, b := range all[*rbacv1.RoleBinding](objs) {
		if b.Namespace == role.Namespace && b.RoleRef == (rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name}) {
			if slices.Equal(b.Subjects, []rbacv1.Subject{subject}) {
				bound = true
			} else {
				t.Errorf("RoleBinding %s binds Role %s to %+v, want the controller's ServiceAccount only", b.Name, role.Name, b.Subjects)
			}
		}
	}
	if !bound {
		t.Errorf("Role %s is not bound to the controller's ServiceAccount %s", role.Name, subject.Name)
	}
}
