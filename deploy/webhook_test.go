package deploy

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"path"
	"slices"
	"strconv"
	"testing"

	"helm.sh/helm/v4/pkg/engine"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	"github.com/sluicelogs/sluice/controller"
)

// webhookValues are controller.webhook.
type webhookValues struct {
	Enabled        bool  `json:"enabled"`
	Port           int32 `json:"port"`
	TimeoutSeconds int32 `json:"timeoutSeconds"`
	CertManager    struct {
		Enabled   bool `json:"enabled"`
		IssuerRef struct {
			Name string `json:"name"`
			Kind string `json:"kind"`
		} `json:"issuerRef"`
	} `json:"certManager"`
}

const injectCAFrom = "cert-manager.io/inject-ca-from"

// checkControllerWebhook checks the controller's admission webhook. Off
// (or the controller off): no webhook configuration, Service, Secret or
// Certificate, and neither the settings nor the port in the pod. On: the
// configuration sends CREATE and UPDATE of pipelines.sluice.io v1alpha1 to
// the rendered Service, in the release's namespace, at the path the
// controller serves, refusing when the call fails; the Service reaches the
// controller's webhook port, which SLUICE_CONTROLLER_WEBHOOK_PORT sets; the
// serving certificate is mounted read-only, whole, where
// SLUICE_CONTROLLER_WEBHOOK_CERT_DIR points. With cert-manager, a
// Certificate of the Service's names fills that Secret and the CA is
// injected; without, the chart's Secret holds a CA, which is the caBundle,
// and a certificate it signed for the Service with its key. The chart
// renders no other Secret with data: the stages' secrets are referenced,
// never inlined (the Kafka CA's that Reflector fills is checkKafkaCA's).
func checkControllerWebhook(t *testing.T, objs []object, values stageValues, pod corev1.PodTemplateSpec) {
	t.Helper()
	configs := all[*admissionregistrationv1.ValidatingWebhookConfiguration](objs)
	var services []*corev1.Service
	for _, svc := range all[*corev1.Service](objs) {
		// Not a ServiceMonitor's, nor the gateway's (checkGateway's).
		if svc.Labels[metricsLabel] == "" && svc.Labels["app.kubernetes.io/component"] != "gateway" {
			services = append(services, svc)
		}
	}
	var secrets []*corev1.Secret
	for _, sec := range all[*corev1.Secret](objs) {
		if sec.Annotations[reflects] == "" { // not the Kafka CA's, checkKafkaCA's
			secrets = append(secrets, sec)
		}
	}
	certs := all[*certificate](objs)
	w := values.Webhook
	env := map[string]string{}
	var ports []corev1.ContainerPort
	var c corev1.Container
	if values.Enabled {
		c = pod.Spec.Containers[0]
		for _, e := range c.Env {
			env[e.Name] = e.Value
		}
		ports = c.Ports
	}
	webhookPort := slices.IndexFunc(ports, func(p corev1.ContainerPort) bool { return p.Name == "webhook" })
	if !values.Enabled || !w.Enabled {
		if n := len(configs) + len(services) + len(secrets) + len(certs); n > 0 {
			t.Errorf("the webhook is off, yet %d of its objects are rendered (configurations, Services, Secrets, Certificates)", n)
		}
		if env["SLUICE_CONTROLLER_WEBHOOK_PORT"] != "" || env["SLUICE_CONTROLLER_WEBHOOK_CERT_DIR"] != "" || webhookPort >= 0 {
			t.Errorf("the webhook is off, yet the controller has its settings or port: %v, %v", env, ports)
		}
		return
	}
	if len(configs) != 1 || len(services) != 1 || len(configs[0].Webhooks) != 1 {
		t.Fatalf("webhook on: %d ValidatingWebhookConfigurations and %d Services, want one of each with one webhook", len(configs), len(services))
	}
	vwc, svc, wh := configs[0], services[0], configs[0].Webhooks[0]

	// What the API server does with it.
	if wh.Name != "pipelines.sluice.io" || !slices.Contains(wh.AdmissionReviewVersions, "v1") {
		t.Errorf("webhook %s, review versions %v: want pipelines.sluice.io taking v1", wh.Name, wh.AdmissionReviewVersions)
	}
	if wh.FailurePolicy == nil || *wh.FailurePolicy != admissionregistrationv1.Fail ||
		wh.SideEffects == nil || *wh.SideEffects != admissionregistrationv1.SideEffectClassNone ||
		wh.MatchPolicy == nil || *wh.MatchPolicy != admissionregistrationv1.Equivalent {
		t.Errorf("webhook %s: failurePolicy %v, sideEffects %v, matchPolicy %v; want Fail, None, Equivalent", wh.Name, wh.FailurePolicy, wh.SideEffects, wh.MatchPolicy)
	}
	if wh.TimeoutSeconds == nil || *wh.TimeoutSeconds != w.TimeoutSeconds || w.TimeoutSeconds < 1 || w.TimeoutSeconds > 30 {
		t.Errorf("webhook %s: timeoutSeconds %v, values say %d (1-30)", wh.Name, wh.TimeoutSeconds, w.TimeoutSeconds)
	}
	scope := admissionregistrationv1.NamespacedScope
	want := admissionregistrationv1.RuleWithOperations{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
		Rule:       admissionregistrationv1.Rule{APIGroups: []string{"sluice.io"}, APIVersions: []string{"v1alpha1"}, Resources: []string{"pipelines"}, Scope: &scope},
	}
	if got := wh.Rules; len(got) != 1 || fmt.Sprint(got[0].Operations, got[0].APIGroups, got[0].APIVersions, got[0].Resources, *got[0].Scope) !=
		fmt.Sprint(want.Operations, want.APIGroups, want.APIVersions, want.Resources, scope) {
		t.Errorf("webhook rules %+v; want CREATE and UPDATE of sluice.io/v1alpha1 pipelines", got)
	}

	// The way to the controller: Service, selector, ports, path.
	ref := wh.ClientConfig.Service
	if ref == nil || wh.ClientConfig.URL != nil || ref.Name != svc.Name || ref.Namespace != svc.Namespace || svc.Namespace != releaseNamespace {
		t.Fatalf("the webhook calls %+v (URL %v), not the Service %s/%s in the release's namespace", ref, wh.ClientConfig.URL, svc.Namespace, svc.Name)
	}
	if ref.Path == nil {
		t.Errorf("the webhook calls no path; the controller serves %s", controller.PipelineWebhookPath)
	} else if *ref.Path != controller.PipelineWebhookPath {
		t.Errorf("the webhook calls path %s; the controller serves %s", *ref.Path, controller.PipelineWebhookPath)
	}
	checkSelector(t, "Service "+svc.Name, &metav1.LabelSelector{MatchLabels: svc.Spec.Selector}, pod.Labels)
	port := int32(443)
	if ref.Port != nil {
		port = *ref.Port
	}
	sp := slices.IndexFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == port })
	if sp < 0 || svc.Spec.Ports[sp].TargetPort.String() != "webhook" || webhookPort < 0 {
		t.Fatalf("Service %s: no port %d to the container port named webhook (%+v; container ports %+v)", svc.Name, port, svc.Spec.Ports, ports)
	}
	if p := ports[webhookPort].ContainerPort; p != w.Port || env["SLUICE_CONTROLLER_WEBHOOK_PORT"] != strconv.Itoa(int(p)) {
		t.Errorf("controller: container port webhook %d, SLUICE_CONTROLLER_WEBHOOK_PORT %q, values %d", p, env["SLUICE_CONTROLLER_WEBHOOK_PORT"], w.Port)
	}

	// The serving certificate, mounted where the setting points.
	dir := env["SLUICE_CONTROLLER_WEBHOOK_CERT_DIR"]
	m := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == dir })
	if dir == "" || m < 0 || !c.VolumeMounts[m].ReadOnly || c.VolumeMounts[m].SubPath != "" {
		t.Fatalf("controller: SLUICE_CONTROLLER_WEBHOOK_CERT_DIR %q is not a read-only mount of a whole volume (%+v)", dir, c.VolumeMounts)
	}
	v := slices.IndexFunc(pod.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == c.VolumeMounts[m].Name })
	if v < 0 || pod.Spec.Volumes[v].Secret == nil {
		t.Fatalf("controller: the webhook certificate's volume %s is not a Secret", c.VolumeMounts[m].Name)
	}
	vol := pod.Spec.Volumes[v].Secret
	for _, f := range []string{"tls.crt", "tls.key"} {
		if len(vol.Items) > 0 && !slices.ContainsFunc(vol.Items, func(k corev1.KeyToPath) bool { return k.Key == f && k.Path == path.Base(f) }) {
			t.Errorf("controller: the webhook certificate's volume does not put %s in %s", f, dir)
		}
	}
	names := []string{svc.Name + "." + svc.Namespace + ".svc"}

	if w.CertManager.Enabled {
		if len(secrets) > 0 || len(certs) != 1 {
			t.Fatalf("cert-manager: %d Secrets and %d Certificates rendered, want only a Certificate", len(secrets), len(certs))
		}
		cert := certs[0]
		if cert.Namespace != releaseNamespace || cert.Spec.SecretName != vol.SecretName || !slices.Contains(cert.Spec.DNSNames, names[0]) {
			t.Errorf("Certificate %s/%s: Secret %s for %v; want the mounted %s, for %s", cert.Namespace, cert.Name, cert.Spec.SecretName, cert.Spec.DNSNames, vol.SecretName, names[0])
		}
		if r := cert.Spec.IssuerRef; r.Name != w.CertManager.IssuerRef.Name || r.Kind != w.CertManager.IssuerRef.Kind {
			t.Errorf("Certificate %s: issuer %+v, values say %+v", cert.Name, r, w.CertManager.IssuerRef)
		}
		if got := vwc.Annotations[injectCAFrom]; got != cert.Namespace+"/"+cert.Name || len(wh.ClientConfig.CABundle) > 0 {
			t.Errorf("cert-manager: %s %q, caBundle of %d bytes; want the Certificate %s/%s injected, no caBundle", injectCAFrom, got, len(wh.ClientConfig.CABundle), cert.Namespace, cert.Name)
		}
		return
	}
	if len(certs) > 0 || len(secrets) != 1 {
		t.Fatalf("the chart's certificate: %d Secrets and %d Certificates rendered, want only a Secret", len(secrets), len(certs))
	}
	sec := secrets[0]
	if sec.Name != vol.SecretName || sec.Namespace != releaseNamespace || sec.Type != corev1.SecretTypeTLS {
		t.Errorf("Secret %s/%s of type %s; want the mounted %s, kubernetes.io/tls", sec.Namespace, sec.Name, sec.Type, vol.SecretName)
	}
	if _, ok := vwc.Annotations[injectCAFrom]; ok {
		t.Errorf("the chart's certificate, yet %s is set", injectCAFrom)
	}
	if len(wh.ClientConfig.CABundle) == 0 || !bytes.Equal(wh.ClientConfig.CABundle, sec.Data["ca.crt"]) {
		t.Fatalf("caBundle (%d bytes) is not the Secret's ca.crt", len(wh.ClientConfig.CABundle))
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(wh.ClientConfig.CABundle) {
		t.Fatal("caBundle holds no PEM certificate")
	}
	pair, err := tls.X509KeyPair(sec.Data["tls.crt"], sec.Data["tls.key"])
	if err != nil {
		t.Fatalf("Secret %s: tls.crt and tls.key: %v", sec.Name, err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: names[0], Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("Secret %s: the serving certificate does not verify for %s against caBundle: %v", sec.Name, names[0], err)
	}
}

// secretsLookup answers the chart's lookups from a fake cluster: Secrets
// are all the chart looks up.
type secretsLookup struct {
	cluster *dynamicfake.FakeDynamicClient
}

func (l secretsLookup) GetClientFor(apiVersion, kind string) (dynamic.NamespaceableResourceInterface, bool, error) {
	if apiVersion != "v1" || kind != "Secret" {
		return nil, false, fmt.Errorf("the chart looks up %s %s; the test's cluster has Secrets only", apiVersion, kind)
	}
	return l.cluster.Resource(corev1.SchemeGroupVersion.WithResource("secrets")), true, nil
}

// TestWebhookCertKeptOnUpgrade: the chart's CA and serving certificate are
// made at the first install and kept by an upgrade that finds them in the
// cluster (a new CA would fail the API server's calls until the kubelet
// brought the new certificate to the pods); a Secret missing a key is made
// anew, whole.
func TestWebhookCertKeptOnUpgrade(t *testing.T) {
	files := []string{"testdata/values-all.yaml"}
	cfg := chartValues(t, files...)
	renderWith := func(cluster *dynamicfake.FakeDynamicClient) (*corev1.Secret, []byte) {
		t.Helper()
		var provider engine.ClientProvider // nil: an install, nothing to look up
		if cluster != nil {
			provider = secretsLookup{cluster}
		}
		ms, err := renderRelease(provider, files...)
		if err != nil {
			t.Fatal(err)
		}
		objs := decodeAll(t, contents(ms))
		checkObjects(t, objs, cfg)
		return only[*corev1.Secret](t, objs), only[*admissionregistrationv1.ValidatingWebhookConfiguration](t, objs).Webhooks[0].ClientConfig.CABundle
	}
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}

	installed, _ := renderWith(nil)
	if other, _ := renderWith(nil); bytes.Equal(other.Data["ca.crt"], installed.Data["ca.crt"]) {
		t.Fatal("two installs render the same CA: the test could not tell a kept one")
	}
	kept, caBundle := renderWith(dynamicfake.NewSimpleDynamicClient(scheme, installed.DeepCopy()))
	for _, k := range []string{"ca.crt", "tls.crt", "tls.key"} {
		if !bytes.Equal(kept.Data[k], installed.Data[k]) {
			t.Errorf("an upgrade changed the Secret's %s", k)
		}
	}
	if !bytes.Equal(caBundle, installed.Data["ca.crt"]) {
		t.Error("an upgrade changed the caBundle")
	}

	partial := installed.DeepCopy()
	delete(partial.Data, "ca.crt")
	remade, caBundle := renderWith(dynamicfake.NewSimpleDynamicClient(scheme, partial))
	if bytes.Equal(remade.Data["tls.crt"], installed.Data["tls.crt"]) || !bytes.Equal(caBundle, remade.Data["ca.crt"]) {
		t.Error("a Secret without ca.crt is not made anew, whole, with its CA in the caBundle")
	}
}
