{{/*
Names, labels and the pieces every service's Deployment shares. Each service's own file
(api.yaml, scheduler.yaml, …) says what is its own: binary, ports, variables, volumes.
*/}}

{{- define "ferry.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else if contains "ferry" .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-ferry" .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "ferry.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/* Labels of every object; ferry.baseLabels leaves out the instance for objects that add their
selector labels (which carry it). */}}
{{- define "ferry.baseLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/part-of: ferry
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
{{- end -}}

{{- define "ferry.labels" -}}
{{ include "ferry.baseLabels" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Selector labels of one service: dict "root" $ "component" "api". */}}
{{- define "ferry.selectorLabels" -}}
app.kubernetes.io/name: ferry-svc-{{ .component }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{- define "ferry.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "ferry.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{- define "ferry.secretName" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-connections" (include "ferry.fullname" .)) -}}
{{- end -}}

{{/* The public URL of svc-api, checked once. */}}
{{- define "ferry.issuerUrl" -}}
{{- $url := required "issuerUrl is required: the public URL of svc-api (https://…)" .Values.issuerUrl -}}
{{- if not (regexMatch "^https?://[^/?#]+" $url) -}}
{{- fail (printf "issuerUrl must be an absolute http(s) URL, got %q" $url) -}}
{{- end -}}
{{- trimSuffix "/" $url -}}
{{- end -}}

{{/* A Secret key as an environment variable: dict "root" $ "name" "FERRY_X" "key" "k". */}}
{{- define "ferry.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "ferry.secretName" .root }}
      key: {{ .key }}
{{- end -}}

{{/*
Variables every service reads: admin address, logging, shutdown grace, Postgres and RabbitMQ
(every service uses both). dict "root" $ "svc" .Values.api
*/}}
{{- define "ferry.commonEnv" -}}
{{- $root := .root -}}
- name: FERRY_ADMIN_ADDR
  value: "0.0.0.0:{{ .svc.adminPort }}"
- name: FERRY_LOG_FORMAT
  value: {{ $root.Values.logging.format | quote }}
- name: FERRY_LOG
  value: {{ .svc.logLevel | default $root.Values.logging.level | quote }}
- name: FERRY_SHUTDOWN_GRACE_SECS
  value: {{ $root.Values.shutdownGraceSeconds | quote }}
{{- with $root.Values.tracing.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
- name: FERRY_BUS_PREFIX
  value: {{ $root.Values.busPrefix | quote }}
{{ include "ferry.secretEnv" (dict "root" $root "name" "FERRY_DATABASE_URL" "key" $root.Values.secrets.keys.databaseUrl) }}
{{ include "ferry.secretEnv" (dict "root" $root "name" "FERRY_AMQP_URL" "key" $root.Values.secrets.keys.amqpUrl) }}
{{- end -}}

{{- define "ferry.redisEnv" -}}
{{ include "ferry.secretEnv" (dict "root" . "name" "FERRY_REDIS_URL" "key" .Values.secrets.keys.redisUrl) }}
{{- end -}}

{{/* The master key: a mounted file (preferred) or a variable. */}}
{{- define "ferry.masterKeyEnv" -}}
{{- if .Values.secrets.masterKeyAsFile -}}
- name: FERRY_MASTER_KEY_FILE
  value: /etc/ferry/master-key/master-key
{{- else -}}
{{ include "ferry.secretEnv" (dict "root" . "name" "FERRY_MASTER_KEY" "key" .Values.secrets.keys.masterKey) }}
{{- end -}}
{{- end -}}

{{- define "ferry.masterKeyVolume" -}}
{{- if .Values.secrets.masterKeyAsFile -}}
- name: master-key
  secret:
    secretName: {{ include "ferry.secretName" . }}
    defaultMode: 0440
    items:
      - key: {{ .Values.secrets.keys.masterKey }}
        path: master-key
{{- end -}}
{{- end -}}

{{- define "ferry.masterKeyMount" -}}
{{- if .Values.secrets.masterKeyAsFile -}}
- name: master-key
  mountPath: /etc/ferry/master-key
  readOnly: true
{{- end -}}
{{- end -}}

{{/*
A setting's value: `value:` as a quoted string (values files hold numbers as floats: whole ones
are written without an exponent, 10485760 not 1.048576e+07), or `valueFrom:` for a
{secretKeyRef: {name, key}} (a secret setting kept in a Secret).
*/}}
{{- define "ferry.envValue" -}}
{{- if kindIs "map" . -}}
valueFrom:
  {{- toYaml . | nindent 2 }}
{{- else if and (kindIs "float64" .) (eq . (floor .)) -}}
value: {{ int64 . | toString | quote }}
{{- else -}}
value: {{ toString . | quote }}
{{- end -}}
{{- end -}}

{{/*
A service's `settings` (FERRY_* variables its binary reads, checked by the schema) and its
extraEnv. dict "root" $ "svc" .Values.api
*/}}
{{- define "ferry.settingsEnv" -}}
{{- range $name, $value := .svc.settings }}
- name: {{ $name }}
  {{- include "ferry.envValue" $value | nindent 2 }}
{{- end }}
{{- with .svc.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
The Deployment of one service. dict with
  root: $; svc: its values; component: api|scheduler|canary|webhook|agent-hub;
  binary: the executable; env, ports, volumes, mounts: YAML lists (strings) of its own.
*/}}
{{- define "ferry.deployment" -}}
{{- $root := .root -}}
{{- $svc := .svc -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "ferry.fullname" $root }}-{{ .component }}
  labels:
    {{- include "ferry.baseLabels" $root | nindent 4 }}
    {{- include "ferry.selectorLabels" (dict "root" $root "component" .component) | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  {{- if not $svc.autoscaling.enabled }}
  replicas: {{ $svc.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "ferry.selectorLabels" (dict "root" $root "component" .component) | nindent 6 }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 0
      maxSurge: 1
  template:
    metadata:
      labels:
        {{- include "ferry.baseLabels" $root | nindent 8 }}
        {{- include "ferry.selectorLabels" (dict "root" $root "component" .component) | nindent 8 }}
        app.kubernetes.io/component: {{ .component }}
        {{- with (merge (dict) $svc.podLabels $root.Values.podLabels) }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        {{- if $root.Values.metrics.podAnnotations }}
        prometheus.io/scrape: "true"
        prometheus.io/port: {{ $svc.adminPort | quote }}
        prometheus.io/path: /metrics
        {{- end }}
        {{- if not $root.Values.secrets.existingSecret }}
        checksum/secret: {{ include (print $root.Template.BasePath "/secret.yaml") $root | sha256sum }}
        {{- end }}
        {{- with (merge (dict) $svc.podAnnotations $root.Values.podAnnotations) }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "ferry.serviceAccountName" $root }}
      automountServiceAccountToken: {{ $root.Values.automountServiceAccountToken }}
      enableServiceLinks: false
      terminationGracePeriodSeconds: {{ add $root.Values.shutdownGraceSeconds 10 }}
      {{- with $root.Values.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      containers:
        - name: {{ .component }}
          image: {{ include "ferry.image" $root | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command: ["/usr/local/bin/{{ .binary }}"]
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
          env:
            {{- include "ferry.commonEnv" (dict "root" $root "svc" $svc) | nindent 12 }}
            {{- with .env }}
            {{- . | nindent 12 }}
            {{- end }}
            {{- with (include "ferry.settingsEnv" (dict "root" $root "svc" $svc) | trim) }}
            {{- . | nindent 12 }}
            {{- end }}
          ports:
            - name: admin
              containerPort: {{ $svc.adminPort }}
              protocol: TCP
            {{- with .ports }}
            {{- . | nindent 12 }}
            {{- end }}
          startupProbe:
            httpGet: {path: /healthz, port: admin}
            {{- toYaml $root.Values.probes.startup | nindent 12 }}
          livenessProbe:
            httpGet: {path: /healthz, port: admin}
            {{- toYaml $root.Values.probes.liveness | nindent 12 }}
          readinessProbe:
            httpGet: {path: /readyz, port: admin}
            {{- toYaml $root.Values.probes.readiness | nindent 12 }}
          resources:
            {{- toYaml $svc.resources | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- with .mounts }}
            {{- . | nindent 12 }}
            {{- end }}
            {{- with $svc.extraVolumeMounts }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
      volumes:
        - name: tmp
          emptyDir: {sizeLimit: 64Mi}
        {{- with .volumes }}
        {{- . | nindent 8 }}
        {{- end }}
        {{- with $svc.extraVolumes }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with ($svc.nodeSelector | default $root.Values.nodeSelector) }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with ($svc.tolerations | default $root.Values.tolerations) }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with ($svc.affinity | default $root.Values.affinity) }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.topologySpreadConstraints }}
      topologySpreadConstraints:
        {{- tpl (toYaml .) $root | nindent 8 }}
      {{- end }}
{{- end -}}

{{/* The ClusterIP Service of one service's admin port (and its own ports). */}}
{{- define "ferry.internalService" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "ferry.fullname" .root }}-{{ .component }}{{ .suffix | default "" }}
  labels:
    {{- include "ferry.labels" .root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
    ferry.dev/metrics: "true"
  {{- with .annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: ClusterIP
  selector:
    {{- include "ferry.selectorLabels" (dict "root" .root "component" .component) | nindent 4 }}
  ports:
    - name: admin
      port: {{ .svc.adminPort }}
      targetPort: admin
      protocol: TCP
    {{- with .ports }}
    {{- . | nindent 4 }}
    {{- end }}
{{- end -}}

{{/* The services: component name to its values. */}}
{{- define "ferry.components" -}}
{{- toJson (dict "api" .Values.api "scheduler" .Values.scheduler "canary" .Values.canary "webhook" .Values.webhook "agent-hub" .Values.hub) -}}
{{- end -}}
