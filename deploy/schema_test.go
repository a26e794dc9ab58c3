package deploy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// schemaError starts every error of helm.sh/helm/v4/pkg/chart/common/util
// ToRenderValues for values that helm/sluice/values.schema.json rejects.
const schemaError = "values don't meet the specifications of the schema(s)"

// writeValues writes a values file to dir and returns its path.
func writeValues(t *testing.T, dir, name, values string) string {
	t.Helper()
	f := filepath.Join(dir, strings.NewReplacer(" ", "-", "/", "-").Replace(name)+".yaml")
	if err := os.WriteFile(f, []byte(values), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestSchemaRejects checks that values.schema.json rejects misspelt keys and
// values of the wrong type or range before anything is rendered.
func TestSchemaRejects(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct{ values, want string }{
		"misspelt gateway ingress key":   {"gateway: {ingress: {host: [a]}}", "at '/gateway/ingress': additional properties 'host' not allowed"},
		"gateway has no kafkaUser":       {"gateway: {kafkaUser: sluice-gateway}", "at '/gateway': additional properties 'kafkaUser' not allowed"},
		"misspelt stage":                 {"shiper: {enabled: true}", "additional properties 'shiper' not allowed"},
		"misspelt stage key":             {"shipper: {resouces: {}}", "at '/shipper': additional properties 'resouces' not allowed"},
		"misspelt tls key":               {"kafka: {tls: {enable: true}}", "at '/kafka/tls': additional properties 'enable' not allowed"},
		"unknown sasl mechanism":         {"kafka: {sasl: {mechanism: GSSAPI}}", "at '/kafka/sasl/mechanism': value must be one of 'none', 'PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'"},
		"zero replicas":                  {"router: {replicas: 0}", "at '/router/replicas': minimum: got 0, want 1"},
		"replicas as a string":           {`router: {replicas: "2"}`, "at '/router/replicas': got string, want integer"},
		"fractional replicas":            {"indexer: {replicas: 1.5}", "at '/indexer/replicas': got number, want integer"},
		"misspelt tenant key":            {"strimzi: {tenants: [{name: shop, partition: 3}]}", "at '/strimzi/tenants/0': additional properties 'partition' not allowed"},
		"tenant without name":            {"strimzi: {tenants: [{partitions: 3}]}", "at '/strimzi/tenants/0': missing property 'name'"},
		"retention below -1":             {"strimzi: {topicDefaults: {retentionMs: -2}}", "at '/strimzi/topicDefaults/retentionMs': minimum: got -2, want -1"},
		"env without prefix":             {"indexer: {env: {WORKERS: 4}}", "at '/indexer/env': additional properties 'WORKERS' not allowed"},
		"env value an object":            {"router: {env: {SLUICE_ROUTER_BATCH_MAX_TIME: {n: 1}}}", "at '/router/env/SLUICE_ROUTER_BATCH_MAX_TIME': got object, want boolean or number or string"},
		"log format":                     {"log: {format: logfmt}", "at '/log/format': value must be one of 'text', 'json'"},
		"unknown compression":            {"kafka: {compression: brotli}", "at '/kafka/compression': value must be one of '', 'snappy', 'lz4', 'zstd', 'gzip', 'none'"},
		"pull policy":                    {"image: {pullPolicy: always}", "at '/image/pullPolicy': value must be one of 'Always', 'IfNotPresent', 'Never'"},
		"numeric image tag":              {"image: {tag: 1.2}", "at '/image/tag': got number, want string"},
		"port out of range":              {"telemetryPort: 70000", "at '/telemetryPort': maximum"},
		"brokers as a string":            {"kafka: {brokers: kafka:9093}", "at '/kafka/brokers': got string, want array"},
		"router has no indexPrefix":      {"router: {indexPrefix: logs}", "at '/router': additional properties 'indexPrefix' not allowed"},
		"non-string metric label":        {"metrics: {podMonitor: {labels: {release: 1}}}", "at '/metrics/podMonitor/labels/release': got number, want string"},
		"pull secret without name":       {"imagePullSecrets: [{nam: registry}]", "at '/imagePullSecrets/0': missing property 'name'"},
		"misspelt autoscaling key":       {"indexer: {autoscaling: {maxReplica: 4}}", "at '/indexer/autoscaling': additional properties 'maxReplica' not allowed"},
		"misspelt metadata key":          {"shipper: {kubernetesMetadata: {enable: false}}", "at '/shipper/kubernetesMetadata': additional properties 'enable' not allowed"},
		"annotation prefixes a string":   {"shipper: {kubernetesMetadata: {annotationPrefixes: app.kubernetes.io/}}", "at '/shipper/kubernetesMetadata/annotationPrefixes': got string, want array"},
		"metadata memory in MB":          {"shipper: {kubernetesMetadata: {memory: 32M}}", "at '/shipper/kubernetesMetadata/memory'"},
		"metadata wait not a duration":   {"shipper: {kubernetesMetadata: {wait: 2}}", "at '/shipper/kubernetesMetadata/wait': got number, want string"},
		"misspelt pseudonymKeys key":     {"router: {pseudonymKeys: {secret: keys}}", "at '/router/pseudonymKeys': additional properties 'secret' not allowed"},
		"indexer has no pseudonymKeys":   {"indexer: {pseudonymKeys: {secretName: keys}}", "at '/indexer': additional properties 'pseudonymKeys' not allowed"},
		"misspelt webhook key":           {"controller: {webhook: {enable: true}}", "at '/controller/webhook': additional properties 'enable' not allowed"},
		"webhook timeout too long":       {"controller: {webhook: {timeoutSeconds: 60}}", "at '/controller/webhook/timeoutSeconds': maximum: got 60, want 30"},
		"unknown issuer kind":            {"controller: {webhook: {certManager: {issuerRef: {kind: Vault}}}}", "at '/controller/webhook/certManager/issuerRef/kind': value must be one of 'Issuer', 'ClusterIssuer'"},
		"unknown kafka mode":             {"controller: {kafkaMode: admin}", "at '/controller/kafkaMode': value must be one of '', 'direct', 'strimzi'"},
		"roles without credential":       {"controller: {elasticsearchRoles: {auth: {type: none}}}", "at '/controller/elasticsearchRoles/auth/type': value must be one of 'basic', 'apiKey', 'bearer'"},
		"misspelt roles key":             {"controller: {elasticsearchRoles: {enable: true}}", "at '/controller/elasticsearchRoles': additional properties 'enable' not allowed"},
		"extraEnv as a map":              {"router: {extraEnv: {TZ: UTC}}", "at '/router/extraEnv': got object, want array"},
		"extraEnv without a name":        {"indexer: {extraEnv: [{value: UTC}]}", "at '/indexer/extraEnv/0': missing property 'name'"},
		"misspelt extraEnv key":          {"controller: {extraEnv: [{name: TZ, valueFrm: {}}]}", "at '/controller/extraEnv/0': additional properties 'valueFrm' not allowed"},
		"misspelt envFrom key":           {"shipper: {envFrom: [{configMap: {name: proxy}}]}", "at '/shipper/envFrom/0': additional properties 'configMap' not allowed"},
		"extra mount without a path":     {"router: {extraVolumeMounts: [{name: tmp}]}", "at '/router/extraVolumeMounts/0': missing property 'mountPath'"},
		"podSecurityContext a list":      {"indexer: {podSecurityContext: [fsGroup]}", "at '/indexer/podSecurityContext': got array, want object"},
		"spread without a key":           {"router: {topologySpreadConstraints: [{maxSkew: 1, whenUnsatisfiable: DoNotSchedule}]}", "at '/router/topologySpreadConstraints/0': missing property 'topologyKey'"},
		"CA reflected from a name alone": {"kafka: {tls: {caSecret: {reflectFrom: kafka-cluster-ca-cert}}}", "at '/kafka/tls/caSecret/reflectFrom'"},
		"misspelt serviceMonitor key":    {"metrics: {serviceMonitor: {enable: true}}", "at '/metrics/serviceMonitor': additional properties 'enable' not allowed"},
		"shipper has no spread":          {"shipper: {topologySpreadConstraints: []}", "at '/shipper': additional properties 'topologySpreadConstraints' not allowed"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := render(writeValues(t, dir, name, tc.values))
			if err == nil {
				t.Fatalf("render succeeded, want a schema error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), schemaError) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("render error = %v, want a schema error containing %q", err, tc.want)
			}
		})
	}
}

// TestSchemaAccepts checks values that the schema must let through, and that
// they reach the manifests.
func TestSchemaAccepts(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct{ values, want string }{
		"stage setting in env":      {"indexer: {env: {SLUICE_INDEXER_WORKERS: 8}}", "- name: SLUICE_INDEXER_WORKERS\n              value: \"8\""},
		"go runtime env":            {"router: {env: {GOGC: 200, SLUICE_ROUTER_DEBUG: true}}", "- name: GOGC\n              value: \"200\""},
		"free-form securityContext": {"shipper: {securityContext: {runAsUser: 0, seLinuxOptions: {type: spc_t}}}", "seLinuxOptions:\n              type: spc_t"},
		"pdb as a percentage":       {`router: {pdb: {maxUnavailable: "50%"}}`, "maxUnavailable: 50%"},
		"unlimited retention":       {"strimzi: {enabled: true, topicDefaults: {retentionMs: -1}, tenants: [{name: shop}]}", `retention.ms: "-1"`},
		"shipper settings in env":   {"shipper: {env: {SLUICE_SHIPPER_HELD_FILES_MAX_BYTES: 536870912, SLUICE_SHIPPER_READ_FROM: tail}}", "- name: SLUICE_SHIPPER_HELD_FILES_MAX_BYTES\n              value: \"536870912\""},
		"compression":               {"kafka: {compression: zstd}", "- name: SLUICE_KAFKA_COMPRESSION\n              value: \"zstd\""},
		"pseudonym keys":            {"router: {pseudonymKeys: {secretName: keys}}", "- name: SLUICE_ROUTER_PSEUDONYM_KEYS_DIR\n              value: \"/etc/sluice/pseudonym-keys\""},
		// Strimzi objects made elsewhere than by this chart's strimzi.*.
		"controller strimzi mode alone": {"controller: {enabled: true, kafkaMode: strimzi}", "- name: SLUICE_CONTROLLER_KAFKA_MODE\n              value: \"strimzi\""},
	} {
		t.Run(name, func(t *testing.T) {
			ms, err := render(writeValues(t, dir, name, tc.values))
			if err != nil {
				t.Fatal(err)
			}
			if text := strings.Join(contents(ms), "\n---\n"); !strings.Contains(text, tc.want) {
				t.Errorf("the manifests do not contain %q", tc.want)
			}
		})
	}
}
