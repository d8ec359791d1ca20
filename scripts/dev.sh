#!/usr/bin/env bash
# The whole of Ferry on this machine, for development and the demo.
#
#   scripts/dev.sh up       start the dependencies, every service (two replicas of svc-agent-hub and
#                           svc-scheduler), a Kubernetes API simulator per cluster of the
#                           hello-ferry example and a ferry-agent per cluster; write .ferry/dev.env
#   scripts/dev.sh down     stop everything (SIGTERM: each process drains and exits)
#   scripts/dev.sh status   what runs, with its readiness
#   scripts/dev.sh logs [NAME]   follow the logs (of one process)
#
# State lives in .ferry/: dev/ (pids, logs, credentials, ui-login: the web UI's sign-in), dev.env (FERRY_API, FERRY_CLIENT_ID and
# FERRY_CLIENT_SECRET of an admin of the `demo` tenant) and clusters/<account>.kubeconfig.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$ROOT"

state="$ROOT/.ferry/dev"
clusters_dir="$ROOT/.ferry/clusters"
env_file="$ROOT/.ferry/dev.env"
bin="$CARGO_TARGET_DIR/debug"
api_port=18080
hub_ports=(18443 18444)
# Each simulated cluster of examples/hello-ferry, with the namespaces its targets deploy to.
accounts=(dev-cluster staging-cluster prod-us-cluster prod-eu-cluster)
declare -A namespaces=(
  [dev-cluster]=hello-dev [staging-cluster]=hello-staging
  [prod-us-cluster]=hello-prod [prod-eu-cluster]=hello-prod
)

export FERRY_BUS_PREFIX="ferry-dev." FERRY_DEV=true FERRY_ISSUER_URL="http://127.0.0.1:$api_port"
# Its own database, whose secrets and signing keys are encrypted with .ferry/master.key.
export FERRY_DATABASE_NAME=ferry_dev
export FERRY_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$FERRY_DATABASE_NAME"
# svc-api encrypts secrets with this key; the development stack keeps one across runs.
master_key_file="$ROOT/.ferry/master.key"

alive() { [ -f "$state/pids/$1" ] && kill -0 "$(cat "$state/pids/$1")" 2>/dev/null; }
running_any() { compgen -G "$state/pids/*" >/dev/null && for f in "$state"/pids/*; do alive "$(basename "$f")" && return 0; done; return 1; }

# start NAME ADMIN_PORT COMMAND [ARGS...]: runs in its own session so it outlives this script.
start() {
  local name=$1 port=$2; shift 2
  FERRY_ADMIN_ADDR="127.0.0.1:$port" setsid "$@" >"$state/logs/$name.log" 2>&1 </dev/null &
  echo "$!" >"$state/pids/$name"
  printf '%s\t%s\n' "$name" "$port" >>"$state/processes"
}
await() {
  local name=$1 port
  port=$(awk -v n="$name" '$1 == n {print $2}' "$state/processes")
  wait_for "$name (log: .ferry/dev/logs/$name.log)" 120 ready "$name" "$port"
}
ready() {
  alive "$1" || die "$1 exited: $(tail -n 5 "$state/logs/$1.log")"
  http_ok "$2" /readyz
}

# An Agent credential owns the agent id it first connects as. A stack brought up again on the same
# database makes new credentials, so the earlier ones of each cluster's agent are revoked first
# (a rotation): the new credential then takes the id over.
retire_agent_credentials() { # retire_agent_credentials ACCOUNT KEEP_CLIENT_ID (as the demo admin)
  local listed ids id
  listed=$("$bin/ferry" creds ls -o json 2>>"$state/logs/bootstrap.log") \
    || die "listing the demo tenant's credentials failed: see .ferry/dev/logs/bootstrap.log"
  ids=$(python3 -c '
import json, sys
account, keep = sys.argv[1], sys.argv[2]
for c in json.load(sys.stdin):
    if c["name"].startswith(f"agent-{account}-") and c["client_id"] != keep and not c.get("revoked_at"):
        print(c["id"])' "$1" "$2" <<<"$listed")
  for id in $ids; do
    "$bin/ferry" creds rm "$id" >>"$state/logs/bootstrap.log" 2>&1 || die "revoking credential $id failed"
  done
}

bootstrap() { # bootstrap NAME ROLES: prints client_id<TAB>client_secret of a new credential
  local out
  out=$("$bin/ferry-svc-api" bootstrap --tenant demo --client-name "$1" --roles "$2" --json 2>>"$state/logs/bootstrap.log") \
    || die "bootstrap of $1 failed: see .ferry/dev/logs/bootstrap.log"
  local id secret
  id=$(sed -n 's/.*"client_id": *"\([^"]*\)".*/\1/p' <<<"$out")
  secret=$(sed -n 's/.*"client_secret": *"\([^"]*\)".*/\1/p' <<<"$out")
  [ -n "$id" ] && [ -n "$secret" ] || die "bootstrap of $1 printed no credential"
  printf '%s\t%s\n' "$id" "$secret"
}

