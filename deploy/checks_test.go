package deploy

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/sluicelogs/sluice/controller"
	"github.com/sluicelogs/sluice/internal/kafka"
)

// checkObjects checks what must hold of every rendering of the chart.
func checkObjects(t *testing.T, objs []object, cfg chartConfig) {
	t.Helper()
	serviceAccounts := map[string]*corev1.ServiceAccount{}
	for _, sa := range all[*corev1.ServiceAccount](objs) {
		serviceAccounts[sa.Name] = sa
		if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
			t.Errorf("ServiceAccount %s mounts its token in every pod that uses it: only a shipper with Kubernetes metadata asks for it, in its pod spec", sa.Name)
		}
	}
	pods := map[string]corev1.PodTemplateSpec{} // by stage
	deployments := map[string]*appsv1.Deployment{}
	for _, ds := range all[*appsv1.DaemonSet](objs) {
		checkSelector(t, "DaemonSet "+ds.Name, ds.Spec.Selector, ds.Spec.Template.Labels)
		pods[stageOf(t, ds.Spec.Template)] = ds.Spec.Template
		checkShipper(t, ds, objs)
	}
	for _, d := range all[*appsv1.Deployment](objs) {
		checkSelector(t, "Deployment "+d.Name, d.Spec.Selector, d.Spec.Template.Labels)
		stage := stageOf(t, d.Spec.Template)
		pods[stage] = d.Spec.Template
		deployments[d.Name] = d
		if s := d.Spec.Strategy; s.RollingUpdate == nil || s.RollingUpdate.MaxUnavailable == nil || s.RollingUpdate.MaxUnavailable.IntValue() != 0 {
			t.Errorf("Deployment %s: a rolling update must add a replica before it removes one (maxUnavailable 0)", d.Name)
		}
	}
	for _, stage := range workloadNames {
		values := map[string]stageValues{"shipper": cfg.Shipper, "router": cfg.Router, "indexer": cfg.Indexer, "gateway": cfg.Gateway, "controller": cfg.Controller}[stage]
		pod, ok := pods[stage]
		if ok != values.Enabled {
			t.Errorf("stage %s: rendered %v, enabled %v", stage, ok, values.Enabled)
			continue
		}
		if !ok {
			continue
		}
		if sa := serviceAccounts[pod.Spec.ServiceAccountName]; sa == nil {
			t.Errorf("stage %s: ServiceAccount %q is not rendered", stage, pod.Spec.ServiceAccountName)
		}
		checkPod(t, stage, pod, values)
	}
	checkShipperRBAC(t, objs, cfg.Shipper, pods["shipper"])
	checkControllerRBAC(t, objs, cfg.Controller, pods["controller"])
	checkControllerWebhook(t, objs, cfg.Controller, pods["controller"])
	checkControllerSettings(t, pods, cfg)
	checkControllerStrimziRBAC(t, objs, cfg, pods["controller"])
	for _, pdb := range all[*policyv1.PodDisruptionBudget](objs) {
		d := deployments[pdb.Name]
		if d == nil {
			t.Errorf("PodDisruptionBudget %s: no Deployment of that name", pdb.Name)
			continue
		}
		checkSelector(t, "PodDisruptionBudget "+pdb.Name, pdb.Spec.Selector, d.Spec.Template.Labels)
	}
	for _, hpa := range all[*autoscalingv2.HorizontalPodAutoscaler](objs) {
		ref := hpa.Spec.ScaleTargetRef
		if d := deployments[ref.Name]; d == nil || ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" {
			t.Errorf("HorizontalPodAutoscaler %s scales %s %s, not a rendered Deployment", hpa.Name, ref.Kind, ref.Name)
		} else if d.Spec.Replicas != nil {
			t.Errorf("Deployment %s sets replicas although an autoscaler scales it: every upgrade would reset them", d.Name)
		}
	}
	for _, pm := range all[*monitoringv1.PodMonitor](objs) {
		checkPodMonitor(t, pm, pods)
	}
	checkServiceMonitor(t, objs, pods)
	checkKafkaCA(t, objs, cfg, pods)
	checkGateway(t, objs, cfg, pods)
	checkStrimzi(t, objs, cfg)
}

func stageOf(t *testing.T, pod corev1.PodTemplateSpec) string {
	t.Helper()
	stage := pod.Labels["app.kubernetes.io/component"]
	if !slices.Contains(workloadNames, stage) {
		t.Fatalf("pod template labels %v: no app.kubernetes.io/component naming a stage", pod.Labels)
	}
	want := []string{stage}
	if stage == "controller" {
		want = nil // sluice-controller, its image's own command
	}
	if len(pod.Spec.Containers) != 1 || !slices.Equal(pod.Spec.Containers[0].Args, want) {
		t.Fatalf("stage %s: want one container running `sluice %s`", stage, stage)
	}
	return stage
}

