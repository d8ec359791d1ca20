#!/usr/bin/env bash
# Runs every check and test Ferry has: formatting, clippy with warnings as errors, and the whole
# test suite (unit and integration tests against real Postgres, Redis and RabbitMQ, which
# scripts/deps.sh starts or installs first). Extra arguments go to cargo-nextest.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$ROOT"

"$ROOT/scripts/deps.sh"

# Databases of earlier runs that were killed before they could drop their own (names carry the
# creation time: ferry_test_<unix seconds>_<random>); an hour old is certainly finished.
psql -h 127.0.0.1 -U postgres -tAc "SELECT datname FROM pg_database WHERE datname LIKE 'ferry\_test\_%'" |
  while read -r db; do
    created=$(echo "$db" | cut -d_ -f3)
    if [[ "$created" =~ ^[0-9]+$ ]] && [ "$created" -lt $(( $(date +%s) - 3600 )) ]; then
      psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null || true
    fi
  done

if ! cargo nextest --version >/dev/null 2>&1; then
  say "installing cargo-nextest (once)"
  cargo install --locked cargo-nextest >/dev/null
fi

say "cargo fmt --check"
cargo fmt --all -- --check
say "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --quiet -- -D warnings
say "tests"
cargo nextest run --workspace --no-fail-fast "$@"
