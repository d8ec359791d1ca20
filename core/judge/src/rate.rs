//! A rate test for counts (errors as events per exposure): conditional on the total number of
//! events, the canary's share is binomial under equal Poisson rates. Ranks of samples that are
//! mostly zeros say little; this compares the rates themselves.

use crate::special::{binom_cdf, binom_sf_incl};
use serde::{Deserialize, Serialize};

/// Events over an exposure (requests, seconds, scrape intervals).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// Number of events (rounded to a whole number).
    pub events: f64,
    /// The exposure they occurred in (> 0).
    pub exposure: f64,
}

impl Counts {
    /// Events per unit of exposure.
    pub fn rate(&self) -> f64 {
        self.events / self.exposure
    }
}

/// The test's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RateTest {
    /// Canary events per exposure.
    pub canary_rate: f64,
    /// Baseline events per exposure.
    pub baseline_rate: f64,
    /// Two-sided p-value: twice the smaller binomial tail at the canary's count, at most 1.
    pub p_value: f64,
}

/// Compares the canary's rate with the baseline's. Exposures must be positive and counts
/// finite and non-negative (the caller checks).
pub fn rate_test(canary: Counts, baseline: Counts) -> RateTest {
    let a = canary.events.round().max(0.0) as u64;
    let b = baseline.events.round().max(0.0) as u64;
    let total = a + b;
    let share = canary.exposure / (canary.exposure + baseline.exposure);
    let p_value = if total == 0 {
        1.0
    } else {
        let low = binom_cdf(a, total, share);
        let high = binom_sf_incl(a, total, share);
        (2.0 * low.min(high)).min(1.0)
    };
    RateTest {
        canary_rate: canary.rate(),
        baseline_rate: baseline.rate(),
        p_value,
    }
}

/// Whether two samples look like counts per interval: whole non-negative numbers, at least
/// half of them zero. Such samples are judged by [`rate_test`] with one unit of exposure per
/// point.
pub fn looks_like_counts(canary: &[f64], baseline: &[f64]) -> bool {
    let all = canary.iter().chain(baseline);
    let n = canary.len() + baseline.len();
    if n == 0 {
        return false;
    }
    let mut zeros = 0usize;
    for &v in all {
        if v < 0.0 || v.fract() != 0.0 {
            return false;
        }
        if v == 0.0 {
            zeros += 1;
        }
    }
    zeros * 2 >= n
}
