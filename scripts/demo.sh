#!/usr/bin/env bash
# Ferry's main job, on this machine: bring the whole stack up (scripts/dev.sh up), then roll
# hello-ferry 1.1.0 out through four simulated clusters — dev, staging, then prod-us and prod-eu in
# parallel, each behind a manual approval, with a 25% → 50% → 100% canary in production — and
# watch it with `ferry deploy start --watch`.
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
exit "$status"