// checkSelector checks that a selector selects the pods it is meant for and
// is not empty (an empty selector selects every pod of the namespace).
func checkSelector(t *testing.T, what string, sel *metav1.LabelSelector, podLabels map[string]string) {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil || s.Empty() || !s.Matches(labels.Set(podLabels)) {
		t.Errorf("%s: selector %v does not select its pods %v (%v)", what, sel, podLabels, err)
	}
}

// checkPod checks a stage's pod: settings, secrets, probes, security.
func checkPod(t *testing.T, stage string, pod corev1.PodTemplateSpec, values stageValues) {
	t.Helper()
	spec := pod.Spec
	c := spec.Containers[0]
	wantToken := stage == "shipper" && values.KubernetesMetadata.Enabled || stage == "controller"
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken != wantToken {
		t.Errorf("%s: the pod's automountServiceAccountToken is %v, want %v (only a shipper with Kubernetes metadata and the controller call the API server)", stage, spec.AutomountServiceAccountToken, wantToken)
	}
	checkEnvOnce(t, stage, c.Env)
	checkUserEnv(t, stage, c.Env, values)
	checkExtensions(t, stage, pod, values)
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && slices.ContainsFunc(values.ExtraEnv, func(x corev1.EnvVar) bool { return x.Name == e.Name }):
			// From a Secret, a ConfigMap or the downward API, given in
			// extraEnv: a value the test cannot know.
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName":
			env[e.Name] = "node-a"
		case e.ValueFrom.ResourceFieldRef != nil && e.Name == "GOMEMLIMIT":
			if e.ValueFrom.ResourceFieldRef.Resource != "limits.memory" || c.Resources.Limits.Memory().IsZero() {
				t.Errorf("%s: GOMEMLIMIT must come from a memory limit", stage)
			}
		default:
			t.Errorf("%s: env %s: unexpected valueFrom %+v", stage, e.Name, e.ValueFrom)
		}
	}
	st, err := loadStage(stage, env)
	if err != nil {
		t.Errorf("%s: the container's settings do not load: %v", stage, err)
		return
	}
	for name, value := range env {
		if st.secretValue(name) {
			t.Errorf("%s: %s is set inline (%d characters): secrets are mounted from Secrets as files", stage, name, len(value))
		}
	}
	// Every file a setting names is in a volume mounted read-only from a Secret.
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
		if v.Secret != nil && v.Secret.SecretName == "" {
			t.Errorf("%s: volume %s names no Secret", stage, v.Name)
		}
	}
	for name, file := range st.fileSettings() {
		m, ok := mounts[path.Dir(file)]
		if !ok || !m.ReadOnly {
			t.Errorf("%s: %s=%s is not in a read-only mount", stage, name, file)
			continue
		}
		v := volumes[m.Name].Secret
		if v == nil || !slices.ContainsFunc(v.Items, func(k corev1.KeyToPath) bool { return k.Path == path.Base(file) }) {
			t.Errorf("%s: %s=%s: volume %s does not put a Secret key at %s", stage, name, file, m.Name, path.Base(file))
		}
	}
	for _, m := range c.VolumeMounts {
		if _, ok := volumes[m.Name]; !ok {
			t.Errorf("%s: mount %s of a volume %s that is not declared", stage, m.MountPath, m.Name)
		}
	}
	// Grace period: the stage flushes for up to its shutdown timeout.
	if spec.TerminationGracePeriodSeconds == nil || time.Duration(*spec.TerminationGracePeriodSeconds)*time.Second < st.shutdown+5*time.Second {
		t.Errorf("%s: terminationGracePeriodSeconds %v leaves less than 5s beyond the %s shutdown timeout", stage, spec.TerminationGracePeriodSeconds, st.shutdown)
	}
	// Probes on the telemetry server.
	_, port, _ := strings.Cut(st.telemetryAddr, ":")
	portNum, _ := strconv.Atoi(port)
	if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "telemetry" && int(p.ContainerPort) == portNum }) {
		t.Errorf("%s: no container port telemetry = %d (SLUICE_TELEMETRY_ADDR %q)", stage, portNum, st.telemetryAddr)
	}
	for name, probe := range map[string]*corev1.Probe{"/healthz": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != name || probe.HTTPGet.Port.String() != "telemetry" {
			t.Errorf("%s: want a probe GET %s on the telemetry port, got %+v", stage, name, probe)
		}
	}
	// Resources and least privilege.
	r := c.Resources
	if r.Requests.Cpu().IsZero() || r.Requests.Memory().IsZero() || r.Limits.Memory().IsZero() {
		t.Errorf("%s: resources %v: want CPU and memory requests and a memory limit", stage, r)
	}
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Privileged != nil && *sc.Privileged ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
		t.Errorf("%s: security context %+v: want a read-only root, no privilege escalation and no capabilities", stage, sc)
	}
	if stage != "shipper" && (sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot) {
		t.Errorf("%s: runs as root; only the shipper needs to (to read node log files)", stage)
	}
	if values.Group != "" {
		if group := env["SLUICE_"+strings.ToUpper(stage)+"_GROUP"]; group != values.Group {
			t.Errorf("%s: consumer group %q, values say %q", stage, group, values.Group)
		}
	}
	if stage == "shipper" {
		checkShipperMetadata(t, env, c.Resources, values)
	}
	if stage == "router" {
		checkPseudonymKeys(t, env, spec, values)
	}
}

