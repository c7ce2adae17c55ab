{{/* The chart name used in labels. */}}
{{- define "disagg-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Base name of every object: always <release>-disagg-operator (no "release name contains the chart
name" shortcut), so other tools can predict the ServiceAccount name. At most 50 characters: the
chart appends -metrics, -dashboard and -test-router within the 63-character limit.
*/}}
{{- define "disagg-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "disagg-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: the immutable subset (a Deployment's selector cannot change). */}}
{{- define "disagg-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "disagg-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* Labels of every object; "component" is added per object. */}}
{{- define "disagg-operator.commonLabels" -}}
helm.sh/chart: {{ include "disagg-operator.chart" . }}
app.kubernetes.io/name: {{ include "disagg-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: disagg-operator
{{- end }}

{{- define "disagg-operator.labels" -}}
{{ include "disagg-operator.commonLabels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "disagg-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "disagg-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "disagg-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "disagg-operator.adminSocket" -}}
{{- printf "%s/router-admin.sock" (trimSuffix "/" .Values.adminSocketDir) }}
{{- end }}

{{/*
The operator's RBAC rules: files/clusterrole-rules.yaml (written with the operator), a YAML list of
PolicyRules, parsed so that a malformed file fails the render. Returns {"rules": [...]}.
*/}}
{{- define "disagg-operator.rbacRules" -}}
{{- $raw := .Files.Get "files/clusterrole-rules.yaml" }}
{{- if not $raw }}
{{- fail "files/clusterrole-rules.yaml is missing or empty: the chart cannot grant the operator its RBAC rules" }}
{{- end }}
{{- $rules := fromYamlArray $raw }}
{{- range $rules }}
{{- if not (kindIs "map" .) }}
{{- fail (printf "files/clusterrole-rules.yaml must be a YAML list of PolicyRules: %v" .) }}
{{- end }}
{{- end }}
{{- toYaml (dict "rules" $rules) }}
{{- end }}

{{/* A duration like 500ms, 15s, 5m or 1h (values.schema.json checks the form) in milliseconds. */}}
{{- define "disagg-operator.durationMs" -}}
{{- $n := regexFind "^[0-9]+(\\.[0-9]+)?" . | float64 }}
{{- $unit := regexFind "(ms|s|m|h)$" . }}
{{- mulf $n (get (dict "ms" 1 "s" 1000 "m" 60000 "h" 3600000) $unit) }}
{{- end }}
