#!/usr/bin/env bash
# The deploy benchmark: builds the services, the agent and the benchmark (release) and runs it
# once: sequential deployments (latency) then concurrent ones (throughput), each through svc-api,
# two hub and two scheduler replicas and an agent per simulated cluster.
#   scripts/bench.sh deploy [SEQUENTIAL=20] [CONCURRENT=100] [POD_READY_MS=0]
# With POD_READY_MS above 0 every deployment waits for its Pods, so the latencies show how soon
# the schedulers notice them (FERRY_SCHEDULER_WATCH_READINESS=false: by the 1 s tick only).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet -p ferry-svc-api -p ferry-svc-agent-hub -p ferry-svc-scheduler \
  -p ferry-agent -p ferry-stack-tests --bins
exec "$CARGO_TARGET_DIR/release/deploy_bench" "$@"
