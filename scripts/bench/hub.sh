#!/usr/bin/env bash
# The agent hub benchmark: builds only the hub's bench binary (release, its own features) and
# runs it once. The 10,000-stream level opens 10,000 TCP connections in each of two processes,
# so the open-file limit is raised as far as the hard limit allows.
set -euo pipefail
cd "$(dirname "$0")/../.."
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
cargo build --release --quiet -p ferry-svc-agent-hub --features bench --bin hub-bench
status=0
"$CARGO_TARGET_DIR/release/hub-bench" "$@" || status=$?
# Each simulated agent leaves a session counter in Redis; the run's keys all start with bench_.
if command -v redis-cli >/dev/null 2>&1; then
  redis-cli --scan --pattern 'bench_*' | xargs -r -n 500 redis-cli del >/dev/null
fi
exit "$status"