up() {
  if running_any; then
    say "the development stack is already running (scripts/dev.sh status; scripts/dev.sh down to stop)"
    return 0
  fi
  if [ ! -s "$master_key_file" ]; then
    # A new master key cannot read what an earlier one encrypted: start from an empty database.
    psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $FERRY_DATABASE_NAME" >/dev/null 2>&1 || true
    mkdir -p "$(dirname "$master_key_file")"
    (umask 077 && head -c 32 /dev/urandom | base64 >"$master_key_file")
  fi
  "$ROOT/scripts/deps.sh"
  say "building Ferry (the first build takes several minutes)"
  cargo build --quiet --bins -p ferry-cli -p ferry-svc-api -p ferry-svc-scheduler -p ferry-svc-canary \
    -p ferry-svc-webhook -p ferry-svc-agent-hub -p ferry-agent -p ferry-kube-sim

  rm -rf "$state" "$clusters_dir" "$env_file"
  mkdir -p "$state/logs" "$state/pids" "$clusters_dir"
  : >"$state/processes"
  export FERRY_MASTER_KEY_FILE="$master_key_file"

  say "starting svc-api on $FERRY_ISSUER_URL"
  start svc-api 19101 env FERRY_HTTP_ADDR="127.0.0.1:$api_port" "$bin/ferry-svc-api"
  await svc-api
  local i
  for i in 0 1; do
    start "svc-agent-hub-$((i + 1))" $((19105 + i)) env FERRY_HUB_ADDR="127.0.0.1:${hub_ports[$i]}" \
      FERRY_HUB_INSECURE_PLAINTEXT=true FERRY_HUB_ISSUER="$FERRY_ISSUER_URL" \
      FERRY_HUB_REPLICA_ID="hub-$((i + 1))" "$bin/ferry-svc-agent-hub"
    start "svc-scheduler-$((i + 1))" $((19107 + i)) env FERRY_API_URL="$FERRY_ISSUER_URL" "$bin/ferry-svc-scheduler"
  done
  start svc-canary 19103 "$bin/ferry-svc-canary"
  start svc-webhook 19104 "$bin/ferry-svc-webhook"
  for name in svc-agent-hub-1 svc-agent-hub-2 svc-scheduler-1 svc-scheduler-2 svc-canary svc-webhook; do
    await "$name"
  done

  say "creating the demo tenant, its admin credential and one agent credential per cluster"
  local stamp admin
  stamp=$(date +%s)
  admin=$(bootstrap "dev-admin-$stamp" "Tenant Admin")
  {
    echo "# Written by scripts/dev.sh up: an admin of the demo tenant. 'source' it, then use ferry."
    echo "export FERRY_API=$FERRY_ISSUER_URL"
    echo "export FERRY_CLIENT_ID=${admin%%$'\t'*}"
    echo "export FERRY_CLIENT_SECRET=${admin#*$'\t'}"
  } >"$env_file"
  chmod 600 "$env_file"

  # A person for the web UI: a local account of svc-api's issuer, an admin of the demo tenant,
  # with a generated password (only its argon2 hash is stored). Its sign-in is in .ferry/dev/ui-login.
  local login
  login=$("$bin/ferry-svc-api" local-user --tenant demo --email demo@ferry.local --roles "Tenant Admin" --json \
    2>>"$state/logs/bootstrap.log") || die "creating the web UI's user failed: see .ferry/dev/logs/bootstrap.log"
  (umask 077 && {
    echo "url: $FERRY_ISSUER_URL/ui"
    echo "email: demo@ferry.local"
    echo "password: $(sed -n 's/.*"password": *"\([^"]*\)".*/\1/p' <<<"$login")"
  } >"$state/ui-login")

  local n=0 account
  for account in "${accounts[@]}"; do
    local kubeconfig="$clusters_dir/$account.kubeconfig"
    say "$account: kube-sim (a Kubernetes API simulator, not a cluster) and its ferry-agent"
    start "kube-sim-$account" 0 "$bin/kube-sim" --kubeconfig "$kubeconfig" --ready-delay 1s \
      --namespace "${namespaces[$account]}"
    wait_for "kube-sim for $account" 30 test -s "$kubeconfig"
    local cred
    cred=$(bootstrap "agent-$account-$stamp" Agent)
    (source "$env_file" && retire_agent_credentials "$account" "${cred%%$'\t'*}")
    # Agents spread over the two hub replicas: the scheduler finds each through Redis.
    start "ferry-agent-$account" $((19110 + n)) env FERRY_AGENT_HUB_URL="http://127.0.0.1:${hub_ports[$((n % 2))]}" \
      FERRY_AGENT_ID="$account" FERRY_AGENT_ISSUER_URL="$FERRY_ISSUER_URL" \
      FERRY_AGENT_CLIENT_ID="${cred%%$'\t'*}" FERRY_AGENT_CLIENT_SECRET="${cred#*$'\t'}" \
      FERRY_AGENT_KUBECONFIG="$kubeconfig" "$bin/ferry-agent"
    n=$((n + 1))
  done
  for account in "${accounts[@]}"; do await "ferry-agent-$account"; done
  say "the development stack is up"
  status
}

status() {
  [ -f "$state/processes" ] || { echo "not running (scripts/dev.sh up starts it)"; return 0; }
  printf '  %-28s %-8s %s\n' PROCESS PID STATE
  local name port pid st
  while IFS=$'\t' read -r name port; do
    pid=$(cat "$state/pids/$name" 2>/dev/null || echo -)
    if ! alive "$name"; then st="stopped"
    elif [ "$port" = 0 ]; then st="running"
    elif http_ok "$port" /readyz; then st="ready   (http://127.0.0.1:$port/readyz)"
    else st="not ready (http://127.0.0.1:$port/readyz)"; fi
    printf '  %-28s %-8s %s\n' "$name" "$pid" "$st"
  done <"$state/processes"
  echo
  echo "  API and issuer:  $FERRY_ISSUER_URL (interactive docs at $FERRY_ISSUER_URL/docs)"
  echo "  credentials:     source .ferry/dev.env   (an admin of the demo tenant)"
  echo "  clusters:        kubectl --kubeconfig .ferry/clusters/<account>.kubeconfig get rs -A"
  echo "  logs:            scripts/dev.sh logs [NAME]"
}

down() {
  running_any || { say "nothing is running"; return 0; }
  say "stopping everything (SIGTERM: each process drains and exits)"
  local f pids=()
  for f in "$state"/pids/*; do alive "$(basename "$f")" && pids+=("$(cat "$f")"); done
  kill -TERM "${pids[@]}" 2>/dev/null || true
  local deadline=$((SECONDS + 40)) pid
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null; do
      if [ "$SECONDS" -ge "$deadline" ]; then
        say "process $pid did not stop within 40s: killing it"
        kill -KILL "$pid" 2>/dev/null || true
      fi
      sleep 0.2
    done
  done
  rm -f "$state"/pids/*
  say "stopped"
}

logs() {
  [ -d "$state/logs" ] || die "no logs: the stack has not run (scripts/dev.sh up)"
  if [ -n "${1:-}" ]; then
    [ -f "$state/logs/$1.log" ] || die "no log named $1: $(ls "$state/logs" | sed 's/\.log$//' | tr '\n' ' ')"
    tail -n 200 -F "$state/logs/$1.log"
  else
    tail -n 20 -F "$state"/logs/*.log
  fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  logs) logs "${2:-}" ;;
  *) echo "usage: scripts/dev.sh up|down|status|logs [NAME]" >&2; exit 2 ;;
esac
