#!/usr/bin/env python3
"""Test vectors for ferry-judge, computed with SciPy (core/judge/tests/data/vectors.json).

For each case: the two samples, the method asked for, and SciPy's `mannwhitneyu` (two-sided,
continuity correction) U and p-value; the Hodges-Lehmann estimate as NumPy's median of every
pairwise difference canary - baseline; the confidence interval's order statistics of those
differences (exact: R's qwilcox rule on SciPy's exact null distribution; asymptotic: the
tie-corrected normal rule); Brown-Forsythe as `levene(center="median")`; and binomial tails
for the rate test.

Run: scripts/gen-judge-vectors.py  (creates a venv with scipy under ~/.cache/ferry when needed)
"""
import json
import os
import subprocess
import sys

VENV = os.path.expanduser("~/.cache/ferry/venv-judge")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "core", "judge", "tests", "data", "vectors.json")


def ensure_scipy():
    try:
        import scipy  # noqa: F401
        return
    except ImportError:
        pass
    python = os.path.join(VENV, "bin", "python")
    if not os.path.exists(python):
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
        subprocess.check_call([python, "-m", "pip", "install", "-q", "scipy", "numpy"])
    os.execv(python, [python] + sys.argv)


ensure_scipy()

import numpy as np  # noqa: E402
from scipy import stats, special  # noqa: E402
from scipy.stats._mannwhitneyu import _MWU  # noqa: E402


def ci(x, y, method, confidence, tie_term):
    m, n = len(x), len(y)
    pairs = m * n
    d = np.sort(np.subtract.outer(np.asarray(x), np.asarray(y)).ravel())
    alpha = 1 - confidence
    if method == "exact":
        dist = _MWU(m, n)
        dist.set_shapes(m, n)
        cdf = np.cumsum(dist.pmf(np.arange(pairs + 1)[: pairs // 2 + 1]))
        # qwilcox: smallest q with P(U <= q) >= alpha/2 (it lies in the lower half)
        q = int(np.searchsorted(cdf, alpha / 2, side="left"))
        c = max(q, 1)
    else:
        nn = m + n
        sigma = np.sqrt(m * n / 12 * ((nn + 1) - tie_term / (nn * (nn - 1))))
        z = stats.norm.ppf(1 - alpha / 2)
        c = int(max(1, np.round(pairs / 2 - z * sigma)))
    c = min(c, pairs)
    return float(d[c - 1]), float(d[pairs - c])


def case(name, x, y, method):
    x = [float(v) for v in x]
    y = [float(v) for v in y]
    res = stats.mannwhitneyu(x, y, alternative="two-sided", method=method, use_continuity=True)
    xy = np.concatenate([x, y])
    _, counts = np.unique(xy, return_counts=True)
    tie_term = float(np.sum(counts.astype(float) ** 3 - counts))
    used = method
    if method == "auto":
        used = "asymptotic" if (len(x) > 8 and len(y) > 8) or tie_term > 0 else "exact"
    hl = float(np.median(np.subtract.outer(np.asarray(x), np.asarray(y)).ravel()))
    lo, hi = ci(x, y, used, 0.98, tie_term)
    out = {
        "name": name,
        "canary": x,
        "baseline": y,
        "method": method,
        "used": used,
        "u": float(res.statistic),
        "p_value": float(res.pvalue),
        "hl_estimate": hl,
        "ci98_low": lo,
        "ci98_high": hi,
    }
    if len(x) >= 2 and len(y) >= 2:
        with np.errstate(all="ignore"):
            lev = stats.levene(x, y, center="median")
        if np.isfinite(lev.pvalue):
            out["brown_forsythe_p"] = float(lev.pvalue)
    return out


def main():
    rng = np.random.default_rng(20261202)
    cases = []
    # Small samples without ties: exact by default.
    for (m, n) in [(1, 1), (1, 4), (2, 3), (3, 4), (4, 4), (5, 7), (8, 8), (3, 8), (8, 2)]:
        for shift in (0.0, 0.8, 3.0):
            x = rng.normal(shift, 1.0, m)
            y = rng.normal(0.0, 1.0, n)
            cases.append(case(f"small-{m}x{n}-shift{shift}", x, y, "auto"))
    # Exact asked for larger samples.
    for (m, n) in [(9, 9), (15, 12), (30, 30), (60, 45), (100, 80)]:
        for shift in (0.0, 0.5):
            x = rng.normal(shift, 1.0, m)
            y = rng.normal(0.0, 1.0, n)
            cases.append(case(f"exact-{m}x{n}-shift{shift}", x, y, "exact"))
    # Exact with ties (SciPy truncates U).
    x = rng.integers(0, 4, 6).astype(float)
    y = rng.integers(0, 4, 7).astype(float)
    cases.append(case("exact-ties-6x7", x, y, "exact"))
    # Asymptotic, continuous data.
    for (m, n) in [(9, 9), (20, 25), (30, 30), (50, 40), (100, 100), (300, 250), (1000, 1000)]:
        for shift in (0.0, 0.2, 1.0):
            x = rng.lognormal(shift, 0.5, m)
            y = rng.lognormal(0.0, 0.5, n)
            cases.append(case(f"asym-{m}x{n}-shift{shift}", x, y, "auto"))
    # Ties: rounded values and small integers (counts).
    for (m, n) in [(5, 6), (12, 15), (40, 40), (200, 180)]:
        x = np.round(rng.normal(0.3, 1.0, m), 1)
        y = np.round(rng.normal(0.0, 1.0, n), 1)
        cases.append(case(f"rounded-{m}x{n}", x, y, "auto"))
        x = rng.poisson(0.4, m).astype(float)
        y = rng.poisson(0.2, n).astype(float)
        cases.append(case(f"counts-{m}x{n}", x, y, "auto"))
        cases.append(case(f"counts-{m}x{n}-asymptotic", x, y, "asymptotic"))
    # Degenerate: all equal, complete separation, one side constant.
    cases.append(case("all-equal", [2.0] * 10, [2.0] * 12, "auto"))
    cases.append(case("separated", list(range(10, 20)), list(range(0, 10)), "auto"))
    cases.append(case("separated-exact", list(range(10, 17)), list(range(0, 6)), "exact"))
    cases.append(case("one-side-constant", [1.0] * 15, rng.normal(1.0, 0.1, 15), "auto"))
    # Binomial tails for the rate test.
    binom = []
    for (k, total, p) in [(0, 5, 0.5), (3, 10, 0.5), (12, 20, 0.3), (40, 60, 0.5), (1, 100, 0.02), (250, 400, 0.55)]:
        binom.append({
            "k": k, "n": total, "p": p,
            "cdf": float(stats.binom.cdf(k, total, p)),
            "sf_incl": float(stats.binom.sf(k - 1, total, p)),
        })
    meta = {
        "generator": "scripts/gen-judge-vectors.py",
        "scipy": __import__("scipy").__version__,
        "numpy": np.__version__,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"meta": meta, "cases": cases, "binomial": binom}, f)
        f.write("\n")
    print(f"{len(cases)} cases, {len(binom)} binomial checks -> {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
