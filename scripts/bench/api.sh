#!/usr/bin/env bash
# The API benchmark: builds svc-api and the benchmark (release) and runs it once: deployment
# detail and list reads under concurrent keep-alive load on loopback.
#   scripts/bench.sh api [CONCURRENCY=32] [SECONDS=10] [DEPLOYMENTS=500]
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet -p ferry-svc-api -p ferry-stack-tests --bins
exec "$CARGO_TARGET_DIR/release/api_bench" "$@"
