#!/usr/bin/env bash
# scripts/fuzz.sh [SECONDS]: fuzzes the deploy-file loader and the agent protocol decoding on
# the stable toolchain for about SECONDS (default 60) of wall-clock time, then prints a table
# (target, executions, findings, seconds) and a final JSON line with the totals.
#
# The targets are tests/fuzz's proptest-based tests (see its crate documentation). Here they
# run optimised, all at once, each with the whole budget (FERRY_FUZZ_SECONDS): fresh random
# seeds batch after batch until the time is spent or a target finds a failure, which is
# shrunk to a minimal input and printed with its seed. The normal test suite runs the same
# targets with a few dozen cases each. Exit status: 0 with no findings, 1 otherwise.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$ROOT"

budget=${1:-60}
[[ "$budget" =~ ^[0-9]+$ ]] && [ "$budget" -gt 0 ] || die "usage: scripts/fuzz.sh [SECONDS]"
command -v jq >/dev/null || die "jq is needed (apt-get install jq)"

say "building the fuzz targets (release)"
cargo test --release -p ferry-fuzz --test fuzz --no-run >&2

report=$(mktemp)
log=$(mktemp)
trap 'rm -f "$report" "$log"' EXIT
say "fuzzing for ${budget}s (log: every target's outcome and any finding follow)"
set +e
FERRY_FUZZ_SECONDS=$budget FERRY_FUZZ_REPORT=$report \
  cargo test --release -p ferry-fuzz --test fuzz -- --test-threads=64 >"$log" 2>&1
status=$?
set -e
grep -E '^fuzz |panicked|minimal input' "$log" >&2 || true
[ -s "$report" ] || { cat "$log" >&2; die "the fuzz targets reported nothing (exit $status)"; }

printf '%-38s %14s %9s %8s\n' target executions findings seconds
jq -r '"\(.target)\t\(.executions)\t\(.findings)\t\(.seconds)"' "$report" | sort |
  while IFS=$'\t' read -r target executions findings secs; do
    printf '%-38s %14s %9s %8s\n' "$target" "$executions" "$findings" "$secs"
  done
jq -s -c --argjson budget "$budget" '{
    seconds: $budget,
    targets: length,
    executions: (map(.executions) | add),
    findings: (map(.findings) | add),
    found_by: [.[] | select(.findings > 0) | .target]
  }' "$report"
[ "$status" -eq 0 ] && [ "$(jq -s 'map(.findings) | add' "$report")" -eq 0 ]
