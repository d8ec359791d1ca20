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

# Queues, exchanges and Redis keys of killed test runs (every test names its own with a `t_`
# prefix and removes them itself when it ends normally).
if command -v rabbitmqctl >/dev/null 2>&1; then
  {
    rabbitmqctl -q list_queues name --no-table-headers 2>/dev/null | sed -n 's/^\(t_[0-9a-f]\{12\}\..*\)$/queue \1/p'
    rabbitmqctl -q list_exchanges name --no-table-headers 2>/dev/null | sed -n 's/^\(t_[0-9a-f]\{12\}\..*\)$/exchange \1/p'
  } | cargo run -q -p ferry-testkit --bin ferry-broker-cleanup
fi
if command -v redis-cli >/dev/null 2>&1; then
  redis-cli --scan --pattern 't_*' | xargs -r -n 500 redis-cli del >/dev/null
fi

# CI builds from a fresh clone each time: incremental state would only pile up on disk. And when
# the disk runs low, start the build cache over rather than fail half-way through a link.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL=0; fi
free_kib=$(df -Pk "$(dirname "$CARGO_TARGET_DIR")" 2>/dev/null | awk 'NR == 2 {print $4}')
if [ -n "$free_kib" ] && [ "$free_kib" -lt $((20 * 1024 * 1024)) ] && [ -d "$CARGO_TARGET_DIR/debug" ]; then
  say "less than 20 GiB free: removing the debug build cache $CARGO_TARGET_DIR/debug"
  rm -rf "$CARGO_TARGET_DIR/debug"
fi

# Test binaries embed their crate's folder (env!("CARGO_MANIFEST_DIR")) and cargo does not rebuild
# them when the same sources sit in another checkout (each CI run clones anew): when this checkout
# is not the one the shared build directory last served, rebuild Ferry's own crates (not the
# dependencies) so no test reads files of another checkout.
stamp="$CARGO_TARGET_DIR/ferry-checkout"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" != "$ROOT" ]; then
  say "the build directory last served $(cat "$stamp"): rebuilding Ferry's crates for $ROOT"
  packages=()
  for manifest in $(git ls-files '*Cargo.toml'); do
    name=$(sed -n 's/^name = "\(.*\)"$/\1/p' "$manifest" | head -n1)
    [ "$manifest" = Cargo.toml ] || packages+=(-p "$name")
  done
  cargo clean --quiet "${packages[@]}"
fi
mkdir -p "$CARGO_TARGET_DIR" && echo "$ROOT" >"$stamp"

if ! cargo nextest --version >/dev/null 2>&1; then
  say "installing cargo-nextest (once)"
  cargo install --locked cargo-nextest >/dev/null
fi

if ! cargo deny --version >/dev/null 2>&1; then
  say "installing cargo-deny (once)"
  cargo install --locked cargo-deny >/dev/null
fi

say "cargo fmt --check"
cargo fmt --all -- --check
say "cargo clippy (warnings are errors)"
# --all-features: the benchmark binaries behind features are checked too.
cargo clippy --workspace --all-targets --all-features --quiet -- -D warnings
# The dependency policy in deny.toml. Advisories come from a database on GitHub: checked when it
# can be reached, said plainly when not.
say "cargo deny (licenses, bans, sources)"
cargo deny --log-level error check licenses bans sources
if timeout 15 git ls-remote https://github.com/rustsec/advisory-db HEAD >/dev/null 2>&1; then
  say "cargo deny (advisories)"
  cargo deny --log-level error check advisories
else
  say "cargo deny: advisories not checked (github.com, where the advisory database lives, is unreachable)"
fi
# The whole-system tests (tests/stack) run the services' binaries: build every one first.
say "building the binaries"
cargo build --workspace --bins --quiet
say "tests"
cargo nextest run --workspace --no-fail-fast "$@"