// checkPseudonymKeys checks the router's pseudonym keys: with
// pseudonymKeys.secretName, SLUICE_ROUTER_PSEUDONYM_KEYS_DIR is a
// read-only mount of that whole Secret (every key a file; no subPath,
// which the kubelet would never update, and not optional, which would
// start routers without keys); without, neither the setting nor a volume.
func checkPseudonymKeys(t *testing.T, env map[string]string, spec corev1.PodSpec, values stageValues) {
	t.Helper()
	dir := env["SLUICE_ROUTER_PSEUDONYM_KEYS_DIR"]
	secret := values.PseudonymKeys.SecretName
	var volume *corev1.SecretVolumeSource
	var volumeName string
	for _, v := range spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == secret {
			volume, volumeName = v.Secret, v.Name
		}
	}
	if secret == "" {
		if dir != "" {
			t.Errorf("router: SLUICE_ROUTER_PSEUDONYM_KEYS_DIR=%s without router.pseudonymKeys.secretName", dir)
		}
		return
	}
	if dir == "" || volume == nil {
		t.Fatalf("router: pseudonymKeys.secretName %s: SLUICE_ROUTER_PSEUDONYM_KEYS_DIR %q, volume %+v", secret, dir, volume)
	}
	if len(volume.Items) > 0 || volume.Optional != nil && *volume.Optional {
		t.Errorf("router: volume %s of Secret %s: items %v, optional %v; want every key, and the Secret required", volumeName, secret, volume.Items, volume.Optional)
	}
	mounted := false
	for _, m := range spec.Containers[0].VolumeMounts {
		if m.Name != volumeName {
			continue
		}
		mounted = true
		if m.MountPath != dir || !m.ReadOnly || m.SubPath != "" || m.SubPathExpr != "" {
			t.Errorf("router: mount %+v of the pseudonym keys: want %s, read-only, the whole volume", m, dir)
		}
	}
	if !mounted {
		t.Errorf("router: the pseudonym keys volume %s is not mounted", volumeName)
	}
}

// checkShipperMetadata checks the shipper's Kubernetes metadata settings
// against the values, and its memory limit: the values' limit, plus
// kubernetesMetadata.memory for the cache while metadata is on.
func checkShipperMetadata(t *testing.T, env map[string]string, r corev1.ResourceRequirements, values stageValues) {
	t.Helper()
	km := values.KubernetesMetadata
	want := map[string]string{"SLUICE_SHIPPER_KUBERNETES_METADATA": "off"}
	limit := resource.MustParse(values.Resources.Limits.Memory)
	if km.Enabled {
		want = map[string]string{
			"SLUICE_SHIPPER_KUBERNETES_METADATA":      "on",
			"SLUICE_SHIPPER_ANNOTATION_PREFIXES":      strings.Join(km.AnnotationPrefixes, ","),
			"SLUICE_SHIPPER_NAMESPACE_LABEL_PREFIXES": strings.Join(km.NamespaceLabelPrefixes, ","),
			"SLUICE_SHIPPER_TENANT_LABEL":             km.TenantLabel,
			"SLUICE_SHIPPER_METADATA_WAIT":            km.Wait,
			"SLUICE_SHIPPER_METADATA_RETENTION":       km.Retention,
		}
		limit.Add(resource.MustParse(km.Memory))
	}
	for _, name := range metadataSettings {
		if got := env[name]; got != want[name] {
			t.Errorf("shipper: %s=%q, values say %q", name, got, want[name])
		}
	}
	if got := r.Limits.Memory(); got.Cmp(limit) != 0 {
		t.Errorf("shipper: memory limit %s, want %s (resources.limits.memory%s)", got, &limit,
			map[bool]string{true: " + kubernetesMetadata.memory", false: ""}[km.Enabled])
	}
}

