{{/* Names and labels, as `helm create` makes them. */}}
{{- define "orderbridge.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "orderbridge.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "orderbridge.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "orderbridge.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: orderbridge
{{- end }}

{{- define "orderbridge.selectorLabels" -}}
app.kubernetes.io/name: {{ include "orderbridge.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of one component; call with (dict "root" $ "component" "ingest"). */}}
{{- define "orderbridge.componentLabels" -}}
{{ include "orderbridge.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "orderbridge.componentSelector" -}}
{{ include "orderbridge.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "orderbridge.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "orderbridge.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "orderbridge.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* The required values, checked once for every template that needs them. */}}
{{- define "orderbridge.required" -}}
{{- $_ := required "kafka.bootstrapServers is required: the Kafka bootstrap servers, host:port[,host:port]" .Values.kafka.bootstrapServers }}
{{- $_ := required "schemaRegistry.url is required: a Confluent-compatible schema registry" .Values.schemaRegistry.url }}
{{- end }}

{{/*
The settings the chart owns, as ORDERBRIDGE_* variables (they win over the configuration
file), and the variables of `existingSecret`.
*/}}
{{- define "orderbridge.env" -}}
- name: ORDERBRIDGE_CONFIG
  value: /etc/orderbridge/orderbridge.toml
- name: ORDERBRIDGE_KAFKA__BOOTSTRAP_SERVERS
  value: {{ .Values.kafka.bootstrapServers | quote }}
- name: ORDERBRIDGE_SCHEMA_REGISTRY__URL
  value: {{ .Values.schemaRegistry.url | quote }}
- name: ORDERBRIDGE_TOPICS__RAW
  value: {{ .Values.topics.raw | quote }}
- name: ORDERBRIDGE_TOPICS__CANONICAL
  value: {{ .Values.topics.canonical | quote }}
- name: ORDERBRIDGE_TOPICS__ATTRIBUTION
  value: {{ .Values.topics.attribution | quote }}
- name: ORDERBRIDGE_TOPICS__DLQ
  value: {{ .Values.topics.dlq | quote }}
- name: ORDERBRIDGE_TOPICS__PROCESSOR_STATE
  value: {{ .Values.topics.processorState | quote }}
- name: ORDERBRIDGE_TOPICS__ENRICH_RETRY
  value: {{ .Values.topics.enrichRetry | quote }}
- name: ORDERBRIDGE_TOPICS__CHECKPOINTS
  value: {{ .Values.topics.checkpoints | quote }}
- name: ORDERBRIDGE_TOPICS__STATUS
  value: {{ .Values.topics.status | quote }}
- name: ORDERBRIDGE_TOPICS__AUDIT
  value: {{ .Values.topics.audit | quote }}
- name: ORDERBRIDGE_TOPIC_LAYOUT__PARTITIONS
  value: {{ .Values.topics.partitions | quote }}
- name: ORDERBRIDGE_TOPIC_LAYOUT__REPLICATION
  value: {{ .Values.topics.replication | quote }}
- name: ORDERBRIDGE_TOPIC_LAYOUT__RETENTION_MS
  value: {{ .Values.topics.retentionMs | int64 | quote }}
- name: ORDERBRIDGE_TOPIC_LAYOUT__DLQ_RETENTION_MS
  value: {{ .Values.topics.dlqRetentionMs | int64 | quote }}
- name: ORDERBRIDGE_INGEST__LISTEN
  value: "0.0.0.0:{{ .Values.ingest.port }}"
- name: ORDERBRIDGE_PROCESSOR__LISTEN
  value: "0.0.0.0:{{ .Values.processor.port }}"
- name: ORDERBRIDGE_SINK__LISTEN
  value: "0.0.0.0:{{ .Values.sink.port }}"
- name: ORDERBRIDGE_ENRICH__LISTEN
  value: "0.0.0.0:{{ .Values.enrich.port }}"
- name: ORDERBRIDGE_POLL__LISTEN
  value: "0.0.0.0:{{ .Values.poll.port }}"
- name: ORDERBRIDGE_CONSOLE__LISTEN
  value: "0.0.0.0:{{ .Values.console.port }}"
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Volumes every pod has: the configuration, a writable /tmp, the secret files. */}}
{{- define "orderbridge.volumes" -}}
- name: config
  configMap:
    name: {{ .configMap }}
- name: tmp
  emptyDir: {}
{{- if .root.Values.secretFiles.existingSecret }}
- name: secret-files
  secret:
    secretName: {{ .root.Values.secretFiles.existingSecret }}
    defaultMode: 0400
{{- end }}
{{- end }}

{{- define "orderbridge.volumeMounts" -}}
- name: config
  mountPath: /etc/orderbridge
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- if .Values.secretFiles.existingSecret }}
- name: secret-files
  mountPath: {{ .Values.secretFiles.mountPath }}
  readOnly: true
{{- end }}
{{- end }}

{{/* The pod fields every workload shares. */}}
{{- define "orderbridge.podCommon" -}}
serviceAccountName: {{ include "orderbridge.serviceAccountName" . }}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* The configuration file's content. */}}
{{- define "orderbridge.configToml" -}}
{{ .Values.config }}
{{- end }}
