{{/*
The chart name, or nameOverride.
*/}}
{{- define "kfp-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every resource name: fullnameOverride, else <release>-<name>, or just the release
name when it already contains the chart name. Truncated to 63 characters (DNS label limit).
*/}}
{{- define "kfp-operator.fullname" -}}
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

{{/*
chart-version, as the helm.sh/chart label wants it.
*/}}
{{- define "kfp-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every resource.
*/}}
{{- define "kfp-operator.labels" -}}
helm.sh/chart: {{ include "kfp-operator.chart" . }}
{{ include "kfp-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: controller
app.kubernetes.io/part-of: kfp-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Labels that select the operator pods (immutable in the Deployment: never add to them).
*/}}
{{- define "kfp-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kfp-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The ServiceAccount the operator runs as.
*/}}
{{- define "kfp-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kfp-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name must name an existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image reference: repository@digest, or repository:tag (the tag defaults to appVersion).
*/}}
{{- define "kfp-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
"true" when leader election is on: as configured, and always with more than one replica.
*/}}
{{- define "kfp-operator.leaderElection" -}}
{{- if or .Values.config.leaderElection.enabled (gt (int .Values.replicaCount) 1) }}true{{ else }}false{{ end }}
{{- end }}

{{/*
The namespace of the Lease: config.leaderElection.namespace, else the release namespace (where
the pods run, which is where the operator puts it when the key is empty).
*/}}
{{- define "kfp-operator.leaseNamespace" -}}
{{- default .Release.Namespace .Values.config.leaderElection.namespace }}
{{- end }}

{{/*
"true" when the projected KFP token is mounted: kfpToken.enabled, or config.kfp.multiUser when null.
*/}}
{{- define "kfp-operator.kfpToken" -}}
{{- $enabled := .Values.kfpToken.enabled }}
{{- if kindIs "invalid" $enabled }}{{ $enabled = .Values.config.kfp.multiUser }}{{ end }}
{{- if $enabled }}true{{ else }}false{{ end }}
{{- end }}

{{/*
Where the operator reads the KFP token: config.kfp.tokenPath, else where KFP's own clients look.
*/}}
{{- define "kfp-operator.kfpTokenPath" -}}
{{- default "/var/run/secrets/kubeflow/pipelines/token" .Values.config.kfp.tokenPath }}
{{- end }}

{{/*
"true" when the chart mounts the metrics certificate Secret: metrics are served over HTTPS and
metricsCertificate.secretName names the Secret.
*/}}
{{- define "kfp-operator.metricsCertMounted" -}}
{{- if and .Values.config.metrics.secure .Values.metricsCertificate.secretName }}true{{ else }}false{{ end }}
{{- end }}

{{/*
Where the metrics certificate Secret is mounted: config.metrics.certDir, else a fixed directory.
*/}}
{{- define "kfp-operator.metricsCertDir" -}}
{{- default "/var/run/secrets/kfp-operator/metrics-cert" .Values.config.metrics.certDir }}
{{- end }}

{{/*
The port of a bind address ("[host]:port"; the schema requires a port).
*/}}
{{- define "kfp-operator.port" -}}
{{- regexFind "[0-9]+$" . }}
{{- end }}

{{/*
The configuration file: .Values.config with the keys the chart decides filled in (leader election
with several replicas, the paths of the mounted KFP token and metrics certificate).
*/}}
{{- define "kfp-operator.config" -}}
{{- $config := deepCopy .Values.config }}
{{- $_ := set $config.leaderElection "enabled" (eq (include "kfp-operator.leaderElection" .) "true") }}
{{- if eq (include "kfp-operator.kfpToken" .) "true" }}
{{- $_ := set $config.kfp "tokenPath" (include "kfp-operator.kfpTokenPath" .) }}
{{- end }}
{{- if eq (include "kfp-operator.metricsCertMounted" .) "true" }}
{{- $_ := set $config.metrics "certDir" (include "kfp-operator.metricsCertDir" .) }}
{{- end }}
{{- if not $config.pipelines.compilerImage }}
{{- /* The compiler comes from the operator's own image unless another is named. */}}
{{- $_ := set $config.pipelines "compilerImage" (include "kfp-operator.image" .) }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/*
The subjects of the operator's role bindings.
*/}}
{{- define "kfp-operator.subjects" -}}
- kind: ServiceAccount
  name: {{ include "kfp-operator.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
{{- end }}
