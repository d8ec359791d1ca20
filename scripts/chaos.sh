#!/usr/bin/env bash
# The chaos harness (a benchmark, not a timed test).
#
#   scripts/chaos.sh [N]     N concurrent deployments (default 100)
#
# Starts the whole stack on this machine with two replicas of each scaled service (svc-api,
# svc-scheduler, svc-agent-hub, svc-canary, svc-webhook), FERRY_CHAOS_CLUSTERS (default 4)
# Kubernetes API simulators (kube-sim: simulators, not clusters) each with a ferry-agent, then
# submits N deployments through the API at once, one application each, spread over the
# simulated clusters; one in ten deploys an image that never becomes ready, so its file dictates
# a rollback. Meanwhile it kills random replicas with SIGKILL at random instants (restarting each
# a moment later), and restarts RabbitMQ, Redis and Postgres once each (they are shared with
# anything else running here, and are left running afterwards).
#
# Then it checks every deployment: finished as its file dictates (succeeded, or failed with its
# target rolled back), none lost (accepted but never stored), none stuck (not ended by the
# deadline), no effect doubled (a step history entry recorded twice, or an object deleted twice
# in the simulator, from its write audit at /_sim/audit). Objects changed more often than most
# (a write repeated after a kill that changed something) are reported apart as change outliers.
# It prints a table and a final JSON line.
#
# Environment: FERRY_CHAOS_CLUSTERS, FERRY_CHAOS_DEADLINE_SECS (default 900), FERRY_CHAOS_KILL_EVERY
# (mean seconds between kills, default 8), FERRY_CHAOS_BUILD=0 to skip the build, FERRY_CHAOS_BIN
# (directory of the binaries, default the cargo target directory's debug/).
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$ROOT"

N=${1:-100}
K=${FERRY_CHAOS_CLUSTERS:-4}
DEADLINE=${FERRY_CHAOS_DEADLINE_SECS:-900}
KILL_EVERY=${FERRY_CHAOS_KILL_EVERY:-8}
state="$ROOT/.ferry/chaos"
bin="${FERRY_CHAOS_BIN:-$CARGO_TARGET_DIR/debug}"
api_ports=(18280 18281)
hub_ports=(18543 18544)
export FERRY_BUS_PREFIX="ferry-chaos." FERRY_DEV=true
export FERRY_ISSUER_URL="http://127.0.0.1:${api_ports[0]}"
export FERRY_DATABASE_NAME=ferry_chaos
export FERRY_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$FERRY_DATABASE_NAME"
export FERRY_LOG=${FERRY_LOG:-info}
psql_q() { psql -h 127.0.0.1 -U postgres -d "$FERRY_DATABASE_NAME" -tAq -c "$1"; }

