#!/usr/bin/env bash
# Ferry's main job, on this machine: bring the whole stack up (scripts/dev.sh up), then roll
# hello-ferry 1.1.0 out through four simulated clusters — dev, staging, then prod-us and prod-eu in
# parallel, each behind a manual approval, with a 25% → 50% → 100% canary in production — and
# watch it with `ferry deploy start --watch`. Then canary analysis against a real Prometheus that
# the demo starts: an analysed 1.2.0 passes and goes live, an analysed 1.3.0 fails and is rolled back.
# Last, a webhook with a callback: 1.4.0 goes to dev once a local release checker, called through
# dev's agent, calls back.
#
# With a terminal, you approve the manual steps yourself (the watch shows the command to run, in
# another terminal: `source .ferry/dev.env` first). Without one (CI, a pipe), the demo approves them
# itself and says so. The stack keeps running afterwards; `scripts/dev.sh down` stops it.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$ROOT"

"$ROOT/scripts/dev.sh" up
# shellcheck source=/dev/null
source "$ROOT/.ferry/dev.env"
ferry="$CARGO_TARGET_DIR/debug/ferry"
deploy_file=examples/hello-ferry/deploy-canary.yml

say "ferry deploy validate -f $deploy_file"
"$ferry" deploy validate -f "$deploy_file"

approve=()
if [ -t 0 ] && [ -t 1 ]; then
  say "approvals are yours: in another terminal, run the 'ferry deploy approve' command the watch shows"
  say "  (there, first: cd $ROOT && source .ferry/dev.env && alias ferry=$ferry)"
else
  say "no terminal: this demo approves each manual step itself (ferry deploy start --auto-approve)"
  approve=(--auto-approve)
fi

# A canary needs a version already running: a first deployment to a target goes straight to 100%.
# So hello-ferry 1.0.0 goes everywhere first (at once where nothing runs yet), its gates approved.
baseline="$ROOT/.ferry/demo/hello-ferry"
rm -rf "$baseline" && mkdir -p "$baseline" && cp -r examples/hello-ferry/. "$baseline/"
sed -i 's#hello-ferry:1.1.0#hello-ferry:1.0.0#' "$baseline/manifests/app.yaml"
say "first, hello-ferry 1.0.0 everywhere as the running version (approved automatically)"
"$ferry" deploy start -f "$baseline/deploy-canary.yml" --watch --auto-approve >"$ROOT/.ferry/demo/baseline.log" \
  || die "deploying the running version failed: see .ferry/demo/baseline.log"

say "ferry deploy start -f $deploy_file --watch ${approve[*]}"
status=0
"$ferry" deploy start -f "$deploy_file" --watch "${approve[@]}" || status=$?

echo
if [ "$status" = 0 ]; then say "hello-ferry 1.1.0 is live in every environment"; else say "the deployment did not succeed (exit $status)"; fi

# Automated canary analysis against a real Prometheus (Debian's package), which this demo starts
# on its own port, scraping itself. hello-ferry 1.2.0 goes to prod-us behind an analysis that
# asks whether Prometheus stays up (it does: the analysis passes, the canary goes live); then
# 1.3.0 behind one whose limit cannot hold (it fails: the canary is rolled back, with reasons).
analysis_demo() {
  command -v prometheus >/dev/null || die "prometheus is not installed (scripts/deps.sh installs it)"
  local dir="$ROOT/.ferry/demo/prometheus" port=19190
  rm -rf "$dir" && mkdir -p "$dir/data"
  cat >"$dir/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ['127.0.0.1:$port']
YAML
  say "starting Prometheus on 127.0.0.1:$port (log: .ferry/demo/prometheus/prometheus.log)"
  setsid prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
    --web.listen-address="127.0.0.1:$port" >"$dir/prometheus.log" 2>&1 </dev/null &
  echo "$!" >"$dir/pid"
  wait_for "prometheus on 127.0.0.1:$port" 60 http_ok "$port" /-/ready
  say "ferry analysis set-provider prometheus-demo --kind prometheus --base-url http://127.0.0.1:$port"
  "$ferry" analysis set-provider prometheus-demo --kind prometheus --base-url "http://127.0.0.1:$port"

  local file version limit
  for version in 1.2.0 1.3.0; do
    # 1.2.0: Prometheus must be up (up >= 1) the whole window; 1.3.0: it must be down, which fails.
    if [ "$version" = 1.2.0 ]; then limit="lowerLimit: 1"; else limit="upperLimit: 0.5"; fi
    file="$baseline/deploy-analysis-$version.yml"
    sed "s#hello-ferry:1.0.0#hello-ferry:$version#" "$baseline/manifests/app.yaml" >"$baseline/manifests/app-$version.yaml"
    cat >"$file" <<YAML
version: v1
application: hello-ferry
description: hello-ferry $version to prod-us behind an automated canary analysis
targets:
  prod-us:
    account: prod-us-cluster
    namespace: hello-prod
    strategy: analysed
manifests:
  - path: manifests/app-$version.yaml
  - path: manifests/service.yaml
strategies:
  analysed:
    canary:
      steps:
        - setWeight: 50
        - analysis:
            interval: 10
            units: seconds
            numberOfJudgmentRuns: 2
            queries: [prometheus-up]
        - setWeight: 100
analysis:
  defaultMetricProviderName: prometheus-demo
  queries:
    - name: prometheus-up
      $limit
      queryTemplate: min_over_time(up{job="prometheus"}[{{ferry.promQlStepInterval}}])
YAML
    say "ferry deploy start -f $file --watch   (hello-ferry $version, analysed)"
    local result=0
    "$ferry" deploy start -f "$file" --watch || result=$?
    local id
    id=$("$ferry" deploy list --application hello-ferry -o json \
      | sed -n 's/^ *"id": *"\([^"]*\)".*/\1/p' | head -n1)
    say "ferry deploy status $id   (the analysis, run by run)"
    "$ferry" deploy status "$id" | sed -n '/^Analyses:/,$p'
    if [ "$version" = 1.2.0 ] && [ "$result" != 0 ]; then
      say "the analysed canary 1.2.0 did not go live (exit $result)"; analysis_status=1
    elif [ "$version" = 1.3.0 ] && [ "$result" = 0 ]; then
      say "1.3.0 went live although its analysis should have failed"; analysis_status=1
    fi
  done
  kill "$(cat "$dir/pid")" 2>/dev/null || true
}

