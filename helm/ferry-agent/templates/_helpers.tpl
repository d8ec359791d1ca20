{{/* Names, labels, and the Kubernetes permissions of the agent. */}}

{{- define "ferry-agent.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else if contains "ferry-agent" .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-ferry-agent" .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "ferry-agent.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{- define "ferry-agent.selectorLabels" -}}
app.kubernetes.io/name: ferry-agent
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ferry-agent.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/part-of: ferry
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
{{ include "ferry-agent.selectorLabels" . }}
{{- end -}}

{{- define "ferry-agent.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "ferry-agent.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{- define "ferry-agent.credentialsSecret" -}}
{{- .Values.credentials.existingSecret | default (printf "%s-credentials" (include "ferry-agent.fullname" .)) -}}
{{- end -}}

{{- define "ferry-agent.useToken" -}}
{{- if .Values.credentials.tokenSecret.name -}}true{{- end -}}
{{- end -}}

{{/*
The resource rules: what svc-scheduler does to a cluster through the agent (svc-scheduler/src;
tests/charts derives the same from the code and compares). Verbs per call:
  get     Api::get_opt          create  Api::create, and server-side apply of a new object
  list    Api::list             patch   merge patch and server-side apply
  watch   kube::runtime watcher (with list): readiness by watch (readiness.rs)
  delete  Api::delete           update  Api::replace: a rollback putting back an object's
                                        contents from before the deployment (previous.rs)
*/}}
{{- define "ferry-agent.rules" -}}
{{- $apply := list "get" "create" "update" "patch" "delete" -}}
# ReplicaSets Ferry creates for each version, scales step by step, reads and watches the
# readiness of, lists by workload and deletes (cluster.rs, baseline.rs, routing.rs,
# readiness.rs).
- apiGroups: [apps]
  resources: [replicasets]
  verbs: [get, list, watch, create, patch, delete]
# The user's Deployment Ferry adopts: read, paused or scaled to zero, or deleted with its
# ReplicaSets orphaned (cluster.rs adopt_user_deployment, retire_user_deployment).
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, patch, delete]
# Services pointed at a version (blue/green, previews, SMI stable/canary copies): read,
# selector patched or applied, created, deleted (routing.rs, objects.rs).
- apiGroups: [""]
  resources: [services]
  verbs: {{ toJson $apply }}
# HorizontalPodAutoscalers of a workload: listed and re-pointed at the running ReplicaSet, and
# the deploy file's own applied when the rollout is promoted (autoscalers.rs).
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, list, create, update, patch, delete]
{{- if .Values.rbac.istio }}
# Istio traffic weights: VirtualService routes and DestinationRule subsets (mesh.rs).
- apiGroups: [networking.istio.io]
  resources: [virtualservices, destinationrules]
  verbs: {{ toJson $apply }}
{{- end }}
{{- if .Values.rbac.smi }}
# SMI TrafficSplit weights (mesh.rs set_smi).
- apiGroups: [split.smi-spec.io]
  resources: [trafficsplits]
  verbs: {{ toJson $apply }}
{{- end }}
{{- if .Values.rbac.gatewayApi }}
# Gateway API HTTPRoute backends weighted between the versions (gateway.rs).
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes]
  verbs: {{ toJson $apply }}
{{- end }}
{{- range .Values.rbac.manifestResources }}
# Manifests of deploy files: server-side applied, read, deleted or put back on rollback
# (objects.rs, previous.rs).
- apiGroups: {{ toJson .apiGroups }}
  resources: {{ toJson .resources }}
  verbs: {{ toJson $apply }}
{{- end }}
{{- end -}}

{{/* A setting's value: `value:` quoted (whole numbers without an exponent), or `valueFrom:` for
{secretKeyRef: {name, key}}. */}}
{{- define "ferry-agent.envValue" -}}
{{- if kindIs "map" . -}}
valueFrom:
  {{- toYaml . | nindent 2 }}
{{- else if and (kindIs "float64" .) (eq . (floor .)) -}}
value: {{ int64 . | toString | quote }}
{{- else -}}
value: {{ toString . | quote }}
{{- end -}}
{{- end -}}
