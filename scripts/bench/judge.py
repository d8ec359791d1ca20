#!/usr/bin/env python3
"""The judge benchmark: ferry-judge's Mann-Whitney test against SciPy's `mannwhitneyu` on the
same data, in one run. Generates sample pairs (seeded, log-normal, canary shifted) at several
sizes, times SciPy on every pair (best of several rounds), runs the judge's bench binary on the
same pairs, and compares every p-value. Prints a table, then one JSON line last:
{"ferry_ms", "scipy_ms", "speedup", "max_abs_p_diff", ...} for 1,000 points per side.

Usage: scripts/bench/judge.py BINARY [--pairs N] [--rounds R]   (scripts/bench.sh judge runs it)
"""
import argparse
import json
import os
import sys
import tempfile
import time
import subprocess

import numpy as np
from scipy import __version__ as scipy_version
from scipy.stats import mannwhitneyu

SIZES = (30, 100, 1000)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(20261202)
    sets = []
    for n in SIZES:
        pairs = []
        for i in range(args.pairs):
            shift = (0.0, 0.05, 0.2)[i % 3]
            pairs.append((rng.lognormal(shift, 0.5, n).tolist(), rng.lognormal(0.0, 0.5, n).tolist()))
        sets.append({"n": n, "pairs": pairs})

    scipy = {}
    for s in sets:
        arrays = [(np.asarray(x), np.asarray(y)) for x, y in s["pairs"]]
        p_values = []
        best = float("inf")
        for _ in range(args.rounds):
            p_values = []
            t = time.perf_counter()
            for x, y in arrays:
                p_values.append(mannwhitneyu(x, y, alternative="two-sided", method="auto").pvalue)
            best = min(best, time.perf_counter() - t)
        scipy[s["n"]] = (best, [float(p) for p in p_values])

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"rounds": args.rounds, "sets": sets}, f)
        data = f.name
    try:
        out = subprocess.run([args.binary, data], check=True, capture_output=True, text=True).stdout
    finally:
        os.unlink(data)
    ferry = {s["n"]: s for s in json.loads(out)["sets"]}

    print(f"Mann-Whitney U, two-sided, {args.pairs} pairs per size, best of {args.rounds} rounds; SciPy {scipy_version}")
    header = f"{'n/side':>7} {'scipy us/test':>14} {'ferry us/test':>14} {'speedup':>8} {'ferry judgement us':>19} {'max |p diff|':>13}"
    print(header)
    print("-" * len(header))
    max_diff = 0.0
    final = None
    for n in SIZES:
        scipy_s, scipy_p = scipy[n]
        f = ferry[n]
        diff = max(abs(a - b) for a, b in zip(scipy_p, f["p_values"]))
        max_diff = max(max_diff, diff)
        scipy_us = scipy_s / args.pairs * 1e6
        speedup = scipy_us / f["mann_whitney_us_per_test"]
        print(f"{n:>7} {scipy_us:>14.1f} {f['mann_whitney_us_per_test']:>14.2f} {speedup:>8.1f} {f['judgement_us_per_metric']:>19.1f} {diff:>13.2e}")
        if n == 1000:
            final = {
                "benchmark": "judge",
                "n_per_side": n,
                "pairs": args.pairs,
                "ferry_ms": round(f["mann_whitney_ms"], 3),
                "scipy_ms": round(scipy_s * 1e3, 3),
                "speedup": round(speedup, 1),
                "max_abs_p_diff": max_diff,
                "ferry_judgement_us_per_metric": round(f["judgement_us_per_metric"], 1),
            }
    final["max_abs_p_diff"] = max_diff
    print("judgement = Mann-Whitney + Hodges-Lehmann shift and 98 % interval + Brown-Forsythe + classification")
    print(json.dumps(final))
    return 0 if max_diff <= 1e-9 else 1


if __name__ == "__main__":
    sys.exit(main())