analysis_status=0
if [ "$status" = 0 ]; then
  analysis_demo
  if [ "$analysis_status" = 0 ]; then
    say "canary analysis: 1.2.0 passed and went live; 1.3.0 failed its analysis and was rolled back"
  fi
  status=$analysis_status
fi

# A webhook with a callback: hello-ferry 1.4.0 goes to dev behind a beforeDeployment release
# check. svc-webhook sends it through dev's agent (networkMode remoteNetworkAgent) to a local
# receiver (scripts/demo/webhook_receiver.py), which answers 202 and then calls back on the
# callback URI with a Markdown message; the deployment goes on, and `ferry deploy status` shows
# the call and the message.
webhook_demo() {
  local dir="$ROOT/.ferry/demo/webhook" port=19196
  rm -rf "$dir" && mkdir -p "$dir" && cp -r examples/hello-ferry/manifests "$dir/"
  sed -i 's#hello-ferry:1.1.0#hello-ferry:1.4.0#' "$dir/manifests/app.yaml"
  python3 "$ROOT/scripts/demo/webhook_receiver.py" "$port" "$dir/receiver.log" &
  local receiver=$!
  wait_for "the release checker on 127.0.0.1:$port" 30 port_open "$port"
  cat >"$dir/deploy.yml" <<YAML
version: v1
kind: kubernetes
application: hello-ferry
targets:
  dev:
    account: dev-cluster
    namespace: hello-dev
    strategy: rolling
    constraints:
      beforeDeployment:
        - runWebhook:
            name: release-check
manifests:
  - path: manifests/app.yaml
strategies:
  rolling:
    canary:
      steps:
        - setWeight: 100
webhooks:
  - name: release-check
    method: POST
    uriTemplate: http://127.0.0.1:$port/check?app={{armory.applicationName}}
    networkMode: remoteNetworkAgent
    retryCount: 3
    headers:
      - key: Content-Type
        value: application/json
    bodyTemplate:
      inline: '{"callbackUri": "{{armory.callbackUri}}", "environment": "{{armory.environmentName}}"}'
YAML
  say "ferry deploy start -f $dir/deploy.yml --watch   (hello-ferry 1.4.0 to dev, behind a webhook)"
  local result=0
  "$ferry" deploy start -f "$dir/deploy.yml" --watch || result=$?
  local id
  id=$("$ferry" deploy list --application hello-ferry -o json \
    | sed -n 's/^ *"id": *"\([^"]*\)".*/\1/p' | head -n1)
  say "ferry deploy status $id   (the webhook call and its callback's message)"
  "$ferry" deploy status "$id" | sed -n '/^Webhooks:/,$p'
  kill "$receiver" 2>/dev/null || true
  [ "$result" = 0 ] || { say "the deployment behind the webhook did not succeed (exit $result)"; webhook_status=1; }
}

webhook_status=0
if [ "$status" = 0 ]; then
  webhook_demo
  [ "$webhook_status" = 0 ] && say "webhook: the release check called back and hello-ferry 1.4.0 went to dev"
  status=$webhook_status
fi

cat <<EOF

Where to look next (the stack keeps running):
  source .ferry/dev.env                 credentials of an admin of the demo tenant
  alias ferry=$ferry
  ferry deploy list
  ferry deploy status <id> --watch
  kubectl --kubeconfig .ferry/clusters/prod-us-cluster.kubeconfig get rs,pods -n hello-prod
  $FERRY_API/docs                interactive API documentation
  scripts/dev.sh status | logs [NAME] | down
EOF
if [ -s "$ROOT/.ferry/dev/ui-login" ]; then
  cat <<EOF

Watch, approve and roll back in a browser: open $FERRY_API/ui
  choose "Sign in with a Ferry account": $(sed -n 's/^email: //p' "$ROOT/.ferry/dev/ui-login"), password $(sed -n 's/^password: //p' "$ROOT/.ferry/dev/ui-login")
  (also in .ferry/dev/ui-login; an admin of the demo tenant)
EOF
fi
exit "$status"
