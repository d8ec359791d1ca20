//! ferry-judge against SciPy: the vectors in `tests/data/vectors.json` were computed by
//! `scripts/gen-judge-vectors.py` (SciPy's `mannwhitneyu`, NumPy's median of the pairwise
//! differences, `levene(center="median")`, `binom`); the judge must agree to 1e-9.

mod scipy;
mod verdicts;
