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
  # apt's output is shown only when it fails.
  local log; log=$(mktemp)
  if [ "$apt_updated" = 0 ]; then
    say "apt-get update"
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >"$log" 2>&1 ||
      { cat "$log" >&2; rm -f "$log"; die "apt-get update failed (see above): check that the mirrors in /etc/apt/sources.list are reachable, or install $* yourself"; }
    apt_updated=1
  fi
  say "installing $* from Debian's packages"
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >"$log" 2>&1 ||
    { tail -n 30 "$log" >&2; rm -f "$log"; die "apt-get install $* failed (see above): check that the mirrors in /etc/apt/sources.list are reachable, or install $* yourself"; }
  rm -f "$log"
}

pg_ready() { pg_isready -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres 2>/dev/null; }
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

pg_version() { ls /etc/postgresql 2>/dev/null | sort -V | tail -n1; }

ensure_postgres() {
  local version
  if command -v pg_isready >/dev/null && pg_ready; then
    say "postgres: running"
  else
    # The package may start the cluster itself (where an init system lets it), or not.
    command -v pg_ctlcluster >/dev/null && command -v psql >/dev/null || install_pkgs postgresql postgresql-client
    version=$(pg_version)
    [ -n "$version" ] || die "postgres: installed but no cluster under /etc/postgresql: create one (pg_createcluster --start <version> main) or point FERRY_DATABASE_URL at a running Postgres"
    trust_loopback "$version" || true
    if ! pg_ready; then
      say "postgres: starting cluster $version/main"
      pg_ctlcluster --skip-systemctl-redirect "$version" main start ||
        pg_ctlcluster "$version" main status >/dev/null 2>&1 ||
        die "postgres: cluster $version/main did not start (see above and /var/log/postgresql/postgresql-$version-main.log)"
      wait_for "postgres on 127.0.0.1:$PG_PORT (its log: /var/log/postgresql)" 60 pg_ready
    fi
  fi
  # A cluster that was already running (started by the package manager, or from before) loaded
  # its pg_hba.conf before the trust rules were there.
  if ! pg_trusts; then
    version=$(pg_version)
    [ -n "$version" ] && { trust_loopback "$version" || grep -q '^# ferry: trust loopback' "/etc/postgresql/$version/main/pg_hba.conf"; } ||
      die "postgres on 127.0.0.1:$PG_PORT asks user postgres for a password: add 'host all all 127.0.0.1/32 trust' to the top of its pg_hba.conf and reload it (as root, this script does it for Debian's clusters), or point FERRY_DATABASE_URL at a Postgres you can use"
    say "postgres: reloading cluster $version/main to trust loopback connections"
    pg_ctlcluster --skip-systemctl-redirect "$version" main reload ||
      die "postgres: could not reload cluster $version/main: as root, run pg_ctlcluster $version main reload"
    wait_for "postgres to trust 127.0.0.1 (user postgres, no password)" 30 pg_trusts
  fi
}

ensure_redis() {
  if command -v redis-cli >/dev/null && redis_ready; then say "redis: running"; return; fi
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null || install_pkgs redis-server redis-tools
  # Where an init system lets it, the package has started Redis itself.
  if redis_ready; then say "redis: running"; return; fi
  say "redis: starting"
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir /tmp --logfile /tmp/ferry-redis.log
  wait_for "redis on 127.0.0.1:$REDIS_PORT (its log: /tmp/ferry-redis.log)" 30 redis_ready
}

ensure_rabbitmq() {
  if amqp_ready; then say "rabbitmq: running"; return; fi
  command -v rabbitmq-server >/dev/null || install_pkgs rabbitmq-server
  if ! port_open "$AMQP_PORT"; then
    say "rabbitmq: starting (this takes a few seconds)"
    rabbitmq-server -detached >/dev/null 2>&1 || true
  fi
  wait_for "rabbitmq on 127.0.0.1:$AMQP_PORT (its log: /var/log/rabbitmq)" 120 amqp_ready
  say "rabbitmq: running"
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
  # A distribution's own Python refuses pip installs (PEP 668) unless told otherwise; it says so
  # with an EXTERNALLY-MANAGED file beside its standard library.
  if "$python" -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")))'; then
    args+=(--break-system-packages)
  fi
  "$python" -m pip install "${args[@]}" "${CHART_TOOLS[@]}" ||
    die "chart tools: pip could not install ${CHART_TOOLS[*]} into $python (see above): check that PyPI is reachable (proxy, TLS certificates), or install them yourself and set FERRY_PYTHON to that Python"
  "$python" -c 'import helm_python, kubernetes_validate' ||
    die "chart tools: installed, but $python cannot import helm_python and kubernetes_validate"
}

# make_venv DIR: a fresh venv at DIR. Debian's python3 makes venvs only with python3-venv (ensurepip).
make_venv() {
  command -v python3 >/dev/null || install_pkgs python3 python3-venv
  rm -rf "$1"
  if ! python3 -m venv "$1" >/dev/null 2>&1; then
    install_pkgs python3-venv
    rm -rf "$1"
    python3 -m venv "$1" || die "python3 -m venv $1 failed (see above): install python3-venv (Debian) or Python's venv module"
  fi
}

# The web UI's browser test (tests/stack, ui.rs) drives Debian's chromium with Playwright for
# Python, installed from PyPI into a venv under ~/.cache/ferry; Playwright never downloads a
# browser here (the test points it at /usr/bin/chromium).
PLAYWRIGHT_VERSION=1.65.2
ensure_browser_tests() {
  if command -v chromium >/dev/null; then say "chromium: installed"; else install_pkgs chromium; fi
  local venv="$HOME/.cache/ferry/venv-ui"
  if "$venv/bin/python" -c "import playwright" 2>/dev/null; then say "playwright: installed ($venv)"; return; fi
  make_venv "$venv"
  say "installing playwright $PLAYWRIGHT_VERSION from PyPI into $venv"
  "$venv/bin/pip" install -q "playwright==$PLAYWRIGHT_VERSION" ||
    die "installing playwright into $venv failed (see above): check that PyPI is reachable (proxy, TLS certificates), then run this again"
}

# svc-api's fuzz test (svc-api/tests/it/fuzz.rs) runs schemathesis from PyPI against a running
# svc-api; it lives in its own venv under ~/.cache/ferry, pinned, and the test finds it there.
SCHEMATHESIS_VERSION=4.32.5
ensure_schemathesis() {
  local venv="$HOME/.cache/ferry/venv-schemathesis"
  if [ "$("$venv/bin/schemathesis" --version 2>/dev/null | grep -o '[0-9][0-9.]*$')" = "$SCHEMATHESIS_VERSION" ]; then
    say "schemathesis: $SCHEMATHESIS_VERSION installed ($venv)"; return
  fi
  make_venv "$venv"
  say "installing schemathesis $SCHEMATHESIS_VERSION from PyPI into $venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" ||
    die "installing schemathesis into $venv failed (see above): check that PyPI is reachable (proxy, TLS certificates), then run this again"
}

ensure_database() {
  local db=${FERRY_DATABASE_NAME:-ferry} found
  found=$(psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -w -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'") ||
    die "postgres: could not list databases as user postgres on 127.0.0.1:$PG_PORT (see above)"
  if [ "$found" = 1 ]; then say "postgres: database $db exists"; return; fi
  say "postgres: creating database $db"
  psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -w -qc "CREATE DATABASE \"$db\"" >/dev/null ||
    die "postgres: could not create database $db (see above): create it yourself (createdb -h 127.0.0.1 -U postgres $db)"
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
