{{/* The chart name, or nameOverride. */}}
{{- define "eventgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The prefix of every object's name: <release>-<chart>, or the release name when it already
contains the chart name, or fullnameOverride. */}}
{{- define "eventgate.fullname" -}}
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

{{- define "eventgate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The labels every object carries. */}}
{{- define "eventgate.labels" -}}
helm.sh/chart: {{ include "eventgate.chart" . }}
app.kubernetes.io/name: {{ include "eventgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: eventgate
{{- end }}

{{/* The controller's labels, and the subset its selectors use (which must never change). */}}
{{- define "eventgate.controller.labels" -}}
{{ include "eventgate.labels" . }}
app.kubernetes.io/component: gateway-controller
{{- end }}

{{- define "eventgate.controller.selectorLabels" -}}
app.kubernetes.io/name: {{ include "eventgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: gateway-controller
{{- end }}

{{- define "eventgate.gateway.labels" -}}
{{ include "eventgate.labels" . }}
app.kubernetes.io/component: gateway
{{- end }}

{{- define "eventgate.controller.fullname" -}}
{{- printf "%s-controller" (include "eventgate.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "eventgate.controller.serviceAccountName" -}}
{{- default (include "eventgate.controller.fullname" .) .Values.controller.serviceAccount.name }}
{{- end }}

{{- define "eventgate.controller.configMapName" -}}
{{- printf "%s-config" (include "eventgate.controller.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The namespace the controller watches: empty for all of them. */}}
{{- define "eventgate.watchNamespace" -}}
{{- if .Values.singleNamespace }}
{{- .Release.Namespace }}
{{- else }}
{{- .Values.controller.namespace }}
{{- end }}
{{- end }}

{{/* The image of one of eventgate's binaries: (list $ "binary" $override), where $override
may set repository, tag and pullPolicy. */}}
{{- define "eventgate.image" -}}
{{- $root := index . 0 }}
{{- $binary := index . 1 }}
{{- $override := index . 2 }}
{{- $repository := $override.repository | default (printf "%s/%s" ($root.Values.image.registry | trimSuffix "/") $binary) }}
{{- $tag := $override.tag | default $root.Values.image.tag | default $root.Chart.AppVersion }}
{{- printf "%s:%s" $repository $tag }}
{{- end }}

{{/* Whether RBAC is namespaced (Role) or cluster-wide (ClusterRole). */}}
{{- define "eventgate.roleKind" -}}
{{- if .Values.singleNamespace }}Role{{ else }}ClusterRole{{ end }}
{{- end }}

{{/* The name of the gateway pods' (Cluster)Role and bindings, and of their cluster-wide
ClusterRole and binding (watch and extraRules). */}}
{{- define "eventgate.gateway.rbacName" -}}
{{- printf "%s-gateway" (include "eventgate.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "eventgate.gateway.watchRBACName" -}}
{{- printf "%s-gateway-watch" (include "eventgate.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The namespaces whose gateway ServiceAccount the chart creates and grants rights to, as a
JSON list: the release namespace, then gateway.namespaces (cluster mode only: fails in
singleNamespace mode, where the controller handles the release namespace only). */}}
{{- define "eventgate.gateway.namespaces" -}}
{{- if and .Values.singleNamespace .Values.gateway.namespaces }}
{{- fail "gateway.namespaces: singleNamespace=true handles the release namespace only; leave gateway.namespaces empty" }}
{{- end }}
{{- $extra := without (.Values.gateway.namespaces | default list | uniq) .Release.Namespace }}
{{- prepend $extra .Release.Namespace | toJson }}
{{- end }}
