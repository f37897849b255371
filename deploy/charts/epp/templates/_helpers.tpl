{{/* Chart name, or nameOverride. */}}
{{- define "epp.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Name of every object of the chart: fullnameOverride, or "<release>-<name>". */}}
{{- define "epp.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "epp.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* The InferencePool epp serves (--pool-name). */}}
{{- define "epp.poolName" -}}
{{- default .Release.Name .Values.inferencePool.name }}
{{- end }}

{{/* Namespace of the pool and of every object of the chart (--pool-namespace). */}}
{{- define "epp.namespace" -}}
{{- default .Release.Namespace .Values.inferencePool.namespace }}
{{- end }}

{{- define "epp.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "epp.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* More than one replica: leader election, and the leader-gated health service names. */}}
{{- define "epp.leaderElection" -}}
{{- if gt (int .Values.inferenceExtension.replicas) 1 }}true{{ end }}
{{- end }}

{{- define "epp.selectorLabels" -}}
app.kubernetes.io/name: {{ include "epp.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "epp.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "epp.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: endpoint-picker
{{- end }}
