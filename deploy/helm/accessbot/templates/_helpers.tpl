{{/* Names and labels. */}}
{{- define "accessbot.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "accessbot.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "accessbot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "accessbot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "accessbot.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "accessbot.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "accessbot.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "accessbot.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding the tokens: the operator's, or the one this chart creates. */}}
{{- define "accessbot.secretName" -}}
{{- default (include "accessbot.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{- define "accessbot.policyConfigMap" -}}
{{- default (printf "%s-policy" (include "accessbot.fullname" .)) .Values.policy.existingConfigMap }}
{{- end }}

{{- define "accessbot.hasPolicy" -}}
{{- if or .Values.policy.content .Values.policy.existingConfigMap }}true{{ end }}
{{- end }}

{{/* Checks that stop `helm install` with one line instead of a pod that never starts. */}}
{{- define "accessbot.validate" -}}
{{- if not (has .Values.database.mode (list "sqlite" "postgres")) }}
{{- fail (printf "database.mode must be sqlite or postgres, got %q" .Values.database.mode) }}
{{- end }}
{{- if and .Values.ingress.enabled .Values.slack.socketMode }}
{{- fail "ingress.enabled needs slack.socketMode=false: in Socket Mode Slack connects out over a websocket and nothing must be exposed" }}
{{- end }}
{{- if lt (int .Values.shutdownTimeoutSeconds) 1 }}
{{- fail "shutdownTimeoutSeconds must be at least 1" }}
{{- end }}
{{- if and (not (kindIs "invalid" .Values.terminationGracePeriodSeconds)) (le (int .Values.terminationGracePeriodSeconds) (int .Values.shutdownTimeoutSeconds)) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be larger than shutdownTimeoutSeconds (%d), or the pod is killed mid-shutdown" (int .Values.terminationGracePeriodSeconds) (int .Values.shutdownTimeoutSeconds)) }}
{{- end }}
{{- if and (eq .Values.database.mode "postgres") (lt (int .Values.replicaCount) 1) }}
{{- fail "replicaCount must be at least 1" }}
{{- end }}
{{- if not .Values.env.POSTHOG_ORGANIZATION_ID }}
{{- fail "env.POSTHOG_ORGANIZATION_ID is required (the PostHog organization id, or @current)" }}
{{- end }}
{{- if and .Values.policy.content .Values.policy.existingConfigMap }}
{{- fail "set policy.content or policy.existingConfigMap, not both" }}
{{- end }}
{{- end }}

{{- define "accessbot.terminationGracePeriodSeconds" -}}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add (int .Values.shutdownTimeoutSeconds) 15 }}
{{- else }}
{{- int .Values.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}