# ---------------------------------------------------------------- processes
# launch NAME ADMIN_PORT COMMAND...: starts in its own session and remembers the command, so a
# killed replica can be started again exactly as before.
launch() {
  local name=$1 port=$2; shift 2
  printf '%q ' "$@" >"$state/cmd/$name"
  echo "$port" >"$state/port/$name"
  FERRY_ADMIN_ADDR="127.0.0.1:$port" setsid "$@" >>"$state/logs/$name.log" 2>&1 </dev/null &
  echo "$!" >"$state/pid/$name"
}
relaunch() {
  local name=$1
  # exec all the way down, so the pid recorded is the service's own.
  (
    export FERRY_ADMIN_ADDR="127.0.0.1:$(cat "$state/port/$name")"
    eval "exec setsid $(cat "$state/cmd/$name")"
  ) >>"$state/logs/$name.log" 2>&1 </dev/null &
  echo "$!" >"$state/pid/$name"
}
alive() { kill -0 "$(cat "$state/pid/$1")" 2>/dev/null; }
ready() { alive "$1" && http_ok "$(cat "$state/port/$1")" /readyz; }
await() { wait_for "$1 (log: $state/logs/$1.log)" "${2:-120}" ready "$1"; }
stop_all() {
  [ -d "$state/pid" ] || return 0
  local f
  for f in "$state"/pid/*; do kill -TERM "$(cat "$f")" 2>/dev/null || true; done
  for f in "$state"/pid/*; do
    local p; p=$(cat "$f")
    for _ in $(seq 1 40); do kill -0 "$p" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "$p" 2>/dev/null || true
  done
}
trap stop_all EXIT

# ---------------------------------------------------------------- dependencies
restart_rabbitmq() {
  rabbitmqctl -q stop_app >/dev/null
  sleep 2
  rabbitmqctl -q start_app >/dev/null
  wait_for "rabbitmq back" 120 port_open 5672
}
restart_redis() {
  redis-cli -h 127.0.0.1 -p 6379 shutdown >/dev/null 2>&1 || true
  wait_for "redis down" 30 bash -c '! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1'
  if [ -f /etc/redis/redis.conf ]; then
    redis-server /etc/redis/redis.conf >/dev/null
  else
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
      --dir /tmp --logfile /tmp/ferry-redis.log >/dev/null
  fi
  wait_for "redis back" 30 bash -c 'redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG'
}
restart_postgres() {
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main restart -m fast
  wait_for "postgres back" 60 pg_isready -q -h 127.0.0.1 -p 5432
}

# ---------------------------------------------------------------- the stack
"$ROOT/scripts/deps.sh"
if [ "${FERRY_CHAOS_BUILD:-1}" != 0 ]; then
  say "building Ferry"
  cargo build --quiet --bins -p ferry-svc-api -p ferry-svc-scheduler -p ferry-svc-canary \
    -p ferry-svc-webhook -p ferry-svc-agent-hub -p ferry-agent -p ferry-kube-sim
fi
rm -rf "$state"
mkdir -p "$state"/{logs,pid,cmd,port,clusters,deploy}
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $FERRY_DATABASE_NAME" >/dev/null
psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $FERRY_DATABASE_NAME" >/dev/null
(umask 077 && head -c 32 /dev/urandom | base64 >"$state/master.key")
export FERRY_MASTER_KEY_FILE="$state/master.key"

say "starting two replicas of every scaled service"
for i in 0 1; do
  launch "svc-api-$((i + 1))" $((19301 + i)) env FERRY_HTTP_ADDR="127.0.0.1:${api_ports[$i]}" "$bin/ferry-svc-api"
done
await svc-api-1; await svc-api-2
for i in 0 1; do
  launch "svc-agent-hub-$((i + 1))" $((19303 + i)) env FERRY_HUB_ADDR="127.0.0.1:${hub_ports[$i]}" \
    FERRY_HUB_INSECURE_PLAINTEXT=true FERRY_HUB_ISSUER="$FERRY_ISSUER_URL" \
    FERRY_HUB_REPLICA_ID="chaos-hub-$((i + 1))" "$bin/ferry-svc-agent-hub"
  launch "svc-scheduler-$((i + 1))" $((19305 + i)) env FERRY_API_URL="$FERRY_ISSUER_URL" \
    FERRY_SCHEDULER_TICK_SECS=1 "$bin/ferry-svc-scheduler"
  launch "svc-canary-$((i + 1))" $((19307 + i)) "$bin/ferry-svc-canary"
  launch "svc-webhook-$((i + 1))" $((19309 + i)) "$bin/ferry-svc-webhook"
done
scaled=(svc-api-1 svc-api-2 svc-agent-hub-1 svc-agent-hub-2 svc-scheduler-1 svc-scheduler-2
  svc-canary-1 svc-canary-2 svc-webhook-1 svc-webhook-2)
for name in "${scaled[@]}"; do await "$name"; done

bootstrap() { # bootstrap NAME ROLES: prints client_id<TAB>client_secret
  local out
  out=$("$bin/ferry-svc-api" bootstrap --tenant chaos --client-name "$1" --roles "$2" --json 2>>"$state/logs/bootstrap.log")
  printf '%s\t%s\n' "$(jq -r .client_id <<<"$out")" "$(jq -r .client_secret <<<"$out")"
}
admin=$(bootstrap chaos-admin "Tenant Admin")
say "$K simulated clusters (kube-sim, a Kubernetes API simulator), one ferry-agent each"
for c in $(seq 1 "$K"); do
  kc="$state/clusters/c$c.kubeconfig"
  launch "kube-sim-c$c" 0 "$bin/kube-sim" --kubeconfig "$kc" --ready-delay 1s --namespace chaos
  wait_for "kube-sim c$c" 30 test -s "$kc"
  cred=$(bootstrap "agent-c$c" Agent)
  launch "ferry-agent-c$c" $((19320 + c)) env FERRY_AGENT_HUB_URL="http://127.0.0.1:${hub_ports[$((c % 2))]}" \
    FERRY_AGENT_ID="c$c" FERRY_AGENT_ISSUER_URL="$FERRY_ISSUER_URL" \
    FERRY_AGENT_CLIENT_ID="${cred%%$'\t'*}" FERRY_AGENT_CLIENT_SECRET="${cred#*$'\t'}" \
    FERRY_AGENT_KUBECONFIG="$kc" "$bin/ferry-agent"
done
for c in $(seq 1 "$K"); do await "ferry-agent-c$c"; done

token() {
  local port
  for port in "${api_ports[@]}" "${api_ports[@]}"; do
    curl -sf -u "${admin%%$'\t'*}:${admin#*$'\t'}" -d grant_type=client_credentials \
      -d audience=ferry-api "http://127.0.0.1:$port/oauth/token" | jq -r .access_token && return 0
    sleep 1
  done
  return 1
}

# ---------------------------------------------------------------- the deployments
# Deployment i: application chaos-i on cluster c((i % K) + 1), a two-step canary with a pause
# of 30 seconds (a durable timer); every tenth deploys an image that never becomes ready and rolls
# back. A first deployment goes straight to 100%, so each application first gets a baseline
# version (before the chaos starts) and the deployment under test replaces it step by step.
deploy_file() { # deploy_file I
  local i=$1
  cat <<EOF
version: v1
kind: kubernetes
application: chaos-$i
deploymentConfig:
  timeout:
    duration: 1
    unit: minutes
targets:
  sim:
    account: c$(( (i % K) + 1 ))
    namespace: chaos
    strategy: steps
manifests:
  - path: app.yaml
strategies:
  steps:
    canary:
      steps:
        - setWeight:
            weight: 50
        - pause:
            duration: 30
            unit: seconds
        - setWeight:
            weight: 100
EOF
}
manifest() { # manifest I IMAGE
  cat <<EOF
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-$1
  labels: {app: app-$1}
spec:
  replicas: 2
  selector: {matchLabels: {app: app-$1}}
  template:
    metadata: {labels: {app: app-$1}}
    spec:
      containers:
        - name: web
          image: registry.example/app:$2
EOF
}
expected() { if [ $(( $1 % 10 )) = 9 ]; then echo rolled_back; else echo succeeded; fi; }
submit() { # submit I [IMAGE]: POSTs until the API stored it (2xx) or says one runs (409)
  local i=$1 image=${2:-v1} body status port tries=0
  [ -z "${2:-}" ] && [ "$(expected "$i")" = rolled_back ] && image=bad
  body=$(jq -n --arg f "$(deploy_file "$i")" --arg m "$(manifest "$i" "$image")" \
    '{deployFile: {name: "deploy.yml", content: $f}, manifests: [{path: "app.yaml", content: $m}]}')
  while [ $tries -lt 60 ]; do
    port=${api_ports[$(( (i + tries) % 2 ))]}
    status=$(curl -s -o "$state/deploy/$i.json" -w '%{http_code}' -H "authorization: Bearer $(cat "$state/token")" \
      -H 'content-type: application/json' --data-binary "$body" "http://127.0.0.1:$port/v1/deployments" || true)
    case "$status" in
      2??) echo accepted >"$state/deploy/$i.submitted"; return 0 ;;
      409) echo exists >"$state/deploy/$i.submitted"; return 0 ;;
      401) token >"$state/token" || true ;;
    esac
    tries=$((tries + 1)); sleep 1
  done
  echo failed >"$state/deploy/$i.submitted"
}

# ---------------------------------------------------------------- chaos
kills=0 restarts=0
chaos() { # runs until $state/done exists
  local deps=(rabbitmq redis postgres) next_dep=0 t0=$SECONDS
  # The three dependency restarts at random instants while the deployments run (each takes at
  # least its 30-second pause; those rolling back, their 1-minute timeout).
  local at=($((5 + RANDOM % 10)) $((18 + RANDOM % 8)) $((30 + RANDOM % 10)))
  while [ ! -e "$state/done" ]; do
    if [ $next_dep -lt 3 ] && [ $((SECONDS - t0)) -ge "${at[$next_dep]}" ]; then
      local dep=${deps[$next_dep]}
      echo "$(date +%T) restart $dep" >>"$state/chaos.log"
      "restart_$dep" >>"$state/chaos.log" 2>&1 || echo "$(date +%T) restart $dep FAILED" >>"$state/chaos.log"
      next_dep=$((next_dep + 1)); echo $next_dep >"$state/restarts"
      continue
    fi
    sleep $(( 1 + RANDOM % (2 * KILL_EVERY) ))
    [ -e "$state/done" ] && break
    [ $next_dep -lt 3 ] && [ $((SECONDS - t0)) -ge "${at[$next_dep]}" ] && continue
    local victim=${scaled[$((RANDOM % ${#scaled[@]}))]}
    alive "$victim" || continue
    kill -KILL "$(cat "$state/pid/$victim")" 2>/dev/null || continue
    echo "$(date +%T) SIGKILL $victim" >>"$state/chaos.log"
    echo $(( $(cat "$state/kills" 2>/dev/null || echo 0) + 1 )) >"$state/kills"
    sleep $(( 1 + RANDOM % 3 ))
    local try
    for try in 1 2 3; do
      relaunch "$victim"
      local waited=0
      while [ $waited -lt 60 ] && alive "$victim" && ! ready "$victim"; do sleep 0.5; waited=$((waited + 1)); done
      ready "$victim" && break
      echo "$(date +%T) $victim not ready after restart (try $try)" >>"$state/chaos.log"
      kill -KILL "$(cat "$state/pid/$victim")" 2>/dev/null || true
    done
  done
  # Whatever happened, every dependency is restarted once.
  while [ $next_dep -lt 3 ]; do
    "restart_${deps[$next_dep]}" >>"$state/chaos.log" 2>&1 || true
    echo "$(date +%T) restart ${deps[$next_dep]} (late)" >>"$state/chaos.log"
    next_dep=$((next_dep + 1)); echo $next_dep >"$state/restarts"
  done
}

token >"$state/token"
say "deploying a baseline version of $N applications (no chaos yet)"
submits=()
for i in $(seq 0 $((N - 1))); do submit "$i" v0 & submits+=($!); done
wait "${submits[@]}"
baseline_done() {
  [ "$(psql_q "SELECT count(*) FROM deployments WHERE status = 'succeeded'")" -ge "$N" ]
}
wait_for "the baseline deployments" 600 baseline_done
rm -f "$state"/deploy/*.submitted
say "submitting $N deployments at once, chaos running"
started=$SECONDS
chaos &
chaos_pid=$!
for i in $(seq 0 $((N - 1))); do submit "$i" & done
wait_submits() { [ "$(ls "$state"/deploy/*.submitted 2>/dev/null | wc -l)" -ge "$N" ]; }
wait_for "all submissions" 600 wait_submits

ended() {
  local open
  open=$(psql_q "SELECT count(*) FROM deployments WHERE status NOT IN ('succeeded','failed','aborted','rolled_back','superseded')" 2>/dev/null) || return 1
  local stored accepted
  stored=$(( $(psql_q "SELECT count(*) FROM deployments" 2>/dev/null || echo 0) - N ))
  accepted=$(grep -lE 'accepted|exists' "$state"/deploy/*.submitted 2>/dev/null | wc -l)
  [ "$open" = 0 ] && [ "$stored" -ge "$accepted" ]
}
until ended || [ $((SECONDS - started)) -ge "$DEADLINE" ]; do sleep 2; done
touch "$state/done"
wait "$chaos_pid" || true
elapsed=$((SECONDS - started))
# The dependencies restarted last may still be coming back.
wait_for "postgres" 60 pg_isready -q -h 127.0.0.1 -p 5432

# ---------------------------------------------------------------- the checks
say "checking every deployment"
for c in $(seq 1 "$K"); do
  kc="$state/clusters/c$c.kubeconfig"
  server=$(sed -n 's/^ *server: *//p' "$kc" | head -n1)
  tok=$(sed -n 's/^ *token: *//p' "$kc" | head -n1)
  curl -sfk -H "authorization: Bearer $tok" "$server/_sim/audit" >"$state/audit-c$c.json" || echo '{}' >"$state/audit-c$c.json"
done
# Objects of the deployments' applications: kind/namespace/name -> changes, merged over clusters.
jq -s 'add' "$state"/audit-c*.json >"$state/audit.json"

finished=0 lost=0 stuck=0 doubled=0 wrong=0 outliers=0
printf '%-10s %-12s %-14s %-14s %-8s %s\n' DEPLOY EXPECTED STATUS TARGET STEPS NOTE >"$state/table.txt"
# Per object kind, the number of changes the same object of a deployment of the same shape saw
# most often (the baseline a doubled effect exceeds).
# The most common largest change count of an application's objects.
mode=$(jq -r '[to_entries[] | {app: (.key | split("/")[2] | capture("^(?<a>app-[0-9]+)").a), c: .value.changes}]
  | group_by(.app) | map(map(.c) | max) | group_by(.) | max_by(length) | .[0] // 0' "$state/audit.json")
for i in $(seq 0 $((N - 1))); do
  exp=$(expected "$i")
  # The deployment under test: the application's second.
  id=$(psql_q "SELECT id FROM deployments WHERE application = 'chaos-$i' ORDER BY created_at OFFSET 1 LIMIT 1")
  row=""
  [ -n "$id" ] && row=$(psql_q "SELECT d.status || '|' || coalesce(t.status,'-') FROM deployments d LEFT JOIN targets t
                ON t.tenant_id = d.tenant_id AND t.deployment_id = d.id WHERE d.id = '$id'")
  dstatus=${row%%|*} tstatus=${row#*|} note="" steps=0 dup=0
  if [ -n "$id" ]; then
    steps=$(psql_q "SELECT count(*) FROM step_history WHERE deployment_id = '$id'")
    dup=$(psql_q "SELECT count(*) FROM (SELECT 1 FROM step_history WHERE deployment_id = '$id'
                  GROUP BY target_name, step_index, status, reason HAVING count(*) > 1) x")
  fi
  if [ -z "$row" ]; then
    dstatus=missing tstatus=-
    if grep -q accepted "$state/deploy/$i.submitted" 2>/dev/null; then lost=$((lost + 1)); note="LOST"; else note="not submitted"; fi
  else
    case "$dstatus" in
      succeeded|failed|rolled_back|aborted|superseded)
        if { [ "$exp" = succeeded ] && [ "$dstatus" = succeeded ]; } || \
           { [ "$exp" = rolled_back ] && [ "$tstatus" = rolled_back ]; }; then
          finished=$((finished + 1))
        else wrong=$((wrong + 1)); note="WRONG END"; fi ;;
      *) stuck=$((stuck + 1)); note="STUCK" ;;
    esac
  fi
  # Doubled: a step recorded twice, or one of the application's objects deleted twice in the
  # simulator (a delete that already happened answers 404 and is not counted, so two mean the
  # object was created again and deleted again).
  twice=$(jq -r --arg p "app-$i" 'to_entries[] | select((.key | split("/")[2]) as $n
            | $n == $p or ($n | startswith($p + "-"))) | select(.value.deletes > 1) | .key' "$state/audit.json" | tr '\n' ' ')
  if [ "${dup:-0}" != 0 ] || [ -n "$twice" ]; then
    doubled=$((doubled + 1)); note="$note DOUBLED(${dup:-0} steps twice; deleted twice: ${twice:-none})"
  fi
  # Reported apart, not counted as doubled: objects changed more often than most objects of the
  # same kind (a re-applied write that changed something, e.g. after a replica was killed).
  mine=$(jq -r --arg p "app-$i" '[to_entries[] | select((.key | split("/")[2]) as $n
            | $n == $p or ($n | startswith($p + "-"))) | .value.changes] | max // 0' "$state/audit.json")
  [ "$mine" -gt "$mode" ] && { outliers=$((outliers + 1)); note="$note changes=$mine>$mode"; }
  printf '%-10s %-12s %-14s %-14s %-8s %s\n' "chaos-$i" "$exp" "$dstatus" "$tstatus" "$steps" "$note" >>"$state/table.txt"
done
cat "$state/table.txt"
echo
echo "chaos log ($state/chaos.log):"
sed 's/^/  /' "$state/chaos.log"
kills=$(cat "$state/kills" 2>/dev/null || echo 0)
restarts=$(cat "$state/restarts" 2>/dev/null || echo 0)
printf '{"deployments": %d, "finished": %d, "lost": %d, "stuck": %d, "doubled": %d, "wrong_end": %d, "change_outliers": %d, "kills": %d, "restarts": %d, "seconds": %d}\n' \
  "$N" "$finished" "$lost" "$stuck" "$doubled" "$wrong" "$outliers" "$kills" "$restarts" "$elapsed"