// metadataSettings are the shipper's settings of its Kubernetes metadata
// that the chart sets.
var metadataSettings = []string{
	"SLUICE_SHIPPER_KUBERNETES_METADATA",
	"SLUICE_SHIPPER_ANNOTATION_PREFIXES",
	"SLUICE_SHIPPER_NAMESPACE_LABEL_PREFIXES",
	"SLUICE_SHIPPER_TENANT_LABEL",
	"SLUICE_SHIPPER_METADATA_WAIT",
	"SLUICE_SHIPPER_METADATA_RETENTION",
}

// checkShipperRBAC checks the shipper's RBAC objects (the controller's are
// checkControllerRBAC's): with
// Kubernetes metadata, a ClusterRole of get, list and watch on pods and
// namespaces (and get on jobs with workloads), and a
// ClusterRoleBinding of it to the ServiceAccount the shipper's pods run as;
// without, none.
func checkShipperRBAC(t *testing.T, objs []object, values stageValues, pod corev1.PodTemplateSpec) {
	t.Helper()
	notController := func(name string) bool { return !strings.HasSuffix(name, "-controller") }
	var roles []*rbacv1.ClusterRole
	for _, r := range all[*rbacv1.ClusterRole](objs) {
		if notController(r.Name) {
			roles = append(roles, r)
		}
	}
	var bindings []*rbacv1.ClusterRoleBinding
	for _, b := range all[*rbacv1.ClusterRoleBinding](objs) {
		if notController(b.Name) {
			bindings = append(bindings, b)
		}
	}
	if !values.Enabled || !values.KubernetesMetadata.Enabled {
		if len(roles)+len(bindings) > 0 {
			t.Errorf("%d ClusterRoles and %d ClusterRoleBindings rendered without Kubernetes metadata, want none", len(roles), len(bindings))
		}
		return
	}
	if len(roles) != 1 || len(bindings) != 1 {
		t.Fatalf("%d ClusterRoles and %d ClusterRoleBindings rendered, want one of each for the shipper", len(roles), len(bindings))
	}
	role, binding := roles[0], bindings[0]
	want := []string{"[] [pods namespaces] [get list watch]"}
	if values.KubernetesMetadata.Workloads {
		want = append(want, "[batch] [jobs] [get]")
	}
	var got []string
	for _, r := range role.Rules {
		got = append(got, fmt.Sprint(r.APIGroups, r.Resources, r.Verbs))
		for _, v := range slices.Concat(r.APIGroups, r.Resources, r.Verbs, r.ResourceNames) {
			if strings.Contains(v, "*") {
				t.Errorf("ClusterRole %s: wildcard %q in rule %+v", role.Name, v, r)
			}
		}
		if len(r.NonResourceURLs) > 0 || len(r.ResourceNames) > 0 {
			t.Errorf("ClusterRole %s: rule %+v: want resources only", role.Name, r)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("ClusterRole %s rules:\n%s\nwant\n%s", role.Name, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if role.AggregationRule != nil {
		t.Errorf("ClusterRole %s aggregates other roles", role.Name)
	}
	ref := binding.RoleRef
	if ref.APIGroup != rbacv1.GroupName || ref.Kind != "ClusterRole" || ref.Name != role.Name {
		t.Errorf("ClusterRoleBinding %s refers to %+v, not ClusterRole %s", binding.Name, ref, role.Name)
	}
	wantSubject := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: pod.Spec.ServiceAccountName, Namespace: releaseNamespace}
	if len(binding.Subjects) != 1 || binding.Subjects[0] != wantSubject {
		t.Errorf("ClusterRoleBinding %s subjects %+v, want the shipper's ServiceAccount %+v", binding.Name, binding.Subjects, wantSubject)
	}
}

// checkShipper checks the DaemonSet: one shipper per node at any time, the
// node's log directories read-only and its checkpoint directory writable.
func checkShipper(t *testing.T, ds *appsv1.DaemonSet, objs []object) {
	t.Helper()
	u := ds.Spec.UpdateStrategy
	if u.Type != appsv1.RollingUpdateDaemonSetStrategyType || u.RollingUpdate == nil ||
		u.RollingUpdate.MaxSurge == nil || u.RollingUpdate.MaxSurge.IntValue() != 0 ||
		u.RollingUpdate.MaxUnavailable == nil || u.RollingUpdate.MaxUnavailable.IntValue() < 1 {
		t.Errorf("DaemonSet %s: update strategy %+v: a surge would run two shippers on one node, sharing a checkpoint", ds.Name, u)
	}
	spec := ds.Spec.Template.Spec
	c := spec.Containers[0]
	hostPaths := map[string]*corev1.HostPathVolumeSource{}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath
		}
	}
	mounted := map[string]corev1.VolumeMount{} // by host path
	for _, m := range c.VolumeMounts {
		if hp := hostPaths[m.Name]; hp != nil {
			mounted[hp.Path] = m
		}
	}
	for _, dir := range []string{"/var/log", "/var/lib/docker/containers"} {
		m, ok := mounted[dir]
		if !ok || !m.ReadOnly || m.MountPath != dir {
			t.Errorf("DaemonSet %s: want host %s mounted read-only at the same path (symlinks point there), got %+v", ds.Name, dir, m)
		}
	}
	var env = map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	checkpoint := env["SLUICE_SHIPPER_CHECKPOINT_DIR"].Value
	var cp *corev1.VolumeMount
	for hp, m := range mounted {
		if m.MountPath == checkpoint {
			cp = &m
			if !strings.HasSuffix(hp, "/"+releaseName) || m.ReadOnly || *hostPaths[m.Name].Type != corev1.HostPathDirectoryOrCreate {
				t.Errorf("DaemonSet %s: checkpoint mount %+v from %s: want a writable per-release host directory", ds.Name, m, hp)
			}
		}
	}
	if cp == nil {
		t.Errorf("DaemonSet %s: SLUICE_SHIPPER_CHECKPOINT_DIR %q is not a host directory", ds.Name, checkpoint)
	}
	if ref := env["SLUICE_NODE_NAME"].ValueFrom; ref == nil || ref.FieldRef == nil || ref.FieldRef.FieldPath != "spec.nodeName" {
		t.Errorf("DaemonSet %s: SLUICE_NODE_NAME must come from the downward API (spec.nodeName)", ds.Name)
	}
	if !slices.ContainsFunc(spec.Tolerations, func(t corev1.Toleration) bool { return t.Operator == corev1.TolerationOpExists && t.Key == "" }) {
		t.Errorf("DaemonSet %s: tolerations %v do not run it on tainted nodes", ds.Name, spec.Tolerations)
	}
	if spec.PriorityClassName == "" {
		t.Errorf("DaemonSet %s: no priority class", ds.Name)
	}
	classes := all[*schedulingv1.PriorityClass](objs)
	for _, pc := range classes {
		if pc.Name != spec.PriorityClassName {
			t.Errorf("PriorityClass %s is rendered but the shipper uses %s", pc.Name, spec.PriorityClassName)
		}
	}
	if len(classes) == 0 && !strings.HasPrefix(spec.PriorityClassName, "system-") {
		t.Logf("DaemonSet %s uses priority class %s made outside the chart", ds.Name, spec.PriorityClassName)
	}
}

