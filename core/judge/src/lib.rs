//! ferry-judge: the statistics of canary analysis, pure and without I/O (ANALYSIS.md).
//!
//! Two judges. The **limits** judge ([`limits`]) is the deploy file's own semantics: the mean
//! of a query's run values within inclusive limits. The **comparison** judge ([`classify`],
//! [`verdict`]) compares a canary sample with a baseline sample: a two-sided Mann-Whitney U
//! test ([`mwu`], matching SciPy's `mannwhitneyu` method for method), the Hodges-Lehmann
//! shift and its confidence interval ([`hl`]), Brown-Forsythe for a growing spread
//! ([`dispersion`]), a rate test for counts ([`rate`]), a minimum-sample guard, directions,
//! critical metrics and weighted groups ([`score`]). Every result carries a one-line
//! explanation in numbers a person can check.
//!
//! Bad input never panics: NaN and infinities are dropped and counted, empty samples are
//! NoData, and the reasons say so.

pub mod classify;
pub mod dispersion;
pub mod format;
pub mod hl;
pub mod limits;
pub mod mwu;
pub mod rate;
pub mod sample;
pub mod score;
pub mod special;

pub use classify::{Check, Classification, Direction, MetricResult, MetricSettings, classify};
pub use limits::{Limits, LimitsCheck, RunValue, judge_query, judge_run};
pub use mwu::{MannWhitney, Method, mann_whitney_sorted};
pub use sample::{Sorted, Summary};
pub use score::{Outcome, Thresholds, Verdict, verdict};

/// Why a test cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JudgeError {
    /// A sample has no finite value.
    #[error("a sample has no finite value")]
    Empty,
    /// The exact distribution was asked for samples too large for it.
    #[error(
        "the exact method is limited to {} pairs of points; {n1} × {n2} is too many",
        mwu::EXACT_MAX_PAIRS
    )]
    ExactTooLarge {
        /// Canary points.
        n1: usize,
        /// Baseline points.
        n2: usize,
    },
}

/// The Mann-Whitney test of two raw samples (non-finite values dropped first).
pub fn mann_whitney(
    canary: &[f64],
    baseline: &[f64],
    method: Method,
) -> Result<MannWhitney, JudgeError> {
    mann_whitney_sorted(&Sorted::new(canary), &Sorted::new(baseline), method)
}
