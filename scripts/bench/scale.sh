#!/usr/bin/env bash
# The scale benchmark: builds the services and the benchmark (release) and runs it once: many
# clusters (simulators with the real agent in the benchmark's process) and many concurrent canary
# rollouts through two hub and two scheduler replicas.
#   scripts/bench.sh scale [AGENTS=1000] [ROLLOUTS=10000] [READY_MS=100] [JITTER_MS=400] [DB_CONNECTIONS=10]
# Each cluster holds a few sockets (its simulator, its agent's streams), so the open-file limit is
# raised as far as the hard limit allows.
set -euo pipefail
cd "$(dirname "$0")/../.."
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
cargo build --release --quiet -p ferry-svc-api -p ferry-svc-agent-hub -p ferry-svc-scheduler \
  -p ferry-agent -p ferry-stack-tests --bins
exec "$CARGO_TARGET_DIR/release/scale_bench" "$@"
