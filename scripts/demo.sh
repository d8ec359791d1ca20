#!/usr/bin/env bash
# Ferry's main job on this machine, from a fresh checkout: start the dependencies, build Ferry,
# validate the four-environment canary deploy file, start every service, show that each is ready,
# and stop them again (or keep them running with --keep until Ctrl-C).
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$ROOT"

keep=0
[ "${1:-}" = "--keep" ] && keep=1

"$ROOT/scripts/deps.sh"

say "building Ferry (the first build takes a few minutes)"
cargo build --quiet --bins -p ferry-cli -p ferry-svc-api -p ferry-svc-scheduler -p ferry-svc-canary \
  -p ferry-svc-webhook -p ferry-svc-agent-hub
bin="$CARGO_TARGET_DIR/debug"

deploy_file=examples/hello-ferry/deploy-canary.yml
say "ferry deploy validate -f $deploy_file"
"$bin/ferry" deploy validate -f "$deploy_file"

state="$ROOT/.ferry/demo"
mkdir -p "$state/logs"
pids=()
stop_all() {
  [ "${#pids[@]}" -gt 0 ] || return 0
  say "stopping services (SIGTERM: each drains and exits)"
  kill -TERM "${pids[@]}" 2>/dev/null || true
  local failed=0
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  pids=()
  [ "$failed" = 0 ] && say "all services stopped cleanly" || say "a service exited with an error: see $state/logs"
}
trap stop_all EXIT

# name, admin port, extra environment
start() {
  local name=$1 port=$2; shift 2
  env FERRY_ADMIN_ADDR="127.0.0.1:$port" FERRY_BUS_PREFIX="demo." "$@" \
    "$bin/ferry-svc-$name" >"$state/logs/$name.log" 2>&1 &
  pids+=("$!")
  printf '%s\t%s\n' "$name" "$port" >>"$state/services"
}
: >"$state/services"
start api 19101
start scheduler 19102
start canary 19103
start webhook 19104
start agent-hub 19105 FERRY_HUB_ADDR=127.0.0.1:18443 FERRY_HUB_INSECURE_PLAINTEXT=true

ready() { http_ok "$1" /readyz; }
while IFS=$'\t' read -r name port; do
  wait_for "svc-$name (log: $state/logs/$name.log)" 60 ready "$port"
done <"$state/services"

say "every service is ready:"
printf '  %-12s %-32s %s\n' SERVICE READINESS METRICS
while IFS=$'\t' read -r name port; do
  printf '  %-12s %-32s %s\n' "svc-$name" "http://127.0.0.1:$port/readyz" "http://127.0.0.1:$port/metrics"
done <"$state/services"
echo
echo "Next: logs are in $state/logs; 'scripts/test.sh' runs every test;"
echo "      'cargo run -p ferry-cli -- deploy validate -f <file>' checks your own deploy files."

if [ "$keep" = 1 ]; then
  say "services keep running; press Ctrl-C to stop them"
  wait
fi
