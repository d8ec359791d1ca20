#!/usr/bin/env bash
# Runs one named benchmark (not a timed test) and prints its table, then one JSON line last.
#
#   scripts/bench.sh hub     # agent hub: tunnel round trip vs raw RabbitMQ, idle streams' memory
#   scripts/bench.sh deploy  # deployments end to end: latency one at a time, throughput at once
#   scripts/bench.sh scale [AGENTS ROLLOUTS]  # 1,000 clusters, 10,000 concurrent canary rollouts:
#                            # step gaps, readiness lag, scheduler memory, Postgres connections
#   scripts/bench.sh judge   # canary judge: Mann-Whitney vs SciPy's mannwhitneyu on the same data
#   scripts/bench.sh webhook # webhooks: requested to receiver, direct and through an agent
#   scripts/bench.sh api     # svc-api reads: a deployment's detail and the list, under concurrent load
#   scripts/bench.sh chaos [N]  # N deployments while replicas are SIGKILLed and the broker, Redis
#                               # and Postgres restart (scripts/chaos.sh)
#
# Starts Postgres, Redis and RabbitMQ first (scripts/deps.sh). Extra arguments go to the benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ferry/target}"

name="${1:-}"
shift || true
# Every benchmark prepares what it needs on a fresh machine: the services and the ferry database.
# Their progress goes to stderr, so the benchmark's JSON line stays the last line of stdout.
case "$name" in
  hub | deploy | scale | judge | webhook | api | chaos) scripts/deps.sh >&2 ;;
esac
case "$name" in
  hub) exec scripts/bench/hub.sh "$@" ;;
  deploy) exec scripts/bench/deploy.sh "$@" ;;
  scale) exec scripts/bench/scale.sh "$@" ;;
  judge) exec scripts/bench/judge.sh "$@" ;;
  webhook) exec scripts/bench/webhook.sh "$@" ;;
  api) exec scripts/bench/api.sh "$@" ;;
  chaos) exec scripts/chaos.sh "$@" ;;
  *)
    echo "usage: scripts/bench.sh NAME [ARGS...]" >&2
    echo "benchmarks: hub deploy scale judge webhook api chaos" >&2
    exit 2
    ;;
esac
