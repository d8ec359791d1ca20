#!/usr/bin/env bash
# Makes sure Ferry's dependencies run on localhost: Postgres (5432), Redis (6379), RabbitMQ (5672),
# that the prometheus binary is installed (tests and the demo start their own instances), and the
# Python packages the chart tests render and validate the Helm charts with, Playwright for the
# browser test and schemathesis for svc-api's fuzz test.
# Reuses what already runs, starts what is installed but stopped, installs from Debian's packages
# what is missing (when root), and otherwise fails saying what to do. Also creates the `ferry`
# database the services use. Safe to run any number of times.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"

PG_PORT=5432 REDIS_PORT=6379 AMQP_PORT=5672
apt_updated=0

install_pkgs() {
  local as_root=()
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
      as_root=(sudo -n)
    else
      die "$* missing, and this is neither root nor passwordless sudo: install $* (Debian: apt-get install $*) or point FERRY_* at running services"
    fi
  fi
  command -v apt-get >/dev/null || die "$* missing and there is no apt-get here: install $* with this system's package manager"
  if [ "$apt_updated" = 0 ]; then
    say "apt-get update"
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    apt_updated=1
  fi
  say "installing $* from Debian's packages"
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

pg_ready() { pg_isready -q -h 127.0.0.1 -p "$PG_PORT" 2>/dev/null; }
pg_trusts() { psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -w -tAc 'SELECT 1' >/dev/null 2>&1; }
redis_ready() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }
# RabbitMQ answers an AMQP 0-9-1 protocol header with a Connection.Start method frame (type 1).
# Asked over the port itself, so no Erlang cookie (root's or rabbitmq's) is needed.
amqp_ready() {
  port_open "$AMQP_PORT" || return 1
  local first
  first=$(timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"; printf "AMQP\0\0\011\01" >&3; head -c 1 <&3 | od -An -tu1' _ "$AMQP_PORT" 2>/dev/null) || return 1
  [ "${first// /}" = 1 ]
}

# The C toolchain some crates build with (ring, for TLS) and pkg-config.
ensure_toolchain() {
  if command -v cc >/dev/null && command -v pkg-config >/dev/null; then say "c toolchain: installed"; return; fi
  install_pkgs build-essential pkg-config
}

# Loopback connections must be trusted (the local defaults carry no password). A cluster the
# package manager started by itself has its own pg_hba.conf: add the rules and reload it.
trust_loopback() {
  local version=$1 hba="/etc/postgresql/$1/main/pg_hba.conf"
  if [ -w "$hba" ] && ! grep -q '^# ferry: trust loopback' "$hba"; then
    printf '# ferry: trust loopback\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n%s\n' \
      "$(cat "$hba")" > "$hba"
    return 0
  fi
  return 1
}

ensure_postgres() {
  local version
  if command -v pg_isready >/dev/null && pg_ready; then
    if ! pg_trusts; then
      version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)
      [ -n "$version" ] && trust_loopback "$version" || true
      say "postgres: reloading cluster $version/main to trust loopback connections"
      pg_ctlcluster --skip-systemctl-redirect "$version" main reload || true
      wait_for "postgres to trust 127.0.0.1 (user postgres, no password)" 30 pg_trusts
    fi
    say "postgres: running"
    return
  fi
  if ! command -v pg_ctlcluster >/dev/null; then install_pkgs postgresql postgresql-client; fi
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)
  [ -n "$version" ] || die "postgres: installed but no cluster under /etc/postgresql"
  trust_loopback "$version" || true
  say "postgres: starting cluster $version/main"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_for "postgres on 127.0.0.1:$PG_PORT" 60 pg_ready
}

ensure_redis() {
  if command -v redis-cli >/dev/null && redis_ready; then say "redis: running"; return; fi
  command -v redis-server >/dev/null || install_pkgs redis-server redis-tools
  say "redis: starting"
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir /tmp --logfile /tmp/ferry-redis.log
  wait_for "redis on 127.0.0.1:$REDIS_PORT" 30 redis_ready
}

ensure_rabbitmq() {
  if amqp_ready; then say "rabbitmq: running"; return; fi
  command -v rabbitmq-server >/dev/null || install_pkgs rabbitmq-server
  if ! port_open "$AMQP_PORT"; then
    say "rabbitmq: starting (this takes a few seconds)"
    rabbitmq-server -detached >/dev/null 2>&1 || true
  fi
  wait_for "rabbitmq on 127.0.0.1:$AMQP_PORT" 120 amqp_ready
}

