{{/*
Names, labels, the image, the security contexts every pod shares, and the two configuration
files (TOML) rendered from values. Secrets never pass through here: the configuration names
files that are mounted from existing Secrets, and the database URL (and optionally the KMS key
id and the collector's token) reach the processes as environment variables from secretKeyRef.
*/}}

{{- define "orgtrail.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "orgtrail.fullname" -}}
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

{{/* "<fullname>-<component>", within 63 characters. Call with (list $ "component"). */}}
{{- define "orgtrail.componentName" -}}
{{- $root := index . 0 }}
{{- $component := index . 1 }}
{{- $prefix := include "orgtrail.fullname" $root | trunc (int (sub 62 (len $component))) | trimSuffix "-" }}
{{- printf "%s-%s" $prefix $component }}
{{- end }}

{{- define "orgtrail.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. Call with (list $ "component"). */}}
{{- define "orgtrail.labels" -}}
{{- $root := index . 0 -}}
helm.sh/chart: {{ include "orgtrail.chart" $root }}
{{ include "orgtrail.selectorLabels" . }}
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
app.kubernetes.io/part-of: orgtrail
{{- end }}

{{/* The labels that select a component's pods. Call with (list $ "component"). */}}
{{- define "orgtrail.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "orgtrail.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "orgtrail.image" -}}
{{- $image := .Values.image }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (default .Chart.AppVersion $image.tag) }}
{{- end }}
{{- end }}

{{- define "orgtrail.serviceAccountName" -}}
{{- $root := index . 0 }}
{{- $component := index . 1 }}
{{- $account := (index $root.Values $component).serviceAccount }}
{{- if $account.create }}
{{- default (include "orgtrail.componentName" (list $root $component)) $account.name }}
{{- else }}
{{- default "default" $account.name }}
{{- end }}
{{- end }}

{{/*
The pod-level security context of every pod: a fixed non-root user and group (65532, the
distroless "nonroot" user). fsGroup makes the mounted Secrets readable by that group (the
files are root's otherwise); see the keyring's init container for the one file that must not
be group-readable.
*/}}
{{- define "orgtrail.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "orgtrail.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
privileged: false
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* A TOML basic string: JSON's escapes are TOML's. */}}
{{- define "orgtrail.tomlString" -}}
{{- . | toString | toJson }}
{{- end }}

{{/* The endpoint collectors call: the release's aggregator Service unless given. */}}
{{- define "orgtrail.aggregatorEndpoint" -}}
{{- if .Values.collector.config.aggregator.endpoint }}
{{- .Values.collector.config.aggregator.endpoint }}
{{- else }}
{{- printf "https://%s.%s.svc:%d" (include "orgtrail.componentName" (list . "aggregator")) .Release.Namespace (int .Values.aggregator.service.port) }}
{{- end }}
{{- end }}

{{/* Mount paths, shared by the configuration files and the volume mounts. */}}
{{- define "orgtrail.paths.aggregatorConfig" -}}/etc/orgtrail/aggregator.toml{{- end }}
{{- define "orgtrail.paths.collectorConfig" -}}/etc/orgtrail/collector.toml{{- end }}
{{- define "orgtrail.paths.tlsDir" -}}/etc/orgtrail/tls{{- end }}
{{- define "orgtrail.paths.keyringDir" -}}/etc/orgtrail/keyring{{- end }}
{{- define "orgtrail.paths.keyringSourceDir" -}}/run/orgtrail/keyring-secret{{- end }}
{{- define "orgtrail.paths.postgresCaDir" -}}/etc/orgtrail/postgres{{- end }}
{{- define "orgtrail.paths.sigmaRulesDir" -}}/etc/orgtrail/sigma-rules{{- end }}
{{- define "orgtrail.paths.geoipDir" -}}/var/lib/orgtrail/geoip{{- end }}

{{/*
Whether the aggregator mounts a folder of Sigma rules: the chart's ConfigMap or an existing one.
*/}}
{{- define "orgtrail.sigmaRulesMounted" -}}
{{- $rules := .Values.aggregator.sigmaRules -}}
{{- if or $rules.rules $rules.existingConfigMap }}true{{ end -}}
{{- end }}

{{/*
The aggregator's configuration file. Everything but secrets: TLS files and the keyring are
paths of mounted Secrets, the database URL comes from ORGTRAIL_DATABASE_URL.
*/}}
{{- define "orgtrail.aggregatorToml" -}}
{{- $config := .Values.aggregator.config -}}
{{- $encryption := .Values.aggregator.encryption -}}
# Rendered by the orgtrail Helm chart (release {{ .Release.Name }}). The database URL comes from
# ORGTRAIL_DATABASE_URL (a Secret); see config/aggregator.example.toml for every key.
listen = "0.0.0.0:{{ int .Values.aggregator.ports.grpc }}"
{{- if .Values.aggregator.ports.cloudtrailApi }}

[cloudtrail_api]
listen = "0.0.0.0:{{ int .Values.aggregator.ports.cloudtrailApi }}"
{{- end }}

[tls]
cert = "{{ include "orgtrail.paths.tlsDir" . }}/tls.crt"
key = "{{ include "orgtrail.paths.tlsDir" . }}/tls.key"
{{- if .Values.aggregator.tls.clientCaKey }}
client_ca = "{{ include "orgtrail.paths.tlsDir" . }}/ca.crt"
{{- end }}

[encryption]
{{- if $encryption.keyring.existingSecret }}
keyring = "{{ include "orgtrail.paths.keyringDir" . }}/keyring.json"
{{- end }}
{{- with $encryption.kms }}
{{- if .keyId }}
kms_key_id = {{ include "orgtrail.tomlString" .keyId }}
{{- end }}
{{- if or .keyId .keyIdSecret.name }}
{{- with .region }}
kms_region = {{ include "orgtrail.tomlString" . }}
{{- end }}
{{- with .endpoint }}
kms_endpoint = {{ include "orgtrail.tomlString" . }}
{{- end }}
{{- end }}
{{- end }}
reencrypt_batch_size = {{ int64 $config.encryption.reencrypt_batch_size }}

[auth.certificate_roles]
{{- range $name, $role := $config.auth.certificate_roles }}
{{ include "orgtrail.tomlString" $name }} = {{ include "orgtrail.tomlString" $role }}
{{- end }}

[database]
max_connections = {{ int64 $config.database.max_connections }}
connect_timeout_seconds = {{ int64 $config.database.connect_timeout_seconds }}
sslmode = {{ include "orgtrail.tomlString" $config.database.sslmode }}
{{- if or .Values.aggregator.database.sslRootCert.secretName .Values.aggregator.database.sslRootCert.configMapName }}
ssl_root_cert = "{{ include "orgtrail.paths.postgresCaDir" . }}/ca.crt"
{{- end }}

[ingest]
max_request_bytes = {{ int64 $config.ingest.max_request_bytes }}
max_record_bytes = {{ int64 $config.ingest.max_record_bytes }}
max_concurrent_files = {{ int64 $config.ingest.max_concurrent_files }}
partitions_ahead_days = {{ int64 $config.ingest.partitions_ahead_days }}
rollup_fold_interval_seconds = {{ int64 $config.ingest.rollup_fold_interval_seconds }}

[server]
# Plaintext gRPC health checking only (the kubelet's gRPC probes cannot speak TLS).
health_listen = "0.0.0.0:{{ int .Values.aggregator.ports.health }}"
# Prometheus metrics, HTTP GET /metrics.
metrics_listen = "0.0.0.0:{{ int .Values.aggregator.ports.metrics }}"
max_concurrent_requests = {{ int64 $config.server.max_concurrent_requests }}
request_timeout_seconds = {{ int64 $config.server.request_timeout_seconds }}
shutdown_grace_seconds = {{ int64 $config.server.shutdown_grace_seconds }}
per_caller_requests_per_second = {{ float64 $config.server.per_caller_requests_per_second | printf "%f" }}
per_caller_burst = {{ int64 $config.server.per_caller_burst }}
per_caller_concurrency = {{ int64 $config.server.per_caller_concurrency }}

[retention]
default_retain_days = {{ int64 $config.retention.default_retain_days }}
interval_seconds = {{ int64 $config.retention.interval_seconds }}
batch_size = {{ int64 $config.retention.batch_size }}
run_wait_seconds = {{ int64 $config.retention.run_wait_seconds }}

[retention.floors]
{{- range $category, $days := $config.retention.floors }}
{{ $category }} = {{ int64 $days }}
{{- end }}

[alarms]
settle_seconds = {{ int64 $config.alarms.settle_seconds }}
evaluation_interval_seconds = {{ int64 $config.alarms.evaluation_interval_seconds }}
notify_within_hours = {{ int64 $config.alarms.notify_within_hours }}
cis_builtin = {{ $config.alarms.cis_builtin }}

[detections]
sigmahq_rules = {{ $config.detections.sigmahq_rules }}
notify_within_hours = {{ int64 $config.detections.notify_within_hours }}
{{- if include "orgtrail.sigmaRulesMounted" . }}
rules_directory = "{{ include "orgtrail.paths.sigmaRulesDir" . }}"
{{- end }}

[insights]
enabled = {{ $config.insights.enabled }}
settle_seconds = {{ int64 $config.insights.settle_seconds }}
evaluation_interval_seconds = {{ int64 $config.insights.evaluation_interval_seconds }}
notify_within_hours = {{ int64 $config.insights.notify_within_hours }}
finding_level = {{ include "orgtrail.tomlString" $config.insights.finding_level }}

[insights.model]
{{- with $config.insights.model }}
baseline_days = {{ int64 .baseline_days }}
min_history_days = {{ int64 .min_history_days }}
threshold_sigma = {{ float64 .threshold_sigma }}
min_rate_per_minute = {{ float64 .min_rate_per_minute }}
min_increase_factor = {{ float64 .min_increase_factor }}
recurring_peak_days = {{ int64 .recurring_peak_days }}
seasonality = {{ include "orgtrail.tomlString" .seasonality }}
quiet_minutes = {{ int64 .quiet_minutes }}
max_insight_minutes = {{ int64 .max_insight_minutes }}
{{- end }}

{{- with $config.query }}

[query]
max_rows = {{ int64 .max_rows }}
max_memory_mb = {{ int64 .max_memory_mb }}
timeout_seconds = {{ int64 .timeout_seconds }}
max_recent_events = {{ int64 .max_recent_events }}
cache_directory = "/var/cache/orgtrail/archive"
cache_max_mb = {{ int64 .cache_max_mb }}
metadata_cache_mb = {{ int64 .metadata_cache_mb }}
{{- end }}
{{- with $.Values.aggregator.geoip }}
{{- if .volume }}
geoip_file = {{ include "orgtrail.tomlString" (printf "%s/%s" (include "orgtrail.paths.geoipDir" $) .file) }}
{{- end }}
{{- end }}

{{- with $config.archive }}
{{- if .bucket }}

[archive]
bucket = {{ include "orgtrail.tomlString" .bucket }}
prefix = {{ include "orgtrail.tomlString" .prefix }}
{{- with .region }}
region = {{ include "orgtrail.tomlString" . }}
{{- end }}
server_side_encryption = {{ include "orgtrail.tomlString" .server_side_encryption }}
{{- with .kms_key_id }}
kms_key_id = {{ include "orgtrail.tomlString" . }}
{{- end }}
settle_seconds = {{ int64 .settle_seconds }}
interval_seconds = {{ int64 .interval_seconds }}
partitions_per_round = {{ int64 .partitions_per_round }}
account_id = {{ include "orgtrail.tomlString" .account_id }}
digest_interval_seconds = {{ int64 .digest_interval_seconds }}
signing_kms_key_id = {{ include "orgtrail.tomlString" .signing_kms_key_id }}
{{- end }}
{{- end }}

[notifications]
max_attempts = {{ int64 $config.notifications.max_attempts }}
backoff_base_seconds = {{ float64 $config.notifications.backoff_base_seconds }}
backoff_max_seconds = {{ float64 $config.notifications.backoff_max_seconds }}
delivery_timeout_seconds = {{ int64 $config.notifications.delivery_timeout_seconds }}
poll_interval_milliseconds = {{ int64 $config.notifications.poll_interval_milliseconds }}
concurrency = {{ int64 $config.notifications.concurrency }}
{{- with $config.notifications.sns_endpoint }}
sns_endpoint = {{ include "orgtrail.tomlString" . }}
{{- end }}

[log]
level = {{ include "orgtrail.tomlString" $config.log.level }}
format = {{ include "orgtrail.tomlString" $config.log.format }}
{{- end }}

{{/*
The collector's configuration file, with its sources. The client certificate and key are
paths of a mounted Secret; a bearer token, if any, comes from ORGTRAIL_AGGREGATOR__TOKEN.
*/}}
{{- define "orgtrail.collectorToml" -}}
{{- $config := .Values.collector.config -}}
{{- $tls := .Values.collector.tls -}}
# Rendered by the orgtrail Helm chart (release {{ .Release.Name }}); see
# config/collector.example.toml for every key. collector_id is the default: the pod's name.
poll_interval_seconds = {{ int64 $config.poll_interval_seconds }}
lease_seconds = {{ int64 $config.lease_seconds }}
trailing_window_days = {{ int64 $config.trailing_window_days }}
max_concurrent_sources = {{ int64 $config.max_concurrent_sources }}
# Plaintext gRPC health checking only, for the kubelet's probes.
health_listen = "0.0.0.0:{{ int .Values.collector.ports.health }}"
# Prometheus metrics, HTTP GET /metrics.
metrics_listen = "0.0.0.0:{{ int .Values.collector.ports.metrics }}"

[aggregator]
endpoint = {{ include "orgtrail.tomlString" (include "orgtrail.aggregatorEndpoint" .) }}
{{- if $tls.caKey }}
ca = "{{ include "orgtrail.paths.tlsDir" . }}/ca.crt"
{{- end }}
{{- if $tls.certKey }}
cert = "{{ include "orgtrail.paths.tlsDir" . }}/tls.crt"
key = "{{ include "orgtrail.paths.tlsDir" . }}/tls.key"
{{- end }}
{{- with $config.aggregator.tls_domain }}
tls_domain = {{ include "orgtrail.tomlString" . }}
{{- end }}
streams = {{ int64 $config.aggregator.streams }}

[aws]
{{- with $config.aws.region }}
region = {{ include "orgtrail.tomlString" . }}
{{- end }}
{{- with $config.aws.endpoint_url }}
endpoint_url = {{ include "orgtrail.tomlString" . }}
{{- end }}

[integrity]
validate_digests = {{ $config.integrity.validate_digests }}
hash_concurrency = {{ int64 $config.integrity.hash_concurrency }}

[log]
level = {{ include "orgtrail.tomlString" $config.log.level }}
format = {{ include "orgtrail.tomlString" $config.log.format }}
{{- range $source := $config.sources }}

[[sources]]
name = {{ include "orgtrail.tomlString" $source.name }}
bucket = {{ include "orgtrail.tomlString" $source.bucket }}
{{- with $source.bucket_region }}
bucket_region = {{ include "orgtrail.tomlString" . }}
{{- end }}
{{- with $source.prefix }}
prefix = {{ include "orgtrail.tomlString" . }}
{{- end }}
{{- with $source.role_arn }}
role_arn = {{ include "orgtrail.tomlString" . }}
{{- end }}
{{- with $source.external_id }}
external_id = {{ include "orgtrail.tomlString" . }}
{{- end }}
{{- with $source.accounts }}
accounts = {{ toJson . }}
{{- end }}
{{- with $source.regions }}
regions = {{ toJson . }}
{{- end }}
{{- with $source.since }}
since = {{ include "orgtrail.tomlString" . }}
{{- end }}
{{- with $source.trail }}
trail = {{ include "orgtrail.tomlString" . }}
{{- end }}
{{- end }}
{{- end }}

{{/* NetworkPolicy egress rules shared by the aggregator and the migration Job. */}}
{{- define "orgtrail.networkPolicy.dnsEgress" -}}
- to:
    {{- toYaml .Values.networkPolicy.dns | nindent 4 }}
  ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
{{- end }}

{{- define "orgtrail.networkPolicy.postgresEgress" -}}
- to:
    {{- toYaml .Values.networkPolicy.postgres.peers | nindent 4 }}
  ports:
    - port: {{ .Values.networkPolicy.postgres.port }}
      protocol: TCP
{{- end }}
