{{/*
Names and labels of every object of the chart: templates never spell them out themselves.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "modelops.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* "<release>-<name>", or fullnameOverride; just the release name when it already contains the name. */}}
{{- define "modelops.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "modelops.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* "<fullname>-<suffix>", kept within 63 characters. Call with (list . "suffix"). */}}
{{- define "modelops.componentName" -}}
{{- $root := index . 0 -}}
{{- printf "%s-%s" (include "modelops.fullname" $root | trunc (int (sub 62 (len (index . 1)))) | trimSuffix "-") (index . 1) -}}
{{- end -}}

{{/* The chart label value. */}}
{{- define "modelops.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels every object carries. */}}
{{- define "modelops.labels" -}}
helm.sh/chart: {{ include "modelops.chart" . }}
{{ include "modelops.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: modelops
{{- end -}}

{{/* Labels that select the chart's objects (never change them in an upgrade). */}}
{{- define "modelops.selectorLabels" -}}
app.kubernetes.io/name: {{ include "modelops.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels that select the operator pod. */}}
{{- define "modelops.operatorSelectorLabels" -}}
{{ include "modelops.selectorLabels" . }}
app.kubernetes.io/component: operator
{{- end -}}

{{/* The operator's ServiceAccount name. */}}
{{- define "modelops.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "modelops.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The image reference: repository@digest when a digest is set, else repository:tag. */}}
{{- define "modelops.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}