func checkPodMonitor(t *testing.T, pm *monitoringv1.PodMonitor, pods map[string]corev1.PodTemplateSpec) {
	t.Helper()
	sel := labels.SelectorFromSet(pm.Spec.Selector.MatchLabels)
	for stage, pod := range pods {
		if !sel.Matches(labels.Set(pod.Labels)) {
			t.Errorf("PodMonitor %s does not select the %s pods", pm.Name, stage)
		}
	}
	if len(pm.Spec.PodMetricsEndpoints) != 1 {
		t.Fatalf("PodMonitor %s: want one endpoint", pm.Name)
	}
	ep := pm.Spec.PodMetricsEndpoints[0]
	if ep.Port == nil || *ep.Port != "telemetry" {
		t.Errorf("PodMonitor %s scrapes port %v, want telemetry", pm.Name, ep.Port)
	}
	checkRelabelings(t, "PodMonitor "+pm.Name, ep.RelabelConfigs)
}

// checkRelabelings checks that a scrape configuration adds the labels the
// alerts and the dashboard use: stage and node.
func checkRelabelings(t *testing.T, what string, rs []monitoringv1.RelabelConfig) {
	t.Helper()
	targets := map[string]string{}
	for _, r := range rs {
		if r.TargetLabel != "" && len(r.SourceLabels) == 1 {
			targets[r.TargetLabel] = string(r.SourceLabels[0])
		}
	}
	want := map[string]string{
		"stage": "__meta_kubernetes_pod_label_app_kubernetes_io_component",
		"node":  "__meta_kubernetes_pod_node_name",
	}
	if !maps.Equal(targets, want) {
		t.Errorf("%s relabels %v, want %v (the alerts and dashboard use these labels)", what, targets, want)
	}
}

