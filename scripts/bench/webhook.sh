#!/usr/bin/env bash
# The webhook benchmark: builds the services, the agent and the benchmark (release) and runs it
# once: direct and through the agent relay, each a flood (throughput) and a paced run (latency).
#   scripts/bench.sh webhook [FLOOD=4000] [PACED_RATE=500] [PACED_SECONDS=5] [RELAY_SCALE=4]
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet -p ferry-svc-api -p ferry-svc-agent-hub -p ferry-svc-webhook \
  -p ferry-agent -p ferry-stack-tests --bins
exec "$CARGO_TARGET_DIR/release/webhook_bench" "$@"
