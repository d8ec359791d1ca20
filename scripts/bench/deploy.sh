#!/usr/bin/env bash
# The deploy benchmark: builds the services, the agent and the benchmark (release) and runs it
# once: sequential deployments (latency) then concurrent ones (throughput), each through svc-api,
# two hub and two scheduler replicas and an agent per simulated cluster.
#   scripts/bench.sh deploy [SEQUENTIAL=20] [CONCURRENT=100]
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet -p ferry-svc-api -p ferry-svc-agent-hub -p ferry-svc-scheduler \
  -p ferry-agent -p ferry-stack-tests --bins
exec "$CARGO_TARGET_DIR/release/deploy_bench" "$@"
