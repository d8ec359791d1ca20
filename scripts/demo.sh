#!/usr/bin/env bash
# Ferry's main job on this machine, as far as it goes today: start the dependencies, build Ferry,
# validate the four-environment canary deploy file, start every control-plane service, create the
# demo tenant and its credentials through svc-api's issuer, start a Kubernetes API simulator for
# the dev cluster and a ferry-agent that authenticates with a real token and dials the hub, and
# show that everything is ready. Then stop it all (or keep it running with --keep until Ctrl-C).
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$ROOT"

keep=0
[ "${1:-}" = "--keep" ] && keep=1

"$ROOT/scripts/deps.sh"

say "building Ferry (the first build takes several minutes)"
cargo build --quiet --bins -p ferry-cli -p ferry-svc-api -p ferry-svc-scheduler -p ferry-svc-canary \
  -p ferry-svc-webhook -p ferry-svc-agent-hub -p ferry-agent -p ferry-kube-sim
bin="$CARGO_TARGET_DIR/debug"

deploy_file=examples/hello-ferry/deploy-canary.yml
say "ferry deploy validate -f $deploy_file"
"$bin/ferry" deploy validate -f "$deploy_file"

state="$ROOT/.ferry/demo"
rm -rf "$state" && mkdir -p "$state/logs"
api_port=18080 hub_port=18443
# The demo keeps its own exchanges and queues apart from anything else on the broker.
export FERRY_BUS_PREFIX="ferry-demo." FERRY_DEV=true FERRY_ISSUER_URL="http://127.0.0.1:$api_port"

pids=()
stop_all() {
  [ "${#pids[@]}" -gt 0 ] || return 0
  say "stopping everything (SIGTERM: each process drains and exits)"
  kill -TERM "${pids[@]}" 2>/dev/null || true
  local failed=0
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  pids=()
  if [ "$failed" = 0 ]; then say "all stopped cleanly"; else say "something exited with an error: see $state/logs"; fi
}
trap stop_all EXIT

: >"$state/processes"
# start NAME ADMIN_PORT COMMAND [ARGS...] (environment variables before the command via env)
start() {
  local name=$1 port=$2; shift 2
  FERRY_ADMIN_ADDR="127.0.0.1:$port" "$@" >"$state/logs/$name.log" 2>&1 &
  pids+=("$!")
  printf '%s\t%s\n' "$name" "$port" >>"$state/processes"
}
ready() { http_ok "$1" /readyz; }
await() { wait_for "$1 (log: $state/logs/$1.log)" 90 ready "$2"; }

start svc-api 19101 env FERRY_HTTP_ADDR="127.0.0.1:$api_port" "$bin/ferry-svc-api"
await svc-api 19101
start svc-agent-hub 19105 env FERRY_HUB_ADDR="127.0.0.1:$hub_port" FERRY_HUB_INSECURE_PLAINTEXT=true \
  FERRY_HUB_ISSUER="$FERRY_ISSUER_URL" "$bin/ferry-svc-agent-hub"
start svc-scheduler 19102 "$bin/ferry-svc-scheduler"
start svc-canary 19103 "$bin/ferry-svc-canary"
start svc-webhook 19104 "$bin/ferry-svc-webhook"
for svc in svc-agent-hub svc-scheduler svc-canary svc-webhook; do
  await "$svc" "$(awk -v n="$svc" '$1 == n {print $2}' "$state/processes")"
done

say "creating the demo tenant and the dev cluster's agent credential (svc-api bootstrap)"
# A secret is shown only when its credential is created, so each demo run makes its own.
"$bin/ferry-svc-api" bootstrap --tenant demo --client-name "dev-cluster-agent-$(date +%s)" --roles Agent --json \
  >"$state/agent-credential.json" 2>"$state/logs/bootstrap.log"
json_field() { sed -n "s/.*\"$1\": *\"\\([^\"]*\\)\".*/\\1/p" "$2"; }
client_id=$(json_field client_id "$state/agent-credential.json")
client_secret=$(json_field client_secret "$state/agent-credential.json")
[ -n "$client_id" ] && [ -n "$client_secret" ] || die "bootstrap printed no credential: $(cat "$state/agent-credential.json")"

say "starting kube-sim (a Kubernetes API simulator, not a cluster) for dev-cluster"
start kube-sim-dev 0 "$bin/kube-sim" --kubeconfig "$state/dev-cluster.kubeconfig" --ready-delay 1s
wait_for "kube-sim's kubeconfig" 30 test -s "$state/dev-cluster.kubeconfig"

say "starting ferry-agent for dev-cluster: OIDC discovery, client credentials, then the hub"
start ferry-agent-dev 19110 env FERRY_AGENT_HUB_URL="http://127.0.0.1:$hub_port" FERRY_AGENT_ID=dev-cluster \
  FERRY_AGENT_ISSUER_URL="$FERRY_ISSUER_URL" FERRY_AGENT_CLIENT_ID="$client_id" \
  FERRY_AGENT_CLIENT_SECRET="$client_secret" FERRY_AGENT_KUBECONFIG="$state/dev-cluster.kubeconfig" \
  "$bin/ferry-agent"
await ferry-agent-dev 19110

say "everything is ready:"
printf '  %-16s %s\n' PROCESS READINESS
while IFS=$'\t' read -r name port; do
  [ "$port" = 0 ] && continue
  printf '  %-16s %s\n' "$name" "http://127.0.0.1:$port/readyz"
done <"$state/processes"
echo
echo "  API and issuer:   $FERRY_ISSUER_URL (docs at $FERRY_ISSUER_URL/docs)"
echo "  agent hub (gRPC): 127.0.0.1:$hub_port — the dev-cluster agent is connected with a real token"
echo "  kubeconfig:       $state/dev-cluster.kubeconfig (kubectl get ns --kubeconfig ...)"
echo
echo "Next: logs are in $state/logs; 'scripts/test.sh' runs every test;"
echo "      'cargo run -p ferry-cli -- deploy validate -f <file>' checks your own deploy files;"
echo "      'scripts/demo.sh --keep' leaves everything running."

if [ "$keep" = 1 ]; then
  say "running; press Ctrl-C to stop"
  wait
fi