// checkStrimzi checks the Strimzi topics and users against the values: every
// tenant's topics, and its user's ACLs and quotas as `sluice tenant create`
// sets them.
func checkStrimzi(t *testing.T, objs []object, cfg chartConfig) {
	t.Helper()
	topics := map[string]*kafkaTopic{}
	for _, kt := range all[*kafkaTopic](objs) {
		topics[kt.Spec.TopicName] = kt
		if kt.Labels["strimzi.io/cluster"] == "" || kt.Spec.Partitions < 1 || kt.Spec.Replicas < 1 {
			t.Errorf("KafkaTopic %s: want a strimzi.io/cluster label, partitions and replicas", kt.Name)
		}
	}
	users := map[string]*kafkaUser{}
	for _, u := range all[*kafkaUser](objs) {
		users[u.Name] = u
		checkKafkaUser(t, u)
	}
	if !cfg.Strimzi.Enabled {
		if len(topics)+len(users) > 0 {
			t.Errorf("Strimzi objects rendered although strimzi.enabled is false")
		}
		return
	}
	prefix := cfg.Kafka.TopicPrefix
	tp := kafkaTopics{Prefix: prefix}
	compacted := func(name string) {
		t.Helper()
		kt := topics[name]
		if kt == nil || kt.Spec.Partitions != 1 || kt.Spec.Config["cleanup.policy"] != "compact" {
			t.Errorf("topic %s: want one compacted partition, got %+v", name, kt)
		}
	}
	compacted(tp.Status())
	compacted(tp.Config()) // the legacy topic, kept so that an upgrade does not delete it
	compacted(tp.Schemas())
	compacted(tp.Tenants())
	for _, tenant := range cfg.Strimzi.Tenants {
		want := []string{tp.Raw(tenant.Name), tp.Parsed(tenant.Name), tp.DLQ(tenant.Name)}
		for _, ds := range append(tenant.Datasets, tenant.Streams...) {
			want = append(want, tp.ParsedDataset(tenant.Name, ds))
		}
		partitions := cmpOr(tenant.Partitions, cfg.Strimzi.TopicDefaults.Partitions)
		for _, name := range want {
			if kt := topics[name]; kt == nil || kt.Spec.Partitions != partitions {
				t.Errorf("tenant %s: want topic %s with %d partitions, got %+v", tenant.Name, name, partitions, kt)
			}
		}
		for _, name := range kafka.TenantStateTopics(tp, tenant.Name) {
			compacted(name)
		}
		u := users[tenant.Name]
		if u == nil {
			t.Errorf("tenant %s: no KafkaUser", tenant.Name)
			continue
		}
		if got, want := aclStrings(u.Spec.Authorization.ACLs), tenantACLStrings(tp, tenant.Name); !slices.Equal(got, want) {
			t.Errorf("KafkaUser %s ACLs:\n%s\nwant those of sluice tenant create:\n%s", u.Name, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		// Quotas as sluice tenant create sets them: the defaults unless set.
		d := cfg.Strimzi.QuotaDefaults
		produce, consume := d.ProducerByteRate, d.ConsumerByteRate
		if tenant.ProducerByteRate != nil {
			produce = *tenant.ProducerByteRate
		}
		if tenant.ConsumerByteRate != nil {
			consume = *tenant.ConsumerByteRate
		}
		if produce == 0 || consume == 0 || d.ControllerMutationRate == 0 {
			t.Errorf("tenant %s: quotas produce %d consume %d mutations %d, want none unlimited", tenant.Name, produce, consume, d.ControllerMutationRate)
		}
		q := u.Spec.Quotas
		if q == nil || q.ProducerByteRate != produce || q.ConsumerByteRate != consume || q.ControllerMutationRate != d.ControllerMutationRate {
			t.Errorf("KafkaUser %s quotas %+v, want producer %d consumer %d mutations %d", u.Name, q, produce, consume, d.ControllerMutationRate)
		}
	}
	// The stages' users: only the rights each stage needs.
	for stage, v := range map[string]stageValues{"shipper": cfg.Shipper, "router": cfg.Router, "indexer": cfg.Indexer} {
		u := users[v.KafkaUser]
		if u == nil {
			t.Errorf("%s: no KafkaUser %s", stage, v.KafkaUser)
			continue
		}
		got := aclStrings(u.Spec.Authorization.ACLs)
		var want []string
		switch stage {
		case "shipper":
			// Dead letters of records Kafka refuses for good; each raw
			// topic's max.message.bytes, which batches follow; the
			// schema versions it writes with.
			want = []string{
				"topic literal " + prefix + ".schemas Describe,Write",
				"topic prefix " + prefix + ".dlq. Describe,Write",
				"topic prefix " + prefix + ".raw. Describe,DescribeConfigs,Write",
			}
		case "router":
			want = ruleStrings(kafka.RouterACLRules(tp, v.Group))
		case "indexer":
			// The schema versions it reads; the tenants' index settings
			// it follows.
			want = []string{
				"group literal " + v.Group + " Describe,Read",
				"topic literal " + prefix + ".schemas Describe,Read",
				"topic literal " + prefix + ".tenants Describe,Read",
				"topic prefix " + prefix + ".dlq. Describe,Write",
				"topic prefix " + prefix + ".parsed. Describe,Read",
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("KafkaUser %s ACLs:\n%s\nwant:\n%s", u.Name, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	checkControllerKafkaUser(t, users, cfg, tp)
}

// checkControllerKafkaUser checks the controller's KafkaUser: rendered with
// the controller in the Strimzi mode only (in the direct mode its user is
// an administrator made outside the chart), with the rights of what it
// does through Kafka there, named by internal/kafka's topic names for a
// tenant: read and write each tenant's config topic
// (router.ApplyPipeline and DeletePipeline read it first, ReadPipeline
// looks it up), read its status topic (router.ReadStatus) and its
// dead-letter topic (kafka.ReadRecent), all without a consumer group, and
// write <prefix>.tenants. Nothing else: the Strimzi operators make the
// topics and users.
func checkControllerKafkaUser(t *testing.T, users map[string]*kafkaUser, cfg chartConfig, tp kafkaTopics) {
	t.Helper()
	u := users[cfg.Controller.KafkaUser]
	if !cfg.Controller.Enabled || controllerKafkaMode(cfg) != controller.KafkaModeStrimzi {
		if u != nil {
			t.Errorf("KafkaUser %s rendered for the controller, which is off or in the direct mode", u.Name)
		}
		return
	}
	if u == nil {
		t.Fatalf("controller in the Strimzi mode: no KafkaUser %s", cfg.Controller.KafkaUser)
	}
	const anyTenant = ""
	want := []string{
		"topic literal " + tp.Tenants() + " Describe,Write",
		"topic prefix " + tp.DLQ(anyTenant) + " Describe,Read",
		"topic prefix " + tp.TenantConfig(anyTenant) + " Describe,Read,Write",
		"topic prefix " + tp.TenantStatus(anyTenant) + " Describe,Read",
	}
	slices.Sort(want)
	if got := aclStrings(u.Spec.Authorization.ACLs); !slices.Equal(got, want) {
		t.Errorf("KafkaUser %s ACLs:\n%s\nwant:\n%s", u.Name, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// What it needs of one tenant's topics, whatever the tenant.
	for _, tenant := range []string{"shop", "a"} {
		for topic, ops := range map[string][]string{
			tp.TenantConfig(tenant): {"Read", "Write", "Describe"},
			tp.TenantStatus(tenant): {"Read", "Describe"},
			tp.DLQ(tenant):          {"Read", "Describe"},
			tp.Tenants():            {"Write", "Describe"},
		} {
			for _, op := range ops {
				if !allows(u.Spec.Authorization.ACLs, "topic", topic, op) {
					t.Errorf("KafkaUser %s may not %s topic %s", u.Name, op, topic)
				}
			}
		}
		for _, topic := range []string{tp.Raw(tenant), tp.Parsed(tenant), tp.Status(), tp.Config(), tp.Schemas()} {
			for _, op := range []string{"Read", "Write"} {
				if allows(u.Spec.Authorization.ACLs, "topic", topic, op) {
					t.Errorf("KafkaUser %s may %s topic %s, which the controller does not use", u.Name, op, topic)
				}
			}
		}
	}
}

// allows reports whether Strimzi ACLs allow op on a resource.
func allows(acls []strimziACL, typ, name, op string) bool {
	for _, a := range acls {
		r := a.Resource
		match := r.Name == name || r.PatternType == "prefix" && strings.HasPrefix(name, r.Name)
		if r.Type == typ && match && (slices.Contains(a.Operations, op) || slices.Contains(a.Operations, "All")) {
			return true
		}
	}
	return false
}

func cmpOr[T comparable](a, b T) T {
	var zero T
	if a != zero {
		return a
	}
	return b
}

// checkKafkaUser checks the enumerations of the KafkaUser schema.
func checkKafkaUser(t *testing.T, u *kafkaUser) {
	t.Helper()
	oneOf := func(field, v string, allowed ...string) {
		if !slices.Contains(allowed, v) {
			t.Errorf("KafkaUser %s: %s %q is not one of %v", u.Name, field, v, allowed)
		}
	}
	oneOf("authentication.type", u.Spec.Authentication.Type, "tls", "tls-external", "scram-sha-512")
	oneOf("authorization.type", u.Spec.Authorization.Type, "simple")
	for _, a := range u.Spec.Authorization.ACLs {
		oneOf("resource.type", a.Resource.Type, "topic", "group", "cluster", "transactionalId")
		oneOf("resource.patternType", a.Resource.PatternType, "literal", "prefix")
		for _, op := range a.Operations {
			oneOf("operation", op, "Read", "Write", "Create", "Delete", "Alter", "Describe", "ClusterAction",
				"AlterConfigs", "DescribeConfigs", "IdempotentWrite", "All")
		}
		if a.Host != "*" {
			t.Errorf("KafkaUser %s: ACL host %q, want *", u.Name, a.Host)
		}
	}
	if u.Labels["strimzi.io/cluster"] == "" {
		t.Errorf("KafkaUser %s has no strimzi.io/cluster label", u.Name)
	}
}

// aclStrings returns Strimzi ACLs as sorted "type pattern name ops" lines.
func aclStrings(acls []strimziACL) []string {
	var out []string
	for _, a := range acls {
		ops := slices.Sorted(slices.Values(a.Operations))
		out = append(out, fmt.Sprintf("%s %s %s %s", a.Resource.Type, a.Resource.PatternType, a.Resource.Name, strings.Join(ops, ",")))
	}
	slices.Sort(out)
	return out
}

type kafkaTopics = kafka.Topics

// tenantACLStrings returns kafka.TenantACLRules in aclStrings' form.
func tenantACLStrings(tp kafka.Topics, tenant string) []string {
	return ruleStrings(kafka.TenantACLRules(tp, tenant))
}

// ruleStrings returns ACL rules in aclStrings' form.
func ruleStrings(rules []kafka.ACLRule) []string {
	var acls []strimziACL
	for _, r := range rules {
		var a strimziACL
		a.Resource.Type, a.Resource.Name, a.Resource.PatternType = r.Resource, r.Name, "literal"
		if r.Prefixed {
			a.Resource.PatternType = "prefix"
		}
		for _, op := range r.Operations {
			// kadm names operations READ, DESCRIBE_CONFIGS, ...; Strimzi
			// Read, DescribeConfigs.
			var name string
			for _, w := range strings.Split(strings.ToLower(op.String()), "_") {
				name += strings.ToUpper(w[:1]) + w[1:]
			}
			a.Operations = append(a.Operations, name)
		}
		acls = append(acls, a)
	}
	return aclStrings(acls)
}

// checkControllerRBAC checks the controller's rights: its resources with
// their status and finalizers, Namespaces read, Secrets cluster-wide only
// read one by one and created (never listed or watched, never updated or
// deleted), and Leases in the release's namespace only; all bound to its
// ServiceAccount. Its Strimzi mode's Role is checkControllerStrimziRBAC's.
func checkControllerRBAC(t *testing.T, objs []object, values stageValues, pod corev1.PodTemplateSpec) {
	t.Helper()
	var roles []*rbacv1.ClusterRole
	for _, r := range all[*rbacv1.ClusterRole](objs) {
		if strings.HasSuffix(r.Name, "-controller") {
			roles = append(roles, r)
		}
	}
	if !values.Enabled {
		if len(roles) > 0 {
			t.Errorf("controller disabled, yet ClusterRole %s is rendered", roles[0].Name)
		}
		return
	}
	if len(roles) != 1 {
		t.Fatalf("%d controller ClusterRoles, want 1", len(roles))
	}
	for _, rule := range roles[0].Rules {
		if slices.Contains(rule.Resources, "secrets") && !slices.Equal(rule.Verbs, []string{"get", "create"}) {
			t.Errorf("the controller may %v secrets; want get and create only", rule.Verbs)
		}
		if slices.Contains(rule.Resources, "leases") {
			t.Errorf("the ClusterRole grants leases cluster-wide; a Role in the release's namespace is enough")
		}
	}
	bound := false
	for _, b := range all[*rbacv1.ClusterRoleBinding](objs) {
		if b.RoleRef.Name == roles[0].Name && slices.ContainsFunc(b.Subjects, func(s rbacv1.Subject) bool { return s.Name == pod.Spec.ServiceAccountName }) {
			bound = true
		}
	}
	if !bound {
		t.Errorf("ClusterRole %s is not bound to the controller's ServiceAccount %s", roles[0].Name, pod.Spec.ServiceAccountName)
	}
}