# Prometheus is not a service Ferry runs: the canary-analysis tests and the demo start their own
# instances on free ports. Only the binary is needed.
ensure_prometheus() {
  if command -v prometheus >/dev/null; then say "prometheus: installed"; return; fi
  install_pkgs prometheus
  command -v prometheus >/dev/null || die "prometheus: installed but not on PATH"
}

# The chart tests (tests/charts) render helm/ferry and helm/ferry-agent with Helm's own engine and
# validate every object against the Kubernetes OpenAPI schemas: the PyPI packages
# helm-python-sdk (Helm v4's Go SDK, no helm binary) and kubernetes-validate.
CHART_TOOLS=(helm-python-sdk==0.2.2 kubernetes-validate==1.37.0)
ensure_chart_tools() {
  local python=${FERRY_PYTHON:-python3}
  if "$python" -c 'import helm_python, kubernetes_validate' 2>/dev/null; then say "chart tools: installed"; return; fi
  command -v "$python" >/dev/null || install_pkgs python3 python3-pip
  "$python" -m pip --version >/dev/null 2>&1 || install_pkgs python3-pip
  say "chart tools: installing ${CHART_TOOLS[*]} from PyPI"
  local args=(--quiet --disable-pip-version-check)
  if [ "$(id -u)" = 0 ]; then args+=(--root-user-action=ignore); else args+=(--user); fi
  # A distribution's own Python refuses pip installs (PEP 668) unless told otherwise.
  "$python" -m pip install "${args[@]}" "${CHART_TOOLS[@]}" ||
    "$python" -m pip install "${args[@]}" --break-system-packages "${CHART_TOOLS[@]}"
  "$python" -c 'import helm_python, kubernetes_validate' ||
    die "chart tools: installed, but $python cannot import helm_python and kubernetes_validate"
}

# The web UI's browser test (tests/stack, ui.rs) drives Debian's chromium with Playwright for
# Python, installed from PyPI into a venv under ~/.cache/ferry; Playwright never downloads a
# browser here (the test points it at /usr/bin/chromium).
PLAYWRIGHT_VERSION=1.65.2
ensure_browser_tests() {
  if command -v chromium >/dev/null; then say "chromium: installed"; else install_pkgs chromium; fi
  local venv="$HOME/.cache/ferry/venv-ui"
  if "$venv/bin/python" -c "import playwright" 2>/dev/null; then say "playwright: installed ($venv)"; return; fi
  command -v python3 >/dev/null || install_pkgs python3 python3-venv
  python3 -m venv "$venv" 2>/dev/null || { install_pkgs python3-venv; rm -rf "$venv"; python3 -m venv "$venv"; }
  say "installing playwright $PLAYWRIGHT_VERSION from PyPI into $venv"
  "$venv/bin/pip" install -q "playwright==$PLAYWRIGHT_VERSION" || die "installing playwright into $venv failed"
}

# svc-api's fuzz test (svc-api/tests/it/fuzz.rs) runs schemathesis from PyPI against a running
# svc-api; it lives in its own venv under ~/.cache/ferry, pinned, and the test finds it there.
SCHEMATHESIS_VERSION=4.32.5
ensure_schemathesis() {
  local venv="$HOME/.cache/ferry/venv-schemathesis"
  if [ "$("$venv/bin/schemathesis" --version 2>/dev/null | grep -o '[0-9][0-9.]*$')" = "$SCHEMATHESIS_VERSION" ]; then
    say "schemathesis: $SCHEMATHESIS_VERSION installed ($venv)"; return
  fi
  command -v python3 >/dev/null || install_pkgs python3 python3-venv
  rm -rf "$venv"
  python3 -m venv "$venv" 2>/dev/null || { install_pkgs python3-venv; rm -rf "$venv"; python3 -m venv "$venv"; }
  say "installing schemathesis $SCHEMATHESIS_VERSION from PyPI into $venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" ||
    die "installing schemathesis into $venv failed"
}

ensure_database() {
  local db=${FERRY_DATABASE_NAME:-ferry}
  if ! psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
    say "postgres: creating database $db"
    psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE \"$db\"" >/dev/null
  fi
}

ensure_toolchain
ensure_postgres
ensure_database
ensure_redis
ensure_rabbitmq
ensure_prometheus
ensure_chart_tools
ensure_browser_tests
ensure_schemathesis
say "dependencies ready: postgres 127.0.0.1:$PG_PORT, redis 127.0.0.1:$REDIS_PORT, rabbitmq 127.0.0.1:$AMQP_PORT"
