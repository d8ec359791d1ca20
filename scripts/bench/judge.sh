#!/usr/bin/env bash
# The judge benchmark: builds ferry-judge's bench binary (release) and runs it against SciPy's
# mannwhitneyu on the same data (scripts/bench/judge.py), with SciPy from PyPI in a venv under
# ~/.cache/ferry (created on first use).
set -euo pipefail
cd "$(dirname "$0")/../.."
venv="${FERRY_JUDGE_VENV:-$HOME/.cache/ferry/venv-judge}"
if ! "$venv/bin/python" -c 'import scipy, numpy' 2>/dev/null; then
  echo "bench: installing scipy and numpy into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q scipy numpy
fi
cargo build --release --quiet -p ferry-judge --example judge_bench
exec "$venv/bin/python" scripts/bench/judge.py "$CARGO_TARGET_DIR/release/examples/judge_bench" "$@"
