{{/* The chart's name, at most 63 characters. */}}
{{- define "tributary.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: the release name when it already contains the chart's name. */}}
{{- define "tributary.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "tributary.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tributary.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "tributary.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "tributary.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: tributary
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "tributary.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tributary.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name: name the existing ServiceAccount to use when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "tributary.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "tributary.leaseName" -}}
{{- default (printf "%s-leader" (include "tributary.fullname" .)) .Values.leaderElection.leaseName }}
{{- end }}

{{/*
The permissions the operator needs in every namespace it watches: exactly what
`tributary rbac` prints (src/operator/rbac.rs, checked by tests/integration/rbac.rs against the
requests the controllers make). scripts/check-chart.sh fails when these differ from it.
*/}}
{{- define "tributary.rules" -}}
- apiGroups: ["tributary.io"]
  resources: ["kafkaclusters"]
  verbs: ["list", "watch"]
- apiGroups: ["tributary.io"]
  resources: ["kafkatopics", "kafkaconsumers", "kafkaproducers"]
  verbs: ["create", "delete", "list", "patch", "watch"]
- apiGroups: ["tributary.io"]
  resources: ["kafkausers"]
  verbs: ["list", "patch", "watch"]
- apiGroups: ["tributary.io"]
  resources: ["streamtopologies"]
  verbs: ["list", "watch"]
- apiGroups: ["tributary.io"]
  resources: ["kafkaoffsetresets"]
  verbs: ["list", "patch", "watch"]
- apiGroups: ["tributary.io"]
  resources: ["kafkaclusters/status", "kafkatopics/status", "kafkaconsumers/status", "kafkaproducers/status", "kafkausers/status", "streamtopologies/status", "kafkaoffsetresets/status"]
  verbs: ["patch"]
- apiGroups: ["tributary.io"]
  resources: ["kafkaconsumers/finalizers", "kafkaproducers/finalizers", "streamtopologies/finalizers"]
  verbs: ["update"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["create", "get", "patch"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["create", "get", "list", "patch", "watch"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["create", "get", "list", "patch", "watch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}

{{/* In the release namespace, for leader election (`leaderElectionRules` of `tributary rbac`). */}}
{{- define "tributary.leaderElectionRules" -}}
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["create", "get", "list", "update", "watch"]
{{- end }}

{{/* Combinations of values that the schema cannot refuse with a clear message. */}}
{{- define "tributary.checks" -}}
{{- if and (not .Values.leaderElection.enabled) (gt (int .Values.replicaCount) 1) }}
{{- fail "replicaCount > 1 needs leaderElection.enabled=true: without it every replica would reconcile at once" }}
{{- end }}
{{- with .Values.podDisruptionBudget }}
{{- if and (not (kindIs "invalid" .minAvailable)) (not (kindIs "invalid" .maxUnavailable)) }}
{{- fail "podDisruptionBudget: set minAvailable or maxUnavailable, not both (e.g. --set podDisruptionBudget.maxUnavailable=null)" }}
{{- end }}
{{- end }}
{{- end }}
