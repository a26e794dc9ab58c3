package deploy

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/loader"
	"helm.sh/helm/v4/pkg/cli/values"
	"helm.sh/helm/v4/pkg/engine"
	"helm.sh/helm/v4/pkg/getter"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	sigsyaml "sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite kubernetes/sluice.yaml from the chart's defaults (make manifests)")

const (
	chartDir      = "helm/sluice"
	manifestsFile = "kubernetes/sluice.yaml"
	// The release of the plain manifests: names sluice-shipper, sluice-router, ...
	releaseName      = "sluice"
	releaseNamespace = "sluice"
)

// render renders the chart as `helm template` does, with the values files
// merged in order (later files win), and returns the manifests in Helm's
// install order.
func render(valueFiles ...string) ([]releaseutil.Manifest, error) {
	return renderRelease(nil, valueFiles...)
}

// renderRelease renders as render does; with cluster, as an upgrade of
// the release, whose lookups find what cluster holds.
func renderRelease(cluster engine.ClientProvider, valueFiles ...string) ([]releaseutil.Manifest, error) {
	ch, err := loader.Load(chartDir)
	if err != nil {
		return nil, fmt.Errorf("load chart: %w", err)
	}
	vals, err := (&values.Options{ValueFiles: valueFiles}).MergeValues(getter.Providers{})
	if err != nil {
		return nil, fmt.Errorf("values: %w", err)
	}
	revision := 1
	if cluster != nil {
		revision = 2
	}
	top, err := util.ToRenderValues(ch, vals, common.ReleaseOptions{
		Name: releaseName, Namespace: releaseNamespace, IsInstall: cluster == nil, IsUpgrade: cluster != nil, Revision: revision,
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("values: %w", err)
	}
	var files map[string]string
	if cluster == nil {
		files, err = engine.Render(ch, top)
	} else {
		files, err = engine.RenderWithClientProvider(ch, top, cluster)
	}
	if err != nil {
		return nil, err
	}
	hooks, manifests, err := releaseutil.SortManifests(files, nil, releaseutil.InstallOrder)
	if err != nil {
		return nil, fmt.Errorf("sort manifests: %w", err)
	}
	if len(hooks) > 0 {
		return nil, fmt.Errorf("the chart has %d hooks; kubectl apply of the plain manifests would run them as plain objects", len(hooks))
	}
	return manifests, nil
}

// manifestsText is the text of deploy/kubernetes/sluice.yaml.
func manifestsText(ms []releaseutil.Manifest) []byte {
	var b bytes.Buffer
	b.WriteString("# Sluice: the Helm chart deploy/helm/sluice rendered with its default values (release\n")
	b.WriteString("# \"sluice\", namespace \"sluice\") by `make manifests`. Do not edit: change the chart and run\n")
	b.WriteString("# `make manifests`; a test fails when this file is stale. Before applying, make the Secrets\n")
	b.WriteString("# the stages read (docs/operations.md, \"Kubernetes\"), then:\n")
	b.WriteString("#   kubectl create namespace sluice && kubectl apply -f deploy/kubernetes/sluice.yaml\n")
	for _, m := range ms {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", m.Name, strings.TrimSpace(m.Content))
	}
	return b.Bytes()
}

func TestManifestsUpToDate(t *testing.T) {
	ms, err := render()
	if err != nil {
		t.Fatal(err)
	}
	want := manifestsText(ms)
	if *update {
		if err := os.WriteFile(manifestsFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(manifestsFile)
	if err != nil {
		t.Fatalf("%v (run make manifests)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale: run make manifests", filepath.Join("deploy", manifestsFile))
	}
	// The file is what the chart renders, so it must pass the same checks.
	objs := decodeAll(t, splitDocuments(got))
	checkObjects(t, objs, chartValues(t))
}

// splitDocuments splits a multi-document YAML file.
func splitDocuments(b []byte) []string {
	var docs []string
	for _, d := range strings.Split("\n"+string(b), "\n---\n") {
		if strings.TrimSpace(stripComments(d)) != "" {
			docs = append(docs, d)
		}
	}
	return docs
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// valuesFiles are the values files the chart is tested with.
var valuesFiles = map[string][]string{
	"defaults": nil,
	"all":      {"testdata/values-all.yaml"},
	"strimzi":  {"testdata/values-strimzi.yaml"},
	// Kubernetes metadata off: no RBAC, no token.
	"metadata-off": {"testdata/values-metadata-off.yaml"},
	// Files merge as with helm -f a -f b.
	"all+strimzi": {"testdata/values-all.yaml", "testdata/values-strimzi.yaml"},
	// The router's pseudonym keys from a Secret, its only volume.
	"pseudonym-keys": {"testdata/values-pseudonym-keys.yaml"},
	// The controller without its admission webhook ("all" has it, with
	// the chart's certificate), and with it, cert-manager's.
	"controller":           {"testdata/values-controller.yaml"},
	"webhook-cert-manager": {"testdata/values-webhook-cert-manager.yaml"},
	// The controller in the Strimzi mode asked for, with Elasticsearch
	// roles ("all+strimzi" has the mode by default); and in the direct
	// mode beside the chart's Strimzi objects.
	"controller-strimzi":        {"testdata/values-controller-strimzi.yaml"},
	"controller-direct+strimzi": {"testdata/values-strimzi.yaml", "testdata/values-controller-direct.yaml"},
	// A ServiceMonitor and its Services, beside the webhook's.
	"service-monitor": {"testdata/values-service-monitor.yaml"},
	// The ingest gateway with its defaults, and scraped by the
	// ServiceMonitor beside Strimzi's users (of which it has none).
	"gateway":                         {"testdata/values-gateway.yaml"},
	"gateway+strimzi+service-monitor": {"testdata/values-gateway.yaml", "testdata/values-strimzi.yaml", "testdata/values-service-monitor.yaml"},
	// Every stage's extension points; and with every option on.
	"extend":     {"testdata/values-extend.yaml"},
	"all+extend": {"testdata/values-all.yaml", "testdata/values-strimzi.yaml", "testdata/values-extend.yaml"},
}

func TestChartRenders(t *testing.T) {
	for name, files := range valuesFiles {
		t.Run(name, func(t *testing.T) {
			ms, err := render(files...)
			if err != nil {
				t.Fatal(err)
			}
			docs := make([]string, len(ms))
			for i, m := range ms {
				docs[i] = m.Content
			}
			objs := decodeAll(t, docs)
			checkObjects(t, objs, chartValues(t, files...))
		})
	}
}

// chartValues returns the chart's values merged with files, for the checks.
func chartValues(t *testing.T, files ...string) chartConfig {
	t.Helper()
	var cfg chartConfig
	for _, f := range append([]string{filepath.Join(chartDir, "values.yaml")}, files...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := sigsyaml.Unmarshal(b, &cfg); err != nil { // later files overwrite the fields they set
			t.Fatalf("%s: %v", f, err)
		}
	}
	return cfg
}

// chartConfig is the part of the values the checks compare objects with.
type chartConfig struct {
	Kafka struct {
		TopicPrefix string `json:"topicPrefix"`
		TLS         struct {
			Enabled  bool `json:"enabled"`
			CASecret struct {
				Name        string `json:"name"`
				Key         string `json:"key"`
				ReflectFrom string `json:"reflectFrom"`
			} `json:"caSecret"`
		} `json:"tls"`
		SASL struct {
			Mechanism string `json:"mechanism"`
		} `json:"sasl"`
	} `json:"kafka"`
	Elasticsearch struct {
		URLs     []string `json:"urls"`
		CASecret struct {
			Name string `json:"name"`
			Key  string `json:"key"`
		} `json:"caSecret"`
		RequestTimeout string `json:"requestTimeout"`
	} `json:"elasticsearch"`
	Shipper stageValues `json:"shipper"`
	Router  stageValues `json:"router"`
	Indexer stageValues `json:"indexer"`
	// Gateway is the ingest gateway, checked like a stage.
	Gateway stageValues `json:"gateway"`
	// Controller is sluice-controller, not a stage of the pipeline, but
	// checked like one.
	Controller stageValues `json:"controller"`
	Strimzi    struct {
		Enabled    bool   `json:"enabled"`
		APIVersion string `json:"apiVersion"`
		Cluster    string `json:"cluster"`
		Tenants    []struct {
			Name             string   `json:"name"`
			Partitions       int32    `json:"partitions"`
			Datasets         []string `json:"datasets"`
			Streams          []string `json:"streams"` // the deprecated name of datasets
			ProducerByteRate *int64   `json:"producerByteRate"`
			ConsumerByteRate *int64   `json:"consumerByteRate"`
		} `json:"tenants"`
		QuotaDefaults struct {
			ProducerByteRate       int64 `json:"producerByteRate"`
			ConsumerByteRate       int64 `json:"consumerByteRate"`
			ControllerMutationRate int64 `json:"controllerMutationRate"`
		} `json:"quotaDefaults"`
		TopicDefaults struct {
			Partitions int32 `json:"partitions"`
		} `json:"topicDefaults"`
	} `json:"strimzi"`
}

type stageValues struct {
	Enabled   bool   `json:"enabled"`
	KafkaUser string `json:"kafkaUser"`
	Group     string `json:"group"`
	Resources struct {
		Limits struct {
			Memory string `json:"memory"`
		} `json:"limits"`
	} `json:"resources"`
	// The shipper's only.
	KubernetesMetadata metadataValues `json:"kubernetesMetadata"`
	// The router's only.
	PseudonymKeys struct {
		SecretName string `json:"secretName"`
	} `json:"pseudonymKeys"`
	// Env is <stage>.env: settings of the stage, which win over the
	// chart's own of the same name.
	Env map[string]any `json:"env"`
	// The extension points of every stage.
	ExtraEnv           []corev1.EnvVar            `json:"extraEnv"`
	EnvFrom            []corev1.EnvFromSource     `json:"envFrom"`
	ExtraVolumes       []corev1.Volume            `json:"extraVolumes"`
	ExtraVolumeMounts  []corev1.VolumeMount       `json:"extraVolumeMounts"`
	PodSecurityContext *corev1.PodSecurityContext `json:"podSecurityContext"`
	// The router's, the indexer's and the controller's (the shipper's
	// priorityClassName is checkShipper's).
	TopologySpreadConstraints []corev1.TopologySpreadConstraint `json:"topologySpreadConstraints"`
	PriorityClassName         string                            `json:"priorityClassName"`
	// The indexer's only.
	IndexPrefix string `json:"indexPrefix"`
	// The gateway's only.
	GRPC struct {
		Enabled bool `json:"enabled"`
	} `json:"grpc"`
	Ingress struct {
		Enabled   bool                      `json:"enabled"`
		ClassName string                    `json:"className"`
		Hosts     []string                  `json:"hosts"`
		TLS       []networkingv1.IngressTLS `json:"tls"`
	} `json:"ingress"`
	TokensSecret struct {
		Name string `json:"name"`
		Key  string `json:"key"`
	} `json:"tokensSecret"`
	TLSSecret struct {
		Name        string `json:"name"`
		CertKey     string `json:"certKey"`
		KeyKey      string `json:"keyKey"`
		ClientCAKey string `json:"clientCAKey"`
	} `json:"tlsSecret"`
	// The controller's only.
	Webhook            webhookValues `json:"webhook"`
	KafkaMode          string        `json:"kafkaMode"`
	ElasticsearchRoles struct {
		Enabled bool       `json:"enabled"`
		Auth    authValues `json:"auth"`
	} `json:"elasticsearchRoles"`
}

// authValues are an Elasticsearch credential: elasticsearch.auth, or the
// controller's elasticsearchRoles.auth.
type authValues struct {
	Type       string `json:"type"`
	Username   string `json:"username"`
	SecretName string `json:"secretName"`
	SecretKey  string `json:"secretKey"`
}

// metadataValues are shipper.kubernetesMetadata.
type metadataValues struct {
	Enabled                bool     `json:"enabled"`
	Workloads              bool     `json:"workloads"`
	AnnotationPrefixes     []string `json:"annotationPrefixes"`
	NamespaceLabelPrefixes []string `json:"namespaceLabelPrefixes"`
	TenantLabel            string   `json:"tenantLabel"`
	Wait                   string   `json:"wait"`
	Retention              string   `json:"retention"`
	Memory                 string   `json:"memory"`
}

func TestChartRejects(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct{ values, want string }{
		"bad tenant id":                                {"strimzi: {enabled: true, tenants: [{name: Shop_1}]}", `"Shop_1" is not a tenant id`},
		"tenant named as a user":                       {"strimzi: {enabled: true, tenants: [{name: sluice-router}]}", "has the name of the router's Kafka user"},
		"bad dataset":                                  {"strimzi: {enabled: true, tenants: [{name: shop, datasets: [a.b]}]}", `dataset "a.b" of tenant shop`},
		"bad dataset under its old name":               {"strimzi: {enabled: true, tenants: [{name: shop, streams: [a.b]}]}", `dataset "a.b" of tenant shop`},
		"datasets and streams":                         {"strimzi: {enabled: true, tenants: [{name: shop, datasets: [a], streams: [b]}]}", "give datasets only"},
		"unknown es auth":                              {"elasticsearch: {auth: {type: oauth}}", `elasticsearch.auth.type "oauth"`},
		"basic without user":                           {"elasticsearch: {auth: {type: basic, secretName: s, secretKey: k}}", "elasticsearch.auth.username is required"},
		"api key without secret":                       {"elasticsearch: {auth: {type: apiKey}}", "elasticsearch.auth.secretName is required"},
		"strimzi with plain":                           {"kafka: {sasl: {mechanism: PLAIN}}\nstrimzi: {enabled: true}", "Strimzi users log in with SCRAM-SHA-512"},
		"memory limit in G":                            {"shipper: {resources: {limits: {memory: 1G}}}", `shipper.resources.limits.memory "1G": give it in Ki, Mi, Gi or bytes`},
		"cert-manager, no issuer":                      {"controller: {enabled: true, webhook: {enabled: true, certManager: {enabled: true}}}", "controller.webhook.certManager.issuerRef.name is required"},
		"tenant named as the controller's user":        {"controller: {enabled: true}\nstrimzi: {enabled: true, tenants: [{name: sluice-admin}]}", "has the name of the controller's Kafka user"},
		"roles, basic without user":                    {"controller: {enabled: true, elasticsearchRoles: {enabled: true, auth: {secretName: s, secretKey: k}}}", "controller.elasticsearchRoles.auth.username is required"},
		"roles without secret":                         {"controller: {enabled: true, elasticsearchRoles: {enabled: true, auth: {type: bearer}}}", "controller.elasticsearchRoles.auth.secretName is required"},
		"CA reflected without TLS":                     {"kafka: {tls: {enabled: false, caSecret: {reflectFrom: kafka/kafka-cluster-ca-cert}}}", "kafka.tls.caSecret.reflectFrom needs kafka.tls.enabled and kafka.tls.caSecret.name"},
		"CA reflected into no Secret":                  {"kafka: {tls: {caSecret: {name: \"\", reflectFrom: kafka/kafka-cluster-ca-cert}}}", "kafka.tls.caSecret.reflectFrom needs kafka.tls.enabled and kafka.tls.caSecret.name"},
		"CA reflected from its own namespace":          {"kafka: {tls: {caSecret: {reflectFrom: sluice/kafka-cluster-ca-cert}}}", "kafka.tls.caSecret.reflectFrom sluice/kafka-cluster-ca-cert is in the release's namespace already"},
		"pod and service monitors":                     {"metrics: {podMonitor: {enabled: true}, serviceMonitor: {enabled: true}}", "choose one, both would scrape every pod twice"},
		"a variable in env and extraEnv":               {"router: {env: {GOGC: 100}, extraEnv: [{name: GOGC, value: \"50\"}]}", "router.extraEnv: GOGC is also in router.env"},
		"a variable twice in extraEnv":                 {"indexer: {extraEnv: [{name: TZ, value: UTC}, {name: TZ, value: CET}]}", "indexer.extraEnv: TZ is also in indexer.extraEnv"},
		"an extra volume named as the chart's":         {"router: {extraVolumes: [{name: kafka-ca, emptyDir: {}}]}", "router.extraVolumes: name kafka-ca is the chart's or given twice"},
		"an extra volume twice":                        {"controller: {enabled: true, extraVolumes: [{name: tmp, emptyDir: {}}, {name: tmp, emptyDir: {}}]}", "controller.extraVolumes: name tmp is the chart's or given twice"},
		"gateway ingress without hosts":                {"gateway: {enabled: true, ingress: {enabled: true}}", "gateway.ingress.hosts: give at least one host"},
		"an extra volume named as the gateway's":       {"gateway: {enabled: true, tokensSecret: {name: t}, extraVolumes: [{name: gateway-tokens, emptyDir: {}}]}", "gateway.extraVolumes: name gateway-tokens is the chart's or given twice"},
		"a variable in the gateway's env and extraEnv": {"gateway: {enabled: true, env: {GOGC: 100}, extraEnv: [{name: GOGC, value: \"50\"}]}", "gateway.extraEnv: GOGC is also in gateway.env"},
		"an extra mount at the chart's path":           {"shipper: {extraVolumeMounts: [{name: logs, mountPath: /var/log}]}", "shipper.extraVolumeMounts: mountPath /var/log is the chart's or given twice"},
	} {
		t.Run(name, func(t *testing.T) {
			f := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".yaml")
			if err := os.WriteFile(f, []byte(tc.values), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := render(f)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("render error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestChartFilesAreIncludedVerbatim(t *testing.T) {
	ms, err := render("testdata/values-all.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs := decodeAll(t, contents(ms))
	rule := only[*monitoringPrometheusRule](t, objs)
	var file struct {
		Groups []struct {
			Name  string           `json:"name"`
			Rules []map[string]any `json:"rules"`
		} `json:"groups"`
	}
	readYAML(t, filepath.Join(chartDir, "files/alerts.yaml"), &file)
	if len(rule.Spec.Groups) != len(file.Groups) || len(rule.Spec.Groups) == 0 {
		t.Fatalf("PrometheusRule has %d groups, files/alerts.yaml %d", len(rule.Spec.Groups), len(file.Groups))
	}
	for i, g := range file.Groups {
		if rule.Spec.Groups[i].Name != g.Name || len(rule.Spec.Groups[i].Rules) != len(g.Rules) {
			t.Errorf("group %d: rendered %s with %d rules, file %s with %d", i, rule.Spec.Groups[i].Name, len(rule.Spec.Groups[i].Rules), g.Name, len(g.Rules))
		}
	}
	dash, err := os.ReadFile(filepath.Join(chartDir, "files/dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	cm := only[*corev1ConfigMap](t, objs)
	if got := cm.Data["sluice.json"]; got != strings.TrimRight(string(dash), "\n") {
		t.Errorf("the dashboard ConfigMap differs from files/dashboard.json")
	}
	if cm.Labels["grafana_dashboard"] != "1" {
		t.Errorf("dashboard ConfigMap labels = %v, want grafana_dashboard=1 for the Grafana sidecar", cm.Labels)
	}
}

func contents(ms []releaseutil.Manifest) []string {
	docs := make([]string, len(ms))
	for i, m := range ms {
		docs[i] = m.Content
	}
	return docs
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := sigsyaml.UnmarshalStrict(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// only returns the one object of type T.
func only[T any](t *testing.T, objs []object) T {
	t.Helper()
	var found []T
	for _, o := range objs {
		if v, ok := o.value.(T); ok {
			found = append(found, v)
		}
	}
	if len(found) != 1 {
		var zero T
		t.Fatalf("%d objects of type %T, want 1", len(found), zero)
	}
	return found[0]
}

// all returns the objects of type T.
func all[T any](objs []object) []T {
	var found []T
	for _, o := range objs {
		if v, ok := o.value.(T); ok {
			found = append(found, v)
		}
	}
	return found
}
