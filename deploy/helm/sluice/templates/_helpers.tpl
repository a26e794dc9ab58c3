{{/* Names and labels. */}}
{{- define "sluice.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "sluice.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "sluice.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "sluice.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "sluice.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "sluice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: sluice
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one stage: (dict "root" $ "stage" "shipper"). */}}
{{- define "sluice.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sluice.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .stage }}
{{- end -}}

{{- define "sluice.stageLabels" -}}
{{ include "sluice.labels" .root }}
app.kubernetes.io/component: {{ .stage }}
{{- end -}}

{{- define "sluice.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The Secret holding a stage's Kafka password: (dict "root" $ "stage" "shipper"). */}}
{{- define "sluice.kafkaPasswordSecret" -}}
{{- $s := index .root.Values .stage -}}
{{- default $s.kafkaUser $s.kafkaPasswordSecret.name -}}
{{- end -}}

{{- define "sluice.saslEnabled" -}}
{{- if ne (lower .Values.kafka.sasl.mechanism) "none" }}true{{ end -}}
{{- end -}}

{{/*
The Kafka, logging and telemetry settings every container gets, and GOMEMLIMIT from its memory
limit: (dict "root" $ "stage" "shipper"). Credentials are files (volumes below), never values.
Containers take them through sluice.containerEnv, after their own settings.
*/}}
{{- define "sluice.env" -}}
{{- $root := .root -}}
{{- $s := index $root.Values .stage -}}
{{- $k := $root.Values.kafka -}}
- name: SLUICE_KAFKA_BROKERS
  value: {{ join "," $k.brokers | quote }}
- name: SLUICE_KAFKA_CLIENT_ID
  value: {{ printf "%s-%s" (include "sluice.fullname" $root) .stage | quote }}
- name: SLUICE_TOPIC_PREFIX
  value: {{ $k.topicPrefix | quote }}
{{- with $k.compression }}
- name: SLUICE_KAFKA_COMPRESSION
  value: {{ . | quote }}
{{- end }}
{{- if $k.tls.enabled }}
- name: SLUICE_KAFKA_TLS_ENABLED
  value: "true"
{{- if $k.tls.caSecret.name }}
- name: SLUICE_KAFKA_TLS_CA_FILE
  value: /etc/sluice/kafka-ca/ca.crt
{{- end }}
{{- with $k.tls.serverName }}
- name: SLUICE_KAFKA_TLS_SERVER_NAME
  value: {{ . | quote }}
{{- end }}
{{- end }}
{{- if include "sluice.saslEnabled" $root }}
- name: SLUICE_KAFKA_SASL_MECHANISM
  value: {{ $k.sasl.mechanism | quote }}
{{- /* The gateway has no credentials of its own: it logs in as each request's tenant. */}}
{{- if ne .stage "gateway" }}
- name: SLUICE_KAFKA_SASL_USERNAME
  value: {{ $s.kafkaUser | quote }}
- name: SLUICE_KAFKA_SASL_PASSWORD_FILE
  value: /etc/sluice/kafka-sasl/password
{{- end }}
{{- end }}
- name: SLUICE_TELEMETRY_ADDR
  value: {{ printf ":%d" (int $root.Values.telemetryPort) | quote }}
- name: SLUICE_LOG_FORMAT
  value: {{ $root.Values.log.format | quote }}
- name: SLUICE_LOG_LEVEL
  value: {{ $root.Values.log.level | quote }}
- name: GOMEMLIMIT
  valueFrom:
    resourceFieldRef:
      resource: limits.memory
{{- end -}}

{{/*
The env of a stage's container: (dict "root" $ "stage" "router" "env" <YAML list>), where env
is the container's own settings, followed by sluice.env's. Every name is rendered once, so that
server-side apply takes the list: a name of <stage>.env or <stage>.extraEnv leaves the chart's
variable of that name out. Then come <stage>.env's (a map; by name), then <stage>.extraEnv's (in
their order, so that their $(VAR) references may name any variable before them). A name in both
env and extraEnv, or twice in extraEnv, fails.
*/}}
{{- define "sluice.containerEnv" -}}
{{- $stage := .stage -}}
{{- $s := index .root.Values $stage -}}
{{- $env := $s.env | default dict -}}
{{- $extra := $s.extraEnv | default list -}}
{{- $user := dict -}}
{{- range $name, $_ := $env }}{{ $_ := set $user $name (printf "%s.env" $stage) }}{{ end -}}
{{- range $e := $extra -}}
{{- if hasKey $user $e.name -}}
{{- fail (printf "%s.extraEnv: %s is also in %s: give each variable once" $stage $e.name (get $user $e.name)) -}}
{{- end -}}
{{- $_ := set $user $e.name (printf "%s.extraEnv" $stage) -}}
{{- end -}}
{{- $chart := fromYamlArray (printf "%s\n%s" (.env | default "") (include "sluice.env" .)) -}}
{{- $seen := dict -}}
{{- range $e := $chart }}
{{- if hasKey $seen $e.name }}
{{- fail (printf "the chart sets %s twice in the %s's env" $e.name $stage) }}
{{- end }}
{{- $_ := set $seen $e.name true }}
{{- if not (hasKey $user $e.name) }}
- name: {{ $e.name }}
  {{- if hasKey $e "valueFrom" }}
  valueFrom:
    {{- toYaml $e.valueFrom | nindent 4 }}
  {{- else }}
  value: {{ $e.value | toString | quote }}
  {{- end }}
{{- end }}
{{- end }}
{{- range $name, $value := $env }}
- name: {{ $name }}
  {{- /* YAML numbers arrive as float64: 8388608 would print as 8.388608e+06. */}}
  {{- if and (kindIs "float64" $value) (eq $value (floor $value)) }}
  value: {{ int64 $value | toString | quote }}
  {{- else }}
  value: {{ $value | toString | quote }}
  {{- end }}
{{- end }}
{{- with $extra }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
The volumes, or the volume mounts, of a stage's pod: (dict "root" $ "stage" "router" "chart" <YAML
list>), the chart's own, followed by <stage>.extraVolumes (sluice.volumes) or
<stage>.extraVolumeMounts (sluice.volumeMounts). An extra volume named as one of the chart's, or
an extra mount at one of the chart's paths, fails: the API server would refuse the pod.
*/}}
{{- define "sluice.volumes" -}}
{{- include "sluice.withExtra" (dict "root" .root "stage" .stage "chart" .chart "values" "extraVolumes" "key" "name") -}}
{{- end -}}

{{- define "sluice.volumeMounts" -}}
{{- include "sluice.withExtra" (dict "root" .root "stage" .stage "chart" .chart "values" "extraVolumeMounts" "key" "mountPath") -}}
{{- end -}}

{{- define "sluice.withExtra" -}}
{{- /* The chart's list is pieced together from helpers: without its blank lines. */ -}}
{{- $chart := regexReplaceAll "(?m)^[ \\t]*\\n" (.chart | default "") "" | trim -}}
{{- $extra := index (index .root.Values .stage) .values | default list -}}
{{- $taken := dict -}}
{{- range $v := fromYamlArray $chart }}{{ $_ := set $taken (get $v $.key) true }}{{ end -}}
{{- range $v := $extra -}}
{{- $k := get $v $.key | toString -}}
{{- if hasKey $taken $k -}}
{{- fail (printf "%s.%s: %s %s is the chart's or given twice" $.stage $.values $.key $k) -}}
{{- end -}}
{{- $_ := set $taken $k true -}}
{{- end -}}
{{- $chart -}}
{{- with $extra }}
{{ toYaml . }}
{{- end -}}
{{- end -}}

{{/* Kafka credential volumes of one stage, and their mounts. */}}
{{- define "sluice.kafkaVolumes" -}}
{{- $root := .root -}}
{{- $k := $root.Values.kafka -}}
{{- if and $k.tls.enabled $k.tls.caSecret.name }}
- name: kafka-ca
  secret:
    secretName: {{ $k.tls.caSecret.name }}
    items:
      - key: {{ $k.tls.caSecret.key }}
        path: ca.crt
{{- end }}
{{- if and (include "sluice.saslEnabled" $root) (ne .stage "gateway") }}
- name: kafka-sasl
  secret:
    secretName: {{ include "sluice.kafkaPasswordSecret" . }}
    items:
      - key: {{ (index $root.Values .stage).kafkaPasswordSecret.key }}
        path: password
{{- end }}
{{- end -}}

{{- define "sluice.kafkaVolumeMounts" -}}
{{- $k := .root.Values.kafka -}}
{{- if and $k.tls.enabled $k.tls.caSecret.name }}
- name: kafka-ca
  mountPath: /etc/sluice/kafka-ca
  readOnly: true
{{- end }}
{{- if and (include "sluice.saslEnabled" .root) (ne .stage "gateway") }}
- name: kafka-sasl
  mountPath: /etc/sluice/kafka-sasl
  readOnly: true
{{- end }}
{{- end -}}

{{/*
Elasticsearch settings of a container: (dict "root" $ "auth" <auth> "path" <its values path>).
The URLs, CA and request timeout are elasticsearch.*'s; the credential is auth's (type none,
basic with a username, apiKey or bearer, from secretName/secretKey), read from a file of
sluice.elasticsearchVolumes. The indexer passes elasticsearch.auth, the controller its roles'
user; path names the values in errors.
*/}}
{{- define "sluice.elasticsearchEnv" -}}
{{- $es := .root.Values.elasticsearch -}}
{{- $a := .auth -}}
- name: SLUICE_ELASTICSEARCH_URLS
  value: {{ join "," $es.urls | quote }}
- name: SLUICE_ELASTICSEARCH_REQUEST_TIMEOUT
  value: {{ $es.requestTimeout | quote }}
{{- if $es.caSecret.name }}
- name: SLUICE_ELASTICSEARCH_CA_FILE
  value: /etc/sluice/elasticsearch-ca/ca.crt
{{- end }}
{{- if eq $a.type "basic" }}
- name: SLUICE_ELASTICSEARCH_USERNAME
  value: {{ required (printf "%s.username is required with auth type basic" .path) $a.username | quote }}
- name: SLUICE_ELASTICSEARCH_PASSWORD_FILE
  value: /etc/sluice/elasticsearch-auth/credential
{{- else if eq $a.type "apiKey" }}
- name: SLUICE_ELASTICSEARCH_API_KEY_FILE
  value: /etc/sluice/elasticsearch-auth/credential
{{- else if eq $a.type "bearer" }}
- name: SLUICE_ELASTICSEARCH_BEARER_TOKEN_FILE
  value: /etc/sluice/elasticsearch-auth/credential
{{- else if ne $a.type "none" }}
{{- fail (printf "%s.type %q: want none, basic, apiKey or bearer" .path $a.type) }}
{{- end }}
{{- end -}}

{{/* The Elasticsearch CA and credential volumes of sluice.elasticsearchEnv's settings (same
arguments), and their mounts. */}}
{{- define "sluice.elasticsearchVolumes" -}}
{{- $es := .root.Values.elasticsearch -}}
{{- if $es.caSecret.name }}
- name: elasticsearch-ca
  secret:
    secretName: {{ $es.caSecret.name }}
    items:
      - key: {{ $es.caSecret.key }}
        path: ca.crt
{{- end }}
{{- if ne .auth.type "none" }}
- name: elasticsearch-auth
  secret:
    secretName: {{ required (printf "%s.secretName is required unless auth type is none" .path) .auth.secretName }}
    items:
      - key: {{ required (printf "%s.secretKey is required unless auth type is none" .path) .auth.secretKey }}
        path: credential
{{- end }}
{{- end -}}

{{- define "sluice.elasticsearchMounts" -}}
{{- if .root.Values.elasticsearch.caSecret.name }}
- name: elasticsearch-ca
  mountPath: /etc/sluice/elasticsearch-ca
  readOnly: true
{{- end }}
{{- if ne .auth.type "none" }}
- name: elasticsearch-auth
  mountPath: /etc/sluice/elasticsearch-auth
  readOnly: true
{{- end }}
{{- end -}}

{{/* The controller's SLUICE_CONTROLLER_KAFKA_MODE: controller.kafkaMode, else strimzi when
strimzi.enabled, else direct. */}}
{{- define "sluice.controllerKafkaMode" -}}
{{- $m := .Values.controller.kafkaMode | default (ternary "strimzi" "direct" .Values.strimzi.enabled) -}}
{{- if not (has $m (list "direct" "strimzi")) -}}
{{- fail (printf "controller.kafkaMode %q: want direct, strimzi, or empty (strimzi when strimzi.enabled, else direct)" $m) -}}
{{- end -}}
{{- $m -}}
{{- end -}}

{{/* Telemetry port and probes, shared by every stage. */}}
{{- define "sluice.telemetry" -}}
ports:
  {{- include "sluice.telemetryPort" . | nindent 2 }}
{{ include "sluice.probes" . }}
{{- end -}}

{{/* The telemetry port alone, an item of a container's ports (the controller's has another). */}}
{{- define "sluice.telemetryPort" -}}
- name: telemetry
  containerPort: {{ .Values.telemetryPort }}
  protocol: TCP
{{- end -}}

{{/* The probes on the telemetry port. */}}
{{- define "sluice.probes" -}}
livenessProbe:
  httpGet:
    path: /healthz
    port: telemetry
  periodSeconds: 10
  timeoutSeconds: 5
  failureThreshold: 6
readinessProbe:
  httpGet:
    path: /readyz
    port: telemetry
  periodSeconds: 5
  timeoutSeconds: 5
  failureThreshold: 3
{{- end -}}

{{/* The pod-level settings of every stage: (dict "root" $ "stage" "router" "token" bool). Only a
shipper with Kubernetes metadata and the controller mount their service account's token (no
ServiceAccount mounts one by itself). <stage>.podSecurityContext is the pod's securityContext; the
container's (<stage>.securityContext) wins where both set a field. */}}
{{- define "sluice.podSecurity" -}}
{{- $s := index .root.Values .stage -}}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
automountServiceAccountToken: {{ .token | default false }}
enableServiceLinks: false
{{- with $s.podSecurityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The scheduling settings a stage's pod may be given besides tolerations, nodeSelector and
affinity: (dict "root" $ "stage" "router"). priorityClassName, and topologySpreadConstraints,
where a constraint without a labelSelector gets the stage's selector labels (its own pods). */}}
{{- define "sluice.scheduling" -}}
{{- $s := index .root.Values .stage -}}
{{- with $s.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $s.topologySpreadConstraints }}
{{- $selector := dict "matchLabels" (include "sluice.selectorLabels" $ | fromYaml) }}
{{- $constraints := list }}
{{- range $c := . }}
{{- $c = deepCopy $c }}
{{- if not (hasKey $c "labelSelector") }}
{{- $_ := set $c "labelSelector" $selector }}
{{- end }}
{{- $constraints = append $constraints $c }}
{{- end }}
topologySpreadConstraints:
  {{- toYaml $constraints | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The bytes of a memory quantity given in Ki, Mi, Gi or bytes. */}}
{{- define "sluice.bytes" -}}
{{- $q := toString .q -}}
{{- if not (regexMatch "^[0-9]+(Ki|Mi|Gi)?$" $q) -}}
{{- fail (printf "%s %q: give it in Ki, Mi, Gi or bytes" .what $q) -}}
{{- end -}}
{{- $n := regexFind "^[0-9]+" $q | int64 -}}
{{- $unit := dict "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 -}}
{{- $m := index $unit (trimPrefix (regexFind "^[0-9]+" $q) $q) | default 1 | int64 -}}
{{- mul $n $m -}}
{{- end -}}

{{/* The shipper's resources: with Kubernetes metadata, kubernetesMetadata.memory is added
to limits.memory. */}}
{{- define "sluice.shipperResources" -}}
{{- $s := .Values.shipper -}}
{{- $r := deepCopy $s.resources -}}
{{- $km := $s.kubernetesMetadata -}}
{{- if and $km.enabled $r.limits (hasKey $r.limits "memory") -}}
{{- $limit := include "sluice.bytes" (dict "q" $r.limits.memory "what" "shipper.resources.limits.memory") | int64 -}}
{{- $extra := include "sluice.bytes" (dict "q" $km.memory "what" "shipper.kubernetesMetadata.memory") | int64 -}}
{{- $sum := add $limit $extra -}}
{{- if eq (mod $sum 1048576) 0 -}}
{{- $_ := set $r.limits "memory" (printf "%dMi" (div $sum 1048576)) -}}
{{- else -}}
{{- $_ := set $r.limits "memory" (toString $sum) -}}
{{- end -}}
{{- end -}}
{{- toYaml $r -}}
{{- end -}}

{{/* The gateway's own settings, before sluice.env's: its address, gRPC, tokens and TLS files. */}}
{{- define "sluice.gatewayEnv" -}}
{{- $s := .Values.gateway -}}
- name: SLUICE_GATEWAY_ADDR
  value: ":4318"
{{- if $s.grpc.enabled }}
- name: SLUICE_GATEWAY_GRPC_ADDR
  value: ":4317"
{{- end }}
{{- if $s.tokensSecret.name }}
- name: SLUICE_GATEWAY_TOKENS_FILE
  value: /etc/sluice/gateway-tokens/tokens
{{- end }}
{{- if $s.tlsSecret.name }}
- name: SLUICE_GATEWAY_TLS_CERT_FILE
  value: /etc/sluice/gateway-tls/tls.crt
- name: SLUICE_GATEWAY_TLS_KEY_FILE
  value: /etc/sluice/gateway-tls/tls.key
{{- if $s.tlsSecret.clientCAKey }}
- name: SLUICE_GATEWAY_TLS_CLIENT_CA_FILE
  value: /etc/sluice/gateway-tls/client-ca.crt
{{- end }}
{{- end }}
{{- end -}}

{{/* The gateway's volumes (Kafka CA, tokens, TLS) and their mounts. The directories, never a
subPath: the kubelet updates them in place, and the gateway re-reads the tokens file when it
changes. */}}
{{- define "sluice.gatewayVolumes" -}}
{{- $s := .Values.gateway -}}
{{ include "sluice.kafkaVolumes" (dict "root" . "stage" "gateway") }}
{{- with $s.tokensSecret.name }}
- name: gateway-tokens
  secret:
    secretName: {{ . }}
    items:
      - key: {{ $s.tokensSecret.key }}
        path: tokens
{{- end }}
{{- with $s.tlsSecret.name }}
- name: gateway-tls
  secret:
    secretName: {{ . }}
    items:
      - key: {{ $s.tlsSecret.certKey }}
        path: tls.crt
      - key: {{ $s.tlsSecret.keyKey }}
        path: tls.key
      {{- with $s.tlsSecret.clientCAKey }}
      - key: {{ . }}
        path: client-ca.crt
      {{- end }}
{{- end }}
{{- end -}}

{{- define "sluice.gatewayVolumeMounts" -}}
{{- $s := .Values.gateway -}}
{{ include "sluice.kafkaVolumeMounts" (dict "root" . "stage" "gateway") }}
{{- if $s.tokensSecret.name }}
- name: gateway-tokens
  mountPath: /etc/sluice/gateway-tokens
  readOnly: true
{{- end }}
{{- if $s.tlsSecret.name }}
- name: gateway-tls
  mountPath: /etc/sluice/gateway-tls
  readOnly: true
{{- end }}
{{- end -}}
