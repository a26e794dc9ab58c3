package deploy

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// gatewayObjects returns the rendered objects of the ingest gateway's
// component, by kind.
func gatewayObjects(objs []object) map[string][]object {
	byKind := map[string][]object{}
	for _, o := range objs {
		var meta *metav1.ObjectMeta
		switch v := o.value.(type) {
		case *appsv1.Deployment:
			meta = &v.ObjectMeta
		case *corev1.Service:
			meta = &v.ObjectMeta
		case *corev1.ServiceAccount:
			meta = &v.ObjectMeta
		case *policyv1.PodDisruptionBudget:
			meta = &v.ObjectMeta
		case *networkingv1.Ingress:
			meta = &v.ObjectMeta
		default:
			continue
		}
		if meta.Labels["app.kubernetes.io/component"] == "gateway" && meta.Labels[metricsLabel] == "" {
			byKind[o.kind] = append(byKind[o.kind], o)
		}
	}
	return byKind
}

// checkGateway checks the ingest gateway's objects. Disabled: none. Enabled:
// a Deployment whose container serves OTLP/HTTP on the port
// SLUICE_GATEWAY_ADDR names (container port http-otlp), OTLP/gRPC on
// grpc-otlp iff gateway.grpc.enabled; Kafka's mechanism and TLS of the
// values but no user, password or its volume (it produces as each
// request's tenant); the tokens file and TLS files from the values'
// Secrets; a ClusterIP Service of its ports; a PodDisruptionBudget; an
// Ingress iff gateway.ingress.enabled, to the Service's http-otlp port; and
// no KafkaUser of its own.
func checkGateway(t *testing.T, objs []object, cfg chartConfig, pods map[string]corev1.PodTemplateSpec) {
	t.Helper()
	g := cfg.Gateway
	byKind := gatewayObjects(objs)
	pod, ok := pods["gateway"]
	if !g.Enabled {
		if ok || len(byKind) > 0 {
			t.Errorf("gateway disabled, yet rendered: %v", byKind)
		}
		return
	}
	for _, kind := range []string{"Deployment", "Service", "ServiceAccount", "PodDisruptionBudget"} {
		if len(byKind[kind]) != 1 {
			t.Errorf("gateway: %d %ss, want 1", len(byKind[kind]), kind)
		}
	}
	if n := len(byKind["Ingress"]); g.Ingress.Enabled != (n == 1) || n > 1 {
		t.Errorf("gateway: %d Ingresses, ingress.enabled %v", n, g.Ingress.Enabled)
	}
	c := pod.Spec.Containers[0]
	env := podEnv(pod)
	for _, name := range []string{"SLUICE_KAFKA_SASL_USERNAME", "SLUICE_KAFKA_SASL_PASSWORD", "SLUICE_KAFKA_SASL_PASSWORD_FILE"} {
		if _, ok := env[name]; ok {
			t.Errorf("gateway: %s is set: the gateway has no Kafka credentials of its own", name)
		}
	}
	if slices.ContainsFunc(pod.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == "kafka-sasl" }) {
		t.Errorf("gateway: a kafka-sasl volume: the gateway has no Kafka password")
	}
	if _, user := g.Env["SLUICE_KAFKA_SASL_MECHANISM"]; !user {
		want := cfg.Kafka.SASL.Mechanism
		if strings.EqualFold(want, "none") {
			want = ""
		}
		if got := env["SLUICE_KAFKA_SASL_MECHANISM"]; got != want {
			t.Errorf("gateway: SLUICE_KAFKA_SASL_MECHANISM %q, kafka.sasl.mechanism %q", got, cfg.Kafka.SASL.Mechanism)
		}
	}
	// Ports: the listen addresses the gateway loads are the container's ports.
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	wantPort := func(name, setting string) {
		t.Helper()
		addr := env[setting]
		if addr == "" {
			if _, ok := ports[name]; ok {
				t.Errorf("gateway: container port %s, yet %s is not set", name, setting)
			}
			return
		}
		if want := ":" + itoa(ports[name]); addr != want {
			t.Errorf("gateway: %s=%q, container port %s is %d", setting, addr, name, ports[name])
		}
	}
	if env["SLUICE_GATEWAY_ADDR"] == "" {
		t.Errorf("gateway: SLUICE_GATEWAY_ADDR is not set")
	}
	wantPort("http-otlp", "SLUICE_GATEWAY_ADDR")
	wantPort("grpc-otlp", "SLUICE_GATEWAY_GRPC_ADDR")
	if _, ok := ports["grpc-otlp"]; ok != g.GRPC.Enabled {
		t.Errorf("gateway: container port grpc-otlp %v, grpc.enabled %v", ok, g.GRPC.Enabled)
	}
	// Tokens and TLS from the values' Secrets.
	files := []struct{ setting, secret, key string }{
		{"SLUICE_GATEWAY_TOKENS_FILE", g.TokensSecret.Name, g.TokensSecret.Key},
		{"SLUICE_GATEWAY_TLS_CERT_FILE", g.TLSSecret.Name, g.TLSSecret.CertKey},
		{"SLUICE_GATEWAY_TLS_KEY_FILE", g.TLSSecret.Name, g.TLSSecret.KeyKey},
		{"SLUICE_GATEWAY_TLS_CLIENT_CA_FILE", g.TLSSecret.Name, g.TLSSecret.ClientCAKey},
	}
	for _, f := range files {
		if f.key == "" {
			f.secret = ""
		}
		file, set := env[f.setting]
		if _, user := g.Env[f.setting]; user {
			continue
		}
		if set != (f.secret != "") {
			t.Errorf("gateway: %s set %v, its Secret %q", f.setting, set, f.secret)
			continue
		}
		if !set {
			continue
		}
		secret, key, err := secretFile(pod, file)
		if err != nil || secret != f.secret || key != f.key {
			t.Errorf("gateway: %s=%s is key %q of Secret %q (%v), want key %q of %q", f.setting, file, key, secret, err, f.key, f.secret)
		}
	}
	// The Service: ClusterIP, selecting the gateway's pods, each port to a
	// container port.
	var svc *corev1.Service
	if ss := byKind["Service"]; len(ss) == 1 {
		svc = ss[0].value.(*corev1.Service)
		if svc.Spec.Type != corev1.ServiceTypeClusterIP || svc.Spec.ClusterIP == corev1.ClusterIPNone {
			t.Errorf("Service %s: type %q clusterIP %q, want a ClusterIP Service", svc.Name, svc.Spec.Type, svc.Spec.ClusterIP)
		}
		checkSelector(t, "Service "+svc.Name, &metav1.LabelSelector{MatchLabels: svc.Spec.Selector}, pod.Labels)
		var names []string
		for _, p := range svc.Spec.Ports {
			names = append(names, p.Name)
			if _, ok := ports[p.TargetPort.String()]; !ok || p.TargetPort.String() == "telemetry" {
				t.Errorf("Service %s: port %s to %s, not an ingest port of the container", svc.Name, p.Name, p.TargetPort.String())
			}
		}
		want := []string{"http-otlp"}
		if g.GRPC.Enabled {
			want = append(want, "grpc-otlp")
		}
		if !slices.Equal(names, want) {
			t.Errorf("Service %s: ports %v, want %v", svc.Name, names, want)
		}
	}
	if is := byKind["Ingress"]; len(is) == 1 && svc != nil {
		ing := is[0].value.(*networkingv1.Ingress)
		if g.Ingress.ClassName != "" && (ing.Spec.IngressClassName == nil || *ing.Spec.IngressClassName != g.Ingress.ClassName) {
			t.Errorf("Ingress %s: class %v, want %q", ing.Name, ing.Spec.IngressClassName, g.Ingress.ClassName)
		}
		var hosts []string
		for _, r := range ing.Spec.Rules {
			hosts = append(hosts, r.Host)
			if r.HTTP == nil || len(r.HTTP.Paths) != 1 {
				t.Errorf("Ingress %s: host %s: want one path", ing.Name, r.Host)
				continue
			}
			b := r.HTTP.Paths[0].Backend.Service
			if b == nil || b.Name != svc.Name || b.Port.Name != "http-otlp" {
				t.Errorf("Ingress %s: host %s goes to %+v, not the Service %s's port http-otlp", ing.Name, r.Host, b, svc.Name)
			}
		}
		if !slices.Equal(hosts, g.Ingress.Hosts) {
			t.Errorf("Ingress %s: hosts %v, values %v", ing.Name, hosts, g.Ingress.Hosts)
		}
		if len(ing.Spec.TLS) != len(g.Ingress.TLS) {
			t.Errorf("Ingress %s: tls %+v, values %+v", ing.Name, ing.Spec.TLS, g.Ingress.TLS)
		}
	}
	for _, u := range all[*kafkaUser](objs) {
		if strings.Contains(u.Name, "gateway") {
			t.Errorf("KafkaUser %s: the gateway has no Kafka user of its own", u.Name)
		}
	}
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

