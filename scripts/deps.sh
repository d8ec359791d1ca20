#!/usr/bin/env bash
# Makes sure Ferry's dependencies run on localhost: Postgres (5432), Redis (6379), RabbitMQ (5672).
# Reuses what already runs, starts what is installed but stopped, installs from Debian's packages
# what is missing (when root), and otherwise fails saying what to do. Also creates the `ferry`
# database the services use. Safe to run any number of times.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"

PG_PORT=5432 REDIS_PORT=6379 AMQP_PORT=5672
apt_updated=0

install_pkgs() {
  if [ "$(id -u)" != 0 ]; then
    die "$* missing and this is not root: install $* (Debian: apt-get install $*) or point FERRY_* at running services"
  fi
  if [ "$apt_updated" = 0 ]; then
    say "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    apt_updated=1
  fi
  say "installing $* from Debian's packages"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

pg_ready() { pg_isready -q -h 127.0.0.1 -p "$PG_PORT" 2>/dev/null; }
redis_ready() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }
amqp_ready() { port_open "$AMQP_PORT" && rabbitmq-diagnostics -q check_port_connectivity >/dev/null 2>&1; }

ensure_postgres() {
  if command -v pg_isready >/dev/null && pg_ready; then say "postgres: running"; return; fi
  if ! command -v pg_ctlcluster >/dev/null; then install_pkgs postgresql postgresql-client; fi
  local version
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)
  [ -n "$version" ] || die "postgres: installed but no cluster under /etc/postgresql"
  # A cluster installed here trusts loopback connections, as the local defaults expect.
  local hba="/etc/postgresql/$version/main/pg_hba.conf"
  if [ -w "$hba" ] && ! grep -q '^# ferry: trust loopback' "$hba"; then
    printf '# ferry: trust loopback\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n%s\n' \
      "$(cat "$hba")" > "$hba"
  fi
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
  if command -v rabbitmq-diagnostics >/dev/null && amqp_ready; then say "rabbitmq: running"; return; fi
  command -v rabbitmq-server >/dev/null || install_pkgs rabbitmq-server
  if ! port_open "$AMQP_PORT"; then
    say "rabbitmq: starting (this takes a few seconds)"
    rabbitmq-server -detached >/dev/null 2>&1 || true
  fi
  wait_for "rabbitmq on 127.0.0.1:$AMQP_PORT" 120 amqp_ready
}

ensure_database() {
  local db=${FERRY_DATABASE_NAME:-ferry}
  if ! psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
    say "postgres: creating database $db"
    psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE \"$db\"" >/dev/null
  fi
}

ensure_postgres
ensure_database
ensure_redis
ensure_rabbitmq
say "dependencies ready: postgres 127.0.0.1:$PG_PORT, redis 127.0.0.1:$REDIS_PORT, rabbitmq 127.0.0.1:$AMQP_PORT"
