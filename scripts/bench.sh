#!/usr/bin/env bash
# Runs one named benchmark (not a timed test) and prints its table, then one JSON line last.
#
#   scripts/bench.sh hub     # agent hub: tunnel round trip vs raw RabbitMQ, idle streams' memory
#   scripts/bench.sh deploy  # deployments end to end: latency one at a time, throughput at once
#
# Needs Postgres, Redis and RabbitMQ (scripts/deps.sh starts them). Extra arguments go to the benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ferry/target}"

name="${1:-}"
shift || true
case "$name" in
  hub) exec scripts/bench/hub.sh "$@" ;;
  deploy) exec scripts/bench/deploy.sh "$@" ;;
  *)
    echo "usage: scripts/bench.sh NAME [ARGS...]" >&2
    echo "benchmarks: hub deploy" >&2
    exit 2
    ;;
esac