// TestGatewayOptions renders the gateway with every option but its
// Ingress, and with SASL off, which the gateway's settings allow only with
// SLUICE_GATEWAY_INSECURE_TRUST_USERNAME (given in its env).
func TestGatewayOptions(t *testing.T) {
	off := writeValues(t, t.TempDir(), "gateway-options", `kafka: {sasl: {mechanism: none}}
gateway:
  enabled: true
  grpc: {enabled: true}
  ingress: {enabled: false, hosts: [logs.example.com]}
  tlsSecret: {name: gateway-tls}
  env: {SLUICE_GATEWAY_INSECURE_TRUST_USERNAME: true}
`)
	files := []string{"testdata/values-gateway.yaml", off}
	ms, err := render(files...)
	if err != nil {
		t.Fatal(err)
	}
	objs := decodeAll(t, contents(ms))
	checkObjects(t, objs, chartValues(t, files...))
	if n := len(all[*networkingv1.Ingress](objs)); n != 0 {
		t.Errorf("ingress.enabled false: %d Ingresses", n)
	}
	env := podEnv(workloadPods(t, objs)["gateway"])
	if _, ok := env["SLUICE_KAFKA_SASL_MECHANISM"]; ok {
		t.Errorf("kafka.sasl.mechanism none: the gateway gets SLUICE_KAFKA_SASL_MECHANISM")
	}
	if _, ok := env["SLUICE_GATEWAY_TLS_CLIENT_CA_FILE"]; ok {
		t.Errorf("no tlsSecret.clientCAKey: the gateway gets SLUICE_GATEWAY_TLS_CLIENT_CA_FILE")
	}
}

// TestGatewayOffByDefault checks that the chart's defaults render nothing
// of the gateway.
func TestGatewayOffByDefault(t *testing.T) {
	ms, err := render()
	if err != nil {
		t.Fatal(err)
	}
	if byKind := gatewayObjects(decodeAll(t, contents(ms))); len(byKind) > 0 {
		t.Errorf("the defaults render the gateway: %v", byKind)
	}
}
